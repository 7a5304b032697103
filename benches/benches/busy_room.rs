//! One busy room: 64 concurrent posters in a single room, each posting chat messages through
//! `Rooms::post_message` (decide, append, publish), on SQLite and on PostgreSQL; persisted
//! messages per second and post latency p50/p99, beside a raw baseline measured in the same
//! run: the same event rows inserted into one room of the same schema, 64 per transaction
//! (SQLite: rusqlite; PostgreSQL: one multi-row INSERT).
//!
//! Every post must succeed: a post that gives up (too many conflicts) fails the bench, since a
//! busy room that refuses its posters is not fast, only broken.
//!
//! PostgreSQL needs the test database (`COLLAB_TEST_DATABASE_URL`, default
//! 127.0.0.1:5432/test); without it that half is skipped with a message.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use collab_benches::{agent, fixture, percentile, runtime, sample_event_row};
use collab_core::rooms::Rooms;
use collab_core::{Error, RoomId, RoomStore};
use collab_store_postgres::testing::TestSchema;
use collab_store_sqlite::SqliteRoomStore;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

const POSTERS: usize = 64;
/// Posts per poster per measured iteration.
const PER_POSTER: usize = 20;

/// A service on `store` and one room in it (the agent's alone: a customer's posts take the same
/// path).
async fn busy_room(store: Arc<dyn RoomStore>) -> (Rooms, RoomId) {
    let rooms = Rooms::builder().room_store(store).build();
    let room = fixture(rooms.create_room(&agent()).await).room;
    (rooms, room)
}

/// `POSTERS` tasks posting `PER_POSTER` messages each into `room`: wall time and every post's
/// latency.
async fn posters(rooms: &Rooms, room: RoomId) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..POSTERS)
        .map(|poster| {
            let rooms = rooms.clone();
            tokio::spawn(async move {
                let actor = agent();
                let mut latencies = Vec::with_capacity(PER_POSTER);
                for i in 0..PER_POSTER {
                    let text = format!("Poster {poster}, message {i}: could you send the signed form?");
                    let sent = Instant::now();
                    fixture(rooms.post_message(&actor, room, &text, None).await);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(POSTERS * PER_POSTER);
    for task in tasks {
        latencies.extend(fixture(task.await.map_err(|e| Error::backend("task", e))));
    }
    (started.elapsed(), latencies)
}

/// Benches the posters in `room` as `ours`: every run's wall time and latencies.
fn ours(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    rooms: &Rooms,
    room: RoomId,
) -> Vec<(Duration, Vec<Duration>)> {
    let mut runs = Vec::new();
    group.bench_function("ours", |b| {
        b.iter_custom(|iterations| {
            let mut wall = Duration::ZERO;
            for _ in 0..iterations {
                let run = rt.block_on(posters(rooms, room));
                wall += run.0;
                runs.push(run);
            }
            wall
        })
    });
    runs
}

fn report(name: &str, runs: &[(Duration, Vec<Duration>)]) {
    let posts: usize = runs.iter().map(|(_, l)| l.len()).sum();
    let wall: Duration = runs.iter().map(|(w, _)| *w).sum();
    let mut latencies: Vec<Duration> = runs.iter().flat_map(|(_, l)| l.iter().copied()).collect();
    latencies.sort();
    println!(
        "busy_room/{name}: {posts} posts by {POSTERS} posters in one room: {:.0} msgs/s, p50 {:.2} ms, p99 {:.2} ms",
        posts as f64 / wall.as_secs_f64(),
        percentile(&latencies, 50).as_secs_f64() * 1e3,
        percentile(&latencies, 99).as_secs_f64() * 1e3,
    );
}

/// Raw rusqlite inserts of `count` event rows into one room, 64 per transaction.
fn sqlite_raw(conn: &rusqlite::Connection, next_seq: &mut i64, row: &str, count: usize) -> Duration {
    let sqlite = |e| Error::backend("sqlite", e);
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        fixture(conn.execute_batch("BEGIN").map_err(sqlite));
        for _ in 0..POSTERS.min(count - done) {
            *next_seq += 1;
            let mut insert = fixture(
                conn.prepare_cached("INSERT INTO events (room, seq, data) VALUES (?1, ?2, ?3)")
                    .map_err(sqlite),
            );
            fixture(
                insert
                    .execute(rusqlite::params![7u128.to_be_bytes(), *next_seq, row])
                    .map_err(sqlite),
            );
            done += 1;
        }
        fixture(conn.execute_batch("COMMIT").map_err(sqlite));
    }
    started.elapsed()
}

fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = fixture(tempfile::tempdir().map_err(|e| Error::backend("tempdir", e)));
    let store = fixture(rt.block_on(SqliteRoomStore::open(dir.path().join("ours.db"))));
    let (rooms, room) = rt.block_on(busy_room(Arc::new(store)));
    let raw_path = dir.path().join("raw.db");
    drop(rt.block_on(SqliteRoomStore::open(&raw_path)));
    let raw = fixture(rusqlite::Connection::open(&raw_path).map_err(|e| Error::backend("sqlite", e)));
    fixture(
        raw.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(|e| Error::backend("sqlite", e)),
    );
    let row = sample_event_row();
    let mut raw_seq = 0i64;
    let total = POSTERS * PER_POSTER;

    let mut group = c.benchmark_group("busy_room_sqlite");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(total as u64));
    let runs = ours(&mut group, &rt, &rooms, room);
    group.bench_function("raw_64_per_transaction", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| sqlite_raw(&raw, &mut raw_seq, &row, total))
                .sum()
        })
    });
    group.finish();
    report("sqlite", &runs);
}

fn postgres(c: &mut Criterion) {
    let rt = runtime();
    let Some(schema) = rt.block_on(TestSchema::create("bench_busy_room")) else {
        eprintln!("busy_room/postgres: SKIPPED, no PostgreSQL (COLLAB_TEST_DATABASE_URL)");
        return;
    };
    let store = rt.block_on(schema.store());
    let (rooms, room) = rt.block_on(busy_room(Arc::new(store)));
    let client = rt.block_on(schema.client());
    let pg = |e| Error::backend("postgres", e);
    fixture(
        rt.block_on(client.batch_execute("CREATE TABLE raw_events (LIKE events INCLUDING ALL)"))
            .map_err(pg),
    );
    let insert = fixture(
        rt.block_on(client.prepare(
            "INSERT INTO raw_events (room, seq, data) SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[])",
        ))
        .map_err(pg),
    );
    let row = sample_event_row();
    let raw_room = uuid::Uuid::from_u128(7);
    let mut raw_seq = 0i64;
    let total = POSTERS * PER_POSTER;

    let mut group = c.benchmark_group("busy_room_postgres");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(total as u64));
    let runs = ours(&mut group, &rt, &rooms, room);
    group.bench_function("raw_64_per_transaction", |b| {
        b.iter_custom(|iterations| {
            let started = Instant::now();
            for _ in 0..iterations {
                for _ in 0..total / POSTERS {
                    let seqs: Vec<i64> = (0..POSTERS as i64).map(|i| raw_seq + i + 1).collect();
                    raw_seq += POSTERS as i64;
                    let ids = vec![raw_room; POSTERS];
                    let rows = vec![row.as_str(); POSTERS];
                    fixture(rt.block_on(client.execute(&insert, &[&ids, &seqs, &rows])).map_err(pg));
                }
            }
            started.elapsed()
        })
    });
    group.finish();
    report("postgres", &runs);
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
