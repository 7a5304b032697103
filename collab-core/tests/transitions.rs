//! Keeps `decide` and the transition table in the crate docs (`src/transitions.md`) in step.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use collab_core::decide::{Command, Context, MergeEvents, decide_merge};
use collab_core::*;
use common::*;

const TABLE: &str = include_str!("../src/transitions.md");

/// The table's rows: the command's label, then the cell of each status.
fn table() -> Vec<(String, Vec<String>)> {
    let mut rows: Vec<(String, Vec<String>)> = TABLE
        .lines()
        .filter(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<String> = line.trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect();
            (cells[0].clone(), cells[1..].to_vec())
        })
        .collect();
    let header = rows.remove(0);
    let statuses: Vec<&str> = RoomStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(header.1, statuses, "the table's columns are the statuses in order");
    rows.remove(0); // the |---| line
    rows
}

/// The canonical room in `status`, as the table's preamble describes it, and its customer.
fn room_in(status: RoomStatus, policy: &Policy) -> (Room, Option<Actor>, Option<InviteId>) {
    let mut room = Room::with_policy(policy.clone().with_sms_activated(true));
    if status == RoomStatus::Draft {
        return (room, None, None);
    }
    let first = room.invite_by_email();
    room.advance(HOUR);
    let customer = room.join(first);
    room.advance(HOUR);
    let second = room.invite_by_email();
    match status {
        RoomStatus::TimedOut => {
            room.advance(policy.inactivity_timeout());
            room.run_as(&Actor::System, Command::TimeOut).expect("sweep");
        }
        RoomStatus::Closed => {
            room.run(Command::Close).expect("close");
        }
        RoomStatus::Erased => {
            room.run(Command::Erase {
                scope: ErasureScope::Room,
            })
            .expect("erase");
        }
        RoomStatus::Merged => {
            let survivor = grace_s_other_room(2, policy);
            let events = merge(&survivor, &room).expect("merge");
            for event in &events.absorbed {
                room.state.apply(event);
            }
        }
        _ => {}
    }
    assert_eq!(room.state.status(), status);
    room.policy = policy.clone();
    room.advance(HOUR);
    (room, Some(customer), Some(second))
}

/// Another room of the tenant, active, with Grace invited by email.
fn grace_s_other_room(number: u128, policy: &Policy) -> Room {
    let mut other = Room::numbered(number, policy.clone());
    other.invite_by_email();
    other
}

/// What merging `absorbed` into `survivor` appends, decided by the agent at the later of
/// their times.
fn merge(survivor: &Room, absorbed: &Room) -> Result<MergeEvents, Error> {
    decide_merge(
        &survivor.state,
        &absorbed.state,
        &absorbed.log,
        &Context {
            now: survivor.now.max(absorbed.now),
            actor: &agent(),
            policy: &absorbed.policy,
        },
    )
}

