//! SQLite reads: the latest 50 events of one room among 1,000,000 events, through
//! `RoomStore::latest_events` vs the raw query on the same file, in the same run; and searching
//! 100,000 rooms by a customer-name prefix.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use collab_benches::{agent, fixture, messages_after, new_room, percentile, runtime};
use collab_core::decide::{Command, Context, InviteCommand, decide};
use collab_core::store::{Append, RoomQuery};
use collab_core::{
    Channel, Clock, EmailAddress, Error, InviteId, PersonName, Policy, Recipient, RoomId, RoomStore, SystemClock,
    TenantId,
};
use collab_store_sqlite::SqliteRoomStore;
use criterion::{Criterion, criterion_group, criterion_main};

const ROOMS: usize = 1_000;
const EVENTS_PER_ROOM: usize = 1_000;
const SEARCH_ROOMS: usize = 100_000;

fn tenant() -> TenantId {
    fixture(TenantId::new("bench"))
}

/// A new room with `messages` chat messages, in one append.
fn room_with_messages(id: u128, messages: usize) -> Append {
    let (created, mut state) = new_room(id);
    let mut events = vec![created];
    events.extend(messages_after(&mut state, messages));
    fixture(Append::new(None, events))
}

/// A room created and its customer invited by email, in one append.
fn room_with_customer(id: u128, first: &str, last: &str) -> Append {
    let (created, state) = new_room(id);
    let policy = Policy::default();
    let actor = agent();
    let invite = Command::Invite(InviteCommand {
        invite: InviteId::from_u128(id),
        channel: Channel::Email,
        first_name: Some(fixture(PersonName::parse("first_name", first))),
        last_name: Some(fixture(PersonName::parse("last_name", last))),
        recipient: Some(Recipient::Email(fixture(EmailAddress::parse(&format!(
            "c{id}@example.com"
        ))))),
        locale: None,
    });
    let ctx = Context {
        now: SystemClock.now(),
        actor: &actor,
        policy: &policy,
    };
    let mut events = vec![created];
    events.extend(fixture(decide(&state, &invite, &ctx)));
    fixture(Append::new(None, events))
}

async fn fill(store: &SqliteRoomStore, appends: Vec<Append>) {
    let mut shares: Vec<Vec<Append>> = (0..64).map(|_| Vec::new()).collect();
    for (i, append) in appends.into_iter().enumerate() {
        shares[i % 64].push(append);
    }
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let store = store.clone();
            tokio::spawn(async move {
                for append in share {
                    fixture(store.append(append).await);
                }
            })
        })
        .collect();
    for task in tasks {
        fixture(task.await.map_err(|e| Error::backend("task", e)));
    }
}

/// The raw query the store's `latest_events` runs: the stored JSON of the last 50 events.
fn raw_latest_50(raw: &rusqlite::Connection, room: RoomId) -> Vec<String> {
    let sqlite = |e| Error::backend("sqlite", e);
    let mut statement = fixture(
        raw.prepare_cached("SELECT data FROM events WHERE room = ?1 ORDER BY seq DESC LIMIT 50")
            .map_err(sqlite),
    );
    let rows = fixture(
        statement
            .query_map([room.as_u128().to_be_bytes()], |row| row.get::<_, String>(0))
            .map_err(sqlite),
    );
    rows.map(|row| fixture(row.map_err(sqlite))).collect()
}

