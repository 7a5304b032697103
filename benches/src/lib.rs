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
