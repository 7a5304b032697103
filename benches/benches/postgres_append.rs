//! PostgreSQL append path: 64 concurrent writers over 1,000 rooms, one message event per append,
//! through `PostgresRoomStore` (group commit, one NOTIFY per group), vs raw tokio-postgres
//! inserts of the same event rows into a copy of the events table, on one connection, in the
//! same run: (a) one row per transaction, (b) 64 rows per transaction in one multi-row INSERT
//! (the goal is ≥ 0.7× this one); then (c) the least any store of this schema must do for the
//! same appends, in raw statements: 64 rows per transaction as in (b), plus the update of their
//! rooms' summaries and one `pg_notify` naming them all, in the same transaction (the floor: what is
//! left to gain is the gap between it and ours); then append latency p50/p99 at that load.
//! The same store told not to notify (`PostgresConfig::with_notify(false)`, for a deployment
//! whose wake-ups go through NATS after the commit) is measured beside (c) without its
//! `pg_notify`: that design's floor. Last, (d) the store's own group statement
//! (`testing::PLAIN_APPEND_STATEMENT`: (c) plus the rooms locked in id order and each checked
//! against its expected seq) run raw from rows encoded beforehand, 64 rooms per statement: the
//! floor of the design the store ships, so that ours against (d) is the cost of the store's own
//! work around the statement (encoding, forming groups, answering the callers).
//!
//! The machine is shared, and the database's own background work (autovacuum of the rooms
//! tables, checkpoints) comes and goes: two criterion measurements taken a minute apart can
//! differ by a third. So a full run (`cargo bench ... --bench postgres_append`, no filter) ends
//! with *paired* figures: rounds of one iteration of (b), (c) and ours back to back, in
//! rotating order, and the median over the rounds of each per-round ratio.
//!
//! Needs the test database (`COLLAB_TEST_DATABASE_URL`, default 127.0.0.1:5432/test); works in
//! a schema of its own, dropped afterwards.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use collab_benches::{AppendLoad, fixture, full_run, median, runtime, sample_event_row, sample_summary_row};
use collab_core::Error;
use collab_store_postgres::testing::{PLAIN_APPEND_STATEMENT, TestSchema};
use criterion::{Bencher, Criterion, Throughput, criterion_group, criterion_main};
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

/// Prepares the raw INSERT of event rows into `table`, one row per element of its arrays.
async fn prepare_insert(client: &tokio_postgres::Client, table: &str) -> tokio_postgres::Statement {
    pg(client
        .prepare(&format!(
            "INSERT INTO {table} (room, seq, data) SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[])"
        ))
        .await)
}

/// The rooms and seqs of rows `from..from + n` of a raw run: interleaved over the rooms, each
/// at its room's next seq.
fn next_rows(from: usize, n: usize, next_seq: &mut [i64]) -> (Vec<Uuid>, Vec<i64>) {
    (from..from + n)
        .map(|i| {
            let room = i % ROOMS;
            next_seq[room] += 1;
            (Uuid::from_u128(room as u128 + 1), next_seq[room])
        })
        .unzip()
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
    let insert = prepare_insert(client, table).await;
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        let n = per_transaction.min(count - done);
        let (rooms, seqs) = next_rows(done, n, next_seq);
        let data = vec![row; n];
        let tx = pg(client.transaction().await);
        pg(tx.execute(&insert, &[&rooms, &seqs, &data]).await);
        pg(tx.commit().await);
        done += n;
    }
    started.elapsed()
}

/// A raw connection, an empty copy of the events table, `events`, and a copy of the rooms table
/// with its storage settings and the bench rooms, `rooms`.
async fn raw_tables(schema: &TestSchema, events: &str, rooms: &str) -> tokio_postgres::Client {
    let client = raw_table(schema, events).await;
    let columns = "room, tenant, agent, status, seq, created_at, last_activity, first_lc, last_lc, full_lc, \
                   phone, email, summary";
    pg(client
        .batch_execute(&format!(
            "CREATE TABLE {rooms} (LIKE rooms INCLUDING ALL) WITH (fillfactor = 50); \
             INSERT INTO {rooms} ({columns}) SELECT {columns} FROM rooms"
        ))
        .await);
    client
}

