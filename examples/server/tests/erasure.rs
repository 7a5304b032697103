//! Erasure over HTTP (issue 16): an agent erases a room or a customer; the timeline keeps its
//! sequence numbers with the content gone, the customer's way in closes, the documents leave
//! the disk, and only the room's agents may.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::Server;
use serde_json::{Value, json};

async fn events(server: &Server, agent: &str, room: &str) -> Vec<Value> {
    let reply = server
        .call("GET", &format!("/api/rooms/{room}/events"), Some(agent), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    reply.json().as_array().unwrap().clone()
}

#[tokio::test]
async fn an_erased_room_keeps_its_sequence_and_loses_its_content() {
    let server = Server::start().await;
    let ada = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&ada).await;
    let post = server
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&customer),
            Some(json!({"text": "my account number is 12345678"})),
        )
        .await;
    assert_eq!(post.status, StatusCode::CREATED, "{:?}", post.json());
    let uploaded = server
        .upload(&room, &customer, "note.txt", b"a private note".to_vec())
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{:?}", uploaded.json());
    assert!(server.stored_documents() > 0);
    let before = events(&server, &ada, &room).await;

    // Not the customer's to do, nor another tenant's agent's (who must not learn it exists).
    let erase = format!("/api/rooms/{room}/erase");
    let refused = server.call("POST", &erase, Some(&customer), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.json());

    let erased = server.call("POST", &erase, Some(&ada), None).await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT, "{:?}", erased.json());

    let after = events(&server, &ada, &room).await;
    assert_eq!(after.len(), before.len() + 1, "one event more, none gone");
    for (i, event) in after.iter().enumerate() {
        assert_eq!(event["seq"], json!(i + 1), "no gap: {event}");
    }
    let text = serde_json::to_string(&after).unwrap();
    for personal in ["Grace", "Hopper", "grace@example.com", "12345678", "note.txt"] {
        assert!(!text.contains(personal), "{personal} is still in the timeline: {text}");
    }
    assert_eq!(after.last().unwrap()["type"], "room_erased");
    assert!(
        after[1..after.len() - 1].iter().all(|e| e["type"] == "redacted"),
        "{text}"
    );
    assert_eq!(server.stored_documents(), 0, "the documents left the disk");
    // The export of an erased room holds its tombstones, nothing personal.
    let export = server
        .call("GET", &format!("/api/rooms/{room}/export"), Some(&ada), None)
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.header("content-type"), "application/zip");
    assert!(export.header("content-disposition").starts_with("attachment"));
    let archive = collab_core::testing::files::read_zip_with_python(&export.body);
    assert_eq!(archive[0].0, "events.jsonl");
    assert_eq!(archive.len(), 2, "no document left to export");
    for (name, bytes) in &archive {
        let text = String::from_utf8_lossy(bytes);
        for personal in ["Grace", "12345678", "a private note"] {
            assert!(!text.contains(personal), "{personal} in {name}");
        }
    }

    let room_view = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&ada), None)
        .await;
    assert_eq!(room_view.json()["status"], "erased");
    assert!(room_view.json()["customer"].is_null());
    // The customer's session is gone; the agent can read, not write.
    let me = server.call("GET", "/api/me", Some(&customer), None).await;
    assert!(
        matches!(me.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
        "{}",
        me.status
    );
    let write = server
        .call(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&ada),
            Some(json!({"text": "hello?"})),
        )
        .await;
    assert_eq!(write.status, StatusCode::GONE);
    assert_eq!(write.code(), "room_erased");
    // Repeating it is no error and adds nothing.
    let again = server.call("POST", &erase, Some(&ada), None).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    assert_eq!(events(&server, &ada, &room).await.len(), after.len());
}

#[tokio::test]
async fn erasing_a_customer_covers_each_of_their_rooms_and_no_other() {
    let server = Server::start().await;
    let ada = server.agent("ada", "secret").await;
    let (first, _) = server.room_with_customer(&ada).await;
    let (second, _) = server.room_with_customer(&ada).await;
    let (other, _) = server.room_for(&ada, "Alan", "Turing").await;

    let answer = server
        .call(
            "POST",
            "/api/customers/erase",
            Some(&ada),
            Some(json!({"email": "GRACE@example.com"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.json());
    let mut rooms: Vec<String> = answer.json()["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    rooms.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(rooms, expected);
    for room in [&first, &second] {
        let view = server
            .call("GET", &format!("/api/rooms/{room}"), Some(&ada), None)
            .await;
        assert_eq!(view.json()["status"], "erased");
    }
    let view = server
        .call("GET", &format!("/api/rooms/{other}"), Some(&ada), None)
        .await;
    assert_eq!(view.json()["customer"]["first_name"], "Alan");

    // Search finds nothing of her any more; asking again erases nothing.
    let found = server
        .call("GET", "/api/rooms?email=grace@example.com", Some(&ada), None)
        .await;
    assert_eq!(found.json()["rooms"], json!([]));
    let again = server
        .call(
            "POST",
            "/api/customers/erase",
            Some(&ada),
            Some(json!({"email": "grace@example.com"})),
        )
        .await;
    assert_eq!(again.json()["rooms"], json!([]));
}

#[tokio::test]
async fn a_customer_erasure_names_one_identifier() {
    let server = Server::start().await;
    let ada = server.agent("ada", "secret").await;
    let (_, customer) = server.room_with_customer(&ada).await;
    for body in [
        json!({}),
        json!({"phone": "+447911123456", "email": "grace@example.com"}),
        // Exactly one field, as the document's `maxProperties` says: an empty or null second
        // one is still a second one.
        json!({"phone": "", "email": "grace@example.com"}),
        json!({"phone": null, "email": "grace@example.com"}),
        json!({"email": ""}),
        json!({"email": null}),
        json!({"phone": "not a number"}),
        json!({"email": "nobody"}),
    ] {
        let reply = server
            .call("POST", "/api/customers/erase", Some(&ada), Some(body.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            reply.json()
        );
        assert!(
            !reply.json()["error"]["field"].as_str().unwrap_or("").is_empty(),
            "{body}: names the field: {:?}",
            reply.json()
        );
    }
    let reply = server
        .call(
            "POST",
            "/api/customers/erase",
            Some(&customer),
            Some(json!({"email": "grace@example.com"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{:?}", reply.json());
}
