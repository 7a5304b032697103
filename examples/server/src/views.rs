//! What the API sends: the core's types, shaped for a browser and for the reader's role.

use collab_core::transport::{Typing, Typist};
use collab_core::{
    Customer, DeliveryStatus, DocumentKind, Event, EventActor, EventData, RoomId, RoomState, RoomStatus, RoomSummary,
};
use serde::Serialize;
use utoipa::ToSchema;

/// Who reads: customers see less than agents (no recipients, no provider messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// An agent of the tenant.
    Agent,
    /// The room's customer.
    Customer,
}

/// A room as the console and the customer page show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomView {
    /// The room's id.
    pub id: String,
    /// Its name: "Collaboration Room", then the customer's.
    pub name: String,
    /// `draft`, `active`, `timed_out`, `closed`, `merged` or `erased`, as of now.
    pub status: String,
    /// For a `merged` room: the room that holds its content now.
    pub merged_into: Option<String>,
    /// For a `timed_out` room: what the tenant's admins want its customer told, if they set it.
    pub timed_out_message: Option<String>,
    /// The customer, once invited.
    pub customer: Option<CustomerView>,
    /// Channels invites went through already (their identifiers are locked): `sms`, `email`, `link`.
    pub channels_used: Vec<String>,
    /// Whether SMS invites can be sent (a sender number is configured).
    pub sms_activated: bool,
    /// The last event's sequence number.
    pub seq: u64,
    /// The furthest event any agent has seen (0: none): the customer page's "Seen".
    pub seen_by_agents: u64,
    /// The furthest event the customer has seen (0: none): the console's "Seen".
    pub seen_by_customer: u64,
}

/// The customer information area.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Mobile number, if invited by SMS.
    pub phone: Option<String>,
    /// Email address, if invited by email.
    pub email: Option<String>,
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> Self {
        Self {
            first_name: c.first_name.to_string(),
            last_name: c.last_name.to_string(),
            phone: c.phone.as_ref().map(ToString::to_string),
            email: c.email.as_ref().map(ToString::to_string),
        }
    }
}

impl RoomView {
    /// The view of `state` at its effective `status`; `timed_out_message` is the tenant's.
    pub fn new(state: &RoomState, status: RoomStatus, sms_activated: bool, timed_out_message: Option<String>) -> Self {
        let mut channels_used: Vec<String> = state.invites().iter().map(|i| i.channel.as_str().to_owned()).collect();
        channels_used.sort();
        channels_used.dedup();
        Self {
            id: state.room().to_string(),
            name: state.name().to_owned(),
            status: status.as_str().to_owned(),
            merged_into: state.merged_into().map(|room| room.to_string()),
            timed_out_message: timed_out_message.filter(|_| status == RoomStatus::TimedOut),
            customer: state.customer().map(CustomerView::from),
            channels_used,
            sms_activated,
            seq: state.seq().get(),
            seen_by_agents: state.seen_by_agents().get(),
            seen_by_customer: state.seen_by_customer().get(),
        }
    }
}

/// A row of the rooms list.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomRow {
    /// The room's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its recorded status.
    pub status: String,
    /// The customer, once invited.
    pub customer: Option<CustomerView>,
    /// When it was opened (RFC 3339).
    pub created_at: String,
    /// The customer's messages and documents no agent has seen yet.
    pub unread: u32,
}

impl From<&RoomSummary> for RoomRow {
    fn from(s: &RoomSummary) -> Self {
        Self {
            id: s.room.to_string(),
            name: s.name.clone(),
            status: s.status.as_str().to_owned(),
            customer: s.customer.as_ref().map(CustomerView::from),
            created_at: s.created_at.to_string(),
            unread: s.unread,
        }
    }
}

/// One item of the content area.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Its place in the timeline.
    pub seq: u64,
    /// When (RFC 3339).
    pub at: String,
    /// `agent`, `customer` or `system`.
    pub by: &'static str,
    /// The event type: `message_posted`, `document_shared`, `customer_invited`…
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A message's text, or a short description of other events.
    pub text: Option<String>,
    /// A shared document.
    pub document: Option<DocumentView>,
    /// The room's new name, for `room_renamed`: a page writes its own line from the type and this.
    pub name: Option<String>,
    /// The invite's channel (`sms`, `email`, `link`), for `customer_invited`.
    pub channel: Option<&'static str>,
    /// For `read_up_to`: the furthest event its reader (`by`) has seen.
    pub read_up_to: Option<u64>,
    /// For `room_merged`: the room that was merged into this one; for `merged_into`: the room
    /// that holds this one's content now.
    pub room: Option<String>,
    /// For `customer_invited` and `invite_delivery`, to agents: the invite's id (as
    /// `GET /api/rooms/{room}/access` lists it).
    pub invite: Option<String>,
    /// For `invite_delivery`: how far the invite got, as its provider reports it: `sent`, then
    /// `delivered` or `failed`.
    #[schema(pattern = "^(sent|delivered|failed)$")]
    pub delivery: Option<&'static str>,
}

/// Someone else in the room is typing (the live stream's `typing` event, which has no `id`):
/// show it for `expires_in_ms`, or until their next message arrives.
#[derive(Debug, Serialize, ToSchema)]
pub struct TypingView {
    /// `agent` or `customer`.
    pub by: &'static str,
    /// How long to show it, in milliseconds.
    pub expires_in_ms: u64,
}