/// The same rows as [`raw_inserts`] with 64 per transaction, and in the same transaction the
/// update of each row's room (the columns and summary our store writes) and, with `notify`, one
/// wake-up naming them all.
async fn raw_same_writes(
    client: &mut tokio_postgres::Client,
    (events, rooms): (&str, &str),
    next_seq: &mut [i64],
    (row, summary): (&str, &str),
    count: usize,
    notify: bool,
) -> Duration {
    let insert = prepare_insert(client, events).await;
    let update = pg(client
        .prepare(&format!(
            "UPDATE {rooms} SET status = 'active', seq = u.seq, last_activity = u.at, summary = u.summary \
             FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[]) AS u (room, seq, at, summary) \
             WHERE {rooms}.room = u.room"
        ))
        .await);
    let wake = pg(client
        .prepare("SELECT pg_notify('raw_bench', string_agg(wake_up, ' ')) FROM unnest($1::text[]) AS wake_up")
        .await);
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        let n = 64.min(count - done);
        let (room_ids, seqs) = next_rows(done, n, next_seq);
        let (data, summaries) = (vec![row; n], vec![summary; n]);
        let at = vec![collab_core::Clock::now(&collab_core::SystemClock).unix_millis(); n];
        let wake_ups: Vec<String> = room_ids
            .iter()
            .zip(&seqs)
            .map(|(room, seq)| format!("{room}:{seq}"))
            .collect();
        let tx = pg(client.transaction().await);
        // Sent together, as our store sends its statements: one round trip.
        let (inserted, updated, notified) = futures_util::future::join3(
            tx.execute(&insert, &[&room_ids, &seqs, &data]),
            tx.execute(&update, &[&room_ids, &seqs, &at, &summaries]),
            async {
                match notify {
                    true => tx.execute(&wake, &[&wake_ups]).await,
                    false => Ok(0),
                }
            },
        )
        .await;
        pg(inserted);
        pg(updated);
        pg(notified);
        pg(tx.commit().await);
        done += n;
    }
    started.elapsed()
}

/// The same appends as the store's own group statement
/// ([`PLAIN_APPEND_STATEMENT`]: rooms locked in id order, checked against their expected seq,
/// updated, their events inserted, one wake-up), run raw on one connection, 64 rooms per
/// statement, from rows encoded beforehand: the floor of the design the store ships, so that
/// ours against it is the cost of the store's own work (encoding, forming groups, answering).
/// `client` has the schema of a store whose rooms 1 to [`ROOMS`] exist.
async fn raw_store_statement(
    client: &tokio_postgres::Client,
    next_seq: &mut [i64],
    (row, summary): (&str, &str),
    count: usize,
) -> Duration {
    let statement = pg(client.prepare(PLAIN_APPEND_STATEMENT).await);
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        let n = 64.min(count - done);
        let (rooms, seqs) = next_rows(done, n, next_seq);
        let expected: Vec<i64> = seqs.iter().map(|seq| seq - 1).collect();
        let wake_ups: Vec<String> = rooms
            .iter()
            .zip(&seqs)
            .map(|(room, seq)| format!("{room}:{seq}"))
            .collect();
        let now = vec![collab_core::Clock::now(&collab_core::SystemClock).unix_millis(); n];
        let (tenant, agent, status) = (vec!["bench"; n], vec!["agent"; n], vec!["active"; n]);
        let no_text: Vec<Option<&str>> = vec![None; n];
        let no_time: Vec<Option<i64>> = vec![None; n];
        let (summaries, data) = (vec![summary; n], vec![row; n]);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 20] = [
            &"raw_bench",
            &rooms,
            &tenant,
            &agent,
            &status,
            &seqs,
            &now,
            &now,
            &no_text,
            &no_text,
            &no_text,
            &no_text,
            &no_text,
            &summaries,
            &no_time,
            &expected,
            &wake_ups,
            &rooms,
            &seqs,
            &data,
        ];
        let answers = pg(client.query(&statement, &params).await);
        let written = answers.iter().filter(|answer| answer.get::<_, bool>(2)).count();
        assert_eq!(written, n, "the raw statement wrote every room");
        done += n;
    }
    started.elapsed()
}

/// Times `run`, one call per iteration.
fn timed(b: &mut Bencher<'_>, mut run: impl FnMut() -> Duration) {
    b.iter_custom(|iters| (0..iters).map(|_| run()).sum())
}

