//! Twilio SMS against an in-process server speaking its Messages API; status callbacks.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use collab_core::notify::{Notifier, NotifyError};
use collab_core::*;
use collab_notify::ProviderError;
use collab_notify::testing::{Answer, Received};
use collab_notify::twilio::{INVALID_NUMBER_CODES, TwilioAuth, TwilioSender, TwilioSms, TwilioWebhook, parse_form};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

const CALLBACK: &str = "https://rooms.example.com/hooks/twilio";

fn twilio(server: &MockServer) -> TwilioSms {
    TwilioSms::new(Providers::at(server).status_callback(CALLBACK).twilio()).unwrap()
}

fn created(sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({ "sid": sid, "status": "queued" }))
}

fn refused(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code, "message": message, "more_info": "https://www.twilio.com/docs/errors", "status": status
    }))
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn a_message_is_a_form_post_with_basic_auth_and_the_callback() {
    let server = server_answering(TWILIO_MESSAGES, created("SM0001")).await;
    let notification = sms("+447911123456");
    let receipt = twilio(&server).send(&notification).await.expect("sent");
    assert_eq!(receipt.provider_id.as_deref(), Some("SM0001"));

    let requests = requests(&server).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.url.path(), TWILIO_MESSAGES);
    assert_eq!(
        request.headers["authorization"],
        basic(TWILIO_SID, TWILIO_TOKEN).as_str()
    );
    assert_eq!(request.headers["content-type"], "application/x-www-form-urlencoded");
    let form = form(request);
    assert_eq!(field(&form, "To"), Some("+447911123456"), "E.164");
    assert_eq!(field(&form, "From"), Some("+15005550006"));
    assert_eq!(field(&form, "Body"), Some(notification.text.as_str()));
    assert_eq!(field(&form, "MessagingServiceSid"), None);
    let callback = field(&form, "StatusCallback").unwrap();
    assert_eq!(
        callback,
        format!("{CALLBACK}?room={}&invite={}", notification.room, notification.invite)
    );
}

#[tokio::test]
async fn an_api_key_and_a_messaging_service() {
    let server = server_answering(TWILIO_MESSAGES, created("SM0002")).await;
    let key = "SK0123456789abcdef0123456789abcdef";
    let config = Providers::at(&server).twilio_as(
        TwilioAuth::ApiKey {
            sid: key.into(),
            secret: "api-key-secret".into(),
        },
        TwilioSender::MessagingService("MG0123456789abcdef0123456789abcdef".into()),
    );
    TwilioSms::new(config)
        .unwrap()
        .send(&sms("+447911123456"))
        .await
        .unwrap();
    let request = &requests(&server).await[0];
    assert_eq!(request.url.path(), TWILIO_MESSAGES, "the account SID stays in the path");
    assert_eq!(request.headers["authorization"], basic(key, "api-key-secret").as_str());
    let form = form(request);
    assert_eq!(
        field(&form, "MessagingServiceSid"),
        Some("MG0123456789abcdef0123456789abcdef")
    );
    assert_eq!(field(&form, "From"), None);
    assert_eq!(field(&form, "StatusCallback"), None, "none configured");
}

#[tokio::test]
async fn invalid_number_codes_are_permanent_with_the_reason() {
    for code in INVALID_NUMBER_CODES {
        let server = server_answering(
            TWILIO_MESSAGES,
            refused(400, code, "The 'To' number +447911123456 is not valid."),
        )
        .await;
        let error = sms_error(&twilio(&server)).await;
        let NotifyError::Permanent { source } = &error else {
            panic!("{code}: {error:?}")
        };
        let provider = source.downcast_ref::<ProviderError>().expect("a ProviderError");
        assert_eq!(provider.status, Some(400));
        assert_eq!(provider.code.as_deref(), Some(code.to_string().as_str()));
        assert!(source.to_string().contains("invalid or unreachable number"), "{source}");
    }
}

