//! The service a host calls: [`Rooms`].

mod alerts;
mod builder;
mod combine;
mod config;
mod dispatch;
mod documents;
mod export;
mod health;
mod lifecycle;
mod merge;
mod settings;
mod subscribe;
mod thumbnails;
mod typing;
mod webhooks;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore};

pub use builder::RoomsBuilder;
pub use config::{DeliveryConfig, ExistingCustomer, RoomsConfig};
use dispatch::Delivery;
pub use dispatch::DispatchReport;
pub use documents::{DocumentDownload, OrphanSweep, Upload};
pub use export::RoomExport;
pub use health::NotReady;
pub use lifecycle::RetentionSweep;
pub use settings::MAX_SETTINGS_HISTORY;
pub use subscribe::{EventStream, RoomUpdate, UpdateStream};
pub use thumbnails::Thumbnail;
use webhooks::Webhooks;

use crate::alert::AgentAlerts;
use crate::blob::BlobStore;
use crate::customer::{Channel, Customer, EmailAddress, PersonName, PhoneNumber, Recipient};
use crate::decide::{Actor, Command, Context, InviteCommand, authorize_read, create_room, decide};
use crate::error::{Entity, Error};
use crate::event::{DeliveryStatus, Event, EventData, Seq};
use crate::guard::{InviteAttempt, InviteGuard};
use crate::id::{IdGenerator, InviteId, OutboxId, ParticipantId, RoomId, TenantId};
use crate::locale::Locale;
use crate::notify::{Notification, Notifier, sms_segments};
use crate::policy::Policy;
use crate::settings::SettingsChange;
use crate::state::{RoomState, RoomSummary};
use crate::store::{Append, Credential, Grant, OutboxMessage, OutboxTarget, RoomPage, RoomQuery, RoomStore};
use crate::time::Clock;
use crate::token::Token;
use crate::transport::Transport;

/// What an agent is about to do, for an [`AccessHook`] to allow or refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Open a room.
    CreateRoom,
    /// Invite or re-invite the customer, or get a link.
    Invite,
    /// Revoke an invite.
    RevokeInvite,
    /// End a customer's session.
    RevokeSession,
    /// Post a chat message.
    PostMessage,
    /// Share a document.
    ShareDocument,
    /// Read the room: its timeline, documents, customer information, live events.
    Read,
    /// List and search the tenant's rooms.
    ListRooms,
    /// Close a room.
    CloseRoom,
    /// Erase a room's personal data, or a customer's across rooms.
    Erase,
    /// Export a room's whole record.
    Export,
    /// Merge a room into another ([`Rooms::merge_rooms`]); the hook is asked about both.
    MergeRooms,
    /// Change the tenant's settings ([`Rooms::change_settings`]): a host's admins.
    ChangeSettings,
}

/// Refines what agents may do, beyond "agents act within their tenant". Optional: without a
/// hook, every agent of a tenant may do everything in its rooms.
///
/// ```
/// use collab_core::rooms::{AccessHook, Operation};
/// use collab_core::{AgentId, RoomSummary, TenantId};
///
/// /// Agents may work only in the rooms they opened.
/// #[derive(Debug)]
/// struct OwnRoomsOnly;
///
/// impl AccessHook for OwnRoomsOnly {
///     fn allow(&self, _tenant: &TenantId, agent: &AgentId, _op: Operation, room: Option<&RoomSummary>) -> bool {
///         room.is_none_or(|room| room.agent == *agent)
///     }
/// }
/// ```
pub trait AccessHook: fmt::Debug + Send + Sync + 'static {
    /// Whether `agent` may do `operation`, in `room` when there is one. A refusal is
    /// [`Error::Forbidden`].
    fn allow(
        &self,
        tenant: &crate::TenantId,
        agent: &crate::AgentId,
        operation: Operation,
        room: Option<&RoomSummary>,
    ) -> bool;
}

/// Collaboration rooms as a service: every operation a host offers agents and customers.
///
/// Cheap to clone (one `Arc`); share one instance across the host's handlers. Every operation
/// names its [`Actor`]: an agent the host authenticated, a customer session from
/// [`Rooms::customer_session`], or [`Actor::System`] for the library's own work.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use collab_core::rooms::{InviteRequest, Rooms};
/// use collab_core::notify::RecordingNotifier;
/// use collab_core::*;
///
/// let rooms = Rooms::builder().email(RecordingNotifier::new()).build();
/// let agent = Actor::Agent { tenant: TenantId::new("acme")?, agent: AgentId::new("ada")? };
/// let room = rooms.create_room(&agent).await?;
/// rooms.invite(&agent, room.room, InviteRequest::email("Grace", "Hopper", "grace@example.com")).await?;
/// let link = rooms.get_link(&agent, room.room).await?.link.ok_or(Error::NotFound { what: Entity::Link })?;
///
/// // The customer opens the link.
/// let session = rooms.join(link.token()).await?;
/// let customer = rooms.customer_session(session.token.expose()).await?;
/// rooms.post_message(&customer, room.room, "Hello!", None).await?;
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
}

