//! Room persistence: the [`RoomStore`] trait and what it trades in.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::Error;
use crate::customer::{Channel, EmailAddress, PhoneNumber};
use crate::event::{Event, Seq};
use crate::id::{AgentId, EndpointId, InviteId, OutboxId, ParticipantId, RoomId, TenantId};
use crate::settings::SettingsChange;
use crate::state::{RoomState, RoomStatus, RoomSummary};
use crate::time::Timestamp;
use crate::token::TokenHash;

/// One atomic write to a room: its next events, with everything that must change with them.
///
/// Taken by value because stores hand it to a writer (a thread, a connection) that outlives the
/// caller's borrow.
#[derive(Clone, Debug)]
pub struct Append {
    /// The room.
    pub room: RoomId,
    /// The last sequence number the caller saw ([`Seq::ZERO`] to create the room). If the room's
    /// last event is any other, the store refuses with [`Error::Conflict`].
    pub expected: Seq,
    /// The new events, numbered from `expected + 1` without gaps. At least one.
    pub events: Vec<Event>,
    /// The room's summary after the events.
    pub summary: RoomSummary,
    /// Deliveries to queue with these events.
    pub outbox: Vec<OutboxMessage>,
    /// Deliveries these events complete: removed from the outbox. Each must still be there, or
    /// the append is refused with [`Error::Conflict`] (another dispatcher finished it).
    pub completed_outbox: Vec<OutboxId>,
    /// Tokens (by hash) these events issue. A hash already stored is an [`Error::Conflict`].
    pub credentials: Vec<Credential>,
}

impl Append {
    /// An append of `events` that moves `state` forward; its summary is computed here.
    pub fn new(state_before: Option<&RoomState>, events: Vec<Event>) -> Result<Self, Error> {
        let expected = state_before.map_or(Seq::ZERO, RoomState::seq);
        let mut state = match state_before {
            Some(s) => s.clone(),
            None => {
                let first = events.first().ok_or(Error::invalid("events", "nothing to append"))?;
                RoomState::from_created(first)?
            }
        };
        // Without a prior state, the first event built the state above.
        for event in events.iter().skip(usize::from(state_before.is_none())) {
            state.apply_checked(event)?;
        }
        Ok(Self {
            room: state.room(),
            expected,
            events,
            summary: state.summary().clone(),
            outbox: Vec::new(),
            completed_outbox: Vec::new(),
            credentials: Vec::new(),
        })
    }

    /// Checks that the parts agree with one another. Stores call this before writing anything,
    /// and refuse with its [`Error::Invalid`].
    pub fn validate(&self) -> Result<(), Error> {
        if self.events.is_empty() {
            return Err(Error::invalid("events", "nothing to append"));
        }
        let mut seq = self.expected;
        for event in &self.events {
            seq = seq.next();
            if event.room != self.room {
                return Err(Error::invalid("events", "event of another room"));
            }
            if event.seq != seq {
                return Err(Error::invalid(
                    "events",
                    "sequence numbers must follow the expected one without gaps",
                ));
            }
        }
        if self.summary.room != self.room || self.summary.seq != seq {
            return Err(Error::invalid("summary", "must describe the room after the last event"));
        }
        if self.outbox.iter().any(|m| m.room != self.room) || self.credentials.iter().any(|c| c.room != self.room) {
            return Err(Error::invalid(
                "outbox",
                "outbox rows and credentials must belong to the room",
            ));
        }
        Ok(())
    }

    /// Checks the two appends of a merge ([`RoomStore::merge`]): each as
    /// [`validate`](Append::validate) does, and together: two rooms that exist already, and no
    /// credential in both.
    pub fn validate_merge(survivor: &Append, absorbed: &Append) -> Result<(), Error> {
        survivor.validate()?;
        absorbed.validate()?;
        if survivor.room == absorbed.room {
            return Err(Error::invalid("absorbed", "a room cannot be merged into itself"));
        }
        if survivor.expected == Seq::ZERO || absorbed.expected == Seq::ZERO {
            return Err(Error::invalid("events", "a merge joins two rooms that exist"));
        }
        if survivor
            .credentials
            .iter()
            .any(|c| absorbed.credentials.iter().any(|other| other.hash == c.hash))
        {
            return Err(Error::conflict("a credential with this hash exists"));
        }
        Ok(())
    }
}

