//! PostgreSQL append path: 64 concurrent writers over 1,000 rooms, one message event per append,
//! through `PostgresRoomStore` (group commit, NOTIFY in each transaction), vs raw tokio-postgres
//! inserts of the same event rows into a copy of the events table, on one connection, in the
//! same run: (a) one row per transaction, (b) 64 rows per transaction in one multi-row INSERT
//! (the goal is ≥ 0.7× this one); then append latency p50/p99 at that load.
//!
//! Needs the test database (`COLLAB_TEST_DATABASE_URL`, default 127.0.0.1:5432/test); works in
//! a schema of its own, dropped afterwards.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use collab_benches::{AppendLoad, fixture, runtime, sample_event_row};
use collab_core::Error;
use collab_store_postgres::testing::TestSchema;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use uuid::Uuid;

const ROOMS: usize = 1_000;
const WRITERS: usize = 64;
/// Appends per writer per measured iteration.
const PER_WRITER: usize = 50;
/// Rows per iteration of the one-row-per-transaction baseline: each commit waits for the disk.
const SINGLE_ROWS: usize = 320;

fn pg<T>(result: Result<T, tokio_postgres::Error>) -> T {
    fixture(result.map_err(|e| Error::backend("postgres", e)))
}

/// A raw connection and an empty copy of the events table, `table`.
async fn raw_table(schema: &TestSchema, table: &str) -> tokio_postgres::Client {
    let client = schema.client().await;
    pg(client
        .batch_execute(&format!("CREATE TABLE {table} (LIKE events INCLUDING ALL)"))
        .await);
    client
}

/// Raw inserts of `count` event rows like ours into `table`, interleaved over the rooms,
/// `per_transaction` rows per transaction, each transaction one INSERT.
async fn raw_inserts(
    client: &mut tokio_postgres::Client,
    table: &str,
    next_seq: &mut [i64],
    row: &str,
    count: usize,
    per_transaction: usize,
) -> Duration {
    let insert = pg(client
        .prepare(&format!(
            "INSERT INTO {table} (room, seq, data) SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[])"
        ))
        .await);
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        let n = per_transaction.min(count - done);
        let (mut rooms, mut seqs, mut data) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for i in done..done + n {
            let room = i % ROOMS;
            next_seq[room] += 1;
            rooms.push(Uuid::from_u128(room as u128 + 1));
            seqs.push(next_seq[room]);
            data.push(row);
        }
        let tx = pg(client.transaction().await);
        pg(tx.execute(&insert, &[&rooms, &seqs, &data]).await);
        pg(tx.commit().await);
        done += n;
    }
    started.elapsed()
}

fn append_throughput(c: &mut Criterion) {
    let rt = runtime();
    let Some(schema) = rt.block_on(TestSchema::create("postgres_append bench")) else {
        return;
    };
    let load = rt.block_on(AppendLoad::new(rt.block_on(schema.store()), ROOMS, WRITERS, PER_WRITER));
    let row = sample_event_row();
    let mut raw_single = rt.block_on(raw_table(&schema, "raw_single"));
    let mut raw_batched = rt.block_on(raw_table(&schema, "raw_batched"));
    let mut single_seq = vec![1i64; ROOMS];
    let mut batched_seq = vec![1i64; ROOMS];
    let total = load.appends_per_run();

    let mut group = c.benchmark_group("postgres_append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(SINGLE_ROWS as u64));
    group.bench_function("raw_1_row_per_transaction", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    rt.block_on(raw_inserts(
                        &mut raw_single,
                        "raw_single",
                        &mut single_seq,
                        &row,
                        SINGLE_ROWS,
                        1,
                    ))
                })
                .sum()
        })
    });
    group.throughput(Throughput::Elements(total as u64));
    group.bench_function("raw_64_rows_per_transaction", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    rt.block_on(raw_inserts(
                        &mut raw_batched,
                        "raw_batched",
                        &mut batched_seq,
                        &row,
                        total,
                        64,
                    ))
                })
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
