//! The conformance kit on Acme SMS (against an in-process server speaking Acme's API) and on
//! the core's recording fake, the reference: one provider, held to the same expectations.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;
use collab_core::notify::Notifier;
use collab_notify::testing::{Answer, Backend, Received, RecordingBackend};
use custom_sms_provider::AcmeSms;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A server speaking Acme's API; it accepts unless told otherwise.
struct Acme {
    server: MockServer,
}

async fn acme() -> Acme {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("authorization", "Bearer acme-token"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({ "id": "acme-1" })))
        .with_priority(10)
        .mount(&server)
        .await;
    Acme { server }
}

#[async_trait]
impl Backend for Acme {
    fn provider(&self) -> Arc<dyn Notifier> {
        Arc::new(AcmeSms::new(&self.server.uri(), "acme-token".into()).unwrap())
    }

    async fn script(&self, answers: &[Answer]) {
        for answer in answers {
            let template = match answer {
                Answer::Busy => ResponseTemplate::new(429).insert_header("Retry-After", "5"),
                Answer::InvalidNumber => ResponseTemplate::new(400).set_body_string(r#"{"error":"invalid number"}"#),
                _ => ResponseTemplate::new(202),
            };
            Mock::given(method("POST"))
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
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                Received {
                    to: body["to"].as_str().unwrap().to_owned(),
                    text: body["text"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }
}

mod acme_sms {
    collab_notify::sms_provider_conformance!(super::acme);
}

async fn reference() -> RecordingBackend {
    RecordingBackend::new()
}

mod recording_fake {
    collab_notify::sms_provider_conformance!(super::reference);
}

#[tokio::test]
async fn the_token_stays_out_of_debug() {
    let acme = AcmeSms::new("https://api.acme-sms.example", "acme-token".into()).unwrap();
    assert!(!format!("{acme:?}").contains("acme-token"));
}
