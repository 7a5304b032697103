//! Document bytes: the [`BlobStore`] trait and what it trades in.

use std::fmt;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use sha2::{Digest, Sha256};

use crate::Error;
pub use crate::content::{BlobKey, BlobPrefix, MAX_BLOB_KEY_LEN, Sha256Digest};
use crate::time::Timestamp;

/// The bytes of an upload as they arrive from a client. An `Err` item aborts the upload.
pub type UploadStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// The bytes of a download, read from the store as the consumer pulls them.
pub type DownloadStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// Blobs as [`BlobStore::list`] finds them, read from the store as the consumer pulls them.
pub type BlobListing = Pin<Box<dyn Stream<Item = Result<StoredBlob, Error>> + Send>>;

/// A blob as [`BlobStore::list`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    /// Its key.
    pub key: BlobKey,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, by the store's clock.
    pub modified: Timestamp,
}

/// A byte range of a blob: `start..end`, or `start..` to the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    start: u64,
    end: Option<u64>,
}

impl ByteRange {
    /// Bytes `range.start` up to, not including, `range.end`. An empty range is refused.
    pub fn new(range: Range<u64>) -> Result<Self, Error> {
        if range.start >= range.end {
            return Err(Error::invalid("range", "must not be empty"));
        }
        Ok(Self {
            start: range.start,
            end: Some(range.end),
        })
    }

    /// Bytes from `start` to the end.
    pub fn from_start(start: u64) -> Self {
        Self { start, end: None }
    }

    /// The first byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The byte after the last, or `None` for "to the end".
    pub fn end(&self) -> Option<u64> {
        self.end
    }

    /// The bytes this range selects of a blob of `size` bytes: the end is clamped to the size;
    /// a start at or past the end is [`Error::RangeNotSatisfiable`].
    pub fn resolve(self, size: u64) -> Result<Range<u64>, Error> {
        if self.start >= size {
            return Err(Error::RangeNotSatisfiable { size });
        }
        let end = self.end.map_or(size, |end| end.min(size));
        Ok(self.start..end)
    }
}

/// What a completed upload stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, computed while they streamed in.
    pub sha256: Sha256Digest,
}

/// What [`BlobStore::head`] knows of a stored blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobMeta {
    /// Size in bytes.
    pub size: u64,
}

/// A download in progress.
pub struct Download {
    /// The size of the whole blob.
    pub size: u64,
    /// The bytes the stream yields, within the whole blob.
    pub range: Range<u64>,
    /// The bytes.
    pub stream: DownloadStream,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Counts and hashes upload bytes as they pass, and stops at the size limit. Every
/// [`BlobStore`] uses it so they all enforce the limit and compute the digest the same way.
#[derive(Clone, Debug)]
pub struct UploadDigest {
    limit: u64,
    size: u64,
    hasher: Sha256,
}

impl UploadDigest {
    /// Accepts at most `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            size: 0,
            hasher: Sha256::new(),
        }
    }

    /// Takes the next chunk, or refuses it with [`Error::TooLarge`] if it passes the limit.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let size = self.size.saturating_add(chunk.len() as u64);
        if size > self.limit {
            return Err(Error::TooLarge { limit: self.limit });
        }
        self.size = size;
        self.hasher.update(chunk);
        Ok(())
    }

    /// The size and digest of everything taken.
    pub fn finish(self) -> BlobInfo {
        BlobInfo {
            size: self.size,
            sha256: Sha256Digest::from_bytes(self.hasher.finalize().into()),
        }
    }
}

/// The error for an upload whose client stream failed (a disconnect, a read error).
pub fn upload_interrupted(source: io::Error) -> Error {
    Error::UploadAborted { source: source.into() }
}

