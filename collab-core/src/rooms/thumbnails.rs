//! Thumbnails of shared images: made on first request, stored beside the document.
//!
//! Made lazily rather than at upload: an upload stays as fast as before, only images someone
//! looks at cost a decode, and images shared before thumbnails existed get one too.

use std::fmt;
use std::io::Cursor;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use super::{Operation, Rooms};
use crate::blob::BlobKey;
use crate::decide::Actor;
use crate::error::{Entity, Error};
use crate::event::{DocumentKind, DocumentMeta};
use crate::id::{DocumentId, RoomId};

/// The longest side of an image that gets a thumbnail (a panorama, within the pixel cap).
const MAX_SOURCE_SIDE: u32 = 30_000;

/// The most memory one decode may ask for (the decoded pixels: 24 megapixels of RGBA fit).
const MAX_DECODE_BYTES: u64 = 100 * 1024 * 1024;

/// JPEG quality: small files that still look right at 320 px.
const JPEG_QUALITY: u8 = 80;

/// The suffix of a thumbnail's blob key, after its document's key.
const KEY_SUFFIX: &str = ".thumb320.jpg";

/// A document's thumbnail: a JPEG of at most [`Thumbnail::SIDE`] pixels on its long side.
#[derive(Clone)]
pub struct Thumbnail {
    /// The document it shows.
    pub document: DocumentId,
    /// The JPEG's bytes.
    pub bytes: Bytes,
}

impl Thumbnail {
    /// The media type of [`Thumbnail::bytes`].
    pub const MEDIA_TYPE: &'static str = "image/jpeg";

    /// The longest side of a thumbnail, in pixels.
    pub const SIDE: u32 = 320;

    /// The most pixels an image may have to get a thumbnail (24 megapixels: a 6000 × 4000
    /// camera photo). Larger images, which the upload limit may still accept (a 7,000 × 7,000
    /// PNG of one colour is a 1 MB file that decodes to 147 MB), get none: decoding is what a
    /// decompression bomb attacks, so the cap is on what a decode costs, whatever the file's
    /// size.
    pub const MAX_SOURCE_PIXELS: u64 = 24_000_000;

    /// The response headers a web host should send with the bytes: the same safety headers as
    /// [`DocumentDownload::headers`](super::DocumentDownload::headers), and a cache lifetime of
    /// a year, since a document's thumbnail never changes (still `private`: it is only for
    /// readers of the room).
    pub fn headers(&self) -> [(&'static str, String); 6] {
        super::documents::serving_headers(
            Self::MEDIA_TYPE,
            "inline; filename=\"thumbnail.jpg\"",
            "private, max-age=31536000, immutable",
        )
    }
}

impl fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thumbnail")
            .field("document", &self.document)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Why no thumbnail could be made from an image. Kept (as an empty blob) so that the same
/// image is not decoded again on every request.
#[derive(Debug)]
enum Unthumbnailable {
    /// More pixels or memory than [`Thumbnail::MAX_SOURCE_PIXELS`] or [`MAX_DECODE_BYTES`]
    /// allow.
    TooLarge { width: u32, height: u32 },
    /// Not a type with a decoder here, or bytes the decoder refused.
    Undecodable(String),
}

impl fmt::Display for Unthumbnailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { width, height } => write!(f, "{width} × {height} pixels is too many to decode"),
            Self::Undecodable(why) => write!(f, "it does not decode: {why}"),
        }
    }
}

