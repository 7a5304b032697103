//! The host's abuse limits over HTTP (issue 21, "no limits in the example host"): the SMS
//! invite guard, per-session rates for messages and uploads (429 `rate_limited` with
//! `Retry-After`), and each room's storage quota (413 `quota_exceeded`, nothing kept).

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use collab_core::rooms::RoomsConfig;
use common::process::ServerProcess;
use common::{Reply, Server, agents};
use futures_util::future::join_all;
use serde_json::{Value, json};

/// `len` bytes of plain text.
fn text(len: usize) -> Vec<u8> {
    b"a line of notes\n".iter().copied().cycle().take(len).collect()
}

/// The seconds a 429 says to wait: its `Retry-After`, checked to be there and at least 1, and
/// its body the API's `rate_limited` error.
fn retry_after(reply: &common::Reply) -> u64 {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), "rate_limited", "{:?}", reply.json());
    let seconds: u64 = reply.header("retry-after").parse().expect("Retry-After in seconds");
    assert!(seconds >= 1);
    seconds
}

/// The events of `room` of type `kind`.
fn of_type(events: &Value, kind: &str) -> usize {
    events.as_array().unwrap().iter().filter(|e| e["type"] == kind).count()
}

/// How many messages `room`'s timeline holds, as `agent` reads it.
async fn messages_in(server: &Server, agent: &str, room: &str) -> usize {
    let events = server
        .call(
            "GET",
            &format!("/api/rooms/{room}/events?limit=1000"),
            Some(agent),
            None,
        )
        .await;
    of_type(&events.json(), "message_posted")
}

/// The files under `dir`, recursively.
fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| if e.path().is_dir() { files_under(&e.path()) } else { 1 })
            .sum()
    })
}

#[tokio::test]
async fn sms_invites_to_one_number_pass_the_guard_only_up_to_its_limit() {
    // The binary as run, so that the guard main.rs wires in is the one tested.
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(|command| {
        command
            .args(["--agents", "ada:secret", "--data"])
            .arg(dir.path())
            .env("COLLAB_SMS", "dev");
    });
    let http = server.http();
    let agent = http.sign_in("ada", "secret").await;
    let room = http.call("POST", "/api/rooms", Some(&agent), None).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/rooms/{room}/invites");
    let invite = json!({"channel": "sms", "first_name": "Grace", "last_name": "Hopper", "identifier": "+447911123456"});
    let mut sent = 0;
    let mut refused = Vec::new();
    for _ in 0..30 {
        let reply = http.call("POST", &path, Some(&agent), Some(invite.clone())).await;
        match reply.status {
            StatusCode::CREATED => sent += 1,
            _ => refused.push(retry_after(&reply)),
        }
    }
    // The default: 3 an hour to one number, and a minute's cool-down after the first.
    assert_eq!(sent, 1, "refused: {refused:?}");
    assert!(refused.iter().all(|&s| (1..=60).contains(&s)), "{refused:?}");
    // The refused ones recorded nothing.
    let events = http
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&agent), None)
        .await;
    assert_eq!(of_type(&events.json(), "customer_invited"), 1);
    // Another number is another recipient.
    let other = json!({"channel": "sms", "first_name": "Ann", "last_name": "Lee", "identifier": "+447911123457"});
    let room2 = http.call("POST", "/api/rooms", Some(&agent), None).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = http
        .call(
            "POST",
            &format!("/api/rooms/{room2}/invites"),
            Some(&agent),
            Some(other),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
}

#[tokio::test]
async fn the_invite_limits_follow_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(|command| {
        command
            .args(["--agents", "ada:secret", "--invite-cooldown", "0", "--data"])
            .arg(dir.path())
            .env("COLLAB_SMS", "dev")
            .env("COLLAB_INVITES_PER_RECIPIENT", "4");
    });
    let http = server.http();
    let agent = http.sign_in("ada", "secret").await;
    let room = http.call("POST", "/api/rooms", Some(&agent), None).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/rooms/{room}/invites");
    let invite = json!({"channel": "sms", "first_name": "Grace", "last_name": "Hopper", "identifier": "+447911123456"});
    let replies = join_all((0..30).map(|_| http.call("POST", &path, Some(&agent), Some(invite.clone())))).await;
    let sent = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    // No cool-down: the hourly limit alone, even for invites sent all at once.
    assert_eq!(sent, 4);
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        retry_after(reply);
    }
}