fn append_throughput(c: &mut Criterion) {
    let rt = runtime();
    let Some(schema) = rt.block_on(TestSchema::create("postgres_append bench")) else {
        return;
    };
    let load = rt.block_on(AppendLoad::new(rt.block_on(schema.store()), ROOMS, WRITERS, PER_WRITER));
    // The same store told not to notify (`PostgresConfig::with_notify(false)`: wake-ups through
    // NATS after the commit), in a schema of its own, so that its rooms are its own.
    let Some(quiet_schema) = rt.block_on(TestSchema::create("postgres_append bench, no NOTIFY")) else {
        return;
    };
    let quiet_store = fixture(rt.block_on(collab_store_postgres::PostgresRoomStore::connect(
        &quiet_schema.config().clone().with_notify(false),
    )));
    let quiet_load = rt.block_on(AppendLoad::new(quiet_store, ROOMS, WRITERS, PER_WRITER));
    let row = sample_event_row();
    let mut raw_single = rt.block_on(raw_table(&schema, "raw_single"));
    let mut raw_batched = rt.block_on(raw_table(&schema, "raw_batched"));
    let mut raw_same = rt.block_on(raw_tables(&schema, "raw_same_events", "raw_same_rooms"));
    let mut raw_quiet = rt.block_on(raw_tables(&schema, "raw_quiet_events", "raw_quiet_rooms"));
    let summary = sample_summary_row();
    // The store's own statement, raw, on rooms a store created in a schema of their own.
    let Some(statement_schema) = rt.block_on(TestSchema::create("postgres_append bench, raw statement")) else {
        return;
    };
    rt.block_on(AppendLoad::new(
        rt.block_on(statement_schema.store()),
        ROOMS,
        WRITERS,
        PER_WRITER,
    ));
    let raw_statement = rt.block_on(statement_schema.client());
    let mut statement_seq = vec![1i64; ROOMS];
    let mut single_seq = vec![1i64; ROOMS];
    let mut batched_seq = vec![1i64; ROOMS];
    let mut same_seq = vec![1i64; ROOMS];
    let mut quiet_seq = vec![1i64; ROOMS];
    let total = load.appends_per_run();

    let mut single = || {
        rt.block_on(raw_inserts(
            &mut raw_single,
            "raw_single",
            &mut single_seq,
            &row,
            SINGLE_ROWS,
            1,
        ))
    };
    let mut batched = || {
        rt.block_on(raw_inserts(
            &mut raw_batched,
            "raw_batched",
            &mut batched_seq,
            &row,
            total,
            64,
        ))
    };
    let mut same = || {
        rt.block_on(raw_same_writes(
            &mut raw_same,
            ("raw_same_events", "raw_same_rooms"),
            &mut same_seq,
            (&row, &summary),
            total,
            true,
        ))
    };
    let mut same_quiet = || {
        rt.block_on(raw_same_writes(
            &mut raw_quiet,
            ("raw_quiet_events", "raw_quiet_rooms"),
            &mut quiet_seq,
            (&row, &summary),
            total,
            false,
        ))
    };
    let mut store_statement = || {
        rt.block_on(raw_store_statement(
            &raw_statement,
            &mut statement_seq,
            (&row, &summary),
            total,
        ))
    };
    let ours = || load.run(&rt).0;
    let ours_quiet = || quiet_load.run(&rt).0;

    let mut group = c.benchmark_group("postgres_append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(SINGLE_ROWS as u64));
    group.bench_function("raw_1_row_per_transaction", |b| timed(b, &mut single));
    group.throughput(Throughput::Elements(total as u64));
    group.bench_function("raw_64_rows_per_transaction", |b| timed(b, &mut batched));
    group.bench_function("raw_same_writes_64_per_transaction", |b| timed(b, &mut same));
    group.bench_function("raw_store_statement_64_per_statement", |b| {
        timed(b, &mut store_statement)
    });
    group.bench_function("store_64_writers", |b| timed(b, ours));
    group.bench_function("raw_same_writes_no_notify", |b| timed(b, &mut same_quiet));
    group.bench_function("store_64_writers_no_notify", |b| timed(b, ours_quiet));
    group.finish();

    // Latency at the same load, over a longer run.
    load.print_latency(&rt, "store_64_writers", 10);

    if !full_run() {
        return;
    }
    // Paired rounds: (b), (c), ours, (c) and ours without NOTIFY, and the store's statement raw,
    // one iteration each, in an order that rotates.
    let rounds = 15;
    let mut times: [Vec<f64>; 6] = Default::default();
    for round in 0..rounds {
        for i in 0..6 {
            let kind = (round + i) % 6;
            let took = match kind {
                0 => batched(),
                1 => same(),
                2 => ours(),
                3 => same_quiet(),
                4 => ours_quiet(),
                _ => store_statement(),
            };
            times[kind].push(took.as_secs_f64());
        }
    }
    let rate = |list: &[f64]| total as f64 / median(list.to_vec());
    // The median over the rounds of time(a) / time(b): how fast b goes relative to a.
    let ratio = |a: usize, b: usize| median(times[a].iter().zip(&times[b]).map(|(a, b)| a / b).collect());
    println!(
        "paired, {rounds} rounds of {total} rows: raw_64_rows_per_transaction {:.0} rows/s; \
         raw_same_writes_64_per_transaction {:.0} rows/s; store_64_writers {:.0} appends/s; \
         store/raw_64_rows {:.2}x; store/raw_same_writes {:.2}x; raw_same_writes/raw_64_rows {:.2}x",
        rate(&times[0]),
        rate(&times[1]),
        rate(&times[2]),
        ratio(0, 2),
        ratio(1, 2),
        ratio(0, 1),
    );
    println!(
        "paired, without NOTIFY: raw_same_writes_no_notify {:.0} rows/s; store_64_writers_no_notify {:.0} appends/s; \
         store_no_notify/raw_64_rows {:.2}x; store_no_notify/raw_same_writes_no_notify {:.2}x; \
         raw_same_writes_no_notify/raw_64_rows {:.2}x",
        rate(&times[3]),
        rate(&times[4]),
        ratio(0, 4),
        ratio(3, 4),
        ratio(0, 3),
    );
    println!(
        "paired, the store's statement raw: raw_store_statement {:.0} rows/s; store/raw_store_statement {:.2}x; \
         raw_store_statement/raw_64_rows {:.2}x",
        rate(&times[5]),
        ratio(5, 2),
        ratio(0, 5),
    );
}

criterion_group!(benches, append_throughput);
criterion_main!(benches);
