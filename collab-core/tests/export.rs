//! A room's export (issue 16): the archive another reader opens holds every event, a readable
//! transcript and the documents; only the tenant's agents get it; and it is made as it is read.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use collab_core::blob::{
    BlobInfo, BlobKey, BlobListing, BlobMeta, BlobPrefix, BlobStore, ByteRange, Download, UploadStream,
};
use collab_core::memory::MemoryBlobStore;
use collab_core::rooms::{TimelineQuery, Upload};
use collab_core::testing::files::{png, read_zip_with_python};
use collab_core::*;
use common::*;
use futures_util::StreamExt;

fn upload(name: &str, bytes: Vec<u8>) -> Upload {
    Upload {
        file_name: name.to_owned(),
        data: Box::pin(futures_util::stream::iter([Ok(Bytes::from(bytes))])),
    }
}

async fn read_all(export: rooms::RoomExport) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut stream = export.stream;
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    bytes
}

#[tokio::test]
async fn an_export_holds_every_event_a_readable_transcript_and_the_documents() {
    let world = World::with(|builder| builder.blob_store(MemoryBlobStore::new()));
    let rooms = &world.rooms;
    let (room, customer, _) = world.room_with_customer().await;
    rooms
        .post_message(&customer, room, "<script>alert('hi')</script> & more", None)
        .await
        .unwrap();
    rooms.post_message(&agent(), room, "Thanks Grace", None).await.unwrap();
    let picture = png(40, 30);
    rooms
        .share_document(&customer, room, upload("holiday.png", picture.clone()))
        .await
        .unwrap();
    let notes = b"line one\nline two\n".to_vec();
    rooms
        .share_document(&agent(), room, upload("../notes/for Grace.txt", notes.clone()))
        .await
        .unwrap();

    let export = rooms.export_room(&agent(), room).await.unwrap();
    assert_eq!(export.file_name, format!("room-{room}.zip"));
    let entries = read_zip_with_python(&read_all(export).await);
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    let timeline = rooms
        .timeline(
            &agent(),
            room,
            TimelineQuery::After {
                seq: Seq::ZERO,
                limit: 1000,
            },
        )
        .await
        .unwrap();
    let shared: Vec<Seq> = timeline
        .iter()
        .filter(|e| matches!(e.data, EventData::DocumentShared(_)))
        .map(|e| e.seq)
        .collect();
    let expected_names = [
        "events.jsonl".to_owned(),
        "transcript.html".to_owned(),
        format!("documents/{}-holiday.png", shared[0]),
        // The upload kept the file name only.
        format!("documents/{}-for Grace.txt", shared[1]),
    ];
    assert_eq!(names, expected_names.iter().map(String::as_str).collect::<Vec<_>>());

    let lines: Vec<Event> = String::from_utf8(entries[0].1.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, timeline, "every event, as stored, in order");

    let transcript = String::from_utf8(entries[1].1.clone()).unwrap();
    assert!(
        transcript.contains("&lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt; &amp; more"),
        "{transcript}"
    );
    assert!(
        !transcript.contains("<script>"),
        "nothing of the room's text runs: {transcript}"
    );
    assert!(transcript.contains("Thanks Grace"));
    assert!(transcript.contains(&format!("href=\"documents/{}-holiday.png\"", shared[0])));
    assert_eq!(entries[2].1, picture);
    assert_eq!(entries[3].1, notes);
}

#[tokio::test]
async fn only_the_tenant_s_agents_export_a_room() {
    let world = World::with(|builder| builder.blob_store(MemoryBlobStore::new()));
    let (room, customer, _) = world.room_with_customer().await;
    assert!(matches!(
        world.rooms.export_room(&customer, room).await,
        Err(Error::Forbidden)
    ));
    let stranger = Actor::Agent {
        tenant: TenantId::new("globex").unwrap(),
        agent: AgentId::new("eve").unwrap(),
    };
    assert!(matches!(
        world.rooms.export_room(&stranger, room).await,
        Err(Error::NotFound { .. })
    ));
}

/// The memory blob store, whose downloads come in 64 KiB pieces, counted as they are taken.
#[derive(Debug, Default)]
struct CountingBlobs {
    inner: MemoryBlobStore,
    pieces_taken: Arc<AtomicUsize>,
}

const PIECE: usize = 64 * 1024;