#[tokio::test]
async fn other_client_errors_are_permanent() {
    for (status, code) in [(400, 21602u32), (401, 20003), (403, 20008), (404, 20404)] {
        let server = server_answering(TWILIO_MESSAGES, refused(status, code, "refused")).await;
        let error = sms_error(&twilio(&server)).await;
        assert!(matches!(error, NotifyError::Permanent { .. }), "{status}: {error:?}");
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_transient_with_retry_after() {
    let server = server_answering(
        TWILIO_MESSAGES,
        refused(429, 20429, "Too Many Requests").insert_header("Retry-After", "30"),
    )
    .await;
    let error = sms_error(&twilio(&server)).await;
    assert!(
        matches!(error, NotifyError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(30)),
        "{error:?}"
    );
    for status in [500, 502, 503] {
        let server = server_answering(TWILIO_MESSAGES, ResponseTemplate::new(status)).await;
        let error = sms_error(&twilio(&server)).await;
        assert!(
            matches!(error, NotifyError::Transient { retry_after: None, .. }),
            "{status}: {error:?}"
        );
    }
}

#[tokio::test]
async fn an_answer_past_the_timeout_is_ambiguous() {
    let server = server_answering(TWILIO_MESSAGES, created("SM0003").set_delay(Duration::from_secs(3))).await;
    let config = Providers::at(&server)
        .status_callback(CALLBACK)
        .timeout(Duration::from_millis(300))
        .twilio();
    let error = sms_error(&TwilioSms::new(config).unwrap()).await;
    assert!(matches!(error, NotifyError::Ambiguous { .. }), "{error:?}");
}

#[tokio::test]
async fn no_connection_is_transient() {
    let config = Providers::at_url(&format!("http://127.0.0.1:{}", unused_port())).twilio();
    let error = sms_error(&TwilioSms::new(config).unwrap()).await;
    assert!(matches!(error, NotifyError::Transient { .. }), "{error:?}");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_errors() {
    let server = server_answering(TWILIO_MESSAGES, ResponseTemplate::new(503)).await;
    let provider = twilio(&server);
    assert!(!format!("{provider:?}").contains(TWILIO_TOKEN));
    let key = TwilioAuth::ApiKey {
        sid: "SK0123456789abcdef0123456789abcdef".into(),
        secret: "api-key-secret".into(),
    };
    assert!(!format!("{key:?}").contains("api-key-secret"));
    let error = sms_error(&provider).await;
    assert!(!format!("{error:?} {error}").contains(TWILIO_TOKEN));
    assert!(!format!("{:?}", TwilioWebhook::new(TWILIO_TOKEN.into())).contains(TWILIO_TOKEN));
}

// Status callbacks.

#[test]
fn twilio_s_published_signature_example_verifies() {
    // From Twilio's request-validation documentation.
    let webhook = TwilioWebhook::new("12345".into());
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let params = parse_form(
        b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212",
    );
    assert_eq!(webhook.signature(url, &params).unwrap(), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    assert!(webhook.verify(url, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=").is_ok());
}

/// The signature computed here, independently of the crate.
fn sign(url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TWILIO_TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn body(params: &[(&str, &str)]) -> Vec<u8> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        form.append_pair(name, value);
    }
    form.finish().into_bytes()
}

#[tokio::test]
async fn an_invite_retried_twice_is_sent_once_and_its_callbacks_are_verified() {
    // Busy, rate limited, then accepted: three calls in all.
    let server = server_answering(TWILIO_MESSAGES, created("SM0123")).await;
    answer_once(&server, TWILIO_MESSAGES, ResponseTemplate::new(503), 1).await;
    let busy = refused(429, 20429, "Too Many Requests").insert_header("Retry-After", "120");
    answer_once(&server, TWILIO_MESSAGES, busy, 2).await;
    let clock = clock();
    let rooms = builder(&clock).sms(twilio(&server)).build();
    let (room, invite) = sms_invite(&rooms, "+447911123456").await;

    let mut reports = Vec::new();
    for _ in 0..4 {
        reports.push(rooms.dispatch_due().await.unwrap());
        clock.advance(HOUR);
    }
    assert_eq!(reports.iter().map(|r| r.retried).sum::<usize>(), 2, "{reports:?}");
    assert_eq!(reports.iter().map(|r| r.sent).sum::<usize>(), 1, "{reports:?}");
    let requests = requests(&server).await;
    assert_eq!(requests.len(), 3, "two refusals, one send, nothing after");

    // Twilio reports delivery to the callback URL it was given.
    let form = form(&requests[2]);
    let url = field(&form, "StatusCallback").unwrap().to_owned();
    let webhook = TwilioWebhook::new(TWILIO_TOKEN.into());
    let params = [
        ("MessageSid", "SM0123"),
        ("MessageStatus", "delivered"),
        ("AccountSid", TWILIO_SID),
        ("To", "+447911123456"),
    ];
    let signature = sign(&url, &params);
    let report = webhook.record(&rooms, &url, &body(&params), &signature).await.unwrap();
    assert_eq!((report.room, report.invite), (room, invite));
    assert_eq!(report.status, Some(DeliveryStatus::Delivered));

    // A replay is accepted and records nothing; a late "sent" does not move the invite back.
    webhook.record(&rooms, &url, &body(&params), &signature).await.unwrap();
    let sent = [("MessageSid", "SM0123"), ("MessageStatus", "sent")];
    webhook
        .record(&rooms, &url, &body(&sent), &sign(&url, &sent))
        .await
        .unwrap();

    let news = deliveries(&rooms, room, invite).await;
    assert_eq!(
        news,
        [
            DeliveryStatus::Sent {
                provider_id: Some("SM0123".into())
            },
            DeliveryStatus::Delivered
        ],
        "in order, once each"
    );
    let kinds: Vec<&str> = events(&rooms, room)
        .await
        .iter()
        .map(|e| e.data.type_name())
        .filter(|k| k.starts_with("invite") || *k == "customer_invited")
        .collect();
    assert_eq!(kinds, ["customer_invited", "invite_delivery", "invite_delivery"]);
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.invite(invite).unwrap().status, InviteStatus::Delivered);
}

#[tokio::test]
async fn tampered_callbacks_are_refused_and_record_nothing() {
    let clock = clock();
    let server = server_answering(TWILIO_MESSAGES, created("SM0124")).await;
    let rooms = builder(&clock).sms(twilio(&server)).build();
    let (room, invite) = sms_invite(&rooms, "+447911123456").await;
    rooms.dispatch_due().await.unwrap();
    let url = format!("{CALLBACK}?room={room}&invite={invite}");
    let params = [("MessageSid", "SM0124"), ("MessageStatus", "delivered")];
    let signature = sign(&url, &params);
    let webhook = TwilioWebhook::new(TWILIO_TOKEN.into());

    let failed = [("MessageSid", "SM0124"), ("MessageStatus", "failed")];
    let other_invite = format!("{CALLBACK}?room={room}&invite={}", InviteId::from_u128(7));
    let attempts: [(&str, Vec<u8>, &str); 5] = [
        ("a changed status", body(&failed), &signature),
        ("another invite in the URL", body(&params), &signature),
        ("no signature", body(&params), ""),
        ("garbage", body(&params), "not base64!"),
        ("another key", body(&params), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ];
    for (i, (what, body, signature)) in attempts.iter().enumerate() {
        let target = if i == 1 { &other_invite } else { &url };
        let result = webhook.record(&rooms, target, body, signature).await;
        assert!(matches!(result, Err(Error::Forbidden)), "{what}: {result:?}");
    }
    let wrong_token = TwilioWebhook::new("another-token".into());
    let result = wrong_token.record(&rooms, &url, &body(&params), &signature).await;
    assert!(matches!(result, Err(Error::Forbidden)));
    assert_eq!(
        deliveries(&rooms, room, invite).await,
        [DeliveryStatus::Sent {
            provider_id: Some("SM0124".into())
        }],
        "nothing recorded"
    );
    // The genuine one goes through.
    webhook.record(&rooms, &url, &body(&params), &signature).await.unwrap();
    assert_eq!(deliveries(&rooms, room, invite).await.len(), 2);
}

#[test]
fn callback_statuses_map_to_delivery_news() {
    use collab_notify::twilio::delivery_status;
    assert_eq!(delivery_status("queued", "SM1", None), None);
    assert_eq!(delivery_status("sending", "SM1", None), None);
    assert_eq!(
        delivery_status("sent", "SM1", None),
        Some(DeliveryStatus::Sent {
            provider_id: Some("SM1".into())
        })
    );
    assert_eq!(
        delivery_status("delivered", "SM1", None),
        Some(DeliveryStatus::Delivered)
    );
    assert_eq!(delivery_status("read", "SM1", None), Some(DeliveryStatus::Delivered));
    assert!(matches!(
        delivery_status("undelivered", "SM1", Some("30005")),
        Some(DeliveryStatus::Failed { permanent: true, reason }) if reason.contains("30005")
    ));
    assert!(matches!(
        delivery_status("undelivered", "SM1", Some("30003")),
        Some(DeliveryStatus::Failed { permanent: false, .. })
    ));
    assert!(matches!(
        delivery_status("failed", "SM1", None),
        Some(DeliveryStatus::Failed { permanent: false, .. })
    ));
}

#[tokio::test]
async fn a_callback_for_a_failure_shows_on_the_invite() {
    let clock = clock();
    let server = server_answering(TWILIO_MESSAGES, created("SM0125")).await;
    let rooms = builder(&clock).sms(twilio(&server)).build();
    let (room, invite) = sms_invite(&rooms, "+447911123456").await;
    rooms.dispatch_due().await.unwrap();
    let url = format!("{CALLBACK}?room={room}&invite={invite}");
    let params = [
        ("MessageSid", "SM0125"),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30006"),
    ];
    TwilioWebhook::new(TWILIO_TOKEN.into())
        .record(&rooms, &url, &body(&params), &sign(&url, &params))
        .await
        .unwrap();
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(
        state.invite(invite).unwrap().status,
        InviteStatus::Failed { permanent: true }
    );
}

#[tokio::test]
async fn callbacks_without_ids_are_invalid() {
    let webhook = TwilioWebhook::new(TWILIO_TOKEN.into());
    let url = CALLBACK;
    let params = [("MessageSid", "SM1"), ("MessageStatus", "delivered")];
    let params_owned: Vec<(String, String)> = params.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect();
    let result = webhook.status_report(url, &params_owned, &sign(url, &params));
    assert!(
        matches!(result, Err(Error::Invalid { field: "room", .. })),
        "{result:?}"
    );
}

// The conformance kit, on a Twilio speaking server.

async fn twilio_backend() -> MockBackend {
    MockBackend::start(
        TWILIO_MESSAGES,
        |server| Arc::new(twilio(server)),
        |answer| match answer {
            Answer::Busy => refused(429, 20429, "Too Many Requests").insert_header("Retry-After", "5"),
            Answer::InvalidNumber => refused(400, 21211, "The 'To' number is not a valid phone number."),
            _ => created("SM9999"),
        },
        |request| {
            let form = form(request);
            Received {
                to: field(&form, "To").unwrap_or_default().to_owned(),
                text: field(&form, "Body").unwrap_or_default().to_owned(),
            }
        },
    )
    .await
}

collab_notify::sms_provider_conformance!(twilio_backend);
