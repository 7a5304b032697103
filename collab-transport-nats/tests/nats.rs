//! The NATS transport against real NATS servers: the machine's (127.0.0.1:4222, which `.ci/run`
//! starts where it is missing) and private `nats-server` processes a test restarts.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use collab_core::decide::create_room;
use collab_core::memory::MemoryRoomStore;
use collab_core::rooms::{EventStream, NotReady};
use collab_core::transport::{InProcessTransport, Live, Transport, Typing, Typist};
use collab_core::{Actor, AgentId, Event, EventData, RoomId, Rooms, Seq, TenantId, Timestamp};
use collab_transport_nats::{NatsConfig, NatsTransport};
use futures_util::StreamExt;

const MACHINE_NATS: &str = "nats://127.0.0.1:4222";

/// Whether what `test` needs is here: the machine's NATS server and, with `own_server`, the
/// `nats-server` program. Without them a test prints a loud `SKIPPED` line and returns; with
/// `CI=true` it fails instead, so that a CI run never passes without NATS.
fn nats_here(test: &str, own_server: bool) -> bool {
    let listening = std::net::TcpStream::connect(("127.0.0.1", 4222)).is_ok();
    let program = !own_server || Command::new("nats-server").arg("--version").output().is_ok();
    if listening && program {
        return true;
    }
    let what = "needs a NATS server on 127.0.0.1:4222 and the nats-server program (Debian's nats-server)";
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {what} (CI=true: a missing NATS fails the run)"
    );
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {what} ***\n");
    false
}

