//! Rooms: the list, opening, invites, closing, the timeline, live events and chat messages.

use std::convert::Infallible;
use std::time::Duration;

use std::borrow::Cow;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use collab_core::rooms::{InviteRequest, RoomUpdate, TimelineQuery};
use collab_core::store::{RoomCursor, RoomQuery};
use collab_core::{Actor, Channel, EmailAddress, Error, PhoneNumber, Recipient, RoomId, Seq};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiResult, JsonBody, QueryParams, reader, request_field, room_id, seq_param};
use crate::AppState;
use crate::auth::{Caller, LiveCaller};
use crate::error::{ApiError, ErrorBody};
use crate::views::{EventView, RoomRow, RoomView, TypingView};

/// Filters of the rooms list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
#[utoipa::path(get, path = "/api/rooms", params(ListQuery, Caller), tag = "rooms", security(("agent_session" = [])),
    responses((status = 200, body = RoomList), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_rooms(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
    Caller(actor): Caller,
) -> ApiResult<Json<RoomList>> {
    let fields = request_field(&[("name_prefix", "name")]);
    let query = RoomQuery {
        name_prefix: blank(&query.name),
        phone: blank(&query.phone).map(|p| PhoneNumber::parse(&p)).transpose()?,
        email: blank(&query.email).map(|e| EmailAddress::parse(&e)).transpose()?,
        after: blank(&query.after).map(|a| a.parse::<RoomCursor>()).transpose()?,
        limit: query.limit.unwrap_or(50),
        ..RoomQuery::default()
    };
    let page = state.rooms.list_rooms(&actor, &query).await.map_err(fields)?;
    Ok(Json(RoomList {
        rooms: page.rooms.iter().map(RoomRow::from).collect(),
        next: page.next.map(|n| n.to_string()),
    }))
}

/// A text field, trimmed; none when it is missing or blank.
fn blank(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

async fn room_view(state: &AppState, actor: &Actor, room: RoomId) -> ApiResult<RoomView> {
    let room_state = state.rooms.room(actor, room).await?;
    let status = state.rooms.current_status(&room_state);
    let settings = state.rooms.tenant_settings(room_state.tenant()).await;
    Ok(RoomView::new(
        &room_state,
        status,
        state.rooms.config().policy().sms_activated(),
        settings.timed_out_message,
    ))
}

/// Opens a room: a draft named "Collaboration Room".
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", params(Caller), security(("agent_session" = [])),
    responses((status = 201, body = RoomView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_room(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<(StatusCode, Json<RoomView>)> {
    let summary = state.rooms.create_room(&actor).await?;
    Ok((
        StatusCode::CREATED,
        Json(room_view(&state, &actor, summary.room).await?),
    ))
}

/// A room: name, status, customer information.
#[utoipa::path(get, path = "/api/rooms/{room}", params(("room" = String, Path), Caller), tag = "rooms",
    responses((status = 200, body = RoomView), (status = 404, body = ErrorBody)))]
pub async fn get_room(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Caller(actor): Caller,
) -> ApiResult<Json<RoomView>> {
    Ok(Json(room_view(&state, &actor, room_id(&room)?).await?))
}

/// An invite from the invite frame.
///
/// A room's first invite goes by SMS or email (a link needs one of those sent first: 409
/// `not_allowed`) and gives `first_name`, `last_name` and `identifier`; without one of them it is
/// refused with 422 `invalid` naming it in `field`. Later invites may leave the names out, and
/// `identifier` too on a channel used before.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InviteBody {
    /// `sms`, `email` or `link`.
    #[schema(pattern = "^(sms|email|link)$")]
    pub channel: String,
    /// First name: required on the room's first invite, then locked (leave out or repeat).
    pub first_name: Option<String>,
    /// Last name: required on the room's first invite, then locked likewise.
    pub last_name: Option<String>,
    /// The mobile number (`sms`, international form) or email address (`email`): required the
    /// first time the room is invited through that channel, then locked (leave out or repeat).
    /// None with `link`.
    pub identifier: Option<String>,
    /// The language of the invite's text (`es`, `he`, `pt-BR`…); without one, the tenant's.
    #[schema(max_length = 35, pattern = "^[A-Za-z0-9-]*$")]
    pub locale: Option<String>,
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
    /// The customer's other rooms merged into this one after the invite (with
    /// `COLLAB_EXISTING_CUSTOMER=merge`).
    pub merged: Vec<String>,
}

/// Invites or re-invites the customer (SMS, email, or Get Link). SMS and email invites pass an
/// abuse guard (per recipient, number block, room, agent and tenant, with a cool-down between
/// invites to one recipient): past a limit, 429 `rate_limited` with `Retry-After`; a number
/// the guard never sends to (a country not allowed, not a mobile) is 409 `not_allowed`. A
/// customer who has another room of the tenant is invited here too, or (as the server is
/// configured) answered 409 `customer_has_room` naming that room in the error's `room`, or
/// invited here with that room merged into this one (`merged`).
#[utoipa::path(post, path = "/api/rooms/{room}/invites", params(("room" = String, Path), Caller), request_body = InviteBody,
    tag = "rooms", security(("agent_session" = [])), responses((status = 201, body = InviteAnswer), (status = 409, body = ErrorBody),
    (status = 422, body = ErrorBody), (status = 429, body = ErrorBody, description = "`rate_limited`: an abuse \
    limit on invites; `Retry-After` says when the same invite would pass")))]
