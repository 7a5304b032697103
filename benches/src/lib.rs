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

/// The peak of the process's RSS over a stretch of work, sampled every millisecond by a thread
/// of its own from [`PeakRss::start`] to [`PeakRss::growth`].
#[derive(Debug)]
pub struct PeakRss {
    before: u64,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sampler: std::thread::JoinHandle<()>,
}

impl PeakRss {
    /// Notes the RSS now and starts sampling. Panics off Linux (no `/proc/self/statm`).
    pub fn start() -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let before = rss_bytes().unwrap_or_else(|| panic!("this bench reads /proc/self/statm (Linux only)"));
        let peak = std::sync::Arc::new(AtomicU64::new(before));
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let sampler = std::thread::spawn({
            let (peak, done) = (peak.clone(), done.clone());
            move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_bytes().unwrap_or(0), Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        });
        Self {
            before,
            peak,
            done,
            sampler,
        }
    }

    /// Stops sampling: the peak's growth over the RSS at the start, in bytes.
    pub fn growth(self) -> u64 {
        use std::sync::atomic::Ordering;
        self.done.store(true, Ordering::Relaxed);
        let _ = self.sampler.join();
        self.peak.load(Ordering::Relaxed).saturating_sub(self.before)
    }
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

/// Whether this is a full benchmark run (`cargo bench`, no filter): not `cargo test`, a
/// filter or criterion's profiling options. The benches' paired figures run only then.
pub fn full_run() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.iter().any(|a| a == "--bench") && args.iter().all(|a| a.starts_with("--bench"))
}

/// The median of `values` (NaN when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The first event of bench room `id`, opened by [`agent`] now, and the room's state.
pub fn new_room(id: u128) -> (collab_core::Event, collab_core::RoomState) {
    use collab_core::Clock;
    let created = collab_core::decide::create_room(
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
        let command = collab_core::decide::Command::PostMessage {
            text: format!("Message {i}: could you please send me the signed form?"),
            client_key: None,
        };
        let ctx = collab_core::decide::Context {
            now: collab_core::SystemClock.now(),
            actor: &actor,
            policy: &policy,
        };
        for event in fixture(collab_core::decide::decide(state, &command, &ctx)) {
            state.apply(&event);
            events.push(event);
        }
    }
    events
}

/// The append of one chat message after `state`.
pub fn message_append(state: &collab_core::RoomState) -> collab_core::store::Append {
    let events = messages_after(&mut state.clone(), 1);
    fixture(collab_core::store::Append::new(Some(state), events))
}

/// One message event as the stores write it: its JSON.
pub fn sample_event_row() -> String {
    let (_, state) = new_room(1);
    let append = message_append(&state);
    fixture(serde_json::to_string(&append.events[0]).map_err(|e| Error::backend("json", e)))
}

/// The summary of a room after one message, as the stores write it: its JSON.
pub fn sample_summary_row() -> String {
    let (_, state) = new_room(1);
    let append = message_append(&state);
    fixture(serde_json::to_string(&append.summary).map_err(|e| Error::backend("json", e)))
}

/// Runs `per_writer` message appends in each of `writers` tasks, each over its share of the
/// rooms (interleaved), and returns the states after, the wall time and each append's latency.
/// The appends are decided before the clock starts (as the raw baselines' rows are encoded
/// beforehand): what is timed is the store's append path, not the state machine.
pub async fn concurrent_appends<S: collab_core::RoomStore + Clone>(
    store: &S,
    states: Vec<collab_core::RoomState>,
    writers: usize,
    per_writer: usize,
) -> (
    Vec<collab_core::RoomState>,
    std::time::Duration,
    Vec<std::time::Duration>,
) {
    use std::time::Instant;
    let mut shares: Vec<Vec<collab_core::RoomState>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, state) in states.into_iter().enumerate() {
        shares[i % writers].push(state);
    }
    let mut states = Vec::with_capacity(shares.iter().map(Vec::len).sum());
    let mut appends = Vec::with_capacity(writers);
    for mut share in shares {
        let mine: Vec<collab_core::store::Append> = (0..per_writer)
            .map(|i| {
                let slot = i % share.len();
                let append = message_append(&share[slot]);
                for event in &append.events {
                    share[slot].apply(event);
                }
                append
            })
            .collect();
        appends.push(mine);
        states.extend(share);
    }
    let started = Instant::now();
    let tasks: Vec<_> = appends
        .into_iter()
        .map(|mine| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(mine.len());
                for append in mine {
                    let sent = Instant::now();
                    fixture(store.append(append).await);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(fixture(task.await.map_err(|e| Error::backend("task", e))));
    }
    (states, started.elapsed(), latencies)
}

/// Message appends by concurrent writers over many rooms of one store: the load of the append
/// benches. Each run goes on from the rooms' states after the previous one.
pub struct AppendLoad<S> {
    store: S,
    states: std::sync::Mutex<Vec<collab_core::RoomState>>,
    writers: usize,
    per_writer: usize,
}

