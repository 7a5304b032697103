//! Two servers over one database: each is a `Rooms` with its own store (its own connections)
//! and its own transport (its own listener), as two processes would have.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use collab_core::notify::RecordingNotifier;
use collab_core::rooms::{EventStream, InviteRequest, RoomUpdate, Rooms};
use collab_core::transport::{Typing, Typist};
use collab_core::*;
use collab_store_postgres::testing::TestSchema;
use futures_util::StreamExt;
use futures_util::future::join_all;

fn agent() -> Actor {
    Actor::Agent {
        tenant: TenantId::new("acme").unwrap(),
        agent: AgentId::new("ada").unwrap(),
    }
}

/// A server on `schema`: its own store and listener, sending email through `email`.
async fn server(schema: &TestSchema, email: Arc<RecordingNotifier>) -> Rooms {
    Rooms::builder()
        .room_store(schema.store().await)
        .transport(schema.transport().await)
        .email(email)
        .build()
}

/// The next `n` events of `stream`, each within 10 s.
async fn take(stream: &mut EventStream, n: usize) -> Vec<Arc<Event>> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap_or_else(|_| panic!("event {} of {n} did not arrive in time", events.len() + 1));
        events.push(next.expect("the stream goes on").expect("no error"));
    }
    events
}

fn text(event: &Event) -> Option<&str> {
    match &event.data {
        EventData::MessagePosted { text, .. } => Some(text),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_on_one_server_reaches_a_subscriber_on_the_other_in_order() {
    let Some(schema) = TestSchema::create("a_post_on_one_server_reaches_a_subscriber_on_the_other_in_order").await
    else {
        return;
    };
    let email = Arc::new(RecordingNotifier::new());
    let (a, b) = (server(&schema, email.clone()).await, server(&schema, email).await);
    let room = a.create_room(&agent()).await.unwrap().room;
    let mut on_b = b.subscribe(&agent(), room, Seq::ZERO).await.unwrap();
    let created = take(&mut on_b, 1).await;
    assert!(matches!(created[0].data, EventData::RoomCreated { .. }));
    for i in 0..50 {
        a.post_message(&agent(), room, &format!("m{i}"), None).await.unwrap();
    }
    let posted = take(&mut on_b, 50).await;
    let seqs: Vec<u64> = posted.iter().map(|e| e.seq.get()).collect();
    assert_eq!(seqs, (2..=51).collect::<Vec<_>>(), "in order, no gap, no duplicate");
    let texts: Vec<&str> = posted.iter().filter_map(|e| text(e)).collect();
    assert_eq!(texts, (0..50).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_racing_on_one_room_never_duplicate_or_skip_a_seq() {
    let Some(schema) = TestSchema::create("two_servers_racing_on_one_room_never_duplicate_or_skip_a_seq").await else {
        return;
    };
    let email = Arc::new(RecordingNotifier::new());
    let (a, b) = (server(&schema, email.clone()).await, server(&schema, email).await);
    let room = a.create_room(&agent()).await.unwrap().room;
    let mut watcher = b.subscribe(&agent(), room, Seq::ZERO).await.unwrap();
    // Four writers per server, 20 posts each, all on one room. A writer whose retries all lost
    // tries again: every post must land exactly once.
    let writers = [&a, &b].into_iter().enumerate().flat_map(|(s, rooms)| {
        (0..4).map(move |w| {
            let rooms = rooms.clone();
            async move {
                let mut conflicts = 0;
                for i in 0..20 {
                    let text = format!("server {s} writer {w} post {i}");
                    loop {
                        match rooms.post_message(&agent(), room, &text, None).await {
                            Ok(_) => break,
                            Err(Error::Conflict { .. }) => conflicts += 1,
                            Err(e) => panic!("{text}: {e}"),
                        }
                    }
                }
                conflicts
            }
        })
    });
    let conflicts: usize = join_all(writers).await.into_iter().sum();
    let events = a
        .timeline(
            &agent(),
            room,
            rooms::TimelineQuery::After {
                seq: Seq::ZERO,
                limit: 1_000,
            },
        )
        .await
        .unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq.get()).collect();
    assert_eq!(seqs, (1..=161).collect::<Vec<_>>(), "one room created, 160 posts");
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for text in events.iter().filter_map(text) {
        *counts.entry(text).or_default() += 1;
    }
    assert_eq!(counts.len(), 160);
    assert!(counts.values().all(|n| *n == 1), "a post stored twice");
    // The subscriber on B saw the same log.
    let seen: Vec<u64> = take(&mut watcher, 161).await.iter().map(|e| e.seq.get()).collect();
    assert_eq!(seen, seqs);
    eprintln!("{conflicts} posts lost a race and were retried by their writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_deliver_each_invite_exactly_once() {
    let Some(schema) = TestSchema::create("two_dispatchers_deliver_each_invite_exactly_once").await else {
        return;
    };
    // One provider, as both servers would call the same one.
    let provider = Arc::new(RecordingNotifier::new());
    let (a, b) = (
        server(&schema, provider.clone()).await,
        server(&schema, provider.clone()).await,
    );
    let mut invited = Vec::new();
    for i in 0..30 {
        let room = a.create_room(&agent()).await.unwrap().room;
        let address = format!("customer{i}@example.com");
        a.invite(&agent(), room, InviteRequest::email("Grace", "Hopper", &address))
            .await
            .unwrap();
        invited.push(address);
    }
    // Both dispatchers, several passes each, at the same time, until nothing is left.
    let dispatch = |rooms: Rooms| async move {
        let mut sent = 0;
        for _ in 0..10 {
            sent += rooms.dispatch_due().await.unwrap().sent;
        }
        sent
    };
    let (from_a, from_b) = tokio::join!(dispatch(a.clone()), dispatch(b.clone()));
    assert_eq!(from_a + from_b, 30, "a: {from_a}, b: {from_b}");
    let mut sent: Vec<String> = provider.sent().iter().map(|n| n.recipient.to_string()).collect();
    sent.sort();
    invited.sort();
    assert_eq!(sent, invited, "each invite sent once");
    assert_eq!(provider.attempts(), 30, "no second attempt");
    let left = schema
        .client()
        .await
        .query_one("SELECT count(*) FROM outbox", &[])
        .await
        .unwrap();
    assert_eq!(left.get::<_, i64>(0), 0, "the outbox is empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_on_one_server_reaches_subscribers_on_both_and_is_not_stored() {
    let Some(schema) = TestSchema::create("typing_on_one_server_reaches_subscribers_on_both_and_is_not_stored").await
    else {
        return;
    };
    let email = Arc::new(RecordingNotifier::new());
    let (a, b) = (server(&schema, email.clone()).await, server(&schema, email).await);
    let room = a.create_room(&agent()).await.unwrap().room;
    let colleague = Actor::Agent {
        tenant: TenantId::new("acme").unwrap(),
        agent: AgentId::new("grace's colleague").unwrap(),
    };
    let mut on_a = a.follow(&colleague, room, Seq::new(1)).await.unwrap();
    let mut on_b = b.follow(&colleague, room, Seq::new(1)).await.unwrap();

    a.typing(&agent(), room).await.unwrap();
    let ada = RoomUpdate::Typing(Typing {
        by: Typist::Agent(AgentId::new("ada").unwrap()),
    });
    for (server, stream) in [("b", &mut on_b), ("a", &mut on_a)] {
        let heard = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap_or_else(|_| panic!("no typing on {server} in time"))
            .expect("the stream goes on")
            .expect("no error");
        assert_eq!(heard, ada, "on {server}");
    }
    assert_eq!(
        b.room(&agent(), room).await.unwrap().seq(),
        Seq::new(1),
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_cut_off_by_the_server_reconnects_and_its_subscriber_gets_everything() {
    let test = "a_listener_cut_off_by_the_server_reconnects_and_its_subscriber_gets_everything";
    let Some(schema) = TestSchema::create(test).await else {
        return;
    };
    // A has no listener of its own (the in-process transport): B's listener is the only one on
    // this schema's channel, and the only way B hears of A's posts.
    let a = Rooms::builder().room_store(schema.store().await).build();
    let b = server(&schema, Arc::new(RecordingNotifier::new())).await;
    let room = a.create_room(&agent()).await.unwrap().room;
    let mut on_b = b.subscribe(&agent(), room, Seq::ZERO).await.unwrap();
    take(&mut on_b, 1).await;

    let admin = schema.client().await;
    let listener = format!("collab listener on {}", schema.config().channel());
    let pid_of_listener = || async {
        admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                &[&listener],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<_, i32>(0))
            .collect::<Vec<_>>()
    };
    let before = pid_of_listener().await;
    assert_eq!(before.len(), 1, "B's listener: {before:?}");
    let terminated = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&before[0]])
        .await
        .unwrap();
    assert!(terminated.get::<_, bool>(0));

    for i in 0..20 {
        a.post_message(&agent(), room, &format!("after the cut {i}"), None)
            .await
            .unwrap();
    }
    let posted = take(&mut on_b, 20).await;
    let seqs: Vec<u64> = posted.iter().map(|e| e.seq.get()).collect();
    assert_eq!(seqs, (2..=21).collect::<Vec<_>>());
    let after = pid_of_listener().await;
    assert_eq!(after.len(), 1, "B listens again: {after:?}");
    assert_ne!(after, before, "on a new connection");

    // And it goes on hearing news live.
    a.post_message(&agent(), room, "later", None).await.unwrap();
    let later = take(&mut on_b, 1).await;
    assert_eq!(text(&later[0]), Some("later"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_holds_token_hashes_never_link_or_session_tokens() {
    let Some(schema) = TestSchema::create("the_database_holds_token_hashes_never_link_or_session_tokens").await else {
        return;
    };
    let email = Arc::new(RecordingNotifier::new());
    let rooms = server(&schema, email.clone()).await;
    let room = rooms.create_room(&agent()).await.unwrap().room;
    rooms
        .invite(
            &agent(),
            room,
            InviteRequest::email("Grace", "Hopper", "grace@example.com"),
        )
        .await
        .unwrap();
    rooms.dispatch_due().await.unwrap();
    let emailed = email.sent()[0].link.rsplit('/').next().unwrap().to_owned();
    let link = rooms.get_link(&agent(), room).await.unwrap().link.unwrap();
    let session = rooms.join(link.token()).await.unwrap();
    rooms.join(&emailed).await.expect("the emailed link works");
    // Every text column of every table, as one string per row.
    let client = schema.client().await;
    let mut everything = String::new();
    for table in ["rooms", "events", "credentials", "outbox", "counter_hits"] {
        for row in client
            .query(&format!("SELECT t::text FROM {table} AS t"), &[])
            .await
            .unwrap()
        {
            everything.push_str(row.get::<_, &str>(0));
            everything.push('\n');
        }
    }
    assert!(!everything.contains(&emailed), "the emailed link's token is stored");
    assert!(!everything.contains(link.token()), "the copied link's token is stored");
    assert!(
        !everything.contains(session.token.expose()),
        "the session token is stored"
    );
    assert!(
        everything.contains("grace@example.com"),
        "the check reads the real rows"
    );
}
