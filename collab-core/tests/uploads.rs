//! Sharing and opening documents through the service, with real small files.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use collab_core::blob::BlobKey;
use collab_core::blob::{BlobInfo, BlobMeta, ByteRange, Download, UploadStream};
use collab_core::document::Disposition;
use collab_core::memory::MemoryBlobStore;
use collab_core::rooms::{RoomsConfig, Upload};
use collab_core::testing::files::*;
use collab_core::*;
use common::*;
use futures_util::{StreamExt, stream};

/// A blob store that remembers which keys hold bytes, to prove nothing is left behind.
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

fn world() -> (World, Arc<Tracked>) {
    let blobs = Arc::new(Tracked::default());
    let config = RoomsConfig::default().with_max_document_bytes(100_000).unwrap();
    let world = World::with(|b| b.blob_store(blobs.clone()).config(config));
    (world, blobs)
}

fn upload(name: &str, bytes: Vec<u8>) -> Upload {
    // Small chunks, so that the head is gathered across several of them.
    let chunks: Vec<io::Result<Bytes>> = bytes.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Upload {
        file_name: name.to_owned(),
        data: Box::pin(stream::iter(chunks)),
    }
}

fn shared(event: &Event) -> &DocumentMeta {
    match &event.data {
        EventData::DocumentShared(meta) => meta,
        other => panic!("not a document: {other:?}"),
    }
}

/// Shares `bytes` as `name`: the document recorded.
async fn share(world: &World, actor: &Actor, room: RoomId, name: &str, bytes: Vec<u8>) -> DocumentMeta {
    let event = world
        .rooms
        .share_document(actor, room, upload(name, bytes))
        .await
        .expect("share");
    shared(&event).clone()
}

async fn read(download: rooms::DocumentDownload) -> Bytes {
    let mut out = BytesMut::new();
    let mut stream = download.stream;
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out.freeze()
}

#[tokio::test]
async fn an_image_is_shared_with_its_dimensions_and_opens_inline() {
    let (world, blobs) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let bytes = png(640, 480);
    let meta = share(&world, &customer, room, "holiday.png", bytes.clone()).await;
    assert_eq!(meta.media_type, "image/png");
    assert_eq!(
        meta.kind,
        DocumentKind::Image {
            width: 640,
            height: 480
        }
    );
    assert_eq!(meta.size, bytes.len() as u64);
    assert_eq!(meta.sha256, blob::Sha256Digest::of(&bytes));
    assert!(
        !meta.blob.as_str().contains("holiday"),
        "the key is not derived from the name"
    );
    assert_eq!(blobs.live(), 1);

    let download = world
        .rooms
        .open_document(&agent(), room, meta.id, None)
        .await
        .expect("open");
    assert_eq!(download.disposition, Disposition::Inline);
    assert!(download.content_disposition.starts_with("inline;"));
    assert_eq!(read(download).await, Bytes::from(bytes));
}

#[tokio::test]
async fn a_pdf_carries_its_page_count_and_serves_ranges() {
    let (world, _) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let bytes = pdf_with_pages(3);
    let meta = share(&world, &agent(), room, "contract.pdf", bytes.clone()).await;
    assert_eq!(
        (meta.media_type.as_str(), meta.kind),
        ("application/pdf", DocumentKind::Pdf { pages: 3 })
    );
    let range = ByteRange::new(0..8).unwrap();
    let download = world
        .rooms
        .open_document(&customer, room, meta.id, Some(range))
        .await
        .expect("open");
    assert_eq!(download.range, 0..8);
    assert_eq!(read(download).await, Bytes::copy_from_slice(&bytes[..8]));
}

#[tokio::test]
async fn plain_text_opens_inline_as_text() {
    let (world, _) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let meta = share(&world, &customer, room, "notes\".txt", b"just some notes\n".to_vec()).await;
    assert_eq!(
        (meta.media_type.as_str(), meta.kind),
        ("text/plain", DocumentKind::Other)
    );
    let download = world
        .rooms
        .open_document(&agent(), room, meta.id, None)
        .await
        .expect("open");
    assert_eq!(download.disposition, Disposition::Inline);
    assert!(download.content_disposition.starts_with("inline;"));
    let headers = download.headers();
    assert!(headers.contains(&("X-Content-Type-Options", "nosniff".to_owned())));
    assert!(
        headers
            .iter()
            .any(|(name, value)| *name == "Content-Security-Policy" && value.ends_with("; sandbox"))
    );
    assert!(
        !download.content_disposition.contains("\"\""),
        "{}",
        download.content_disposition
    );
}

#[tokio::test]
async fn hostile_uploads_are_refused_and_leave_nothing() {
    let (world, blobs) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let mut deep = b"%PDF-1.4\n1 0 obj\n".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 50_000));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "photo.jpg",
            b"<html><script>alert(1)</script></html>".to_vec(),
            "UnsupportedMediaType",
        ),
        (
            "logo.png",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec(),
            "UnsupportedMediaType",
        ),
        (
            "invoice.pdf",
            [b"MZ\x90\x00".as_slice(), &[0u8; 200]].concat(),
            "UnsupportedMediaType",
        ),
        ("empty.txt", Vec::new(), "Invalid"),
        ("bomb.png", png(100_000, 100_000), "Invalid"),
        (
            "broken.pdf",
            b"%PDF-1.7\n garbage that is not a pdf".to_vec(),
            "Invalid",
        ),
        ("deep.pdf", deep, "Invalid"),
        ("big.txt", vec![b'a'; 100_001], "TooLarge"),
    ];
    for (name, bytes, want) in cases {
        let result = world.rooms.share_document(&customer, room, upload(name, bytes)).await;
        let got = result.as_ref().map_err(kind).err().unwrap_or_else(|| "ok".into());
        assert_eq!(got, want, "{name}: {result:?}");
    }
    assert_eq!(blobs.live(), 0, "no refused upload left bytes behind");
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert!(state.documents().is_empty());
    // Exactly the limit is fine.
    world
        .rooms
        .share_document(&customer, room, upload("max.txt", vec![b'a'; 100_000]))
        .await
        .expect("at the limit");
}