impl fmt::Debug for Rooms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rooms")
            .field("store", &self.inner.store)
            .field("blobs", &self.inner.blobs)
            .field("sms", &self.inner.sms)
            .field("email", &self.inner.email)
            .field("transport", &self.inner.transport)
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Arc<dyn RoomStore>,
    blobs: Arc<dyn BlobStore>,
    sms: Option<Arc<dyn Notifier>>,
    email: Option<Arc<dyn Notifier>>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    access: Option<Arc<dyn AccessHook>>,
    guard: Option<Arc<dyn InviteGuard>>,
    webhooks: Option<Webhooks>,
    alerts: Option<Arc<dyn AgentAlerts>>,
    config: RoomsConfig,
    /// Recently used room states, brought up to date from the store before each use.
    states: Mutex<HashMap<RoomId, RoomState>>,
    /// Wakes the dispatcher when an append queued deliveries.
    outbox_added: Notify,
    /// Bounds the uploads inspected whole (PDFs, unclear heads) at once.
    inspection_permits: Arc<Semaphore>,
    /// Posts queued per busy room, stored together (`combine`).
    lanes: combine::Lanes,
    /// When this process's dispatcher last made a pass, if it runs one (`health`).
    dispatcher_pass: Mutex<Option<tokio::time::Instant>>,
    /// Drops typing signals that come too soon after a participant's last one.
    typing: typing::TypingThrottle,
    /// Each tenant's settings as last read (`settings`).
    settings: settings::SettingsCache,
}

/// An invite as the agent fills in the invite frame. Strings are checked here, and a bad one is
/// an [`Error::Invalid`] naming its field (`first_name`, `last_name`, `phone`, `email`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteRequest {
    /// The channel.
    pub channel: Channel,
    /// The first name; locked (leave it out, or repeat it) once the customer is invited.
    pub first_name: Option<String>,
    /// The last name; locked likewise.
    pub last_name: Option<String>,
    /// The mobile number (international form) for SMS, the address for email, none for a link.
    /// Locked once a channel was used: leave it out to reuse it.
    pub identifier: Option<String>,
    /// The language of the invite's text (a [`Locale`] tag, `locale` when bad);
    /// without one, the tenant's. See [`RoomsConfig::with_templates_for`].
    pub locale: Option<String>,
}

impl InviteRequest {
    /// A first invite by SMS.
    pub fn sms(first_name: &str, last_name: &str, phone: &str) -> Self {
        Self::first(Channel::Sms, first_name, last_name, Some(phone))
    }

    /// A first invite by email.
    pub fn email(first_name: &str, last_name: &str, address: &str) -> Self {
        Self::first(Channel::Email, first_name, last_name, Some(address))
    }

    /// A re-invite through `channel`, with the identifier for a channel not used before.
    pub fn again(channel: Channel, identifier: Option<&str>) -> Self {
        Self {
            channel,
            first_name: None,
            last_name: None,
            identifier: identifier.map(str::to_owned),
            locale: None,
        }
    }

    /// The same invite, its text in `locale` (`es`, `he`, `pt-BR`…) when texts for it are
    /// configured.
    pub fn with_locale(mut self, locale: &str) -> Self {
        self.locale = Some(locale.to_owned());
        self
    }

    fn first(channel: Channel, first_name: &str, last_name: &str, identifier: Option<&str>) -> Self {
        Self {
            channel,
            first_name: Some(first_name.to_owned()),
            last_name: Some(last_name.to_owned()),
            identifier: identifier.map(str::to_owned),
            locale: None,
        }
    }
}

/// A link that grants entry to a room: a bearer secret, hidden from `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteLink {
    url: String,
    token: Token,
}

impl InviteLink {
    /// The whole URL, to show to the agent or send to the customer.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The token alone, as [`Rooms::join`] takes it.
    pub fn token(&self) -> &str {
        self.token.expose()
    }
}

impl fmt::Debug for InviteLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteLink(<redacted>)")
    }
}

