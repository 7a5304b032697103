//! The settings of a [`Rooms`](super::Rooms) service, with their defaults and bounds.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::Error;
use crate::document::DocumentPolicy;
use crate::id::TenantId;
use crate::locale::Locale;
use crate::notify::InviteTemplates;
use crate::policy::Policy;

/// Everything a deployment tunes. Start from [`RoomsConfig::default`] (links on
/// `http://127.0.0.1:8080`) and change what you need; methods that take a bound check it.
///
/// ```
/// use collab_core::rooms::RoomsConfig;
///
/// let config = RoomsConfig::default()
///     .with_base_url("https://rooms.example.com")?
///     .with_max_document_bytes(10 * 1024 * 1024)?;
/// assert_eq!(config.invite_link("abc"), "https://rooms.example.com/join/abc");
/// # Ok::<(), collab_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RoomsConfig {
    base_url: String,
    join_path: String,
    pub(crate) policy: Policy,
    pub(crate) templates: InviteTemplates,
    localized_templates: BTreeMap<Locale, InviteTemplates>,
    default_locale: Locale,
    tenant_locales: HashMap<TenantId, Locale>,
    browser_locale: bool,
    pub(crate) max_document_bytes: u64,
    pub(crate) max_room_bytes: Option<u64>,
    pub(crate) documents: DocumentPolicy,
    pub(crate) whole_inspections: usize,
    pub(crate) delivery: DeliveryConfig,
    pub(crate) max_conflict_retries: u32,
    pub(crate) state_cache_rooms: usize,
    pub(crate) orphan_grace: Duration,
    retention: Option<Duration>,
    tenant_retentions: HashMap<TenantId, Option<Duration>>,
    pub(crate) session_idle: Duration,
    pub(crate) session_lifetime: Duration,
    pub(crate) typing_interval: Duration,
    pub(crate) alert_after: Duration,
    pub(crate) customer_reminders: bool,
    reminder_templates: Option<InviteTemplates>,
    pub(crate) existing_customer: ExistingCustomer,
    pub(crate) settings_refresh: Duration,
}

/// What an SMS or email invite does when its mobile number or email address is already the
/// customer's in another room of the tenant (one that is not merged or erased).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExistingCustomer {
    /// Invite here too: the customer then has two rooms. The default, as before merging
    /// existed, so that a host's invites do not start failing on an upgrade.
    #[default]
    InviteHere,
    /// Refuse with [`Error::CustomerHasRoom`], naming that room, and change nothing: the agent
    /// opens it, or merges ([`Rooms::merge_rooms`](super::Rooms::merge_rooms)).
    Answer,
    /// Invite here, then merge that room (each, if several) into this one
    /// ([`InviteIssued::merged`](super::InviteIssued::merged)).
    Merge,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8080".to_owned(),
            join_path: "/join/".to_owned(),
            policy: Policy::default(),
            templates: InviteTemplates::default(),
            localized_templates: BTreeMap::new(),
            default_locale: Locale::english(),
            tenant_locales: HashMap::new(),
            browser_locale: false,
            max_document_bytes: Self::DEFAULT_MAX_DOCUMENT_BYTES,
            max_room_bytes: None,
            documents: DocumentPolicy::default(),
            whole_inspections: 2,
            delivery: DeliveryConfig::default(),
            max_conflict_retries: 8,
            state_cache_rooms: 4_096,
            orphan_grace: Duration::from_secs(3600),
            retention: None,
            tenant_retentions: HashMap::new(),
            session_idle: Self::DEFAULT_SESSION_IDLE,
            session_lifetime: Self::DEFAULT_SESSION_LIFETIME,
            typing_interval: Self::DEFAULT_TYPING_INTERVAL,
            alert_after: Self::DEFAULT_ALERT_AFTER,
            customer_reminders: false,
            reminder_templates: None,
            existing_customer: ExistingCustomer::default(),
            settings_refresh: Self::DEFAULT_SETTINGS_REFRESH,
        }
    }
}

impl RoomsConfig {
    /// 25 MiB.
    pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 25 * 1024 * 1024;

    /// A customer session ends after 120 days without the customer doing anything (joining,
    /// posting, sharing): longer than a room's default inactivity timeout (90 days), so that a
    /// timed-out room stays readable for its customer a while, as the product promises.
    pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(120 * 24 * 3600);

    /// A customer session ends a year after the customer joined, however active.
    pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

