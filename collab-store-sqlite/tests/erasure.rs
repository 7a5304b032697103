//! Erasure leaves no byte of a customer's personal data in the SQLite files (database, log and
//! shared memory) or in the documents' directory, and retention purges in batches.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use collab_core::notify::RecordingNotifier;
use collab_core::rooms::{InviteRequest, Upload};
use collab_core::time::ManualClock;
use collab_core::{Actor, AgentId, PhoneNumber, Recipient, RoomId, RoomStatus, Rooms, RoomsConfig, TenantId};
use collab_store_s3::{Durability, ObjectBlobStore};
use collab_store_sqlite::SqliteRoomStore;

/// What a customer leaves behind, each piece distinctive enough to be found in raw bytes.
struct Customer {
    first: &'static str,
    last: &'static str,
    phone: &'static str,
    email: &'static str,
    message: String,
    document_name: &'static str,
    document: Vec<u8>,
}

impl Customer {
    fn markers(&self) -> Vec<Vec<u8>> {
        let message_marker = self.message.split(' ').next_back().unwrap_or_default();
        let document_marker = &self.document[..32];
        [
            self.first.as_bytes(),
            self.last.as_bytes(),
            self.first.to_lowercase().as_bytes(),
            self.last.to_lowercase().as_bytes(),
            // The national part, however the number is written.
            &self.phone.as_bytes()[2..],
            self.email.as_bytes(),
            message_marker.as_bytes(),
            self.document_name.as_bytes(),
            document_marker,
        ]
        .iter()
        .map(|m| m.to_vec())
        .collect()
    }
}

fn customers() -> [Customer; 2] {
    [
        Customer {
            first: "Zephyrine",
            last: "Quillfeather",
            phone: "+14155550142",
            email: "zephyrine.q@example.org",
            // Long enough to spill into SQLite's overflow pages.
            message: format!("{} the vault code is VAULT7373ALPHA", "lorem ipsum ".repeat(327)),
            document_name: "quillfeather-passport.txt",
            document: b"PASSPORT-SCAN-3f9a1c77e2b04d58a6 of Zephyrine Quillfeather\n".repeat(2000),
        },
        Customer {
            first: "Bartholomew",
            last: "Kestrelwood",
            phone: "+14155550199",
            email: "b.kestrelwood@example.net",
            message: "please call me about KESTREL9090BRAVO".to_owned(),
            document_name: "kestrelwood-lease.txt",
            document: b"LEASE-AGREEMENT-77c2e9d14a0b6f3e51 for Bartholomew\n".repeat(40),
        },
    ]
}

/// Every file under `dir`, read whole.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push((path.display().to_string(), std::fs::read(&path).expect("read file")));
            }
        }
    }
    found
}

/// The markers of `customer` found in the files under `dir`: (marker, file).
fn leftovers(dir: &Path, customer: &Customer) -> Vec<(String, String)> {
    let files = files(dir);
    let mut found = Vec::new();
    for marker in customer.markers() {
        for (name, bytes) in &files {
            if bytes.windows(marker.len()).any(|w| w == marker.as_slice()) {
                found.push((String::from_utf8_lossy(&marker).into_owned(), name.clone()));
            }
        }
    }
    found
}

struct Deployment {
    rooms: Rooms,
    agent: Actor,
    _store: Arc<SqliteRoomStore>,
}

async fn deployment(dir: &Path, clock: Arc<ManualClock>, config: RoomsConfig) -> Deployment {
    let store = Arc::new(SqliteRoomStore::open(dir.join("rooms.db")).await.expect("open sqlite"));
    let blobs = ObjectBlobStore::local(dir.join("documents"), Durability::Buffered)
        .expect("local files")
        .build()
        .expect("blob store");
    let rooms = Rooms::builder()
        .room_store(store.clone())
        .blob_store(blobs)
        .sms(RecordingNotifier::new())
        .email(RecordingNotifier::new())
        .clock(clock)
        .config(config)
        .build();
    let agent = Actor::Agent {
        tenant: TenantId::new("acme").expect("tenant"),
        agent: AgentId::new("ada").expect("agent"),
    };
    Deployment {
        rooms,
        agent,
        _store: store,
    }
}

