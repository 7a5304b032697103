//! Room merge (issue 16): two rooms of one customer become one. The survivor holds the absorbed
//! room's timeline, documents and customer, in order; the absorbed room points to it; links,
//! sessions and delivery news of the absorbed room lead there; nothing crosses tenants.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use collab_core::memory::MemoryBlobStore;
use collab_core::rooms::{ExistingCustomer, InviteRequest, TimelineQuery, Upload};
use collab_core::*;
use common::*;
use futures_util::StreamExt;

fn upload(name: &str, bytes: &[u8]) -> Upload {
    Upload {
        file_name: name.to_owned(),
        data: Box::pin(futures_util::stream::iter([Ok(Bytes::from(bytes.to_vec()))])),
    }
}

async fn timeline(rooms: &rooms::Rooms, actor: &Actor, room: RoomId) -> Vec<Event> {
    rooms
        .timeline(
            actor,
            room,
            TimelineQuery::After {
                seq: Seq::ZERO,
                limit: 1_000,
            },
        )
        .await
        .unwrap()
}

/// Another room for Grace (the common room's customer), by the same address in another case,
/// with a message of its own.
async fn second_room(rooms: &rooms::Rooms, text: &str) -> RoomId {
    let room = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(
            &agent(),
            room,
            InviteRequest::email("Grace", "Hopper", "GRACE@example.com"),
        )
        .await
        .unwrap();
    rooms.post_message(&agent(), room, text, None).await.unwrap();
    room
}

