//! Protection against SMS pumping and invite spam: an [`InviteGuard`] over a [`CounterStore`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use collab_core::guard::{CounterStore, Hit, InviteAttempt, InviteGuard, MAX_COUNTER_WINDOW};
use collab_core::{Clock, Error, PhoneNumber, Recipient, RoomId, Rule, SystemClock, TenantId, Timestamp};
use phonenumber::Type;
use phonenumber::metadata::DATABASE;

const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// At most `count` hits within any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    count: u32,
    window: Duration,
}

impl Limit {
    /// `count` (at least 1) per `window` (1 s to 31 days).
    pub fn new(count: u32, window: Duration) -> Result<Self, Error> {
        if count == 0 {
            return Err(Error::invalid("limit", "the count must be at least 1"));
        }
        if window < Duration::from_secs(1) || window > MAX_COUNTER_WINDOW {
            return Err(Error::invalid("limit", "the window must be from 1 s to 31 days"));
        }
        Ok(Self { count, window })
    }

    /// `count` per hour.
    pub fn per_hour(count: u32) -> Result<Self, Error> {
        Self::new(count, HOUR)
    }

    /// `count` per day.
    pub fn per_day(count: u32) -> Result<Self, Error> {
        Self::new(count, DAY)
    }

    /// The count.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// What [`SmsAbuseGuard`] allows. The defaults:
///
/// | limit | default | applies to |
/// |---|---|---|
/// | per recipient (number or address) | 3 per hour | SMS, email |
/// | cool-down between invites to one recipient | 1 min, doubling with each invite of the last 24 h, at most 6 h | SMS, email |
/// | per number block (numbers equal but for the last 3 digits) | 10 per hour | SMS |
/// | per room | 10 per day | SMS, email |
/// | per agent | 50 per hour | SMS, email |
/// | per tenant | 1,000 SMS per day | SMS |
/// | countries | all | SMS |
/// | number types | refuse fixed-line, premium-rate, toll-free, shared-cost, UAN and voicemail numbers; allow mobile, "fixed line or mobile" (where the plan cannot tell), VoIP, personal, pager and unknown | SMS |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbuseLimits {
    per_recipient: Limit,
    per_block: Limit,
    block_digits: u8,
    per_room: Limit,
    per_agent: Limit,
    tenant_daily_sms: u32,
    cooldown_first: Duration,
    cooldown_max: Duration,
    countries: Option<BTreeSet<String>>,
    refuse_non_mobile: bool,
}

impl Default for AbuseLimits {
    fn default() -> Self {
        Self {
            per_recipient: Limit { count: 3, window: HOUR },
            per_block: Limit {
                count: 10,
                window: HOUR,
            },
            block_digits: 3,
            per_room: Limit { count: 10, window: DAY },
            per_agent: Limit {
                count: 50,
                window: HOUR,
            },
            tenant_daily_sms: 1_000,
            cooldown_first: Duration::from_secs(60),
            cooldown_max: Duration::from_secs(6 * 60 * 60),
            countries: None,
            refuse_non_mobile: true,
        }
    }
}

/// How far back the cool-down looks.
const COOLDOWN_MEMORY: Duration = DAY;

impl AbuseLimits {
    /// Invites to one number or address.
    pub fn with_per_recipient(mut self, limit: Limit) -> Self {
        self.per_recipient = limit;
        self
    }

    /// SMS to one block of numbers: those equal but for their last `trailing_digits` (1 to 6).
    /// SMS pumping walks through consecutive numbers; this is what stops it.
    pub fn with_per_block(mut self, limit: Limit, trailing_digits: u8) -> Result<Self, Error> {
        if !(1..=6).contains(&trailing_digits) {
            return Err(Error::invalid("trailing_digits", "must be from 1 to 6"));
        }
        self.per_block = limit;
        self.block_digits = trailing_digits;
        Ok(self)
    }

