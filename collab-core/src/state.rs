//! A room's state: the fold of its events.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::customer::{Channel, Customer, Recipient};
use crate::event::{DeliveryStatus, DocumentMeta, Event, EventActor, EventData, Seq};
use crate::id::DocumentId;
use crate::id::{AgentId, InviteId, ParticipantId, RoomId, TenantId};
use crate::policy::Policy;
use crate::time::Timestamp;

/// The name every new room gets.
pub const DEFAULT_ROOM_NAME: &str = "Collaboration Room";

/// The name of a room once erased (its own name was the customer's).
pub const ERASED_ROOM_NAME: &str = "Erased room";

/// Where a room is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomStatus {
    /// Created, no customer invited yet.
    Draft,
    /// A customer is invited.
    Active,
    /// No activity for the configured period: read-only for the customer until an agent
    /// re-invites.
    TimedOut,
    /// Closed by an agent: read-only, for its customer too; it accepts nothing but the
    /// revocation of a customer's session, and erasure.
    Closed,
    /// Merged into another room of the tenant, which holds its content now: read-only for
    /// agents, and its links and sessions lead to the other room. It accepts nothing but read
    /// horizons, webhook failure records and erasure.
    Merged,
    /// Its personal data was erased: only sequence numbers, times and the record of the
    /// erasure are left, and it accepts nothing more.
    Erased,
}

impl RoomStatus {
    /// Every status, in life order.
    pub const ALL: [RoomStatus; 6] = [
        RoomStatus::Draft,
        RoomStatus::Active,
        RoomStatus::TimedOut,
        RoomStatus::Closed,
        RoomStatus::Merged,
        RoomStatus::Erased,
    ];

    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomStatus::Draft => "draft",
            RoomStatus::Active => "active",
            RoomStatus::TimedOut => "timed_out",
            RoomStatus::Closed => "closed",
            RoomStatus::Merged => "merged",
            RoomStatus::Erased => "erased",
        }
    }
}

impl fmt::Display for RoomStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an invite is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum InviteStatus {
    /// Issued; for SMS and email, waiting in the outbox.
    Requested,
    /// Accepted by the provider.
    Sent,
    /// Reached the customer's device or mailbox.
    Delivered,
    /// Could not be delivered.
    Failed {
        /// Whether trying again cannot help.
        permanent: bool,
    },
    /// The customer used its link.
    Opened,
    /// An agent revoked it.
    Revoked,
    /// Its link is past its expiry.
    Expired,
}

impl InviteStatus {
    /// Delivery news only moves an invite forward: a late "sent" never hides "delivered".
    fn rank(self) -> u8 {
        match self {
            InviteStatus::Requested => 0,
            InviteStatus::Failed { permanent: false } => 1,
            InviteStatus::Sent => 2,
            InviteStatus::Delivered | InviteStatus::Failed { permanent: true } => 3,
            InviteStatus::Opened => 4,
            InviteStatus::Revoked | InviteStatus::Expired => 5,
        }
    }

    /// Whether moving to `next` is progress.
    pub(crate) fn advances_to(self, next: InviteStatus) -> bool {
        next.rank() > self.rank()
    }
}

impl From<&DeliveryStatus> for InviteStatus {
    fn from(status: &DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Sent { .. } => InviteStatus::Sent,
            DeliveryStatus::Delivered => InviteStatus::Delivered,
            DeliveryStatus::Failed { permanent, .. } => InviteStatus::Failed { permanent: *permanent },
        }
    }
}

/// One invite of the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteState {
    /// The invite.
    pub id: InviteId,
    /// Its channel.
    pub channel: Channel,
    /// Where it was sent; `None` for a link.
    pub recipient: Option<Recipient>,
    /// Its recorded status (see [`InviteState::status_at`] for expiry).
    pub status: InviteStatus,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When its link stops working.
    pub expires_at: Timestamp,
    /// The room it was issued in, when that was a room merged into this one: a later invite
    /// of the absorbed room, or one issued here after the merge, supersedes it; this room's own
    /// earlier invites do not.
    pub merged_from: Option<RoomId>,
}

impl InviteState {
    /// The status at `now`: [`InviteStatus::Expired`] once past the expiry, unless revoked.
    pub fn status_at(&self, now: Timestamp) -> InviteStatus {
        if self.status != InviteStatus::Revoked && now >= self.expires_at {
            InviteStatus::Expired
        } else {
            self.status
        }
    }

    /// Whether its link grants access at `now`.
    pub fn is_usable_at(&self, now: Timestamp) -> bool {
        !matches!(self.status_at(now), InviteStatus::Revoked | InviteStatus::Expired)
    }
}

