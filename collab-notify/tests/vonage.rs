//! Vonage SMS against an in-process server speaking its SMS API (HTTP 200 even on failure).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use collab_core::notify::{Notifier, NotifyError};
use collab_core::*;
use collab_notify::ProviderError;
use collab_notify::testing::{Answer, Received};
use collab_notify::vonage::{SignatureMethod, VonageReceipts, VonageSms, delivery_status};
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
        Some(format!("{}:{}", notification.room, notification.invite).as_str())
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
    assert_eq!(
        field(&form, "callback"),
        Some("https://rooms.example.com/hooks/vonage"),
        "as configured: the receipt names the invite in its signed client-ref"
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

// Delivery receipts.

const SIGNATURE_SECRET: &str = "vonage-signature-secret";

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect()
}

#[test]
fn each_signature_method_matches_an_independent_implementation() {
    // Computed with Python's hashlib and hmac over the same parameters ("&" and "=" in a value
    // become "_"), not with this crate.
    let params = owned(&[
        ("messageId", "0A0000001"),
        ("status", "delivered"),
        ("client-ref", "R:I"),
        ("text", "a&b=c"),
        ("timestamp", "1764950000"),
        ("nonce", "n1"),
    ]);
    let expected = [
        (SignatureMethod::Md5Hash, "0c6ecb13e5c31d9d38972a0f18241071"),
        (SignatureMethod::Md5Hmac, "724c14c3414ceca2eb28355caf86d5e8"),
        (SignatureMethod::Sha1Hmac, "bf20cc47795087b8efd63c367c735c0660b42ee1"),
        (
            SignatureMethod::Sha256Hmac,
            "ae4fc1c017ba270f1328368d341cd3680670d88ba5a6cfd82112165d374f7da3",
        ),
        (
            SignatureMethod::Sha512Hmac,
            "dffe4198aa879a3b0c559ae8d887a72fd44ad3eb06fd9c50145ec8f75a6574ae11b3b6816da593b014a1b8974c69dfde1033ea2182ec5553a5e2a882be020b4d",
        ),
    ];
    for (method, signature) in expected {
        let receipts = VonageReceipts::new(SIGNATURE_SECRET.into(), method);
        assert_eq!(receipts.signature(&params).unwrap(), signature, "{method:?}");
        let mut signed = params.clone();
        signed.push(("sig".into(), signature.to_ascii_uppercase()));
        assert!(receipts.verify(&signed).is_ok(), "{method:?}, upper-case hex");
    }
    assert_eq!(SignatureMethod::parse("SHA256").unwrap(), SignatureMethod::Sha256Hmac);
    assert!(matches!(
        SignatureMethod::parse("crc32"),
        Err(Error::Invalid {
            field: "signature_method",
            ..
        })
    ));
    let receipts = VonageReceipts::new(SIGNATURE_SECRET.into(), SignatureMethod::Sha256Hmac);
    assert!(!format!("{receipts:?}").contains(SIGNATURE_SECRET));
}

/// A receipt for `client_ref` as Vonage signs it with HMAC-SHA256.
fn receipt(client_ref: &str, status: &str, error_code: &str) -> Vec<(String, String)> {
    let mut params = owned(&[
        ("msisdn", "447911123456"),
        ("to", VONAGE_FROM),
        ("network-code", "23410"),
        ("messageId", "0A0000000"),
        ("price", "0.03330000"),
        ("status", status),
        ("scts", "2612041530"),
        ("err-code", error_code),
        ("api-key", VONAGE_KEY),
        ("client-ref", client_ref),
        ("message-timestamp", "2026-12-04 15:30:00"),
        ("timestamp", "1796398200"),
        ("nonce", "5a1b2c3d-0000-4000-8000-000000000001"),
    ]);
    let receipts = VonageReceipts::new(SIGNATURE_SECRET.into(), SignatureMethod::Sha256Hmac);
    let sig = receipts.signature(&params).unwrap();
    params.push(("sig".into(), sig));
    params
}

#[tokio::test]
async fn a_signed_receipt_is_recorded_on_its_invite_once() {
    let server = server_answering(VONAGE_MESSAGES, parts(&[("0", None)])).await;
    let config = Providers::at(&server)
        .status_callback("https://rooms.example.com/hooks/vonage")
        .vonage();
    let clock = clock();
    let rooms = builder(&clock).sms(VonageSms::new(config).unwrap()).build();
    let (room, invite) = sms_invite(&rooms, "+447911123456").await;
    rooms.dispatch_due().await.unwrap();
    // The client-ref Vonage echoes is the one the message was sent with.
    let sent = form(&requests(&server).await[0]);
    let client_ref = field(&sent, "client-ref").unwrap().to_owned();
    let receipts = VonageReceipts::new(SIGNATURE_SECRET.into(), SignatureMethod::Sha256Hmac);

    let delivered = receipt(&client_ref, "delivered", "0");
    let report = receipts.record(&rooms, &delivered).await.unwrap();
    assert_eq!((report.room, report.invite), (room, invite));
    assert_eq!(report.status, Some(DeliveryStatus::Delivered));
    // A replay, and a late "accepted", change nothing.
    receipts.record(&rooms, &delivered).await.unwrap();
    receipts
        .record(&rooms, &receipt(&client_ref, "accepted", "0"))
        .await
        .unwrap();
    assert_eq!(
        deliveries(&rooms, room, invite).await,
        [
            DeliveryStatus::Sent {
                provider_id: Some("0A0000000".into())
            },
            DeliveryStatus::Delivered
        ],
        "in order, once each"
    );
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.invite(invite).unwrap().status, InviteStatus::Delivered);
}

