//! Invite delivery through the outbox: retries, failures, crash and resume.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt, RecordingNotifier};
use collab_core::rooms::{DeliveryConfig, InviteRequest, Rooms, RoomsConfig};
use collab_core::time::ManualClock;
use collab_core::*;
use common::*;

async fn invite_by_email(world: &World) -> (RoomId, InviteId) {
    email_invite(&world.rooms).await
}

async fn invite_status(world: &World, room: RoomId, invite: InviteId) -> InviteStatus {
    world
        .rooms
        .room(&agent(), room)
        .await
        .unwrap()
        .invite(invite)
        .unwrap()
        .status
}

#[tokio::test]
async fn a_sent_invite_is_recorded_with_the_provider_id() {
    let world = World::new();
    let (room, invite) = invite_by_email(&world).await;
    let report = world.rooms.dispatch_due().await.expect("pass");
    assert_eq!((report.claimed, report.sent), (1, 1));
    let sent = world.email.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].recipient.to_string(), "grace@example.com");
    assert_eq!(sent[0].subject.as_deref(), Some("Your collaboration room"));
    let events = world
        .rooms
        .timeline(&agent(), room, rooms::TimelineQuery::Latest { limit: 1 })
        .await
        .unwrap();
    assert!(matches!(
        &events[0].data,
        EventData::InviteDelivery { status: DeliveryStatus::Sent { provider_id: Some(id) }, .. } if id == "recorded-1"
    ));
    assert_eq!(invite_status(&world, room, invite).await, InviteStatus::Sent);
    // The row is gone: nothing is sent twice.
    world.clock.advance(Duration::from_secs(3600));
    assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0);
    assert_eq!(world.email.attempts(), 1);
}

#[tokio::test]
async fn a_transient_failure_is_retried_after_a_backoff_then_succeeds() {
    let world = World::new();
    let (room, invite) = invite_by_email(&world).await;
    world.email.fail_next(NotifyError::transient("provider busy"));
    let report = world.rooms.dispatch_due().await.unwrap();
    assert_eq!(report.retried, 1);
    assert_eq!(invite_status(&world, room, invite).await, InviteStatus::Requested);
    // The first backoff is 10 s plus up to 25% jitter: not due after 9 s, due after 13 s.
    world.clock.advance(Duration::from_secs(9));
    assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0);
    world.clock.advance(Duration::from_secs(4));
    assert_eq!(world.rooms.dispatch_due().await.unwrap().sent, 1);
    assert_eq!(world.email.attempts(), 2);
    assert_eq!(world.email.sent().len(), 1);
    assert_eq!(invite_status(&world, room, invite).await, InviteStatus::Sent);
}

#[tokio::test]
async fn provider_errors_never_carry_the_token_into_the_timeline() {
    #[derive(Debug)]
    struct Echoing;
    #[async_trait]
    impl Notifier for Echoing {
        async fn send(&self, n: &Notification) -> Result<Receipt, NotifyError> {
            Err(NotifyError::permanent(format!("rejected body: {}", n.text)))
        }
    }
    let rooms = Rooms::builder().email(Echoing).build();
    let room = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(&agent(), room, InviteRequest::email("Grace", "Hopper", "g@example.com"))
        .await
        .unwrap();
    rooms.dispatch_due().await.unwrap();
    let events = rooms
        .timeline(&agent(), room, rooms::TimelineQuery::Latest { limit: 1 })
        .await
        .unwrap();
    let EventData::InviteDelivery {
        status: DeliveryStatus::Failed { reason, .. },
        ..
    } = &events[0].data
    else {
        panic!("{events:?}")
    };
    assert!(reason.contains("/join/<token>"), "{reason}");
}

#[tokio::test]
async fn a_permanent_failure_is_recorded_at_once() {
    let world = World::new();
    let (room, invite) = invite_by_email(&world).await;
    world.email.fail_next(NotifyError::permanent("mailbox does not exist"));
    assert_eq!(world.rooms.dispatch_due().await.unwrap().failed, 1);
    assert_eq!(
        invite_status(&world, room, invite).await,
        InviteStatus::Failed { permanent: true }
    );
    world.clock.advance(Duration::from_secs(86_400));
    assert_eq!(world.rooms.dispatch_due().await.unwrap().claimed, 0, "no retry");
    let events = world
        .rooms
        .timeline(&agent(), room, rooms::TimelineQuery::Latest { limit: 1 })
        .await
        .unwrap();
    assert!(matches!(
        &events[0].data,
        EventData::InviteDelivery { status: DeliveryStatus::Failed { permanent: true, reason }, .. }
            if reason.contains("mailbox does not exist")
    ));
}

