//! Property tests over random command sequences.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use collab_core::decide::{Command, DEFAULT_ROOM_NAME};
use collab_core::*;
use common::*;
use proptest::prelude::*;

/// One step of a random history. Indices pick among the room's invites and participants.
#[derive(Clone, Debug)]
enum Step {
    Invite {
        channel: u8,
        names: bool,
        other_identifier: bool,
    },
    Join {
        invite: usize,
    },
    Post {
        customer: usize,
        by_customer: bool,
        text: String,
    },
    Share {
        customer: usize,
        by_customer: bool,
    },
    RevokeInvite {
        invite: usize,
    },
    RevokeSession {
        customer: usize,
    },
    EndSession {
        customer: usize,
    },
    Delivery {
        invite: usize,
        status: u8,
    },
    Read {
        customer: usize,
        by_customer: bool,
        back: u64,
    },
    Wait {
        hours: u64,
    },
    Sweep,
    Close,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..3, any::<bool>(), any::<bool>()).prop_map(|(channel, names, other_identifier)| Step::Invite { channel, names, other_identifier }),
        3 => (0usize..8).prop_map(|invite| Step::Join { invite }),
        6 => (0usize..8, any::<bool>(), "[ a-z]{0,12}").prop_map(|(customer, by_customer, text)| Step::Post { customer, by_customer, text }),
        2 => (0usize..8, any::<bool>()).prop_map(|(customer, by_customer)| Step::Share { customer, by_customer }),
        1 => (0usize..8).prop_map(|invite| Step::RevokeInvite { invite }),
        1 => (0usize..8).prop_map(|customer| Step::RevokeSession { customer }),
        1 => (0usize..8).prop_map(|customer| Step::EndSession { customer }),
        2 => (0usize..8, 0u8..4).prop_map(|(invite, status)| Step::Delivery { invite, status }),
        2 => (0usize..8, any::<bool>(), 0u64..4).prop_map(|(customer, by_customer, back)| Step::Read { customer, by_customer, back }),
        3 => prop_oneof![0u64..48, 24u64 * 80..24 * 100].prop_map(|hours| Step::Wait { hours }),
        1 => Just(Step::Sweep),
        1 => Just(Step::Close),
    ]
}

fn pick<T: Copy>(items: &[T], i: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[i % items.len()])
}

/// Turns a step into an actor and a command against the room as it is.
fn command(room: &mut Room, step: &Step) -> Option<(Actor, Command)> {
    let invites: Vec<InviteId> = room.state.invites().iter().map(|i| i.id).collect();
    let customers: Vec<ParticipantId> = room.state.participants().iter().map(|p| p.id).collect();
    let as_customer = |p: ParticipantId| Actor::Customer {
        room: room.state.room(),
        participant: p,
    };
    Some(match step.clone() {
        Step::Invite {
            channel,
            names,
            other_identifier,
        } => {
            let channel = Channel::ALL[usize::from(channel)];
            let recipient = match (channel, other_identifier) {
                (Channel::Sms, false) => phone("+447911123456"),
                (Channel::Sms, true) => phone("+33612345678"),
                (Channel::Email, false) => email("grace@example.com"),
                (Channel::Email, true) => email("other@example.com"),
                (Channel::Link, _) => None,
            };
            let (first, last) = if names {
                (Some("Grace"), Some("Hopper"))
            } else {
                (None, None)
            };
            (agent(), room.invite_cmd(channel, first, last, recipient))
        }
        Step::Join { invite } => {
            let participant = ParticipantId::from_u128(room.id());
            (
                Actor::System,
                Command::Join {
                    invite: pick(&invites, invite)?,
                    participant,
                },
            )
        }
        Step::Post {
            customer,
            by_customer,
            text,
        } => {
            let actor = if by_customer {
                as_customer(pick(&customers, customer)?)
            } else {
                agent()
            };
            (actor, Command::PostMessage { text, client_key: None })
        }
        Step::Share { customer, by_customer } => {
            let actor = if by_customer {
                as_customer(pick(&customers, customer)?)
            } else {
                agent()
            };
            (actor, room.document())
        }
        Step::RevokeInvite { invite } => (
            agent(),
            Command::RevokeInvite {
                invite: pick(&invites, invite)?,
            },
        ),
        Step::RevokeSession { customer } => (
            agent(),
            Command::RevokeSession {
                participant: pick(&customers, customer)?,
            },
        ),
        Step::EndSession { customer } => (as_customer(pick(&customers, customer)?), Command::EndSession),
        Step::Delivery { invite, status } => {
            let status = match status {
                0 => DeliveryStatus::Sent { provider_id: None },
                1 => DeliveryStatus::Delivered,
                2 => DeliveryStatus::Failed {
                    permanent: true,
                    reason: "unreachable".into(),
                },
                _ => DeliveryStatus::Failed {
                    permanent: false,
                    reason: "busy".into(),
                },
            };
            (
                Actor::System,
                Command::RecordDelivery {
                    invite: pick(&invites, invite)?,
                    status,
                },
            )
        }
        Step::Read {
            customer,
            by_customer,
            back,
        } => {
            let actor = if by_customer {
                as_customer(pick(&customers, customer)?)
            } else {
                agent()
            };
            let up_to = Seq::new(room.state.seq().get().saturating_sub(back).max(1));
            (actor, Command::MarkRead { up_to })
        }
        Step::Wait { hours } => {
            room.advance(Duration::from_secs(hours * 3600));
            return None;
        }
        Step::Sweep => (Actor::System, Command::TimeOut),
        Step::Close => (agent(), Command::Close),
    })
}