    /// How long a customer session lasts: it ends once the customer has done nothing in the room
    /// through it (joined, posted, shared a document) for `idle`, or `lifetime` after they
    /// joined, whichever comes first ([`DEFAULT_SESSION_IDLE`](Self::DEFAULT_SESSION_IDLE),
    /// [`DEFAULT_SESSION_LIFETIME`](Self::DEFAULT_SESSION_LIFETIME)). Then
    /// [`Rooms::customer_session`](super::Rooms::customer_session) refuses its token, and the
    /// customer opens their invite link again (or is sent a new one). `idle` is at least an
    /// hour, and at most `lifetime`.
    pub fn with_customer_sessions(mut self, idle: Duration, lifetime: Duration) -> Result<Self, Error> {
        if idle < Duration::from_secs(3600) {
            return Err(Error::invalid("idle", "must be at least an hour"));
        }
        if lifetime < idle {
            return Err(Error::invalid("lifetime", "must be at least the idle timeout"));
        }
        self.session_idle = idle;
        self.session_lifetime = lifetime;
        Ok(self)
    }

    /// A participant's typing signals pass at most once per 2 s.
    pub const DEFAULT_TYPING_INTERVAL: Duration = Duration::from_secs(2);

    /// How often each participant's typing signals pass ([`Rooms::typing`](super::Rooms::typing)):
    /// those that come sooner after the last one passed are dropped. From 250 ms to 5 s, so
    /// that an indicator is renewed before it expires
    /// ([`Typing::EXPIRES_AFTER`](crate::transport::Typing::EXPIRES_AFTER)).
    pub fn with_typing_interval(mut self, interval: Duration) -> Result<Self, Error> {
        if interval < Duration::from_millis(250) || interval > Duration::from_secs(5) {
            return Err(Error::invalid("typing_interval", "must be from 250 ms to 5 s"));
        }
        self.typing_interval = interval;
        Ok(self)
    }

    /// A customer's message waits 5 minutes unread before the room's agent is alerted.
    pub const DEFAULT_ALERT_AFTER: Duration = Duration::from_secs(5 * 60);

    /// How long the customer's messages and documents wait unread before the room's agent is
    /// alerted (and the agents' before the customer is reminded, when
    /// [reminders](Self::with_customer_reminders) are on), and so the least time between two
    /// alerts, or two reminders, of a room ([`crate::alert`]). From 10 s to a day.
    pub fn with_alert_after(mut self, quiet: Duration) -> Result<Self, Error> {
        if quiet < Duration::from_secs(10) || quiet > Duration::from_secs(24 * 3600) {
            return Err(Error::invalid("alert_after", "must be from 10 s to a day"));
        }
        self.alert_after = quiet;
        Ok(self)
    }

    /// Whether the customer is reminded, by a new invite through their SMS or email channel,
    /// when the agents' messages wait unread for the quiet period ([`crate::alert`]). Off by
    /// default: each reminder is an SMS or an email the deployment pays for.
    pub fn with_customer_reminders(mut self, on: bool) -> Self {
        self.customer_reminders = on;
        self
    }

    /// A server reads a tenant's settings again 5 s after it last did.
    pub const DEFAULT_SETTINGS_REFRESH: Duration = Duration::from_secs(5);

    /// How long a server uses a tenant's settings before it reads them again
    /// ([`Rooms::change_settings`](super::Rooms::change_settings)): how soon another server's
    /// change applies here. The server that makes a change applies it at once. From 0 (read
    /// them for every command) to 10 minutes.
    pub fn with_settings_refresh(mut self, refresh: Duration) -> Result<Self, Error> {
        if refresh > Duration::from_secs(600) {
            return Err(Error::invalid("settings_refresh", "must be at most 10 minutes"));
        }
        self.settings_refresh = refresh;
        Ok(self)
    }

    /// What an invite to a customer who has another room of the tenant does
    /// ([`ExistingCustomer`]; by default, [`ExistingCustomer::InviteHere`]).
    pub fn with_existing_customer(mut self, existing: ExistingCustomer) -> Self {
        self.existing_customer = existing;
        self
    }

    /// The texts of reminders, instead of the library's
    /// ([`InviteTemplates::reminder`], in the customer's or the tenant's language).
    pub fn with_reminder_templates(mut self, templates: InviteTemplates) -> Self {
        self.reminder_templates = Some(templates);
        self
    }

    /// The texts of a reminder in `locale` (else the tenant's language) for `tenant`.
    pub(crate) fn reminder_templates(&self, locale: Option<&Locale>, tenant: &TenantId) -> InviteTemplates {
        if let Some(templates) = &self.reminder_templates {
            return templates.clone();
        }
        let locale = locale
            .or_else(|| self.tenant_locales.get(tenant))
            .unwrap_or(&self.default_locale);
        InviteTemplates::reminder(locale)
    }

