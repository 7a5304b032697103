//! Provider callbacks and signatures: Twilio's signed status callbacks (form body, URL query,
//! `X-Twilio-Signature`), the signature collab puts on requests to an in-house SMS gateway, and
//! a provider's `Retry-After` header.
//!
//! Input: four fields separated by 0xFF: the auth token, the URL Twilio called, the form body,
//! the signature header (also read as a `Retry-After` value).
//! Properties: a signature is accepted exactly when it decodes to the HMAC of the URL and the
//! sorted parameters, so a wrong, truncated or altered one, one made with another token, or one
//! for another URL or body is refused as `Forbidden` before anything in the callback is read;
//! a verified report restates the URL's room and invite and the form's `MessageSid` and
//! `MessageStatus`, with the delivery news Twilio's status means; the gateway signature is
//! `v1=` and 64 lower-case hex digits that change with the body and the timestamp.
#![no_main]

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use collab_core::{DeliveryStatus, Error, InviteId, RoomId};
use collab_fuzz::fields;
use collab_notify::SecretString;
use collab_notify::gateway::signature as gateway_signature;
use collab_notify::http::retry_after;
use collab_notify::twilio::{TwilioWebhook, delivery_status, parse_form};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [token, url, body, signature] = fields::<4>(data);
    let webhook = TwilioWebhook::new(SecretString::from(token.clone()));
    let params = parse_form(body.as_bytes());
    let valid = webhook.signature(&url, &params).expect("any token is an HMAC key");
    let tag = BASE64.decode(&valid).expect("a signature is Base64");

    // The fuzzed signature: accepted exactly when it is the right tag.
    let presented = BASE64.decode(signature.trim()).ok();
    let accepted = webhook.verify(&url, &params, &signature);
    assert_eq!(
        accepted.is_ok(),
        presented.as_deref() == Some(tag.as_slice()),
        "{signature:?}"
    );
    if let Err(e) = &accepted {
        assert!(matches!(e, Error::Forbidden), "{e:?}");
        let report = webhook.status_report(&url, &params, &signature);
        assert!(
            matches!(report, Err(Error::Forbidden)),
            "an unverified callback was read: {report:?}"
        );
    }

    // The right signature, and every near miss of it.
    assert!(webhook.verify(&url, &params, &valid).is_ok());
    let mut reversed = params.clone();
    reversed.reverse();
    assert!(
        webhook.verify(&url, &reversed, &valid).is_ok(),
        "parameter order matters"
    );
    for bit in [0, 7, 8 * tag.len() - 1] {
        let mut flipped = tag.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            webhook.verify(&url, &params, &BASE64.encode(&flipped)).is_err(),
            "bit {bit} flipped"
        );
    }
    assert!(
        webhook
            .verify(&url, &params, &BASE64.encode(&tag[..tag.len() - 1]))
            .is_err(),
        "a truncated tag"
    );
    assert!(webhook.verify(&url, &params, "").is_err(), "no signature");
    let other_token = TwilioWebhook::new(SecretString::from(format!("{token}x")));
    assert!(
        other_token.verify(&url, &params, &valid).is_err(),
        "another account's token"
    );
    assert!(
        webhook.verify(&format!("{url}x"), &params, &valid).is_err(),
        "another URL"
    );
    let mut extra = params.clone();
    extra.push(("MessageStatus".to_owned(), "delivered".to_owned()));
    assert!(webhook.verify(&url, &extra, &valid).is_err(), "an added parameter");

    if let Ok(report) = webhook.status_report(&url, &params, &valid) {
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let query = parse_form(query.as_bytes());
        let first =
            |list: &[(String, String)], name: &str| list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(
            first(&query, "room").and_then(|r| r.parse::<RoomId>().ok()),
            Some(report.room)
        );
        assert_eq!(
            first(&query, "invite").and_then(|i| i.parse::<InviteId>().ok()),
            Some(report.invite)
        );
        assert_eq!(first(&params, "MessageSid"), Some(report.message_sid.clone()));
        assert_eq!(first(&params, "MessageStatus"), Some(report.message_status.clone()));
        let code = first(&params, "ErrorCode").filter(|c| !c.is_empty());
        check_status(
            &report.message_status,
            &report.message_sid,
            code.as_deref(),
            report.status,
        );
    }

    check_gateway_signature(&token, &body);
    check_retry_after(&signature);
});

fn check_status(message_status: &str, sid: &str, code: Option<&str>, status: Option<DeliveryStatus>) {
    assert_eq!(status, delivery_status(message_status, sid, code));
    match (message_status, status) {
        ("sent", Some(DeliveryStatus::Sent { provider_id })) => assert_eq!(provider_id.as_deref(), Some(sid)),
        ("delivered" | "read", Some(DeliveryStatus::Delivered)) => {}
        ("undelivered" | "failed" | "canceled", Some(DeliveryStatus::Failed { reason, .. })) => {
            assert!(reason.starts_with("twilio: "), "{reason:?}");
        }
        ("sent" | "delivered" | "read" | "undelivered" | "failed" | "canceled", other) => {
            panic!("{message_status:?} means {other:?}")
        }
        (_, None) => {}
        (_, Some(other)) => panic!("{message_status:?} is no delivery news, yet means {other:?}"),
    }
}

fn check_gateway_signature(secret: &str, body: &str) {
    let secret = SecretString::from(secret.to_owned());
    let signed = gateway_signature(&secret, 1_700_000_000, body.as_bytes()).expect("any secret is an HMAC key");
    let hex = signed.strip_prefix("v1=").expect("a versioned signature");
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{signed:?}"
    );
    assert_eq!(
        gateway_signature(&secret, 1_700_000_000, body.as_bytes()).ok(),
        Some(signed.clone())
    );
    assert_ne!(
        gateway_signature(&secret, 1_700_000_001, body.as_bytes()).ok(),
        Some(signed.clone())
    );
    assert_ne!(
        gateway_signature(&secret, 1_700_000_000, format!("{body} ").as_bytes()).ok(),
        Some(signed)
    );
}

fn check_retry_after(value: &str) {
    let Ok(value) = HeaderValue::from_str(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::RETRY_AFTER, value.clone());
    if let Some(wait) = retry_after(&headers)
        && let Ok(seconds) = value.to_str().unwrap_or_default().trim().parse::<u64>()
    {
        assert_eq!(wait, Duration::from_secs(seconds));
    }
}
