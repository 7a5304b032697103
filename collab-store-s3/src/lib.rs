#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
#[cfg(unix)]
mod synced_file;
#[cfg(feature = "test-server")]
pub mod test_server;
mod upload;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use collab_core::blob::{
    BlobInfo, BlobKey, BlobListing, BlobMeta, BlobPrefix, BlobStore, ByteRange, Download, StoredBlob, UploadStream,
};
use collab_core::{Error, RoomId, TenantId, Timestamp};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::{Path, PathPart};
use object_store::signer::{Method, SignedUrlOptions, Signer};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use url::Url;

pub use crate::config::{Durability, S3Config};
use crate::error::{StoreError, is_not_found};
use crate::upload::PartPlan;
/// The object_store version this crate is built on, for building your own store.
pub use object_store;

/// The smallest part S3 accepts (but for the last).
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// The largest part S3 accepts.
const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
/// The longest a presigned URL may live (SigV4's limit).
const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// collab's [`BlobStore`] on an object_store [`ObjectStore`]: S3, local files, memory (and GCS
/// and Azure behind features). Documents live under `{prefix}/{tenant}/{room}/{document}`.
///
/// Build one with [`memory`](Self::memory), [`local`](Self::local), [`s3`](Self::s3),
/// [`from_url`](Self::from_url) or, for any other store, [`builder`](Self::builder); then
/// adjust the [`ObjectBlobStoreBuilder`] and [`build`](ObjectBlobStoreBuilder::build) it.
#[derive(Clone)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    /// Set for local files with `Durability::Synced`: their multipart uploads are ours.
    synced_files: Option<Arc<object_store::local::LocalFileSystem>>,
    signer: Option<Arc<dyn Signer>>,
    backend: &'static str,
    prefix: Option<Path>,
    plan: PartPlan,
}

/// Only the shape: the store's own `Debug` may show more than a log should.
impl fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBlobStore")
            .field("backend", &self.backend)
            .field("prefix", &self.prefix.as_ref().map(Path::as_ref))
            .field("part_size", &self.plan.part_size)
            .field("parts_in_flight", &self.plan.parts_in_flight)
            .field("presigned_urls", &self.signer.is_some())
            .finish()
    }
}

/// Settings of an [`ObjectBlobStore`] being built.
pub struct ObjectBlobStoreBuilder {
    store: Arc<dyn ObjectStore>,
    synced_files: Option<Arc<object_store::local::LocalFileSystem>>,
    signer: Option<Arc<dyn Signer>>,
    backend: &'static str,
    prefix: String,
    part_size: usize,
    parts_in_flight: usize,
}

/// Only the shape, like [`ObjectBlobStore`]'s.
impl fmt::Debug for ObjectBlobStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBlobStoreBuilder")
            .field("backend", &self.backend)
            .field("prefix", &self.prefix)
            .field("part_size", &self.part_size)
            .field("parts_in_flight", &self.parts_in_flight)
            .field("presigned_urls", &self.signer.is_some())
            .finish()
    }
}

impl ObjectBlobStore {
    /// A store on any object_store backend.
    pub fn builder(store: impl ObjectStore) -> ObjectBlobStoreBuilder {
        ObjectBlobStoreBuilder::new(Arc::new(store), "object store")
    }

    /// A store in memory (object_store's `InMemory`): for tests and demos; nothing survives the
    /// process.
    pub fn memory() -> ObjectBlobStoreBuilder {
        ObjectBlobStoreBuilder::new(Arc::new(object_store::memory::InMemory::new()), "memory")
    }

