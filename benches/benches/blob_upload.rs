//! Upload throughput of 1 MiB and 64 MiB documents through `ObjectBlobStore::put` (streamed in
//! 64 KiB chunks: limit, SHA-256, one put or a multipart upload) vs a raw object_store put of
//! the same bytes in the same 64 KiB chunks (all in memory already, one request) to the same
//! store, in the same run: local files (fsynced, the default, and buffered, which leaves out
//! the disk's flush) and a real S3 server in the process (s3s + s3s-fs). Goal: at least 0.8x raw.
//!
//! `raw_put_contiguous` puts the bytes as one buffer instead: local files then write them with
//! one system call instead of one per chunk, which a body that arrives in chunks cannot have
//! without copying it.
//!
//! Every upload goes to a key that does not exist, as the product's generated keys do: the
//! previous upload is deleted after it, outside the timing. Replacing an object would time the
//! deletion of the old one too (on these disks, mounted with `discard`, unlinking a 64 MiB file
//! waits ~20-30 ms for its blocks to be discarded), the same for both sides, which hides part
//! of the difference.
//!
//! The machine is shared: its load moves between two criterion measurements taken seconds
//! apart. So a full run (`cargo bench ... --bench blob_upload`, no filter) ends with *paired*
//! figures: rounds of one upload of each kind back to back, in rotating order, and the median
//! over the rounds of each per-round ratio, which a load change hits on both sides alike.
//!
//! 64 MiB also has `raw_multipart`: object_store's own `WriteMultipart` with the same part size
//! and parts in flight. A streamed upload of unknown length must go in parts to keep its memory
//! bounded; a raw put holds the whole document in memory. On s3s-fs, completing a multipart
//! upload copies the parts into the object on the same two cores, a cost real S3 pays on its side.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use collab_benches::blobs::{CHUNK, key, local_store, s3_store, slices};
use collab_benches::{fixture, full_run, median, runtime};
use collab_core::BlobStore;
use collab_core::blob::BlobKey;
use collab_store_s3::object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use collab_store_s3::{Durability, ObjectBlobStore};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};

const MIB: usize = 1024 * 1024;

fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

/// `data` as a put payload of the same [`CHUNK`]-byte slices an upload stream yields (no copy).
fn chunked(data: &Bytes) -> PutPayload {
    data.chunks(CHUNK).map(|chunk| data.slice_ref(chunk)).collect()
}

/// Deletes what an upload stored, so the next one does not replace it (not timed).
async fn forget(store: &ObjectBlobStore, key: &BlobKey) {
    fixture(store.delete(key).await);
}

/// Stores a small document that stays, so the benches' room folder is never removed and
/// recreated (local files clean up empty folders).
async fn keep_room(store: &ObjectBlobStore) {
    fixture(store.put(&key(0), slices(&pattern(1024)), u64::MAX).await);
}

/// Time for `iters` raw puts of `data`, as one buffer (`contiguous`) or in [`CHUNK`]s.
async fn raw(store: &ObjectBlobStore, data: &Bytes, iters: u64, contiguous: bool) -> Duration {
    let key = key(1);
    let location = store.location(&key);
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let payload = match contiguous {
            true => PutPayload::from(data.clone()),
            false => chunked(data),
        };
        let started = Instant::now();
        let result = store.object_store().as_ref().put(&location, payload).await;
        spent += started.elapsed();
        fixture(result.map_err(|e| collab_core::Error::backend("raw put", e)));
        forget(store, &key).await;
    }
    spent
}

/// Time for `iters` raw multipart uploads of `data`, in parts as big and as many in flight as
/// the BlobStore's defaults (8 MiB, 2).
async fn raw_multipart(store: &ObjectBlobStore, data: &Bytes, iters: u64) -> Duration {
    let key = key(3);
    let location = store.location(&key);
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        let upload = store.object_store().as_ref().put_multipart(&location).await;
        let upload = fixture(upload.map_err(|e| collab_core::Error::backend("raw multipart", e)));
        let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 * MIB);
        for chunk in data.chunks(CHUNK) {
            let capacity = writer.wait_for_capacity(2).await;
            fixture(capacity.map_err(|e| collab_core::Error::backend("raw multipart", e)));
            writer.put(data.slice_ref(chunk));
        }
        fixture(
            writer
                .finish()
                .await
                .map_err(|e| collab_core::Error::backend("raw multipart", e)),
        );
        spent += started.elapsed();
        forget(store, &key).await;
    }
    spent
}

/// Time for `iters` streamed uploads of `data` through the BlobStore.
async fn ours(store: &ObjectBlobStore, data: &Bytes, iters: u64) -> Duration {
    let key = key(2);
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        fixture(store.put(&key, slices(data), u64::MAX).await);
        spent += started.elapsed();
        forget(store, &key).await;
    }
    spent
}

