//! No secret in logs or `Debug` output: a whole scenario with real-looking provider keys (Twilio
//! auth token, Vonage secret, SMTP password) and the tokens it makes (agent password, session
//! cookies, invite links), every log record captured at TRACE (`tracing` and `log`), the
//! `Debug` output of the server's state, configurations, rooms, events and errors gathered, and
//! none of the secrets found in any of it, nor in the rooms database.
//!
//! The providers misbehave on purpose: Twilio and Vonage first answer with an error that quotes
//! the whole request back, so that whatever the notifier sent could end up in a reason or a log.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use base64::Engine as _;
use collab_core::rooms::{RoomsConfig, TimelineQuery};
use collab_core::{Actor, AgentId, TenantId};
use collab_notify::{
    SecretString, SmtpConfig, SmtpEmail, SmtpSecurity, TwilioAuth, TwilioConfig, TwilioSender, TwilioSms,
    TwilioWebhook, VonageConfig, VonageSms,
};
use collab_server::auth::Agents;
use common::{ORIGIN, Server, TWILIO_TOKEN, VONAGE_SIGNATURE_SECRET};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TWILIO_SID: &str = "AC5f2b8c1d9e0a4b7c3d6e9f1a2b4c8d0e";
const VONAGE_KEY: &str = "a1b2c3d4";
const VONAGE_SECRET: &str = "Q7xR2mK9pL4vN8sT";
const SMTP_USER: &str = "rooms@example.com";
const SMTP_PASSWORD: &str = "smtp-Pa55w0rd-7d1e9c";
const AGENT_PASSWORD: &str = "correct-horse-battery-staple-42";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../collab-notify/tests/fixtures");

/// Everything logged, through `tracing` and through `log`.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct LogBridge;

impl log::Log for LogBridge {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}\n", record.level(), record.target(), record.args());
        LOGS.lock().unwrap().extend_from_slice(line.as_bytes());
    }
    fn flush(&self) {}
}

static BRIDGE: LogBridge = LogBridge;

fn capture_all_logs() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(|| Capture)
        .init();
    log::set_logger(&BRIDGE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// Every run of 64 hex digits in `text`: the tokens of invite links and cookies.
fn tokens_in(text: &str) -> BTreeSet<String> {
    let mut tokens = BTreeSet::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            if run.len() == 64 {
                tokens.insert(run.clone());
            }
            run.clear();
        }
    }
    tokens
}

/// An error answer quoting the request back, the way a careless gateway might.
fn echo(status: u16) -> impl Fn(&Request) -> ResponseTemplate {
    move |request: &Request| {
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let headers: Vec<String> = request
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or_default()))
            .collect();
        let quoted = format!("{body} {}", headers.join(" "));
        if status == 200 {
            // Vonage answers 200 and tells the failure per message.
            ResponseTemplate::new(200).set_body_json(json!({
                "message-count": "1",
                "messages": [{ "status": "4", "error-text": format!("Bad Credentials: {quoted}") }]
            }))
        } else {
            ResponseTemplate::new(status).set_body_json(json!({
                "code": 21211, "message": format!("Invalid 'To' number in {quoted}"), "status": status
            }))
        }
    }
}

/// An SMTP server on loopback with STARTTLS and AUTH PLAIN, keeping the messages it accepts.
#[derive(Clone, Default)]
struct Mailbox {
    mails: Arc<Mutex<Vec<String>>>,
    current: String,
}

impl mailin_embedded::Handler for Mailbox {
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.push_str(&String::from_utf8_lossy(buf));
        Ok(())
    }
    fn data_end(&mut self) -> mailin_embedded::Response {
        self.mails.lock().unwrap().push(std::mem::take(&mut self.current));
        mailin_embedded::response::OK
    }
    fn auth_plain(&mut self, _: &str, user: &str, password: &str) -> mailin_embedded::Response {
        if user == SMTP_USER && password == SMTP_PASSWORD {
            mailin_embedded::response::AUTH_OK
        } else {
            mailin_embedded::response::INVALID_CREDENTIALS
        }
    }
}