#[tokio::test]
async fn attempts_are_capped() {
    let delivery = DeliveryConfig::default().with_max_attempts(3).unwrap();
    let world = World::with(|b| b.config(RoomsConfig::default().with_delivery(delivery)));
    let (room, invite) = invite_by_email(&world).await;
    for _ in 0..3 {
        world.email.fail_next(NotifyError::ambiguous("timed out after sending"));
    }
    for _ in 0..6 {
        world.rooms.dispatch_due().await.unwrap();
        world.clock.advance(Duration::from_secs(3600));
    }
    assert_eq!(world.email.attempts(), 3);
    assert_eq!(
        invite_status(&world, room, invite).await,
        InviteStatus::Failed { permanent: false }
    );
}

#[tokio::test]
async fn a_closed_room_or_a_revoked_invite_is_never_sent() {
    let world = World::new();
    let (closed, _) = invite_by_email(&world).await;
    world.rooms.close_room(&agent(), closed).await.unwrap();
    let (room, revoked) = invite_by_email(&world).await;
    world.rooms.revoke_invite(&agent(), room, revoked).await.unwrap();
    world.rooms.dispatch_due().await.unwrap();
    assert_eq!(world.email.attempts(), 0, "nothing reached the provider");
    world.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        world.rooms.dispatch_due().await.unwrap().claimed,
        0,
        "the rows are gone"
    );
    // An invite that expired while waiting for its retry is not sent either.
    let (room, expired) = invite_by_email(&world).await;
    world.email.fail_next(NotifyError::transient("busy"));
    world.rooms.dispatch_due().await.unwrap();
    world.clock.advance(8 * DAY);
    world.rooms.dispatch_due().await.unwrap();
    assert_eq!(world.email.sent().len(), 0);
    assert_eq!(
        invite_status(&world, room, expired).await,
        InviteStatus::Failed { permanent: true }
    );
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_hangs_is_given_up_before_the_lease_ends() {
    let hanging = Arc::new(Hanging::default());
    let delivery = DeliveryConfig::default().with_lease(Duration::from_secs(8)).unwrap();
    let rooms = Rooms::builder()
        .clock(TokioClock {
            start: tokio::time::Instant::now(),
        })
        .email(hanging.clone())
        .config(RoomsConfig::default().with_delivery(delivery))
        .build();
    let room = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(&agent(), room, InviteRequest::email("Grace", "Hopper", "g@example.com"))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let report = rooms.dispatch_due().await.unwrap();
    assert_eq!(report.retried, 1, "an ambiguous outcome, retried later");
    assert!(started.elapsed() <= Duration::from_secs(6), "{:?}", started.elapsed());
}

/// A provider call that never returns: the process dies while it hangs.
#[derive(Debug, Default)]
struct Hanging {
    calls: Mutex<usize>,
}

#[async_trait]
impl Notifier for Hanging {
    async fn send(&self, _: &Notification) -> Result<Receipt, NotifyError> {
        *self.calls.lock().unwrap() += 1;
        std::future::pending().await
    }
}