#[async_trait]
impl BlobStore for CountingBlobs {
    async fn put(&self, key: &BlobKey, data: UploadStream, limit: u64) -> Result<BlobInfo, Error> {
        self.inner.put(key, data, limit).await
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<Option<Download>, Error> {
        let Some(download) = self.inner.get(key, range).await? else {
            return Ok(None);
        };
        let taken = self.pieces_taken.clone();
        let pieces = download.stream.flat_map(move |chunk| {
            let pieces: Vec<Result<Bytes, Error>> = match chunk {
                Ok(bytes) => (0..bytes.len())
                    .step_by(PIECE)
                    .map(|at| Ok(bytes.slice(at..(at + PIECE).min(bytes.len()))))
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            futures_util::stream::iter(pieces)
        });
        let counted = pieces.inspect(move |_| {
            taken.fetch_add(1, Ordering::SeqCst);
        });
        Ok(Some(Download {
            stream: Box::pin(counted),
            ..download
        }))
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, Error> {
        self.inner.head(key).await
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), Error> {
        self.inner.delete(key).await
    }

    fn list(&self, prefix: &BlobPrefix) -> BlobListing {
        self.inner.list(prefix)
    }
}

#[tokio::test]
async fn an_export_is_made_as_it_is_read_a_few_chunks_ahead() {
    let blobs = Arc::new(CountingBlobs::default());
    let taken = blobs.pieces_taken.clone();
    let world = World::with(|builder| {
        builder
            .blob_store(blobs.clone())
            .config(RoomsConfig::default().with_max_document_bytes(32 << 20).unwrap())
    });
    let (room, customer, _) = world.room_with_customer().await;
    let document = b"a line of a long text document\n".repeat(550_000);
    let (size, pieces) = (document.len(), document.len().div_ceil(PIECE));
    world
        .rooms
        .share_document(&customer, room, upload("long.txt", document.clone()))
        .await
        .unwrap();

    let mut stream = world.rooms.export_room(&agent(), room).await.unwrap().stream;
    let mut read = 0;
    // Into the document, then a pause: the export must wait for its reader.
    while taken.load(Ordering::SeqCst) < 2 {
        read += stream.next().await.unwrap().unwrap().len();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ahead = taken.load(Ordering::SeqCst);
    assert!(
        ahead <= 8,
        "{ahead} of {} pieces taken while the reader paused",
        size / PIECE
    );
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= PIECE, "a chunk of {} bytes", chunk.len());
        read += chunk.len();
    }
    assert!(read > size, "the whole archive came: {read} bytes");
    assert_eq!(taken.load(Ordering::SeqCst), pieces);
}

#[tokio::test]
async fn a_document_is_downloaded_and_exported_under_its_type_s_extension() {
    let world = World::with(|builder| builder.blob_store(MemoryBlobStore::new()));
    let rooms = &world.rooms;
    let (room, customer, _) = world.room_with_customer().await;
    let words = b"just words, <b>no</b> markup to run".to_vec();
    let shared = rooms
        .share_document(&customer, room, upload("invoice.html", words.clone()))
        .await
        .unwrap();
    let EventData::DocumentShared(meta) = &shared.data else {
        panic!("{shared:?}")
    };
    assert_eq!(meta.media_type, "text/plain");
    assert_eq!(meta.name, "invoice.html.txt", "named as what it is when shared");

    // A document shared before names were given their type's extension: the stored event says
    // `old.hta`. It still replays as stored, and is served and exported as text.
    let state = rooms.room(&agent(), room).await.unwrap();
    let old = DocumentMeta {
        id: DocumentId::from_u128(0x01d),
        name: "old.hta".to_owned(),
        ..meta.clone()
    };
    let event = Event {
        room,
        seq: state.seq().next(),
        at: shared.at,
        actor: shared.actor.clone(),
        data: EventData::DocumentShared(old.clone()),
    };
    world
        .store
        .append(store::Append::new(Some(&state), vec![event.clone()]).unwrap())
        .await
        .unwrap();
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.document(old.id).map(|d| d.name.as_str()), Some("old.hta"));

    for (id, name) in [(meta.id, "invoice.html.txt"), (old.id, "old.hta.txt")] {
        let download = rooms.open_document(&customer, room, id, None).await.unwrap();
        assert_eq!(
            download.content_disposition,
            format!("inline; filename=\"{name}\"; filename*=UTF-8''{name}")
        );
    }
    let entries = read_zip_with_python(&read_all(rooms.export_room(&agent(), room).await.unwrap()).await);
    let documents: Vec<&str> = entries
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| name.starts_with("documents/"))
        .collect();
    assert_eq!(
        documents,
        [
            format!("documents/{}-invoice.html.txt", shared.seq),
            format!("documents/{}-old.hta.txt", event.seq),
        ]
    );
    let transcript = String::from_utf8(entries[1].1.clone()).unwrap();
    assert!(
        transcript.contains(&format!("href=\"documents/{}-old.hta.txt\"", event.seq)),
        "{transcript}"
    );
}