pub async fn invite(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Caller(actor): Caller,
    JsonBody(body): JsonBody<InviteBody>,
) -> ApiResult<(StatusCode, Json<InviteAnswer>)> {
    let channel = Channel::ALL
        .into_iter()
        .find(|c| c.as_str() == body.channel)
        .ok_or(Error::invalid("channel", "must be sms, email or link"))?;
    let request = InviteRequest {
        channel,
        first_name: body.first_name,
        last_name: body.last_name,
        identifier: body.identifier.filter(|i| !i.trim().is_empty()),
        locale: body.locale.filter(|l| !l.is_empty()),
    };
    // The core names the number `phone`, the address `email` and a link's stray one
    // `recipient`: the request sent each as `identifier`.
    let fields = request_field(&[
        ("phone", "identifier"),
        ("email", "identifier"),
        ("recipient", "identifier"),
    ]);
    let issued = state
        .rooms
        .invite(&actor, room_id(&room)?, request)
        .await
        .map_err(fields)?;
    Ok((
        StatusCode::CREATED,
        Json(InviteAnswer {
            invite: issued.invite.to_string(),
            link: issued.link.map(|l| l.url().to_owned()),
            sms_segments: issued.sms_segments,
            merged: issued.merged.iter().map(ToString::to_string).collect(),
        }),
    ))
}

/// Closes a room for good.
#[utoipa::path(post, path = "/api/rooms/{room}/close", params(("room" = String, Path), Caller), tag = "rooms",
    security(("agent_session" = [])), responses((status = 204, description = "closed"), (status = 409, body = ErrorBody)))]
