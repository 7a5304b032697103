//! Agent alerts: one per burst of the customer's unread posts, after a quiet period, never when
//! an agent read them, recorded in the room.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use collab_core::alert::{AgentAlerts, CustomerWaiting, RecordingAgentAlerts};
use collab_core::notify::{NotifyError, Receipt};
use collab_core::rooms::TimelineQuery;
use collab_core::*;
use common::*;

const MINUTE: Duration = Duration::from_secs(60);

fn world() -> (World, Arc<RecordingAgentAlerts>) {
    let alerts = Arc::new(RecordingAgentAlerts::new());
    let world = World::with(|builder| builder.agent_alerts(alerts.clone()));
    (world, alerts)
}

/// What `pick` takes from each event of the room's timeline that it recognises, in order.
async fn recorded<T>(world: &World, room: RoomId, pick: impl Fn(&EventData) -> Option<T>) -> Vec<T> {
    let query = TimelineQuery::After {
        seq: Seq::ZERO,
        limit: 1_000,
    };
    let events = world.rooms.timeline(&agent(), room, query).await.unwrap();
    events.iter().filter_map(|event| pick(&event.data)).collect()
}

/// The `agents_alerted` events of the room: how far each covered, and its failure.
async fn alerted(world: &World, room: RoomId) -> Vec<(u64, Option<String>)> {
    recorded(world, room, |data| match data {
        EventData::AgentsAlerted { up_to, failure } => Some((up_to.get(), failure.clone())),
        _ => None,
    })
    .await
}

async fn post(world: &World, actor: &Actor, room: RoomId, text: &str) -> Seq {
    world.rooms.post_message(actor, room, text, None).await.unwrap().seq
}

/// The agent alert rows in the outbox.
async fn queued(world: &World) -> u64 {
    let stats = world.store.outbox_stats(world.clock.now()).await.unwrap();
    stats
        .iter()
        .filter(|s| s.kind == store::OutboxKind::AgentAlert)
        .map(|s| s.queued)
        .sum()
}

#[tokio::test]
async fn ten_posts_in_a_minute_to_an_absent_agent_make_one_alert() {
    let (world, alerts) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let first_at = world.clock.now();
    let mut last = Seq::ZERO;
    for i in 0..10 {
        last = post(&world, &customer, room, &format!("hello? {i}")).await;
        world.clock.advance(Duration::from_secs(6));
    }
    assert_eq!(queued(&world).await, 1, "one alert row for the burst");
    world.rooms.dispatch_due().await.unwrap();
    assert!(alerts.sent().is_empty(), "not before the quiet period");

    world
        .clock
        .set(first_at.saturating_add(RoomsConfig::DEFAULT_ALERT_AFTER));
    world.rooms.dispatch_due().await.unwrap();
    world.clock.advance(10 * MINUTE);
    world.rooms.dispatch_due().await.unwrap();
    let sent = alerts.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].room, room);
    assert_eq!(sent[0].agent, AgentId::new("ada").unwrap());
    assert_eq!(sent[0].customer.as_deref(), Some("Grace Hopper"));
    assert_eq!((sent[0].waiting, sent[0].since), (10, first_at));
    assert!(!format!("{:?}", sent[0]).contains("Grace"), "no name in Debug");
    assert_eq!(alerted(&world, room).await, [(last.get(), None)]);
    assert_eq!(queued(&world).await, 0);
}

#[tokio::test]
async fn an_agent_who_reads_in_time_is_not_alerted() {
    let (world, alerts) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let seq = post(&world, &customer, room, "are you there?").await;
    world.clock.advance(MINUTE);
    world.rooms.mark_read(&agent(), room, seq).await.unwrap();
    world.clock.advance(10 * MINUTE);
    world.rooms.dispatch_due().await.unwrap();
    assert!(alerts.sent().is_empty());
    assert!(alerted(&world, room).await.is_empty());
    assert_eq!(queued(&world).await, 0, "the row is gone");
}

#[tokio::test]
async fn newer_posts_wait_a_quiet_period_of_their_own() {
    let (world, alerts) = world();
    let (room, customer, _) = world.room_with_customer().await;
    // An agent read the first post, not the second: the second gets its full period.
    let first = post(&world, &customer, room, "one").await;
    world.clock.advance(4 * MINUTE);
    let second_at = world.clock.now();
    let second = post(&world, &customer, room, "two").await;
    world.clock.advance(MINUTE / 2);
    world.rooms.mark_read(&agent(), room, first).await.unwrap();
    world.clock.advance(MINUTE / 2);
    world.rooms.dispatch_due().await.unwrap();
    assert!(alerts.sent().is_empty(), "the second post is a minute old");
    world
        .clock
        .set(second_at.saturating_add(RoomsConfig::DEFAULT_ALERT_AFTER));
    world.rooms.dispatch_due().await.unwrap();
    let sent = alerts.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].waiting, sent[0].since), (1, second_at));

    // A post after an alert: its own row, due a quiet period later.
    world.clock.advance(MINUTE);
    let third = post(&world, &customer, room, "three").await;
    world.clock.advance(4 * MINUTE);
    world.rooms.dispatch_due().await.unwrap();
    assert_eq!(alerts.sent().len(), 1, "four minutes after the third post");
    world.clock.advance(MINUTE);
    world.rooms.dispatch_due().await.unwrap();
    assert_eq!(alerts.sent().len(), 2);
    assert_eq!(alerted(&world, room).await, [(second.get(), None), (third.get(), None)]);
}

