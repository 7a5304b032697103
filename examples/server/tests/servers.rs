//! Two `collab-server` processes over one PostgreSQL database, as behind a load balancer: a post
//! on one reaches a live subscriber on the other, in order; with live events through
//! PostgreSQL's NOTIFY, and through NATS (`--nats`).

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use collab_store_postgres::testing::TestSchema;
use common::process::ServerProcess;
use serde_json::json;

/// Starts `collab-server` over the schema's database, its documents in `shared`, its live
/// events through `nats` if given.
fn start(schema: &TestSchema, data: &Path, shared: &Path, nats: Option<&str>) -> ServerProcess {
    ServerProcess::start(|command| {
        command
            .args(["--agents", "ada:secret", "--data"])
            .arg(data)
            .args(["--documents", &format!("file://{}", shared.display())])
            .args(["--database", schema.url(), "--database-schema", schema.name()]);
        if let Some(nats) = nats {
            command.args(["--nats", nats]);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_share_rooms_and_live_events() {
    let Some(schema) = TestSchema::create("two_server_processes_share_rooms_and_live_events").await else {
        return;
    };
    share_rooms_and_live_events(&schema, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_share_live_events_through_nats() {
    let test = "two_server_processes_share_live_events_through_nats";
    let Some(schema) = TestSchema::create(test).await else {
        return;
    };
    if std::net::TcpStream::connect(("127.0.0.1", 4222)).is_err() {
        let what = "needs a NATS server on 127.0.0.1:4222 (Debian's nats-server)";
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: {what} (CI=true: a missing NATS fails the run)"
        );
        let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {what} ***\n");
        return;
    }
    // The stores send no NOTIFY: a listener on the database's channel hears nothing.
    let (listener, mut connection) = tokio_postgres::connect(schema.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let (heard, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = heard.send(n.payload().to_owned());
            }
        }
    });
    let channel = schema.config().channel();
    listener.batch_execute(&format!("LISTEN {channel}")).await.unwrap();
    share_rooms_and_live_events(&schema, Some("nats://127.0.0.1:4222")).await;
    listener
        .execute("SELECT pg_notify($1, 'marker')", &[&channel])
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), notifications.recv())
        .await
        .unwrap();
    assert_eq!(
        first.as_deref(),
        Some("marker"),
        "a NOTIFY from a server whose events go through NATS"
    );
}

async fn share_rooms_and_live_events(schema: &TestSchema, nats: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("documents");
    let (a, b) = (
        start(schema, &dir.path().join("a"), &shared, nats),
        start(schema, &dir.path().join("b"), &shared, nats),
    );
    let (on_a, on_b) = (a.http(), b.http());
    // Each server keeps its own agent sessions.
    let (ada_a, ada_b) = (on_a.sign_in("ada", "secret").await, on_b.sign_in("ada", "secret").await);

    // A room opened on A is on B.
    let reply = on_a.call("POST", "/api/rooms", Some(&ada_a), None).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let room = reply.json()["id"].as_str().unwrap().to_owned();
    let listed = on_b.call("GET", "/api/rooms", Some(&ada_b), None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(listed.json().to_string().contains(&room), "{:?}", listed.json());

    // B's live stream hears A's posts, in order.
    let live = format!("/api/rooms/{room}/live");
    let mut stream = on_b
        .open("GET", &live, &[("cookie", &ada_b)], Vec::new())
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    for i in 0..10 {
        let post = json!({"text": format!("from A {i}")});
        let reply = on_a
            .call("POST", &format!("/api/rooms/{room}/messages"), Some(&ada_a), Some(post))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let mut text = String::new();
    let mut ids: Vec<u64> = Vec::new();
    while ids.len() < 11 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("B's live stream stopped at {ids:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("B's live stream ended at {ids:?}"));
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        ids = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(|id| id.parse().unwrap())
            .collect();
    }
    assert_eq!(ids, (1..=11).collect::<Vec<_>>(), "the room's creation, then ten posts");
    for i in 0..10 {
        assert!(text.contains(&format!("from A {i}")), "{text}");
    }
}
