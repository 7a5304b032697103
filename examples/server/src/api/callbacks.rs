//! Providers calling back: delivery status reports.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use collab_core::Error;
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiResult;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// Where a status callback belongs (Twilio adds these to the callback URL we give it).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The room.
    pub room: String,
    /// The invite.
    pub invite: String,
}

/// Twilio's delivery status callback: checked against `X-Twilio-Signature`, then recorded on
/// the invite (a replay records nothing).
#[utoipa::path(post, path = "/api/callbacks/twilio", tag = "providers",
    params(CallbackQuery, ("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the URL and the form")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 204, description = "recorded"), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 501, body = ErrorBody)))]
pub async fn twilio_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    // The route is mounted only with a webhook (`crate::api`); a router built otherwise says why.
    let Some(webhook) = &state.twilio else {
        return Err(ApiError::Core(Error::Unsupported {
            backend: "this server",
            capability: "Twilio status callbacks (no Twilio account is configured)",
        }));
    };
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The URL exactly as Twilio called it: the public origin and this path with its query.
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    let url = format!("{}{path}", state.origin);
    webhook.record(&state.rooms, &url, &body, signature).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Vonage's delivery receipt, as a `GET` (its parameters in the query) or a form `POST`:
/// checked against its `sig` parameter, then recorded on the invite its `client-ref` names (a
/// replay records nothing).
#[utoipa::path(get, path = "/api/callbacks/vonage", tag = "providers",
    params(("sig" = String, Query, description = "Vonage's signature of the other parameters"),
        ("client-ref" = String, Query, description = "the room and invite, as sent with the message")),
    responses((status = 204, description = "recorded"), (status = 400, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 501, body = ErrorBody)))]
pub async fn vonage_receipt(State(state): State<AppState>, uri: axum::http::Uri) -> ApiResult<StatusCode> {
    record_vonage(&state, uri.query().unwrap_or_default().as_bytes(), &[]).await
}

/// Vonage's delivery receipt as a form `POST`; see `GET /api/callbacks/vonage`.
#[utoipa::path(post, path = "/api/callbacks/vonage", tag = "providers",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 204, description = "recorded"), (status = 400, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 501, body = ErrorBody)))]
pub async fn vonage_receipt_form(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    record_vonage(&state, uri.query().unwrap_or_default().as_bytes(), &body).await
}

/// Verifies and records a receipt whose parameters are in `query` and `form`.
async fn record_vonage(state: &AppState, query: &[u8], form: &[u8]) -> ApiResult<StatusCode> {
    // The route is mounted only with a signature secret (`crate::api`); a router built
    // otherwise says why.
    let Some(receipts) = &state.vonage else {
        return Err(ApiError::Core(Error::Unsupported {
            backend: "this server",
            capability: "Vonage delivery receipts (no Vonage signature secret is configured)",
        }));
    };
    let mut params = collab_notify::twilio::parse_form(query);
    params.extend(collab_notify::twilio::parse_form(form));
    receipts.record(&state.rooms, &params).await?;
    Ok(StatusCode::NO_CONTENT)
}
