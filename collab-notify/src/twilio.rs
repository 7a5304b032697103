//! SMS through Twilio's Messages API, and its status callbacks.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt};
use collab_core::rooms::Rooms;
use collab_core::{DeliveryStatus, Error, InviteId, RoomId};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::ProviderError;
use crate::http::{self, Endpoint};

const PROVIDER: &str = "twilio";

/// Twilio's error codes that say the destination number is wrong or cannot take an SMS.
pub const INVALID_NUMBER_CODES: [u32; 11] = [
    21211, // invalid 'To' number
    21214, // 'To' number cannot be reached
    21217, // the number does not appear to be valid
    21401, // invalid phone number
    21407, // this number type does not support SMS
    21408, // permission to send to this region is not enabled
    21421, // invalid phone number
    21604, // 'To' number is required
    21610, // the recipient replied STOP
    21612, // the 'To' number is not reachable through this sender
    21614, // 'To' is not a valid mobile number
];

/// How requests to Twilio authenticate. Both secrets are redacted from `Debug`.
#[derive(Clone)]
pub enum TwilioAuth {
    /// The account's auth token (the account SID is the user name).
    AuthToken(SecretString),
    /// An API key: its SID (`SK…`) and secret. Recommended: it can be revoked on its own.
    ApiKey {
        /// The key's SID.
        sid: String,
        /// The key's secret.
        secret: SecretString,
    },
}

impl fmt::Debug for TwilioAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TwilioAuth::AuthToken(_) => f.write_str("AuthToken(<redacted>)"),
            TwilioAuth::ApiKey { sid, .. } => f
                .debug_struct("ApiKey")
                .field("sid", sid)
                .field("secret", &"<redacted>")
                .finish(),
        }
    }
}

/// Where Twilio sends from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwilioSender {
    /// `From`: the activated sender number (E.164), short code or alphanumeric sender id.
    From(String),
    /// `MessagingServiceSid` (`MG…`): Twilio picks the sender from the service's pool.
    MessagingService(String),
}

/// The settings of [`TwilioSms`].
///
/// ```
/// use collab_notify::twilio::{TwilioAuth, TwilioConfig, TwilioSender};
///
/// let config = TwilioConfig::new(
///     "AC00000000000000000000000000000000",
///     TwilioAuth::AuthToken("auth-token".into()),
///     TwilioSender::From("+15005550006".into()),
/// )?
/// .with_status_callback("https://rooms.example.com/hooks/twilio")?;
/// assert!(!format!("{config:?}").contains("auth-token"));
/// # Ok::<(), collab_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TwilioConfig {
    account_sid: String,
    auth: TwilioAuth,
    sender: TwilioSender,
    endpoint: Endpoint,
}

fn checked_sid(field: &'static str, prefix: &str, sid: &str) -> Result<String, Error> {
    let sid = sid.trim();
    let valid = sid.len() == 34 && sid.starts_with(prefix) && sid.bytes().all(|b| b.is_ascii_alphanumeric());
    if !valid {
        return Err(Error::invalid(
            field,
            format!("must be {prefix} followed by 32 letters or digits"),
        ));
    }
    Ok(sid.to_owned())
}

impl TwilioConfig {
    /// Twilio's API.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.twilio.com";

    /// Sends as `account_sid` (`AC…`), authenticated by `auth`, from `sender`; 15 s timeout.
    pub fn new(account_sid: &str, auth: TwilioAuth, sender: TwilioSender) -> Result<Self, Error> {
        let account_sid = checked_sid("account_sid", "AC", account_sid)?;
        let auth = match auth {
            TwilioAuth::ApiKey { sid, secret } => TwilioAuth::ApiKey {
                sid: checked_sid("api_key_sid", "SK", &sid)?,
                secret,
            },
            token => token,
        };
        let sender = match sender {
            TwilioSender::From(from) => {
                let from = from.trim();
                if from.is_empty() || from.len() > 20 || !from.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                    return Err(Error::invalid("from", "must be a number, short code or sender id"));
                }
                TwilioSender::From(from.to_owned())
            }
            TwilioSender::MessagingService(sid) => {
                TwilioSender::MessagingService(checked_sid("messaging_service_sid", "MG", &sid)?)
            }
        };
        Ok(Self {
            account_sid,
            auth,
            sender,
            endpoint: Endpoint::new(Self::DEFAULT_BASE_URL),
        })
    }

    /// Where Twilio posts status callbacks. Each message's callback URL gets `room` and
    /// `invite` query parameters, which [`TwilioWebhook::record`] reads back.
    pub fn with_status_callback(self, url: &str) -> Result<Self, Error> {
        let endpoint = self.endpoint.with_status_callback(url)?;
        Ok(Self { endpoint, ..self })
    }

    /// Another API address (a regional edge, or a test server).
    pub fn with_base_url(self, url: &str) -> Result<Self, Error> {
        let endpoint = self.endpoint.with_base_url(url)?;
        Ok(Self { endpoint, ..self })
    }

    /// The whole call's timeout, 100 ms to 40 s (15 s by default). A call that times out is
    /// ambiguous: Twilio may have taken the message.
    pub fn with_timeout(self, timeout: Duration) -> Result<Self, Error> {
        let endpoint = self.endpoint.with_timeout(timeout)?;
        Ok(Self { endpoint, ..self })
    }
}

