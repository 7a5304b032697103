//! Checks for [`RoomStore`] adapters.

use std::time::Duration;

use futures_util::future::join_all;

use crate::Error;
use crate::customer::{Channel, EmailAddress, PersonName, PhoneNumber, Recipient};
use crate::decide::{Actor, Command, Context, InviteCommand, create_room, decide, decide_merge};
use crate::event::{Event, Seq};
use crate::id::{AgentId, EndpointId, InviteId, OutboxId, ParticipantId, RoomId, TenantId};
use crate::policy::Policy;
use crate::settings::{SettingsChange, TenantSettings};
use crate::state::{RoomState, RoomStatus};
use crate::store::{
    Append, ClaimedOutbox, Credential, EndedRooms, Grant, OutboxKind, OutboxMessage, OutboxStats, OutboxTarget,
    RoomCursor, RoomQuery, RoomStore,
};
use crate::time::Timestamp;
use crate::token::Token;

use super::new_id;

/// A fixed start for the kit's clocks: 2026-11-28.
pub const T0: Timestamp = Timestamp::from_unix_millis(1_795_857_000_000);

/// A tenant no other check uses.
pub fn fresh_tenant() -> TenantId {
    TenantId::new(format!("tenant-{:x}", new_id())).expect("valid tenant")
}

fn agent_id(name: &str) -> AgentId {
    AgentId::new(name).expect("valid agent")
}

fn agent_of(state: &RoomState) -> Actor {
    Actor::Agent {
        tenant: state.tenant().clone(),
        agent: state.agent().clone(),
    }
}

/// A new room of `tenant` opened by `agent` at `at`, and the append that creates it.
pub fn create(tenant: &TenantId, agent: &str, at: Timestamp) -> (RoomState, Append) {
    let event = create_room(RoomId::from_u128(new_id()), tenant.clone(), agent_id(agent), at);
    let append = Append::new(None, vec![event]).expect("a valid first event");
    let state = RoomState::replay(&append.events).expect("replays").expect("exists");
    (state, append)
}

/// The append that runs `commands` in order as the room's agent at `at` (SMS activated), and
/// the state after it.
pub fn run(state: &RoomState, commands: Vec<Command>, at: Timestamp) -> (RoomState, Append) {
    let policy = Policy::default().with_sms_activated(true);
    let actor = agent_of(state);
    let ctx = Context {
        now: at,
        actor: &actor,
        policy: &policy,
    };
    let mut after = state.clone();
    let mut events = Vec::new();
    for command in &commands {
        let new = decide(&after, command, &ctx).expect("accepted");
        for event in &new {
            after.apply(event);
        }
        events.extend(new);
    }
    (after, Append::new(Some(state), events).expect("valid events"))
}

/// The append that runs one `command` as the room's agent.
pub fn command(state: &RoomState, command: Command, at: Timestamp) -> (RoomState, Append) {
    run(state, vec![command], at)
}

/// The append that posts `text` as the room's agent.
pub fn post(state: &RoomState, text: &str, at: Timestamp) -> (RoomState, Append) {
    let text = text.to_owned();
    command(state, Command::PostMessage { text, client_key: None }, at)
}

/// The append that invites the customer by email, and also by SMS when `phone` is given.
pub fn invite(
    state: &RoomState,
    first: &str,
    last: &str,
    email: &str,
    phone: Option<&str>,
    at: Timestamp,
) -> (RoomState, Append) {
    let mut commands = vec![Command::Invite(InviteCommand {
        invite: InviteId::from_u128(new_id()),
        channel: Channel::Email,
        first_name: Some(PersonName::parse("first_name", first).expect("valid name")),
        last_name: Some(PersonName::parse("last_name", last).expect("valid name")),
        recipient: Some(Recipient::Email(EmailAddress::parse(email).expect("valid email"))),
        locale: None,
    })];
    if let Some(phone) = phone {
        commands.push(Command::Invite(InviteCommand {
            invite: InviteId::from_u128(new_id()),
            channel: Channel::Sms,
            first_name: None,
            last_name: None,
            recipient: Some(Recipient::Phone(PhoneNumber::parse(phone).expect("valid phone"))),
            locale: None,
        }));
    }
    run(state, commands, at)
}

fn outbox_row(room: RoomId, not_before: Timestamp) -> OutboxMessage {
    outbox_row_on(room, Channel::Email, not_before)
}

fn outbox_row_on(room: RoomId, channel: Channel, not_before: Timestamp) -> OutboxMessage {
    outbox_row_for(
        room,
        OutboxTarget::Invite {
            invite: InviteId::from_u128(new_id()),
            channel,
        },
        not_before,
    )
}

fn outbox_row_for(room: RoomId, target: OutboxTarget, not_before: Timestamp) -> OutboxMessage {
    OutboxMessage {
        id: OutboxId::from_u128(new_id()),
        room,
        target,
        payload: format!("payload {}", new_id()),
        not_before,
    }
}

fn credential(room: RoomId) -> Credential {
    Credential {
        hash: Token::generate().expect("os random number generator").hash(),
        room,
        grant: Grant::Invite(InviteId::from_u128(new_id())),
    }
}

async fn all_events(store: &dyn RoomStore, room: RoomId) -> Vec<Event> {
    store
        .read_events(room, Seq::ZERO, usize::MAX)
        .await
        .expect("read events")
}

/// Stores the append of what [`create`], [`run`] and the like return, and gives back the state
/// after it.
async fn stored(store: &dyn RoomStore, (state, append): (RoomState, Append)) -> RoomState {
    store.append(append).await.expect("append");
    state
}

/// A room with `n` events (created, then `n - 1` posts), already stored.
async fn stored_room(store: &dyn RoomStore, n: u64) -> (RoomState, Vec<Event>) {
    let (mut state, append) = create(&fresh_tenant(), "agent-a", T0);
    let mut events = append.events.clone();
    store.append(append).await.expect("create");
    for i in 1..n {
        let (next, append) = post(
            &state,
            &format!("message {i}"),
            T0.saturating_add(Duration::from_secs(i)),
        );
        events.extend(append.events.iter().cloned());
        store.append(append).await.expect("post");
        state = next;
    }
    (state, events)
}

