//! Fixtures shared by the core's integration tests.
// Fixtures panic on a broken set-up, like assertions; not every test file uses every fixture.
#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use collab_core::blob::BlobKey;
use collab_core::decide::{Command, Context, InviteCommand, create_room, decide};
use collab_core::time::ManualClock;
use collab_core::*;

pub const T0: Timestamp = Timestamp::from_unix_millis(1_795_857_000_000);
pub const HOUR: Duration = Duration::from_secs(3600);
pub const DAY: Duration = Duration::from_secs(86_400);

pub fn tenant() -> TenantId {
    TenantId::new("acme").expect("valid")
}

pub fn agent() -> Actor {
    Actor::Agent {
        tenant: tenant(),
        agent: AgentId::new("ada").expect("valid"),
    }
}

pub fn name(field: &'static str, value: &str) -> Option<PersonName> {
    Some(PersonName::parse(field, value).expect("valid name"))
}

pub fn email(address: &str) -> Option<Recipient> {
    Some(Recipient::Email(EmailAddress::parse(address).expect("valid email")))
}

pub fn phone(number: &str) -> Option<Recipient> {
    Some(Recipient::Phone(PhoneNumber::parse(number).expect("valid phone")))
}

/// A room and the world around it, moving forward one accepted command at a time.
pub struct Room {
    pub state: RoomState,
    pub log: Vec<Event>,
    pub now: Timestamp,
    pub policy: Policy,
    ids: u128,
}

impl Room {
    /// A new draft room at `T0`, SMS activated.
    pub fn new() -> Self {
        Self::with_policy(Policy::default().with_sms_activated(true))
    }

    pub fn with_policy(policy: Policy) -> Self {
        Self::numbered(1, policy)
    }

    /// Room `number` of the tenant. Its ids (invites, sessions, documents) start at 100 for
    /// room 1 and at `number * 100_000` for the others, so that two rooms never share one.
    pub fn numbered(number: u128, policy: Policy) -> Self {
        let created = create_room(
            RoomId::from_u128(number),
            tenant(),
            AgentId::new("ada").expect("valid"),
            T0,
        );
        let state = RoomState::replay([&created]).expect("replays").expect("exists");
        Self {
            state,
            log: vec![created],
            now: T0,
            policy,
            ids: if number == 1 { 100 } else { number * 100_000 },
        }
    }

    pub fn id(&mut self) -> u128 {
        self.ids += 1;
        self.ids
    }

    pub fn advance(&mut self, by: Duration) {
        self.now = self.now.saturating_add(by);
    }

    /// What `command` by `actor` would do now, without applying it.
    pub fn try_as(&self, actor: &Actor, command: &Command) -> Result<Vec<Event>, Error> {
        decide(
            &self.state,
            command,
            &Context {
                now: self.now,
                actor,
                policy: &self.policy,
            },
        )
    }

    /// Runs `command` by `actor` and applies its events if accepted.
    pub fn run_as(&mut self, actor: &Actor, command: Command) -> Result<Vec<Event>, Error> {
        let events = self.try_as(actor, &command)?;
        for event in &events {
            self.state.apply(event);
        }
        self.log.extend(events.iter().cloned());
        Ok(events)
    }

    pub fn run(&mut self, command: Command) -> Result<Vec<Event>, Error> {
        self.run_as(&agent(), command)
    }

    pub fn invite_cmd(
        &mut self,
        channel: Channel,
        first: Option<&str>,
        last: Option<&str>,
        recipient: Option<Recipient>,
    ) -> Command {
        Command::Invite(InviteCommand {
            invite: InviteId::from_u128(self.id()),
            channel,
            first_name: first.and_then(|f| name("first_name", f)),
            last_name: last.and_then(|l| name("last_name", l)),
            recipient,
            locale: None,
        })
    }

    /// Invites Grace Hopper by email; returns the invite.
    pub fn invite_by_email(&mut self) -> InviteId {
        let invite = InviteId::from_u128(self.id());
        let cmd = Command::Invite(InviteCommand {
            invite,
            channel: Channel::Email,
            first_name: name("first_name", "Grace"),
            last_name: name("last_name", "Hopper"),
            recipient: email("grace@example.com"),
            locale: None,
        });
        self.run(cmd).expect("email invite accepted");
        invite
    }