/// A prefix of its own per test, so that tests (and runs) sharing the machine's server don't
/// hear each other.
fn config(url: &str) -> NatsConfig {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let prefix = format!("test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    NatsConfig::new(url).unwrap().with_prefix(&prefix).unwrap()
}

fn agent() -> Actor {
    Actor::Agent {
        tenant: TenantId::new("acme").unwrap(),
        agent: AgentId::new("ada").unwrap(),
    }
}

/// Two servers' `Rooms` over one store, each with its own NATS transport, and a third whose
/// wake-ups never reach NATS (its transport is in-process only): what the others see of a server
/// whose wake-ups were all lost.
async fn servers(config: &NatsConfig) -> (Rooms, Rooms, Rooms) {
    let store = Arc::new(MemoryRoomStore::new());
    let a = NatsTransport::connect(config).await.expect("NATS reachable");
    let b = NatsTransport::connect(config).await.expect("NATS reachable");
    let server =
        |transport: Arc<dyn Transport>| Rooms::builder().room_store(store.clone()).transport(transport).build();
    (
        server(Arc::new(a)),
        server(Arc::new(b)),
        server(Arc::new(InProcessTransport::default())),
    )
}

/// The texts of the next `n` messages of a subscription, failing after `within`.
async fn next_texts(stream: &mut EventStream, n: usize, within: Duration) -> Vec<String> {
    let mut texts = Vec::new();
    tokio::time::timeout(within, async {
        while texts.len() < n {
            let event = stream.next().await.expect("the stream goes on").expect("no error");
            if let EventData::MessagePosted { text, .. } = &event.data {
                texts.push(text.clone());
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} messages came within {within:?}: {texts:?}", texts.len()));
    texts
}

#[tokio::test]
async fn another_server_hears_a_wake_up_and_the_publisher_its_own_events() {
    if !nats_here("another_server_hears_a_wake_up_and_the_publisher_its_own_events", false) {
        return;
    }
    let config = config(MACHINE_NATS);
    let a = NatsTransport::connect(&config).await.expect("NATS on 127.0.0.1:4222");
    let b = NatsTransport::connect(&config).await.expect("NATS on 127.0.0.1:4222");
    let room = RoomId::from_u128(42);
    let mut on_a = a.subscribe(room);
    let mut on_b = b.subscribe(room);
    let mut elsewhere = b.subscribe(RoomId::from_u128(43));
    let created: Arc<Event> = Arc::new(create_room(
        room,
        TenantId::new("acme").unwrap(),
        AgentId::new("ada").unwrap(),
        Timestamp::from_unix_millis(1_795_857_000_000),
    ));
    a.publish(room, std::slice::from_ref(&created))
        .await
        .expect("published");

    let heard = tokio::time::timeout(Duration::from_secs(5), on_b.next())
        .await
        .expect("in time");
    assert_eq!(heard, Some(Live::Wake { seq: Seq::new(1) }));
    let own = tokio::time::timeout(Duration::from_secs(5), on_a.next())
        .await
        .expect("in time");
    assert_eq!(
        own,
        Some(Live::Event(created)),
        "the publisher's subscribers get the event itself"
    );
    // Its own wake-up does not come back to the publisher, and other rooms hear nothing.
    let quiet = Duration::from_millis(300);
    assert!(
        tokio::time::timeout(quiet, on_a.next()).await.is_err(),
        "no echo of its own wake-up"
    );
    assert!(
        tokio::time::timeout(quiet, elsewhere.next()).await.is_err(),
        "no news for another room"
    );
}

#[tokio::test]
async fn typing_reaches_every_server_s_subscribers_of_the_room_only() {
    if !nats_here("typing_reaches_every_server_s_subscribers_of_the_room_only", false) {
        return;
    }
    let config = config(MACHINE_NATS);
    let a = NatsTransport::connect(&config).await.expect("NATS on 127.0.0.1:4222");
    let b = NatsTransport::connect(&config).await.expect("NATS on 127.0.0.1:4222");
    let room = RoomId::from_u128(42);
    let mut on_a = a.subscribe(room);
    let mut on_b = b.subscribe(room);
    let mut elsewhere = b.subscribe(RoomId::from_u128(43));
    let typing = Typing {
        by: Typist::Agent(AgentId::new("ada lópez").unwrap()),
    };
    a.typing(room, typing.clone()).await.expect("sent");
    for (server, stream) in [("b", &mut on_b), ("a", &mut on_a)] {
        let heard = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap_or_else(|_| panic!("no typing on {server} in time"));
        assert_eq!(heard, Some(Live::Typing(typing.clone())), "on {server}");
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), elsewhere.next())
            .await
            .is_err(),
        "no typing for another room"
    );
}

#[tokio::test]
async fn a_subscriber_on_one_server_gets_every_post_made_on_another_in_order() {
    if !nats_here(
        "a_subscriber_on_one_server_gets_every_post_made_on_another_in_order",
        false,
    ) {
        return;
    }
    let (a, b, _) = servers(&config(MACHINE_NATS)).await;
    let room = a.create_room(&agent()).await.unwrap().room;
    let mut on_b = b.subscribe(&agent(), room, Seq::ZERO).await.unwrap();
    let posts: Vec<String> = (0..200).map(|i| format!("post {i}")).collect();
    for text in &posts {
        a.post_message(&agent(), room, text, None).await.unwrap();
    }
    assert_eq!(next_texts(&mut on_b, posts.len(), Duration::from_secs(20)).await, posts);
    let quiet = tokio::time::timeout(Duration::from_millis(300), on_b.next()).await;
    assert!(quiet.is_err(), "nothing more, no duplicate: {quiet:?}");
}

/// A private `nats-server` on a port of its own, killed on drop.
struct PrivateNats {
    child: Child,
    port: u16,
}

impl PrivateNats {
    fn start_on(port: u16) -> Self {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (Debian's nats-server; .ci/run installs it)");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not listen on {port} in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_ups_lost_while_nats_is_down_cost_latency_never_an_event() {
    if !nats_here("wake_ups_lost_while_nats_is_down_cost_latency_never_an_event", true) {
        return;
    }
    let nats = PrivateNats::start_on(free_port());
    let config = config(&nats.url());
    let (a, b, unheard) = servers(&config).await;
    let room = a.create_room(&agent()).await.unwrap().room;
    let mut on_b = b.subscribe(&agent(), room, Seq::ZERO).await.unwrap();
    let before: Vec<String> = (0..20).map(|i| format!("before {i}")).collect();
    for text in &before {
        a.post_message(&agent(), room, text, None).await.unwrap();
    }
    assert_eq!(
        next_texts(&mut on_b, before.len(), Duration::from_secs(10)).await,
        before
    );

    // NATS goes away, and posts are stored whose wake-ups b never gets (a's client would buffer
    // its own and might deliver them after the outage: they come from a server without NATS).
    let port = nats.port;
    b.check_ready().await.expect("connected: ready");
    drop(nats);
    // A readiness probe says so while NATS is away.
    let mut not_ready = None;
    for _ in 0..100 {
        not_ready = b.check_ready().await.err();
        if not_ready.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(not_ready, Some(NotReady::Transport));
    let during: Vec<String> = (0..20).map(|i| format!("during {i}")).collect();
    for text in &during {
        unheard.post_message(&agent(), room, text, None).await.unwrap();
    }
    let quiet = tokio::time::timeout(
        Duration::from_millis(500),
        next_texts(&mut on_b, 1, Duration::from_secs(1)),
    )
    .await;
    assert!(quiet.is_err(), "nothing wakes b: {quiet:?}");

    // Back on the same port: once b's client has reconnected, its subscribers catch up from the
    // store, with no later post needed to wake them.
    let _nats = PrivateNats::start_on(port);
    assert_eq!(
        next_texts(&mut on_b, during.len(), Duration::from_secs(30)).await,
        during
    );
    b.check_ready().await.expect("reconnected: ready again");
    let after = "after the outage".to_owned();
    a.post_message(&agent(), room, &after, None).await.unwrap();
    assert_eq!(next_texts(&mut on_b, 1, Duration::from_secs(10)).await, vec![after]);
}

#[tokio::test]
async fn an_unreachable_server_is_a_backend_error_in_time() {
    let config = NatsConfig::new(&format!("nats://127.0.0.1:{}", free_port()))
        .unwrap()
        .with_connect_timeout(Duration::from_millis(500))
        .unwrap();
    let started = std::time::Instant::now();
    let result = NatsTransport::connect(&config).await;
    assert!(matches!(result, Err(collab_core::Error::Backend { .. })), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
