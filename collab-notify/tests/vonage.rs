//! Vonage SMS against an in-process server speaking its SMS API (HTTP 200 even on failure).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use collab_core::notify::{Notifier, NotifyError};
use collab_notify::ProviderError;
use collab_notify::testing::{Answer, Backend, Received};
use collab_notify::twilio::parse_form;
use collab_notify::vonage::{VonageConfig, VonageSms};
use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "vonage-api-secret";

fn config(server: &MockServer) -> VonageConfig {
    VonageConfig::new("abcd1234", SECRET.into(), "AcmeRooms")
        .unwrap()
        .with_base_url(&server.uri())
        .unwrap()
}

fn vonage(server: &MockServer) -> VonageSms {
    VonageSms::new(config(server)).unwrap()
}

/// Vonage's answer: HTTP 200 with one entry per message part.
fn parts(statuses: &[(&str, Option<&str>)]) -> ResponseTemplate {
    let messages: Vec<Value> = statuses
        .iter()
        .enumerate()
        .map(|(i, (status, error))| {
            let mut part = json!({ "to": "447911123456", "status": status });
            if *status == "0" {
                part["message-id"] = json!(format!("0A000000{i}"));
            }
            if let Some(error) = error {
                part["error-text"] = json!(error);
            }
            part
        })
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({
        "message-count": messages.len().to_string(),
        "messages": messages,
    }))
}

async fn mount(server: &MockServer, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/sms/json"))
        .respond_with(answer)
        .mount(server)
        .await;
}

fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

#[tokio::test]
async fn a_message_is_a_form_post_with_key_and_secret() {
    let server = MockServer::start().await;
    mount(&server, parts(&[("0", None)])).await;
    let notification = sms("+447911123456");
    let receipt = vonage(&server).send(&notification).await.expect("sent");
    assert_eq!(receipt.provider_id.as_deref(), Some("0A0000000"));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["content-type"], "application/x-www-form-urlencoded");
    let form = parse_form(&requests[0].body);
    assert_eq!(field(&form, "api_key").as_deref(), Some("abcd1234"));
    assert_eq!(field(&form, "api_secret").as_deref(), Some(SECRET));
    assert_eq!(field(&form, "from").as_deref(), Some("AcmeRooms"));
    assert_eq!(field(&form, "to").as_deref(), Some("447911123456"), "E.164 without +");
    assert_eq!(field(&form, "text"), Some(notification.text.clone()));
    assert_eq!(field(&form, "client-ref"), Some(notification.invite.to_string()));
    assert_eq!(field(&form, "type"), None, "ASCII goes as text");
    assert_eq!(field(&form, "callback"), None);
}

#[tokio::test]
async fn unicode_and_delivery_receipts_are_asked_for() {
    let server = MockServer::start().await;
    mount(&server, parts(&[("0", None)])).await;
    let provider = VonageSms::new(
        config(&server)
            .with_status_callback("https://rooms.example.com/hooks/vonage")
            .unwrap(),
    )
    .unwrap();
    let mut notification = sms("+447911123456");
    notification.text = "Bonjour Zoë, rejoignez la salle : https://rooms.example.com/join/t".into();
    provider.send(&notification).await.unwrap();
    let form = parse_form(&server.received_requests().await.unwrap()[0].body);
    assert_eq!(field(&form, "type").as_deref(), Some("unicode"));
    assert_eq!(field(&form, "status-report-req").as_deref(), Some("1"));
    assert_eq!(
        field(&form, "callback"),
        Some(format!(
            "https://rooms.example.com/hooks/vonage?room={}&invite={}",
            notification.room, notification.invite
        ))
    );
}

