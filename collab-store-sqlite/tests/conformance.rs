//! The core conformance kit against a real database file in a temp dir.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ops::Deref;

use collab_store_sqlite::SqliteRoomStore;

/// A store and the temp dir its file lives in, removed when the check ends.
struct TempStore {
    store: SqliteRoomStore,
    _dir: tempfile::TempDir,
}

impl Deref for TempStore {
    type Target = SqliteRoomStore;

    fn deref(&self) -> &SqliteRoomStore {
        &self.store
    }
}

async fn store() -> TempStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteRoomStore::open(dir.path().join("rooms.db")).await.expect("open");
    TempStore { store, _dir: dir }
}

collab_core::room_store_conformance!(store);
collab_core::counter_store_conformance!(store);