/// What a token grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Joining the room through an invite.
    Invite(InviteId),
    /// Acting as the customer of a participation.
    Session(ParticipantId),
}

/// A stored token: its hash and what it grants in which room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The token's SHA-256. The token itself is never stored.
    pub hash: TokenHash,
    /// The room it reaches.
    pub room: RoomId,
    /// What it grants there.
    pub grant: Grant,
}

/// What an outbox row delivers, and to whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutboxTarget {
    /// An invite, through SMS or email.
    Invite {
        /// The invite being delivered.
        invite: InviteId,
        /// Its channel.
        channel: Channel,
    },
    /// Room events, to one of the tenant's webhook endpoints ([`crate::webhook`]).
    Webhook {
        /// The endpoint.
        endpoint: EndpointId,
    },
    /// An alert to the room's agent that the customer's messages wait unread
    /// ([`crate::alert`]).
    AgentAlert,
    /// A reminder to the room's customer that the agents' messages wait unread
    /// ([`crate::alert`]).
    CustomerReminder,
}

impl OutboxTarget {
    /// The [`subject`](Self::subject) of agent alerts: one per room, in turn.
    const AGENT_ALERT_SUBJECT: u128 = 1;
    /// The [`subject`](Self::subject) of customer reminders.
    const CUSTOMER_REMINDER_SUBJECT: u128 = 2;

    /// The kind of delivery: what the store keeps beside the [`subject`](Self::subject).
    pub fn kind(self) -> OutboxKind {
        match self {
            OutboxTarget::Invite { channel, .. } => OutboxKind::Invite(channel),
            OutboxTarget::Webhook { .. } => OutboxKind::Webhook,
            OutboxTarget::AgentAlert => OutboxKind::AgentAlert,
            OutboxTarget::CustomerReminder => OutboxKind::CustomerReminder,
        }
    }

    /// Who the delivery is for: the invite, the endpoint, or (one each per room) the agents
    /// to alert or the customer to remind. Rows of one room and subject are delivered in the order they were
    /// queued ([`RoomStore::claim_outbox`]).
    pub fn subject(self) -> u128 {
        match self {
            OutboxTarget::Invite { invite, .. } => invite.as_u128(),
            OutboxTarget::Webhook { endpoint } => endpoint.as_u128(),
            OutboxTarget::AgentAlert => Self::AGENT_ALERT_SUBJECT,
            OutboxTarget::CustomerReminder => Self::CUSTOMER_REMINDER_SUBJECT,
        }
    }

    /// The target a store reads back from its kind and subject.
    pub fn from_parts(kind: OutboxKind, subject: u128) -> Self {
        match kind {
            OutboxKind::Invite(channel) => OutboxTarget::Invite {
                invite: InviteId::from_u128(subject),
                channel,
            },
            OutboxKind::Webhook => OutboxTarget::Webhook {
                endpoint: EndpointId::from_u128(subject),
            },
            OutboxKind::AgentAlert => OutboxTarget::AgentAlert,
            OutboxKind::CustomerReminder => OutboxTarget::CustomerReminder,
        }
    }
}

/// The kinds of outbox rows: one per invite channel, webhooks, agent alerts and customer
/// reminders. Stores keep it as text ([`as_str`](Self::as_str)); it labels the
/// `collab_outbox_*` gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutboxKind {
    /// Invites through this channel.
    Invite(Channel),
    /// Webhook deliveries.
    Webhook,
    /// Agent alerts.
    AgentAlert,
    /// Customer reminders.
    CustomerReminder,
}

