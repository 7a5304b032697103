//! The smallest useful embedding of collab rooms into an axum app you already have.
//!
//! Your app authenticates its agents however it does; here a header stands in for that. Rooms
//! are stored in `rooms.db`; invites by link. Try it:
//!
//! ```sh
//! cargo run -p embed-minimal &
//! curl -X POST -H 'x-agent: ada' localhost:3000/rooms
//! curl -X POST -H 'x-agent: ada' localhost:3000/rooms/ROOM/messages -d 'Hello'
//! curl -H 'x-agent: ada' localhost:3000/rooms/ROOM
//! ```

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use collab_core::rooms::{Rooms, TimelineQuery};
use collab_core::{Actor, AgentId, Error, ErrorKind, RoomId, TenantId};
use collab_store_sqlite::SqliteRoomStore;
use serde_json::{Value, json};

/// Your authentication goes here: the example trusts an `x-agent` header.
fn agent(headers: &HeaderMap) -> Result<Actor, (StatusCode, String)> {
    let id = headers
        .get("x-agent")
        .and_then(|v| v.to_str().ok())
        .ok_or((StatusCode::UNAUTHORIZED, "sign in".into()))?;
    Ok(Actor::Agent {
        tenant: TenantId::new("my-company").map_err(fail)?,
        agent: AgentId::new(id).map_err(fail)?,
    })
}

/// The core's error kinds map onto statuses; the example keeps it short (the example server's
/// `error.rs` has every kind), and answers anything else, new kinds included, as its own failure.
fn fail(e: Error) -> (StatusCode, String) {
    let kind = e.kind();
    let status = match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Conflict
        | ErrorKind::SmsNotActivated
        | ErrorKind::NotAllowed
        | ErrorKind::RoomTimedOut
        | ErrorKind::RoomClosed => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Backend => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if kind.is_server_fault() {
        // The detail is for your logs, not for the caller.
        eprintln!("request failed: {e}");
        return (status, "the server failed; try again later".into());
    }
    (status, e.to_string())
}

type Reply = Result<Json<Value>, (StatusCode, String)>;

async fn create(State(rooms): State<Rooms>, headers: HeaderMap) -> Reply {
    let room = rooms.create_room(&agent(&headers)?).await.map_err(fail)?;
    Ok(Json(json!({ "room": room.room.to_string(), "name": room.name })))
}

async fn post_message(State(rooms): State<Rooms>, headers: HeaderMap, Path(room): Path<String>, text: String) -> Reply {
    let room: RoomId = room.parse().map_err(fail)?;
    let event = rooms
        .post_message(&agent(&headers)?, room, &text, None)
        .await
        .map_err(fail)?;
    Ok(Json(json!({ "seq": event.seq.get() })))
}

async fn show(State(rooms): State<Rooms>, headers: HeaderMap, Path(room): Path<String>) -> Reply {
    let (actor, room) = (agent(&headers)?, room.parse::<RoomId>().map_err(fail)?);
    let state = rooms.room(&actor, room).await.map_err(fail)?;
    let events = rooms
        .timeline(&actor, room, TimelineQuery::Latest { limit: 20 })
        .await
        .map_err(fail)?;
    Ok(Json(
        json!({ "name": state.name(), "status": state.status().as_str(), "latest": events }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rooms = Rooms::builder()
        .room_store(SqliteRoomStore::open("rooms.db").await?)
        .build();
    let app = Router::new()
        .route("/rooms", post(create))
        .route("/rooms/{room}", get(show))
        .route("/rooms/{room}/messages", post(post_message))
        .with_state(rooms);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000");
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn errors_answer_their_kinds_status() {
        let cases = [
            (Error::invalid("text", "empty"), StatusCode::UNPROCESSABLE_ENTITY),
            (Error::RoomClosed, StatusCode::CONFLICT),
            (Error::TooLarge { limit: 1 }, StatusCode::PAYLOAD_TOO_LARGE),
            (
                Error::RateLimited {
                    retry_after: Duration::from_secs(1),
                },
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (Error::backend("database", "down"), StatusCode::SERVICE_UNAVAILABLE),
            (Error::internal("encoding", "broken"), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (error, status) in cases {
            let shown = error.to_string();
            let (answered, message) = fail(error);
            assert_eq!(answered, status, "{shown}");
            // A failure's detail stays in the log.
            assert_eq!(message == shown, !status.is_server_error(), "{shown}: {message}");
        }
    }
}
