//! The outbox dispatcher: delivers queued invites and records each outcome in the timeline.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use super::{Extras, Operation, Rooms};
use crate::Error;
use crate::customer::{Channel, Recipient};
use crate::decide::{Actor, Command};
use crate::event::{DeliveryStatus, Event, EventData};
use crate::id::{InviteId, RoomId};
use crate::locale::Locale;
use crate::notify::{Notifier, NotifyError};
use crate::state::RoomStatus;
use crate::store::{ClaimedOutbox, Credential, Grant, OutboxTarget};
use crate::token::Token;

/// An outbox row's payload: who to invite where. No link: its token is minted when sending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Delivery {
    pub(super) room: RoomId,
    pub(super) invite: InviteId,
    pub(super) recipient: Recipient,
    pub(super) first_name: String,
    /// The invite's language, if the agent chose one (absent from rows queued before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) locale: Option<Locale>,
    /// Whether the invite is a reminder of unread messages ([`crate::alert`]): its texts are
    /// the reminder's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) reminder: bool,
}

impl Delivery {
    /// The delivery an invite's events ask for, if they invite through SMS or email.
    pub(super) fn of(events: &[Event]) -> Option<Self> {
        events.iter().find_map(|e| match &e.data {
            EventData::CustomerInvited {
                invite,
                customer,
                recipient: Some(recipient),
                locale,
                ..
            } => Some(Self {
                room: e.room,
                invite: *invite,
                recipient: recipient.clone(),
                first_name: customer.first_name.as_str().to_owned(),
                locale: locale.clone(),
                reminder: false,
            }),
            _ => None,
        })
    }
}

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

pub(super) enum Outcome {
    Sent,
    Failed,
    Retried,
    /// The outcome could not be recorded; the row goes back to the outbox when its lease ends.
    Unrecorded,
    /// Nothing to send (yet): an agent alert whose messages were read, or are not old enough.
    Skipped,
}

