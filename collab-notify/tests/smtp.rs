//! Email over SMTP against a real SMTP server on loopback (mailin-embedded).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use collab_core::notify::{Notifier, NotifyError};
use collab_core::*;
use collab_notify::ProviderError;
use collab_notify::smtp::{SmtpAgentAlerts, SmtpConfig, SmtpEmail, SmtpSecurity};
use common::*;
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig, response};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const FROM: &str = "Acme Rooms <rooms@example.com>";

/// A message the server accepted.
#[derive(Clone, Debug)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

/// How the server answers, and what it saw.
#[derive(Debug, Default)]
struct Shared {
    rcpt_reply: Option<(u16, &'static str)>,
    data_end_reply: Option<(u16, &'static str)>,
    mails: Vec<Mail>,
    logins: Vec<(String, String)>,
}

#[derive(Clone, Default)]
struct Recorder {
    shared: Arc<Mutex<Shared>>,
    current: Option<Mail>,
    /// The last end of data was refused. mailin then stays in its DATA state and reads the
    /// client's next command (lettre's QUIT) as message text, so no reply would ever come:
    /// refusing that line makes mailin answer it.
    refused_data: bool,
}

impl Handler for Recorder {
    fn rcpt(&mut self, _to: &str) -> Response {
        match self.shared.lock().unwrap().rcpt_reply {
            Some((code, text)) => Response::custom(code, text.to_owned()),
            None => response::OK,
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Mail {
            from: from.to_owned(),
            to: to.to_vec(),
            data: String::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.refused_data {
            return Err(std::io::Error::other("a command after a refused message"));
        }
        if let Some(mail) = &mut self.current {
            mail.data.push_str(&String::from_utf8_lossy(buf));
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut shared = self.shared.lock().unwrap();
        if let Some((code, text)) = shared.data_end_reply {
            self.refused_data = true;
            return Response::custom(code, text.to_owned());
        }
        shared.mails.extend(self.current.take());
        response::OK
    }

    fn auth_plain(&mut self, _authorization_id: &str, user: &str, password: &str) -> Response {
        self.shared
            .lock()
            .unwrap()
            .logins
            .push((user.to_owned(), password.to_owned()));
        if user == "rooms@example.com" && password == "smtp-password" {
            response::AUTH_OK
        } else {
            response::INVALID_CREDENTIALS
        }
    }
}

struct SmtpServer {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl SmtpServer {
    /// A server on 127.0.0.1, STARTTLS and AUTH PLAIN when `tls`.
    fn start(tls: bool) -> Self {
        // Both of rustls' providers are in the test build: name one for the server.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let recorder = Recorder::default();
        let shared = recorder.shared.clone();
        let mut server = Server::new(recorder);
        server.with_name("mx.example.com").with_tcp_listener(listener);
        if tls {
            server
                .with_ssl(SslConfig::SelfSigned {
                    cert_path: format!("{FIXTURES}/server.pem"),
                    key_path: format!("{FIXTURES}/server.key"),
                })
                .unwrap()
                .with_auth(AuthMechanism::Plain);
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self { port, shared }
    }

    fn answer_rcpt(&self, code: u16, text: &'static str) {
        self.shared.lock().unwrap().rcpt_reply = Some((code, text));
    }

    fn answer_data_end(&self, code: u16, text: &'static str) {
        self.shared.lock().unwrap().data_end_reply = Some((code, text));
    }

    fn mails(&self) -> Vec<Mail> {
        self.shared.lock().unwrap().mails.clone()
    }

    fn plain(&self) -> SmtpEmail {
        SmtpEmail::new(self.plain_config()).unwrap()
    }

    fn plain_config(&self) -> SmtpConfig {
        SmtpConfig::new("127.0.0.1", SmtpSecurity::Plain, FROM)
            .unwrap()
            .with_port(self.port)
            .with_hello_name("app.example.com")
    }
}

/// One MIME part: its headers (lower-cased names) and its decoded body.
struct Part {
    headers: Vec<(String, String)>,
    body: String,
}

impl Part {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn parse_part(raw: &str) -> Part {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let encoding = headers
        .iter()
        .find(|(n, _)| n == "content-transfer-encoding")
        .map(|(_, v)| v.to_ascii_lowercase());
    let body = match encoding.as_deref() {
        Some("base64") => {
            let compact: String = body.split_whitespace().collect();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(compact).unwrap()).unwrap()
        }
        Some("quoted-printable") => quoted_printable(body),
        _ => body.to_owned(),
    };
    Part { headers, body }
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The message's top-level headers and its text and HTML parts.
fn parse_mail(data: &str) -> (Part, Part, Part) {
    let top = parse_part(data);
    let content_type = top.header("content-type").unwrap().to_owned();
    assert!(content_type.starts_with("multipart/alternative"), "{content_type}");
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let (_, body) = data.split_once("\r\n\r\n").unwrap();
    let mut parts: Vec<Part> = body
        .split(&format!("--{boundary}"))
        .map(|p| p.trim_start_matches("\r\n"))
        .filter(|p| !p.is_empty() && !p.starts_with("--"))
        .map(parse_part)
        .collect();
    assert_eq!(parts.len(), 2, "a text and an HTML part");
    let html = parts.pop().unwrap();
    let text = parts.pop().unwrap();
    (top, text, html)
}

#[tokio::test]
async fn an_invite_arrives_with_the_link_in_both_bodies_and_proper_headers() {
    let server = SmtpServer::start(false);
    let clock = clock();
    let rooms = builder(&clock).email(server.plain()).build();
    let (room, invite) = email_invite(&rooms, "grace@example.com").await;
    assert_eq!(rooms.dispatch_due().await.unwrap().sent, 1);

    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "rooms@example.com");
    assert_eq!(mail.to, ["grace@example.com"]);
    let (top, text, html) = parse_mail(&mail.data);
    assert_eq!(top.header("from"), Some("\"Acme Rooms\" <rooms@example.com>"));
    assert_eq!(top.header("to"), Some("Grace <grace@example.com>"));
    assert_eq!(top.header("subject"), Some("Your collaboration room"));
    assert_eq!(top.header("mime-version"), Some("1.0"));
    assert!(
        top.header("date").is_some_and(|d| d.ends_with("+0000")),
        "{:?}",
        top.header("date")
    );
    let message_id = top.header("message-id").unwrap();
    assert!(
        message_id.starts_with(&format!("<{room}.{invite}.")) && message_id.ends_with("@example.com>"),
        "{message_id}"
    );
    // What a bounce processor reads back from the quoted Message-ID.
    assert_eq!(collab_notify::smtp::invite_of(message_id), Some((room, invite)));

    assert!(text.header("content-type").unwrap().starts_with("text/plain"));
    assert!(html.header("content-type").unwrap().starts_with("text/html"));
    let link = text
        .body
        .split_whitespace()
        .find(|w| w.starts_with("https://rooms.example.com/join/"))
        .expect("the link in the text body")
        .to_owned();
    assert!(text.body.starts_with("Hello Grace,"), "{}", text.body);
    assert!(
        html.body.contains(&format!("<a href=\"{link}\">{link}</a>")),
        "{}",
        html.body
    );

    // The link works, and the receipt is the Message-ID.
    let token = link.rsplit('/').next().unwrap();
    rooms.join(token).await.expect("the emailed link lets the customer in");
    assert_eq!(
        deliveries(&rooms, room, invite).await,
        [DeliveryStatus::Sent {
            provider_id: Some(message_id.to_owned())
        }]
    );
}

#[tokio::test]
async fn ten_posts_in_a_minute_to_an_absent_agent_send_the_agent_one_email() {
    let server = SmtpServer::start(false);
    let clock = clock();
    let email = Arc::new(server.plain());
    let alerts = SmtpAgentAlerts::new(email.clone(), "https://rooms.example.com/#room={room}", |_, agent| {
        EmailAddress::parse(&format!("{agent}@example.com")).ok()
    })
    .unwrap();
    let rooms = builder(&clock).email(email).agent_alerts(alerts).build();
    let (room, _) = email_invite(&rooms, "grace@example.com").await;
    rooms.dispatch_due().await.unwrap();
    let link = rooms.get_link(&agent(), room).await.unwrap().link.unwrap();
    let session = rooms.join(link.token()).await.unwrap();
    let customer = rooms.customer_session(session.token.expose()).await.unwrap();
    for i in 0..10 {
        rooms
            .post_message(&customer, room, &format!("hello? {i}"), None)
            .await
            .unwrap();
        clock.advance(Duration::from_secs(6));
    }
    for _ in 0..10 {
        clock.advance(Duration::from_secs(60));
        rooms.dispatch_due().await.unwrap();
    }

    let mails = server.mails();
    let alerts: Vec<&Mail> = mails.iter().filter(|m| m.to == ["ada@example.com"]).collect();
    assert_eq!(alerts.len(), 1, "one email for the burst: {mails:?}");
    let (top, text, html) = parse_mail(&alerts[0].data);
    assert_eq!(top.header("subject"), Some("Grace Hopper is waiting for an answer"));
    assert!(
        top.header("message-id")
            .unwrap()
            .starts_with(&format!("<alert.{room}.")),
        "{:?}",
        top.header("message-id")
    );
    let console = format!("https://rooms.example.com/#room={room}");
    assert!(text.body.contains("Grace Hopper sent 10 messages"), "{}", text.body);
    assert!(text.body.contains(&console), "{}", text.body);
    assert!(html.body.contains(&format!("<a href=\"{console}\">")), "{}", html.body);
    assert!(!text.body.contains("hello?"), "no message text in the alert");
}

#[tokio::test]
async fn every_send_has_its_own_message_id() {
    let server = SmtpServer::start(false);
    let email = server.plain();
    email.send(&common::email("grace@example.com")).await.unwrap();
    email.send(&common::email("grace@example.com")).await.unwrap();
    let ids: Vec<String> = server
        .mails()
        .iter()
        .map(|m| parse_mail(&m.data).0.header("message-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

fn smtp_status(error: &NotifyError) -> Option<u16> {
    std::error::Error::source(error)
        .and_then(|s| s.downcast_ref::<ProviderError>())
        .and_then(|p| p.status)
}

#[tokio::test]
async fn replies_4xx_are_transient_and_5xx_permanent() {
    let cases: [(bool, u16, &str, &str); 4] = [
        (true, 450, "Mailbox busy, try later", "transient"),
        (true, 550, "Mailbox unavailable", "permanent"),
        (false, 451, "Local error in processing", "transient"),
        (false, 554, "Transaction failed: spam", "permanent"),
    ];
    for (at_rcpt, code, text, expected) in cases {
        let server = SmtpServer::start(false);
        if at_rcpt {
            server.answer_rcpt(code, text);
        } else {
            server.answer_data_end(code, text);
        }
        let error = send_error(&server.plain(), &common::email("grace@example.com")).await;
        let got = match &error {
            NotifyError::Transient { .. } => "transient",
            NotifyError::Permanent { .. } => "permanent",
            _ => "ambiguous",
        };
        assert_eq!(got, expected, "{code}: {error:?}");
        assert_eq!(smtp_status(&error), Some(code));
        assert!(reason(&error).contains(text), "{}", reason(&error));
        assert!(server.mails().is_empty());
    }
}

#[tokio::test]
async fn a_refused_mailbox_fails_the_invite_with_the_server_s_reason() {
    let server = SmtpServer::start(false);
    server.answer_rcpt(550, "No such user here");
    let clock = clock();
    let rooms = builder(&clock).email(server.plain()).build();
    let (room, invite) = email_invite(&rooms, "nobody@example.com").await;
    assert_eq!(rooms.dispatch_due().await.unwrap().failed, 1);
    let news = deliveries(&rooms, room, invite).await;
    assert!(
        matches!(&news[..], [DeliveryStatus::Failed { permanent: true, reason }] if reason.contains("No such user here")),
        "{news:?}"
    );
}

#[tokio::test]
async fn no_server_is_transient_and_a_silent_one_ambiguous() {
    let config = SmtpConfig::new("127.0.0.1", SmtpSecurity::Plain, FROM)
        .unwrap()
        .with_port(unused_port());
    let error = send_error(&SmtpEmail::new(config).unwrap(), &common::email("grace@example.com")).await;
    assert!(matches!(error, NotifyError::Transient { .. }), "{error:?}");

    // Accepts the connection, never greets.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let config = SmtpConfig::new("127.0.0.1", SmtpSecurity::Plain, FROM)
        .unwrap()
        .with_port(port)
        .with_timeout(Duration::from_millis(300))
        .unwrap();
    let error = send_error(&SmtpEmail::new(config).unwrap(), &common::email("grace@example.com")).await;
    assert!(matches!(error, NotifyError::Ambiguous { .. }), "{error:?}");
    drop(silent);
}

/// STARTTLS to the local server as rooms@example.com with `password`, trusting `ca` if given.
fn starttls(port: u16, ca: Option<&[u8]>, password: &str) -> SmtpConfig {
    let mut config = SmtpConfig::new("127.0.0.1", SmtpSecurity::StartTls, FROM)
        .unwrap()
        .with_port(port);
    if let Some(ca) = ca {
        config = config.with_root_certificate_pem(ca).unwrap();
    }
    config.with_credentials("rooms@example.com", password.into()).unwrap()
}

#[tokio::test]
async fn starttls_with_authentication() {
    let server = SmtpServer::start(true);
    let ca = std::fs::read(format!("{FIXTURES}/ca.pem")).unwrap();
    let config = starttls(server.port, Some(&ca), "smtp-password");
    assert!(!format!("{config:?}").contains("smtp-password"));
    let email = SmtpEmail::new(config).unwrap();
    assert!(!format!("{email:?}").contains("smtp-password"));
    email
        .send(&common::email("grace@example.com"))
        .await
        .expect("sent over TLS");
    assert_eq!(server.mails().len(), 1);
    let logins = server.shared.lock().unwrap().logins.clone();
    assert_eq!(logins, [("rooms@example.com".to_owned(), "smtp-password".to_owned())]);

    // A wrong password: the server's 535 is permanent.
    let config = starttls(server.port, Some(&ca), "wrong");
    let error = send_error(&SmtpEmail::new(config).unwrap(), &common::email("grace@example.com")).await;
    assert!(matches!(error, NotifyError::Permanent { .. }), "{error:?}");
    assert!(!reason(&error).contains("wrong"));

    // Without the test CA, the certificate is not trusted and nothing is sent.
    let config = starttls(server.port, None, "smtp-password");
    let error = send_error(&SmtpEmail::new(config).unwrap(), &common::email("grace@example.com")).await;
    assert!(matches!(error, NotifyError::Transient { .. }), "{error:?}");
    assert_eq!(server.mails().len(), 1);
    assert_eq!(
        server.shared.lock().unwrap().logins.len(),
        2,
        "no password sent to an untrusted server"
    );
}
