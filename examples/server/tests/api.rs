//! The JSON API in-process: every route, the error statuses, and access across rooms.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use collab_core::Error;
use collab_core::guard::{InviteAttempt, InviteGuard};
use common::{ORIGIN, Server, TWILIO_TOKEN, VONAGE_SIGNATURE_SECRET, agents, eventually};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(Debug)]
struct RefuseAll;

#[async_trait]
impl InviteGuard for RefuseAll {
    async fn admit(&self, _: &InviteAttempt<'_>) -> Result<(), Error> {
        Err(Error::RateLimited {
            retry_after: Duration::from_secs(120),
        })
    }
}

async fn server() -> Server {
    Server::start().await
}

#[tokio::test]
async fn every_documented_route_exists_and_answers_json() {
    let server = server().await;
    let doc = server.call("GET", "/api/openapi.json", None, None).await.json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "{paths:?}");
    assert!(
        doc["components"]["schemas"]["ErrorBody"].is_object(),
        "the error body is described"
    );
    let placeholder = "00000000-0000-0000-0000-000000000001";
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().unwrap() {
            // 401 where sign-in is required: contract.rs checks it against the access matrix.
            for status in ["400", "500", "503"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} does not list {status}"
                );
            }
            let uri = path.replace("{room}", placeholder).replace("{document}", placeholder);
            let uri = if uri.ends_with("/documents") {
                format!("{uri}?name=x.txt")
            } else {
                uri
            };
            let reply = server.call(&method.to_uppercase(), &uri, None, Some(json!({}))).await;
            // A route the router does not know answers 404/405 with no JSON body.
            assert!(
                !reply.body.is_empty() || reply.status.is_success(),
                "{method} {path}: {} with an empty body, so no such route",
                reply.status
            );
        }
    }
}

