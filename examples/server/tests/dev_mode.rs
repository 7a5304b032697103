//! The Dev inbox exists only in dev mode, when a development notifier is in use: the real
//! server with invites going to it answers `/api/dev/inbox` and documents it; with real
//! notifiers it does neither.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::process::Command;

use axum::http::StatusCode;
use common::process::ServerProcess;

/// What a server started with `configure` answers a signed-in agent on `/api/dev/inbox`, and
/// whether its OpenAPI document lists the route.
async fn dev_inbox(configure: impl FnOnce(&mut Command)) -> (StatusCode, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(|command| {
        command.arg("--data").arg(dir.path());
        configure(command);
    });
    let http = server.http();
    let agent = http.sign_in("agent@example.com", "dev").await;
    let inbox = http.call("GET", "/api/dev/inbox", Some(&agent), None).await;
    let openapi = http.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(openapi.status, StatusCode::OK);
    let documented = openapi.json()["paths"].get("/api/dev/inbox").is_some();
    (inbox.status, inbox.code(), documented)
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
    let (status, _, documented) = dev_inbox(|_| {}).await;
    assert_eq!((status, documented), (StatusCode::OK, true));
}

#[tokio::test]
async fn sms_to_the_dev_inbox_is_dev_mode_too() {
    let (status, _, documented) = dev_inbox(|command| {
        with_smtp(command);
        command.env("COLLAB_SMS", "dev");
    })
    .await;
    assert_eq!((status, documented), (StatusCode::OK, true));
}

#[tokio::test]
async fn without_dev_mode_the_dev_inbox_is_not_found() {
    let (status, code, documented) = dev_inbox(with_smtp).await;
    assert_eq!(
        (status, code.as_str(), documented),
        (StatusCode::NOT_FOUND, "not_found", false)
    );
}