/// Sends SMS invites through Twilio's Messages API.
///
/// One `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` per attempt, form-encoded, with
/// HTTP basic auth. Answers map as follows:
///
/// | answer | result |
/// |---|---|
/// | 201 Created | sent; the message SID is the receipt's provider id |
/// | 400 with an invalid-number code ([`INVALID_NUMBER_CODES`]), other 4xx | permanent |
/// | 429, 408, 5xx | transient, after `Retry-After` when given |
/// | no connection | transient (nothing was sent) |
/// | timeout, connection lost | ambiguous (Twilio may have the message) |
///
/// Twilio has no idempotency key: the dispatcher's attempt limit bounds repeats.
#[derive(Debug)]
pub struct TwilioSms {
    config: TwilioConfig,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Created {
    sid: Option<String>,
}

#[derive(Deserialize)]
struct Refusal {
    code: Option<u32>,
    message: Option<String>,
}

impl TwilioSms {
    /// A notifier for `config`.
    pub fn new(config: TwilioConfig) -> Result<Self, Error> {
        let client = http::client(config.endpoint.timeout)?;
        Ok(Self { config, client })
    }

    fn form(&self, notification: &Notification, to: &str) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("To", to);
        match &self.config.sender {
            TwilioSender::From(from) => form.append_pair("From", from),
            TwilioSender::MessagingService(sid) => form.append_pair("MessagingServiceSid", sid),
        };
        form.append_pair("Body", &notification.text);
        if let Some(callback) = &self.config.endpoint.status_callback {
            let url = http::with_invite_query(callback, &notification.room, &notification.invite);
            form.append_pair("StatusCallback", &url);
        }
        form.finish()
    }
}

#[async_trait]
impl Notifier for TwilioSms {
    fn provider(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let to = http::phone_number(PROVIDER, notification)?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.endpoint.base_url, self.config.account_sid
        );
        let (user, password) = match &self.config.auth {
            TwilioAuth::AuthToken(token) => (self.config.account_sid.as_str(), token.expose_secret()),
            TwilioAuth::ApiKey { sid, secret } => (sid.as_str(), secret.expose_secret()),
        };
        let request = self
            .client
            .post(url)
            .basic_auth(user, Some(password))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(self.form(notification, to.as_str()));
        let reply = http::send(PROVIDER, request).await?;
        if reply.status.is_success() {
            let sid = reply.json::<Created>().and_then(|c| c.sid);
            if sid.is_none() {
                // Accepted all the same: sending again would send twice.
                tracing::warn!(invite = %notification.invite, "Twilio accepted a message without a readable SID");
            }
            return Ok(Receipt { provider_id: sid });
        }
        let refusal = reply.json::<Refusal>().unwrap_or(Refusal {
            code: None,
            message: None,
        });
        let invalid_number = refusal.code.is_some_and(|c| INVALID_NUMBER_CODES.contains(&c));
        let message = match (invalid_number, refusal.message) {
            (true, Some(m)) => format!("invalid or unreachable number: {m}"),
            (true, None) => "invalid or unreachable number".to_owned(),
            (false, Some(m)) => m,
            (false, None) => format!("HTTP {}", reply.status),
        };
        // The answer may quote the request, Authorization header and all.
        let basic = BASE64.encode(format!("{user}:{password}"));
        let mut error = ProviderError::quoting(PROVIDER, message, &[password, &basic]);
        if let Some(code) = refusal.code {
            error = error.with_code(code.to_string());
        }
        if reply.status == StatusCode::BAD_REQUEST && invalid_number {
            return Err(NotifyError::permanent(error.with_status(reply.status.as_u16())));
        }
        Err(reply.failure(error))
    }
}

/// Verifies Twilio's status callbacks and records them on the invite.
///
/// Twilio signs each callback with the **account's auth token** (also when messages are sent
/// with an API key): `X-Twilio-Signature` is the Base64 HMAC-SHA1 of the full URL Twilio called
/// (scheme, host, path and query, as configured in [`TwilioConfig::with_status_callback`])
/// followed by each POST parameter's name and value, sorted by name.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use collab_notify::twilio::{TwilioWebhook, parse_form};
///
/// let webhook = TwilioWebhook::new("auth-token".into());
/// let url = "https://rooms.example.com/hooks/twilio?room=00000000-0000-0000-0000-000000000001&invite=00000000-0000-0000-0000-000000000002";
/// let body = b"MessageSid=SM1&MessageStatus=delivered";
/// let signature = webhook.signature(url, &parse_form(body))?;
/// assert!(webhook.verify(url, &parse_form(body), &signature).is_ok());
/// assert!(webhook.verify(url, &parse_form(b"MessageSid=SM1&MessageStatus=failed"), &signature).is_err());
/// // In the host's handler: `webhook.record(&rooms, &public_url, &body, &signature_header).await`.
/// # Ok::<(), collab_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct TwilioWebhook {
    auth_token: SecretString,
}