#[tokio::test]
async fn sign_in_is_required_and_checked() {
    let server = server().await;
    assert_eq!(
        server.call("GET", "/api/rooms", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = server
        .call(
            "POST",
            "/api/session",
            None,
            Some(json!({"agent": "ada", "password": "nope"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let cookie = server.agent("ada", "secret").await;
    assert_eq!(
        server.call("GET", "/api/me", Some(&cookie), None).await.json()["role"],
        "agent"
    );
    server.call("DELETE", "/api/session", Some(&cookie), None).await;
    assert_eq!(
        server.call("GET", "/api/me", Some(&cookie), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rooms_invites_and_errors_map_to_statuses() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let created = server.call("POST", "/api/rooms", Some(&agent), None).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json()["name"], "Collaboration Room");
    let room = created.json()["id"].as_str().unwrap().to_owned();
    let invites = format!("/api/rooms/{room}/invites");

    let bad_email = json!({"channel": "email", "first_name": "Ada", "last_name": "Lovelace", "identifier": "ada@"});
    let reply = server.call("POST", &invites, Some(&agent), Some(bad_email)).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid".to_owned())
    );
    assert_eq!(reply.json()["error"]["field"], "identifier");

    let early_link = server
        .call("POST", &invites, Some(&agent), Some(json!({"channel": "link"})))
        .await;
    assert_eq!(
        (early_link.status, early_link.code()),
        (StatusCode::CONFLICT, "not_allowed".to_owned())
    );

    let sms = json!({"channel": "sms", "first_name": "Ada", "last_name": "Lovelace", "identifier": "+447911123456"});
    let reply = server.call("POST", &invites, Some(&agent), Some(sms)).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "sms_not_activated".to_owned())
    );

    let email =
        json!({"channel": "email", "first_name": "Ada", "last_name": "Lovelace", "identifier": "ada@example.com"});
    assert_eq!(
        server.call("POST", &invites, Some(&agent), Some(email)).await.status,
        StatusCode::CREATED
    );
    let view = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&agent), None)
        .await
        .json();
    assert_eq!(view["name"], "Ada Lovelace");
    assert_eq!(view["customer"]["email"], "ada@example.com");

    let list = server
        .call("GET", "/api/rooms?name=ada", Some(&agent), None)
        .await
        .json();
    assert_eq!(list["rooms"][0]["id"], room.as_str());
    let bad_search = server.call("GET", "/api/rooms?phone=12", Some(&agent), None).await;
    assert_eq!(bad_search.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = server.call("GET", "/api/rooms/not-a-room", Some(&agent), None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    assert_eq!(
        server
            .call("POST", &format!("/api/rooms/{room}/close"), Some(&agent), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let closed = server
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&agent),
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(
        (closed.status, closed.code()),
        (StatusCode::CONFLICT, "room_closed".to_owned())
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let server = Server::start_with(agents(), |b| b.invite_guard(RefuseAll)).await;
    let agent = server.agent("ada", "secret").await;
    let room = server.call("POST", "/api/rooms", Some(&agent), None).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let email =
        json!({"channel": "email", "first_name": "Ada", "last_name": "Lovelace", "identifier": "ada@example.com"});
    let reply = server
        .call("POST", &format!("/api/rooms/{room}/invites"), Some(&agent), Some(email))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited".to_owned())
    );
    assert_eq!(reply.headers.get(header::RETRY_AFTER).unwrap(), "120");
}

#[tokio::test]
async fn customers_reach_only_their_room_and_its_documents() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let (other_room, other_customer) = server.room_with_customer(&agent).await;

    let posted = server
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&customer),
            Some(json!({"text": "hello"})),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED);
    assert_eq!(posted.json()["by"], "customer");
    assert_eq!(
        server.call("GET", "/api/rooms", Some(&customer), None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .call("GET", &format!("/api/rooms/{other_room}/events"), Some(&customer), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let invite = server
        .call(
            "POST",
            &format!("/api/rooms/{room}/invites"),
            Some(&customer),
            Some(json!({"channel": "link"})),
        )
        .await;
    assert_eq!(invite.status, StatusCode::FORBIDDEN);
    assert_eq!(
        server.call("GET", "/api/dev/inbox", Some(&customer), None).await.status,
        StatusCode::FORBIDDEN
    );

    // A document of room A, asked for through room B by B's customer, and directly by B's customer.
    let uploaded = server
        .send(
            "POST",
            &format!("/api/rooms/{room}/documents?name=note.txt"),
            Some(&customer),
            Body::from("a note"),
            "application/octet-stream",
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{:?}", uploaded.json());
    let url = uploaded.json()["document"]["url"].as_str().unwrap().to_owned();
    assert_eq!(
        server.call("GET", &url, Some(&other_customer), None).await.status,
        StatusCode::NOT_FOUND
    );
    let id = url.rsplit('/').next().unwrap();
    let through_b = server
        .call(
            "GET",
            &format!("/api/rooms/{other_room}/documents/{id}"),
            Some(&other_customer),
            None,
        )
        .await;
    assert_eq!(through_b.status, StatusCode::NOT_FOUND);
    let own = server.call("GET", &url, Some(&customer), None).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body, b"a note");
    assert_eq!(own.headers.get("x-content-type-options").unwrap(), "nosniff");
    assert!(
        own.headers
            .get(header::CONTENT_DISPOSITION)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("inline"),
        "plain text opens in the browser, as text"
    );
    assert!(
        own.headers
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
}

#[tokio::test]
async fn uploads_are_sniffed_limited_and_served_by_range() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let upload = |name: &str, bytes: Vec<u8>| {
        let uri = format!("/api/rooms/{room}/documents?name={name}");
        let customer = customer.clone();
        let server = &server;
        async move {
            server
                .send(
                    "POST",
                    &uri,
                    Some(&customer),
                    Body::from(bytes),
                    "application/octet-stream",
                )
                .await
        }
    };
    let html = upload("photo.jpg", b"<html><script>alert(1)</script></html>".to_vec()).await;
    assert_eq!(
        (html.status, html.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type".to_owned())
    );
    let big = upload("big.txt", vec![b'a'; 25 * 1024 * 1024 + 1]).await;
    assert_eq!(
        (big.status, big.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large".to_owned())
    );
    let empty = upload("empty.txt", Vec::new()).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);

    let text = upload("notes.txt", b"0123456789".to_vec()).await;
    let url = text.json()["document"]["url"].as_str().unwrap().to_owned();
    let ranged = server
        .send("GET", &url, Some(&customer), Body::empty(), "text/plain")
        .await;
    assert_eq!(ranged.status, StatusCode::OK);
    let range = |range: &'static str| {
        let headers = [("cookie", customer.as_str()), ("range", range)];
        let server = &server;
        let url = url.clone();
        async move { server.send_with("GET", &url, &headers, Body::empty()).await }
    };
    let part = range("bytes=2-4").await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers.get(header::CONTENT_RANGE).unwrap(), "bytes 2-4/10");
    assert_eq!(part.body, b"234");
    assert_eq!(
        range("bytes=5-2").await.status,
        StatusCode::OK,
        "an invalid range is ignored"
    );
    let past = range("bytes=10-").await;
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.headers.get(header::CONTENT_RANGE).unwrap(), "bytes */10");
}

#[tokio::test]
async fn an_upload_the_client_broke_off_is_its_fault_and_leaves_nothing() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    // Some bytes, then the connection fails: what axum's body gives when a client disconnects.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(vec![b'a'; 64 * 1024]),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let uri = format!("/api/rooms/{room}/documents?name=notes.txt");
    let reply = server
        .send("POST", &uri, Some(&customer), body, "application/octet-stream")
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "upload_aborted".to_owned())
    );
    assert_eq!(server.stored_documents(), 0, "an aborted upload left bytes behind");
}

