//! Checks for [`BlobStore`] adapters.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::future::{Either, select};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::sync::oneshot;

use crate::Error;
use crate::blob::{BlobKey, BlobPrefix, BlobStore, ByteRange, Sha256Digest, StoredBlob, UploadStream};
use crate::id::{DocumentId, RoomId, TenantId};
use crate::time::Timestamp;

use super::new_id;

fn tenant() -> TenantId {
    TenantId::new("conformance").expect("valid tenant")
}

fn fresh_key() -> BlobKey {
    BlobKey::for_document(&tenant(), RoomId::from_u128(new_id()), DocumentId::from_u128(new_id()))
}

async fn listed(store: &dyn BlobStore, prefix: &BlobPrefix) -> Vec<StoredBlob> {
    let mut blobs: Vec<StoredBlob> = store.list(prefix).try_collect().await.expect("list");
    blobs.sort_by(|a, b| a.key.cmp(&b.key));
    blobs
}

/// `len` bytes of a repeating pattern, so that misplaced ranges show.
pub fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

fn chunks(bytes: &Bytes, chunk: usize) -> UploadStream {
    let parts: Vec<io::Result<Bytes>> = bytes
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(stream::iter(parts))
}

async fn read_all(store: &dyn BlobStore, key: &BlobKey, range: Option<ByteRange>) -> Result<Option<Bytes>, Error> {
    let Some(mut download) = store.get(key, range).await? else {
        return Ok(None);
    };
    let mut out = BytesMut::new();
    let expected = download.range.end - download.range.start;
    while let Some(chunk) = download.stream.next().await {
        out.extend_from_slice(&chunk?);
        // A stream without end would be read for ever.
        assert!(out.len() as u64 <= expected, "the stream yields more than its range");
    }
    assert_eq!(out.len() as u64, expected, "the stream matches its range");
    Ok(Some(out.freeze()))
}

/// What is put comes back whole, with its size and digest.
pub async fn put_then_get_round_trips(store: &dyn BlobStore) {
    let key = fresh_key();
    let data = pattern(300_000);
    let info = store.put(&key, chunks(&data, 7_001), 1 << 20).await.expect("put");
    assert_eq!(info.size, 300_000);
    assert_eq!(info.sha256, Sha256Digest::of(&data));
    assert_eq!(store.head(&key).await.expect("head").map(|m| m.size), Some(300_000));
    assert_eq!(read_all(store, &key, None).await.expect("get"), Some(data));
    let download = store.get(&key, None).await.expect("get").expect("exists");
    assert_eq!((download.size, download.range), (300_000, 0..300_000));
}

/// Past the limit, the upload fails with `TooLarge` before the stream is read much further,
/// and nothing is visible under the key.
pub async fn the_size_limit_is_enforced_while_streaming(store: &dyn BlobStore) {
    let key = fresh_key();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    // 1 KiB chunks without end: a store that buffers before checking never returns.
    let endless = stream::repeat_with(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(Bytes::from_static(&[7u8; 1024]))
    })
    .take(1_000_000);
    let result = store.put(&key, Box::pin(endless), 64 * 1024).await;
    assert!(matches!(result, Err(Error::TooLarge { limit: 65_536 })), "{result:?}");
    let read = pulled.load(Ordering::Relaxed);
    assert!(
        read <= 64 + 16,
        "the store read {read} chunks of 1 KiB for a 64 KiB limit"
    );
    assert_eq!(store.head(&key).await.expect("head"), None);
    assert!(read_all(store, &key, None).await.expect("get").is_none());
}

/// Exactly `limit` bytes are accepted; one more is not.
pub async fn exactly_the_limit_is_accepted(store: &dyn BlobStore) {
    let key = fresh_key();
    let data = pattern(10_000);
    assert_eq!(
        store.put(&key, chunks(&data, 999), 10_000).await.expect("put").size,
        10_000
    );
    let over = fresh_key();
    let result = store.put(&over, chunks(&pattern(10_001), 999), 10_000).await;
    assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
    assert_eq!(store.head(&over).await.expect("head"), None);
}

