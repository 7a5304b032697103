//! A merge is all or nothing across a kill (issue 16): pairs of rooms of one customer, each room
//! with 1,000 events and documents, are merged by a child process (this test binary again) that
//! the parent SIGKILLs in the middle of a merge, five times. Reopened, every pair is either not
//! merged at all or merged whole, and the absorbed room's old link leads to the survivor.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use collab_core::decide::Command as RoomCommand;
use collab_core::rooms::Upload;
use collab_core::testing::room_store::run;
use collab_core::*;
use collab_store_s3::{Durability, ObjectBlobStore};
use collab_store_sqlite::SqliteRoomStore;

const CHILD: &str = "COLLAB_SQLITE_MERGE_CHILD";
const PAIRS: usize = 12;
/// Events per room before the merge.
const EVENTS: u64 = 1_000;
const DOCUMENTS: usize = 5;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn agent() -> Actor {
    Actor::Agent {
        tenant: TenantId::new("acme").unwrap(),
        agent: AgentId::new("ada").unwrap(),
    }
}

async fn deployment(dir: &Path) -> (Rooms, Arc<SqliteRoomStore>) {
    let store = Arc::new(SqliteRoomStore::open(dir.join("rooms.db")).await.unwrap());
    let blobs = ObjectBlobStore::local(dir.join("documents"), Durability::Synced)
        .unwrap()
        .build()
        .unwrap();
    let rooms = Rooms::builder().room_store(store.clone()).blob_store(blobs).build();
    (rooms, store)
}

/// The room's whole timeline, as its agent reads it.
async fn whole(rooms: &Rooms, room: RoomId) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    loop {
        let after = events.last().map_or(Seq::ZERO, |e| e.seq);
        let page = rooms
            .timeline(
                &agent(),
                room,
                TimelineQuery::After {
                    seq: after,
                    limit: 1_000,
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

fn upload(name: &str, bytes: Vec<u8>) -> Upload {
    Upload {
        file_name: name.to_owned(),
        data: Box::pin(futures_util::stream::iter([Ok(Bytes::from(bytes))])),
    }
}

/// A room of Grace's with `EVENTS` events: invited by email (the address in `case`), documents
/// shared, then messages written straight to the store, a hundred per append. Returns the room
/// and its link's token.
async fn room_of_grace(rooms: &Rooms, store: &SqliteRoomStore, address: &str, label: &str) -> (RoomId, String) {
    let room = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(&agent(), room, InviteRequest::email("Grace", "Hopper", address))
        .await
        .unwrap();
    let link = rooms.get_link(&agent(), room).await.unwrap().link.unwrap();
    for i in 0..DOCUMENTS {
        rooms
            .share_document(
                &agent(),
                room,
                upload(&format!("{label}-{i}.txt"), format!("{label} {i}\n").into_bytes()),
            )
            .await
            .unwrap();
    }
    let mut state = rooms.room(&agent(), room).await.unwrap();
    let mut n = 0;
    while state.seq().get() < EVENTS {
        let count = (EVENTS - state.seq().get()).min(100);
        let posts = (0..count)
            .map(|_| {
                n += 1;
                RoomCommand::PostMessage {
                    text: format!("{label} message {n}"),
                    client_key: None,
                }
            })
            .collect();
        let (next, append) = run(&state, posts, rooms.now());
        store.append(append).await.unwrap();
        state = next;
    }
    (room, link.token().to_owned())
}

/// The pairs, one per line of `pairs.txt`: absorbed room, survivor, the absorbed room's link.
fn read_pairs(dir: &Path) -> Vec<(RoomId, RoomId, String)> {
    std::fs::read_to_string(dir.join("pairs.txt"))
        .unwrap()
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            (
                parts[0].parse().unwrap(),
                parts[1].parse().unwrap(),
                parts[2].to_owned(),
            )
        })
        .collect()
}

/// The child's work; a no-op unless the parent started this binary to be killed. It merges the
/// pairs not merged yet, one after another, saying when each starts and ends.
#[test]
fn merge_child() {
    let Some(dir) = std::env::var_os(CHILD) else { return };
    let dir = Path::new(&dir).to_owned();
    runtime().block_on(async {
        let (rooms, _) = deployment(&dir).await;
        let mut stdout = std::io::stdout();
        for (i, (absorbed, survivor, _)) in read_pairs(&dir).into_iter().enumerate() {
            writeln!(stdout, "merging {i}").unwrap();
            stdout.flush().unwrap();
            match rooms.merge_rooms(&agent(), absorbed, survivor).await {
                Ok(_) | Err(Error::RoomMerged { .. }) => {}
                Err(e) => panic!("merge {i}: {e}"),
            }
            writeln!(stdout, "merged {i}").unwrap();
            stdout.flush().unwrap();
        }
    });
}

/// A pseudo-random delay from the clock, up to `max_ms`: no randomness crate needed for this.
fn random_delay(max_ms: u32) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Duration::from_millis(u64::from(nanos % max_ms))
}