#[tokio::test]
async fn cross_origin_state_changes_are_refused() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let create_from = |origin: &'static str| {
        let headers = [("cookie", agent.as_str()), ("origin", origin)];
        let server = &server;
        async move {
            server
                .send_with("POST", "/api/rooms", &headers, Body::empty())
                .await
                .status
        }
    };
    assert_eq!(create_from("https://evil.example").await, StatusCode::FORBIDDEN);
    assert_eq!(create_from(ORIGIN).await, StatusCode::CREATED);
}

#[tokio::test]
async fn live_events_resume_from_last_event_id_without_gap_or_duplicate() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    for i in 0..5 {
        let body = json!({"text": format!("m{i}")});
        server
            .call("POST", &format!("/api/rooms/{room}/messages"), Some(&agent), Some(body))
            .await;
    }
    let events = server
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&customer), None)
        .await
        .json();
    let last = events.as_array().unwrap().last().unwrap()["seq"].as_u64().unwrap();
    let resume_from = last - 3;
    let request = Request::builder()
        .uri(format!("/api/rooms/{room}/live"))
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::COOKIE, &customer)
        .header("last-event-id", resume_from.to_string())
        .body(Body::empty())
        .unwrap();
    let response = server.app.clone().oneshot(request).await.unwrap();
    assert_eq!(
        response.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/event-stream"
    );
    let mut body = response.into_body().into_data_stream();
    let mut text = String::new();
    let mut ids = Vec::new();
    while ids.len() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        ids = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(|id| id.parse::<u64>().unwrap())
            .collect();
    }
    assert_eq!(ids, (resume_from + 1..=last).collect::<Vec<_>>());
    assert!(!text.contains("ada@example"), "customers see no recipients");
}

