//! The `Rooms` service: access, invites and links, sessions, chat, timeouts.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use collab_core::rooms::{InviteRequest, TimelineQuery};
use collab_core::store::{Append, ClaimedOutbox, Credential, EndedRooms, RoomPage, RoomQuery};
use collab_core::time::ManualClock;
use collab_core::*;
use common::*;
use futures_util::future::join_all;

fn stranger() -> Actor {
    Actor::Agent {
        tenant: TenantId::new("globex").expect("valid"),
        agent: AgentId::new("eve").expect("valid"),
    }
}

/// How an operation ended, as the access matrix writes it.
fn outcome<T>(result: Result<T, Error>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => kind(&e),
    }
}

fn text_upload() -> rooms::Upload {
    let data = futures_util::stream::iter([Ok(bytes::Bytes::from_static(b"a note"))]);
    rooms::Upload {
        file_name: "note.txt".into(),
        data: Box::pin(data),
    }
}

/// Runs the named operation as `actor` on `room`; fresh invite ids and texts each time.
async fn operate(world: &World, op: &str, actor: &Actor, room: RoomId) -> String {
    let rooms = &world.rooms;
    match op {
        "invite" => outcome(
            rooms
                .invite(actor, room, InviteRequest::again(Channel::Email, None))
                .await,
        ),
        "get_link" => outcome(rooms.get_link(actor, room).await),
        "revoke_invite" => {
            let invite = world.store.load_room(room).await.unwrap().unwrap().invites()[0].id;
            outcome(rooms.revoke_invite(actor, room, invite).await)
        }
        "revoke_session" => {
            let participant = world.store.load_room(room).await.unwrap().unwrap().participants()[0].id;
            outcome(rooms.revoke_session(actor, room, participant).await)
        }
        "close" => outcome(rooms.close_room(actor, room).await),
        "post" => outcome(rooms.post_message(actor, room, "hello", None).await),
        "timeline" => outcome(rooms.timeline(actor, room, TimelineQuery::Latest { limit: 10 }).await),
        "room" => outcome(rooms.room(actor, room).await),
        "customer_info" => outcome(rooms.customer_info(actor, room).await),
        "subscribe" => outcome(rooms.subscribe(actor, room, Seq::ZERO).await),
        "share" => outcome(rooms.share_document(actor, room, text_upload()).await),
        "open" => {
            let event = rooms
                .share_document(&agent(), room, text_upload())
                .await
                .expect("the agent shares");
            let EventData::DocumentShared(meta) = event.data else {
                unreachable!()
            };
            outcome(rooms.open_document(actor, room, meta.id, None).await)
        }
        other => panic!("unknown operation {other}"),
    }
}

