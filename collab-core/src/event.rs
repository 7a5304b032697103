//! The timeline: every change to a room is an [`Event`] with a per-room sequence number.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::content::{BlobKey, Sha256Digest};
use crate::customer::{Channel, Customer, Recipient};
use crate::id::{AgentId, DocumentId, EndpointId, InviteId, ParticipantId, RoomId, TenantId};
use crate::locale::Locale;
use crate::time::Timestamp;

/// A room's sequence number: the first event is 1, each next one adds 1, with no gaps.
///
/// `Seq::ZERO` is "before the first event": the expected sequence number when creating a room.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(u64);

impl Seq {
    /// Before the first event.
    pub const ZERO: Seq = Seq(0);

    /// Wraps a raw sequence number.
    pub const fn new(seq: u64) -> Self {
        Self(seq)
    }

    /// The raw sequence number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The sequence number after this one.
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

/// Who caused an event, as the timeline records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum EventActor {
    /// An agent of the room's tenant.
    Agent(AgentId),
    /// The customer, through one participation (one used invite).
    Customer(ParticipantId),
    /// The library itself: timeouts, delivery reports.
    System,
}

/// One change to a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The room it belongs to.
    pub room: RoomId,
    /// Its place in the room's timeline.
    pub seq: Seq,
    /// When it happened.
    pub at: Timestamp,
    /// Who caused it.
    pub actor: EventActor,
    /// What happened.
    pub data: EventData,
}

/// What happened in an [`Event`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventData {
    /// An agent opened the room. It starts as a draft named [`DEFAULT_ROOM_NAME`](crate::decide::DEFAULT_ROOM_NAME).
    RoomCreated {
        /// The tenant the room belongs to.
        tenant: TenantId,
        /// The agent who opened it.
        agent: AgentId,
        /// The room's first name.
        name: String,
    },
    /// The customer was invited (the first time, or again) through a channel.
    CustomerInvited {
        /// The new invite.
        invite: InviteId,
        /// Its channel.
        channel: Channel,
        /// The customer information after this invite.
        customer: Customer,
        /// Where it is sent; `None` for a link the agent passes on.
        recipient: Option<Recipient>,
        /// When its link stops working.
        expires_at: Timestamp,
        /// The language the agent chose for the invite's text, if any (else the tenant's, then
        /// the deployment's). Absent from logs written before locales existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        locale: Option<Locale>,
    },
    /// The delivery of an invite progressed.
    InviteDelivery {
        /// The invite.
        invite: InviteId,
        /// Its new delivery status.
        status: DeliveryStatus,
    },
    /// An agent revoked an invite: its link no longer works.
    InviteRevoked {
        /// The invite.
        invite: InviteId,
    },
    /// The customer opened an invite link and joined.
    CustomerJoined {
        /// The invite that was used.
        invite: InviteId,
        /// The customer's participation.
        participant: ParticipantId,
    },
    /// An agent revoked a customer's session.
    SessionRevoked {
        /// The participation whose session ends.
        participant: ParticipantId,
    },
    /// A chat message.
    MessagePosted {
        /// The text, trimmed.
        text: String,
        /// The sender's idempotency key, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_key: Option<String>,
    },
    /// A document was shared. Its bytes live in the blob store under `blob`.
    DocumentShared(DocumentMeta),
    /// The room's name changed.
    RoomRenamed {
        /// The new name.
        name: String,
    },
    /// The room saw no activity for the configured period: read-only for the customer.
    TimedOut,
    /// An agent re-invited the customer to a timed-out room.
    Reactivated,
    /// An agent closed the room: it accepts nothing more.
    Closed,
    /// What an event said before its room was erased: only its type is left. The erasure
    /// replaces every event of the room but the first (`room_created`) by one of these, keeping
    /// its sequence number, time and actor, so the log stays gapless.
    Redacted {
        /// The type the event had (`"message_posted"`…).
        was: String,
    },
    /// The room's personal data was erased: the record of the erasure (who asked is the event's
    /// actor, when its time). The room accepts nothing more.
    RoomErased {
        /// Why: the room itself, or its customer (across the tenant's rooms).
        scope: ErasureScope,
    },
    /// A webhook endpoint did not accept an event of the room within the retry period, and its
    /// delivery was given up (dead-lettered). Recorded by the library, in any status but erased;
    /// the room's status does not change.
    WebhookFailed {
        /// The endpoint.
        endpoint: EndpointId,
        /// The message's `webhook-id`, as every attempt sent it.
        webhook_id: String,
        /// The event it was about.
        about: Seq,
        /// The last failure, shortened.
        reason: String,
    },
    /// The event's actor has seen the room up to `seq` (its read horizon). Never moves back;
    /// not activity.
    ReadUpTo {
        /// The last event seen.
        seq: Seq,
    },
    /// The room's agent was alerted that the customer's messages and documents up to `up_to`
    /// waited unread ([`crate::alert`]), or, with a `failure`, the alert was given up. Recorded
    /// by the library; not activity.
    AgentsAlerted {
        /// The last of the customer's messages and documents the alert covered.
        up_to: Seq,
        /// Why the alert could not be sent, when it was given up.
        failure: Option<String>,
    },
    /// The customer was reminded of the agents' messages and documents up to `up_to`, which
    /// waited unread ([`crate::alert`]): by a new invite through their channel (`invite`), or,
    /// without one, not at all (no SMS or email channel, or the invite guard refused).
    /// Recorded by the library; not activity.
    CustomerReminded {
        /// The last of the agents' messages and documents the reminder covered.
        up_to: Seq,
        /// The invite that carries the reminder, recorded in the same append.
        invite: Option<InviteId>,
    },
    /// Another room of the tenant, with the same customer, became part of this one
    /// ([`Rooms::merge_rooms`](crate::rooms::Rooms::merge_rooms)). The `copied` events just
    /// before this one are the absorbed room's invites, sessions, messages and documents, in
    /// their order and with their times and actors; its links and sessions lead here.
    RoomMerged {
        /// The room that was absorbed. Its own log ends with [`EventData::MergedInto`].
        absorbed: RoomId,
        /// How many of the events before this one came from it.
        copied: u64,
        /// The customer after the merge: this room's, with a phone number or email address it
        /// lacked taken from the absorbed room's.
        customer: Option<Customer>,
        /// The absorbed room's invites among the copies: their links lead here, and neither
        /// room's links supersede the other's.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        invites: Vec<InviteId>,
    },
    /// The room became part of `survivor` ([`EventData::RoomMerged`] there): it stays readable
    /// by agents as it was, and accepts nothing more but erasure. Its links and sessions lead
    /// to the survivor.
    MergedInto {
        /// The room it is part of now.
        survivor: RoomId,
    },
}

