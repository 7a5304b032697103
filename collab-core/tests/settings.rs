//! Tenant settings at run time (issue 16): an admin changes the timeout, the timed-out message,
//! the invite templates and the language; each change is recorded with who made it; the rooms
//! follow from then on, on this server at once and on another within the refresh.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use collab_core::rooms::{AccessHook, Operation};
use collab_core::settings::TenantSettings;
use collab_core::*;
use common::*;

fn settings(days: u32) -> TenantSettings {
    TenantSettings {
        timeout_days: Some(days),
        timed_out_message: Some("Closed after quiet days: call us on 555-0100.".into()),
        sms_template: Some("Acme here, {first_name}: {link}".into()),
        email_template: Some("Dear {first_name}, your Acme room: {link}".into()),
        locale: None,
    }
}

#[tokio::test]
async fn an_admin_shortens_the_timeout_and_the_rooms_and_invites_follow() {
    let world = World::new();
    let rooms = &world.rooms;
    let (room, customer, _) = world.room_with_customer().await;
    rooms.post_message(&customer, room, "Hello", None).await.unwrap();
    assert_eq!(
        rooms.settings(&agent()).await.unwrap(),
        None,
        "the deployment's until changed"
    );

    let change = rooms.change_settings(&agent(), settings(3)).await.unwrap();
    assert_eq!((change.version, change.by.as_str()), (1, "ada"));
    assert_eq!(rooms.settings(&agent()).await.unwrap(), Some(change.clone()));

    // Idle four days: timed out under the tenant's three, not the deployment's ninety.
    world.clock.advance(4 * DAY);
    let state = rooms.room(&agent(), room).await.unwrap();
    assert_eq!(rooms.current_status(&state), RoomStatus::TimedOut);
    assert!(matches!(
        rooms.post_message(&customer, room, "Anyone?", None).await,
        Err(Error::RoomTimedOut)
    ));
    let shown = rooms.tenant_settings(state.tenant()).await;
    assert_eq!(
        shown.timed_out_message.as_deref(),
        Some("Closed after quiet days: call us on 555-0100.")
    );

    // The next invite uses the tenant's text, with its link.
    rooms
        .invite(
            &agent(),
            room,
            InviteRequest::email("Grace", "Hopper", "grace@example.com"),
        )
        .await
        .unwrap();
    rooms.dispatch_due().await.unwrap();
    let sent = world.email.sent();
    let last = sent.last().unwrap();
    assert!(last.text.starts_with("Dear Grace, your Acme room: "), "{}", last.text);
    assert!(last.text.contains(&last.link));

    // A second change, and the history says who changed what, newest first.
    let again = rooms
        .change_settings(&agent(), TenantSettings::default())
        .await
        .unwrap();
    assert_eq!(again.version, 2);
    let history = rooms.settings_history(&agent(), 10).await.unwrap();
    assert_eq!(history.iter().map(|c| c.version).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(history[1].settings, settings(3));
}

#[tokio::test]
async fn bad_settings_name_their_field_and_change_nothing() {
    let world = World::new();
    let rooms = &world.rooms;
    let field = |settings: TenantSettings| {
        let rooms = rooms.clone();
        async move {
            match rooms.change_settings(&agent(), settings).await {
                Err(Error::Invalid { field, .. }) => field,
                other => panic!("accepted: {other:?}"),
            }
        }
    };
    let base = TenantSettings::default;
    let bad = [
        (
            TenantSettings {
                timeout_days: Some(2),
                ..base()
            },
            "timeout_days",
        ),
        (
            TenantSettings {
                timeout_days: Some(4_000),
                ..base()
            },
            "timeout_days",
        ),
        (
            TenantSettings {
                timed_out_message: Some("  ".into()),
                ..base()
            },
            "timed_out_message",
        ),
        (
            TenantSettings {
                timed_out_message: Some("x".repeat(501)),
                ..base()
            },
            "timed_out_message",
        ),
        (
            TenantSettings {
                timed_out_message: Some("bell\u{7}".into()),
                ..base()
            },
            "timed_out_message",
        ),
        (
            TenantSettings {
                sms_template: Some("x".repeat(1_001)),
                ..base()
            },
            "sms_template",
        ),
        (
            TenantSettings {
                sms_template: Some(String::new()),
                ..base()
            },
            "sms_template",
        ),
        (
            TenantSettings {
                email_template: Some("x".repeat(3_001)),
                ..base()
            },
            "email_template",
        ),
    ];
    for (settings, named) in bad {
        assert_eq!(field(settings).await, named);
    }
    assert_eq!(rooms.settings(&agent()).await.unwrap(), None);
    assert!(rooms.settings_history(&agent(), 10).await.unwrap().is_empty());
    // Only agents; customers and the library change nothing.
    let (_, customer, _) = world.room_with_customer().await;
    assert!(matches!(
        rooms.change_settings(&customer, base()).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(rooms.settings(&customer).await, Err(Error::Forbidden)));
}

/// Admins are the agents the host says; the others read but do not change.
#[derive(Debug)]
struct AdminsOnly;

impl AccessHook for AdminsOnly {
    fn allow(&self, _: &TenantId, agent: &AgentId, op: Operation, _: Option<&RoomSummary>) -> bool {
        op != Operation::ChangeSettings || agent.as_str() == "ada"
    }
}

#[tokio::test]
async fn the_host_s_hook_decides_who_is_an_admin_and_tenants_are_apart() {
    let world = World::with(|builder| builder.access_hook(AdminsOnly));
    let rooms = &world.rooms;
    let bob = Actor::Agent {
        tenant: tenant(),
        agent: AgentId::new("bob").unwrap(),
    };
    assert!(matches!(
        rooms.change_settings(&bob, settings(5)).await,
        Err(Error::Forbidden)
    ));
    rooms.change_settings(&agent(), settings(5)).await.unwrap();
    assert_eq!(rooms.settings(&bob).await.unwrap().unwrap().settings, settings(5));
    let other = Actor::Agent {
        tenant: TenantId::new("globex").unwrap(),
        agent: AgentId::new("ada").unwrap(),
    };
    assert_eq!(
        rooms.settings(&other).await.unwrap(),
        None,
        "another tenant's are its own"
    );
}

#[tokio::test]
async fn another_server_follows_a_change_within_its_refresh() {
    let store = Arc::new(memory::MemoryRoomStore::new());
    let clock = Arc::new(time::ManualClock::new(T0));
    let server = |refresh: Duration| {
        Rooms::builder()
            .room_store(store.clone())
            .clock(clock.clone())
            .config(RoomsConfig::default().with_settings_refresh(refresh).unwrap())
            .build()
    };
    let (a, b) = (server(Duration::ZERO), server(Duration::from_millis(200)));
    let room = a.create_room(&agent()).await.unwrap().room;
    a.invite(
        &agent(),
        room,
        InviteRequest::email("Grace", "Hopper", "grace@example.com"),
    )
    .await
    .unwrap();
    let idle = |rooms: &Rooms| {
        let rooms = rooms.clone();
        async move {
            let state = rooms.room(&agent(), room).await.unwrap();
            rooms.current_status(&state)
        }
    };
    clock.advance(4 * DAY);
    assert_eq!(idle(&b).await, RoomStatus::Active, "b read the deployment's 90 days");
    a.change_settings(&agent(), settings(3)).await.unwrap();
    assert_eq!(idle(&a).await, RoomStatus::TimedOut, "at once where it was changed");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        idle(&b).await,
        RoomStatus::TimedOut,
        "b read it again after its refresh"
    );
    // Two admins at once: the second, deciding on the same version, is refused.
    let stale = store.tenant_settings(&tenant()).await.unwrap().unwrap();
    let conflict = store
        .change_settings(settings::SettingsChange {
            version: stale.version,
            ..stale
        })
        .await;
    assert!(matches!(conflict, Err(Error::Conflict { .. })), "{conflict:?}");
}

#[tokio::test]
async fn the_sweep_steps_over_rooms_a_longer_tenant_timeout_keeps_active() {
    let world = World::new();
    let rooms = &world.rooms;
    let patient = Actor::Agent {
        tenant: TenantId::new("patient").unwrap(),
        agent: AgentId::new("pat").unwrap(),
    };
    rooms.change_settings(&patient, settings(365)).await.unwrap();
    let invite = |actor: &Actor| {
        let (rooms, actor) = (rooms.clone(), actor.clone());
        async move {
            let room = rooms.create_room(&actor).await.unwrap().room;
            rooms
                .invite(
                    &actor,
                    room,
                    InviteRequest::email("Grace", "Hopper", "grace@example.com"),
                )
                .await
                .unwrap();
            room
        }
    };
    // More long-timeout rooms than a batch, idle longer than the deployment's rooms.
    for _ in 0..150 {
        invite(&patient).await;
    }
    world.clock.advance(DAY);
    let due = invite(&agent()).await;
    world.clock.advance(Policy::DEFAULT_INACTIVITY_TIMEOUT);
    assert_eq!(
        rooms.sweep_timeouts().await.unwrap(),
        1,
        "the deployment's room, behind 150 stepped over"
    );
    assert_eq!(rooms.room(&agent(), due).await.unwrap().status(), RoomStatus::TimedOut);
}
