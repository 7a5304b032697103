//! What is particular to PostgreSQL: group commit, migrations, settings, an unreachable server.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use collab_core::store::{Append, OutboxTarget};
use collab_core::testing::room_store::{self, T0, create, fresh_tenant, post, stale};
use collab_core::*;
use collab_store_postgres::testing::TestSchema;
use collab_store_postgres::{PostgresConfig, PostgresRoomStore, PostgresTransport};
use futures_util::future::{join, join_all};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_no_check_covers_fails_only_its_own_append() {
    let Some(schema) = TestSchema::create("a_key_no_check_covers_fails_only_its_own_append").await else {
        return;
    };
    let store = schema.store().await;
    let tenant = fresh_tenant();
    // An append whose new outbox row has the id of a row that exists: the primary key refuses
    // it, inside a group of appends that must all go through.
    let (_, mut clashing) = create(&tenant, "agent", T0);
    let taken = OutboxId::from_u128(0x5eed);
    clashing.outbox.push(store::OutboxMessage {
        id: taken,
        room: clashing.room,
        target: OutboxTarget::Invite {
            invite: InviteId::from_u128(1),
            channel: Channel::Email,
        },
        payload: "payload".into(),
        not_before: T0,
    });
    schema
        .client()
        .await
        .execute(
            "INSERT INTO outbox (id, room, invite, channel, payload, not_before) \
             VALUES ($1::text::uuid, $1::text::uuid, $1::text::uuid, 'email', 'first', 0)",
            &[&taken.to_string()],
        )
        .await
        .unwrap();
    let mut others = Vec::new();
    let mut appends = vec![clashing.clone()];
    for _ in 0..20 {
        let (state, append) = create(&tenant, "agent", T0);
        others.push(state);
        appends.push(append);
    }
    let results = join_all(appends.into_iter().map(|a| store.append(a))).await;
    assert!(matches!(results[0], Err(Error::Conflict { .. })), "{:?}", results[0]);
    assert!(results[1..].iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        store.room_summary(clashing.room).await.unwrap(),
        None,
        "nothing of it written"
    );
    for state in &others {
        assert_eq!(
            store.room_summary(state.room()).await.unwrap().as_ref(),
            Some(state.summary())
        );
    }
}

/// `count` rooms of a fresh tenant, created and with one post each (at seq 2).
async fn rooms_at_seq_2(store: &PostgresRoomStore, count: usize) -> Vec<RoomState> {
    let tenant = fresh_tenant();
    let mut rooms = Vec::new();
    for i in 0..count {
        let (state, append) = create(&tenant, "agent", T0);
        store.append(append).await.expect("create");
        let (state, append) = post(&state, &format!("first post in room {i}"), T0);
        store.append(append).await.expect("first post");
        rooms.push(state);
    }
    rooms
}

/// That every append of `appends` but the first was answered Ok and written.
async fn assert_written_but_the_first(store: &PostgresRoomStore, appends: &[Append], results: &[Result<(), Error>]) {
    for (i, append) in appends.iter().enumerate().skip(1) {
        assert!(results[i].is_ok(), "room {i}: {:?}", results[i]);
        assert_eq!(
            store.room_summary(append.room).await.unwrap().as_ref(),
            Some(&append.summary)
        );
    }
}

/// The seqs of the events `store` holds for `room`, in order.
async fn stored_seqs(store: &PostgresRoomStore, room: RoomId) -> Vec<u64> {
    let events = store.read_events(room, Seq::ZERO, usize::MAX).await.unwrap();
    events.iter().map(|e| e.seq.get()).collect()
}