/// A zero-byte blob is stored and read back, and has no satisfiable range.
pub async fn empty_blobs_round_trip(store: &dyn BlobStore) {
    let key = fresh_key();
    let info = store.put(&key, Box::pin(stream::empty()), 100).await.expect("put");
    assert_eq!(info.size, 0);
    assert_eq!(info.sha256, Sha256Digest::of(b""));
    assert_eq!(store.head(&key).await.expect("head").map(|m| m.size), Some(0));
    assert_eq!(read_all(store, &key, None).await.expect("get"), Some(Bytes::new()));
    let result = store.get(&key, Some(ByteRange::from_start(0))).await;
    assert!(
        matches!(result, Err(Error::RangeNotSatisfiable { size: 0 })),
        "{result:?}"
    );
}

/// First byte, last byte, a clamped end, an open end, and a start past the end.
pub async fn ranges_at_the_edges(store: &dyn BlobStore) {
    let key = fresh_key();
    let data = pattern(70_000);
    store.put(&key, chunks(&data, 8_192), 1 << 20).await.expect("put");
    let range = |a, b| Some(ByteRange::new(a..b).expect("non-empty"));
    let get = |r| read_all(store, &key, r);
    assert_eq!(get(range(0, 1)).await.expect("first").as_deref(), Some(&data[..1]));
    assert_eq!(
        get(range(69_999, 70_000)).await.expect("last").as_deref(),
        Some(&data[69_999..])
    );
    assert_eq!(
        get(range(65_000, 90_000)).await.expect("clamped").as_deref(),
        Some(&data[65_000..])
    );
    assert_eq!(
        get(Some(ByteRange::from_start(12_345))).await.expect("open").as_deref(),
        Some(&data[12_345..])
    );
    assert_eq!(
        get(range(100, 8_292)).await.expect("middle").as_deref(),
        Some(&data[100..8_292])
    );
    let download = store.get(&key, range(10, 20)).await.expect("get").expect("exists");
    assert_eq!((download.size, download.range), (70_000, 10..20));
    for past in [range(70_000, 70_001), Some(ByteRange::from_start(80_000))] {
        let result = store.get(&key, past).await;
        assert!(
            matches!(result, Err(Error::RangeNotSatisfiable { size: 70_000 })),
            "{result:?}"
        );
    }
}

/// Missing keys read as `None`; deleting is idempotent.
pub async fn missing_keys_are_none(store: &dyn BlobStore) {
    let key = fresh_key();
    assert!(store.get(&key, None).await.expect("get").is_none());
    assert_eq!(store.head(&key).await.expect("head"), None);
    store.delete(&key).await.expect("delete of a missing key");
    store.put(&key, chunks(&pattern(10), 3), 100).await.expect("put");
    store.delete(&key).await.expect("delete");
    store.delete(&key).await.expect("delete again");
    assert_eq!(store.head(&key).await.expect("head"), None);
}

/// A client stream that fails mid-way fails the upload and leaves nothing.
pub async fn an_interrupted_upload_leaves_nothing(store: &dyn BlobStore) {
    let key = fresh_key();
    let parts: Vec<io::Result<Bytes>> = vec![
        Ok(pattern(4096)),
        Ok(pattern(4096)),
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "client went away")),
        Ok(pattern(4096)),
    ];
    let result = store.put(&key, Box::pin(stream::iter(parts)), 1 << 20).await;
    assert!(matches!(result, Err(Error::UploadAborted { .. })), "{result:?}");
    assert_eq!(store.head(&key).await.expect("head"), None);
}

