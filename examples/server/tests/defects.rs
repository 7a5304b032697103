//! Issue 21's product defects, over HTTP: Office documents accepted and served as attachments,
//! closed and timed-out rooms read-only for their customer, email matched in any case, a reused
//! client key with another text refused, and a replayed join that cannot fill a room.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use collab_core::testing::files::zip;
use common::{Reply, Server};
use serde_json::json;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A minimal OOXML package: content types, package relationships and one main part.
fn ooxml(main_part: &str) -> Vec<u8> {
    let types = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/{main_part}" ContentType="application/xml"/></Types>"#
    );
    let rels = format!(
        r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="{main_part}"/></Relationships>"#
    );
    zip(&[
        ("[Content_Types].xml", types.as_bytes()),
        ("_rels/.rels", rels.as_bytes()),
        (main_part, b"<root/>"),
    ])
}

fn odf(media_type: &str) -> Vec<u8> {
    zip(&[
        ("mimetype", media_type.as_bytes()),
        ("content.xml", b"<office:document-content/>"),
    ])
}

/// A server, Ada's cookie, a room of hers and its customer's cookie.
async fn start() -> (Server, String, String, String) {
    let server = Server::start().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    (server, agent, room, customer)
}

/// Asserts a 409 with `code`.
fn assert_conflict(reply: &Reply, code: &str) {
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::CONFLICT, code),
        "{:?}",
        reply.json()
    );
}

fn document_url(uploaded: &Reply) -> String {
    uploaded.json()["document"]["url"].as_str().unwrap().to_owned()
}

async fn post(server: &Server, room: &str, cookie: &str, body: serde_json::Value) -> Reply {
    server
        .call("POST", &format!("/api/rooms/{room}/messages"), Some(cookie), Some(body))
        .await
}

#[tokio::test]
async fn office_documents_are_accepted_and_served_as_attachments() {
    let (server, agent, room, customer) = start().await;
    let files = [
        (
            "report.docx",
            ooxml("word/document.xml"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            "figures.xlsx",
            ooxml("xl/workbook.xml"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "slides.pptx",
            ooxml("ppt/presentation.xml"),
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        (
            "letter.odt",
            odf("application/vnd.oasis.opendocument.text"),
            "application/vnd.oasis.opendocument.text",
        ),
        (
            "sheet.ods",
            odf("application/vnd.oasis.opendocument.spreadsheet"),
            "application/vnd.oasis.opendocument.spreadsheet",
        ),
        (
            "deck.odp",
            odf("application/vnd.oasis.opendocument.presentation"),
            "application/vnd.oasis.opendocument.presentation",
        ),
    ];
    for (name, bytes, media_type) in files {
        let uploaded = server.upload(&room, &customer, name, bytes.clone()).await;
        assert_eq!(uploaded.status, StatusCode::CREATED, "{name}: {:?}", uploaded.json());
        let served = server.call("GET", &document_url(&uploaded), Some(&agent), None).await;
        assert_eq!(served.status, StatusCode::OK, "{name}");
        assert_eq!(served.header("content-type"), media_type, "{name}");
        assert!(
            served.header("content-disposition").starts_with("attachment;"),
            "{name}: {}",
            served.header("content-disposition")
        );
        assert_eq!(served.body, bytes, "{name}");
    }
    // A plain archive, and one whose entries only pretend to be Word, stay refused.
    let stored = server.stored_documents();
    let plain = zip(&[("notes.txt", b"hello")]);
    let mut pretend = zip(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")]);
    pretend.truncate(pretend.len() - 22);
    for (name, bytes) in [("notes.zip", plain), ("fake.docx", pretend)] {
        let refused = server.upload(&room, &customer, name, bytes).await;
        assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}");
        assert_eq!(refused.code(), "unsupported_media_type", "{name}");
    }
    assert_eq!(server.stored_documents(), stored, "refused uploads leave nothing");
}

#[tokio::test]
async fn a_closed_room_is_read_only_for_its_customer() {
    let (server, agent, room, customer) = start().await;
    assert_eq!(
        post(&server, &room, &customer, json!({"text": "before closing"}))
            .await
            .status,
        StatusCode::CREATED
    );
    let uploaded = server.upload(&room, &customer, "note.txt", b"a note".to_vec()).await;
    assert_eq!(uploaded.status, StatusCode::CREATED);
    let closed = server
        .call("POST", &format!("/api/rooms/{room}/close"), Some(&agent), None)
        .await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT);

    let me = server.call("GET", "/api/me", Some(&customer), None).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.json());
    assert_eq!(me.json()["room"], room.as_str());
    let events = server
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&customer), None)
        .await;
    assert_eq!(events.status, StatusCode::OK, "{:?}", events.json());
    assert!(events.body.windows(14).any(|w| w == b"before closing"));
    let download = server
        .call("GET", &document_url(&uploaded), Some(&customer), None)
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.body, b"a note");

    let posted = post(&server, &room, &customer, json!({"text": "after closing"})).await;
    assert_conflict(&posted, "room_closed");
    let upload = server.upload(&room, &customer, "more.txt", b"more".to_vec()).await;
    assert_conflict(&upload, "room_closed");
}

