//! One test per room rule (ARCHITECTURE.md, "Room rules").

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use collab_core::decide::{Command, DEFAULT_ROOM_NAME};
use collab_core::*;
use common::*;

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.data.type_name()).collect()
}

#[test]
fn a_new_room_is_a_draft_named_collaboration_room() {
    let room = Room::new();
    assert_eq!(room.state.name(), "Collaboration Room");
    assert_eq!(room.state.name(), DEFAULT_ROOM_NAME);
    assert_eq!(room.state.status(), RoomStatus::Draft);
    assert_eq!(room.state.customer(), None);
    assert_eq!(room.state.seq(), Seq::new(1));
}

#[test]
fn the_first_invite_renames_the_room_and_activates_it() {
    let mut room = Room::new();
    let cmd = room.invite_cmd(
        Channel::Email,
        Some(" Grace "),
        Some("Hopper"),
        email("grace@example.com"),
    );
    let events = room.run(cmd).expect("accepted");
    assert_eq!(types(&events), ["customer_invited", "room_renamed"]);
    assert_eq!(room.state.name(), "Grace Hopper");
    assert_eq!(room.state.status(), RoomStatus::Active);
    let customer = room.state.customer().expect("customer");
    assert_eq!(
        customer.email.as_ref().map(EmailAddress::as_str),
        Some("grace@example.com")
    );
    assert_eq!(customer.phone, None);
    // A second invite does not rename again.
    let again = room.invite_cmd(Channel::Email, None, None, None);
    assert_eq!(types(&room.run(again).expect("accepted")), ["customer_invited"]);
}

#[test]
fn the_first_invite_needs_both_names() {
    let mut room = Room::new();
    let cmd = room.invite_cmd(Channel::Email, None, Some("Hopper"), email("grace@example.com"));
    assert!(matches!(
        room.run(cmd),
        Err(Error::Invalid {
            field: "first_name",
            ..
        })
    ));
    let cmd = room.invite_cmd(Channel::Email, Some("Grace"), None, email("grace@example.com"));
    assert!(matches!(room.run(cmd), Err(Error::Invalid { field: "last_name", .. })));
    assert_eq!(room.state.seq(), Seq::new(1), "nothing changed");
}

#[test]
fn sms_needs_an_activated_sender() {
    let mut room = Room::with_policy(Policy::default());
    let cmd = room.invite_cmd(Channel::Sms, Some("Grace"), Some("Hopper"), phone("+447911123456"));
    assert!(matches!(room.run(cmd.clone()), Err(Error::SmsNotActivated)));
    assert_eq!(room.state.status(), RoomStatus::Draft);
    room.policy = room.policy.clone().with_sms_activated(true);
    room.run(cmd).expect("accepted once activated");
    assert_eq!(
        room.state
            .customer()
            .and_then(|c| c.phone.as_ref())
            .map(PhoneNumber::as_str),
        Some("+447911123456")
    );
}

#[test]
fn get_link_needs_an_sms_or_email_invite_first_by_default() {
    let mut room = Room::new();
    let link = room.invite_cmd(Channel::Link, Some("Grace"), Some("Hopper"), None);
    assert!(matches!(room.run(link), Err(Error::NotAllowed { .. })));
    room.invite_by_email();
    let link = room.invite_cmd(Channel::Link, None, None, None);
    let events = room.run(link).expect("a link after an email invite");
    assert!(matches!(
        &events[0].data,
        EventData::CustomerInvited {
            channel: Channel::Link,
            recipient: None,
            ..
        }
    ));

    // With the policy off, a link can be the first invite, and it renames the room.
    let mut room = Room::with_policy(Policy::default().with_link_requires_prior_invite(false));
    let link = room.invite_cmd(Channel::Link, Some("Grace"), Some("Hopper"), None);
    room.run(link).expect("accepted with the policy off");
    assert_eq!(room.state.name(), "Grace Hopper");
    assert_eq!(room.state.status(), RoomStatus::Active);
}

