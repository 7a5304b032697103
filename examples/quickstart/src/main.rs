//! A room from creation to timeline on the in-memory stores: an agent opens a room, invites a
//! customer by email, gets the link, the customer joins through it, the two chat and share a
//! document, and a live subscriber sees it all.
//!
//! Run it with `cargo run -p quickstart`.

use async_trait::async_trait;
use bytes::Bytes;
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt};
use collab_core::rooms::{InviteRequest, Rooms, TimelineQuery, Upload};
use collab_core::*;
use futures_util::StreamExt;

/// A notifier for development: prints each invite instead of sending it.
#[derive(Debug)]
struct PrintedEmail;

#[async_trait]
impl Notifier for PrintedEmail {
    async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        println!(
            "  [email to {}] {}",
            notification.recipient,
            notification.subject.as_deref().unwrap_or_default()
        );
        for line in notification.text.lines() {
            println!("  | {line}");
        }
        Ok(Receipt::default())
    }
}

fn describe(event: &Event) -> String {
    let who = match &event.actor {
        EventActor::Agent(agent) => format!("agent {agent}"),
        EventActor::Customer(_) => "customer".to_owned(),
        EventActor::System => "system".to_owned(),
    };
    let what = match &event.data {
        EventData::MessagePosted { text, .. } => format!("says {text:?}"),
        EventData::CustomerInvited {
            channel,
            recipient: Some(to),
            ..
        } => format!("invites by {channel} to {to}"),
        EventData::CustomerInvited { channel, .. } => format!("invites by {channel}"),
        EventData::RoomRenamed { name } => format!("room renamed to {name:?}"),
        EventData::DocumentShared(doc) => format!("shares {:?} ({}, {} bytes)", doc.name, doc.media_type, doc.size),
        other => other.type_name().replace('_', " "),
    };
    format!("#{:<2} {}  {who}: {what}", event.seq, event.at)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let rooms = Rooms::builder().email(PrintedEmail).build();
    let agent = Actor::Agent {
        tenant: TenantId::new("acme")?,
        agent: AgentId::new("ada@acme.example")?,
    };

    // The agent opens a room: a draft named "Collaboration Room".
    let room = rooms.create_room(&agent).await?.room;
    let mut live = rooms.subscribe(&agent, room, Seq::ZERO).await?;

    // Inviting by email renames the room; the email waits in the outbox until dispatched.
    rooms
        .invite(
            &agent,
            room,
            InviteRequest::email("Grace", "Hopper", "grace@example.com"),
        )
        .await?;
    println!("dispatching the outbox:");
    rooms.dispatch_due().await?;

    // Once an email went out, "Get Link" works: a link the agent copies.
    let link = rooms
        .get_link(&agent, room)
        .await?
        .link
        .ok_or(Error::NotFound { what: Entity::Link })?;
    println!("\nlink for the agent to copy: {}", link.url());

    // The customer opens the link and gets a session (kept in a cookie by a web host).
    let session = rooms.join(link.token()).await?;
    let customer = rooms.customer_session(session.token.expose()).await?;
    rooms
        .post_message(&customer, room, "Hello! I have the form ready.", None)
        .await?;
    rooms
        .post_message(&agent, room, "Great, please share it here.", None)
        .await?;
    let form = Upload {
        file_name: "form.txt".into(),
        data: Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(
            b"Name: Grace Hopper\n",
        ))])),
    };
    rooms.share_document(&customer, room, form).await?;

    let state = rooms.room(&agent, room).await?;
    println!("\ntimeline of {:?} ({}):", state.name(), state.status());
    for event in rooms
        .timeline(
            &agent,
            room,
            TimelineQuery::After {
                seq: Seq::ZERO,
                limit: 100,
            },
        )
        .await?
    {
        println!("  {}", describe(&event));
    }

    let mut heard = 0;
    while heard < state.seq().get() {
        match live.next().await {
            Some(Ok(_)) => heard += 1,
            _ => break,
        }
    }
    println!("\nthe live subscriber heard all {heard} events, in order");
    Ok(())
}
