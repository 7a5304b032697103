//! Sessions and logs: agent sessions end when idle, when old and at their own sign-out (not at
//! another device's sign-in); the Dev inbox never logs the bearer links it holds.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use collab_core::Timestamp;
use collab_core::time::ManualClock;
use collab_notify::DevInbox;
use common::{Server, agents};
use serde_json::json;

/// Where everything this test binary logs through `tracing` goes: a file, which the
/// subscriber writes and a test reads.
fn log_file() -> &'static Path {
    static FILE: OnceLock<tempfile::TempPath> = OnceLock::new();
    FILE.get_or_init(|| {
        let file = tempfile::NamedTempFile::new().unwrap();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(file.reopen().unwrap())
            .init();
        file.into_temp_path()
    })
}

#[tokio::test]
async fn the_dev_inbox_shows_links_but_never_logs_them() {
    let log_file = log_file();
    let dev = DevInbox::new(10);
    let server = Server::start_with(agents(), |builder| builder.email(dev.clone())).await;
    let ada = server.agent("ada", "secret").await;
    let room = server.create_room(&ada).await;
    let invite = json!({"channel": "email", "first_name": "Grace", "last_name": "Hopper",
        "identifier": "grace@example.com"});
    server.invite(&ada, &room, invite).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let message = loop {
        if let Some(message) = dev.latest_for("grace@example.com") {
            break message;
        }
        assert!(Instant::now() < deadline, "the invite never reached the Dev inbox");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let token = message.link.rsplit('/').next().unwrap().to_owned();
    assert_eq!(token.len(), 64, "{}", message.link);
    // The link works: it is a bearer secret.
    server.join(&token).await;

    let logs = std::fs::read_to_string(log_file).unwrap();
    let invite = message.invite.to_string();
    assert!(
        logs.lines()
            .any(|line| line.contains("collab_notify::dev") && line.contains(&invite)),
        "the Dev inbox logged nothing about invite {invite} (is the capture working?):\n{logs}"
    );
    assert!(!logs.contains(&token), "a log holds the invite's token:\n{logs}");
}

/// A server whose agents' sessions last `idle` without a request and `absolute` in all, timed
/// by the returned clock.
async fn server_with_lifetimes(idle: Duration, absolute: Duration) -> (Server, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from(std::time::SystemTime::now())));
    let agents = agents().with_lifetimes(idle, absolute).with_clock(clock.clone());
    (Server::start_with(agents, |builder| builder).await, clock)
}

async fn me(server: &Server, cookie: &str) -> StatusCode {
    server.call("GET", "/api/me", Some(cookie), None).await.status
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn an_agent_session_ends_after_its_idle_lifetime() {
    let (server, clock) = server_with_lifetimes(10 * MINUTE, 1000 * MINUTE).await;
    let ada = server.agent("ada", "secret").await;
    // Each request starts the idle time again.
    for _ in 0..3 {
        clock.advance(9 * MINUTE);
        assert_eq!(me(&server, &ada).await, StatusCode::OK);
    }
    clock.advance(10 * MINUTE);
    assert_eq!(me(&server, &ada).await, StatusCode::UNAUTHORIZED);
    // Ended for good, even if the clock were to go back.
    clock.set(Timestamp::from(std::time::SystemTime::now()));
    assert_eq!(me(&server, &ada).await, StatusCode::UNAUTHORIZED);
    // A new sign-in works.
    let again = server.agent("ada", "secret").await;
    assert_eq!(me(&server, &again).await, StatusCode::OK);
}

#[tokio::test]
async fn an_agent_session_ends_after_its_absolute_lifetime_however_busy() {
    let (server, clock) = server_with_lifetimes(10 * MINUTE, 30 * MINUTE).await;
    let ada = server.agent("ada", "secret").await;
    for _ in 0..5 {
        clock.advance(5 * MINUTE);
        assert_eq!(me(&server, &ada).await, StatusCode::OK);
    }
    clock.advance(5 * MINUTE);
    assert_eq!(me(&server, &ada).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_sign_in_leaves_other_devices_alone_and_a_sign_out_ends_only_its_own() {
    let server = Server::start().await;
    let laptop = server.agent("ada", "secret").await;
    let phone = server.agent("ada", "secret").await;
    assert_ne!(laptop, phone);
    assert_eq!(me(&server, &laptop).await, StatusCode::OK);
    assert_eq!(me(&server, &phone).await, StatusCode::OK);

    let out = server.call("DELETE", "/api/session", Some(&phone), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(me(&server, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&server, &laptop).await, StatusCode::OK);
}

#[tokio::test]
async fn default_lifetimes_keep_a_working_day_and_end_within_a_week() {
    let clock = Arc::new(ManualClock::new(Timestamp::from(std::time::SystemTime::now())));
    let server = Server::start_with(agents().with_clock(clock.clone()), |builder| builder).await;
    let ada = server.agent("ada", "secret").await;
    clock.advance(7 * 60 * MINUTE);
    assert_eq!(me(&server, &ada).await, StatusCode::OK);
    clock.advance(9 * 60 * MINUTE);
    assert_eq!(me(&server, &ada).await, StatusCode::UNAUTHORIZED);

    let bob = server.agent("bob", "hunter2").await;
    // 164 hours of use, then the week's end.
    for _ in 0..(7 * 24 / 4 - 1) {
        clock.advance(4 * 60 * MINUTE);
        assert_eq!(me(&server, &bob).await, StatusCode::OK);
    }
    clock.advance(4 * 60 * MINUTE);
    assert_eq!(me(&server, &bob).await, StatusCode::UNAUTHORIZED);
}
