//! [`RoomsBuilder`]: the parts of a [`Rooms`] service, each with a default.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore};

use super::{AccessHook, Inner, Rooms, RoomsConfig};
use crate::alert::AgentAlerts;
use crate::blob::BlobStore;
use crate::guard::InviteGuard;
use crate::id::{IdGenerator, RandomIds};
use crate::memory::{MemoryBlobStore, MemoryRoomStore};
use crate::notify::Notifier;
use crate::store::RoomStore;
use crate::time::{Clock, SystemClock};
use crate::transport::{InProcessTransport, Transport};
use crate::webhook::{WebhookConfig, WebhookSender};

/// Builds a [`Rooms`]. Every part has a default: the in-memory stores, the in-process transport,
/// the system clock, random ids, no notifiers (so SMS and email invites are refused) and
/// [`RoomsConfig::default`].
#[derive(Debug, Default)]
pub struct RoomsBuilder {
    store: Option<Arc<dyn RoomStore>>,
    blobs: Option<Arc<dyn BlobStore>>,
    sms: Option<Arc<dyn Notifier>>,
    email: Option<Arc<dyn Notifier>>,
    transport: Option<Arc<dyn Transport>>,
    clock: Option<Arc<dyn Clock>>,
    ids: Option<Arc<dyn IdGenerator>>,
    access: Option<Arc<dyn AccessHook>>,
    guard: Option<Arc<dyn InviteGuard>>,
    webhooks: Option<(Arc<dyn WebhookSender>, WebhookConfig)>,
    alerts: Option<Arc<dyn AgentAlerts>>,
    config: RoomsConfig,
}

impl RoomsBuilder {
    /// Where rooms are stored.
    pub fn room_store(mut self, store: impl RoomStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Where document bytes are stored.
    pub fn blob_store(mut self, blobs: impl BlobStore) -> Self {
        self.blobs = Some(Arc::new(blobs));
        self
    }

    /// Sends SMS invites. Configuring one is what activates SMS.
    pub fn sms(mut self, notifier: impl Notifier) -> Self {
        self.sms = Some(Arc::new(notifier));
        self
    }

    /// Sends email invites.
    pub fn email(mut self, notifier: impl Notifier) -> Self {
        self.email = Some(Arc::new(notifier));
        self
    }

    /// Carries live events to subscribers.
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Tells the time.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Makes ids.
    pub fn ids(mut self, ids: impl IdGenerator) -> Self {
        self.ids = Some(Arc::new(ids));
        self
    }

    /// Refines what agents may do.
    pub fn access_hook(mut self, hook: impl AccessHook) -> Self {
        self.access = Some(Arc::new(hook));
        self
    }

    /// Admits or refuses SMS and email invites before they are recorded (rate limits…).
    pub fn invite_guard(mut self, guard: impl InviteGuard) -> Self {
        self.guard = Some(Arc::new(guard));
        self
    }

    /// Sends room events to the tenants' webhook endpoints in `config` through `sender`
    /// ([`crate::webhook`]). Without it, no webhooks are queued.
    pub fn webhooks(mut self, sender: impl WebhookSender, config: WebhookConfig) -> Self {
        self.webhooks = Some((Arc::new(sender), config));
        self
    }

    /// Alerts a room's agent through `alerts` when the customer's messages wait unread
    /// ([`crate::alert`]). Without it, no alerts are queued.
    pub fn agent_alerts(mut self, alerts: impl AgentAlerts) -> Self {
        self.alerts = Some(Arc::new(alerts));
        self
    }

    /// The settings.
    pub fn config(mut self, config: RoomsConfig) -> Self {
        self.config = config;
        self
    }

    /// The service.
    pub fn build(self) -> Rooms {
        let mut config = self.config;
        config.policy = config.policy.with_sms_activated(self.sms.is_some());
        Rooms {
            inner: Arc::new(Inner {
                store: self.store.unwrap_or_else(|| Arc::new(MemoryRoomStore::new())),
                blobs: self.blobs.unwrap_or_else(|| Arc::new(MemoryBlobStore::new())),
                sms: self.sms,
                email: self.email,
                transport: self
                    .transport
                    .unwrap_or_else(|| Arc::new(InProcessTransport::default())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                ids: self.ids.unwrap_or_else(|| Arc::new(RandomIds)),
                access: self.access,
                guard: self.guard,
                alerts: self.alerts,
                webhooks: self.webhooks.map(|(sender, config)| super::Webhooks {
                    sender,
                    config,
                    gates: Mutex::new(HashMap::new()),
                }),
                states: Mutex::new(HashMap::new()),
                outbox_added: Notify::new(),
                lanes: Default::default(),
                dispatcher_pass: Mutex::new(None),
                typing: Default::default(),
                settings: Default::default(),
                inspection_permits: Arc::new(Semaphore::new(config.whole_inspections)),
                config,
            }),
        }
    }
}