#[tokio::test]
async fn tampered_or_unsigned_receipts_are_refused_and_record_nothing() {
    let server = server_answering(VONAGE_MESSAGES, parts(&[("0", None)])).await;
    let clock = clock();
    let rooms = builder(&clock).sms(vonage(&server)).build();
    let (room, invite) = sms_invite(&rooms, "+447911123456").await;
    rooms.dispatch_due().await.unwrap();
    let client_ref = format!("{room}:{invite}");
    let receipts = VonageReceipts::new(SIGNATURE_SECRET.into(), SignatureMethod::Sha256Hmac);
    let genuine = receipt(&client_ref, "failed", "9");

    let changed = |name: &str, value: &str| -> Vec<(String, String)> {
        genuine
            .iter()
            .map(|(n, v)| (n.clone(), if n == name { value.to_owned() } else { v.clone() }))
            .collect()
    };
    let attempts = [
        ("a changed status", changed("status", "delivered")),
        (
            "another invite",
            changed("client-ref", &format!("{room}:{}", InviteId::from_u128(7))),
        ),
        (
            "no signature",
            genuine.iter().filter(|(n, _)| n != "sig").cloned().collect(),
        ),
        ("a garbage signature", changed("sig", "not hex at all")),
    ];
    for (what, params) in attempts {
        let result = receipts.record(&rooms, &params).await;
        assert!(matches!(result, Err(Error::Forbidden)), "{what}: {result:?}");
    }
    let md5 = VonageReceipts::new(SIGNATURE_SECRET.into(), SignatureMethod::Md5Hash);
    assert!(
        matches!(md5.record(&rooms, &genuine).await, Err(Error::Forbidden)),
        "another method"
    );
    let stranger = VonageReceipts::new("another-secret".into(), SignatureMethod::Sha256Hmac);
    assert!(
        matches!(stranger.record(&rooms, &genuine).await, Err(Error::Forbidden)),
        "another secret"
    );
    assert_eq!(
        deliveries(&rooms, room, invite).await.len(),
        1,
        "only the send is recorded"
    );

    // The genuine one: an illegal number is a permanent failure.
    receipts.record(&rooms, &genuine).await.unwrap();
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(
        state.invite(invite).unwrap().status,
        InviteStatus::Failed { permanent: true }
    );
}

#[tokio::test]
async fn receipts_without_a_usable_client_ref_are_invalid() {
    let clock = clock();
    let rooms = builder(&clock).build();
    let receipts = VonageReceipts::new(SIGNATURE_SECRET.into(), SignatureMethod::Sha256Hmac);
    for client_ref in ["", "no-separator", "room:invite"] {
        let result = receipts.record(&rooms, &receipt(client_ref, "delivered", "0")).await;
        assert!(
            matches!(result, Err(Error::Invalid { .. })),
            "{client_ref:?}: {result:?}"
        );
    }
    let unknown = format!("{}:{}", RoomId::from_u128(1), InviteId::from_u128(2));
    let result = receipts.record(&rooms, &receipt(&unknown, "delivered", "0")).await;
    assert!(matches!(result, Err(Error::NotFound { .. })), "{result:?}");
}

#[test]
fn receipt_statuses_map_to_delivery_news() {
    assert_eq!(delivery_status("buffered", "M1", None), None);
    assert_eq!(delivery_status("unknown", "M1", None), None);
    assert_eq!(
        delivery_status("accepted", "M1", None),
        Some(DeliveryStatus::Sent {
            provider_id: Some("M1".into())
        })
    );
    assert_eq!(
        delivery_status("delivered", "M1", None),
        Some(DeliveryStatus::Delivered)
    );
    assert!(matches!(
        delivery_status("failed", "M1", Some("9")),
        Some(DeliveryStatus::Failed { permanent: true, reason }) if reason.contains("code 9")
    ));
    assert!(matches!(
        delivery_status("expired", "M1", Some("2")),
        Some(DeliveryStatus::Failed { permanent: false, .. })
    ));
    assert!(matches!(
        delivery_status("rejected", "M1", None),
        Some(DeliveryStatus::Failed { permanent: true, .. })
    ));
}

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
