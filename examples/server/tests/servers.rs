//! Two `collab-server` processes over one PostgreSQL database, as behind a load balancer: a post
//! on one reaches a live subscriber on the other, in order.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use collab_store_postgres::testing::TestSchema;
use futures_util::StreamExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// A server process, killed when the test ends.
struct Process {
    child: Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `collab-server` on a free port over the schema's database, its documents in `shared`.
fn start(schema: &TestSchema, data: &std::path::Path, shared: &std::path::Path) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_collab-server"))
        .args(["--addr", "127.0.0.1:0", "--agents", "ada:secret"])
        .arg("--data")
        .arg(data)
        .args(["--documents", &format!("file://{}", shared.display())])
        .args(["--database", schema.url(), "--database-schema", schema.name()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line names the address: "collab example server on http://127.0.0.1:PORT".
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // Keep reading: a server printing to a closed pipe would fail.
    std::thread::spawn(move || stdout.lines().for_each(drop));
    let base = first
        .trim()
        .rsplit(' ')
        .next()
        .filter(|url| url.starts_with("http://"))
        .unwrap_or_else(|| panic!("the server did not start: {first:?}"))
        .to_owned();
    Process { child, base }
}

struct Http {
    client: Client<HttpConnector, Body>,
}

impl Http {
    async fn call(
        &self,
        method: &str,
        url: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = self.client.request(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .to_owned();
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), cookie)
    }

    /// Signs `ada` in on `server`: each server keeps its own agent sessions.
    async fn sign_in(&self, server: &Process) -> String {
        let (status, _, cookie) = self
            .call(
                "POST",
                &format!("{}/api/session", server.base),
                None,
                Some(json!({"agent": "ada", "password": "secret"})),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        cookie
    }
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
    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    let (on_a, on_b) = (http.sign_in(&a).await, http.sign_in(&b).await);

    // A room opened on A is on B.
    let (status, room, _) = http
        .call("POST", &format!("{}/api/rooms", a.base), Some(&on_a), None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let room = room["id"].as_str().unwrap().to_owned();
    let (status, listed, _) = http
        .call("GET", &format!("{}/api/rooms", b.base), Some(&on_b), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed.to_string().contains(&room), "{listed}");

    // B's live stream hears A's posts, in order.
    let live = Request::builder()
        .uri(format!("{}/api/rooms/{room}/live", b.base))
        .header(header::COOKIE, &on_b)
        .body(Body::empty())
        .unwrap();
    let response = http.client.request(live).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = Body::new(response.into_body()).into_data_stream();
    for i in 0..10 {
        let (status, _, _) = http
            .call(
                "POST",
                &format!("{}/api/rooms/{room}/messages", a.base),
                Some(&on_a),
                Some(json!({"text": format!("from A {i}")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut text = String::new();
    let mut ids: Vec<u64> = Vec::new();
    while ids.len() < 11 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap_or_else(|_| panic!("B's live stream stopped at {ids:?}"))
            .unwrap()
            .unwrap();
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
