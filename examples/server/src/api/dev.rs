//! The Dev inbox: what the development notifiers "sent", so that invites can be followed without
//! an SMS or email account. Mounted only in dev mode, when a development notifier is in use.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use collab_core::notify::RecordingNotifier;
use collab_core::{Actor, Error};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiResult, room_id};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};

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

/// What the development notifiers "sent", for the dev inbox page.
pub trait Inbox: Send + Sync + 'static {
    /// The messages, oldest first.
    fn messages(&self) -> Vec<InboxMessage>;
}

impl Inbox for collab_notify::DevInbox {
    fn messages(&self) -> Vec<InboxMessage> {
        // The dev inbox holds the newest first.
        let mut messages: Vec<InboxMessage> = collab_notify::DevInbox::messages(self)
            .into_iter()
            .map(|m| InboxMessage {
                room: m.room.to_string(),
                to: m.recipient.to_string(),
                subject: m.subject,
                text: m.text,
                link: m.link,
            })
            .collect();
        messages.reverse();
        messages
    }
}

impl Inbox for RecordingNotifier {
    fn messages(&self) -> Vec<InboxMessage> {
        self.sent()
            .into_iter()
            .map(|n| InboxMessage {
                room: n.room.to_string(),
                to: n.recipient.to_string(),
                subject: n.subject,
                text: n.text,
                link: n.link,
            })
            .collect()
    }
}

/// What the development notifiers "sent" for the agent's tenant (signed-in agents only).
#[utoipa::path(get, path = "/api/dev/inbox", tag = "dev", params(Caller), security(("agent_session" = [])),
    responses((status = 200, body = Vec<InboxMessage>), (status = 401, body = ErrorBody)))]
pub async fn dev_inbox(State(state): State<AppState>, Caller(actor): Caller) -> ApiResult<Json<Vec<InboxMessage>>> {
    if !matches!(actor, Actor::Agent { .. }) {
        return Err(ApiError::Core(Error::Forbidden));
    }
    // Mounted only with an inbox; without one there is nothing to show.
    let Some(inbox) = &state.inbox else {
        return Ok(Json(Vec::new()));
    };
    // One inbox serves every tenant: show only invites to rooms this agent may read.
    let mut readable: HashMap<String, bool> = HashMap::new();
    let mut shown = Vec::new();
    for message in inbox.messages() {
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