impl Rooms {
    /// A document's thumbnail: a JPEG of at most [`Thumbnail::SIDE`] pixels on its long side,
    /// for showing an image inline without its full bytes. Readable by whoever may open the
    /// document ([`Rooms::open_document`]'s checks).
    ///
    /// Made on the first request and stored through the blob store beside the document (under
    /// its key with a suffix, which the orphan sweep leaves alone); later requests read the
    /// stored one. Images of more than [`Thumbnail::MAX_SOURCE_PIXELS`] are never decoded; decodes run
    /// off the async threads, a few at a time (they share the permits of whole-upload
    /// inspections, [`RoomsConfig::with_whole_inspections`](super::RoomsConfig::with_whole_inspections)).
    ///
    /// # Errors
    ///
    /// - [`Error::NotFound`] of a [`Entity::Document`]: no such document in the room.
    /// - [`Error::NotFound`] of a [`Entity::Thumbnail`]: the document is not an image, or no
    ///   thumbnail can be made from it (too many pixels, bytes that do not decode). A client
    ///   shows a placeholder, not the original: the original may be the very image that could
    ///   not be decoded safely.
    /// - The errors of [`Rooms::open_document`] otherwise (the room, access, the blob store).
    pub async fn open_thumbnail(&self, actor: &Actor, room: RoomId, document: DocumentId) -> Result<Thumbnail, Error> {
        let state = self.readable(actor, room, Operation::Read).await?;
        let meta = state
            .document(document)
            .cloned()
            .ok_or(Error::NotFound { what: Entity::Document })?;
        let no_thumbnail = Error::NotFound {
            what: Entity::Thumbnail,
        };
        let DocumentKind::Image { width, height } = meta.kind else {
            return Err(no_thumbnail);
        };
        // The dimensions the upload read from the header: refused here before any byte is read.
        if u64::from(width) * u64::from(height) > Thumbnail::MAX_SOURCE_PIXELS {
            return Err(no_thumbnail);
        }
        let key = thumbnail_key(&meta.blob)?;
        if let Some(stored) = self.stored_thumbnail(&key, document).await? {
            return stored;
        }
        // Whole images are held in memory and decoded: a few at a time, like upload inspections.
        let permit = self
            .inner
            .inspection_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::internal("thumbnail", e))?;
        // Another request may have made it while this one waited.
        if let Some(stored) = self.stored_thumbnail(&key, document).await? {
            return stored;
        }
        let original = self.read_whole(&meta.blob).await?;
        let media_type = meta.media_type.clone();
        // The permit goes with the decode, so one whose caller went away still counts until it
        // ends, and comes back to be held until the thumbnail is stored: a request that waited
        // for it then finds the thumbnail instead of making it again.
        let decoded = tokio::task::spawn_blocking(move || (make_thumbnail(&original, &media_type), permit)).await;
        let (made, _permit) = match decoded {
            Ok((made, permit)) => (made, Some(permit)),
            Err(e) => (
                Err(Unthumbnailable::Undecodable(format!("the decoder failed: {e}"))),
                None,
            ),
        };
        let bytes = match made {
            Ok(jpeg) => Bytes::from(jpeg),
            Err(why) => {
                tracing::info!(%room, %document, reason = %why, "no thumbnail can be made of this image");
                Bytes::new()
            }
        };
        self.store_thumbnail(&key, bytes.clone(), &meta).await;
        if bytes.is_empty() {
            return Err(no_thumbnail);
        }
        Ok(Thumbnail { document, bytes })
    }

    /// The stored thumbnail under `key`: `None` when none was made yet, an error when it was
    /// found impossible (an empty blob).
    async fn stored_thumbnail(
        &self,
        key: &BlobKey,
        document: DocumentId,
    ) -> Result<Option<Result<Thumbnail, Error>>, Error> {
        if self.inner.blobs.head(key).await?.is_none() {
            return Ok(None);
        }
        let bytes = match self.read_whole(key).await {
            Ok(bytes) => bytes,
            // Deleted between the two calls: make it again.
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if bytes.is_empty() {
            return Ok(Some(Err(Error::NotFound {
                what: Entity::Thumbnail,
            })));
        }
        Ok(Some(Ok(Thumbnail { document, bytes })))
    }

    /// The whole blob under `key`, in memory.
    async fn read_whole(&self, key: &BlobKey) -> Result<Bytes, Error> {
        let mut download = self
            .inner
            .blobs
            .get(key, None)
            .await?
            .ok_or(Error::NotFound { what: Entity::Document })?;
        let mut bytes = BytesMut::with_capacity(usize::try_from(download.size).unwrap_or(0));
        while let Some(chunk) = download.stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(bytes.freeze())
    }

    /// Stores a thumbnail (or the empty marker). A failure is logged only: the thumbnail is
    /// served all the same and made again on the next request.
    async fn store_thumbnail(&self, key: &BlobKey, bytes: Bytes, meta: &DocumentMeta) {
        let limit = bytes.len() as u64;
        let data = Box::pin(futures_util::stream::iter([Ok(bytes)]));
        if let Err(e) = self.inner.blobs.put(key, data, limit).await {
            tracing::warn!(document = %meta.id, blob = %key, error = %e, "could not store a thumbnail");
        }
    }
}

/// The key of a document's thumbnail: the document's key with a suffix, so it sits beside the
/// document in the same room's prefix. [`BlobKey::document_ids`] does not read it as a
/// document, so the orphan sweep leaves it alone. (Not a key below the document's: a file
/// system store cannot hold a file and a folder of the same name.)
pub(super) fn thumbnail_key(document: &BlobKey) -> Result<BlobKey, Error> {
    BlobKey::parse(&format!("{document}{KEY_SUFFIX}"))
}