#[test]
fn a_link_has_no_recipient_and_channels_take_their_own_identifier() {
    let mut room = Room::new();
    room.invite_by_email();
    let link = room.invite_cmd(Channel::Link, None, None, email("grace@example.com"));
    assert!(matches!(room.run(link), Err(Error::Invalid { field: "recipient", .. })));
    let crossed = room.invite_cmd(Channel::Sms, None, None, email("grace@example.com"));
    assert!(matches!(room.run(crossed), Err(Error::Invalid { field: "phone", .. })));
    let crossed = room.invite_cmd(Channel::Email, None, None, phone("+447911123456"));
    assert!(matches!(room.run(crossed), Err(Error::Invalid { field: "email", .. })));
}

#[test]
fn re_inviting_through_a_used_channel_keeps_its_identifier() {
    let mut room = Room::new();
    room.invite_by_email();
    // Left out: the locked address is reused.
    let reuse = room_invite(&mut room, Channel::Email, None);
    let events = room.run(reuse).expect("accepted");
    assert!(matches!(
        &events[0].data,
        EventData::CustomerInvited { recipient: Some(Recipient::Email(a)), .. } if a.as_str() == "grace@example.com"
    ));
    // Given again, equal: fine. Different: refused, naming the field.
    let same = room_invite(&mut room, Channel::Email, email("grace@example.com"));
    room.run(same).expect("same address");
    let before = room.state.clone();
    let other = room_invite(&mut room, Channel::Email, email("other@example.com"));
    assert!(matches!(room.run(other), Err(Error::Invalid { field: "email", .. })));
    assert_eq!(room.state, before, "nothing changed");
}

fn room_invite(room: &mut Room, channel: Channel, recipient: Option<Recipient>) -> Command {
    room.invite_cmd(channel, None, None, recipient)
}

#[test]
fn re_inviting_through_a_new_channel_keeps_the_names_and_needs_the_new_identifier() {
    let mut room = Room::new();
    room.invite_by_email();
    let missing = room_invite(&mut room, Channel::Sms, None);
    assert!(matches!(room.run(missing), Err(Error::Invalid { field: "phone", .. })));
    let renamed = room.invite_cmd(Channel::Sms, Some("Amazing"), None, phone("+447911123456"));
    assert!(matches!(
        room.run(renamed),
        Err(Error::Invalid {
            field: "first_name",
            ..
        })
    ));
    let same_names = room.invite_cmd(Channel::Sms, Some("Grace"), Some("Hopper"), phone("+447911123456"));
    room.run(same_names).expect("names equal to the locked ones are fine");
    let customer = room.state.customer().expect("customer");
    assert_eq!(customer.full_name(), "Grace Hopper");
    assert_eq!(customer.phone.as_ref().map(PhoneNumber::as_str), Some("+447911123456"));
    assert_eq!(
        customer.email.as_ref().map(EmailAddress::as_str),
        Some("grace@example.com")
    );
    // The SMS channel is now locked to that number.
    let other = room_invite(&mut room, Channel::Sms, phone("+33612345678"));
    assert!(matches!(room.run(other), Err(Error::Invalid { field: "phone", .. })));
}

#[test]
fn the_email_lock_ignores_the_case_of_the_address_and_keeps_it_as_given() {
    let mut room = Room::new();
    room.invite_by_email();
    let shouted = room_invite(&mut room, Channel::Email, email("GRACE@EXAMPLE.COM"));
    let events = room.run(shouted).expect("the same mailbox, another spelling");
    let sent_to = events.iter().find_map(|e| match &e.data {
        EventData::CustomerInvited { recipient, .. } => recipient.clone(),
        _ => None,
    });
    assert_eq!(
        sent_to.as_ref().map(ToString::to_string).as_deref(),
        Some("grace@example.com")
    );
    assert_eq!(
        room.state
            .customer()
            .and_then(|c| c.email.as_ref())
            .map(EmailAddress::as_str),
        Some("grace@example.com"),
        "stored as first given"
    );
    let other = room_invite(&mut room, Channel::Email, email("grace.hopper@example.com"));
    assert!(matches!(room.run(other), Err(Error::Invalid { field: "email", .. })));

    let typed = EmailAddress::parse("Grace.Hopper@Example.COM").unwrap();
    assert_eq!(typed.as_str(), "Grace.Hopper@example.com", "the local part as given");
    assert_eq!(typed.match_key(), "grace.hopper@example.com");
    assert!(typed.same_mailbox(&EmailAddress::parse("GRACE.HOPPER@example.com").unwrap()));
    assert!(!typed.same_mailbox(&EmailAddress::parse("grace@example.com").unwrap()));
}