impl OutboxKind {
    /// Every kind a dispatcher delivers.
    pub const ALL: [OutboxKind; 5] = [
        OutboxKind::Invite(Channel::Sms),
        OutboxKind::Invite(Channel::Email),
        OutboxKind::Webhook,
        OutboxKind::AgentAlert,
        OutboxKind::CustomerReminder,
    ];

    /// The kind's name: the channel's (`sms`, `email`), `webhook`, `agent_alert` or
    /// `customer_reminder`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Invite(channel) => channel.as_str(),
            OutboxKind::Webhook => "webhook",
            OutboxKind::AgentAlert => "agent_alert",
            OutboxKind::CustomerReminder => "customer_reminder",
        }
    }

    /// The kind named `name`, as [`as_str`](Self::as_str) spells it; a store that reads an
    /// unknown name reports its data as corrupt.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for OutboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery waiting to be sent: written with the event that asked for it.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The row.
    pub id: OutboxId,
    /// The room.
    pub room: RoomId,
    /// What it delivers to whom.
    pub target: OutboxTarget,
    /// What the dispatcher needs, serialised by the service. For an invite: who to invite
    /// (their address and first name), never the link, whose token is minted when the row is
    /// sent. It may be personal data: `Debug` hides it, and it is deleted with the row once
    /// delivered.
    pub payload: String,
    /// Not to be sent before this time.
    pub not_before: Timestamp,
}

impl fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("room", &self.room)
            .field("target", &self.target)
            .field("payload", &"<redacted>")
            .field("not_before", &self.not_before)
            .finish()
    }
}

/// An outbox row a dispatcher claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedOutbox {
    /// The row.
    pub message: OutboxMessage,
    /// How many times it has been claimed, this claim included.
    pub attempts: u32,
}

/// How far one kind of outbox row has got: [`RoomStore::outbox_stats`], for the
/// `collab_outbox_*` gauges ([`crate::metrics`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxStats {
    /// The kind of the rows counted.
    pub kind: OutboxKind,
    /// Rows waiting, claimed or not.
    pub queued: u64,
    /// Rows whose time has come and that no live lease holds (some may wait behind an earlier
    /// row of their room and subject).
    pub due: u64,
    /// The earliest `not_before` of the due rows; `None` when none is due.
    pub oldest_due: Option<Timestamp>,
}

impl OutboxStats {
    /// The figures of `kind`'s rows.
    pub fn new(kind: OutboxKind, queued: u64, due: u64, oldest_due: Option<Timestamp>) -> Self {
        Self {
            kind,
            queued,
            due,
            oldest_due,
        }
    }
}

/// The largest page of rooms a store returns.
pub const MAX_ROOM_PAGE: usize = 500;

/// Which of a tenant's rooms to list, newest first. All filters must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomQuery {
    /// Rooms opened by this agent.
    pub agent: Option<AgentId>,
    /// Rooms whose customer's first name, last name or full name starts with this text, ignoring
    /// case.
    pub name_prefix: Option<String>,
    /// Rooms whose customer has this mobile number.
    pub phone: Option<PhoneNumber>,
    /// Rooms whose customer has this email address, ignoring the case of ASCII letters
    /// ([`EmailAddress::match_key`]).
    pub email: Option<EmailAddress>,
    /// Rooms with this recorded status.
    pub status: Option<RoomStatus>,
    /// At most this many rooms (1 to [`MAX_ROOM_PAGE`]).
    pub limit: usize,
    /// Continue after this room, from a previous page's [`RoomPage::next`].
    pub after: Option<RoomCursor>,
}

impl Default for RoomQuery {
    fn default() -> Self {
        Self {
            agent: None,
            name_prefix: None,
            phone: None,
            email: None,
            status: None,
            limit: 50,
            after: None,
        }
    }
}