/// A JPEG thumbnail of the image in `bytes`, whose sniffed type is `media_type`, turned as its
/// EXIF orientation says; transparent pixels are shown on white.
fn make_thumbnail(bytes: &[u8], media_type: &str) -> Result<Vec<u8>, Unthumbnailable> {
    let undecodable = |e: image::ImageError| Unthumbnailable::Undecodable(e.to_string());
    let format = match media_type {
        "image/png" => ImageFormat::Png,
        "image/jpeg" => ImageFormat::Jpeg,
        "image/gif" => ImageFormat::Gif,
        "image/webp" => ImageFormat::WebP,
        other => return Err(Unthumbnailable::Undecodable(format!("no decoder for {other}"))),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits.clone());
    // Reads the header only; the dimensions are checked again before a pixel is decoded.
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > Thumbnail::MAX_SOURCE_PIXELS || decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(Unthumbnailable::TooLarge { width, height });
    }
    limits.reserve(decoder.total_bytes()).map_err(undecodable)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let full = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    // `thumbnail` would enlarge a small image: keep those as they are.
    let mut small = if width <= Thumbnail::SIDE && height <= Thumbnail::SIDE {
        full
    } else {
        full.thumbnail(Thumbnail::SIDE, Thumbnail::SIDE)
    };
    small.apply_orientation(orientation);
    let rgb = on_white(small);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
        .encode_image(&rgb)
        .map_err(undecodable)?;
    Ok(jpeg)
}

/// The image without alpha, its transparent pixels blended onto white (JPEG has no alpha, and
/// black, what dropping it leaves, hides dark drawings).
fn on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let blend = |c: u8| {
            let (c, a) = (u16::from(c), u16::from(a));
            // c·a + 255·(255 − a), over 255, rounded: at most 255.
            u8::try_from((c * a + 255 * (255 - a) + 127) / 255).unwrap_or(u8::MAX)
        };
        image::Rgb([blend(r), blend(g), blend(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encodes");
        out.into_inner()
    }

    fn decoded(jpeg: &[u8]) -> DynamicImage {
        image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).expect("a JPEG")
    }

    #[test]
    fn the_long_side_becomes_320_and_the_shape_stays() {
        let wide = DynamicImage::ImageRgb8(RgbImage::from_fn(1_000, 500, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        }));
        for (format, media_type) in [
            (ImageFormat::Png, "image/png"),
            (ImageFormat::Jpeg, "image/jpeg"),
            (ImageFormat::Gif, "image/gif"),
        ] {
            let thumb = make_thumbnail(&encoded(&wide, format), media_type).expect("a thumbnail");
            let thumb = decoded(&thumb);
            assert_eq!((thumb.width(), thumb.height()), (320, 160), "{media_type}");
        }
        let tall = wide.rotate90();
        let thumb = decoded(&make_thumbnail(&encoded(&tall, ImageFormat::Png), "image/png").expect("a thumbnail"));
        assert_eq!((thumb.width(), thumb.height()), (160, 320));
    }

    #[test]
    fn a_small_image_is_not_enlarged() {
        let tiny = DynamicImage::ImageRgb8(RgbImage::new(40, 30));
        let thumb = decoded(&make_thumbnail(&encoded(&tiny, ImageFormat::Png), "image/png").expect("a thumbnail"));
        assert_eq!((thumb.width(), thumb.height()), (40, 30));
    }

    #[test]
    fn transparency_shows_on_white() {
        let clear = DynamicImage::ImageRgba8(image::RgbaImage::new(50, 50));
        let thumb = decoded(&make_thumbnail(&encoded(&clear, ImageFormat::Png), "image/png").expect("a thumbnail"));
        let pixel = thumb.to_rgb8().get_pixel(25, 25).0;
        assert!(pixel.iter().all(|&c| c > 245), "{pixel:?}");
    }

    #[test]
    fn broken_and_oversized_images_get_none() {
        let photo = DynamicImage::ImageRgb8(RgbImage::from_fn(400, 300, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        }));
        let png = encoded(&photo, ImageFormat::Png);
        let cut = &png[..png.len() / 2];
        assert!(matches!(
            make_thumbnail(cut, "image/png"),
            Err(Unthumbnailable::Undecodable(_))
        ));
        assert!(matches!(
            make_thumbnail(&png, "image/bmp"),
            Err(Unthumbnailable::Undecodable(_))
        ));
        // A header that claims 5,000 × 5,000 (25 megapixels) over the pixels of a small image:
        // refused from the header, before a pixel is decoded.
        let mut big = png[..33].to_vec();
        big[16..20].copy_from_slice(&5_000u32.to_be_bytes());
        big[20..24].copy_from_slice(&5_000u32.to_be_bytes());
        let crc = crc32(&big[12..29]);
        big[29..33].copy_from_slice(&crc.to_be_bytes());
        big.extend_from_slice(&png[33..]);
        assert!(matches!(
            make_thumbnail(&big, "image/png"),
            Err(Unthumbnailable::TooLarge {
                width: 5_000,
                height: 5_000
            })
        ));
    }

    #[test]
    fn keys_sit_beside_the_document_and_are_no_document() {
        let tenant = crate::TenantId::new("acme").expect("a tenant");
        let document = BlobKey::for_document(&tenant, RoomId::from_u128(1), DocumentId::from_u128(2));
        let key = thumbnail_key(&document).expect("a key");
        assert_eq!(key.as_str(), format!("{document}.thumb320.jpg"));
        assert_eq!(key.document_ids(), None);
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = u32::MAX;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
