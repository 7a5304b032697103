//! Fixtures shared by collab-notify's tests.
// Fixtures panic on a broken set-up, like assertions; not every test file uses every fixture.
#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use collab_core::notify::{Notification, Notifier, NotifyError};
use collab_core::rooms::{InviteRequest, Rooms, RoomsBuilder, TimelineQuery};
use collab_core::time::ManualClock;
use collab_core::*;

#[cfg(feature = "http")]
mod providers;
// Test files without an HTTP provider import none of it.
#[cfg(feature = "http")]
#[allow(unused_imports)]
pub use providers::*;

/// 2026-11-28, the core's test epoch.
pub const T0: Timestamp = Timestamp::from_unix_millis(1_795_857_000_000);
pub const HOUR: Duration = Duration::from_secs(3600);

pub fn agent() -> Actor {
    agent_named("ada")
}

pub fn agent_named(name: &str) -> Actor {
    Actor::Agent {
        tenant: TenantId::new("acme").unwrap(),
        agent: AgentId::new(name).unwrap(),
    }
}

/// A builder with a manual clock at `T0`, links on `https://rooms.example.com`.
pub fn builder(clock: &Arc<ManualClock>) -> RoomsBuilder {
    let config = rooms::RoomsConfig::default()
        .with_base_url("https://rooms.example.com")
        .unwrap();
    Rooms::builder().clock(clock.clone()).config(config)
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(T0))
}

/// A new room with the customer invited by SMS to `number`.
pub async fn sms_invite(rooms: &Rooms, number: &str) -> (RoomId, InviteId) {
    invite(rooms, InviteRequest::sms("Grace", "Hopper", number)).await
}

/// A new room with the customer invited by email to `address`.
pub async fn email_invite(rooms: &Rooms, address: &str) -> (RoomId, InviteId) {
    invite(rooms, InviteRequest::email("Grace", "Hopper", address)).await
}

async fn invite(rooms: &Rooms, request: InviteRequest) -> (RoomId, InviteId) {
    let room = rooms.create_room(&agent()).await.unwrap().room;
    let issued = rooms.invite(&agent(), room, request).await.unwrap();
    (room, issued.invite)
}

/// The room's events, oldest first.
pub async fn events(rooms: &Rooms, room: RoomId) -> Vec<Event> {
    rooms
        .timeline(
            &agent(),
            room,
            TimelineQuery::After {
                seq: Seq::ZERO,
                limit: 1_000,
            },
        )
        .await
        .unwrap()
}

/// The delivery news recorded for `invite`, in order.
pub async fn deliveries(rooms: &Rooms, room: RoomId, invite: InviteId) -> Vec<DeliveryStatus> {
    events(rooms, room)
        .await
        .into_iter()
        .filter_map(|e| match e.data {
            EventData::InviteDelivery { invite: i, status } if i == invite => Some(status),
            _ => None,
        })
        .collect()
}

/// An SMS notification as the dispatcher makes them.
pub fn sms(number: &str) -> Notification {
    Notification {
        room: RoomId::from_u128(0x11),
        invite: InviteId::from_u128(0x22),
        recipient: Recipient::Phone(PhoneNumber::parse(number).unwrap()),
        first_name: "Grace".into(),
        subject: None,
        text: "Hi Grace, join your collaboration room: https://rooms.example.com/join/t0k3n".into(),
        link: "https://rooms.example.com/join/t0k3n".into(),
    }
}

/// How `notifier` fails to send `notification`.
pub async fn send_error(notifier: &dyn Notifier, notification: &Notification) -> NotifyError {
    match notifier.send(notification).await {
        Ok(receipt) => panic!("sent, expected a failure: {receipt:?}"),
        Err(error) => error,
    }
}

/// How `notifier` fails to send an SMS to +447911123456.
pub async fn sms_error(notifier: &dyn Notifier) -> NotifyError {
    send_error(notifier, &sms("+447911123456")).await
}

/// A port on 127.0.0.1 that nothing listens on: bound, then freed.
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An email notification as the dispatcher makes them.
pub fn email(address: &str) -> Notification {
    let link = "https://rooms.example.com/join/t0k3n".to_owned();
    Notification {
        room: RoomId::from_u128(0x11),
        invite: InviteId::from_u128(0x22),
        recipient: Recipient::Email(EmailAddress::parse(address).unwrap()),
        first_name: "Grace".into(),
        subject: Some("Your collaboration room".into()),
        text: format!("Hello Grace,\n\nPlease join your collaboration room:\n{link}\n"),
        link,
    }
}

/// The source of a notifier error, as text.
pub fn reason(error: &NotifyError) -> String {
    std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_default()
}
