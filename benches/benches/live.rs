//! Live fan-out: events per second delivered to 1, 100 and 10,000 subscribers of one room, vs
//! raw `tokio::sync::broadcast` with as many receivers, in the same run; and the catch-up of a
//! subscriber that starts 10,000 events behind.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use collab_benches::{agent, fixture, messages_after, new_room, service_with_room};
use collab_core::memory::MemoryRoomStore;
use collab_core::rooms::Rooms;
use collab_core::store::Append;
use collab_core::transport::{InProcessTransport, Transport};
use collab_core::{Actor, Event, RoomId, RoomStore, Seq};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use tokio::sync::{Notify, broadcast};

/// Events published per measured iteration.
const EVENTS: usize = 100;

fn runtime() -> tokio::runtime::Runtime {
    fixture(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .map_err(|e| collab_core::Error::backend("tokio", e)),
    )
}

/// Stores `count` more messages in `room` and returns them.
async fn store_messages(store: &MemoryRoomStore, room: RoomId, count: usize) -> Vec<Event> {
    let state = fixture(store.load_room(room).await).unwrap_or_else(|| panic!("the room exists"));
    let events = messages_after(&mut state.clone(), count);
    fixture(store.append(fixture(Append::new(Some(&state), events.clone()))).await);
    events
}

/// Counts down as subscribers finish, and wakes the timer when all have.
struct Finish {
    left: AtomicUsize,
    done: Notify,
}

impl Finish {
    fn new(subscribers: usize) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicUsize::new(subscribers),
            done: Notify::new(),
        })
    }

    fn one_done(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }
}

/// Time for `EVENTS` events to reach `subscribers` subscribers through `Rooms::subscribe`.
async fn ours(subscribers: usize) -> Duration {
    let store = Arc::new(MemoryRoomStore::new());
    let transport = Arc::new(InProcessTransport::default());
    let (rooms, room): (Rooms, _) =
        service_with_room(Rooms::builder().room_store(store.clone()).transport(transport.clone())).await;
    let start = fixture(store.load_room(room).await).map_or(Seq::ZERO, |s| s.seq());
    let finish = Finish::new(subscribers);
    let ready = Arc::new(AtomicUsize::new(0));
    for _ in 0..subscribers {
        let mut stream = fixture(rooms.subscribe(&agent(), room, start).await);
        let finish = finish.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            ready.fetch_add(1, Ordering::Relaxed);
            let mut seen = 0;
            while let Some(Ok(_)) = stream.next().await {
                seen += 1;
                if seen == EVENTS {
                    finish.one_done();
                    return;
                }
            }
        });
    }
    while ready.load(Ordering::Relaxed) < subscribers {
        tokio::task::yield_now().await;
    }
    // Stored first, as the service does before publishing; only the delivery is timed.
    let events = store_messages(&store, room, EVENTS).await;
    let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
    let started = Instant::now();
    fixture(transport.publish(room, &events).await);
    finish.done.notified().await;
    started.elapsed()
}

/// Time for `EVENTS` events to reach `receivers` tasks on a raw broadcast channel.
async fn raw(receivers: usize) -> Duration {
    let (sender, _) = broadcast::channel::<Arc<Event>>(1_024);
    let finish = Finish::new(receivers);
    let ready = Arc::new(AtomicUsize::new(0));
    for _ in 0..receivers {
        let mut receiver = sender.subscribe();
        let finish = finish.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            ready.fetch_add(1, Ordering::Relaxed);
            let mut seen = 0;
            while receiver.recv().await.is_ok() {
                seen += 1;
                if seen == EVENTS {
                    finish.one_done();
                    return;
                }
            }
        });
    }
    while ready.load(Ordering::Relaxed) < receivers {
        tokio::task::yield_now().await;
    }
    let (_, mut state) = new_room(1);
    let events: Vec<Arc<Event>> = messages_after(&mut state, EVENTS).into_iter().map(Arc::new).collect();
    let started = Instant::now();
    for event in &events {
        let _ = sender.send(event.clone());
    }
    finish.done.notified().await;
    started.elapsed()
}

fn fan_out(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("fan_out");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for subscribers in [1usize, 100, 10_000] {
        group.throughput(Throughput::Elements((subscribers * EVENTS) as u64));
        group.bench_with_input(BenchmarkId::new("raw_broadcast", subscribers), &subscribers, |b, &n| {
            b.iter_custom(|iters| rt.block_on(async { sum((0..iters).map(|_| raw(n))).await }))
        });
        group.bench_with_input(
            BenchmarkId::new("rooms_subscribe", subscribers),
            &subscribers,
            |b, &n| b.iter_custom(|iters| rt.block_on(async { sum((0..iters).map(|_| ours(n))).await })),
        );
    }
    group.finish();
}

async fn sum(runs: impl Iterator<Item = impl Future<Output = Duration>>) -> Duration {
    let mut total = Duration::ZERO;
    for run in runs {
        total += run.await;
    }
    total
}

fn catch_up(c: &mut Criterion) {
    const STORED: usize = 10_000;
    let rt = runtime();
    let store = Arc::new(MemoryRoomStore::new());
    let (rooms, room) = rt.block_on(service_with_room(Rooms::builder().room_store(store.clone())));
    let last = rt
        .block_on(store_messages(&store, room, STORED))
        .last()
        .map_or(Seq::ZERO, |e| e.seq);
    let mut group = c.benchmark_group("catch_up");
    group.sample_size(20);
    group.throughput(Throughput::Elements(STORED as u64));
    group.bench_function("subscribe_from_zero_10000_events", |b| {
        b.iter(|| {
            rt.block_on(async {
                let actor: Actor = agent();
                let mut stream = fixture(rooms.subscribe(&actor, room, Seq::ZERO).await);
                while let Some(Ok(event)) = stream.next().await {
                    if event.seq == last {
                        break;
                    }
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, fan_out, catch_up);
criterion_main!(benches);
