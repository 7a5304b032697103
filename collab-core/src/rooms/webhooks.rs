//! Webhooks through the outbox: the rows an append queues, and their delivery
//! ([`crate::webhook`] has the rules).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Rooms;
use super::dispatch::Outcome;
use crate::Error;
use crate::decide::Command;
use crate::event::{Event, Seq};
use crate::id::{EndpointId, OutboxId, TenantId};
use crate::notify::NotifyError;
use crate::store::{ClaimedOutbox, OutboxMessage, OutboxTarget};
use crate::time::Timestamp;
use crate::webhook::{self, WebhookConfig, WebhookEvent, WebhookMessage, WebhookSender};

/// The webhook part of a [`Rooms`]: where to send, and each endpoint's gate.
pub(super) struct Webhooks {
    pub(super) sender: Arc<dyn WebhookSender>,
    pub(super) config: WebhookConfig,
    pub(super) gates: Mutex<HashMap<EndpointId, Gate>>,
}

/// An endpoint's deliveries under way and its run of failures, in this process.
#[derive(Debug, Default)]
pub(super) struct Gate {
    in_flight: usize,
    failures: u32,
    closed_until: Option<Timestamp>,
}

/// A webhook row's payload: which event, of what type, queued when. No personal data: the
/// body is built from the stored event when it is sent.
#[derive(Debug, Serialize, Deserialize)]
struct WebhookRow {
    about: Seq,
    event: WebhookEvent,
    queued_at: Timestamp,
}

/// Holds one of an endpoint's delivery slots while it lives.
struct Slot<'a> {
    webhooks: &'a Webhooks,
    endpoint: EndpointId,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(gate) = self.webhooks.gates().get_mut(&self.endpoint) {
            gate.in_flight = gate.in_flight.saturating_sub(1);
        }
    }
}

impl Webhooks {
    fn gates(&self) -> MutexGuard<'_, HashMap<EndpointId, Gate>> {
        self.gates.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A delivery slot of `endpoint`, or the time to try again: while the circuit breaker is
    /// open, or all its slots are taken.
    fn enter(&self, endpoint: EndpointId, now: Timestamp) -> Result<Slot<'_>, Timestamp> {
        let mut gates = self.gates();
        let gate = gates.entry(endpoint).or_default();
        if let Some(until) = gate.closed_until
            && until > now
        {
            return Err(until);
        }
        if gate.in_flight >= self.config.concurrency {
            return Err(now.saturating_add(Duration::from_secs(1)));
        }
        gate.in_flight += 1;
        Ok(Slot {
            webhooks: self,
            endpoint,
        })
    }

    fn passed(&self, endpoint: EndpointId) {
        if let Some(gate) = self.gates().get_mut(&endpoint) {
            gate.failures = 0;
            gate.closed_until = None;
        }
    }

    fn failed(&self, endpoint: EndpointId, now: Timestamp) {
        if let Some(gate) = self.gates().get_mut(&endpoint) {
            gate.failures = gate.failures.saturating_add(1);
            if gate.failures >= self.config.breaker_failures {
                gate.closed_until = Some(now.saturating_add(self.config.breaker_cooldown));
                tracing::warn!(%endpoint, failures = gate.failures, "webhook endpoint keeps failing: pausing its deliveries");
            }
        }
    }
}

impl Rooms {
    /// The outbox rows `events` of a `tenant`'s room queue: one per event and endpoint that
    /// wants it, in the events' order.
    pub(super) fn webhook_rows(&self, tenant: &TenantId, events: &[Event]) -> Result<Vec<OutboxMessage>, Error> {
        let Some(webhooks) = &self.inner.webhooks else {
            return Ok(Vec::new());
        };
        let now = self.inner.clock.now();
        let mut rows = Vec::new();
        for event in events {
            let Some(kind) = WebhookEvent::of(&event.data) else {
                continue;
            };
            for endpoint in webhooks.config.wanting(tenant, kind) {
                let payload = WebhookRow {
                    about: event.seq,
                    event: kind,
                    queued_at: now,
                };
                rows.push(OutboxMessage {
                    id: OutboxId::generate(self.inner.ids.as_ref())?,
                    room: event.room,
                    target: OutboxTarget::Webhook {
                        endpoint: endpoint.id(),
                    },
                    payload: serde_json::to_string(&payload).map_err(|e| Error::internal("webhook row", e))?,
                    not_before: now,
                });
            }
        }
        Ok(rows)
    }

