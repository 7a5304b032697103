//! Webhooks: a tenant's endpoints hear about its rooms' events.
//!
//! # How delivery works
//!
//! - An endpoint ([`WebhookEndpoint`]) belongs to one tenant and names the [`WebhookEvent`]
//!   types it wants. Register endpoints and the [`WebhookSender`] that posts to them with
//!   [`RoomsBuilder::webhooks`](crate::RoomsBuilder::webhooks).
//! - Every append whose events an endpoint wants queues one outbox row per event and endpoint
//!   **in the same store transaction**: no event is stored without its webhooks, and none is
//!   sent for an event that was not stored. The row holds no personal data: the message body is
//!   built from the stored event when it is sent (an erasure drops the room's webhooks not yet
//!   sent, with its other queued deliveries).
//! - The dispatcher ([`Rooms::run_dispatcher`](crate::Rooms::run_dispatcher)) delivers them
//!   at least once, **in order per room and endpoint** (a row waits for the earlier rows of its
//!   room and endpoint, [`RoomStore::claim_outbox`](crate::RoomStore::claim_outbox)), retrying
//!   with exponential backoff and jitter until [`WebhookConfig::with_give_up_after`] (24 hours
//!   by default). Then it gives up: the room's timeline records
//!   [`EventData::WebhookFailed`], which the agents' API shows, and the room's next events go on.
//! - Each message has a `webhook-id` that stays the same across retries (`msg_` and the outbox
//!   row's id), so receivers can drop duplicates.
//! - An endpoint that answers slowly or fails holds up only its own rows: at most
//!   [`WebhookConfig::with_concurrency`] deliveries to one endpoint at once, and after
//!   [`WebhookConfig::with_circuit_breaker`]'s run of failures its rows wait out a cool-down
//!   without being sent.
//!
//! Signing (the Standard Webhooks scheme: `webhook-id`, `webhook-timestamp`,
//! `webhook-signature`) is the sender's job: `collab_notify::webhook::HttpWebhookSender` signs
//! and posts, and `collab_notify::webhook::Verifier` checks signatures on the receiving side.
//!
//! # The message body
//!
//! ```json
//! {"type": "message.posted", "timestamp": "2026-12-05T10:00:00.000Z",
//!  "data": {"tenant": "acme", "room": "…", "seq": 7,
//!           "event": {"room": "…", "seq": 7, "at": "…", "actor": {"kind": "customer", "id": "…"},
//!                     "data": {"type": "message_posted", "text": "…"}}}}
//! ```
//!
//! `timestamp` is when the event happened; `data.event` is the stored event in the JSON form of
//! [`Event`].

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::{DeliveryStatus, Event, EventData};
use crate::id::{EndpointId, TenantId};
use crate::notify::NotifyError;

/// The event types an endpoint may subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WebhookEvent {
    /// `room.created`
    #[serde(rename = "room.created")]
    RoomCreated,
    /// `invite.queued`: an agent invited the customer (any channel).
    #[serde(rename = "invite.queued")]
    InviteQueued,
    /// `invite.sent`: the SMS or email provider accepted the invite.
    #[serde(rename = "invite.sent")]
    InviteSent,
    /// `invite.delivered`: the provider reports it reached the customer.
    #[serde(rename = "invite.delivered")]
    InviteDelivered,
    /// `invite.failed`: it could not be delivered.
    #[serde(rename = "invite.failed")]
    InviteFailed,
    /// `customer.joined`
    #[serde(rename = "customer.joined")]
    CustomerJoined,
    /// `message.posted`
    #[serde(rename = "message.posted")]
    MessagePosted,
    /// `document.shared`
    #[serde(rename = "document.shared")]
    DocumentShared,
    /// `room.timed_out`
    #[serde(rename = "room.timed_out")]
    RoomTimedOut,
    /// `room.closed`
    #[serde(rename = "room.closed")]
    RoomClosed,
    /// `room.merged`: another room of the tenant became part of this one (the body's event
    /// names it; the absorbed room's copied events make no webhooks of their own).
    #[serde(rename = "room.merged")]
    RoomMerged,
    /// `erasure.done`: the room's personal data was erased (the body's event says whether the
    /// room or its customer was asked for; it holds no personal data).
    #[serde(rename = "erasure.done")]
    ErasureDone,
}

impl WebhookEvent {
    /// Every type.
    pub const ALL: [WebhookEvent; 12] = [
        WebhookEvent::RoomCreated,
        WebhookEvent::InviteQueued,
        WebhookEvent::InviteSent,
        WebhookEvent::InviteDelivered,
        WebhookEvent::InviteFailed,
        WebhookEvent::CustomerJoined,
        WebhookEvent::MessagePosted,
        WebhookEvent::DocumentShared,
        WebhookEvent::RoomTimedOut,
        WebhookEvent::RoomClosed,
        WebhookEvent::RoomMerged,
        WebhookEvent::ErasureDone,
    ];

