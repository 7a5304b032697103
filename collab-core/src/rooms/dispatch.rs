//! The outbox dispatcher: delivers queued invites and records each outcome in the timeline.

use std::time::Duration;

use futures_util::future::join_all;

use super::{Extras, Operation, Rooms};
use crate::Error;
use crate::customer::Channel;
use crate::decide::{Actor, Command};
use crate::event::DeliveryStatus;
use crate::notify::{Notification, NotifyError};
use crate::store::ClaimedOutbox;

/// What one pass of the dispatcher did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Invites claimed from the outbox.
    pub claimed: usize,
    /// Accepted by their provider.
    pub sent: usize,
    /// Recorded as failed: a permanent failure, or attempts ran out.
    pub failed: usize,
    /// Put back for a later attempt.
    pub retried: usize,
}

enum Outcome {
    Sent,
    Failed,
    Retried,
    /// The outcome could not be recorded; the row goes back to the outbox when its lease ends.
    Unrecorded,
}

/// The longest wait a provider's retry-after may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

impl Rooms {
    /// One pass: claims the invites that are due and makes one delivery attempt for each,
    /// concurrently, so that one slow provider call does not hold up the others.
    ///
    /// Delivery is at least once within the attempt limit: a row is claimed (and its attempt
    /// counted) before the provider is called, and completed in the same append as the event
    /// that records the outcome. If the process dies in between, the row is claimed again when
    /// its lease ends, so that no invite is lost; the provider may then see it twice.
    pub async fn dispatch_due(&self) -> Result<DispatchReport, Error> {
        let delivery = &self.inner.config.delivery;
        let now = self.inner.clock.now();
        let claimed = self
            .inner
            .store
            .claim_outbox(now, delivery.lease, delivery.batch)
            .await?;
        let mut report = DispatchReport {
            claimed: claimed.len(),
            ..DispatchReport::default()
        };
        for outcome in join_all(claimed.into_iter().map(|row| self.deliver(row))).await {
            match outcome {
                Outcome::Sent => report.sent += 1,
                Outcome::Failed => report.failed += 1,
                Outcome::Retried => report.retried += 1,
                Outcome::Unrecorded => {}
            }
        }
        Ok(report)
    }

    /// Delivers invites until the future is dropped: a pass whenever an invite is queued by
    /// this process, and at least every poll interval (for other processes' invites and for
    /// retries). Spawn it once per process: `tokio::spawn(async move { rooms.run_dispatcher().await })`.
    pub async fn run_dispatcher(&self) {
        let delivery = self.inner.config.delivery.clone();
        loop {
            match self.dispatch_due().await {
                // A full batch: there may be more waiting.
                Ok(report) if report.claimed == delivery.batch => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "dispatcher pass failed"),
            }
            // Woken early when this process queues an invite; a timeout is the normal case.
            let _ = tokio::time::timeout(delivery.poll_interval, self.inner.outbox_added.notified()).await;
        }
    }

    async fn deliver(&self, row: ClaimedOutbox) -> Outcome {
        let message = &row.message;
        let notifier = match message.channel {
            Channel::Sms => self.inner.sms.clone(),
            Channel::Email => self.inner.email.clone(),
            Channel::Link => None,
        };
        let Some(notifier) = notifier else {
            let reason = format!("no {} notifier is configured", message.channel);
            return self
                .finish(
                    &row,
                    DeliveryStatus::Failed {
                        permanent: true,
                        reason,
                    },
                )
                .await;
        };
        let notification: Notification = match serde_json::from_str(&message.payload) {
            Ok(notification) => notification,
            Err(e) => {
                let reason = format!("unreadable outbox payload: {e}");
                return self
                    .finish(
                        &row,
                        DeliveryStatus::Failed {
                            permanent: true,
                            reason,
                        },
                    )
                    .await;
            }
        };
        let max_attempts = self.inner.config.delivery.max_attempts;
        match notifier.send(&notification).await {
            Ok(receipt) => {
                let status = DeliveryStatus::Sent {
                    provider_id: receipt.provider_id,
                };
                self.finish(&row, status).await
            }
            Err(NotifyError::Permanent { source }) => {
                tracing::warn!(room = %message.room, invite = %message.invite, error = %source, "invite delivery failed");
                let reason = source.to_string();
                self.finish(
                    &row,
                    DeliveryStatus::Failed {
                        permanent: true,
                        reason,
                    },
                )
                .await
            }
            Err(e) if row.attempts >= max_attempts => {
                tracing::warn!(room = %message.room, invite = %message.invite, error = %e, "invite delivery gave up");
                let reason = format!("gave up after {} attempts: {e}", row.attempts);
                self.finish(
                    &row,
                    DeliveryStatus::Failed {
                        permanent: false,
                        reason,
                    },
                )
                .await
            }
            Err(e) => {
                let retry_after = match &e {
                    NotifyError::Transient { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let wait = self.backoff(row.attempts, retry_after);
                tracing::info!(room = %message.room, invite = %message.invite, error = %e, ?wait, "invite delivery will be retried");
                let not_before = self.inner.clock.now().saturating_add(wait);
                match self.inner.store.reschedule_outbox(message.id, not_before).await {
                    Ok(()) => Outcome::Retried,
                    Err(e) => {
                        tracing::warn!(room = %message.room, error = %e, "could not reschedule an invite");
                        Outcome::Unrecorded
                    }
                }
            }
        }
    }

    /// The wait before attempt `attempts + 1`: exponential, capped, with jitter; never shorter
    /// than what the provider asked for.
    fn backoff(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let delivery = &self.inner.config.delivery;
        let doublings = attempts.saturating_sub(1).min(30);
        let wait = delivery
            .first_backoff
            .saturating_mul(1 << doublings)
            .min(delivery.max_backoff);
        // Up to 25% more, so that retries of many invites do not arrive together.
        let permille = self.inner.ids.next_id().map_or(0, |r| (r % 250) as u32);
        let wait = wait.saturating_add(wait * permille / 1000);
        wait.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER))
    }

    /// Records the outcome and completes the outbox row in the same append.
    async fn finish(&self, row: &ClaimedOutbox, status: DeliveryStatus) -> Outcome {
        let message = &row.message;
        let outcome = match status {
            DeliveryStatus::Sent { .. } => Outcome::Sent,
            _ => Outcome::Failed,
        };
        let command = Command::RecordDelivery {
            invite: message.invite,
            status,
        };
        let completed = message.id;
        let recorded = self
            .execute(&Actor::System, message.room, Operation::Read, &command, |_, _| {
                Ok(Extras {
                    completed_outbox: vec![completed],
                    ..Extras::default()
                })
            })
            .await;
        let drop_row = match recorded {
            Ok(done) => done.events.is_empty(),
            // The room closed, or the invite is gone: nothing left to record.
            Err(Error::RoomClosed | Error::NotFound { .. }) => true,
            Err(e) => {
                tracing::warn!(room = %message.room, invite = %message.invite, error = %e, "could not record an invite's delivery");
                return Outcome::Unrecorded;
            }
        };
        if drop_row && let Err(e) = self.inner.store.delete_outbox(completed).await {
            tracing::debug!(room = %message.room, error = %e, "outbox row already gone");
        }
        outcome
    }
}
