//! A room's storage quota (`RoomsConfig::with_max_room_bytes`): what passes it is refused with
//! nothing kept, before any byte is stored when the room is full, while the bytes arrive when
//! the room has a little left, and when recorded when uploads side by side pass it together.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use collab_core::blob::{BlobInfo, BlobKey, BlobMeta, ByteRange, Download, UploadStream};
use collab_core::memory::MemoryBlobStore;
use collab_core::rooms::{Rooms, RoomsConfig, Upload};
use collab_core::*;
use common::*;
use futures_util::{StreamExt, stream};

/// A blob store that counts its puts and knows which keys hold bytes.
#[derive(Debug, Default)]
struct Tracked {
    inner: MemoryBlobStore,
    live: Mutex<HashSet<BlobKey>>,
    puts: Mutex<usize>,
}

impl Tracked {
    fn live(&self) -> usize {
        self.live.lock().unwrap().len()
    }
    fn puts(&self) -> usize {
        *self.puts.lock().unwrap()
    }
}

#[async_trait]
impl BlobStore for Tracked {
    async fn put(&self, key: &BlobKey, data: UploadStream, limit: u64) -> Result<BlobInfo, Error> {
        *self.puts.lock().unwrap() += 1;
        let info = self.inner.put(key, data, limit).await?;
        self.live.lock().unwrap().insert(key.clone());
        Ok(info)
    }
    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<Option<Download>, Error> {
        self.inner.get(key, range).await
    }
    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, Error> {
        self.inner.head(key).await
    }
    async fn delete(&self, key: &BlobKey) -> Result<(), Error> {
        self.live.lock().unwrap().remove(key);
        self.inner.delete(key).await
    }
}

const QUOTA: u64 = 10_000;

fn config() -> RoomsConfig {
    RoomsConfig::default().with_max_room_bytes(QUOTA).unwrap()
}

fn world() -> (World, Arc<Tracked>) {
    let blobs = Arc::new(Tracked::default());
    let world = World::with(|b| b.blob_store(blobs.clone()).config(config()));
    (world, blobs)
}

/// `len` bytes of plain text.
fn text(len: usize) -> Vec<u8> {
    b"a line of notes\n".iter().copied().cycle().take(len).collect()
}

fn upload(bytes: Vec<u8>) -> Upload {
    let chunks: Vec<io::Result<Bytes>> = bytes.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Upload {
        file_name: "notes.txt".to_owned(),
        data: Box::pin(stream::iter(chunks)),
    }
}

#[test]
fn the_quota_is_checked() {
    assert!(matches!(
        RoomsConfig::default().with_max_room_bytes(0),
        Err(Error::Invalid {
            field: "max_room_bytes",
            ..
        })
    ));
    assert_eq!(RoomsConfig::default().max_room_bytes(), None);
    assert_eq!(config().max_room_bytes(), Some(QUOTA));
}

#[tokio::test]
async fn a_document_past_the_quota_is_refused_and_nothing_is_kept() {
    let (world, blobs) = world();
    let (room, customer, _) = world.room_with_customer().await;
    world
        .rooms
        .share_document(&customer, room, upload(text(6_000)))
        .await
        .unwrap();

    // 5,000 bytes where 4,000 are left: cut at byte 4,001, refused as the quota's, not kept.
    let refused = world.rooms.share_document(&customer, room, upload(text(5_000))).await;
    assert!(
        matches!(
            refused,
            Err(Error::QuotaExceeded {
                quota: QUOTA,
                available: 4_000
            })
        ),
        "{refused:?}"
    );
    assert_eq!(refused.unwrap_err().kind().as_str(), "quota_exceeded");
    assert_eq!(blobs.live(), 1);

    // Exactly what is left fits.
    world
        .rooms
        .share_document(&customer, room, upload(text(4_000)))
        .await
        .unwrap();
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.document_bytes(), QUOTA);

    // A full room refuses before storing a byte.
    let puts = blobs.puts();
    let full = world.rooms.share_document(&agent(), room, upload(text(10))).await;
    assert!(
        matches!(full, Err(Error::QuotaExceeded { available: 0, .. })),
        "{full:?}"
    );
    assert_eq!(blobs.puts(), puts, "a full room stored bytes");
    assert_eq!(blobs.live(), 2);

    // Another room has its own quota.
    let (other, other_customer, _) = world.room_with_customer().await;
    world
        .rooms
        .share_document(&other_customer, other, upload(text(9_000)))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_quota_holds_across_a_restart() {
    let (world, blobs) = world();
    let (room, customer, _) = world.room_with_customer().await;
    world
        .rooms
        .share_document(&customer, room, upload(text(9_500)))
        .await
        .unwrap();

    // A new service on the same stores: the use is read from the room's events.
    let restarted = Rooms::builder()
        .room_store(world.store.clone())
        .blob_store(blobs.clone())
        .clock(world.clock.clone())
        .config(config())
        .build();
    let refused = restarted.share_document(&customer, room, upload(text(501))).await;
    assert!(
        matches!(refused, Err(Error::QuotaExceeded { available: 500, .. })),
        "{refused:?}"
    );
    assert_eq!(blobs.live(), 1);
}

#[tokio::test]
async fn uploads_side_by_side_cannot_pass_the_quota_together() {
    let (world, blobs) = world();
    let (room, customer, _) = world.room_with_customer().await;
    // Each fits alone, not both. Neither stream ends before both are under way, so both pass
    // the check before storing: the one recorded second is refused when it is recorded.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let held = |bytes: Vec<u8>| {
        let barrier = barrier.clone();
        let Upload { file_name, data } = upload(bytes);
        let end = stream::once(async move {
            barrier.wait().await;
            Ok(Bytes::new())
        });
        Upload {
            file_name,
            data: Box::pin(data.chain(end)),
        }
    };
    let agent = agent();
    let (a, b) = tokio::join!(
        world.rooms.share_document(&customer, room, held(text(6_000))),
        world.rooms.share_document(&agent, room, held(text(6_000))),
    );
    let refused = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(Error::QuotaExceeded { .. })))
        .count();
    assert_eq!((a.is_ok() || b.is_ok(), refused), (true, 1), "{a:?} {b:?}");
    assert_eq!(blobs.puts(), 2, "both were stored before one was refused");
    assert_eq!(blobs.live(), 1, "the refused upload's bytes stayed");
    let state = world.rooms.room(&agent, room).await.unwrap();
    assert_eq!(state.document_bytes(), 6_000);
}
