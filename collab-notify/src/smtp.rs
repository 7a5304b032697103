//! Email invites over SMTP (lettre): STARTTLS or implicit TLS, authentication, a connection pool.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use collab_core::alert::{AgentAlerts, CustomerWaiting};
use collab_core::document::escape_html;
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt};
use collab_core::{AgentId, EmailAddress, Error, Recipient, TenantId};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::ProviderError;

const PROVIDER: &str = "smtp";

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain TCP, then `STARTTLS`, which must succeed (port 587 by default).
    StartTls,
    /// TLS from the first byte, "SMTPS" (port 465 by default).
    ImplicitTls,
    /// No encryption at all (port 25 by default): only for a relay on the same host or network,
    /// and for tests. Credentials are refused with it.
    Plain,
}

/// The settings of [`SmtpEmail`]. The password is redacted from `Debug`.
///
/// ```
/// use collab_notify::smtp::{SmtpConfig, SmtpSecurity};
///
/// let config = SmtpConfig::new("smtp.example.com", SmtpSecurity::StartTls, "Acme Rooms <rooms@example.com>")?
///     .with_credentials("rooms@example.com", "app-password".into())?
///     .with_pool_size(8)?;
/// assert!(!format!("{config:?}").contains("app-password"));
/// # Ok::<(), collab_core::Error>(())
/// ```
#[derive(Clone)]
pub struct SmtpConfig {
    host: String,
    port: u16,
    security: SmtpSecurity,
    from: Mailbox,
    credentials: Option<(String, SecretString)>,
    root_certificate: Option<Vec<u8>>,
    hello_name: Option<String>,
    pool_size: u32,
    timeout: Duration,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from.to_string())
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpConfig {
    /// Sends through `host` with `security`, from `from` (`"Name <address>"` or an address), on
    /// the security's usual port, with a pool of up to 4 connections and a 30 s timeout.
    pub fn new(host: &str, security: SmtpSecurity, from: &str) -> Result<Self, Error> {
        let host = host.trim();
        if host.is_empty()
            || host.len() > 253
            || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        {
            return Err(Error::invalid("host", "must be a host name or IP address"));
        }
        let from: Mailbox = from
            .parse()
            .map_err(|e: lettre::address::AddressError| Error::invalid("from", e.to_string()))?;
        let port = match security {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::ImplicitTls => 465,
            SmtpSecurity::Plain => 25,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            security,
            from,
            credentials: None,
            root_certificate: None,
            hello_name: None,
            pool_size: 4,
            timeout: Duration::from_secs(30),
        })
    }

    /// Another port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Authenticates as `user` (PLAIN or LOGIN, whichever the server offers). Refused with
    /// [`SmtpSecurity::Plain`]: a password never travels unencrypted.
    pub fn with_credentials(mut self, user: &str, password: SecretString) -> Result<Self, Error> {
        if self.security == SmtpSecurity::Plain {
            return Err(Error::invalid("credentials", "are never sent without TLS"));
        }
        self.credentials = Some((user.to_owned(), password));
        Ok(self)
    }

    /// Trusts this PEM certificate as a root too, besides the system's (a private CA).
    pub fn with_root_certificate_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        Certificate::from_pem(pem).map_err(|e| Error::invalid("root_certificate", e.to_string()))?;
        self.root_certificate = Some(pem.to_vec());
        Ok(self)
    }

    /// The name given in `EHLO` (by default, lettre's: the loopback address).
    pub fn with_hello_name(mut self, name: &str) -> Self {
        self.hello_name = Some(name.to_owned());
        self
    }

    /// At most this many connections kept open and reused: 1 to 64 (4 by default).
    pub fn with_pool_size(mut self, size: u32) -> Result<Self, Error> {
        if size == 0 || size > 64 {
            return Err(Error::invalid("pool_size", "must be from 1 to 64"));
        }
        self.pool_size = size;
        Ok(self)
    }

    /// The longest one send may take, connecting included: 100 ms to 40 s, 30 s by default
    /// (under the dispatcher's send timeout, ¾ of its 60 s lease). lettre bounds only the
    /// connect; a server that stops answering mid-session is cut off by this bound, and the
    /// attempt is ambiguous.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(40) {
            return Err(Error::invalid("timeout", "must be from 100 ms to 40 s"));
        }
        self.timeout = timeout;
        Ok(self)
    }

    fn tls(&self) -> Result<Option<TlsParameters>, Error> {
        if self.security == SmtpSecurity::Plain {
            return Ok(None);
        }
        let domain = self.host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let mut builder = TlsParameters::builder(domain);
        if let Some(pem) = &self.root_certificate {
            let certificate =
                Certificate::from_pem(pem).map_err(|e| Error::invalid("root_certificate", e.to_string()))?;
            builder = builder.add_root_certificate(certificate);
        }
        builder.build().map(Some).map_err(|e| Error::backend("TLS set-up", e))
    }
}

