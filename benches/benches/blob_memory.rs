//! Peak memory of one 256 MiB streamed upload through `ObjectBlobStore::put`: the growth of
//! the process's RSS over the upload, sampled every millisecond, for local files and for the
//! S3 server in the process (whose own buffers count too). Each chunk of the upload stream is
//! freshly allocated, as a server reading a request body would do. Goal: at most 32 MiB.

use std::time::{Duration, Instant};

use collab_benches::blobs::{fresh_chunks, key, local_store, s3_store};
use collab_benches::{PeakRss, fixture};
use collab_core::BlobStore;
use collab_store_s3::{Durability, ObjectBlobStore};

const MIB: u64 = 1024 * 1024;
const SIZE: u64 = 256 * MIB;

/// Uploads `SIZE` bytes and returns the peak RSS growth over the RSS before it, and the time.
async fn peak_growth(store: &ObjectBlobStore) -> (u64, Duration) {
    // One small upload first, so that connection pools and runtime buffers exist already.
    fixture(store.put(&key(0), fresh_chunks(1024), u64::MAX).await);
    let peak = PeakRss::start();
    let started = Instant::now();
    let info = fixture(store.put(&key(1), fresh_chunks(SIZE as usize), SIZE).await);
    let elapsed = started.elapsed();
    let growth = peak.growth();
    assert_eq!(info.size, SIZE);
    (growth, elapsed)
}

fn main() {
    let rt = fixture(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| collab_core::Error::backend("tokio", e)),
    );
    rt.block_on(async {
        let (local, _dir) = local_store(Durability::Synced);
        let (s3, _server, _s3_dir) = s3_store().await;
        println!(
            "one streamed upload of {} MiB (64 KiB chunks, 8 MiB parts, 2 in flight)",
            SIZE / MIB
        );
        for (name, store) in [("local files", &local), ("S3 server in process", &s3)] {
            let (growth, elapsed) = peak_growth(store).await;
            println!(
                "{name}: peak RSS growth {:.1} MiB (goal: <= 32 MiB), {:.0} MiB/s",
                growth as f64 / MIB as f64,
                SIZE as f64 / MIB as f64 / elapsed.as_secs_f64()
            );
        }
    });
}
