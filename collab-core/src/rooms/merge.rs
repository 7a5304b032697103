//! Merging two rooms of one customer into one, and finding where a merged room lives on.

use super::{Operation, Rooms};
use crate::customer::Recipient;
use crate::decide::{Actor, Context, decide_merge};
use crate::error::{Entity, Error};
use crate::event::{Event, Seq};
use crate::id::{RoomId, TenantId};
use crate::state::{RoomState, RoomStatus};
use crate::store::{Append, RoomQuery};

/// The most other rooms of a customer an invite looks at ([`ExistingCustomer`](super::ExistingCustomer)).
const OTHER_ROOMS: usize = 20;

/// Events read per call while copying a room's log for a merge.
const MERGE_PAGE: usize = 1_000;

/// How many merges a link of a room may follow to the room that holds it now. A chain is
/// built one merge at a time, each into a room that was not merged; this bounds a corrupt one.
const MAX_MERGE_HOPS: usize = 16;

impl Rooms {
    /// Merges room `absorbed` into room `into`: two rooms of the agent's tenant whose customers
    /// share a mobile number or an email address become one. Agents only (and the
    /// [`AccessHook`](super::AccessHook), as [`Operation::MergeRooms`], about both rooms).
    ///
    /// `into` gets a copy of `absorbed`'s invites, sessions, messages and documents, in their
    /// order and with their times and authors, then
    /// [`EventData::RoomMerged`](crate::EventData::RoomMerged); `absorbed` gets
    /// [`EventData::MergedInto`](crate::EventData::MergedInto), and from then on answers
    /// commands with [`Error::RoomMerged`] while its log stays readable by agents. Its links
    /// and its customer's sessions lead to `into` ([`Rooms::join`],
    /// [`Rooms::customer_session`]), and delivery news about its invites is recorded there.
    /// Both rooms' events are written in one store transaction ([`RoomStore::merge`](crate::store::RoomStore::merge)):
    /// a process that dies half way leaves the two rooms as they were, and the call can simply
    /// be repeated. Documents are not copied: both logs name the same stored bytes, which
    /// belong to `into` from then on. Returns the state of `into` after the merge.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] on `into` for a room merged into itself or customers that share
    /// nothing; [`Error::RoomMerged`], [`Error::RoomErased`] for a room on either side that
    /// was merged or erased; [`Error::RoomClosed`] for a closed `into`; [`Error::NotFound`] for
    /// a room of another tenant; [`Error::Unsupported`] for a store that cannot merge.
    #[tracing::instrument(skip_all, fields(%absorbed, %into))]
    pub async fn merge_rooms(&self, actor: &Actor, absorbed: RoomId, into: RoomId) -> Result<RoomState, Error> {
        let mut attempt = 0;
        loop {
            let survivor = self.load(into).await?;
            let gone = self.load(absorbed).await?;
            // As for every room command: other tenants' rooms are not found, then non-agents
            // are refused.
            crate::decide::authorize_read(&gone, actor)?;
            crate::decide::authorize_read(&survivor, actor)?;
            if !matches!(actor, Actor::Agent { .. }) {
                return Err(Error::Forbidden);
            }
            self.check_hook(actor, Operation::MergeRooms, Some(survivor.summary()))?;
            self.check_hook(actor, Operation::MergeRooms, Some(gone.summary()))?;
            let log = self.whole_log(absorbed, gone.seq()).await?;
            let policy = self.policy_for(survivor.tenant()).await;
            let ctx = Context {
                now: self.inner.clock.now(),
                actor,
                policy: &policy,
            };
            let events = decide_merge(&survivor, &gone, &log, &ctx)?;
            drop(log);
            let marker = events.survivor.last().cloned().into_iter().collect::<Vec<_>>();
            let mut survivor_append = Append::new(Some(&survivor), events.survivor)?;
            survivor_append.outbox = self.webhook_rows(survivor.tenant(), &marker)?;
            let absorbed_append = Append::new(Some(&gone), events.absorbed)?;
            let queued = !survivor_append.outbox.is_empty();
            let (survivor_events, absorbed_events) = (survivor_append.events.clone(), absorbed_append.events.clone());
            match self.inner.store.merge(survivor_append, absorbed_append).await {
                Ok(()) => {
                    let after = self.moved_on(survivor, &survivor_events);
                    self.moved_on(gone, &absorbed_events);
                    if queued {
                        self.inner.outbox_added.notify_one();
                    }
                    self.publish(into, &survivor_events).await;
                    self.publish(absorbed, &absorbed_events).await;
                    tracing::info!(copied = survivor_events.len() - 1, "rooms merged");
                    return Ok(after);
                }
                Err(Error::Conflict { .. }) if attempt < self.inner.config.max_conflict_retries => {
                    attempt += 1;
                    tracing::debug!(attempt, "a room changed meanwhile; deciding the merge again");
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The room's events up to `last`, read in pages.
    async fn whole_log(&self, room: RoomId, last: Seq) -> Result<Vec<Event>, Error> {
        let mut log: Vec<Event> = Vec::new();
        loop {
            let after = log.last().map_or(Seq::ZERO, |e| e.seq);
            let page = self.inner.store.read_events(room, after, MERGE_PAGE).await?;
            let full = page.len() == MERGE_PAGE;
            log.extend(page.into_iter().take_while(|e| e.seq <= last));
            if !full || log.last().is_some_and(|e| e.seq >= last) {
                return Ok(log);
            }
        }
    }

    /// Applies stored events to the state they were decided on, and caches the result.
    fn moved_on(&self, mut state: RoomState, events: &[Event]) -> RoomState {
        for event in events {
            state.apply(event);
        }
        self.remember(&state);
        state
    }

    /// The other rooms of `tenant` (not merged or erased) whose customer has `recipient`.
    pub(super) async fn other_rooms_of(
        &self,
        tenant: &TenantId,
        room: RoomId,
        recipient: &Recipient,
    ) -> Result<Vec<RoomId>, Error> {
        let mut query = RoomQuery {
            limit: OTHER_ROOMS,
            ..RoomQuery::default()
        };
        match recipient {
            Recipient::Phone(number) => query.phone = Some(number.clone()),
            Recipient::Email(address) => query.email = Some(address.clone()),
        }
        let page = self.inner.store.list_rooms(tenant, &query).await?;
        Ok(page
            .rooms
            .iter()
            .filter(|r| r.room != room && !matches!(r.status, RoomStatus::Merged | RoomStatus::Erased))
            .map(|r| r.room)
            .collect())
    }

    /// The room that holds `room`'s content now: `room` itself, or the room it was merged into
    /// (after as many merges as there were).
    pub(super) async fn survivor_of(&self, room: RoomId) -> Result<RoomState, Error> {
        let mut state = self.load(room).await?;
        for _ in 0..MAX_MERGE_HOPS {
            match state.merged_into() {
                Some(next) => state = self.load(next).await?,
                None => return Ok(state),
            }
        }
        tracing::warn!(%room, "a chain of merged rooms is longer than it can be");
        Err(Error::NotFound { what: Entity::Room })
    }
}
