//! Links and sessions over a room's life (issue 16): customer sessions end when idle for too
//! long and at the end of their lifetime, what the customer does keeps a session alive (only up
//! to its lifetime); a new link supersedes the older ones of its channel, not their sessions.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use collab_core::*;
use common::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn world() -> World {
    World::with(|builder| {
        builder.config(
            RoomsConfig::default()
                .with_customer_sessions(10 * DAY, 25 * DAY)
                .unwrap(),
        )
    })
}

#[tokio::test]
async fn an_idle_session_ends_and_activity_keeps_one_alive() {
    let world = world();
    let (room, _, session) = world.room_with_customer().await;
    let token = session.token.expose().to_owned();
    let rooms = &world.rooms;

    world.clock.advance(9 * DAY);
    let customer = rooms.customer_session(&token).await.expect("9 days idle: alive");
    rooms.post_message(&customer, room, "still here", None).await.unwrap();
    // Ten days after the post, not after joining.
    world.clock.advance(9 * DAY);
    rooms
        .customer_session(&token)
        .await
        .expect("9 days after the post: alive");
    world.clock.advance(2 * DAY);
    assert!(matches!(rooms.customer_session(&token).await, Err(Error::Forbidden)));
}

#[tokio::test]
async fn a_session_ends_at_its_lifetime_however_active() {
    let world = world();
    let (room, customer, session) = world.room_with_customer().await;
    let token = session.token.expose().to_owned();
    for _ in 0..5 {
        world.clock.advance(5 * DAY);
        world.rooms.post_message(&customer, room, "busy", None).await.unwrap();
    }
    // Posted a moment ago, but joined 25 days ago.
    world.clock.advance(Duration::from_secs(1));
    assert!(matches!(
        world.rooms.customer_session(&token).await,
        Err(Error::Forbidden)
    ));
}

#[test]
fn lifetimes_are_checked() {
    let invalid = |idle, lifetime| match RoomsConfig::default().with_customer_sessions(idle, lifetime) {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("accepted: {:?}", other.map(|_| ())),
    };
    assert_eq!(invalid(Duration::from_secs(60), DAY), "idle");
    assert_eq!(invalid(2 * DAY, DAY), "lifetime");
    assert!(RoomsConfig::default().with_customer_sessions(DAY, DAY).is_ok());
}

#[tokio::test]
async fn a_new_link_supersedes_the_older_one_of_its_channel_not_its_session() {
    let world = World::new();
    let rooms = &world.rooms;
    let (room, _, first_session) = world.room_with_customer().await;
    let older = rooms.get_link(&agent(), room).await.unwrap().link.unwrap();
    let newer = rooms.get_link(&agent(), room).await.unwrap().link.unwrap();

    assert!(matches!(rooms.join(older.token()).await, Err(Error::NotFound { .. })));
    rooms.join(newer.token()).await.expect("the newest link opens the room");
    // The session the first link opened goes on.
    rooms
        .customer_session(first_session.token.expose())
        .await
        .expect("still signed in");
    // An email invite is another channel: the newest link still opens the room.
    rooms
        .invite(&agent(), room, rooms::InviteRequest::again(Channel::Email, None))
        .await
        .unwrap();
    rooms
        .join(newer.token())
        .await
        .expect("other channels do not supersede it");
}

#[tokio::test]
async fn links_can_be_kept_instead() {
    let world = World::with(|builder| {
        builder.config(RoomsConfig::default().with_policy(Policy::default().with_superseding_links(false)))
    });
    let rooms = &world.rooms;
    let (room, _, _) = world.room_with_customer().await;
    let older = rooms.get_link(&agent(), room).await.unwrap().link.unwrap();
    rooms.get_link(&agent(), room).await.unwrap();
    rooms.join(older.token()).await.expect("kept");
}

#[tokio::test]
async fn an_erasure_ends_the_live_streams_after_saying_so() {
    use futures_util::StreamExt;
    let world = World::new();
    let rooms = &world.rooms;
    let (room, customer, _) = world.room_with_customer().await;
    let last = rooms.room(&agent(), room).await.unwrap().seq();
    let mut streams = vec![
        rooms.subscribe(&customer, room, last).await.unwrap(),
        rooms.subscribe(&agent(), room, last).await.unwrap(),
    ];
    rooms.erase_room(&agent(), room).await.unwrap();
    for stream in &mut streams {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap();
        let event = next.expect("an event").expect("no error");
        assert!(matches!(event.data, EventData::RoomErased { .. }), "{event:?}");
        let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap();
        assert!(end.is_none(), "the stream goes on: {end:?}");
    }
}