pub async fn close_room(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Caller(actor): Caller,
) -> ApiResult<StatusCode> {
    state.rooms.close_room(&actor, room_id(&room)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a room goes in a merge.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The room that takes this one in (the survivor).
    #[schema(max_length = 36)]
    pub into: String,
}

/// Merges this room into another room of the tenant whose customer has the same mobile number
/// or email address. The other room (`into`) gets a copy of this room's invites, sessions,
/// messages and documents, in their order, then a `room_merged` event; this room gets a
/// `merged_into` event and from then on answers 409 `room_merged` (naming `into` in the error's
/// `room`) to anything but reading it. Its links and its customer's sessions lead to `into`.
/// Both rooms change in one transaction, or neither. Agents of its tenant only. Answers the
/// room that took it in.
#[utoipa::path(post, path = "/api/rooms/{room}/merge", params(("room" = String, Path), Caller),
    request_body = MergeBody, tag = "rooms", security(("agent_session" = [])),
    responses((status = 200, body = RoomView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn merge_room(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Caller(actor): Caller,
    JsonBody(body): JsonBody<MergeBody>,
) -> ApiResult<Json<RoomView>> {
    let absorbed = room_id(&room)?;
    let into = body
        .into
        .trim()
        .parse::<RoomId>()
        .map_err(|_| Error::invalid("into", "not a room id"))?;
    let survivor = state.rooms.merge_rooms(&actor, absorbed, into).await?;
    Ok(Json(room_view(&state, &actor, survivor.room()).await?))
}

/// Erases the room's personal data: every message, name, number, address and document goes,
/// the timeline keeps its sequence numbers (each event becomes `redacted`), links and sessions
/// stop working, and a `room_erased` event records who did it and when. The room then answers
/// 410 `room_erased` to anything but reading it. Agents of its tenant only; repeating it is no
/// error.
#[utoipa::path(post, path = "/api/rooms/{room}/erase", params(("room" = String, Path), Caller), tag = "rooms",
    security(("agent_session" = [])), responses((status = 204, description = "erased (or erased already)"), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody)))]
