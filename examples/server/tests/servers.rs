//! Two `collab-server` processes over one PostgreSQL database, as behind a load balancer: a post
//! on one reaches a live subscriber on the other, in order.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use collab_store_postgres::testing::TestSchema;
use common::process::ServerProcess;
use serde_json::json;

/// Starts `collab-server` over the schema's database, its documents in `shared`.
fn start(schema: &TestSchema, data: &Path, shared: &Path) -> ServerProcess {
    ServerProcess::start(|command| {
        command
            .args(["--agents", "ada:secret", "--data"])
            .arg(data)
            .args(["--documents", &format!("file://{}", shared.display())])
            .args(["--database", schema.url(), "--database-schema", schema.name()]);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_share_rooms_and_live_events() {
    let Some(schema) = TestSchema::create("two_server_processes_share_rooms_and_live_events").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("documents");
    let (a, b) = (
        start(&schema, &dir.path().join("a"), &shared),
        start(&schema, &dir.path().join("b"), &shared),
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