impl TypingView {
    /// The signal of `typist`.
    pub fn new(typist: &Typist) -> Self {
        let by = match typist {
            Typist::Agent(_) => "agent",
            Typist::Customer(_) => "customer",
        };
        let expires_in_ms = u64::try_from(Typing::EXPIRES_AFTER.as_millis()).unwrap_or(u64::MAX);
        Self { by, expires_in_ms }
    }
}

/// A shared document, with where to fetch it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    /// The document's id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The type sniffed from its bytes.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// `image`, `pdf` or `other`.
    pub kind: &'static str,
    /// A PDF's page count.
    pub pages: Option<u32>,
    /// An image's width.
    pub width: Option<u32>,
    /// An image's height.
    pub height: Option<u32>,
    /// Where to fetch it (same origin, with the reader's cookie).
    pub url: String,
    /// An image's thumbnail (at most 320 px on its long side), to show inline instead of the
    /// whole file; a 404 there means none can be made: show a placeholder.
    pub thumbnail_url: Option<String>,
}

impl EventView {
    /// `event` as `reader` may see it.
    pub fn new(room: RoomId, event: &Event, reader: Reader) -> Self {
        let by = match event.actor {
            EventActor::Agent(_) => "agent",
            EventActor::Customer(_) => "customer",
            EventActor::System => "system",
        };
        let mut document = None;
        let (name, channel) = match &event.data {
            EventData::RoomRenamed { name } => (Some(name.clone()), None),
            EventData::CustomerInvited { channel, .. } => (None, Some(channel.as_str())),
            _ => (None, None),
        };
        let text = match &event.data {
            EventData::MessagePosted { text, .. } => Some(text.clone()),
            EventData::RoomRenamed { name } => Some(format!("The room is now named {name}")),
            EventData::CustomerInvited { channel, recipient, .. } => Some(match (reader, recipient) {
                (Reader::Agent, Some(to)) => format!("Invited by {channel} to {to}"),
                _ => format!("Invited by {channel}"),
            }),
            EventData::DocumentShared(meta) => {
                let (kind, pages, width, height) = match meta.kind {
                    DocumentKind::Image { width, height } => ("image", None, Some(width), Some(height)),
                    DocumentKind::Pdf { pages } => ("pdf", Some(pages), None, None),
                    DocumentKind::Other => ("other", None, None, None),
                };
                document = Some(DocumentView {
                    id: meta.id.to_string(),
                    name: meta.name.clone(),
                    media_type: meta.media_type.clone(),
                    size: meta.size,
                    kind,
                    pages,
                    width,
                    height,
                    url: format!("/api/rooms/{room}/documents/{}", meta.id),
                    thumbnail_url: (kind == "image")
                        .then(|| format!("/api/rooms/{room}/documents/{}/thumbnail", meta.id)),
                });
                None
            }
            EventData::TimedOut => Some("The room timed out".to_owned()),
            EventData::Reactivated => Some("The room is active again".to_owned()),
            EventData::Closed => Some("The room was closed".to_owned()),
            EventData::RoomErased { .. } => Some("The room's personal data was erased".to_owned()),
            EventData::RoomMerged { copied, .. } => Some(match reader {
                Reader::Agent => {
                    format!("Another room of this customer was merged into this one: its {copied} events are above")
                }
                Reader::Customer => "An earlier conversation was added to this room".to_owned(),
            }),
            EventData::MergedInto { survivor } => Some(format!("This room was merged into room {survivor}")),
            EventData::CustomerJoined { .. } => Some("The customer joined".to_owned()),
            // The host's integration, not the customer's business.
            EventData::WebhookFailed {
                endpoint,
                about,
                reason,
                ..
            } if reader == Reader::Agent => Some(format!(
                "A webhook about event {about} to endpoint {endpoint} was given up: {reason}"
            )),
            EventData::AgentsAlerted { failure, .. } if reader == Reader::Agent => Some(match failure {
                None => "The room's agent was alerted of the customer's unread messages".to_owned(),
                Some(reason) => format!("An alert of the customer's unread messages was given up: {reason}"),
            }),
            EventData::CustomerReminded { invite, .. } if reader == Reader::Agent => Some(match invite {
                Some(_) => "The customer was reminded of unread messages".to_owned(),
                None => "The customer was not reminded of unread messages: no SMS or email channel, or the invite \
                         limits refused"
                    .to_owned(),
            }),
            _ => None,
        };
        Self {
            seq: event.seq.get(),
            at: event.at.to_string(),
            by,
            kind: event.data.type_name(),
            text,
            document,
            name,
            channel,
            read_up_to: match event.data {
                EventData::ReadUpTo { seq } => Some(seq.get()),
                _ => None,
            },
            room: match &event.data {
                EventData::RoomMerged { absorbed, .. } => Some(absorbed.to_string()),
                EventData::MergedInto { survivor } => Some(survivor.to_string()),
                _ => None,
            },
            invite: match &event.data {
                EventData::CustomerInvited { invite, .. } | EventData::InviteDelivery { invite, .. }
                    if reader == Reader::Agent =>
                {
                    Some(invite.to_string())
                }
                _ => None,
            },
            delivery: match &event.data {
                EventData::InviteDelivery { status, .. } => Some(match status {
                    DeliveryStatus::Sent { .. } => "sent",
                    DeliveryStatus::Delivered => "delivered",
                    DeliveryStatus::Failed { .. } => "failed",
                }),
                _ => None,
            },
        }
    }
}
