//! Ending access over HTTP (issue 21): a customer's sign-out ends the session on the server, an
//! agent sees a room's links and live sessions and revokes either, and only the room's agents
//! may.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use collab_core::TenantId;
use common::{Server, agents};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A room with Grace invited by email and joined through a link: the room, the link's token
/// and her cookie.
async fn room_with_link(server: &Server, agent: &str) -> (String, String, String) {
    let room = server.create_room(agent).await;
    let invite = json!({"channel": "email", "first_name": "Grace", "last_name": "Hopper",
        "identifier": "grace@example.com"});
    server.invite(agent, &room, invite).await;
    let token = server.link_token(agent, &room).await;
    let customer = server.join(&token).await;
    (room, token, customer)
}

async fn status(server: &Server, method: &str, uri: &str, cookie: &str) -> StatusCode {
    server.call(method, uri, Some(cookie), None).await.status
}

async fn access(server: &Server, agent: &str, room: &str) -> Value {
    let reply = server
        .call("GET", &format!("/api/rooms/{room}/access"), Some(agent), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    reply.json()
}

/// The join request of an invite token, answered.
async fn join_status(server: &Server, token: &str) -> StatusCode {
    server
        .call("POST", "/api/join", None, Some(json!({"token": token})))
        .await
        .status
}

#[tokio::test]
async fn a_customer_s_sign_out_ends_the_session_on_the_server() {
    let server = Server::start().await;
    let ada = server.agent("ada", "secret").await;
    let (room, token, customer) = room_with_link(&server, &ada).await;
    let room_uri = format!("/api/rooms/{room}");
    assert_eq!(status(&server, "GET", "/api/me", &customer).await, StatusCode::OK);

    let out = server.call("DELETE", "/api/session", Some(&customer), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(out.cookie_named("collab_customer").as_deref(), Some("collab_customer="));

    // The old cookie, kept (or stolen), is refused everywhere.
    for uri in ["/api/me", room_uri.as_str(), &format!("{room_uri}/events")] {
        let reply = server.call("GET", uri, Some(&customer), None).await;
        assert!(
            matches!(reply.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "{uri}: {}",
            reply.status
        );
        assert!(!reply.code().is_empty(), "{uri}: a JSON error");
    }
    let post = server
        .call(
            "POST",
            &format!("{room_uri}/messages"),
            Some(&customer),
            Some(json!({"text": "still here?"})),
        )
        .await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert!(
        access(&server, &ada, &room).await["sessions"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Signing out again is harmless; the link from the email opens the room again.
    let again = server.call("DELETE", "/api/session", Some(&customer), None).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let back = server.join(&token).await;
    assert_eq!(status(&server, "GET", &room_uri, &back).await, StatusCode::OK);
    // The agent's sign-in was not the customer's to end.
    assert_eq!(status(&server, "GET", &room_uri, &ada).await, StatusCode::OK);
}

#[tokio::test]
async fn the_agent_sees_a_room_s_links_and_live_sessions_and_its_customer_does_not() {
    let server = Server::start().await;
    let ada = server.agent("ada", "secret").await;
    let (room, _, customer) = room_with_link(&server, &ada).await;
    let view = access(&server, &ada, &room).await;
    let invites = view["invites"].as_array().unwrap();
    let channels: Vec<&str> = invites.iter().map(|i| i["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["email", "link"]);
    assert_eq!(invites[0]["recipient"], "grace@example.com");
    assert_eq!(invites[1]["status"], "opened");
    for invite in invites {
        assert_eq!(invite["live"], true, "{invite}");
        assert!(invite["expires_at"].as_str().unwrap() > invite["issued_at"].as_str().unwrap());
    }
    let sessions = view["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{view}");
    assert_eq!(sessions[0]["invite"], invites[1]["id"]);
    assert_eq!(sessions[0]["channel"], "link");

    // The room's customer reads the room, not who else can get in.
    let theirs = server
        .call("GET", &format!("/api/rooms/{room}/access"), Some(&customer), None)
        .await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
    assert_eq!(theirs.code(), "forbidden");
    let room_view = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&customer), None)
        .await;
    assert!(!String::from_utf8_lossy(&room_view.body).contains("sessions"));
}

#[tokio::test]
async fn an_agent_revokes_a_session_its_cookie_is_refused_and_its_live_stream_ends() {
    let server = Server::start().await;
    let ada = server.agent("ada", "secret").await;
    let (room, token, customer) = room_with_link(&server, &ada).await;
    let request = Request::builder()
        .uri(format!("/api/rooms/{room}/live"))
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::COOKIE, &customer)
        .header("x-collab-as", "customer")
        .body(Body::empty())
        .unwrap();
    let response = server.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body().into_data_stream();

    let session = access(&server, &ada, &room).await["sessions"][0]["participant"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = server
        .call(
            "DELETE",
            &format!("/api/rooms/{room}/sessions/{session}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{:?}", revoke.json());

    // The stream delivers the revocation, then ends (bounded wait: a stream that stays open
    // fails here instead of hanging).
    let mut text = String::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the customer's live stream ended");
        match next {
            Some(chunk) => text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap()),
            None => break,
        }
    }
    assert!(text.contains("session_revoked"), "{text}");
    assert_eq!(
        status(&server, "GET", "/api/me", &customer).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(&server, "GET", &format!("/api/rooms/{room}"), &customer).await,
        StatusCode::FORBIDDEN
    );
    // Its link is revoked with it: the same link cannot open a new session.
    assert_eq!(join_status(&server, &token).await, StatusCode::NOT_FOUND);
    let view = access(&server, &ada, &room).await;
    assert!(view["sessions"].as_array().unwrap().is_empty(), "{view}");
    assert_eq!(view["invites"][1]["live"], false, "{view}");

    // Again: nothing left to revoke, still done.
    let again = server
        .call(
            "DELETE",
            &format!("/api/rooms/{room}/sessions/{session}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_agent_revokes_an_invite_and_its_link_no_longer_opens_the_room() {
    let server = Server::start().await;
    let ada = server.agent("ada", "secret").await;
    let (room, token, customer) = room_with_link(&server, &ada).await;
    let spare = server.link_token(&ada, &room).await;
    let view = access(&server, &ada, &room).await;
    let invites = view["invites"].as_array().unwrap();
    assert_eq!(invites.len(), 3, "{view}");
    // The link Grace joined with: the one her session names.
    let link = view["sessions"][0]["invite"].as_str().unwrap().to_owned();

    let revoke = server
        .call("DELETE", &format!("/api/rooms/{room}/invites/{link}"), Some(&ada), None)
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{:?}", revoke.json());
    let joined = server
        .call("POST", "/api/join", None, Some(json!({"token": token})))
        .await;
    assert_eq!(joined.status, StatusCode::NOT_FOUND);
    assert_eq!(joined.code(), "not_found");
    assert_eq!(
        status(&server, "GET", "/api/me", &customer).await,
        StatusCode::FORBIDDEN
    );
    let view = access(&server, &ada, &room).await;
    let revoked = view["invites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == link.as_str())
        .unwrap();
    assert_eq!(
        (revoked["status"].as_str(), revoked["live"].as_bool()),
        (Some("revoked"), Some(false))
    );
    // The other link still works.
    assert_eq!(join_status(&server, &spare).await, StatusCode::OK);
}

#[tokio::test]
async fn unknown_sessions_and_invites_are_404_json() {
    let server = Server::start().await;
    let ada = server.agent("ada", "secret").await;
    let (room, _, _) = room_with_link(&server, &ada).await;
    let unknown = "00000000-0000-0000-0000-000000000001";
    let missing_room = format!("/api/rooms/{unknown}/invites/{unknown}");
    for uri in [
        format!("/api/rooms/{room}/sessions/{unknown}"),
        format!("/api/rooms/{room}/invites/{unknown}"),
        format!("/api/rooms/{room}/sessions/not-an-id"),
        format!("/api/rooms/{room}/invites/not-an-id"),
        missing_room,
    ] {
        let reply = server.call("DELETE", &uri, Some(&ada), None).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{uri}"
        );
    }
    let reply = server
        .call("GET", &format!("/api/rooms/{unknown}/access"), Some(&ada), None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn customers_and_other_tenants_agents_cannot_revoke() {
    let agents = agents().with_tenant(
        TenantId::new("globex").unwrap(),
        HashMap::from([("eve".to_owned(), "evil-pass".to_owned())]),
    );
    let server = Server::start_with(agents, |builder| builder).await;
    let ada = server.agent("ada", "secret").await;
    let eve = server.agent("eve", "evil-pass").await;
    let (room, token, customer) = room_with_link(&server, &ada).await;
    let (other_room, _, other_customer) = room_with_link(&server, &ada).await;
    let view = access(&server, &ada, &room).await;
    let session = view["sessions"][0]["participant"].as_str().unwrap().to_owned();
    let invite = view["sessions"][0]["invite"].as_str().unwrap().to_owned();
    let operations = [
        ("GET", format!("/api/rooms/{room}/access")),
        ("DELETE", format!("/api/rooms/{room}/sessions/{session}")),
        ("DELETE", format!("/api/rooms/{room}/invites/{invite}")),
    ];
    for (method, uri) in &operations {
        for (who, cookie, want) in [
            // The room's own customer: forbidden, as for the agents' other routes.
            ("customer", &customer, StatusCode::FORBIDDEN),
            // Another room's customer and another tenant's agent: as if it did not exist.
            ("other room's customer", &other_customer, StatusCode::NOT_FOUND),
            ("other tenant's agent", &eve, StatusCode::NOT_FOUND),
        ] {
            let reply = server.call(method, uri, Some(cookie), None).await;
            assert_eq!(reply.status, want, "{method} {uri} as {who}: {:?}", reply.json());
            assert!(!reply.code().is_empty(), "{method} {uri} as {who}: a JSON error");
            let text = String::from_utf8_lossy(&reply.body);
            assert!(!text.contains("grace@example.com"), "{method} {uri} as {who}: {text}");
        }
    }
    // Nothing was revoked by them.
    assert_eq!(status(&server, "GET", "/api/me", &customer).await, StatusCode::OK);
    assert_eq!(
        status(&server, "GET", &format!("/api/rooms/{other_room}"), &other_customer).await,
        StatusCode::OK
    );
    assert_eq!(join_status(&server, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn the_document_describes_the_access_routes() {
    let server = Server::start().await;
    let document = server.call("GET", "/api/openapi.json", None, None).await.json();
    let paths = &document["paths"];
    for (path, method, ok) in [
        ("/api/rooms/{room}/access", "get", "200"),
        ("/api/rooms/{room}/sessions/{participant}", "delete", "204"),
        ("/api/rooms/{room}/invites/{invite}", "delete", "204"),
    ] {
        let operation = &paths[path][method];
        for status in [ok, "403", "404"] {
            assert!(operation["responses"][status].is_object(), "{method} {path}: {status}");
        }
    }
    assert!(document["components"]["schemas"]["AccessView"].is_object());
    let sign_out = &paths["/api/session"]["delete"];
    let said = format!("{} {}", sign_out["summary"], sign_out["description"]);
    assert!(said.contains("customer's session"), "{said}");
}