/// Appended events read back equal, in order, across several appends.
pub async fn append_then_read_in_order(store: &dyn RoomStore) {
    let (state, events) = stored_room(store, 5).await;
    assert_eq!(all_events(store, state.room()).await, events);
    let seqs: Vec<u64> = events.iter().map(|e| e.seq.get()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    // Several events in one append.
    let (state, append) = invite(
        &state,
        "Grace",
        "Hopper",
        "grace@example.com",
        None,
        T0.saturating_add(Duration::from_secs(60)),
    );
    assert!(append.events.len() > 1, "an invite records the invite and the rename");
    let expected = append.events.clone();
    store.append(append).await.expect("invite");
    let read = store.read_events(state.room(), Seq::new(5), 100).await.expect("read");
    assert_eq!(read, expected);
}

/// An append whose expected seq is stale, ahead, or re-creates a room is a conflict.
pub async fn stale_expected_seq_is_a_conflict(store: &dyn RoomStore) {
    let (state, events) = stored_room(store, 3).await;
    // As if the writer had seen seq 2 only.
    let append = renumbered(post(&state, "late", T0).1, Seq::new(2));
    assert!(
        matches!(store.append(append).await, Err(Error::Conflict { .. })),
        "stale seq"
    );
    let ahead = renumbered(post(&state, "ahead", T0).1, Seq::new(7));
    assert!(
        matches!(store.append(ahead).await, Err(Error::Conflict { .. })),
        "seq ahead"
    );
    let recreate = Append::new(None, vec![events[0].clone()]).expect("valid");
    assert!(
        matches!(store.append(recreate).await, Err(Error::Conflict { .. })),
        "room created twice"
    );
    assert_eq!(all_events(store, state.room()).await, events, "nothing changed");
}

/// Appends whose parts disagree are refused as invalid and write nothing.
pub async fn malformed_appends_are_refused(store: &dyn RoomStore) {
    let (state, events) = stored_room(store, 2).await;
    let (_, good) = post(&state, "hello", T0);

    let mut empty = good.clone();
    empty.events.clear();
    let mut gap = good.clone();
    gap.events[0].seq = Seq::new(4);
    let mut foreign = good.clone();
    foreign.events[0].room = RoomId::from_u128(new_id());
    let mut wrong_summary = good.clone();
    wrong_summary.summary.seq = Seq::new(9);
    let mut foreign_outbox = good.clone();
    foreign_outbox.outbox.push(outbox_row(RoomId::from_u128(new_id()), T0));
    for (what, bad) in [
        ("empty", empty),
        ("gap", gap),
        ("foreign event", foreign),
        ("summary", wrong_summary),
        ("foreign outbox", foreign_outbox),
    ] {
        let result = store.append(bad).await;
        assert!(matches!(result, Err(Error::Invalid { .. })), "{what}: {result:?}");
    }
    assert_eq!(all_events(store, state.room()).await, events, "nothing changed");
}

/// A refused append stores none of its events, outbox rows or credentials.
pub async fn a_refused_append_writes_nothing(store: &dyn RoomStore) {
    let (state, events) = stored_room(store, 2).await;
    let (_, mut append) = post(&state, "hello", T0);
    append.outbox.push(outbox_row(state.room(), T0));
    let cred = credential(state.room());
    append.credentials.push(cred);
    let append = renumbered(append, Seq::new(1));
    assert!(matches!(store.append(append).await, Err(Error::Conflict { .. })));
    assert_eq!(all_events(store, state.room()).await, events);
    assert_eq!(store.find_credential(&cred.hash).await.expect("lookup"), None);
    let claimed = store
        .claim_outbox(T0, Duration::from_secs(60), 1000)
        .await
        .expect("claim");
    assert!(
        claimed.iter().all(|c| c.message.room != state.room()),
        "no outbox row of the refused append"
    );

    // A credential hash that exists already refuses the whole append too.
    let (_, mut first) = post(&state, "first", T0);
    let taken = credential(state.room());
    first.credentials.push(taken);
    store.append(first).await.expect("first credential");
    let (state2, _) = post(&state, "first", T0);
    let (_, mut second) = post(&state2, "second", T0);
    second.credentials.push(Credential {
        grant: Grant::Session(ParticipantId::from_u128(new_id())),
        ..taken
    });
    assert!(
        matches!(store.append(second).await, Err(Error::Conflict { .. })),
        "duplicate token hash"
    );
    assert_eq!(all_events(store, state.room()).await.len(), 3);
}

/// `read_events` at the edges: after the last, past the end, limit zero, partial pages.
pub async fn read_events_pagination_edges(store: &dyn RoomStore) {
    let (state, events) = stored_room(store, 10).await;
    let room = state.room();
    assert!(
        store.read_events(room, Seq::new(10), 5).await.expect("read").is_empty(),
        "after the last"
    );
    assert!(
        store.read_events(room, Seq::new(50), 5).await.expect("read").is_empty(),
        "past the end"
    );
    assert!(
        store.read_events(room, Seq::ZERO, 0).await.expect("read").is_empty(),
        "limit zero"
    );
    assert_eq!(store.read_events(room, Seq::ZERO, 3).await.expect("read"), events[..3]);
    assert_eq!(
        store.read_events(room, Seq::new(7), 100).await.expect("read"),
        events[7..]
    );
    assert_eq!(
        store.read_events(room, Seq::new(9), 1).await.expect("read"),
        events[9..]
    );
    // Paging through gives every event once.
    let mut seen = Vec::new();
    let mut after = Seq::ZERO;
    loop {
        let page = store.read_events(room, after, 4).await.expect("read");
        let Some(last) = page.last() else { break };
        after = last.seq;
        seen.extend(page);
        assert!(seen.len() <= events.len(), "paging does not end: {after} read last");
    }
    assert_eq!(seen, events);
}

/// `latest_events` returns the last events, newest first.
pub async fn latest_events_are_newest_first(store: &dyn RoomStore) {
    let (state, events) = stored_room(store, 6).await;
    let latest = store.latest_events(state.room(), 4).await.expect("latest");
    let expected: Vec<Event> = events.iter().rev().take(4).cloned().collect();
    assert_eq!(latest, expected);
    assert_eq!(store.latest_events(state.room(), 100).await.expect("latest").len(), 6);
    assert!(store.latest_events(state.room(), 0).await.expect("latest").is_empty());
}

/// A room never written reads as empty, and its lookups find nothing.
pub async fn unknown_rooms_read_empty(store: &dyn RoomStore) {
    let room = RoomId::from_u128(new_id());
    assert!(store.read_events(room, Seq::ZERO, 10).await.expect("read").is_empty());
    assert!(store.latest_events(room, 10).await.expect("latest").is_empty());
    assert_eq!(store.room_summary(room).await.expect("summary"), None);
    assert_eq!(store.load_room(room).await.expect("load"), None);
    let unknown = Token::generate().expect("os random number generator").hash();
    assert_eq!(store.find_credential(&unknown).await.expect("lookup"), None);
}

/// The stored summary is the one of the last append, and `load_room` folds to the same state.
pub async fn summary_follows_appends(store: &dyn RoomStore) {
    let (state, _) = stored_room(store, 3).await;
    assert_eq!(
        store.room_summary(state.room()).await.expect("summary").as_ref(),
        Some(state.summary())
    );
    let later = T0.saturating_add(Duration::from_secs(3600));
    let (state, append) = invite(
        &state,
        "Grace",
        "Hopper",
        "grace@example.com",
        Some("+447911123456"),
        later,
    );
    store.append(append).await.expect("invite");
    let summary = store
        .room_summary(state.room())
        .await
        .expect("summary")
        .expect("exists");
    assert_eq!(&summary, state.summary());
    assert_eq!(summary.name, "Grace Hopper");
    assert_eq!(summary.status, RoomStatus::Active);
    assert_eq!(summary.last_activity, later);
    assert_eq!(store.load_room(state.room()).await.expect("load"), Some(state));
}

/// Rooms list newest first; paging through gives each room once, and pages are honest
/// about their end.
pub async fn list_rooms_pages_newest_first(store: &dyn RoomStore) {
    let tenant = fresh_tenant();
    let mut expected = Vec::new();
    for i in 0..23u64 {
        // Pairs of rooms share a creation time, so the id must break the tie.
        let (state, append) = create(&tenant, "agent-a", T0.saturating_add(Duration::from_secs(i / 2)));
        store.append(append).await.expect("create");
        expected.push(state.summary().clone());
    }
    expected.sort_by_key(|s| std::cmp::Reverse(RoomCursor::after(s)));
    for limit in [1, 5, 23, 100] {
        let mut seen = Vec::new();
        let mut after: Option<RoomCursor> = None;
        loop {
            let query = RoomQuery {
                limit,
                after,
                ..RoomQuery::default()
            };
            let page = store.list_rooms(&tenant, &query).await.expect("list");
            assert!(page.rooms.len() <= limit);
            seen.extend(page.rooms.iter().cloned());
            match page.next {
                Some(next) => {
                    assert_eq!(
                        Some(next),
                        page.rooms.last().map(RoomCursor::after),
                        "next points past the page"
                    );
                    // The cursor survives a round trip through its text form.
                    after = Some(next.to_string().parse().expect("cursor parses"));
                }
                None => break,
            }
            assert!(seen.len() <= expected.len(), "paging does not end");
        }
        assert_eq!(seen, expected, "limit {limit}");
    }
}

/// Each filter of [`RoomQuery`] selects exactly the matching rooms of the tenant.
pub async fn list_rooms_filters(store: &dyn RoomStore) {
    let tenant = fresh_tenant();
    let other_tenant = fresh_tenant();
    let at = |s| T0.saturating_add(Duration::from_secs(s));
    let invite_grace =
        |room: &RoomState, at| invite(room, "Grace", "Hopper", "grace@example.com", Some("+447911123456"), at);
    let draft = stored(store, create(&tenant, "agent-a", at(1))).await;
    let grace = stored(store, create(&tenant, "agent-a", at(2))).await;
    let grace = stored(store, invite_grace(&grace, at(3))).await;
    let ada = stored(store, create(&tenant, "agent-b", at(4))).await;
    let ada = stored(
        store,
        invite(&ada, "Ada", "Lovelace", "Ada.Lovelace@Example.org", None, at(5)),
    )
    .await;
    let closed = stored(store, create(&tenant, "agent-b", at(6))).await;
    let closed = stored(store, command(&closed, Command::Close, at(7))).await;
    // The same customer in another tenant must never show up.
    let stranger = stored(store, create(&other_tenant, "agent-a", at(8))).await;
    stored(store, invite_grace(&stranger, at(9))).await;

    let query = |set: &dyn Fn(&mut RoomQuery)| {
        let mut query = RoomQuery::default();
        set(&mut query);
        query
    };
    let by_prefix = |p: &str| query(&|q| q.name_prefix = Some(p.to_owned()));
    let phone = PhoneNumber::parse("+447911123456").expect("valid");
    let email = EmailAddress::parse("ada.lovelace@example.org").expect("valid");
    let shouted = EmailAddress::parse("ADA.LOVELACE@EXAMPLE.ORG").expect("valid");
    // Each query, and the rooms it lists, newest first.
    let cases: Vec<(&str, RoomQuery, Vec<RoomId>)> = vec![
        (
            "no filter",
            RoomQuery::default(),
            vec![closed.room(), ada.room(), grace.room(), draft.room()],
        ),
        (
            "agent",
            query(&|q| q.agent = Some(agent_id("agent-b"))),
            vec![closed.room(), ada.room()],
        ),
        ("first name prefix", by_prefix("gra"), vec![grace.room()]),
        ("last name prefix, any case", by_prefix("HOP"), vec![grace.room()]),
        ("full name prefix", by_prefix("grace h"), vec![grace.room()]),
        ("trimmed", by_prefix("  ada "), vec![ada.room()]),
        ("prefix, not substring", by_prefix("race"), vec![]),
        ("phone", query(&|q| q.phone = Some(phone.clone())), vec![grace.room()]),
        (
            "email, any case",
            query(&|q| q.email = Some(email.clone())),
            vec![ada.room()],
        ),
        (
            "email, shouted",
            query(&|q| q.email = Some(shouted.clone())),
            vec![ada.room()],
        ),
        (
            "status",
            query(&|q| q.status = Some(RoomStatus::Draft)),
            vec![draft.room()],
        ),
        (
            "filters combine",
            query(&|q| {
                q.status = Some(RoomStatus::Closed);
                q.agent = Some(agent_id("agent-a"));
            }),
            vec![],
        ),
    ];
    for (what, query, expected) in cases {
        let page = store.list_rooms(&tenant, &query).await.expect("list");
        let rooms: Vec<RoomId> = page.rooms.iter().map(|r| r.room).collect();
        assert_eq!(rooms, expected, "{what}: {query:?}");
    }
    // Found by any spelling, shown as given.
    let page = store
        .list_rooms(&tenant, &query(&|q| q.email = Some(shouted.clone())))
        .await
        .expect("list");
    let shown = page
        .rooms
        .first()
        .and_then(|r| r.customer.as_ref())
        .and_then(|c| c.email.as_ref());
    assert_eq!(shown.map(EmailAddress::as_str), Some("Ada.Lovelace@example.org"));
}

/// The address [`room_invited_by_email`] invites, as typed.
pub const TYPED_EMAIL: &str = "Grace.Hopper@example.com";

/// A room of a fresh tenant whose customer is invited at [`TYPED_EMAIL`]: for the SQL stores'
/// migration tests, which then rewrite the row as an older version would have.
pub async fn room_invited_by_email(store: &dyn RoomStore) -> (TenantId, RoomState) {
    let tenant = fresh_tenant();
    let room = stored(store, create(&tenant, "agent", T0)).await;
    let room = stored(store, invite(&room, "Grace", "Hopper", TYPED_EMAIL, None, T0)).await;
    (tenant, room)
}

/// Asserts that a search for [`TYPED_EMAIL`] in capitals lists exactly `room`, showing the
/// address as typed.
pub async fn assert_found_by_email_in_any_case(store: &dyn RoomStore, tenant: &TenantId, room: RoomId) {
    let query = RoomQuery {
        email: Some(EmailAddress::parse(&TYPED_EMAIL.to_uppercase()).expect("valid")),
        ..RoomQuery::default()
    };
    let page = store.list_rooms(tenant, &query).await.expect("list");
    let found: Vec<(RoomId, Option<&str>)> = page
        .rooms
        .iter()
        .map(|r| {
            (
                r.room,
                r.customer
                    .as_ref()
                    .and_then(|c| c.email.as_ref())
                    .map(EmailAddress::as_str),
            )
        })
        .collect();
    assert_eq!(found, [(room, Some(TYPED_EMAIL))]);
}

/// Limits outside 1 to 500 and blank name prefixes are invalid.
pub async fn list_rooms_refuses_bad_queries(store: &dyn RoomStore) {
    let tenant = fresh_tenant();
    for query in [
        RoomQuery {
            limit: 0,
            ..RoomQuery::default()
        },
        RoomQuery {
            limit: 501,
            ..RoomQuery::default()
        },
        RoomQuery {
            name_prefix: Some("  ".into()),
            ..RoomQuery::default()
        },
    ] {
        let result = store.list_rooms(&tenant, &query).await;
        assert!(matches!(result, Err(Error::Invalid { .. })), "{query:?}: {result:?}");
    }
}

/// Credentials are found by their hash, with their room and grant.
pub async fn credentials_are_found_by_hash(store: &dyn RoomStore) {
    let (state, _) = stored_room(store, 1).await;
    let (_, mut append) = post(&state, "hello", T0);
    let invite = credential(state.room());
    let session = Credential {
        grant: Grant::Session(ParticipantId::from_u128(new_id())),
        ..credential(state.room())
    };
    append.credentials.extend([invite, session]);
    store.append(append).await.expect("append");
    assert_eq!(store.find_credential(&invite.hash).await.expect("lookup"), Some(invite));
    assert_eq!(
        store.find_credential(&session.hash).await.expect("lookup"),
        Some(session)
    );
}

/// A credential added on its own is found, and a taken hash is refused.
pub async fn credentials_can_be_added_alone(store: &dyn RoomStore) {
    let (state, _) = stored_room(store, 1).await;
    let credential = credential(state.room());
    store.add_credential(credential).await.expect("add");
    assert_eq!(
        store.find_credential(&credential.hash).await.expect("lookup"),
        Some(credential)
    );
    let again = Credential {
        grant: Grant::Session(ParticipantId::from_u128(new_id())),
        ..credential
    };
    assert!(matches!(store.add_credential(again).await, Err(Error::Conflict { .. })));
    assert_eq!(
        store.find_credential(&credential.hash).await.expect("lookup"),
        Some(credential)
    );
}

/// Outbox rows are claimed when due, held by a lease, counted, rescheduled and deleted.
pub async fn outbox_claims_lease_and_reschedule(store: &dyn RoomStore) {
    let (state, _) = stored_room(store, 1).await;
    let room = state.room();
    // Far in the future, so rows of other checks sharing the store are not due.
    let now = Timestamp::from_unix_millis(4_000_000_000_000);
    let later = now.saturating_add(Duration::from_secs(3600));
    let due = outbox_row(room, now);
    let not_yet = outbox_row(room, later);
    let (state, mut append) = post(&state, "hello", T0);
    append.outbox.extend([due.clone(), not_yet.clone()]);
    store.append(append).await.expect("append");
    let lease = Duration::from_secs(30);
    let mine = |claimed: Vec<ClaimedOutbox>| -> Vec<ClaimedOutbox> {
        claimed.into_iter().filter(|c| c.message.room == room).collect()
    };

    let first = mine(store.claim_outbox(now, lease, 100).await.expect("claim"));
    assert_eq!(
        first,
        [ClaimedOutbox {
            message: due.clone(),
            attempts: 1
        }],
        "only the due row"
    );
    assert!(
        mine(store.claim_outbox(now, lease, 100).await.expect("claim")).is_empty(),
        "held by its lease"
    );
    let expired = now.saturating_add(lease);
    let second = mine(store.claim_outbox(expired, lease, 100).await.expect("claim"));
    assert_eq!(second.len(), 1, "claimable again once the lease ran out");
    assert_eq!(second[0].attempts, 2);

    store.reschedule_outbox(due.id, later).await.expect("reschedule");
    let third = mine(store.claim_outbox(later, lease, 100).await.expect("claim"));
    let ids: Vec<OutboxId> = third.iter().map(|c| c.message.id).collect();
    let mut by_id = [due.id, not_yet.id];
    by_id.sort();
    assert_eq!(ids, by_id, "both due at the same time: in id order");
    let rescheduled = third.iter().find(|c| c.message.id == due.id).expect("claimed");
    assert_eq!(rescheduled.attempts, 3);
    assert_eq!(rescheduled.message.payload, due.payload);
    assert_eq!(rescheduled.message.not_before, later);

    store.delete_outbox(due.id).await.expect("delete");
    assert!(matches!(store.delete_outbox(due.id).await, Err(Error::NotFound { .. })));
    assert!(matches!(
        store.reschedule_outbox(due.id, now).await,
        Err(Error::NotFound { .. })
    ));
    let far = later.saturating_add(Duration::from_secs(86_400));
    let left = mine(store.claim_outbox(far, lease, 100).await.expect("claim"));
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].message.id, not_yet.id);
    // The limit is honoured.
    store.delete_outbox(not_yet.id).await.expect("delete");
    let (_, mut append) = post(&state, "three rows", T0);
    let rows = [outbox_row(room, now), outbox_row(room, now), outbox_row(room, now)];
    append.outbox.extend(rows.iter().cloned());
    store.append(append).await.expect("append");
    let limited = store.claim_outbox(far, lease, 2).await.expect("claim");
    assert_eq!(limited.len(), 2);
}

