//! Who can get into a room: its invite links and the customers' live sessions, for agents to see
//! and revoke.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use collab_core::{Actor, Entity, Error, InviteId, InviteStatus, ParticipantId, Policy, RoomState, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiResult, room_id};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ErrorBody;

/// The ways into a room: every invite, and the sessions that are live.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessView {
    /// Every invite of the room, oldest first; `live` says whether its link still opens the room.
    pub invites: Vec<InviteView>,
    /// The customer's live sessions, oldest first (ended ones are left out).
    pub sessions: Vec<SessionView>,
}

/// One invite and its link.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteView {
    /// The invite's id: `DELETE /api/rooms/{room}/invites/{invite}` revokes it.
    pub id: String,
    /// `sms`, `email` or `link`.
    pub channel: String,
    /// The mobile number or email address it went to; none for a link.
    pub recipient: Option<String>,
    /// As of now: `requested`, `sent`, `delivered`, `failed`, `opened`, `revoked`, `expired`
    /// or `superseded` (a later invite went out through its channel: its link no longer opens
    /// the room, the sessions it opened go on).
    pub status: String,
    /// Whether its link opens the room now (neither revoked, expired nor superseded).
    pub live: bool,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// When its link stops working (RFC 3339).
    pub expires_at: String,
}

/// One live session of the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The participation's id: `DELETE /api/rooms/{room}/sessions/{participant}` revokes it.
    pub participant: String,
    /// The invite whose link opened it.
    pub invite: String,
    /// That invite's channel: `sms`, `email` or `link`.
    pub channel: Option<String>,
    /// When the customer joined (RFC 3339).
    pub joined_at: String,
}

fn status_name(status: InviteStatus) -> &'static str {
    match status {
        InviteStatus::Requested => "requested",
        InviteStatus::Sent => "sent",
        InviteStatus::Delivered => "delivered",
        InviteStatus::Failed { .. } => "failed",
        InviteStatus::Opened => "opened",
        InviteStatus::Revoked => "revoked",
        InviteStatus::Expired => "expired",
    }
}

impl AccessView {
    /// The invites and live sessions of `state` at `now`, under `policy`.
    pub fn new(state: &RoomState, now: Timestamp, policy: &Policy) -> Self {
        let invites = state
            .invites()
            .iter()
            .map(|invite| InviteView {
                id: invite.id.to_string(),
                channel: invite.channel.as_str().to_owned(),
                recipient: invite.recipient.as_ref().map(ToString::to_string),
                status: match invite.is_usable_at(now) && !state.link_opens(invite.id, now, policy) {
                    true => "superseded".to_owned(),
                    false => status_name(invite.status_at(now)).to_owned(),
                },
                live: state.link_opens(invite.id, now, policy),
                issued_at: invite.issued_at.to_string(),
                expires_at: invite.expires_at.to_string(),
            })
            .collect();
        let sessions = state
            .participants()
            .iter()
            .filter(|p| !p.revoked)
            .map(|p| SessionView {
                participant: p.id.to_string(),
                invite: p.invite.to_string(),
                channel: state.invite(p.invite).map(|i| i.channel.as_str().to_owned()),
                joined_at: p.joined_at.to_string(),
            })
            .collect();
        Self { invites, sessions }
    }
}

/// The room's invites and live sessions. Agents only: its customer gets 403.
#[utoipa::path(get, path = "/api/rooms/{room}/access", params(("room" = String, Path), Caller), tag = "rooms",
    security(("agent_session" = [])), responses((status = 200, body = AccessView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn access(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Caller(actor): Caller,
) -> ApiResult<Json<AccessView>> {
    // Access to the room first, so that a stranger learns nothing (404), then the role.
    let room_state = state.rooms.room(&actor, room_id(&room)?).await?;
    if !matches!(actor, Actor::Agent { .. }) {
        return Err(Error::Forbidden.into());
    }
    let policy = state.rooms.config().policy();
    Ok(Json(AccessView::new(&room_state, state.rooms.now(), policy)))
}

/// Revokes a customer's session: its cookie stops working and its live stream ends. The link
/// that opened it is revoked too, so that it cannot simply open a new one (send a new invite to
/// let the customer back in). Agents only.
#[utoipa::path(delete, path = "/api/rooms/{room}/sessions/{participant}", tag = "rooms", security(("agent_session" = [])),
    params(("room" = String, Path), ("participant" = String, Path, description = "A session's `participant` from `GET /api/rooms/{room}/access`"), Caller),
    responses((status = 204, description = "revoked (or revoked already)"), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "no such room or session")))]
pub async fn revoke_session(
    State(state): State<AppState>,
    Path((room, participant)): Path<(String, String)>,
    Caller(actor): Caller,
) -> ApiResult<StatusCode> {
    let room = room_id(&room)?;
    // A malformed id is as unknown as a missing session.
    let participant: ParticipantId = participant.parse().map_err(|_| Error::NotFound {
        what: Entity::Participant,
    })?;
    state.rooms.revoke_session(&actor, room, participant).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes an invite: its link stops opening the room, and the sessions it opened end. Agents
/// only.
#[utoipa::path(delete, path = "/api/rooms/{room}/invites/{invite}", tag = "rooms", security(("agent_session" = [])),
    params(("room" = String, Path), ("invite" = String, Path, description = "An invite's `id` from `GET /api/rooms/{room}/access`"), Caller),
    responses((status = 204, description = "revoked (or revoked already)"), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "no such room or invite")))]
pub async fn revoke_invite(
    State(state): State<AppState>,
    Path((room, invite)): Path<(String, String)>,
    Caller(actor): Caller,
) -> ApiResult<StatusCode> {
    let room = room_id(&room)?;
    let invite: InviteId = invite.parse().map_err(|_| Error::NotFound { what: Entity::Invite })?;
    state.rooms.revoke_invite(&actor, room, invite).await?;
    Ok(StatusCode::NO_CONTENT)
}
