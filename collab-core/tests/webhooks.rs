//! Webhooks through the outbox: queued with their events, delivered in order per room and
//! endpoint, retried, given up and recorded, held back by the circuit breaker.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use collab_core::notify::NotifyError;
use collab_core::rooms::TimelineQuery;
use collab_core::webhook::{RecordingWebhookSender, WebhookConfig, WebhookEvent, WebhookSecret};
use collab_core::*;
use common::*;

const ENDPOINT: EndpointId = EndpointId::from_u128(0xE1);

fn endpoint(events: &[WebhookEvent]) -> WebhookEndpoint {
    WebhookEndpoint::new(
        ENDPOINT,
        "https://crm.example.com/hooks",
        WebhookSecret::generate().unwrap(),
    )
    .unwrap()
    .with_events(events)
    .unwrap()
}

fn world(config: WebhookConfig) -> (World, Arc<RecordingWebhookSender>) {
    let sender = RecordingWebhookSender::new();
    let world = World::with(|builder| builder.webhooks(sender.clone(), config));
    (world, sender)
}

fn messages_only() -> WebhookConfig {
    WebhookConfig::new()
        .with_endpoint(tenant(), endpoint(&[WebhookEvent::MessagePosted]))
        .unwrap()
}

/// The `data.seq` of each message the sender accepted, in order.
fn seqs(sender: &RecordingWebhookSender) -> Vec<u64> {
    sender
        .sent()
        .iter()
        .map(|(_, m)| {
            let body: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            body["data"]["seq"].as_u64().unwrap()
        })
        .collect()
}

/// Passes of the dispatcher until nothing is due, moving the clock `step` after each.
async fn drain(world: &World, step: Duration) {
    for _ in 0..200 {
        let report = world.rooms.dispatch_due().await.unwrap();
        if report.claimed == 0 && world.store.outbox_stats(world.clock.now()).await.unwrap().is_empty() {
            return;
        }
        world.clock.advance(step);
    }
    panic!("the outbox did not drain");
}

#[tokio::test]
async fn a_post_queues_its_webhook_in_the_same_append_and_the_body_describes_the_event() {
    let (world, sender) = world(messages_only());
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    let event = world
        .rooms
        .post_message(&agent(), room, "Hello Grace", None)
        .await
        .unwrap();
    let stats = world.store.outbox_stats(world.clock.now()).await.unwrap();
    assert_eq!(stats.len(), 1, "one row, for the message only: {stats:?}");
    assert_eq!(stats[0].kind, store::OutboxKind::Webhook);

    let report = world.rooms.dispatch_due().await.unwrap();
    assert_eq!((report.claimed, report.sent), (1, 1));
    let sent = sender.sent();
    assert_eq!(sent.len(), 1);
    let (to, message) = &sent[0];
    assert_eq!(*to, ENDPOINT);
    assert_eq!(message.event, WebhookEvent::MessagePosted);
    assert!(message.id.starts_with("msg_"), "{}", message.id);
    let body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
    assert_eq!(body["type"], "message.posted");
    assert_eq!(body["timestamp"], event.at.to_string());
    assert_eq!(body["data"]["tenant"], tenant().as_str());
    assert_eq!(body["data"]["room"], room.to_string());
    assert_eq!(body["data"]["seq"], event.seq.get());
    assert_eq!(body["data"]["event"]["data"]["text"], "Hello Grace");
    assert!(!format!("{message:?}").contains("Hello"), "Debug hides the body");
    // Sent once: the row is gone.
    world.clock.advance(HOUR);
    assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn events_nobody_subscribed_to_and_other_tenants_rooms_queue_nothing() {
    let other = TenantId::new("globex").unwrap();
    let config = WebhookConfig::new()
        .with_endpoint(other.clone(), endpoint(&[WebhookEvent::RoomClosed]))
        .unwrap();
    let (world, sender) = world(config);
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    world.rooms.post_message(&agent(), room, "hello", None).await.unwrap();
    world.rooms.close_room(&agent(), room).await.unwrap();
    assert!(world.store.outbox_stats(world.clock.now()).await.unwrap().is_empty());
    assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0);
    assert_eq!(sender.attempts(), 0);
}