/// How many more times an outcome is recorded after a store failure. The provider is not
/// called again for these: a record that cannot be written would mean a second send after
/// the lease. Short pauses (50, 100, 200 ms) keep them well within the lease's last quarter.
const RECORD_RETRIES: u32 = 3;

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
    #[tracing::instrument(skip_all)]
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
                Outcome::Unrecorded | Outcome::Skipped => {}
            }
        }
        Ok(report)
    }

    /// Delivers invites until the future is dropped: claims whenever an invite is queued by
    /// this process, at least every poll interval (for other processes' invites and for
    /// retries), and whenever a delivery ends. Each delivery runs as its own task, so that a
    /// provider that hangs holds up only its own invites, up to 4 batches at once. Spawn it once
    /// per process: `tokio::spawn(async move { rooms.run_dispatcher().await })`.
    pub async fn run_dispatcher(&self) {
        let delivery = self.inner.config.delivery.clone();
        let most = delivery.batch.saturating_mul(4);
        // Dropped with this future: the deliveries under way stop with it.
        let mut running = tokio::task::JoinSet::new();
        // The outbox gauges: a query, so not every pass; never again once the store says it
        // cannot count.
        let mut next_stats = Some(tokio::time::Instant::now());
        loop {
            self.dispatcher_passed();
            if let Some(at) = next_stats
                && tokio::time::Instant::now() >= at
            {
                next_stats = self
                    .refresh_outbox_gauges()
                    .await
                    .then(|| tokio::time::Instant::now() + delivery.stats_interval);
            }
            while running.try_join_next().is_some() {}
            let room = most.saturating_sub(running.len()).min(delivery.batch);
            let mut more = false;
            if room > 0 {
                let now = self.inner.clock.now();
                match self.inner.store.claim_outbox(now, delivery.lease, room).await {
                    Ok(rows) => {
                        // A full batch: there may be more waiting.
                        more = rows.len() == room;
                        for row in rows {
                            let rooms = self.clone();
                            running.spawn(async move { rooms.deliver(row).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "dispatcher pass failed"),
                }
            }
            if more {
                continue;
            }
            // Woken early when this process queues an invite or a delivery ends; a timeout is
            // the normal case.
            let queued = std::pin::pin!(tokio::time::timeout(
                delivery.poll_interval,
                self.inner.outbox_added.notified()
            ));
            if running.is_empty() {
                let _ = queued.await;
            } else {
                let ended = std::pin::pin!(running.join_next());
                let _ = futures_util::future::select(queued, ended).await;
            }
        }
    }

    /// Reports the outbox's figures as gauges; `false` when the store cannot count them.
    async fn refresh_outbox_gauges(&self) -> bool {
        let now = self.inner.clock.now();
        match self.inner.store.outbox_stats(now).await {
            Ok(stats) => crate::metrics::outbox(&stats, now),
            Err(Error::Unsupported { .. }) => {
                tracing::debug!("the room store does not count its outbox: no outbox gauges");
                return false;
            }
            // A failing store shows in the dispatcher's own passes; try again next time.
            Err(e) => tracing::debug!(error = %e, "could not count the outbox"),
        }
        true
    }

    /// The notifier that delivers through `channel`, if one is configured (links go through none).
    fn notifier(&self, channel: Channel) -> Option<&Arc<dyn Notifier>> {
        match channel {
            Channel::Sms => self.inner.sms.as_ref(),
            Channel::Email => self.inner.email.as_ref(),
            Channel::Link => None,
        }
    }

    async fn deliver(&self, row: ClaimedOutbox) -> Outcome {
        let kind = row.message.target.kind();
        if row.attempts == 1 {
            let lag = self.inner.clock.now().since(row.message.not_before);
            crate::metrics::delivery_lag(kind.as_str(), lag);
        }
        let (outcome, provider) = match row.message.target {
            OutboxTarget::Invite { invite, channel } => {
                let provider = self.notifier(channel).map_or("none", |notifier| notifier.provider());
                (self.attempt(row, invite, channel).await, provider)
            }
            OutboxTarget::Webhook { endpoint } => (self.deliver_webhook(row, endpoint).await, "webhook"),
            OutboxTarget::AgentAlert => (self.deliver_agent_alert(row).await, "agent_alerts"),
            OutboxTarget::CustomerReminder => (self.deliver_customer_reminder(row).await, "reminder"),
        };
        let result = match outcome {
            Outcome::Sent => "sent",
            Outcome::Failed => "failed",
            Outcome::Retried => "retry",
            Outcome::Unrecorded => "unrecorded",
            Outcome::Skipped => "skipped",
        };
        crate::metrics::delivery(kind.as_str(), provider, result);
        outcome
    }

    /// One attempt at delivering a claimed invite, and its record.
    async fn attempt(&self, row: ClaimedOutbox, invite: InviteId, channel: Channel) -> Outcome {
        let message = &row.message;
        let failed = |reason: String| DeliveryStatus::Failed {
            permanent: true,
            reason,
        };
        let Some(notifier) = self.notifier(channel).cloned() else {
            let reason = format!("no {channel} notifier is configured");
            return self.finish(&row, invite, failed(reason)).await;
        };
        let delivery: Delivery = match serde_json::from_str(&message.payload) {
            Ok(delivery) => delivery,
            Err(e) => {
                return self
                    .finish(&row, invite, failed(format!("unreadable outbox payload: {e}")))
                    .await;
            }
        };
        // Never send what can no longer be used: a closed room, a revoked, expired or
        // superseded invite.
        // An invite of a merged room lives on in the room it was merged into.
        let state = match self.survivor_of(message.room).await {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(room = %message.room, error = %e, "could not load the room of an invite");
                return Outcome::Unrecorded;
            }
        };
        let usable = state.link_opens(invite, self.inner.clock.now(), self.policy());
        if state.status() == RoomStatus::Closed || !usable {
            let reason =
                "the invite was revoked, expired or superseded, or its room closed, before it was sent".to_owned();
            return self.finish(&row, invite, failed(reason)).await;
        }
        // The link's token exists from here on, and is stored only as its hash.
        let token = match Token::generate() {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(room = %message.room, error = %e, "could not mint an invite token");
                return Outcome::Unrecorded;
            }
        };
        let credential = Credential {
            hash: token.hash(),
            room: state.room(),
            grant: Grant::Invite(invite),
        };
        if let Err(e) = self.inner.store.add_credential(credential).await {
            tracing::warn!(room = %message.room, error = %e, "could not store an invite token");
            return Outcome::Unrecorded;
        }
        let link = self.inner.config.invite_link(token.expose());
        let settings = self.current_settings(state.tenant()).await;
        let notification = self.notification(&delivery, state.tenant(), settings.as_deref(), &link);
        // A provider call that hangs must end before the lease does, or another dispatcher would
        // take the row over and send it again.
        let send_timeout = self.inner.config.delivery.lease * 3 / 4;
        let sent = match tokio::time::timeout(send_timeout, notifier.send(&notification)).await {
            Ok(sent) => sent,
            Err(_) => Err(NotifyError::ambiguous(format!(
                "no answer within {} s",
                send_timeout.as_secs()
            ))),
        };
        // A provider's error text may quote the request; keep the token out of logs and timeline.
        let scrub = |e: &dyn std::fmt::Display| e.to_string().replace(token.expose(), "<token>");
        let max_attempts = self.inner.config.delivery.max_attempts;
        match sent {
            Ok(receipt) => {
                let status = DeliveryStatus::Sent {
                    provider_id: receipt.provider_id,
                };
                self.finish(&row, invite, status).await
            }
            Err(NotifyError::Permanent { source }) => {
                let reason = scrub(&source);
                tracing::warn!(room = %message.room, invite = %invite, error = %reason, "invite delivery failed");
                self.finish(&row, invite, failed(reason)).await
            }
            Err(e) if row.attempts >= max_attempts => {
                let reason = format!("gave up after {} attempts: {}", row.attempts, scrub(&e));
                tracing::warn!(room = %message.room, invite = %invite, error = %reason, "invite delivery gave up");
                self.finish(
                    &row,
                    invite,
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
                tracing::info!(room = %message.room, invite = %invite, error = %scrub(&e), ?wait, "invite delivery will be retried");
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
    pub(super) fn backoff(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let delivery = &self.inner.config.delivery;
        let doublings = attempts.saturating_sub(1).min(30);
        let wait = delivery
            .first_backoff
            .saturating_mul(1 << doublings)
            .min(delivery.max_backoff);
        // Up to 25% more, so that retries of many invites do not arrive together.
        let permille = self.inner.ids.next_id().map_or(0, |r| (r % 250) as u32);
        let wait = wait.saturating_add(wait / 1000 * permille);
        wait.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER))
    }

    /// Records the outcome and completes the outbox row in the same append.
    async fn finish(&self, row: &ClaimedOutbox, invite: InviteId, status: DeliveryStatus) -> Outcome {
        let outcome = match status {
            DeliveryStatus::Sent { .. } => Outcome::Sent,
            _ => Outcome::Failed,
        };
        match self
            .record_completion(row, &Command::RecordDelivery { invite, status })
            .await
        {
            true => outcome,
            false => Outcome::Unrecorded,
        }
    }

    /// Records `command` in the row's room and completes the row in the same append; `false`
    /// when that could not be written (the row then goes back to the outbox when its lease ends).
    pub(super) async fn record_completion(&self, row: &ClaimedOutbox, command: &Command) -> bool {
        let message = &row.message;
        let completed = message.id;
        // Delivery news about an invite of a merged room belongs where the invite lives now.
        let room = match command {
            Command::RecordDelivery { .. } => match self.survivor_of(message.room).await {
                Ok(state) => state.room(),
                Err(_) => message.room,
            },
            _ => message.room,
        };
        let mut retries = 0;
        let recorded = loop {
            let recorded = self
                .execute(&Actor::System, room, Operation::Read, command, |_, _| {
                    Ok(Extras {
                        completed_outbox: vec![completed],
                        ..Extras::default()
                    })
                })
                .await;
            match recorded {
                // A record whose answer was lost is found recorded the next time: nothing twice.
                Err(Error::Backend { .. }) if retries < RECORD_RETRIES => {
                    tokio::time::sleep(Duration::from_millis(50 << retries)).await;
                    retries += 1;
                }
                recorded => break recorded,
            }
        };
        let drop_row = match recorded {
            Ok(done) => done.events.is_empty(),
            // The room closed, was erased or merged, or the invite is gone: nothing left to record.
            Err(Error::RoomClosed | Error::RoomErased | Error::RoomMerged { .. } | Error::NotFound { .. }) => true,
            Err(e) => {
                tracing::warn!(room = %message.room, target = ?message.target, error = %e, "could not record a delivery's outcome");
                return false;
            }
        };
        if drop_row && let Err(e) = self.inner.store.delete_outbox(completed).await {
            tracing::debug!(room = %message.room, error = %e, "outbox row already gone");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_rows_queued_before_locales_still_read() {
        let old = r#"{"room":"00000000-0000-0000-0000-000000000001","invite":"00000000-0000-0000-0000-000000000002",
            "recipient":{"email":"grace@example.com"},"first_name":"Grace"}"#;
        let recipient = serde_json::to_string(&Recipient::Email(
            crate::EmailAddress::parse("grace@example.com").expect("an address"),
        ))
        .expect("json");
        let old = old.replace(r#"{"email":"grace@example.com"}"#, &recipient);
        let delivery: Delivery = serde_json::from_str(&old).expect("an old row reads");
        assert_eq!(delivery.locale, None);
        assert!(!serde_json::to_string(&delivery).expect("json").contains("locale"));
    }
}
