//! Streaming uploads: one put for a small document, a multipart upload with a bounded number
//! of parts in flight for a large one.

use bytes::Bytes;
use collab_core::Error;
use collab_core::blob::{BlobInfo, UploadDigest, UploadStream, upload_interrupted};
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, PutMultipartOptions, PutOptions, PutPayloadMut};
use tokio::task::JoinSet;

use crate::error::StoreError;

/// How an upload is cut into parts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PartPlan {
    /// Bytes per part; a document of at most this many bytes goes in one put.
    pub(crate) part_size: usize,
    /// Parts uploading at once; memory use is about `(parts_in_flight + 1) × part_size`.
    pub(crate) parts_in_flight: usize,
}

/// Reads `data` into `location`, enforcing `limit` as the bytes arrive.
pub(crate) async fn upload(
    store: &dyn ObjectStore,
    location: &Path,
    mut data: UploadStream,
    limit: u64,
    plan: PartPlan,
) -> Result<BlobInfo, Error> {
    let mut digest = UploadDigest::new(limit);
    let mut part = PutPayloadMut::new();
    // The first part decides: a stream that ends within it is stored with one put. `pending`
    // holds bytes already counted by the digest but not yet placed in a part.
    let mut pending = None;
    while let Some(chunk) = data.next().await {
        let mut chunk = chunk.map_err(upload_interrupted)?;
        digest.update(&chunk)?;
        let room = plan.part_size - part.content_length();
        if chunk.len() >= room {
            part.push(chunk.split_to(room));
            pending = Some(chunk);
            break;
        }
        part.push(chunk);
    }
    let pending = match pending {
        Some(rest) if !rest.is_empty() => rest,
        // The first part is exactly full: only more bytes make it a multipart upload.
        Some(_) => loop {
            match data.next().await {
                Some(next) => {
                    let next = next.map_err(upload_interrupted)?;
                    digest.update(&next)?;
                    if !next.is_empty() {
                        break next;
                    }
                }
                None => break Bytes::new(),
            }
        },
        None => Bytes::new(),
    };
    if pending.is_empty() {
        store
            .put_opts(location, part.freeze(), PutOptions::default())
            .await
            .map_err(StoreError::store("put"))?;
        return Ok(digest.finish());
    }
    let upload = store
        .put_multipart_opts(location, PutMultipartOptions::default())
        .await
        .map_err(StoreError::store("create multipart upload"))?;
    let mut parts = Parts {
        upload: Some(upload),
        in_flight: JoinSet::new(),
        plan,
    };
    match parts.run(part, pending, data, &mut digest).await {
        Ok(()) => {
            parts.complete().await?;
            Ok(digest.finish())
        }
        Err(e) => {
            parts.abort().await;
            Err(e)
        }
    }
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
    /// Sends `first`, then cuts `pending` and the rest of `data` into parts and sends them,
    /// never more than `parts_in_flight` at once.
    async fn run(
        &mut self,
        first: PutPayloadMut,
        mut pending: Bytes,
        mut data: UploadStream,
        digest: &mut UploadDigest,
    ) -> Result<(), Error> {
        self.send(first).await?;
        let mut part = PutPayloadMut::new();
        loop {
            while !pending.is_empty() {
                let room = self.plan.part_size - part.content_length();
                if pending.len() < room {
                    part.push(std::mem::take(&mut pending));
                } else {
                    part.push(pending.split_to(room));
                    self.send(std::mem::take(&mut part)).await?;
                }
            }
            // Surface a failed part early instead of reading the whole document first.
            self.reap_finished()?;
            match data.next().await {
                Some(chunk) => {
                    pending = chunk.map_err(upload_interrupted)?;
                    digest.update(&pending)?;
                }
                None => break,
            }
        }
        if part.content_length() > 0 {
            self.send(part).await?;
        }
        while let Some(done) = self.in_flight.join_next().await {
            done.map_err(StoreError::from)?
                .map_err(StoreError::store("upload part"))?;
        }
        Ok(())
    }

    /// Starts uploading `part` once fewer than `parts_in_flight` parts are under way.
    async fn send(&mut self, part: PutPayloadMut) -> Result<(), Error> {
        while self.in_flight.len() >= self.plan.parts_in_flight {
            if let Some(done) = self.in_flight.join_next().await {
                done.map_err(StoreError::from)?
                    .map_err(StoreError::store("upload part"))?;
            }
        }
        if let Some(upload) = self.upload.as_mut() {
            self.in_flight.spawn(upload.put_part(part.freeze()));
        }
        Ok(())
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
