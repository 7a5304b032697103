//! The conformance kit: checks that a [`RoomStore`](crate::RoomStore) or [`BlobStore`](crate::BlobStore) keeps
//! its contract.
//!
//! **Not a stable API**: checks are added as contracts are sharpened.
//!
//! [`faults`] wraps stores and notifiers to fail, stall or time out on chosen calls.
//!
//! Each check is a plain async function taking the store; a failed check panics with what went
//! wrong. The macros turn the whole list into one `#[tokio::test]` per check, so the first
//! failure does not hide the rest. Your crate needs `tokio` (features `macros`, `rt`) as a
//! dev-dependency. The fixture returns anything that dereferences to the store, so that a store
//! on disk can keep its temp dir alive for the length of the check.
//!
//! ```
//! // tests/conformance.rs of your adapter crate; here, the in-memory stores.
//! use collab_core::memory::{MemoryBlobStore, MemoryRoomStore};
//!
//! async fn room_store() -> Box<MemoryRoomStore> {
//!     Box::new(MemoryRoomStore::new())
//! }
//!
//! async fn blob_store() -> Box<MemoryBlobStore> {
//!     Box::new(MemoryBlobStore::new())
//! }
//!
//! collab_core::room_store_conformance!(room_store);
//! collab_core::blob_store_conformance!(blob_store);
//! # fn main() {}
//! ```
//!
//! A store on a server the machine may lack (a database) passes `optional`: its fixture returns
//! an `Option`, and `None` skips the check. The fixture must then say loudly why (and fail
//! where the server is required, as in CI): `room_store_conformance!(store, optional)`.

// A test kit reports a broken contract by panicking, like `assert!`.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod blob_store;
pub mod counter_store;
pub mod faults;
pub mod files;
pub mod room_store;

use crate::id::{IdGenerator, RandomIds};

/// A random id, so that checks sharing a store never meet each other's rooms, keys or rows.
fn new_id() -> u128 {
    RandomIds.next_id().expect("os random number generator")
}

/// Emits one `#[tokio::test]` per [`room_store`] check, each on a store from `$make().await`:
/// anything that dereferences to the store (a `Box`, or a guard that also owns its temp dir).
#[macro_export]
macro_rules! room_store_conformance {
    ($make:path $(, $optional:ident)?) => {
        $crate::__conformance_tests!(
            $make $(, $optional)?,
            room_store,
            [
                append_then_read_in_order,
                stale_expected_seq_is_a_conflict,
                malformed_appends_are_refused,
                a_refused_append_writes_nothing,
                read_events_pagination_edges,
                latest_events_are_newest_first,
                unknown_rooms_read_empty,
                summary_follows_appends,
                list_rooms_pages_newest_first,
                list_rooms_filters,
                list_rooms_refuses_bad_queries,
                credentials_are_found_by_hash,
                credentials_can_be_added_alone,
                outbox_claims_lease_and_reschedule,
                completing_outbox_rows_is_atomic,
                outbox_stats_count_queued_and_due,
                every_outbox_kind_comes_back_as_queued,
                outbox_rows_of_a_subject_wait_their_turn,
                a_row_queued_while_the_one_before_goes_is_claimable,
                idle_rooms_are_active_and_idle,
                concurrent_appends_have_one_winner,
                racing_appends_over_many_rooms_are_answered_one_by_one,
                erase_redacts_the_log_and_drops_credentials_and_outbox,
                ended_rooms_by_tenant_and_end,
                purge_deletes_every_row,
                merge_writes_both_rooms,
                a_refused_merge_writes_nothing,
                settings_changes_follow_one_another,
                concurrent_settings_changes_have_one_winner,
            ]
        );
    };
}

/// Emits one `#[tokio::test]` per [`blob_store`] check, each on a store from `$make().await`:
/// anything that dereferences to the store.
#[macro_export]
macro_rules! blob_store_conformance {
    ($make:path $(, $optional:ident)?) => {
        $crate::__conformance_tests!(
            $make $(, $optional)?,
            blob_store,
            [
                put_then_get_round_trips,
                the_size_limit_is_enforced_while_streaming,
                exactly_the_limit_is_accepted,
                empty_blobs_round_trip,
                ranges_at_the_edges,
                missing_keys_are_none,
                an_interrupted_upload_leaves_nothing,
                put_replaces,
                listing_finds_what_is_stored,
                uploads_under_way_are_not_listed,
            ]
        );
    };
}

/// Emits one `#[tokio::test]` per [`counter_store`] check, each on a store from `$make().await`:
/// anything that dereferences to the store.
#[macro_export]
macro_rules! counter_store_conformance {
    ($make:path $(, $optional:ident)?) => {
        $crate::__conformance_tests!(
            $make $(, $optional)?,
            counter_store,
            [
                hits_are_counted_up_to_the_limit,
                the_window_slides,
                concurrent_hits_never_pass_the_limit,
                old_hits_are_forgotten,
            ]
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($make:path, optional, $module:ident, [$($check:ident),* $(,)?]) => {
        $(
            #[tokio::test]
            async fn $check() {
                let Some(store) = $make().await else {
                    return;
                };
                $crate::testing::$module::$check(&*store).await;
            }
        )*
    };
    ($make:path, $module:ident, [$($check:ident),* $(,)?]) => {
        $(
            #[tokio::test]
            async fn $check() {
                let store = $make().await;
                $crate::testing::$module::$check(&*store).await;
            }
        )*
    };
}
