//! Rooms with customers, through the server's API as a browser would: agents sign in, open a
//! room each, invite its customer by email (Get Link needs a prior invite), take the room's
//! link and join through it once per customer.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::LoadError;
use crate::http::Http;

/// Rooms set up at once: each room's own calls run one after the other (joins of one room
/// would otherwise conflict), rooms run side by side.
const ROOMS_AT_ONCE: usize = 8;

/// A room ready for load: who may post and listen in it.
#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) id: String,
    /// The agent's sign-in cookie (`name=value`).
    pub(crate) agent: Arc<str>,
    /// One session cookie per customer.
    pub(crate) customers: Vec<Arc<str>>,
}

/// Signs `agent` in and returns its cookie.
pub(crate) async fn sign_in(http: &Http, agent: &str, password: &str) -> Result<Arc<str>, LoadError> {
    let body = json!({ "agent": agent, "password": password });
    let reply = http.call(Method::POST, "/api/session", None, Some(&body)).await?;
    if reply.status != StatusCode::NO_CONTENT {
        return Err(LoadError::Status {
            what: format!("sign-in of {agent}"),
            status: reply.status.as_u16(),
            body: String::from_utf8_lossy(&reply.body).chars().take(200).collect(),
        });
    }
    reply.cookie.map(Arc::from).ok_or_else(|| LoadError::Answer {
        what: format!("sign-in of {agent}"),
        reason: "no cookie".to_owned(),
    })
}

/// Opens `count` rooms, room `i` by agent `i % agents.len()`, with `customers` joined to each.
pub(crate) async fn open_rooms(
    http: &Http,
    agents: &[Arc<str>],
    count: usize,
    customers: usize,
) -> Result<Vec<Room>, LoadError> {
    let permits = Arc::new(Semaphore::new(ROOMS_AT_ONCE));
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let (http, permits) = (http.clone(), permits.clone());
        let agent = agents[index % agents.len()].clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            open_room(&http, agent, index, customers)
                .await
                .map(|room| (index, room))
        });
    }
    let mut rooms: Vec<Option<Room>> = (0..count).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        let (index, room) = done.map_err(|e| LoadError::Answer {
            what: "room set-up".to_owned(),
            reason: e.to_string(),
        })??;
        rooms[index] = Some(room);
    }
    Ok(rooms.into_iter().flatten().collect())
}

fn text<'a>(value: &'a Value, field: &str, what: &str) -> Result<&'a str, LoadError> {
    value[field].as_str().ok_or_else(|| LoadError::Answer {
        what: what.to_owned(),
        reason: format!("no {field}"),
    })
}

async fn open_room(http: &Http, agent: Arc<str>, index: usize, customers: usize) -> Result<Room, LoadError> {
    let created = http.call(Method::POST, "/api/rooms", Some(&agent), None).await?;
    let id = text(
        &created.json("room creation", StatusCode::CREATED)?,
        "id",
        "room creation",
    )?
    .to_owned();
    let invites = format!("/api/rooms/{id}/invites");
    let by_email = json!({
        "channel": "email",
        "first_name": "Load",
        "last_name": format!("Customer{index}"),
        "identifier": format!("load{index}@example.com"),
    });
    let invited = http.call(Method::POST, &invites, Some(&agent), Some(&by_email)).await?;
    invited.json("email invite", StatusCode::CREATED)?;
    // One link per customer: a link holds one live session at a time (joining again with it
    // ends the session it opened before), like a customer's one device.
    let mut cookies = Vec::with_capacity(customers);
    for _ in 0..customers {
        let linked = http
            .call(
                Method::POST,
                &invites,
                Some(&agent),
                Some(&json!({ "channel": "link" })),
            )
            .await?;
        let link = text(&linked.json("Get Link", StatusCode::CREATED)?, "link", "Get Link")?.to_owned();
        let token = link.rsplit('/').next().unwrap_or_default();
        let joined = http
            .call(Method::POST, "/api/join", None, Some(&json!({ "token": token })))
            .await?;
        joined.json("join", StatusCode::OK)?;
        let cookie = joined.cookie.ok_or_else(|| LoadError::Answer {
            what: "join".to_owned(),
            reason: "no cookie".to_owned(),
        })?;
        cookies.push(Arc::from(cookie));
    }
    Ok(Room {
        id,
        agent,
        customers: cookies,
    })
}