#[test]
fn the_inactivity_timeout_defaults_to_90_days_and_is_at_least_3() {
    assert_eq!(Policy::default().inactivity_timeout(), 90 * DAY);
    assert!(matches!(
        Policy::default().with_inactivity_timeout(3 * DAY - Duration::from_secs(1)),
        Err(Error::Invalid {
            field: "inactivity_timeout",
            ..
        })
    ));
    assert_eq!(
        Policy::default()
            .with_inactivity_timeout(3 * DAY)
            .map(|p| p.inactivity_timeout())
            .ok(),
        Some(3 * DAY)
    );
}

#[test]
fn an_idle_room_times_out_and_only_an_agent_re_invite_reopens_it() {
    let mut room = Room::new();
    let invite = room.invite_by_email();
    let customer = room.join(invite);
    room.advance(90 * DAY - Duration::from_secs(1));
    assert!(room.run(Command::TimeOut).expect("sweep").is_empty(), "not due yet");
    room.run_as(&customer, Room::post("still here"))
        .expect("the customer can post");

    room.advance(90 * DAY);
    // Due but not swept: the customer is refused all the same.
    assert!(matches!(
        room.run_as(&customer, Room::post("hello?")),
        Err(Error::RoomTimedOut)
    ));
    assert_eq!(room.state.status_at(room.now, &room.policy), RoomStatus::TimedOut);
    // An agent's post records the timeout first and leaves the room timed out.
    let events = room
        .run(Room::post("we will get back to you"))
        .expect("agents may post");
    assert_eq!(types(&events), ["timed_out", "message_posted"]);
    assert_eq!(events[0].actor, EventActor::System);
    assert_eq!(room.state.status(), RoomStatus::TimedOut);
    let doc = room.document();
    assert!(matches!(room.run_as(&customer, doc), Err(Error::RoomTimedOut)));

    let reinvite = room_invite(&mut room, Channel::Email, None);
    assert_eq!(
        types(&room.run(reinvite).expect("accepted")),
        ["reactivated", "customer_invited"]
    );
    assert_eq!(room.state.status(), RoomStatus::Active);
    room.run_as(&customer, Room::post("back")).expect("read-write again");
}

#[test]
fn a_re_invite_of_a_room_due_for_timeout_records_both_steps() {
    let mut room = Room::new();
    room.invite_by_email();
    room.advance(91 * DAY);
    let reinvite = room_invite(&mut room, Channel::Email, None);
    assert_eq!(
        types(&room.run(reinvite).expect("accepted")),
        ["timed_out", "reactivated", "customer_invited"]
    );
}

#[test]
fn a_closed_room_accepts_nothing_but_a_session_revocation() {
    let mut room = Room::new();
    let invite = room.invite_by_email();
    let customer = room.join(invite);
    room.run(Command::Close).expect("close");
    let participant = ParticipantId::from_u128(room.id());
    let doc = room.document();
    let attempts = [
        (agent(), room_invite(&mut room, Channel::Email, None)),
        (agent(), Room::post("hello")),
        (customer.clone(), Room::post("hello")),
        (customer.clone(), doc),
        (agent(), Command::RevokeInvite { invite }),
        (agent(), Command::Close),
        (Actor::System, Command::TimeOut),
        (Actor::System, Command::Join { invite, participant }),
        (
            Actor::System,
            Command::RecordDelivery {
                invite,
                status: DeliveryStatus::Delivered,
            },
        ),
    ];
    for (actor, command) in attempts {
        let result = room.try_as(&actor, &command);
        assert!(matches!(result, Err(Error::RoomClosed)), "{command:?}: {result:?}");
    }
    // The customer still reads a closed room, so the agent can still end that.
    let Actor::Customer { participant, .. } = customer else {
        panic!("a customer");
    };
    let revoked = room.run(Command::RevokeSession { participant }).expect("revoke");
    assert_eq!(types(&revoked)[0], "session_revoked");
    assert_eq!(room.state.status(), RoomStatus::Closed);
    assert!(matches!(
        collab_core::decide::authorize_read(&room.state, &customer),
        Err(Error::Forbidden)
    ));
}

