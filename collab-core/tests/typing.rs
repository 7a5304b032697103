//! Typing indicators: passed to the room's other subscribers, throttled, never stored.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use collab_core::rooms::{RoomUpdate, RoomsConfig, UpdateStream};
use collab_core::transport::{Typing, Typist};
use collab_core::*;
use common::*;
use futures_util::StreamExt;

/// The next update of `stream`, failing after 5 s.
async fn next(stream: &mut UpdateStream) -> RoomUpdate {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an update in time")
        .expect("the stream goes on")
        .expect("no error")
}

/// Posts a message as `actor` and returns the updates `stream` yields up to that message's
/// event, the event left out: so that a test sees every typing update that came before it.
async fn updates_until_a_post(
    world: &World,
    actor: &Actor,
    room: RoomId,
    stream: &mut UpdateStream,
) -> Vec<RoomUpdate> {
    let posted = world.rooms.post_message(actor, room, "marker", None).await.unwrap();
    let mut seen = Vec::new();
    loop {
        match next(stream).await {
            RoomUpdate::Event(event) if event.seq == posted.seq => return seen,
            RoomUpdate::Event(_) => {}
            typing => seen.push(typing),
        }
    }
}

/// Polls `stream` until it has read the store and waits for live news, so that what comes next
/// arrives in the order it was sent.
async fn caught_up(stream: &mut UpdateStream) {
    let early = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
    assert!(early.is_err(), "nothing to read yet: {early:?}");
}

fn typing_by(typist: Typist) -> RoomUpdate {
    RoomUpdate::Typing(Typing { by: typist })
}

fn ada() -> Typist {
    Typist::Agent(AgentId::new("ada").unwrap())
}

#[tokio::test]
async fn each_side_hears_the_other_type_and_never_itself_and_nothing_is_stored() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let Actor::Customer { participant, .. } = customer else {
        panic!("a customer");
    };
    let last = world.rooms.room(&agent(), room).await.unwrap().seq();
    let mut customer_side = world.rooms.follow(&customer, room, last).await.unwrap();
    let mut agent_side = world.rooms.follow(&agent(), room, last).await.unwrap();
    // Events only: typing never shows there.
    let mut events_only = world.rooms.subscribe(&customer, room, last).await.unwrap();

    world.rooms.typing(&agent(), room).await.unwrap();
    assert_eq!(next(&mut customer_side).await, typing_by(ada()));
    world.rooms.typing(&customer, room).await.unwrap();
    assert_eq!(next(&mut agent_side).await, typing_by(Typist::Customer(participant)));

    // Neither heard its own signal: the next thing each hears is the marker.
    assert_eq!(updates_until_a_post(&world, &agent(), room, &mut agent_side).await, []);
    assert_eq!(
        updates_until_a_post(&world, &agent(), room, &mut customer_side).await,
        []
    );
    let first = tokio::time::timeout(Duration::from_secs(5), events_only.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.data.type_name(), "message_posted", "no typing in subscribe()");

    // Nothing stored but the two markers.
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.seq().get(), last.get() + 2);
}

#[tokio::test]
async fn a_participant_s_signals_pass_once_per_interval() {
    let world = World::with(|builder| {
        builder.config(
            RoomsConfig::default()
                .with_typing_interval(Duration::from_secs(3))
                .unwrap(),
        )
    });
    let (room, customer, _) = world.room_with_customer().await;
    let last = world.rooms.room(&agent(), room).await.unwrap().seq();
    let mut customer_side = world.rooms.follow(&customer, room, last).await.unwrap();
    caught_up(&mut customer_side).await;
    let other_agent = Actor::Agent {
        tenant: tenant(),
        agent: AgentId::new("grace's colleague").unwrap(),
    };

    for _ in 0..5 {
        world.rooms.typing(&agent(), room).await.unwrap();
    }
    // Another typist has an interval of its own.
    world.rooms.typing(&other_agent, room).await.unwrap();
    world.clock.advance(Duration::from_millis(2_900));
    world.rooms.typing(&agent(), room).await.unwrap();
    let heard = updates_until_a_post(&world, &agent(), room, &mut customer_side).await;
    let colleague = Typist::Agent(AgentId::new("grace's colleague").unwrap());
    assert_eq!(heard, [typing_by(ada()), typing_by(colleague)]);

    world.clock.advance(Duration::from_millis(100));
    world.rooms.typing(&agent(), room).await.unwrap();
    let heard = updates_until_a_post(&world, &agent(), room, &mut customer_side).await;
    assert_eq!(heard, [typing_by(ada())], "the interval passed");
}

#[tokio::test]
async fn refused_where_a_message_would_be() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let stranger = Actor::Agent {
        tenant: TenantId::new("globex").unwrap(),
        agent: AgentId::new("ada").unwrap(),
    };
    assert_eq!(
        kind(&world.rooms.typing(&stranger, room).await.unwrap_err()),
        "NotFound"
    );
    assert_eq!(
        kind(&world.rooms.typing(&Actor::System, room).await.unwrap_err()),
        "Forbidden"
    );

    // Timed out: the agent may still write (and type); the customer may not.
    world.clock.advance(Policy::DEFAULT_INACTIVITY_TIMEOUT + DAY);
    assert_eq!(
        kind(&world.rooms.typing(&customer, room).await.unwrap_err()),
        "RoomTimedOut"
    );
    world.rooms.typing(&agent(), room).await.unwrap();

    world.rooms.close_room(&agent(), room).await.unwrap();
    world.clock.advance(DAY);
    assert_eq!(
        kind(&world.rooms.typing(&agent(), room).await.unwrap_err()),
        "RoomClosed"
    );
}

#[test]
fn the_interval_is_bounded() {
    for bad in [Duration::from_millis(249), Duration::from_millis(5_001)] {
        let result = RoomsConfig::default().with_typing_interval(bad);
        assert!(
            matches!(
                result,
                Err(Error::Invalid {
                    field: "typing_interval",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}
