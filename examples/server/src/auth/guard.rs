//! The sign-in guard: failed sign-ins counted per account and per client address, an account
//! locked after a few in a row, an address refused after many, in bounded memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use collab_core::{Error, Timestamp};

/// How many failed sign-ins lock an account or refuse an address, and for how long.
///
/// By default 5 failed sign-ins of one account within 15 minutes lock it for 15 minutes, and 30
/// of one client address (across accounts; an IPv6 address counts by its /64) refuse that
/// address for 15 minutes. A successful sign-in clears its account's count, not its address's.
/// Behind a proxy every client has the proxy's address: raise the address's limit there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignInLimits {
    account_failures: u32,
    address_failures: u32,
    window: Duration,
    lockout: Duration,
    tracked: usize,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            account_failures: 5,
            address_failures: 30,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            tracked: 10_000,
        }
    }
}

impl SignInLimits {
    /// Locks an account after `account` failed sign-ins within the window, and refuses an
    /// address after `address`; each at least 1.
    pub fn with_failures(mut self, account: u32, address: u32) -> Result<Self, Error> {
        if account == 0 || address == 0 {
            return Err(invalid("failures", "at least 1"));
        }
        self.account_failures = account;
        self.address_failures = address;
        Ok(self)
    }

    /// Counts failures within `window`, and locks for `lockout`; each at least 1 s.
    pub fn with_times(mut self, window: Duration, lockout: Duration) -> Result<Self, Error> {
        if window < Duration::from_secs(1) || lockout < Duration::from_secs(1) {
            return Err(invalid("lockout", "a window and a lockout of at least 1 s"));
        }
        self.window = window;
        self.lockout = lockout;
        Ok(self)
    }

    /// The failed sign-ins that lock an account.
    pub fn account_failures(&self) -> u32 {
        self.account_failures
    }

    /// How long a locked account or a refused address waits.
    pub fn lockout(&self) -> Duration {
        self.lockout
    }

    /// Tracks at most `entries` unknown agent names and as many addresses (at least 1); past
    /// that, the stale ones are forgotten first, then the oldest. Configured accounts are
    /// always tracked, however many unknown names are tried: there are only as many as the
    /// configuration lists, and forgetting one would forget how near its lock it is.
    pub fn with_tracked(mut self, entries: usize) -> Result<Self, Error> {
        if entries == 0 {
            return Err(invalid("tracked", "at least 1"));
        }
        self.tracked = entries;
        Ok(self)
    }
}

fn invalid(field: &'static str, reason: &'static str) -> Error {
    Error::Invalid {
        field,
        reason: reason.into(),
    }
}

/// The counts. An attempt counts as a failure from its start (so that concurrent guesses
/// cannot pass the limit while their passwords are being checked) until it succeeds.
#[derive(Debug)]
pub(super) struct Guard {
    limits: SignInLimits,
    tracked: Mutex<Tracked>,
}

#[derive(Debug, Default)]
struct Tracked {
    /// Configured accounts: never forgotten to make room.
    accounts: HashMap<[u8; 32], Entry>,
    /// Names no account has, counted as an account would be (so that a lock does not tell
    /// which names exist), within the limit on tracked entries.
    unknown: HashMap<[u8; 32], Entry>,
    addresses: HashMap<IpAddr, Entry>,
}

/// The account a sign-in names, by a digest of its name: a bounded key, whatever name a client
/// sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Account {
    /// A configured account.
    Known([u8; 32]),
    /// A name no account has.
    Unknown([u8; 32]),
}

impl Tracked {
    /// The entry of `account`, if tracked.
    fn account(&mut self, account: Account) -> Option<&mut Entry> {
        match account {
            Account::Known(key) => self.accounts.get_mut(&key),
            Account::Unknown(key) => self.unknown.get_mut(&key),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    since: Timestamp,
    locked_until: Option<Timestamp>,
}

/// Which limit refused, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refused {
    pub(super) retry_after: Duration,
}

impl Entry {
    fn new(now: Timestamp) -> Self {
        Self {
            failures: 0,
            since: now,
            locked_until: None,
        }
    }

    /// Forgets a lock that has ended and failures older than the window.
    fn refresh(&mut self, now: Timestamp, window: Duration) {
        match self.locked_until {
            Some(until) if until <= now => *self = Self::new(now),
            None if now.since(self.since) >= window => *self = Self::new(now),
            _ => {}
        }
    }

