//! The JSON API: everything the console and the customer page do.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use collab_core::blob::ByteRange;
use collab_core::rooms::{InviteRequest, TimelineQuery, Upload};
use collab_core::store::{RoomCursor, RoomQuery};
use collab_core::{Actor, Channel, DocumentId, EmailAddress, Error, PhoneNumber, RoomId, Seq};
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{AGENT_COOKIE, CUSTOMER_COOKIE, actor, cookie, expired_cookie, session_cookie};
use crate::error::{ApiError, ErrorBody};
use crate::views::{EventView, Reader, RoomRow, RoomView};

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
        .map_err(|_| ApiError::Core(Error::NotFound { what: "room" }))
}

async fn who(state: &AppState, headers: &HeaderMap) -> ApiResult<Actor> {
    actor(&state.agents, &state.rooms, headers, false).await
}

/// An agent signs in.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignIn {
    /// The agent's id.
    pub agent: String,
    /// The agent's password.
    pub password: String,
}

/// Signs an agent in (the example's own sign-in: replace it with your authentication).
#[utoipa::path(post, path = "/api/session", request_body = SignIn, tag = "agents",
    responses((status = 204, description = "signed in; the cookie is set"), (status = 401, body = ErrorBody)))]
pub async fn sign_in(State(state): State<AppState>, Json(body): Json<SignIn>) -> ApiResult<Response> {
    let (_, token) = state.agents.sign_in(&body.agent, &body.password)?;
    let cookie = session_cookie(AGENT_COOKIE, token.expose(), state.secure_cookies);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// Signs out whoever is signed in.
#[utoipa::path(delete, path = "/api/session", tag = "agents", responses((status = 204, description = "signed out")))]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, AGENT_COOKIE) {
        state.agents.sign_out(token);
    }
    let response = with_cookie(StatusCode::NO_CONTENT.into_response(), &expired_cookie(AGENT_COOKIE));
    with_cookie(response, &expired_cookie(CUSTOMER_COOKIE))
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
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
}

/// Who is signed in.
#[utoipa::path(get, path = "/api/me", tag = "session",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Me>> {
    Ok(Json(match who(&state, &headers).await? {
        Actor::Agent { agent, .. } => Me {
            role: "agent",
            agent: Some(agent.to_string()),
            room: None,
        },
        Actor::Customer { room, .. } => Me {
            role: "customer",
            agent: None,
            room: Some(room.to_string()),
        },
        Actor::System => return Err(ApiError::Unauthenticated),
    }))
}

/// Filters of the rooms list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Customer name prefix (first, last or full name; any case).
    #[param(max_length = 201)]
    pub name: Option<String>,
    /// Customer mobile number, international form.
    pub phone: Option<String>,
    /// Customer email address.
    pub email: Option<String>,
    /// The `next` of a previous page (blank: the first page).
    #[param(pattern = r"^([0-9]{1,15}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$")]
    pub after: Option<String>,
    /// At most this many rooms (1 to 500, 50 by default).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

/// A page of rooms.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomList {
    /// Newest first.
    pub rooms: Vec<RoomRow>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