    /// The type's name in message bodies (`message.posted`…).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::RoomCreated => "room.created",
            WebhookEvent::InviteQueued => "invite.queued",
            WebhookEvent::InviteSent => "invite.sent",
            WebhookEvent::InviteDelivered => "invite.delivered",
            WebhookEvent::InviteFailed => "invite.failed",
            WebhookEvent::CustomerJoined => "customer.joined",
            WebhookEvent::MessagePosted => "message.posted",
            WebhookEvent::DocumentShared => "document.shared",
            WebhookEvent::RoomTimedOut => "room.timed_out",
            WebhookEvent::RoomClosed => "room.closed",
            WebhookEvent::RoomMerged => "room.merged",
            WebhookEvent::ErasureDone => "erasure.done",
        }
    }

    /// The type named `name`; an [`Error::Invalid`] on `event_types` otherwise.
    pub fn parse(name: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == name)
            .ok_or_else(|| Error::invalid("event_types", format!("no webhook event type is named {name:?}")))
    }

    /// The type of webhook a stored event makes, if any.
    pub fn of(data: &EventData) -> Option<Self> {
        Some(match data {
            EventData::RoomCreated { .. } => WebhookEvent::RoomCreated,
            EventData::CustomerInvited { .. } => WebhookEvent::InviteQueued,
            EventData::InviteDelivery { status, .. } => match status {
                DeliveryStatus::Sent { .. } => WebhookEvent::InviteSent,
                DeliveryStatus::Delivered => WebhookEvent::InviteDelivered,
                DeliveryStatus::Failed { .. } => WebhookEvent::InviteFailed,
            },
            EventData::CustomerJoined { .. } => WebhookEvent::CustomerJoined,
            EventData::MessagePosted { .. } => WebhookEvent::MessagePosted,
            EventData::DocumentShared(_) => WebhookEvent::DocumentShared,
            EventData::TimedOut => WebhookEvent::RoomTimedOut,
            EventData::Closed => WebhookEvent::RoomClosed,
            EventData::RoomMerged { .. } => WebhookEvent::RoomMerged,
            EventData::RoomErased { .. } => WebhookEvent::ErasureDone,
            _ => return None,
        })
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An endpoint's signing secret in the Standard Webhooks form: `whsec_` and the base64 of 24 to
/// 64 random bytes. Hidden from `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    bytes: Vec<u8>,
}

impl WebhookSecret {
    /// Reads `whsec_…`; an [`Error::Invalid`] on `secret` names what is wrong.
    pub fn parse(secret: &str) -> Result<Self, Error> {
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or_else(|| Error::invalid("secret", "a webhook secret starts with whsec_"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Error::invalid("secret", "a webhook secret is whsec_ and base64"))?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(Error::invalid("secret", "a webhook secret holds 24 to 64 bytes"));
        }
        Ok(Self { bytes })
    }

    /// A new random secret (32 bytes).
    pub fn generate() -> Result<Self, Error> {
        Ok(Self {
            bytes: crate::token::random_bytes::<32>()?.to_vec(),
        })
    }

    /// The key bytes the signature's HMAC uses.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The secret as the endpoint's owner configures it on their side: `whsec_…`.
    pub fn expose(&self) -> String {
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(&self.bytes)
        )
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// One of a tenant's webhook endpoints: where to post, what it wants, how to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEndpoint {
    id: EndpointId,
    url: String,
    events: Vec<WebhookEvent>,
    secrets: Vec<WebhookSecret>,
}

impl WebhookEndpoint {
    /// An endpoint posting every event type to `url` (`http` or `https`; the sender decides
    /// which hosts it may reach), signed with `secret`.
    pub fn new(id: EndpointId, url: &str, secret: WebhookSecret) -> Result<Self, Error> {
        let scheme_end = url.find("://").unwrap_or(0);
        let scheme = url[..scheme_end].to_ascii_lowercase();
        let host = url[scheme_end..].trim_start_matches("://");
        if !matches!(scheme.as_str(), "http" | "https") || host.is_empty() || host.starts_with('/') {
            return Err(Error::invalid("url", "a webhook endpoint is an http or https URL"));
        }
        if url.len() > 2_000 || url.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "url",
                "a webhook URL has no spaces and at most 2,000 bytes",
            ));
        }
        Ok(Self {
            id,
            url: url.to_owned(),
            events: WebhookEvent::ALL.to_vec(),
            secrets: vec![secret],
        })
    }

    /// The same endpoint, hearing only of `events` (at least one).
    pub fn with_events(mut self, events: &[WebhookEvent]) -> Result<Self, Error> {
        if events.is_empty() {
            return Err(Error::invalid(
                "event_types",
                "an endpoint wants at least one event type",
            ));
        }
        let mut events = events.to_vec();
        events.sort();
        events.dedup();
        self.events = events;
        Ok(self)
    }

    /// The same endpoint signing with a second secret as well, while its receiver moves from
    /// the first to this one: every message then carries both signatures, and a receiver that
    /// knows either accepts it. Drop the old one (build the endpoint with this secret alone)
    /// once the receiver has moved.
    pub fn with_next_secret(mut self, secret: WebhookSecret) -> Self {
        self.secrets.truncate(1);
        self.secrets.push(secret);
        self
    }

    /// The endpoint's id.
    pub fn id(&self) -> EndpointId {
        self.id
    }

    /// Where messages are posted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The event types it hears of.
    pub fn events(&self) -> &[WebhookEvent] {
        &self.events
    }

    /// Whether it hears of `event`.
    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.events.contains(&event)
    }

    /// The secrets to sign with: one, or two while rotating.
    pub fn secrets(&self) -> &[WebhookSecret] {
        &self.secrets
    }
}