/// One participation of the customer: created when an invite link is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantState {
    /// The participation.
    pub id: ParticipantId,
    /// The invite whose link was used.
    pub invite: InviteId,
    /// When the customer joined.
    pub joined_at: Timestamp,
    /// When the customer last did something through this participation: joined, posted,
    /// shared a document. A session idle since longer than the deployment allows ends
    /// ([`RoomsConfig::with_customer_sessions`](crate::rooms::RoomsConfig::with_customer_sessions)).
    pub last_active: Timestamp,
    /// Whether its session was revoked: by an agent, or replaced by a later join with the same
    /// link.
    pub revoked: bool,
}

/// The searchable facts of a room: what stores index and list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// The room.
    pub room: RoomId,
    /// Its tenant.
    pub tenant: TenantId,
    /// The agent who opened it.
    pub agent: AgentId,
    /// Its name.
    pub name: String,
    /// Its recorded status.
    pub status: RoomStatus,
    /// The customer, once invited.
    pub customer: Option<Customer>,
    /// When it was opened.
    pub created_at: Timestamp,
    /// When it last saw activity.
    pub last_activity: Timestamp,
    /// Its last event.
    pub seq: Seq,
    /// When it last timed out, closed or was erased; `None` while it is a draft or active.
    /// What retention counts from. Absent from summaries written before retention existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// The customer's messages and documents that no agent has seen yet (past every agent's
    /// read horizon). Absent from summaries written before read horizons existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unread: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A room: the fold of its events. Build it with [`RoomState::replay`], move it forward with
/// [`RoomState::apply`], and ask it what a command would do with [`crate::decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomState {
    summary: RoomSummary,
    invites: Vec<InviteState>,
    participants: Vec<ParticipantState>,
    documents: Vec<DocumentMeta>,
    recent_client_keys: VecDeque<ClientKey>,
    /// Each reader's horizon: the last event it said it has seen.
    read: Vec<(EventActor, Seq)>,
    /// The last event that is not a read horizon: how far a horizon can go.
    last_readable: Seq,
    /// The customer's messages and documents past every agent's horizon ([`RoomSummary::unread`]).
    unread_by_agents: Vec<Seq>,
    /// The last of the customer's messages and documents an agent alert covered.
    alerted_up_to: Seq,
    /// The agents' messages and documents past the customer's horizon.
    unread_by_customer: Vec<Seq>,
    /// The last of the agents' messages and documents a customer reminder covered.
    reminded_up_to: Seq,
    /// The room it was merged into, if it was.
    merged_into: Option<RoomId>,
}

/// A message posted with a client idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ClientKey {
    actor: EventActor,
    key: String,
    seq: Seq,
}

/// How many keyed messages a room remembers for recognising retried posts.
pub const CLIENT_KEY_WINDOW: usize = 256;

