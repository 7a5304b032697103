//! A room from creation to timeline on the in-memory stores: an agent opens a room, invites a
//! customer by email, gets the link, the customer joins through it, and the two chat.
//!
//! Run it with `cargo run -p quickstart`.

use collab_core::memory::MemoryRoomStore;
use collab_core::store::{Append, Credential, Grant, OutboxMessage};
use collab_core::*;

/// Decides `command` for `actor`, stores the events with `extra` (outbox rows, credentials) and
/// returns the room's new state.
async fn execute(
    store: &dyn RoomStore,
    state: &RoomState,
    actor: &Actor,
    command: Command,
    extra: impl FnOnce(&mut Append),
) -> Result<RoomState, Error> {
    let policy = Policy::default();
    let ctx = Context {
        now: SystemClock.now(),
        actor,
        policy: &policy,
    };
    let events = decide(state, &command, &ctx)?;
    let mut append = Append::new(Some(state), events)?;
    extra(&mut append);
    store.append(append).await?;
    store
        .load_room(state.room())
        .await?
        .ok_or(Error::NotFound { what: "room" })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let store = MemoryRoomStore::new();
    let ids = RandomIds;
    let base_url = "http://127.0.0.1:8080";
    let tenant = TenantId::new("acme")?;
    let agent_id = AgentId::new("ada@acme.example")?;
    let agent = Actor::Agent {
        tenant: tenant.clone(),
        agent: agent_id.clone(),
    };

    // The agent opens a room: a draft named "Collaboration Room".
    let room = RoomId::generate(&ids)?;
    store
        .append(Append::new(
            None,
            vec![create_room(room, tenant, agent_id, SystemClock.now())],
        )?)
        .await?;
    let state = store.load_room(room).await?.ok_or(Error::NotFound { what: "room" })?;
    println!("opened {room}: {:?} ({})", state.name(), state.status());

    // The agent invites Grace by email: the delivery waits in the outbox, written with the event.
    let email_token = Token::generate()?;
    let email_invite = InviteId::generate(&ids)?;
    let outbox_id = OutboxId::generate(&ids)?;
    let invite = Command::Invite(InviteCommand {
        invite: email_invite,
        channel: Channel::Email,
        first_name: Some(PersonName::parse("first_name", "Grace")?),
        last_name: Some(PersonName::parse("last_name", "Hopper")?),
        recipient: Some(Recipient::Email(EmailAddress::parse("grace@example.com")?)),
    });
    let state = execute(&store, &state, &agent, invite, |append| {
        append.outbox.push(OutboxMessage {
            id: outbox_id,
            room,
            invite: email_invite,
            channel: Channel::Email,
            payload: format!("Hi Grace, join the room: {base_url}/join/{}", email_token.expose()),
            not_before: SystemClock.now(),
        });
        append.credentials.push(Credential {
            hash: email_token.hash(),
            room,
            grant: Grant::Invite(email_invite),
        });
    })
    .await?;
    println!(
        "invited by email: the room is now {:?} ({})",
        state.name(),
        state.status()
    );

    // Now that an email went out, "Get Link" works: a link the agent copies.
    let link_token = Token::generate()?;
    let link_invite = InviteId::generate(&ids)?;
    let get_link = Command::Invite(InviteCommand {
        invite: link_invite,
        channel: Channel::Link,
        first_name: None,
        last_name: None,
        recipient: None,
    });
    let state = execute(&store, &state, &agent, get_link, |append| {
        append.credentials.push(Credential {
            hash: link_token.hash(),
            room,
            grant: Grant::Invite(link_invite),
        });
    })
    .await?;
    let link = format!("{base_url}/join/{}", link_token.expose());
    println!("link for the agent to copy: {link}");

    // The customer opens the link: the token is looked up by its hash, never stored in clear.
    let presented = Token::parse(link.rsplit('/').next().unwrap_or_default())?;
    let Some(Credential {
        grant: Grant::Invite(invite),
        ..
    }) = store.find_credential(&presented.hash()).await?
    else {
        return Err(Error::NotFound { what: "invite" });
    };
    let participant = ParticipantId::generate(&ids)?;
    let state = execute(
        &store,
        &state,
        &Actor::System,
        Command::Join { invite, participant },
        |_| {},
    )
    .await?;
    let customer = Actor::Customer { room, participant };

    let say = |text: &str| Command::PostMessage {
        text: text.to_owned(),
        client_key: None,
    };
    let state = execute(&store, &state, &customer, say("Hello! I have the form ready."), |_| {}).await?;
    let state = execute(&store, &state, &agent, say("Great, please share it here."), |_| {}).await?;

    println!("\ntimeline of {:?}:", state.name());
    for event in store.read_events(room, Seq::ZERO, 100).await? {
        let who = match &event.actor {
            EventActor::Agent(agent) => format!("agent {agent}"),
            EventActor::Customer(_) => "customer".to_owned(),
            EventActor::System => "system".to_owned(),
        };
        let what = match &event.data {
            EventData::MessagePosted { text, .. } => format!("says {text:?}"),
            EventData::CustomerInvited { channel, recipient, .. } => match recipient {
                Some(to) => format!("invites by {channel} to {to}"),
                None => format!("invites by {channel}"),
            },
            EventData::RoomRenamed { name } => format!("room renamed to {name:?}"),
            other => other.type_name().replace('_', " "),
        };
        println!("  #{:<2} {}  {who}: {what}", event.seq, event.at);
    }
    let pending = store
        .claim_outbox(SystemClock.now(), std::time::Duration::from_secs(30), 10)
        .await?;
    println!(
        "\n{} delivery waiting in the outbox (a notifier would send it)",
        pending.len()
    );
    Ok(())
}
