//! Who may do what, over HTTP: every documented operation × every kind of caller, each in a
//! fresh server, against the status it must get; and no answer tells a caller anything about a
//! room it may not see.
//!
//! The world: tenant `acme` (agent `ada`) has room A (customer Grace Hopper) and room B
//! (customer Linus Torvalds); tenant `globex` (agent `eve`) has room C (customer Margaret
//! Hamilton). Requests name room A and a document in it.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use collab_core::Policy;
use collab_core::{Actor, AgentId, TenantId};
use collab_server::auth::Agents;
use common::matrix::{CALLERS, Caller, EXPECTED};
use common::{Reply, Server};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

/// What one caller holds.
#[derive(Clone, Debug, Default)]
struct Credential {
    cookie: Option<String>,
    /// The invite token the caller would join with.
    join_token: Option<String>,
}

/// What identifies a room to someone who may not see it.
#[derive(Debug)]
struct RoomMarks {
    name: &'static str,
    marks: Vec<String>,
}

struct World {
    server: Server,
    room: String,
    /// Room B: the tenant's other room, of another customer.
    room_b: String,
    document: String,
    invite: String,
    /// The customer's session in room A.
    participant: String,
    credentials: HashMap<&'static str, Credential>,
    rooms: Vec<RoomMarks>,
}

fn key(caller: Caller) -> &'static str {
    match caller {
        Caller::Nobody => "nobody",
        Caller::Agent => "agent",
        Caller::OtherTenantAgent => "other tenant's agent",
        Caller::Customer => "customer",
        Caller::OtherRoomCustomer => "other room's customer",
        Caller::RevokedSession => "revoked session",
        Caller::ExpiredInvite => "expired invite",
        Caller::SignedOutAgent => "signed-out agent",
    }
}

/// The rooms (by `RoomMarks::name`) a caller may see.
fn visible(caller: Caller) -> &'static [&'static str] {
    match caller {
        Caller::Agent => &["A", "B"],
        Caller::OtherTenantAgent => &["C"],
        Caller::Customer => &["A"],
        Caller::OtherRoomCustomer => &["B"],
        _ => &[],
    }
}