impl RoomQuery {
    /// Checks the limit and the name prefix; stores call this first.
    pub fn validate(&self) -> Result<(), Error> {
        if self.limit == 0 || self.limit > MAX_ROOM_PAGE {
            return Err(Error::invalid("limit", "must be from 1 to 500"));
        }
        if self
            .name_prefix
            .as_deref()
            .is_some_and(|p| p.trim().is_empty() || p.chars().count() > 201)
        {
            return Err(Error::invalid("name_prefix", "must be 1 to 201 characters"));
        }
        Ok(())
    }

    /// The name prefix as stores compare it: trimmed and lower-cased.
    pub fn normalized_name_prefix(&self) -> Option<String> {
        self.name_prefix.as_deref().map(|p| p.trim().to_lowercase())
    }

    /// Whether `room` passes the filters (not the tenant, the order or the cursor). The reference
    /// for stores that filter in a query language.
    pub fn matches(&self, room: &RoomSummary) -> bool {
        let customer = room.customer.as_ref();
        self.agent.as_ref().is_none_or(|a| *a == room.agent)
            && self.status.is_none_or(|s| s == room.status)
            && self
                .phone
                .as_ref()
                .is_none_or(|p| customer.and_then(|c| c.phone.as_ref()) == Some(p))
            && self.email.as_ref().is_none_or(|e| {
                customer
                    .and_then(|c| c.email.as_ref())
                    .is_some_and(|c| c.same_mailbox(e))
            })
            && self.normalized_name_prefix().is_none_or(|prefix| {
                customer.is_some_and(|c| {
                    [
                        c.first_name.as_str().to_lowercase(),
                        c.last_name.as_str().to_lowercase(),
                        c.full_name().to_lowercase(),
                    ]
                    .iter()
                    .any(|name| name.starts_with(&prefix))
                })
            })
    }
}

/// A place in the newest-first order of rooms: rooms sort by creation time, then by id, both
/// descending. Opaque to clients (`Display`/`FromStr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoomCursor {
    /// The creation time of the last room of the page.
    pub created_at: Timestamp,
    /// Its id.
    pub room: RoomId,
}

impl RoomCursor {
    /// The cursor just past `room`.
    pub fn after(room: &RoomSummary) -> Self {
        Self {
            created_at: room.created_at,
            room: room.room,
        }
    }

    /// Whether `room` comes after this cursor in newest-first order.
    pub fn precedes(&self, room: &RoomSummary) -> bool {
        (room.created_at, room.room) < (self.created_at, self.room)
    }
}

impl fmt::Display for RoomCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at.unix_millis(), self.room)
    }
}

impl FromStr for RoomCursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::invalid("after", "not a cursor from a previous page");
        let (millis, room) = s.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            created_at: Timestamp::from_unix_millis(millis.parse().map_err(|_| bad())?),
            room: room.parse().map_err(|_| bad())?,
        })
    }
}

/// A page of rooms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomPage {
    /// The rooms, newest first.
    pub rooms: Vec<RoomSummary>,
    /// Where the next page starts, if there may be one.
    pub next: Option<RoomCursor>,
}

impl RoomPage {
    /// The page of a query for `limit` rooms, from up to `limit + 1` matching rooms newest
    /// first: a store fetches one more than asked to know whether a next page exists.
    pub fn from_one_more(mut rooms: Vec<RoomSummary>, limit: usize) -> Self {
        let more = rooms.len() > limit;
        rooms.truncate(limit);
        let next = if more {
            rooms.last().map(RoomCursor::after)
        } else {
            None
        };
        Self { rooms, next }
    }
}

/// The ended rooms a retention sweep asks for: rooms that timed out, closed or were erased
/// ([`RoomSummary::ended_at`]) at or before `ended_before`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndedRooms {
    /// Rooms of this tenant only; `None` for every tenant but those in `except`.
    pub tenant: Option<TenantId>,
    /// Tenants left out when `tenant` is `None` (they have a retention of their own).
    pub except: Vec<TenantId>,
    /// Ended at or before this time.
    pub ended_before: Timestamp,
    /// At most this many.
    pub limit: usize,
}

