//! Agents' sign-in over real HTTP on loopback (the server's own `serve`, which tells the app each
//! client's address): failed sign-ins lock an account, a lock holds whatever the password and
//! ends after its time, and one address's spray across accounts is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use collab_core::time::ManualClock;
use collab_core::{TenantId, Timestamp};
use collab_server::auth::{Agents, PasswordCost, SignInLimits};
use collab_server::serve::{ConnectionLimits, serve};
use common::process::{KillOnDrop, ServerProcess};
use common::{ORIGIN, Reply, Server};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// `ada` (`secret`) and `bob` (`hunter2`) of tenant `example`, timed by `clock`.
fn agents(clock: &Arc<ManualClock>, limits: SignInLimits) -> Agents {
    let tenant = TenantId::new("example").unwrap();
    let passwords = HashMap::from([
        ("ada".to_owned(), "secret".to_owned()),
        ("bob".to_owned(), "hunter2".to_owned()),
    ]);
    Agents::new(tenant.clone(), HashMap::new())
        .with_password_cost(PasswordCost::MINIMAL)
        .with_tenant(tenant, passwords)
        .with_clock(clock.clone())
        .with_sign_in_limits(limits)
}

/// The app of `server` served on a loopback port: its address.
async fn listen(server: &Server) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = server.app.clone();
    tokio::spawn(serve(
        listener,
        app,
        ConnectionLimits::default(),
        std::future::pending(),
    ));
    addr
}

/// `POST /api/session` to `server` from the client address `from` (any of 127.0.0.0/8).
async fn sign_in(server: SocketAddr, from: &str, agent: &str, password: &str) -> Reply {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(from.parse().unwrap()));
    let client = Client::builder(TokioExecutor::new()).build::<_, Body>(connector);
    let body = json!({"agent": agent, "password": password}).to_string();
    let request = Request::post(format!("http://{server}/api/session"))
        .header("host", "127.0.0.1:8080")
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(Body::new(body), 1 << 20).await.unwrap().to_vec();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

fn limits(account: u32, address: u32) -> SignInLimits {
    SignInLimits::default().with_failures(account, address).unwrap()
}

const HOME: &str = "127.0.0.1";

