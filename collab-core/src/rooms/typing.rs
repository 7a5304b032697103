//! Typing indicators: checked and throttled here, carried by the transport, never stored.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::{Operation, Rooms};
use crate::decide::Actor;
use crate::error::Error;
use crate::id::RoomId;
use crate::state::RoomStatus;
use crate::time::Timestamp;
use crate::transport::{Typing, Typist};

/// When each participant's last typing signal passed, to drop those that come too soon.
#[derive(Debug, Default)]
pub(super) struct TypingThrottle {
    passed: Mutex<Passed>,
}

#[derive(Debug, Default)]
struct Passed {
    at: HashMap<(RoomId, Typist), Timestamp>,
    /// When the map reaches this size, entries older than the interval are dropped.
    sweep_at: usize,
}

impl Passed {
    fn too_soon(&self, key: &(RoomId, Typist), now: Timestamp, interval: Duration) -> bool {
        self.at.get(key).is_some_and(|last| now.since(*last) < interval)
    }
}

impl TypingThrottle {
    fn passed(&self) -> std::sync::MutexGuard<'_, Passed> {
        self.passed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a signal by `key` at `now` comes too soon after the last one that passed.
    fn too_soon(&self, key: &(RoomId, Typist), now: Timestamp, interval: Duration) -> bool {
        self.passed().too_soon(key, now, interval)
    }

    /// Whether a signal by `key` at `now` may pass; notes it if so.
    fn pass(&self, key: (RoomId, Typist), now: Timestamp, interval: Duration) -> bool {
        let mut passed = self.passed();
        if passed.too_soon(&key, now, interval) {
            return false;
        }
        if passed.at.len() >= passed.sweep_at {
            // Amortised: typists who stopped long enough ago are forgotten.
            passed.at.retain(|_, last| now.since(*last) < interval);
            passed.sweep_at = (passed.at.len() * 2).max(64);
        }
        passed.at.insert(key, now);
        true
    }
}

impl Rooms {
    /// Tells the room's other participants that `actor` is typing: agents, and the room's
    /// customer while they may post. Subscribers of [`follow`](Rooms::follow) hear it as
    /// [`RoomUpdate::Typing`](super::RoomUpdate::Typing), on every server the transport
    /// reaches. Nothing is stored, and nothing counts as activity.
    ///
    /// Call it as the person types; each participant's signals pass at most once per
    /// [`RoomsConfig::with_typing_interval`](super::RoomsConfig::with_typing_interval) (2 s by
    /// default) and the rest are dropped, so clients need not throttle. Refused like a
    /// message would be: [`Error::RoomClosed`], [`Error::RoomErased`], and
    /// [`Error::RoomTimedOut`] for a customer.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn typing(&self, actor: &Actor, room: RoomId) -> Result<(), Error> {
        let typist = match actor {
            Actor::Agent { agent, .. } => Typist::Agent(agent.clone()),
            Actor::Customer { participant, .. } => Typist::Customer(*participant),
            Actor::System => return Err(Error::Forbidden),
        };
        let now = self.inner.clock.now();
        let interval = self.inner.config.typing_interval;
        let key = (room, typist);
        // Only signals that passed the access check below are noted, so a caller dropped here
        // was allowed moments ago.
        if self.inner.typing.too_soon(&key, now, interval) {
            return Ok(());
        }
        let state = self.readable(actor, room, Operation::PostMessage).await?;
        match state.status_at(now, &self.policy_for(state.tenant()).await) {
            RoomStatus::Closed => return Err(Error::RoomClosed),
            RoomStatus::Erased => return Err(Error::RoomErased),
            RoomStatus::TimedOut if matches!(actor, Actor::Customer { .. }) => return Err(Error::RoomTimedOut),
            _ => {}
        }
        let typist = key.1.clone();
        if !self.inner.typing.pass(key, now, interval) {
            return Ok(());
        }
        if let Err(e) = self.inner.transport.typing(room, Typing { by: typist }).await {
            // Ephemeral: a lost signal costs an indicator, so the caller is not troubled.
            tracing::warn!(%room, error = %e, "typing signal not sent");
        }
        Ok(())
    }
}