#[tokio::test]
async fn typing_reaches_the_other_side_s_live_stream_as_an_event_without_an_id() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let last = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&customer), None)
        .await
        .json()["seq"]
        .as_u64()
        .unwrap();
    let request = Request::builder()
        .uri(format!("/api/rooms/{room}/live?after={last}"))
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::COOKIE, &customer)
        .body(Body::empty())
        .unwrap();
    let response = server.app.clone().oneshot(request).await.unwrap();
    let mut body = response.into_body().into_data_stream();
    // Read until quiet: the stream has read the store and listens, so what comes next comes
    // in the order it happened.
    while let Ok(early) = tokio::time::timeout(Duration::from_millis(200), body.next()).await {
        let early = early.unwrap().unwrap();
        assert!(
            !std::str::from_utf8(&early).unwrap().contains("typing"),
            "nobody typed yet"
        );
    }
    let typing = format!("/api/rooms/{room}/typing");
    for _ in 0..3 {
        let sent = server.call("POST", &typing, Some(&agent), None).await;
        assert_eq!(sent.status, StatusCode::NO_CONTENT, "passed on, or dropped as too soon");
    }
    // Then a message, so that everything sent before it has come once its event is read.
    let marker = json!({"text": "marker"});
    server
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&agent),
            Some(marker),
        )
        .await;
    let mut text = String::new();
    while !text.contains("marker") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("the marker in time")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let signals: Vec<&str> = text
        .split("\n\n")
        .filter(|block| block.contains("event: typing"))
        .collect();
    assert_eq!(signals.len(), 1, "three signals at once pass as one: {text}");
    assert!(
        !signals[0].contains("id:"),
        "a typing event moves no resume point: {}",
        signals[0]
    );
    let data = signals[0].lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let data: Value = serde_json::from_str(data).unwrap();
    assert_eq!(data, json!({"by": "agent", "expires_in_ms": 6000}));

    server
        .call("POST", &format!("/api/rooms/{room}/close"), Some(&agent), None)
        .await;
    // Past the interval, so that the signal is checked rather than dropped as too soon.
    server.clock.advance(Duration::from_secs(3));
    let refused = server.call("POST", &typing, Some(&agent), None).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "room_closed".to_owned())
    );
}

#[tokio::test]
async fn a_timed_out_room_is_read_only_for_the_customer() {
    let server = server().await;
    let clock = server.clock.clone();
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    clock.advance(Duration::from_secs(91 * 24 * 3600));
    let view = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&customer), None)
        .await
        .json();
    assert_eq!(view["status"], "timed_out");
    let post = server
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&customer),
            Some(json!({"text": "hello?"})),
        )
        .await;
    assert_eq!(
        (post.status, post.code()),
        (StatusCode::CONFLICT, "room_timed_out".to_owned())
    );
    let events = server
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&customer), None)
        .await;
    assert_eq!(events.status, StatusCode::OK, "still readable");
}

/// A new room with Ada invited by email: the room and the invite, for delivery reports.
async fn invited_by_email(server: &Server, agent: &str) -> (String, String) {
    let room = server.create_room(agent).await;
    let email =
        json!({"channel": "email", "first_name": "Ada", "last_name": "Lovelace", "identifier": "ada@example.com"});
    let invite = server.invite(agent, &room, email).await["invite"]
        .as_str()
        .unwrap()
        .to_owned();
    (room, invite)
}

#[tokio::test]
async fn twilio_callbacks_are_verified_then_recorded() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, invite) = invited_by_email(&server, &agent).await;
    let path = format!("/api/callbacks/twilio?room={room}&invite={invite}");
    let params = vec![
        ("MessageSid".to_owned(), "SM1".to_owned()),
        ("MessageStatus".to_owned(), "delivered".to_owned()),
    ];
    let webhook = collab_notify::TwilioWebhook::new(collab_notify::SecretString::from(TWILIO_TOKEN));
    let signature = webhook.signature(&format!("{ORIGIN}{path}"), &params).unwrap();
    let post = |body: &'static str| {
        let headers = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-twilio-signature", signature.as_str()),
        ];
        let (server, path) = (&server, path.clone());
        async move { server.send_with("POST", &path, &headers, Body::from(body)).await.status }
    };
    assert_eq!(
        post("MessageSid=SM1&MessageStatus=failed").await,
        StatusCode::FORBIDDEN,
        "tampered"
    );
    assert_eq!(
        post("MessageSid=SM1&MessageStatus=delivered").await,
        StatusCode::NO_CONTENT
    );
    let events = server
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&agent), None)
        .await
        .json();
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"invite_delivery"), "{types:?}");
    // The report says how far the invite got, and (to the agent) which invite it was.
    let delivered = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "invite_delivery" && e["delivery"] == "delivered")
        .unwrap_or_else(|| panic!("no delivered report: {events}"));
    assert_eq!(delivered["invite"], invite.as_str(), "{delivered}");
}

