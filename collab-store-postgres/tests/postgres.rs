//! What is particular to PostgreSQL: group commit, migrations, settings, an unreachable server.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use collab_core::testing::room_store::{T0, create, fresh_tenant};
use collab_core::*;
use collab_store_postgres::testing::TestSchema;
use collab_store_postgres::{PostgresConfig, PostgresRoomStore, PostgresTransport};
use futures_util::future::join_all;

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
        invite: InviteId::from_u128(1),
        channel: Channel::Email,
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
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap();
    assert_eq!(applied.get::<_, i64>(0), 1, "V1 applied once");
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