/// One message for an endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookMessage {
    /// The `webhook-id`: the same on every attempt.
    pub id: String,
    /// Its event type.
    pub event: WebhookEvent,
    /// The JSON body (see the [module docs](self)). It may hold personal data: `Debug` hides it.
    pub body: String,
}

impl fmt::Debug for WebhookMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookMessage")
            .field("id", &self.id)
            .field("event", &self.event)
            .field("body", &"<redacted>")
            .finish()
    }
}

/// Posts messages to endpoints: `collab_notify::webhook::HttpWebhookSender`, or your own.
///
/// # Contract
///
/// [`send`](WebhookSender::send) makes **one** attempt, signs it with every secret of the
/// endpoint, and says how it went: `Ok` for a 2xx answer; [`NotifyError::Permanent`] when
/// trying again cannot help (the endpoint's URL is refused by the sender's rules, or it answered
/// 410 Gone), which gives the delivery up at once; any other error is retried. It must not log
/// the body. The dispatcher owns retries, ordering and time limits.
#[async_trait]
pub trait WebhookSender: fmt::Debug + Send + Sync + 'static {
    /// Posts `message` to `endpoint`.
    async fn send(&self, endpoint: &WebhookEndpoint, message: &WebhookMessage) -> Result<(), NotifyError>;
}

/// The webhook settings: the endpoints of each tenant, and how hard to try.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub(crate) endpoints: Vec<(TenantId, WebhookEndpoint)>,
    pub(crate) give_up_after: Duration,
    pub(crate) concurrency: usize,
    pub(crate) breaker_failures: u32,
    pub(crate) breaker_cooldown: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            give_up_after: Duration::from_secs(24 * 60 * 60),
            concurrency: 4,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

impl WebhookConfig {
    /// No endpoints yet, and the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `tenant`'s endpoint; an endpoint id used twice is an [`Error::Invalid`] on
    /// `endpoint`.
    pub fn with_endpoint(mut self, tenant: TenantId, endpoint: WebhookEndpoint) -> Result<Self, Error> {
        if self.endpoints.iter().any(|(_, e)| e.id == endpoint.id) {
            return Err(Error::invalid("endpoint", "two webhook endpoints have the same id"));
        }
        self.endpoints.push((tenant, endpoint));
        Ok(self)
    }

    /// How long a message is retried before it is given up (1 minute to 7 days; 24 hours by
    /// default).
    pub fn with_give_up_after(mut self, period: Duration) -> Result<Self, Error> {
        if period < Duration::from_secs(60) || period > Duration::from_secs(7 * 24 * 60 * 60) {
            return Err(Error::invalid("give_up_after", "between 1 minute and 7 days"));
        }
        self.give_up_after = period;
        Ok(self)
    }

    /// How many deliveries to one endpoint may be under way at once (1 to 64; 4 by default).
    pub fn with_concurrency(mut self, deliveries: usize) -> Result<Self, Error> {
        if !(1..=64).contains(&deliveries) {
            return Err(Error::invalid("concurrency", "between 1 and 64"));
        }
        self.concurrency = deliveries;
        Ok(self)
    }

    /// After `failures` failed attempts in a row (1 to 1,000; 5 by default), an endpoint's rows
    /// wait `cooldown` (1 s to 1 hour; 30 s by default) before the next is tried.
    pub fn with_circuit_breaker(mut self, failures: u32, cooldown: Duration) -> Result<Self, Error> {
        if !(1..=1_000).contains(&failures) {
            return Err(Error::invalid("failures", "between 1 and 1,000"));
        }
        if cooldown < Duration::from_secs(1) || cooldown > Duration::from_secs(3600) {
            return Err(Error::invalid("cooldown", "between 1 second and 1 hour"));
        }
        self.breaker_failures = failures;
        self.breaker_cooldown = cooldown;
        Ok(self)
    }