/// Sends email invites over SMTP: a `multipart/alternative` message with the invite template as
/// text and as HTML (the link in both, clickable in the HTML), a unique `Message-ID` on the
/// sender's domain, `Date`, `From`, `To` (with the customer's first name) and `Subject`.
///
/// | answer | result |
/// |---|---|
/// | 2xx after `DATA` | sent; the `Message-ID` is the provider id |
/// | 4xx reply (greylisting, mailbox busy, rate limit) | transient |
/// | 5xx reply (no such mailbox, refused) | permanent |
/// | no connection, TLS failure | transient |
/// | no answer in time, unreadable reply | ambiguous (the server may have queued it) |
/// | an address lettre cannot write | permanent |
pub struct SmtpEmail {
    config: SmtpConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    sequence: AtomicU64,
}

impl fmt::Debug for SmtpEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpEmail")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SmtpEmail {
    /// A notifier for `config`. Connections open on first use.
    pub fn new(config: SmtpConfig) -> Result<Self, Error> {
        let tls = match (config.security, config.tls()?) {
            (SmtpSecurity::StartTls, Some(params)) => Tls::Required(params),
            (SmtpSecurity::ImplicitTls, Some(params)) => Tls::Wrapper(params),
            _ => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout))
            .pool_config(PoolConfig::new().max_size(config.pool_size));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
        }
        if let Some(name) = &config.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            config,
            sequence: AtomicU64::new(0),
        })
    }

    /// A fresh `Message-ID` on the sender's domain: `about` (for an invite, the room and invite,
    /// which a bounce quotes: [`invite_of`]), the time and a counter.
    fn message_id(&self, about: &str) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("<{about}.{nanos:x}.{n}@{}>", self.config.from.email.domain())
    }

    /// Sends `mail` to `to`; the provider id of the receipt is the `Message-ID`.
    async fn deliver(&self, to: &str, mail: Mail<'_>, message_id: String) -> Result<Receipt, NotifyError> {
        let refuse = |what: &str, e: &dyn fmt::Display| {
            NotifyError::permanent(ProviderError::new(PROVIDER, format!("{what}: {e}")))
        };
        let address = to.parse().map_err(|e| refuse("unusable address", &e))?;
        let message = Message::builder()
            .from(self.config.from.clone())
            .to(Mailbox::new(mail.name, address))
            .subject(mail.subject)
            .message_id(Some(message_id.clone()))
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(mail.text.to_owned()))
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html_body(mail.text, mail.link)),
                    ),
            )
            .map_err(|e| refuse("could not build the message", &e))?;
        match tokio::time::timeout(self.config.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(Receipt {
                provider_id: Some(message_id),
            }),
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => Err(NotifyError::ambiguous(ProviderError::new(
                PROVIDER,
                format!("no answer within {} ms", self.config.timeout.as_millis()),
            ))),
        }
    }
}

/// One email: the recipient's name, the subject, and the text with a link in it (made
/// clickable in the HTML part).
struct Mail<'a> {
    name: Option<String>,
    subject: String,
    text: &'a str,
    link: &'a str,
}

