//! Whether this service can do its work: for a host's readiness probe.

use std::time::Duration;

use tokio::time::Instant;

use super::Rooms;
use crate::id::RoomId;

/// What keeps a service from doing its work ([`Rooms::check_ready`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotReady {
    /// The room store did not answer a read.
    Store,
    /// This process's dispatcher ([`Rooms::run_dispatcher`]) started but has not made a pass
    /// for a long time: it died with its task, or hangs.
    Dispatcher,
}

impl NotReady {
    /// A stable name for the failing part: `store`, `dispatcher`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Dispatcher => "dispatcher",
        }
    }
}

impl Rooms {
    /// Checks that the room store answers (a read of a room that does not exist) and that the
    /// dispatcher, if this process started one, made a pass recently (within ten poll
    /// intervals, and at least 30 s). A process that never started a dispatcher (another
    /// process delivers the invites) is not judged on it. The live transport is not checked: a
    /// lost transport costs latency, not events (subscribers catch up from the store).
    pub async fn check_ready(&self) -> Result<(), NotReady> {
        if let Err(e) = self.inner.store.room_summary(RoomId::from_u128(0)).await {
            tracing::debug!(error = %e, "readiness: the room store did not answer");
            return Err(NotReady::Store);
        }
        let quiet_for = self.last_dispatch().map(|pass| pass.elapsed());
        let most = (self.inner.config.delivery.poll_interval * 10).max(Duration::from_secs(30));
        match quiet_for {
            Some(quiet) if quiet > most => Err(NotReady::Dispatcher),
            _ => Ok(()),
        }
    }

    /// Notes a dispatcher pass, for [`Rooms::check_ready`].
    pub(super) fn dispatcher_passed(&self) {
        *self
            .inner
            .dispatcher_pass
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
    }

    fn last_dispatch(&self) -> Option<Instant> {
        *self
            .inner
            .dispatcher_pass
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
