//! A cap on open live streams (`GET /api/rooms/{room}/live`): each holds a connection and a
//! subscription for as long as the client keeps it, so one session, or one address, opening
//! them without end would exhaust the server (issue 21). Past either cap the answer is 429
//! `rate_limited` with `Retry-After`; a stream's slot is released when the stream is dropped
//! (the client went away, or the server shut the connection).
//!
//! An open stream also checks, every [`StreamLimits::session_check`], that its caller is still
//! signed in: a sign-out or an expired session ends it, as a revoked customer session does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use collab_core::{Actor, Error};
use futures_util::{Stream, StreamExt};

/// What a refused client is told to wait: the time for a closed stream's slot to come back
/// (a browser retries an `EventSource` after about as long).
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How many live streams may be open at once: per session (an agent, or a customer's
/// participation) and per client address, each at least 1; and how often an open stream
/// checks that its caller is still signed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    per_session: usize,
    per_address: usize,
    session_check: Duration,
}

impl Default for StreamLimits {
    /// 8 per session (an agent watching several rooms in several tabs), 64 per address (an
    /// office behind one NAT address); the caller checked every 15 s (the keep-alive's period).
    fn default() -> Self {
        Self {
            per_session: 8,
            per_address: 64,
            session_check: Duration::from_secs(15),
        }
    }
}

impl StreamLimits {
    /// At most `max` streams open per session, 8 by default.
    pub fn with_per_session(mut self, max: usize) -> Result<Self, Error> {
        if max == 0 {
            return Err(Error::invalid("live_streams_per_session", "must be at least 1"));
        }
        self.per_session = max;
        Ok(self)
    }

    /// At most `max` streams open per client address, 64 by default. Behind a proxy every
    /// client has the proxy's address: raise it there.
    pub fn with_per_address(mut self, max: usize) -> Result<Self, Error> {
        if max == 0 {
            return Err(Error::invalid("live_streams_per_address", "must be at least 1"));
        }
        self.per_address = max;
        Ok(self)
    }

    /// An open stream checks every `every` (more than 0; 15 s by default) that its caller's
    /// session is still live, and ends when it is not (signed out, revoked or expired).
    pub fn with_session_check(mut self, every: Duration) -> Result<Self, Error> {
        if every.is_zero() {
            return Err(Error::invalid("live_session_check", "must be more than 0"));
        }
        self.session_check = every;
        Ok(self)
    }

    /// How often an open stream checks its caller's session.
    pub fn session_check(&self) -> Duration {
        self.session_check
    }

    /// The most streams open per session.
    pub fn per_session(&self) -> usize {
        self.per_session
    }

    /// The most streams open per client address.
    pub fn per_address(&self) -> usize {
        self.per_address
    }
}

/// The live streams open on this server, counted per session and per address. Clones share
/// the counts.
#[derive(Clone, Default)]
pub struct LiveStreams {
    limits: StreamLimits,
    open: Arc<Mutex<Open>>,
}

impl std::fmt::Debug for LiveStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStreams")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Open {
    sessions: HashMap<String, usize>,
    addresses: HashMap<IpAddr, usize>,
}

/// The session a stream counts against: an agent (all their sign-ins), or one customer session
/// (a participant: each opening of the link makes another, which the per-address cap bounds).
fn session_of(actor: &Actor) -> Option<String> {
    match actor {
        Actor::Agent { tenant, agent } => Some(format!("agent {tenant}/{agent}")),
        Actor::Customer { participant, .. } => Some(format!("customer {participant}")),
        _ => None,
    }
}

impl LiveStreams {
    /// No stream open yet, with `limits`.
    pub fn new(limits: StreamLimits) -> Self {
        Self {
            limits,
            open: Arc::default(),
        }
    }

    /// The caps.
    pub fn limits(&self) -> StreamLimits {
        self.limits
    }

