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
    /// The transport cannot hear other processes now ([`Transport::check_ready`](crate::transport::Transport::check_ready)):
    /// live events from other servers are late until it reconnects (none is lost).
    Transport,
}

impl NotReady {
    /// A stable name for the failing part: `store`, `dispatcher`, `transport`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Dispatcher => "dispatcher",
            Self::Transport => "transport",
        }
    }
}

impl Rooms {
    /// Checks that the room store answers (a read of a room that does not exist), that the
    /// dispatcher, if this process started one, made a pass recently (within ten poll
    /// intervals, and at least 30 s), and that the transport hears other processes. A process
    /// that never started a dispatcher (another process delivers the invites) is not judged on
    /// it.
    pub async fn check_ready(&self) -> Result<(), NotReady> {
        if let Err(e) = self.inner.store.room_summary(RoomId::from_u128(0)).await {
            tracing::debug!(error = %e, "readiness: the room store did not answer");
            return Err(NotReady::Store);
        }
        let quiet_for = self.last_dispatch().map(|pass| pass.elapsed());
        let most = (self.inner.config.delivery.poll_interval * 10).max(Duration::from_secs(30));
        if quiet_for.is_some_and(|quiet| quiet > most) {
            return Err(NotReady::Dispatcher);
        }
        if let Err(e) = self.inner.transport.check_ready().await {
            tracing::debug!(error = %e, "readiness: the transport is not connected");
            return Err(NotReady::Transport);
        }
        Ok(())
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
