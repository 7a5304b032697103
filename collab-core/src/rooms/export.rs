//! A room's whole record as one ZIP archive, streamed: its events as JSON lines, a transcript
//! people can read, and its documents.

use std::fmt::Write as _;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Operation, Rooms};
use crate::blob::DownloadStream;
use crate::decide::Actor;
use crate::document::{self, escape_html};
use crate::error::Error;
use crate::event::{DocumentMeta, Event, EventActor, EventData, Seq};
use crate::id::RoomId;
use crate::zip::ZipWriter;

/// A room's record, as [`Rooms::export_room`] streams it.
pub struct RoomExport {
    /// A name for the file: `room-<id>.zip`.
    pub file_name: String,
    /// The archive's bytes. An error ends it (the archive is then incomplete: a reader finds no
    /// central directory).
    pub stream: DownloadStream,
}

impl std::fmt::Debug for RoomExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomExport")
            .field("file_name", &self.file_name)
            .finish_non_exhaustive()
    }
}

/// Events read from the store at a time.
const PAGE: usize = 1_000;
/// Small pieces of the archive are gathered up to this size before they are sent.
const CHUNK: usize = 64 * 1024;
/// Chunks produced ahead of the reader: with [`CHUNK`] (or a document's own chunk size), what
/// an export holds in memory whatever the room's size.
const AHEAD: usize = 4;

impl Rooms {
    /// The room's whole record as a ZIP archive, for an agent of its tenant (and the
    /// [`AccessHook`](super::AccessHook), as [`Operation::Export`]):
    ///
    /// - `events.jsonl`: every event up to now, one JSON object per line, as stored (an erased
    ///   room's tombstones included);
    /// - `transcript.html`: the conversation as a page a person reads, with links to the files;
    /// - `documents/<seq>-<name>`: each shared document's bytes, named by the event that shared it.
    ///
    /// The archive is produced while it is read, at flat memory whatever the room's size: a few
    /// 64 KiB chunks ahead of the reader, plus a few dozen bytes per document for the archive's
    /// directory. Events appended after the call are not in it.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn export_room(&self, actor: &Actor, room: RoomId) -> Result<RoomExport, Error> {
        let state = self.readable(actor, room, Operation::Export).await?;
        if !matches!(actor, Actor::Agent { .. }) {
            return Err(Error::Forbidden);
        }
        let (sender, receiver) = mpsc::channel(AHEAD);
        let rooms = self.clone();
        let last = state.seq();
        tokio::spawn(async move {
            let mut out = Output {
                sender,
                pending: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = rooms.write_export(room, last, &mut out).await {
                // Nobody to tell when the reader went away.
                let _ = out.sender.send(Err(e)).await;
            }
        });
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (chunk, receiver))
        });
        Ok(RoomExport {
            file_name: format!("room-{room}.zip"),
            stream: Box::pin(stream),
        })
    }

    async fn write_export(&self, room: RoomId, last: Seq, out: &mut Output) -> Result<(), Error> {
        let mut zip = ZipWriter::new(self.now().dos_date_time());

        out.put(zip.start_entry("events.jsonl")).await?;
        let mut pages = self.event_pages(room, last);
        while let Some(events) = pages.next().await? {
            for event in &events {
                let mut line = serde_json::to_vec(event).map_err(|e| Error::internal("export: an event", e))?;
                line.push(b'\n');
                zip.data(&line);
                out.put(line).await?;
            }
        }

        out.put(zip.start_entry("transcript.html")).await?;
        let head = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Room {room}</title>\
             <style>body{{font:15px/1.4 system-ui,sans-serif;max-width:50em;margin:2em auto}}\
             .who{{color:#555;font-size:.85em}}</style></head><body>\n<h1>Room {room}</h1>\n"
        )
        .into_bytes();
        zip.data(&head);
        out.put(head).await?;
        let mut pages = self.event_pages(room, last);
        while let Some(events) = pages.next().await? {
            let mut html = String::new();
            for event in &events {
                transcript_line(&mut html, event);
            }
            zip.data(html.as_bytes());
            out.put(html.into_bytes()).await?;
        }
        let foot = b"</body></html>\n".to_vec();
        zip.data(&foot);
        out.put(foot).await?;

        let mut pages = self.event_pages(room, last);
        while let Some(events) = pages.next().await? {
            for event in &events {
                let EventData::DocumentShared(meta) = &event.data else {
                    continue;
                };
                // A document whose bytes are gone (an erased room has none) is left out.
                let Some(download) = self.inner.blobs.get(&meta.blob, None).await? else {
                    continue;
                };
                out.put(zip.start_entry(&document_path(event.seq, meta))).await?;
                let mut bytes = download.stream;
                while let Some(chunk) = bytes.next().await {
                    let chunk = chunk?;
                    zip.data(&chunk);
                    out.send(chunk).await?;
                }
            }
        }
        out.put(zip.finish()).await?;
        out.flush().await
    }

    /// The room's events up to `last`, a page at a time.
    fn event_pages(&self, room: RoomId, last: Seq) -> EventPages<'_> {
        EventPages {
            rooms: self,
            room,
            after: Seq::ZERO,
            last,
        }
    }
}

