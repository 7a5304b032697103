//! Upload throughput of 1 MiB and 64 MiB documents through `ObjectBlobStore::put` (streamed in
//! 64 KiB chunks: limit, SHA-256, one put or a multipart upload) vs a raw object_store put of
//! the same bytes (already in memory, one request) to the same store, in the same run: local
//! files (fsynced, the default, and buffered, which leaves out the disk's flush) and a real S3
//! server in the process (s3s + s3s-fs). Goal: at least 0.8x raw.
//!
//! 64 MiB also has `raw_multipart`: object_store's own `WriteMultipart` with the same part size
//! and parts in flight. A streamed upload of unknown length must go in parts to keep its memory
//! bounded; a raw put holds the whole document in memory. On s3s-fs, completing a multipart
//! upload copies the parts into the object on the same two cores, a cost real S3 pays on its side.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use collab_benches::blobs::{key, local_store, s3_store, slices};
use collab_benches::fixture;
use collab_core::BlobStore;
use collab_store_s3::object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use collab_store_s3::{Durability, ObjectBlobStore};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const MIB: usize = 1024 * 1024;

fn runtime() -> tokio::runtime::Runtime {
    fixture(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| collab_core::Error::backend("tokio", e)),
    )
}

fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

/// Time for `iters` raw puts of `data`.
async fn raw(store: &ObjectBlobStore, data: &Bytes, iters: u64) -> Duration {
    let location = store.location(&key(1));
    let started = Instant::now();
    for _ in 0..iters {
        let result = store
            .object_store()
            .as_ref()
            .put(&location, PutPayload::from(data.clone()))
            .await;
        fixture(result.map_err(|e| collab_core::Error::backend("raw put", e)));
    }
    started.elapsed()
}

/// Time for `iters` raw multipart uploads of `data`, in parts as big and as many in flight as
/// the BlobStore's defaults (8 MiB, 2).
async fn raw_multipart(store: &ObjectBlobStore, data: &Bytes, iters: u64) -> Duration {
    let location = store.location(&key(3));
    let started = Instant::now();
    for _ in 0..iters {
        let upload = store.object_store().as_ref().put_multipart(&location).await;
        let upload = fixture(upload.map_err(|e| collab_core::Error::backend("raw multipart", e)));
        let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 * MIB);
        for chunk in data.chunks(64 * 1024) {
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
    }
    started.elapsed()
}

/// Time for `iters` streamed uploads of `data` through the BlobStore.
async fn ours(store: &ObjectBlobStore, data: &Bytes, iters: u64) -> Duration {
    let key = key(2);
    let started = Instant::now();
    for _ in 0..iters {
        fixture(store.put(&key, slices(data), u64::MAX).await);
    }
    started.elapsed()
}

fn upload(c: &mut Criterion) {
    let rt = runtime();
    let (synced, _dir) = local_store(Durability::Synced);
    let (buffered, _buffered_dir) = local_store(Durability::Buffered);
    let (s3, _server, _s3_dir) = rt.block_on(s3_store());
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
            let id = |name: &str| BenchmarkId::new(format!("{backend}/{name}"), format!("{mib}MiB"));
            group.bench_function(id("raw_put"), |b| {
                b.iter_custom(|iters| rt.block_on(raw(store, &data, iters)))
            });
            if mib > 8 {
                group.bench_function(id("raw_multipart"), |b| {
                    b.iter_custom(|iters| rt.block_on(raw_multipart(store, &data, iters)))
                });
            }
            group.bench_function(id("blob_store_put"), |b| {
                b.iter_custom(|iters| rt.block_on(ours(store, &data, iters)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, upload);
criterion_main!(benches);
