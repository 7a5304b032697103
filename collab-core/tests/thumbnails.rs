//! Thumbnails of shared images: made once, stored beside the document, refused for bombs and
//! broken images, readable only by the room's readers.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::{self, Cursor};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use collab_core::blob::{BlobInfo, BlobKey, BlobListing, BlobMeta, BlobPrefix, ByteRange, Download, UploadStream};
use collab_core::memory::MemoryBlobStore;
use collab_core::rooms::{Rooms, RoomsConfig, Upload};
use collab_core::testing::files::*;
use collab_core::time::ManualClock;
use collab_core::*;
use common::*;
use futures_util::stream;
use image::{DynamicImage, ImageFormat, RgbImage};

/// A memory blob store that counts puts and whole reads per key.
#[derive(Debug)]
struct Counted {
    inner: MemoryBlobStore,
    puts: Mutex<Vec<BlobKey>>,
    gets: Mutex<Vec<BlobKey>>,
}

impl Counted {
    fn puts_of(&self, key: &BlobKey) -> usize {
        self.puts.lock().unwrap().iter().filter(|k| *k == key).count()
    }
    fn gets_of(&self, key: &BlobKey) -> usize {
        self.gets.lock().unwrap().iter().filter(|k| *k == key).count()
    }
}

#[async_trait]
impl BlobStore for Counted {
    async fn put(&self, key: &BlobKey, data: UploadStream, limit: u64) -> Result<BlobInfo, Error> {
        self.puts.lock().unwrap().push(key.clone());
        self.inner.put(key, data, limit).await
    }
    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<Option<Download>, Error> {
        self.gets.lock().unwrap().push(key.clone());
        self.inner.get(key, range).await
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

struct Setup {
    world: World,
    blobs: Arc<Counted>,
}

fn setup() -> Setup {
    let clock = Arc::new(ManualClock::new(T0));
    let blobs = Arc::new(Counted {
        inner: MemoryBlobStore::with_clock(clock.clone()),
        puts: Mutex::default(),
        gets: Mutex::default(),
    });
    // The rooms keep the world's clock: the sweep's cutoff moves with it, the blobs' dates not.
    let world = World::with(|b| b.blob_store(blobs.clone()).config(RoomsConfig::default()));
    Setup { world, blobs }
}

async fn share(rooms: &Rooms, actor: &Actor, room: RoomId, name: &str, bytes: Vec<u8>) -> DocumentMeta {
    let chunks: Vec<io::Result<Bytes>> = bytes.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let upload = Upload {
        file_name: name.to_owned(),
        data: Box::pin(stream::iter(chunks)),
    };
    let event = rooms.share_document(actor, room, upload).await.expect("shared");
    match event.data {
        EventData::DocumentShared(meta) => meta,
        other => panic!("not a document: {other:?}"),
    }
}

/// A photo-like image: gradients and noise, so that it does not compress to nothing.
fn photo(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let image = RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = (seed % 48) as u32;
        image::Rgb([
            ((x * 255 / width + noise) % 256) as u8,
            ((y * 255 / height + noise) % 256) as u8,
            (((x + y) / 4 + noise) % 256) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image).write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A real decompression bomb: an RGB PNG of `width` × `height` black pixels whose pixel data
/// inflates to `height × (1 + 3 × width)` bytes.
fn bomb_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = png(width, height)[..33].to_vec();
    let raw = height as usize * (1 + 3 * width as usize);
    let mut zlib = vec![0x78, 0x01];
    zlib.extend_from_slice(&deflated_zeros(raw));
    // Adler-32 of zeros: a stays 1, b adds 1 per byte.
    let b = u32::try_from(raw % 65_521).unwrap();
    zlib.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    png_chunk(&mut out, b"IDAT", &zlib);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

fn thumbnail_key(meta: &DocumentMeta) -> BlobKey {
    BlobKey::parse(&format!("{}.thumb320.jpg", meta.blob)).unwrap()
}

fn not_found(result: &Result<rooms::Thumbnail, Error>, entity: Entity) -> bool {
    matches!(result, Err(Error::NotFound { what }) if *what == entity)
}

/// The resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_thumbnail_is_made_once_and_then_read_from_the_store() {
    let Setup { world, blobs } = setup();
    let (room, customer, _) = world.room_with_customer().await;
    let meta = share(
        &world.rooms,
        &customer,
        room,
        "photo.png",
        photo(1_200, 900, ImageFormat::Png),
    )
    .await;
    let key = thumbnail_key(&meta);

    let first = world.rooms.open_thumbnail(&agent(), room, meta.id).await.unwrap();
    let image = image::load_from_memory_with_format(&first.bytes, ImageFormat::Jpeg).unwrap();
    assert_eq!((image.width(), image.height()), (320, 240));
    assert_eq!(first.document, meta.id);
    assert_eq!((blobs.puts_of(&key), blobs.gets_of(&meta.blob)), (1, 1));

    // The customer too; from the store, without reading the original again.
    let second = world.rooms.open_thumbnail(&customer, room, meta.id).await.unwrap();
    assert_eq!(second.bytes, first.bytes);
    assert_eq!((blobs.puts_of(&key), blobs.gets_of(&meta.blob)), (1, 1));
    assert!(second.headers().contains(&("Content-Type", "image/jpeg".to_owned())));
    assert!(
        second
            .headers()
            .contains(&("Cache-Control", "private, max-age=31536000, immutable".to_owned()))
    );

    // Long after, the orphan sweep leaves the thumbnail alone: it names no document.
    world.clock.advance(Duration::from_secs(24 * 3600));
    let sweep = world.rooms.sweep_orphan_documents().await.unwrap();
    assert_eq!((sweep.examined, sweep.orphans), (2, 0));
    assert!(blobs.inner.head(&key).await.unwrap().is_some());
    let third = world.rooms.open_thumbnail(&customer, room, meta.id).await.unwrap();
    assert_eq!((third.bytes, blobs.puts_of(&key)), (first.bytes, 1));
}

#[tokio::test]
async fn every_inline_image_type_gets_one() {
    let Setup { world, .. } = setup();
    let (room, customer, _) = world.room_with_customer().await;
    for (format, name) in [
        (ImageFormat::Png, "a.png"),
        (ImageFormat::Jpeg, "a.jpg"),
        (ImageFormat::Gif, "a.gif"),
        (ImageFormat::WebP, "a.webp"),
    ] {
        let meta = share(&world.rooms, &customer, room, name, photo(600, 800, format)).await;
        let thumb = world.rooms.open_thumbnail(&customer, room, meta.id).await.unwrap();
        let image = image::load_from_memory_with_format(&thumb.bytes, ImageFormat::Jpeg).unwrap();
        assert_eq!((image.width(), image.height()), (240, 320), "{name}");
    }
}

#[tokio::test]
async fn a_decompression_bomb_is_never_decoded() {
    let Setup { world, blobs } = setup();
    let (room, customer, _) = world.room_with_customer().await;
    // 7,000 × 7,000 = 49 megapixels: under the upload limit, over the thumbnail's. Decoding it
    // would take 147 MB.
    let bomb = bomb_png(7_000, 7_000);
    let decoded = 7_000 * (1 + 3 * 7_000);
    assert!(bomb.len() < 2 * 1024 * 1024, "{} bytes", bomb.len());
    let meta = share(&world.rooms, &customer, room, "bomb.png", bomb).await;
    let reads_after_upload = blobs.gets_of(&meta.blob);

    let baseline = rss_kib();
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let (peak, done) = (peak.clone(), done.clone());
        move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let refused = world.rooms.open_thumbnail(&customer, room, meta.id).await;
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    assert!(not_found(&refused, Entity::Thumbnail), "{refused:?}");
    assert_eq!(
        blobs.gets_of(&meta.blob),
        reads_after_upload,
        "its bytes were not even read"
    );
    let growth_kib = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(
        growth_kib * 1024 < decoded / 4,
        "RSS grew by {growth_kib} KiB: the image was decoded"
    );
    // The original stays downloadable as stored.
    assert!(world.rooms.open_document(&customer, room, meta.id, None).await.is_ok());
}

#[tokio::test]
async fn an_image_that_does_not_decode_gets_none_and_is_tried_once() {
    let Setup { world, blobs } = setup();
    let (room, customer, _) = world.room_with_customer().await;
    // A real header (2,000 × 1,500) whose pixel data is cut off: accepted at upload, where only
    // the header is read; the decode fails.
    let whole = photo(2_000, 1_500, ImageFormat::Png);
    let cut = whole[..whole.len() / 3].to_vec();
    let meta = share(&world.rooms, &customer, room, "cut.png", cut).await;
    let reads_after_upload = blobs.gets_of(&meta.blob);

    let first = world.rooms.open_thumbnail(&customer, room, meta.id).await;
    assert!(not_found(&first, Entity::Thumbnail), "{first:?}");
    assert_eq!(blobs.gets_of(&meta.blob), reads_after_upload + 1);
    // The failure is kept: the next request does not decode again.
    let again = world.rooms.open_thumbnail(&agent(), room, meta.id).await;
    assert!(not_found(&again, Entity::Thumbnail), "{again:?}");
    assert_eq!(blobs.gets_of(&meta.blob), reads_after_upload + 1);
    assert_eq!(blobs.puts_of(&thumbnail_key(&meta)), 1);
}

#[tokio::test]
async fn only_images_have_thumbnails() {
    let Setup { world, .. } = setup();
    let (room, customer, _) = world.room_with_customer().await;
    for (name, bytes) in [("a.pdf", pdf_with_pages(2)), ("a.txt", b"hello".to_vec())] {
        let meta = share(&world.rooms, &customer, room, name, bytes).await;
        let refused = world.rooms.open_thumbnail(&customer, room, meta.id).await;
        assert!(not_found(&refused, Entity::Thumbnail), "{name}: {refused:?}");
    }
    let missing = world
        .rooms
        .open_thumbnail(&customer, room, DocumentId::from_u128(9))
        .await;
    assert!(not_found(&missing, Entity::Document), "{missing:?}");
}

#[tokio::test]
async fn a_customer_of_another_room_cannot_get_it() {
    let Setup { world, blobs } = setup();
    let (room, customer, _) = world.room_with_customer().await;
    let (other_room, other_customer, _) = world.room_with_customer().await;
    let meta = share(
        &world.rooms,
        &customer,
        room,
        "photo.jpg",
        photo(800, 600, ImageFormat::Jpeg),
    )
    .await;
    let reads_after_upload = blobs.gets_of(&meta.blob);

    // Refused as the document itself is, whichever room the outsider names.
    let refused = world.rooms.open_thumbnail(&other_customer, room, meta.id).await;
    let document = world.rooms.open_document(&other_customer, room, meta.id, None).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(refused.unwrap_err().kind(), document.unwrap_err().kind());
    let through_own_room = world.rooms.open_thumbnail(&other_customer, other_room, meta.id).await;
    assert!(not_found(&through_own_room, Entity::Document), "{through_own_room:?}");
    assert!(matches!(
        world.rooms.open_thumbnail(&Actor::System, room, meta.id).await,
        Err(Error::Forbidden)
    ));
    assert_eq!(
        blobs.gets_of(&meta.blob),
        reads_after_upload,
        "nothing was read for them"
    );
    assert_eq!(blobs.puts_of(&thumbnail_key(&meta)), 0, "nothing was made for them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_requests_make_it_at_most_a_few_times() {
    let Setup { world, blobs } = setup();
    let (room, customer, _) = world.room_with_customer().await;
    let meta = share(
        &world.rooms,
        &customer,
        room,
        "photo.png",
        photo(1_600, 1_200, ImageFormat::Png),
    )
    .await;
    let made = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (rooms, customer, made) = (world.rooms.clone(), customer.clone(), made.clone());
        tasks.push(tokio::spawn(async move {
            let thumb = rooms.open_thumbnail(&customer, room, meta.id).await.unwrap();
            made.fetch_add(1, Ordering::Relaxed);
            thumb.bytes
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_eq!(made.load(Ordering::Relaxed), 8);
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "every answer is the same image"
    );
    // Decodes wait for one of the two inspection permits, and look again once they hold one.
    let puts = blobs.puts_of(&thumbnail_key(&meta));
    assert!((1..=2).contains(&puts), "made {puts} times");
}
