//! Read horizons: each reader's last event seen, "Seen" on both sides, unread counts.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use collab_core::decide::Command;
use collab_core::store::RoomQuery;
use collab_core::*;
use common::*;

/// The rooms list's row of `room`, as an agent sees it.
async fn row(world: &World, room: RoomId) -> RoomSummary {
    let page = world.rooms.list_rooms(&agent(), &RoomQuery::default()).await.unwrap();
    page.rooms.into_iter().find(|r| r.room == room).unwrap()
}

#[tokio::test]
async fn horizons_move_forward_only_and_show_on_the_other_side() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let first = world
        .rooms
        .post_message(&agent(), room, "Hello Grace", None)
        .await
        .unwrap();
    let second = world
        .rooms
        .post_message(&agent(), room, "Any news?", None)
        .await
        .unwrap();

    world.rooms.mark_read(&customer, room, second.seq).await.unwrap();
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.seen_by_customer(), second.seq);
    assert_eq!(state.seen_by_agents(), Seq::ZERO, "no agent has read anything");

    // An older horizon, or the same one again, records nothing.
    let before = state.seq();
    world.rooms.mark_read(&customer, room, first.seq).await.unwrap();
    world.rooms.mark_read(&customer, room, second.seq).await.unwrap();
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.seq(), before, "nothing recorded");
    assert_eq!(state.seen_by_customer(), second.seq, "never moves back");

    // Past the last event: refused, naming the field.
    let result = world.rooms.mark_read(&customer, room, state.seq().next()).await;
    assert!(matches!(result, Err(Error::Invalid { field: "seq", .. })), "{result:?}");

    // The read event is in the timeline, by its reader, saying how far.
    let query = TimelineQuery::After {
        seq: Seq::ZERO,
        limit: 100,
    };
    let events = world.rooms.timeline(&agent(), room, query).await.unwrap();
    let read: Vec<(&EventActor, &EventData)> = events
        .iter()
        .filter(|e| e.data.type_name() == "read_up_to")
        .map(|e| (&e.actor, &e.data))
        .collect();
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(read[0].0, &customer.event_actor());
    assert_eq!(read[0].1, &EventData::ReadUpTo { seq: second.seq });
}

#[tokio::test]
async fn the_rooms_list_counts_what_no_agent_has_seen() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    assert_eq!(row(&world, room).await.unread, 0);
    let mut seqs = Vec::new();
    for text in ["Hi", "Here is the form", "Did you get it?"] {
        seqs.push(world.rooms.post_message(&customer, room, text, None).await.unwrap().seq);
    }
    // An agent's own posts are not unread.
    world
        .rooms
        .post_message(&agent(), room, "Looking now", None)
        .await
        .unwrap();
    assert_eq!(row(&world, room).await.unread, 3);

    world.rooms.mark_read(&agent(), room, seqs[1]).await.unwrap();
    assert_eq!(row(&world, room).await.unread, 1, "the third is past the horizon");
    // Another agent's horizon counts too: any agent's reading is the team's.
    let colleague = Actor::Agent {
        tenant: tenant(),
        agent: AgentId::new("bob").unwrap(),
    };
    world.rooms.mark_read(&colleague, room, seqs[2]).await.unwrap();
    assert_eq!(row(&world, room).await.unread, 0);
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.seen_by_agents(), seqs[2]);
    assert_eq!(
        state.read_horizon(&agent().event_actor()),
        seqs[1],
        "each agent keeps its own"
    );
    // The state rebuilt from the stored log says the same.
    let replayed = world.store.load_room(room).await.unwrap().unwrap();
    assert_eq!(replayed.summary().unread, 0);
    assert_eq!(replayed.seen_by_agents(), seqs[2]);
}

#[tokio::test]
async fn reading_is_not_activity_and_works_in_ended_rooms() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let idle_since = world.rooms.room(&agent(), room).await.unwrap().last_activity();
    world.clock.advance(Duration::from_secs(3600));
    let seq = world.rooms.room(&agent(), room).await.unwrap().seq();
    world.rooms.mark_read(&customer, room, seq).await.unwrap();
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.last_activity(), idle_since, "reading keeps no room alive");

    world.rooms.close_room(&agent(), room).await.unwrap();
    let last = world.rooms.room(&agent(), room).await.unwrap().seq();
    world.rooms.mark_read(&agent(), room, last).await.unwrap();
    world.rooms.mark_read(&customer, room, last).await.unwrap();
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!((state.seen_by_agents(), state.seen_by_customer()), (last, last));
    assert_eq!(state.status(), RoomStatus::Closed);
}

#[test]
fn the_library_does_not_read_and_others_cannot_read_for_a_room() {
    let mut room = Room::new();
    let invite = room.invite_by_email();
    let customer = room.join(invite);
    let up_to = room.state.seq();
    let system = room.try_as(&Actor::System, &Command::MarkRead { up_to });
    assert!(matches!(system, Err(Error::Forbidden)), "{system:?}");
    let stranger = Actor::Agent {
        tenant: TenantId::new("another").unwrap(),
        agent: AgentId::new("eve").unwrap(),
    };
    let other = room.try_as(&stranger, &Command::MarkRead { up_to });
    assert!(matches!(other, Err(Error::NotFound { .. })), "{other:?}");
    assert_eq!(room.run_as(&customer, Command::MarkRead { up_to }).unwrap().len(), 1);
}

#[tokio::test]
async fn reading_a_horizon_records_nothing_so_readers_cannot_loop() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let message = world.rooms.post_message(&agent(), room, "Hello", None).await.unwrap();
    world.rooms.mark_read(&customer, room, message.seq).await.unwrap();
    world.rooms.mark_read(&agent(), room, message.seq).await.unwrap();
    // Each side now "reads" the other's read event, again and again: nothing more is recorded.
    for _ in 0..3 {
        for reader in [&customer, &agent()] {
            let last = world.rooms.room(&agent(), room).await.unwrap().seq();
            world.rooms.mark_read(reader, room, last).await.unwrap();
        }
    }
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.seq(), message.seq.next().next(), "two read events, no more");
    assert_eq!(state.seen_by_customer(), message.seq);
    assert_eq!(state.last_readable(), message.seq);
}