/// An invite that was issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteIssued {
    /// The invite.
    pub invite: InviteId,
    /// Its channel.
    pub channel: Channel,
    /// The link, for a [`Channel::Link`] invite ("Get Link"). SMS and email invites travel
    /// through the outbox instead.
    pub link: Option<InviteLink>,
    /// For an SMS invite, how many segments its text takes (more than one costs more and may
    /// arrive split).
    pub sms_segments: Option<usize>,
    /// The customer's other rooms merged into this one after the invite
    /// ([`ExistingCustomer::Merge`]).
    pub merged: Vec<RoomId>,
}

/// What [`Rooms::join`] gives the customer: a session for the one room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerSession {
    /// The room.
    pub room: RoomId,
    /// The customer's participation.
    pub participant: ParticipantId,
    /// The session's bearer token (keep it in an `HttpOnly` cookie); only its hash is stored.
    pub token: Token,
}

/// Which part of a timeline to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimelineQuery {
    /// Up to `limit` events after `seq`, oldest first.
    After {
        /// The last event the reader has.
        seq: Seq,
        /// At most this many (1 to [`MAX_TIMELINE_PAGE`]).
        limit: usize,
    },
    /// The last `limit` events, newest first.
    Latest {
        /// At most this many (1 to [`MAX_TIMELINE_PAGE`]).
        limit: usize,
    },
}

/// The largest timeline page.
pub const MAX_TIMELINE_PAGE: usize = 1_000;

/// What an accepted command left behind.
struct Executed {
    state: RoomState,
    events: Vec<Event>,
}

/// What goes into an append besides the events.
#[derive(Default)]
struct Extras {
    outbox: Vec<OutboxMessage>,
    completed_outbox: Vec<OutboxId>,
    credentials: Vec<Credential>,
}

impl Rooms {
    /// A builder with every part at its default.
    pub fn builder() -> RoomsBuilder {
        RoomsBuilder::default()
    }

    /// The settings in force (SMS activated when an SMS notifier is configured).
    pub fn config(&self) -> &RoomsConfig {
        &self.inner.config
    }

    fn policy(&self) -> &Policy {
        &self.inner.config.policy
    }

    fn check_hook(&self, actor: &Actor, operation: Operation, room: Option<&RoomSummary>) -> Result<(), Error> {
        if let (Actor::Agent { tenant, agent }, Some(hook)) = (actor, &self.inner.access)
            && !hook.allow(tenant, agent, operation, room)
        {
            return Err(Error::Forbidden);
        }
        Ok(())
    }

    fn states(&self) -> MutexGuard<'_, HashMap<RoomId, RoomState>> {
        self.inner
            .states
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The room's state, brought up to date from the store.
    async fn load(&self, room: RoomId) -> Result<RoomState, Error> {
        const PAGE: usize = 1_000;
        let cached = self.states().get(&room).cloned();
        let mut state = match cached {
            Some(state) => state,
            None => self
                .inner
                .store
                .load_room(room)
                .await?
                .ok_or(Error::NotFound { what: Entity::Room })?,
        };
        loop {
            let newer = self.inner.store.read_events(room, state.seq(), PAGE).await?;
            for event in &newer {
                state.apply_checked(event)?;
            }
            if newer.len() < PAGE {
                break;
            }
        }
        self.remember(&state);
        Ok(state)
    }

    fn remember(&self, state: &RoomState) {
        let capacity = self.inner.config.state_cache_rooms;
        if capacity == 0 {
            return;
        }
        let mut states = self.states();
        if states.len() >= capacity && !states.contains_key(&state.room()) {
            // Crude but bounded: start over rather than track recency on every read.
            states.clear();
        }
        states.insert(state.room(), state.clone());
    }

    /// Loads the room and checks that `actor` may read it (and, for agents, the hook).
    /// [`Actor::System`] is the library's own actor, never a reader.
    async fn readable(&self, actor: &Actor, room: RoomId, operation: Operation) -> Result<RoomState, Error> {
        if *actor == Actor::System {
            return Err(Error::Forbidden);
        }
        let state = self.load(room).await?;
        authorize_read(&state, actor)?;
        self.check_hook(actor, operation, Some(state.summary()))?;
        // So that `current_status` judges the room by its tenant's settings.
        self.current_settings(state.tenant()).await;
        Ok(state)
    }

