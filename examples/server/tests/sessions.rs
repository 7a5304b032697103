//! Sessions and logs: agent sessions end when idle, when old and at their own sign-out (not at
//! another device's sign-in), and their open live streams with them, as a customer's do when
//! their session expires; the Dev inbox never logs the bearer links it holds.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::{Body, BodyDataStream};
use axum::http::{Request, StatusCode, header};
use collab_core::Timestamp;
use collab_core::rooms::RoomsConfig;
use collab_core::time::ManualClock;
use collab_notify::DevInbox;
use collab_server::auth::Agents;
use collab_server::streams::StreamLimits;
use common::{Server, agents};
use futures_util::StreamExt;
use serde_json::json;
use tower::ServiceExt;

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

/// How often the live streams of [`live_server`] check their caller's session.
const CHECK: Duration = Duration::from_millis(100);

/// A server whose live streams check their caller's session every [`CHECK`].
async fn live_server(agents: Agents, config: RoomsConfig) -> Server {
    let streams = StreamLimits::default().with_session_check(CHECK).unwrap();
    Server::start_with_streams(agents, streams, |builder| builder.config(config)).await
}

/// `room`'s live stream, opened with `cookie` (as the customer with `as_customer`): its body.
async fn open_live(server: &Server, room: &str, cookie: &str, as_customer: bool) -> BodyDataStream {
    let mut request = Request::builder()
        .uri(format!("/api/rooms/{room}/live"))
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::COOKIE, cookie);
    if as_customer {
        request = request.header("x-collab-as", "customer");
    }
    let response = server
        .app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().into_data_stream()
}

/// Whether `stream` ends within `within` (what it sends meanwhile is read and dropped).
async fn ends_within(stream: &mut BodyDataStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("the stream failed: {e}"),
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn signing_out_ends_the_live_streams_of_that_sign_in_and_no_other() {
    let server = live_server(agents(), RoomsConfig::default()).await;
    let laptop = server.agent("ada", "secret").await;
    // A copy of the laptop's cookie, say a stolen one, and Ada's sign-in on her phone.
    let copy = laptop.clone();
    let phone = server.agent("ada", "secret").await;
    let room = server.create_room(&laptop).await;
    let mut stolen = open_live(&server, &room, &copy, false).await;
    let mut other = open_live(&server, &room, &phone, false).await;
    assert!(!ends_within(&mut stolen, 3 * CHECK).await, "ended while signed in");

    let out = server.call("DELETE", "/api/session", Some(&laptop), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(
        ends_within(&mut stolen, Duration::from_secs(5)).await,
        "the stream of a signed-out cookie stays open"
    );
    // The phone's sign-in goes on, and so does its stream.
    assert!(
        !ends_within(&mut other, 5 * CHECK).await,
        "another sign-in's stream ended"
    );
    assert_eq!(me(&server, &phone).await, StatusCode::OK);
}

#[tokio::test]
async fn an_agent_s_live_stream_ends_when_the_session_expires_and_does_not_keep_it_alive() {
    let clock = Arc::new(ManualClock::new(Timestamp::from(std::time::SystemTime::now())));
    let agents = agents()
        .with_lifetimes(10 * MINUTE, 1000 * MINUTE)
        .with_clock(clock.clone());
    let server = live_server(agents, RoomsConfig::default()).await;
    let ada = server.agent("ada", "secret").await;
    let room = server.create_room(&ada).await;
    let mut stream = open_live(&server, &room, &ada, false).await;
    clock.advance(9 * MINUTE);
    // Checked several times meanwhile: still signed in, and the checks are no activity.
    assert!(!ends_within(&mut stream, 5 * CHECK).await, "ended while signed in");
    clock.advance(2 * MINUTE);
    assert!(
        ends_within(&mut stream, Duration::from_secs(5)).await,
        "the stream of an expired sign-in stays open"
    );
    assert_eq!(me(&server, &ada).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_customer_s_live_stream_ends_when_the_session_expires() {
    let hour = 60 * MINUTE;
    let config = RoomsConfig::default().with_customer_sessions(hour, 24 * hour).unwrap();
    let server = live_server(agents(), config).await;
    let ada = server.agent("ada", "secret").await;
    let (room, customer) = server.room_for(&ada, "Grace", "Hopper").await;
    let mut stream = open_live(&server, &room, &customer, true).await;
    assert!(
        !ends_within(&mut stream, 3 * CHECK).await,
        "ended while the session lasts"
    );
    server.clock.advance(2 * hour);
    assert!(
        ends_within(&mut stream, Duration::from_secs(5)).await,
        "the stream of an expired customer session stays open"
    );
    assert_eq!(me(&server, &customer).await, StatusCode::FORBIDDEN);
}
