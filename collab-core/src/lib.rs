//! Collaboration rooms: an agent opens a room, invites a customer by SMS, email or a link, and
//! the two chat and share documents.
//!
//! This crate is the core. A host uses [`Rooms`], built with [`RoomsBuilder`]: every operation
//! an agent or a customer ([`Actor`]) may call, over the traits that do the I/O — [`RoomStore`]
//! (events, outbox, credentials), [`BlobStore`] (document bytes), [`Notifier`] (SMS and
//! email), [`Transport`] (live events across servers) and [`Clock`]. Their in-memory
//! implementations ([`memory`]) are the defaults; adapters live in their own crates
//! (`collab-store-sqlite`, `collab-store-postgres`, `collab-store-s3`, `collab-notify`).
//!
//! The part that is free of I/O is the state machine in [`decide`]: [`decide()`](decide::decide)
//! turns a room's state and a command into events, and [`RoomState::apply`] folds them in.
//! [`document`] tells what an upload is from its bytes. Every failure is an [`Error`]; a host
//! maps its [`kind`](Error::kind) onto its own responses.
//!
//! # A room in a few lines
//!
//! ```
//! use collab_core::decide::{Command, Context, InviteCommand, create_room, decide};
//! use collab_core::*;
//!
//! let agent = Actor::Agent { tenant: TenantId::new("acme")?, agent: AgentId::new("ada")? };
//! let policy = Policy::default();
//! let now = Timestamp::from_unix_millis(1_795_857_000_000);
//!
//! let created = create_room(RoomId::from_u128(1), TenantId::new("acme")?, AgentId::new("ada")?, now);
//! let mut room = RoomState::replay([&created])?.ok_or(Error::NotFound { what: Entity::Room })?;
//! assert_eq!(room.name(), "Collaboration Room");
//!
//! let invite = Command::Invite(InviteCommand {
//!     invite: InviteId::from_u128(2),
//!     channel: Channel::Email,
//!     first_name: Some(PersonName::parse("first_name", "Grace")?),
//!     last_name: Some(PersonName::parse("last_name", "Hopper")?),
//!     recipient: Some(Recipient::Email(EmailAddress::parse("grace@example.com")?)),
//!     locale: None,
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
//! | `testing` | the `testing` module: the conformance kit for store adapters and fault-injecting wrappers (not a stable API) |

pub mod alert;
pub mod blob;
mod content;
pub mod customer;
pub mod decide;
pub mod document;
mod error;
pub mod event;
pub mod guard;
pub mod id;
pub mod locale;
pub mod memory;
pub mod metrics;
pub mod notify;
mod policy;
pub mod rooms;
pub mod settings;
mod state;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
mod token;
pub mod transport;
pub mod webhook;
mod zip;

pub use blob::BlobStore;
pub use customer::{Channel, Customer, EmailAddress, PersonName, PhoneNumber, Recipient};
pub use decide::Actor;
pub use error::{BoxError, Entity, Error, ErrorKind, Rule};
pub use event::{DeliveryStatus, DocumentKind, DocumentMeta, ErasureScope, Event, EventActor, EventData, Seq};
pub use id::{AgentId, DocumentId, EndpointId, InviteId, OutboxId, ParticipantId, RoomId, TenantId};
pub use locale::Locale;
pub use notify::Notifier;
pub use policy::Policy;
pub use rooms::{InviteRequest, Rooms, RoomsBuilder, RoomsConfig, TimelineQuery};
pub use state::{InviteState, InviteStatus, ParticipantState, RoomState, RoomStatus, RoomSummary};
pub use store::RoomStore;
pub use time::{Clock, SystemClock, Timestamp};
pub use token::{Token, TokenHash};
pub use transport::Transport;
pub use webhook::{WebhookEndpoint, WebhookSender};

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