    /// Decides `command` and appends its events with `extras`, deciding again on a conflict.
    async fn execute(
        &self,
        actor: &Actor,
        room: RoomId,
        operation: Operation,
        command: &Command,
        extras: impl Fn(&RoomState, &[Event]) -> Result<Extras, Error>,
    ) -> Result<Executed, Error> {
        let mut attempt = 0;
        loop {
            let state = self.load(room).await?;
            // Tenant and room first: the hook must not learn of, or reveal, other tenants' rooms.
            authorize_read(&state, actor)?;
            self.check_hook(actor, operation, Some(state.summary()))?;
            let policy = self.policy_for(state.tenant()).await;
            let ctx = Context {
                now: self.inner.clock.now(),
                actor,
                policy: &policy,
            };
            let events = decide(&state, command, &ctx)?;
            if events.is_empty() {
                return Ok(Executed { state, events });
            }
            let mut extra = extras(&state, &events)?;
            extra
                .outbox
                .extend(self.queued_rows(state.tenant(), Some(&state), &events)?);
            let queued = !extra.outbox.is_empty();
            let mut append = Append::new(Some(&state), events)?;
            append.outbox = extra.outbox;
            append.completed_outbox = extra.completed_outbox;
            append.credentials = extra.credentials;
            let events = append.events.clone();
            let started = std::time::Instant::now();
            let stored = if matches!(command, Command::Erase { .. }) {
                self.inner.store.erase(append).await
            } else {
                self.inner.store.append(append).await
            };
            crate::metrics::append_finished(started.elapsed(), &stored);
            match stored {
                Ok(()) => {
                    let mut after = state;
                    for event in &events {
                        after.apply(event);
                    }
                    self.remember(&after);
                    if queued {
                        self.inner.outbox_added.notify_one();
                    }
                    self.publish(room, &events).await;
                    return Ok(Executed { state: after, events });
                }
                Err(Error::Conflict { .. }) if attempt < self.inner.config.max_conflict_retries => {
                    attempt += 1;
                    tracing::debug!(%room, attempt, "room changed meanwhile; deciding again");
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn publish(&self, room: RoomId, events: &[Event]) {
        let events: Vec<Arc<Event>> = events.iter().cloned().map(Arc::new).collect();
        if let Err(e) = self.inner.transport.publish(room, &events).await {
            // Stored already: subscribers catch up from the store.
            tracing::warn!(%room, error = %e, "live transport failed to publish");
        }
    }

    /// Opens a room: a draft named "Collaboration Room". Agents only.
    #[tracing::instrument(skip_all)]
    pub async fn create_room(&self, actor: &Actor) -> Result<RoomSummary, Error> {
        let Actor::Agent { tenant, agent } = actor else {
            return Err(Error::Forbidden);
        };
        self.check_hook(actor, Operation::CreateRoom, None)?;
        let room = RoomId::generate(self.inner.ids.as_ref())?;
        let event = create_room(room, tenant.clone(), agent.clone(), self.inner.clock.now());
        let mut append = Append::new(None, vec![event])?;
        append.outbox = self.queued_rows(tenant, None, &append.events)?;
        let queued = !append.outbox.is_empty();
        let summary = append.summary.clone();
        let events = append.events.clone();
        self.inner.store.append(append).await?;
        if queued {
            self.inner.outbox_added.notify_one();
        }
        self.publish(room, &events).await;
        tracing::info!(%room, %tenant, "room created");
        Ok(summary)
    }

    /// Invites (or re-invites) the customer through a channel, following the room rules.
    ///
    /// An SMS or email invite is queued in the outbox with the invite event, atomically; the
    /// dispatcher mints its link token just before sending, so no token waits anywhere in clear.
    /// A link invite ("Get Link") returns its link; only the token's hash is stored.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn invite(&self, actor: &Actor, room: RoomId, request: InviteRequest) -> Result<InviteIssued, Error> {
        let first_name = request
            .first_name
            .as_deref()
            .map(|n| PersonName::parse("first_name", n))
            .transpose()?;
        let last_name = request
            .last_name
            .as_deref()
            .map(|n| PersonName::parse("last_name", n))
            .transpose()?;
        let locale = request.locale.as_deref().map(Locale::parse).transpose()?;
        let recipient = match (request.channel, request.identifier.as_deref()) {
            (_, None) => None,
            (Channel::Sms, Some(phone)) => Some(Recipient::Phone(PhoneNumber::parse(phone)?)),
            (Channel::Email, Some(address)) => Some(Recipient::Email(EmailAddress::parse(address)?)),
            (Channel::Link, Some(_)) => return Err(Error::invalid("identifier", "a link invite has no recipient")),
        };
        let others = match (&recipient, actor) {
            (Some(to), Actor::Agent { tenant, .. })
                if self.inner.config.existing_customer != ExistingCustomer::InviteHere =>
            {
                self.other_rooms_of(tenant, room, to).await?
            }
            _ => Vec::new(),
        };
        if self.inner.config.existing_customer == ExistingCustomer::Answer
            && let Some(other) = others.first()
        {
            // Before the invite guard counts an attempt. Found only within the agent's tenant;
            // the room itself is checked here.
            self.readable(actor, room, Operation::Invite).await?;
            return Err(Error::CustomerHasRoom { room: *other });
        }
        let sendable = match request.channel {
            Channel::Sms => self.policy().sms_activated(),
            Channel::Email => true,
            Channel::Link => false,
        };
        if let (true, Some(guard), Actor::Agent { tenant, agent }) = (sendable, &self.inner.guard, actor) {
            let state = self.readable(actor, room, Operation::Invite).await?;
            // A re-invite through a used channel goes to the locked identifier.
            let target = recipient
                .clone()
                .or_else(|| state.customer().and_then(|c| c.recipient_for(request.channel)));
            if let Some(target) = &target {
                let attempt = InviteAttempt {
                    tenant,
                    agent,
                    room,
                    recipient: target,
                    now: self.inner.clock.now(),
                };
                guard
                    .admit(&attempt)
                    .await
                    .inspect_err(|e| crate::metrics::invite_refused(e.kind()))?;
            }
        }
        let invite = InviteId::generate(self.inner.ids.as_ref())?;
        let outbox_id = OutboxId::generate(self.inner.ids.as_ref())?;
        let link_token = match request.channel {
            Channel::Link => Some(Token::generate()?),
            Channel::Sms | Channel::Email => None,
        };
        let command = Command::Invite(InviteCommand {
            invite,
            channel: request.channel,
            first_name,
            last_name,
            recipient,
            locale: locale.clone(),
        });
        let now = self.inner.clock.now();
        let done = self
            .execute(actor, room, Operation::Invite, &command, |_, events| {
                let mut extras = Extras::default();
                if let Some(token) = &link_token {
                    extras.credentials.push(Credential {
                        hash: token.hash(),
                        room,
                        grant: Grant::Invite(invite),
                    });
                }
                if let Some(delivery) = Delivery::of(events) {
                    extras.outbox.push(OutboxMessage {
                        id: outbox_id,
                        room,
                        target: OutboxTarget::Invite {
                            invite,
                            channel: delivery.recipient.channel(),
                        },
                        payload: serde_json::to_string(&delivery).map_err(|e| Error::internal("outbox payload", e))?,
                        not_before: now,
                    });
                }
                Ok(extras)
            })
            .await?;
        tracing::info!(%room, %invite, channel = %request.channel, "customer invited");
        // What the SMS will weigh: the link's length is known before its token exists.
        let settings = self.current_settings(done.state.tenant()).await;
        let sms_segments = Delivery::of(&done.events)
            .filter(|d| matches!(d.recipient, Recipient::Phone(_)))
            .map(|d| {
                let sample_link = self.inner.config.invite_link(&"0".repeat(64));
                let templates = self.invite_templates_with(locale.as_ref(), done.state.tenant(), settings.as_deref());
                let segments = sms_segments(&templates.sms_text(&d.first_name, &sample_link));
                if segments > 1 {
                    tracing::warn!(%room, %invite, segments, "the SMS invite takes more than one segment");
                }
                segments
            });
        let mut merged = Vec::new();
        for other in others {
            // The invite stands either way: a merge that fails leaves two rooms, as asked of
            // `InviteHere`, and the agent can merge them later.
            match self.merge_rooms(actor, other, room).await {
                Ok(_) => merged.push(other),
                Err(e) => tracing::warn!(%room, %other, error = %e, "could not merge the customer's other room"),
            }
        }
        Ok(InviteIssued {
            invite,
            channel: request.channel,
            link: link_token.map(|token| InviteLink {
                url: self.inner.config.invite_link(token.expose()),
                token,
            }),
            sms_segments,
            merged,
        })
    }

    /// The message for a delivery of `tenant` (whose settings are `settings`), with its link,
    /// in the invite's language.
    fn notification(
        &self,
        delivery: &Delivery,
        tenant: &TenantId,
        settings: Option<&SettingsChange>,
        link: &str,
    ) -> Notification {
        let templates = match delivery.reminder {
            true => Cow::Owned(self.inner.config.reminder_templates(delivery.locale.as_ref(), tenant)),
            false => self.invite_templates_with(delivery.locale.as_ref(), tenant, settings),
        };
        let first_name = delivery.first_name.as_str();
        let (subject, text) = match delivery.recipient {
            Recipient::Phone(_) => (None, templates.sms_text(first_name, link)),
            Recipient::Email(_) => (
                Some(templates.email_subject(first_name)),
                templates.email_text(first_name, link),
            ),
        };
        Notification {
            room: delivery.room,
            invite: delivery.invite,
            recipient: delivery.recipient.clone(),
            first_name: first_name.to_owned(),
            subject,
            text,
            link: link.to_owned(),
        }
    }

    /// "Get Link": a link invite the agent copies. By default it needs an SMS or email invite
    /// first (see [`Policy::with_link_requires_prior_invite`]).
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn get_link(&self, actor: &Actor, room: RoomId) -> Result<InviteIssued, Error> {
        self.invite(actor, room, InviteRequest::again(Channel::Link, None))
            .await
    }

    /// Revokes an invite: its link stops working. Agents only.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn revoke_invite(&self, actor: &Actor, room: RoomId, invite: InviteId) -> Result<(), Error> {
        let command = Command::RevokeInvite { invite };
        self.execute(actor, room, Operation::RevokeInvite, &command, no_extras)
            .await?;
        Ok(())
    }

    /// The customer opens an invite link: a session for the room. A wrong, expired or revoked
    /// token is one and the same error ([`Error::NotFound`] of "invite").
    ///
    /// A link holds one live session at a time: joining with it again (another device, a
    /// browser that lost its cookie, a replay) opens a new session and revokes the one the link
    /// opened before, in the same append. A room holds at most
    /// [`MAX_PARTICIPANTS`](crate::decide::MAX_PARTICIPANTS) live sessions, so that many links
    /// in use; past that a join is [`Error::NotAllowed`] ([`Rule::TooManySessions`](crate::Rule))
    /// until an agent revokes a session ([`Rooms::revoke_session`]).
    #[tracing::instrument(skip_all)]
    pub async fn join(&self, token: &str) -> Result<CustomerSession, Error> {
        let not_found = || Error::NotFound { what: Entity::Invite };
        let token = Token::parse(token).map_err(|_| not_found())?;
        let Some(Credential {
            room,
            grant: Grant::Invite(invite),
            ..
        }) = self.inner.store.find_credential(&token.hash()).await?
        else {
            return Err(not_found());
        };
        // A link of a merged room opens the room that holds its content now.
        let room = match self.survivor_of(room).await {
            Ok(state) => state.room(),
            Err(Error::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e),
        };
        let participant = ParticipantId::generate(self.inner.ids.as_ref())?;
        let session = Token::generate()?;
        let command = Command::Join { invite, participant };
        let credential = Credential {
            hash: session.hash(),
            room,
            grant: Grant::Session(participant),
        };
        let joined = self
            .execute(&Actor::System, room, Operation::Read, &command, |_, _| {
                Ok(Extras {
                    credentials: vec![credential],
                    ..Extras::default()
                })
            })
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => not_found(),
                other => other,
            })?;
        tracing::info!(%room, %participant, "customer joined");
        if let Some(guard) = &self.inner.guard {
            guard.joined(joined.state.tenant(), room).await;
        }
        Ok(CustomerSession {
            room,
            participant,
            token: session,
        })
    }