#[tokio::test]
async fn file_names_are_display_names_only() {
    let (world, _) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let long = format!("{}.txt", "n".repeat(5_000));
    for (raw, check) in [
        // Text gets its extension unless it has one of text's.
        ("../../etc/passwd", "passwd.txt"),
        ("..\\..\\boot.ini", "boot.ini.txt"),
        ("evil\u{202E}txt.exe", "eviltxt.exe.txt"),
        ("a\u{0}b\r\nc.txt", "abc.txt"),
        (long.as_str(), ".txt"),
    ] {
        let event = world
            .rooms
            .share_document(&customer, room, upload(raw, b"text".to_vec()))
            .await
            .expect("share");
        let meta = shared(&event);
        assert!(meta.name.ends_with(check), "{raw:?} became {:?}", meta.name);
        assert!(
            !meta.name.contains(['/', '\\', '\0', '\r', '\n', '\u{202E}']),
            "{:?}",
            meta.name
        );
        assert!(meta.name.chars().count() <= 255);
    }
}

#[tokio::test]
async fn refused_actors_store_nothing_at_all() {
    let (world, blobs) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let stranger = Actor::Agent {
        tenant: TenantId::new("globex").unwrap(),
        agent: AgentId::new("eve").unwrap(),
    };
    let result = world
        .rooms
        .share_document(&stranger, room, upload("x.txt", b"hi".to_vec()))
        .await;
    assert!(matches!(result, Err(Error::NotFound { .. })));
    world.clock.advance(91 * DAY);
    let result = world
        .rooms
        .share_document(&customer, room, upload("x.txt", b"hi".to_vec()))
        .await;
    assert!(matches!(result, Err(Error::RoomTimedOut)));
    assert_eq!(blobs.puts(), 0, "refused before any byte was stored");
}

#[tokio::test]
async fn an_upload_whose_room_closes_meanwhile_is_removed() {
    let (world, blobs) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let (send, receive) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    let data: UploadStream = Box::pin(stream::unfold(receive, |mut r| async move {
        r.recv().await.map(|c| (c, r))
    }));
    let sharing = tokio::spawn({
        let rooms = world.rooms.clone();
        async move {
            rooms
                .share_document(
                    &customer,
                    room,
                    Upload {
                        file_name: "late.txt".into(),
                        data,
                    },
                )
                .await
        }
    });
    send.send(Ok(Bytes::from_static(b"the first part, "))).await.unwrap();
    yield_until("the upload is under way", || blobs.puts() > 0).await;
    world.rooms.close_room(&agent(), room).await.expect("close");
    send.send(Ok(Bytes::from_static(b"and the rest"))).await.unwrap();
    drop(send);
    assert!(matches!(sharing.await.unwrap(), Err(Error::RoomClosed)));
    assert_eq!(blobs.puts(), 1);
    assert_eq!(blobs.live(), 0, "the bytes went with the refusal");
}

#[tokio::test]
async fn opening_checks_access_and_existence() {
    let (world, _) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let (other_room, other_customer, _) = world.room_with_customer().await;
    let event = world
        .rooms
        .share_document(&customer, room, upload("a.txt", b"hello".to_vec()))
        .await
        .unwrap();
    let id = shared(&event).id;
    assert!(matches!(
        world.rooms.open_document(&other_customer, room, id, None).await,
        Err(Error::NotFound { .. })
    ));
    let result = world.rooms.open_document(&other_customer, other_room, id, None).await;
    assert!(
        matches!(result, Err(Error::NotFound { what: Entity::Document })),
        "a document of another room"
    );
    let past_end = ByteRange::from_start(5);
    let result = world.rooms.open_document(&customer, room, id, Some(past_end)).await;
    assert!(matches!(result, Err(Error::RangeNotSatisfiable { size: 5 })));
}

#[tokio::test]
async fn an_office_document_longer_than_the_head_is_shared_as_an_attachment() {
    let (world, blobs) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let padding = vec![b' '; 80_000];
    let bytes = zip(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("_rels/.rels", b"<Relationships/>"),
        ("word/document.xml", &padding),
    ]);
    assert!(bytes.len() > document::HEAD_LEN);
    let meta = share(&world, &customer, room, "report.docx", bytes.clone()).await;
    assert_eq!(
        meta.media_type,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    );
    let download = world
        .rooms
        .open_document(&agent(), room, meta.id, None)
        .await
        .expect("open");
    assert_eq!(download.disposition, Disposition::Attachment);
    assert_eq!(read(download).await, Bytes::from(bytes));

    // The same size of plain archive is refused, and not kept.
    let plain = zip(&[("notes.txt", &padding)]);
    let refused = world
        .rooms
        .share_document(&customer, room, upload("notes.zip", plain))
        .await;
    assert!(
        matches!(&refused, Err(Error::UnsupportedMediaType { media_type }) if media_type == "application/zip"),
        "{refused:?}"
    );
    assert_eq!(blobs.live(), 1);
}
