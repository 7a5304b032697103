//! The outbox gauges the dispatcher reports (`collab_outbox_*`), read through a recorder of the
//! test's own: queued and due invites per channel and the age of the oldest due one, zero once
//! the queue is empty, and none at all from a store that cannot count its outbox.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::metrics::{Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use async_trait::async_trait;
use collab_core::memory::MemoryRoomStore;
use collab_core::metrics::{OUTBOX_DUE, OUTBOX_OLDEST_DUE_AGE, OUTBOX_QUEUED};
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt, RecordingNotifier};
use collab_core::rooms::{DeliveryConfig, Rooms, RoomsConfig};
use collab_core::store::{Append, ClaimedOutbox, Credential, EndedRooms, RoomPage, RoomQuery, RoomStore};
use collab_core::*;
use common::*;
use tokio::sync::Semaphore;

/// The gauges set through it, by `name{label="value"}`; counters and histograms go nowhere.
#[derive(Debug, Default)]
struct Gauges(Mutex<HashMap<String, Arc<Value>>>);

#[derive(Debug, Default)]
struct Value(AtomicU64);

impl GaugeFn for Value {
    fn increment(&self, by: f64) {
        self.set(f64::from_bits(self.0.load(Ordering::Relaxed)) + by);
    }

    fn decrement(&self, by: f64) {
        self.increment(-by);
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

impl Gauges {
    fn get(&self, name: &str, channel: &str) -> Option<f64> {
        let key = format!("{name}{{channel=\"{channel}\"}}");
        let gauges = self.0.lock().unwrap();
        gauges.get(&key).map(|v| f64::from_bits(v.0.load(Ordering::Relaxed)))
    }

    fn any_outbox(&self) -> bool {
        self.0.lock().unwrap().keys().any(|k| k.starts_with("collab_outbox_"))
    }
}

impl Recorder for Gauges {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let labels: Vec<String> = key.labels().map(|l| format!("{}=\"{}\"", l.key(), l.value())).collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        Gauge::from_arc(self.0.lock().unwrap().entry(name).or_default().clone())
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// A provider that accepts a message only once the test releases a permit for it.
#[derive(Debug)]
struct Held(Semaphore);

#[async_trait]
impl Notifier for Held {
    async fn send(&self, _: &Notification) -> Result<Receipt, NotifyError> {
        self.0.acquire().await.expect("open").forget();
        Ok(Receipt { provider_id: None })
    }
}

#[tokio::test(start_paused = true)]
async fn the_dispatcher_reports_queued_and_due_invites_and_the_oldest_ones_age() {
    let gauges = Gauges::default();
    let _recorder = ::metrics::set_default_local_recorder(&gauges);
    let provider = Arc::new(Held(Semaphore::new(0)));
    // One invite per pass and four at once: of six, two wait while four are with the provider.
    let delivery = DeliveryConfig::default()
        .with_batch(1, Duration::from_secs(1))
        .unwrap()
        .with_stats_interval(Duration::from_secs(2))
        .unwrap();
    let rooms = Rooms::builder()
        .clock(TokioClock {
            start: tokio::time::Instant::now(),
        })
        .email(provider.clone())
        .config(RoomsConfig::default().with_delivery(delivery))
        .build();
    for _ in 0..6 {
        email_invite(&rooms).await;
    }
    let dispatcher = tokio::spawn({
        let rooms = rooms.clone();
        async move { rooms.run_dispatcher().await }
    });
    tokio::time::sleep(Duration::from_millis(20_500)).await;
    assert_eq!(gauges.get(OUTBOX_QUEUED, "email"), Some(6.0));
    assert_eq!(gauges.get(OUTBOX_DUE, "email"), Some(2.0), "four are claimed");
    let age = gauges.get(OUTBOX_OLDEST_DUE_AGE, "email").unwrap();
    // Refreshed every 2 s: as of 18 to 20 s after the invites.
    assert!((18.0..=20.5).contains(&age), "{age}");
    assert_eq!(gauges.get(OUTBOX_QUEUED, "sms"), Some(0.0), "an empty channel reads 0");
    assert_eq!(gauges.get(OUTBOX_OLDEST_DUE_AGE, "sms"), Some(0.0));

    provider.0.add_permits(6);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(gauges.get(OUTBOX_QUEUED, "email"), Some(0.0), "all sent");
    assert_eq!(gauges.get(OUTBOX_DUE, "email"), Some(0.0));
    assert_eq!(gauges.get(OUTBOX_OLDEST_DUE_AGE, "email"), Some(0.0));
    dispatcher.abort();
}

#[tokio::test(start_paused = true)]
async fn a_store_that_cannot_count_its_outbox_reports_no_gauges_and_still_delivers() {
    let gauges = Gauges::default();
    let _recorder = ::metrics::set_default_local_recorder(&gauges);
    let email = Arc::new(RecordingNotifier::new());
    let rooms = Rooms::builder()
        .room_store(Uncounted::default())
        .email(email.clone())
        .build();
    email_invite(&rooms).await;
    let dispatcher = tokio::spawn({
        let rooms = rooms.clone();
        async move { rooms.run_dispatcher().await }
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(email.sent().len(), 1);
    assert!(!gauges.any_outbox(), "{gauges:?}");
    dispatcher.abort();
}

/// A store written before `outbox_stats`: it keeps the provided method.
#[derive(Debug, Default)]
struct Uncounted(MemoryRoomStore);

#[async_trait]
impl RoomStore for Uncounted {
    async fn append(&self, append: Append) -> Result<(), Error> {
        self.0.append(append).await
    }
    async fn read_events(&self, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error> {
        self.0.read_events(room, after, limit).await
    }
    async fn latest_events(&self, room: RoomId, limit: usize) -> Result<Vec<Event>, Error> {
        self.0.latest_events(room, limit).await
    }
    async fn room_summary(&self, room: RoomId) -> Result<Option<RoomSummary>, Error> {
        self.0.room_summary(room).await
    }
    async fn list_rooms(&self, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error> {
        self.0.list_rooms(tenant, query).await
    }
    async fn idle_rooms(&self, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error> {
        self.0.idle_rooms(idle_since, limit).await
    }
    async fn find_credential(&self, hash: &TokenHash) -> Result<Option<Credential>, Error> {
        self.0.find_credential(hash).await
    }
    async fn claim_outbox(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<ClaimedOutbox>, Error> {
        self.0.claim_outbox(now, lease, limit).await
    }
    async fn reschedule_outbox(&self, id: OutboxId, not_before: Timestamp) -> Result<(), Error> {
        self.0.reschedule_outbox(id, not_before).await
    }
    async fn delete_outbox(&self, id: OutboxId) -> Result<(), Error> {
        self.0.delete_outbox(id).await
    }
    async fn add_credential(&self, credential: Credential) -> Result<(), Error> {
        self.0.add_credential(credential).await
    }
    async fn erase(&self, append: Append) -> Result<(), Error> {
        self.0.erase(append).await
    }
    async fn ended_rooms(&self, query: &EndedRooms) -> Result<Vec<RoomId>, Error> {
        self.0.ended_rooms(query).await
    }
    async fn purge(&self, room: RoomId) -> Result<(), Error> {
        self.0.purge(room).await
    }
}
