//! Criterion benches of collab. Run them with `cargo bench -p collab-benches`; each bench prints
//! its own figures and, where it has one, the raw baseline measured in the same run.
//!
//! This library holds the fixtures the benches share.

use collab_core::rooms::{Rooms, RoomsBuilder};
use collab_core::{Actor, AgentId, Error, RoomId, TenantId};

/// Unwraps a fixture step; a bench cannot go on without it.
pub fn fixture<T>(result: Result<T, Error>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("bench fixture failed: {e}"),
    }
}

/// The agent the benches act as.
pub fn agent() -> Actor {
    Actor::Agent {
        tenant: fixture(TenantId::new("bench")),
        agent: fixture(AgentId::new("agent")),
    }
}

/// A service from `builder` and a fresh room in it.
pub async fn service_with_room(builder: RoomsBuilder) -> (Rooms, RoomId) {
    let rooms = builder.build();
    let room = fixture(rooms.create_room(&agent()).await).room;
    (rooms, room)
}

/// The process's resident set size in bytes, from `/proc/self/statm` (Linux).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident_pages * 4096)
}

/// A multi-threaded tokio runtime on the machine's two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    fixture(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::backend("tokio", e)),
    )
}

/// The `p`-th percentile (0 to 100) of sorted `values`.
pub fn percentile(sorted: &[std::time::Duration], p: usize) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    sorted[(sorted.len() - 1) * p / 100]
}

/// The first event of bench room `id`, opened by [`agent`] now, and the room's state.
pub fn new_room(id: u128) -> (collab_core::Event, collab_core::RoomState) {
    use collab_core::Clock;
    let created = collab_core::create_room(
        RoomId::from_u128(id),
        fixture(TenantId::new("bench")),
        fixture(AgentId::new("agent")),
        collab_core::SystemClock.now(),
    );
    let state = fixture(collab_core::RoomState::replay([&created])).unwrap_or_else(|| panic!("the room exists"));
    (created, state)
}

/// `count` chat messages by [`agent`] after `state`, decided and applied to it (not stored).
pub fn messages_after(state: &mut collab_core::RoomState, count: usize) -> Vec<collab_core::Event> {
    use collab_core::Clock;
    let policy = collab_core::Policy::default();
    let actor = agent();
    let mut events = Vec::with_capacity(count);
    for i in 0..count {
        let command = collab_core::Command::PostMessage {
            text: format!("Message {i}: could you please send me the signed form?"),
            client_key: None,
        };
        let ctx = collab_core::Context {
            now: collab_core::SystemClock.now(),
            actor: &actor,
            policy: &policy,
        };
        for event in fixture(collab_core::decide(state, &command, &ctx)) {
            state.apply(&event);
            events.push(event);
        }
    }
    events
}