    /// The actor of a customer session token (from [`Rooms::join`]). An unknown, revoked or
    /// expired session ([`RoomsConfig::with_customer_sessions`]) is [`Error::Forbidden`].
    #[tracing::instrument(skip_all)]
    pub async fn customer_session(&self, token: &str) -> Result<Actor, Error> {
        let token = Token::parse(token).map_err(|_| Error::Forbidden)?;
        let Some(Credential {
            room,
            grant: Grant::Session(participant),
            ..
        }) = self.inner.store.find_credential(&token.hash()).await?
        else {
            return Err(Error::Forbidden);
        };
        // A session of a merged room acts in the room that holds its content now.
        let state = self.survivor_of(room).await?;
        let room = state.room();
        let actor = Actor::Customer { room, participant };
        authorize_read(&state, &actor)?;
        let now = self.inner.clock.now();
        let config = &self.inner.config;
        let ended = state.participant(participant).is_none_or(|p| {
            now.since(p.last_active) > config.session_idle || now.since(p.joined_at) > config.session_lifetime
        });
        if ended {
            return Err(Error::Forbidden);
        }
        Ok(actor)
    }

    /// Ends a customer's session. Agents only.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn revoke_session(&self, actor: &Actor, room: RoomId, participant: ParticipantId) -> Result<(), Error> {
        let command = Command::RevokeSession { participant };
        self.execute(actor, room, Operation::RevokeSession, &command, no_extras)
            .await?;
        Ok(())
    }

    /// The customer ends their own session (signs out): its token stops working at once, and
    /// their live streams end. `actor` is the customer, from [`Rooms::customer_session`]; any
    /// other actor is [`Error::Forbidden`].
    ///
    /// The invite link stays usable: the customer can open it again (from their SMS or email)
    /// for a new session. To shut the link too, an agent revokes the session
    /// ([`Rooms::revoke_session`]) or the invite ([`Rooms::revoke_invite`]).
    ///
    /// Idempotent: a session that has ended already (signed out before, revoked by an agent,
    /// replaced by a later join with the same link) is left as it is, without error. Accepted in
    /// a closed or timed-out room too.
    #[tracing::instrument(skip_all)]
    pub async fn end_session(&self, actor: &Actor) -> Result<(), Error> {
        let Actor::Customer { room, participant } = actor else {
            return Err(Error::Forbidden);
        };
        // Hooks judge agents only; the operation is named for completeness.
        let done = self
            .execute(actor, *room, Operation::RevokeSession, &Command::EndSession, no_extras)
            .await;
        match done {
            Ok(_) => {
                tracing::info!(%room, %participant, "customer ended their session");
                Ok(())
            }
            // A revoked session may not act, so `execute` refuses it: ended already, as asked.
            Err(Error::Forbidden)
                if self
                    .load(*room)
                    .await?
                    .participant(*participant)
                    .is_some_and(|p| p.revoked) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Posts a chat message. With a `client_key`, a retried post returns the message it
    /// recorded the first time instead of posting it again.
    ///
    /// Posts to one room from many callers at once queue and are stored together, in one
    /// append, in the order they queued: a busy room does not make its posters race each other.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when `client_key` was used (within
    /// [`CLIENT_KEY_WINDOW`](crate::decide::CLIENT_KEY_WINDOW)) for a message of another text:
    /// a client reusing a key by mistake learns so rather than seeing the old message as sent.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn post_message(
        &self,
        actor: &Actor,
        room: RoomId,
        text: &str,
        client_key: Option<&str>,
    ) -> Result<Event, Error> {
        let command = Command::PostMessage {
            text: text.to_owned(),
            client_key: client_key.map(str::to_owned),
        };
        let done = self
            .execute_in_lane(actor, room, Operation::PostMessage, command)
            .await?;
        if let Some(event) = done.events.into_iter().next_back() {
            return Ok(event);
        }
        // Nothing new: a retry of a keyed post. Return the original.
        let seq = client_key
            .and_then(|key| done.state.message_with_client_key(&actor.event_actor(), key))
            .ok_or(Error::NotFound { what: Entity::Message })?;
        let before = Seq::new(seq.get().saturating_sub(1));
        let mut found = self.inner.store.read_events(room, before, 1).await?;
        let original = found.pop().ok_or(Error::NotFound { what: Entity::Message })?;
        // Texts are recorded trimmed.
        match &original.data {
            EventData::MessagePosted { text: recorded, .. } if recorded == text.trim() => Ok(original),
            _ => Err(Error::conflict("client_key was used for another message")),
        }
    }

    /// A page of the room's timeline.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn timeline(&self, actor: &Actor, room: RoomId, query: TimelineQuery) -> Result<Vec<Event>, Error> {
        let (TimelineQuery::After { limit, .. } | TimelineQuery::Latest { limit }) = query;
        if limit == 0 || limit > MAX_TIMELINE_PAGE {
            return Err(Error::invalid("limit", "must be from 1 to 1000"));
        }
        self.readable(actor, room, Operation::Read).await?;
        match query {
            TimelineQuery::After { seq, limit } => self.inner.store.read_events(room, seq, limit).await,
            TimelineQuery::Latest { limit } => self.inner.store.latest_events(room, limit).await,
        }
    }

    /// The time now, by the service's clock: what invite expiry and timeouts are judged by
    /// (e.g. [`InviteState::is_usable_at`](crate::InviteState::is_usable_at)).
    pub fn now(&self) -> crate::Timestamp {
        self.inner.clock.now()
    }

    /// The status of `state` now: an active room past its inactivity timeout (its tenant's, as
    /// last read) counts as timed out before any sweep records it (the state's own `status()`
    /// is the recorded one).
    pub fn current_status(&self, state: &RoomState) -> crate::RoomStatus {
        let change = self.cached_settings(state.tenant());
        state.status_at(self.inner.clock.now(), &self.policy_with(change.as_deref()))
    }

    /// The room as `actor` may see it: name, status, customer information, invites, documents.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn room(&self, actor: &Actor, room: RoomId) -> Result<RoomState, Error> {
        self.readable(actor, room, Operation::Read).await
    }

    /// The customer information of the room: name and identifiers, once invited.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn customer_info(&self, actor: &Actor, room: RoomId) -> Result<Option<Customer>, Error> {
        Ok(self.readable(actor, room, Operation::Read).await?.customer().cloned())
    }

    /// Lists and searches the agent's tenant's rooms, newest first. Agents only.
    #[tracing::instrument(skip_all)]
    pub async fn list_rooms(&self, actor: &Actor, query: &RoomQuery) -> Result<RoomPage, Error> {
        let Actor::Agent { tenant, .. } = actor else {
            return Err(Error::Forbidden);
        };
        self.check_hook(actor, Operation::ListRooms, None)?;
        self.inner.store.list_rooms(tenant, query).await
    }

    /// Records that `actor` has seen the room up to `up_to` (its read horizon): the customer's
    /// page shows an agent's horizon as "Seen", the console the customer's, and the rooms list
    /// counts the customer's messages and documents past every agent's
    /// ([`RoomSummary::unread`]). Agents and the room's customer; a horizon that does not move
    /// forward records nothing, and `up_to` past the room's last event is
    /// [`Error::Invalid`]. Not activity: reading does not keep a room from timing out.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn mark_read(&self, actor: &Actor, room: RoomId, up_to: Seq) -> Result<(), Error> {
        let command = Command::MarkRead { up_to };
        self.execute(actor, room, Operation::Read, &command, no_extras).await?;
        Ok(())
    }

    /// Closes the room for good. Agents only.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn close_room(&self, actor: &Actor, room: RoomId) -> Result<(), Error> {
        self.execute(actor, room, Operation::CloseRoom, &Command::Close, no_extras)
            .await?;
        tracing::info!(%room, "room closed");
        Ok(())
    }

    /// Records a provider's delivery report for an invite (e.g. from a status callback).
    /// News that does not move the invite forward is accepted and records nothing. News about
    /// an invite of a merged room is recorded in the room it was merged into.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn record_delivery(&self, room: RoomId, invite: InviteId, status: DeliveryStatus) -> Result<(), Error> {
        let room = self.survivor_of(room).await?.room();
        let command = Command::RecordDelivery { invite, status };
        self.execute(&Actor::System, room, Operation::Read, &command, no_extras)
            .await?;
        Ok(())
    }

    /// Times out every active room idle for longer than the policy allows; returns how many.
    /// Schedule it (hourly is plenty): rooms also count as timed out on access before a sweep.
    ///
    /// The sweep looks at rooms idle past the deployment's timeout. A tenant's own timeout
    /// ([`Rooms::change_settings`]) decides for its rooms: a longer one keeps them active here
    /// (they are stepped over), and a shorter one times them out on their next read or write
    /// (which records `timed_out`), or in the sweep once the deployment's timeout has passed.
    #[tracing::instrument(skip_all)]
    pub async fn sweep_timeouts(&self) -> Result<usize, Error> {
        const BATCH: usize = 100;
        // Rooms a pass steps over (not due under their tenant's longer timeout, or failing):
        // beyond this many, the rest waits for the next pass.
        const MAX_STEPPED_OVER: usize = 10_000;
        let cutoff = self
            .inner
            .clock
            .now()
            .saturating_sub(self.policy().inactivity_timeout());
        let mut stepped_over = std::collections::HashSet::new();
        let mut timed_out = 0;
        loop {
            let asked = BATCH + stepped_over.len();
            let idle = self.inner.store.idle_rooms(cutoff, asked).await?;
            let fresh: Vec<RoomId> = idle.iter().filter(|r| !stepped_over.contains(*r)).copied().collect();
            for room in &fresh {
                // One room's trouble (closed meanwhile, a backend error) must not stop the rest.
                match self
                    .execute(&Actor::System, *room, Operation::Read, &Command::TimeOut, no_extras)
                    .await
                {
                    Ok(done) if !done.events.is_empty() => timed_out += 1,
                    Ok(_) => {
                        stepped_over.insert(*room);
                    }
                    Err(e) => {
                        tracing::warn!(%room, error = %e, "could not time out a room");
                        stepped_over.insert(*room);
                    }
                }
            }
            // Stop when the list ran out, or when all of it was stepped over already.
            if idle.len() < asked || fresh.is_empty() {
                break;
            }
            if stepped_over.len() > MAX_STEPPED_OVER {
                tracing::warn!(
                    stepped_over = stepped_over.len(),
                    "timeout sweep stopped early: too many idle rooms not due"
                );
                break;
            }
        }
        if timed_out > 0 {
            tracing::info!(timed_out, "rooms timed out");
        }
        Ok(timed_out)
    }
}

fn no_extras(_: &RoomState, _: &[Event]) -> Result<Extras, Error> {
    Ok(Extras::default())
}
