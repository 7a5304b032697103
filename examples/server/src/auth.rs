//! Who is asking. **This is the place where a real host plugs in its own authentication**: the
//! example keeps agents in its configuration and signs them in with a password; customers are
//! signed in only through invite links, by the library.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{FromRequestParts, Query};
use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use collab_core::rooms::Rooms;
use collab_core::{Actor, AgentId, Clock, SystemClock, TenantId, Timestamp, Token, TokenHash};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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
pub struct Agents {
    accounts: HashMap<String, Account>,
    /// Sign-in tokens by hash: the tokens themselves live only in the browsers' cookies.
    sessions: Mutex<HashMap<TokenHash, Session>>,
    clock: Arc<dyn Clock>,
    idle: Duration,
    absolute: Duration,
}

struct Session {
    actor: Actor,
    signed_in: Timestamp,
    last_seen: Timestamp,
}

struct Account {
    tenant: TenantId,
    password: String,
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
            .finish_non_exhaustive()
    }
}

impl Agents {
    /// Agents of `tenant` with their passwords, by agent id.
    pub fn new(tenant: TenantId, passwords: HashMap<String, String>) -> Self {
        Self {
            accounts: HashMap::new(),
            sessions: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemClock),
            idle: DEFAULT_IDLE_LIFETIME,
            absolute: DEFAULT_ABSOLUTE_LIFETIME,
        }
        .with_tenant(tenant, passwords)
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

    /// Adds the agents of another tenant. An agent id names one agent: a later entry with the
    /// same id replaces the earlier one.
    pub fn with_tenant(mut self, tenant: TenantId, passwords: HashMap<String, String>) -> Self {
        for (agent, password) in passwords {
            let tenant = tenant.clone();
            self.accounts.insert(agent, Account { tenant, password });
        }
        self
    }

    /// Checks a password and opens a session; the token goes into the agent's cookie. The agent
    /// is named by id alone or as `tenant/id`, as `--agents` lists it (the tenant must be theirs).
    pub fn sign_in(&self, agent: &str, password: &str) -> Result<(AgentId, Token), ApiError> {
        // An id that holds a `/` itself (agents built in code may have one) is still its own.
        let (tenant, agent) = match agent.split_once('/') {
            Some((tenant, id)) if !self.accounts.contains_key(agent) => (Some(tenant), id),
            _ => (None, agent),
        };
        let account = self
            .accounts
            .get(agent)
            .filter(|account| tenant.is_none_or(|tenant| account.tenant.as_str() == tenant));
        // An unknown agent costs the same comparison, against no password.
        let expected = account.map_or("", |account| account.password.as_str());
        let matches = same_password(expected, password);
        let Some(account) = account.filter(|_| matches) else {
            return Err(ApiError::Unauthenticated);
        };
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

    fn is_live(&self, session: &Session, now: Timestamp) -> bool {
        now < session.last_seen.saturating_add(self.idle) && now < session.signed_in.saturating_add(self.absolute)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Session>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether `given` is `expected`, in a time that tells nothing about either: their SHA-256
/// digests have one length whatever the passwords' lengths, and `subtle` compares every byte of
/// them whatever the first difference.
fn same_password(expected: &str, given: &str) -> bool {
    Sha256::digest(expected).ct_eq(&Sha256::digest(given)).into()
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

    #[test]
    fn an_agent_signs_in_by_id_or_as_tenant_slash_id() {
        let tenant = TenantId::new("example").expect("a tenant");
        let passwords = HashMap::from([
            ("ada".to_owned(), "secret".to_owned()),
            ("team/bob".to_owned(), "hunter2".to_owned()),
        ]);
        let agents = Agents::new(tenant, passwords);
        let known = [
            ("ada", "secret"),
            ("example/ada", "secret"),
            ("team/bob", "hunter2"),
            ("example/team/bob", "hunter2"),
        ];
        for (agent, password) in known {
            assert!(agents.sign_in(agent, password).is_ok(), "{agent}");
        }
        for (agent, password) in [
            ("other/ada", "secret"),
            ("other/team/bob", "hunter2"),
            ("/ada", "secret"),
        ] {
            assert!(
                matches!(agents.sign_in(agent, password), Err(ApiError::Unauthenticated)),
                "{agent}"
            );
        }
    }

    #[test]
    fn only_the_exact_password_signs_in() {
        let tenant = TenantId::new("example").expect("a tenant");
        let agents = Agents::new(tenant, HashMap::from([("ada".to_owned(), "secret".to_owned())]));
        assert!(agents.sign_in("ada", "secret").is_ok());
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
            assert!(
                matches!(agents.sign_in(agent, password), Err(ApiError::Unauthenticated)),
                "{agent}:{password}"
            );
        }
    }
}
