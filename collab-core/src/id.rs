//! Typed identifiers.
//!
//! Ids the library creates (rooms, invites, documents, participants, outbox rows) are UUIDs from an
//! injectable [`IdGenerator`]. Ids the host owns (tenants, agents) are opaque strings it supplies.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Makes an id from its 128-bit value.
            pub const fn from_u128(value: u128) -> Self {
                Self(Uuid::from_u128(value))
            }

            /// The id's 128-bit value.
            pub const fn as_u128(&self) -> u128 {
                self.0.as_u128()
            }

            /// Makes a fresh id from `ids`.
            pub fn generate(ids: &dyn IdGenerator) -> Result<Self, Error> {
                ids.next_id().map(Self::from_u128)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| Error::invalid($field, "not a UUID"))
            }
        }
    };
}

uuid_id!(
    /// A room.
    RoomId,
    "room_id"
);
uuid_id!(
    /// One invitation of a customer to a room, through one channel.
    InviteId,
    "invite_id"
);
uuid_id!(
    /// A shared document.
    DocumentId,
    "document_id"
);
uuid_id!(
    /// A customer's presence in a room, created when an invite is used.
    ParticipantId,
    "participant_id"
);
uuid_id!(
    /// A webhook endpoint of a tenant ([`crate::webhook`]).
    EndpointId,
    "endpoint_id"
);
uuid_id!(
    /// A pending delivery in the outbox.
    OutboxId,
    "outbox_id"
);

/// The longest host-supplied id accepted, in bytes.
pub const MAX_HOST_ID_LEN: usize = 128;

macro_rules! host_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Box<str>);

        impl $name {
            /// Checks and wraps a host-supplied id: 1 to 128 bytes, no control characters.
            pub fn new(id: impl Into<String>) -> Result<Self, Error> {
                let id = id.into();
                if id.is_empty() || id.len() > MAX_HOST_ID_LEN {
                    return Err(Error::invalid($field, "must be 1 to 128 bytes long"));
                }
                if id.chars().any(char::is_control) {
                    return Err(Error::invalid($field, "must not contain control characters"));
                }
                Ok(Self(id.into_boxed_str()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), &*self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(s: String) -> Result<Self, Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.into()
            }
        }
    };
}

host_id!(
    /// A tenant of the host application: rooms, agents and searches never cross tenants.
    TenantId,
    "tenant_id"
);
host_id!(
    /// An agent, as the host application identifies it after its own authentication.
    AgentId,
    "agent_id"
);

/// Where new ids come from. Inject [`SequentialIds`] to make tests deterministic.
pub trait IdGenerator: fmt::Debug + Send + Sync + 'static {
    /// A new 128-bit id, never returned before by this generator.
    ///
    /// Fails only when the source of randomness does.
    fn next_id(&self) -> Result<u128, Error>;
}

impl<T: IdGenerator + ?Sized> IdGenerator for std::sync::Arc<T> {
    fn next_id(&self) -> Result<u128, Error> {
        (**self).next_id()
    }
}

/// Random version-4 UUIDs from the operating system's random number generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn next_id(&self) -> Result<u128, Error> {
        let bytes = crate::token::random_bytes::<16>()?;
        Ok(uuid::Builder::from_random_bytes(bytes).into_uuid().as_u128())
    }
}

/// Ids 1, 2, 3… in order: deterministic ids for tests and examples.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl SequentialIds {
    /// A generator whose first id is 1.
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdGenerator for SequentialIds {
    fn next_id(&self) -> Result<u128, Error> {
        Ok(u128::from(self.0.fetch_add(1, Ordering::Relaxed) + 1))
    }
}