    /// A store in the directory `root` (created if missing), with the given [`Durability`].
    /// Uploads are written to a staging file beside their final name and renamed into place.
    pub fn local(root: impl AsRef<std::path::Path>, durability: Durability) -> Result<ObjectBlobStoreBuilder, Error> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).map_err(|e| Error::backend("local files", e))?;
        let synced = durability == Durability::Synced;
        let store = object_store::local::LocalFileSystem::new_with_prefix(root)
            .map_err(StoreError::store("open the directory"))?
            .with_fsync(synced)
            // Deleting a room's last document removes its directories too.
            .with_automatic_cleanup(true);
        let store = Arc::new(store);
        let mut builder = ObjectBlobStoreBuilder::new(store.clone(), "local files");
        if synced && cfg!(unix) {
            builder.synced_files = Some(store);
        }
        Ok(builder)
    }

    /// A store in an S3 bucket. Presigned GET URLs are available.
    pub fn s3(config: &S3Config) -> Result<ObjectBlobStoreBuilder, Error> {
        let store = Arc::new(config.build()?);
        let mut builder = ObjectBlobStoreBuilder::new(store.clone(), "s3");
        builder.signer = Some(store);
        Ok(builder)
    }

    /// A store named by a URL:
    ///
    /// | URL | store |
    /// |---|---|
    /// | `memory://` | [`memory`](Self::memory) |
    /// | `file:///var/lib/collab/documents` | [`local`](Self::local), [`Durability::Synced`] |
    /// | `s3://bucket/prefix` | [`s3`](Self::s3), settings from [`S3Config::from_env`] |
    /// | `gs://bucket/prefix` | Google Cloud Storage, settings from `GOOGLE_*` variables (feature `gcp`) |
    /// | `az://container/prefix` | Azure Blob Storage, settings from `AZURE_*` variables (feature `azure`) |
    ///
    /// The URL's path after the bucket becomes the [`prefix`](ObjectBlobStoreBuilder::prefix).
    pub fn from_url(url: &str) -> Result<ObjectBlobStoreBuilder, Error> {
        let url = Url::parse(url).map_err(|e| Error::invalid("url", e.to_string()))?;
        let bucket = || match url.host_str() {
            Some(bucket) if !bucket.is_empty() => Ok(bucket.to_owned()),
            _ => Err(Error::invalid("url", "names no bucket")),
        };
        let prefix = url.path().trim_matches('/');
        let builder = match url.scheme() {
            "memory" => return Ok(Self::memory()),
            "file" => {
                let root = url
                    .to_file_path()
                    .map_err(|()| Error::invalid("url", "is not an absolute file path"))?;
                return Self::local(root, Durability::Synced);
            }
            "s3" | "s3a" => Self::s3(&S3Config::from_env(bucket()?)?)?,
            #[cfg(feature = "gcp")]
            "gs" => {
                let store = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket()?)
                    .build()
                    .map_err(|e| Error::invalid("url", e.to_string()))?;
                let store = Arc::new(store);
                let mut builder = ObjectBlobStoreBuilder::new(store.clone(), "gcs");
                builder.signer = Some(store);
                builder
            }
            #[cfg(feature = "azure")]
            "az" | "azure" | "abfs" | "abfss" => {
                let store = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(bucket()?)
                    .build()
                    .map_err(|e| Error::invalid("url", e.to_string()))?;
                let store = Arc::new(store);
                let mut builder = ObjectBlobStoreBuilder::new(store.clone(), "azure");
                builder.signer = Some(store);
                builder
            }
            _ => {
                return Err(Error::invalid(
                    "url",
                    "scheme must be memory, file or s3 (gs and az with their features)",
                ));
            }
        };
        Ok(builder.prefix(prefix))
    }

    /// The object_store this store writes to, for tools that need it raw (listing, benchmarks).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Where the blob `key` lives in the [`object_store`](Self::object_store):
    /// `{prefix}/{key}`.
    pub fn location(&self, key: &BlobKey) -> Path {
        // A BlobKey is `/`-separated segments of `[A-Za-z0-9_.%-]`, none empty, `.` or `..`:
        // each is a valid path part as it is.
        let key = Path::from_iter(key.as_str().split('/'));
        match &self.prefix {
            Some(prefix) => prefix.parts().chain(key.parts()).collect(),
            None => key,
        }
    }

    /// The folder that holds the blobs under `prefix`: `{prefix}/{blob prefix}`.
    fn prefix_location(&self, prefix: &BlobPrefix) -> Option<Path> {
        // A BlobPrefix is empty or whole key segments: valid path parts as they are.
        let own = self.prefix.iter().flat_map(Path::parts);
        let below = prefix.as_str().split('/').filter(|s| !s.is_empty()).map(PathPart::from);
        let location: Path = own.chain(below).collect();
        (location.parts().next().is_some()).then_some(location)
    }

    /// The key of the blob at `location`, if it lies under this store's prefix and is a key.
    fn key_of(&self, location: &Path) -> Option<BlobKey> {
        let parts: Vec<_> = location.parts().collect();
        let own = self.prefix.as_ref().map_or(0, |p| p.parts().count());
        let key: Vec<&str> = parts.get(own..)?.iter().map(AsRef::as_ref).collect();
        BlobKey::parse(&key.join("/")).ok()
    }

    /// Deletes every document of `room` (for retention) and returns how many there were.
    /// Deleting a room with no documents succeeds with 0.
    ///
    /// A multipart upload still running in the room is not stopped; started after this call,
    /// it stores its document.
    pub async fn delete_room(&self, tenant: &TenantId, room: RoomId) -> Result<u64, Error> {
        let folder = self.prefix_location(&BlobPrefix::room(tenant, room));
        let locations = self.store.list(folder.as_ref()).map_ok(|meta| meta.location).boxed();
        let mut deleted = self.store.delete_stream(locations);
        let mut count = 0u64;
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) => count += 1,
                // Someone else deleted it first: it is gone, as asked.
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(StoreError::store("delete a room's documents")(e).into()),
            }
        }
        Ok(count)
    }

    /// A URL that lets a browser GET the blob `key` straight from the bucket for `expires_in`
    /// (at most 7 days), answered with the given `Content-Type` and `Content-Disposition`
    /// (pass the sniffed type and the disposition the core computed for the document).
    ///
    /// The bucket answers on its own origin, without the `nosniff` and sandbox headers a host
    /// adds; serve documents through the host when that matters. The URL is not checked against
    /// the key's existence: a missing key gets the store's 404.
    ///
    /// [`Error::Unsupported`] for stores that cannot sign (memory, local files, a store from
    /// [`builder`](Self::builder) without a [`signer`](ObjectBlobStoreBuilder::signer)).
    pub async fn presigned_get(
        &self,
        key: &BlobKey,
        expires_in: Duration,
        content_type: &str,
        content_disposition: &str,
    ) -> Result<Url, Error> {
        let Some(signer) = &self.signer else {
            return Err(Error::Unsupported {
                backend: self.backend,
                capability: "presigned URLs",
            });
        };
        if expires_in.is_zero() || expires_in > MAX_PRESIGN {
            return Err(Error::invalid("expires_in", "must be more than 0 and at most 7 days"));
        }
        let options = SignedUrlOptions::new().with_query([
            ("response-content-type", content_type),
            ("response-content-disposition", content_disposition),
        ]);
        signer
            .signed_url_opts(Method::GET, &self.location(key), expires_in, &options)
            .await
            .map_err(|e| StoreError::store("sign a URL")(e).into())
    }

    /// The size of the blob at `location`, or `None`.
    async fn size_of(&self, location: &Path) -> Result<Option<u64>, Error> {
        match self.store.head(location).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(StoreError::store("head")(e).into()),
        }
    }
}