#[async_trait]
impl Notifier for SmtpEmail {
    fn provider(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let Recipient::Email(to) = &notification.recipient else {
            return Err(NotifyError::permanent(ProviderError::new(
                PROVIDER,
                "an email needs an email address",
            )));
        };
        let message_id = self.message_id(&format!("{}.{}", notification.room, notification.invite));
        let mail = Mail {
            name: Some(notification.first_name.clone()).filter(|n| !n.is_empty()),
            subject: notification
                .subject
                .clone()
                .unwrap_or_else(|| "Your collaboration room".to_owned()),
            text: &notification.text,
            link: &notification.link,
        };
        self.deliver(to.as_str(), mail, message_id).await
    }
}

/// Where an agent's email goes: the host's directory of agents.
type AddressBook = dyn Fn(&TenantId, &AgentId) -> Option<EmailAddress> + Send + Sync;

/// Emails a room's agent when the customer waits ([`collab_core::alert`]), through the SMTP
/// connections of an [`SmtpEmail`]: a short plain text (and HTML) message, the customer's name
/// in the subject, and a link to the room in the agent console. Its `Message-ID` starts with
/// `alert.` and the room.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use collab_core::EmailAddress;
/// use collab_notify::smtp::{SmtpAgentAlerts, SmtpConfig, SmtpEmail, SmtpSecurity};
///
/// let email = Arc::new(SmtpEmail::new(SmtpConfig::new("smtp.example.com", SmtpSecurity::StartTls, "rooms@example.com")?)?);
/// // Here agents sign in with their email address as their id.
/// let alerts = SmtpAgentAlerts::new(email, "https://rooms.example.com/#room={room}", |_tenant, agent| {
///     EmailAddress::parse(agent.as_str()).ok()
/// })?;
/// # let _ = alerts;
/// # Ok::<(), collab_core::Error>(())
/// # }).unwrap();
/// ```
pub struct SmtpAgentAlerts {
    email: Arc<SmtpEmail>,
    console_link: String,
    address_of: Box<AddressBook>,
}

impl fmt::Debug for SmtpAgentAlerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpAgentAlerts")
            .field("email", &self.email)
            .field("console_link", &self.console_link)
            .finish_non_exhaustive()
    }
}

impl SmtpAgentAlerts {
    /// Alerts through `email`, linking to `console_link` with `{room}` replaced by the room's
    /// id (one link for every room when it lacks `{room}`), to the address
    /// `address_of` gives for the agent. An agent without an address is a permanent failure,
    /// recorded in the room.
    pub fn new(
        email: Arc<SmtpEmail>,
        console_link: &str,
        address_of: impl Fn(&TenantId, &AgentId) -> Option<EmailAddress> + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        if !(console_link.starts_with("https://") || console_link.starts_with("http://")) {
            return Err(Error::invalid("console_link", "must be an http or https URL"));
        }
        Ok(Self {
            email,
            console_link: console_link.to_owned(),
            address_of: Box::new(address_of),
        })
    }
}

#[async_trait]
impl AgentAlerts for SmtpAgentAlerts {
    async fn customer_waiting(&self, alert: &CustomerWaiting) -> Result<Receipt, NotifyError> {
        let Some(to) = (self.address_of)(&alert.tenant, &alert.agent) else {
            return Err(NotifyError::permanent(ProviderError::new(
                PROVIDER,
                "the agent has no email address",
            )));
        };
        let who = alert.customer.as_deref().unwrap_or("Your customer");
        let link = self.console_link.replace("{room}", &alert.room.to_string());
        let what = match alert.waiting {
            1 => "a message".to_owned(),
            n => format!("{n} messages"),
        };
        let text = format!(
            "{who} sent {what} that nobody has read yet (the first at {}).\n\nOpen the room: {link}\n",
            alert.since
        );
        let mail = Mail {
            name: None,
            subject: format!("{who} is waiting for an answer"),
            text: &text,
            link: &link,
        };
        let message_id = self.email.message_id(&format!("alert.{}", alert.room));
        self.email.deliver(to.as_str(), mail, message_id).await
    }
}