/// A row of every kind comes back from a claim as it was queued: its target (kind and subject)
/// and payload. Agent alerts and customer reminders have one subject per room.
pub async fn every_outbox_kind_comes_back_as_queued(store: &dyn RoomStore) {
    let (state, _) = stored_room(store, 1).await;
    let room = state.room();
    // Far in the future, so rows of other checks sharing the store are not due.
    let now = Timestamp::from_unix_millis(4_200_000_000_000);
    let targets = [
        OutboxTarget::Invite {
            invite: InviteId::from_u128(new_id()),
            channel: Channel::Sms,
        },
        OutboxTarget::Invite {
            invite: InviteId::from_u128(new_id()),
            channel: Channel::Email,
        },
        OutboxTarget::Webhook {
            endpoint: EndpointId::from_u128(new_id()),
        },
        OutboxTarget::AgentAlert,
        OutboxTarget::CustomerReminder,
    ];
    let kinds: Vec<OutboxKind> = targets.iter().map(|t| t.kind()).collect();
    assert_eq!(kinds, OutboxKind::ALL, "one row of every kind");
    let rows: Vec<OutboxMessage> = targets.into_iter().map(|t| outbox_row_for(room, t, now)).collect();
    let (_, mut append) = post(&state, "one of each", T0);
    append.outbox.extend(rows.iter().cloned());
    store.append(append).await.expect("append");
    let mut claimed: Vec<OutboxMessage> = store
        .claim_outbox(now, Duration::from_secs(30), 100)
        .await
        .expect("claim")
        .into_iter()
        .map(|c| c.message)
        .filter(|m| m.room == room)
        .collect();
    claimed.sort_by_key(|m| m.target.kind());
    let mut expected = rows;
    expected.sort_by_key(|m| m.target.kind());
    assert_eq!(claimed, expected);
    for row in &expected {
        store.delete_outbox(row.id).await.expect("delete");
    }
}