#[tokio::test]
async fn failures_are_retried_then_given_up_and_recorded() {
    let (world, alerts) = world();
    let (room, customer, _) = world.room_with_customer().await;
    let seq = post(&world, &customer, room, "hello?").await;
    world.clock.advance(RoomsConfig::DEFAULT_ALERT_AFTER);
    alerts.fail_next(NotifyError::transient("mail server busy"));
    let report = world.rooms.dispatch_due().await.unwrap();
    assert_eq!(report.retried, 1);
    world.clock.advance(10 * MINUTE);
    world.rooms.dispatch_due().await.unwrap();
    assert_eq!(alerts.sent().len(), 1, "sent on the retry");

    // A permanent failure is recorded, and the next burst is alerted again.
    let later = post(&world, &customer, room, "still there?").await;
    world.clock.advance(RoomsConfig::DEFAULT_ALERT_AFTER);
    alerts.fail_next(NotifyError::permanent("no such mailbox"));
    let report = world.rooms.dispatch_due().await.unwrap();
    assert_eq!(report.failed, 1);
    let recorded = alerted(&world, room).await;
    assert_eq!(recorded[0], (seq.get(), None));
    assert_eq!(recorded[1].0, later.get());
    assert!(
        recorded[1].1.as_deref().unwrap().contains("no such mailbox"),
        "{recorded:?}"
    );
    assert_eq!(queued(&world).await, 0);
}

#[tokio::test]
async fn a_closed_room_alerts_nobody() {
    let (world, alerts) = world();
    let (room, customer, _) = world.room_with_customer().await;
    post(&world, &customer, room, "bye").await;
    world.rooms.close_room(&agent(), room).await.unwrap();
    world.clock.advance(10 * MINUTE);
    world.rooms.dispatch_due().await.unwrap();
    assert!(alerts.sent().is_empty());
    assert_eq!(queued(&world).await, 0);
}

/// Alerts that let the customer post once more while the first alert is being sent.
#[derive(Debug, Default)]
struct PostsWhileSending {
    rooms: OnceLock<(Rooms, Actor)>,
    sent: std::sync::Mutex<Vec<u32>>,
}

#[async_trait]
impl AgentAlerts for PostsWhileSending {
    async fn customer_waiting(&self, alert: &CustomerWaiting) -> Result<Receipt, NotifyError> {
        let first = {
            let mut sent = self.sent.lock().unwrap();
            sent.push(alert.waiting);
            sent.len() == 1
        };
        if first {
            let (rooms, customer) = self.rooms.get().unwrap();
            rooms
                .post_message(customer, alert.room, "meanwhile", None)
                .await
                .unwrap();
        }
        Ok(Receipt::default())
    }
}

#[tokio::test]
async fn a_post_made_while_an_alert_is_sent_gets_an_alert_of_its_own() {
    let alerts = Arc::new(PostsWhileSending::default());
    let world = World::with(|builder| builder.agent_alerts(alerts.clone()));
    let (room, customer, _) = world.room_with_customer().await;
    alerts.rooms.set((world.rooms.clone(), customer.clone())).unwrap();
    post(&world, &customer, room, "first").await;
    world.clock.advance(RoomsConfig::DEFAULT_ALERT_AFTER);
    world.rooms.dispatch_due().await.unwrap();
    assert_eq!(queued(&world).await, 1, "the post made meanwhile has its row");
    world.clock.advance(RoomsConfig::DEFAULT_ALERT_AFTER);
    world.rooms.dispatch_due().await.unwrap();
    assert_eq!(*alerts.sent.lock().unwrap(), [1, 1]);
}

