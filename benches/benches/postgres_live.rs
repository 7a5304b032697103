//! Cross-server delivery latency over PostgreSQL: a message posted on server A until a
//! subscriber on server B has it (A's transaction NOTIFYs, B's listener wakes the subscriber,
//! which reads the event from the store), p50/p99; in the same run, the same post until a
//! subscriber on A itself has it (handed over in process) as the baseline. Each server is a
//! `Rooms` with its own connections and listener, as two processes would have.
//!
//! Needs the test database (`COLLAB_TEST_DATABASE_URL`, default 127.0.0.1:5432/test); works in
//! a schema of its own, dropped afterwards.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use collab_benches::{agent, fixture, percentile, runtime};
use collab_core::rooms::{EventStream, Rooms};
use collab_core::{Entity, Error, RoomId, Seq};
use collab_store_postgres::testing::TestSchema;
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

criterion_group!(benches, delivery_latency);
criterion_main!(benches);