#[tokio::test]
async fn a_receiver_that_fails_three_times_gets_every_event_once_in_order() {
    let (world, sender) = world(messages_only());
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    let mut posted = Vec::new();
    for text in ["one", "two", "three", "four"] {
        posted.push(
            world
                .rooms
                .post_message(&agent(), room, text, None)
                .await
                .unwrap()
                .seq
                .get(),
        );
    }
    for _ in 0..3 {
        sender.fail_next(NotifyError::transient("HTTP 500"));
    }
    let mut ids = Vec::new();
    for _ in 0..200 {
        world.rooms.dispatch_due().await.unwrap();
        ids = sender.sent().into_iter().map(|(_, m)| m.id).collect();
        if ids.len() == posted.len() {
            break;
        }
        world.clock.advance(Duration::from_secs(60));
    }
    assert_eq!(seqs(&sender), posted, "each event once, in the room's order");
    assert_eq!(sender.attempts(), posted.len() + 3);
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "one webhook-id per event");
}

#[tokio::test]
async fn the_webhook_id_stays_the_same_across_retries() {
    let (world, sender) = world(messages_only());
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    world.rooms.post_message(&agent(), room, "hello", None).await.unwrap();
    sender.fail_next(NotifyError::ambiguous("timed out"));
    assert_eq!(world.rooms.dispatch_due().await.unwrap().retried, 1);
    // Re-queued with a backoff (10 s at first, plus up to 25% jitter).
    assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0);
    world.clock.advance(Duration::from_secs(13));
    assert_eq!(world.rooms.dispatch_due().await.unwrap().sent, 1);
    let first_id = sender.sent()[0].1.id.clone();
    // The same row, sent again after a lost answer, has the same id: a second process claims
    // it once the lease runs out.
    let store = world.store.clone();
    world.rooms.post_message(&agent(), room, "again", None).await.unwrap();
    let claimed = store
        .claim_outbox(world.clock.now(), Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "claimed by a dispatcher that then died");
    world.clock.advance(Duration::from_secs(61));
    assert_eq!(world.rooms.dispatch_due().await.unwrap().sent, 1);
    let second_id = sender.sent()[1].1.id.clone();
    assert_ne!(first_id, second_id);
    assert_eq!(second_id, format!("msg_{:032x}", claimed[0].message.id.as_u128()));
}

#[tokio::test]
async fn a_delivery_is_given_up_after_the_period_recorded_in_the_timeline_and_the_next_goes_on() {
    let config = messages_only()
        .with_give_up_after(Duration::from_secs(3600))
        .unwrap()
        .with_circuit_breaker(1_000, Duration::from_secs(1))
        .unwrap();
    let (world, sender) = world(config);
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    let doomed = world.rooms.post_message(&agent(), room, "first", None).await.unwrap();
    let next = world.rooms.post_message(&agent(), room, "second", None).await.unwrap();
    for _ in 0..100 {
        sender.fail_next(NotifyError::transient("HTTP 503"));
    }
    // Retries until an hour has passed since it was queued; the second waits behind it.
    let mut rounds = 0;
    loop {
        world.rooms.dispatch_due().await.unwrap();
        let timeline = world
            .rooms
            .timeline(&agent(), room, TimelineQuery::Latest { limit: 1 })
            .await
            .unwrap();
        if let EventData::WebhookFailed {
            endpoint,
            about,
            reason,
            webhook_id,
        } = &timeline[0].data
        {
            assert_eq!(*endpoint, ENDPOINT);
            assert_eq!(*about, doomed.seq);
            assert!(reason.contains("HTTP 503"), "{reason}");
            assert!(webhook_id.starts_with("msg_"));
            assert_eq!(timeline[0].actor, EventActor::System);
            break;
        }
        assert!(sender.sent().is_empty(), "the second waits for the first");
        rounds += 1;
        assert!(rounds < 100, "never given up");
        world.clock.advance(Duration::from_secs(10 * 60));
    }
    assert!(
        rounds >= 3,
        "retried for the whole period, not given up at once ({rounds} rounds)"
    );
    // The endpoint recovers: the second event goes through, and only it.
    sender.clear_failures();
    drain(&world, Duration::from_secs(30 * 60)).await;
    assert_eq!(seqs(&sender), [next.seq.get()]);
}