#[tokio::test]
async fn vonage_receipts_are_verified_then_recorded() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, invite) = invited_by_email(&server, &agent).await;
    let deliveries = || async {
        let events = server
            .call("GET", &format!("/api/rooms/{room}/events"), Some(&agent), None)
            .await
            .json();
        let count = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "invite_delivery")
            .count();
        (count, events)
    };
    // The dispatcher records the email as sent; wait for it, so the count below is the receipt's.
    eventually("the invite's sending", async || deliveries().await.0 > 0).await;
    let receipts = collab_notify::VonageReceipts::new(
        collab_notify::SecretString::from(VONAGE_SIGNATURE_SECRET),
        collab_notify::vonage::SignatureMethod::Sha256Hmac,
    );
    let mut params = vec![
        ("messageId".to_owned(), "0A0000000".to_owned()),
        ("status".to_owned(), "delivered".to_owned()),
        ("err-code".to_owned(), "0".to_owned()),
        ("client-ref".to_owned(), format!("{room}:{invite}")),
        ("timestamp".to_owned(), "1796398200".to_owned()),
    ];
    let sig = receipts.signature(&params).unwrap();
    params.push(("sig".to_owned(), sig));
    // Every value here is safe in a query as it is: ids, digits, letters, ':'.
    let encode = |params: &[(String, String)]| {
        params
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let mut tampered = params.clone();
    tampered[1].1 = "failed".to_owned();
    let get = |query: String| {
        let server = &server;
        async move {
            server
                .send_with("GET", &format!("/api/callbacks/vonage?{query}"), &[], Body::empty())
                .await
                .status
        }
    };
    assert_eq!(get(encode(&tampered)).await, StatusCode::FORBIDDEN, "tampered");
    assert_eq!(get(encode(&params)).await, StatusCode::NO_CONTENT);
    // The same receipt as a form POST: a replay, accepted, recording nothing more.
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let post = server
        .send_with("POST", "/api/callbacks/vonage", &headers, Body::from(encode(&params)))
        .await;
    assert_eq!(post.status, StatusCode::NO_CONTENT);
    let (count, events) = deliveries().await;
    assert_eq!(count, 2, "sent, then delivered once: {events}");
}

#[tokio::test]
async fn read_horizons_show_as_seen_and_unread() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let post = |cookie: &str, text: &str| {
        let (server, room, cookie, text) = (&server, room.clone(), cookie.to_owned(), text.to_owned());
        async move {
            let reply = server
                .call(
                    "POST",
                    &format!("/api/rooms/{room}/messages"),
                    Some(&cookie),
                    Some(json!({"text": text})),
                )
                .await;
            assert_eq!(reply.status, StatusCode::CREATED);
            reply.json()["seq"].as_u64().unwrap()
        }
    };
    let read = |cookie: &str, seq: u64| {
        let (server, room, cookie) = (&server, room.clone(), cookie.to_owned());
        async move {
            server
                .call(
                    "POST",
                    &format!("/api/rooms/{room}/read"),
                    Some(&cookie),
                    Some(json!({"seq": seq})),
                )
                .await
        }
    };
    let unread = || async {
        let rooms = server.call("GET", "/api/rooms", Some(&agent), None).await.json();
        rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == room.as_str())
            .unwrap()["unread"]
            .as_u64()
            .unwrap()
    };
    post(&customer, "Hello").await;
    let question = post(&customer, "Did you get the form?").await;
    assert_eq!(unread().await, 2);

    // The agent reads: unread falls; the customer's page sees how far.
    assert_eq!(read(&agent, question).await.status, StatusCode::NO_CONTENT);
    assert_eq!(unread().await, 0);
    let view = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&customer), None)
        .await
        .json();
    assert_eq!(view["seen_by_agents"], question);
    assert_eq!(view["seen_by_customer"], 0);

    // The customer reads the agent's answer; the timeline carries the horizon.
    let answer = post(&agent, "Yes, thank you").await;
    assert_eq!(read(&customer, answer).await.status, StatusCode::NO_CONTENT);
    let view = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&agent), None)
        .await
        .json();
    assert_eq!(view["seen_by_customer"], answer);
    let events = server
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&agent), None)
        .await
        .json();
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["type"].as_str(), last["by"].as_str()),
        (Some("read_up_to"), Some("customer"))
    );
    assert_eq!(last["read_up_to"], answer);
    assert!(last["text"].is_null(), "no line in the timeline: {last}");

    // Past the room's last event: refused, naming the field, nothing recorded.
    let past = read(&customer, 1_000).await;
    assert_eq!(past.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(past.json()["error"]["field"], "seq", "{}", past.json());
    let bad = read(&customer, 0).await;
    assert_eq!(bad.status, StatusCode::NO_CONTENT, "an old horizon changes nothing");
}