    /// Joins with `invite`; returns the customer actor.
    pub fn join(&mut self, invite: InviteId) -> Actor {
        let participant = ParticipantId::from_u128(self.id());
        self.run_as(&Actor::System, Command::Join { invite, participant })
            .expect("join accepted");
        Actor::Customer {
            room: self.state.room(),
            participant,
        }
    }

    pub fn post(text: &str) -> Command {
        Command::PostMessage {
            text: text.to_owned(),
            client_key: None,
        }
    }

    pub fn document(&mut self) -> Command {
        let id = DocumentId::from_u128(self.id());
        Command::ShareDocument(DocumentMeta {
            id,
            name: "scan.pdf".into(),
            media_type: "application/pdf".into(),
            size: 1234,
            sha256: blob::Sha256Digest::of(b"pdf"),
            kind: DocumentKind::Pdf { pages: 3 },
            blob: BlobKey::for_document(&tenant(), self.state.room(), id),
        })
    }
}

/// The texts of the chat messages among `events`, in order.
pub fn message_texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::MessagePosted { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// The name of an error's variant, as the transition table writes it.
pub fn kind(error: &Error) -> String {
    format!("{error:?}")
        .chars()
        .take_while(|c| c.is_alphanumeric())
        .collect()
}

/// Yields to other tasks until `done` holds; fails loudly after 10 s of wall-clock time (a
/// paused tokio clock does not stop it).
pub async fn yield_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up after 10 s waiting until {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// A `Rooms` service on the memory stores with a manual clock and recording notifiers.
pub struct World {
    pub rooms: rooms::Rooms,
    pub store: std::sync::Arc<memory::MemoryRoomStore>,
    pub clock: std::sync::Arc<ManualClock>,
    pub sms: std::sync::Arc<notify::RecordingNotifier>,
    pub email: std::sync::Arc<notify::RecordingNotifier>,
}

impl World {
    pub fn new() -> Self {
        Self::with(|builder| builder)
    }

    /// A world whose builder `customize` may change before it is built.
    pub fn with(customize: impl FnOnce(rooms::RoomsBuilder) -> rooms::RoomsBuilder) -> Self {
        let store = std::sync::Arc::new(memory::MemoryRoomStore::new());
        let clock = std::sync::Arc::new(ManualClock::new(T0));
        let sms = std::sync::Arc::new(notify::RecordingNotifier::new());
        let email = std::sync::Arc::new(notify::RecordingNotifier::new());
        let builder = rooms::Rooms::builder()
            .room_store(store.clone())
            .clock(clock.clone())
            .sms(sms.clone())
            .email(email.clone());
        let rooms = customize(builder).build();
        Self {
            rooms,
            store,
            clock,
            sms,
            email,
        }
    }

    /// A room opened by `agent()` with Grace invited by email, and her customer actor.
    pub async fn room_with_customer(&self) -> (RoomId, Actor, rooms::CustomerSession) {
        room_with_customer(&self.rooms).await
    }
}

/// A room opened by `agent()` with Grace invited by email: the room and the invite.
pub async fn email_invite(rooms: &rooms::Rooms) -> (RoomId, InviteId) {
    let room = rooms.create_room(&agent()).await.expect("create").room;
    let invite = rooms
        .invite(
            &agent(),
            room,
            rooms::InviteRequest::email("Grace", "Hopper", "grace@example.com"),
        )
        .await
        .expect("invite")
        .invite;
    (room, invite)
}

/// A room opened by `agent()` with Grace invited by email and joined: the room, her customer
/// actor and her session.
pub async fn room_with_customer(rooms: &rooms::Rooms) -> (RoomId, Actor, rooms::CustomerSession) {
    let (room, _) = email_invite(rooms).await;
    let link = rooms
        .get_link(&agent(), room)
        .await
        .expect("link")
        .link
        .expect("a link");
    let session = rooms.join(link.token()).await.expect("join");
    let customer = rooms.customer_session(session.token.expose()).await.expect("session");
    (room, customer, session)
}

/// The tokio clock as a `Clock`, so that timestamps follow a paused runtime's time.
#[derive(Debug)]
pub struct TokioClock {
    pub start: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        T0.saturating_add(self.start.elapsed())
    }
}