pub async fn erase_room(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Caller(actor): Caller,
) -> ApiResult<StatusCode> {
    state.rooms.erase_room(&actor, room_id(&room)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whose personal data to erase: exactly one of `phone` and `email`, e.g. `{"phone": "+44…"}` or
/// `{"email": "…"}`. Both, neither, or the one given empty is refused with 422 `invalid`.
#[derive(Debug, Deserialize, ToSchema)]
// `minProperties` and `maxProperties` 1 in the document: set by `openapi::exactly_one`.
#[serde(deny_unknown_fields)]
pub struct EraseCustomerBody {
    /// The customer's mobile number, international form.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// The customer's email address (any case).
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
}

/// A field that is there, even as `null`: `Some`, so that "exactly one" counts what was sent.
fn given<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// The rooms an erasure covered.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasedRooms {
    /// The ids of the rooms erased (none when the customer had none).
    pub rooms: Vec<String>,
}

/// Erases a customer from every room of the agent's tenant: each room whose customer has this
/// mobile number or email address (exactly one of the two) is erased as
/// `POST /api/rooms/{room}/erase` erases one. Agents only.
#[utoipa::path(post, path = "/api/customers/erase", params(Caller), request_body = EraseCustomerBody, tag = "rooms",
    security(("agent_session" = [])), responses((status = 200, body = ErasedRooms), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn erase_customer(
    State(state): State<AppState>,
    Caller(actor): Caller,
    JsonBody(body): JsonBody<EraseCustomerBody>,
) -> ApiResult<Json<ErasedRooms>> {
    let customer = match (body.phone, body.email) {
        (Some(phone), None) => match blank(&phone) {
            Some(phone) => Recipient::Phone(PhoneNumber::parse(&phone)?),
            None => return Err(Error::invalid("phone", "must not be empty").into()),
        },
        (None, Some(email)) => match blank(&email) {
            Some(email) => Recipient::Email(EmailAddress::parse(&email)?),
            None => return Err(Error::invalid("email", "must not be empty").into()),
        },
        _ => return Err(Error::invalid("phone", "give exactly one of phone and email").into()),
    };
    let rooms = state.rooms.erase_customer(&actor, &customer).await?;
    Ok(Json(ErasedRooms {
        rooms: rooms.iter().map(ToString::to_string).collect(),
    }))
}

/// Which events to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events after this sequence number (0 for all).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many (1 to 1000, 200 by default).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// The room's timeline, oldest first.
#[utoipa::path(get, path = "/api/rooms/{room}/events", params(("room" = String, Path), EventsQuery, Caller), tag = "rooms",
    responses((status = 200, body = Vec<EventView>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    Path(room): Path<String>,
    QueryParams(query): QueryParams<EventsQuery>,
    Caller(actor): Caller,
) -> ApiResult<Json<Vec<EventView>>> {
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
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    /// The last sequence number the client has (the `Last-Event-ID` header wins).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// `customer` on the customer page (an EventSource cannot send the `x-collab-as` header).
    // Read by the `LiveCaller` extractor; here for the document and the fuzz targets.
    #[serde(rename = "as")]
    pub as_role: Option<String>,
}

/// The header a reconnecting `EventSource` sends: the `id` of the last event it received.
pub const LAST_EVENT_ID: &str = "Last-Event-ID";

/// The sequence number a live stream resumes after: the `Last-Event-ID` header when present
/// (refused unless a sequence number), else the `after` query parameter (refused when
/// negative), else 0 (from the start). Public for the fuzz targets.
pub fn resume_after(headers: &HeaderMap, after: Option<i64>) -> ApiResult<Seq> {
    resume_point(headers, after).map(|(seq, _)| seq)
}

/// [`resume_after`], and the part of the request that said it.
fn resume_point(headers: &HeaderMap, after: Option<i64>) -> ApiResult<(Seq, &'static str)> {
    // An empty id is no resume point: a browser sends none once a stream set it empty.
    match headers.get(LAST_EVENT_ID).filter(|v| !v.is_empty()) {
        // A malformed resume point is refused: replaying the room from its start instead would
        // have a phone on a bad network download it all again.
        Some(value) => match value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(seq) => Ok((Seq::new(seq), LAST_EVENT_ID)),
            None => Err(ApiError::BadRequest(
                Cow::Borrowed(LAST_EVENT_ID),
                "must be the id of an event of this stream (a sequence number)".to_owned(),
            )),
        },
        None => Ok((seq_param(after)?, "after")),
    }
}

/// Live events as server-sent events: `timeline` events (`id` = sequence number, data an
/// `EventView`), resumable without gap or duplicate through `Last-Event-ID` or `after`, and
/// between them `typing` events (no `id`, data a `TypingView`) when someone else in the room
/// types. A resume point that is not a number is 400, one beyond the room's last event 422
/// (start again from 0). Open streams are capped per session and
/// per client address: past a cap, 429 with `Retry-After`.
#[utoipa::path(get, path = "/api/rooms/{room}/live", tag = "rooms",
    params(("room" = String, Path), LiveQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received \
        (a sequence number, as `after`; it wins over `after`). A reconnecting `EventSource` sends it."),
        LiveCaller),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "Server-sent events (`text/event-stream`), each a `timeline` or a `typing` event, and now \
        and then a comment line (`:`) that keeps the connection open:\n\n\
        - `event: timeline`: `id` is the event's sequence number (`seq`), `data` an `EventView` as JSON; send \
        the last `id` as `Last-Event-ID` (or `after`) to resume without gap or duplicate.\n\
        - `event: typing`: no `id`, `data` a `TypingView` as JSON: someone else in the room is typing."),
    (status = 400, body = ErrorBody, description = "`Last-Event-ID` is not a sequence number"),
    (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody, description = "the resume point is negative, or beyond the room's last event"),
    (status = 429, body = ErrorBody, description = "too many live streams open for this session or from this \
    address; `Retry-After` says when to try again")))]
