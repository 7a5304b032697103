//! Routes that exist only when the server has what they serve, in the real server: the Dev inbox
//! in dev mode (a development notifier is in use), Twilio's status callback with a Twilio
//! account, Vonage's delivery receipts with a Vonage signature secret. Without, each is not found
//! and not in the OpenAPI document.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::process::Command;

use axum::http::StatusCode;
use common::process::ServerProcess;

/// What a server started with `configure` answers on an optional route, and whether its OpenAPI
/// document lists it.
#[derive(Debug, PartialEq)]
struct Route {
    status: StatusCode,
    code: String,
    documented: bool,
}

/// The Dev inbox (as a signed-in agent), the Twilio callback and the Vonage receipt (both
/// unsigned) of a server started with `configure`.
async fn optional_routes(configure: impl FnOnce(&mut Command)) -> (Route, Route, Route) {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(|command| {
        command.arg("--data").arg(dir.path());
        configure(command);
    });
    let http = server.http();
    let openapi = http.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(openapi.status, StatusCode::OK);
    let route = |path: &str, reply: common::Reply| Route {
        status: reply.status,
        code: reply.code(),
        documented: openapi.json()["paths"].get(path).is_some(),
    };
    let agent = http.sign_in("agent@example.com", "dev").await;
    let inbox = http.call("GET", "/api/dev/inbox", Some(&agent), None).await;
    let callback = http
        .call("POST", "/api/callbacks/twilio?room=r&invite=i", None, None)
        .await;
    let receipt = http
        .call("GET", "/api/callbacks/vonage?client-ref=r:i&sig=0", None, None)
        .await;
    (
        route("/api/dev/inbox", inbox),
        route("/api/callbacks/twilio", callback),
        route("/api/callbacks/vonage", receipt),
    )
}

fn there(status: StatusCode, code: &str) -> Route {
    Route {
        status,
        code: code.to_owned(),
        documented: true,
    }
}

fn not_found() -> Route {
    Route {
        status: StatusCode::NOT_FOUND,
        code: "not_found".to_owned(),
        documented: false,
    }
}

/// Email over SMTP, so that no notifier is a development one; nothing is sent in these tests.
fn with_smtp(command: &mut Command) {
    command
        .env("COLLAB_SMTP_HOST", "127.0.0.1")
        .env("COLLAB_EMAIL_FROM", "collab@example.com");
}

#[tokio::test]
async fn the_dev_inbox_is_there_when_invites_go_to_it() {
    // The defaults: email to the Dev inbox, no SMS.
    let (inbox, callback, receipt) = optional_routes(|_| {}).await;
    assert_eq!(inbox, there(StatusCode::OK, ""));
    assert_eq!(callback, not_found());
    assert_eq!(receipt, not_found());
}

#[tokio::test]
async fn sms_to_the_dev_inbox_is_dev_mode_too() {
    let (inbox, _, _) = optional_routes(|command| {
        with_smtp(command);
        command.env("COLLAB_SMS", "dev");
    })
    .await;
    assert_eq!(inbox, there(StatusCode::OK, ""));
}

#[tokio::test]
async fn without_dev_mode_the_dev_inbox_is_not_found() {
    let (inbox, _, _) = optional_routes(with_smtp).await;
    assert_eq!(inbox, not_found());
}

#[tokio::test]
async fn the_twilio_callback_is_there_with_a_twilio_account() {
    let (inbox, callback, _) = optional_routes(|command| {
        with_smtp(command);
        command
            .env("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef")
            .env("TWILIO_AUTH_TOKEN", "twilio-auth-token")
            .env("COLLAB_SMS_FROM", "+15005550006");
    })
    .await;
    assert_eq!(inbox, not_found());
    // There, and refusing a request without Twilio's signature.
    assert_eq!(callback, there(StatusCode::FORBIDDEN, "forbidden"));
}

/// A Vonage account, with `configure`'s extra settings.
fn with_vonage(command: &mut Command) {
    with_smtp(command);
    command
        .env("VONAGE_API_KEY", "abcd1234")
        .env("VONAGE_API_SECRET", "vonage-api-secret")
        .env("COLLAB_SMS_FROM", "AcmeRooms");
}

#[tokio::test]
async fn vonage_receipts_are_there_with_a_signature_secret() {
    let (_, callback, receipt) = optional_routes(|command| {
        with_vonage(command);
        command
            .env("VONAGE_SIGNATURE_SECRET", "vonage-signature-secret")
            .env("VONAGE_SIGNATURE_METHOD", "sha256");
    })
    .await;
    assert_eq!(callback, not_found());
    // There, and refusing a receipt without Vonage's signature.
    assert_eq!(receipt, there(StatusCode::FORBIDDEN, "forbidden"));
    // Without the signature secret, Vonage is not asked for receipts and the route is absent.
    let (_, _, receipt) = optional_routes(with_vonage).await;
    assert_eq!(receipt, not_found());
}
