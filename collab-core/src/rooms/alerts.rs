//! Agent alerts and customer reminders ([`crate::alert`]): queued with the first unread post
//! of a burst, sent by the dispatcher once the posts have waited a quiet period unread.

use super::dispatch::{Delivery, Outcome};
use super::{Extras, Operation, Rooms};
use crate::Error;
use crate::alert::CustomerWaiting;
use crate::customer::Channel;
use crate::decide::{Actor, Command};
use crate::event::{Event, EventActor, EventData, Seq};
use crate::guard::InviteAttempt;
use crate::id::{InviteId, OutboxId, TenantId};
use crate::notify::NotifyError;
use crate::state::{RoomState, RoomStatus};
use crate::store::{ClaimedOutbox, OutboxMessage, OutboxTarget};
use crate::time::Timestamp;

impl Rooms {
    /// The outbox rows an append of `events` queues, `before` being the room's state before
    /// them (none for a new room): its webhooks, and its agent alert or customer reminder when
    /// one is called for.
    pub(super) fn queued_rows(
        &self,
        tenant: &TenantId,
        before: Option<&RoomState>,
        events: &[Event],
    ) -> Result<Vec<OutboxMessage>, Error> {
        let mut rows = self.webhook_rows(tenant, events)?;
        let Some(before) = before else {
            return Ok(rows);
        };
        let alert = self.inner.alerts.is_some() && called_for(Side::Agents, before, events);
        let remind = self.inner.config.customer_reminders && called_for(Side::Customer, before, events);
        for (called, target) in [
            (alert, OutboxTarget::AgentAlert),
            (remind, OutboxTarget::CustomerReminder),
        ] {
            if called {
                rows.push(OutboxMessage {
                    id: OutboxId::generate(self.inner.ids.as_ref())?,
                    room: before.room(),
                    target,
                    payload: String::new(),
                    not_before: self.inner.clock.now().saturating_add(self.inner.config.alert_after),
                });
            }
        }
        Ok(rows)
    }