impl fmt::Debug for TwilioWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TwilioWebhook(<redacted>)")
    }
}

/// A status callback, read and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwilioStatusReport {
    /// The room, from the callback URL.
    pub room: RoomId,
    /// The invite, from the callback URL.
    pub invite: InviteId,
    /// `MessageSid`.
    pub message_sid: String,
    /// `MessageStatus` as Twilio spells it.
    pub message_status: String,
    /// What it means for the invite; `None` for steps that are not delivery news (queued, sending…).
    pub status: Option<DeliveryStatus>,
}

/// Decodes an `application/x-www-form-urlencoded` body into its parameters, in order.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// What Twilio's `MessageStatus` (and `ErrorCode`) of a callback mean for the invite: `sent`,
/// `delivered`/`read`, `undelivered`/`failed`/`canceled`; `None` for the steps before.
pub fn delivery_status(message_status: &str, message_sid: &str, error_code: Option<&str>) -> Option<DeliveryStatus> {
    /// Error codes after which another attempt cannot help.
    const PERMANENT: [&str; 8] = ["30004", "30005", "30006", "30007", "21211", "21610", "21612", "21614"];
    match message_status {
        "sent" => Some(DeliveryStatus::Sent {
            provider_id: Some(message_sid.to_owned()),
        }),
        "delivered" | "read" => Some(DeliveryStatus::Delivered),
        "undelivered" | "failed" | "canceled" => Some(DeliveryStatus::Failed {
            permanent: message_status == "canceled" || error_code.is_some_and(|c| PERMANENT.contains(&c)),
            reason: match error_code {
                Some(code) => format!("twilio: {message_status} (code {code})"),
                None => format!("twilio: {message_status}"),
            },
        }),
        _ => None,
    }
}

impl TwilioWebhook {
    /// Verifies callbacks signed with `auth_token`.
    pub fn new(auth_token: SecretString) -> Self {
        Self { auth_token }
    }

    fn mac(&self, url: &str, params: &[(String, String)]) -> Result<Hmac<sha1::Sha1>, Error> {
        // HMAC takes keys of any length; the error exists only in the signature.
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(self.auth_token.expose_secret().as_bytes())
            .map_err(|_| Error::invalid("auth_token", "not usable as an HMAC key"))?;
        mac.update(url.as_bytes());
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort();
        for (name, value) in sorted {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        Ok(mac)
    }

    /// The signature Twilio sends for `url` and `params` (for tests and tools).
    pub fn signature(&self, url: &str, params: &[(String, String)]) -> Result<String, Error> {
        Ok(BASE64.encode(self.mac(url, params)?.finalize().into_bytes()))
    }

    /// Checks `signature` (the `X-Twilio-Signature` header) in constant time. A wrong or
    /// malformed signature is [`Error::Forbidden`].
    pub fn verify(&self, url: &str, params: &[(String, String)], signature: &str) -> Result<(), Error> {
        let tag = BASE64.decode(signature.trim()).map_err(|_| Error::Forbidden)?;
        self.mac(url, params)?.verify_slice(&tag).map_err(|_| Error::Forbidden)
    }

    /// Verifies a callback and reads it: the room and invite from the URL's query, the message
    /// SID and status from the parameters. Missing fields are [`Error::Invalid`].
    pub fn status_report(
        &self,
        url: &str,
        params: &[(String, String)],
        signature: &str,
    ) -> Result<TwilioStatusReport, Error> {
        self.verify(url, params, signature)?;
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let query = parse_form(query.as_bytes());
        let find = |list: &[(String, String)], name: &str| list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let room: RoomId = find(&query, "room")
            .ok_or_else(|| Error::invalid("room", "missing from the callback URL"))?
            .parse()?;
        let invite: InviteId = find(&query, "invite")
            .ok_or_else(|| Error::invalid("invite", "missing from the callback URL"))?
            .parse()?;
        let message_sid = find(params, "MessageSid").ok_or_else(|| Error::invalid("MessageSid", "missing"))?;
        let message_status = find(params, "MessageStatus").ok_or_else(|| Error::invalid("MessageStatus", "missing"))?;
        let error_code = find(params, "ErrorCode").filter(|c| !c.is_empty());
        let status = delivery_status(&message_status, &message_sid, error_code.as_deref());
        Ok(TwilioStatusReport {
            room,
            invite,
            message_sid,
            message_status,
            status,
        })
    }

    /// Verifies a callback (`url` as Twilio called it, the raw form `body`, the
    /// `X-Twilio-Signature` header) and records its news on the invite through
    /// [`Rooms::record_delivery`]. A replayed or late callback records nothing and succeeds.
    ///
    /// Answer Twilio with 2xx on `Ok`, 403 on [`Error::Forbidden`], 400 on [`Error::Invalid`]
    /// and 404 on [`Error::NotFound`].
    pub async fn record(
        &self,
        rooms: &Rooms,
        url: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<TwilioStatusReport, Error> {
        let report = self.status_report(url, &parse_form(body), signature)?;
        if let Some(status) = &report.status {
            rooms
                .record_delivery(report.room, report.invite, status.clone())
                .await?;
        }
        Ok(report)
    }
}