#[tokio::test]
async fn the_survivor_holds_the_absorbed_timeline_and_its_links_and_sessions_lead_there() {
    let world = World::with(|builder| builder.blob_store(MemoryBlobStore::new()));
    let rooms = &world.rooms;
    let (absorbed, customer, session) = world.room_with_customer().await;
    let link = rooms.get_link(&agent(), absorbed).await.unwrap().link.unwrap();
    for text in ["first", "second", "third"] {
        rooms.post_message(&customer, absorbed, text, None).await.unwrap();
    }
    let document = rooms
        .share_document(&customer, absorbed, upload("notes.txt", b"grace's notes\n"))
        .await
        .unwrap();
    let EventData::DocumentShared(meta) = document.data else {
        panic!("a document event");
    };
    let survivor = second_room(rooms, "Welcome back").await;
    let survivor_link = rooms.get_link(&agent(), survivor).await.unwrap().link.unwrap();
    let absorbed_before = timeline(rooms, &agent(), absorbed).await;

    let after = rooms.merge_rooms(&agent(), absorbed, survivor).await.unwrap();
    assert_eq!(after.room(), survivor);

    // The survivor: its own events, then the absorbed room's, in their order, then the record.
    let events = timeline(rooms, &agent(), survivor).await;
    assert_eq!(message_texts(&events), ["Welcome back", "first", "second", "third"]);
    let Some(EventData::RoomMerged {
        absorbed: from,
        copied,
        customer: merged,
        invites,
    }) = events.last().map(|e| &e.data)
    else {
        panic!("the last event records the merge: {:?}", events.last());
    };
    assert_eq!(*from, absorbed);
    assert_eq!(invites.len(), 3, "the email invite and two links");
    let copies = &events[events.len() - 1 - usize::try_from(*copied).unwrap()..events.len() - 1];
    let originals: Vec<_> = absorbed_before
        .iter()
        .filter(|e| {
            matches!(
                e.data,
                EventData::CustomerInvited { .. }
                    | EventData::InviteDelivery { .. }
                    | EventData::CustomerJoined { .. }
                    | EventData::SessionRevoked { .. }
                    | EventData::MessagePosted { .. }
                    | EventData::DocumentShared(_)
            )
        })
        .collect();
    assert_eq!(copies.len(), originals.len());
    for (copy, original) in copies.iter().zip(originals) {
        assert_eq!(
            (&copy.data, &copy.actor, copy.at),
            (&original.data, &original.actor, original.at)
        );
        assert_eq!(copy.room, survivor);
    }
    assert_eq!(
        merged
            .as_ref()
            .and_then(|c| c.email.as_ref())
            .map(|e| e.as_str().to_owned()),
        Some("GRACE@example.com".to_owned()),
        "the survivor's customer stays its own"
    );
    let state = rooms.room(&agent(), survivor).await.unwrap();
    assert_eq!(state.document(meta.id), Some(&meta));
    let mut download = rooms.open_document(&agent(), survivor, meta.id, None).await.unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = download.stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes, b"grace's notes\n");

    // The absorbed room: its log as it was, then the pointer; it accepts nothing more.
    let events = timeline(rooms, &agent(), absorbed).await;
    assert_eq!(events[..absorbed_before.len()], absorbed_before[..]);
    assert_eq!(
        events.last().map(|e| &e.data),
        Some(&EventData::MergedInto { survivor })
    );
    let state = rooms.room(&agent(), absorbed).await.unwrap();
    assert_eq!(state.status(), RoomStatus::Merged);
    let refused = rooms.post_message(&agent(), absorbed, "hello?", None).await;
    assert!(
        matches!(refused, Err(Error::RoomMerged { into }) if into == survivor),
        "{refused:?}"
    );
    assert_eq!(refused.unwrap_err().kind().as_str(), "room_merged");

    // Her session from the absorbed room acts in the survivor.
    let moved = rooms.customer_session(session.token.expose()).await.unwrap();
    assert!(
        matches!(moved, Actor::Customer { room, .. } if room == survivor),
        "{moved:?}"
    );
    rooms.post_message(&moved, survivor, "found you", None).await.unwrap();
    assert_eq!(
        message_texts(&timeline(rooms, &moved, survivor).await)
            .last()
            .map(String::as_str),
        Some("found you")
    );
    // The absorbed room's link opens the survivor, and the survivor's own link still works:
    // neither room's links supersede the other's.
    let joined = rooms.join(link.token()).await.unwrap();
    assert_eq!(joined.room, survivor);
    assert_eq!(rooms.join(survivor_link.token()).await.unwrap().room, survivor);
    let invite = rooms.room(&agent(), absorbed).await.unwrap().invites()[0].id;
    rooms
        .record_delivery(absorbed, invite, DeliveryStatus::Delivered)
        .await
        .unwrap();
    let delivered = rooms.room(&agent(), survivor).await.unwrap();
    assert_eq!(delivered.invite(invite).unwrap().status, InviteStatus::Delivered);
    // A link issued after the merge supersedes both rooms' earlier ones.
    rooms.get_link(&agent(), survivor).await.unwrap();
    for old in [&link, &survivor_link] {
        assert!(matches!(rooms.join(old.token()).await, Err(Error::NotFound { .. })));
    }
}

/// Grace's room with a document she shared, merged into a second room of hers: the two rooms
/// and the document.
async fn merged_with_a_document(world: &World) -> (RoomId, RoomId, DocumentMeta) {
    let rooms = &world.rooms;
    let (absorbed, customer, _) = world.room_with_customer().await;
    let shared = rooms
        .share_document(&customer, absorbed, upload("kept.txt", b"kept\n"))
        .await
        .unwrap();
    let EventData::DocumentShared(meta) = shared.data else {
        panic!("a document event");
    };
    let survivor = second_room(rooms, "Welcome back").await;
    rooms.merge_rooms(&agent(), absorbed, survivor).await.unwrap();
    (absorbed, survivor, meta)
}

#[tokio::test]
async fn the_absorbed_room_s_documents_outlive_its_erasure_and_the_orphan_sweep() {
    let world = World::with(|builder| {
        builder.blob_store(MemoryBlobStore::new()).config(
            RoomsConfig::default()
                .with_orphan_grace(std::time::Duration::from_secs(60))
                .unwrap(),
        )
    });
    let rooms = &world.rooms;
    let (absorbed, survivor, meta) = merged_with_a_document(&world).await;

    rooms.erase_room(&agent(), absorbed).await.unwrap();
    world.clock.advance(DAY);
    let sweep = rooms.sweep_orphan_documents().await.unwrap();
    assert_eq!(sweep.deleted, 0, "{sweep:?}");
    assert!(rooms.open_document(&agent(), survivor, meta.id, None).await.is_ok());
    // The absorbed room erased still points to the survivor, without personal data.
    let state = rooms.room(&agent(), absorbed).await.unwrap();
    assert_eq!(
        (state.status(), state.merged_into()),
        (RoomStatus::Erased, Some(survivor))
    );

    // Erasing the survivor takes the documents with it.
    rooms.erase_room(&agent(), survivor).await.unwrap();
    assert!(rooms.open_document(&agent(), survivor, meta.id, None).await.is_err());
}