/// The wake-ups sent on `schema`'s channel, from a connection of its own.
async fn listen(schema: &TestSchema) -> (tokio_postgres::Client, mpsc::UnboundedReceiver<String>) {
    let (client, mut connection) = tokio_postgres::connect(schema.url(), NoTls).await.unwrap();
    let (wake_ups, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // The connection hands over notifications only when polled for them.
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message {
                let _ = wake_ups.send(n.payload().to_owned());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", schema.config().channel()))
        .await
        .unwrap();
    (client, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_appends_written_together_are_each_checked_and_only_the_written_rooms_wake() {
    let Some(schema) =
        TestSchema::create("plain_appends_written_together_are_each_checked_and_only_the_written_rooms_wake").await
    else {
        return;
    };
    let store = schema.store().await;
    let rooms = rooms_at_seq_2(&store, 15).await;
    let (listener, mut wake_ups) = listen(&schema).await;
    // Per room, in turn: a valid append, a stale one (expects seq 1) and one ahead (expects 3);
    // and one append to a room that does not exist. Sent together, so that they share groups.
    let mut appends = Vec::new();
    for (i, state) in rooms.iter().enumerate() {
        let (after, next) = post(state, &format!("post {i}"), T0);
        appends.push(match i % 3 {
            0 => next,
            1 => stale(next),
            _ => post(&after, "ahead", T0).1,
        });
    }
    let (ghost, _) = create(&fresh_tenant(), "agent", T0);
    let ghost = post(&ghost, "to a room never stored", T0).1;
    appends.push(ghost.clone());
    let results = join_all(appends.iter().map(|a| store.append(a.clone()))).await;
    let mut woken = BTreeSet::new();
    for (i, state) in rooms.iter().enumerate() {
        let summary = store.room_summary(state.room()).await.unwrap().unwrap();
        let seqs = stored_seqs(&store, state.room()).await;
        if i % 3 == 0 {
            assert!(results[i].is_ok(), "room {i}: {:?}", results[i]);
            assert_eq!(summary, appends[i].summary, "room {i}");
            assert_eq!(seqs, [1, 2, 3], "room {i}");
            woken.insert(format!("{}:3", state.room()));
        } else {
            assert!(
                matches!(results[i], Err(Error::Conflict { .. })),
                "room {i}: {:?}",
                results[i]
            );
            assert_eq!(&summary, state.summary(), "room {i}: unchanged");
            assert_eq!(seqs, [1, 2], "room {i}: nothing written");
        }
    }
    assert!(matches!(results[15], Err(Error::Conflict { .. })), "{:?}", results[15]);
    assert_eq!(store.room_summary(ghost.room).await.unwrap(), None);
    assert!(stored_seqs(&store, ghost.room).await.is_empty());
    // One wake-up per room written, and no other, in one notification per group (the appends
    // were sent together: a group or two): a marker sent after them comes next.
    let mut received = BTreeSet::new();
    let mut notifications = 0;
    while received.len() < woken.len() {
        let payload = tokio::time::timeout(Duration::from_secs(10), wake_ups.recv())
            .await
            .expect("the wake-ups of the rooms written")
            .unwrap();
        notifications += 1;
        for wake_up in payload.split(' ') {
            assert!(received.insert(wake_up.to_owned()), "{wake_up} twice");
        }
    }
    assert_eq!(received, woken);
    assert!(
        notifications < woken.len(),
        "{notifications} notifications for {} rooms",
        woken.len()
    );
    listener
        .execute("SELECT pg_notify($1, 'marker')", &[&schema.config().channel()])
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), wake_ups.recv())
        .await
        .unwrap();
    assert_eq!(next.as_deref(), Some("marker"), "a wake-up for a room not written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_group_of_plain_appends_fails_only_the_append_at_fault() {
    let Some(schema) = TestSchema::create("a_refused_group_of_plain_appends_fails_only_the_append_at_fault").await
    else {
        return;
    };
    let store = schema.store().await;
    let rooms = rooms_at_seq_2(&store, 12).await;
    // A stray event at seq 3 in room 0, behind the store's back: the room's seq says 2, so its
    // append passes the check and then clashes with the key, inside a group of valid appends.
    schema
        .client()
        .await
        .execute(
            "INSERT INTO events (room, seq, data) VALUES ($1::text::uuid, 3, 'stray')",
            &[&rooms[0].room().to_string()],
        )
        .await
        .unwrap();
    let appends: Vec<Append> = rooms
        .iter()
        .enumerate()
        .map(|(i, state)| post(state, &format!("post {i}"), T0).1)
        .collect();
    let results = join_all(appends.iter().map(|a| store.append(a.clone()))).await;
    assert!(matches!(results[0], Err(Error::Conflict { .. })), "{:?}", results[0]);
    assert_eq!(
        store.room_summary(rooms[0].room()).await.unwrap().as_ref(),
        Some(rooms[0].summary()),
        "nothing of it written"
    );
    assert_written_but_the_first(&store, &appends, &results).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_the_database_cannot_take_fails_alone() {
    let Some(schema) = TestSchema::create("an_append_the_database_cannot_take_fails_alone").await else {
        return;
    };
    let store = schema.store().await;
    let rooms = rooms_at_seq_2(&store, 12).await;
    let mut appends: Vec<Append> = rooms
        .iter()
        .enumerate()
        .map(|(i, state)| post(state, &format!("post {i}"), T0).1)
        .collect();
    // A well-formed append whose new seq is beyond PostgreSQL's bigint, sent with the others.
    let beyond = &mut appends[0];
    beyond.expected = Seq::new(i64::MAX as u64);
    beyond.events[0].seq = beyond.expected.next();
    beyond.summary.seq = beyond.expected.next();
    let results = join_all(appends.iter().map(|a| store.append(a.clone()))).await;
    assert!(
        matches!(&results[0], Err(Error::Invalid { field, .. }) if *field == "seq"),
        "{:?}",
        results[0]
    );
    assert_eq!(
        stored_seqs(&store, rooms[0].room()).await,
        [1, 2],
        "nothing of it written"
    );
    assert_written_but_the_first(&store, &appends, &results).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_racing_on_the_same_rooms_keep_each_room_gapless() {
    let Some(schema) = TestSchema::create("two_stores_racing_on_the_same_rooms_keep_each_room_gapless").await else {
        return;
    };
    let (a, b) = (schema.store().await, schema.store().await);
    let mut rooms = rooms_at_seq_2(&a, 24).await;
    for round in 0..5 {
        // The same rooms from both stores, in opposite orders: each room's lock is taken in id
        // order, whatever the order of the group.
        let from_a: Vec<Append> = rooms.iter().map(|s| post(s, &format!("a {round}"), T0).1).collect();
        let from_b: Vec<Append> = rooms
            .iter()
            .rev()
            .map(|s| post(s, &format!("b {round}"), T0).1)
            .collect();
        let (won_a, won_b) = join(
            join_all(from_a.iter().map(|x| a.append(x.clone()))),
            join_all(from_b.iter().map(|x| b.append(x.clone()))),
        )
        .await;
        for (i, state) in rooms.iter_mut().enumerate() {
            let (ra, rb) = (&won_a[i], &won_b[won_b.len() - 1 - i]);
            let wins = [ra, rb].iter().filter(|r| r.is_ok()).count();
            assert_eq!(wins, 1, "round {round} room {i}: {ra:?} {rb:?}");
            assert!(
                [ra, rb]
                    .iter()
                    .all(|r| r.is_ok() || matches!(r, Err(Error::Conflict { .. }))),
                "round {round} room {i}: {ra:?} {rb:?}"
            );
            *state = b.load_room(state.room()).await.unwrap().unwrap();
        }
    }
    for state in &rooms {
        let seqs = stored_seqs(&a, state.room()).await;
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7], "nothing lost, nothing doubled");
        assert_eq!(state.seq(), Seq::new(7));
    }
}

#[tokio::test]
async fn servers_starting_together_migrate_once() {
    let Some(schema) = TestSchema::create("servers_starting_together_migrate_once").await else {
        return;
    };
    let stores = join_all((0..4).map(|_| PostgresRoomStore::connect(schema.config()))).await;
    assert!(stores.iter().all(Result::is_ok), "{stores:?}");
    let applied = schema
        .client()
        .await
        .query_one(
            "SELECT count(*), count(DISTINCT version) FROM refinery_schema_history",
            &[],
        )
        .await
        .unwrap();
    let (rows, versions) = (applied.get::<_, i64>(0), applied.get::<_, i64>(1));
    assert_eq!((rows, versions), (7, 7), "V1 to V7 applied once each");
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let Some(schema) = TestSchema::create("a_database_from_a_newer_version_is_refused").await else {
        return;
    };
    drop(schema.store().await);
    schema
        .client()
        .await
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (99, 'from_the_future', '2030-01-01T00:00:00Z', '0')",
            &[],
        )
        .await
        .unwrap();
    let error = PostgresRoomStore::connect(schema.config()).await.unwrap_err();
    assert!(matches!(error, Error::Backend { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("newer version") && message.contains("99"), "{message}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_quick_backend_error() {
    // Nothing listens on port 1.
    let config = PostgresConfig::new("postgres://postgres@127.0.0.1:1/test")
        .unwrap()
        .with_timeout(Duration::from_secs(1))
        .unwrap();
    let started = std::time::Instant::now();
    let store = PostgresRoomStore::connect(&config).await.unwrap_err();
    let transport = PostgresTransport::connect(&config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    for error in [store, transport] {
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
    }
}

#[test]
fn settings_are_checked_and_the_password_never_printed() {
    assert!(matches!(
        PostgresConfig::new("mysql://nope"),
        Err(Error::Invalid { field: "database", .. })
    ));
    let config = PostgresConfig::new("postgres://collab:hunter2-secret@db.internal:5433/rooms").unwrap();
    let printed = format!("{config:?}");
    assert!(!printed.contains("hunter2-secret"), "{printed}");
    assert!(printed.contains("db.internal"), "{printed}");
    for bad in ["", "Upper", "1st", "has-dash", "pg_catalog", &"x".repeat(41)] {
        assert!(
            matches!(
                config.clone().with_schema(bad),
                Err(Error::Invalid { field: "schema", .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(config.channel(), "collab_rooms");
    assert_eq!(
        config.clone().with_schema("tenant_a").unwrap().channel(),
        "collab_rooms_tenant_a"
    );
    assert!(config.clone().with_pool_size(1).is_err());
    assert!(config.clone().with_max_batch(0).is_err());
    assert!(config.clone().with_timeout(Duration::from_millis(10)).is_err());
}

#[tokio::test]
async fn a_database_from_before_email_match_keys_finds_addresses_in_any_case() {
    let Some(schema) = TestSchema::create("a_database_from_before_email_match_keys_finds_addresses_in_any_case").await
    else {
        return;
    };
    let store = schema.store().await;
    let (tenant, state) = room_store::room_invited_by_email(&store).await;
    drop(store);
    // As version 2 wrote it: the address as typed, before migration 3.
    let client = schema.client().await;
    client
        .execute("UPDATE rooms SET email = $1", &[&room_store::TYPED_EMAIL])
        .await
        .unwrap();
    // Later migrations' objects go too, so that they apply again after migration 3.
    client
        .batch_execute(
            "DELETE FROM refinery_schema_history WHERE version >= 3; \
             DROP INDEX rooms_by_end; DROP INDEX credentials_by_room; ALTER TABLE rooms DROP COLUMN ended_at; \
             DROP INDEX outbox_by_subject; ALTER TABLE outbox DROP COLUMN queued; \
             DROP INDEX outbox_ready; ALTER TABLE outbox DROP COLUMN parked; DROP TABLE tenant_settings",
        )
        .await
        .unwrap();
    let store = schema.store().await;
    room_store::assert_found_by_email_in_any_case(&store, &tenant, state.room()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_told_not_to_notify_writes_without_a_single_notification() {
    let Some(schema) = TestSchema::create("a_store_told_not_to_notify_writes_without_a_single_notification").await
    else {
        return;
    };
    let store = PostgresRoomStore::connect(&schema.config().clone().with_notify(false))
        .await
        .unwrap();
    let (listener, mut wake_ups) = listen(&schema).await;
    // Both write paths: rooms created and posted to one by one (the general path for the
    // creations), then a post in every room at once (plain appends of distinct rooms).
    let rooms = rooms_at_seq_2(&store, 10).await;
    let posts = rooms.iter().map(|state| post(state, "no wake-up", T0).1);
    for result in join_all(posts.map(|append| store.append(append))).await {
        result.unwrap();
    }
    for state in &rooms {
        assert_eq!(stored_seqs(&store, state.room()).await, [1, 2, 3]);
    }
    // Nothing came before the marker sent after them.
    listener
        .execute("SELECT pg_notify($1, 'marker')", &[&schema.config().channel()])
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), wake_ups.recv())
        .await
        .unwrap();
    assert_eq!(
        first.as_deref(),
        Some("marker"),
        "a notification from a store told not to send one"
    );
}