fn latest_50(c: &mut Criterion) {
    let rt = runtime();
    let dir = fixture(tempfile::tempdir().map_err(|e| Error::backend("tempdir", e)));
    let path = dir.path().join("events.db");
    let store = rt.block_on(SqliteRoomStore::open(&path));
    let store = fixture(store);
    let started = Instant::now();
    for chunk in (0..ROOMS).collect::<Vec<_>>().chunks(100) {
        let appends = chunk
            .iter()
            .map(|i| room_with_messages(*i as u128 + 1, EVENTS_PER_ROOM - 1))
            .collect();
        rt.block_on(fill(&store, appends));
    }
    println!("stored {} events in {:?}", ROOMS * EVENTS_PER_ROOM, started.elapsed());
    let room = RoomId::from_u128(ROOMS as u128 / 2);
    let raw = fixture(rusqlite::Connection::open(&path).map_err(|e| Error::backend("sqlite", e)));

    let mut group = c.benchmark_group("latest_50_of_1m_events");
    group.bench_function("raw_query", |b| b.iter(|| raw_latest_50(&raw, room).len()));
    group.bench_function("raw_query_and_decode", |b| {
        b.iter(|| {
            let rows = raw_latest_50(&raw, room);
            let events: Vec<collab_core::Event> = rows
                .iter()
                .map(|row| fixture(serde_json::from_str(row).map_err(|e| Error::backend("json", e))))
                .collect();
            events.len()
        })
    });
    group.bench_function("store_latest_events", |b| {
        b.iter(|| rt.block_on(async { fixture(store.latest_events(room, 50).await).len() }))
    });
    group.finish();
}

fn search(c: &mut Criterion) {
    const FIRST: [&str; 20] = [
        "Grace",
        "Ada",
        "Alan",
        "Barbara",
        "Claude",
        "Donald",
        "Edsger",
        "Frances",
        "Guido",
        "Hedy",
        "Ivan",
        "John",
        "Katherine",
        "Linus",
        "Margaret",
        "Niklaus",
        "Ole",
        "Radia",
        "Sophie",
        "Tim",
    ];
    const LAST: [&str; 20] = [
        "Hopper",
        "Lovelace",
        "Turing",
        "Liskov",
        "Shannon",
        "Knuth",
        "Dijkstra",
        "Allen",
        "Rossum",
        "Lamarr",
        "Sutherland",
        "McCarthy",
        "Johnson",
        "Torvalds",
        "Hamilton",
        "Wirth",
        "Dahl",
        "Perlman",
        "Wilson",
        "Berners",
    ];
    let rt = runtime();
    let dir = fixture(tempfile::tempdir().map_err(|e| Error::backend("tempdir", e)));
    let store = fixture(rt.block_on(SqliteRoomStore::open(dir.path().join("rooms.db"))));
    let started = Instant::now();
    for chunk in (0..SEARCH_ROOMS).collect::<Vec<_>>().chunks(10_000) {
        let appends = chunk
            .iter()
            .map(|&i| {
                room_with_customer(
                    i as u128 + 1,
                    FIRST[i % 20],
                    &format!("{}{}", LAST[(i / 20) % 20], i % 97),
                )
            })
            .collect();
        rt.block_on(fill(&store, appends));
    }
    println!("stored {SEARCH_ROOMS} rooms in {:?}", started.elapsed());
    let mut group = c.benchmark_group("search_100k_rooms");
    for prefix in ["gra", "hopper1", "grace hopper2"] {
        let query = RoomQuery {
            name_prefix: Some(prefix.to_owned()),
            ..RoomQuery::default()
        };
        group.bench_function(format!("name_prefix_{}", prefix.replace(' ', "_")), |b| {
            b.iter(|| rt.block_on(async { fixture(store.list_rooms(&tenant(), &query).await).rooms.len() }))
        });
    }
    group.finish();
    // Latency distribution of one common prefix, for the closing note.
    let query = RoomQuery {
        name_prefix: Some("gra".to_owned()),
        ..RoomQuery::default()
    };
    let mut latencies: Vec<Duration> = (0..200)
        .map(|_| {
            let started = Instant::now();
            rt.block_on(async { fixture(store.list_rooms(&tenant(), &query).await) });
            started.elapsed()
        })
        .collect();
    latencies.sort();
    println!(
        "search 'gra' (first page of 50): p50 {:?}, p99 {:?}",
        percentile(&latencies, 50),
        percentile(&latencies, 99)
    );
}

criterion_group!(benches, latest_50, search);
criterion_main!(benches);
