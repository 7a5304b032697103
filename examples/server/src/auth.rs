//! Who is asking. **This is the place where a real host plugs in its own authentication**: the
//! example keeps agents in its configuration and signs them in with a password; customers are
//! signed in only through invite links, by the library.
//!
//! Agents' passwords are kept only as argon2id hashes, made at start; sign-ins are limited per
//! account and per client address ([`SignInLimits`]).

mod guard;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::{Argon2, Params, PasswordHasher, PasswordVerifier};

use axum::extract::{FromRequestParts, Query};
use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use collab_core::rooms::{AccessHook, Operation, Rooms};
use collab_core::{Actor, AgentId, Clock, Error, RoomSummary, SystemClock, TenantId, Timestamp, Token, TokenHash};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

pub use self::guard::SignInLimits;

use crate::AppState;
use crate::error::ApiError;

/// The cookie that holds an agent's sign-in.
pub const AGENT_COOKIE: &str = "collab_agent";
/// The cookie that holds a customer's session.
pub const CUSTOMER_COOKIE: &str = "collab_customer";

/// How long an agent's session lasts without a request, by default.
pub const DEFAULT_IDLE_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);
/// How long an agent's session lasts at most, however busy, by default.
pub const DEFAULT_ABSOLUTE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The example's agents, each of a tenant, and their signed-in sessions. A tenant's agents see
/// only that tenant's rooms; several tenants let one server show that separation.
///
/// A session ends at sign-out, after [`DEFAULT_IDLE_LIFETIME`] without a request, or
/// [`DEFAULT_ABSOLUTE_LIFETIME`] after sign-in, whichever comes first (see
/// [`Agents::with_lifetimes`]). Each sign-in opens its own session, so that an agent signed in
/// on several devices stays signed in on each.
///
/// Passwords are hashed when agents are added, at the [`PasswordCost`] set then (see
/// [`Agents::with_password_cost`]), and only the hashes are kept. Failed sign-ins lock an
/// account and refuse an address for a while ([`SignInLimits`], [`Agents::with_sign_in_limits`]).
pub struct Agents {
    accounts: HashMap<String, Account>,
    /// Sign-in tokens by hash: the tokens themselves live only in the browsers' cookies.
    sessions: Mutex<HashMap<TokenHash, Session>>,
    clock: Arc<dyn Clock>,
    idle: Duration,
    absolute: Duration,
    cost: PasswordCost,
    /// A hash of no agent's password at `cost`: an unknown agent's sign-in checks against it, so
    /// that it takes as long as a known one's.
    dummy: Option<String>,
    guard: guard::Guard,
    /// Password checks at once: each holds the cost's memory.
    checks: Arc<Semaphore>,
    /// The agents who may change their tenant's settings, by tenant and id.
    admins: HashSet<(TenantId, String)>,
}

/// Lets only a tenant's admins change its settings ([`Agents::admin_hook`]).
#[derive(Debug)]
pub struct AdminsOnly {
    admins: HashSet<(TenantId, String)>,
}

impl AccessHook for AdminsOnly {
    fn allow(&self, tenant: &TenantId, agent: &AgentId, operation: Operation, _: Option<&RoomSummary>) -> bool {
        operation != Operation::ChangeSettings || self.admins.contains(&(tenant.clone(), agent.as_str().to_owned()))
    }
}

/// What hashing and checking one password costs: argon2id's memory and passes, one lane.
///
/// The default, [`PasswordCost::OWASP`], is OWASP's minimum for argon2id (19 MiB, 2 passes): a
/// check took 20 ms here (optimised; the workspace optimises argon2 in debug builds too, where
/// it took 530 ms otherwise), slow enough to make guessing costly and fast enough for a
/// sign-in. Checks run off the async runtime, a few at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordCost {
    memory_kib: u32,
    passes: u32,
}

impl PasswordCost {
    /// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
    pub const OWASP: Self = Self {
        memory_kib: 19 * 1024,
        passes: 2,
    };