#[tokio::test]
async fn a_permanent_failure_gives_up_at_once_and_a_closed_room_still_records_it() {
    let config = WebhookConfig::new()
        .with_endpoint(tenant(), endpoint(&[WebhookEvent::RoomClosed]))
        .unwrap();
    let (world, sender) = world(config);
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    world.rooms.close_room(&agent(), room).await.unwrap();
    sender.fail_next(NotifyError::permanent("HTTP 410 Gone"));
    let report = world.rooms.dispatch_due().await.unwrap();
    assert_eq!((report.claimed, report.failed), (1, 1));
    let last = world
        .rooms
        .timeline(&agent(), room, TimelineQuery::Latest { limit: 1 })
        .await
        .unwrap();
    assert!(
        matches!(&last[0].data, EventData::WebhookFailed { reason, .. } if reason.contains("410")),
        "{:?}",
        last[0].data
    );
    assert_eq!(
        world.rooms.room(&agent(), room).await.unwrap().status(),
        RoomStatus::Closed
    );
    assert!(world.store.outbox_stats(world.clock.now()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_circuit_breaker_holds_an_endpoint_back_after_a_run_of_failures() {
    let config = messages_only()
        .with_circuit_breaker(2, Duration::from_secs(300))
        .unwrap();
    let (world, sender) = world(config);
    // Two rooms, so that the order per room does not hold the second row back.
    for _ in 0..3 {
        let room = world.rooms.create_room(&agent()).await.unwrap().room;
        world.rooms.post_message(&agent(), room, "hello", None).await.unwrap();
    }
    for _ in 0..2 {
        sender.fail_next(NotifyError::transient("HTTP 500"));
    }
    // Deliveries run concurrently within a pass: take them one pass at a time.
    let first = world.rooms.dispatch_due().await.unwrap();
    assert_eq!(first.claimed, 3);
    let attempts_after_breaker = sender.attempts();
    assert!(attempts_after_breaker <= 3);
    // Within the cool-down, nothing is sent, whatever is due.
    for _ in 0..5 {
        world.clock.advance(Duration::from_secs(40));
        world.rooms.dispatch_due().await.unwrap();
    }
    assert_eq!(sender.attempts(), attempts_after_breaker, "the breaker is open");
    // After it, everything goes.
    world.clock.advance(Duration::from_secs(300));
    drain(&world, Duration::from_secs(60)).await;
    assert_eq!(sender.sent().len(), 3);
}

#[tokio::test]
async fn an_erasure_drops_the_room_s_pending_webhooks_and_says_it_is_done() {
    let config = WebhookConfig::new()
        .with_endpoint(
            tenant(),
            endpoint(&[WebhookEvent::MessagePosted, WebhookEvent::ErasureDone]),
        )
        .unwrap();
    let (world, sender) = world(config);
    let (room, _, _) = world.room_with_customer().await;
    world
        .rooms
        .post_message(&agent(), room, "Your account number is 4242", None)
        .await
        .unwrap();
    world.rooms.erase_room(&agent(), room).await.unwrap();
    drain(&world, HOUR).await;

    // The message's webhook, queued before the erasure, is gone with the room's other rows;
    // the erasure's own is sent, and holds no personal data.
    let sent = sender.sent();
    let types: Vec<WebhookEvent> = sent.iter().map(|(_, m)| m.event).collect();
    assert_eq!(types, [WebhookEvent::ErasureDone]);
    let body: serde_json::Value = serde_json::from_str(&sent[0].1.body).unwrap();
    assert_eq!(body["type"], "erasure.done");
    assert_eq!(body["data"]["event"]["data"]["scope"], "room");
    assert!(
        !sent[0].1.body.contains("4242") && !sent[0].1.body.contains("Grace"),
        "{}",
        sent[0].1.body
    );
}

#[tokio::test]
async fn a_merge_sends_one_room_merged_naming_the_absorbed_room_and_no_webhook_per_copy() {
    let config = WebhookConfig::new()
        .with_endpoint(
            tenant(),
            endpoint(&[WebhookEvent::RoomMerged, WebhookEvent::MessagePosted]),
        )
        .unwrap();
    let (world, sender) = world(config);
    let rooms = &world.rooms;
    let (absorbed, customer, _) = world.room_with_customer().await;
    for text in ["one", "two"] {
        rooms.post_message(&customer, absorbed, text, None).await.unwrap();
    }
    let survivor = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(
            &agent(),
            survivor,
            InviteRequest::email("Grace", "Hopper", "grace@example.com"),
        )
        .await
        .unwrap();
    drain(&world, Duration::from_secs(1)).await;
    let before = sender.sent().len();
    assert_eq!(before, 2, "the two messages");

    let after = rooms.merge_rooms(&agent(), absorbed, survivor).await.unwrap();
    drain(&world, Duration::from_secs(1)).await;
    let sent = sender.sent();
    assert_eq!(
        sent.len(),
        before + 1,
        "one webhook for the merge, none for the copied messages"
    );
    let (_, message) = sent.last().unwrap();
    assert_eq!(message.event, WebhookEvent::RoomMerged);
    let body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
    assert_eq!(body["type"], "room.merged");
    assert_eq!(body["data"]["room"], survivor.to_string());
    assert_eq!(body["data"]["seq"], after.seq().get());
    assert_eq!(body["data"]["event"]["data"]["absorbed"], absorbed.to_string());
}