#[test]
fn the_quiet_period_is_bounded() {
    for bad in [Duration::from_secs(9), Duration::from_secs(24 * 3600 + 1)] {
        let result = RoomsConfig::default().with_alert_after(bad);
        assert!(
            matches!(
                result,
                Err(Error::Invalid {
                    field: "alert_after",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

/// A world that reminds customers.
fn reminding(customize: impl FnOnce(rooms::RoomsBuilder) -> rooms::RoomsBuilder) -> World {
    World::with(|builder| customize(builder.config(RoomsConfig::default().with_customer_reminders(true))))
}

/// The emails sent that are reminders (not the first invite), by their subject.
fn reminders(world: &World) -> Vec<notify::Notification> {
    world
        .email
        .sent()
        .into_iter()
        .filter(|n| n.subject.as_deref() == Some("New message in your collaboration room"))
        .collect()
}

/// The `customer_reminded` events of the room: how far each covered, and whether an invite
/// carried it.
async fn reminded(world: &World, room: RoomId) -> Vec<(u64, bool)> {
    recorded(world, room, |data| match data {
        EventData::CustomerReminded { up_to, invite } => Some((up_to.get(), invite.is_some())),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn agent_posts_unread_for_the_quiet_period_remind_the_customer_once() {
    let world = reminding(|b| b);
    let (room, _customer, _) = world.room_with_customer().await;
    let mut last = Seq::ZERO;
    for i in 0..5 {
        last = post(&world, &agent(), room, &format!("update {i}")).await;
        world.clock.advance(Duration::from_secs(12));
    }
    world.rooms.dispatch_due().await.unwrap();
    assert!(reminders(&world).is_empty(), "not before the quiet period");
    for _ in 0..10 {
        world.clock.advance(MINUTE);
        world.rooms.dispatch_due().await.unwrap();
    }
    let sent = reminders(&world);
    assert_eq!(sent.len(), 1, "one reminder for the burst");
    assert_eq!(sent[0].recipient.to_string(), "grace@example.com");
    assert!(
        sent[0].text.starts_with("Hello Grace,\n\nYou have a new message"),
        "{}",
        sent[0].text
    );
    assert_eq!(reminded(&world, room).await, [(last.get(), true)]);
    // Its link lets the customer in, as an invite's does.
    let token = sent[0].link.rsplit('/').next().unwrap();
    world.rooms.join(token).await.expect("the reminder's link works");
}

#[tokio::test]
async fn a_customer_who_reads_in_time_is_not_reminded() {
    let world = reminding(|b| b);
    let (room, customer, _) = world.room_with_customer().await;
    let seq = post(&world, &agent(), room, "your form is ready").await;
    world.clock.advance(MINUTE);
    world.rooms.mark_read(&customer, room, seq).await.unwrap();
    for _ in 0..10 {
        world.clock.advance(MINUTE);
        world.rooms.dispatch_due().await.unwrap();
    }
    assert!(reminders(&world).is_empty());
    assert!(reminded(&world, room).await.is_empty());
}

#[tokio::test]
async fn no_reminder_once_the_room_timed_out_or_closed() {
    let world = reminding(|b| b);
    let (closed, _, _) = world.room_with_customer().await;
    post(&world, &agent(), closed, "goodbye").await;
    world.rooms.close_room(&agent(), closed).await.unwrap();
    let (idle, _, _) = world.room_with_customer().await;
    post(&world, &agent(), idle, "anyone?").await;
    // The reminder is due long after the room's inactivity timeout.
    world.clock.advance(Policy::DEFAULT_INACTIVITY_TIMEOUT + DAY);
    for _ in 0..3 {
        world.rooms.dispatch_due().await.unwrap();
    }
    assert!(reminders(&world).is_empty());
    assert!(reminded(&world, closed).await.is_empty());
    assert!(reminded(&world, idle).await.is_empty());
}

#[tokio::test]
async fn reminders_are_off_by_default() {
    let world = World::new();
    let (room, _, _) = world.room_with_customer().await;
    post(&world, &agent(), room, "hello").await;
    for _ in 0..10 {
        world.clock.advance(MINUTE);
        world.rooms.dispatch_due().await.unwrap();
    }
    assert!(reminders(&world).is_empty());
    assert!(reminded(&world, room).await.is_empty());
}

/// Admits invites until told to refuse.
#[derive(Debug, Default)]
struct ClosingGuard {
    closed: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl guard::InviteGuard for ClosingGuard {
    async fn admit(&self, _attempt: &guard::InviteAttempt<'_>) -> Result<(), Error> {
        match self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            true => Err(Error::RateLimited {
                retry_after: Duration::from_secs(3600),
            }),
            false => Ok(()),
        }
    }
}

#[tokio::test]
async fn the_invite_guard_can_refuse_a_reminder_which_is_recorded_unsent() {
    let guard = Arc::new(ClosingGuard::default());
    let world = reminding(|b| b.invite_guard(guard.clone()));
    let (room, _, _) = world.room_with_customer().await;
    guard.closed.store(true, std::sync::atomic::Ordering::Relaxed);
    let seq = post(&world, &agent(), room, "hello").await;
    for _ in 0..10 {
        world.clock.advance(MINUTE);
        world.rooms.dispatch_due().await.unwrap();
    }
    assert!(reminders(&world).is_empty());
    assert_eq!(reminded(&world, room).await, [(seq.get(), false)]);
}