#[tokio::test]
async fn a_refusal_inside_http_200_is_read_from_each_status() {
    let permanent = [
        ("2", "Missing to param"),
        ("3", "Invalid to address"),
        ("4", "Bad Credentials"),
        ("6", "Invalid Message"),
        ("7", "Number barred"),
        ("15", "Illegal Sender Address - rejected"),
        ("29", "Non White-listed Destination"),
    ];
    for (status, text) in permanent {
        let server = MockServer::start().await;
        mount(&server, parts(&[(status, Some(text))])).await;
        let error = vonage(&server).send(&sms("+447911123456")).await.unwrap_err();
        let NotifyError::Permanent { source } = &error else {
            panic!("status {status}: {error:?}")
        };
        let provider = source.downcast_ref::<ProviderError>().unwrap();
        assert_eq!(provider.code.as_deref(), Some(status));
        assert_eq!(provider.status, Some(200));
        assert!(source.to_string().contains(text), "{source}");
    }
    for status in ["1", "5", "9", "10"] {
        let server = MockServer::start().await;
        mount(
            &server,
            parts(&[(status, Some("Throttled"))]).insert_header("Retry-After", "7"),
        )
        .await;
        let error = vonage(&server).send(&sms("+447911123456")).await.unwrap_err();
        assert!(
            matches!(error, NotifyError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
            "status {status}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_long_text_sent_in_part_is_ambiguous() {
    let server = MockServer::start().await;
    mount(&server, parts(&[("0", None), ("1", Some("Throttled"))])).await;
    let error = vonage(&server).send(&sms("+447911123456")).await.unwrap_err();
    assert!(matches!(error, NotifyError::Ambiguous { .. }), "{error:?}");
    let server = MockServer::start().await;
    mount(&server, parts(&[("0", None), ("0", None)])).await;
    let receipt = vonage(&server).send(&sms("+447911123456")).await.unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("0A0000000"), "the first part's id");
}

#[tokio::test]
async fn http_failures_map_like_any_http_api() {
    let cases = [
        (401, "permanent"),
        (403, "permanent"),
        (429, "transient"),
        (500, "transient"),
        (503, "transient"),
    ];
    for (status, expected) in cases {
        let server = MockServer::start().await;
        mount(&server, ResponseTemplate::new(status)).await;
        let error = vonage(&server).send(&sms("+447911123456")).await.unwrap_err();
        let got = match error {
            NotifyError::Permanent { .. } => "permanent",
            NotifyError::Transient { .. } => "transient",
            _ => "ambiguous",
        };
        assert_eq!(got, expected, "HTTP {status}");
    }
    // A 200 that cannot be read may have sent the message.
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(200).set_body_string("<html>oops</html>")).await;
    let error = vonage(&server).send(&sms("+447911123456")).await.unwrap_err();
    assert!(matches!(error, NotifyError::Ambiguous { .. }), "{error:?}");
}

#[tokio::test]
async fn an_answer_past_the_timeout_is_ambiguous() {
    let server = MockServer::start().await;
    mount(&server, parts(&[("0", None)]).set_delay(Duration::from_secs(3))).await;
    let provider = VonageSms::new(config(&server).with_timeout(Duration::from_millis(300)).unwrap()).unwrap();
    let error = provider.send(&sms("+447911123456")).await.unwrap_err();
    assert!(matches!(error, NotifyError::Ambiguous { .. }), "{error:?}");
}

#[tokio::test]
async fn the_secret_stays_out_of_debug_and_errors() {
    let server = MockServer::start().await;
    mount(&server, parts(&[("4", Some("Bad Credentials"))])).await;
    let provider = vonage(&server);
    assert!(!format!("{provider:?}").contains(SECRET));
    let error = provider.send(&sms("+447911123456")).await.unwrap_err();
    assert!(!format!("{error:?} {error}").contains(SECRET));
}

// The conformance kit.

struct VonageBackend {
    server: MockServer,
}

async fn vonage_backend() -> VonageBackend {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/json"))
        .respond_with(parts(&[("0", None)]))
        .with_priority(10)
        .mount(&server)
        .await;
    VonageBackend { server }
}

#[async_trait]
impl Backend for VonageBackend {
    fn provider(&self) -> Arc<dyn Notifier> {
        Arc::new(vonage(&self.server))
    }

    async fn script(&self, answers: &[Answer]) {
        for answer in answers {
            let template = match answer {
                Answer::Busy => parts(&[("1", Some("Throttled"))]),
                Answer::InvalidNumber => parts(&[("3", Some("Invalid to address"))]),
                _ => parts(&[("0", None)]),
            };
            Mock::given(method("POST"))
                .and(path("/sms/json"))
                .respond_with(template)
                .up_to_n_times(1)
                .with_priority(1)
                .mount(&self.server)
                .await;
        }
    }

    async fn received(&self) -> Vec<Received> {
        let requests = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .map(|r| {
                let form = parse_form(&r.body);
                Received {
                    to: field(&form, "to").unwrap_or_default(),
                    text: field(&form, "text").unwrap_or_default(),
                }
            })
            .collect()
    }
}

collab_notify::sms_provider_conformance!(vonage_backend);
