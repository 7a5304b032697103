//! Streaming uploads: one put for a small document, a multipart upload with a bounded number
//! of parts in flight for a large one.
//!
//! The size limit is checked as each chunk arrives, so an oversized upload stops at once. The
//! SHA-256 (≈1.7 GB/s here, slower than a write to the page cache) runs beside the upload
//! instead of before each part: a one-put document is hashed while the store writes it; the
//! parts of a multipart upload are hashed in order by a future of their own, at most a part
//! behind, so that the last parts are hashed while the store completes the upload (for local
//! files: flushes it to disk) instead of before.

use bytes::Bytes;
use collab_core::Error;
use collab_core::blob::{BlobInfo, UploadDigest, UploadStream, upload_interrupted};
use futures_util::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    MultipartUpload, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutPayloadMut,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::StoreError;

/// How an upload is cut into parts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PartPlan {
    /// Bytes per part; a document of at most this many bytes goes in one put.
    pub(crate) part_size: usize,
    /// Parts uploading at once; memory use is about `(max(parts_in_flight, 2) + 1) × part_size`.
    pub(crate) parts_in_flight: usize,
}

/// Counts bytes as they arrive and refuses the chunk that passes the limit, with the error
/// [`UploadDigest`] gives, which hashes later (and so never sees more than the limit).
struct Limit {
    limit: u64,
    size: u64,
}

impl Limit {
    fn take(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let size = self.size.saturating_add(chunk.len() as u64);
        if size > self.limit {
            return Err(Error::TooLarge { limit: self.limit });
        }
        self.size = size;
        Ok(())
    }
}

/// Bytes hashed between two yields to the runtime (≈0.6 ms of work).
const HASH_SLICE: usize = 1024 * 1024;

/// Feeds a payload's bytes to the digest, yielding now and then: the part's upload task,
/// just spawned on this worker, starts, and the worker is never held for long.
async fn hash(digest: &mut UploadDigest, payload: &PutPayload) -> Result<(), Error> {
    for bytes in payload.iter() {
        for slice in bytes.chunks(HASH_SLICE) {
            tokio::task::yield_now().await;
            digest.update(slice)?;
        }
    }
    Ok(())
}

/// The next non-empty chunk of `data`, counted against `limit`; `None` at the end.
async fn next_chunk(data: &mut UploadStream, limit: &mut Limit) -> Result<Option<Bytes>, Error> {
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(upload_interrupted)?;
        limit.take(&chunk)?;
        if !chunk.is_empty() {
            return Ok(Some(chunk));
        }
    }
    Ok(None)
}

/// Where an upload goes.
pub(crate) struct Target<'a> {
    pub(crate) store: &'a dyn ObjectStore,
    /// The same store when it is local files with `Durability::Synced`: multipart uploads then
    /// go through [`SyncedFileUpload`](crate::synced_file::SyncedFileUpload).
    pub(crate) synced_files: Option<&'a LocalFileSystem>,
    pub(crate) location: &'a Path,
}

impl Target<'_> {
    async fn start_multipart(&self) -> Result<Box<dyn MultipartUpload>, Error> {
        let started = async {
            #[cfg(unix)]
            if let Some(files) = self.synced_files {
                let dest = files.path_to_filesystem(self.location)?;
                let upload = crate::synced_file::SyncedFileUpload::start(dest).await?;
                return Ok(Box::new(upload) as Box<dyn MultipartUpload>);
            }
            self.store
                .put_multipart_opts(self.location, PutMultipartOptions::default())
                .await
        };
        Ok(started.await.map_err(StoreError::store("create multipart upload"))?)
    }
}

/// Reads `data` into `target`, enforcing `limit` as the bytes arrive.
pub(crate) async fn upload(
    target: Target<'_>,
    mut data: UploadStream,
    limit: u64,
    plan: PartPlan,
) -> Result<BlobInfo, Error> {
    let (store, location) = (target.store, target.location);
    let mut limit = Limit { limit, size: 0 };
    let mut digest = UploadDigest::new(limit.limit);
    // The first part decides: a stream that ends within it is stored with one put.
    let mut part = PutPayloadMut::new();
    let mut pending = Bytes::new();
    while let Some(mut chunk) = next_chunk(&mut data, &mut limit).await? {
        let room = plan.part_size - part.content_length();
        if chunk.len() >= room {
            part.push(chunk.split_to(room));
            pending = chunk;
            break;
        }
        part.push(chunk);
    }
    // A first part exactly full: only more bytes make it a multipart upload.
    if pending.is_empty() && part.content_length() == plan.part_size {
        pending = next_chunk(&mut data, &mut limit).await?.unwrap_or_default();
    }
    if pending.is_empty() {
        let payload = part.freeze();
        let put = store.put_opts(location, payload.clone(), PutOptions::default());
        // `join` polls the put first, so the write is under way before the hashing starts.
        let (stored, hashed) = futures_util::future::join(put, hash(&mut digest, &payload)).await;
        stored.map_err(StoreError::store("put"))?;
        hashed?;
        return Ok(digest.finish());
    }
    let upload = target.start_multipart().await?;
    let mut parts = Parts {
        upload: Some(upload),
        in_flight: JoinSet::new(),
        plan,
    };
    // Parts sent and not yet hashed: the one being hashed and those queued, at most
    // `max(parts_in_flight, 2)`. The parts being written are the same recent parts or fewer,
    // so with the part being filled that many plus one are held, as the builder documents.
    let (to_digest, parts_to_hash) = mpsc::channel(plan.parts_in_flight.saturating_sub(1).max(1));
    let uploading = async {
        match parts.run(part, pending, data, &mut limit, to_digest).await {
            Ok(()) => parts.complete().await,
            Err(e) => {
                parts.abort().await;
                Err(e)
            }
        }
    };
    let (uploaded, hashed) = futures_util::future::join(uploading, hash_parts(digest, parts_to_hash)).await;
    match (uploaded, hashed) {
        (Ok(()), Ok(digest)) => Ok(digest.finish()),
        (Err(e), Ok(_)) => Err(e),
        // The digest's error is the cause: the upload stopped because the digest did.
        (Err(_), Err(e)) => Err(e),
        (Ok(()), Err(e)) => {
            // Unreachable while the limit and the digest agree (see the test below); if they
            // ever do not, the document must not stay.
            if let Err(delete) = store.delete(location).await {
                tracing::warn!(error = %delete, "could not delete an upload whose digest failed");
            }
            Err(e)
        }
    }
}