pub async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(room): Path<String>,
    QueryParams(query): QueryParams<LiveQuery>,
    LiveCaller(actor): LiveCaller,
    crate::streams::PeerAddr(peer): crate::streams::PeerAddr,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let room = room_id(&room)?;
    let (resume, field) = resume_point(&headers, query.after)?;
    // Events only ever come after the room's last one: resuming beyond it would wait forever.
    let last = state.rooms.room(&actor, room).await?.seq();
    if resume > last {
        let reason = format!("is beyond the room's last event ({last}); resume from 0 or an id this stream sent");
        return Err(ApiError::Invalid(Cow::Borrowed(field), reason));
    }
    let role = reader(&actor);
    // Held by the stream: its slot frees when the client goes away.
    let slot = state.live_streams.open(&actor, peer.map(|p| p.ip()))?;
    let stream = state.rooms.follow(&actor, room, resume).await?;
    // Checked again while open: a sign-out or an expired session ends the stream (the core ends
    // it on a revocation), not only the requests that come after.
    let every = state.live_streams.limits().session_check();
    let signed_out = crate::auth::SignedIn::of(&headers, &actor).ended(state.clone(), every);
    let stream = stream.take_until(async move {
        signed_out.await;
        tracing::info!(%room, "live stream ended: the caller's session ended");
    });
    let events = stream
        .inspect(move |item| {
            if let Err(e) = item {
                // The client reconnects with Last-Event-ID and resumes where it was.
                tracing::warn!(%room, error = %e, "live stream ended");
            }
        })
        .take_while(|item| std::future::ready(item.is_ok()))
        .filter_map(move |item| {
            std::future::ready(item.ok().map(|update| {
                Ok(match update {
                    RoomUpdate::Event(event) => {
                        let view = EventView::new(room, &event, role);
                        let data = serde_json::to_string(&view).unwrap_or_default();
                        SseEvent::default()
                            .id(event.seq.to_string())
                            .event("timeline")
                            .data(data)
                    }
                    RoomUpdate::Typing(typing) => {
                        let data = serde_json::to_string(&TypingView::new(&typing.by)).unwrap_or_default();
                        SseEvent::default().event("typing").data(data)
                    }
                })
            }))
        });
    Ok(Sse::new(slot.hold(events)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// How far the caller has seen the room.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadBody {
    /// The last event seen (its `seq`); at most the room's last.
    #[schema(minimum = 0)]
    pub seq: u64,
}

/// Says how far the caller (agent or customer) has seen the room: the other side's page shows
/// it as "Seen", and the rooms list counts the customer's messages past every agent's horizon.
/// A horizon never moves back: an older one is accepted and changes nothing.
#[utoipa::path(post, path = "/api/rooms/{room}/read", params(("room" = String, Path), Caller), request_body = ReadBody,
    tag = "rooms", responses((status = 204, description = "recorded, or nothing to record"),
    (status = 410, body = ErrorBody), (status = 422, body = ErrorBody, description = "`seq` is past the room's last event")))]
pub async fn mark_read(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Caller(actor): Caller,
    JsonBody(body): JsonBody<ReadBody>,
) -> ApiResult<StatusCode> {
    let room = room_id(&room)?;
    state.rooms.mark_read(&actor, room, Seq::new(body.seq)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Says the caller (agent or customer) is typing: the other side's live stream gets a `typing`
/// event. Send it as the person types; the server passes one signal per participant every 2 s
/// and answers 204 for the rest too. Nothing is stored. Refused like a message would be: 409
/// in a closed room (and, for the customer, a timed-out one), 410 in an erased room.
#[utoipa::path(post, path = "/api/rooms/{room}/typing", params(("room" = String, Path), Caller),
    tag = "rooms", responses((status = 204, description = "passed on, or dropped as too soon after the last"),
    (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn typing(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Caller(actor): Caller,
) -> ApiResult<StatusCode> {
    let room = room_id(&room)?;
    state.rooms.typing(&actor, room).await?;
    Ok(StatusCode::NO_CONTENT)
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

/// Posts a chat message. Each session (agent or customer) may post a burst of messages, then a
/// few a second: past that, 429 `rate_limited` with `Retry-After`.
#[utoipa::path(post, path = "/api/rooms/{room}/messages", params(("room" = String, Path), Caller), request_body = MessageBody,
    tag = "rooms", responses((status = 201, body = EventView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "`rate_limited`: this session posted too many messages lately; \
    `Retry-After` says when to try again")))]
pub async fn post_message(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Caller(actor): Caller,
    JsonBody(body): JsonBody<MessageBody>,
) -> ApiResult<(StatusCode, Json<EventView>)> {
    let room = room_id(&room)?;
    state.quotas.message(&actor)?;
    let event = state
        .rooms
        .post_message(&actor, room, &body.text, body.client_key.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(EventView::new(room, &event, reader(&actor)))))
}
