//! Every acknowledged write survives a kill: a child process (this test binary again) appends
//! messages with outbox rows and prints each acknowledged one; the parent SIGKILLs it at random
//! moments, five times, then checks the file.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use collab_core::id::RandomIds;
use collab_core::store::{OutboxMessage, OutboxTarget};
use collab_core::testing::room_store::{T0, create, post};
use collab_core::*;
use collab_store_sqlite::SqliteRoomStore;
use futures_util::future::join_all;

const CHILD: &str = "COLLAB_SQLITE_CRASH_CHILD";
const ROOMS: u128 = 8;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The child's work; a no-op unless the parent started this binary to be killed.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD) else { return };
    runtime().block_on(async {
        let store = SqliteRoomStore::open(Path::new(&path)).await.unwrap();
        let tenant = TenantId::new("crash").unwrap();
        let mut states = Vec::new();
        for _ in 0..ROOMS {
            let (state, append) = create(&tenant, "agent", T0);
            store.append(append).await.unwrap();
            states.push(state);
        }
        let mut stdout = std::io::stdout();
        let mut round = 0u64;
        loop {
            round += 1;
            // One message per room, concurrently, each with its outbox row.
            let writes = states.iter().map(|state| {
                let (next, mut append) = post(state, &format!("round {round}"), T0);
                let seq = next.seq();
                append.outbox.push(OutboxMessage {
                    id: OutboxId::generate(&RandomIds).unwrap(),
                    room: state.room(),
                    // An invite of its own: rows of one invite would be claimed one at a time.
                    target: OutboxTarget::Invite {
                        invite: InviteId::generate(&RandomIds).unwrap(),
                        channel: Channel::Email,
                    },
                    payload: format!("{}:{}", state.room(), seq),
                    not_before: T0,
                });
                let store = store.clone();
                async move { store.append(append).await.map(|()| next) }
            });
            let results = join_all(writes).await;
            for (state, result) in states.iter_mut().zip(results) {
                let next = result.unwrap();
                writeln!(stdout, "ack {} {}", next.room(), next.seq()).unwrap();
                *state = next;
            }
            stdout.flush().unwrap();
        }
    });
}

/// A pseudo-random delay from the clock: no randomness crate needed for this.
fn random_delay() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Duration::from_millis(50 + u64::from(nanos % 400))
}

#[test]
fn every_acknowledged_write_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let acked: Arc<Mutex<BTreeSet<(String, u64)>>> = Arc::default();
    for kill in 0..5 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads", "1"])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(0usize));
        let reader = std::thread::spawn({
            let acked = acked.clone();
            let seen = seen.clone();
            move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let mut parts = line.split_whitespace();
                    if parts.next() != Some("ack") {
                        continue;
                    }
                    let room = parts.next().unwrap().to_owned();
                    let seq: u64 = parts.next().unwrap().parse().unwrap();
                    acked.lock().unwrap().insert((room, seq));
                    *seen.lock().unwrap() += 1;
                }
            }
        });
        // Kill it while it is writing: after its first acknowledgements, at a random moment.
        let started = Instant::now();
        while *seen.lock().unwrap() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the child never wrote (kill {kill})"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(random_delay());
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 5 * ROOMS as usize,
        "the child acknowledged too little to prove anything"
    );

    runtime().block_on(async {
        let store = SqliteRoomStore::open(&path).await.unwrap();
        store.integrity_check().await.expect("PRAGMA integrity_check is ok");
        // Every room: contiguous seqs; every message has its outbox row and every row its message.
        let mut rooms: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for (room, _) in &acked {
            if !rooms.contains_key(room) {
                let events = store
                    .read_events(room.parse().unwrap(), Seq::ZERO, usize::MAX)
                    .await
                    .unwrap();
                rooms.insert(room.clone(), events);
            }
        }
        for (room, events) in &rooms {
            let seqs: Vec<u64> = events.iter().map(|e| e.seq.get()).collect();
            assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>(), "room {room}");
        }
        for (room, seq) in &acked {
            assert!(
                rooms[room].iter().any(|e| e.seq.get() == *seq),
                "acknowledged {room}:{seq} is lost"
            );
        }
        let mut payloads = BTreeSet::new();
        loop {
            let claimed = store
                .claim_outbox(
                    T0.saturating_add(Duration::from_secs(1)),
                    Duration::from_secs(3600),
                    1000,
                )
                .await
                .unwrap();
            if claimed.is_empty() {
                break;
            }
            payloads.extend(claimed.into_iter().map(|c| c.message.payload));
        }
        let messages: BTreeSet<String> = rooms
            .iter()
            .flat_map(|(room, events)| {
                events
                    .iter()
                    .filter(|e| matches!(e.data, EventData::MessagePosted { .. }))
                    .map(move |e| format!("{room}:{}", e.seq))
            })
            .collect();
        assert_eq!(payloads, messages, "events and outbox rows were committed together");
    });
}