    /// The least argon2 allows (8 KiB, 1 pass): for tests and the development agent, whose
    /// password is public. Never for a real password: guessing against it is cheap.
    pub const MINIMAL: Self = Self {
        memory_kib: 8,
        passes: 1,
    };

    /// `memory_kib` KiB (at least 8) and `passes` passes (at least 1).
    pub fn new(memory_kib: u32, passes: u32) -> Result<Self, Error> {
        let cost = Self { memory_kib, passes };
        cost.argon2().map(|_| cost).map_err(|e| Error::Invalid {
            field: "password cost",
            reason: e.to_string().into(),
        })
    }

    fn argon2(self) -> Result<Argon2<'static>, argon2::Error> {
        Params::new(self.memory_kib, self.passes, 1, None).map(Argon2::from)
    }

    /// `password`'s hash, a PHC string (`$argon2id$v=19$m=…`) with a random salt.
    fn hash(self, password: &str) -> Result<String, Error> {
        let mut salt = [0; argon2::RECOMMENDED_SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| Error::internal("password salt", e.to_string()))?;
        let hash = self
            .argon2()
            .map_err(|e| Error::internal("password hash", e.to_string()))?
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(|e| Error::internal("password hash", e.to_string()))?;
        Ok(hash.to_string())
    }
}

impl Default for PasswordCost {
    fn default() -> Self {
        Self::OWASP
    }
}

/// Whether `password` is the one of `hash` (at the hash's own cost).
fn verify(hash: &str, password: &str) -> bool {
    // The parameters come from the hash; a hash that cannot be read matches nothing.
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

struct Session {
    actor: Actor,
    signed_in: Timestamp,
    last_seen: Timestamp,
}

struct Account {
    tenant: TenantId,
    /// The password's argon2id PHC string; none when hashing failed at start (logged): then
    /// the agent cannot sign in.
    hash: Option<String>,
}

/// Never the passwords, never the sessions.
impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut agents: Vec<String> = self
            .accounts
            .iter()
            .map(|(agent, account)| format!("{}/{agent}", account.tenant))
            .collect();
        agents.sort();
        f.debug_struct("Agents")
            .field("agents", &agents)
            .field("idle", &self.idle)
            .field("absolute", &self.absolute)
            .field("cost", &self.cost)
            .field("limits", &self.guard.limits())
            .finish_non_exhaustive()
    }
}