fn smtp_server() -> (u16, Mailbox) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mailbox = Mailbox::default();
    let mut server = mailin_embedded::Server::new(mailbox.clone());
    server
        .with_name("mx.example.com")
        .with_tcp_listener(listener)
        .with_ssl(mailin_embedded::SslConfig::SelfSigned {
            cert_path: format!("{FIXTURES}/server.pem"),
            key_path: format!("{FIXTURES}/server.key"),
        })
        .unwrap()
        .with_auth(mailin_embedded::AuthMechanism::Plain);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (port, mailbox)
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("waited too long for {what}");
}

async fn requests_to(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_or_debug_output() {
    capture_all_logs();
    let mut debug: Vec<String> = Vec::new();

    // The providers: Twilio and Vonage in-process, each failing once by quoting the request.
    let twilio_api = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(echo(400))
        .up_to_n_times(1)
        .mount(&twilio_api)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM0001", "status": "queued"})))
        .mount(&twilio_api)
        .await;
    let vonage_api = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(echo(200))
        .mount(&vonage_api)
        .await;
    let (smtp_port, mailbox) = smtp_server();

    let twilio_config = TwilioConfig::new(
        TWILIO_SID,
        TwilioAuth::AuthToken(SecretString::from(TWILIO_TOKEN)),
        TwilioSender::From("+15005550006".to_owned()),
    )
    .unwrap()
    .with_base_url(&twilio_api.uri())
    .unwrap()
    .with_status_callback(&format!("{ORIGIN}/api/callbacks/twilio"))
    .unwrap();
    let ca = std::fs::read(format!("{FIXTURES}/ca.pem")).unwrap();
    let smtp_config = SmtpConfig::new("127.0.0.1", SmtpSecurity::StartTls, "Rooms <rooms@example.com>")
        .unwrap()
        .with_port(smtp_port)
        .with_root_certificate_pem(&ca)
        .unwrap()
        .with_credentials(SMTP_USER, SecretString::from(SMTP_PASSWORD))
        .unwrap();
    let vonage_config = VonageConfig::new(VONAGE_KEY, SecretString::from(VONAGE_SECRET), "Acme")
        .unwrap()
        .with_base_url(&vonage_api.uri())
        .unwrap();
    debug.extend([
        format!("{twilio_config:?} {twilio_config:#?}"),
        format!("{smtp_config:?} {smtp_config:#?}"),
        format!("{vonage_config:?} {vonage_config:#?}"),
    ]);
    let twilio = TwilioSms::new(twilio_config).unwrap();
    let smtp = SmtpEmail::new(smtp_config).unwrap();
    let vonage = VonageSms::new(vonage_config).unwrap();
    debug.extend([
        format!("{twilio:?}"),
        format!("{smtp:?}"),
        format!("{vonage:?}"),
        format!("{:?}", TwilioWebhook::new(SecretString::from(TWILIO_TOKEN))),
        format!(
            "{:?}",
            collab_notify::VonageReceipts::new(
                SecretString::from(VONAGE_SIGNATURE_SECRET),
                collab_notify::vonage::SignatureMethod::Sha256Hmac
            )
        ),
    ]);

    let agents = || {
        Agents::new(
            TenantId::new("acme").unwrap(),
            HashMap::from([("ada".to_owned(), AGENT_PASSWORD.to_owned())]),
        )
    };
    let server = Server::start_with(agents(), |builder| {
        builder
            .sms(twilio)
            .email(smtp)
            .config(RoomsConfig::default().with_base_url(ORIGIN).unwrap())
    })
    .await;

    // The agent signs in (a wrong password first), opens a room, invites by SMS (refused with
    // the request quoted back), again by SMS (sent) and by email (sent over STARTTLS + AUTH).
    let wrong = server
        .call(
            "POST",
            "/api/session",
            None,
            Some(json!({"agent": "ada", "password": format!("{AGENT_PASSWORD}x")})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let agent = server.agent("ada", AGENT_PASSWORD).await;
    let room = server.create_room(&agent).await;
    let sms = json!({"channel": "sms", "first_name": "Grace", "last_name": "Hopper", "identifier": "+447911123456"});
    server.invite(&agent, &room, sms).await;
    wait_until("the refused SMS", || logs().contains("invite delivery failed")).await;
    server.invite(&agent, &room, json!({"channel": "sms"})).await;
    let email = json!({"channel": "email", "identifier": "grace@example.com"});
    server.invite(&agent, &room, email).await;
    wait_until("the email", || !mailbox.mails.lock().unwrap().is_empty()).await;
    for _ in 0..500 {
        if requests_to(&twilio_api).await.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The customer opens the link, chats and shares a document; a delivery report arrives,
    // signed, then tampered with; errors on the way.
    let link = server.invite(&agent, &room, json!({"channel": "link"})).await["link"]
        .as_str()
        .unwrap()
        .to_owned();
    let link_token = link.rsplit('/').next().unwrap().to_owned();
    let customer = server.join(&link_token).await;
    let posted = server
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&customer),
            Some(json!({"text": "Here is the form"})),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED);
    let uploaded = server
        .upload(&room, &customer, "form.txt", b"name: Grace".to_vec())
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED);
    let view = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&agent), None)
        .await;
    assert_eq!(view.status, StatusCode::OK);
    let state = server
        .rooms
        .room(
            &Actor::Agent {
                tenant: TenantId::new("acme").unwrap(),
                agent: AgentId::new("ada").unwrap(),
            },
            room.parse().unwrap(),
        )
        .await
        .unwrap();
    let invite = state.invites().last().unwrap().id.to_string();
    let callback = format!("/api/callbacks/twilio?room={room}&invite={invite}");
    let params = vec![
        ("MessageSid".to_owned(), "SM0001".to_owned()),
        ("MessageStatus".to_owned(), "delivered".to_owned()),
    ];
    let signature = TwilioWebhook::new(SecretString::from(TWILIO_TOKEN))
        .signature(&format!("{ORIGIN}{callback}"), &params)
        .unwrap();
    for (body, status) in [
        ("MessageSid=SM0001&MessageStatus=delivered", StatusCode::NO_CONTENT),
        ("MessageSid=SM0001&MessageStatus=failed", StatusCode::FORBIDDEN),
    ] {
        let headers = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-twilio-signature", signature.as_str()),
        ];
        let reply = server.send_with("POST", &callback, &headers, Body::from(body)).await;
        assert_eq!(reply.status, status, "{body}");
    }
    let customer_token = customer.split_once('=').unwrap().1.to_owned();
    let agent_token = agent.split_once('=').unwrap().1.to_owned();
    let errors = [
        format!("{:?}", server.rooms.join(&"0".repeat(64)).await),
        format!("{:?}", server.rooms.customer_session(&link_token).await),
        format!("{:?}", server.state.agents.sign_in("ada", "nope", None).await),
        format!("{:?}", server.rooms.join("not a token").await),
    ];
    debug.extend(errors);

    // A second server with Vonage, whose error quotes its request, secret and all.
    let vonage_server = Server::start_with(agents(), |builder| builder.sms(vonage)).await;
    let vonage_agent = vonage_server.agent("ada", AGENT_PASSWORD).await;
    let vonage_room = vonage_server.create_room(&vonage_agent).await;
    let sms = json!({"channel": "sms", "first_name": "Ada", "last_name": "Lovelace", "identifier": "+447911123457"});
    vonage_server.invite(&vonage_agent, &vonage_room, sms).await;
    wait_until("the refused Vonage SMS", || {
        logs().matches("invite delivery failed").count() >= 2
    })
    .await;

    // The secrets, and every token the scenario made: in cookies, links and what was sent.
    let mut sent = String::new();
    for request in requests_to(&twilio_api)
        .await
        .iter()
        .chain(&requests_to(&vonage_api).await)
    {
        sent.push_str(&String::from_utf8_lossy(&request.body));
        sent.push(' ');
    }
    // The email is quoted-printable: join its soft line breaks.
    sent.push_str(&mailbox.mails.lock().unwrap().join(" ").replace("=\r\n", ""));
    // The SMS bodies are form-encoded: `join%2F<token>`.
    let mut secrets: BTreeSet<String> = tokens_in(&sent.replace("%2F", "/"));
    assert!(
        secrets.len() >= 3,
        "the SMS and email invites carry their links' tokens: {sent}"
    );
    secrets.extend([link_token.clone(), customer_token, agent_token]);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"));
    secrets.extend(
        [
            TWILIO_TOKEN,
            VONAGE_SECRET,
            VONAGE_SIGNATURE_SECRET,
            SMTP_PASSWORD,
            AGENT_PASSWORD,
        ]
        .map(str::to_owned),
    );
    // A cut text may hold part of a secret: look for every 16 characters of each too. The
    // Basic credentials' first 48 characters encode only the account SID, which is no secret.
    let mut needles: BTreeSet<String> = BTreeSet::new();
    for secret in secrets.iter().chain(std::iter::once(&basic)) {
        let skip = if *secret == basic { 48 } else { 0 };
        let chars: Vec<char> = secret.chars().collect();
        needles.extend(
            chars
                .windows(16.min(chars.len()))
                .skip(skip)
                .map(|w| w.iter().collect::<String>()),
        );
    }

    // Debug output of the state, the rooms, their events and what the stores hold.
    for server in [&server, &vonage_server] {
        let agent = Actor::Agent {
            tenant: TenantId::new("acme").unwrap(),
            agent: AgentId::new("ada").unwrap(),
        };
        debug.push(format!("{:?} {:#?}", server.state, server.state));
        debug.push(format!("{:?}", server.state.agents));
        debug.push(format!("{:?}", server.state.twilio));
        debug.push(format!("{:?} {:?}", server.rooms, server.rooms.config()));
        debug.push(format!("{:?}", server.inbox));
        let rooms = server
            .rooms
            .list_rooms(&agent, &collab_core::store::RoomQuery::default())
            .await
            .unwrap();
        debug.push(format!("{rooms:?}"));
        for summary in &rooms.rooms {
            let state = server.rooms.room(&agent, summary.room).await.unwrap();
            let events = server
                .rooms
                .timeline(&agent, summary.room, TimelineQuery::Latest { limit: 1000 })
                .await
                .unwrap();
            debug.push(format!("{state:?} {events:?} {events:#?}"));
            let view = server
                .call(
                    "GET",
                    &format!("/api/rooms/{}/events", summary.room),
                    Some(&agent_cookie(server).await),
                    None,
                )
                .await;
            debug.push(String::from_utf8_lossy(&view.body).into_owned());
        }
    }

    let logs = logs();
    assert!(logs.contains("customer invited"), "the capture works");
    assert!(
        logs.contains("Invalid 'To' number") && logs.contains("Bad Credentials"),
        "the providers' quoted requests reached the logs, as the test means them to"
    );
    let mut found = Vec::new();
    for secret in &needles {
        if logs.contains(secret.as_str()) {
            found.push(format!("logs hold {secret}"));
        }
        for (i, text) in debug.iter().enumerate() {
            if text.contains(secret.as_str()) {
                found.push(format!("debug output {i} holds {secret}: {text}"));
            }
        }
    }
    // Tokens are stored only as hashes: not in the rooms database, its journal or its WAL.
    for entry in std::fs::read_dir(server.dir.path()).unwrap().flatten() {
        if entry.path().is_file() {
            let bytes = String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned();
            for secret in &needles {
                if bytes.contains(secret.as_str()) {
                    found.push(format!("{} holds {secret}", entry.path().display()));
                }
            }
        }
    }
    eprintln!(
        "checked {} secrets ({} fragments) against {} KiB of logs and {} Debug texts",
        secrets.len() + 1,
        needles.len(),
        logs.len() / 1024,
        debug.len()
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// A fresh agent cookie of `server`.
async fn agent_cookie(server: &Server) -> String {
    server.agent("ada", AGENT_PASSWORD).await
}
