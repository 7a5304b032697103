//! Memory per idle subscription: the RSS growth of 100,000 idle `Rooms::subscribe` streams, each
//! awaited by its own task, vs 100,000 raw tasks each waiting on a `tokio::sync::broadcast`
//! receiver, measured in the same process. Prints both and the ratio (goal: at most 2x raw).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use collab_benches::{agent, fixture, rss_bytes, service_with_room};
use collab_core::rooms::Rooms;
use futures_util::StreamExt;
use tokio::sync::broadcast;

const SUBSCRIPTIONS: usize = 100_000;

/// Waits until `count` spawned tasks have parked.
async fn settle(started: &AtomicUsize, count: usize) {
    while started.load(Ordering::Relaxed) < count {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}

fn main() {
    let rt = fixture(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .map_err(|e| collab_core::Error::backend("tokio", e)),
    );
    rt.block_on(async {
        let (rooms, room) = service_with_room(Rooms::builder()).await;
        let (sender, _) = broadcast::channel::<Arc<collab_core::Event>>(1_024);
        let before = rss_bytes().unwrap_or_else(|| panic!("this bench reads /proc/self/statm (Linux only)"));

        let started = Arc::new(AtomicUsize::new(0));
        let mut raw_tasks = Vec::with_capacity(SUBSCRIPTIONS);
        for _ in 0..SUBSCRIPTIONS {
            let mut receiver = sender.subscribe();
            let started = started.clone();
            raw_tasks.push(tokio::spawn(async move {
                started.fetch_add(1, Ordering::Relaxed);
                let _ = receiver.recv().await;
            }));
        }
        settle(&started, SUBSCRIPTIONS).await;
        let after_raw = rss_bytes().unwrap_or(0);

        let started = Arc::new(AtomicUsize::new(0));
        let mut our_tasks = Vec::with_capacity(SUBSCRIPTIONS);
        let from = fixture(rooms.room(&agent(), room).await).seq();
        for _ in 0..SUBSCRIPTIONS {
            let mut stream = fixture(rooms.subscribe(&agent(), room, from).await);
            let started = started.clone();
            our_tasks.push(tokio::spawn(async move {
                started.fetch_add(1, Ordering::Relaxed);
                let _ = stream.next().await;
            }));
        }
        settle(&started, SUBSCRIPTIONS).await;
        let after_ours = rss_bytes().unwrap_or(0);

        let raw = after_raw.saturating_sub(before) as f64 / SUBSCRIPTIONS as f64;
        let ours = after_ours.saturating_sub(after_raw) as f64 / SUBSCRIPTIONS as f64;
        println!("idle subscriptions: {SUBSCRIPTIONS}");
        println!("raw broadcast task: {:.0} bytes each ({:.2} KiB)", raw, raw / 1024.0);
        println!(
            "Rooms::subscribe task: {:.0} bytes each ({:.2} KiB)",
            ours,
            ours / 1024.0
        );
        println!("ratio ours/raw: {:.2} (goal: <= 2.00)", ours / raw);
        for task in raw_tasks.into_iter().chain(our_tasks) {
            task.abort();
        }
    });
}
