//! Protection against invite abuse: an [`InviteGuard`] may refuse an invite before it is
//! recorded, and a [`CounterStore`] keeps the counts it needs across restarts.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::Error;
use crate::customer::Recipient;
use crate::id::{AgentId, RoomId, TenantId};
use crate::time::Timestamp;

/// An SMS or email invite about to be accepted, as an [`InviteGuard`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct InviteAttempt<'a> {
    /// The agent's tenant.
    pub tenant: &'a TenantId,
    /// The agent inviting.
    pub agent: &'a AgentId,
    /// The room.
    pub room: RoomId,
    /// Where the invite would go (a locked identifier is resolved already).
    pub recipient: &'a Recipient,
    /// The time of the attempt.
    pub now: Timestamp,
}

/// Decides whether an SMS or email invite may go out: rate limits, cool-downs, country rules.
///
/// # Contract
///
/// - [`admit`](InviteGuard::admit) runs before the invite is recorded. A refusal is
///   [`Error::RateLimited`] (with when to try again) or [`Error::NotAllowed`]; the invite is
///   then not recorded and no provider is called.
/// - An admitted invite can still fail afterwards (a conflict, a closed room); a guard that
///   counts admissions may count it: guards err on the side of refusing.
/// - [`joined`](InviteGuard::joined) is told of each customer who joined, for guards that watch
///   the ratio of invites to joins.
#[async_trait]
pub trait InviteGuard: fmt::Debug + Send + Sync + 'static {
    /// Whether the invite may go out.
    async fn admit(&self, attempt: &InviteAttempt<'_>) -> Result<(), Error>;

    /// A customer joined a room of `tenant`. Does nothing unless the guard cares.
    async fn joined(&self, tenant: &TenantId, room: RoomId) {
        let _ = (tenant, room);
    }
}

#[async_trait]
impl<T: InviteGuard + ?Sized> InviteGuard for Arc<T> {
    async fn admit(&self, attempt: &InviteAttempt<'_>) -> Result<(), Error> {
        (**self).admit(attempt).await
    }

    async fn joined(&self, tenant: &TenantId, room: RoomId) {
        (**self).joined(tenant, room).await
    }
}

/// The answer of [`CounterStore::hit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// The hit was counted; `count` hits of the key now fall within the window.
    Counted {
        /// Hits within the window, this one included.
        count: u32,
    },
    /// The key has its `limit` of hits within the window: not counted.
    Refused {
        /// When the oldest hit leaves the window.
        retry_after: Duration,
    },
}

/// Counts hits per key within a sliding window, durably where the store is durable, so that
/// limits hold across restarts.
///
/// # Contract
///
/// - [`hit`](CounterStore::hit) atomically counts the hits of `key` in `(now - window, now]`
///   and, if fewer than `limit`, records one at `now`: concurrent calls never let more than
///   `limit` through.
/// - [`recent`](CounterStore::recent) returns the times of the hits of `key` after `since`,
///   oldest first.
/// - Hits older than every window in use may be forgotten.
#[async_trait]
pub trait CounterStore: fmt::Debug + Send + Sync + 'static {
    /// Counts a hit on `key` unless it has `limit` within `window` already.
    async fn hit(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> Result<Hit, Error>;

    /// The hits of `key` after `since`, oldest first.
    async fn recent(&self, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, Error>;
}

#[async_trait]
impl<T: CounterStore + ?Sized> CounterStore for Arc<T> {
    async fn hit(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> Result<Hit, Error> {
        (**self).hit(key, now, window, limit).await
    }

    async fn recent(&self, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, Error> {
        (**self).recent(key, since).await
    }
}

/// The longest window a counter remembers: older hits are dropped.
pub const MAX_COUNTER_WINDOW: Duration = Duration::from_secs(31 * 24 * 60 * 60);

/// A [`CounterStore`] in memory: limits reset when the process restarts.
#[derive(Default)]
pub struct MemoryCounterStore {
    hits: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

impl fmt::Debug for MemoryCounterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.hits.lock().map_or(0, |h| h.len());
        f.debug_struct("MemoryCounterStore").field("keys", &keys).finish()
    }
}

impl MemoryCounterStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CounterStore for MemoryCounterStore {
    async fn hit(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> Result<Hit, Error> {
        let mut hits = self.hits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let times = hits.entry(key.to_owned()).or_default();
        let forget_before = now.saturating_sub(MAX_COUNTER_WINDOW);
        while times.front().is_some_and(|t| *t <= forget_before) {
            times.pop_front();
        }
        let start = now.saturating_sub(window);
        let in_window: Vec<Timestamp> = times.iter().copied().filter(|t| *t > start).collect();
        if in_window.len() >= limit as usize {
            let oldest = in_window.first().copied().unwrap_or(now);
            return Ok(Hit::Refused {
                retry_after: oldest.saturating_add(window).since(now),
            });
        }
        times.push_back(now);
        Ok(Hit::Counted {
            count: u32::try_from(in_window.len() + 1).unwrap_or(u32::MAX),
        })
    }

    async fn recent(&self, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, Error> {
        let hits = self.hits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(hits
            .get(key)
            .map(|times| times.iter().copied().filter(|t| *t > since).collect())
            .unwrap_or_default())
    }
}
