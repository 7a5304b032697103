//! What is particular to SQLite: migrations, bad files, two stores on one file, the size of the
//! write-ahead log, and what the file holds. Group commit is checked by the conformance kit.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

use collab_core::testing::room_store::{self, T0, create, fresh_tenant, post};
use collab_core::*;
use collab_store_sqlite::{SqliteConfig, SqliteRoomStore};

async fn open(path: &Path) -> SqliteRoomStore {
    SqliteRoomStore::open(path).await.expect("open")
}

#[tokio::test]
async fn an_empty_file_is_migrated_and_reopening_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    let store = open(&path).await;
    let (state, append) = create(&fresh_tenant(), "agent", T0);
    store.append(append).await.unwrap();
    drop(store);
    let store = open(&path).await;
    assert_eq!(
        store.room_summary(state.room()).await.unwrap().as_ref(),
        Some(state.summary())
    );
    store.integrity_check().await.expect("a sound file");
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    drop(open(&path).await);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let error = SqliteRoomStore::open(&path).await.unwrap_err();
    assert!(matches!(error, Error::Backend { .. }));
    let message = format!("{error}");
    assert!(message.contains("newer version") && message.contains("99"), "{message}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, "this is a text file, not a database\n".repeat(200)).unwrap();
    let error = SqliteRoomStore::open(&path).await.unwrap_err();
    let message = format!("{error}");
    assert!(message.contains("not a SQLite database"), "{message}");
    // A directory where the file should be.
    let error = SqliteRoomStore::open(dir.path()).await.unwrap_err();
    assert!(matches!(error, Error::Backend { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_take_turns_without_locking_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = open(&path).await;
    let b = open(&path).await;
    let tenant = fresh_tenant();
    let write = |store: SqliteRoomStore| {
        let tenant = tenant.clone();
        async move {
            let (mut state, append) = create(&tenant, "agent", T0);
            store.append(append).await?;
            for i in 0..100 {
                let (next, append) = post(&state, &format!("m{i}"), T0);
                store.append(append).await?;
                state = next;
            }
            Ok::<RoomState, Error>(state)
        }
    };
    let (from_a, from_b) = tokio::join!(tokio::spawn(write(a.clone())), tokio::spawn(write(b.clone())));
    let (from_a, from_b) = (
        from_a.unwrap().expect("a's writes"),
        from_b.unwrap().expect("b's writes"),
    );
    // Each sees the other's writes.
    assert_eq!(a.load_room(from_b.room()).await.unwrap(), Some(from_b));
    assert_eq!(b.load_room(from_a.room()).await.unwrap(), Some(from_a));
}

#[tokio::test]
async fn settings_are_checked() {
    assert!(SqliteConfig::default().with_max_batch(0).is_err());
    assert!(SqliteConfig::default().with_readers(65).is_err());
    assert!(
        SqliteConfig::default()
            .with_busy_timeout(std::time::Duration::from_secs(3600))
            .is_err()
    );
    assert!(SqliteConfig::default().with_wal_limit(1024).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_holds_token_hashes_never_link_or_session_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rooms.db");
    let email = std::sync::Arc::new(notify::RecordingNotifier::new());
    let rooms = rooms::Rooms::builder()
        .room_store(open(&path).await)
        .email(email.clone())
        .build();
    let agent = Actor::Agent {
        tenant: TenantId::new("acme").unwrap(),
        agent: AgentId::new("ada").unwrap(),
    };
    let room = rooms.create_room(&agent).await.unwrap().room;
    rooms
        .invite(
            &agent,
            room,
            rooms::InviteRequest::email("Grace", "Hopper", "grace@example.com"),
        )
        .await
        .unwrap();
    rooms.dispatch_due().await.unwrap();
    let emailed = email.sent()[0].link.rsplit('/').next().unwrap().to_owned();
    let link = rooms.get_link(&agent, room).await.unwrap().link.unwrap();
    let session = rooms.join(link.token()).await.unwrap();
    rooms.join(&emailed).await.expect("the emailed link works");
    drop(rooms);
    // The store's threads close their connections after the drop; the last one checkpoints the
    // write-ahead log into the file and deletes it. Read once that is done, so that no file
    // vanishes between the listing and the reading (seen once in CI).
    let wal = dir.path().join("rooms.db-wal");
    for _ in 0..200 {
        if !wal.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!wal.exists(), "the store did not close within 10 s of the drop");
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains(&emailed), "the emailed link's token is in the file");
    assert!(!contains(link.token()), "the copied link's token is in the file");
    assert!(!contains(session.token.expose()), "the session token is in the file");
    assert!(contains("grace@example.com"), "the check reads the real file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_committed_but_unanswered_is_recorded_once_when_retried_and_after_reopening() {
    use collab_core::rooms::Rooms;
    use collab_core::testing::faults::{Fault, Faults, FaultyRoomStore, Method};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rooms.db");
    let agent = Actor::Agent {
        tenant: TenantId::new("acme").unwrap(),
        agent: AgentId::new("ada").unwrap(),
    };
    let faults = Faults::new();
    let rooms = Rooms::builder()
        .room_store(FaultyRoomStore::new(open(&path).await, faults.clone()))
        .build();
    let room = rooms.create_room(&agent).await.unwrap().room;
    // SQLite commits; the answer is lost on the way back (a dropped connection, a timeout).
    faults.plan_next(Method::Append, Fault::LoseAnswer);
    assert!(rooms.post_message(&agent, room, "hello", Some("key-1")).await.is_err());
    let retried = rooms.post_message(&agent, room, "hello", Some("key-1")).await.unwrap();
    assert_eq!(retried.seq, Seq::new(2), "the committed post, not a second one");
    drop(rooms);

    let reopened = Rooms::builder().room_store(open(&path).await).build();
    let again = reopened
        .post_message(&agent, room, "hello", Some("key-1"))
        .await
        .unwrap();
    assert_eq!(again, retried, "the key survives the restart");
    let query = collab_core::rooms::TimelineQuery::After {
        seq: Seq::ZERO,
        limit: 100,
    };
    let posts = reopened
        .timeline(&agent, room, query)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.data, EventData::MessagePosted { .. }))
        .count();
    assert_eq!(posts, 1);
}

/// Under steady writes with readers about, routine checkpoints never reach the log's end, so
/// SQLite never starts the log over: the store must empty it once it passes the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_stays_near_its_limit_under_steady_writes_and_reads() {
    const LIMIT: u64 = 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rooms.db");
    let config = SqliteConfig::default().with_wal_limit(LIMIT).unwrap();
    let store = SqliteRoomStore::open_with(&path, config).await.unwrap();
    let tenant = fresh_tenant();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    let wal = dir.path().join("rooms.db-wal");
    let watcher = tokio::spawn({
        let done = done.clone();
        async move {
            let mut largest = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                largest = largest.max(size);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            largest
        }
    });
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, done, tenant) = (store.clone(), done.clone(), tenant.clone());
            tokio::spawn(async move {
                let (_, append) = create(&tenant, "reader", T0);
                let room = append.room;
                store.append(append).await.unwrap();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    store.read_events(room, Seq::ZERO, 100).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let text = "a message long enough to fill pages quickly ".repeat(40);
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (store, tenant, text) = (store.clone(), tenant.clone(), text.clone());
            tokio::spawn(async move {
                let (mut state, append) = create(&tenant, "agent", T0);
                store.append(append).await.unwrap();
                for _ in 0..1_000 {
                    let (next, append) = post(&state, &text, T0);
                    store.append(append).await.unwrap();
                    state = next;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let largest = watcher.await.unwrap();
    let database = std::fs::metadata(&path).unwrap().len();
    eprintln!("largest write-ahead log: {largest} bytes; database: {database} bytes");
    assert!(
        database > 12 * LIMIT,
        "the test wrote too little to show anything: {database} bytes"
    );
    assert!(
        largest < 8 * LIMIT,
        "the write-ahead log grew to {largest} bytes, limit {LIMIT}"
    );
}

#[tokio::test]
async fn a_database_from_before_email_match_keys_finds_addresses_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let store = open(&path).await;
    let (tenant, state) = room_store::room_invited_by_email(&store).await;
    drop(store);
    // As version 2 wrote it: the address as typed, before migration 3.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE rooms SET email = ?1", [room_store::TYPED_EMAIL])
        .unwrap();
    // Without what later migrations added, so that they run again.
    conn.execute_batch(
        "DROP INDEX rooms_by_end; DROP INDEX credentials_by_room; \
         ALTER TABLE rooms DROP COLUMN ended_at; DROP INDEX outbox_ready; ALTER TABLE outbox DROP COLUMN parked; \
         DROP TABLE tenant_settings;",
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    drop(conn);
    let store = open(&path).await;
    room_store::assert_found_by_email_in_any_case(&store, &tenant, state.room()).await;
}

#[tokio::test]
async fn outbox_rows_queued_before_parking_still_wait_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("before-parking.db");
    let store = open(&path).await;
    let (state, append) = create(&fresh_tenant(), "agent", T0);
    store.append(append).await.unwrap();
    let target = store::OutboxTarget::Webhook {
        endpoint: EndpointId::from_u128(7),
    };
    let rows: Vec<store::OutboxMessage> = (1..=3u128)
        .map(|n| store::OutboxMessage {
            id: OutboxId::from_u128(n),
            room: state.room(),
            target,
            payload: format!("row {n}"),
            not_before: T0,
        })
        .collect();
    let (_, mut append) = post(&state, "three webhooks", T0);
    append.outbox.extend(rows.iter().cloned());
    store.append(append).await.unwrap();
    drop(store);
    // As version 6 left the table: no parked column, every row in the claim index.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP INDEX outbox_ready; ALTER TABLE outbox DROP COLUMN parked; \
         CREATE INDEX outbox_due ON outbox (not_before, id); DROP TABLE tenant_settings;",
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 6).unwrap();
    drop(conn);

    let store = open(&path).await;
    let lease = std::time::Duration::from_secs(30);
    let mut later = T0;
    for row in &rows {
        later = later.saturating_add(lease);
        let claimed = store.claim_outbox(later, lease, 10).await.unwrap();
        let ids: Vec<OutboxId> = claimed.iter().map(|c| c.message.id).collect();
        assert_eq!(ids, [row.id], "one at a time, in the order queued");
        store.delete_outbox(row.id).await.unwrap();
    }
    assert!(store.claim_outbox(later, lease, 10).await.unwrap().is_empty());
}
