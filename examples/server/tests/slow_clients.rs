//! Slow and idle clients against the real binary over loopback (issue 21, "connections never
//! time out"), with short limits set by flags: sockets that trickle their headers, sit idle or
//! trickle an upload are closed by the server, while other clients carry on; live streams are
//! capped per session and per address. Each test asserts what the server did (the socket's read
//! ends: EOF or reset) within a generous bound, never how fast.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::http::Http;
use common::process::ServerProcess;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The margin over a configured timeout within which the server must have acted: wide, for
/// slow shared CI machines.
const MARGIN: Duration = Duration::from_secs(10);

/// Reads until the server ends the connection (EOF or reset): what it sent, or `None` when the
/// connection was still open after `bound`.
async fn until_closed(socket: &mut (impl AsyncRead + Unpin), bound: Duration) -> Option<Vec<u8>> {
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(bound, read).await.ok()
}

/// Reads one response with a `Content-Length` from a kept-alive connection: its status line.
async fn read_response(socket: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed before answering");
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length");
    while got.len() < head_end + length {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed in the middle of the body");
        got.extend_from_slice(&buf[..n]);
    }
    head.lines().next().unwrap_or_default().to_owned()
}

/// A signed-in agent's cookie and a new room of theirs.
async fn agent_with_room(http: &Http, agent: (&str, &str)) -> (String, String) {
    let cookie = http.sign_in(agent.0, agent.1).await;
    let room = http.call("POST", "/api/rooms", Some(&cookie), None).await;
    assert_eq!(room.status, StatusCode::CREATED, "{:?}", room.json());
    (cookie, room.json()["id"].as_str().unwrap().to_owned())
}