impl ObjectBlobStoreBuilder {
    fn new(store: Arc<dyn ObjectStore>, backend: &'static str) -> Self {
        Self {
            store,
            synced_files: None,
            signer: None,
            backend,
            prefix: String::new(),
            part_size: 8 * 1024 * 1024,
            parts_in_flight: 2,
        }
    }

    /// Puts every document under `prefix/` (default: none): `/`-separated segments of
    /// letters, digits and `_.%-`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bytes per part of a multipart upload, 5 MiB to 5 GiB (default 8 MiB). A document of at
    /// most this size is stored with a single put.
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes;
        self
    }

    /// Parts of one upload sent at once, 1 to 64 (default 2). An upload holds about
    /// `(parts_in_flight + 1) × part_size` bytes in memory at most (`3 × part_size` with one
    /// part in flight: the digest may be a part behind the store).
    pub fn parts_in_flight(mut self, parts: usize) -> Self {
        self.parts_in_flight = parts;
        self
    }

    /// Signs presigned GET URLs with `signer` (usually the store itself, if it can sign).
    pub fn signer(mut self, signer: impl Signer) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// Checks the settings; [`Error::Invalid`] names the one at fault.
    pub fn build(self) -> Result<ObjectBlobStore, Error> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(Error::invalid("part_size", "must be 5 MiB to 5 GiB"));
        }
        if !(1..=64).contains(&self.parts_in_flight) {
            return Err(Error::invalid("parts_in_flight", "must be 1 to 64"));
        }
        let prefix = match self.prefix.trim_matches('/') {
            "" => None,
            prefix => {
                let checked = BlobKey::parse(prefix).map_err(|_| {
                    Error::invalid("prefix", "must be `/`-separated segments of letters, digits and `_.%-`")
                })?;
                Some(Path::from_iter(checked.as_str().split('/')))
            }
        };
        Ok(ObjectBlobStore {
            store: self.store,
            synced_files: self.synced_files,
            signer: self.signer,
            backend: self.backend,
            prefix,
            plan: PartPlan {
                part_size: self.part_size,
                parts_in_flight: self.parts_in_flight,
            },
        })
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, key: &BlobKey, data: UploadStream, limit: u64) -> Result<BlobInfo, Error> {
        let location = self.location(key);
        let target = upload::Target {
            store: self.store.as_ref(),
            synced_files: self.synced_files.as_deref(),
            location: &location,
        };
        upload::upload(target, data, limit, self.plan).await
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<Option<Download>, Error> {
        let location = self.location(key);
        // A range as object_store takes it; `resolve` against a huge size gives back the
        // asked-for bounds (or `start..` when open).
        let get_range = match range.map(|r| r.resolve(u64::MAX)) {
            Some(Ok(r)) if r.end == u64::MAX => Some(GetRange::Offset(r.start)),
            Some(Ok(r)) => Some(GetRange::Bounded(r)),
            // Only a start of u64::MAX fails; no blob is that large.
            Some(Err(e)) => return self.range_failure(&location, range, e).await,
            None => None,
        };
        let options = GetOptions {
            range: get_range,
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&location, options).await {
            Ok(result) => result,
            Err(e) if is_not_found(&e) => return Ok(None),
            // A range past the end is an error whose shape differs by store: ask for the size.
            Err(e) if range.is_some() => {
                return self
                    .range_failure(&location, range, StoreError::store("get")(e).into())
                    .await;
            }
            Err(e) => return Err(StoreError::store("get")(e).into()),
        };
        let size = result.meta.size;
        let expected = match range {
            Some(range) => range.resolve(size)?,
            None => 0..size,
        };
        if result.range != expected {
            return Err(StoreError::UnexpectedRange {
                expected,
                actual: result.range,
                size,
            }
            .into());
        }
        let stream = result
            .into_stream()
            .map_err(|e| Error::from(StoreError::store("read")(e)))
            .boxed();
        Ok(Some(Download {
            size,
            range: expected,
            stream,
        }))
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, Error> {
        Ok(self.size_of(&self.location(key)).await?.map(|size| BlobMeta { size }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), Error> {
        match self.store.delete(&self.location(key)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(StoreError::store("delete")(e).into()),
        }
    }

    /// Objects under the prefix whose names are not blob keys (written by something else) are
    /// left out. Incomplete multipart uploads and local staging files are never listed.
    fn list(&self, prefix: &BlobPrefix) -> BlobListing {
        let this = self.clone();
        let folder = self.prefix_location(prefix);
        let listing = self.store.list(folder.as_ref()).filter_map(move |meta| {
            let blob = match meta {
                Ok(meta) => this.key_of(&meta.location).map(|key| {
                    Ok(StoredBlob {
                        key,
                        size: meta.size,
                        modified: Timestamp::from_unix_millis(meta.last_modified.timestamp_millis()),
                    })
                }),
                Err(e) => Some(Err(StoreError::store("list")(e).into())),
            };
            std::future::ready(blob)
        });
        Box::pin(listing)
    }
}

impl ObjectBlobStore {
    /// After a ranged get failed with `error`: `Ok(None)` if the blob is missing, the range's
    /// own error if it lies past the end, else `error`.
    async fn range_failure(
        &self,
        location: &Path,
        range: Option<ByteRange>,
        error: Error,
    ) -> Result<Option<Download>, Error> {
        let Some(size) = self.size_of(location).await? else {
            return Ok(None);
        };
        if let Some(range) = range {
            range.resolve(size)?;
        }
        Err(error)
    }
}