/// Rows of one room and subject are claimed in the order they were queued, whatever their
/// `not_before`: a later row waits while an earlier one is there (due, leased or not yet due);
/// rows of another subject or room do not wait. Webhooks rely on it for their order per room.
pub async fn outbox_rows_of_a_subject_wait_their_turn(store: &dyn RoomStore) {
    let (state, _) = stored_room(store, 1).await;
    let room = state.room();
    let (other_state, _) = stored_room(store, 1).await;
    // Far in the future, so rows of other checks sharing the store are not due.
    let now = Timestamp::from_unix_millis(4_100_000_000_000);
    let later = now.saturating_add(Duration::from_secs(3600));
    let lease = Duration::from_secs(30);
    let endpoint = OutboxTarget::Webhook {
        endpoint: EndpointId::from_u128(new_id()),
    };
    let other_endpoint = OutboxTarget::Webhook {
        endpoint: EndpointId::from_u128(new_id()),
    };
    // Queued first but due last; then, in one append, two more for the same endpoint.
    let first = outbox_row_for(room, endpoint, later);
    let (state, mut append) = post(&state, "first", T0);
    append.outbox.push(first.clone());
    store.append(append).await.expect("append");
    let second = outbox_row_for(room, endpoint, now);
    let third = outbox_row_for(room, endpoint, now);
    let elsewhere = outbox_row_for(room, other_endpoint, now);
    let (state, mut append) = post(&state, "second and third", T0);
    append.outbox.extend([second.clone(), third.clone(), elsewhere.clone()]);
    store.append(append).await.expect("append");
    let other_room = outbox_row_for(other_state.room(), endpoint, now);
    let (_, mut append) = post(&other_state, "another room", T0);
    append.outbox.push(other_room.clone());
    store.append(append).await.expect("append");
    let mine = |claimed: Vec<ClaimedOutbox>| -> Vec<OutboxId> {
        let mut ids: Vec<OutboxId> = claimed
            .into_iter()
            .filter(|c| c.message.room == room || c.message.room == other_state.room())
            .map(|c| c.message.id)
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<OutboxId>| {
        ids.sort();
        ids
    };

    assert_eq!(
        mine(store.claim_outbox(now, lease, 100).await.expect("claim")),
        sorted(vec![elsewhere.id, other_room.id]),
        "the endpoint's rows wait for its first row, which is not due yet; other subjects and rooms do not"
    );
    for id in [elsewhere.id, other_room.id] {
        store.delete_outbox(id).await.expect("delete");
    }
    let claimed = mine(store.claim_outbox(later, lease, 100).await.expect("claim"));
    assert_eq!(
        claimed,
        [first.id],
        "the first row, once due; the later rows still wait"
    );
    store
        .reschedule_outbox(first.id, later.saturating_add(Duration::from_secs(600)))
        .await
        .expect("reschedule");
    assert_eq!(
        mine(
            store
                .claim_outbox(later.saturating_add(lease), lease, 100)
                .await
                .expect("claim")
        ),
        [],
        "a rescheduled first row still holds the others back"
    );
    store.delete_outbox(first.id).await.expect("delete");
    let far = later.saturating_add(Duration::from_secs(86_400));
    assert_eq!(
        mine(store.claim_outbox(far, lease, 100).await.expect("claim")),
        [second.id],
        "next in line once the first is gone; the third was queued after it in the same append"
    );
    // Completed by an append this time, the other way a row goes.
    let (_, mut append) = post(&state, "second delivered", T0);
    append.completed_outbox.push(second.id);
    store.append(append).await.expect("append");
    assert_eq!(
        mine(store.claim_outbox(far, lease, 100).await.expect("claim")),
        [third.id],
        "last in line, once the row before it was completed"
    );
    store.delete_outbox(third.id).await.expect("delete");
}

/// `outbox_stats` counts each channel's queued and due rows and finds the oldest due one, as
/// rows are queued, claimed (a leased row is not due until its lease ends) and deleted. Needs
/// a store of its own, as the macros give each check: it counts every row of the store.
pub async fn outbox_stats_count_queued_and_due(store: &dyn RoomStore) {
    let now = Timestamp::from_unix_millis(4_200_000_000_000);
    let ago = |s| now.saturating_sub(Duration::from_secs(s));
    let stats = |now| async move {
        let mut stats = store.outbox_stats(now).await.expect("outbox stats");
        stats.sort_by_key(|s| s.kind.as_str());
        stats
    };
    assert_eq!(stats(now).await, [], "an empty outbox has no channel");

    let (state, _) = stored_room(store, 1).await;
    let room = state.room();
    let oldest = outbox_row_on(room, Channel::Email, ago(60));
    let newer = outbox_row_on(room, Channel::Email, ago(10));
    let later = outbox_row_on(room, Channel::Email, now.saturating_add(Duration::from_secs(3600)));
    let sms = outbox_row_on(room, Channel::Sms, ago(30));
    let (_, mut append) = post(&state, "queue", T0);
    append
        .outbox
        .extend([oldest.clone(), newer.clone(), later.clone(), sms.clone()]);
    store.append(append).await.expect("append");
    let sms_stats = OutboxStats::new(OutboxKind::Invite(Channel::Sms), 1, 1, Some(ago(30)));
    assert_eq!(
        stats(now).await,
        [
            OutboxStats::new(OutboxKind::Invite(Channel::Email), 3, 2, Some(ago(60))),
            sms_stats
        ],
        "queued"
    );

    let lease = Duration::from_secs(30);
    let claimed = store.claim_outbox(now, lease, 1).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message.id, oldest.id, "the oldest due row first");
    assert_eq!(
        stats(now).await,
        [
            OutboxStats::new(OutboxKind::Invite(Channel::Email), 3, 1, Some(ago(10))),
            sms_stats
        ],
        "a claimed row is queued, not due"
    );
    let lease_over = now.saturating_add(lease);
    assert_eq!(
        stats(lease_over).await,
        [
            OutboxStats::new(OutboxKind::Invite(Channel::Email), 3, 2, Some(ago(60))),
            OutboxStats::new(OutboxKind::Invite(Channel::Sms), 1, 1, Some(ago(30)))
        ],
        "due again once its lease ran out"
    );

    store.delete_outbox(newer.id).await.expect("delete");
    assert_eq!(
        stats(now).await,
        [
            OutboxStats::new(OutboxKind::Invite(Channel::Email), 2, 0, None),
            sms_stats
        ],
        "none due: the leased row and the later one"
    );
    store.delete_outbox(sms.id).await.expect("delete");
    assert_eq!(
        stats(now).await,
        [OutboxStats::new(OutboxKind::Invite(Channel::Email), 2, 0, None)],
        "a channel without rows is left out"
    );
}

