//! Protection against invite abuse: an [`InviteGuard`] may refuse an invite before it is
//! recorded, and a [`CounterStore`] keeps the counts it needs across restarts.

use std::fmt;
use std::sync::Arc;
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

macro_rules! forward_invite_guard {
    ($wrapper:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: InviteGuard + ?Sized> InviteGuard for $wrapper {
            async fn admit(&self, attempt: &InviteAttempt<'_>) -> Result<(), Error> {
                (**self).admit(attempt).await
            }

            async fn joined(&self, tenant: &TenantId, room: RoomId) {
                (**self).joined(tenant, room).await
            }
        }
    };
}

forward_invite_guard!(Arc<T>);
forward_invite_guard!(Box<T>);

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
/// - [`forget_before`](CounterStore::forget_before) deletes the hits at or before a time, of
///   every key (a key whose hits are all gone is gone), and says how many it deleted.
#[async_trait]
pub trait CounterStore: fmt::Debug + Send + Sync + 'static {
    /// Counts a hit on `key` unless it has `limit` within `window` already.
    async fn hit(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> Result<Hit, Error>;

    /// The hits of `key` after `since`, oldest first.
    async fn recent(&self, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, Error>;

    /// Deletes every hit at or before `before`, of every key: the keys that are never hit
    /// again (a purged room's, a number never invited again) would otherwise stay for ever.
    /// Returns how many hits were deleted. Optional: by default, [`Error::Unsupported`].
    async fn forget_before(&self, before: Timestamp) -> Result<u64, Error> {
        let _ = before;
        Err(Error::Unsupported {
            backend: "this counter store",
            capability: "forgetting old hits",
        })
    }
}

macro_rules! forward_counter_store {
    ($wrapper:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: CounterStore + ?Sized> CounterStore for $wrapper {
            async fn hit(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> Result<Hit, Error> {
                (**self).hit(key, now, window, limit).await
            }

            async fn recent(&self, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, Error> {
                (**self).recent(key, since).await
            }

            async fn forget_before(&self, before: Timestamp) -> Result<u64, Error> {
                (**self).forget_before(before).await
            }
        }
    };
}

forward_counter_store!(Arc<T>);
forward_counter_store!(Box<T>);

/// The longest window a counter remembers: older hits are dropped.
pub const MAX_COUNTER_WINDOW: Duration = Duration::from_secs(31 * 24 * 60 * 60);

// Its old home; the store lives with the other memory implementations now.
#[doc(no_inline)]
pub use crate::memory::MemoryCounterStore;