    /// The shortest retention accepted: one day.
    pub const MIN_RETENTION: Duration = Duration::from_secs(24 * 3600);

    /// How long rooms are kept after they time out, close or are erased, before
    /// [`Rooms::sweep_retention`](super::Rooms::sweep_retention) purges them; by default they are
    /// kept for ever. At least [`MIN_RETENTION`](Self::MIN_RETENTION).
    pub fn with_retention(mut self, retention: Duration) -> Result<Self, Error> {
        self.retention = Some(checked_retention(retention)?);
        Ok(self)
    }

    /// A tenant's own retention, instead of the deployment's: `Some` period (at least
    /// [`MIN_RETENTION`](Self::MIN_RETENTION)), or `None` to keep its rooms for ever.
    pub fn with_tenant_retention(mut self, tenant: TenantId, retention: Option<Duration>) -> Result<Self, Error> {
        let retention = retention.map(checked_retention).transpose()?;
        self.tenant_retentions.insert(tenant, retention);
        Ok(self)
    }

    /// The deployment's retention, if any.
    pub fn retention(&self) -> Option<Duration> {
        self.retention
    }

    /// The tenants with a retention of their own.
    pub fn tenant_retentions(&self) -> impl Iterator<Item = (&TenantId, Option<Duration>)> {
        self.tenant_retentions
            .iter()
            .map(|(tenant, retention)| (tenant, *retention))
    }

    /// Where links point: `http(s)://host[:port][/prefix]`, without a trailing slash.
    pub fn with_base_url(mut self, url: &str) -> Result<Self, Error> {
        let url = url.trim().trim_end_matches('/');
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        let valid = rest.is_some_and(|r| {
            !r.is_empty() && !r.starts_with('/') && r.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#'))
        });
        if !valid {
            return Err(Error::invalid(
                "base_url",
                "must be an http:// or https:// URL without query or fragment",
            ));
        }
        self.base_url = url.to_owned();
        Ok(self)
    }

    /// The path between the base URL and the token: `/join/` by default.
    pub fn with_join_path(mut self, path: &str) -> Result<Self, Error> {
        let safe = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
        if !path.starts_with('/') || !path.ends_with('/') || !safe || path.contains("//") {
            return Err(Error::invalid(
                "join_path",
                "must start and end with / and hold only letters, digits and -_.",
            ));
        }
        self.join_path = path.to_owned();
        Ok(self)
    }

    /// The room rules (timeouts, invite lifetime, message length, Get Link policy). Whether SMS
    /// is activated is not taken from here: it is, exactly when an SMS notifier is configured.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The invite texts used when no locale's texts apply (English by default).
    pub fn with_templates(mut self, templates: InviteTemplates) -> Self {
        self.templates = templates;
        self
    }

    /// The invite texts for `locale` (for its language too, when no texts name a region: `es`
    /// serves `es-MX`). [`InviteTemplates::built_in`] has Spanish and Hebrew ones.
    ///
    /// An invite's text follows the first of these that has texts: the locale the agent chose
    /// for the invite, the tenant's ([`with_tenant_locale`](Self::with_tenant_locale)), the
    /// default ([`with_default_locale`](Self::with_default_locale)); else
    /// [`with_templates`](Self::with_templates)' texts.
    ///
    /// ```
    /// use collab_core::notify::InviteTemplates;
    /// use collab_core::rooms::RoomsConfig;
    /// use collab_core::{Locale, TenantId};
    ///
    /// let es = Locale::parse("es")?;
    /// let acme = TenantId::new("acme")?;
    /// let config = RoomsConfig::default()
    ///     .with_templates_for(es.clone(), InviteTemplates::built_in(&es).expect("shipped"))
    ///     .with_tenant_locale(acme.clone(), es.clone());
    /// let texts = config.invite_templates(None, &acme);
    /// assert_eq!(texts.email_subject("Ana"), "Su sala de colaboración");
    /// let english = config.invite_templates(Some(&Locale::parse("en")?), &TenantId::new("other")?);
    /// assert_eq!(english, &InviteTemplates::default());
    /// # Ok::<(), collab_core::Error>(())
    /// ```
    pub fn with_templates_for(mut self, locale: Locale, templates: InviteTemplates) -> Self {
        self.localized_templates.insert(locale, templates);
        self
    }

    /// The deployment's locale, for tenants without their own: `en` by default.
    pub fn with_default_locale(mut self, locale: Locale) -> Self {
        self.default_locale = locale;
        self
    }

