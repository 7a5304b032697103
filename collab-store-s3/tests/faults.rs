//! Large uploads, faults and the store's own features, against a real S3 server in the process
//! and local files: multipart round trips, a limit overflow at part 3, a server stopped mid-upload,
//! a cancelled upload, wrong credentials, ranges across parts, presigned URLs, room deletion, and
//! the sweep of documents an upload left without their event.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use collab_core::blob::{BlobKey, BlobStore, ByteRange, Sha256Digest, UploadStream};
use collab_core::{DocumentId, Error, RoomId, TenantId};
use collab_store_s3::object_store::{ObjectStore, ObjectStoreExt};
use collab_store_s3::test_server::{self, TestS3Server};
use collab_store_s3::{Durability, ObjectBlobStore, S3Config};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;
const PART: usize = 5 * MIB;

fn key(room: u128, document: u128) -> BlobKey {
    BlobKey::for_document(
        &TenantId::new("acme").unwrap(),
        RoomId::from_u128(room),
        DocumentId::from_u128(document),
    )
}

/// `len` bytes of a pattern that shows misplaced ranges.
fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

/// `data` in chunks of `chunk` bytes, counting the bytes pulled into `pulled`.
fn chunked(data: Bytes, chunk: usize, pulled: Arc<AtomicU64>) -> UploadStream {
    let chunks: Vec<Bytes> = data.chunks(chunk).map(Bytes::copy_from_slice).collect();
    Box::pin(stream::iter(chunks).map(move |c| {
        pulled.fetch_add(c.len() as u64, Ordering::Relaxed);
        Ok::<_, io::Error>(c)
    }))
}

async fn read_all(store: &ObjectBlobStore, key: &BlobKey, range: Option<ByteRange>) -> Option<Bytes> {
    let download = store.get(key, range).await.expect("get")?;
    let parts: Vec<Bytes> = download.stream.try_collect().await.expect("read");
    let mut out = BytesMut::new();
    for p in parts {
        out.extend_from_slice(&p);
    }
    Some(out.freeze())
}

/// Every object in the bucket or directory, as object_store lists them.
async fn listed(store: &ObjectBlobStore) -> Vec<String> {
    let objects: Vec<_> = store.object_store().list(None).try_collect().await.expect("list");
    objects.into_iter().map(|m| m.location.to_string()).collect()
}

/// Every file under `dir`, staging files included.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                todo.push(entry.path());
            } else {
                out.push(entry.path().display().to_string());
            }
        }
    }
    out
}

struct S3 {
    store: ObjectBlobStore,
    server: TestS3Server,
    dir: tempfile::TempDir,
}

async fn s3() -> S3 {
    let dir = tempfile::tempdir().unwrap();
    let server = TestS3Server::start(dir.path()).await.unwrap();
    let store = ObjectBlobStore::s3(&server.config())
        .unwrap()
        .part_size(PART)
        .parts_in_flight(2)
        .build()
        .unwrap();
    S3 { store, server, dir }
}