    /// One look at a claimed alert row: nothing to send, not yet, or the alert sent (or given
    /// up) and recorded.
    pub(super) async fn deliver_agent_alert(&self, row: ClaimedOutbox) -> Outcome {
        let room = row.message.room;
        let Some(alerts) = self.inner.alerts.clone() else {
            // Alerts were turned off since the row was queued.
            return self.drop_notice_row(&row).await;
        };
        let state = match self.load(room).await {
            Ok(state) => state,
            Err(Error::NotFound { .. }) => return self.drop_notice_row(&row).await,
            Err(e) => {
                tracing::warn!(%room, error = %e, "could not load the room of an agent alert");
                return Outcome::Unrecorded;
            }
        };
        let Some(last) = state.unalerted().last().copied() else {
            // An agent read them all.
            return self.drop_notice_row(&row).await;
        };
        if matches!(
            state.status(),
            RoomStatus::Closed | RoomStatus::Merged | RoomStatus::Erased
        ) {
            return self.drop_notice_row(&row).await;
        }
        let since = match self.quiet_since(&row, state.unalerted()).await {
            Ok(since) => since,
            Err(outcome) => return outcome,
        };
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
                return match self
                    .put_back_until(&row, self.inner.clock.now().saturating_add(wait))
                    .await
                {
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

    /// When the oldest of `waiting` (a room's posts, oldest first) was posted, if the quiet
    /// period since then is over; else the row is put back until it is. `Err` holds the
    /// outcome to report: nothing waits any more, not yet, or the store failed.
    async fn quiet_since(&self, row: &ClaimedOutbox, waiting: &[Seq]) -> Result<Timestamp, Outcome> {
        let room = row.message.room;
        let Some(first) = waiting.first() else {
            return Err(self.drop_notice_row(row).await);
        };
        let after = Seq::new(first.get().saturating_sub(1));
        let since = match self.inner.store.read_events(room, after, 1).await {
            Ok(events) => events.first().map_or_else(|| self.inner.clock.now(), |event| event.at),
            Err(e) => {
                tracing::warn!(%room, error = %e, "could not read the oldest unread post");
                return Err(Outcome::Unrecorded);
            }
        };
        let due = since.saturating_add(self.inner.config.alert_after);
        if due > self.inner.clock.now() {
            // The older posts were read: the newer ones get their own quiet period.
            return Err(self.put_back_until(row, due).await);
        }
        Ok(since)
    }

    /// One look at a claimed reminder row: nothing to send, not yet, or the customer reminded
    /// by a new invite through their channel (whose own row then delivers it).
    pub(super) async fn deliver_customer_reminder(&self, row: ClaimedOutbox) -> Outcome {
        let room = row.message.room;
        let now = self.inner.clock.now();
        let state = match self.load(room).await {
            Ok(state) => state,
            Err(Error::NotFound { .. }) => return self.drop_notice_row(&row).await,
            Err(e) => {
                tracing::warn!(%room, error = %e, "could not load the room of a reminder");
                return Outcome::Unrecorded;
            }
        };
        // Never after the room timed out or closed.
        let policy = self.policy_for(state.tenant()).await;
        if !self.inner.config.customer_reminders || state.status_at(now, &policy) != RoomStatus::Active {
            return self.drop_notice_row(&row).await;
        }
        let Some(up_to) = state.unreminded().last().copied() else {
            return self.drop_notice_row(&row).await;
        };
        if let Err(outcome) = self.quiet_since(&row, state.unreminded()).await {
            return outcome;
        }
        let channel = match self.reminder_channel(&state).await {
            Ok(channel) => channel,
            Err(e) => {
                tracing::info!(%room, error = %e, "the customer is not reminded: the invite guard refused");
                None
            }
        };
        let ids = channel
            .map(|channel| {
                let invite = InviteId::generate(self.inner.ids.as_ref())?;
                let outbox = OutboxId::generate(self.inner.ids.as_ref())?;
                Ok::<_, Error>((invite, channel, outbox))
            })
            .transpose();
        let ids = match ids {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(%room, error = %e, "could not make the ids of a reminder");
                return Outcome::Unrecorded;
            }
        };
        let completed = row.message.id;
        let command = Command::RemindCustomer {
            up_to,
            invite: ids.map(|(invite, channel, _)| (invite, channel)),
        };
        let recorded = self
            .execute(&Actor::System, room, Operation::Read, &command, |_, events| {
                let mut extras = Extras {
                    completed_outbox: vec![completed],
                    ..Extras::default()
                };
                if let (Some(mut delivery), Some((invite, channel, outbox))) = (Delivery::of(events), ids) {
                    delivery.reminder = true;
                    extras.outbox.push(OutboxMessage {
                        id: outbox,
                        room,
                        target: OutboxTarget::Invite { invite, channel },
                        payload: serde_json::to_string(&delivery).map_err(|e| Error::internal("outbox payload", e))?,
                        not_before: now,
                    });
                }
                Ok(extras)
            })
            .await;
        match recorded {
            Ok(done) if done.events.is_empty() => self.drop_notice_row(&row).await,
            Ok(_) if ids.is_some() => Outcome::Sent,
            Ok(_) => Outcome::Failed,
            Err(
                Error::RoomClosed
                | Error::RoomErased
                | Error::RoomMerged { .. }
                | Error::RoomTimedOut
                | Error::NotFound { .. },
            ) => self.drop_notice_row(&row).await,
            Err(e) => {
                tracing::warn!(%room, error = %e, "could not record a reminder");
                Outcome::Unrecorded
            }
        }
    }

    /// The channel a reminder goes through: that of the customer's latest SMS or email invite
    /// (SMS only while SMS is activated), once the invite guard admits it; `Ok(None)` when the
    /// customer has no such channel.
    async fn reminder_channel(&self, state: &RoomState) -> Result<Option<Channel>, Error> {
        let usable = |channel: Channel| match channel {
            Channel::Sms => self.policy().sms_activated(),
            Channel::Email => true,
            Channel::Link => false,
        };
        let Some(channel) = state.invites().iter().rev().map(|i| i.channel).find(|c| usable(*c)) else {
            return Ok(None);
        };
        let Some(recipient) = state.customer().and_then(|c| c.recipient_for(channel)) else {
            return Ok(None);
        };
        if let Some(guard) = &self.inner.guard {
            let attempt = InviteAttempt {
                tenant: state.tenant(),
                agent: &state.summary().agent,
                room: state.room(),
                recipient: &recipient,
                now: self.inner.clock.now(),
            };
            guard
                .admit(&attempt)
                .await
                .inspect_err(|e| crate::metrics::invite_refused(e.kind()))?;
        }
        Ok(Some(channel))
    }

    /// Puts an alert or reminder row back until `at`.
    async fn put_back_until(&self, row: &ClaimedOutbox, at: Timestamp) -> Outcome {
        match self.inner.store.reschedule_outbox(row.message.id, at).await {
            Ok(()) => Outcome::Skipped,
            Err(e) => {
                tracing::warn!(room = %row.message.room, error = %e, "could not put an alert or reminder back");
                Outcome::Unrecorded
            }
        }
    }

    /// Deletes an alert or reminder row that has nothing (more) to send.
    async fn drop_notice_row(&self, row: &ClaimedOutbox) -> Outcome {
        if let Err(e) = self.inner.store.delete_outbox(row.message.id).await {
            tracing::debug!(room = %row.message.room, error = %e, "alert or reminder row already gone");
        }
        Outcome::Skipped
    }
}

/// Who a notice of unread posts goes to.
#[derive(Clone, Copy)]
enum Side {
    /// The room's agent: the customer's posts wait.
    Agents,
    /// The customer: the agents' posts wait.
    Customer,
}

/// Whether an append of `events` to a room in state `before` queues a notice to `side`: the
/// other side posts while nothing of theirs waits unnoticed (else the waiting post's row covers
/// it), or a notice is recorded that leaves posts behind (posted while it was being sent).
fn called_for(side: Side, before: &RoomState, events: &[Event]) -> bool {
    let waiting = match side {
        Side::Agents => before.unalerted(),
        Side::Customer => before.unreminded(),
    };
    let other_side_posts = events.iter().any(|event| {
        let poster = match side {
            Side::Agents => matches!(event.actor, EventActor::Customer(_)),
            Side::Customer => matches!(event.actor, EventActor::Agent(_)),
        };
        poster
            && matches!(
                event.data,
                EventData::MessagePosted { .. } | EventData::DocumentShared(_)
            )
    });
    let left_behind = events.iter().any(|event| match (side, &event.data) {
        (Side::Agents, EventData::AgentsAlerted { up_to, .. })
        | (Side::Customer, EventData::CustomerReminded { up_to, .. }) => {
            waiting.last().is_some_and(|last| last > up_to)
        }
        _ => false,
    });
    (other_side_posts && waiting.is_empty()) || left_behind
}
