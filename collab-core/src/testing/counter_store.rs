//! Checks for [`CounterStore`] adapters.

use std::time::Duration;

use futures_util::future::join_all;

use crate::guard::{CounterStore, Hit};
use crate::time::Timestamp;

use super::new_id;

const T0: Timestamp = super::room_store::T0;
const HOUR: Duration = Duration::from_secs(3600);

fn fresh_key() -> String {
    format!("key-{:x}", new_id())
}

/// Up to `limit` hits are counted; the next is refused until the oldest leaves the window.
pub async fn hits_are_counted_up_to_the_limit(store: &dyn CounterStore) {
    let key = fresh_key();
    for (i, minutes) in [0u64, 10, 20].into_iter().enumerate() {
        let at = T0.saturating_add(Duration::from_secs(minutes * 60));
        let hit = store.hit(&key, at, HOUR, 3).await.expect("hit");
        assert_eq!(hit, Hit::Counted { count: i as u32 + 1 });
    }
    let at = T0.saturating_add(Duration::from_secs(30 * 60));
    let refused = store.hit(&key, at, HOUR, 3).await.expect("hit");
    assert_eq!(
        refused,
        Hit::Refused {
            retry_after: Duration::from_secs(30 * 60)
        }
    );
    let recent = store.recent(&key, T0.saturating_sub(HOUR)).await.expect("recent");
    assert_eq!(recent.len(), 3, "the refused hit was not counted");
    assert!(recent.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    let other = store.hit(&fresh_key(), at, HOUR, 3).await.expect("hit");
    assert_eq!(other, Hit::Counted { count: 1 }, "keys are independent");
}

/// Hits older than the window no longer count.
pub async fn the_window_slides(store: &dyn CounterStore) {
    let key = fresh_key();
    store.hit(&key, T0, HOUR, 1).await.expect("hit");
    let early = store
        .hit(&key, T0.saturating_add(HOUR / 2), HOUR, 1)
        .await
        .expect("hit");
    assert!(matches!(early, Hit::Refused { .. }));
    let later = store.hit(&key, T0.saturating_add(HOUR), HOUR, 1).await.expect("hit");
    assert_eq!(later, Hit::Counted { count: 1 });
    let since = store.recent(&key, T0).await.expect("recent");
    assert_eq!(since, [T0.saturating_add(HOUR)], "recent is after `since`");
}

/// Racing hits never let more than the limit through.
pub async fn concurrent_hits_never_pass_the_limit(store: &dyn CounterStore) {
    let key = fresh_key();
    let hits = join_all((0..20).map(|_| store.hit(&key, T0, HOUR, 5))).await;
    let counted = hits.iter().filter(|h| matches!(h, Ok(Hit::Counted { .. }))).count();
    assert_eq!(counted, 5, "{hits:?}");
}

/// Old hits of every key are forgotten on request; newer ones stay and still count. A store
/// without it answers [`Unsupported`](crate::Error::Unsupported).
pub async fn old_hits_are_forgotten(store: &dyn CounterStore) {
    let (old_only, mixed) = (fresh_key(), fresh_key());
    store.hit(&old_only, T0, HOUR, 10).await.expect("hit");
    store.hit(&mixed, T0, HOUR, 10).await.expect("hit");
    let later = T0.saturating_add(HOUR * 3);
    store.hit(&mixed, later, HOUR, 10).await.expect("hit");
    match store.forget_before(T0.saturating_add(HOUR)).await {
        // Other checks share the store: at least these two went.
        Ok(forgotten) => assert!(forgotten >= 2, "{forgotten}"),
        Err(crate::Error::Unsupported { .. }) => return,
        Err(e) => panic!("forget_before: {e}"),
    }
    assert_eq!(store.recent(&old_only, Timestamp::EPOCH).await.expect("recent"), []);
    assert_eq!(store.recent(&mixed, Timestamp::EPOCH).await.expect("recent"), [later]);
}