impl EndedRooms {
    /// Whether `room` is one of them.
    pub fn matches(&self, room: &RoomSummary) -> bool {
        let tenant = match &self.tenant {
            Some(tenant) => room.tenant == *tenant,
            None => !self.except.contains(&room.tenant),
        };
        tenant && room.status != RoomStatus::Draft && room.ended_at.is_some_and(|at| at <= self.ended_before)
    }
}

/// Stores rooms as event logs, with their summaries, tokens and delivery outbox.
///
/// # Contract
///
/// - **Append** is all or nothing. [`append`](RoomStore::append) first checks
///   [`Append::validate`] ([`Error::Invalid`]), then, atomically: the room's last sequence number
///   must equal `expected`, every completed outbox row must exist and every credential hash must
///   be new, or it fails with [`Error::Conflict`] and changes nothing; otherwise it stores the
///   events, the summary, the outbox rows and the credentials and removes the completed rows.
///   When it returns `Ok`, all of it is durable as the store promises.
/// - **Order.** A room's events are read in sequence order, which has no gap or duplicate.
///   [`read_events`](RoomStore::read_events) returns up to `limit` events after `after`,
///   ascending; [`latest_events`](RoomStore::latest_events) the last `limit`, descending. An
///   unknown room has no events.
/// - **Lookups** that find nothing return `Ok(None)`.
/// - [`add_credential`](RoomStore::add_credential) stores one credential, refusing a hash that
///   exists with [`Error::Conflict`].
/// - [`list_rooms`](RoomStore::list_rooms) returns a tenant's rooms matching
///   [`RoomQuery::matches`], newest first ([`RoomCursor`] order), starting after `query.after`,
///   at most `query.limit`; `next` is set when more may follow. It refuses a query that fails
///   [`RoomQuery::validate`].
/// - [`idle_rooms`](RoomStore::idle_rooms): active rooms whose last activity is at or before
///   `idle_since`, for the timeout sweep.
/// - **Outbox.** [`claim_outbox`](RoomStore::claim_outbox) returns rows due at `now` that no
///   live claim holds, oldest `not_before` first, and leases them until `now + lease`, counting
///   the attempt; a row whose lease ran out (its dispatcher died) is claimable again. A row is
///   not claimable while a row of the same room and [`OutboxTarget::subject`] queued before it
///   (in an earlier append, or earlier in the same one) is still there, due or not: a webhook
///   endpoint hears of a room's events in order, whatever retries do to `not_before`.
///   [`reschedule_outbox`](RoomStore::reschedule_outbox) releases a claimed row until
///   `not_before`; [`delete_outbox`](RoomStore::delete_outbox) drops it. Both return
///   [`Error::NotFound`] for a missing row.
///   [`outbox_stats`](RoomStore::outbox_stats) counts, per [`OutboxKind`] that has rows (in any
///   order), the rows queued, the rows [`claim_outbox`](RoomStore::claim_outbox) could take at
///   `now`, and the earliest `not_before` among those. It is optional: the provided method
///   answers [`Error::Unsupported`] and the dispatcher then reports no outbox gauges; the
///   conformance kit expects it.
///
/// - **Erasure.** [`erase`](RoomStore::erase) writes an append as [`append`](RoomStore::append)
///   does, with the same checks, and in the same transaction replaces every earlier event of
///   the room by its [`Event::redacted`] form (same sequence number) and deletes the room's
///   credentials and outbox rows. What the old events said must be gone from the store's data
///   once it returns, as far as the backend allows (the SQLite store overwrites freed pages).
/// - **Retention.** [`ended_rooms`](RoomStore::ended_rooms) returns the rooms matching
///   [`EndedRooms::matches`], earliest end first, at most `limit`;
///   [`purge`](RoomStore::purge) deletes every row of a room (events, summary, credentials,
///   outbox rows), and is no error for a room that is not there.
///
/// The conformance kit (`collab_core::testing`, feature `testing`) checks all of this; run it
/// against your store with one line of `room_store_conformance!`.
///
/// # Implement your own
///
/// A store maps each method onto its backend; [`MemoryRoomStore`](crate::memory::MemoryRoomStore)
/// is the reference, and the SQLite and PostgreSQL crates show the same contract on a database.
/// The shape of an implementation, here a wrapper that counts the appends another store accepts:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use collab_core::memory::MemoryRoomStore;
/// use collab_core::store::*;
/// use collab_core::{Error, Event, OutboxId, RoomId, RoomSummary, Seq, TenantId, Timestamp, TokenHash};
///
/// #[derive(Debug, Default)]
/// struct CountingStore {
///     inner: MemoryRoomStore,
///     appends: AtomicU64,
/// }
///
/// #[async_trait]
/// impl RoomStore for CountingStore {
///     async fn append(&self, append: Append) -> Result<(), Error> {
///         self.inner.append(append).await?;
///         self.appends.fetch_add(1, Ordering::Relaxed);
///         Ok(())
///     }
///     async fn read_events(&self, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error> {
///         self.inner.read_events(room, after, limit).await
///     }
///     async fn latest_events(&self, room: RoomId, limit: usize) -> Result<Vec<Event>, Error> {
///         self.inner.latest_events(room, limit).await
///     }
///     async fn room_summary(&self, room: RoomId) -> Result<Option<RoomSummary>, Error> {
///         self.inner.room_summary(room).await
///     }
///     async fn list_rooms(&self, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error> {
///         self.inner.list_rooms(tenant, query).await
///     }
///     async fn idle_rooms(&self, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error> {
///         self.inner.idle_rooms(idle_since, limit).await
///     }
///     async fn find_credential(&self, hash: &TokenHash) -> Result<Option<Credential>, Error> {
///         self.inner.find_credential(hash).await
///     }
///     async fn claim_outbox(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<ClaimedOutbox>, Error> {
///         self.inner.claim_outbox(now, lease, limit).await
///     }
///     async fn reschedule_outbox(&self, id: OutboxId, not_before: Timestamp) -> Result<(), Error> {
///         self.inner.reschedule_outbox(id, not_before).await
///     }
///     async fn delete_outbox(&self, id: OutboxId) -> Result<(), Error> {
///         self.inner.delete_outbox(id).await
///     }
///     async fn add_credential(&self, credential: Credential) -> Result<(), Error> {
///         self.inner.add_credential(credential).await
///     }
///     async fn erase(&self, append: Append) -> Result<(), Error> {
///         self.inner.erase(append).await
///     }
///     async fn ended_rooms(&self, query: &EndedRooms) -> Result<Vec<RoomId>, Error> {
///         self.inner.ended_rooms(query).await
///     }
///     async fn purge(&self, room: RoomId) -> Result<(), Error> {
///         self.inner.purge(room).await
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use collab_core::{Actor, AgentId, Rooms};
///
/// let store = std::sync::Arc::new(CountingStore::default());
/// let rooms = Rooms::builder().room_store(store.clone()).build();
/// let agent = Actor::Agent { tenant: TenantId::new("acme")?, agent: AgentId::new("ada")? };
/// rooms.create_room(&agent).await?;
/// assert_eq!(store.appends.load(Ordering::Relaxed), 1);
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait RoomStore: fmt::Debug + Send + Sync + 'static {
    /// Writes one room's next events and what goes with them, atomically.
    async fn append(&self, append: Append) -> Result<(), Error>;

    /// Up to `limit` events of `room` after `after`, ascending.
    async fn read_events(&self, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error>;

    /// The last `limit` events of `room`, newest first.
    async fn latest_events(&self, room: RoomId, limit: usize) -> Result<Vec<Event>, Error>;

    /// The summary of `room`.
    async fn room_summary(&self, room: RoomId) -> Result<Option<RoomSummary>, Error>;

    /// A page of `tenant`'s rooms matching `query`, newest first.
    async fn list_rooms(&self, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error>;

    /// Up to `limit` active rooms idle since `idle_since` or earlier, of all tenants.
    async fn idle_rooms(&self, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error>;

    /// The credential stored under `hash`.
    async fn find_credential(&self, hash: &TokenHash) -> Result<Option<Credential>, Error>;

    /// Claims up to `limit` due outbox rows for `lease`.
    async fn claim_outbox(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<ClaimedOutbox>, Error>;

    /// Releases a claimed row, to be claimed again from `not_before`.
    async fn reschedule_outbox(&self, id: OutboxId, not_before: Timestamp) -> Result<(), Error>;

    /// Removes an outbox row without an event (its room closed, its attempts ran out).
    async fn delete_outbox(&self, id: OutboxId) -> Result<(), Error>;

    /// Stores a credential on its own: the token of an invite minted by the dispatcher just
    /// before it sends it. A hash already stored is an [`Error::Conflict`].
    async fn add_credential(&self, credential: Credential) -> Result<(), Error>;

    /// Erases a room: `append` (its [`EventData::RoomErased`](crate::EventData::RoomErased)
    /// event) is written as [`append`](RoomStore::append) writes, and atomically with it every
    /// earlier event of the room becomes [`Event::redacted`] and the room's credentials and
    /// earlier outbox rows are deleted (the erasure's own rows, its webhooks, stay).
    async fn erase(&self, append: Append) -> Result<(), Error>;

    /// Up to `query.limit` rooms that ended at or before `query.ended_before`, earliest first.
    async fn ended_rooms(&self, query: &EndedRooms) -> Result<Vec<RoomId>, Error>;

    /// Deletes every row of `room`: its events, summary, credentials and outbox rows. A room
    /// that is not there is no error.
    async fn purge(&self, room: RoomId) -> Result<(), Error>;

    /// Writes a merge of two rooms ([`Rooms::merge_rooms`](crate::rooms::Rooms::merge_rooms)):
    /// `survivor` and `absorbed` as [`append`](RoomStore::append) writes each, both or neither.
    /// Each must pass [`Append::validate`] and its expected-seq check, or nothing is written.
    /// Optional: by default, [`Error::Unsupported`], and rooms cannot be merged.
    async fn merge(&self, survivor: Append, absorbed: Append) -> Result<(), Error> {
        let _ = (survivor, absorbed);
        Err(Error::Unsupported {
            backend: "this room store",
            capability: "merging rooms",
        })
    }

    /// The latest change of `tenant`'s settings, if any was made. Optional, with
    /// [`settings_history`](RoomStore::settings_history) and
    /// [`change_settings`](RoomStore::change_settings): by default, [`Error::Unsupported`], and
    /// tenants have the deployment's settings.
    async fn tenant_settings(&self, tenant: &TenantId) -> Result<Option<SettingsChange>, Error> {
        let _ = tenant;
        Err(Error::Unsupported {
            backend: "this room store",
            capability: "tenant settings",
        })
    }

    /// Up to `limit` changes of `tenant`'s settings, newest first.
    async fn settings_history(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SettingsChange>, Error> {
        let _ = (tenant, limit);
        Err(Error::Unsupported {
            backend: "this room store",
            capability: "tenant settings",
        })
    }

    /// Stores a change of a tenant's settings, kept with the earlier ones. Its version must be
    /// the latest one's plus one (1 for the first), or it is refused with [`Error::Conflict`]
    /// (another admin changed them first).
    async fn change_settings(&self, change: SettingsChange) -> Result<(), Error> {
        let _ = change;
        Err(Error::Unsupported {
            backend: "this room store",
            capability: "tenant settings",
        })
    }

    /// The outbox's figures per kind at `now`, for monitoring: one query, not meant for
    /// every dispatcher pass. Optional: by default, [`Error::Unsupported`].
    async fn outbox_stats(&self, now: Timestamp) -> Result<Vec<OutboxStats>, Error> {
        let _ = now;
        Err(Error::Unsupported {
            backend: "this room store",
            capability: "outbox statistics",
        })
    }

    /// The state of `room`, folded from all its events; `Ok(None)` if it does not exist.
    ///
    /// Provided; a store may override it with snapshots, as long as the state it returns is the
    /// fold of the stored events.
    async fn load_room(&self, room: RoomId) -> Result<Option<RoomState>, Error> {
        let mut events = self.read_events(room, Seq::ZERO, LOAD_PAGE).await?;
        let Some(mut state) = RoomState::replay(&events)? else {
            return Ok(None);
        };
        while events.len() == LOAD_PAGE {
            events = self.read_events(room, state.seq(), LOAD_PAGE).await?;
            for event in &events {
                state.apply_checked(event)?;
            }
        }
        Ok(Some(state))
    }
}

/// How many events [`RoomStore::load_room`] reads per call.
const LOAD_PAGE: usize = 1_000;

macro_rules! forward_room_store {
    ($wrapper:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: RoomStore + ?Sized> RoomStore for $wrapper {
            async fn append(&self, append: Append) -> Result<(), Error> {
                (**self).append(append).await
            }

            async fn read_events(&self, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error> {
                (**self).read_events(room, after, limit).await
            }

            async fn latest_events(&self, room: RoomId, limit: usize) -> Result<Vec<Event>, Error> {
                (**self).latest_events(room, limit).await
            }

            async fn room_summary(&self, room: RoomId) -> Result<Option<RoomSummary>, Error> {
                (**self).room_summary(room).await
            }

            async fn list_rooms(&self, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error> {
                (**self).list_rooms(tenant, query).await
            }

            async fn idle_rooms(&self, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error> {
                (**self).idle_rooms(idle_since, limit).await
            }

            async fn find_credential(&self, hash: &TokenHash) -> Result<Option<Credential>, Error> {
                (**self).find_credential(hash).await
            }

            async fn claim_outbox(
                &self,
                now: Timestamp,
                lease: Duration,
                limit: usize,
            ) -> Result<Vec<ClaimedOutbox>, Error> {
                (**self).claim_outbox(now, lease, limit).await
            }

            async fn reschedule_outbox(&self, id: OutboxId, not_before: Timestamp) -> Result<(), Error> {
                (**self).reschedule_outbox(id, not_before).await
            }

            async fn delete_outbox(&self, id: OutboxId) -> Result<(), Error> {
                (**self).delete_outbox(id).await
            }

            async fn add_credential(&self, credential: Credential) -> Result<(), Error> {
                (**self).add_credential(credential).await
            }

            async fn merge(&self, survivor: Append, absorbed: Append) -> Result<(), Error> {
                (**self).merge(survivor, absorbed).await
            }

            async fn outbox_stats(&self, now: Timestamp) -> Result<Vec<OutboxStats>, Error> {
                (**self).outbox_stats(now).await
            }

            async fn tenant_settings(&self, tenant: &TenantId) -> Result<Option<SettingsChange>, Error> {
                (**self).tenant_settings(tenant).await
            }

            async fn settings_history(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SettingsChange>, Error> {
                (**self).settings_history(tenant, limit).await
            }

            async fn change_settings(&self, change: SettingsChange) -> Result<(), Error> {
                (**self).change_settings(change).await
            }

            async fn erase(&self, append: Append) -> Result<(), Error> {
                (**self).erase(append).await
            }

            async fn ended_rooms(&self, query: &EndedRooms) -> Result<Vec<RoomId>, Error> {
                (**self).ended_rooms(query).await
            }

            async fn purge(&self, room: RoomId) -> Result<(), Error> {
                (**self).purge(room).await
            }

            async fn load_room(&self, room: RoomId) -> Result<Option<RoomState>, Error> {
                (**self).load_room(room).await
            }
        }
    };
}

forward_room_store!(Arc<T>);
forward_room_store!(Box<T>);