/// Hashes the parts in the order they are sent, until the sender is dropped after the last.
async fn hash_parts(mut digest: UploadDigest, mut parts: mpsc::Receiver<PutPayload>) -> Result<UploadDigest, Error> {
    while let Some(part) = parts.recv().await {
        hash(&mut digest, &part).await?;
    }
    Ok(digest)
}

/// A multipart upload in progress. Dropped before it completed or aborted (the caller's future
/// was cancelled: a client that went away), it aborts the upload in the background, so no
/// parts are left behind on stores that keep them.
struct Parts {
    upload: Option<Box<dyn MultipartUpload>>,
    in_flight: JoinSet<object_store::Result<()>>,
    plan: PartPlan,
}

impl Parts {
    /// Sends `first` (a full part), then cuts `pending` (counted, not yet placed) and the rest
    /// of `data` into parts and sends them, never more than `parts_in_flight` at once, each to
    /// the store and to `digest`.
    async fn run(
        &mut self,
        first: PutPayloadMut,
        mut pending: Bytes,
        mut data: UploadStream,
        limit: &mut Limit,
        digest: mpsc::Sender<PutPayload>,
    ) -> Result<(), Error> {
        self.send(first, &digest).await?;
        let mut part = PutPayloadMut::new();
        loop {
            while !pending.is_empty() {
                let room = self.plan.part_size - part.content_length();
                if pending.len() < room {
                    part.push(std::mem::take(&mut pending));
                } else {
                    part.push(pending.split_to(room));
                    self.send(std::mem::take(&mut part), &digest).await?;
                }
            }
            // Surface a failed part early instead of reading the whole document first.
            self.reap_finished()?;
            match next_chunk(&mut data, limit).await? {
                Some(chunk) => pending = chunk,
                None => break,
            }
        }
        if part.content_length() > 0 {
            self.send(part, &digest).await?;
        }
        while let Some(done) = self.in_flight.join_next().await {
            done.map_err(StoreError::from)?
                .map_err(StoreError::store("upload part"))?;
        }
        Ok(())
    }

    /// Starts uploading `part` once fewer than `parts_in_flight` parts are under way, and
    /// queues it for `digest` (waiting while the digest is behind).
    async fn send(&mut self, part: PutPayloadMut, digest: &mpsc::Sender<PutPayload>) -> Result<(), Error> {
        while self.in_flight.len() >= self.plan.parts_in_flight {
            if let Some(done) = self.in_flight.join_next().await {
                done.map_err(StoreError::from)?
                    .map_err(StoreError::store("upload part"))?;
            }
        }
        let payload = part.freeze();
        if let Some(upload) = self.upload.as_mut() {
            self.in_flight.spawn(upload.put_part(payload.clone()));
        }
        digest.send(payload).await.map_err(|_| StoreError::DigestStopped.into())
    }

    /// Collects the parts that have finished, failing on the first that failed.
    fn reap_finished(&mut self) -> Result<(), Error> {
        while let Some(done) = self.in_flight.try_join_next() {
            done.map_err(StoreError::from)?
                .map_err(StoreError::store("upload part"))?;
        }
        Ok(())
    }

    /// Makes the document visible: every part has been uploaded.
    async fn complete(&mut self) -> Result<(), Error> {
        let Some(mut upload) = self.upload.take() else {
            return Ok(());
        };
        match upload.complete().await {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(error = %abort, "could not abort a multipart upload that failed to complete");
                }
                Err(StoreError::store("complete multipart upload")(e).into())
            }
        }
    }

    /// Stops the parts under way and discards the upload. A failure here is logged, not
    /// returned: the caller reports the error that made it abort.
    async fn abort(&mut self) {
        self.in_flight.shutdown().await;
        if let Some(mut upload) = self.upload.take()
            && let Err(e) = upload.abort().await
        {
            tracing::warn!(error = %e, "could not abort a multipart upload; its parts stay until the store's lifecycle rule removes them");
        }
    }
}

impl Drop for Parts {
    fn drop(&mut self) {
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        // Cancelled mid-upload: the runtime that ran us is still there to abort it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.in_flight.abort_all();
            runtime.spawn(async move {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(error = %e, "could not abort a cancelled multipart upload");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_matches_the_digest() {
        let mut limit = Limit { limit: 5, size: 0 };
        let mut digest = UploadDigest::new(5);
        for chunk in [&b"abc"[..], b"de", b"", b"f"] {
            let ours = limit.take(chunk).map_err(|e| e.to_string());
            let core = digest.update(chunk).map_err(|e| e.to_string());
            assert_eq!(ours, core, "{chunk:?}");
        }
    }
}
