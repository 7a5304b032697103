//! Collaboration rooms: an agent opens a room, invites a customer by SMS, email or a link, and
//! the two chat and share documents.
//!
//! This crate is the core, free of I/O: the room state machine ([`decide`] and
//! [`RoomState::apply`]), the storage traits ([`RoomStore`], [`BlobStore`]) and their in-memory
//! implementations, and [`document`], which tells what an upload is from its bytes. Adapters
//! live in their own crates (`collab-store-sqlite`, `collab-store-s3`, `collab-notify`).
//!
//! # A room in a few lines
//!
//! ```
//! use collab_core::*;
//!
//! let agent = Actor::Agent { tenant: TenantId::new("acme")?, agent: AgentId::new("ada")? };
//! let policy = Policy::default();
//! let now = Timestamp::from_unix_millis(1_795_857_000_000);
//!
//! let created = create_room(RoomId::from_u128(1), TenantId::new("acme")?, AgentId::new("ada")?, now);
//! let mut room = RoomState::replay([&created])?.ok_or(Error::NotFound { what: "room" })?;
//! assert_eq!(room.name(), "Collaboration Room");
//!
//! let invite = Command::Invite(InviteCommand {
//!     invite: InviteId::from_u128(2),
//!     channel: Channel::Email,
//!     first_name: Some(PersonName::parse("first_name", "Grace")?),
//!     last_name: Some(PersonName::parse("last_name", "Hopper")?),
//!     recipient: Some(Recipient::Email(EmailAddress::parse("grace@example.com")?)),
//! });
//! for event in decide(&room, &invite, &Context { now, actor: &agent, policy: &policy })? {
//!     room.apply(&event);
//! }
//! assert_eq!(room.name(), "Grace Hopper");
//! assert_eq!(room.status(), RoomStatus::Active);
//! # Ok::<(), Error>(())
//! ```
//!
//! # Transition table
//!
#![doc = include_str!("transitions.md")]
//!
//! # Feature flags
//!
//! | feature | what it adds |
//! |---|---|
//! | `testing` | [`testing`]: the conformance kit for store adapters and fault-injecting wrappers (not a stable API) |

pub mod blob;
pub mod customer;
mod decide;
pub mod document;
mod error;
pub mod event;
pub mod guard;
pub mod id;
pub mod memory;
pub mod notify;
mod policy;
pub mod rooms;
mod state;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod token;
pub mod transport;

pub use blob::{BlobKey, BlobStore};
pub use customer::{Channel, Customer, EmailAddress, PersonName, PhoneNumber, Recipient};
pub use decide::{
    Actor, Command, Context, InviteCommand, MAX_CLIENT_KEY_LEN, MAX_PARTICIPANTS, authorize_read, create_room, decide,
};
pub use error::{BoxError, Error};
pub use event::{DeliveryStatus, DocumentKind, DocumentMeta, Event, EventActor, EventData, Seq};
pub use id::{
    AgentId, DocumentId, IdGenerator, InviteId, OutboxId, ParticipantId, RandomIds, RoomId, SequentialIds, TenantId,
};
pub use policy::Policy;
pub use state::{
    CLIENT_KEY_WINDOW, DEFAULT_ROOM_NAME, InviteState, InviteStatus, ParticipantState, RoomState, RoomStatus,
    RoomSummary,
};
pub use store::RoomStore;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use token::{Token, TokenHash};

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