#[tokio::test]
async fn after_a_crash_mid_delivery_a_new_service_delivers_exactly_once() {
    let store = Arc::new(memory::MemoryRoomStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let hanging = Arc::new(Hanging::default());
    let crashed = Rooms::builder()
        .room_store(store.clone())
        .clock(clock.clone())
        .email(hanging.clone())
        .build();
    let room = crashed.create_room(&agent()).await.unwrap().room;
    let invite = crashed
        .invite(
            &agent(),
            room,
            InviteRequest::email("Grace", "Hopper", "grace@example.com"),
        )
        .await
        .unwrap()
        .invite;
    let pass = tokio::spawn({
        let crashed = crashed.clone();
        async move { crashed.dispatch_due().await }
    });
    yield_until("the provider is called", || *hanging.calls.lock().unwrap() > 0).await;
    pass.abort(); // the process dies mid-call
    drop(crashed);

    let recording = Arc::new(RecordingNotifier::new());
    let restarted = Rooms::builder()
        .room_store(store.clone())
        .clock(clock.clone())
        .email(recording.clone())
        .build();
    assert_eq!(
        restarted.dispatch_due().await.unwrap().claimed,
        0,
        "the dead dispatcher's lease holds"
    );
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        restarted.dispatch_due().await.unwrap().sent,
        1,
        "resumed after the lease"
    );
    clock.advance(Duration::from_secs(3600));
    assert_eq!(restarted.dispatch_due().await.unwrap().claimed, 0);
    assert_eq!(recording.sent().len(), 1, "exactly one delivery by the new service");
    let state = restarted.room(&agent(), room).await.unwrap();
    assert_eq!(state.invite(invite).map(|i| i.status), Some(InviteStatus::Sent));
}

#[tokio::test]
async fn a_stalled_provider_does_not_block_chat() {
    let hanging = Arc::new(Hanging::default());
    let rooms = Rooms::builder().email(hanging.clone()).build();
    let room = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(&agent(), room, InviteRequest::email("Grace", "Hopper", "g@example.com"))
        .await
        .unwrap();
    let dispatcher = tokio::spawn({
        let rooms = rooms.clone();
        async move { rooms.run_dispatcher().await }
    });
    yield_until("the provider is called", || *hanging.calls.lock().unwrap() > 0).await;
    rooms
        .post_message(&agent(), room, "still chatting", None)
        .await
        .expect("chat goes on");
    dispatcher.abort();
}

mockall::mock! {
    Provider {}
    #[async_trait]
    impl Notifier for Provider {
        async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError>;
    }
}

impl std::fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockProvider")
    }
}

#[tokio::test(start_paused = true)]
async fn the_dispatcher_backs_off_exponentially_and_honours_retry_after() {
    let calls: Arc<Mutex<Vec<tokio::time::Instant>>> = Arc::default();
    let mut provider = MockProvider::new();
    let mut sequence = mockall::Sequence::new();
    // The provider's answers, in order: busy, busy, rate limited for 300 s, accepted.
    let answers: [fn() -> Result<Receipt, NotifyError>; 4] = [
        || Err(NotifyError::transient("busy")),
        || Err(NotifyError::transient("busy")),
        || {
            Err(NotifyError::Transient {
                retry_after: Some(Duration::from_secs(300)),
                source: "rate limited".into(),
            })
        },
        || {
            Ok(Receipt {
                provider_id: Some("SM123".into()),
            })
        },
    ];
    for answer in answers {
        let calls = calls.clone();
        provider
            .expect_send()
            .times(1)
            .in_sequence(&mut sequence)
            .returning(move |_| {
                calls.lock().unwrap().push(tokio::time::Instant::now());
                answer()
            });
    }

    let rooms = Rooms::builder()
        .clock(TokioClock {
            start: tokio::time::Instant::now(),
        })
        .email(provider)
        .build();
    let room = rooms.create_room(&agent()).await.unwrap().room;
    let invite = rooms
        .invite(&agent(), room, InviteRequest::email("Grace", "Hopper", "g@example.com"))
        .await
        .unwrap()
        .invite;
    let dispatcher = tokio::spawn({
        let rooms = rooms.clone();
        async move { rooms.run_dispatcher().await }
    });
    tokio::time::sleep(Duration::from_secs(3600)).await;
    dispatcher.abort();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 4);
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    // 10 s, then 20 s, each with up to 25% jitter (and up to one 1 s poll interval);
    // then the provider's 300 s, which exceeds the 40 s backoff.
    let within =
        |gap: Duration, low: u64, high: u64| gap >= Duration::from_secs(low) && gap <= Duration::from_secs(high);
    assert!(within(gaps[0], 10, 14), "{gaps:?}");
    assert!(within(gaps[1], 20, 26), "{gaps:?}");
    assert!(within(gaps[2], 300, 302), "{gaps:?}");
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.invite(invite).map(|i| i.status), Some(InviteStatus::Sent));
}