impl RoomState {
    /// Folds a room's events, which must start at its `RoomCreated` event (seq 1) and follow one
    /// another without gaps. An empty list is `Ok(None)`: the room does not exist.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<Option<Self>, Error> {
        let mut events = events.into_iter();
        let Some(first) = events.next() else {
            return Ok(None);
        };
        let mut state = Self::from_created(first)?;
        for event in events {
            state.apply_checked(event)?;
        }
        Ok(Some(state))
    }

    /// The state after a room's first event.
    pub fn from_created(event: &Event) -> Result<Self, Error> {
        let EventData::RoomCreated { tenant, agent, name } = &event.data else {
            return Err(Error::invalid("events", "a room's first event must be room_created"));
        };
        if event.seq != Seq::ZERO.next() {
            return Err(Error::invalid("events", "a room's first event must have seq 1"));
        }
        Ok(Self {
            summary: RoomSummary {
                room: event.room,
                tenant: tenant.clone(),
                agent: agent.clone(),
                name: name.clone(),
                status: RoomStatus::Draft,
                customer: None,
                created_at: event.at,
                last_activity: event.at,
                seq: event.seq,
                ended_at: None,
                unread: 0,
            },
            invites: Vec::new(),
            participants: Vec::new(),
            documents: Vec::new(),
            recent_client_keys: VecDeque::new(),
            read: Vec::new(),
            last_readable: event.seq,
            unread_by_agents: Vec::new(),
            alerted_up_to: Seq::ZERO,
            unread_by_customer: Vec::new(),
            reminded_up_to: Seq::ZERO,
            merged_into: None,
        })
    }

    /// Applies `event` after checking that it is this room's next one.
    pub fn apply_checked(&mut self, event: &Event) -> Result<(), Error> {
        if event.room != self.summary.room {
            return Err(Error::invalid("events", "event of another room"));
        }
        if event.seq != self.summary.seq.next() {
            return Err(Error::invalid(
                "events",
                format!(
                    "expected seq {}, found {}: the log has a gap or a duplicate",
                    self.summary.seq.next(),
                    event.seq
                ),
            ));
        }
        if matches!(event.data, EventData::RoomCreated { .. }) {
            return Err(Error::invalid("events", "room_created after the first event"));
        }
        self.apply(event);
        Ok(())
    }

    /// Moves the state past `event`. Events come from [`crate::decide`] or the store, so they
    /// are trusted here; use [`RoomState::apply_checked`] on a log of unknown origin.
    pub fn apply(&mut self, event: &Event) {
        let summary = &mut self.summary;
        summary.seq = event.seq;
        if !matches!(event.data, EventData::ReadUpTo { .. }) {
            self.last_readable = event.seq;
        }
        if event.data.is_activity() {
            summary.last_activity = event.at;
        }
        if let EventActor::Customer(participant) = &event.actor
            && let Some(p) = self.participants.iter_mut().find(|p| p.id == *participant)
        {
            p.last_active = event.at;
        }
        if matches!(
            event.data,
            EventData::MessagePosted { .. } | EventData::DocumentShared(_)
        ) {
            match event.actor {
                EventActor::Customer(_) => {
                    self.unread_by_agents.push(event.seq);
                    summary.unread = u32::try_from(self.unread_by_agents.len()).unwrap_or(u32::MAX);
                }
                EventActor::Agent(_) => self.unread_by_customer.push(event.seq),
                EventActor::System => {}
            }
        }
        match &event.data {
            EventData::RoomCreated { .. } => {}
            EventData::CustomerInvited {
                invite,
                channel,
                customer,
                recipient,
                expires_at,
                ..
            } => {
                summary.customer = Some(customer.clone());
                if summary.status == RoomStatus::Draft {
                    summary.status = RoomStatus::Active;
                }
                self.invites.push(InviteState {
                    id: *invite,
                    channel: *channel,
                    recipient: recipient.clone(),
                    status: InviteStatus::Requested,
                    issued_at: event.at,
                    expires_at: *expires_at,
                    merged_from: None,
                });
            }
            EventData::InviteDelivery { invite, status } => {
                if let Some(invite) = self.invites.iter_mut().find(|i| i.id == *invite) {
                    let next = InviteStatus::from(status);
                    if invite.status.advances_to(next) {
                        invite.status = next;
                    }
                }
            }
            EventData::InviteRevoked { invite } => {
                if let Some(invite) = self.invites.iter_mut().find(|i| i.id == *invite) {
                    invite.status = InviteStatus::Revoked;
                }
            }
            EventData::CustomerJoined { invite, participant } => {
                if let Some(invite) = self.invites.iter_mut().find(|i| i.id == *invite)
                    && invite.status.advances_to(InviteStatus::Opened)
                {
                    invite.status = InviteStatus::Opened;
                }
                self.participants.push(ParticipantState {
                    id: *participant,
                    invite: *invite,
                    joined_at: event.at,
                    last_active: event.at,
                    revoked: false,
                });
            }
            EventData::SessionRevoked { participant } => {
                if let Some(p) = self.participants.iter_mut().find(|p| p.id == *participant) {
                    p.revoked = true;
                }
            }
            EventData::MessagePosted {
                client_key: Some(key), ..
            } => {
                if self.recent_client_keys.len() == CLIENT_KEY_WINDOW {
                    self.recent_client_keys.pop_front();
                }
                self.recent_client_keys.push_back(ClientKey {
                    actor: event.actor.clone(),
                    key: key.clone(),
                    seq: event.seq,
                });
            }
            EventData::MessagePosted { client_key: None, .. } => {}
            EventData::DocumentShared(document) => self.documents.push(document.clone()),
            EventData::RoomRenamed { name } => summary.name = name.clone(),
            EventData::TimedOut => {
                summary.status = RoomStatus::TimedOut;
                summary.ended_at = Some(event.at);
            }
            EventData::Reactivated => {
                summary.status = RoomStatus::Active;
                summary.ended_at = None;
            }
            EventData::Closed => {
                summary.status = RoomStatus::Closed;
                summary.ended_at = Some(event.at);
            }
            EventData::Redacted { .. } | EventData::WebhookFailed { .. } => {}
            EventData::AgentsAlerted { up_to, .. } => self.alerted_up_to = self.alerted_up_to.max(*up_to),
            EventData::CustomerReminded { up_to, .. } => self.reminded_up_to = self.reminded_up_to.max(*up_to),
            EventData::ReadUpTo { seq } => {
                match self.read.iter_mut().find(|(reader, _)| *reader == event.actor) {
                    Some((_, horizon)) => *horizon = (*horizon).max(*seq),
                    None => self.read.push((event.actor.clone(), *seq)),
                }
                match event.actor {
                    EventActor::Agent(_) => {
                        self.unread_by_agents.retain(|unread| unread > seq);
                        summary.unread = u32::try_from(self.unread_by_agents.len()).unwrap_or(u32::MAX);
                    }
                    EventActor::Customer(_) => self.unread_by_customer.retain(|unread| unread > seq),
                    EventActor::System => {}
                }
            }
            EventData::RoomMerged {
                absorbed,
                copied,
                customer,
                invites,
            } => {
                if customer.is_some() {
                    summary.customer.clone_from(customer);
                }
                for invite in self.invites.iter_mut().filter(|i| invites.contains(&i.id)) {
                    invite.merged_from = Some(*absorbed);
                }
                // The copies are the absorbed room's history, read or not there: they count as
                // nobody's unread here, and owe no alert or reminder.
                let first_copy = event.seq.get().saturating_sub(*copied);
                self.unread_by_agents.retain(|seq| seq.get() < first_copy);
                self.unread_by_customer.retain(|seq| seq.get() < first_copy);
                summary.unread = u32::try_from(self.unread_by_agents.len()).unwrap_or(u32::MAX);
            }
            EventData::MergedInto { survivor } => {
                summary.status = RoomStatus::Merged;
                summary.ended_at = Some(event.at);
                self.merged_into = Some(*survivor);
            }
            EventData::RoomErased { .. } => {
                // What a replay of the redacted log gives: nothing but the first event's facts.
                summary.status = RoomStatus::Erased;
                summary.ended_at = Some(event.at);
                // Redacted events no longer say which were activity.
                summary.last_activity = event.at;
                summary.customer = None;
                summary.name = ERASED_ROOM_NAME.to_owned();
                self.invites.clear();
                self.participants.clear();
                self.documents.clear();
                self.recent_client_keys.clear();
                self.read.clear();
                self.unread_by_agents.clear();
                self.alerted_up_to = Seq::ZERO;
                self.unread_by_customer.clear();
                self.reminded_up_to = Seq::ZERO;
                // `merged_into` stays: it holds no personal data, and the survivor owns the
                // documents both rooms' logs name.
                summary.unread = 0;
            }
        }
    }

    /// The last event `reader` said it has seen; [`Seq::ZERO`] if none.
    pub fn read_horizon(&self, reader: &EventActor) -> Seq {
        self.read
            .iter()
            .find(|(r, _)| r == reader)
            .map_or(Seq::ZERO, |(_, seq)| *seq)
    }

    /// The last event that is not a read horizon: horizons stop there, so that reading
    /// another reader's horizon records nothing (else two readers could add events forever).
    pub fn last_readable(&self) -> Seq {
        self.last_readable
    }

    /// The customer's messages and documents that no agent has seen and no agent alert
    /// covered yet, oldest first ([`crate::alert`]).
    pub fn unalerted(&self) -> &[Seq] {
        let start = self.unread_by_agents.partition_point(|seq| *seq <= self.alerted_up_to);
        &self.unread_by_agents[start..]
    }

    /// The last of the customer's messages and documents an agent alert covered.
    pub fn alerted_up_to(&self) -> Seq {
        self.alerted_up_to
    }

    /// The agents' messages and documents that the customer has not seen and no reminder
    /// covered yet, oldest first ([`crate::alert`]).
    pub fn unreminded(&self) -> &[Seq] {
        let start = self
            .unread_by_customer
            .partition_point(|seq| *seq <= self.reminded_up_to);
        &self.unread_by_customer[start..]
    }

    /// The last of the agents' messages and documents a customer reminder covered.
    pub fn reminded_up_to(&self) -> Seq {
        self.reminded_up_to
    }

    /// The furthest any agent has seen: what the customer's page shows as "Seen".
    pub fn seen_by_agents(&self) -> Seq {
        self.furthest_read(|reader| matches!(reader, EventActor::Agent(_)))
    }

    /// The furthest any of the customer's sessions has seen: what the console shows as "Seen".
    pub fn seen_by_customer(&self) -> Seq {
        self.furthest_read(|reader| matches!(reader, EventActor::Customer(_)))
    }

    fn furthest_read(&self, side: impl Fn(&EventActor) -> bool) -> Seq {
        self.read
            .iter()
            .filter(|(reader, _)| side(reader))
            .map(|(_, seq)| *seq)
            .max()
            .unwrap_or(Seq::ZERO)
    }

    /// The room this one was merged into ([`RoomStatus::Merged`]), if it was.
    pub fn merged_into(&self) -> Option<RoomId> {
        self.merged_into
    }

    /// The room.
    pub fn room(&self) -> RoomId {
        self.summary.room
    }

    /// Its tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.summary.tenant
    }

    /// The agent who opened it.
    pub fn agent(&self) -> &AgentId {
        &self.summary.agent
    }

    /// Its name: [`DEFAULT_ROOM_NAME`] until the customer is invited, then theirs.
    pub fn name(&self) -> &str {
        &self.summary.name
    }

    /// Its recorded status. See [`RoomState::status_at`] for the inactivity timeout.
    pub fn status(&self) -> RoomStatus {
        self.summary.status
    }

    /// The status at `now`: an active room past the inactivity timeout counts as timed out even
    /// before a sweep records it.
    pub fn status_at(&self, now: Timestamp, policy: &Policy) -> RoomStatus {
        if self.is_due_for_timeout(now, policy) {
            RoomStatus::TimedOut
        } else {
            self.summary.status
        }
    }

    /// Whether the room is active but has been idle for the policy's inactivity timeout.
    pub fn is_due_for_timeout(&self, now: Timestamp, policy: &Policy) -> bool {
        self.summary.status == RoomStatus::Active
            && now.since(self.summary.last_activity) >= policy.inactivity_timeout()
    }

    /// The customer, once invited.
    pub fn customer(&self) -> Option<&Customer> {
        self.summary.customer.as_ref()
    }

    /// The room's invites, oldest first.
    pub fn invites(&self) -> &[InviteState] {
        &self.invites
    }

    /// One invite.
    pub fn invite(&self, id: InviteId) -> Option<&InviteState> {
        self.invites.iter().find(|i| i.id == id)
    }

    /// Whether the invite's link opens the room at `now`: neither revoked nor expired, nor,
    /// under a `policy` that supersedes links, followed by a later invite of its channel.
    pub fn link_opens(&self, id: InviteId, now: Timestamp, policy: &Policy) -> bool {
        let Some(at) = self.invites.iter().position(|i| i.id == id) else {
            return false;
        };
        let invite = &self.invites[at];
        invite.is_usable_at(now) && !(policy.supersedes_links() && self.is_superseded(invite))
    }

    /// Whether a later invite went out through the same channel as `invite`: one of the same
    /// room, or one issued here after `invite` came in with a merged room. A merge does not make
    /// either room's links supersede the other's.
    pub fn is_superseded(&self, invite: &InviteState) -> bool {
        self.invites
            .iter()
            .skip_while(|i| i.id != invite.id)
            .skip(1)
            .any(|later| {
                later.channel == invite.channel
                    && (later.merged_from.is_none() || later.merged_from == invite.merged_from)
            })
    }

    /// The customer's participations, oldest first.
    pub fn participants(&self) -> &[ParticipantState] {
        &self.participants
    }

    /// One participation.
    pub fn participant(&self, id: ParticipantId) -> Option<&ParticipantState> {
        self.participants.iter().find(|p| p.id == id)
    }

    /// The room's documents, oldest first.
    pub fn documents(&self) -> &[DocumentMeta] {
        &self.documents
    }

    /// The bytes of the room's documents, all together: what a storage quota counts.
    pub fn document_bytes(&self) -> u64 {
        self.documents.iter().fold(0u64, |sum, d| sum.saturating_add(d.size))
    }

    /// One document.
    pub fn document(&self, id: DocumentId) -> Option<&DocumentMeta> {
        self.documents.iter().find(|d| d.id == id)
    }

    /// The message `actor` posted with client key `key`, if it is among the room's last
    /// [`CLIENT_KEY_WINDOW`] keyed messages.
    pub fn message_with_client_key(&self, actor: &EventActor, key: &str) -> Option<Seq> {
        self.recent_client_keys
            .iter()
            .rev()
            .find(|k| k.actor == *actor && k.key == key)
            .map(|k| k.seq)
    }

    /// When the room was opened.
    pub fn created_at(&self) -> Timestamp {
        self.summary.created_at
    }

    /// When it last saw activity.
    pub fn last_activity(&self) -> Timestamp {
        self.summary.last_activity
    }

    /// Its last event's sequence number.
    pub fn seq(&self) -> Seq {
        self.summary.seq
    }

    /// The searchable facts of the room.
    pub fn summary(&self) -> &RoomSummary {
        &self.summary
    }
}