    /// Why a new attempt must wait, if it must: a lock, or attempts in progress at the limit.
    fn refusal(&self, now: Timestamp, max: u32) -> Option<Duration> {
        match self.locked_until {
            Some(until) => Some(until.since(now)),
            None if self.failures >= max => Some(Duration::from_secs(1)),
            None => None,
        }
    }

    fn stale(&self, now: Timestamp, window: Duration) -> bool {
        match self.locked_until {
            Some(until) => until <= now,
            None => now.since(self.since) >= window,
        }
    }
}

impl Guard {
    pub(super) fn new(limits: SignInLimits) -> Self {
        Self {
            limits,
            tracked: Mutex::new(Tracked::default()),
        }
    }

    pub(super) fn limits(&self) -> SignInLimits {
        self.limits
    }

    /// Starts an attempt on `account` from `address`, counted as a failure until
    /// [`Guard::succeeded`]; refused while either is locked.
    pub(super) fn begin(&self, account: Account, address: Option<IpAddr>, now: Timestamp) -> Result<(), Refused> {
        let limits = self.limits;
        let mut tracked = self.lock();
        let tracked = &mut *tracked;
        let mut wait = None;
        if let Some(entry) = tracked.account(account) {
            entry.refresh(now, limits.window);
            wait = entry.refusal(now, limits.account_failures);
        }
        if let Some(entry) = address.and_then(|a| tracked.addresses.get_mut(&a)) {
            entry.refresh(now, limits.window);
            wait = wait.max(entry.refusal(now, limits.address_failures));
        }
        if let Some(wait) = wait {
            return Err(Refused {
                retry_after: wait.max(Duration::from_secs(1)),
            });
        }
        let entry_of_account = match account {
            Account::Known(key) => tracked.accounts.entry(key).or_insert_with(|| Entry::new(now)),
            Account::Unknown(key) => entry(&mut tracked.unknown, key, now, limits),
        };
        entry_of_account.failures += 1;
        if let Some(address) = address {
            entry(&mut tracked.addresses, address, now, limits).failures += 1;
        }
        Ok(())
    }

    /// The attempt failed: locks what reached its limit. Returns whether the account locked
    /// now (the caller logs it), and whether the address did.
    pub(super) fn failed(&self, account: Account, address: Option<IpAddr>, now: Timestamp) -> (bool, bool) {
        let limits = self.limits;
        let lock = |entry: Option<&mut Entry>, max: u32| match entry {
            Some(entry) if entry.locked_until.is_none() && entry.failures >= max => {
                entry.locked_until = Some(now.saturating_add(limits.lockout));
                entry.failures = 0;
                true
            }
            _ => false,
        };
        let mut tracked = self.lock();
        let account = lock(tracked.account(account), limits.account_failures);
        let address = lock(
            address.and_then(|a| tracked.addresses.get_mut(&a)),
            limits.address_failures,
        );
        (account, address)
    }