    /// A slot for one more stream of `actor` from `peer` (none known: counted for the session
    /// only), or [`Error::RateLimited`] when either is at its cap; the counts then stay as they
    /// were.
    pub fn open(&self, actor: &Actor, peer: Option<IpAddr>) -> Result<StreamSlot, Error> {
        let session = session_of(actor);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let by_session = session.as_ref().and_then(|s| open.sessions.get(s)).copied();
        let by_address = peer.and_then(|p| open.addresses.get(&p)).copied();
        if by_session.unwrap_or(0) >= self.limits.per_session || by_address.unwrap_or(0) >= self.limits.per_address {
            return Err(Error::RateLimited {
                retry_after: RETRY_AFTER,
            });
        }
        if let Some(session) = &session {
            *open.sessions.entry(session.clone()).or_default() += 1;
        }
        if let Some(peer) = peer {
            *open.addresses.entry(peer).or_default() += 1;
        }
        Ok(StreamSlot {
            open: self.open.clone(),
            session,
            peer,
        })
    }

    /// How many streams are open, in all.
    pub fn open_streams(&self) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.sessions.values().sum()
    }
}

/// One open stream's place in the counts, given back when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    open: Arc<Mutex<Open>>,
    session: Option<String>,
    peer: Option<IpAddr>,
}

impl StreamSlot {
    /// `stream`, holding this slot until it is dropped.
    pub fn hold<S: Stream>(self, stream: S) -> impl Stream<Item = S::Item> {
        stream.map(move |item| {
            let _held = &self;
            item
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
            if let Some(n) = counts.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(key);
                }
            }
        }
        if let Some(session) = &self.session {
            release(&mut open.sessions, session);
        }
        if let Some(peer) = &self.peer {
            release(&mut open.addresses, peer);
        }
    }
}

/// The client's address, when the server was started with [`crate::serve::serve`] (which
/// gives every request its `ConnectInfo`); none otherwise (an app driven in process).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
        Ok(PeerAddr(peer))
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use collab_core::{AgentId, ParticipantId, RoomId, TenantId};

    use super::*;

    fn agent(name: &str) -> Actor {
        Actor::Agent {
            tenant: TenantId::new("example").expect("a tenant"),
            agent: AgentId::new(name).expect("an agent"),
        }
    }

    #[test]
    fn each_session_and_each_address_has_its_cap_and_a_dropped_slot_frees_its_place() {
        let limits = StreamLimits::default()
            .with_per_session(2)
            .and_then(|l| l.with_per_address(3))
            .expect("limits");
        let streams = LiveStreams::new(limits);
        let (home, office) = ("192.0.2.1".parse().ok(), "192.0.2.2".parse().ok());
        let ada = agent("ada");
        let first = streams.open(&ada, home).expect("a first stream");
        let _second = streams.open(&ada, home).expect("a second stream");
        let refused = streams.open(&ada, office);
        assert!(
            matches!(refused, Err(Error::RateLimited { retry_after }) if retry_after == RETRY_AFTER),
            "{refused:?}"
        );
        // Another session from the same address has its own count, up to the address's cap.
        let _third = streams.open(&agent("bob"), home).expect("bob's stream");
        assert!(matches!(
            streams.open(&agent("cy"), home),
            Err(Error::RateLimited { .. })
        ));
        assert_eq!(streams.open_streams(), 3, "refusals counted nothing");
        drop(first);
        let _again = streams.open(&ada, office).expect("the freed slot");
        // A customer counts by participation; no address known counts against the session only.
        let customer = Actor::Customer {
            room: RoomId::from_u128(1),
            participant: ParticipantId::from_u128(2),
        };
        let _a = streams.open(&customer, None).expect("a customer's stream");
        let _b = streams.open(&customer, None).expect("a second");
        assert!(matches!(streams.open(&customer, None), Err(Error::RateLimited { .. })));
    }

    #[test]
    fn a_cap_of_zero_is_refused_naming_the_field() {
        let refused = StreamLimits::default().with_per_session(0);
        assert!(matches!(
            refused,
            Err(Error::Invalid {
                field: "live_streams_per_session",
                ..
            })
        ));
        let refused = StreamLimits::default().with_per_address(0);
        assert!(matches!(
            refused,
            Err(Error::Invalid {
                field: "live_streams_per_address",
                ..
            })
        ));
        let refused = StreamLimits::default().with_session_check(Duration::ZERO);
        assert!(matches!(
            refused,
            Err(Error::Invalid {
                field: "live_session_check",
                ..
            })
        ));
    }
}