#[tokio::test]
async fn a_rebound_host_name_is_refused() {
    let server = server().await;
    let sign_in = |host: &'static str| {
        let origin = format!("http://{host}");
        let server = &server;
        async move {
            let headers = [
                ("host", host),
                ("origin", origin.as_str()),
                ("content-type", "application/json"),
            ];
            let body = Body::from(r#"{"agent":"ada","password":"secret"}"#);
            server.send_with("POST", "/api/session", &headers, body).await.status
        }
    };
    assert_eq!(sign_in("evil.test:8080").await, StatusCode::FORBIDDEN);
    assert_eq!(sign_in("127.0.0.1:8080").await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn malformed_requests_get_json_errors_too() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let bad = server
        .send(
            "POST",
            "/api/rooms/x/messages",
            Some(&agent),
            Body::from("{not json"),
            "application/json",
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "bad_request");
    let nowhere = server.call("GET", "/api/no/such/route", Some(&agent), None).await;
    assert_eq!(
        (nowhere.status, nowhere.code()),
        (StatusCode::NOT_FOUND, "not_found".to_owned())
    );
}

#[tokio::test]
async fn the_customer_page_acts_as_the_customer_in_a_browser_signed_in_as_an_agent_too() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let both = format!("{agent}; {customer}");
    let headers = [
        ("cookie", both.as_str()),
        ("content-type", "application/json"),
        ("x-collab-as", "customer"),
    ];
    let body = Body::from(r#"{"text":"from the customer page"}"#);
    let posted = server
        .send_with("POST", &format!("/api/rooms/{room}/messages"), &headers, body)
        .await;
    assert_eq!(posted.status, StatusCode::CREATED);
    assert_eq!(posted.json()["by"], "customer");
    let plain = server
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&both),
            Some(json!({"text": "console"})),
        )
        .await;
    assert_eq!(
        plain.json()["by"],
        "agent",
        "without the header the agent's cookie counts"
    );
}

#[tokio::test]
async fn merging_a_customer_s_rooms_leads_her_session_to_the_survivor() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (absorbed, customer) = server.room_with_customer(&agent).await;
    let post = |room: &str, cookie: &str, text: &str| {
        let (server, path, cookie, text) = (
            &server,
            format!("/api/rooms/{room}/messages"),
            cookie.to_owned(),
            text.to_owned(),
        );
        async move {
            server
                .call("POST", &path, Some(&cookie), Some(json!({ "text": text })))
                .await
        }
    };
    assert_eq!(
        post(&absorbed, &customer, "in the first room").await.status,
        StatusCode::CREATED
    );
    let me = server.call("GET", "/api/me", Some(&customer), None).await.json();
    // A second room for the same customer, by the same address.
    let survivor = server.create_room(&agent).await;
    let again =
        json!({"channel": "email", "first_name": "Grace", "last_name": "Hopper", "identifier": "grace@example.com"});
    server.invite(&agent, &survivor, again).await;

    let merge = |room: &str, into: Value| {
        let (server, path, agent) = (&server, format!("/api/rooms/{room}/merge"), agent.clone());
        async move { server.call("POST", &path, Some(&agent), Some(into)).await }
    };
    let refused = merge(&absorbed, json!({ "into": "not-a-room" })).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.json()["error"]["field"], "into");
    let merged = merge(&absorbed, json!({ "into": survivor })).await;
    assert_eq!(merged.status, StatusCode::OK, "{:?}", merged.json());
    assert_eq!(merged.json()["id"], survivor.as_str());

    let old = server
        .call("GET", &format!("/api/rooms/{absorbed}"), Some(&agent), None)
        .await
        .json();
    assert_eq!(
        (old["status"].as_str(), old["merged_into"].as_str()),
        (Some("merged"), Some(survivor.as_str()))
    );
    let refused = post(&absorbed, &agent, "too late").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let error = refused.json();
    assert_eq!(
        (error["error"]["code"].as_str(), error["error"]["room"].as_str()),
        (Some("room_merged"), Some(survivor.as_str()))
    );

    // Her session now acts in the survivor, which holds her earlier message.
    let me_now = server.call("GET", "/api/me", Some(&customer), None).await.json();
    assert_eq!(me["room"], absorbed.as_str());
    assert_eq!(me_now["room"], survivor.as_str());
    assert_eq!(
        post(&survivor, &customer, "in the merged room").await.status,
        StatusCode::CREATED
    );
    let events = server
        .call("GET", &format!("/api/rooms/{survivor}/events"), Some(&customer), None)
        .await
        .json();
    let texts: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message_posted")
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(texts, ["in the first room", "in the merged room"]);
    let record = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "room_merged")
        .unwrap();
    assert_eq!(record["room"], absorbed.as_str());
}

