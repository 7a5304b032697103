//! The core's errors as JSON responses with a stable code, the field at fault and the HTTP
//! status a client can act on.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use collab_core::{Error, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code to branch on (the table in the `ErrorBody` schema gives each its status).
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The part of the request at fault, spelled as the request spells it: a JSON body's field
    /// (`identifier`), a query parameter (`limit`), a header (`Last-Event-ID`), or `body` for the
    /// request body as a whole (an uploaded file, a body that is not JSON or is too large).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Cow<'static, str>>,
    /// With `too_large`: the largest body accepted, in bytes; with `quota_exceeded`: the bytes the
    /// room can still store, the largest document it accepts now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// With `room_merged`: the room that holds this one's content now; send the request there.
    /// With `customer_has_room`: the customer's room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub enum ApiError {
    /// The core refused, or failed.
    Core(Error),
    /// No valid sign-in for this request.
    Unauthenticated,
    /// The request itself is malformed (400 `bad_request`): not JSON, a query parameter or a
    /// header that cannot be read; `field` names it.
    BadRequest(Cow<'static, str>, String),
    /// A JSON body that does not fit its schema (422 `invalid`): `field` names the field.
    Invalid(Cow<'static, str>, String),
    /// A body of another type than the route takes (415 `unsupported_media_type`).
    UnsupportedMediaType(String),
    /// A body over `limit` bytes (413 `too_large`).
    TooLarge {
        /// The largest body the route accepts.
        limit: u64,
    },
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Core(e)
    }
}

/// The largest JSON request body, in bytes. Uploads stream past it: the core bounds them
/// (`RoomsConfig::max_document_bytes`).
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// The codes the server itself answers with, beside the core's: each with its status.
pub const SERVER_CODES: &[(&str, StatusCode)] = &[
    ("bad_request", StatusCode::BAD_REQUEST),
    ("unauthenticated", StatusCode::UNAUTHORIZED),
    ("unknown_host", StatusCode::FORBIDDEN),
    ("cross_origin", StatusCode::FORBIDDEN),
    ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
];

/// Every code an error may carry and its status: the core's kinds (through [`status`]), then
/// the server's own ([`SERVER_CODES`]).
pub fn status_table() -> Vec<(&'static str, StatusCode)> {
    let core = ErrorKind::ALL.iter().map(|kind| (kind.as_str(), status(*kind)));
    core.chain(SERVER_CODES.iter().copied()).collect()
}

/// [`status_table`] as a Markdown table, for the API's documentation.
pub fn status_table_markdown() -> String {
    let mut table = String::from("| code | HTTP status |\n|---|---|\n");
    for (code, status) in status_table() {
        table.push_str(&format!("| `{code}` | {} |\n", status.as_u16()));
    }
    table
}

/// The HTTP status of each kind of the core's errors. New kinds, until they are placed here, are
/// the server's failure (500).
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Conflict
        | ErrorKind::SmsNotActivated
        | ErrorKind::NotAllowed
        | ErrorKind::RoomTimedOut
        | ErrorKind::RoomClosed
        | ErrorKind::RoomMerged
        | ErrorKind::CustomerHasRoom => StatusCode::CONFLICT,
        ErrorKind::RoomErased => StatusCode::GONE,
        // A room's storage quota: 413 rather than 507, which a client would take for the
        // server's fault and retry; a smaller document (up to `limit`) may still pass.
        ErrorKind::TooLarge | ErrorKind::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Backend => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::UploadAborted => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The core's error as a response: its kind's status and code, the field at fault, and the
