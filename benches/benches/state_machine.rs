//! The room state machine: `decide` + `apply` for a typical command mix, and folding a room
//! from 10,000 stored events.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use collab_core::blob::BlobKey;
use collab_core::decide::{Command, Context, InviteCommand, create_room, decide};
use collab_core::*;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const T0: Timestamp = Timestamp::from_unix_millis(1_795_857_000_000);

fn parse<T>(result: Result<T, Error>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("bench fixture: {e}"),
    }
}

struct Fixture {
    agent: Actor,
    customer: Actor,
    policy: Policy,
    state: RoomState,
    log: Vec<Event>,
    first_invite: InviteId,
}

/// A room with a customer who joined through an email invite.
fn fixture() -> Fixture {
    let tenant = parse(TenantId::new("acme"));
    let agent_id = parse(AgentId::new("ada"));
    let agent = Actor::Agent {
        tenant: tenant.clone(),
        agent: agent_id.clone(),
    };
    let policy = Policy::default().with_sms_activated(true);
    let created = create_room(RoomId::from_u128(1), tenant, agent_id, T0);
    let mut state = parse(RoomState::replay([&created])).unwrap_or_else(|| panic!("room exists"));
    let mut log = vec![created];
    let first_invite = InviteId::from_u128(2);
    let participant = ParticipantId::from_u128(3);
    let invite = Command::Invite(InviteCommand {
        invite: first_invite,
        channel: Channel::Email,
        first_name: Some(parse(PersonName::parse("first_name", "Grace"))),
        last_name: Some(parse(PersonName::parse("last_name", "Hopper"))),
        recipient: Some(Recipient::Email(parse(EmailAddress::parse("grace@example.com")))),
        locale: None,
    });
    let join = Command::Join {
        invite: first_invite,
        participant,
    };
    for (actor, command) in [(&agent, invite), (&Actor::System, join)] {
        let events = parse(decide(
            &state,
            &command,
            &Context {
                now: T0,
                actor,
                policy: &policy,
            },
        ));
        for event in &events {
            state.apply(event);
        }
        log.extend(events);
    }
    let customer = Actor::Customer {
        room: state.room(),
        participant,
    };
    Fixture {
        agent,
        customer,
        policy,
        state,
        log,
        first_invite,
    }
}

/// The mix of a typical room: mostly chat from both sides, some documents, delivery reports and
/// a re-invite now and then. Returns (actor, command) for step `i`.
fn typical(f: &Fixture, i: u64) -> (&Actor, Command) {
    let message = |text: &str| Command::PostMessage {
        text: text.to_owned(),
        client_key: None,
    };
    match i % 20 {
        0..=6 => (&f.agent, message("Could you send the signed form, please?")),
        7..=13 => (&f.customer, message("Sure, one moment while I find it.")),
        14 | 15 => {
            let id = DocumentId::from_u128(1_000 + u128::from(i));
            let tenant = match &f.agent {
                Actor::Agent { tenant, .. } => tenant.clone(),
                _ => unreachable!("the agent is an agent"),
            };
            (
                &f.customer,
                Command::ShareDocument(DocumentMeta {
                    id,
                    name: "form.pdf".into(),
                    media_type: "application/pdf".into(),
                    size: 120_000,
                    sha256: blob::Sha256Digest::of(b"form"),
                    kind: DocumentKind::Pdf { pages: 2 },
                    blob: BlobKey::for_document(&tenant, f.state.room(), id),
                }),
            )
        }
        16 | 17 => (
            &Actor::System,
            Command::RecordDelivery {
                invite: f.first_invite,
                status: DeliveryStatus::Delivered,
            },
        ),
        18 => (
            &f.agent,
            Command::Invite(InviteCommand {
                invite: InviteId::from_u128(1_000_000 + u128::from(i)),
                channel: Channel::Email,
                first_name: None,
                last_name: None,
                recipient: None,
                locale: None,
            }),
        ),
        _ => (&f.agent, message("Thanks, received.")),
    }
}

fn decide_and_apply(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("decide_apply");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("typical_mix_1000_commands", |b| {
        b.iter_batched(
            || f.state.clone(),
            |mut state| {
                for i in 0..1_000u64 {
                    let (actor, command) = typical(&f, i);
                    let ctx = Context {
                        now: T0.saturating_add(Duration::from_secs(i)),
                        actor,
                        policy: &f.policy,
                    };
                    let events = parse(decide(&state, &command, &ctx));
                    for event in &events {
                        state.apply(event);
                    }
                }
                black_box(state)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn fold(c: &mut Criterion) {
    let f = fixture();
    // Grow the room to 10,000 events with the same mix.
    let mut state = f.state.clone();
    let mut log = f.log.clone();
    let mut i = 0u64;
    while log.len() < 10_000 {
        let (actor, command) = typical(&f, i);
        let ctx = Context {
            now: T0.saturating_add(Duration::from_secs(i)),
            actor,
            policy: &f.policy,
        };
        let events = parse(decide(&state, &command, &ctx));
        for event in &events {
            state.apply(event);
        }
        log.extend(events);
        i += 1;
    }
    log.truncate(10_000);
    let mut group = c.benchmark_group("fold");
    group.throughput(Throughput::Elements(log.len() as u64));
    group.bench_function("replay_10000_events", |b| {
        b.iter(|| parse(RoomState::replay(black_box(&log))))
    });
    group.finish();
}

criterion_group!(benches, decide_and_apply, fold);
criterion_main!(benches);