/// What an erasure was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureScope {
    /// One room.
    Room,
    /// A customer, found by phone number or email address in every room of a tenant.
    Customer,
}

impl ErasureScope {
    /// The scope as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureScope::Room => "room",
            ErasureScope::Customer => "customer",
        }
    }
}

impl Event {
    /// The event as an erasure leaves it: its room, sequence number, time and actor, and of its
    /// data only the type ([`EventData::Redacted`]). The events that hold no personal data stay as
    /// they are: the first (`room_created`), the erasure's own record, and `merged_into`.
    pub fn redacted(&self) -> Event {
        let data = match &self.data {
            EventData::RoomCreated { .. }
            | EventData::Redacted { .. }
            | EventData::RoomErased { .. }
            | EventData::MergedInto { .. } => self.data.clone(),
            other => EventData::Redacted {
                was: other.type_name().to_owned(),
            },
        };
        Event { data, ..self.clone() }
    }
}

impl EventData {
    /// The event's type as serialised (`"message_posted"`…).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventData::RoomCreated { .. } => "room_created",
            EventData::CustomerInvited { .. } => "customer_invited",
            EventData::InviteDelivery { .. } => "invite_delivery",
            EventData::InviteRevoked { .. } => "invite_revoked",
            EventData::CustomerJoined { .. } => "customer_joined",
            EventData::SessionRevoked { .. } => "session_revoked",
            EventData::MessagePosted { .. } => "message_posted",
            EventData::DocumentShared(_) => "document_shared",
            EventData::RoomRenamed { .. } => "room_renamed",
            EventData::TimedOut => "timed_out",
            EventData::Reactivated => "reactivated",
            EventData::Closed => "closed",
            EventData::Redacted { .. } => "redacted",
            EventData::RoomErased { .. } => "room_erased",
            EventData::WebhookFailed { .. } => "webhook_failed",
            EventData::ReadUpTo { .. } => "read_up_to",
            EventData::AgentsAlerted { .. } => "agents_alerted",
            EventData::CustomerReminded { .. } => "customer_reminded",
            EventData::RoomMerged { .. } => "room_merged",
            EventData::MergedInto { .. } => "merged_into",
        }
    }

    /// Whether the event counts as activity for the inactivity timeout.
    pub fn is_activity(&self) -> bool {
        matches!(
            self,
            EventData::RoomCreated { .. }
                | EventData::CustomerInvited { .. }
                | EventData::CustomerJoined { .. }
                | EventData::MessagePosted { .. }
                | EventData::DocumentShared(_)
                | EventData::Reactivated
                | EventData::RoomMerged { .. }
        )
    }
}

/// The delivery status a provider or the dispatcher reports for an invite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The provider accepted the message.
    Sent {
        /// The provider's id for the message, for matching its delivery reports.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_id: Option<String>,
    },
    /// The provider reports the message reached the customer's device or mailbox.
    Delivered,
    /// The message could not be delivered.
    Failed {
        /// Whether trying again cannot help.
        permanent: bool,
        /// The provider's reason, shortened.
        reason: String,
    },
}

/// What kind of document was shared, as the content sniffing found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DocumentKind {
    /// An image, shown inline.
    Image {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A PDF, readable page by page.
    Pdf {
        /// Number of pages.
        pages: u32,
    },
    /// Anything else: opened as a link.
    Other,
}

/// A shared document, as the timeline records it. The bytes are in the blob store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentMeta {
    /// The document.
    pub id: DocumentId,
    /// The display name (the client's file name, sanitised; never used as a storage key).
    pub name: String,
    /// The media type sniffed from the bytes.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: Sha256Digest,
    /// Image, PDF or other.
    pub kind: DocumentKind,
    /// Where the bytes are stored.
    pub blob: BlobKey,
}
