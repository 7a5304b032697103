//! Who is signed in: agents' sign-in and sign-out, customers' joining through an invite link.

use std::borrow::Cow;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use collab_core::{Actor, Error};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, JsonBody, with_cookie};
use crate::auth::{AGENT_COOKIE, CUSTOMER_COOKIE, Caller, cookie, expired_cookie, session_cookie};
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::streams::PeerAddr;
use crate::{AppState, i18n};

/// An agent signs in.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignIn {
    /// The agent's id, alone (`ada@example.com`) or with its tenant (`acme/ada@example.com`), as
    /// `--agents` lists it.
    pub agent: String,
    /// The agent's password.
    pub password: String,
}

/// Signs an agent in (the example's own sign-in: replace it with your authentication).
///
/// Failed sign-ins are limited: by default 5 within 15 minutes lock the account for 15 minutes,
/// and 30 from one client address refuse that address for 15 minutes (429 `rate_limited` with
/// `Retry-After`, whether or not the password is right then).
#[utoipa::path(post, path = "/api/session", request_body = SignIn, tag = "agents",
    responses((status = 204, description = "signed in; the cookie is set"), (status = 401, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "`rate_limited`: too many failed sign-ins of this agent or \
    from this address; sign-in is locked for a while, whatever the password: `Retry-After` says how long")))]
pub async fn sign_in(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    JsonBody(body): JsonBody<SignIn>,
) -> ApiResult<Response> {
    let from = peer.map(|peer| peer.ip());
    let (_, token) = match state.agents.sign_in(&body.agent, &body.password, from).await {
        Ok(signed_in) => signed_in,
        Err(ApiError::Core(Error::RateLimited { retry_after })) => return Ok(locked(retry_after)),
        Err(e) => return Err(e),
    };
    let cookie = session_cookie(AGENT_COOKIE, token.expose(), state.secure_cookies);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// The answer while sign-in is locked: the core's `rate_limited`, with words for people.
fn locked(retry_after: Duration) -> Response {
    // Rounded up: a client that waits as told finds the lock ended.
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let body = ErrorBody {
        error: ErrorDetail {
            code: "rate_limited",
            message: format!(
                "too many failed sign-ins: sign-in is locked for a while; try again in {} min",
                seconds.div_ceil(60)
            ),
            field: None::<Cow<'static, str>>,
            limit: None,
            room: None,
        },
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Signs out whoever is signed in: ends the agent's sign-in of the `collab_agent` cookie and the
/// customer's session of the `collab_customer` cookie on the server (the cookie stops working
/// even if kept; the customer's invite link still opens the room again), and removes both
/// cookies. Without a sign-in there is nothing to end: still 204.
#[utoipa::path(delete, path = "/api/session", tag = "agents", security((), ("agent_session" = []), ("customer_session" = [])),
    responses((status = 204, description = "signed out"),
    (status = 503, body = ErrorBody, description = "the customer's session could not be ended; try again")))]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = cookie(&headers, AGENT_COOKIE) {
        state.agents.sign_out(token);
    }
    if let Some(token) = cookie(&headers, CUSTOMER_COOKIE) {
        match state.rooms.customer_session(token).await {
            Ok(customer) => state.rooms.end_session(&customer).await?,
            // Not a session, or one that has ended: nothing to end.
            Err(Error::Forbidden | Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let response = with_cookie(StatusCode::NO_CONTENT.into_response(), &expired_cookie(AGENT_COOKIE));
    Ok(with_cookie(response, &expired_cookie(CUSTOMER_COOKIE)))
}

/// Who the request is from.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `agent` or `customer`.
    pub role: &'static str,
    /// The agent's id.
    pub agent: Option<String>,
    /// The customer's room.
    pub room: Option<String>,
    /// For a customer: the language of their page (`assets/i18n/<locale>.json`), the tenant's,
    /// or the browser's (`Accept-Language`) where the server allows it and the page has it.
    pub locale: Option<String>,
    /// For an agent: the languages the customer page has, which an invite may name.
    pub languages: Option<Vec<String>>,
    /// For an agent: whether they may change the tenant's settings.
    pub admin: Option<bool>,
    /// The largest document an upload may carry, in bytes: a page checks a file against it
    /// before sending it (the 413 for a larger one can reach a browser as a dropped connection).
    pub max_document_bytes: u64,
}

/// Who is signed in.
#[utoipa::path(get, path = "/api/me", tag = "session",
    params(Caller, ("accept-language" = Option<String>, Header, description = "the browser's languages")),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, headers: HeaderMap, Caller(actor): Caller) -> ApiResult<Json<Me>> {
    Ok(Json(match &actor {
        Actor::Agent { tenant, agent } => Me {
            role: "agent",
            agent: Some(agent.to_string()),
            room: None,
            locale: None,
            languages: Some(i18n::shipped().iter().map(ToString::to_string).collect()),
            admin: Some(state.agents.is_admin(tenant, agent)),
            max_document_bytes: state.rooms.config().max_document_bytes(),
        },
        Actor::Customer { room, .. } => {
            let config = state.rooms.config();
            // The room's tenant names the language; a room that cannot be read now gets the
            // deployment's, as the page has to say something.
            let tenant = state.rooms.room(&actor, *room).await.ok().map(|r| r.tenant().clone());
            let browser = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
            let locale = match &tenant {
                Some(tenant) => i18n::page_locale(config, &state.rooms.tenant_locale(tenant).await, browser),
                None => config.default_locale().clone(),
            };
            Me {
                role: "customer",
                agent: None,
                room: Some(room.to_string()),
                locale: Some(locale.to_string()),
                languages: None,
                admin: None,
                max_document_bytes: config.max_document_bytes(),
            }
        }
        Actor::System => return Err(ApiError::Unauthenticated),
    }))
}

/// An invite link's token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct JoinBody {
    /// The token from the link's path.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub token: String,
}

/// The room a customer joined.
#[derive(Debug, Serialize, ToSchema)]
pub struct Joined {
    /// The room's id.
    pub room: String,
}

/// A customer opens an invite link: a session cookie for the room.
#[utoipa::path(post, path = "/api/join", request_body = JoinBody, tag = "customers",
    responses((status = 200, body = Joined), (status = 404, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "`rate_limited`: too many links opened from this client address; \
        `Retry-After` says when the next may be")))]
pub async fn join(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    JsonBody(body): JsonBody<JoinBody>,
) -> ApiResult<Response> {
    // Each join opens a session and adds a participant to the room: limited per address, so
    // that replaying a link cannot mint them without end (429 `rate_limited`, `Retry-After`).
    state.quotas.join(peer.map(|peer| peer.ip()))?;
    let session = state.rooms.join(&body.token).await?;
    let cookie = session_cookie(CUSTOMER_COOKIE, session.token.expose(), state.secure_cookies);
    let response = Json(Joined {
        room: session.room.to_string(),
    })
    .into_response();
    Ok(with_cookie(response, &cookie))
}
