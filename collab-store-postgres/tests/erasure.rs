//! Erasure leaves no trace of a customer's personal data in any PostgreSQL table, and retention
//! purges ended rooms whole.
//!
//! "In any table" is what a query sees. The old row versions an update or delete leaves stay in
//! the table's files until `VACUUM` reclaims their space (autovacuum does, in time), as in any
//! PostgreSQL database; no query, replica or dump shows them.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use collab_core::memory::MemoryBlobStore;
use collab_core::notify::RecordingNotifier;
use collab_core::rooms::{InviteRequest, TimelineQuery, Upload};
use collab_core::time::ManualClock;
use collab_core::{
    Actor, AgentId, Channel, EmailAddress, Recipient, RoomId, RoomStatus, Rooms, RoomsConfig, Seq, TenantId,
};
use collab_store_postgres::testing::TestSchema;

const CUSTOMER: [&str; 6] = [
    "Zephyrine",
    "Quillfeather",
    "4155550142",
    "zephyrine.q@example.org",
    "VAULT7373ALPHA",
    "quillfeather-passport.txt",
];

fn agent() -> Actor {
    Actor::Agent {
        tenant: TenantId::new("acme").unwrap(),
        agent: AgentId::new("ada").unwrap(),
    }
}

fn rooms(store: collab_store_postgres::PostgresRoomStore, clock: Arc<ManualClock>, config: RoomsConfig) -> Rooms {
    Rooms::builder()
        .room_store(store)
        .blob_store(MemoryBlobStore::new())
        .sms(RecordingNotifier::new())
        .email(RecordingNotifier::new())
        .clock(clock)
        .config(config)
        .build()
}

/// A room whose customer was invited by SMS and email, joined, wrote and shared a document.
async fn room_with_customer(rooms: &Rooms) -> RoomId {
    let [first, last, phone, email, secret, document] = CUSTOMER;
    let room = rooms.create_room(&agent()).await.unwrap().room;
    let sms = InviteRequest::sms(first, last, &format!("+1{phone}"));
    rooms.invite(&agent(), room, sms).await.unwrap();
    rooms
        .invite(&agent(), room, InviteRequest::again(Channel::Email, Some(email)))
        .await
        .unwrap();
    let link = rooms.get_link(&agent(), room).await.unwrap().link.unwrap();
    let session = rooms.join(link.token()).await.unwrap();
    let me = Actor::Customer {
        room,
        participant: session.participant,
    };
    rooms
        .post_message(&me, room, &format!("the code is {secret}"), None)
        .await
        .unwrap();
    let upload = Upload {
        file_name: document.to_owned(),
        data: Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(b"a scan"))])),
    };
    rooms.share_document(&me, room, upload).await.unwrap();
    room
}

/// The customer's markers found in the rows of any table of the schema: (marker, table).
async fn leftovers(schema: &TestSchema) -> Vec<(String, String)> {
    let client = schema.client().await;
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
            &[&schema.name()],
        )
        .await
        .unwrap();
    assert!(tables.len() >= 5, "the schema's tables: {}", tables.len());
    let mut found = Vec::new();
    for table in tables {
        let table: String = table.get(0);
        let rows = client
            .query(&format!("SELECT t::text FROM {table} AS t"), &[])
            .await
            .unwrap();
        for row in rows {
            let text: String = row.get(0);
            for marker in CUSTOMER {
                // Names are also kept lower-cased, for search.
                if text.contains(marker) || text.contains(&marker.to_lowercase()) {
                    found.push((marker.to_owned(), table.clone()));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_customer_leaves_nothing_in_any_table() {
    let Some(schema) = TestSchema::create("collab-store-postgres erasure").await else {
        return;
    };
    let clock = Arc::new(ManualClock::new(collab_core::testing::room_store::T0));
    let rooms = rooms(schema.store().await, clock, RoomsConfig::default());
    let first = room_with_customer(&rooms).await;
    let second = room_with_customer(&rooms).await;
    // A third room of hers, merged into the second: its content was copied there.
    let third = room_with_customer(&rooms).await;
    rooms.merge_rooms(&agent(), third, second).await.unwrap();
    let other = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(
            &agent(),
            other,
            InviteRequest::email("Alan", "Turing", "alan@example.com"),
        )
        .await
        .unwrap();
    // The scan can fail: before the erasure it finds every marker.
    let before: Vec<String> = leftovers(&schema).await.into_iter().map(|(m, _)| m).collect();
    let mut markers = before.clone();
    markers.dedup();
    assert_eq!(markers.len(), CUSTOMER.len(), "{before:?}");

    let customer = Recipient::Email(EmailAddress::parse("Zephyrine.Q@example.org").unwrap());
    let mut erased = rooms.erase_customer(&agent(), &customer).await.unwrap();
    erased.sort();
    let mut expected = vec![first, second, third];
    expected.sort();
    assert_eq!(erased, expected);

    assert_eq!(leftovers(&schema).await, Vec::<(String, String)>::new());
    for room in [first, second, third] {
        let state = rooms.room(&agent(), room).await.unwrap();
        assert_eq!(state.status(), RoomStatus::Erased);
        // Gapless: every seq is still there.
        let query = TimelineQuery::After {
            seq: Seq::ZERO,
            limit: 1000,
        };
        let events = rooms.timeline(&agent(), room, query).await.unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq.get()).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    }
    let kept = rooms.room(&agent(), other).await.unwrap();
    assert_eq!(kept.customer().unwrap().first_name.as_str(), "Alan");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_purges_ended_rooms_and_keeps_the_rest() {
    let Some(schema) = TestSchema::create("collab-store-postgres retention").await else {
        return;
    };
    let clock = Arc::new(ManualClock::new(collab_core::testing::room_store::T0));
    let config = RoomsConfig::default()
        .with_retention(Duration::from_secs(30 * 24 * 3600))
        .unwrap();
    let rooms = rooms(schema.store().await, clock.clone(), config);
    let mut closed = Vec::new();
    for _ in 0..250 {
        let room = rooms.create_room(&agent()).await.unwrap().room;
        rooms.close_room(&agent(), room).await.unwrap();
        closed.push(room);
    }
    let with_customer = room_with_customer(&rooms).await;
    rooms.close_room(&agent(), with_customer).await.unwrap();
    let open = rooms.create_room(&agent()).await.unwrap().room;
    clock.advance(Duration::from_secs(31 * 24 * 3600));

    let swept = rooms.sweep_retention().await.unwrap();
    assert_eq!((swept.purged, swept.failed), (251, 0));
    assert_eq!(leftovers(&schema).await, Vec::<(String, String)>::new());
    assert!(rooms.room(&agent(), closed[0]).await.is_err());
    rooms.room(&agent(), open).await.unwrap();
    let client = schema.client().await;
    for table in ["events", "credentials", "outbox", "rooms"] {
        let count: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE room <> $1"),
                &[&uuid_of(open)],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 0, "{table} rows left of purged rooms");
    }
}

fn uuid_of(room: RoomId) -> uuid::Uuid {
    uuid::Uuid::from_u128(room.as_u128())
}