#[tokio::test]
async fn merges_that_would_mix_people_rooms_or_tenants_are_refused_and_change_nothing() {
    let world = World::new();
    let rooms = &world.rooms;
    let (absorbed, customer, _) = world.room_with_customer().await;
    let survivor = second_room(rooms, "Welcome back").await;
    let stranger = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(
            &agent(),
            stranger,
            InviteRequest::email("Ada", "Lovelace", "ada@example.com"),
        )
        .await
        .unwrap();
    let draft = rooms.create_room(&agent()).await.unwrap().room;
    let other_tenant = Actor::Agent {
        tenant: TenantId::new("globex").unwrap(),
        agent: AgentId::new("hank").unwrap(),
    };
    let seqs = |rooms: &rooms::Rooms| {
        let rooms = rooms.clone();
        async move {
            let mut seqs = Vec::new();
            for room in [absorbed, survivor, stranger, draft] {
                seqs.push(rooms.room(&agent(), room).await.unwrap().seq());
            }
            seqs
        }
    };
    let before = seqs(rooms).await;

    let invalid_field = |result: Result<RoomState, Error>| match result {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("not refused as invalid: {:?}", other.map(|s| s.room())),
    };
    assert_eq!(
        invalid_field(rooms.merge_rooms(&agent(), stranger, survivor).await),
        "into"
    );
    assert_eq!(
        invalid_field(rooms.merge_rooms(&agent(), draft, survivor).await),
        "into"
    );
    assert_eq!(
        invalid_field(rooms.merge_rooms(&agent(), survivor, survivor).await),
        "into"
    );
    assert!(matches!(
        rooms.merge_rooms(&other_tenant, absorbed, survivor).await,
        Err(Error::NotFound { .. })
    ));
    // The customer may not know of the other room; in her own room alone, she is no agent.
    assert!(matches!(
        rooms.merge_rooms(&customer, absorbed, survivor).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        rooms.merge_rooms(&customer, absorbed, absorbed).await,
        Err(Error::Forbidden)
    ));
    assert_eq!(seqs(rooms).await, before, "a refused merge changes nothing");

    rooms.merge_rooms(&agent(), absorbed, survivor).await.unwrap();
    // Once merged, neither way again; a closed survivor takes nothing in.
    assert!(matches!(
        rooms.merge_rooms(&agent(), absorbed, survivor).await,
        Err(Error::RoomMerged { into }) if into == survivor
    ));
    assert!(matches!(
        rooms.merge_rooms(&agent(), survivor, absorbed).await,
        Err(Error::RoomMerged { .. })
    ));
    let third = second_room(rooms, "a third room").await;
    rooms.close_room(&agent(), survivor).await.unwrap();
    assert!(matches!(
        rooms.merge_rooms(&agent(), third, survivor).await,
        Err(Error::RoomClosed)
    ));
}

#[tokio::test]
async fn a_merged_room_merged_again_leads_links_through_both() {
    let world = World::new();
    let rooms = &world.rooms;
    let (first, _, session) = world.room_with_customer().await;
    let second = second_room(rooms, "in the second").await;
    let third = second_room(rooms, "in the third").await;
    rooms.merge_rooms(&agent(), first, second).await.unwrap();
    rooms.merge_rooms(&agent(), second, third).await.unwrap();
    let moved = rooms.customer_session(session.token.expose()).await.unwrap();
    assert!(
        matches!(moved, Actor::Customer { room, .. } if room == third),
        "{moved:?}"
    );
    // The third room holds all three rooms' messages.
    let all = message_texts(&timeline(rooms, &agent(), third).await);
    assert_eq!(all, ["in the third", "in the second"]);
}

