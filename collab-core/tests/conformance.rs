//! The conformance kit against the in-memory stores.

use collab_core::memory::{MemoryBlobStore, MemoryRoomStore};

async fn room_store() -> Box<MemoryRoomStore> {
    Box::new(MemoryRoomStore::new())
}

async fn blob_store() -> Box<MemoryBlobStore> {
    Box::new(MemoryBlobStore::new())
}

collab_core::room_store_conformance!(room_store);
collab_core::blob_store_conformance!(blob_store);
