//! Cross-server delivery latency over PostgreSQL: a message posted on server A until a
//! subscriber on server B has it (A's transaction NOTIFYs, B's listener wakes the subscriber,
//! which reads the event from the store), p50/p99; in the same run, the same post until a
//! subscriber on A itself has it (handed over in process) as the baseline. Each server is a
//! `Rooms` with its own connections and listener, as two processes would have.
//!
//! Then the same A -> B delivery while 64 writers post on A in rooms of their own, with the
//! wake-ups through PostgreSQL's NOTIFY and through NATS (stores that do not notify, and
//! `collab-transport-nats` on 127.0.0.1:4222; skipped with a message without it): from the call,
//! and split into the post's own append at that load (until acknowledged) and what the wake-up
//! path adds after it.
//!
//! Needs the test database (`COLLAB_TEST_DATABASE_URL`, default 127.0.0.1:5432/test); works in
//! a schema of its own, dropped afterwards.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use collab_benches::{agent, fixture, percentile, runtime};
use collab_core::rooms::{EventStream, Rooms};
use collab_core::{Entity, Error, RoomId, Seq};
use collab_store_postgres::PostgresRoomStore;
use collab_store_postgres::testing::TestSchema;
use collab_transport_nats::{NatsConfig, NatsTransport};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::StreamExt;

/// A server on `schema`: its own store (connections) and transport (listener).
async fn server(schema: &TestSchema) -> Rooms {
    Rooms::builder()
        .room_store(schema.store().await)
        .transport(schema.transport().await)
        .build()
}

/// Posts one message on `from` and waits until `to` yields it: the time from the call until
/// then, and until the post was acknowledged.
async fn deliver(from: &Rooms, room: RoomId, to: &mut EventStream) -> (Duration, Duration) {
    let started = Instant::now();
    let posted = fixture(from.post_message(&agent(), room, "How are you getting on?", None).await);
    let acknowledged = started.elapsed();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), to.next())
            .await
            .map_err(|e| Error::backend("subscription", e));
        let event = fixture(fixture(fixture(next).ok_or(Error::NotFound { what: Entity::Message })));
        if event.seq == posted.seq {
            return (started.elapsed(), acknowledged);
        }
    }
}

fn delivery_latency(c: &mut Criterion) {
    let rt = runtime();
    let Some(schema) = rt.block_on(TestSchema::create("postgres_live bench")) else {
        return;
    };
    let (a, b) = rt.block_on(async { (server(&schema).await, server(&schema).await) });
    let room = fixture(rt.block_on(a.create_room(&agent()))).room;
    let mut on_a = fixture(rt.block_on(a.subscribe(&agent(), room, Seq::new(1))));
    let mut on_b = fixture(rt.block_on(b.subscribe(&agent(), room, Seq::new(1))));

    let mut group = c.benchmark_group("postgres_live");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("post_on_a_to_subscriber_on_a", |bench| {
        bench.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += deliver(&a, room, &mut on_a).await.0;
                }
                total
            })
        })
    });
    group.bench_function("post_on_a_to_subscriber_on_b", |bench| {
        bench.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += deliver(&a, room, &mut on_b).await.0;
                }
                total
            })
        })
    });
    group.finish();

    // Percentiles over 500 posts each; B's subscriber follows the posts delivered to A's.
    for (name, to) in [("subscriber on A", &mut on_a), ("subscriber on B", &mut on_b)] {
        let (mut delivered, mut after_ack) = (Vec::new(), Vec::new());
        rt.block_on(async {
            for _ in 0..500 {
                let (total, acknowledged) = deliver(&a, room, to).await;
                delivered.push(total);
                after_ack.push(total.saturating_sub(acknowledged));
            }
        });
        delivered.sort();
        after_ack.sort();
        println!(
            "post on A -> {name}: p50 {:?}, p99 {:?} from the call; p50 {:?}, p99 {:?} after the post was acknowledged",
            percentile(&delivered, 50),
            percentile(&delivered, 99),
            percentile(&after_ack, 50),
            percentile(&after_ack, 99),
        );
    }
}

/// Writers posting on a server at once while the delivery latency is measured.
const WRITERS: usize = 64;

/// A server on `schema` whose store does not notify and whose wake-ups go through NATS.
async fn nats_server(schema: &TestSchema, prefix: &str) -> Option<Rooms> {
    let config = fixture(NatsConfig::new("nats://127.0.0.1:4222").and_then(|c| c.with_prefix(prefix)));
    let transport = NatsTransport::connect(&config).await.ok()?;
    let store = fixture(PostgresRoomStore::connect(&schema.config().clone().with_notify(false)).await);
    Some(Rooms::builder().room_store(store).transport(transport).build())
}

/// A -> B delivery percentiles over 500 posts while `WRITERS` tasks post on A in rooms of
/// their own, as fast as they can.
async fn under_load(a: &Rooms, b: &Rooms, name: &str) {
    let room = fixture(a.create_room(&agent()).await).room;
    let mut on_b = fixture(b.subscribe(&agent(), room, Seq::new(1)).await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (a, stop) = (a.clone(), stop.clone());
        let own = fixture(a.create_room(&agent()).await).room;
        writers.push(tokio::spawn(async move {
            let mut posts = 0u64;
            while !stop.load(Ordering::Relaxed) {
                fixture(a.post_message(&agent(), own, "Busy elsewhere", None).await);
                posts += 1;
            }
            posts
        }));
    }
    let started = Instant::now();
    let (mut delivered, mut acknowledged, mut after_ack) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..500 {
        let (total, ack) = deliver(a, room, &mut on_b).await;
        delivered.push(total);
        acknowledged.push(ack);
        after_ack.push(total.saturating_sub(ack));
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut posts = 0;
    for writer in writers {
        posts += fixture(writer.await.map_err(|e| Error::backend("writer", e)));
    }
    for list in [&mut delivered, &mut acknowledged, &mut after_ack] {
        list.sort();
    }
    println!(
        "{name}, {WRITERS} writers posting on A ({:.0} posts/s): post on A -> subscriber on B p50 {:?}, p99 {:?} \
         from the call; the post acknowledged p50 {:?}, p99 {:?}; then on B p50 {:?}, p99 {:?}",
        posts as f64 / elapsed.as_secs_f64(),
        percentile(&delivered, 50),
        percentile(&delivered, 99),
        percentile(&acknowledged, 50),
        percentile(&acknowledged, 99),
        percentile(&after_ack, 50),
        percentile(&after_ack, 99),
    );
}

fn delivery_under_load(_: &mut Criterion) {
    let rt = runtime();
    let Some(schema) = rt.block_on(TestSchema::create("postgres_live bench, under load")) else {
        return;
    };
    let (a, b) = rt.block_on(async { (server(&schema).await, server(&schema).await) });
    rt.block_on(under_load(&a, &b, "NOTIFY"));
    let Some(nats_schema) = rt.block_on(TestSchema::create("postgres_live bench, NATS")) else {
        return;
    };
    let prefix = format!("bench-{}", std::process::id());
    let servers = rt.block_on(async {
        (
            nats_server(&nats_schema, &prefix).await,
            nats_server(&nats_schema, &prefix).await,
        )
    });
    match servers {
        (Some(a), Some(b)) => rt.block_on(under_load(&a, &b, "NATS")),
        _ => eprintln!("postgres_live: the NATS half SKIPPED, no NATS server on 127.0.0.1:4222"),
    }
}

criterion_group!(benches, delivery_latency, delivery_under_load);
criterion_main!(benches);
