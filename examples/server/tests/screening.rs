//! Requests screened before any route (issue 21): the host a request names, the origin of a
//! state change, a malformed chunked body and an upload's content type; over the wire, against
//! the real binary, with raw sockets where a client library would not send the request.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::Reply;
use common::http::Http;
use common::process::ServerProcess;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a raw exchange may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// The dev agent of a server started with no `--agents`.
const DEV_AGENT: (&str, &str) = ("agent@example.com", "dev");

/// Writes `request` as it is to the server and reads the answer until the server closes the
/// connection (each request here says `Connection: close`, or is HTTP/1.0): its status line
/// and its body as JSON.
async fn raw(server: &ServerProcess, request: &str) -> (String, Value) {
    let exchange = async {
        let mut socket = TcpStream::connect(("127.0.0.1", server.port())).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    };
    let answer = tokio::time::timeout(DEADLINE, exchange)
        .await
        .unwrap_or_else(|_| panic!("no complete answer within {DEADLINE:?} to {request:?}"));
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// A signed-in agent's cookie and a new room of theirs.
async fn agent_with_room(http: &Http) -> (String, String) {
    let cookie = http.sign_in(DEV_AGENT.0, DEV_AGENT.1).await;
    let room = http.call("POST", "/api/rooms", Some(&cookie), None).await;
    assert_eq!(room.status, StatusCode::CREATED, "{:?}", room.json());
    (cookie, room.json()["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_fault() {
    let server = ServerProcess::start(|_| {});
    let (cookie, room) = agent_with_room(&server.http()).await;
    let host = format!("127.0.0.1:{}", server.port());
    // "zz" is not a chunk size.
    let chunked = |path: &str, content_type: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {}\r\nCookie: {cookie}\r\n\
             Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             zz\r\nhello\r\n0\r\n\r\n",
            server.base
        )
    };
    let upload = chunked(
        &format!("/api/rooms/{room}/documents?name=a.txt"),
        "application/octet-stream",
    );
    let (status, body) = raw(&server, &upload).await;
    assert!(status.starts_with("HTTP/1.1 400"), "{status} {body}");
    assert_eq!(code(&body), "upload_aborted", "{body}");
    let sign_in = chunked("/api/session", "application/json");
    let (status, body) = raw(&server, &sign_in).await;
    assert!(status.starts_with("HTTP/1.1 400"), "{status} {body}");
    assert_eq!(code(&body), "bad_request", "{body}");
    // The server still serves, and stored nothing from the broken upload.
    let events = server
        .http()
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&cookie), None)
        .await;
    assert_eq!(events.status, StatusCode::OK);
    assert!(!events.json().to_string().contains("a.txt"), "{:?}", events.json());
}

#[tokio::test]
async fn a_request_must_name_an_allowed_host() {
    let server = ServerProcess::start(|_| {});
    let port = server.port();
    // HTTP/1.0 lets a client leave out Host: the server answers to named hosts only.
    let (status, body) = raw(&server, "GET /api/me HTTP/1.0\r\n\r\n").await;
    assert!(status.starts_with("HTTP/1.0 400"), "{status} {body}");
    assert_eq!(code(&body), "bad_request", "{body}");
    let (status, body) = raw(&server, "GET /api/me HTTP/1.0\r\nHost: evil.example\r\n\r\n").await;
    assert!(status.starts_with("HTTP/1.0 403"), "{status} {body}");
    assert_eq!(code(&body), "unknown_host", "{body}");
    let named = format!("GET /api/me HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    let (status, body) = raw(&server, &named).await;
    assert!(status.starts_with("HTTP/1.0 401"), "{status} {body}");
    // The URI's authority counts as well as Host (HTTP/2's `:authority` arrives as it).
    let absolute =
        format!("GET http://evil.example/api/me HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let (status, body) = raw(&server, &absolute).await;
    assert!(status.starts_with("HTTP/1.1 403"), "{status} {body}");
    assert_eq!(code(&body), "unknown_host", "{body}");
}

#[tokio::test]
async fn a_state_change_must_show_its_origin() {
    let server = ServerProcess::start(|_| {});
    let (cookie, _) = agent_with_room(&server.http()).await;
    let port = server.port();
    let create = |extra: &str| {
        format!(
            "POST /api/rooms HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n{extra}\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
    };
    let refused = [
        String::new(),
        "Sec-Fetch-Site: cross-site\r\n".to_owned(),
        "Origin: https://evil.example\r\n".to_owned(),
        // A same-origin claim does not excuse a foreign Origin.
        "Origin: https://evil.example\r\nSec-Fetch-Site: same-origin\r\n".to_owned(),
    ];
    for extra in refused {
        let (status, body) = raw(&server, &create(&extra)).await;
        assert!(status.starts_with("HTTP/1.1 403"), "{extra:?}: {status} {body}");
        assert_eq!(code(&body), "cross_origin", "{extra:?}: {body}");
    }
    let allowed = [
        format!("Origin: {}\r\n", server.base),
        "Sec-Fetch-Site: same-origin\r\n".to_owned(),
    ];
    for extra in allowed {
        let (status, body) = raw(&server, &create(&extra)).await;
        assert!(status.starts_with("HTTP/1.1 201"), "{extra:?}: {status} {body}");
    }
}

#[tokio::test]
async fn the_console_works_at_localhost_too() {
    let server = ServerProcess::start(|_| {});
    // The server answers to localhost:PORT: a page opened there sends that origin.
    let localhost = format!("http://localhost:{}", server.port());
    let http = server.http().to(&localhost);
    let cookie = http.sign_in(DEV_AGENT.0, DEV_AGENT.1).await;
    let room = http.call("POST", "/api/rooms", Some(&cookie), None).await;
    assert_eq!(room.status, StatusCode::CREATED, "{:?}", room.json());
    // Another port of localhost is another origin.
    let other = format!("http://localhost:{}", server.port().wrapping_add(1));
    let reply = http
        .send(
            "POST",
            "/api/rooms",
            &[("cookie", &cookie), ("origin", &other)],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "cross_origin");
}

#[tokio::test]
async fn an_upload_is_octet_stream_only() {
    let server = ServerProcess::start(|_| {});
    let http = server.http();
    let (cookie, room) = agent_with_room(&http).await;
    let upload = |content_type: Option<&'static str>| {
        let http = &http;
        let cookie = &cookie;
        let path = format!("/api/rooms/{room}/documents?name=notes.txt");
        async move {
            let mut headers = vec![("cookie", cookie.as_str())];
            headers.extend(content_type.map(|t| ("content-type", t)));
            http.send("POST", &path, &headers, b"hello".to_vec()).await.unwrap()
        }
    };
    for refused in ["text/plain", "multipart/form-data; boundary=x", "application/json"] {
        let reply: Reply = upload(Some(refused)).await;
        assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{refused}");
        assert_eq!(reply.code(), "unsupported_media_type", "{refused}");
        assert_eq!(reply.json()["error"]["field"], "Content-Type", "{refused}");
    }
    for accepted in [
        Some("application/octet-stream"),
        Some("Application/Octet-Stream; x=y"),
        None,
    ] {
        let reply = upload(accepted).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{accepted:?}: {:?}", reply.json());
    }
}
