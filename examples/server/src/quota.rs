//! The host's limits on abuse: how fast one agent or customer may post messages and upload
//! documents, and one client address may join rooms ([`Quotas`], token buckets per agent, per
//! room's customer and per address), and the settings of every limit the host applies
//! ([`HostLimits`]: these rates, each room's storage quota, the SMS abuse guard), from flags or
//! the environment.
//!
//! A refusal is the core's [`Error::RateLimited`]: 429 `rate_limited` with `Retry-After`.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use collab_core::guard::CounterStore;
use collab_core::{Actor, AgentId, Error, RoomId, TenantId};
use collab_notify::abuse::{AbuseLimits, Limit, SmsAbuseGuard};

/// A token bucket's shape: up to `burst` at once, then `per_second` on average.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    burst: u32,
    per_second: f64,
}

impl Rate {
    /// `burst` (at least 1) at once, refilled at `per_second` (more than 0).
    pub fn new(burst: u32, per_second: f64) -> Result<Self, Error> {
        if burst == 0 {
            return Err(Error::invalid("burst", "must be at least 1"));
        }
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(Error::invalid("rate", "must be a number above 0"));
        }
        Ok(Self { burst, per_second })
    }

    /// `burst` at once, refilled at `per_minute` a minute.
    pub fn per_minute(burst: u32, per_minute: f64) -> Result<Self, Error> {
        Self::new(burst, per_minute / 60.0)
    }

    /// How many at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// How many a second, sustained.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }
}

/// How fast one agent or customer may act, and one client address may join. The defaults:
///
/// | what | per | burst | sustained |
/// |---|---|---|---|
/// | chat messages | agent or customer | 30 | 2 a second |
/// | uploads | agent or customer | 10 | 10 a minute |
/// | joins (`POST /api/join`) | client address | 20 | 20 a minute |
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuotaSettings {
    /// Chat messages.
    pub messages: Rate,
    /// Document uploads.
    pub uploads: Rate,
    /// Joins through an invite link, per client address (an IPv6 address by its /64).
    pub joins: Rate,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        Self {
            messages: Rate {
                burst: 30,
                per_second: 2.0,
            },
            uploads: Rate {
                burst: 10,
                per_second: 10.0 / 60.0,
            },
            joins: Rate {
                burst: 20,
                per_second: 20.0 / 60.0,
            },
        }
    }
}

/// Rate limits per agent and per customer: each agent has its own buckets, and each room's
/// customer one, so that one noisy sender slows no other (keyed by who acts, not by address:
/// customers behind one carrier NAT share addresses).
///
/// A customer is counted by their room, not by their session: a room has one customer, and
/// each join opens a new session (a new participant), so buckets per session would start full
/// again at every re-join of the invite link. Joins themselves are counted per client address,
/// so that replaying a link cannot mint sessions (and grow the room's state) without end; a
/// request without a known address (an app driven in process) is not counted there.
///
/// Memory stays bounded: a bucket that has filled up again is the same as none and is dropped
/// (every minute, or when the table is full), and at most [`Quotas::MAX_TRACKED`] senders or
/// addresses are tracked; past that, ones not yet tracked are refused until buckets drain.
#[derive(Debug)]
pub struct Quotas {
    messages: Limiter,
    uploads: Limiter,
    joins: Limiter,
}

impl Quotas {
    /// The most senders (or addresses) tracked at once, per kind of action.
    pub const MAX_TRACKED: usize = 100_000;

    /// Quotas with these settings.
    pub fn new(settings: QuotaSettings) -> Self {
        Self {
            messages: Limiter::new(settings.messages),
            uploads: Limiter::new(settings.uploads),
            joins: Limiter::new(settings.joins),
        }
    }

    /// No limit that a test or a load generator could reach.
    pub fn unlimited() -> Self {
        let huge = Rate {
            burst: u32::MAX,
            per_second: f64::from(u32::MAX),
        };
        Self::new(QuotaSettings {
            messages: huge,
            uploads: huge,
            joins: huge,
        })
    }

    /// Takes one chat message from `actor`'s bucket, or says when to try again.
    pub fn message(&self, actor: &Actor) -> Result<(), Error> {
        match Key::of(actor) {
            Some(key) => self.messages.take(key, Instant::now()),
            None => Ok(()),
        }
    }

    /// Takes one upload from `actor`'s bucket, or says when to try again.
    pub fn upload(&self, actor: &Actor) -> Result<(), Error> {
        match Key::of(actor) {
            Some(key) => self.uploads.take(key, Instant::now()),
            None => Ok(()),
        }
    }