#[test]
fn wrong_expired_and_revoked_invites_fail_the_same_way() {
    let mut room = Room::new();
    let expired = room.invite_by_email();
    room.advance(7 * DAY);
    let revoked = room.invite_by_email();
    room.run(Command::RevokeInvite { invite: revoked }).expect("revoke");
    assert!(
        room.run(Command::RevokeInvite { invite: revoked })
            .expect("again")
            .is_empty(),
        "revoking twice changes nothing"
    );
    let wrong = InviteId::from_u128(424_242);
    let mut errors = Vec::new();
    for invite in [wrong, expired, revoked] {
        let participant = ParticipantId::from_u128(room.id());
        errors.push(
            room.try_as(&Actor::System, &Command::Join { invite, participant })
                .map_err(|e| e.to_string()),
        );
    }
    assert!(
        errors.iter().all(|e| *e == Err("invite not found".to_owned())),
        "{errors:?}"
    );
    assert_eq!(
        room.state.invite(expired).map(|i| i.status_at(room.now)),
        Some(InviteStatus::Expired)
    );

    let current = room.invite_by_email();
    room.join(current);
    assert_eq!(room.state.invite(current).map(|i| i.status), Some(InviteStatus::Opened));
}

#[test]
fn actors_reach_only_their_own_rooms_and_commands() {
    let mut room = Room::new();
    let invite = room.invite_by_email();
    let customer = room.join(invite);
    let stranger = Actor::Agent {
        tenant: TenantId::new("other").expect("valid"),
        agent: AgentId::new("eve").expect("valid"),
    };
    let other_room = Actor::Customer {
        room: RoomId::from_u128(77),
        participant: ParticipantId::from_u128(78),
    };
    for actor in [&stranger, &other_room] {
        let result = room.try_as(actor, &Room::post("hi"));
        assert!(
            matches!(result, Err(Error::NotFound { what: Entity::Room })),
            "{actor:?}: {result:?}"
        );
    }
    // Customers cannot do an agent's work; agents cannot act as the library.
    let reinvite = room_invite(&mut room, Channel::Email, None);
    for command in [
        reinvite,
        Command::Close,
        Command::RevokeInvite { invite },
        Command::TimeOut,
    ] {
        assert!(
            matches!(room.try_as(&customer, &command), Err(Error::Forbidden)),
            "{command:?}"
        );
    }
    let participant = ParticipantId::from_u128(room.id());
    assert!(matches!(
        room.try_as(&agent(), &Command::Join { invite, participant }),
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        room.try_as(&Actor::System, &Room::post("hi")),
        Err(Error::Forbidden)
    ));
    // A revoked session is refused.
    let Actor::Customer { participant, .. } = customer else {
        unreachable!()
    };
    room.run(Command::RevokeSession { participant })
        .expect("revoke session");
    assert!(matches!(
        room.try_as(&customer, &Room::post("hi")),
        Err(Error::Forbidden)
    ));
    // Events record who acted.
    let posted = room.run(Room::post("from the agent")).expect("post");
    assert_eq!(posted[0].actor, EventActor::Agent(AgentId::new("ada").expect("valid")));
}