/// headers a client acts on (`Retry-After`, `Content-Range`).
fn core_response(e: Error) -> Response {
    let kind = e.kind();
    let message = if kind.is_server_fault() {
        // The detail is for the operator's log, not for the client.
        tracing::error!(error = %e, kind = kind.as_str(), "request failed");
        "the server failed; try again later".to_owned()
    } else {
        if kind == ErrorKind::UploadAborted {
            // The client went away: its connection's fault, nothing for an operator to fix.
            tracing::debug!(error = %e, "upload aborted");
        }
        e.to_string()
    };
    let (field, limit) = match &e {
        Error::Invalid { field, .. } => (Some(Cow::Borrowed(*field)), None),
        Error::TooLarge { limit } => (Some(Cow::Borrowed("body")), Some(*limit)),
        Error::QuotaExceeded { available, .. } => (Some(Cow::Borrowed("body")), Some(*available)),
        // The file's sniffed type: the upload's body as a whole is at fault.
        Error::UnsupportedMediaType { .. } => (Some(Cow::Borrowed("body")), None),
        _ => (None, None),
    };
    let room = match &e {
        Error::RoomMerged { into: room } | Error::CustomerHasRoom { room } => Some(room.to_string()),
        _ => None,
    };
    let detail = ErrorDetail {
        code: kind.as_str(),
        message,
        field,
        limit,
        room,
    };
    let mut response = respond(status(kind), detail);
    let headers = response.headers_mut();
    match e {
        Error::RangeNotSatisfiable { size } => {
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
        }
        Error::RateLimited { retry_after } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds(retry_after)));
        }
        _ => {}
    }
    response
}

/// A wait as `Retry-After` seconds: rounded up, so that a client that waits as told is not
/// refused again (59.6 s is 60, not 59), and at least 1.
fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0));
    seconds.max(1)
}

fn body(
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<Cow<'static, str>>,
    limit: Option<u64>,
) -> Response {
    let detail = ErrorDetail {
        code,
        message,
        field,
        limit,
        room: None,
    };
    respond(status, detail)
}

fn respond(status: StatusCode, detail: ErrorDetail) -> Response {
    (status, axum::Json(ErrorBody { error: detail })).into_response()
}

/// The answer to a body over `limit` bytes.
pub fn too_large(limit: u64) -> Response {
    let message = format!("the body is larger than the limit of {limit} bytes");
    body(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::TooLarge.as_str(),
        message,
        Some(Cow::Borrowed("body")),
        Some(limit),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Core(e) => core_response(e),
            ApiError::Unauthenticated => body(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "sign in first".to_owned(),
                None,
                None,
            ),
            ApiError::BadRequest(field, message) => {
                body(StatusCode::BAD_REQUEST, "bad_request", message, Some(field), None)
            }
            ApiError::Invalid(field, message) => body(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorKind::Invalid.as_str(),
                message,
                Some(field),
                None,
            ),
            ApiError::UnsupportedMediaType(message) => body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorKind::UnsupportedMediaType.as_str(),
                message,
                Some(Cow::Borrowed("Content-Type")),
                None,
            ),
            ApiError::TooLarge { limit } => too_large(limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let cases = [
            (Duration::from_millis(59_600), "60"),
            (Duration::from_secs(59), "59"),
            (Duration::from_nanos(60_000_000_001), "61"),
            (Duration::from_millis(300), "1"),
            (Duration::ZERO, "1"),
        ];
        for (wait, header) in cases {
            let response = ApiError::Core(Error::RateLimited { retry_after: wait }).into_response();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            let sent = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok());
            assert_eq!(sent, Some(header), "{wait:?}");
        }
    }

    #[test]
    fn every_kind_has_its_status() {
        let expected = [
            ("not_found", 404),
            ("forbidden", 403),
            ("invalid", 422),
            ("conflict", 409),
            ("sms_not_activated", 409),
            ("not_allowed", 409),
            ("room_timed_out", 409),
            ("room_closed", 409),
            ("room_erased", 410),
            ("room_merged", 409),
            ("customer_has_room", 409),
            ("too_large", 413),
            ("quota_exceeded", 413),
            ("unsupported_media_type", 415),
            ("range_not_satisfiable", 416),
            ("rate_limited", 429),
            ("unsupported", 501),
            ("backend_credentials", 500),
            ("backend", 503),
            ("internal", 500),
            ("upload_aborted", 400),
        ];
        // Every kind the core has is in the table: a new one fails here until it is placed.
        let actual: BTreeMap<&str, u16> = ErrorKind::ALL
            .iter()
            .map(|kind| (kind.as_str(), status(*kind).as_u16()))
            .collect();
        assert_eq!(actual, BTreeMap::from(expected));
    }
}