/// A room with `customer` invited by SMS and email, joined through a link, and both sides
/// talking and sharing a document. Deliveries stay queued in the outbox.
async fn room_of(d: &Deployment, customer: &Customer) -> RoomId {
    let rooms = &d.rooms;
    let room = rooms.create_room(&d.agent).await.expect("create").room;
    let sms = InviteRequest::sms(customer.first, customer.last, customer.phone);
    rooms.invite(&d.agent, room, sms).await.expect("sms invite");
    let email = InviteRequest::again(collab_core::Channel::Email, Some(customer.email));
    rooms.invite(&d.agent, room, email).await.expect("email invite");
    let link = rooms
        .get_link(&d.agent, room)
        .await
        .expect("link")
        .link
        .expect("a link");
    let session = rooms.join(link.token()).await.expect("join");
    let me = Actor::Customer {
        room,
        participant: session.participant,
    };
    rooms
        .post_message(&me, room, &customer.message, None)
        .await
        .expect("customer posts");
    rooms
        .post_message(&d.agent, room, &format!("Thanks {}", customer.first), None)
        .await
        .expect("agent posts");
    let upload = Upload {
        file_name: customer.document_name.to_owned(),
        data: Box::pin(futures_util::stream::iter([Ok(Bytes::from(customer.document.clone()))])),
    };
    rooms.share_document(&me, room, upload).await.expect("share");
    room
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_customer_leaves_no_byte_in_the_database_or_the_documents() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::new(collab_core::testing::room_store::T0));
    let d = deployment(dir.path(), clock, RoomsConfig::default()).await;
    let [erased, kept] = customers();
    let erased_room = room_of(&d, &erased).await;
    let kept_room = room_of(&d, &kept).await;
    // A second room of the same customer, found by the same number, which took a third in:
    // the merge copied the third room's messages, documents and customer into it.
    let second_room = room_of(&d, &erased).await;
    let third_room = room_of(&d, &erased).await;
    d.rooms
        .merge_rooms(&d.agent, third_room, second_room)
        .await
        .expect("merge");
    // The scan can fail: before the erasure it finds every marker.
    let mut before: Vec<String> = leftovers(dir.path(), &erased).into_iter().map(|(m, _)| m).collect();
    before.dedup();
    assert_eq!(before.len(), erased.markers().len(), "{before:?}");

    let phone = Recipient::Phone(PhoneNumber::parse(erased.phone).expect("phone"));
    let mut found = d.rooms.erase_customer(&d.agent, &phone).await.expect("erase");
    found.sort();
    let mut expected = vec![erased_room, second_room, third_room];
    expected.sort();
    assert_eq!(found, expected);

    assert_eq!(leftovers(dir.path(), &erased), Vec::<(String, String)>::new());
    // The other customer's room is whole.
    let mut kept_found: Vec<String> = leftovers(dir.path(), &kept).into_iter().map(|(m, _)| m).collect();
    kept_found.dedup();
    assert_eq!(kept_found.len(), kept.markers().len(), "{kept_found:?}");
    let state = d.rooms.room(&d.agent, erased_room).await.expect("still readable");
    assert_eq!(state.status(), RoomStatus::Erased);
    assert!(matches!(
        d.rooms.post_message(&d.agent, erased_room, "hello?", None).await,
        Err(collab_core::Error::RoomErased)
    ));
    let kept_state = d.rooms.room(&d.agent, kept_room).await.expect("kept");
    assert_eq!(
        (kept_state.status(), kept_state.documents().len()),
        (RoomStatus::Active, 1)
    );
    // Erasing again finds nothing left to do, and is no error.
    d.rooms.erase_room(&d.agent, erased_room).await.expect("erase again");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_purges_ended_rooms_in_batches_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::new(collab_core::testing::room_store::T0));
    let config = RoomsConfig::default()
        .with_retention(Duration::from_secs(30 * 24 * 3600))
        .expect("retention");
    let d = deployment(dir.path(), clock.clone(), config).await;
    const ROOMS: usize = 10_000;
    let mut closed = Vec::with_capacity(ROOMS);
    for _ in 0..ROOMS {
        let room = d.rooms.create_room(&d.agent).await.expect("create").room;
        d.rooms.close_room(&d.agent, room).await.expect("close");
        closed.push(room);
    }
    let [customer, _] = customers();
    let with_document = room_of(&d, &customer).await;
    d.rooms.close_room(&d.agent, with_document).await.expect("close");
    clock.advance(Duration::from_secs(20 * 24 * 3600));
    let recent = d.rooms.create_room(&d.agent).await.expect("create").room;
    d.rooms.close_room(&d.agent, recent).await.expect("close");
    let open = d.rooms.create_room(&d.agent).await.expect("create").room;

    // Within the retention: nothing goes.
    assert_eq!(d.rooms.sweep_retention().await.expect("sweep").purged, 0);
    clock.advance(Duration::from_secs(11 * 24 * 3600));
    let swept = d.rooms.sweep_retention().await.expect("sweep");
    assert_eq!((swept.purged, swept.failed), (ROOMS + 1, 0));
    for room in [closed[0], closed[ROOMS - 1], with_document] {
        assert!(matches!(
            d.rooms.room(&d.agent, room).await,
            Err(collab_core::Error::NotFound { .. })
        ));
    }
    assert_eq!(leftovers(dir.path(), &customer), Vec::<(String, String)>::new());
    d.rooms.room(&d.agent, recent).await.expect("ended 11 days ago: kept");
    d.rooms.room(&d.agent, open).await.expect("open: kept");
}
