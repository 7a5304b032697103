//! The core's errors as JSON responses with a stable code, the field at fault and the HTTP
//! status a client can act on.

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
    /// A stable code to branch on: `not_found`, `invalid`, `sms_not_activated`…
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub enum ApiError {
    /// The core refused, or failed.
    Core(Error),
    /// No valid sign-in for this request.
    Unauthenticated,
    /// The request itself is malformed (not the core's input rules).
    BadRequest(&'static str, String),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Core(e)
    }
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
        | ErrorKind::RoomClosed => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
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
    let field = match &e {
        Error::Invalid { field, .. } => Some(*field),
        _ => None,
    };
    let mut response = body(status(kind), kind.as_str(), message, field);
    let headers = response.headers_mut();
    match e {
        Error::RangeNotSatisfiable { size } => {
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
        }
        Error::RateLimited { retry_after } => {
            if let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        _ => {}
    }
    response
}

fn body(status: StatusCode, code: &'static str, message: String, field: Option<&'static str>) -> Response {
    let body = ErrorBody {
        error: ErrorDetail { code, message, field },
    };
    (status, axum::Json(body)).into_response()
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
            ),
            ApiError::BadRequest(field, message) => body(StatusCode::BAD_REQUEST, "bad_request", message, Some(field)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

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
            ("too_large", 413),
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
