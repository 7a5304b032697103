//! The core's errors as JSON responses with a stable code, the field at fault and the HTTP
//! status a client can act on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use collab_core::Error;
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unsatisfiable = match &self {
            ApiError::Core(Error::RangeNotSatisfiable { size }) => Some(*size),
            _ => None,
        };
        let (status, code, message, field, retry_after) = match self {
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "sign in first".to_owned(),
                None,
                None,
            ),
            ApiError::BadRequest(field, message) => {
                (StatusCode::BAD_REQUEST, "bad_request", message, Some(field), None)
            }
            ApiError::Core(e) => {
                let message = e.to_string();
                match e {
                    Error::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found", message, None, None),
                    Error::Forbidden => (StatusCode::FORBIDDEN, "forbidden", message, None, None),
                    Error::Invalid { field, .. } => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "invalid", message, Some(field), None)
                    }
                    Error::Conflict { .. } => (StatusCode::CONFLICT, "conflict", message, None, None),
                    Error::SmsNotActivated => (StatusCode::CONFLICT, "sms_not_activated", message, None, None),
                    Error::NotAllowed { .. } => (StatusCode::CONFLICT, "not_allowed", message, None, None),
                    Error::RoomTimedOut => (StatusCode::CONFLICT, "room_timed_out", message, None, None),
                    Error::RoomClosed => (StatusCode::CONFLICT, "room_closed", message, None, None),
                    Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", message, None, None),
                    Error::UnsupportedMediaType { .. } => (
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_media_type",
                        message,
                        None,
                        None,
                    ),
                    Error::RangeNotSatisfiable { .. } => (
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "range_not_satisfiable",
                        message,
                        None,
                        None,
                    ),
                    Error::RateLimited { retry_after } => (
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        message,
                        None,
                        Some(retry_after),
                    ),
                    Error::Unsupported { .. } => (StatusCode::NOT_IMPLEMENTED, "unsupported", message, None, None),
                    other => {
                        // The detail is for the operator's log, not for the client.
                        tracing::error!(error = %other, "request failed");
                        let message = "the server failed; try again later".to_owned();
                        (StatusCode::INTERNAL_SERVER_ERROR, "internal", message, None, None)
                    }
                }
            }
        };
        let body = ErrorBody {
            error: ErrorDetail { code, message, field },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(size) = unsatisfiable
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        if let Some(wait) = retry_after
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