/// The dev agent of a server started with no `--agents`.
const DEV_AGENT: (&str, &str) = ("agent@example.com", "dev");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_sockets_are_closed_while_other_clients_are_served() {
    const SOCKETS: usize = 50;
    // An idle timeout far beyond the bound: only the header timeout can close these sockets.
    let header_timeout = Duration::from_secs(1);
    let server = ServerProcess::start(|c| {
        c.args(["--header-timeout", "1", "--idle-timeout", "120"]);
    });
    let port = server.port();
    let bound = header_timeout + MARGIN;
    let mut attackers = Vec::new();
    for _ in 0..SOCKETS {
        let socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        attackers.push(tokio::spawn(async move {
            let (mut reader, mut writer) = socket.into_split();
            // A head that never ends, a byte at a time, until the server stops taking it.
            let trickle = tokio::spawn(async move {
                let start = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ");
                for byte in start.bytes().chain(std::iter::repeat(b'a')) {
                    if writer.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            let closed = until_closed(&mut reader, bound).await;
            trickle.abort();
            closed.is_some()
        }));
    }
    // Meanwhile a client of the usual kind keeps getting its pages.
    let http = server.http();
    let mut served = 0;
    while attackers.iter().any(|a| !a.is_finished()) {
        let reply = http
            .send("GET", "/", &[], Vec::new())
            .await
            .expect("an answer during the attack");
        assert_eq!(reply.status, StatusCode::OK);
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served > 0, "no request was made during the attack");
    let mut still_open = 0;
    for attacker in attackers {
        if !attacker.await.unwrap() {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "slow-header sockets still open after {bound:?}");
    // And after it.
    let reply = http
        .send("GET", "/", &[], Vec::new())
        .await
        .expect("an answer after the attack");
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_but_not_live_streams() {
    // A header timeout far beyond the bound: only the idle timeout can close these sockets.
    let idle_timeout = Duration::from_secs(1);
    let server = ServerProcess::start(|c| {
        c.args(["--idle-timeout", "1", "--header-timeout", "120"]);
    });
    let bound = idle_timeout + MARGIN;
    let host = format!("127.0.0.1:{}", server.port());
    // A kept-alive connection, idle after its first answer.
    let mut kept = TcpStream::connect(&host).await.unwrap();
    let request = format!("GET /assets/app.css HTTP/1.1\r\nHost: {host}\r\n\r\n");
    kept.write_all(request.as_bytes()).await.unwrap();
    let status = tokio::time::timeout(MARGIN, read_response(&mut kept)).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // A connection that never says a word.
    let mut silent = TcpStream::connect(&host).await.unwrap();
    let (kept_closed, silent_closed) = tokio::join!(until_closed(&mut kept, bound), until_closed(&mut silent, bound));
    assert_eq!(
        kept_closed,
        Some(Vec::new()),
        "the kept-alive connection, idle for {bound:?}"
    );
    assert_eq!(silent_closed, Some(Vec::new()), "the silent connection, for {bound:?}");

    // A live stream is a request in progress, however long it stays quiet.
    let http = Http::with_timeout(&server.base, Duration::from_secs(60));
    let (cookie, room) = agent_with_room(&http, DEV_AGENT).await;
    let cookie_header = [("cookie", cookie.as_str())];
    let mut live = http
        .open("GET", &format!("/api/rooms/{room}/live"), &cookie_header, Vec::new())
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    tokio::time::sleep(idle_timeout * 3).await;
    let text = "still listening";
    let posted = http
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&cookie),
            Some(json!({ "text": text })),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{:?}", posted.json());
    let received = tokio::time::timeout(MARGIN, async {
        let mut seen = String::new();
        while let Some(chunk) = live.chunk().await.expect("the stream stays open") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(text) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        received,
        Ok(true),
        "the message on the stream that outlived the idle timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_upload_is_cut_off_after_the_body_timeout() {
    let body_timeout = Duration::from_secs(2);
    let server = ServerProcess::start(|c| {
        c.args(["--body-timeout", "2"]);
    });
    let (cookie, room) = agent_with_room(&server.http(), DEV_AGENT).await;
    let host = format!("127.0.0.1:{}", server.port());
    let socket = TcpStream::connect(&host).await.unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let head = format!(
        "POST /api/rooms/{room}/documents?name=slow.bin HTTP/1.1\r\nHost: {host}\r\nOrigin: {}\r\n\
         Cookie: {cookie}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n",
        server.base
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    // A byte every 100 ms: 100,000 of them would take hours.
    let trickle = tokio::spawn(async move {
        loop {
            if writer.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let bound = body_timeout + MARGIN;
    let answer = until_closed(&mut reader, bound).await;
    trickle.abort();
    let answer = answer.unwrap_or_else(|| panic!("the upload still open after {bound:?}"));
    let answer = String::from_utf8_lossy(&answer);
    // The server answers before closing; a reset may overtake that answer, and the connection
    // is closed either way.
    if !answer.is_empty() {
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let body: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["error"]["code"], "upload_aborted", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not received within 2 s"),
            "{body}"
        );
    }
    // Nothing of it was shared.
    let events = server
        .http()
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&cookie), None)
        .await;
    assert_eq!(events.status, StatusCode::OK);
    assert!(!events.body.windows(8).any(|w| w == b"slow.bin"), "{:?}", events.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_capped_per_session_and_per_address() {
    let server = ServerProcess::start(|c| {
        c.args([
            "--agents",
            "ada:ada-password,bob:bob-password",
            "--live-streams-per-session",
            "2",
        ])
        .env("COLLAB_LIVE_STREAMS_PER_ADDRESS", "3");
    });
    let http = Http::with_timeout(&server.base, Duration::from_secs(60));
    let (ada, room) = agent_with_room(&http, ("ada", "ada-password")).await;
    let (bob, bob_room) = agent_with_room(&http, ("bob", "bob-password")).await;
    let live = |cookie: &str, room: &str| {
        let (http, cookie, path) = (http.clone(), cookie.to_owned(), format!("/api/rooms/{room}/live"));
        async move {
            http.open("GET", &path, &[("cookie", cookie.as_str())], Vec::new())
                .await
                .unwrap()
        }
    };
    let first = live(&ada, &room).await;
    let _second = live(&ada, &room).await;
    assert_eq!((first.status(), _second.status()), (StatusCode::OK, StatusCode::OK));
    let refused = live(&ada, &room).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let body: Value = serde_json::from_slice(&refused.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");

    // Bob's session has room, this address has one more: then it is full too.
    let bobs = live(&bob, &bob_room).await;
    assert_eq!(bobs.status(), StatusCode::OK);
    let refused = live(&bob, &bob_room).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "the address's cap");

    // The API's document states the caps this server has.
    let document = http.call("GET", "/api/openapi.json", None, None).await.json();
    let refusal = &document["paths"]["/api/rooms/{room}/live"]["get"]["responses"]["429"]["description"];
    let refusal = refusal.as_str().unwrap_or_default();
    assert!(
        refusal.contains("more than 2 live streams") && refusal.contains("or 3 from this address"),
        "{refusal}"
    );

    // A stream that ends gives its slot back, once the server sees it closed.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let again = live(&ada, &room).await;
        if again.status() == StatusCode::OK {
            break;
        }
        assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(Instant::now() < deadline, "the closed stream's slot never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