#[test]
fn messages_are_trimmed_non_empty_and_bounded() {
    let mut room = Room::with_policy(Policy::default().with_max_message_chars(10).expect("valid"));
    let events = room.run(Room::post("  hello \n")).expect("accepted");
    assert!(matches!(&events[0].data, EventData::MessagePosted { text, .. } if text == "hello"));
    room.run(Room::post(&"é".repeat(10)))
        .expect("exactly the limit, in characters");
    for bad in ["", "   \n\t", &"x".repeat(11), "bell\u{7}"] {
        assert!(
            matches!(room.run(Room::post(bad)), Err(Error::Invalid { field: "text", .. })),
            "{bad:?}"
        );
    }
    assert_eq!(Policy::default().max_message_chars(), 4_000);
    for bad in ["", "has space", &"k".repeat(129)] {
        let cmd = Command::PostMessage {
            text: "hi".into(),
            client_key: Some(bad.to_owned()),
        };
        assert!(
            matches!(
                room.run(cmd),
                Err(Error::Invalid {
                    field: "client_key",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn delivery_news_only_moves_forward() {
    let mut room = Room::new();
    let invite = room.invite_by_email();
    let record = |room: &mut Room, status: DeliveryStatus| {
        room.run_as(&Actor::System, Command::RecordDelivery { invite, status })
            .expect("accepted")
            .len()
    };
    assert_eq!(
        record(
            &mut room,
            DeliveryStatus::Failed {
                permanent: false,
                reason: "busy".into()
            }
        ),
        1
    );
    assert_eq!(
        record(
            &mut room,
            DeliveryStatus::Sent {
                provider_id: Some("SM1".into())
            }
        ),
        1
    );
    assert_eq!(record(&mut room, DeliveryStatus::Delivered), 1);
    assert_eq!(
        record(&mut room, DeliveryStatus::Sent { provider_id: None }),
        0,
        "a late 'sent' is not news"
    );
    assert_eq!(
        room.state.invite(invite).map(|i| i.status),
        Some(InviteStatus::Delivered)
    );

    let other = room.invite_by_email();
    let long = "x".repeat(5_000);
    let events = room
        .run_as(
            &Actor::System,
            Command::RecordDelivery {
                invite: other,
                status: DeliveryStatus::Failed {
                    permanent: true,
                    reason: long,
                },
            },
        )
        .expect("accepted");
    assert!(
        matches!(&events[0].data, EventData::InviteDelivery { status: DeliveryStatus::Failed { reason, .. }, .. } if reason.len() == 500)
    );
    let unknown = InviteId::from_u128(5);
    let result = room.run_as(
        &Actor::System,
        Command::RecordDelivery {
            invite: unknown,
            status: DeliveryStatus::Delivered,
        },
    );
    assert!(matches!(result, Err(Error::NotFound { what: Entity::Invite })));
}

#[test]
fn replay_rebuilds_the_state_and_refuses_broken_logs() {
    let mut room = Room::new();
    let invite = room.invite_by_email();
    room.join(invite);
    room.run(Room::post("hello")).expect("post");
    let replayed = RoomState::replay(&room.log).expect("replays").expect("exists");
    assert_eq!(replayed, room.state);
    assert_eq!(RoomState::replay(&[]).expect("empty"), None);

    let mut gap = room.log.clone();
    gap.remove(2);
    assert!(matches!(
        RoomState::replay(&gap),
        Err(Error::Invalid { field: "events", .. })
    ));
    let mut duplicate = room.log.clone();
    duplicate.insert(2, duplicate[2].clone());
    assert!(matches!(
        RoomState::replay(&duplicate),
        Err(Error::Invalid { field: "events", .. })
    ));
    assert!(matches!(
        RoomState::replay(&room.log[1..]),
        Err(Error::Invalid { field: "events", .. })
    ));
}

#[test]
fn events_round_trip_through_json() {
    let mut room = Room::new();
    let invite = room.invite_by_email();
    room.join(invite);
    room.run(Room::post("hello")).expect("post");
    let doc = room.document();
    room.run(doc).expect("share");
    room.run(Command::Close).expect("close");
    let json = serde_json::to_string(&room.log).expect("serialises");
    let back: Vec<Event> = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, room.log);
    assert!(json.contains(r#""type":"message_posted""#), "{json}");
}

#[test]
fn a_customer_ends_only_their_own_session_and_keeps_the_link() {
    let mut room = Room::new();
    let invite = room.invite_by_email();
    let customer = room.join(invite);
    let link = room_invite_link(&mut room);
    let other = room.join(link);
    let Actor::Customer { participant, .. } = customer else {
        unreachable!()
    };
    for actor in [agent(), Actor::System] {
        assert!(
            matches!(room.try_as(&actor, &Command::EndSession), Err(Error::Forbidden)),
            "{actor:?}"
        );
    }
    let events = room.run_as(&customer, Command::EndSession).expect("signs out");
    assert_eq!(types(&events), ["session_revoked"]);
    assert_eq!(events[0].actor, EventActor::Customer(participant));
    assert!(room.state.participant(participant).unwrap().revoked);
    // The other session and the invite are untouched: the link opens the room again.
    assert!(matches!(
        collab_core::decide::authorize_read(&room.state, &other),
        Ok(())
    ));
    assert_eq!(room.state.invite(invite).map(|i| i.status), Some(InviteStatus::Opened));
    // Ended, the session may do nothing more, not even end itself again (the service treats
    // that as done).
    assert!(matches!(
        room.try_as(&customer, &Command::EndSession),
        Err(Error::Forbidden)
    ));
    room.join(invite);
}

/// A link invite of `room`, once an email invite went out.
fn room_invite_link(room: &mut Room) -> InviteId {
    let command = room.invite_cmd(Channel::Link, None, None, None);
    let Command::Invite(invite) = &command else {
        unreachable!()
    };
    let id = invite.invite;
    room.run(command).expect("link");
    id
}

#[test]
fn rule_13_read_horizons_move_forward_and_count_what_agents_have_not_seen() {
    let mut room = Room::new();
    let invite = room.invite_by_email();
    let customer = room.join(invite);
    room.run_as(&customer, Room::post("Hello")).unwrap();
    let question = room.run_as(&customer, Room::post("Did you get it?")).unwrap()[0].seq;
    assert_eq!(room.state.summary().unread, 2);
    let read = room.run(Command::MarkRead { up_to: question }).unwrap();
    assert_eq!(types(&read), ["read_up_to"]);
    assert_eq!(room.state.summary().unread, 0);
    assert_eq!(room.state.seen_by_agents(), question);
    assert!(
        room.run(Command::MarkRead { up_to: Seq::new(1) }).unwrap().is_empty(),
        "never back"
    );
}

#[test]
fn rule_14_unread_posts_wait_for_an_alert_or_a_reminder_until_read_or_covered() {
    let mut room = Room::new();
    let invite = room.invite_by_email();
    let customer = room.join(invite);
    let question = room.run_as(&customer, Room::post("Hello?")).unwrap()[0].seq;
    let answer = room.run(Room::post("Hi Grace")).unwrap()[0].seq;
    assert_eq!(room.state.unalerted(), [question]);
    assert_eq!(room.state.unreminded(), [answer]);

    // An alert covers the customer's post once; a second one for it records nothing.
    let alerted = Command::RecordAgentsAlerted {
        up_to: question,
        failure: None,
    };
    let recorded = room.run_as(&Actor::System, alerted.clone()).unwrap();
    assert_eq!(types(&recorded), ["agents_alerted"]);
    assert!(room.state.unalerted().is_empty());
    assert!(room.run_as(&Actor::System, alerted).unwrap().is_empty());
    assert_eq!(
        kind(
            &room
                .try_as(
                    &agent(),
                    &Command::RecordAgentsAlerted {
                        up_to: question,
                        failure: None
                    }
                )
                .unwrap_err()
        ),
        "Forbidden"
    );

    // A reminder is a new invite through the customer's channel, in the same append.
    let reminder = Command::RemindCustomer {
        up_to: answer,
        invite: Some((InviteId::from_u128(0x4E), Channel::Email)),
    };
    let recorded = room.run_as(&Actor::System, reminder).unwrap();
    assert_eq!(types(&recorded), ["customer_invited", "customer_reminded"]);
    assert!(room.state.unreminded().is_empty());

    // Reading is the other way a post stops waiting; and a timed-out room reminds nobody.
    let later = room.run(Room::post("Anything else?")).unwrap()[0].seq;
    room.run_as(&customer, Command::MarkRead { up_to: later }).unwrap();
    assert!(room.state.unreminded().is_empty());
    let unread = room.run(Room::post("Still there?")).unwrap()[0].seq;
    room.advance(room.policy.inactivity_timeout());
    let refused = room.try_as(
        &Actor::System,
        &Command::RemindCustomer {
            up_to: unread,
            invite: None,
        },
    );
    assert_eq!(kind(&refused.unwrap_err()), "RoomTimedOut");
}

#[test]
fn rule_15_a_room_of_the_same_customer_merges_into_another_whole() {
    use collab_core::decide::{Context, decide_merge};
    let mut absorbed = Room::new();
    let invite = absorbed.invite_by_email();
    let customer = absorbed.join(invite);
    absorbed.run_as(&customer, Room::post("My order is late")).unwrap();
    let mut survivor = Room::numbered(2, absorbed.policy.clone());
    survivor.invite_by_email();
    let decide = |survivor: &Room, absorbed: &Room| {
        decide_merge(
            &survivor.state,
            &absorbed.state,
            &absorbed.log,
            &Context {
                now: T0,
                actor: &agent(),
                policy: &absorbed.policy,
            },
        )
    };

    let merged = decide(&survivor, &absorbed).unwrap();
    // The survivor: the absorbed room's invites, sessions and messages, then the record.
    assert_eq!(
        types(&merged.survivor),
        ["customer_invited", "customer_joined", "message_posted", "room_merged"]
    );
    assert_eq!(types(&merged.absorbed), ["merged_into"]);
    for event in &merged.survivor {
        survivor.state.apply(event);
    }
    for event in &merged.absorbed {
        absorbed.state.apply(event);
    }
    assert_eq!(absorbed.state.merged_into(), Some(survivor.state.room()));
    assert_eq!(absorbed.state.status(), RoomStatus::Merged);
    // The customer's session came along: she posts in the survivor.
    let moved = Actor::Customer {
        room: survivor.state.room(),
        participant: match customer {
            Actor::Customer { participant, .. } => participant,
            _ => unreachable!("a customer"),
        },
    };
    survivor.run_as(&moved, Room::post("Any news?")).unwrap();
    // The absorbed room accepts nothing more but erasure; a merge goes one way, once.
    assert_eq!(
        kind(&absorbed.try_as(&agent(), &Room::post("hello")).unwrap_err()),
        "RoomMerged"
    );
    assert_eq!(kind(&decide(&survivor, &absorbed).unwrap_err()), "RoomMerged");
    // Rooms of two people never merge.
    let mut stranger = Room::numbered(3, absorbed.policy.clone());
    let cmd = stranger.invite_cmd(Channel::Email, Some("Ada"), Some("Lovelace"), email("ada@example.com"));
    stranger.run(cmd).unwrap();
    assert_eq!(kind(&decide(&survivor, &stranger).unwrap_err()), "Invalid");
}

#[tokio::test]
async fn rule_16_a_tenant_s_settings_apply_to_its_rooms_from_the_change_on() {
    use collab_core::settings::TenantSettings;
    let world = World::new();
    let rooms = &world.rooms;
    let (room, _, _) = world.room_with_customer().await;
    world.clock.advance(4 * DAY);
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(
        rooms.current_status(&state),
        RoomStatus::Active,
        "the deployment's 90 days"
    );
    let change = rooms
        .change_settings(
            &agent(),
            TenantSettings {
                timeout_days: Some(3),
                ..TenantSettings::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((change.version, change.by.as_str()), (1, "ada"));
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(
        rooms.current_status(&state),
        RoomStatus::TimedOut,
        "the tenant's 3 days"
    );
    // Recorded on the room's next write, as any timeout is.
    let events = rooms.post_message(&agent(), room, "Still there?", None).await.unwrap();
    assert_eq!(rooms.room(&agent(), room).await.unwrap().status(), RoomStatus::TimedOut);
    assert_eq!(events.data.type_name(), "message_posted");
}
