//! SQLite append path: 64 concurrent writers over 1,000 rooms, one message event per append,
//! through `SqliteRoomStore` (group commit), vs raw rusqlite inserts of the same event rows into
//! the same schema, (a) one row per transaction and (b) 64 rows per transaction, in the same
//! run; then append latency p50/p99 at that load.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use collab_benches::{AppendLoad, fixture, runtime, sample_event_row};
use collab_core::Error;
use collab_store_sqlite::SqliteRoomStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROOMS: usize = 1_000;
const WRITERS: usize = 64;
/// Appends per writer per measured iteration.
const PER_WRITER: usize = 50;

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

fn append_throughput(c: &mut Criterion) {
    let rt = runtime();
    let dir = fixture(tempfile::tempdir().map_err(|e| Error::backend("tempdir", e)));
    let store = rt.block_on(SqliteRoomStore::open(dir.path().join("ours.db")));
    let load = rt.block_on(AppendLoad::new(fixture(store), ROOMS, WRITERS, PER_WRITER));
    let row = sample_event_row();
    // Each raw baseline on a file of its own, so that neither runs on the other's leftovers.
    let raw_single = raw_connection(&dir.path().join("raw-1.db"));
    let raw_batched = raw_connection(&dir.path().join("raw-64.db"));
    let mut single_seq = vec![1i64; ROOMS];
    let mut batched_seq = vec![1i64; ROOMS];
    let total = load.appends_per_run();

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
        b.iter_custom(|iters| (0..iters).map(|_| load.run(&rt).0).sum())
    });
    group.finish();

    // Latency at the same load, over a longer run.
    load.print_latency(&rt, "store_64_writers", 10);
}

criterion_group!(benches, append_throughput);
criterion_main!(benches);
