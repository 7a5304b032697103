//! The generic HTTP SMS gateway against an in-process server: payload, signature, answers.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use collab_core::notify::{Notifier, NotifyError};
use collab_core::{DeliveryStatus, Error, InviteId, InviteStatus};
use collab_notify::ProviderError;
use collab_notify::gateway::{
    GatewayMessage, GatewayReports, HttpSms, HttpSmsConfig, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use collab_notify::testing::{Answer, Received};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

fn gateway(server: &MockServer) -> HttpSms {
    HttpSms::new(Providers::at(server).gateway()).unwrap()
}

/// The signature recomputed here, as a gateway would.
fn expected_signature(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(GATEWAY_SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

#[tokio::test]
async fn the_documented_payload_is_posted_signed() {
    let server = server_answering(
        GATEWAY_MESSAGES,
        ResponseTemplate::new(202).set_body_json(json!({ "id": "gw-1" })),
    )
    .await;
    let notification = sms("+447911123456");
    let receipt = gateway(&server).send(&notification).await.unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("gw-1"));

    let request = &requests(&server).await[0];
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
    let server = server_answering(GATEWAY_MESSAGES, ResponseTemplate::new(204)).await;
    let receipt = gateway(&server).send(&sms("+447911123456")).await.unwrap();
    assert_eq!(receipt.provider_id, None);
}

#[tokio::test]
async fn refusals_are_permanent_with_the_gateway_s_reason() {
    for status in [400, 403, 404, 422] {
        let refusal = json!({ "error": "unknown subscriber", "code": "E17" });
        let server = server_answering(GATEWAY_MESSAGES, ResponseTemplate::new(status).set_body_json(refusal)).await;
        let error = sms_error(&gateway(&server)).await;
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
        let server = server_answering(
            GATEWAY_MESSAGES,
            ResponseTemplate::new(status).insert_header("Retry-After", "45"),
        )
        .await;
        let error = sms_error(&gateway(&server)).await;
        assert!(
            matches!(error, NotifyError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(45)),
            "{status}: {error:?}"
        );
    }
}

#[tokio::test]
async fn an_answer_past_the_timeout_is_ambiguous() {
    let server = server_answering(
        GATEWAY_MESSAGES,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
    )
    .await;
    let config = Providers::at(&server).timeout(Duration::from_millis(300)).gateway();
    let provider = HttpSms::new(config).unwrap();
    let error = sms_error(&provider).await;
    assert!(matches!(error, NotifyError::Ambiguous { .. }), "{error:?}");
}

#[tokio::test]
async fn a_short_secret_is_refused_and_none_shows_in_debug() {
    assert!(HttpSmsConfig::new("https://gw.example.com/sms", "short".into()).is_err());
    let server = MockServer::start().await;
    let provider = gateway(&server);
    assert!(!format!("{provider:?}").contains(GATEWAY_SECRET));
}

// The conformance kit.

// Delivery reports the gateway posts back.

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn signed_reports_are_recorded_on_their_invite() {
    let server = server_answering(
        GATEWAY_MESSAGES,
        ResponseTemplate::new(202).set_body_json(json!({ "id": "gw-7" })),
    )
    .await;
    let clock = clock();
    let rooms = builder(&clock).sms(gateway(&server)).build();
    let (room, invite) = sms_invite(&rooms, "+447911123456").await;
    rooms.dispatch_due().await.unwrap();
    let reports = GatewayReports::new(GATEWAY_SECRET.into()).unwrap();
    let timestamp = now().to_string();
    let report = |body: Value| {
        let body = serde_json::to_vec(&body).unwrap();
        let signature = expected_signature(&timestamp, &body);
        (body, signature)
    };

    let (failed, signature) = report(json!({
        "version": 1, "room": room, "invite": invite, "status": "failed",
        "permanent": true, "reason": "unknown subscriber"
    }));
    let recorded = reports.record(&rooms, &timestamp, &signature, &failed).await.unwrap();
    assert_eq!(recorded.status, "failed");
    // A replay records nothing more.
    reports.record(&rooms, &timestamp, &signature, &failed).await.unwrap();
    let news = deliveries(&rooms, room, invite).await;
    assert_eq!(news.len(), 2, "{news:?}");
    assert!(
        matches!(&news[1], DeliveryStatus::Failed { permanent: true, reason } if reason == "gateway: unknown subscriber"),
        "{news:?}"
    );
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(
        state.invite(invite).unwrap().status,
        InviteStatus::Failed { permanent: true }
    );

    // Refused, recording nothing: tampered, signed with another secret, stale, unsigned.
    let (delivered, signature) = report(json!({
        "version": 1, "room": room, "invite": invite, "status": "delivered"
    }));
    let mut tampered = delivered.clone();
    tampered.extend_from_slice(b" ");
    let stranger = GatewayReports::new("another-secret-0123456789".into()).unwrap();
    let stale = (now() - 3600).to_string();
    let stale_signature = expected_signature(&stale, &delivered);
    for (what, result) in [
        (
            "tampered",
            reports.record(&rooms, &timestamp, &signature, &tampered).await,
        ),
        (
            "another secret",
            stranger.record(&rooms, &timestamp, &signature, &delivered).await,
        ),
        (
            "an hour old",
            reports.record(&rooms, &stale, &stale_signature, &delivered).await,
        ),
        ("unsigned", reports.record(&rooms, &timestamp, "", &delivered).await),
        ("not hex", reports.record(&rooms, &timestamp, "v1=zz", &delivered).await),
    ] {
        assert!(matches!(result, Err(Error::Forbidden)), "{what}: {result:?}");
    }
    assert_eq!(deliveries(&rooms, room, invite).await.len(), 2, "nothing recorded");

    // Signed but not a report, or a status that means nothing.
    let (unknown, signature) = report(json!({
        "version": 1, "room": room, "invite": invite, "status": "teleported"
    }));
    let result = reports.record(&rooms, &timestamp, &signature, &unknown).await;
    assert!(
        matches!(result, Err(Error::Invalid { field: "status", .. })),
        "{result:?}"
    );
    let (other, signature) = report(json!({
        "version": 1, "room": room, "invite": InviteId::from_u128(9), "status": "delivered"
    }));
    let result = reports.record(&rooms, &timestamp, &signature, &other).await;
    assert!(matches!(result, Err(Error::NotFound { .. })), "{result:?}");
    let garbage = b"not json".to_vec();
    let signature = expected_signature(&timestamp, &garbage);
    let result = reports.record(&rooms, &timestamp, &signature, &garbage).await;
    assert!(
        matches!(result, Err(Error::Invalid { field: "body", .. })),
        "{result:?}"
    );
    assert!(!format!("{reports:?}").contains(GATEWAY_SECRET));
}

async fn gateway_backend() -> MockBackend {
    MockBackend::start(
        GATEWAY_MESSAGES,
        |server| Arc::new(gateway(server)),
        |answer| match answer {
            Answer::Busy => ResponseTemplate::new(503).insert_header("Retry-After", "5"),
            Answer::InvalidNumber => ResponseTemplate::new(422).set_body_json(json!({ "error": "invalid number" })),
            _ => ResponseTemplate::new(200).set_body_json(json!({ "id": "gw-accepted" })),
        },
        |request| {
            let message: GatewayMessage = serde_json::from_slice(&request.body).unwrap();
            Received {
                to: message.to,
                text: message.text,
            }
        },
    )
    .await
}

collab_notify::sms_provider_conformance!(gateway_backend);