    /// One attempt at a claimed webhook row: sent and deleted, put back for later, or given up
    /// and recorded in the room's timeline.
    pub(super) async fn deliver_webhook(&self, row: ClaimedOutbox, endpoint: EndpointId) -> Outcome {
        let message = &row.message;
        let now = self.inner.clock.now();
        let Ok(payload) = serde_json::from_str::<WebhookRow>(&message.payload) else {
            tracing::warn!(room = %message.room, %endpoint, "unreadable webhook row: dropped");
            return self.drop_row(&row).await;
        };
        let webhook_id = format!("msg_{:032x}", message.id.as_u128());
        // Without webhooks configured here, rows queued by another server wait the default period.
        let webhooks = self.inner.webhooks.as_ref();
        let give_up_after = webhooks.map_or(WebhookConfig::default().give_up_after, |w| w.config.give_up_after);
        let expired = now.since(payload.queued_at) >= give_up_after;
        let configured = webhooks.and_then(|w| w.config.endpoint(endpoint).cloned().map(|e| (w, e)));
        let Some((webhooks, (tenant, target))) = configured else {
            // Another server may know the endpoint; this one keeps the row until it expires.
            if expired {
                return self
                    .give_up(
                        &row,
                        endpoint,
                        webhook_id,
                        &payload,
                        "the endpoint is not configured".to_owned(),
                    )
                    .await;
            }
            tracing::warn!(%endpoint, "a webhook row names an endpoint this server does not know");
            return self.retry_at(&row, now.saturating_add(Duration::from_secs(60))).await;
        };
        let slot = match webhooks.enter(endpoint, now) {
            Ok(slot) => slot,
            Err(at) => return self.retry_at(&row, at).await,
        };
        let event = match self
            .inner
            .store
            .read_events(message.room, Seq::new(payload.about.get().saturating_sub(1)), 1)
            .await
        {
            Ok(events) => events.into_iter().next().filter(|e| e.seq == payload.about),
            Err(e) => {
                tracing::warn!(room = %message.room, error = %e, "could not read the event of a webhook");
                return Outcome::Unrecorded;
            }
        };
        let Some(event) = event else {
            // The room was purged: nothing left to tell.
            return self.drop_row(&row).await;
        };
        let body = match webhook::body(&tenant, payload.event, &event) {
            Ok(body) => body,
            Err(e) => return self.give_up(&row, endpoint, webhook_id, &payload, e.to_string()).await,
        };
        let webhook = WebhookMessage {
            id: webhook_id.clone(),
            event: payload.event,
            body,
        };
        let send_timeout = self.inner.config.delivery.lease * 3 / 4;
        let sent = match tokio::time::timeout(send_timeout, webhooks.sender.send(&target, &webhook)).await {
            Ok(sent) => sent,
            Err(_) => Err(NotifyError::ambiguous(format!(
                "no answer within {} s",
                send_timeout.as_secs()
            ))),
        };
        drop(slot);
        match sent {
            Ok(()) => {
                webhooks.passed(endpoint);
                match self.inner.store.delete_outbox(message.id).await {
                    // The room's next row for this endpoint may go now.
                    Ok(()) => {
                        self.inner.outbox_added.notify_one();
                        Outcome::Sent
                    }
                    Err(e) => {
                        tracing::warn!(room = %message.room, %endpoint, error = %e, "a sent webhook's row could not be deleted: it will be sent again");
                        Outcome::Unrecorded
                    }
                }
            }
            Err(NotifyError::Permanent { source }) => {
                webhooks.failed(endpoint, now);
                self.give_up(&row, endpoint, webhook_id, &payload, source.to_string())
                    .await
            }
            Err(e) => {
                webhooks.failed(endpoint, now);
                if expired {
                    let reason = format!("gave up after {} attempts: {e}", row.attempts);
                    return self.give_up(&row, endpoint, webhook_id, &payload, reason).await;
                }
                let retry_after = match &e {
                    NotifyError::Transient { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let wait = self.backoff(row.attempts, retry_after);
                tracing::info!(room = %message.room, %endpoint, error = %e, ?wait, "webhook delivery will be retried");
                self.retry_at(&row, now.saturating_add(wait)).await
            }
        }
    }

    /// Records the failure in the room's timeline and completes the row with it.
    async fn give_up(
        &self,
        row: &ClaimedOutbox,
        endpoint: EndpointId,
        webhook_id: String,
        payload: &WebhookRow,
        reason: String,
    ) -> Outcome {
        tracing::warn!(room = %row.message.room, %endpoint, %webhook_id, error = %reason, "webhook delivery given up");
        let command = Command::RecordWebhookFailure {
            endpoint,
            webhook_id,
            about: payload.about,
            reason,
        };
        match self.record_completion(row, &command).await {
            true => Outcome::Failed,
            false => Outcome::Unrecorded,
        }
    }

    async fn retry_at(&self, row: &ClaimedOutbox, at: Timestamp) -> Outcome {
        match self.inner.store.reschedule_outbox(row.message.id, at).await {
            Ok(()) => Outcome::Retried,
            Err(e) => {
                tracing::warn!(room = %row.message.room, error = %e, "could not reschedule a webhook");
                Outcome::Unrecorded
            }
        }
    }

    async fn drop_row(&self, row: &ClaimedOutbox) -> Outcome {
        if let Err(e) = self.inner.store.delete_outbox(row.message.id).await {
            tracing::debug!(room = %row.message.room, error = %e, "webhook row already gone");
        }
        Outcome::Failed
    }
}
