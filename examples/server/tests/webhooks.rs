//! Webhooks from the real `collab-server` binary (SQLite in a temp dir) to a receiver on
//! loopback: configured from the environment, signed, and SIGKILL of the server while a
//! webhook waits for its retry: after the restart it is delivered, with the same `webhook-id`,
//! and the room's next event after it.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use collab_core::webhook::WebhookSecret;
use collab_notify::webhook::Verifier;
use common::process::ServerProcess;
use serde_json::{Value, json};

/// What the receiver got: the three Standard Webhooks headers, the body, and its answer.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    accepted: bool,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Received>>,
    accept: AtomicBool,
}

async fn receiver() -> (Arc<Receiver>, String) {
    let state = Arc::new(Receiver::default());
    let app = Router::new().route(
        "/hooks",
        post({
            let state = state.clone();
            move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let accepted = state.accept.load(Ordering::SeqCst);
                    state.got.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body: body.to_vec(),
                        accepted,
                    });
                    if accepted {
                        StatusCode::OK
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (state, url)
}

async fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_waiting_for_its_retry_survives_sigkill_with_the_same_id() {
    let data = tempfile::tempdir().unwrap();
    let (receiver, url) = receiver().await;
    let secret = WebhookSecret::generate().unwrap();
    let start = || {
        ServerProcess::start(|command| {
            command
                .args(["--data", data.path().to_str().unwrap(), "--lease", "5"])
                .env("COLLAB_WEBHOOKS", format!("example={url}"))
                .env("COLLAB_WEBHOOK_SECRET", secret.expose())
                .env("COLLAB_WEBHOOK_NETWORKS", "private");
        })
    };
    let server = start();
    let http = server.http();
    let agent = http.sign_in("agent@example.com", "dev").await;
    let created = http.call("POST", "/api/rooms", Some(&agent), None).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let room = created.json()["id"].as_str().unwrap().to_owned();
    let posted = http
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&agent),
            Some(json!({"text": "Hello Grace"})),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED);

    // The receiver refuses: the first webhook (room.created) is retried; the message waits
    // behind it. Then the server dies.
    wait_for("a first attempt", Duration::from_secs(20), || {
        !receiver.got.lock().unwrap().is_empty()
    })
    .await;
    server.kill();
    let refused = receiver.got.lock().unwrap().clone();
    assert!(refused.iter().all(|r| !r.accepted));
    assert!(
        refused.iter().all(|r| r.json()["type"] == "room.created"),
        "in order: {refused:?}"
    );
    let first_id = refused[0].id.clone();

    receiver.accept.store(true, Ordering::SeqCst);
    let _server = start();
    // The retry waits out its backoff (10 s and jitter) and the dead process's lease.
    wait_for("both webhooks delivered", Duration::from_secs(60), || {
        receiver.got.lock().unwrap().iter().filter(|r| r.accepted).count() >= 2
    })
    .await;
    let got = receiver.got.lock().unwrap().clone();
    let accepted: Vec<&Received> = got.iter().filter(|r| r.accepted).collect();
    assert_eq!(accepted.len(), 2, "each once: {accepted:?}");
    assert_eq!(accepted[0].id, first_id, "the webhook-id survives the crash");
    assert_eq!(accepted[0].json()["type"], "room.created");
    assert_eq!(accepted[1].json()["type"], "message.posted");
    assert_eq!(accepted[1].json()["data"]["event"]["data"]["text"], "Hello Grace");
    assert_eq!(accepted[1].json()["data"]["room"], room.as_str());
    let verifier = Verifier::new(secret);
    for request in &got {
        verifier
            .verify(&request.id, &request.timestamp, &request.signature, &request.body)
            .expect("signed with the configured secret");
    }
}

#[test]
fn bad_webhook_settings_stop_the_server_with_a_clear_message() {
    for (variables, expected) in [
        (
            vec![("COLLAB_WEBHOOKS", "example=https://crm.example.com/hooks")],
            "COLLAB_WEBHOOK_SECRET",
        ),
        (
            vec![
                ("COLLAB_WEBHOOKS", "example=ftp://crm"),
                ("COLLAB_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ],
            "url",
        ),
        (
            vec![
                ("COLLAB_WEBHOOKS", "example=https://crm.example.com/hooks"),
                ("COLLAB_WEBHOOK_SECRET", "hunter2"),
            ],
            "whsec_",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_collab-server"))
            .env_clear()
            .args(["--addr", "127.0.0.1:0", "--data", data.path().to_str().unwrap()])
            .envs(variables.iter().copied())
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{variables:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "the secret stays out of the message");
    }
}