    /// `tenant`'s locale: its invites' texts and its customer pages follow it unless an invite
    /// names another.
    pub fn with_tenant_locale(mut self, tenant: TenantId, locale: Locale) -> Self {
        self.tenant_locales.insert(tenant, locale);
        self
    }

    /// Whether a host's customer page may follow the customer's browser language instead of
    /// the tenant's locale (when the page has that language): off by default. The library
    /// itself does not read it; it is here so that a host keeps its locale settings in one place.
    pub fn with_browser_locale(mut self, allowed: bool) -> Self {
        self.browser_locale = allowed;
        self
    }

    /// The deployment's locale.
    pub fn default_locale(&self) -> &Locale {
        &self.default_locale
    }

    /// `tenant`'s locale, or the deployment's.
    pub fn tenant_locale(&self, tenant: &TenantId) -> &Locale {
        self.tenant_locales.get(tenant).unwrap_or(&self.default_locale)
    }

    /// Whether customer pages may follow the browser's language.
    pub fn browser_locale(&self) -> bool {
        self.browser_locale
    }

    /// The invite texts for an invite of `tenant` whose agent chose `locale` (or none), as
    /// [`with_templates_for`](Self::with_templates_for) says.
    pub fn invite_templates(&self, locale: Option<&Locale>, tenant: &TenantId) -> &InviteTemplates {
        let tenant_locale = self.tenant_locales.get(tenant);
        [locale, tenant_locale, Some(&self.default_locale)]
            .into_iter()
            .flatten()
            .find_map(|locale| self.templates_of(locale))
            .unwrap_or(&self.templates)
    }

    /// The texts for `locale`, or for its language alone.
    fn templates_of(&self, locale: &Locale) -> Option<&InviteTemplates> {
        self.localized_templates.get(locale).or_else(|| {
            self.localized_templates
                .iter()
                .find(|(given, _)| given.as_str() == locale.language())
                .map(|(_, templates)| templates)
        })
    }

    /// The largest document accepted: 1 byte to 1 GiB, 25 MiB by default.
    pub fn with_max_document_bytes(mut self, max: u64) -> Result<Self, Error> {
        if max == 0 || max > 1 << 30 {
            return Err(Error::invalid("max_document_bytes", "must be from 1 byte to 1 GiB"));
        }
        self.max_document_bytes = max;
        Ok(self)
    }

    /// The most bytes of documents one room keeps (at least 1 byte); no quota by default.
    ///
    /// A share that would take the room past it is refused with [`Error::QuotaExceeded`] and
    /// nothing is kept: at once when the room is full, else while the bytes arrive (the upload's
    /// limit is lowered to what the room has left, so a stream too large is cut at that byte),
    /// and checked again as the document is recorded, so that uploads running side by side
    /// cannot together pass it. The room's use is the sum of its documents' sizes, as its
    /// events record them ([`RoomState::document_bytes`](crate::RoomState::document_bytes)): it
    /// holds across restarts and needs no counter.
    pub fn with_max_room_bytes(mut self, max: u64) -> Result<Self, Error> {
        if max == 0 {
            return Err(Error::invalid("max_room_bytes", "must be at least 1 byte"));
        }
        self.max_room_bytes = Some(max);
        Ok(self)
    }

    /// What documents are accepted (types, image and PDF limits, display names).
    pub fn with_documents(mut self, documents: DocumentPolicy) -> Self {
        self.documents = documents;
        self
    }

    /// How many uploads are inspected whole at once (PDFs for their page count, documents whose
    /// first 64 KiB did not tell their type): 1 to 64, 2 by default. Each holds up to
    /// [`RoomsConfig::max_document_bytes`] in memory meanwhile.
    pub fn with_whole_inspections(mut self, parses: usize) -> Result<Self, Error> {
        if parses == 0 || parses > 64 {
            return Err(Error::invalid("whole_inspections", "must be from 1 to 64"));
        }
        self.whole_inspections = parses;
        Ok(self)
    }

    /// How invites are delivered and retried.
    pub fn with_delivery(mut self, delivery: DeliveryConfig) -> Self {
        self.delivery = delivery;
        self
    }

    /// How many times a command is decided again when another writer got to the room first:
    /// 1 to 100, 8 by default.
    pub fn with_max_conflict_retries(mut self, retries: u32) -> Result<Self, Error> {
        if retries == 0 || retries > 100 {
            return Err(Error::invalid("max_conflict_retries", "must be from 1 to 100"));
        }
        self.max_conflict_retries = retries;
        Ok(self)
    }

    /// How many rooms' states are kept in memory between commands (0 turns the cache off):
    /// 4,096 by default. A cached state is always brought up to date from the store before use.
    pub fn with_state_cache_rooms(mut self, rooms: usize) -> Self {
        self.state_cache_rooms = rooms;
        self
    }