impl Agents {
    /// Agents of `tenant` with their passwords, by agent id.
    ///
    /// Their passwords are hashed at [`PasswordCost::OWASP`]: to hash at another cost, start
    /// with no passwords, set it, and add them with [`Agents::with_tenant`].
    pub fn new(tenant: TenantId, passwords: HashMap<String, String>) -> Self {
        let checks = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            accounts: HashMap::new(),
            sessions: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemClock),
            idle: DEFAULT_IDLE_LIFETIME,
            absolute: DEFAULT_ABSOLUTE_LIFETIME,
            cost: PasswordCost::OWASP,
            dummy: None,
            guard: guard::Guard::new(SignInLimits::default()),
            checks: Arc::new(Semaphore::new(checks)),
            admins: HashSet::new(),
        }
        .with_tenant(tenant, passwords)
    }

    /// Makes `agent` of `tenant` an admin: they may change the tenant's settings
    /// ([`Rooms::change_settings`](collab_core::Rooms::change_settings), through
    /// [`Agents::admin_hook`]).
    pub fn with_admin(mut self, tenant: TenantId, agent: &str) -> Self {
        self.admins.insert((tenant, agent.to_owned()));
        self
    }

    /// Whether `agent` of `tenant` is an admin.
    pub fn is_admin(&self, tenant: &TenantId, agent: &AgentId) -> bool {
        self.admins.contains(&(tenant.clone(), agent.as_str().to_owned()))
    }

    /// The access hook that lets only the admins change their tenant's settings; every agent
    /// may do everything else in their tenant's rooms.
    pub fn admin_hook(&self) -> AdminsOnly {
        AdminsOnly {
            admins: self.admins.clone(),
        }
    }

    /// Hashes the passwords of the agents added from now on ([`Agents::with_tenant`]) at
    /// `cost`; those added before keep theirs (a hash carries its cost). Give every agent one
    /// cost, so that an unknown agent's sign-in takes as long as a known one's.
    pub fn with_password_cost(mut self, cost: PasswordCost) -> Self {
        self.cost = cost;
        self.dummy = None;
        self
    }

    /// Locks accounts and refuses addresses after failed sign-ins by `limits` (the defaults
    /// otherwise: see [`SignInLimits`]); the counts start again.
    pub fn with_sign_in_limits(mut self, limits: SignInLimits) -> Self {
        self.guard = guard::Guard::new(limits);
        self
    }

    /// Sessions end after `idle` without a request, and `absolute` after sign-in whatever the
    /// activity. Applies to sessions opened before too.
    pub fn with_lifetimes(mut self, idle: Duration, absolute: Duration) -> Self {
        self.idle = idle;
        self.absolute = absolute;
        self
    }

    /// Times sessions by `clock` (the system's by default).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Adds the agents of another tenant, their passwords hashed at the cost set (the
    /// passwords themselves are not kept). An agent id names one agent: a later entry with the
    /// same id replaces the earlier one.
    pub fn with_tenant(mut self, tenant: TenantId, passwords: HashMap<String, String>) -> Self {
        if self.dummy.is_none() && !passwords.is_empty() {
            self.dummy = self.cost.hash("").ok();
        }
        for (agent, password) in passwords {
            let hash = self.cost.hash(&password).inspect_err(|e| {
                // Not the agent's id: only a broken random source or hasher gets here.
                tracing::error!(error = %e, "an agent's password could not be hashed: that agent cannot sign in");
            });
            let tenant = tenant.clone();
            self.accounts.insert(
                agent,
                Account {
                    tenant,
                    hash: hash.ok(),
                },
            );
        }
        self
    }

    /// Checks a password and opens a session; the token goes into the agent's cookie. The agent
    /// is named by id alone or as `tenant/id`, as `--agents` lists it (the tenant must be theirs).
    /// `from` is the client's address, when known: the sign-in limits count per address too.
    ///
    /// Past the limits ([`SignInLimits`]), [`Error::RateLimited`] whether or not the password is
    /// right, so that a lock cannot be used to test guesses.
    pub async fn sign_in(
        &self,
        agent: &str,
        password: &str,
        from: Option<IpAddr>,
    ) -> Result<(AgentId, Token), ApiError> {
        // An id that holds a `/` itself (agents built in code may have one) is still its own.
        let (tenant, agent) = match agent.split_once('/') {
            Some((tenant, id)) if !self.accounts.contains_key(agent) => (Some(tenant), id),
            _ => (None, agent),
        };
        let account = self
            .accounts
            .get(agent)
            .filter(|account| tenant.is_none_or(|tenant| account.tenant.as_str() == tenant));
        // The account counts as itself however it is named; an unknown one as named, apart, so
        // that trying many unknown names cannot make the guard forget an account's failures.
        let key = match account {
            Some(account) => guard::Account::Known(Sha256::digest(format!("{}/{agent}", account.tenant)).into()),
            None => guard::Account::Unknown(Sha256::digest(format!("unknown:{agent}")).into()),
        };
        let from = from.map(guard::client);
        self.guard
            .begin(key, from, self.clock.now())
            .map_err(|refused| Error::RateLimited {
                retry_after: refused.retry_after,
            })?;
        let hash = account.and_then(|account| account.hash.clone());
        let matches = self.check(hash, password).await?;
        let Some(account) = account.filter(|_| matches) else {
            let (account_locked, address_locked) = self.guard.failed(key, from, self.clock.now());
            let address = from.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
            if account_locked {
                // Only a configured agent's id: an unknown "id" may be a password typed in the
                // wrong field.
                let who = account.map_or_else(|| "an unknown agent".to_owned(), |a| format!("{}/{agent}", a.tenant));
                let limits = self.guard.limits();
                let (failures, minutes) = (limits.account_failures(), limits.lockout().as_secs().div_ceil(60));
                tracing::warn!(agent = %who, %address, "sign-in locked for {minutes} min after {failures} failed attempts");
            }
            if address_locked {
                tracing::warn!(%address, "sign-ins from this address refused after too many failed attempts");
            }
            return Err(ApiError::Unauthenticated);
        };
        self.guard.succeeded(key, from);
        let agent = AgentId::new(agent)?;
        let token = Token::generate()?;
        let actor = Actor::Agent {
            tenant: account.tenant.clone(),
            agent: agent.clone(),
        };
        let now = self.clock.now();
        let mut sessions = self.lock();
        // Expired sessions are forgotten here, so that sign-ins cannot pile them up unbounded.
        sessions.retain(|_, session| self.is_live(session, now));
        let session = Session {
            actor,
            signed_in: now,
            last_seen: now,
        };
        sessions.insert(token.hash(), session);
        Ok((agent, token))
    }

    /// Ends the session of `token`.
    pub fn sign_out(&self, token: &str) {
        if let Ok(token) = Token::parse(token) {
            self.lock().remove(&token.hash());
        }
    }

    /// The agent of a live session, whose idle time starts again; an expired one is ended.
    fn agent(&self, token: &str) -> Option<Actor> {
        let hash = Token::parse(token).ok()?.hash();
        let now = self.clock.now();
        let mut sessions = self.lock();
        let session = sessions.get_mut(&hash)?;
        if !self.is_live(session, now) {
            sessions.remove(&hash);
            return None;
        }
        session.last_seen = now;
        Some(session.actor.clone())
    }

    /// Whether `token` is still a live sign-in of `actor`, without counting as a request (its
    /// idle time goes on): what an open live stream checks. An expired one is ended.
    fn still_signed_in(&self, token: &str, actor: &Actor) -> bool {
        let Ok(token) = Token::parse(token) else {
            return false;
        };
        let hash = token.hash();
        let now = self.clock.now();
        let mut sessions = self.lock();
        let Some(session) = sessions.get(&hash) else {
            return false;
        };
        if !self.is_live(session, now) {
            sessions.remove(&hash);
            return false;
        }
        session.actor == *actor
    }

    fn is_live(&self, session: &Session, now: Timestamp) -> bool {
        now < session.last_seen.saturating_add(self.idle) && now < session.signed_in.saturating_add(self.absolute)
    }

    /// Whether `password` is the one of `hash`; without one (an unknown agent), nothing matches,
    /// after the same check against a hash of no agent's password. Off
    /// the async runtime and a few at once: a check holds its cost's memory for tens of ms.
    async fn check(&self, hash: Option<String>, password: &str) -> Result<bool, ApiError> {
        let _permit = self.checks.acquire().await;
        let password = password.to_owned();
        let known = hash.is_some();
        let dummy = self.dummy.clone();
        let checked = tokio::task::spawn_blocking(move || match hash.or(dummy) {
            Some(hash) => verify(&hash, &password) && known,
            None => false,
        })
        .await;
        checked.map_err(|e| Error::internal("password check", e).into())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Session>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The header the customer page sends, so that a browser signed in as an agent too (a
/// developer opening an invite from the Dev inbox) still acts as the customer there.
pub const AS_CUSTOMER_HEADER: &str = "x-collab-as";

/// The actor of a request: a signed-in agent, else a customer session, else nobody; the
/// customer first when the page asks (`as_customer`).
pub async fn actor(agents: &Agents, rooms: &Rooms, headers: &HeaderMap, as_customer: bool) -> Result<Actor, ApiError> {
    let as_customer = as_customer || headers.get(AS_CUSTOMER_HEADER).is_some_and(|v| v == "customer");
    let agent = cookie(headers, AGENT_COOKIE).and_then(|token| agents.agent(token));
    if let Some(agent) = agent.filter(|_| !as_customer) {
        return Ok(agent);
    }
    match cookie(headers, CUSTOMER_COOKIE) {
        Some(token) => Ok(rooms.customer_session(token).await?),
        None => Err(ApiError::Unauthenticated),
    }
}

/// The session a request's caller acted through, kept to check again later: a live stream is
/// checked for as long as it is open ([`SignedIn::ended`]), so that a sign-out, a revocation or
/// an expiry ends it too, not only the requests that come after.
///
/// It holds the session's cookie value: its `Debug` shows only who the caller is.
pub struct SignedIn {
    actor: Actor,
    token: Option<String>,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl SignedIn {
    /// The session of `actor` (as [`actor`] found it in `headers`): the agent cookie's sign-in
    /// for an agent, the customer cookie's session for a customer.
    pub fn of(headers: &HeaderMap, actor: &Actor) -> Self {
        let name = match actor {
            Actor::Agent { .. } => AGENT_COOKIE,
            _ => CUSTOMER_COOKIE,
        };
        Self {
            actor: actor.clone(),
            token: cookie(headers, name).map(str::to_owned),
        }
    }

    /// Whether the session is still live, as the same caller: an agent's sign-in not signed out
    /// nor expired (the check is no request: the idle time goes on), a customer's session not
    /// ended, revoked nor expired. When the rooms cannot say now (the database is down), it is
    /// taken as live: the next check tells.
    pub async fn is_live(&self, agents: &Agents, rooms: &Rooms) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        match &self.actor {
            Actor::Agent { .. } => agents.still_signed_in(token, &self.actor),
            Actor::Customer { .. } => match rooms.customer_session(token).await {
                Ok(actor) => actor == self.actor,
                Err(Error::Forbidden | Error::NotFound { .. }) => false,
                // Said at debug level: every open stream checks, and an outage is reported once
                // by `/readyz` and the store's own errors, not by each stream every 15 s.
                Err(e) => {
                    tracing::debug!(error = %e, "live stream: could not check the customer's session; kept open");
                    true
                }
            },
            Actor::System => false,
        }
    }

    /// Completes once a check, every `every` (the first one `every` from now), finds the session
    /// no longer live ([`SignedIn::is_live`]).
    pub async fn ended(self, state: AppState, every: Duration) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if !self.is_live(&state.agents, &state.rooms).await {
                return;
            }
        }
    }
}