/// Completing outbox rows happens with the append that records the outcome, or not at all.
pub async fn completing_outbox_rows_is_atomic(store: &dyn RoomStore) {
    let (state, _) = stored_room(store, 1).await;
    let room = state.room();
    let now = Timestamp::from_unix_millis(4_100_000_000_000);
    let row = outbox_row(room, now);
    let (state, mut append) = post(&state, "queue", T0);
    append.outbox.push(row.clone());
    store.append(append).await.expect("append");

    let (state, mut done) = post(&state, "sent", T0);
    done.completed_outbox.push(row.id);
    let twice = done.clone();
    store.append(done).await.expect("complete");
    let mine = store
        .claim_outbox(now, Duration::from_secs(5), 1000)
        .await
        .expect("claim");
    assert!(mine.iter().all(|c| c.message.id != row.id), "completed rows are gone");

    // Completing it again (a second dispatcher) is refused, and its events are not written.
    let twice = renumbered(twice, state.seq());
    assert!(matches!(store.append(twice).await, Err(Error::Conflict { .. })));
    assert_eq!(all_events(store, room).await.len(), 3);
}

/// A row queued for a room and subject while the row before it is deleted, concurrently, is
/// claimable once the delete is done: never left waiting behind a row that is gone, whichever
/// of the two writes goes first.
pub async fn a_row_queued_while_the_one_before_goes_is_claimable(store: &dyn RoomStore) {
    let (mut state, _) = stored_room(store, 1).await;
    let room = state.room();
    let far = Timestamp::from_unix_millis(4_200_000_000_000);
    let lease = Duration::from_secs(30);
    let target = OutboxTarget::Webhook {
        endpoint: EndpointId::from_u128(new_id()),
    };
    let mut head = outbox_row_for(room, target, far);
    let (next, mut append) = post(&state, "the first row", T0);
    append.outbox.push(head.clone());
    store.append(append).await.expect("append");
    state = next;
    for round in 0..50 {
        let queued = outbox_row_for(room, target, far);
        let (next, mut append) = post(&state, &format!("round {round}"), T0);
        append.outbox.push(queued.clone());
        let (deleted, appended) = futures_util::future::join(store.delete_outbox(head.id), store.append(append)).await;
        deleted.expect("delete");
        appended.expect("append");
        state = next;
        let claimed: Vec<OutboxId> = store
            .claim_outbox(far, lease, 100)
            .await
            .expect("claim")
            .into_iter()
            .filter(|c| c.message.room == room)
            .map(|c| c.message.id)
            .collect();
        assert_eq!(
            claimed,
            [queued.id],
            "round {round}: the row queued last is next in line"
        );
        store
            .reschedule_outbox(queued.id, far)
            .await
            .expect("put back for the next round");
        head = queued;
    }
    store.delete_outbox(head.id).await.expect("delete");
}

