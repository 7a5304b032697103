//! Sharing and opening documents.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::{Operation, Rooms, no_extras};
use crate::blob::{BlobInfo, BlobKey, BlobPrefix, ByteRange, DownloadStream, Sha256Digest, UploadStream};
use crate::decide::{Actor, Command};
use crate::document::{self, Disposition, HEAD_LEN, Inspection};
use crate::error::{Entity, Error};
use crate::event::{DocumentKind, DocumentMeta, Event, EventData};
use crate::id::{DocumentId, RoomId};
use crate::state::RoomState;

/// What [`Rooms::sweep_orphan_documents`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrphanSweep {
    /// Stored blobs looked at.
    pub examined: usize,
    /// Documents no event names, older than the grace period.
    pub orphans: usize,
    /// Of those, how many were deleted (the others are logged, and left for the next sweep).
    pub deleted: usize,
}

/// An upload as it arrives from a client.
pub struct Upload {
    /// The client's file name: only a display name, sanitised; never part of a storage key.
    pub file_name: String,
    /// The bytes.
    pub data: UploadStream,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("file_name", &self.file_name)
            .finish_non_exhaustive()
    }
}

/// A document being opened: its bytes and how a web host should serve them.
pub struct DocumentDownload {
    /// The document as the timeline records it.
    pub meta: DocumentMeta,
    /// Inline for images, PDFs and plain text; everything else downloads as an attachment.
    pub disposition: Disposition,
    /// The `Content-Disposition` header value to send, with the display name safely quoted.
    pub content_disposition: String,
    /// The bytes the stream yields, within the whole document.
    pub range: Range<u64>,
    /// The bytes.
    pub stream: DownloadStream,
}