#[tokio::test]
async fn failed_sign_ins_lock_the_account_whatever_the_password_until_the_lock_ends() {
    let clock = Arc::new(ManualClock::new(Timestamp::from(std::time::SystemTime::now())));
    let server = Server::start_with(agents(&clock, SignInLimits::default()), |b| b).await;
    let addr = listen(&server).await;
    assert_eq!(
        sign_in(addr, HOME, "ada", "secret").await.status,
        StatusCode::NO_CONTENT
    );
    // Five wrong passwords in a row (the default), minutes apart: each one refused as such.
    for _ in 0..5 {
        clock.advance(Duration::from_secs(60));
        let reply = sign_in(addr, HOME, "ada", "wrong").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.code(), "unauthenticated");
    }
    // Locked: the right password gets the very answer a wrong one does.
    let right = sign_in(addr, HOME, "ada", "secret").await;
    let wrong = sign_in(addr, HOME, "ada", "still wrong").await;
    for reply in [&right, &wrong] {
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.code(), "rate_limited");
        assert_eq!(reply.header("retry-after"), "900");
        assert!(reply.cookie_named("collab_agent").is_none());
        let message = reply.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("locked for a while"), "{message}");
    }
    assert_eq!(right.body, wrong.body);
    // By `tenant/id` it is the same account.
    assert_eq!(
        sign_in(addr, HOME, "example/ada", "secret").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another account, from the same address, is not concerned.
    assert_eq!(
        sign_in(addr, HOME, "bob", "hunter2").await.status,
        StatusCode::NO_CONTENT
    );

    // The lock ends after 15 minutes; Retry-After counts down to it.
    clock.advance(Duration::from_secs(14 * 60));
    let reply = sign_in(addr, HOME, "ada", "secret").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("retry-after"), "60");
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        sign_in(addr, HOME, "ada", "secret").await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_success_clears_the_failures_and_failures_outside_the_window_do_not_add_up() {
    let clock = Arc::new(ManualClock::new(Timestamp::from(std::time::SystemTime::now())));
    let server = Server::start_with(agents(&clock, limits(3, 100)), |b| b).await;
    let addr = listen(&server).await;
    for _ in 0..3 {
        for _ in 0..2 {
            assert_eq!(
                sign_in(addr, HOME, "ada", "typo").await.status,
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            sign_in(addr, HOME, "ada", "secret").await.status,
            StatusCode::NO_CONTENT
        );
    }
    for _ in 0..2 {
        assert_eq!(
            sign_in(addr, HOME, "ada", "typo").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        sign_in(addr, HOME, "ada", "typo").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(addr, HOME, "ada", "secret").await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn one_address_spraying_across_accounts_is_refused_and_others_are_not() {
    let clock = Arc::new(ManualClock::new(Timestamp::from(std::time::SystemTime::now())));
    let server = Server::start_with(agents(&clock, limits(5, 10)), |b| b).await;
    let addr = listen(&server).await;
    let (spray, office) = ("127.0.0.2", "127.0.0.3");
    // One guess at each of ten accounts, known or not: no account reaches its own limit.
    for n in 0..10 {
        let agent = match n {
            0 => "ada".to_owned(),
            1 => "bob".to_owned(),
            n => format!("agent{n}@example.com"),
        };
        assert_eq!(
            sign_in(addr, spray, &agent, "password1").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // The address is refused, even with the right password of an account it has not tried.
    let reply = sign_in(addr, spray, "bob", "hunter2").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", reply.json());
    assert_eq!(reply.code(), "rate_limited");
    assert_eq!(reply.header("retry-after"), "900");
    // Another address signs in to the same accounts; a success there does not free the spray.
    assert_eq!(
        sign_in(addr, office, "ada", "secret").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sign_in(addr, office, "bob", "hunter2").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sign_in(addr, spray, "ada", "secret").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        sign_in(addr, spray, "ada", "secret").await.status,
        StatusCode::NO_CONTENT
    );
}

/// What the server logs, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_lock_is_logged_with_the_agent_and_the_address_never_the_password() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .finish();
    // The test's runtime has one thread: the server's tasks log through this subscriber.
    let _default = tracing::subscriber::set_default(subscriber);
    let clock = Arc::new(ManualClock::new(Timestamp::from(std::time::SystemTime::now())));
    let server = Server::start_with(agents(&clock, limits(3, 100)), |b| b).await;
    let addr = listen(&server).await;
    for password in ["hunter1", "hunter3"] {
        assert_eq!(
            sign_in(addr, "127.0.0.4", "bob", password).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let logged = || String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!logged().contains("locked"), "{}", logged());
    assert_eq!(
        sign_in(addr, "127.0.0.4", "bob", "hunter4").await.status,
        StatusCode::UNAUTHORIZED
    );
    let log = logged();
    let line = log
        .lines()
        .find(|line| line.contains("sign-in locked"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("example/bob") && line.contains("127.0.0.4"), "{line}");
    assert!(line.contains("15 min") && line.contains("3 failed"), "{line}");
    assert!(!log.contains("hunter"), "{log}");
    // An unknown agent's "id" may be a password typed in the wrong field: never logged.
    for _ in 0..3 {
        sign_in(addr, "127.0.0.4", "my-Pa55word", "x").await;
    }
    let log = logged();
    assert!(log.contains("an unknown agent") && !log.contains("Pa55"), "{log}");
}

#[tokio::test]
async fn the_api_document_tells_of_the_429() {
    let server = Server::start().await;
    let reply = server.send_with("GET", "/api/openapi.json", &[], Body::empty()).await;
    let document: Value = reply.json();
    let answer = &document["paths"]["/api/session"]["post"]["responses"]["429"];
    let description = answer["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("rate_limited") && description.contains("Retry-After"),
        "{answer}"
    );
}

#[tokio::test]
async fn without_an_address_the_account_limit_still_holds() {
    // An app driven in process knows no client address: the account's lock alone applies.
    let clock = Arc::new(ManualClock::new(Timestamp::from(std::time::SystemTime::now())));
    let agents = agents(&clock, limits(2, 1));
    let from: Option<IpAddr> = None;
    for _ in 0..2 {
        assert!(agents.sign_in("ada", "wrong", from).await.is_err());
    }
    let locked = agents.sign_in("ada", "secret", from).await;
    assert!(
        matches!(
            &locked,
            Err(collab_server::error::ApiError::Core(
                collab_core::Error::RateLimited { .. }
            ))
        ),
        "{locked:?}"
    );
    assert!(agents.sign_in("bob", "hunter2", from).await.is_ok());
}

#[tokio::test]
async fn the_server_hashes_its_agents_at_start_and_takes_its_limits_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(|command| {
        command
            .args([
                "--agents",
                "ada:secret,acme/bob:hunter2",
                "--sign-in-failures",
                "2,50",
                "--data",
            ])
            .arg(data.path());
    });
    let http = server.http();
    let sign_in = |agent: &'static str, password: &'static str| {
        let http = http.clone();
        async move {
            let body = json!({"agent": agent, "password": password});
            http.call("POST", "/api/session", None, Some(body)).await
        }
    };
    assert_eq!(sign_in("ada", "secret").await.status, StatusCode::NO_CONTENT);
    for _ in 0..2 {
        assert_eq!(sign_in("ada", "guess").await.status, StatusCode::UNAUTHORIZED);
    }
    let reply = sign_in("ada", "secret").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    // The server's own clock runs: a second may have passed since the lock.
    let retry_after: u64 = reply.header("retry-after").parse().unwrap();
    assert!((899..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(sign_in("acme/bob", "hunter2").await.status, StatusCode::NO_CONTENT);

    // A malformed limit stops the server before it listens, naming the flag.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_collab-server"))
        .env_clear()
        .args(["--addr", "127.0.0.1:0", "--sign-in-failures", "5"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--sign-in-failures is ACCOUNT,ADDRESS"), "{stderr}");
}

#[test]
fn the_dev_agent_is_refused_unless_both_the_address_and_the_base_url_are_loopback() {
    // (flags, what stderr must say): the server stops before it serves.
    let public_base_url = "the dev agent (agent@example.com:dev) may only sign in on a loopback address, and the \
                           base URL https://collab.example.com is not one: set --agents";
    let cases = [
        (
            vec!["--addr", "127.0.0.1:0", "--base-url", "https://collab.example.com/"],
            public_base_url,
        ),
        (
            vec![
                "--addr",
                "127.0.0.1:0",
                "--base-url",
                "http://localhost@collab.example.com",
            ],
            "base URL http://localhost@collab.example.com is not one: set --agents",
        ),
        (
            vec!["--addr", "0.0.0.0:0"],
            "the dev agent (agent@example.com:dev) may only sign in on a loopback address: set --agents",
        ),
    ];
    for (flags, expected) in cases {
        let data = tempfile::tempdir().unwrap();
        let mut server = KillOnDrop(
            std::process::Command::new(env!("CARGO_BIN_EXE_collab-server"))
                .env_clear()
                .args(&flags)
                .arg("--data")
                .arg(data.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        // A server that does start would serve until killed: it gets 30 s to stop by itself.
        let started = Instant::now();
        let status = loop {
            if let Some(status) = server.0.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > Duration::from_secs(30) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = server.0.kill();
        let mut stderr = String::new();
        server.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert!(status.is_some_and(|s| !s.success()), "{flags:?} started: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
    // The public base URL with agents of its own, and the dev agent linked from loopback: both
    // start.
    let configured = ServerProcess::start(|command| {
        command.args(["--agents", "ada:secret", "--base-url", "https://collab.example.com"]);
    });
    drop(configured);
    let local = ServerProcess::start(|command| {
        command.args(["--base-url", "http://localhost:8080"]);
    });
    drop(local);
}
