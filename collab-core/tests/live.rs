//! Live subscriptions: stored events, then live ones, without gaps or duplicates.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use collab_core::rooms::Rooms;
use collab_core::transport::InProcessTransport;
use collab_core::*;
use common::*;
use futures_util::StreamExt;

async fn take(stream: &mut rooms::EventStream, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an event in time");
        seqs.push(next.expect("the stream goes on").expect("no error").seq.get());
    }
    seqs
}

#[tokio::test]
async fn stored_events_then_live_ones_in_order() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let stored = world.rooms.room(&agent(), room).await.unwrap().seq().get();
    let mut stream = world
        .rooms
        .subscribe(&customer, room, Seq::ZERO)
        .await
        .expect("subscribe");
    let writer = tokio::spawn({
        let rooms = world.rooms.clone();
        async move {
            for i in 0..50 {
                rooms
                    .post_message(&agent(), room, &format!("m{i}"), None)
                    .await
                    .unwrap();
            }
        }
    });
    let seqs = take(&mut stream, stored as usize + 50).await;
    writer.await.unwrap();
    assert_eq!(seqs, (1..=stored + 50).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_subscriber_that_lags_behind_the_buffer_catches_up_from_the_store() {
    // A buffer of 4 events: the subscriber below falls far behind it.
    let world = World::with(|b| b.transport(InProcessTransport::new(4)));
    let (room, _, _) = world.room_with_customer().await;
    let before = world.rooms.room(&agent(), room).await.unwrap().seq();
    let mut stream = world.rooms.subscribe(&agent(), room, before).await.unwrap();
    // Into the live phase first, so that what follows overflows the live buffer.
    world.rooms.post_message(&agent(), room, "first", None).await.unwrap();
    assert_eq!(take(&mut stream, 1).await, [before.get() + 1]);
    let start = before.next();
    for i in 0..200 {
        world
            .rooms
            .post_message(&agent(), room, &format!("m{i}"), None)
            .await
            .unwrap();
    }
    let seqs = take(&mut stream, 200).await;
    assert_eq!(seqs, (start.get() + 1..=start.get() + 200).collect::<Vec<_>>());
    // And it goes on live afterwards.
    world.rooms.post_message(&agent(), room, "after", None).await.unwrap();
    assert_eq!(take(&mut stream, 1).await, [start.get() + 201]);
}

#[tokio::test]
async fn a_reconnecting_subscriber_resumes_without_gap_or_duplicate() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let mut stream = world.rooms.subscribe(&customer, room, Seq::ZERO).await.unwrap();
    for i in 0..10 {
        world
            .rooms
            .post_message(&agent(), room, &format!("m{i}"), None)
            .await
            .unwrap();
    }
    let total = world.rooms.room(&agent(), room).await.unwrap().seq().get();
    let first = take(&mut stream, 7).await;
    drop(stream); // the connection drops
    for i in 0..5 {
        world
            .rooms
            .post_message(&agent(), room, &format!("n{i}"), None)
            .await
            .unwrap();
    }
    let last_seen = Seq::new(*first.last().unwrap());
    let mut resumed = world.rooms.subscribe(&customer, room, last_seen).await.unwrap();
    let rest = take(&mut resumed, (total + 5 - last_seen.get()) as usize).await;
    let all: Vec<u64> = first.into_iter().chain(rest).collect();
    assert_eq!(all, (1..=total + 5).collect::<Vec<_>>());
}

#[tokio::test]
async fn many_subscribers_each_see_every_event_once() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let start = world.rooms.room(&agent(), room).await.unwrap().seq().get();
    let mut streams = Vec::new();
    for _ in 0..50 {
        streams.push(world.rooms.subscribe(&customer, room, Seq::new(start)).await.unwrap());
    }
    for i in 0..20 {
        world
            .rooms
            .post_message(&customer, room, &format!("m{i}"), None)
            .await
            .unwrap();
    }
    for stream in &mut streams {
        assert_eq!(take(stream, 20).await, (start + 1..=start + 20).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_customer_stream_ends_with_the_end_of_access() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let Actor::Customer { participant, .. } = customer else {
        unreachable!()
    };
    let at = world.rooms.room(&agent(), room).await.unwrap().seq();
    let mut revoked = world.rooms.subscribe(&customer, room, at).await.unwrap();
    let mut watching = world.rooms.subscribe(&agent(), room, at).await.unwrap();
    world.rooms.revoke_session(&agent(), room, participant).await.unwrap();
    world
        .rooms
        .post_message(&agent(), room, "after the revocation", None)
        .await
        .unwrap();
    let mut heard = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(5), revoked.next())
        .await
        .expect("in time")
    {
        heard.push(event.unwrap().data.type_name());
    }
    assert_eq!(heard.last(), Some(&"session_revoked"), "{heard:?}");
    assert!(!heard.contains(&"message_posted"), "nothing after the end of access");
    assert_eq!(take(&mut watching, 3).await.len(), 3, "agents keep listening");
}