#[tokio::test]
async fn the_access_matrix_holds_for_every_operation() {
    // operation: agent of the tenant, agent of another tenant, customer of the room,
    // customer of another room, revoked session
    let matrix = [
        ("invite", ["ok", "NotFound", "Forbidden", "NotFound", "Forbidden"]),
        ("get_link", ["ok", "NotFound", "Forbidden", "NotFound", "Forbidden"]),
        (
            "revoke_invite",
            ["ok", "NotFound", "Forbidden", "NotFound", "Forbidden"],
        ),
        (
            "revoke_session",
            ["ok", "NotFound", "Forbidden", "NotFound", "Forbidden"],
        ),
        ("close", ["ok", "NotFound", "Forbidden", "NotFound", "Forbidden"]),
        ("post", ["ok", "NotFound", "ok", "NotFound", "Forbidden"]),
        ("timeline", ["ok", "NotFound", "ok", "NotFound", "Forbidden"]),
        ("room", ["ok", "NotFound", "ok", "NotFound", "Forbidden"]),
        ("customer_info", ["ok", "NotFound", "ok", "NotFound", "Forbidden"]),
        ("subscribe", ["ok", "NotFound", "ok", "NotFound", "Forbidden"]),
        ("share", ["ok", "NotFound", "ok", "NotFound", "Forbidden"]),
        ("open", ["ok", "NotFound", "ok", "NotFound", "Forbidden"]),
    ];
    let mut mismatches = Vec::new();
    for (op, expected) in matrix {
        for (who, want) in expected.iter().enumerate() {
            // A fresh world per cell, so that one cell's effect (a close, a revoke) cannot
            // decide another's.
            let world = World::new();
            let (room, customer, _) = world.room_with_customer().await;
            let (_, other_customer, _) = world.room_with_customer().await;
            let actor = match who {
                0 => agent(),
                1 => stranger(),
                2 => customer,
                3 => other_customer,
                _ => {
                    let (revoked_room, revoked, _) = world.room_with_customer().await;
                    let Actor::Customer { participant, .. } = revoked else {
                        unreachable!()
                    };
                    world
                        .rooms
                        .revoke_session(&agent(), revoked_room, participant)
                        .await
                        .expect("revoke");
                    // The revoked customer tries its own room, which the op targets below.
                    let got = operate(&world, op, &revoked, revoked_room).await;
                    if got != *want {
                        mismatches.push(format!("{op} as revoked session: want {want}, got {got}"));
                    }
                    continue;
                }
            };
            let got = operate(&world, op, &actor, room).await;
            if got != *want {
                mismatches.push(format!("{op} as actor #{who}: want {want}, got {got}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

#[tokio::test]
async fn other_rooms_are_indistinguishable_from_missing_ones() {
    let world = World::new();
    let (room, _, _) = world.room_with_customer().await;
    let missing = RoomId::from_u128(0xdead);
    let theirs = world
        .rooms
        .post_message(&stranger(), room, "hi", None)
        .await
        .unwrap_err()
        .to_string();
    let nowhere = world
        .rooms
        .post_message(&stranger(), missing, "hi", None)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(theirs, nowhere);
    let (_, other_customer, _) = world.room_with_customer().await;
    let theirs = world
        .rooms
        .timeline(&other_customer, room, TimelineQuery::Latest { limit: 5 })
        .await
        .unwrap_err();
    assert_eq!(theirs.to_string(), nowhere);
    // Listing shows a tenant only its own rooms.
    let page = world
        .rooms
        .list_rooms(&stranger(), &RoomQuery::default())
        .await
        .expect("list");
    assert!(page.rooms.is_empty());
    let page = world
        .rooms
        .list_rooms(&agent(), &RoomQuery::default())
        .await
        .expect("list");
    assert_eq!(page.rooms.len(), 2);
    let customer_list = world.rooms.list_rooms(&other_customer, &RoomQuery::default()).await;
    assert!(matches!(customer_list, Err(Error::Forbidden)));
    assert!(matches!(
        world.rooms.create_room(&other_customer).await,
        Err(Error::Forbidden)
    ));
}

#[derive(Debug)]
struct OwnRoomsOnly;

impl rooms::AccessHook for OwnRoomsOnly {
    fn allow(&self, _: &TenantId, agent: &AgentId, _: rooms::Operation, room: Option<&RoomSummary>) -> bool {
        room.is_none_or(|r| r.agent == *agent)
    }
}

#[tokio::test]
async fn an_access_hook_refines_agent_permissions() {
    let world = World::with(|b| b.access_hook(OwnRoomsOnly));
    let (room, customer, _) = world.room_with_customer().await;
    let colleague = Actor::Agent {
        tenant: tenant(),
        agent: AgentId::new("bob").expect("valid"),
    };
    assert!(matches!(
        world.rooms.post_message(&colleague, room, "hi", None).await,
        Err(Error::Forbidden)
    ));
    world
        .rooms
        .post_message(&agent(), room, "hi", None)
        .await
        .expect("the owner may");
    world
        .rooms
        .post_message(&customer, room, "hi", None)
        .await
        .expect("customers are not agents");
}

#[tokio::test]
async fn the_hook_never_sees_nor_reveals_another_tenants_room() {
    let world = World::with(|b| b.access_hook(OwnRoomsOnly));
    let (room, _, _) = world.room_with_customer().await;
    let theirs = world
        .rooms
        .post_message(&stranger(), room, "hi", None)
        .await
        .unwrap_err()
        .to_string();
    let missing = world
        .rooms
        .post_message(&stranger(), RoomId::from_u128(0xdead), "hi", None)
        .await;
    assert_eq!(theirs, missing.unwrap_err().to_string());
}

#[tokio::test]
async fn revoking_a_session_kills_its_link_and_revoking_a_link_kills_its_sessions() {
    let world = World::new();
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    world
        .rooms
        .invite(&agent(), room, InviteRequest::email("Grace", "Hopper", "g@example.com"))
        .await
        .unwrap();
    let link = world.rooms.get_link(&agent(), room).await.unwrap();
    let token = link.link.as_ref().unwrap().token().to_owned();
    let session = world.rooms.join(&token).await.unwrap();
    world
        .rooms
        .revoke_session(&agent(), room, session.participant)
        .await
        .unwrap();
    assert!(
        matches!(
            world.rooms.join(&token).await,
            Err(Error::NotFound { what: Entity::Invite })
        ),
        "no way back in"
    );

    let again = world.rooms.get_link(&agent(), room).await.unwrap();
    let token = again.link.as_ref().unwrap().token().to_owned();
    let first = world.rooms.join(&token).await.unwrap();
    let second = world.rooms.join(&token).await.unwrap();
    world.rooms.revoke_invite(&agent(), room, again.invite).await.unwrap();
    for session in [first, second] {
        let result = world.rooms.customer_session(session.token.expose()).await;
        assert!(
            matches!(result, Err(Error::Forbidden)),
            "a session of a revoked link: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_closed_room_is_read_only_for_its_customer() {
    let world = World::new();
    let (room, customer, session) = world.room_with_customer().await;
    world.rooms.post_message(&customer, room, "before", None).await.unwrap();
    let document = world
        .rooms
        .share_document(&customer, room, upload("notes.txt", b"the notes\n"))
        .await
        .unwrap();
    let EventData::DocumentShared(document) = document.data else {
        panic!("not a document: {document:?}");
    };
    world.rooms.close_room(&agent(), room).await.unwrap();

    let read = world
        .rooms
        .timeline(&customer, room, TimelineQuery::Latest { limit: 10 })
        .await
        .expect("the customer still reads the history");
    assert!(
        read.iter()
            .any(|e| matches!(&e.data, EventData::MessagePosted { text, .. } if text == "before"))
    );
    assert_eq!(
        world.rooms.customer_session(session.token.expose()).await.unwrap(),
        customer,
        "the session still works"
    );
    assert_eq!(
        world.rooms.room(&customer, room).await.unwrap().status(),
        RoomStatus::Closed
    );
    world
        .rooms
        .open_document(&customer, room, document.id, None)
        .await
        .expect("the customer still downloads");

    assert!(matches!(
        world.rooms.post_message(&customer, room, "after", None).await,
        Err(Error::RoomClosed)
    ));
    assert!(matches!(
        world
            .rooms
            .share_document(&customer, room, upload("more.txt", b"more\n"))
            .await,
        Err(Error::RoomClosed)
    ));
    // A revoked session reads nothing, closed room or not.
    world
        .rooms
        .revoke_session(&agent(), room, session.participant)
        .await
        .unwrap();
    assert!(matches!(
        world
            .rooms
            .timeline(&customer, room, TimelineQuery::Latest { limit: 5 })
            .await,
        Err(Error::Forbidden)
    ));
}

fn upload(name: &str, bytes: &'static [u8]) -> collab_core::rooms::Upload {
    collab_core::rooms::Upload {
        file_name: name.to_owned(),
        data: Box::pin(futures_util::stream::iter([Ok(bytes::Bytes::from_static(bytes))])),
    }
}

#[tokio::test]
async fn the_library_actor_is_no_reader() {
    let world = World::new();
    let (room, _, _) = world.room_with_customer().await;
    let read = world
        .rooms
        .timeline(&Actor::System, room, TimelineQuery::Latest { limit: 5 })
        .await;
    assert!(matches!(read, Err(Error::Forbidden)));
}

#[tokio::test]
async fn debug_output_shows_no_room_content() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    world
        .rooms
        .post_message(&customer, room, "my card number is 4111", None)
        .await
        .unwrap();
    let debug = format!("{:?} {:?}", world.rooms, world.store);
    assert!(
        !debug.contains("4111") && !debug.contains("grace@example.com"),
        "{debug}"
    );
}

#[tokio::test]
async fn wrong_expired_and_revoked_tokens_give_one_error() {
    let world = World::new();
    let room = world.rooms.create_room(&agent()).await.expect("create").room;
    world
        .rooms
        .invite(
            &agent(),
            room,
            InviteRequest::email("Grace", "Hopper", "grace@example.com"),
        )
        .await
        .unwrap();
    let expired = world.rooms.get_link(&agent(), room).await.unwrap().link.unwrap();
    world.clock.advance(7 * DAY);
    let revoked = world.rooms.get_link(&agent(), room).await.unwrap();
    world
        .rooms
        .revoke_invite(&agent(), room, revoked.invite)
        .await
        .expect("revoke");
    let good = world.rooms.get_link(&agent(), room).await.unwrap().link.unwrap();
    let unknown = Token::generate().unwrap();

    let mut errors = Vec::new();
    for token in [
        "not a token",
        unknown.expose(),
        expired.token(),
        revoked.link.as_ref().unwrap().token(),
    ] {
        errors.push(world.rooms.join(token).await.unwrap_err().to_string());
    }
    assert!(errors.iter().all(|e| e == "invite not found"), "{errors:?}");
    let session = world.rooms.join(good.token()).await.expect("a current link works");
    assert_eq!(session.room, room);
    assert!(good.url().starts_with("http://127.0.0.1:8080/join/"));
    assert!(
        !format!("{good:?}{session:?}").contains(good.token()),
        "Debug hides secrets"
    );
}

#[tokio::test]
async fn sessions_are_bearer_tokens_stored_only_as_hashes_and_revocable() {
    let world = World::new();
    let (room, customer, session) = world.room_with_customer().await;
    // The store knows the session by its hash only.
    let stored = world.store.find_credential(&session.token.hash()).await.unwrap();
    assert!(matches!(stored, Some(Credential { room: r, .. }) if r == room));
    let log = serde_json::to_string(&world.store.read_events(room, Seq::ZERO, 1000).await.unwrap()).unwrap();
    assert!(!log.contains(session.token.expose()), "no token in the timeline");
    // Revoking ends it.
    let Actor::Customer { participant, .. } = customer else {
        unreachable!()
    };
    world
        .rooms
        .revoke_session(&agent(), room, participant)
        .await
        .expect("revoke");
    assert!(matches!(
        world.rooms.customer_session(session.token.expose()).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        world.rooms.customer_session("garbage").await,
        Err(Error::Forbidden)
    ));
}

#[tokio::test]
async fn invite_input_errors_name_the_field() {
    let world = World::new();
    let room = world.rooms.create_room(&agent()).await.expect("create").room;
    let cases = [
        (InviteRequest::email(" ", "Hopper", "grace@example.com"), "first_name"),
        (InviteRequest::email("Grace", "", "grace@example.com"), "last_name"),
        (InviteRequest::email("Grace", "Hopper", "grace@"), "email"),
        (InviteRequest::sms("Grace", "Hopper", "+1 555"), "phone"),
        (
            InviteRequest::again(Channel::Link, Some("grace@example.com")),
            "identifier",
        ),
    ];
    for (request, field) in cases {
        match world.rooms.invite(&agent(), room, request).await {
            Err(Error::Invalid { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.seq(), Seq::new(1), "nothing changed");
}

#[tokio::test]
async fn sms_is_refused_without_an_sms_notifier() {
    let email = Arc::new(notify::RecordingNotifier::new());
    let rooms = rooms::Rooms::builder().email(email).build();
    let room = rooms.create_room(&agent()).await.expect("create").room;
    let result = rooms
        .invite(&agent(), room, InviteRequest::sms("Grace", "Hopper", "+447911123456"))
        .await;
    assert!(matches!(result, Err(Error::SmsNotActivated)));
    assert!(!rooms.config().policy().sms_activated());
}

#[tokio::test]
async fn a_queued_invite_holds_no_token_and_its_link_is_minted_when_sent() {
    let world = World::new();
    let room = world.rooms.create_room(&agent()).await.expect("create").room;
    let issued = world
        .rooms
        .invite(&agent(), room, InviteRequest::sms("Grace", "Hopper", "+447911123456"))
        .await
        .unwrap();
    assert_eq!(issued.sms_segments, Some(1));
    assert!(issued.link.is_none());
    // Peek at the queued row, then put it back.
    let now = world.clock.now();
    let claimed: Vec<ClaimedOutbox> = world.store.claim_outbox(now, Duration::from_secs(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let payload = &claimed[0].message.payload;
    assert!(!payload.contains("/join/"), "no link waits in the outbox: {payload}");
    world.store.reschedule_outbox(claimed[0].message.id, now).await.unwrap();

    assert_eq!(world.rooms.dispatch_due().await.unwrap().sent, 1);
    let sent = world.sms.sent();
    assert!(
        sent[0]
            .text
            .starts_with("Hi Grace, join your collaboration room: http://127.0.0.1:8080/join/")
    );
    assert!(sent[0].text.ends_with(&sent[0].link));
    let token = sent[0].link.rsplit('/').next().unwrap();
    assert_eq!(world.rooms.join(token).await.expect("the sent link works").room, room);
}

#[tokio::test]
async fn a_long_sms_template_reports_its_segments() {
    let templates = notify::InviteTemplates::default()
        .with_sms(format!("{} {{link}}", "x".repeat(150)))
        .unwrap();
    let world = World::with(|b| b.config(rooms::RoomsConfig::default().with_templates(templates)));
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    let issued = world
        .rooms
        .invite(&agent(), room, InviteRequest::sms("Grace", "Hopper", "+447911123456"))
        .await
        .unwrap();
    assert_eq!(issued.sms_segments, Some(2));
}

#[tokio::test]
async fn a_retried_post_with_its_key_returns_the_original() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let first = world
        .rooms
        .post_message(&customer, room, "Here it is", Some("k-1"))
        .await
        .expect("post");
    world.clock.advance(Duration::from_secs(5));
    let again = world
        .rooms
        .post_message(&customer, room, "Here it is", Some("k-1"))
        .await
        .expect("retry");
    assert_eq!(again, first);
    let trimmed = world
        .rooms
        .post_message(&customer, room, "  Here it is\n", Some("k-1"))
        .await
        .expect("the same text as recorded");
    assert_eq!(trimmed, first);
    // The same key with another text is a mistake the client must hear of.
    let other = world
        .rooms
        .post_message(&customer, room, "Something else", Some("k-1"))
        .await;
    assert!(matches!(&other, Err(Error::Conflict { .. })), "{other:?}");
    assert_eq!(other.unwrap_err().kind().as_str(), "conflict");
    // The same key from someone else is their own message.
    let agents = world
        .rooms
        .post_message(&agent(), room, "Thanks", Some("k-1"))
        .await
        .expect("post");
    assert_ne!(agents.seq, first.seq);
    let timeline = world
        .rooms
        .timeline(
            &agent(),
            room,
            TimelineQuery::After {
                seq: Seq::ZERO,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let messages = timeline
        .iter()
        .filter(|e| matches!(e.data, EventData::MessagePosted { .. }))
        .count();
    assert_eq!(messages, 2);
}

/// A store that yields before each append, so concurrent commands really interleave, and counts
/// the appends it stores and the conflicts it reports.
#[derive(Debug)]
struct Interleaving {
    inner: memory::MemoryRoomStore,
    appends: AtomicUsize,
    conflicts: AtomicUsize,
    /// Whether idle_rooms names a room that does not exist before the real ones.
    ghost_idle_room: bool,
}

#[async_trait]
impl RoomStore for Interleaving {
    async fn append(&self, append: Append) -> Result<(), Error> {
        tokio::task::yield_now().await;
        let result = self.inner.append(append).await;
        match result {
            Ok(()) => self.appends.fetch_add(1, Ordering::Relaxed),
            Err(Error::Conflict { .. }) => self.conflicts.fetch_add(1, Ordering::Relaxed),
            Err(_) => 0,
        };
        result
    }
    async fn read_events(&self, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error> {
        self.inner.read_events(room, after, limit).await
    }
    async fn latest_events(&self, room: RoomId, limit: usize) -> Result<Vec<Event>, Error> {
        self.inner.latest_events(room, limit).await
    }
    async fn room_summary(&self, room: RoomId) -> Result<Option<RoomSummary>, Error> {
        self.inner.room_summary(room).await
    }
    async fn list_rooms(&self, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error> {
        self.inner.list_rooms(tenant, query).await
    }
    async fn idle_rooms(&self, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error> {
        let mut idle = self.inner.idle_rooms(idle_since, limit).await?;
        if self.ghost_idle_room {
            idle.insert(0, RoomId::from_u128(0x6057));
        }
        Ok(idle)
    }
    async fn find_credential(&self, hash: &TokenHash) -> Result<Option<Credential>, Error> {
        self.inner.find_credential(hash).await
    }
    async fn claim_outbox(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<ClaimedOutbox>, Error> {
        self.inner.claim_outbox(now, lease, limit).await
    }
    async fn reschedule_outbox(&self, id: OutboxId, not_before: Timestamp) -> Result<(), Error> {
        self.inner.reschedule_outbox(id, not_before).await
    }
    async fn delete_outbox(&self, id: OutboxId) -> Result<(), Error> {
        self.inner.delete_outbox(id).await
    }
    async fn add_credential(&self, credential: Credential) -> Result<(), Error> {
        self.inner.add_credential(credential).await
    }
    async fn erase(&self, append: Append) -> Result<(), Error> {
        self.inner.erase(append).await
    }
    async fn ended_rooms(&self, query: &EndedRooms) -> Result<Vec<RoomId>, Error> {
        self.inner.ended_rooms(query).await
    }
    async fn purge(&self, room: RoomId) -> Result<(), Error> {
        self.inner.purge(room).await
    }
}

impl Interleaving {
    fn new(ghost_idle_room: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: memory::MemoryRoomStore::new(),
            appends: AtomicUsize::new(0),
            conflicts: AtomicUsize::new(0),
            ghost_idle_room,
        })
    }
}

/// The messages of `room`, in order.
async fn posted_texts(store: &Interleaving, room: RoomId) -> Vec<String> {
    let events = store.read_events(room, Seq::ZERO, 1_000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq.get()).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>(), "gapless");
    message_texts(&events)
}

#[tokio::test]
async fn concurrent_posters_in_one_room_are_stored_together_each_once() {
    let store = Interleaving::new(false);
    let rooms = rooms::Rooms::builder().room_store(store.clone()).build();
    let room = rooms.create_room(&agent()).await.expect("create").room;
    let before = store.appends.load(Ordering::Relaxed);
    // More posters than the default 8 conflict retries could ever serve one at a time.
    let posts = (0..64).map(|i| {
        let rooms = rooms.clone();
        async move { rooms.post_message(&agent(), room, &format!("message {i}"), None).await }
    });
    let results = join_all(posts).await;
    for (i, result) in results.iter().enumerate() {
        let event = result.as_ref().expect("every post lands");
        assert!(
            matches!(&event.data, EventData::MessagePosted { text, .. } if *text == format!("message {i}")),
            "each caller gets its own event: {event:?}"
        );
    }
    let mut texts = posted_texts(&store, room).await;
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 64, "each message exactly once");
    let appends = store.appends.load(Ordering::Relaxed) - before;
    assert!(
        appends < 64,
        "posts queued together share appends: {appends} appends for 64 posts"
    );
    assert_eq!(
        store.conflicts.load(Ordering::Relaxed),
        0,
        "one process does not race itself"
    );
}

#[tokio::test]
async fn posters_on_two_servers_all_land_through_conflict_retries() {
    let store = Interleaving::new(false);
    let config = rooms::RoomsConfig::default().with_max_conflict_retries(100).unwrap();
    // Two services on one store: two servers, each batching its own posts.
    let servers = [
        rooms::Rooms::builder()
            .room_store(store.clone())
            .config(config.clone())
            .build(),
        rooms::Rooms::builder().room_store(store.clone()).config(config).build(),
    ];
    let room = servers[0].create_room(&agent()).await.expect("create").room;
    let posts = (0..40).map(|i| {
        let rooms = servers[i % 2].clone();
        async move {
            // Each in its own task, so that the two servers' batches really interleave.
            tokio::task::yield_now().await;
            rooms.post_message(&agent(), room, &format!("message {i}"), None).await
        }
    });
    let results = join_all(posts).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(store.conflicts.load(Ordering::Relaxed) > 0, "the servers really raced");
    let mut texts = posted_texts(&store, room).await;
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 40, "each message exactly once");
}

#[tokio::test]
async fn the_sweep_times_out_idle_rooms_and_a_reinvite_reopens_them() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    let (busy, _, _) = world.room_with_customer().await;
    world.clock.advance(89 * DAY);
    world
        .rooms
        .post_message(&agent(), busy, "still with us", None)
        .await
        .unwrap();
    world.clock.advance(2 * DAY);
    assert_eq!(world.rooms.sweep_timeouts().await.expect("sweep"), 1);
    assert_eq!(
        world.rooms.room(&agent(), room).await.unwrap().status(),
        RoomStatus::TimedOut
    );
    assert_eq!(
        world.rooms.room(&agent(), busy).await.unwrap().status(),
        RoomStatus::Active
    );
    assert_eq!(world.rooms.sweep_timeouts().await.expect("sweep"), 0, "nothing twice");
    assert!(matches!(
        world.rooms.post_message(&customer, room, "hello?", None).await,
        Err(Error::RoomTimedOut)
    ));
    world
        .rooms
        .timeline(&customer, room, TimelineQuery::Latest { limit: 5 })
        .await
        .expect("still readable");
    world
        .rooms
        .invite(&agent(), room, InviteRequest::again(Channel::Email, None))
        .await
        .expect("re-invite");
    world
        .rooms
        .post_message(&customer, room, "back", None)
        .await
        .expect("writable again");
}

#[tokio::test]
async fn one_failing_room_does_not_stop_the_sweep() {
    let store = Interleaving::new(true);
    let clock = Arc::new(ManualClock::new(T0));
    let rooms = rooms::Rooms::builder()
        .room_store(store.clone())
        .clock(clock.clone())
        .email(notify::RecordingNotifier::new())
        .build();
    let room = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(&agent(), room, InviteRequest::email("Grace", "Hopper", "g@example.com"))
        .await
        .unwrap();
    clock.advance(91 * DAY);
    assert_eq!(
        rooms.sweep_timeouts().await.expect("sweep"),
        1,
        "the real room timed out after the ghost failed"
    );
    assert_eq!(rooms.room(&agent(), room).await.unwrap().status(), RoomStatus::TimedOut);
}

#[tokio::test]
async fn delivery_reports_move_invites_forward_only() {
    let world = World::new();
    let room = world.rooms.create_room(&agent()).await.unwrap().room;
    let invite = world
        .rooms
        .invite(&agent(), room, InviteRequest::email("Grace", "Hopper", "g@example.com"))
        .await
        .unwrap()
        .invite;
    world
        .rooms
        .record_delivery(room, invite, DeliveryStatus::Delivered)
        .await
        .expect("delivered");
    let seq = world.rooms.room(&agent(), room).await.unwrap().seq();
    world
        .rooms
        .record_delivery(room, invite, DeliveryStatus::Sent { provider_id: None })
        .await
        .expect("late sent");
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(state.seq(), seq, "a late 'sent' records nothing");
    assert_eq!(state.invite(invite).map(|i| i.status), Some(InviteStatus::Delivered));
}

#[tokio::test]
async fn timeline_pages_are_bounded_and_ordered() {
    let world = World::new();
    let (room, customer, _) = world.room_with_customer().await;
    for i in 0..5 {
        world
            .rooms
            .post_message(&customer, room, &format!("m{i}"), None)
            .await
            .unwrap();
    }
    let latest = world
        .rooms
        .timeline(&agent(), room, TimelineQuery::Latest { limit: 2 })
        .await
        .unwrap();
    assert!(latest[0].seq > latest[1].seq);
    let after = world
        .rooms
        .timeline(
            &agent(),
            room,
            TimelineQuery::After {
                seq: latest[1].seq,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    for limit in [0, 1001] {
        let result = world
            .rooms
            .timeline(&agent(), room, TimelineQuery::Latest { limit })
            .await;
        assert!(matches!(result, Err(Error::Invalid { field: "limit", .. })));
    }
}

#[tokio::test]
async fn a_link_holds_one_session_so_replayed_joins_cannot_fill_the_room() {
    let world = World::new();
    let (room, first_customer, first_session) = world.room_with_customer().await;
    let link = world.rooms.get_link(&agent(), room).await.unwrap();
    let token = link.link.as_ref().unwrap().token().to_owned();
    let mut sessions = Vec::new();
    for _ in 0..decide::MAX_PARTICIPANTS + 20 {
        sessions.push(
            world
                .rooms
                .join(&token)
                .await
                .expect("a replayed join replaces its session"),
        );
    }
    let (last, replaced) = sessions.split_last().unwrap();
    for session in replaced {
        assert!(matches!(
            world.rooms.customer_session(session.token.expose()).await,
            Err(Error::Forbidden)
        ));
    }
    let actor = world
        .rooms
        .customer_session(last.token.expose())
        .await
        .expect("the latest session");
    world
        .rooms
        .post_message(&actor, room, "from the latest", None)
        .await
        .expect("it writes");
    // The other link's session is untouched, and new links still get in.
    assert_eq!(
        world
            .rooms
            .customer_session(first_session.token.expose())
            .await
            .unwrap(),
        first_customer
    );
    let state = world.rooms.room(&agent(), room).await.unwrap();
    let live = state.participants().iter().filter(|p| !p.revoked).count();
    assert_eq!(live, 2, "one live session per link");
    let other = world.rooms.get_link(&agent(), room).await.unwrap();
    let other = world
        .rooms
        .join(other.link.as_ref().unwrap().token())
        .await
        .expect("another link joins");
    assert_ne!(other.participant, last.participant);
}

#[test]
fn the_session_cap_counts_live_sessions_of_distinct_links() {
    let mut room = Room::new();
    for _ in 0..decide::MAX_PARTICIPANTS {
        let invite = room.invite_by_email();
        room.join(invite);
    }
    let one_more = room.invite_by_email();
    let participant = ParticipantId::from_u128(room.id());
    let refused = room.try_as(
        &Actor::System,
        &decide::Command::Join {
            invite: one_more,
            participant,
        },
    );
    assert!(
        matches!(
            refused,
            Err(Error::NotAllowed {
                reason: Rule::TooManySessions
            })
        ),
        "{refused:?}"
    );
    // Ending a session makes room for another link.
    let first = room.state.participants()[0].id;
    room.run(decide::Command::RevokeSession { participant: first }).unwrap();
    room.join(one_more);
}

#[tokio::test]
async fn a_customer_ends_their_own_session_and_the_link_opens_the_room_again() {
    let world = World::new();
    let (room, _) = email_invite(&world.rooms).await;
    let link = world.rooms.get_link(&agent(), room).await.unwrap();
    let token = link.link.as_ref().unwrap().token().to_owned();
    let session = world.rooms.join(&token).await.unwrap();
    let customer = world.rooms.customer_session(session.token.expose()).await.unwrap();

    world.rooms.end_session(&customer).await.expect("signs out");
    assert!(matches!(
        world.rooms.customer_session(session.token.expose()).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        world.rooms.post_message(&customer, room, "still here?", None).await,
        Err(Error::Forbidden)
    ));
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert!(state.participant(session.participant).unwrap().revoked);
    assert_eq!(
        state.invite(link.invite).unwrap().status,
        InviteStatus::Opened,
        "the invite is not revoked"
    );
    let last = world
        .rooms
        .timeline(&agent(), room, TimelineQuery::Latest { limit: 1 })
        .await
        .unwrap();
    assert!(matches!(&last[0].data, EventData::SessionRevoked { participant } if *participant == session.participant));
    assert_eq!(
        last[0].actor,
        EventActor::Customer(session.participant),
        "the customer did it"
    );

    // Idempotent: signing out again is no error and records nothing.
    world.rooms.end_session(&customer).await.expect("again");
    assert_eq!(world.rooms.room(&agent(), room).await.unwrap().seq(), state.seq());

    // The link from their email opens the room again, with a new session.
    let again = world.rooms.join(&token).await.expect("the link still works");
    assert_ne!(again.participant, session.participant);
    let back = world.rooms.customer_session(again.token.expose()).await.unwrap();
    world.rooms.post_message(&back, room, "back again", None).await.unwrap();
}

#[tokio::test]
async fn only_a_customer_ends_a_session_of_their_own_even_in_a_closed_room() {
    let world = World::new();
    let (room, customer, session) = world.room_with_customer().await;
    for actor in [agent(), stranger(), Actor::System] {
        let result = world.rooms.end_session(&actor).await;
        assert!(matches!(result, Err(Error::Forbidden)), "{actor:?}: {result:?}");
    }
    // A customer of another room ends only their own.
    let (_, other, _) = world.room_with_customer().await;
    world.rooms.end_session(&other).await.unwrap();
    assert_eq!(
        world.rooms.customer_session(session.token.expose()).await.unwrap(),
        customer
    );
    // A session the agent revoked is ended already.
    let (revoked_room, revoked, revoked_session) = world.room_with_customer().await;
    world
        .rooms
        .revoke_session(&agent(), revoked_room, revoked_session.participant)
        .await
        .unwrap();
    world
        .rooms
        .end_session(&revoked)
        .await
        .expect("ended already: no error");

    // Closed (and read-only for the customer), the room still lets them sign out.
    world.rooms.close_room(&agent(), room).await.unwrap();
    world
        .rooms
        .end_session(&customer)
        .await
        .expect("signs out of a closed room");
    assert!(matches!(
        world.rooms.customer_session(session.token.expose()).await,
        Err(Error::Forbidden)
    ));
}

#[tokio::test]
async fn a_customer_signs_out_of_a_timed_out_room() {
    let world = World::new();
    let (room, customer, session) = world.room_with_customer().await;
    world.clock.advance(Policy::DEFAULT_INACTIVITY_TIMEOUT + HOUR);
    let state = world.rooms.room(&agent(), room).await.unwrap();
    assert_eq!(world.rooms.current_status(&state), RoomStatus::TimedOut);
    world.rooms.end_session(&customer).await.expect("signs out");
    assert!(matches!(
        world.rooms.customer_session(session.token.expose()).await,
        Err(Error::Forbidden)
    ));
}