struct EventPages<'a> {
    rooms: &'a Rooms,
    room: RoomId,
    after: Seq,
    last: Seq,
}

impl EventPages<'_> {
    async fn next(&mut self) -> Result<Option<Vec<Event>>, Error> {
        if self.after >= self.last {
            return Ok(None);
        }
        let mut events = self.rooms.inner.store.read_events(self.room, self.after, PAGE).await?;
        events.retain(|e| e.seq <= self.last);
        match events.last() {
            Some(event) => self.after = event.seq,
            None => return Ok(None),
        }
        Ok(Some(events))
    }
}

/// Where the archive's bytes go: to the reader, in chunks of at least [`CHUNK`] where pieces are
/// small.
struct Output {
    sender: mpsc::Sender<Result<Bytes, Error>>,
    pending: Vec<u8>,
}

impl Output {
    async fn put(&mut self, piece: Vec<u8>) -> Result<(), Error> {
        self.pending.extend_from_slice(&piece);
        if self.pending.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends `chunk` as it is, after what is pending.
    async fn send(&mut self, chunk: Bytes) -> Result<(), Error> {
        self.flush().await?;
        self.deliver(chunk).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK)));
        self.deliver(chunk).await
    }

    async fn deliver(&mut self, chunk: Bytes) -> Result<(), Error> {
        self.sender
            .send(Ok(chunk))
            .await
            .map_err(|_| Error::internal("export", "the reader went away"))
    }
}

/// The archive path of the document `meta` shared at `seq`: no directory, no control
/// character, and the extension of its type (names stored before they were given it get it
/// here).
fn document_path(seq: Seq, meta: &DocumentMeta) -> String {
    let name: String = document::typed_name(&meta.name, &meta.media_type)
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("documents/{seq}-{name}")
}

/// Appends `event` to the transcript as one paragraph.
fn transcript_line(html: &mut String, event: &Event) {
    let who = match &event.actor {
        EventActor::Agent(agent) => format!("agent {}", agent.as_str()),
        EventActor::Customer(_) => "customer".to_owned(),
        EventActor::System => "system".to_owned(),
    };
    let _ = write!(
        html,
        "<p id=\"e{}\"><span class=\"who\">{} · {}</span><br>",
        event.seq,
        event.at,
        escape_html(&who)
    );
    match &event.data {
        EventData::MessagePosted { text, .. } => html.push_str(&escape_html(text)),
        EventData::DocumentShared(meta) => {
            let _ = write!(
                html,
                "shared <a href=\"{}\">{}</a>",
                escape_html(&document_path(event.seq, meta)),
                escape_html(&meta.name)
            );
        }
        other => {
            let _ = write!(html, "<i>{}</i>", other.type_name().replace('_', " "));
        }
    }
    html.push_str("</p>\n");
}