#[tokio::test]
async fn subscribing_checks_access() {
    let world = World::new();
    let (room, _, _) = world.room_with_customer().await;
    let stranger = Actor::Agent {
        tenant: TenantId::new("globex").unwrap(),
        agent: AgentId::new("eve").unwrap(),
    };
    assert!(matches!(
        world.rooms.subscribe(&stranger, room, Seq::ZERO).await,
        Err(Error::NotFound { .. })
    ));
    let rooms = Rooms::builder().build();
    assert!(matches!(
        rooms.subscribe(&agent(), room, Seq::ZERO).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn channels_of_rooms_nobody_listens_to_are_dropped() {
    use collab_core::transport::Transport;
    let transport = InProcessTransport::default();
    let kept = transport.subscribe(RoomId::from_u128(1));
    for i in 2..=200u128 {
        drop(transport.subscribe(RoomId::from_u128(i)));
    }
    // The sweep runs as the map grows: abandoned rooms do not pile up.
    assert!(
        transport.open_channels() < 70,
        "{} channels held",
        transport.open_channels()
    );
    drop(kept);
}

/// Two services on one store, each with its own in-process transport, as two servers whose
/// cross-server transport only forwards wake-ups: B hears of A's posts only when told.
#[tokio::test]
async fn wake_ups_and_catch_up_notices_make_a_subscriber_read_the_store() {
    use std::sync::Arc;

    use collab_core::memory::MemoryRoomStore;
    use collab_core::transport::Live;

    let store = Arc::new(MemoryRoomStore::new());
    let b_transport = Arc::new(InProcessTransport::default());
    let a = Rooms::builder().room_store(store.clone()).build();
    let b = Rooms::builder()
        .room_store(store)
        .transport(b_transport.clone())
        .build();
    let room = a.create_room(&agent()).await.unwrap().room;
    let mut on_b = b.subscribe(&agent(), room, Seq::ZERO).await.unwrap();
    assert_eq!(take(&mut on_b, 1).await, [1]);

    let posted = a.post_message(&agent(), room, "one", None).await.unwrap();
    let silent = tokio::time::timeout(Duration::from_millis(200), on_b.next()).await;
    assert!(silent.is_err(), "B cannot know yet");
    b_transport.announce(room, Live::Wake { seq: posted.seq });
    assert_eq!(take(&mut on_b, 1).await, [2]);

    // A wake-up for another room, or one B is past already, changes nothing.
    b_transport.announce(room, Live::Wake { seq: posted.seq });
    b_transport.announce(RoomId::from_u128(7), Live::Wake { seq: Seq::new(99) });
    a.post_message(&agent(), room, "two", None).await.unwrap();
    a.post_message(&agent(), room, "three", None).await.unwrap();
    let silent = tokio::time::timeout(Duration::from_millis(200), on_b.next()).await;
    assert!(silent.is_err(), "nothing told B");
    // What a transport announces after a reconnect: every subscriber catches up.
    b_transport.announce_to_all(Live::Lagged);
    assert_eq!(take(&mut on_b, 2).await, [3, 4]);
}

#[tokio::test]
async fn a_customer_stream_ends_when_the_customer_signs_out() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let at = world.rooms.room(&agent(), room).await.unwrap().seq();
    let mut stream = world.rooms.subscribe(&customer, room, at).await.unwrap();
    world.rooms.end_session(&customer).await.unwrap();
    world
        .rooms
        .post_message(&agent(), room, "after the sign-out", None)
        .await
        .unwrap();
    let mut heard = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("in time")
    {
        heard.push(event.unwrap().data.type_name());
    }
    assert_eq!(heard, ["session_revoked"]);
}