fn upload(c: &mut Criterion) {
    let rt = runtime();
    let (synced, _dir) = local_store(Durability::Synced);
    let (buffered, _buffered_dir) = local_store(Durability::Buffered);
    let (s3, _server, _s3_dir) = rt.block_on(s3_store());
    for store in [&synced, &buffered, &s3] {
        rt.block_on(keep_room(store));
    }
    let mut group = c.benchmark_group("blob_upload");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    for (backend, store) in [
        ("local_synced", &synced),
        ("local_buffered", &buffered),
        ("s3_server", &s3),
    ] {
        for mib in [1usize, 64] {
            let data = pattern(mib * MIB);
            group.throughput(Throughput::Bytes(data.len() as u64));
            for kind in Kind::compared(data.len()) {
                let id = BenchmarkId::new(format!("{backend}/{}", kind.name()), format!("{mib}MiB"));
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| rt.block_on(kind.time(store, &data, iters)))
                });
            }
        }
    }
    group.finish();
}

/// The uploads the paired figures compare.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    RawPut,
    RawContiguous,
    RawMultipart,
    Ours,
}

impl Kind {
    /// The uploads compared for a document of `len` bytes: a raw multipart upload only for one
    /// our store uploads in parts.
    fn compared(len: usize) -> Vec<Kind> {
        let mut kinds = vec![Kind::RawPut, Kind::RawContiguous];
        if len > 8 * MIB {
            kinds.push(Kind::RawMultipart);
        }
        kinds.push(Kind::Ours);
        kinds
    }

    fn name(self) -> &'static str {
        match self {
            Kind::RawPut => "raw_put",
            Kind::RawContiguous => "raw_put_contiguous",
            Kind::RawMultipart => "raw_multipart",
            Kind::Ours => "blob_store_put",
        }
    }

    async fn time(self, store: &ObjectBlobStore, data: &Bytes, iters: u64) -> Duration {
        match self {
            Kind::RawPut => raw(store, data, iters, false).await,
            Kind::RawContiguous => raw(store, data, iters, true).await,
            Kind::RawMultipart => raw_multipart(store, data, iters).await,
            Kind::Ours => ours(store, data, iters).await,
        }
    }
}

/// `rounds` rounds of `iters` uploads of each kind, in an order that rotates every round;
/// prints each kind's median MiB/s and the median of ours/kind over the rounds.
async fn paired(name: &str, store: &ObjectBlobStore, data: &Bytes, rounds: usize, iters: u64) {
    let kinds = Kind::compared(data.len());
    let mut times: Vec<(Kind, Vec<f64>)> = kinds.iter().map(|&kind| (kind, Vec::new())).collect();
    for round in 0..rounds {
        for i in 0..kinds.len() {
            let kind = kinds[(round + i) % kinds.len()];
            let elapsed = kind.time(store, data, iters).await.as_secs_f64();
            if let Some((_, list)) = times.iter_mut().find(|(k, _)| *k == kind) {
                list.push(elapsed);
            }
        }
    }
    let mib = (data.len() as u64 * iters) as f64 / MIB as f64;
    let ours = times
        .iter()
        .find(|(k, _)| *k == Kind::Ours)
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let mut line = format!(
        "paired {name}/{}MiB, {rounds} rounds: blob_store_put {:.0} MiB/s",
        data.len() / MIB,
        mib / median(ours.clone())
    );
    for (kind, list) in times.iter().filter(|(k, _)| *k != Kind::Ours) {
        let ratios = list.iter().zip(&ours).map(|(raw, ours)| raw / ours).collect();
        line += &format!(
            "; {} {:.0} MiB/s, ours/{} {:.2}x",
            kind.name(),
            mib / median(list.clone()),
            kind.name(),
            median(ratios)
        );
    }
    println!("{line}");
}

/// The paired figures for every store and size.
fn paired_all() {
    let rt = runtime();
    let (synced, _dir) = local_store(Durability::Synced);
    let (buffered, _buffered_dir) = local_store(Durability::Buffered);
    let (s3, _server, _s3_dir) = rt.block_on(s3_store());
    rt.block_on(async {
        for store in [&synced, &buffered, &s3] {
            keep_room(store).await;
        }
        for (backend, store) in [
            ("local_synced", &synced),
            ("local_buffered", &buffered),
            ("s3_server", &s3),
        ] {
            paired(backend, store, &pattern(MIB), 30, 4).await;
            paired(backend, store, &pattern(64 * MIB), 11, 1).await;
        }
    });
}

criterion_group!(benches, upload);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if full_run() {
        paired_all();
    }
}