/// Lists and searches the tenant's rooms, newest first.
#[utoipa::path(get, path = "/api/rooms", params(ListQuery), tag = "rooms",
    responses((status = 200, body = RoomList), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_rooms(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<RoomList>> {
    let actor = who(&state, &headers).await?;
    let blank = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let query = RoomQuery {
        name_prefix: blank(&query.name),
        phone: blank(&query.phone).map(|p| PhoneNumber::parse(&p)).transpose()?,
        email: blank(&query.email).map(|e| EmailAddress::parse(&e)).transpose()?,
        after: blank(&query.after).map(|a| a.parse::<RoomCursor>()).transpose()?,
        limit: query.limit.unwrap_or(50),
        ..RoomQuery::default()
    };
    let page = state.rooms.list_rooms(&actor, &query).await?;
    Ok(Json(RoomList {
        rooms: page.rooms.iter().map(RoomRow::from).collect(),
        next: page.next.map(|n| n.to_string()),
    }))
}

async fn room_view(state: &AppState, actor: &Actor, room: RoomId) -> ApiResult<RoomView> {
    let room_state = state.rooms.room(actor, room).await?;
    let status = state.rooms.current_status(&room_state);
    Ok(RoomView::new(
        &room_state,
        status,
        state.rooms.config().policy().sms_activated(),
    ))
}

/// Opens a room: a draft named "Collaboration Room".
#[utoipa::path(post, path = "/api/rooms", tag = "rooms",
    responses((status = 201, body = RoomView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_room(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<(StatusCode, Json<RoomView>)> {
    let actor = who(&state, &headers).await?;
    let summary = state.rooms.create_room(&actor).await?;
    Ok((
        StatusCode::CREATED,
        Json(room_view(&state, &actor, summary.room).await?),
    ))
}

/// A room: name, status, customer information.
#[utoipa::path(get, path = "/api/rooms/{room}", params(("room" = String, Path)), tag = "rooms",
    responses((status = 200, body = RoomView), (status = 404, body = ErrorBody)))]
pub async fn get_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
) -> ApiResult<Json<RoomView>> {
    let actor = who(&state, &headers).await?;
    Ok(Json(room_view(&state, &actor, room_id(&room)?).await?))
}

/// An invite from the invite frame.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InviteBody {
    /// `sms`, `email` or `link`.
    #[schema(pattern = "^(sms|email|link)$")]
    pub channel: String,
    /// First name (locked once invited: leave out or repeat).
    pub first_name: Option<String>,
    /// Last name (locked likewise).
    pub last_name: Option<String>,
    /// Mobile number or email address for a channel not used before.
    pub identifier: Option<String>,
}

/// What an invite gave.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteAnswer {
    /// The invite's id.
    pub invite: String,
    /// The room's link, for "Get Link".
    pub link: Option<String>,
    /// For SMS, how many segments the text takes.
    pub sms_segments: Option<usize>,
}

/// Invites or re-invites the customer (SMS, email, or Get Link).
#[utoipa::path(post, path = "/api/rooms/{room}/invites", params(("room" = String, Path)), request_body = InviteBody,
    tag = "rooms", responses((status = 201, body = InviteAnswer), (status = 409, body = ErrorBody),
    (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    Json(body): Json<InviteBody>,
) -> ApiResult<(StatusCode, Json<InviteAnswer>)> {
    let actor = who(&state, &headers).await?;
    let channel = Channel::ALL
        .into_iter()
        .find(|c| c.as_str() == body.channel)
        .ok_or(Error::invalid("channel", "must be sms, email or link"))?;
    let request = InviteRequest {
        channel,
        first_name: body.first_name,
        last_name: body.last_name,
        identifier: body.identifier.filter(|i| !i.trim().is_empty()),
    };
    let issued = state.rooms.invite(&actor, room_id(&room)?, request).await?;
    Ok((
        StatusCode::CREATED,
        Json(InviteAnswer {
            invite: issued.invite.to_string(),
            link: issued.link.map(|l| l.url().to_owned()),
            sms_segments: issued.sms_segments,
        }),
    ))
}

/// Closes a room for good.
#[utoipa::path(post, path = "/api/rooms/{room}/close", params(("room" = String, Path)), tag = "rooms",
    responses((status = 204, description = "closed"), (status = 409, body = ErrorBody)))]