/// The status moves the transition table allows (checked against the table in `transitions.rs`).
fn allowed(from: RoomStatus, to: RoomStatus) -> bool {
    use RoomStatus::*;
    from == to
        || matches!(
            (from, to),
            (Draft, Active)
                | (Draft, Closed)
                | (Active, TimedOut)
                | (Active, Closed)
                | (TimedOut, Active)
                | (TimedOut, Closed)
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_history_keeps_the_room_invariants(steps in proptest::collection::vec(step(), 1..60)) {
        let mut room = Room::new();
        for step in &steps {
            let Some((actor, command)) = command(&mut room, step) else { continue };
            let before = room.state.clone();
            let effective = before.status_at(room.now, &room.policy);
            let result = room.run_as(&actor, command.clone());

            // A closed room can still have its sessions ended, and be read.
            let closed_may = matches!(
                command,
                Command::RevokeSession { .. } | Command::EndSession | Command::MarkRead { .. }
            );
            if before.status() == RoomStatus::Closed && !closed_may {
                // Refused: RoomClosed, or an access error for an actor without access at all.
                prop_assert!(
                    matches!(result, Err(Error::RoomClosed | Error::Forbidden | Error::NotFound { .. })),
                    "a closed room accepted {:?}: {:?}", command, result
                );
            }
            let active_session = match &actor {
                Actor::Customer { participant, .. } => before.participant(*participant).is_some_and(|p| !p.revoked),
                _ => false,
            };
            if effective == RoomStatus::TimedOut
                && active_session
                && matches!(command, Command::PostMessage { .. } | Command::ShareDocument(_))
            {
                prop_assert!(
                    matches!(result, Err(Error::RoomTimedOut)),
                    "a timed-out room answered a customer's {:?} with {:?}", command, result
                );
            }
            if command == Command::EndSession {
                // A live session can always end, whatever the room's status; no one else's can.
                prop_assert_eq!(result.is_ok(), active_session, "{:?}", result);
            }
            if let (Ok(events), Command::EndSession, Actor::Customer { participant, .. }) = (&result, &command, &actor) {
                // The customer's own session ends, and nothing else: their link stays usable.
                prop_assert!(active_session, "an ended session ended itself again: {:?}", events);
                let ended: Vec<EventData> = events.iter().map(|e| e.data.clone()).collect();
                prop_assert_eq!(ended, vec![EventData::SessionRevoked { participant: *participant }]);
            }
            if let Ok(events) = result {
                // Sequence numbers continue the log without a gap.
                for (i, event) in events.iter().enumerate() {
                    prop_assert_eq!(event.seq.get(), before.seq().get() + 1 + i as u64);
                    prop_assert_eq!(event.at, room.now);
                }
                prop_assert!(
                    allowed(before.status(), room.state.status()),
                    "{:?} moved {} to {}", command, before.status(), room.state.status()
                );
            }
            // Read horizons never move back; unread counts the customer's posts past every
            // agent's horizon.
            prop_assert!(room.state.seen_by_agents() >= before.seen_by_agents());
            prop_assert!(room.state.seen_by_customer() >= before.seen_by_customer());
            let unread = room
                .log
                .iter()
                .filter(|e| {
                    matches!(e.actor, EventActor::Customer(_))
                        && matches!(e.data, EventData::MessagePosted { .. } | EventData::DocumentShared(_))
                        && e.seq > room.state.seen_by_agents()
                })
                .count();
            prop_assert_eq!(room.state.summary().unread as usize, unread);
            // The name is the default until the first invite, then the customer's.
            let expected_name = room.state.customer().map_or(DEFAULT_ROOM_NAME.to_owned(), Customer::full_name);
            prop_assert_eq!(room.state.name(), expected_name);
            prop_assert_eq!(room.state.customer().is_some(), !room.state.invites().is_empty());
            if room.state.invites().is_empty() {
                prop_assert!(matches!(room.state.status(), RoomStatus::Draft | RoomStatus::Closed));
            }
        }
        // The whole log is gap-free and replays to the same state.
        let seqs: Vec<u64> = room.log.iter().map(|e| e.seq.get()).collect();
        let expected: Vec<u64> = (1..=room.log.len() as u64).collect();
        prop_assert_eq!(seqs, expected);
        let replayed = RoomState::replay(&room.log).expect("replays").expect("exists");
        prop_assert_eq!(replayed, room.state);
    }
}