    /// The endpoints of `tenant` that want `event`.
    pub(crate) fn wanting<'a>(
        &'a self,
        tenant: &'a TenantId,
        event: WebhookEvent,
    ) -> impl Iterator<Item = &'a WebhookEndpoint> + 'a {
        self.endpoints
            .iter()
            .filter(move |(t, e)| t == tenant && e.wants(event))
            .map(|(_, e)| e)
    }

    /// The endpoint `id`, with its tenant.
    pub(crate) fn endpoint(&self, id: EndpointId) -> Option<&(TenantId, WebhookEndpoint)> {
        self.endpoints.iter().find(|(_, e)| e.id == id)
    }
}

/// The body of the message about `event` of `tenant`'s room.
pub(crate) fn body(tenant: &TenantId, kind: WebhookEvent, event: &Event) -> Result<String, Error> {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        timestamp: String,
        data: Data<'a>,
    }
    #[derive(Serialize)]
    struct Data<'a> {
        tenant: &'a TenantId,
        room: crate::RoomId,
        seq: u64,
        event: &'a Event,
    }
    serde_json::to_string(&Body {
        kind: kind.as_str(),
        timestamp: event.at.to_string(),
        data: Data {
            tenant,
            room: event.room,
            seq: event.seq.get(),
            event,
        },
    })
    .map_err(|e| Error::internal("webhook body", e))
}

/// A fake [`WebhookSender`] that records what it is asked to send and fails when told to.
#[derive(Debug, Default)]
pub struct RecordingWebhookSender {
    sent: Mutex<Vec<(EndpointId, WebhookMessage)>>,
    failures: Mutex<Vec<NotifyError>>,
    attempts: Mutex<usize>,
}

impl RecordingWebhookSender {
    /// A sender that accepts everything.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Makes the next attempts fail with these errors, in order.
    pub fn fail_next(&self, error: NotifyError) {
        lock(&self.failures).push(error);
    }

    /// Forgets the failures still queued: the next attempts succeed.
    pub fn clear_failures(&self) {
        lock(&self.failures).clear();
    }

    /// What was accepted, in order, with the endpoint it went to.
    pub fn sent(&self) -> Vec<(EndpointId, WebhookMessage)> {
        lock(&self.sent).clone()
    }

    /// Every attempt, failed ones included.
    pub fn attempts(&self) -> usize {
        *lock(&self.attempts)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl WebhookSender for RecordingWebhookSender {
    async fn send(&self, endpoint: &WebhookEndpoint, message: &WebhookMessage) -> Result<(), NotifyError> {
        *lock(&self.attempts) += 1;
        let mut failures = lock(&self.failures);
        if !failures.is_empty() {
            return Err(failures.remove(0));
        }
        drop(failures);
        lock(&self.sent).push((endpoint.id(), message.clone()));
        Ok(())
    }
}

#[async_trait]
impl<T: WebhookSender + ?Sized> WebhookSender for Arc<T> {
    async fn send(&self, endpoint: &WebhookEndpoint, message: &WebhookMessage) -> Result<(), NotifyError> {
        (**self).send(endpoint, message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_read_back_and_stay_out_of_debug() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
        assert_eq!(secret.expose(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert!(!format!("{secret:?}").contains("MfKQ"));
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_c2hvcnQ="] {
            let error = WebhookSecret::parse(bad).expect_err("refused");
            assert!(error.to_string().contains("secret"), "{error}");
        }
    }

    #[test]
    fn endpoints_check_their_url_and_event_types() {
        let secret = || WebhookSecret::generate().expect("random");
        let id = EndpointId::from_u128(1);
        for bad in [
            "ftp://example.com/hook",
            "https://",
            "example.com",
            "https:///x",
            "https://a b",
        ] {
            assert!(WebhookEndpoint::new(id, bad, secret()).is_err(), "{bad}");
        }
        let endpoint = WebhookEndpoint::new(id, "https://crm.example.com/hooks", secret()).expect("valid");
        assert!(endpoint.wants(WebhookEvent::RoomClosed));
        let endpoint = endpoint.with_events(&[WebhookEvent::MessagePosted]).expect("valid");
        assert!(!endpoint.wants(WebhookEvent::RoomClosed));
        assert!(endpoint.clone().with_events(&[]).is_err());
        assert_eq!(endpoint.with_next_secret(secret()).secrets().len(), 2);
        for event in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(event.as_str()).expect("its own name"), event);
            assert_eq!(serde_json::to_string(&event).expect("json"), format!("\"{event}\""));
        }
        assert!(WebhookEvent::parse("message_posted").is_err());
    }
}