/// Stores document bytes.
///
/// # Contract
///
/// - [`put`](BlobStore::put) reads the stream to its end and stores the bytes under `key`,
///   replacing what was there. It enforces `limit` *while streaming* (use [`UploadDigest`]): past
///   the limit it fails with [`Error::TooLarge`]; on that, on a stream error
///   ([`upload_interrupted`]) or on a store error, nothing is visible under `key` afterwards.
///   It returns the size and SHA-256 of the bytes.
/// - [`get`](BlobStore::get) returns the bytes, or the [`ByteRange`] of them resolved with
///   [`ByteRange::resolve`]; a missing key is `Ok(None)`.
/// - [`head`](BlobStore::head) returns the size; a missing key is `Ok(None)`.
/// - [`delete`](BlobStore::delete) removes the key; deleting a missing key succeeds.
/// - [`list`](BlobStore::list) yields every stored blob under the [`BlobPrefix`] (in any order),
///   with its size and the time it was written; a blob whose upload has not completed is not
///   listed. It is optional: the provided method yields one [`Error::Unsupported`], and
///   [`Rooms::sweep_orphan_documents`](crate::rooms::Rooms::sweep_orphan_documents) needs it.
///
/// The conformance kit (`collab_core::testing`, feature `testing`) checks all of this.
///
/// # Implement your own
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use async_trait::async_trait;
/// use bytes::Bytes;
/// use futures_util::{stream, StreamExt};
/// use collab_core::blob::*;
/// use collab_core::Error;
///
/// #[derive(Debug, Default)]
/// struct MapBlobs(Mutex<HashMap<BlobKey, Bytes>>);
///
/// #[async_trait]
/// impl BlobStore for MapBlobs {
///     async fn put(&self, key: &BlobKey, mut data: UploadStream, limit: u64) -> Result<BlobInfo, Error> {
///         let mut digest = UploadDigest::new(limit);
///         let mut bytes = Vec::new();
///         while let Some(chunk) = data.next().await {
///             let chunk = chunk.map_err(upload_interrupted)?;
///             digest.update(&chunk)?;
///             bytes.extend_from_slice(&chunk);
///         }
///         self.0.lock().unwrap().insert(key.clone(), bytes.into());
///         Ok(digest.finish())
///     }
///
///     async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<Option<Download>, Error> {
///         let Some(bytes) = self.0.lock().unwrap().get(key).cloned() else { return Ok(None) };
///         let size = bytes.len() as u64;
///         let range = match range {
///             Some(r) => r.resolve(size)?,
///             None => 0..size,
///         };
///         let part = bytes.slice(range.start as usize..range.end as usize);
///         Ok(Some(Download { size, range, stream: Box::pin(stream::iter([Ok(part)])) }))
///     }
///
///     async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, Error> {
///         Ok(self.0.lock().unwrap().get(key).map(|b| BlobMeta { size: b.len() as u64 }))
///     }
///
///     async fn delete(&self, key: &BlobKey) -> Result<(), Error> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait BlobStore: fmt::Debug + Send + Sync + 'static {
    /// Stores the stream under `key`, refusing more than `limit` bytes.
    async fn put(&self, key: &BlobKey, data: UploadStream, limit: u64) -> Result<BlobInfo, Error>;

    /// Reads the blob under `key`, or a range of it.
    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<Option<Download>, Error>;

    /// The size of the blob under `key`.
    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, Error>;

    /// Removes the blob under `key`, if any.
    async fn delete(&self, key: &BlobKey) -> Result<(), Error>;

    /// The blobs under `prefix`, for the sweep of orphan documents. Optional: by default, one
    /// [`Error::Unsupported`].
    fn list(&self, prefix: &BlobPrefix) -> BlobListing {
        let _ = prefix;
        Box::pin(futures_util::stream::iter([Err(Error::Unsupported {
            backend: "this blob store",
            capability: "listing",
        })]))
    }
}

macro_rules! forward_blob_store {
    ($wrapper:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: BlobStore + ?Sized> BlobStore for $wrapper {
            async fn put(&self, key: &BlobKey, data: UploadStream, limit: u64) -> Result<BlobInfo, Error> {
                (**self).put(key, data, limit).await
            }

            async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<Option<Download>, Error> {
                (**self).get(key, range).await
            }

            async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, Error> {
                (**self).head(key).await
            }

            async fn delete(&self, key: &BlobKey) -> Result<(), Error> {
                (**self).delete(key).await
            }

            fn list(&self, prefix: &BlobPrefix) -> BlobListing {
                (**self).list(prefix)
            }
        }
    };
}

forward_blob_store!(Arc<T>);
forward_blob_store!(Box<T>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_at_the_edges() {
        let r = |a, b| ByteRange::new(a..b).expect("non-empty");
        assert_eq!(r(0, 1).resolve(10).ok(), Some(0..1));
        assert_eq!(r(9, 10).resolve(10).ok(), Some(9..10));
        assert_eq!(r(5, 100).resolve(10).ok(), Some(5..10));
        assert_eq!(ByteRange::from_start(3).resolve(10).ok(), Some(3..10));
        assert!(matches!(
            r(10, 11).resolve(10),
            Err(Error::RangeNotSatisfiable { size: 10 })
        ));
        assert!(matches!(
            ByteRange::from_start(0).resolve(0),
            Err(Error::RangeNotSatisfiable { size: 0 })
        ));
        assert!(ByteRange::new(4..4).is_err());
    }

    #[test]
    fn the_digest_stops_at_the_limit() {
        let mut d = UploadDigest::new(5);
        assert!(d.update(b"abc").is_ok());
        assert!(d.update(b"de").is_ok());
        assert!(matches!(d.update(b"f"), Err(Error::TooLarge { limit: 5 })));
        let info = d.finish();
        assert_eq!(info.size, 5);
        assert_eq!(info.sha256, Sha256Digest::of(b"abcde"));
    }
}