/// Runs the table row `label` in `status` and describes the outcome as the table would.
fn outcome(label: &str, status: RoomStatus) -> String {
    let base = Policy::default()
        .with_sms_activated(true)
        .with_inactivity_timeout(3 * DAY)
        .and_then(|p| p.with_invite_ttl(30 * DAY))
        .expect("valid policy");
    let (mut room, customer, invite) = room_in(status, &base);
    let some_invite = invite.unwrap_or(InviteId::from_u128(999));
    let customer = customer.unwrap_or(Actor::Customer {
        room: room.state.room(),
        participant: ParticipantId::from_u128(998),
    });
    let session = match &customer {
        Actor::Customer { participant, .. } => *participant,
        _ => unreachable!("customers are customers"),
    };
    // A merge changes two rooms: the cell is this room's status after it.
    let merged = match label {
        "merge into another room (agent)" => {
            let survivor = grace_s_other_room(2, &room.policy);
            Some(merge(&survivor, &room).map(|events| events.absorbed))
        }
        "take in another room (agent)" => {
            let absorbed = grace_s_other_room(3, &room.policy);
            Some(merge(&room, &absorbed).map(|events| events.survivor))
        }
        _ => None,
    };
    if let Some(merged) = merged {
        return match merged {
            Ok(events) => {
                for event in &events {
                    room.state.apply(event);
                }
                room.state.status().as_str().to_owned()
            }
            Err(e) => format!("error: {}", kind(&e)),
        };
    }
    let (actor, command) = match label {
        "invite by email (agent)" => (
            agent(),
            room.invite_cmd(
                Channel::Email,
                Some("Grace"),
                Some("Hopper"),
                email("grace@example.com"),
            ),
        ),
        "invite by SMS, SMS not activated (agent)" => {
            room.policy = room.policy.clone().with_sms_activated(false);
            (
                agent(),
                room.invite_cmd(Channel::Sms, Some("Grace"), Some("Hopper"), phone("+447911123456")),
            )
        }
        "get link (agent)" => (
            agent(),
            room.invite_cmd(Channel::Link, Some("Grace"), Some("Hopper"), None),
        ),
        "revoke invite (agent)" => (agent(), Command::RevokeInvite { invite: some_invite }),
        "join with an invite (library)" => {
            let participant = ParticipantId::from_u128(room.id());
            (
                Actor::System,
                Command::Join {
                    invite: some_invite,
                    participant,
                },
            )
        }
        "revoke session (agent)" => (agent(), Command::RevokeSession { participant: session }),
        "end own session (customer)" => (customer, Command::EndSession),
        "post message (agent)" => (agent(), Room::post("hello")),
        "post message (customer)" => (customer, Room::post("hello")),
        "share document (agent)" => (agent(), room.document()),
        "share document (customer)" => (customer, room.document()),
        "record delivery (library)" => (
            Actor::System,
            Command::RecordDelivery {
                invite: some_invite,
                status: DeliveryStatus::Sent { provider_id: None },
            },
        ),
        "record webhook failure (library)" => (
            Actor::System,
            Command::RecordWebhookFailure {
                endpoint: EndpointId::from_u128(7),
                webhook_id: "msg_1".to_owned(),
                about: Seq::new(1),
                reason: "HTTP 500".to_owned(),
            },
        ),
        "record agents alerted (library)" => (
            Actor::System,
            Command::RecordAgentsAlerted {
                up_to: room.state.seq(),
                failure: None,
            },
        ),
        "remind customer (library)" => (
            Actor::System,
            Command::RemindCustomer {
                up_to: room.state.seq(),
                invite: None,
            },
        ),
        "mark read (agent)" => (
            agent(),
            Command::MarkRead {
                up_to: room.state.seq(),
            },
        ),
        "mark read (customer)" => (
            customer,
            Command::MarkRead {
                up_to: room.state.seq(),
            },
        ),
        "time out when idle (library)" => {
            room.advance(room.policy.inactivity_timeout());
            (Actor::System, Command::TimeOut)
        }
        "close (agent)" => (agent(), Command::Close),
        "erase (agent)" => (
            agent(),
            Command::Erase {
                scope: ErasureScope::Customer,
            },
        ),
        other => panic!("the table has a row this test does not know: {other:?}"),
    };
    match room.run_as(&actor, command) {
        Ok(events) if events.is_empty() => "no change".to_owned(),
        Ok(_) => room.state.status().as_str().to_owned(),
        Err(e) => format!("error: {}", kind(&e)),
    }
}

#[test]
fn decide_follows_the_transition_table() {
    let rows = table();
    assert_eq!(rows.len(), 22, "every command of the table is checked");
    let mut mismatches = Vec::new();
    for (label, cells) in &rows {
        for (status, cell) in RoomStatus::ALL.iter().zip(cells) {
            let actual = outcome(label, *status);
            if actual != *cell {
                mismatches.push(format!(
                    "{label} in {status}: table says {cell:?}, decide says {actual:?}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

/// The status changes the table allows; the property tests hold `decide` to them.
#[test]
fn the_table_allows_only_forward_moves_and_reactivation() {
    let mut moves = BTreeSet::new();
    for (_, cells) in table() {
        for (from, cell) in RoomStatus::ALL.iter().zip(cells) {
            if let Some(to) = RoomStatus::ALL.iter().find(|s| s.as_str() == cell) {
                moves.insert((*from, *to));
            }
        }
    }
    use RoomStatus::*;
    let expected = BTreeSet::from([
        (Draft, Draft),
        (Draft, Active),
        (Draft, Closed),
        (Active, Active),
        (Active, TimedOut),
        (Active, Closed),
        (TimedOut, Active),
        (TimedOut, TimedOut),
        (TimedOut, Closed),
        // Revoking a session of a closed room: it stays closed.
        (Closed, Closed),
        (Draft, Erased),
        (Active, Erased),
        (TimedOut, Erased),
        (Closed, Erased),
        // A room taken into another: from any status with a customer.
        (Active, Merged),
        (TimedOut, Merged),
        (Closed, Merged),
        // What a merged room still accepts (a read horizon, a webhook failure), and erasure.
        (Merged, Merged),
        (Merged, Erased),
    ]);
    assert_eq!(moves, expected);
}