/// A `Set-Cookie` value for a session cookie: script-proof, same-site only.
pub fn session_cookie(name: &str, token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={token}; HttpOnly; SameSite=Strict; Path=/{secure}")
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn expired_cookie(name: &str) -> String {
    format!("{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The caller of a request, as a handler argument: a signed-in agent, else a customer session;
/// without either the request is refused (401). A request with `x-collab-as: customer` is the
/// customer's even when the browser is signed in as an agent too.
#[derive(Clone, Debug)]
pub struct Caller(pub Actor);

/// What a caller sends beside its session cookie (the cookies are the document's security
/// schemes): the customer page's `x-collab-as` header.
impl utoipa::IntoParams for Caller {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        let header = ParameterBuilder::new()
            .name(AS_CUSTOMER_HEADER)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "`customer`: act as the customer of the `collab_customer` cookie even when the \
                 `collab_agent` cookie is sent too (the customer page sends it; a browser may hold both). \
                 Other values are ignored.",
            ))
            // Not an enum: other values are ignored, not refused.
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        vec![header]
    }
}

/// As [`Caller`]'s.
impl utoipa::IntoParams for LiveCaller {
    fn into_params(
        parameter_in: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        Caller::into_params(parameter_in)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        actor(&state.agents, &state.rooms, &parts.headers, false)
            .await
            .map(Caller)
    }
}