#[tokio::test]
async fn messages_past_the_burst_are_refused_and_other_sessions_are_not() {
    let server = Server::start().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let path = format!("/api/rooms/{room}/messages");
    let mut posted = 0;
    let mut first_refusal = None;
    for n in 0..300 {
        let reply = server
            .call(
                "POST",
                &path,
                Some(&customer),
                Some(json!({"text": format!("spam {n}")})),
            )
            .await;
        if reply.status == StatusCode::CREATED {
            posted += 1;
        } else {
            let wait = retry_after(&reply);
            first_refusal.get_or_insert((n, wait));
        }
    }
    let (n, wait) = first_refusal.expect("300 messages at once all passed");
    // The whole burst passes (30 by default), then messages come only as fast as the rate.
    assert!(n >= 30, "refused after {n}");
    assert!(posted < 300);
    assert_eq!(messages_in(&server, &agent, &room).await, posted);

    // The agent in the same room, and another room's customer, have their own buckets.
    let reply = server
        .call("POST", &path, Some(&agent), Some(json!({"text": "hello"})))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
    let (other_room, other) = server.room_for(&agent, "Ann", "Lee").await;
    let reply = server
        .call(
            "POST",
            &format!("/api/rooms/{other_room}/messages"),
            Some(&other),
            Some(json!({"text": "hello"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());

    // Waiting as told is enough.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let reply = server
        .call("POST", &path, Some(&customer), Some(json!({"text": "patient"})))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
}

#[tokio::test]
async fn joining_again_does_not_give_a_customer_a_fresh_message_allowance() {
    let server = Server::start().await;
    let agent = server.agent("ada", "secret").await;
    let room = server.create_room(&agent).await;
    let grace = json!({"channel": "email", "first_name": "Grace", "last_name": "Hopper",
        "identifier": "grace@example.com"});
    server.invite(&agent, &room, grace).await;
    let token = server.link_token(&agent, &room).await;
    let path = format!("/api/rooms/{room}/messages");
    let post = |cookie: String, n: usize| {
        let server = &server;
        let path = &path;
        async move {
            server
                .call("POST", path, Some(&cookie), Some(json!({"text": format!("spam {n}")})))
                .await
        }
    };
    let first = server.join(&token).await;
    let mut posted = 0;
    while post(first.clone(), posted).await.status == StatusCode::CREATED {
        posted += 1;
        assert!(posted < 300, "300 messages at once all passed");
    }
    // The burst is spent. Opening the link again is a new session of the same customer: the
    // same allowance, not a fresh one (the clock of the limits is the wall's: no refill to
    // speak of in between).
    for round in 0..3 {
        let again = server.join(&token).await;
        let reply = post(again, 1000 + round).await;
        retry_after(&reply);
    }
    assert_eq!(messages_in(&server, &agent, &room).await, posted);
    // The agent still posts: their bucket is their own.
    let reply = server
        .call("POST", &path, Some(&agent), Some(json!({"text": "hello"})))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
}

#[tokio::test]
async fn joins_from_one_address_past_their_limit_are_refused() {
    // The binary as run: the address is the connection's, and the flags are main.rs's.
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(|command| {
        command
            .args(["--agents", "ada:secret", "--join-burst", "3", "--data"])
            .arg(dir.path())
            .env("COLLAB_JOIN_RATE", "1");
    });
    let http = server.http();
    let agent = http.sign_in("ada", "secret").await;
    let room = http.call("POST", "/api/rooms", Some(&agent), None).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let invites = format!("/api/rooms/{room}/invites");
    let grace = json!({"channel": "email", "first_name": "Grace", "last_name": "Hopper",
        "identifier": "grace@example.com"});
    let invited = http.call("POST", &invites, Some(&agent), Some(grace)).await;
    assert_eq!(invited.status, StatusCode::CREATED, "{:?}", invited.json());
    let link = http
        .call("POST", &invites, Some(&agent), Some(json!({"channel": "link"})))
        .await
        .json()["link"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = link.rsplit('/').next().unwrap().to_owned();
    let join = |token: String| {
        let http = http.clone();
        async move {
            http.call("POST", "/api/join", None, Some(json!({"token": token})))
                .await
        }
    };
    for n in 0..3 {
        let reply = join(token.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "join {n}: {:?}", reply.json());
    }
    // The burst of 3 is spent; at 1 a minute, the next comes in a minute at most.
    let refused = join(token.clone()).await;
    let wait = retry_after(&refused);
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(
        refused.cookie_named("collab_customer").is_none(),
        "no session for a refused join"
    );
    // Another link, or a token that opens nothing, from the same address: refused alike, before
    // any lookup.
    for token in ["0".repeat(64), "f".repeat(64)] {
        retry_after(&join(token).await);
    }
    // The room gained the three sessions only.
    let events = http
        .call(
            "GET",
            &format!("/api/rooms/{room}/events?limit=1000"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(of_type(&events.json(), "customer_joined"), 3, "{}", events.json());
}

#[tokio::test]
async fn parallel_uploads_past_the_rate_are_refused_before_storing() {
    let server = Server::start().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let names: Vec<String> = (0..24).map(|n| format!("notes-{n}.txt")).collect();
    let uploads = names
        .iter()
        .map(|name| server.upload(&room, &customer, name, text(4096)));
    let replies: Vec<Reply> = join_all(uploads).await;
    let stored = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    // 10 at once by default (one more, should a token come back meanwhile).
    assert!((10..=11).contains(&stored), "{stored} stored");
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        retry_after(reply);
    }
    assert_eq!(server.stored_documents(), stored);
    // The agent's uploads are counted apart.
    let reply = server.upload(&room, &agent, "agent.txt", text(100)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
}

#[tokio::test]
async fn an_upload_past_the_room_quota_is_refused_and_nothing_is_kept() {
    let config = RoomsConfig::default().with_max_room_bytes(100_000).unwrap();
    let server = Server::start_with(agents(), |builder| builder.config(config)).await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let reply = server.upload(&room, &customer, "first.txt", text(60_000)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());

    let reply = server.upload(&room, &agent, "second.txt", text(60_000)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.code(), "quota_exceeded", "{:?}", reply.json());
    let error = &reply.json()["error"];
    assert_eq!(error["limit"], 40_000, "{error}");
    assert_eq!(error["field"], "body", "{error}");
    assert_eq!(server.stored_documents(), 1, "the refused upload left bytes");

    // What is left still fits; then the room is full.
    let reply = server.upload(&room, &agent, "third.txt", text(40_000)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
    let reply = server.upload(&room, &customer, "fourth.txt", text(1)).await;
    assert_eq!(reply.code(), "quota_exceeded", "{:?}", reply.json());
    assert_eq!(server.stored_documents(), 2);

    // Another room has its own quota.
    let (other_room, other) = server.room_for(&agent, "Ann", "Lee").await;
    let reply = server.upload(&other_room, &other, "theirs.txt", text(90_000)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
}

#[tokio::test]
async fn the_room_quota_follows_its_flag_and_holds_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        ServerProcess::start(|command| {
            command
                .args(["--agents", "ada:secret", "--room-quota-mib", "1", "--data"])
                .arg(dir.path());
        })
    };
    let server = start();
    let http = server.http();
    let agent = http.sign_in("ada", "secret").await;
    let room = http.call("POST", "/api/rooms", Some(&agent), None).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = upload(&server, &room, &agent, text(700 << 10)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
    let documents = dir.path().join("documents");
    assert_eq!(files_under(&documents), 1);
    server.kill();

    // Restarted: the room's use comes from its events.
    let server = start();
    let agent = server.http().sign_in("ada", "secret").await;
    let reply = upload(&server, &room, &agent, text(700 << 10)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["error"]["code"], "quota_exceeded", "{:?}", reply.json());
    assert_eq!(reply.json()["error"]["limit"], (1 << 20) - (700 << 10));
    assert_eq!(files_under(&documents), 1, "the refused upload left bytes");
}

/// Uploads `bytes` to `room` of the server process as the holder of `cookie`.
async fn upload(server: &ServerProcess, room: &str, cookie: &str, bytes: Vec<u8>) -> Reply {
    let path = format!("/api/rooms/{room}/documents?name=notes.txt");
    let headers = [("cookie", cookie), ("content-type", "application/octet-stream")];
    server.http().send("POST", &path, &headers, bytes).await.unwrap()
}