    /// Takes one join from the bucket of the client address `peer`, or says when to try again;
    /// without a known address, nothing is counted.
    pub fn join(&self, peer: Option<IpAddr>) -> Result<(), Error> {
        match peer {
            Some(peer) => self.joins.take(Key::Address(client(peer)), Instant::now()),
            None => Ok(()),
        }
    }
}

/// Who a bucket belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Agent(TenantId, AgentId),
    /// A room's customer, through whichever session (each join is a new participant).
    Customer(RoomId),
    /// A client address.
    Address(IpAddr),
}

impl Key {
    /// The bucket of `actor`; none for the library's own work, which is not rated.
    fn of(actor: &Actor) -> Option<Self> {
        match actor {
            Actor::Agent { tenant, agent } => Some(Key::Agent(tenant.clone(), agent.clone())),
            Actor::Customer { room, .. } => Some(Key::Customer(*room)),
            _ => None,
        }
    }
}

/// The address a join counts against: an IPv6 address by its /64, which one client usually
/// holds whole (as the sign-in guard counts it), an IPv4-mapped one as its IPv4 address.
fn client(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// How often full buckets are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

struct Limiter {
    rate: Rate,
    max_keys: usize,
    state: Mutex<Buckets>,
}

struct Buckets {
    map: HashMap<Key, Bucket>,
    swept: Instant,
}

impl Default for Quotas {
    /// [`QuotaSettings::default`].
    fn default() -> Self {
        Self::new(QuotaSettings::default())
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    fn new(rate: Rate) -> Self {
        Self {
            rate,
            max_keys: Quotas::MAX_TRACKED,
            state: Mutex::new(Buckets {
                map: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// The bucket's tokens at `now`, refilled since it was last touched.
    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.rate.per_second).min(f64::from(self.rate.burst))
    }

    fn take(&self, key: Key, now: Instant) -> Result<(), Error> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let full = state.map.len() >= self.max_keys && !state.map.contains_key(&key);
        if full || now.saturating_duration_since(state.swept) >= SWEEP_EVERY {
            // A full bucket is the same as a new one: forget it.
            let burst = f64::from(self.rate.burst);
            state.map.retain(|_, bucket| self.refilled(bucket, now) < burst);
            state.swept = now;
        }
        if state.map.len() >= self.max_keys && !state.map.contains_key(&key) {
            tracing::warn!(
                tracked = state.map.len(),
                "rate limits: too many senders or addresses tracked; refusing new ones"
            );
            return Err(Error::RateLimited {
                retry_after: Duration::from_secs(1),
            });
        }
        let burst = f64::from(self.rate.burst);
        let bucket = state
            .map
            .entry(key.clone())
            .or_insert(Bucket { tokens: burst, at: now });
        let tokens = self.refilled(bucket, now);
        bucket.at = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            bucket.tokens = tokens;
            // Whole seconds, rounded up: a client that waits as told finds a token.
            let wait = ((1.0 - tokens) / self.rate.per_second).ceil().max(1.0);
            tracing::debug!(?key, wait, "rate limited");
            Err(Error::RateLimited {
                retry_after: Duration::from_secs_f64(wait.min(86_400.0)),
            })
        }
    }
}

/// Every limit the example host applies, as flags or the environment set them
/// ([`HostLimits::FLAGS`]); [`Default`] is the host's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct HostLimits {
    /// Messages and uploads per agent or customer, joins per client address.
    pub quotas: QuotaSettings,
    /// The most bytes of documents a room keeps (`RoomsConfig::with_max_room_bytes`).
    pub room_bytes: u64,
    /// The SMS and email invite guard's limits; `None` turns the guard off.
    pub invites: Option<AbuseLimits>,
}

impl Default for HostLimits {
    fn default() -> Self {
        Self {
            quotas: QuotaSettings::default(),
            room_bytes: 1 << 30,
            invites: Some(AbuseLimits::default()),
        }
    }
}

/// A flag's value, or the error naming the flag.
fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a number of the expected kind"))
}

/// The message of `e`, naming `flag`.
fn fail(flag: &str) -> impl Fn(Error) -> String + '_ {
    move |e| format!("{flag}: {e}")
}

/// A burst: 1 or more.
fn burst(flag: &str, value: &str) -> Result<u32, String> {
    match number(flag, value)? {
        0 => Err(format!("{flag}: must be at least 1")),
        n => Ok(n),
    }
}

/// A rate: a number above 0.
fn rate(flag: &str, value: &str) -> Result<f64, String> {
    let rate: f64 = number(flag, value)?;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(format!("{flag}: must be a number above 0"))
    }
}