    /// How old a stored document that no event names must be before
    /// [`Rooms::sweep_orphan_documents`](super::Rooms::sweep_orphan_documents) deletes it:
    /// 1 minute to 7 days, 1 hour by default. An upload is recorded only if its bytes were
    /// stored less than half of this ago, so that the sweep never races an upload under way;
    /// keep it well above the time an upload takes from its last byte to its event.
    pub fn with_orphan_grace(mut self, grace: Duration) -> Result<Self, Error> {
        if grace < Duration::from_secs(60) || grace > Duration::from_secs(7 * 24 * 3600) {
            return Err(Error::invalid("orphan_grace", "must be from 1 minute to 7 days"));
        }
        self.orphan_grace = grace;
        Ok(self)
    }

    /// The invite link for `token`.
    pub fn invite_link(&self, token: &str) -> String {
        format!("{}{}{token}", self.base_url, self.join_path)
    }

    /// The room rules.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The largest document accepted, in bytes.
    pub fn max_document_bytes(&self) -> u64 {
        self.max_document_bytes
    }

    /// The most bytes of documents one room keeps, if there is a quota.
    pub fn max_room_bytes(&self) -> Option<u64> {
        self.max_room_bytes
    }
}

/// How the dispatcher delivers invites from the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryConfig {
    pub(crate) max_attempts: u32,
    pub(crate) first_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) lease: Duration,
    pub(crate) batch: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) stats_interval: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(30 * 60),
            lease: Duration::from_secs(60),
            batch: 32,
            poll_interval: Duration::from_secs(1),
            stats_interval: Duration::from_secs(10),
        }
    }
}

impl DeliveryConfig {
    /// Attempts per invite before it is recorded as failed: 1 to 20, 5 by default. An attempt
    /// whose outcome is ambiguous counts, so this also bounds duplicate sends.
    pub fn with_max_attempts(mut self, attempts: u32) -> Result<Self, Error> {
        if attempts == 0 || attempts > 20 {
            return Err(Error::invalid("max_attempts", "must be from 1 to 20"));
        }
        self.max_attempts = attempts;
        Ok(self)
    }

    /// The wait after the first transient failure, doubling after each next one up to
    /// `max` (at most a day), with up to 25% random jitter added: 10 s and 30 min by default.
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Result<Self, Error> {
        if first.is_zero() || first > max || max > Duration::from_secs(24 * 60 * 60) {
            return Err(Error::invalid(
                "backoff",
                "first must be positive, at most max, and max at most a day",
            ));
        }
        self.first_backoff = first;
        self.max_backoff = max;
        Ok(self)
    }

    /// How long a dispatcher holds a claimed invite before another may take it over (it must
    /// exceed a provider call's timeout): at least 5 s, 60 s by default.
    pub fn with_lease(mut self, lease: Duration) -> Result<Self, Error> {
        if lease < Duration::from_secs(5) {
            return Err(Error::invalid("lease", "must be at least 5 seconds"));
        }
        self.lease = lease;
        Ok(self)
    }

    /// Invites claimed per pass (1 to 1,000, 32 by default) and the pause between passes when
    /// the outbox is empty (10 ms to 1 hour, 1 s by default).
    pub fn with_batch(mut self, batch: usize, poll_interval: Duration) -> Result<Self, Error> {
        if batch == 0 || batch > 1_000 {
            return Err(Error::invalid("batch", "must be from 1 to 1000"));
        }
        if poll_interval < Duration::from_millis(10) || poll_interval > Duration::from_secs(3600) {
            return Err(Error::invalid("poll_interval", "must be from 10 ms to 1 hour"));
        }
        self.batch = batch;
        self.poll_interval = poll_interval;
        Ok(self)
    }

    /// How often the dispatcher refreshes the outbox gauges (`collab_outbox_*`, one query to
    /// the store; [`crate::metrics`]): 100 ms to 1 hour, 10 s by default. It looks when it
    /// wakes for a pass, so no more often than the poll interval.
    pub fn with_stats_interval(mut self, interval: Duration) -> Result<Self, Error> {
        if interval < Duration::from_millis(100) || interval > Duration::from_secs(3600) {
            return Err(Error::invalid("stats_interval", "must be from 100 ms to 1 hour"));
        }
        self.stats_interval = interval;
        Ok(self)
    }
}

fn checked_retention(retention: Duration) -> Result<Duration, Error> {
    if retention < RoomsConfig::MIN_RETENTION {
        return Err(Error::invalid("retention", "must be at least one day"));
    }
    Ok(retention)
}
