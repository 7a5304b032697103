//! Vonage SMS against an in-process server speaking its SMS API (HTTP 200 even on failure).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use collab_core::notify::{Notifier, NotifyError};
use collab_notify::ProviderError;
use collab_notify::testing::{Answer, Received};
use collab_notify::vonage::VonageSms;
use common::*;
use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

fn vonage(server: &MockServer) -> VonageSms {
    VonageSms::new(Providers::at(server).vonage()).unwrap()
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

#[tokio::test]
async fn a_message_is_a_form_post_with_key_and_secret() {
    let server = server_answering(VONAGE_MESSAGES, parts(&[("0", None)])).await;
    let notification = sms("+447911123456");
    let receipt = vonage(&server).send(&notification).await.expect("sent");
    assert_eq!(receipt.provider_id.as_deref(), Some("0A0000000"));
    let requests = requests(&server).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["content-type"], "application/x-www-form-urlencoded");
    let form = form(&requests[0]);
    assert_eq!(field(&form, "api_key"), Some(VONAGE_KEY));
    assert_eq!(field(&form, "api_secret"), Some(VONAGE_SECRET));
    assert_eq!(field(&form, "from"), Some(VONAGE_FROM));
    assert_eq!(field(&form, "to"), Some("447911123456"), "E.164 without +");
    assert_eq!(field(&form, "text"), Some(notification.text.as_str()));
    assert_eq!(
        field(&form, "client-ref"),
        Some(notification.invite.to_string().as_str())
    );
    assert_eq!(field(&form, "type"), None, "ASCII goes as text");
    assert_eq!(field(&form, "callback"), None);
}

#[tokio::test]
async fn unicode_and_delivery_receipts_are_asked_for() {
    let server = server_answering(VONAGE_MESSAGES, parts(&[("0", None)])).await;
    let config = Providers::at(&server)
        .status_callback("https://rooms.example.com/hooks/vonage")
        .vonage();
    let provider = VonageSms::new(config).unwrap();
    let mut notification = sms("+447911123456");
    notification.text = "Bonjour Zoë, rejoignez la salle : https://rooms.example.com/join/t".into();
    provider.send(&notification).await.unwrap();
    let form = form(&requests(&server).await[0]);
    assert_eq!(field(&form, "type"), Some("unicode"));
    assert_eq!(field(&form, "status-report-req"), Some("1"));
    let callback = format!(
        "https://rooms.example.com/hooks/vonage?room={}&invite={}",
        notification.room, notification.invite
    );
    assert_eq!(field(&form, "callback"), Some(callback.as_str()));
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
        let server = server_answering(VONAGE_MESSAGES, parts(&[(status, Some(text))])).await;
        let error = sms_error(&vonage(&server)).await;
        let NotifyError::Permanent { source } = &error else {
            panic!("status {status}: {error:?}")
        };
        let provider = source.downcast_ref::<ProviderError>().unwrap();
        assert_eq!(provider.code.as_deref(), Some(status));
        assert_eq!(provider.status, Some(200));
        assert!(source.to_string().contains(text), "{source}");
    }
    for status in ["1", "5", "9", "10"] {
        let server = server_answering(
            VONAGE_MESSAGES,
            parts(&[(status, Some("Throttled"))]).insert_header("Retry-After", "7"),
        )
        .await;
        let error = sms_error(&vonage(&server)).await;
        assert!(
            matches!(error, NotifyError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
            "status {status}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_long_text_sent_in_part_is_ambiguous() {
    let server = server_answering(VONAGE_MESSAGES, parts(&[("0", None), ("1", Some("Throttled"))])).await;
    let error = sms_error(&vonage(&server)).await;
    assert!(matches!(error, NotifyError::Ambiguous { .. }), "{error:?}");
    let server = server_answering(VONAGE_MESSAGES, parts(&[("0", None), ("0", None)])).await;
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
        let server = server_answering(VONAGE_MESSAGES, ResponseTemplate::new(status)).await;
        let error = sms_error(&vonage(&server)).await;
        let got = match error {
            NotifyError::Permanent { .. } => "permanent",
            NotifyError::Transient { .. } => "transient",
            _ => "ambiguous",
        };
        assert_eq!(got, expected, "HTTP {status}");
    }
    // A 200 that cannot be read may have sent the message.
    let server = server_answering(
        VONAGE_MESSAGES,
        ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
    )
    .await;
    let error = sms_error(&vonage(&server)).await;
    assert!(matches!(error, NotifyError::Ambiguous { .. }), "{error:?}");
}

#[tokio::test]
async fn an_answer_past_the_timeout_is_ambiguous() {
    let server = server_answering(VONAGE_MESSAGES, parts(&[("0", None)]).set_delay(Duration::from_secs(3))).await;
    let config = Providers::at(&server).timeout(Duration::from_millis(300)).vonage();
    let provider = VonageSms::new(config).unwrap();
    let error = sms_error(&provider).await;
    assert!(matches!(error, NotifyError::Ambiguous { .. }), "{error:?}");
}

#[tokio::test]
async fn the_secret_stays_out_of_debug_and_errors() {
    let server = server_answering(VONAGE_MESSAGES, parts(&[("4", Some("Bad Credentials"))])).await;
    let provider = vonage(&server);
    assert!(!format!("{provider:?}").contains(VONAGE_SECRET));
    let error = sms_error(&provider).await;
    assert!(!format!("{error:?} {error}").contains(VONAGE_SECRET));
}

// The conformance kit.

async fn vonage_backend() -> MockBackend {
    MockBackend::start(
        VONAGE_MESSAGES,
        |server| Arc::new(vonage(server)),
        |answer| match answer {
            Answer::Busy => parts(&[("1", Some("Throttled"))]),
            Answer::InvalidNumber => parts(&[("3", Some("Invalid to address"))]),
            _ => parts(&[("0", None)]),
        },
        |request| {
            let form = form(request);
            Received {
                to: field(&form, "to").unwrap_or_default().to_owned(),
                text: field(&form, "text").unwrap_or_default().to_owned(),
            }
        },
    )
    .await
}

collab_notify::sms_provider_conformance!(vonage_backend);