fn local(dir: &tempfile::TempDir) -> ObjectBlobStore {
    ObjectBlobStore::local(dir.path(), Durability::Synced)
        .unwrap()
        .part_size(PART)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_go_in_parts_and_round_trip() {
    let s3 = s3().await;
    let dir = tempfile::tempdir().unwrap();
    let local = local(&dir);
    // One part in flight: the digest runs a part behind the store.
    let one_dir = tempfile::tempdir().unwrap();
    let one_in_flight = ObjectBlobStore::local(one_dir.path(), Durability::Synced)
        .unwrap()
        .part_size(PART)
        .parts_in_flight(1)
        .build()
        .unwrap();
    let data = pattern(3 * PART + 12_345);
    for store in [&s3.store, &local, &one_in_flight] {
        let k = key(1, 1);
        let info = store
            .put(&k, chunked(data.clone(), 65_537, Arc::default()), 64 * MIB as u64)
            .await
            .expect("put");
        assert_eq!(info.size, data.len() as u64);
        assert_eq!(info.sha256, Sha256Digest::of(&data));
        assert_eq!(read_all(store, &k, None).await, Some(data.clone()));
        // A range across the boundary of parts 1 and 2, and the last byte.
        let across = ByteRange::new(PART as u64 - 10..PART as u64 + 10).unwrap();
        assert_eq!(
            read_all(store, &k, Some(across)).await.as_deref(),
            Some(&data[PART - 10..PART + 10])
        );
        let last = ByteRange::from_start(data.len() as u64 - 1);
        assert_eq!(
            read_all(store, &k, Some(last)).await.as_deref(),
            Some(&data[data.len() - 1..])
        );
        let past = store.get(&k, Some(ByteRange::from_start(data.len() as u64))).await;
        assert!(matches!(past, Err(Error::RangeNotSatisfiable { size }) if size == data.len() as u64));
    }
    // S3 tags a multipart object's ETag with its part count: 4 parts, so it was not one put.
    let meta = s3
        .store
        .object_store()
        .as_ref()
        .head(&s3.store.location(&key(1, 1)))
        .await
        .unwrap();
    assert!(
        meta.e_tag.as_deref().unwrap_or_default().ends_with("-4\""),
        "{:?}",
        meta.e_tag
    );
    assert!(s3.server.incomplete_uploads().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_overflow_at_part_3_aborts_and_leaves_nothing() {
    let s3 = s3().await;
    let dir = tempfile::tempdir().unwrap();
    let local = local(&dir);
    // Parts 1 and 2 are sent whole; the limit falls inside part 3.
    let limit = (2 * PART + MIB) as u64;
    for store in [&s3.store, &local] {
        let pulled = Arc::new(AtomicU64::new(0));
        let k = key(2, 1);
        let result = store
            .put(&k, chunked(pattern(8 * PART), 64 * 1024, pulled.clone()), limit)
            .await;
        assert!(
            matches!(result, Err(Error::TooLarge { limit: l }) if l == limit),
            "{result:?}"
        );
        assert!(
            pulled.load(Ordering::Relaxed) <= limit + 64 * 1024,
            "read past the limit"
        );
        assert_eq!(store.head(&k).await.unwrap(), None);
        assert!(listed(store).await.is_empty());
    }
    assert_eq!(s3.server.incomplete_uploads().unwrap(), Vec::<String>::new());
    let bucket = s3.dir.path().join(test_server::BUCKET);
    assert_eq!(files_under(&bucket), Vec::<String>::new());
    assert_eq!(files_under(dir.path()), Vec::<String>::new(), "no staging file left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_in_part_3_aborts_and_leaves_nothing() {
    let s3 = s3().await;
    let dir = tempfile::tempdir().unwrap();
    let local = local(&dir);
    let k = key(3, 1);
    for store in [&s3.store, &local] {
        let good = stream::iter(
            pattern(2 * PART + MIB)
                .chunks(MIB)
                .map(Bytes::copy_from_slice)
                .collect::<Vec<_>>(),
        )
        .map(Ok::<_, io::Error>);
        let broken = good.chain(stream::once(async {
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "client went away"))
        }));
        let result = store.put(&k, Box::pin(broken), u64::MAX).await;
        assert!(matches!(result, Err(Error::UploadAborted { .. })), "{result:?}");
        assert_eq!(store.head(&k).await.unwrap(), None);
        assert!(listed(store).await.is_empty());
    }
    assert_eq!(s3.server.incomplete_uploads().unwrap(), Vec::<String>::new());
    assert_eq!(files_under(dir.path()), Vec::<String>::new(), "no staging file left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_mid_upload_fails_cleanly_and_shows_nothing() {
    let S3 { store, server, dir } = s3().await;
    let server = Arc::new(server);
    let k = key(4, 1);
    let stopper = server.clone();
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = pulled.clone();
    // 1 MiB chunks; the server goes down once part 3 is being read.
    let data = stream::iter(0..40).map(move |_| {
        if counter.fetch_add(MIB as u64, Ordering::Relaxed) == (2 * PART) as u64 {
            stopper.stop();
        }
        Ok::<_, io::Error>(pattern(MIB))
    });
    let result = tokio::time::timeout(Duration::from_secs(60), store.put(&k, Box::pin(data), u64::MAX))
        .await
        .expect("the upload gives up instead of hanging");
    assert!(matches!(result, Err(Error::Backend { .. })), "{result:?}");
    assert!(
        pulled.load(Ordering::Relaxed) < 40 * MIB as u64,
        "stopped reading after the failure"
    );

    // The same bucket through a new server: no object, under the key or anywhere.
    drop(server);
    let again = TestS3Server::start(dir.path()).await.unwrap();
    let store = ObjectBlobStore::s3(&again.config()).unwrap().build().unwrap();
    assert_eq!(store.head(&k).await.unwrap(), None);
    assert!(listed(&store).await.is_empty());
    assert_eq!(files_under(&dir.path().join(test_server::BUCKET)), Vec::<String>::new());
    // The abort could not reach the stopped server: the begun upload is left to the bucket's
    // lifecycle rule, invisible.
    assert!(!again.incomplete_uploads().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_upload_is_aborted_in_the_background() {
    let s3 = s3().await;
    let k = key(5, 1);
    // Three parts' worth, then a client that never sends another byte.
    let stalls = stream::iter((0..3).map(|_| Ok::<_, io::Error>(pattern(PART)))).chain(stream::pending());
    let put = s3.store.put(&k, Box::pin(stalls), u64::MAX);
    assert!(
        tokio::time::timeout(Duration::from_secs(3), put).await.is_err(),
        "the upload stalls"
    );
    for _ in 0..100 {
        if s3.server.incomplete_uploads().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s3.server.incomplete_uploads().unwrap(), Vec::<String>::new());
    assert_eq!(s3.store.head(&k).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_upload_to_local_files_leaves_no_staging_file() {
    let dir = tempfile::tempdir().unwrap();
    let local = local(&dir);
    let k = key(5, 2);
    let stalls = stream::iter((0..3).map(|_| Ok::<_, io::Error>(pattern(PART)))).chain(stream::pending());
    let put = local.put(&k, Box::pin(stalls), u64::MAX);
    assert!(
        tokio::time::timeout(Duration::from_secs(3), put).await.is_err(),
        "the upload stalls"
    );
    for _ in 0..100 {
        if files_under(dir.path()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files_under(dir.path()), Vec::<String>::new(), "no staging file left");
    assert_eq!(local.head(&k).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_to_local_files_is_not_listed_until_it_completes() {
    let dir = tempfile::tempdir().unwrap();
    let local = local(&dir);
    let k = key(5, 3);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<io::Result<Bytes>>();
    let body = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let put = tokio::spawn({
        let local = local.clone();
        let k = k.clone();
        async move { local.put(&k, Box::pin(body), u64::MAX).await }
    });
    // Two whole parts and some of a third: the upload is under way, in its staging file.
    for _ in 0..2 {
        tx.send(Ok(pattern(PART))).unwrap();
    }
    tx.send(Ok(pattern(MIB))).unwrap();
    for _ in 0..100 {
        if !files_under(dir.path()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let staged = files_under(dir.path());
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert!(staged[0].ends_with("#1"), "{staged:?}");
    assert!(listed(&local).await.is_empty(), "a staging file is not listed");
    assert_eq!(local.head(&k).await.unwrap(), None);
    drop(tx);
    let info = put.await.unwrap().unwrap();
    assert_eq!(info.size, (2 * PART + MIB) as u64);
    assert_eq!(listed(&local).await.len(), 1);
    assert_eq!(files_under(dir.path()).len(), 1);
    assert!(!files_under(dir.path())[0].contains('#'));
}

#[tokio::test]
async fn wrong_credentials_are_their_own_kind() {
    let s3 = s3().await;
    let wrong = ObjectBlobStore::s3(
        &S3Config::new(test_server::BUCKET)
            .endpoint(s3.server.endpoint())
            .allow_http(true)
            .credentials(test_server::ACCESS_KEY_ID, "not-the-secret")
            .retries(0, Duration::from_secs(1)),
    )
    .unwrap()
    .build()
    .unwrap();
    let k = key(6, 1);
    let put = wrong.put(&k, chunked(pattern(10), 10, Arc::default()), 100).await;
    assert!(matches!(put, Err(Error::BackendCredentials { .. })), "{put:?}");
    let head = wrong.head(&k).await;
    assert!(matches!(head, Err(Error::BackendCredentials { .. })), "{head:?}");
    let get = wrong.get(&k, None).await;
    assert!(matches!(get, Err(Error::BackendCredentials { .. })), "{get:?}");
    // The source chain reaches object_store's own error.
    let Err(error) = put else { unreachable!() };
    let mut source = std::error::Error::source(&error);
    let mut found = false;
    while let Some(s) = source {
        found |= s.downcast_ref::<collab_store_s3::object_store::Error>().is_some();
        source = s.source();
    }
    assert!(found, "object_store's error is kept as a source");
}

#[tokio::test]
async fn secrets_stay_out_of_debug() {
    let config = S3Config::new("docs")
        .credentials("AKID", "the-secret-key")
        .session_token("the-token");
    let store = ObjectBlobStore::s3(&config).unwrap().build().unwrap();
    for printed in [format!("{config:?}"), format!("{store:?}")] {
        assert!(
            !printed.contains("the-secret-key") && !printed.contains("the-token"),
            "{printed}"
        );
    }
}

#[tokio::test]
async fn presigned_urls_work_where_the_store_can_sign() {
    let s3 = s3().await;
    let k = key(7, 1);
    let data = pattern(1_000);
    s3.store
        .put(&k, chunked(data.clone(), 100, Arc::default()), 10_000)
        .await
        .unwrap();
    let url = s3
        .store
        .presigned_get(&k, Duration::from_secs(60), "image/png", "inline; filename=\"a.png\"")
        .await
        .expect("S3 signs");
    // A plain HTTP GET of the URL, with no credentials of its own.
    let mut socket = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap()))
        .await
        .unwrap();
    let request = format!(
        "GET {}?{} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
        url.path(),
        url.query().unwrap(),
        url.host_str().unwrap(),
        url.port().unwrap()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: image/png"), "{head}");
    assert_eq!(&response[split + 4..], &data[..]);

    let bad = s3
        .store
        .presigned_get(&k, Duration::from_secs(8 * 24 * 3600), "a/b", "attachment")
        .await;
    assert!(
        matches!(
            bad,
            Err(Error::Invalid {
                field: "expires_in",
                ..
            })
        ),
        "{bad:?}"
    );
    let memory = ObjectBlobStore::memory().build().unwrap();
    let unsupported = memory
        .presigned_get(&k, Duration::from_secs(60), "a/b", "attachment")
        .await;
    assert!(matches!(unsupported, Err(Error::Unsupported { .. })), "{unsupported:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_room_removes_its_documents_only() {
    let s3 = s3().await;
    let dir = tempfile::tempdir().unwrap();
    let local = local(&dir);
    for store in [&s3.store, &local] {
        for document in 1..=3 {
            store
                .put(&key(8, document), chunked(pattern(10), 10, Arc::default()), 100)
                .await
                .unwrap();
        }
        store
            .put(&key(9, 1), chunked(pattern(10), 10, Arc::default()), 100)
            .await
            .unwrap();
        let tenant = TenantId::new("acme").unwrap();
        assert_eq!(store.delete_room(&tenant, RoomId::from_u128(8)).await.unwrap(), 3);
        assert_eq!(store.delete_room(&tenant, RoomId::from_u128(8)).await.unwrap(), 0);
        assert_eq!(store.head(&key(8, 1)).await.unwrap(), None);
        assert!(store.head(&key(9, 1)).await.unwrap().is_some());
        let other = TenantId::new("other").unwrap();
        assert_eq!(store.delete_room(&other, RoomId::from_u128(9)).await.unwrap(), 0);
        assert!(store.head(&key(9, 1)).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn keys_sit_under_the_prefix() {
    let store = ObjectBlobStore::memory().prefix("/collab/docs/").build().unwrap();
    let k = key(10, 11);
    store.put(&k, chunked(pattern(5), 5, Arc::default()), 10).await.unwrap();
    assert_eq!(listed(&store).await, vec![format!("collab/docs/{k}")]);
    assert!(k.as_str().starts_with("acme/"));
}

#[test]
fn bad_settings_name_their_field() {
    let field = |result: Result<ObjectBlobStore, Error>| match result {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(ObjectBlobStore::memory().part_size(MIB).build()), "part_size");
    assert_eq!(
        field(ObjectBlobStore::memory().parts_in_flight(0).build()),
        "parts_in_flight"
    );
    assert_eq!(field(ObjectBlobStore::memory().prefix("a/../b").build()), "prefix");
    assert_eq!(field(ObjectBlobStore::memory().prefix("a b").build()), "prefix");
    for url in ["ftp://x/y", "not a url", "s3:///no-bucket"] {
        let result = ObjectBlobStore::from_url(url).map(|_| ());
        assert!(
            matches!(result, Err(Error::Invalid { field: "url", .. })),
            "{url}: {result:?}"
        );
    }
}

#[test]
fn urls_name_stores() {
    assert!(ObjectBlobStore::from_url("memory://").unwrap().build().is_ok());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("docs").display());
    assert!(ObjectBlobStore::from_url(&url).unwrap().build().is_ok());
    assert!(dir.path().join("docs").is_dir());
    let s3 = ObjectBlobStore::from_url("s3://documents/collab/v1")
        .unwrap()
        .build()
        .unwrap();
    assert!(format!("{s3:?}").contains("collab/v1"));
}

/// A store under the prefix `documents`, on local files and on the S3 server.
async fn prefixed_stores(dir: &tempfile::TempDir) -> (ObjectBlobStore, ObjectBlobStore, TestS3Server) {
    let local = ObjectBlobStore::local(dir.path().join("local"), Durability::Synced)
        .unwrap()
        .prefix("documents")
        .build()
        .unwrap();
    let server = TestS3Server::start(dir.path().join("s3")).await.unwrap();
    let s3 = ObjectBlobStore::s3(&server.config())
        .unwrap()
        .prefix("documents")
        .build()
        .unwrap();
    (local, s3, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_left_without_its_event_is_swept_from_local_files_and_s3() {
    use collab_core::rooms::{Rooms, Upload};
    use collab_core::testing::faults::{Fault, Faults, FaultyBlobStore, FaultyRoomStore, Method};
    use collab_core::time::ManualClock;
    use collab_core::{Actor, AgentId, EventData, Timestamp};

    let dir = tempfile::tempdir().unwrap();
    let (local, s3, _server) = prefixed_stores(&dir).await;
    for store in [local, s3] {
        let faults = Faults::new();
        let clock = Arc::new(ManualClock::new(Timestamp::from(std::time::SystemTime::now())));
        let rooms = Rooms::builder()
            .room_store(FaultyRoomStore::new(
                collab_core::memory::MemoryRoomStore::new(),
                faults.clone(),
            ))
            .blob_store(FaultyBlobStore::new(store.clone(), faults.clone()))
            .clock(clock.clone())
            .build();
        let agent = Actor::Agent {
            tenant: TenantId::new("acme").unwrap(),
            agent: AgentId::new("ada").unwrap(),
        };
        let room = rooms.create_room(&agent).await.unwrap().room;
        let text = |t: &'static str| Upload {
            file_name: "notes.txt".into(),
            data: Box::pin(stream::iter([Ok(Bytes::from_static(t.as_bytes()))])),
        };
        let kept = rooms
            .share_document(&agent, room, text("kept, with its event"))
            .await
            .unwrap();
        let EventData::DocumentShared(kept) = kept.data else {
            panic!("{kept:?}")
        };
        faults.plan_next(Method::Append, Fault::Fail);
        faults.plan_next(Method::Delete, Fault::Fail);
        assert!(rooms.share_document(&agent, room, text("orphaned")).await.is_err());
        // Objects that are not this service's documents: another name, outside the prefix.
        let raw = store.object_store();
        raw.put(&"documents/acme/notes.txt".into(), "x".into()).await.unwrap();
        raw.put(&"elsewhere/acme/a/b".into(), "x".into()).await.unwrap();
        let before = listed(&store).await;
        assert_eq!(before.len(), 4, "{before:?}");

        assert_eq!(rooms.sweep_orphan_documents().await.unwrap().orphans, 0, "too young");
        clock.advance(Duration::from_secs(2 * 3600));
        let sweep = rooms.sweep_orphan_documents().await.unwrap();
        assert_eq!((sweep.examined, sweep.orphans, sweep.deleted), (3, 1, 1), "{store:?}");
        let mut after = listed(&store).await;
        after.sort();
        let mut expected = vec![
            store.location(&kept.blob).to_string(),
            "documents/acme/notes.txt".to_owned(),
            "elsewhere/acme/a/b".to_owned(),
        ];
        expected.sort();
        assert_eq!(after, expected, "{store:?}");
    }
}
