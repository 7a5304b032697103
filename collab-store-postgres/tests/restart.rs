//! PostgreSQL restarted during a run. The test stops and starts a private server of its own (in a
//! temp folder, on a free port), so that the machine's server, and the tests using it at the
//! same time, are not disturbed.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use collab_core::rooms::{Rooms, TimelineQuery};
use collab_core::transport::Transport;
use collab_core::*;
use collab_store_postgres::testing::PrivateServer;
use collab_store_postgres::{PostgresConfig, PostgresRoomStore, PostgresTransport};
use futures_util::StreamExt;

fn agent() -> Actor {
    Actor::Agent {
        tenant: TenantId::new("acme").unwrap(),
        agent: AgentId::new("ada").unwrap(),
    }
}

/// Retries `call` until it succeeds, for at most 30 s.
async fn eventually<T, F: Future<Output = Result<T, Error>>>(mut call: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("still failing after 30 s: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_fails_calls_clearly_then_serves_them_with_nothing_acknowledged_lost() {
    let Some(server) =
        PrivateServer::start("a_restarted_server_fails_calls_clearly_then_serves_them_with_nothing_acknowledged_lost")
            .await
    else {
        return;
    };
    let config = PostgresConfig::new(&server.url())
        .unwrap()
        .with_timeout(Duration::from_secs(1))
        .unwrap();
    let server_a = Rooms::builder()
        .room_store(PostgresRoomStore::connect(&config).await.unwrap())
        .transport(PostgresTransport::connect(&config).await.unwrap())
        .build();
    let transport_b = Arc::new(PostgresTransport::connect(&config).await.unwrap());
    let server_b = Rooms::builder()
        .room_store(PostgresRoomStore::connect(&config).await.unwrap())
        .transport(transport_b.clone())
        .build();
    let ada = agent();
    let room = server_a.create_room(&ada).await.unwrap().room;
    let mut on_b = server_b.subscribe(&agent(), room, Seq::ZERO).await.unwrap();

    // A writer posts without pause through the crash and the restart, noting what was
    // acknowledged.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer = tokio::spawn({
        let (rooms, acknowledged, failures) = (server_a.clone(), acknowledged.clone(), failures.clone());
        async move {
            for i in 0.. {
                let text = format!("post {i}");
                match rooms.post_message(&agent(), room, &text, None).await {
                    Ok(_) => acknowledged.lock().unwrap().push(text),
                    Err(e) => {
                        failures.lock().unwrap().push(e.to_string());
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                if acknowledged.lock().unwrap().len() >= 60 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    while acknowledged.lock().unwrap().len() < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    server.crash().await;
    // While it is down: a clear backend error, in bounded time, for writes and reads.
    let started = Instant::now();
    let post = server_b.post_message(&agent(), room, "while down", None).await;
    let read = server_b
        .timeline(&agent(), room, TimelineQuery::Latest { limit: 10 })
        .await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    for result in [post.map(|_| ()), read.map(|_| ())] {
        let error = result.expect_err("the database is down");
        assert!(
            matches!(
                error,
                Error::Backend {
                    backend: "postgres",
                    ..
                }
            ),
            "{error}"
        );
        eprintln!("while down: {error}");
    }
    let acknowledged_before_restart = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        acknowledged.lock().unwrap().len(),
        acknowledged_before_restart,
        "nothing is acknowledged while the server is down"
    );

    // The listener knows it lost its connection: a readiness probe says so.
    let deadline = Instant::now() + Duration::from_secs(10);
    while transport_b.check_ready().await.is_ok() {
        assert!(Instant::now() < deadline, "the transport still says it listens");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    server.start_again().await;
    // After: calls succeed again, on both servers.
    eventually(|| server_b.post_message(&ada, room, "after the restart", None)).await;
    writer.await.unwrap();
    assert!(!failures.lock().unwrap().is_empty(), "the writer met the outage");
    eventually(|| transport_b.check_ready()).await;

    // Everything acknowledged is stored, once each.
    let events = eventually(|| {
        server_b.timeline(
            &ada,
            room,
            TimelineQuery::After {
                seq: Seq::ZERO,
                limit: 1_000,
            },
        )
    })
    .await;
    let stored: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::MessagePosted { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a post stored twice");
    for text in acknowledged.lock().unwrap().iter() {
        assert!(unique.contains(text), "{text} was acknowledged but is not stored");
    }
    let seqs: Vec<u64> = events.iter().map(|e| e.seq.get()).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());

    // B's subscriber got the whole log in order, the outage included: its listener reconnected.
    let mut seen = Vec::new();
    while seen.len() < events.len() {
        match tokio::time::timeout(Duration::from_secs(15), on_b.next()).await {
            Ok(Some(Ok(event))) => seen.push(event.seq.get()),
            // A read during the outage ends the stream with the error: resume from the last seq.
            Ok(Some(Err(e))) => {
                eprintln!("subscription ended by: {e}");
                let last = Seq::new(seen.last().copied().unwrap_or(0));
                on_b = eventually(|| server_b.subscribe(&ada, room, last)).await;
            }
            Ok(None) => panic!("the stream ended"),
            Err(_) => panic!("B's subscriber is stuck at {:?} of {}", seen.last(), events.len()),
        }
    }
    assert_eq!(seen, seqs);
}