impl<S> std::fmt::Debug for AppendLoad<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendLoad")
            .field("writers", &self.writers)
            .field("per_writer", &self.per_writer)
            .finish_non_exhaustive()
    }
}

impl<S: collab_core::RoomStore + Clone> AppendLoad<S> {
    /// Creates `rooms` bench rooms (ids 1 to `rooms`) in `store`.
    pub async fn new(store: S, rooms: usize, writers: usize, per_writer: usize) -> Self {
        let mut states = Vec::with_capacity(rooms);
        for i in 0..rooms {
            let (created, state) = new_room(i as u128 + 1);
            fixture(
                store
                    .append(fixture(collab_core::store::Append::new(None, vec![created])))
                    .await,
            );
            states.push(state);
        }
        Self {
            store,
            states: std::sync::Mutex::new(states),
            writers,
            per_writer,
        }
    }

    /// Appends per run: writers × appends per writer.
    pub fn appends_per_run(&self) -> usize {
        self.writers * self.per_writer
    }

    /// One run: its wall time and each append's latency.
    pub fn run(&self, rt: &tokio::runtime::Runtime) -> (std::time::Duration, Vec<std::time::Duration>) {
        let taken = std::mem::take(&mut *self.states.lock().unwrap_or_else(|p| p.into_inner()));
        let (after, took, latencies) =
            rt.block_on(concurrent_appends(&self.store, taken, self.writers, self.per_writer));
        *self.states.lock().unwrap_or_else(|p| p.into_inner()) = after;
        (took, latencies)
    }

    /// Prints the latency percentiles and the rate over `runs` runs.
    pub fn print_latency(&self, rt: &tokio::runtime::Runtime, name: &str, runs: usize) {
        let mut latencies = Vec::new();
        let mut wall = std::time::Duration::ZERO;
        for _ in 0..runs {
            let (took, mine) = self.run(rt);
            wall += took;
            latencies.extend(mine);
        }
        latencies.sort();
        println!(
            "{name} latency over {} appends: p50 {:?}, p99 {:?}, max {:?}; {:.0} appends/s",
            latencies.len(),
            percentile(&latencies, 50),
            percentile(&latencies, 99),
            latencies.last().copied().unwrap_or_default(),
            latencies.len() as f64 / wall.as_secs_f64()
        );
    }
}

/// Blob store fixtures: the stores the blob benches compare, and upload streams.
pub mod blobs {
    use bytes::Bytes;
    use collab_core::blob::{BlobKey, UploadStream};
    use collab_core::{DocumentId, RoomId, TenantId};
    use collab_store_s3::test_server::TestS3Server;
    use collab_store_s3::{Durability, ObjectBlobStore};
    use futures_util::stream;

    use super::fixture;

    /// The size of the chunks an upload stream yields, like the frames of an HTTP body.
    pub const CHUNK: usize = 64 * 1024;

    /// A store on local files in a temp dir, with the given durability (the default,
    /// `Synced`, fsyncs each upload).
    pub fn local_store(durability: Durability) -> (ObjectBlobStore, tempfile::TempDir) {
        let dir = fixture(tempfile::tempdir().map_err(|e| collab_core::Error::backend("temp dir", e)));
        let store = fixture(fixture(ObjectBlobStore::local(dir.path(), durability)).build());
        (store, dir)
    }

    /// A store on an S3 server started in this process over a temp dir.
    pub async fn s3_store() -> (ObjectBlobStore, TestS3Server, tempfile::TempDir) {
        let dir = fixture(tempfile::tempdir().map_err(|e| collab_core::Error::backend("temp dir", e)));
        let server = fixture(
            TestS3Server::start(dir.path())
                .await
                .map_err(|e| collab_core::Error::backend("S3 server", e)),
        );
        let store = fixture(fixture(ObjectBlobStore::s3(&server.config())).build());
        (store, server, dir)
    }

    /// The key of document `n` in the benches' room.
    pub fn key(n: u128) -> BlobKey {
        BlobKey::for_document(
            &fixture(TenantId::new("bench")),
            RoomId::from_u128(1),
            DocumentId::from_u128(n),
        )
    }

    /// `data` as an upload stream of [`CHUNK`]-byte slices (no copy).
    pub fn slices(data: &Bytes) -> UploadStream {
        let data = data.clone();
        let chunks = (0..data.len().div_ceil(CHUNK)).map(move |i| {
            let end = ((i + 1) * CHUNK).min(data.len());
            Ok(data.slice(i * CHUNK..end))
        });
        Box::pin(stream::iter(chunks))
    }

    /// `len` bytes as an upload stream of freshly allocated [`CHUNK`]-byte chunks, as a
    /// server reading a request body would make them.
    pub fn fresh_chunks(len: usize) -> UploadStream {
        let chunks = (0..len.div_ceil(CHUNK)).map(move |i| {
            let size = CHUNK.min(len - i * CHUNK);
            Ok(Bytes::from(vec![(i % 251) as u8; size]))
        });
        Box::pin(stream::iter(chunks))
    }
}