#[tokio::test]
async fn an_admin_s_settings_time_rooms_out_tell_the_customer_and_word_the_next_invite() {
    let server = server().await;
    let ada = server.agent("ada", "secret").await;
    let bob = server.agent("bob", "hunter2").await;
    let (room, customer) = server.room_with_customer(&ada).await;
    let settings = json!({
        "timeout_days": 3,
        "timed_out_message": "Quiet for 3 days: call Acme on 555-0100.",
        "email_template": "Dear {first_name}, your Acme room: {link}",
    });
    let put = |cookie: &str, body: Value| {
        let (server, cookie) = (&server, cookie.to_owned());
        async move { server.call("PUT", "/api/settings", Some(&cookie), Some(body)).await }
    };
    // Agents read them; only admins change them; bad values name their field.
    let before = server.call("GET", "/api/settings", Some(&bob), None).await.json();
    assert_eq!(
        (before["version"].as_u64(), before["can_change"].as_bool()),
        (Some(0), Some(false))
    );
    assert_eq!(before["default_timeout_days"], 90);
    assert_eq!(put(&bob, settings.clone()).await.status, StatusCode::FORBIDDEN);
    let bad = put(&ada, json!({ "timeout_days": 2 })).await;
    assert_eq!(
        (bad.status, bad.json()["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("timeout_days"))
    );
    let bad = put(&ada, json!({ "locale": "not a language!" })).await;
    assert_eq!(bad.json()["error"]["field"], "locale");
    let changed = put(&ada, settings).await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.json());
    assert_eq!(
        (
            changed.json()["version"].as_u64(),
            changed.json()["changed_by"].as_str()
        ),
        (Some(1), Some("ada"))
    );

    // Four quiet days: the room timed out under the tenant's three, and says why.
    server.clock.advance(Duration::from_secs(4 * 24 * 3600));
    let seen = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&customer), None)
        .await
        .json();
    assert_eq!(seen["status"], "timed_out");
    assert_eq!(seen["timed_out_message"], "Quiet for 3 days: call Acme on 555-0100.");
    let refused = server
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&customer),
            Some(json!({"text": "hello?"})),
        )
        .await;
    assert_eq!(refused.json()["error"]["code"], "room_timed_out");

    // The next invite is worded the tenant's way.
    let sent_before = server.inbox.sent().len();
    server.invite(&ada, &room, json!({"channel": "email"})).await;
    eventually("the invite's sending", async || server.inbox.sent().len() > sent_before).await;
    let text = server.inbox.sent().last().unwrap().text.clone();
    assert!(text.starts_with("Dear Grace, your Acme room: http"), "{text}");

    // The history says who changed what.
    put(&ada, json!({})).await;
    let history = server
        .call("GET", "/api/settings/history", Some(&bob), None)
        .await
        .json();
    let versions: Vec<u64> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [2, 1]);
    assert_eq!(history["changes"][1]["settings"]["timeout_days"], 3);
    assert_eq!(history["changes"][1]["by"], "ada");
}
