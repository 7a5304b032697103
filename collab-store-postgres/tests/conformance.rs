//! The core conformance kit against the machine's PostgreSQL, each check in a schema of its own.

use collab_store_postgres::testing::TestStore;

async fn store() -> Option<TestStore> {
    TestStore::create("collab-store-postgres conformance").await
}

collab_core::room_store_conformance!(store, optional);
collab_core::counter_store_conformance!(store, optional);