/// SMTP 4xx → transient, 5xx → permanent, a timeout or an unreadable reply → ambiguous, no
/// connection → transient.
fn classify(e: lettre::transport::smtp::Error) -> NotifyError {
    let mut error = ProviderError::new(PROVIDER, e.to_string());
    if let Some(code) = e.status() {
        error = error.with_status(u16::from(code));
    }
    if e.is_transient() {
        NotifyError::transient(error.with_source(e))
    } else if e.is_permanent() {
        NotifyError::permanent(error.with_source(e))
    } else if e.is_timeout() || e.is_response() {
        NotifyError::ambiguous(error.with_source(e))
    } else if e.is_client() {
        NotifyError::permanent(error.with_source(e))
    } else {
        NotifyError::transient(error.with_source(e))
    }
}

/// The HTML body: the text, escaped, line breaks kept, and every occurrence of the link made
/// a link (the link is added at the end if the text lacks it).
pub fn html_body(text: &str, link: &str) -> String {
    let anchor = format!("<a href=\"{0}\">{0}</a>", escape_html(link));
    let mut body = String::new();
    let mut pieces = if link.is_empty() {
        vec![text]
    } else {
        text.split(link).collect()
    };
    let last = pieces.pop().unwrap_or_default();
    for piece in pieces {
        body.push_str(&escape_html(piece));
        body.push_str(&anchor);
    }
    body.push_str(&escape_html(last));
    if link.is_empty() || !text.contains(link) {
        body.push_str("\n\n");
        body.push_str(&anchor);
    }
    let body = body.replace("\r\n", "\n").replace('\n', "<br>\n");
    format!("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n<body>\n<p>{body}</p>\n</body></html>\n")
}

/// The room and invite of an invite email, from its `Message-ID` (with or without the angle
/// brackets): what a bounce processor needs to record the bounce with
/// [`Rooms::record_delivery`](collab_core::rooms::Rooms::record_delivery). A bounce (a delivery
/// status notification) quotes the original message's headers; `None` for an id this crate did
/// not write.
///
/// ```
/// use collab_notify::smtp::invite_of;
///
/// let id = "<5d7c0a1e-0000-4000-8000-000000000001.9a41be2f-0000-4000-8000-000000000002.18f3a.0@example.com>";
/// let (room, invite) = invite_of(id).unwrap();
/// assert_eq!(invite.to_string(), "9a41be2f-0000-4000-8000-000000000002");
/// assert_eq!(room.to_string(), "5d7c0a1e-0000-4000-8000-000000000001");
/// assert!(invite_of("<CAF=abc@mail.example.com>").is_none());
/// ```
pub fn invite_of(message_id: &str) -> Option<(collab_core::RoomId, collab_core::InviteId)> {
    let id = message_id.trim().trim_start_matches('<');
    let (local, _domain) = id.split_once('@')?;
    let mut parts = local.split('.');
    let room = parts.next()?.parse().ok()?;
    let invite = parts.next()?.parse().ok()?;
    Some((room, invite))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_body_escapes_and_links() {
        let html = html_body(
            "Hi <Ada> & co,\njoin: https://x/join/t?a=1&b=2\n",
            "https://x/join/t?a=1&b=2",
        );
        assert!(html.contains("Hi &lt;Ada&gt; &amp; co,<br>"), "{html}");
        assert!(html.contains("<a href=\"https://x/join/t?a=1&amp;b=2\">https://x/join/t?a=1&amp;b=2</a>"));
        let appended = html_body("Hello", "https://x/join/t");
        assert!(appended.contains("<a href=\"https://x/join/t\">"));
    }

    #[test]
    fn credentials_need_tls() {
        let plain = SmtpConfig::new("localhost", SmtpSecurity::Plain, "rooms@example.com").expect("valid");
        assert!(plain.with_credentials("u", "p".into()).is_err());
        assert!(SmtpConfig::new("bad host", SmtpSecurity::StartTls, "rooms@example.com").is_err());
        assert!(SmtpConfig::new("localhost", SmtpSecurity::StartTls, "not an address").is_err());
    }
}