    /// The attempt succeeded: the account's failures are forgotten, and this attempt no longer
    /// counts against the address.
    pub(super) fn succeeded(&self, account: Account, address: Option<IpAddr>) {
        let mut tracked = self.lock();
        match account {
            Account::Known(key) => tracked.accounts.remove(&key),
            Account::Unknown(key) => tracked.unknown.remove(&key),
        };
        if let Some(entry) = address.and_then(|a| tracked.addresses.get_mut(&a)) {
            entry.failures = entry.failures.saturating_sub(1);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tracked> {
        self.tracked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The entry of `key`, made room for when new.
fn entry<K: Hash + Eq + Copy>(map: &mut HashMap<K, Entry>, key: K, now: Timestamp, limits: SignInLimits) -> &mut Entry {
    if !map.contains_key(&key) && map.len() >= limits.tracked {
        map.retain(|_, entry| !entry.stale(now, limits.window));
        if map.len() >= limits.tracked {
            // All recent: the oldest unlocked goes first, a lock last.
            let oldest = map
                .iter()
                .min_by_key(|(_, entry)| (entry.locked_until.is_some(), entry.since))
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
    }
    map.entry(key).or_insert_with(|| Entry::new(now))
}

/// The address an attempt counts against: an IPv6 address by its /64, which one client
/// usually holds whole.
pub(super) fn client(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_unix_millis(1_000_000);

    fn limits() -> SignInLimits {
        SignInLimits::default()
            .with_failures(3, 5)
            .and_then(|l| l.with_times(Duration::from_secs(60), Duration::from_secs(120)))
            .and_then(|l| l.with_tracked(4))
            .expect("limits")
    }

    fn known(account: u8) -> Account {
        Account::Known([account; 32])
    }

    fn fail(guard: &Guard, account: u8, address: Option<IpAddr>, now: Timestamp) -> (bool, bool) {
        fail_as(guard, known(account), address, now)
    }

    fn fail_as(guard: &Guard, account: Account, address: Option<IpAddr>, now: Timestamp) -> (bool, bool) {
        guard.begin(account, address, now).expect("not refused yet");
        guard.failed(account, address, now)
    }

    #[test]
    fn an_account_locks_after_its_failures_and_unlocks_after_the_lockout() {
        let guard = Guard::new(limits());
        assert_eq!(fail(&guard, 1, None, T0), (false, false));
        assert_eq!(fail(&guard, 1, None, T0), (false, false));
        assert_eq!(fail(&guard, 1, None, T0), (true, false));
        let later = T0.saturating_add(Duration::from_secs(20));
        assert_eq!(
            guard.begin(known(1), None, later),
            Err(Refused {
                retry_after: Duration::from_secs(100)
            })
        );
        // Another account is not concerned.
        assert!(guard.begin(known(2), None, later).is_ok());
        let unlocked = T0.saturating_add(Duration::from_secs(120));
        assert!(guard.begin(known(1), None, unlocked).is_ok());
    }

    #[test]
    fn attempts_in_progress_count_and_a_success_clears_the_account() {
        let guard = Guard::new(limits());
        for _ in 0..3 {
            guard.begin(known(1), None, T0).expect("within the limit");
        }
        // Three guesses being checked: a fourth waits, whatever they turn out to be.
        assert!(guard.begin(known(1), None, T0).is_err());
        guard.succeeded(known(1), None);
        assert!(guard.begin(known(1), None, T0).is_ok());
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let guard = Guard::new(limits());
        fail(&guard, 1, None, T0);
        fail(&guard, 1, None, T0);
        let later = T0.saturating_add(Duration::from_secs(61));
        assert_eq!(fail(&guard, 1, None, later), (false, false));
    }

    #[test]
    fn an_address_is_refused_after_failures_across_accounts() {
        let guard = Guard::new(limits());
        let home = "192.0.2.1".parse().ok();
        for account in 1..5 {
            assert_eq!(fail(&guard, account, home, T0), (false, false));
        }
        assert_eq!(fail(&guard, 5, home, T0), (false, true));
        assert!(guard.begin(known(6), home, T0).is_err());
        assert!(guard.begin(known(6), "192.0.2.2".parse().ok(), T0).is_ok());
    }

    #[test]
    fn memory_is_bounded_and_a_lock_outlives_unlocked_entries() {
        let guard = Guard::new(limits());
        for _ in 0..3 {
            fail_as(&guard, Account::Unknown([0; 32]), None, T0);
        }
        for name in 1..50 {
            fail_as(
                &guard,
                Account::Unknown([name; 32]),
                None,
                T0.saturating_add(Duration::from_secs(1)),
            );
        }
        let tracked = guard.lock();
        assert!(tracked.unknown.len() <= 4);
        assert!(tracked.unknown.get(&[0; 32]).is_some_and(|e| e.locked_until.is_some()));
    }

    #[test]
    fn unknown_names_cannot_push_out_an_account_near_its_lock() {
        let guard = Guard::new(limits());
        fail(&guard, 1, None, T0);
        fail(&guard, 1, None, T0);
        // Far more unknown names than are tracked, tried after the account's failures: each
        // would push out the oldest unlocked entry, were the account's among them.
        for name in 0..=u8::MAX {
            fail_as(
                &guard,
                Account::Unknown([name; 32]),
                None,
                T0.saturating_add(Duration::from_secs(1)),
            );
        }
        assert!(guard.lock().unknown.len() <= 4);
        let later = T0.saturating_add(Duration::from_secs(2));
        assert_eq!(fail(&guard, 1, None, later), (true, false), "the third failure locks");
        assert!(guard.begin(known(1), None, later).is_err());
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let a: IpAddr = "2001:db8::1".parse().expect("an address");
        let b: IpAddr = "2001:db8::ffff:1".parse().expect("an address");
        let c: IpAddr = "2001:db8:0:1::1".parse().expect("an address");
        assert_eq!(client(a), client(b));
        assert_ne!(client(a), client(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("an address");
        assert_eq!(client(mapped), "192.0.2.1".parse::<IpAddr>().expect("an address"));
    }
}
