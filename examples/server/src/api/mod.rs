//! The JSON API: everything the console and the customer page do, one module per resource.

pub mod access;
pub mod callbacks;
pub mod dev;
pub mod documents;
pub mod health;
pub mod rooms;
pub mod sessions;
pub mod settings;

use std::borrow::Cow;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use collab_core::{Actor, Entity, Error, RoomId, Seq};
use serde::de::DeserializeOwned;

pub use self::callbacks::CallbackQuery;
pub use self::dev::InboxMessage;
pub use self::documents::{UploadQuery, parse_range};
pub use self::rooms::{EventsQuery, InviteBody, ListQuery, LiveQuery, MessageBody, resume_after};
pub use self::sessions::{JoinBody, SignIn};
use crate::error::{ApiError, JSON_BODY_LIMIT};
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

/// Renames the field of the core's `Invalid` error to the request's name for it: the core says
/// `phone` where an invite sends `identifier`. `names` pairs the core's name with the request's.
fn request_field(names: &'static [(&'static str, &'static str)]) -> impl Fn(Error) -> ApiError {
    move |e| match e {
        Error::Invalid { field, reason } => {
            let field = names
                .iter()
                .find(|(core, _)| *core == field)
                .map_or(field, |(_, request)| request);
            ApiError::Core(Error::Invalid { field, reason })
        }
        e => ApiError::Core(e),
    }
}

/// A JSON request body, or the API's error naming the field at fault (axum's `Json` answers
/// plain text with no field).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(JsonRejection::JsonDataError(e)) => {
                let text = e.body_text();
                Err(ApiError::Invalid(
                    field_of(&text).unwrap_or(Cow::Borrowed("body")),
                    text,
                ))
            }
            Err(JsonRejection::MissingJsonContentType(e)) => Err(ApiError::UnsupportedMediaType(e.body_text())),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge {
                limit: JSON_BODY_LIMIT as u64,
            }),
            Err(e) => Err(ApiError::BadRequest(Cow::Borrowed("body"), e.body_text())),
        }
    }
}

/// The query string's parameters, or the API's error naming the parameter at fault.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(value)) => Ok(QueryParams(value)),
            Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => {
                let text = e.body_text();
                Err(ApiError::BadRequest(
                    field_of(&text).unwrap_or(Cow::Borrowed("query")),
                    text,
                ))
            }
            Err(e) => Err(ApiError::BadRequest(Cow::Borrowed("query"), e.body_text())),
        }
    }
}

/// The field a deserialization error names. axum's text is `<what failed>: <path>: <error>`
/// (the path left out at the top level), and serde says `missing field `<name>``: the field is
/// the path's first segment, or the missing one.
fn field_of(text: &str) -> Option<Cow<'static, str>> {
    let (_, detail) = text.split_once(": ")?;
    let field = match detail.split_once("missing field `") {
        Some((_, rest)) => rest.split('`').next()?,
        None => detail.split_once(": ")?.0.split(['.', '[']).next()?,
    };
    let plain = !field.is_empty()
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    plain.then(|| Cow::Owned(field.to_owned()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_is_read_from_axum_s_words() {
        // axum's texts as of 0.8: an upgrade that changes them fails here, not in production.
        let cases = [
            (
                "Failed to deserialize the JSON body into the target type: channel: invalid type: integer `1`, expected a string at line 1 column 12",
                Some("channel"),
            ),
            (
                "Failed to deserialize the JSON body into the target type: missing field `channel` at line 1 column 2",
                Some("channel"),
            ),
            (
                "Failed to deserialize query string: limit: invalid digit found in string",
                Some("limit"),
            ),
            ("Failed to deserialize query string: missing field `name`", Some("name")),
            (
                "Failed to deserialize the JSON body into the target type: invalid type: null, expected struct",
                None,
            ),
        ];
        for (text, field) in cases {
            assert_eq!(field_of(text).as_deref(), field, "{text}");
        }
    }
}