impl HostLimits {
    /// The flags and the environment variables that set the limits, with their help text.
    pub const FLAGS: &'static [(&'static str, &'static str)] = &[
        ("--message-burst", "COLLAB_MESSAGE_BURST"),
        ("--message-rate", "COLLAB_MESSAGE_RATE"),
        ("--upload-burst", "COLLAB_UPLOAD_BURST"),
        ("--upload-rate", "COLLAB_UPLOAD_RATE"),
        ("--join-burst", "COLLAB_JOIN_BURST"),
        ("--join-rate", "COLLAB_JOIN_RATE"),
        ("--room-quota-mib", "COLLAB_ROOM_QUOTA_MIB"),
        ("--invite-limits", "COLLAB_INVITE_LIMITS"),
        ("--invites-per-recipient", "COLLAB_INVITES_PER_RECIPIENT"),
        ("--invite-cooldown", "COLLAB_INVITE_COOLDOWN"),
        ("--sms-countries", "COLLAB_SMS_COUNTRIES"),
    ];

    /// Whether `flag` is one of [`HostLimits::FLAGS`].
    pub fn is_flag(flag: &str) -> bool {
        Self::FLAGS.iter().any(|(name, _)| *name == flag)
    }

    /// The limits from `(flag, value)` pairs, later ones winning over earlier ones (give the
    /// environment's first, then the command line's). An error names the flag.
    pub fn parse(values: &[(String, String)]) -> Result<Self, String> {
        let mut limits = Self::default();
        let mut quotas = (
            (limits.quotas.messages.burst, limits.quotas.messages.per_second),
            (limits.quotas.uploads.burst, limits.quotas.uploads.per_second * 60.0),
            (limits.quotas.joins.burst, limits.quotas.joins.per_second * 60.0),
        );
        let mut invites = AbuseLimits::default();
        let mut guard = true;
        for (flag, value) in values {
            let flag = flag.as_str();
            match flag {
                "--message-burst" => quotas.0.0 = burst(flag, value)?,
                "--message-rate" => quotas.0.1 = rate(flag, value)?,
                "--upload-burst" => quotas.1.0 = burst(flag, value)?,
                "--upload-rate" => quotas.1.1 = rate(flag, value)?,
                "--join-burst" => quotas.2.0 = burst(flag, value)?,
                "--join-rate" => quotas.2.1 = rate(flag, value)?,
                "--room-quota-mib" => {
                    let mib: u64 = number(flag, value)?;
                    if mib == 0 {
                        return Err(format!("{flag}: must be at least 1"));
                    }
                    limits.room_bytes = mib.saturating_mul(1 << 20);
                }
                "--invite-limits" => {
                    guard = match value.trim() {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("{flag}: on or off")),
                    }
                }
                "--invites-per-recipient" => {
                    let limit = Limit::per_hour(number(flag, value)?).map_err(fail(flag))?;
                    invites = invites.with_per_recipient(limit);
                }
                "--invite-cooldown" => {
                    let first = Duration::from_secs(number(flag, value)?);
                    let max = Duration::from_secs(6 * 3600).max(first);
                    invites = invites.with_cooldown(first, max).map_err(fail(flag))?;
                }
                "--sms-countries" => {
                    invites = invites
                        .with_countries(value.split(',').map(str::trim).filter(|c| !c.is_empty()))
                        .map_err(fail(flag))?;
                }
                other => return Err(format!("{other} is not a limit")),
            }
        }
        limits.quotas = QuotaSettings {
            messages: Rate::new(quotas.0.0, quotas.0.1).map_err(fail("messages"))?,
            uploads: Rate::per_minute(quotas.1.0, quotas.1.1).map_err(fail("uploads"))?,
            joins: Rate::per_minute(quotas.2.0, quotas.2.1).map_err(fail("joins"))?,
        };
        limits.invites = guard.then_some(invites);
        Ok(limits)
    }

    /// The SMS and email invite guard, counting in `counters` (the rooms' database, so that its
    /// counts hold across restarts and servers); `None` when turned off.
    pub fn invite_guard(&self, counters: impl CounterStore) -> Option<SmsAbuseGuard> {
        let limits = self.invites.clone()?;
        Some(SmsAbuseGuard::new(counters).with_limits(limits))
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The customer of room `n`.
    fn customer(n: u128) -> Key {
        Key::Customer(RoomId::from_u128(n))
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = Limiter::new(Rate::new(3, 2.0).unwrap());
        let start = Instant::now();
        let ada = customer(1);
        for _ in 0..3 {
            limiter.take(ada.clone(), start).unwrap();
        }
        let refused = limiter.take(ada.clone(), start);
        assert!(
            matches!(refused, Err(Error::RateLimited { retry_after }) if retry_after == Duration::from_secs(1)),
            "{refused:?}"
        );
        // Another room's customer has their own bucket.
        limiter.take(customer(2), start).unwrap();
        // Half a second later, one token is back, not two.
        let later = start + Duration::from_millis(500);
        limiter.take(ada.clone(), later).unwrap();
        assert!(limiter.take(ada, later).is_err());
    }

    #[test]
    fn full_buckets_are_forgotten_and_the_table_is_bounded() {
        let mut limiter = Limiter::new(Rate::new(2, 1.0).unwrap());
        limiter.max_keys = 3;
        let start = Instant::now();
        for n in 0..3 {
            limiter.take(customer(n), start).unwrap();
        }
        // The table is full of buckets still filling: a new sender waits.
        assert!(limiter.take(customer(9), start).is_err());
        // Once they have filled up again they are dropped, and room is made.
        let later = start + Duration::from_secs(2);
        limiter.take(customer(9), later).unwrap();
        assert_eq!(limiter.state.lock().unwrap().map.len(), 1);
        // After a minute, the sweep drops idle buckets however few there are.
        let much_later = later + SWEEP_EVERY;
        limiter.take(customer(10), much_later).unwrap();
        assert_eq!(limiter.state.lock().unwrap().map.len(), 1);
    }

    #[test]
    fn a_customer_is_counted_by_room_whichever_session_acts() {
        let quotas = Quotas::new(QuotaSettings {
            messages: Rate::new(2, 0.001).unwrap(),
            ..QuotaSettings::default()
        });
        let session = |room: u128, participant: u128| Actor::Customer {
            room: RoomId::from_u128(room),
            participant: collab_core::ParticipantId::from_u128(participant),
        };
        quotas.message(&session(1, 1)).unwrap();
        quotas.message(&session(1, 1)).unwrap();
        // A re-join is a new participant of the same room: the same, empty, bucket.
        assert!(matches!(quotas.message(&session(1, 2)), Err(Error::RateLimited { .. })));
        // Another room's customer, and the library itself, are not held back.
        quotas.message(&session(2, 3)).unwrap();
        quotas.message(&Actor::System).unwrap();
    }

    #[test]
    fn joins_are_counted_per_address_an_ipv6_one_by_its_64() {
        let quotas = Quotas::new(QuotaSettings {
            joins: Rate::new(1, 0.001).unwrap(),
            ..QuotaSettings::default()
        });
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        quotas.join(ip("2001:db8:1:2::1")).unwrap();
        let refused = quotas.join(ip("2001:db8:1:2:ffff::9"));
        assert!(matches!(refused, Err(Error::RateLimited { .. })), "{refused:?}");
        quotas.join(ip("2001:db8:1:3::1")).unwrap();
        quotas.join(ip("192.0.2.1")).unwrap();
        assert!(quotas.join(ip("::ffff:192.0.2.1")).is_err(), "the same IPv4 address");
        // No address known (an app driven in process): not counted.
        quotas.join(None).unwrap();
        quotas.join(None).unwrap();
    }

    #[test]
    fn limits_come_from_flags_and_name_the_flag_at_fault() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter().map(|(f, v)| ((*f).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(HostLimits::parse(&[]).unwrap(), HostLimits::default());
        let limits = HostLimits::parse(&pairs(&[
            ("--message-burst", "5"),
            ("--message-rate", "0.5"),
            ("--upload-rate", "30"),
            ("--join-burst", "3"),
            ("--join-rate", "6"),
            ("--room-quota-mib", "2"),
            ("--invite-limits", "off"),
        ]))
        .unwrap();
        assert_eq!(limits.quotas.messages, Rate::new(5, 0.5).unwrap());
        assert_eq!(limits.quotas.uploads, Rate::new(10, 0.5).unwrap());
        assert_eq!(limits.quotas.joins, Rate::new(3, 0.1).unwrap());
        assert_eq!(limits.room_bytes, 2 << 20);
        assert!(limits.invites.is_none());
        // The later value wins: the command line over the environment.
        let limits = HostLimits::parse(&pairs(&[("--invite-limits", "off"), ("--invite-limits", "on")])).unwrap();
        assert!(limits.invites.is_some());
        for (flag, value) in [
            ("--message-burst", "0"),
            ("--message-rate", "fast"),
            ("--upload-rate", "0"),
            ("--join-burst", "0"),
            ("--join-rate", "-1"),
            ("--room-quota-mib", "0"),
            ("--invite-limits", "maybe"),
            ("--invites-per-recipient", "0"),
            ("--sms-countries", "XX"),
        ] {
            let error = HostLimits::parse(&pairs(&[(flag, value)])).unwrap_err();
            assert!(error.contains(flag), "{flag}: {error}");
        }
    }
}
