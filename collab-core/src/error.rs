//! The one error type of the core and of the storage traits.

use std::borrow::Cow;
use std::time::Duration;

/// A boxed error from a backend, kept as a value so callers can inspect its chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a room, for a host to map onto its own responses.
///
/// Each variant is a kind a caller can act on; the comments say which HTTP status a web host
/// would usually answer with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing does not exist, or the actor may not know that it exists (404).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for: "room", "invite", "document"…
        what: &'static str,
    },
    /// The actor may not do this (403). Never says whether the target exists.
    #[error("forbidden")]
    Forbidden,
    /// A field of the input is unacceptable (400/422). Nothing was changed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The name of the field at fault, as the API spells it.
        field: &'static str,
        /// Why it was refused, in words a person can act on.
        reason: Cow<'static, str>,
    },
    /// Someone else changed the room first (409); reload and decide again.
    #[error("conflict: {reason}")]
    Conflict {
        /// What collided.
        reason: Cow<'static, str>,
    },
    /// An SMS invite was asked for but no sender number is configured (409/422).
    #[error("SMS not activated: configure a sender number to invite by SMS")]
    SmsNotActivated,
    /// A policy refuses the command in the room's present state (409).
    #[error("not allowed: {reason}")]
    NotAllowed {
        /// Which rule refused it.
        reason: &'static str,
    },
    /// The room timed out and is read-only for the customer until an agent re-invites (409/423).
    #[error("the room has timed out; an agent must re-invite the customer")]
    RoomTimedOut,
    /// The room is closed and accepts nothing (409/410).
    #[error("the room is closed")]
    RoomClosed,
    /// The content is larger than the configured limit (413). Nothing was kept.
    #[error("too large: the limit is {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The content's type, sniffed from its bytes, is not accepted (415). Nothing was kept.
    #[error("documents of type {media_type} are not accepted")]
    UnsupportedMediaType {
        /// The media type the bytes revealed.
        media_type: String,
    },
    /// A byte range starts at or past the end of the content (416).
    #[error("range not satisfiable: the content has {size} bytes")]
    RangeNotSatisfiable {
        /// The size of the whole content in bytes.
        size: u64,
    },
    /// Too many requests; try again after the given time (429).
    #[error("rate limited: retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// How long to wait before trying again.
        retry_after: Duration,
    },
    /// The backend cannot do this at all (501).
    #[error("{backend} does not support {capability}")]
    Unsupported {
        /// The backend that was asked.
        backend: &'static str,
        /// What it cannot do.
        capability: &'static str,
    },
    /// A backend refused the library's own credentials: wrong, expired, or lacking a permission
    /// (500/503). A fault of the deployment, not of the caller: tell an operator, not the user.
    #[error("{backend} refused the configured credentials: {source}")]
    BackendCredentials {
        /// The backend that refused them.
        backend: &'static str,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
    /// A backend (database, object store, network) failed (500/503).
    #[error("{backend} failed: {source}")]
    Backend {
        /// The backend that failed.
        backend: &'static str,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// An [`Error::Invalid`] for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// An [`Error::Conflict`].
    pub fn conflict(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Conflict { reason: reason.into() }
    }

    /// An [`Error::Backend`] wrapping `source`.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            backend,
            source: source.into(),
        }
    }
}
