//! The generic HTTP SMS gateway against an in-process server: payload, signature, answers.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use collab_core::notify::{Notifier, NotifyError};
use collab_notify::ProviderError;
use collab_notify::gateway::{GatewayMessage, HttpSms, HttpSmsConfig, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use collab_notify::testing::{Answer, Backend, Received};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "gateway-shared-secret-0123456789";

fn config(server: &MockServer) -> HttpSmsConfig {
    HttpSmsConfig::new(&format!("{}/sms/send", server.uri()), SECRET.into()).unwrap()
}

fn gateway(server: &MockServer) -> HttpSms {
    HttpSms::new(config(server)).unwrap()
}

async fn mount(server: &MockServer, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/sms/send"))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// The signature recomputed here, as a gateway would.
fn expected_signature(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

#[tokio::test]
async fn the_documented_payload_is_posted_signed() {
    let server = MockServer::start().await;
    mount(
        &server,
        ResponseTemplate::new(202).set_body_json(json!({ "id": "gw-1" })),
    )
    .await;
    let notification = sms("+447911123456");
    let receipt = gateway(&server).send(&notification).await.unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("gw-1"));

    let request = &server.received_requests().await.unwrap()[0];
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.headers["idempotency-key"],
        notification.invite.to_string().as_str()
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({
            "version": 1,
            "room": notification.room.to_string(),
            "invite": notification.invite.to_string(),
            "to": "+447911123456",
            "text": notification.text,
            "segments": 1,
        })
    );
    let message: GatewayMessage = serde_json::from_slice(&request.body).unwrap();
    assert!(!format!("{message:?}").contains("/join/"), "Debug hides the link");

    let timestamp = request.headers[TIMESTAMP_HEADER].to_str().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(now.abs_diff(timestamp.parse().unwrap()) < 60);
    let signature = request.headers[SIGNATURE_HEADER].to_str().unwrap();
    assert_eq!(signature, expected_signature(timestamp, &request.body));
    // A tampered body no longer matches.
    let mut tampered = request.body.clone();
    tampered[10] ^= 1;
    assert_ne!(signature, expected_signature(timestamp, &tampered));
}

#[tokio::test]
async fn an_empty_success_is_sent_without_an_id() {
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(204)).await;
    let receipt = gateway(&server).send(&sms("+447911123456")).await.unwrap();
    assert_eq!(receipt.provider_id, None);
}

#[tokio::test]
async fn refusals_are_permanent_with_the_gateway_s_reason() {
    for status in [400, 403, 404, 422] {
        let server = MockServer::start().await;
        mount(
            &server,
            ResponseTemplate::new(status).set_body_json(json!({ "error": "unknown subscriber", "code": "E17" })),
        )
        .await;
        let error = gateway(&server).send(&sms("+447911123456")).await.unwrap_err();
        let NotifyError::Permanent { source } = &error else {
            panic!("{status}: {error:?}")
        };
        let provider = source.downcast_ref::<ProviderError>().unwrap();
        assert_eq!((provider.status, provider.code.as_deref()), (Some(status), Some("E17")));
        assert_eq!(
            source.to_string(),
            format!("http-sms: unknown subscriber (status {status}, code E17)")
        );
    }
}

#[tokio::test]
async fn busy_answers_are_transient_with_retry_after() {
    for status in [408, 429, 500, 503] {
        let server = MockServer::start().await;
        mount(
            &server,
            ResponseTemplate::new(status).insert_header("Retry-After", "45"),
        )
        .await;
        let error = gateway(&server).send(&sms("+447911123456")).await.unwrap_err();
        assert!(
            matches!(error, NotifyError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(45)),
            "{status}: {error:?}"
        );
    }
}

#[tokio::test]
async fn an_answer_past_the_timeout_is_ambiguous() {
    let server = MockServer::start().await;
    mount(&server, ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
    let provider = HttpSms::new(config(&server).with_timeout(Duration::from_millis(300)).unwrap()).unwrap();
    let error = provider.send(&sms("+447911123456")).await.unwrap_err();
    assert!(matches!(error, NotifyError::Ambiguous { .. }), "{error:?}");
}

#[tokio::test]
async fn a_short_secret_is_refused_and_none_shows_in_debug() {
    assert!(HttpSmsConfig::new("https://gw.example.com/sms", "short".into()).is_err());
    let server = MockServer::start().await;
    let provider = gateway(&server);
    assert!(!format!("{provider:?}").contains(SECRET));
}

// The conformance kit.

struct GatewayBackend {
    server: MockServer,
}

async fn gateway_backend() -> GatewayBackend {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/send"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "gw-accepted" })))
        .with_priority(10)
        .mount(&server)
        .await;
    GatewayBackend { server }
}

#[async_trait]
impl Backend for GatewayBackend {
    fn provider(&self) -> Arc<dyn Notifier> {
        Arc::new(gateway(&self.server))
    }

    async fn script(&self, answers: &[Answer]) {
        for answer in answers {
            let template = match answer {
                Answer::Busy => ResponseTemplate::new(503).insert_header("Retry-After", "5"),
                Answer::InvalidNumber => ResponseTemplate::new(422).set_body_json(json!({ "error": "invalid number" })),
                _ => ResponseTemplate::new(200),
            };
            Mock::given(method("POST"))
                .and(path("/sms/send"))
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
                let message: GatewayMessage = serde_json::from_slice(&r.body).unwrap();
                Received {
                    to: message.to,
                    text: message.text,
                }
            })
            .collect()
    }
}

collab_notify::sms_provider_conformance!(gateway_backend);
