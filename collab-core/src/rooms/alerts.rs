//! Agent alerts ([`crate::alert`]): queued with the customer's first unread post, sent by the
//! dispatcher once the posts have waited a quiet period unread.

use super::Rooms;
use super::dispatch::Outcome;
use crate::Error;
use crate::alert::CustomerWaiting;
use crate::decide::Command;
use crate::event::{Event, EventActor, EventData, Seq};
use crate::id::{OutboxId, TenantId};
use crate::notify::NotifyError;
use crate::state::{RoomState, RoomStatus};
use crate::store::{ClaimedOutbox, OutboxMessage, OutboxTarget};
use crate::time::Timestamp;

impl Rooms {
    /// The outbox rows an append of `events` queues, `before` being the room's state before
    /// them (none for a new room): its webhooks, and its agent alert when one is called for.
    pub(super) fn queued_rows(
        &self,
        tenant: &TenantId,
        before: Option<&RoomState>,
        events: &[Event],
    ) -> Result<Vec<OutboxMessage>, Error> {
        let mut rows = self.webhook_rows(tenant, events)?;
        if let Some(before) = before
            && self.inner.alerts.is_some()
            && alert_called_for(before, events)
        {
            let now = self.inner.clock.now();
            rows.push(OutboxMessage {
                id: OutboxId::generate(self.inner.ids.as_ref())?,
                room: before.room(),
                target: OutboxTarget::AgentAlert,
                payload: String::new(),
                not_before: now.saturating_add(self.inner.config.alert_after),
            });
        }
        Ok(rows)
    }

    /// One look at a claimed alert row: nothing to send, not yet, or the alert sent (or given
    /// up) and recorded.
    pub(super) async fn deliver_agent_alert(&self, row: ClaimedOutbox) -> Outcome {
        let room = row.message.room;
        let Some(alerts) = self.inner.alerts.clone() else {
            // Alerts were turned off since the row was queued.
            return self.skip_alert(&row).await;
        };
        let state = match self.load(room).await {
            Ok(state) => state,
            Err(Error::NotFound { .. }) => return self.skip_alert(&row).await,
            Err(e) => {
                tracing::warn!(%room, error = %e, "could not load the room of an agent alert");
                return Outcome::Unrecorded;
            }
        };
        let (Some(first), Some(last)) = (state.unalerted().first().copied(), state.unalerted().last().copied()) else {
            // An agent read them all.
            return self.skip_alert(&row).await;
        };
        if matches!(state.status(), RoomStatus::Closed | RoomStatus::Erased) {
            return self.skip_alert(&row).await;
        }
        let since = match self
            .inner
            .store
            .read_events(room, Seq::new(first.get().saturating_sub(1)), 1)
            .await
        {
            Ok(events) => events.first().map_or_else(|| self.inner.clock.now(), |event| event.at),
            Err(e) => {
                tracing::warn!(%room, error = %e, "could not read the oldest unread post");
                return Outcome::Unrecorded;
            }
        };
        let due = since.saturating_add(self.inner.config.alert_after);
        if due > self.inner.clock.now() {
            // An agent read the older posts: the newer ones get their own quiet period.
            return self.alert_at(&row, due).await;
        }
        let alert = CustomerWaiting {
            tenant: state.tenant().clone(),
            room,
            agent: state.summary().agent.clone(),
            customer: state.summary().customer.as_ref().map(|c| c.full_name()),
            waiting: u32::try_from(state.unalerted().len()).unwrap_or(u32::MAX),
            since,
        };
        let send_timeout = self.inner.config.delivery.lease * 3 / 4;
        let sent = match tokio::time::timeout(send_timeout, alerts.customer_waiting(&alert)).await {
            Ok(sent) => sent,
            Err(_) => Err(NotifyError::ambiguous(format!(
                "no answer within {} s",
                send_timeout.as_secs()
            ))),
        };
        let max_attempts = self.inner.config.delivery.max_attempts;
        let failure = match sent {
            Ok(_) => None,
            Err(NotifyError::Permanent { source }) => Some(source.to_string()),
            Err(e) if row.attempts >= max_attempts => Some(format!("gave up after {} attempts: {e}", row.attempts)),
            Err(e) => {
                let retry_after = match &e {
                    NotifyError::Transient { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let wait = self.backoff(row.attempts, retry_after);
                tracing::info!(%room, error = %e, ?wait, "agent alert will be retried");
                return match self.alert_at(&row, self.inner.clock.now().saturating_add(wait)).await {
                    Outcome::Skipped => Outcome::Retried,
                    other => other,
                };
            }
        };
        if let Some(reason) = &failure {
            tracing::warn!(%room, error = %reason, "agent alert given up");
        }
        let outcome = match failure {
            None => Outcome::Sent,
            Some(_) => Outcome::Failed,
        };
        match self
            .record_completion(&row, &Command::RecordAgentsAlerted { up_to: last, failure })
            .await
        {
            true => outcome,
            false => Outcome::Unrecorded,
        }
    }

    /// Puts the row back until `at`.
    async fn alert_at(&self, row: &ClaimedOutbox, at: Timestamp) -> Outcome {
        match self.inner.store.reschedule_outbox(row.message.id, at).await {
            Ok(()) => Outcome::Skipped,
            Err(e) => {
                tracing::warn!(room = %row.message.room, error = %e, "could not put an agent alert back");
                Outcome::Unrecorded
            }
        }
    }

    async fn skip_alert(&self, row: &ClaimedOutbox) -> Outcome {
        if let Err(e) = self.inner.store.delete_outbox(row.message.id).await {
            tracing::debug!(room = %row.message.room, error = %e, "agent alert row already gone");
        }
        Outcome::Skipped
    }
}

/// Whether an append of `events` to a room in state `before` queues an agent alert: the
/// customer posts while nothing of theirs waits (else the waiting post's row covers it), or an
/// alert is recorded that leaves posts behind (posted while it was being sent).
fn alert_called_for(before: &RoomState, events: &[Event]) -> bool {
    let customer_posts = events.iter().any(|event| {
        matches!(event.actor, EventActor::Customer(_))
            && matches!(
                event.data,
                EventData::MessagePosted { .. } | EventData::DocumentShared(_)
            )
    });
    let left_behind = events.iter().any(|event| match event.data {
        EventData::AgentsAlerted { up_to, .. } => before.unalerted().last().is_some_and(|last| *last > up_to),
        _ => false,
    });
    (customer_posts && before.unalerted().is_empty()) || left_behind
}