pub async fn close_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = who(&state, &headers).await?;
    state.rooms.close_room(&actor, room_id(&room)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A sequence number from the query: 0 up to the largest a store keeps (`i64::MAX`), so that
/// the document's `int64` and the server agree.
fn seq_param(after: Option<i64>) -> ApiResult<Seq> {
    u64::try_from(after.unwrap_or(0))
        .map(Seq::new)
        .map_err(|_| ApiError::Core(Error::invalid("after", "must be 0 or more")))
}

/// Which events to read.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Events after this sequence number (0 for all).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many (1 to 1000, 200 by default).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// The room's timeline, oldest first.
#[utoipa::path(get, path = "/api/rooms/{room}/events", params(("room" = String, Path), EventsQuery), tag = "rooms",
    responses((status = 200, body = Vec<EventView>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    Query(query): Query<EventsQuery>,
) -> ApiResult<Json<Vec<EventView>>> {
    let actor = who(&state, &headers).await?;
    let room = room_id(&room)?;
    let page = TimelineQuery::After {
        seq: seq_param(query.after)?,
        limit: query.limit.unwrap_or(200),
    };
    let events = state.rooms.timeline(&actor, room, page).await?;
    Ok(Json(
        events.iter().map(|e| EventView::new(room, e, reader(&actor))).collect(),
    ))
}

/// Where live events resume.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LiveQuery {
    /// The last sequence number the client has (the `Last-Event-ID` header wins).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// `customer` on the customer page (an EventSource cannot send the `x-collab-as` header).
    #[serde(rename = "as")]
    pub as_role: Option<String>,
}

/// The sequence number a live stream resumes after: the `Last-Event-ID` header when it is one,
/// else the `after` query parameter (refused when negative), else 0 (from the start). Public for
/// the fuzz targets.
pub fn resume_after(headers: &HeaderMap, after: Option<i64>) -> ApiResult<Seq> {
    match headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
    {
        Some(seq) => Ok(Seq::new(seq)),
        None => seq_param(after),
    }
}

/// Live events as server-sent events (`id` = sequence number): resumable without gap or
/// duplicate through `Last-Event-ID` or `after`.
#[utoipa::path(get, path = "/api/rooms/{room}/live", params(("room" = String, Path), LiveQuery), tag = "rooms",
    responses((status = 200, description = "text/event-stream of EventView"), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
pub async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    Query(query): Query<LiveQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let as_customer = query.as_role.as_deref() == Some("customer");
    let actor = actor(&state.agents, &state.rooms, &headers, as_customer).await?;
    let room = room_id(&room)?;
    let resume = resume_after(&headers, query.after)?;
    let role = reader(&actor);
    let stream = state.rooms.subscribe(&actor, room, resume).await?;
    let events = stream
        .inspect(move |item| {
            if let Err(e) = item {
                // The client reconnects with Last-Event-ID and resumes where it was.
                tracing::warn!(%room, error = %e, "live stream ended");
            }
        })
        .take_while(|item| std::future::ready(item.is_ok()))
        .filter_map(move |item| {
            std::future::ready(item.ok().map(|event| {
                let view = EventView::new(room, &event, role);
                let data = serde_json::to_string(&view).unwrap_or_default();
                Ok(SseEvent::default()
                    .id(event.seq.to_string())
                    .event("timeline")
                    .data(data))
            }))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A chat message.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageBody {
    /// The text (trimmed; 1 to 4,000 characters).
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    pub text: String,
    /// A key the client chose, so that a retried send is not posted twice (at most 128 bytes).
    #[schema(max_length = 128)]
    pub client_key: Option<String>,
}

/// Posts a chat message.
#[utoipa::path(post, path = "/api/rooms/{room}/messages", params(("room" = String, Path)), request_body = MessageBody,
    tag = "rooms", responses((status = 201, body = EventView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    Json(body): Json<MessageBody>,
) -> ApiResult<(StatusCode, Json<EventView>)> {
    let actor = who(&state, &headers).await?;
    let room = room_id(&room)?;
    let event = state
        .rooms
        .post_message(&actor, room, &body.text, body.client_key.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(EventView::new(room, &event, reader(&actor)))))
}

/// The name of an uploaded file.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadQuery {
    /// The file's name, for display only.
    pub name: String,
}

/// Shares a document: the request body is the file's bytes.
#[utoipa::path(post, path = "/api/rooms/{room}/documents", params(("room" = String, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"), tag = "rooms",
    responses((status = 201, body = EventView), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> ApiResult<(StatusCode, Json<EventView>)> {
    let actor = who(&state, &headers).await?;
    let room = room_id(&room)?;
    let data = body.into_data_stream().map_err(io::Error::other);
    let upload = Upload {
        file_name: query.name,
        data: Box::pin(data),
    };
    let event = state.rooms.share_document(&actor, room, upload).await?;
    Ok((StatusCode::CREATED, Json(EventView::new(room, &event, reader(&actor)))))
}

/// The `Range` header: `bytes=a-b` or `bytes=a-`, one range. Anything else (several ranges,
/// `b < a`, garbage) is ignored and the whole document is sent, as RFC 9110 allows. Public for
/// the fuzz targets.
pub fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let (start, end) = value.strip_prefix("bytes=")?.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    match end.trim() {
        "" => Some(ByteRange::from_start(start)),
        end => ByteRange::new(start..end.parse::<u64>().ok()?.checked_add(1)?).ok(),
    }
}

/// Opens a document, or a byte range of it, with safe headers.
#[utoipa::path(get, path = "/api/rooms/{room}/documents/{document}",
    params(("room" = String, Path), ("document" = String, Path)), tag = "rooms",
    responses((status = 200, description = "the bytes"), (status = 206, description = "a range of the bytes"),
    (status = 404, body = ErrorBody), (status = 416, body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((room, document)): Path<(String, String)>,
) -> ApiResult<Response> {
    let actor = who(&state, &headers).await?;
    let room = room_id(&room)?;
    let document: DocumentId = document
        .parse()
        .map_err(|_| ApiError::Core(Error::NotFound { what: "document" }))?;
    let range = parse_range(&headers);
    let download = state.rooms.open_document(&actor, room, document, range).await?;
    let partial = range.is_some();
    let (size, range) = (download.meta.size, download.range.clone());
    let safe_headers = download.headers();
    let mut response = Response::new(Body::from_stream(download.stream.map_err(io::Error::other)));
    let headers = response.headers_mut();
    for (name, value) in &safe_headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(*name, value);
        }
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(length) = HeaderValue::from_str(&(range.end - range.start).to_string()) {
        headers.insert(header::CONTENT_LENGTH, length);
    }
    if partial {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let content_range = format!("bytes {}-{}/{size}", range.start, range.end.saturating_sub(1));
        if let Ok(value) = HeaderValue::from_str(&content_range) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
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
    responses((status = 200, body = Joined), (status = 404, body = ErrorBody)))]
pub async fn join(State(state): State<AppState>, Json(body): Json<JoinBody>) -> ApiResult<Response> {
    let session = state.rooms.join(&body.token).await?;
    let cookie = session_cookie(CUSTOMER_COOKIE, session.token.expose(), state.secure_cookies);
    let response = Json(Joined {
        room: session.room.to_string(),
    })
    .into_response();
    Ok(with_cookie(response, &cookie))
}

/// A message the dev notifiers "sent".
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxMessage {
    /// The room the invite is for.
    pub room: String,
    /// The recipient.
    pub to: String,
    /// The subject, for email.
    pub subject: Option<String>,
    /// The text.
    pub text: String,
    /// The invite link in it.
    pub link: String,
}

/// What the development notifiers "sent" for the agent's tenant (signed-in agents only).
#[utoipa::path(get, path = "/api/dev/inbox", tag = "dev",
    responses((status = 200, body = Vec<InboxMessage>), (status = 401, body = ErrorBody)))]
pub async fn dev_inbox(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Vec<InboxMessage>>> {
    let actor = who(&state, &headers).await?;
    if !matches!(actor, Actor::Agent { .. }) {
        return Err(ApiError::Core(Error::Forbidden));
    }
    // One inbox serves every tenant: show only invites to rooms this agent may read.
    let mut readable: HashMap<String, bool> = HashMap::new();
    let mut shown = Vec::new();
    for message in state.inbox.messages() {
        let visible = match readable.get(&message.room) {
            Some(visible) => *visible,
            None => {
                let visible = may_read(&state, &actor, &message.room).await?;
                readable.insert(message.room.clone(), visible);
                visible
            }
        };
        if visible {
            shown.push(message);
        }
    }
    Ok(Json(shown))
}

/// Whether `actor` may read `room`; a failing store is an error, not a "no".
async fn may_read(state: &AppState, actor: &Actor, room: &str) -> ApiResult<bool> {
    let Ok(room) = room_id(room) else {
        return Ok(false);
    };
    match state.rooms.room(actor, room).await {
        Ok(_) => Ok(true),
        Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Where a status callback belongs (Twilio adds these to the callback URL we give it).
#[derive(Debug, Deserialize, IntoParams)]
pub struct CallbackQuery {
    /// The room.
    pub room: String,
    /// The invite.
    pub invite: String,
}

/// Twilio's delivery status callback: checked against `X-Twilio-Signature`, then recorded on
/// the invite (a replay records nothing).
#[utoipa::path(post, path = "/api/callbacks/twilio", params(CallbackQuery), tag = "providers",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 204, description = "recorded"), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody)))]
pub async fn twilio_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let Some(webhook) = &state.twilio else {
        return Err(ApiError::Core(Error::NotFound { what: "callback" }));
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
