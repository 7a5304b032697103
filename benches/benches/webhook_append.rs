//! Appends while webhooks go out: 32 posters in 32 rooms of one SQLite store post chat messages
//! through `Rooms::post_message`, every message queueing a webhook to one endpoint. Four services
//! in the same run, each measured alone (a service's dispatcher stops once it is measured): no
//! webhooks at all; webhooks queued but never sent (no dispatcher: the floor of writing each
//! webhook's row in its event's append); webhooks to a receiver that answers at once; and
//! webhooks to a receiver that takes 2 s per request. The goal: a slow receiver costs appends
//! nothing, so the 2 s receiver's throughput is at least 0.95x that without it.
//!
//! The receivers are plain HTTP/1.1 servers on loopback in this process.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use collab_benches::{agent, fixture, runtime};
use collab_core::rooms::Rooms;
use collab_core::webhook::{WebhookConfig, WebhookEvent, WebhookSecret};
use collab_core::{Actor, EndpointId, Error, RoomId, WebhookEndpoint};
use collab_notify::webhook::HttpWebhookSender;
use collab_store_sqlite::SqliteRoomStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const POSTERS: usize = 32;
/// Posts per poster per measured iteration.
const PER_POSTER: usize = 20;

/// An HTTP/1.1 receiver on loopback answering every request 200 after `delay`; counts requests.
async fn receiver(delay: Duration, received: Arc<AtomicU64>) -> String {
    let listener = fixture(
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::backend("bind", e)),
    );
    let address = fixture(listener.local_addr().map_err(|e| Error::backend("bind", e)));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                loop {
                    // Headers, then the body by its length; keep-alive until the client closes.
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        match socket.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if socket.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    received.fetch_add(1, Ordering::Relaxed);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if socket.get_mut().write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}/hooks")
}

/// A service on a fresh SQLite file, webhooks to `url` if given, its dispatcher running if
/// `dispatch`, and its rooms.
async fn service(dir: &tempfile::TempDir, name: &str, url: Option<&str>, dispatch: bool) -> Service {
    let store = fixture(SqliteRoomStore::open(dir.path().join(format!("{name}.db"))).await);
    let mut builder = Rooms::builder().room_store(store);
    if let Some(url) = url {
        let Actor::Agent { tenant, .. } = agent() else {
            unreachable!("agent() is an agent")
        };
        let endpoint = fixture(WebhookEndpoint::new(
            EndpointId::from_u128(1),
            url,
            fixture(WebhookSecret::generate()),
        ))
        .with_events(&[WebhookEvent::MessagePosted]);
        let config = fixture(WebhookConfig::new().with_endpoint(tenant, fixture(endpoint)));
        let sender = fixture(HttpWebhookSender::allowing_private_networks(Duration::from_secs(10)));
        builder = builder.webhooks(sender, config);
    }
    let rooms = builder.build();
    let dispatcher = dispatch.then(|| {
        let rooms = rooms.clone();
        tokio::spawn(async move { rooms.run_dispatcher().await })
    });
    let mut ids = Vec::new();
    for _ in 0..POSTERS {
        ids.push(fixture(rooms.create_room(&agent()).await).room);
    }
    Service { rooms, ids, dispatcher }
}

struct Service {
    rooms: Rooms,
    ids: Vec<RoomId>,
    /// Stopped once the service is measured, so that its backlog does not run during the next
    /// service's measurement.
    dispatcher: Option<tokio::task::JoinHandle<()>>,
}

/// Every poster posts `PER_POSTER` messages into its own room: the wall time.
async fn posters(rooms: &Rooms, ids: &[RoomId]) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = ids
        .iter()
        .map(|room| {
            let (rooms, room) = (rooms.clone(), *room);
            tokio::spawn(async move {
                for i in 0..PER_POSTER {
                    let text = format!("Message {i}: could you send the signed form?");
                    fixture(rooms.post_message(&agent(), room, &text, None).await);
                }
            })
        })
        .collect();
    for task in tasks {
        fixture(task.await.map_err(|e| Error::backend("task", e)));
    }
    started.elapsed()
}

fn webhook_append(c: &mut Criterion) {
    let rt = runtime();
    let dir = fixture(tempfile::tempdir().map_err(|e| Error::backend("tempdir", e)));
    let fast_count = Arc::new(AtomicU64::new(0));
    let slow_count = Arc::new(AtomicU64::new(0));
    let fast_url = rt.block_on(receiver(Duration::ZERO, fast_count.clone()));
    let slow_url = rt.block_on(receiver(Duration::from_secs(2), slow_count.clone()));
    let services = [
        ("no_webhooks", rt.block_on(service(&dir, "none", None, true))),
        (
            "queued_not_sent",
            rt.block_on(service(&dir, "queued", Some(&slow_url), false)),
        ),
        (
            "fast_receiver",
            rt.block_on(service(&dir, "fast", Some(&fast_url), true)),
        ),
        (
            "slow_receiver_2s",
            rt.block_on(service(&dir, "slow", Some(&slow_url), true)),
        ),
    ];

    let mut group = c.benchmark_group("webhook_append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements((POSTERS * PER_POSTER) as u64));
    let mut rates = Vec::new();
    for (name, service) in &services {
        let (rooms, ids) = (&service.rooms, &service.ids);
        let mut posts = 0usize;
        let mut wall = Duration::ZERO;
        group.bench_function(*name, |b| {
            b.iter_custom(|iterations| {
                let mut spent = Duration::ZERO;
                for _ in 0..iterations {
                    spent += rt.block_on(posters(rooms, ids));
                    posts += POSTERS * PER_POSTER;
                }
                wall += spent;
                spent
            })
        });
        let rate = posts as f64 / wall.as_secs_f64();
        println!("webhook_append/{name}: {posts} posts by {POSTERS} posters in {POSTERS} rooms: {rate:.0} posts/s");
        rates.push(rate);
        if let Some(dispatcher) = &service.dispatcher {
            dispatcher.abort();
        }
    }
    group.finish();
    let [none, queued, fast, slow] = rates[..] else {
        unreachable!("four services")
    };
    println!(
        "webhook_append: slow (2 s) receiver / no webhooks = {:.2}x (goal >= 0.95x); slow / queued, not sent = {:.2}x; \
         slow / fast receiver = {:.2}x; queued, not sent / no webhooks = {:.2}x",
        slow / none,
        slow / queued,
        slow / fast,
        queued / none
    );
    println!(
        "webhook_append: webhooks received: fast {}, slow {} (the slow one is still working through its queue)",
        fast_count.load(Ordering::Relaxed),
        slow_count.load(Ordering::Relaxed)
    );
}

criterion_group!(benches, webhook_append);
criterion_main!(benches);
