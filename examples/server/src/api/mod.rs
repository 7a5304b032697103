//! The JSON API: everything the console and the customer page do, one module per resource.

pub mod callbacks;
pub mod dev;
pub mod documents;
pub mod rooms;
pub mod sessions;

use axum::http::{HeaderValue, header};
use axum::response::Response;
use collab_core::{Actor, Entity, Error, RoomId, Seq};

pub use self::callbacks::CallbackQuery;
pub use self::dev::InboxMessage;
pub use self::documents::{UploadQuery, parse_range};
pub use self::rooms::{EventsQuery, InviteBody, ListQuery, LiveQuery, MessageBody, resume_after};
pub use self::sessions::{JoinBody, SignIn};
use crate::error::ApiError;
use crate::views::Reader;

type ApiResult<T> = Result<T, ApiError>;

fn reader(actor: &Actor) -> Reader {
    match actor {
        Actor::Customer { .. } => Reader::Customer,
        _ => Reader::Agent,
    }
}

fn room_id(raw: &str) -> ApiResult<RoomId> {
    // A malformed id is as unknown as a missing room.
    raw.parse()
        .map_err(|_| ApiError::Core(Error::NotFound { what: Entity::Room }))
}

/// A sequence number from the query: 0 up to the largest a store keeps (`i64::MAX`), so that
/// the document's `int64` and the server agree.
fn seq_param(after: Option<i64>) -> ApiResult<Seq> {
    u64::try_from(after.unwrap_or(0))
        .map(Seq::new)
        .map_err(|_| ApiError::Core(Error::invalid("after", "must be 0 or more")))
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