/// `idle_rooms` lists active rooms idle since the cutoff, oldest activity first.
pub async fn idle_rooms_are_active_and_idle(store: &dyn RoomStore) {
    let tenant = fresh_tenant();
    // Long before other checks' rooms, so that they do not show up.
    let base = Timestamp::from_unix_millis(1_000_000_000_000);
    let at = |s| base.saturating_add(Duration::from_secs(s));
    // A room created at `at(0)` whose customer `name` is invited at `invited`.
    let customer_room = |name: &str, invited| {
        let tenant = tenant.clone();
        let email = format!("{}@example.com", name.to_lowercase());
        let name = name.to_owned();
        async move {
            let room = stored(store, create(&tenant, "agent-a", at(0))).await;
            stored(store, invite(&room, &name, "Customer", &email, None, invited)).await
        }
    };
    let draft = stored(store, create(&tenant, "agent-a", at(0))).await;
    let old = customer_room("Old", at(10)).await;
    let older = customer_room("Older", at(5)).await;
    customer_room("Fresh", at(100)).await;
    let closed = customer_room("Closed", at(1)).await;
    stored(store, command(&closed, Command::Close, at(2))).await;

    let idle = store.idle_rooms(at(10), 100).await.expect("idle");
    assert_eq!(idle, [older.room(), old.room()]);
    assert!(!idle.contains(&draft.room()));
    assert_eq!(store.idle_rooms(at(10), 1).await.expect("idle"), [older.room()]);
}

/// Of many appends racing with the same expected seq, exactly one wins; the log stays whole.
pub async fn concurrent_appends_have_one_winner(store: &dyn RoomStore) {
    let (state, _) = stored_room(store, 1).await;
    let appends: Vec<Append> = (0..16).map(|i| post(&state, &format!("racer {i}"), T0).1).collect();
    let results = join_all(appends.into_iter().map(|a| store.append(a))).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(Error::Conflict { .. })))
    );
    let events = all_events(store, state.room()).await;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq.get()).collect();
    assert_eq!(seqs, [1, 2]);
}

/// `append` (of one event) renumbered as if its writer had seen the room up to `seen`.
fn renumbered(mut append: Append, seen: Seq) -> Append {
    append.expected = seen;
    append.events[0].seq = seen.next();
    append.summary.seq = seen.next();
    append
}

/// `append` renumbered as if its writer had seen one event fewer: always stale.
pub fn stale(append: Append) -> Append {
    let behind = Seq::new(append.expected.get().saturating_sub(1));
    renumbered(append, behind)
}

/// Appends to many rooms at once, as a store that commits them in groups meets them: per
/// room, of two valid appends with the same expected seq exactly one wins and each stale one
/// is a `Conflict`, whatever the other appends of its group do; nothing is lost or doubled.
pub async fn racing_appends_over_many_rooms_are_answered_one_by_one(store: &dyn RoomStore) {
    let tenant = fresh_tenant();
    let mut rooms = Vec::new();
    for _ in 0..16 {
        let (state, append) = create(&tenant, "agent", T0);
        store.append(append).await.expect("create");
        rooms.push(state);
    }
    for round in 0..5 {
        let mut appends = Vec::new();
        for (i, state) in rooms.iter().enumerate() {
            let first = post(state, &format!("round {round} first"), T0).1;
            let second = post(state, &format!("round {round} second"), T0).1;
            appends.push((i, true, first.clone()));
            appends.push((i, true, second));
            appends.push((i, false, stale(first.clone())));
            appends.push((i, false, stale(first)));
        }
        let results = join_all(appends.iter().map(|(_, _, a)| store.append(a.clone()))).await;
        for (room, state) in rooms.iter_mut().enumerate() {
            let mine: Vec<(bool, &Result<(), Error>)> = appends
                .iter()
                .zip(&results)
                .filter(|((i, _, _), _)| *i == room)
                .map(|((_, valid, _), r)| (*valid, r))
                .collect();
            let valid_wins = mine.iter().filter(|(valid, r)| *valid && r.is_ok()).count();
            assert_eq!(valid_wins, 1, "round {round} room {room}: {mine:?}");
            for (valid, result) in &mine {
                if !valid {
                    assert!(
                        matches!(result, Err(Error::Conflict { .. })),
                        "a stale append: {result:?}"
                    );
                }
            }
            *state = store.load_room(state.room()).await.expect("load").expect("the room");
        }
    }
    for state in &rooms {
        let seqs: Vec<u64> = all_events(store, state.room())
            .await
            .iter()
            .map(|e| e.seq.get())
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6], "nothing lost, nothing doubled");
    }
}

/// The JSON of every stored event of `room` and of its summary, for looking for leftovers.
async fn stored_text(store: &dyn RoomStore, room: RoomId) -> String {
    let events = serde_json::to_string(&all_events(store, room).await).expect("serialisable");
    let summary = serde_json::to_string(&store.room_summary(room).await.expect("summary")).expect("serialisable");
    events + &summary
}

/// `erase` keeps the log's sequence numbers but none of its content, records the erasure, and
/// drops the room's credentials and outbox rows, all at once; other rooms keep theirs.
pub async fn erase_redacts_the_log_and_drops_credentials_and_outbox(store: &dyn RoomStore) {
    let tenant = fresh_tenant();
    let at = |s| T0.saturating_add(Duration::from_secs(s));
    let room = stored(store, create(&tenant, "agent-a", at(0))).await;
    let (state, mut append) = invite(
        &room,
        "Erasmus",
        "Forgotten",
        "erasmus@example.com",
        Some("+14155550123"),
        at(1),
    );
    let (cred, row) = (credential(state.room()), outbox_row(state.room(), at(1)));
    append.credentials.push(cred);
    append.outbox.push(row.clone());
    store.append(append).await.expect("invite");
    // Not hexadecimal: the random ids in the stored text cannot contain it by chance.
    let state = stored(store, post(&state, "my secret is zebra-quartz", at(2))).await;
    let before = all_events(store, state.room()).await;

    let other = stored(store, create(&tenant, "agent-a", at(0))).await;
    let (other, mut append) = invite(&other, "Kept", "Customer", "kept@example.com", None, at(1));
    let (other_cred, other_row) = (credential(other.room()), outbox_row(other.room(), at(1)));
    append.credentials.push(other_cred);
    append.outbox.push(other_row.clone());
    store.append(append).await.expect("other room");

    let scope = crate::event::ErasureScope::Room;
    let (erased, mut erase) = command(&state, Command::Erase { scope }, at(3));
    // The erasure's own outbox row (a webhook saying it is done).
    let own_row = outbox_row(state.room(), at(3));
    erase.outbox.push(own_row.clone());
    // A stale erasure is refused and changes nothing.
    let stale = renumbered(erase.clone(), Seq::ZERO.next());
    assert!(matches!(store.erase(stale).await, Err(Error::Conflict { .. })));
    assert_eq!(
        all_events(store, state.room()).await,
        before,
        "a refused erasure changed the log"
    );
    store.erase(erase).await.expect("erase");

    let after = all_events(store, state.room()).await;
    assert_eq!(
        after.len(),
        before.len() + 1,
        "sequence numbers stay, and the erasure is added"
    );
    assert_eq!(after[0], before[0], "the first event holds no personal data and stays");
    for (old, new) in before.iter().zip(&after).skip(1) {
        assert_eq!((new.seq, new.at, &new.actor), (old.seq, old.at, &old.actor));
        assert_eq!(
            new.data,
            crate::EventData::Redacted {
                was: old.data.type_name().to_owned()
            }
        );
    }
    assert_eq!(
        after.last().map(|e| &e.data),
        Some(&crate::EventData::RoomErased { scope })
    );
    let text = stored_text(store, state.room()).await;
    for personal in [
        "Erasmus",
        "Forgotten",
        "erasmus@example.com",
        "4155550123",
        "zebra-quartz",
    ] {
        assert!(!text.contains(personal), "{personal:?} is still stored: {text}");
    }
    let summary = store.room_summary(state.room()).await.expect("summary").expect("room");
    assert_eq!(summary, *erased.summary());
    assert_eq!((summary.status, summary.customer.as_ref()), (RoomStatus::Erased, None));
    assert_eq!(
        store.load_room(state.room()).await.expect("load").as_ref(),
        Some(&erased),
        "the redacted log folds to the erased state"
    );

    assert_eq!(store.find_credential(&cred.hash).await.expect("lookup"), None);
    assert!(matches!(store.delete_outbox(row.id).await, Err(Error::NotFound { .. })));
    store
        .delete_outbox(own_row.id)
        .await
        .expect("the erasure's own row stays");
    assert!(store.find_credential(&other_cred.hash).await.expect("lookup").is_some());
    store
        .delete_outbox(other_row.id)
        .await
        .expect("the other room's row stays");
    let by_email = RoomQuery {
        email: Some(EmailAddress::parse("erasmus@example.com").expect("valid")),
        ..RoomQuery::default()
    };
    assert!(
        store
            .list_rooms(&tenant, &by_email)
            .await
            .expect("list")
            .rooms
            .is_empty()
    );
    let by_name = RoomQuery {
        name_prefix: Some("kept".into()),
        ..RoomQuery::default()
    };
    assert_eq!(store.list_rooms(&tenant, &by_name).await.expect("list").rooms.len(), 1);
}