    /// Invites in one room.
    pub fn with_per_room(mut self, limit: Limit) -> Self {
        self.per_room = limit;
        self
    }

    /// Invites by one agent.
    pub fn with_per_agent(mut self, limit: Limit) -> Self {
        self.per_agent = limit;
        self
    }

    /// SMS per tenant per day (at least 1).
    pub fn with_tenant_daily_sms(mut self, count: u32) -> Result<Self, Error> {
        if count == 0 {
            return Err(Error::invalid("tenant_daily_sms", "must be at least 1"));
        }
        self.tenant_daily_sms = count;
        Ok(self)
    }

    /// The cool-down after an invite to a recipient: `first` after the first invite of the last
    /// 24 hours, doubling with each further one, never more than `max` (at most a day).
    pub fn with_cooldown(mut self, first: Duration, max: Duration) -> Result<Self, Error> {
        if first > max || max > DAY {
            return Err(Error::invalid(
                "cooldown",
                "first must be at most max, and max at most a day",
            ));
        }
        self.cooldown_first = first;
        self.cooldown_max = max;
        Ok(self)
    }

    /// SMS only to numbers of these regions (ISO 3166 codes such as `"FR"`), as the numbering
    /// plan assigns them; all by default. Mind regions sharing a country code: some `+44`
    /// numbers belong to `GG`, `JE` or `IM` rather than `GB`.
    pub fn with_countries<'a>(mut self, countries: impl IntoIterator<Item = &'a str>) -> Result<Self, Error> {
        let mut allowed = BTreeSet::new();
        for country in countries {
            let code = country.trim().to_ascii_uppercase();
            if code.parse::<phonenumber::country::Id>().is_err() {
                return Err(Error::invalid(
                    "countries",
                    format!("{country:?} is not a country code"),
                ));
            }
            allowed.insert(code);
        }
        if allowed.is_empty() {
            return Err(Error::invalid("countries", "name at least one country"));
        }
        self.countries = Some(allowed);
        Ok(self)
    }

    /// Whether numbers the numbering plan marks as not mobile are refused (on by default).
    pub fn with_refuse_non_mobile(mut self, refuse: bool) -> Self {
        self.refuse_non_mobile = refuse;
        self
    }

    /// Invites to one number or address.
    pub fn per_recipient(&self) -> Limit {
        self.per_recipient
    }

    /// SMS to one block of numbers, and how many trailing digits vary within a block.
    pub fn per_block(&self) -> (Limit, u8) {
        (self.per_block, self.block_digits)
    }

    /// Invites in one room.
    pub fn per_room(&self) -> Limit {
        self.per_room
    }

    /// Invites by one agent.
    pub fn per_agent(&self) -> Limit {
        self.per_agent
    }

    /// SMS per tenant per day.
    pub fn tenant_daily_sms(&self) -> u32 {
        self.tenant_daily_sms
    }

    fn cooldown_after(&self, invites: usize) -> Duration {
        let doublings = u32::try_from(invites.saturating_sub(1)).unwrap_or(u32::MAX).min(30);
        self.cooldown_first
            .saturating_mul(1 << doublings)
            .min(self.cooldown_max)
    }
}

/// Invites and joins of a tenant, for alerting: many SMS invites and few joins is what SMS
/// pumping looks like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InviteStats {
    /// SMS and email invites admitted.
    pub invited: u32,
    /// Of those, SMS.
    pub sms: u32,
    /// Customers who joined (through any invite, links included).
    pub joined: u32,
}

impl InviteStats {
    /// Joins per admitted invite, when there were invites.
    pub fn join_rate(&self) -> Option<f64> {
        (self.invited > 0).then(|| f64::from(self.joined) / f64::from(self.invited))
    }
}

