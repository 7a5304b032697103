//! The conformance kit against the in-memory stores.

use collab_core::guard::MemoryCounterStore;
use collab_core::memory::{MemoryBlobStore, MemoryRoomStore};

async fn room_store() -> Box<MemoryRoomStore> {
    Box::new(MemoryRoomStore::new())
}

async fn blob_store() -> Box<MemoryBlobStore> {
    Box::new(MemoryBlobStore::new())
}

collab_core::room_store_conformance!(room_store);
collab_core::blob_store_conformance!(blob_store);

async fn counter_store() -> Box<MemoryCounterStore> {
    Box::new(MemoryCounterStore::new())
}

collab_core::counter_store_conformance!(counter_store);