async fn wait_for_inbox(server: &Server, messages: usize) {
    for _ in 0..500 {
        if server.inbox.sent().len() >= messages {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the dispatcher did not send {messages} invites");
}

fn token_of(cookie: &str) -> &str {
    cookie.split_once('=').unwrap().1
}

async fn world() -> World {
    let agents = Agents::new(
        TenantId::new("acme").unwrap(),
        HashMap::from([("ada".to_owned(), "secret".to_owned())]),
    )
    .with_tenant(
        TenantId::new("globex").unwrap(),
        HashMap::from([("eve".to_owned(), "evil-pass".to_owned())]),
    )
    .with_admin(TenantId::new("acme").unwrap(), "ada");
    let server = Server::start_with(agents, |builder| builder).await;
    let ada = server.agent("ada", "secret").await;
    let eve = server.agent("eve", "evil-pass").await;
    let signed_out = server.agent("ada", "secret").await;
    let reply = server.call("DELETE", "/api/session", Some(&signed_out), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);

    // Room A: a link that expires, then a customer, and a session that is revoked.
    let room = server.create_room(&ada).await;
    let grace =
        json!({"channel": "email", "first_name": "Grace", "last_name": "Hopper", "identifier": "grace@example.com"});
    let invite = server.invite(&ada, &room, grace).await["invite"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_inbox(&server, 1).await;
    let expired = server.link_token(&ada, &room).await;
    server
        .clock
        .advance(Policy::DEFAULT_INVITE_TTL + Duration::from_secs(60));
    let customer_token = server.link_token(&ada, &room).await;
    let customer = server.join(&customer_token).await;
    let Actor::Customer {
        participant: customer_participant,
        ..
    } = server.rooms.customer_session(token_of(&customer)).await.unwrap()
    else {
        panic!("not a customer");
    };
    let revoked_token = server.link_token(&ada, &room).await;
    let revoked = server.join(&revoked_token).await;
    let Actor::Customer { participant, .. } = server.rooms.customer_session(token_of(&revoked)).await.unwrap() else {
        panic!("not a customer");
    };
    let ada_actor = Actor::Agent {
        tenant: TenantId::new("acme").unwrap(),
        agent: AgentId::new("ada").unwrap(),
    };
    let room_id = room.parse().unwrap();
    server
        .rooms
        .revoke_session(&ada_actor, room_id, participant)
        .await
        .unwrap();
    // The customer's own link: the newest, as each link supersedes the one before.
    let customer_token = server.link_token(&ada, &room).await;
    // An image, so that its thumbnail is there for those who may see it.
    let picture = collab_core::testing::files::png(40, 30);
    let uploaded = server.upload(&room, &customer, "agenda-notes.png", picture).await;
    assert_eq!(uploaded.status, StatusCode::CREATED);
    let document = uploaded.json()["document"]["id"].as_str().unwrap().to_owned();

    // Room B, same tenant, another customer; room C of another tenant.
    let (room_b, other_customer) = server.room_for(&ada, "Linus", "Torvalds").await;
    let other_token = server.link_token(&ada, &room_b).await;
    let (room_c, _) = server.room_for(&eve, "Margaret", "Hamilton").await;
    wait_for_inbox(&server, 3).await;

    let made_up = "ab".repeat(32);
    let credential = |cookie: &str, join_token: &str| Credential {
        cookie: Some(cookie.to_owned()),
        join_token: Some(join_token.to_owned()),
    };
    let agent = |cookie: &str| Credential {
        cookie: Some(cookie.to_owned()),
        join_token: Some(made_up.clone()),
    };
    let credentials = HashMap::from([
        (
            key(Caller::Nobody),
            Credential {
                cookie: None,
                join_token: Some(made_up.clone()),
            },
        ),
        (key(Caller::Agent), agent(&ada)),
        (key(Caller::OtherTenantAgent), agent(&eve)),
        (key(Caller::Customer), credential(&customer, &customer_token)),
        (
            key(Caller::OtherRoomCustomer),
            credential(&other_customer, &other_token),
        ),
        (key(Caller::RevokedSession), credential(&revoked, &revoked_token)),
        // Holding only the expired link, the caller tries it as a session too.
        (
            key(Caller::ExpiredInvite),
            credential(&format!("collab_customer={expired}"), &expired),
        ),
        (key(Caller::SignedOutAgent), agent(&signed_out)),
    ]);
    let rooms = vec![
        RoomMarks {
            name: "A",
            marks: vec![
                room.clone(),
                document.clone(),
                "Grace".into(),
                "Hopper".into(),
                "agenda".into(),
            ],
        },
        RoomMarks {
            name: "B",
            marks: vec![room_b.clone(), "Linus".into(), "Torvalds".into()],
        },
        RoomMarks {
            name: "C",
            marks: vec![room_c, "Margaret".into(), "Hamilton".into()],
        },
    ];
    World {
        server,
        room,
        room_b,
        document,
        invite,
        participant: customer_participant.to_string(),
        credentials,
        rooms,
    }
}

/// The request of `operation` for `caller`, sent; live events are read for a moment only.
async fn call(world: &World, operation: &str, caller: Caller) -> Reply {
    let credential = world.credentials[key(caller)].clone();
    let (method, path) = operation.split_once(' ').unwrap();
    let mut uri = path
        .replace("{room}", &world.room)
        .replace("{document}", &world.document)
        .replace("{participant}", &world.participant)
        .replace("{invite}", &world.invite);
    let mut content_type = "application/json";
    let body = match operation {
        "POST /api/session" => json!({"agent": "ada", "password": "wrong"}).to_string(),
        "POST /api/rooms/{room}/invites" => json!({"channel": "link"}).to_string(),
        "POST /api/rooms/{room}/messages" => json!({"text": "hello"}).to_string(),
        "POST /api/rooms/{room}/read" => json!({"seq": 1}).to_string(),
        "POST /api/customers/erase" => json!({"email": "grace@example.com"}).to_string(),
        "POST /api/rooms/{room}/merge" => json!({"into": world.room_b}).to_string(),
        "PUT /api/settings" => json!({"timeout_days": 30}).to_string(),
        "POST /api/join" => json!({"token": credential.join_token}).to_string(),
        "POST /api/rooms/{room}/documents" => {
            uri.push_str("?name=notes.txt");
            content_type = "application/octet-stream";
            "some notes".to_owned()
        }
        "GET /api/callbacks/vonage" => {
            uri.push_str(&format!(
                "?client-ref={}:{}&status=delivered&messageId=M1",
                world.room, world.invite
            ));
            String::new()
        }
        "POST /api/callbacks/vonage" => {
            content_type = "application/x-www-form-urlencoded";
            format!(
                "client-ref={}:{}&status=delivered&messageId=M1",
                world.room, world.invite
            )
        }
        "POST /api/callbacks/twilio" => {
            uri.push_str(&format!("?room={}&invite={}", world.room, world.invite));
            content_type = "application/x-www-form-urlencoded";
            "MessageSid=SM1&MessageStatus=delivered".to_owned()
        }
        _ => String::new(),
    };
    let mut headers = vec![("content-type", content_type)];
    if let Some(cookie) = &credential.cookie {
        headers.push(("cookie", cookie));
    }
    let within = path.ends_with("/live").then_some(Duration::from_millis(300));
    world
        .server
        .send_within(method, &uri, &headers, Body::from(body), within)
        .await
}

/// One cell in a fresh world: the status it got, and what it revealed that it must not.
async fn cell(operation: &'static str, caller: Caller) -> (u16, Vec<String>, Value) {
    let world = world().await;
    let reply = call(&world, operation, caller).await;
    let mut text = String::from_utf8_lossy(&reply.body).into_owned();
    for (name, value) in &reply.headers {
        text.push_str(&format!("\n{name}: {}", value.to_str().unwrap_or_default()));
    }
    let leaks = world
        .rooms
        .iter()
        .filter(|room| !visible(caller).contains(&room.name))
        .flat_map(|room| {
            room.marks
                .iter()
                .filter(|mark| text.contains(mark.as_str()))
                .map(move |mark| format!("room {}: {mark}", room.name))
        })
        .collect();
    (reply.status.as_u16(), leaks, reply.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_by_every_caller_gets_its_status_and_reveals_no_other_room() {
    let server = Server::start().await;
    let doc = server.call("GET", "/api/openapi.json", None, None).await.json();
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    let expected: BTreeSet<String> = EXPECTED.iter().map(|(op, _)| (*op).to_owned()).collect();
    assert_eq!(
        documented, expected,
        "the documented operations and the matrix differ: add the new route to EXPECTED"
    );
    assert_eq!(documented.len(), 33);

    let cells: Vec<(&str, Caller, u16)> = EXPECTED
        .iter()
        .flat_map(|(operation, statuses)| {
            CALLERS
                .iter()
                .zip(statuses)
                .map(|(caller, status)| (*operation, *caller, *status))
        })
        .collect();
    let results: Vec<_> = stream::iter(cells.clone())
        .map(|(operation, caller, _)| async move { cell(operation, caller).await })
        .buffered(4)
        .collect()
        .await;

    let mut failures = Vec::new();
    for ((operation, caller, want), (got, leaks, body)) in cells.iter().zip(&results) {
        if got != want {
            failures.push(format!(
                "{operation} as {}: {got}, expected {want}: {body}",
                key(*caller)
            ));
        }
        if !leaks.is_empty() {
            failures.push(format!("{operation} as {} revealed {leaks:?}", key(*caller)));
        }
        if *got >= 400 && body["error"]["code"].as_str().is_none() {
            failures.push(format!("{operation} as {}: {got} without a JSON error", key(*caller)));
        }
    }
    eprintln!(
        "access matrix: {} operations × {} callers = {} cells",
        EXPECTED.len(),
        CALLERS.len(),
        cells.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cells failed:\n{}",
        failures.len(),
        cells.len(),
        failures.join("\n")
    );
}