/// An [`InviteGuard`] against SMS pumping and invite spam, counting in a [`CounterStore`] so
/// that the limits hold across restarts and processes when the store is durable and shared
/// (`collab-store-sqlite`'s store is one).
///
/// Each refusal is [`Error::RateLimited`] with the time after which the same invite would pass,
/// or [`Error::NotAllowed`] for a country or number type that is never allowed; the core then
/// records nothing and calls no provider. Checks run from the most specific to the broadest
/// (recipient, number block, room, agent, tenant), and every check that passed counts even when
/// a later one refuses: a refused attempt may use up quota, never the other way round, and an
/// attacker hammering one number cannot use up the tenant's daily quota.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use collab_core::guard::MemoryCounterStore;
/// use collab_core::notify::RecordingNotifier;
/// use collab_core::rooms::{InviteRequest, Rooms};
/// use collab_core::*;
/// use collab_notify::abuse::{AbuseLimits, Limit, SmsAbuseGuard};
///
/// let limits = AbuseLimits::default().with_per_recipient(Limit::per_hour(1)?).with_countries(["FR"])?;
/// let guard = std::sync::Arc::new(SmsAbuseGuard::new(MemoryCounterStore::new()).with_limits(limits));
/// let rooms = Rooms::builder().sms(RecordingNotifier::new()).invite_guard(guard.clone()).build();
/// let agent = Actor::Agent { tenant: TenantId::new("acme")?, agent: AgentId::new("ada")? };
///
/// let room = rooms.create_room(&agent).await?.room;
/// rooms.invite(&agent, room, InviteRequest::sms("Grace", "Hopper", "+33612345678")).await?;
/// let again = rooms.invite(&agent, room, InviteRequest::again(Channel::Sms, None)).await;
/// assert!(matches!(again, Err(Error::RateLimited { .. })));
///
/// let other = rooms.create_room(&agent).await?.room;
/// let abroad = rooms.invite(&agent, other, InviteRequest::sms("Ann", "Lee", "+12025550123")).await;
/// assert!(matches!(abroad, Err(Error::NotAllowed { .. })));
///
/// let stats = guard.stats(&TenantId::new("acme")?, Timestamp::EPOCH).await?;
/// assert_eq!((stats.invited, stats.sms, stats.joined), (1, 1, 0));
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub struct SmsAbuseGuard {
    store: Arc<dyn CounterStore>,
    limits: AbuseLimits,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SmsAbuseGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsAbuseGuard")
            .field("store", &self.store)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Counter keys: namespaced, with host-supplied ids length-prefixed so that no two keys collide.
mod key {
    use collab_core::{AgentId, RoomId, TenantId};
    use sha2::{Digest, Sha256};

    /// A recipient's counters are keyed by a hash of the address, so that the counter store
    /// holds no phone number or email address (erasure removes them from everywhere else).
    fn hashed(kind: &str, personal: &str) -> String {
        let digest = Sha256::digest(personal.as_bytes());
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("collab-notify:{kind}:{hex}")
    }

    pub(super) fn recipient(recipient: &str) -> String {
        hashed("to", recipient)
    }

    pub(super) fn cooldown(recipient: &str) -> String {
        hashed("cooldown", recipient)
    }

    pub(super) fn block(prefix: &str) -> String {
        hashed("block", prefix)
    }

    pub(super) fn room(room: RoomId) -> String {
        format!("collab-notify:room:{room}")
    }

    pub(super) fn agent(tenant: &TenantId, agent: &AgentId) -> String {
        format!("collab-notify:agent:{}:{tenant}:{agent}", tenant.as_str().len())
    }

    pub(super) fn tenant_sms(tenant: &TenantId) -> String {
        format!("collab-notify:tenant-sms:{tenant}")
    }

    pub(super) fn invited(tenant: &TenantId) -> String {
        format!("collab-notify:invited:{tenant}")
    }

    pub(super) fn joined(tenant: &TenantId) -> String {
        format!("collab-notify:joined:{tenant}")
    }
}

impl SmsAbuseGuard {
    /// A guard with [`AbuseLimits::default`], counting in `store`.
    pub fn new(store: impl CounterStore) -> Self {
        Self {
            store: Arc::new(store),
            limits: AbuseLimits::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The clock that stamps joins (give it the service's clock). Invites are stamped with the
    /// time of the attempt.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Other limits.
    pub fn with_limits(mut self, limits: AbuseLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &AbuseLimits {
        &self.limits
    }

    /// Deletes the counted hits older than any window ([`MAX_COUNTER_WINDOW`]) from the
    /// counter store: those of numbers, rooms and agents never invited again would otherwise
    /// stay for ever. Returns how many went. Schedule it (daily is plenty); a store without
    /// [`CounterStore::forget_before`] answers [`Error::Unsupported`].
    pub async fn forget_old_hits(&self) -> Result<u64, Error> {
        let before = self.clock.now().saturating_sub(MAX_COUNTER_WINDOW);
        let forgotten = self.store.forget_before(before).await?;
        if forgotten > 0 {
            tracing::info!(forgotten, "old abuse-guard counts forgotten");
        }
        Ok(forgotten)
    }

    /// Invites admitted and joins of `tenant` from `since` on (counters reach back 31 days).
    pub async fn stats(&self, tenant: &TenantId, since: Timestamp) -> Result<InviteStats, Error> {
        // The store counts strictly after its bound.
        let since = since.saturating_sub(Duration::from_millis(1));
        let count = |v: Vec<Timestamp>| u32::try_from(v.len()).unwrap_or(u32::MAX);
        Ok(InviteStats {
            invited: count(self.store.recent(&key::invited(tenant), since).await?),
            sms: count(self.store.recent(&key::tenant_sms(tenant), since).await?),
            joined: count(self.store.recent(&key::joined(tenant), since).await?),
        })
    }

    async fn hit(&self, key: &str, now: Timestamp, limit: Limit, what: &'static str) -> Result<(), Error> {
        match self.store.hit(key, now, limit.window, limit.count).await? {
            Hit::Counted { .. } => Ok(()),
            Hit::Refused { retry_after } => {
                tracing::info!(limit = what, ?retry_after, "invite refused by a rate limit");
                Err(Error::RateLimited {
                    retry_after: retry_after.max(Duration::from_secs(1)),
                })
            }
        }
    }

    /// A record that is always counted (statistics, the cool-down's memory).
    async fn record(&self, key: &str, now: Timestamp, window: Duration) -> Result<(), Error> {
        self.store.hit(key, now, window, u32::MAX).await.map(|_| ())
    }

    fn check_number(&self, number: &PhoneNumber) -> Result<(), Error> {
        let parsed =
            phonenumber::parse(None, number.as_str()).map_err(|_| Error::invalid("phone", "not a phone number"))?;
        if let Some(allowed) = &self.limits.countries {
            let country = parsed.country().id().map(|id| id.as_ref().to_owned());
            if !country.as_ref().is_some_and(|c| allowed.contains(c)) {
                tracing::info!(country = ?country, "SMS invite refused: country not allowed");
                return Err(Error::NotAllowed {
                    reason: Rule::SmsCountry,
                });
            }
        }
        if self.limits.refuse_non_mobile {
            let kind = parsed.number_type(&DATABASE);
            let refused = matches!(
                kind,
                Type::FixedLine
                    | Type::PremiumRate
                    | Type::TollFree
                    | Type::SharedCost
                    | Type::Uan
                    | Type::Voicemail
                    | Type::Emergency
                    | Type::ShortCode
            );
            if refused {
                tracing::info!(?kind, "SMS invite refused: not a mobile number");
                return Err(Error::NotAllowed {
                    reason: Rule::SmsNotMobile,
                });
            }
        }
        Ok(())
    }

    /// The cool-down: refused until the last invite to `recipient` is old enough.
    async fn check_cooldown(&self, recipient: &str, now: Timestamp) -> Result<(), Error> {
        let recent = self
            .store
            .recent(&key::cooldown(recipient), now.saturating_sub(COOLDOWN_MEMORY))
            .await?;
        let Some(last) = recent.last() else {
            return Ok(());
        };
        let ready = last.saturating_add(self.limits.cooldown_after(recent.len()));
        if ready > now {
            let retry_after = ready.since(now).max(Duration::from_secs(1));
            tracing::info!(?retry_after, "invite refused: cool-down");
            return Err(Error::RateLimited { retry_after });
        }
        Ok(())
    }

    fn block_of(&self, number: &PhoneNumber) -> String {
        let digits = number.as_str();
        let keep = digits
            .len()
            .saturating_sub(usize::from(self.limits.block_digits))
            .max(1);
        digits.get(..keep).unwrap_or(digits).to_owned()
    }
}

#[async_trait]
impl InviteGuard for SmsAbuseGuard {
    async fn admit(&self, attempt: &InviteAttempt<'_>) -> Result<(), Error> {
        let now = attempt.now;
        let limits = &self.limits;
        // One key per mailbox: `Victim@x.com` and `vIctim@x.com` share a cool-down and a count.
        // Numbers are E.164 already.
        let (recipient, number) = match attempt.recipient {
            Recipient::Phone(number) => (number.to_string(), Some(number)),
            Recipient::Email(address) => (address.match_key(), None),
        };
        if let Some(number) = number {
            self.check_number(number)?;
        }
        self.check_cooldown(&recipient, now).await?;
        self.hit(&key::recipient(&recipient), now, limits.per_recipient, "recipient")
            .await?;
        if let Some(number) = number {
            let block = key::block(&self.block_of(number));
            self.hit(&block, now, limits.per_block, "number block").await?;
        }
        self.hit(&key::room(attempt.room), now, limits.per_room, "room").await?;
        self.hit(
            &key::agent(attempt.tenant, attempt.agent),
            now,
            limits.per_agent,
            "agent",
        )
        .await?;
        if number.is_some() {
            let daily = Limit {
                count: limits.tenant_daily_sms,
                window: DAY,
            };
            self.hit(&key::tenant_sms(attempt.tenant), now, daily, "tenant daily SMS")
                .await?;
        }
        self.record(&key::cooldown(&recipient), now, COOLDOWN_MEMORY).await?;
        self.record(&key::invited(attempt.tenant), now, MAX_COUNTER_WINDOW)
            .await
    }

    async fn joined(&self, tenant: &TenantId, room: RoomId) {
        let now = self.clock.now();
        if let Err(e) = self.record(&key::joined(tenant), now, MAX_COUNTER_WINDOW).await {
            tracing::warn!(%tenant, %room, error = %e, "could not count a join");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cooldown_doubles_up_to_its_cap() {
        let limits = AbuseLimits::default();
        assert_eq!(limits.cooldown_after(1), Duration::from_secs(60));
        assert_eq!(limits.cooldown_after(2), Duration::from_secs(120));
        assert_eq!(limits.cooldown_after(4), Duration::from_secs(480));
        assert_eq!(limits.cooldown_after(1_000), Duration::from_secs(6 * 3600));
    }

    #[test]
    fn limits_are_checked() {
        assert!(Limit::new(0, HOUR).is_err());
        assert!(Limit::new(1, Duration::from_secs(32 * 86_400)).is_err());
        assert!(AbuseLimits::default().with_countries(["XX"]).is_err());
        assert!(AbuseLimits::default().with_countries([]).is_err());
        assert!(AbuseLimits::default().with_countries(["gb", "IE"]).is_ok());
        assert!(
            AbuseLimits::default()
                .with_per_block(Limit::per_hour(1).expect("valid"), 7)
                .is_err()
        );
        assert!(AbuseLimits::default().with_cooldown(DAY, HOUR).is_err());
    }
}
