//! The core conformance kit against object_store's `InMemory`, `LocalFileSystem` in a temp dir, and a real S3 server in the process.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ops::Deref;

use collab_store_s3::test_server::TestS3Server;
use collab_store_s3::{Durability, ObjectBlobStore};

/// A store and what must outlive it: its temp dir, its server.
struct Fixture<T> {
    store: ObjectBlobStore,
    _keep: T,
}

impl<T> Deref for Fixture<T> {
    type Target = ObjectBlobStore;

    fn deref(&self) -> &ObjectBlobStore {
        &self.store
    }
}

mod memory {
    async fn store() -> Box<collab_store_s3::ObjectBlobStore> {
        Box::new(
            collab_store_s3::ObjectBlobStore::memory()
                .build()
                .expect("memory store"),
        )
    }

    collab_core::blob_store_conformance!(store);
}

mod local_files {
    use super::*;

    async fn store() -> Fixture<tempfile::TempDir> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ObjectBlobStore::local(dir.path(), Durability::Synced)
            .expect("local store")
            .prefix("documents")
            .build()
            .expect("valid settings");
        Fixture { store, _keep: dir }
    }

    collab_core::blob_store_conformance!(store);
}

mod s3_server {
    use super::*;

    async fn store() -> Fixture<(TestS3Server, tempfile::TempDir)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestS3Server::start(dir.path()).await.expect("S3 server");
        let store = ObjectBlobStore::s3(&server.config())
            .expect("s3 store")
            .prefix("documents")
            .build()
            .expect("valid settings");
        Fixture {
            store,
            _keep: (server, dir),
        }
    }

    collab_core::blob_store_conformance!(store);
}
