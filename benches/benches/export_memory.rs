//! Peak memory of one room's export (`Rooms::export_room`) on SQLite and local files: a room
//! with 100,000 chat messages and 1 GiB of documents (41 text files of 25 MiB), its archive
//! read to the end as fast as the process can; the growth of the process's RSS over the
//! export, sampled every millisecond. Goal (issue 16): at most 32 MiB.

use std::time::Instant;

use bytes::Bytes;
use collab_benches::{PeakRss, agent, fixture, runtime};
use collab_core::rooms::{Rooms, RoomsConfig, Upload};
use collab_core::{Error, RoomId};
use collab_store_s3::{Durability, ObjectBlobStore};
use collab_store_sqlite::SqliteRoomStore;
use futures_util::StreamExt;

const MIB: usize = 1024 * 1024;
const MESSAGES: usize = 100_000;
const POSTERS: usize = 16;
const DOCUMENTS: usize = 41;
const DOCUMENT_BYTES: usize = 25 * MIB;

/// A text document of `DOCUMENT_BYTES` in freshly made 64 KiB chunks.
fn document(n: usize) -> Upload {
    let line = format!("line of document {n}, as a scanned form's text might read\n");
    let chunk = Bytes::from(line.repeat(64 * 1024 / line.len()));
    let chunks = DOCUMENT_BYTES / chunk.len();
    Upload {
        file_name: format!("document-{n}.txt"),
        data: Box::pin(futures_util::stream::iter(
            (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
        )),
    }
}

/// Fills `room` with `MESSAGES` posts and `DOCUMENTS` documents.
async fn fill(rooms: &Rooms, room: RoomId) {
    let posters: Vec<_> = (0..POSTERS)
        .map(|poster| {
            let rooms = rooms.clone();
            tokio::spawn(async move {
                for i in 0..MESSAGES / POSTERS {
                    let text = format!("Poster {poster}, message {i}: could you send the signed form?");
                    fixture(rooms.post_message(&agent(), room, &text, None).await);
                }
            })
        })
        .collect();
    for poster in posters {
        fixture(poster.await.map_err(|e| Error::backend("task", e)));
    }
    for n in 0..DOCUMENTS {
        fixture(rooms.share_document(&agent(), room, document(n)).await);
    }
}

fn main() {
    let rt = runtime();
    rt.block_on(async {
        let dir = fixture(tempfile::tempdir().map_err(|e| Error::backend("temp dir", e)));
        let store = fixture(SqliteRoomStore::open(dir.path().join("rooms.db")).await);
        let blobs = fixture(
            fixture(ObjectBlobStore::local(
                dir.path().join("documents"),
                Durability::Buffered,
            ))
            .build(),
        );
        let rooms = Rooms::builder()
            .room_store(store)
            .blob_store(blobs)
            .config(fixture(
                RoomsConfig::default().with_max_document_bytes(DOCUMENT_BYTES as u64),
            ))
            .build();
        let room = fixture(rooms.create_room(&agent()).await).room;
        let started = Instant::now();
        fill(&rooms, room).await;
        println!(
            "room: {MESSAGES} messages and {DOCUMENTS} documents of {} MiB ({} MiB), made in {:.1} s",
            DOCUMENT_BYTES / MIB,
            DOCUMENTS * DOCUMENT_BYTES / MIB,
            started.elapsed().as_secs_f64()
        );

        let peak = PeakRss::start();
        let started = Instant::now();
        let mut archive = fixture(rooms.export_room(&agent(), room).await).stream;
        let mut bytes = 0usize;
        while let Some(chunk) = archive.next().await {
            bytes += fixture(chunk).len();
        }
        let elapsed = started.elapsed();
        let growth = peak.growth();
        assert!(bytes > DOCUMENTS * DOCUMENT_BYTES, "the whole archive: {bytes} bytes");
        println!(
            "export: {:.0} MiB archive in {:.1} s ({:.0} MiB/s); peak RSS growth {:.1} MiB (goal: at most 32 MiB)",
            bytes as f64 / MIB as f64,
            elapsed.as_secs_f64(),
            bytes as f64 / MIB as f64 / elapsed.as_secs_f64(),
            growth as f64 / MIB as f64
        );
    });
}