/// A room's listing holds exactly its blobs, with their sizes and recent write times;
/// deleted blobs and other rooms' are not in it; the listing of everything holds them all.
pub async fn listing_finds_what_is_stored(store: &dyn BlobStore) {
    let room = RoomId::from_u128(new_id());
    let mut keys: Vec<BlobKey> = (0..3)
        .map(|_| BlobKey::for_document(&tenant(), room, DocumentId::from_u128(new_id())))
        .collect();
    keys.sort();
    for (i, key) in keys.iter().enumerate() {
        store
            .put(key, chunks(&pattern(100 * i), 33), 1 << 20)
            .await
            .expect("put");
    }
    let elsewhere = fresh_key();
    store.put(&elsewhere, chunks(&pattern(5), 5), 100).await.expect("put");

    let found = listed(store, &BlobPrefix::room(&tenant(), room)).await;
    let names: Vec<&BlobKey> = found.iter().map(|b| &b.key).collect();
    assert_eq!(names, keys.iter().collect::<Vec<_>>(), "exactly the room's blobs");
    let sizes: Vec<u64> = found.iter().map(|b| b.size).collect();
    assert_eq!(sizes, [0, 100, 200]);
    // Stores date blobs by their own clock: allow for some skew, not for a missing date.
    let now = Timestamp::from(SystemTime::now());
    for blob in &found {
        let skew = if blob.modified > now {
            blob.modified.since(now)
        } else {
            now.since(blob.modified)
        };
        assert!(skew < Duration::from_secs(3600), "{blob:?} written at {now}?");
    }

    store.delete(&keys[1]).await.expect("delete");
    let found = listed(store, &BlobPrefix::room(&tenant(), room)).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|b| b.key != keys[1]), "deleted blobs are not listed");
    let empty = BlobPrefix::room(&tenant(), RoomId::from_u128(new_id()));
    assert!(listed(store, &empty).await.is_empty(), "a room without blobs");
    let everything = listed(store, &BlobPrefix::everything()).await;
    for key in [&keys[0], &keys[2], &elsewhere] {
        assert!(everything.iter().any(|b| b.key == *key), "{key} is missing");
    }
}

/// How long [`uploads_under_way_are_not_listed`] waits for a store to take an upload's first
/// chunks: generous for a store on a remote server, short enough to fail instead of hang.
const TAKE_DEADLINE: Duration = Duration::from_secs(60);

/// Neither an upload under way nor a failed one is listed.
pub async fn uploads_under_way_are_not_listed(store: &dyn BlobStore) {
    let key = fresh_key();
    let room = BlobPrefix::room(&tenant(), key.document_ids().expect("a document key").0);
    let (taken, first_taken) = oneshot::channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let first: Vec<io::Result<Bytes>> = vec![Ok(pattern(4096)), Ok(pattern(4096))];
    // Asked for more, the body knows the store holds its first chunks: it says so, and keeps
    // the rest back until the check has listed. The listing thus happens mid-upload, however
    // slow the store is to start.
    let rest = stream::once(async move {
        let _ = taken.send(());
        let _ = released.await;
        Ok(pattern(10))
    });
    let data: UploadStream = Box::pin(stream::iter(first).chain(rest));
    let put = Box::pin(store.put(&key, data, 1 << 20));
    let look = Box::pin(async {
        match tokio::time::timeout(TAKE_DEADLINE, first_taken).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("the store dropped the upload's body before taking its first chunks"),
            Err(_) => panic!("the store did not take the upload's first chunks within {TAKE_DEADLINE:?}"),
        }
        listed(store, &room).await
    });
    let (during, put) = match select(put, look).await {
        Either::Left((result, _)) => panic!("the upload ended before its last chunk: {result:?}"),
        Either::Right((during, put)) => (during, put),
    };
    assert!(during.is_empty(), "an upload under way is listed: {during:?}");
    drop(release);
    let info = put.await.expect("put");
    assert_eq!(info.size, 8192 + 10);
    assert_eq!(listed(store, &room).await.len(), 1);

    let failed = BlobKey::for_document(
        &tenant(),
        key.document_ids().expect("a document key").0,
        DocumentId::from_u128(new_id()),
    );
    let result = store.put(&failed, chunks(&pattern(2_000), 100), 1_000).await;
    assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
    assert_eq!(listed(store, &room).await.len(), 1, "a refused upload is not listed");
}

/// A second put under a key replaces the first.
pub async fn put_replaces(store: &dyn BlobStore) {
    let key = fresh_key();
    store
        .put(&key, chunks(&pattern(5_000), 1_000), 1 << 20)
        .await
        .expect("put");
    let second = Bytes::from_static(b"second version");
    store.put(&key, chunks(&second, 4), 1 << 20).await.expect("put again");
    assert_eq!(read_all(store, &key, None).await.expect("get"), Some(second));
}