#[tokio::test]
async fn a_timed_out_room_is_read_only_for_its_customer() {
    let (server, _, room, customer) = start().await;
    server.clock.advance(91 * DAY);
    assert_eq!(
        server.call("GET", "/api/me", Some(&customer), None).await.status,
        StatusCode::OK
    );
    let events = server
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&customer), None)
        .await;
    assert_eq!(events.status, StatusCode::OK);
    let posted = post(&server, &room, &customer, json!({"text": "anyone?"})).await;
    assert_conflict(&posted, "room_timed_out");
}

#[tokio::test]
async fn email_addresses_match_in_any_case() {
    let server = Server::start().await;
    let agent = server.agent("ada", "secret").await;
    let room = server.create_room(&agent).await;
    let first = json!({"channel": "email", "first_name": "Grace", "last_name": "Hopper", "identifier": "Grace.Hopper@example.com"});
    server.invite(&agent, &room, first).await;
    // A re-invite through the same channel, typed in capitals.
    let again = json!({"channel": "email", "identifier": "GRACE.HOPPER@EXAMPLE.COM"});
    let reinvite = server
        .call("POST", &format!("/api/rooms/{room}/invites"), Some(&agent), Some(again))
        .await;
    assert_eq!(reinvite.status, StatusCode::CREATED, "{:?}", reinvite.json());
    let other = json!({"channel": "email", "identifier": "someone.else@example.com"});
    let refused = server
        .call("POST", &format!("/api/rooms/{room}/invites"), Some(&agent), Some(other))
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.json());

    for spelling in [
        "grace.hopper@example.com",
        "GRACE.HOPPER@EXAMPLE.COM",
        "Grace.Hopper@Example.Com",
    ] {
        let found = server
            .call("GET", &format!("/api/rooms?email={spelling}"), Some(&agent), None)
            .await;
        assert_eq!(found.status, StatusCode::OK, "{spelling}: {:?}", found.json());
        let rooms = found.json()["rooms"].as_array().cloned().unwrap_or_default();
        assert_eq!(rooms.len(), 1, "{spelling}: {rooms:?}");
        assert_eq!(rooms[0]["id"], room.as_str());
    }
    let view = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&agent), None)
        .await;
    assert_eq!(
        view.json()["customer"]["email"],
        "Grace.Hopper@example.com",
        "shown as given"
    );
}

#[tokio::test]
async fn a_client_key_reused_with_another_text_is_a_conflict() {
    let (server, _, room, customer) = start().await;
    let first = post(
        &server,
        &room,
        &customer,
        json!({"text": "Here it is", "client_key": "k-1"}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry = post(
        &server,
        &room,
        &customer,
        json!({"text": "Here it is", "client_key": "k-1"}),
    )
    .await;
    assert!(retry.status.is_success(), "{:?}", retry.json());
    assert_eq!(retry.json()["seq"], first.json()["seq"], "the same message");
    let other = post(
        &server,
        &room,
        &customer,
        json!({"text": "Something else", "client_key": "k-1"}),
    )
    .await;
    assert_conflict(&other, "conflict");
}

#[tokio::test]
async fn replaying_a_join_with_one_link_cannot_fill_the_room() {
    let (server, agent, room, customer) = start().await;
    let token = server.link_token(&agent, &room).await;
    let mut cookies = Vec::new();
    for _ in 0..collab_core::decide::MAX_PARTICIPANTS + 10 {
        cookies.push(server.join(&token).await);
    }
    let (latest, replaced) = cookies.split_last().unwrap();
    assert_eq!(
        server.call("GET", "/api/me", Some(latest), None).await.status,
        StatusCode::OK
    );
    for cookie in [&replaced[0], &replaced[replaced.len() - 1]] {
        let me = server.call("GET", "/api/me", Some(cookie), None).await;
        assert!(!me.status.is_success(), "a replaced session still works: {}", me.status);
    }
    // The first customer's session is untouched, and a new link still opens the room.
    assert_eq!(
        server.call("GET", "/api/me", Some(&customer), None).await.status,
        StatusCode::OK
    );
    let fresh = server.link_token(&agent, &room).await;
    let newcomer = server.join(&fresh).await;
    let posted = post(&server, &room, &newcomer, json!({"text": "I got in"})).await;
    assert_eq!(posted.status, StatusCode::CREATED);
}