impl DocumentDownload {
    /// The response headers a web host should send with the bytes: the sniffed type, the
    /// disposition, and headers that keep a browser from running anything in the document:
    /// every document, PDFs included, is sandboxed and may be framed by no page (a PDF is
    /// read through a viewer in the host's page, such as PDF.js, that fetches its bytes).
    pub fn headers(&self) -> [(&'static str, String); 6] {
        serving_headers(&self.meta.media_type, &self.content_disposition, "private, no-cache")
    }
}

/// The headers of stored bytes served to a room's reader (a document, a thumbnail): typed as
/// given, never sniffed, sandboxed, for this origin only, and cached as `cache` says.
pub(super) fn serving_headers(media_type: &str, disposition: &str, cache: &str) -> [(&'static str, String); 6] {
    let csp = "default-src 'none'; frame-ancestors 'none'; sandbox";
    [
        ("Content-Type", media_type.to_owned()),
        ("Content-Disposition", disposition.to_owned()),
        ("X-Content-Type-Options", "nosniff".to_owned()),
        ("Content-Security-Policy", csp.to_owned()),
        ("Cross-Origin-Resource-Policy", "same-origin".to_owned()),
        ("Cache-Control", cache.to_owned()),
    ]
}

impl fmt::Debug for DocumentDownload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentDownload")
            .field("meta", &self.meta)
            .field("disposition", &self.disposition)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl Rooms {
    /// Shares a document in the room: the bytes stream into the blob store under a generated
    /// key, with the size limit enforced while they arrive; the type is sniffed from the bytes;
    /// images must have readable dimensions within the pixel limit and PDFs a page count. Then
    /// one `DocumentShared` event records it. Whatever fails, nothing is kept: the bytes are
    /// deleted, and should that fail too (or the process die first),
    /// [`Rooms::sweep_orphan_documents`] deletes them later. An event never names bytes that
    /// were not stored: they are stored first.
    ///
    /// With a room quota ([`RoomsConfig::with_max_room_bytes`](super::RoomsConfig::with_max_room_bytes)),
    /// a full room refuses before any byte is stored, the upload's limit is what the room has
    /// left (when less than the document limit), and the quota is checked again when the
    /// document is recorded: [`Error::QuotaExceeded`] each time.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn share_document(&self, actor: &Actor, room: RoomId, upload: Upload) -> Result<Event, Error> {
        let shared = self.share(actor, room, upload).await;
        match &shared {
            Ok(Event {
                data: EventData::DocumentShared(document),
                ..
            }) => crate::metrics::document_stored(document.size),
            Ok(_) => {}
            Err(e) => crate::metrics::document_refused(e.kind()),
        }
        shared
    }

    async fn share(&self, actor: &Actor, room: RoomId, upload: Upload) -> Result<Event, Error> {
        let state = self.load(room).await?;
        let id = DocumentId::generate(self.inner.ids.as_ref())?;
        let blob = BlobKey::for_document(state.tenant(), room, id);
        let policy = &self.inner.config.documents;
        let placeholder = DocumentMeta {
            id,
            name: document::display_name(&upload.file_name, policy),
            media_type: String::new(),
            size: 0,
            sha256: Sha256Digest::of(b""),
            kind: DocumentKind::Other,
            blob: blob.clone(),
        };
        // Refuse before any byte is stored when the actor could not share here anyway.
        let policy = self.policy_for(state.tenant()).await;
        let ctx = crate::decide::Context {
            now: self.inner.clock.now(),
            actor,
            policy: &policy,
        };
        crate::decide::decide(&state, &Command::ShareDocument(placeholder.clone()), &ctx)?;
        self.check_hook(actor, Operation::ShareDocument, Some(state.summary()))?;
        // A full room refuses at once; one with a little left takes no more than that.
        self.check_room_bytes(&state, 1)?;
        let max_document = self.inner.config.max_document_bytes;
        let limit = self
            .room_bytes_available(&state)
            .map_or(max_document, |left| left.min(max_document));

        let head = Arc::new(Mutex::new(Vec::with_capacity(HEAD_LEN)));
        let captured = head.clone();
        let data: UploadStream = Box::pin(upload.data.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                let mut head = captured.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let room_left = HEAD_LEN.saturating_sub(head.len());
                head.extend_from_slice(&chunk[..room_left.min(chunk.len())]);
            }
        }));
        let put = self.inner.blobs.put(&blob, data, limit).await;
        let info = match put {
            Ok(info) => info,
            Err(e) => {
                // The bytes may be stored all the same (a put whose answer was lost).
                if let Err(e) = self.inner.blobs.delete(&blob).await {
                    tracing::warn!(%room, blob = %blob, error = %e, "could not delete a failed upload");
                }
                return Err(match e {
                    // Cut at what the room had left, not at the document limit: the quota's.
                    Error::TooLarge { .. } if limit < max_document => self
                        .check_room_bytes(&state, limit.saturating_add(1))
                        .err()
                        .unwrap_or(e),
                    e => e,
                });
            }
        };
        let stored_at = self.inner.clock.now();
        let head = std::mem::take(&mut *head.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));

        let shared = async {
            let inspection = self.inspect_stored(&blob, &head, &info).await?;
            // The name gets the type's extension when the client's is another type's.
            let name =
                document::display_name_for(&placeholder.name, &inspection.media_type, &self.inner.config.documents);
            let meta = DocumentMeta {
                name,
                media_type: inspection.media_type,
                size: info.size,
                sha256: info.sha256,
                kind: inspection.kind,
                ..placeholder
            };
            // Past half the grace, the orphan sweep may soon take the bytes: do not name them.
            if self.inner.clock.now().since(stored_at) > self.inner.config.orphan_grace / 2 {
                return Err(Error::backend(
                    "documents",
                    "the upload took too long between storing and recording; try again",
                ));
            }
            let size = meta.size;
            // Checked against the state the event is appended to: of two uploads that each fit
            // but not both, the second to be recorded is refused.
            let within_quota = |state: &RoomState, events: &[Event]| {
                self.check_room_bytes(state, size)?;
                no_extras(state, events)
            };
            let done = self
                .execute(
                    actor,
                    room,
                    Operation::ShareDocument,
                    &Command::ShareDocument(meta),
                    within_quota,
                )
                .await?;
            done.events
                .into_iter()
                .next_back()
                .ok_or(Error::NotFound { what: Entity::Document })
        }
        .await;
        if shared.is_err() {
            self.discard_unrecorded(room, id, &blob).await;
        }
        shared
    }

    /// The bytes the room may still store under its quota; `None` without one.
    fn room_bytes_available(&self, state: &RoomState) -> Option<u64> {
        self.inner
            .config
            .max_room_bytes
            .map(|quota| quota.saturating_sub(state.document_bytes()))
    }

    /// Refuses `size` more bytes in a room they would take past its quota.
    fn check_room_bytes(&self, state: &RoomState, size: u64) -> Result<(), Error> {
        match (self.inner.config.max_room_bytes, self.room_bytes_available(state)) {
            (Some(quota), Some(available)) if size > available => Err(Error::QuotaExceeded { quota, available }),
            _ => Ok(()),
        }
    }

    /// Deletes the bytes of a share that failed, unless its event was written after all (an
    /// append whose answer was lost): an event must never name missing bytes. When that cannot
    /// be told, or the delete fails, the bytes stay for [`Rooms::sweep_orphan_documents`].
    async fn discard_unrecorded(&self, room: RoomId, document: DocumentId, blob: &BlobKey) {
        match self.load(room).await {
            Ok(state) if state.document(document).is_some() => {
                tracing::warn!(%room, %document, "a document was recorded although its append failed");
            }
            Ok(_) => {
                if let Err(e) = self.inner.blobs.delete(blob).await {
                    tracing::warn!(%room, blob = %blob, error = %e, "could not delete a refused upload");
                }
            }
            Err(e) => {
                tracing::warn!(%room, blob = %blob, error = %e, "could not tell whether a failed upload was recorded");
            }
        }
    }

    /// Deletes stored documents that no event names (their upload failed and the clean-up did
    /// not happen: a failed delete, a process that died) once they are older than the grace
    /// period ([`RoomsConfig::with_orphan_grace`](super::RoomsConfig::with_orphan_grace), by the
    /// blob store's dates), so that uploads under way are left alone. Blobs whose key is not a
    /// document of an existing room of this service are not touched. Needs a blob store that
    /// can [`list`](crate::BlobStore::list).
    ///
    /// Schedule it (hourly is plenty). A failed delete is logged and tried again next time.
    #[tracing::instrument(skip_all)]
    pub async fn sweep_orphan_documents(&self) -> Result<OrphanSweep, Error> {
        let cutoff = self.inner.clock.now().saturating_sub(self.inner.config.orphan_grace);
        let mut listing = self.inner.blobs.list(&BlobPrefix::everything());
        let mut report = OrphanSweep::default();
        // Stores list a room's blobs together (but for memory): load each room once in a row.
        let mut room_state: Option<crate::RoomState> = None;
        while let Some(blob) = listing.next().await {
            let blob = blob?;
            report.examined += 1;
            let Some((room, document)) = blob.key.document_ids() else {
                continue;
            };
            if blob.modified > cutoff {
                continue;
            }
            if room_state.as_ref().is_none_or(|s| s.room() != room) {
                room_state = self.inner.store.load_room(room).await?;
            }
            let Some(state) = &room_state else {
                continue;
            };
            let ours = BlobKey::for_document(state.tenant(), room, document) == blob.key;
            // A merged room's documents are named by the room it was merged into.
            if !ours || state.document(document).is_some() || state.merged_into().is_some() {
                continue;
            }
            report.orphans += 1;
            match self.inner.blobs.delete(&blob.key).await {
                Ok(()) => {
                    report.deleted += 1;
                    tracing::info!(%room, blob = %blob.key, "deleted a document no event names");
                }
                Err(e) => tracing::warn!(%room, blob = %blob.key, error = %e, "could not delete an orphan document"),
            }
        }
        Ok(report)
    }

    /// What the stored bytes are. The head decides, unless it was too short to tell: a ZIP
    /// archive (an Office document) is told by its last bytes, where its directory is; other
    /// formats (a legacy Office file whose directory lies further in, a JPEG with large
    /// metadata) by the whole document, within the upload limit. PDFs get their page count.
    async fn inspect_stored(&self, blob: &BlobKey, head: &[u8], info: &BlobInfo) -> Result<Inspection, Error> {
        let policy = &self.inner.config.documents;
        let needs_whole = |inspection: &Result<Inspection, Error>| match inspection {
            Ok(inspection) => matches!(inspection.kind, DocumentKind::Pdf { .. }),
            Err(_) => info.size > head.len() as u64,
        };
        if document::is_zip(head) && info.size > head.len() as u64 {
            // An archive's type is in its central directory, at the end: read only that.
            let tail_len = (document::ZIP_TAIL_LEN as u64).min(info.size);
            let tail = self
                .read(blob, Some(ByteRange::new(info.size - tail_len..info.size)?))
                .await?;
            return document::inspect_with_tail(head, &tail, policy);
        }
        let mut inspection = document::inspect(head, policy);
        if !needs_whole(&inspection) {
            return inspection;
        }
        // Whole documents are held in memory and PDFs parsed: a few at a time, so that hostile
        // uploads cannot add up to exhaust memory or CPU.
        let permit = self
            .inner
            .inspection_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::internal("document inspection", e))?;
        let bytes = self.read(blob, None).await?;
        if inspection.is_err() {
            inspection = document::inspect(&bytes, policy);
        }
        let mut inspection = inspection?;
        if let DocumentKind::Pdf { .. } = inspection.kind {
            // The permit goes with the parse: a parse that times out still counts until it ends.
            let pages = document::pdf_page_count_holding(bytes, policy, permit).await?;
            inspection.kind = DocumentKind::Pdf { pages };
        }
        Ok(inspection)
    }

    /// The stored bytes of `blob`, or of `range` of it, in memory.
    async fn read(&self, blob: &BlobKey, range: Option<ByteRange>) -> Result<Bytes, Error> {
        let mut download = self
            .inner
            .blobs
            .get(blob, range)
            .await?
            .ok_or(Error::NotFound { what: Entity::Document })?;
        let len = download.range.end - download.range.start;
        let mut bytes = BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
        while let Some(chunk) = download.stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(bytes.freeze())
    }

    /// Opens a document of the room, or a byte range of it (for PDF viewers that fetch ranges).
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn open_document(
        &self,
        actor: &Actor,
        room: RoomId,
        document: DocumentId,
        range: Option<ByteRange>,
    ) -> Result<DocumentDownload, Error> {
        let state = self.readable(actor, room, Operation::Read).await?;
        let meta = state
            .document(document)
            .cloned()
            .ok_or(Error::NotFound { what: Entity::Document })?;
        let download = self
            .inner
            .blobs
            .get(&meta.blob, range)
            .await?
            .ok_or(Error::NotFound { what: Entity::Document })?;
        let disposition = document::disposition(&meta.media_type);
        Ok(DocumentDownload {
            // Names stored before they were given their type's extension get it here.
            content_disposition: document::content_disposition_header(
                disposition,
                &document::typed_name(&meta.name, &meta.media_type),
            ),
            disposition,
            range: download.range,
            stream: download.stream,
            meta,
        })
    }
}