/// The caller of a live stream: as [`Caller`], and the customer also when the query says
/// `as=customer`, since the customer page's `EventSource` cannot send the header.
#[derive(Clone, Debug)]
pub struct LiveCaller(pub Actor);

/// The one query parameter [`LiveCaller`] reads; the handler reads the others.
#[derive(Deserialize)]
struct AsRole {
    #[serde(rename = "as")]
    role: Option<String>,
}

impl FromRequestParts<AppState> for LiveCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A malformed query is the handler's to refuse, with its own error.
        let as_customer = Query::<AsRole>::try_from_uri(&parts.uri)
            .is_ok_and(|Query(query)| query.role.as_deref() == Some("customer"));
        actor(&state.agents, &state.rooms, &parts.headers, as_customer)
            .await
            .map(LiveCaller)
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn agents(passwords: &[(&str, &str)]) -> Agents {
        let tenant = TenantId::new("example").expect("a tenant");
        let passwords = passwords
            .iter()
            .map(|(a, p)| ((*a).to_owned(), (*p).to_owned()))
            .collect();
        Agents::new(tenant.clone(), HashMap::new())
            .with_password_cost(PasswordCost::MINIMAL)
            .with_tenant(tenant, passwords)
    }

    #[tokio::test]
    async fn an_agent_signs_in_by_id_or_as_tenant_slash_id() {
        let agents = agents(&[("ada", "secret"), ("team/bob", "hunter2")]);
        let known = [
            ("ada", "secret"),
            ("example/ada", "secret"),
            ("team/bob", "hunter2"),
            ("example/team/bob", "hunter2"),
        ];
        for (agent, password) in known {
            assert!(agents.sign_in(agent, password, None).await.is_ok(), "{agent}");
        }
        for (agent, password) in [
            ("other/ada", "secret"),
            ("other/team/bob", "hunter2"),
            ("/ada", "secret"),
        ] {
            assert!(
                matches!(
                    agents.sign_in(agent, password, None).await,
                    Err(ApiError::Unauthenticated)
                ),
                "{agent}"
            );
        }
    }

    #[tokio::test]
    async fn only_the_exact_password_signs_in() {
        let agents = agents(&[("ada", "secret")]);
        assert!(agents.sign_in("ada", "secret", None).await.is_ok());
        // Same length, a prefix, longer, empty, another case; and an agent nobody configured.
        for (agent, password) in [
            ("ada", "secreT"),
            ("ada", "secre"),
            ("ada", "secret!"),
            ("ada", ""),
            ("ada", "SECRET"),
            ("bob", "secret"),
            ("bob", ""),
        ] {
            // A success in between: five failures in a row would lock ada.
            assert!(
                matches!(
                    agents.sign_in(agent, password, None).await,
                    Err(ApiError::Unauthenticated)
                ),
                "{agent}:{password}"
            );
            assert!(agents.sign_in("ada", "secret", None).await.is_ok());
        }
    }

    #[test]
    fn only_an_argon2_hash_is_kept_and_debug_shows_neither() {
        let agents = agents(&[("ada", "correct horse")]);
        let hash = agents.accounts["ada"].hash.clone().expect("a hash");
        assert!(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify(&hash, "correct horse"));
        assert!(!verify(&hash, "correct horse!"));
        // The default cost is OWASP's, in the hash itself.
        let owasp = PasswordCost::default().hash("correct horse").expect("a hash");
        assert!(owasp.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{owasp}");
        let debug = format!("{agents:?}");
        assert!(debug.contains("example/ada"), "{debug}");
        assert!(!debug.contains("correct horse") && !debug.contains("argon2") && !debug.contains(&hash));
    }

    #[test]
    fn a_cost_below_argon2s_minimum_is_refused() {
        assert!(matches!(
            PasswordCost::new(7, 1),
            Err(Error::Invalid {
                field: "password cost",
                ..
            })
        ));
        assert!(matches!(
            PasswordCost::new(8, 0),
            Err(Error::Invalid {
                field: "password cost",
                ..
            })
        ));
        assert_eq!(PasswordCost::new(8, 1).expect("a cost"), PasswordCost::MINIMAL);
    }
}