#[test]
fn a_merge_killed_half_way_is_undone_whole_and_a_finished_one_stays() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_owned();
    let before = runtime().block_on(async {
        let (rooms, store) = deployment(&dir).await;
        let mut lines = String::new();
        let mut before = Vec::new();
        for i in 0..PAIRS {
            let (absorbed, link) = room_of_grace(&rooms, &store, "grace@example.com", &format!("a{i}")).await;
            let (survivor, _) = room_of_grace(&rooms, &store, "GRACE@example.com", &format!("s{i}")).await;
            lines.push_str(&format!("{absorbed} {survivor} {link}\n"));
            before.push((whole(&rooms, absorbed).await, whole(&rooms, survivor).await));
        }
        std::fs::write(dir.join("pairs.txt"), lines).unwrap();
        before
    });

    // Kill the child in the middle of a merge: soon after one starts.
    let interrupted: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    for kill in 0..5 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "merge_child", "--nocapture", "--test-threads", "1"])
            .env(CHILD, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let started: Arc<Mutex<Vec<usize>>> = Arc::default();
        let finished: Arc<Mutex<Vec<usize>>> = Arc::default();
        let reader = std::thread::spawn({
            let (started, finished) = (started.clone(), finished.clone());
            move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // The test harness writes its own words before the first line.
                    let words: Vec<&str> = line.split_whitespace().collect();
                    match words[words.len().saturating_sub(2)..] {
                        ["merging", i] => started.lock().unwrap().push(i.parse().unwrap()),
                        ["merged", i] => finished.lock().unwrap().push(i.parse().unwrap()),
                        _ => {}
                    }
                }
            }
        });
        let since = Instant::now();
        // The second merge of this run under way (the first may be one merged already).
        while started.lock().unwrap().len() < 2 && since.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(random_delay(40));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let (started, finished) = (started.lock().unwrap(), finished.lock().unwrap());
        if let Some(last) = started.last().filter(|i| !finished.contains(i)) {
            interrupted.lock().unwrap().insert(*last);
        }
        eprintln!("kill {kill}: started {started:?}, finished {finished:?}");
    }
    let interrupted = interrupted.lock().unwrap().clone();
    assert!(!interrupted.is_empty(), "no kill landed in the middle of a merge");

    runtime().block_on(async {
        let (rooms, _) = deployment(&dir).await;
        let mut merged = 0;
        for (i, ((absorbed, survivor, link), (absorbed_before, survivor_before))) in
            read_pairs(&dir).into_iter().zip(&before).enumerate()
        {
            let absorbed_now = whole(&rooms, absorbed).await;
            let survivor_now = whole(&rooms, survivor).await;
            let joined = rooms.join(&link).await.unwrap();
            let state = rooms.room(&agent(), absorbed).await.unwrap();
            if state.status() != RoomStatus::Merged {
                // Not merged: both rooms exactly as they were.
                assert_eq!(&absorbed_now, absorbed_before, "pair {i}: the absorbed room changed");
                assert_eq!(&survivor_now, survivor_before, "pair {i}: the survivor changed");
                assert_eq!(joined.room, absorbed, "pair {i}: the link opens its own room");
                continue;
            }
            merged += 1;
            // Merged whole: the absorbed log then its pointer; the survivor's own events, every
            // copy, then the record.
            assert_eq!(absorbed_now[..absorbed_before.len()], absorbed_before[..], "pair {i}");
            assert_eq!(
                absorbed_now.last().map(|e| &e.data),
                Some(&EventData::MergedInto { survivor }),
                "pair {i}"
            );
            assert_eq!(survivor_now[..survivor_before.len()], survivor_before[..], "pair {i}");
            let added = &survivor_now[survivor_before.len()..];
            let Some(EventData::RoomMerged { copied, .. }) = added.last().map(|e| &e.data) else {
                panic!("pair {i}: no merge record");
            };
            let copies = &added[..added.len() - 1];
            assert_eq!(copies.len() as u64, *copied, "pair {i}");
            let messages = |events: &[Event]| {
                events
                    .iter()
                    .filter(|e| matches!(e.data, EventData::MessagePosted { .. }))
                    .count()
            };
            assert_eq!(
                messages(copies),
                messages(absorbed_before),
                "pair {i}: every message, once"
            );
            let documents = rooms.room(&agent(), survivor).await.unwrap().documents().to_vec();
            assert_eq!(documents.len(), 2 * DOCUMENTS, "pair {i}");
            for document in &documents {
                assert!(
                    rooms.open_document(&agent(), survivor, document.id, None).await.is_ok(),
                    "pair {i}"
                );
            }
            assert_eq!(
                joined.room, survivor,
                "pair {i}: the absorbed room's link leads to the survivor"
            );
        }
        eprintln!("{merged} of {PAIRS} pairs merged; interrupted merges: {interrupted:?}");
        assert!(merged > 0, "no merge finished");
    });
}