/// `ended_rooms` lists rooms that timed out, closed or were erased by the cutoff, earliest end
/// first, of one tenant or of all tenants but some.
pub async fn ended_rooms_by_tenant_and_end(store: &dyn RoomStore) {
    // Long before other checks' rooms, so that the all-tenants query meets only these.
    let base = Timestamp::from_unix_millis(900_000_000_000);
    let at = |s| base.saturating_add(Duration::from_secs(s));
    let (tenant, kept_tenant) = (fresh_tenant(), fresh_tenant());
    let customer_room = |tenant: TenantId| async move {
        let room = stored(store, create(&tenant, "agent-a", at(0))).await;
        stored(
            store,
            invite(&room, "Ended", "Customer", "ended@example.com", None, at(0)),
        )
        .await
    };
    let closed_late = customer_room(tenant.clone()).await;
    stored(store, command(&closed_late, Command::Close, at(300))).await;
    let closed_early = customer_room(tenant.clone()).await;
    stored(store, command(&closed_early, Command::Close, at(100))).await;
    let timeout = Policy::default().inactivity_timeout().as_secs();
    let timed_out = customer_room(tenant.clone()).await;
    stored(store, command(&timed_out, Command::TimeOut, at(timeout + 1))).await;
    let active = customer_room(tenant.clone()).await;
    stored(store, post(&active, "still here", at(50))).await;
    let draft = stored(store, create(&tenant, "agent-a", at(0))).await;
    let other_tenant = customer_room(kept_tenant.clone()).await;
    stored(store, command(&other_tenant, Command::Close, at(10))).await;

    let query = |tenant: Option<&TenantId>, except: Vec<TenantId>, until: u64, limit| EndedRooms {
        tenant: tenant.cloned(),
        except,
        ended_before: at(until),
        limit,
    };
    let ended = |query| async move { store.ended_rooms(&query).await.expect("ended rooms") };
    assert_eq!(
        ended(query(Some(&tenant), Vec::new(), timeout + 1, 10)).await,
        [closed_early.room(), closed_late.room(), timed_out.room()]
    );
    assert_eq!(
        ended(query(Some(&tenant), Vec::new(), 299, 10)).await,
        [closed_early.room()]
    );
    assert_eq!(
        ended(query(Some(&tenant), Vec::new(), timeout + 1, 1)).await,
        [closed_early.room()]
    );
    assert_eq!(
        ended(query(None, Vec::new(), 300, 10)).await,
        [other_tenant.room(), closed_early.room(), closed_late.room()]
    );
    assert_eq!(
        ended(query(None, vec![tenant.clone()], 300, 10)).await,
        [other_tenant.room()]
    );
    let listed = ended(query(Some(&tenant), Vec::new(), u64::from(u32::MAX), 10)).await;
    assert!(!listed.contains(&active.room()) && !listed.contains(&draft.room()));
}

/// `purge` deletes every row of a room, and nothing of another; purging again is no error.
pub async fn purge_deletes_every_row(store: &dyn RoomStore) {
    let tenant = fresh_tenant();
    let room = stored(store, create(&tenant, "agent-a", T0)).await;
    let (state, mut append) = invite(&room, "Purged", "Customer", "purged@example.com", None, T0);
    let (cred, row) = (credential(state.room()), outbox_row(state.room(), T0));
    append.credentials.push(cred);
    append.outbox.push(row.clone());
    store.append(append).await.expect("invite");
    let (kept, _) = stored_room(store, 3).await;
    let kept_cred = credential(kept.room());
    store.add_credential(kept_cred).await.expect("credential");

    store.purge(state.room()).await.expect("purge");
    assert!(all_events(store, state.room()).await.is_empty());
    assert_eq!(store.room_summary(state.room()).await.expect("summary"), None);
    assert_eq!(store.find_credential(&cred.hash).await.expect("lookup"), None);
    assert!(matches!(store.delete_outbox(row.id).await, Err(Error::NotFound { .. })));
    assert!(
        store
            .list_rooms(&tenant, &RoomQuery::default())
            .await
            .expect("list")
            .rooms
            .is_empty()
    );
    store.purge(state.room()).await.expect("purging again");

    assert_eq!(all_events(store, kept.room()).await.len(), 3);
    assert!(store.find_credential(&kept_cred.hash).await.expect("lookup").is_some());
}

/// The two appends that merge `absorbed` (whose whole log is `log`) into `survivor`, decided
/// as the survivor's agent at `at`.
pub fn merge(survivor: &RoomState, absorbed: &RoomState, log: &[Event], at: Timestamp) -> (Append, Append) {
    let policy = Policy::default();
    let actor = agent_of(survivor);
    let ctx = Context {
        now: at,
        actor: &actor,
        policy: &policy,
    };
    let events = decide_merge(survivor, absorbed, log, &ctx).expect("a merge of one customer's rooms");
    (
        Append::new(Some(survivor), events.survivor).expect("valid survivor events"),
        Append::new(Some(absorbed), events.absorbed).expect("valid absorbed events"),
    )
}

/// Two rooms of one tenant whose customer has the same email address, stored: the survivor
/// (invited), and the absorbed room (invited, then `posts` messages).
async fn rooms_of_one_customer(store: &dyn RoomStore, posts: u64) -> (RoomState, RoomState) {
    let tenant = fresh_tenant();
    let survivor = stored(store, create(&tenant, "agent-a", T0)).await;
    let survivor = stored(store, invite(&survivor, "Ada", "Lovelace", "ada@example.com", None, T0)).await;
    let absorbed = stored(store, create(&tenant, "agent-b", T0)).await;
    let mut absorbed = stored(
        store,
        invite(
            &absorbed,
            "Ada",
            "Lovelace",
            "ADA@example.com",
            Some("+14155550101"),
            T0,
        ),
    )
    .await;
    for i in 0..posts {
        let at = T0.saturating_add(Duration::from_secs(i + 1));
        absorbed = stored(store, post(&absorbed, &format!("absorbed {i}"), at)).await;
    }
    (survivor, absorbed)
}

