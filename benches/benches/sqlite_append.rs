//! SQLite append path: 64 concurrent writers over 1,000 rooms, one message event per append,
//! through `SqliteRoomStore` (group commit), vs raw rusqlite inserts of the same event rows into
//! the same schema, (a) one row per transaction and (b) 64 rows per transaction, in the same
//! run; then append latency p50/p99 at that load.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use collab_benches::{fixture, messages_after, new_room, percentile, runtime};
use collab_core::store::Append;
use collab_core::{Error, Event, RoomState, RoomStore};
use collab_store_sqlite::SqliteRoomStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROOMS: usize = 1_000;
const WRITERS: usize = 64;
/// Appends per writer per measured iteration.
const PER_WRITER: usize = 50;

/// The append of one message after `state`.
fn message(state: &RoomState) -> Append {
    let events = messages_after(&mut state.clone(), 1);
    fixture(Append::new(Some(state), events))
}

/// A store with `ROOMS` rooms, and their states.
async fn store_with_rooms(path: &std::path::Path) -> (SqliteRoomStore, Vec<RoomState>) {
    let store = fixture(SqliteRoomStore::open(path).await);
    let mut states = Vec::with_capacity(ROOMS);
    for i in 0..ROOMS {
        let (created, state) = new_room(i as u128 + 1);
        fixture(store.append(fixture(Append::new(None, vec![created]))).await);
        states.push(state);
    }
    (store, states)
}

/// Runs `PER_WRITER` appends in each of `WRITERS` tasks, each over its share of the rooms
/// (interleaved), and returns the states after, the wall time and each append's latency.
async fn appends(store: &SqliteRoomStore, states: Vec<RoomState>) -> (Vec<RoomState>, Duration, Vec<Duration>) {
    let mut shares: Vec<Vec<RoomState>> = (0..WRITERS).map(|_| Vec::new()).collect();
    for (i, state) in states.into_iter().enumerate() {
        shares[i % WRITERS].push(state);
    }
    let started = Instant::now();
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|mut share| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PER_WRITER);
                for i in 0..PER_WRITER {
                    let slot = i % share.len();
                    let append = message(&share[slot]);
                    let sent = Instant::now();
                    fixture(store.append(append.clone()).await);
                    latencies.push(sent.elapsed());
                    for event in &append.events {
                        share[slot].apply(event);
                    }
                }
                (share, latencies)
            })
        })
        .collect();
    let mut states = Vec::with_capacity(ROOMS);
    let mut latencies = Vec::new();
    for task in tasks {
        let (share, mine) = fixture(task.await.map_err(|e| Error::backend("task", e)));
        states.extend(share);
        latencies.extend(mine);
    }
    (states, started.elapsed(), latencies)
}

/// A raw connection to a fresh file with the store's schema.
fn raw_connection(path: &std::path::Path) -> rusqlite::Connection {
    let rt = runtime();
    drop(rt.block_on(SqliteRoomStore::open(path)));
    let conn = fixture(rusqlite::Connection::open(path).map_err(|e| Error::backend("sqlite", e)));
    fixture(
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(|e| Error::backend("sqlite", e)),
    );
    conn
}

/// Raw inserts of `count` event rows like ours, interleaved over the rooms, `per_transaction`
/// rows per transaction.
fn raw_inserts(
    conn: &rusqlite::Connection,
    next_seq: &mut [i64],
    row: &str,
    count: usize,
    per_transaction: usize,
) -> Duration {
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        fixture(conn.execute_batch("BEGIN").map_err(|e| Error::backend("sqlite", e)));
        for _ in 0..per_transaction.min(count - done) {
            let room = done % ROOMS;
            next_seq[room] += 1;
            let mut insert = fixture(
                conn.prepare_cached("INSERT INTO events (room, seq, data) VALUES (?1, ?2, ?3)")
                    .map_err(|e| Error::backend("sqlite", e)),
            );
            fixture(
                insert
                    .execute(rusqlite::params![(room as u128 + 1).to_be_bytes(), next_seq[room], row])
                    .map_err(|e| Error::backend("sqlite", e)),
            );
            done += 1;
        }
        fixture(conn.execute_batch("COMMIT").map_err(|e| Error::backend("sqlite", e)));
    }
    started.elapsed()
}

/// One event row as our store writes it.
fn sample_row() -> String {
    let (_, state) = new_room(1);
    let event: &Event = &message(&state).events[0];
    fixture(serde_json::to_string(event).map_err(|e| Error::backend("json", e)))
}

fn append_throughput(c: &mut Criterion) {
    let rt = runtime();
    let dir = fixture(tempfile::tempdir().map_err(|e| Error::backend("tempdir", e)));
    let (store, states) = rt.block_on(store_with_rooms(&dir.path().join("ours.db")));
    let states = Arc::new(std::sync::Mutex::new(Some(states)));
    let row = sample_row();
    // Each raw baseline on a file of its own, so that neither runs on the other's leftovers.
    let raw_single = raw_connection(&dir.path().join("raw-1.db"));
    let raw_batched = raw_connection(&dir.path().join("raw-64.db"));
    let mut single_seq = vec![1i64; ROOMS];
    let mut batched_seq = vec![1i64; ROOMS];
    let total = WRITERS * PER_WRITER;

    let mut group = c.benchmark_group("sqlite_append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(total as u64));
    group.bench_function("raw_1_row_per_transaction", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| raw_inserts(&raw_single, &mut single_seq, &row, total, 1))
                .sum()
        })
    });
    group.bench_function("raw_64_rows_per_transaction", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| raw_inserts(&raw_batched, &mut batched_seq, &row, total, 64))
                .sum()
        })
    });
    group.bench_function("store_64_writers", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let taken = states.lock().ok().and_then(|mut s| s.take()).unwrap_or_default();
                let (after, took, _) = rt.block_on(appends(&store, taken));
                if let Ok(mut s) = states.lock() {
                    *s = Some(after);
                }
                elapsed += took;
            }
            elapsed
        })
    });
    group.finish();

    // Latency at the same load, over a longer run.
    let mut latencies = Vec::new();
    let mut wall = Duration::ZERO;
    for _ in 0..10 {
        let taken = states.lock().ok().and_then(|mut s| s.take()).unwrap_or_default();
        let (after, took, mine) = rt.block_on(appends(&store, taken));
        if let Ok(mut s) = states.lock() {
            *s = Some(after);
        }
        wall += took;
        latencies.extend(mine);
    }
    latencies.sort();
    println!(
        "store_64_writers latency over {} appends: p50 {:?}, p99 {:?}, max {:?}; {:.0} appends/s",
        latencies.len(),
        percentile(&latencies, 50),
        percentile(&latencies, 99),
        latencies.last().copied().unwrap_or_default(),
        latencies.len() as f64 / wall.as_secs_f64()
    );
}

criterion_group!(benches, append_throughput);
criterion_main!(benches);