#[tokio::test]
async fn an_invite_to_a_customer_who_has_a_room_invites_answers_or_merges_as_configured() {
    let invite = |rooms: &rooms::Rooms, room| {
        let rooms = rooms.clone();
        async move {
            rooms
                .invite(
                    &agent(),
                    room,
                    InviteRequest::email("Grace", "Hopper", "Grace@Example.com"),
                )
                .await
        }
    };
    for existing in [
        ExistingCustomer::InviteHere,
        ExistingCustomer::Answer,
        ExistingCustomer::Merge,
    ] {
        let world = World::with(|builder| builder.config(RoomsConfig::default().with_existing_customer(existing)));
        let rooms = &world.rooms;
        let (first, _, _) = world.room_with_customer().await;
        let second = rooms.create_room(&agent()).await.unwrap().room;
        let seq = rooms.room(&agent(), second).await.unwrap().seq();
        let answer = invite(rooms, second).await;
        let second_now = rooms.room(&agent(), second).await.unwrap();
        let first_now = rooms.room(&agent(), first).await.unwrap();
        match existing {
            ExistingCustomer::InviteHere => {
                assert!(answer.unwrap().merged.is_empty());
                assert_eq!(
                    (first_now.status(), second_now.status()),
                    (RoomStatus::Active, RoomStatus::Active)
                );
            }
            ExistingCustomer::Answer => {
                assert!(
                    matches!(answer, Err(Error::CustomerHasRoom { room }) if room == first),
                    "{answer:?}"
                );
                assert_eq!(second_now.seq(), seq, "nothing changed");
                let queued: u64 = world
                    .store
                    .outbox_stats(world.clock.now())
                    .await
                    .unwrap()
                    .iter()
                    .map(|s| s.queued)
                    .sum();
                assert_eq!(queued, 1, "only the first room's invite is queued");
            }
            _ => {
                assert_eq!(answer.unwrap().merged, [first]);
                assert_eq!(first_now.merged_into(), Some(second));
                assert!(second_now.invites().len() > 1, "the first room's invites came along");
            }
        }
    }
}

#[tokio::test]
async fn retention_purges_a_merged_room_and_leaves_the_survivor_its_documents() {
    let world = World::with(|builder| {
        builder
            .blob_store(MemoryBlobStore::new())
            .config(RoomsConfig::default().with_retention(DAY).unwrap())
    });
    let rooms = &world.rooms;
    let (absorbed, survivor, meta) = merged_with_a_document(&world).await;

    world.clock.advance(2 * DAY);
    let sweep = rooms.sweep_retention().await.unwrap();
    assert_eq!(sweep.purged, 1, "the merged room, not the survivor: {sweep:?}");
    assert!(matches!(
        rooms.room(&agent(), absorbed).await,
        Err(Error::NotFound { .. })
    ));
    assert!(rooms.open_document(&agent(), survivor, meta.id, None).await.is_ok());
}

#[tokio::test]
async fn the_copies_are_nobody_s_unread_and_the_survivor_s_own_still_are() {
    let world = World::new();
    let rooms = &world.rooms;
    let (absorbed, customer, _) = world.room_with_customer().await;
    rooms
        .post_message(&customer, absorbed, "old question", None)
        .await
        .unwrap();
    let survivor = second_room(rooms, "Welcome back").await;
    let link = rooms.get_link(&agent(), survivor).await.unwrap().link.unwrap();
    let session = rooms.join(link.token()).await.unwrap();
    let here = rooms.customer_session(session.token.expose()).await.unwrap();
    rooms.post_message(&here, survivor, "new question", None).await.unwrap();
    assert_eq!(rooms.room(&agent(), survivor).await.unwrap().summary().unread, 1);

    let after = rooms.merge_rooms(&agent(), absorbed, survivor).await.unwrap();
    assert_eq!(
        after.summary().unread,
        1,
        "the survivor's own unread post, not the copy"
    );
    assert_eq!(after.unalerted().len(), 1, "its alert is still owed");
}