/// A merge writes both rooms: the survivor's copies and record, the absorbed room's pointer,
/// and both summaries (the absorbed room "merged"); its credentials and outbox rows too.
pub async fn merge_writes_both_rooms(store: &dyn RoomStore) {
    let (survivor, absorbed) = rooms_of_one_customer(store, 3).await;
    let log = all_events(store, absorbed.room()).await;
    let (mut to_survivor, to_absorbed) = merge(&survivor, &absorbed, &log, T0.saturating_add(Duration::from_secs(60)));
    let cred = credential(survivor.room());
    to_survivor.credentials.push(cred);
    let row = outbox_row(survivor.room(), T0);
    to_survivor.outbox.push(row.clone());
    let (expect_survivor, expect_absorbed) = (to_survivor.events.clone(), to_absorbed.events.clone());
    match store.merge(to_survivor, to_absorbed).await {
        Err(Error::Unsupported { .. }) => panic!("this store cannot merge rooms"),
        merged => merged.expect("merge"),
    }
    let survivor_log = all_events(store, survivor.room()).await;
    assert_eq!(
        survivor_log[survivor_log.len() - expect_survivor.len()..],
        expect_survivor[..]
    );
    let absorbed_log = all_events(store, absorbed.room()).await;
    assert_eq!(absorbed_log[log.len()..], expect_absorbed[..]);
    let summary = store
        .room_summary(absorbed.room())
        .await
        .expect("summary")
        .expect("exists");
    assert_eq!(summary.status, RoomStatus::Merged);
    let summary = store
        .room_summary(survivor.room())
        .await
        .expect("summary")
        .expect("exists");
    assert_eq!(summary.seq, expect_survivor.last().expect("events").seq);
    let customer = summary.customer.expect("a customer");
    assert!(
        customer.phone.is_some(),
        "the absorbed room's phone joined the survivor's customer"
    );
    assert_eq!(store.find_credential(&cred.hash).await.expect("lookup"), Some(cred));
    let claimed = store
        .claim_outbox(T0, Duration::from_secs(30), 100)
        .await
        .expect("claim");
    assert!(claimed.iter().any(|c| c.message.id == row.id));
    let state = store.load_room(absorbed.room()).await.expect("load").expect("exists");
    assert_eq!(state.merged_into(), Some(survivor.room()));
}

/// A merge that one of its rooms refuses (a stale expected seq, a credential stored already)
/// writes nothing in either room.
pub async fn a_refused_merge_writes_nothing(store: &dyn RoomStore) {
    let (survivor, absorbed) = rooms_of_one_customer(store, 2).await;
    let log = all_events(store, absorbed.room()).await;
    let later = T0.saturating_add(Duration::from_secs(60));
    let (to_survivor, to_absorbed) = merge(&survivor, &absorbed, &log, later);
    // The absorbed room moves on first: the merge decided on its old state is stale.
    let absorbed_after = stored(store, post(&absorbed, "one more", later)).await;
    let refused = store.merge(to_survivor, to_absorbed).await;
    assert!(matches!(refused, Err(Error::Conflict { .. })), "{refused:?}");
    // The survivor's side is stale now.
    let log = all_events(store, absorbed.room()).await;
    let (to_survivor_2, to_absorbed_2) = merge(&survivor, &absorbed_after, &log, later);
    let survivor_after = stored(store, post(&survivor, "meanwhile", later)).await;
    let refused = store.merge(to_survivor_2, to_absorbed_2).await;
    assert!(matches!(refused, Err(Error::Conflict { .. })), "{refused:?}");
    // A credential that exists already.
    let existing = credential(survivor.room());
    store.add_credential(existing).await.expect("credential");
    let (mut to_survivor_3, to_absorbed_3) = merge(&survivor_after, &absorbed_after, &log, later);
    to_survivor_3.credentials.push(existing);
    let refused = store.merge(to_survivor_3, to_absorbed_3).await;
    assert!(matches!(refused, Err(Error::Conflict { .. })), "{refused:?}");

    for (room, seq) in [
        (survivor.room(), survivor_after.seq()),
        (absorbed.room(), absorbed_after.seq()),
    ] {
        let events = all_events(store, room).await;
        assert_eq!(
            events.last().map(|e| e.seq),
            Some(seq),
            "nothing of a refused merge is stored"
        );
        let summary = store.room_summary(room).await.expect("summary").expect("exists");
        assert_eq!(summary.seq, seq);
        assert_ne!(summary.status, RoomStatus::Merged);
    }
    // A merge of a room into itself is refused before anything is written.
    let (to_survivor_4, _) = merge(&survivor_after, &absorbed_after, &log, later);
    let refused = store.merge(to_survivor_4.clone(), to_survivor_4).await;
    assert!(matches!(refused, Err(Error::Invalid { .. })), "{refused:?}");
}

fn settings_change(tenant: &TenantId, version: u64, days: u32) -> SettingsChange {
    SettingsChange {
        tenant: tenant.clone(),
        version,
        at: T0.saturating_add(Duration::from_secs(version)),
        by: agent_id("admin"),
        settings: TenantSettings {
            timeout_days: Some(days),
            timed_out_message: Some(format!("quiet for {days} days")),
            ..TenantSettings::default()
        },
    }
}

/// Settings changes are kept per tenant in order: the latest is in force, the history newest
/// first, and a version that does not follow the latest is a conflict that stores nothing.
pub async fn settings_changes_follow_one_another(store: &dyn RoomStore) {
    let tenant = fresh_tenant();
    let other = fresh_tenant();
    match store.tenant_settings(&tenant).await {
        Err(Error::Unsupported { .. }) => panic!("this store keeps no tenant settings"),
        latest => assert_eq!(latest.expect("read"), None),
    }
    assert!(store.settings_history(&tenant, 10).await.expect("history").is_empty());
    for version in 1..=3 {
        store
            .change_settings(settings_change(&tenant, version, 3 + version as u32))
            .await
            .expect("change");
    }
    store
        .change_settings(settings_change(&other, 1, 30))
        .await
        .expect("another tenant");
    for stale in [
        settings_change(&tenant, 3, 99),
        settings_change(&tenant, 5, 99),
        settings_change(&tenant, 0, 99),
    ] {
        let refused = store.change_settings(stale).await;
        assert!(matches!(refused, Err(Error::Conflict { .. })), "{refused:?}");
    }
    assert_eq!(
        store.tenant_settings(&tenant).await.expect("read"),
        Some(settings_change(&tenant, 3, 6))
    );
    let history = store.settings_history(&tenant, 2).await.expect("history");
    assert_eq!(
        history,
        [settings_change(&tenant, 3, 6), settings_change(&tenant, 2, 5)]
    );
    assert_eq!(
        store.tenant_settings(&other).await.expect("read"),
        Some(settings_change(&other, 1, 30))
    );
}

/// Two admins changing at once from the same version: one change is stored.
pub async fn concurrent_settings_changes_have_one_winner(store: &dyn RoomStore) {
    let tenant = fresh_tenant();
    let results = join_all((0..8).map(|i| store.change_settings(settings_change(&tenant, 1, 3 + i)))).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(Error::Conflict { .. })))
    );
    assert_eq!(store.settings_history(&tenant, 10).await.expect("history").len(), 1);
}
