//! The one error type of the core and of the storage traits, and its kinds.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::id::RoomId;

/// A boxed error from a backend, kept as a value so callers can inspect its chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a room, for a host to map onto its own responses.
///
/// Each variant is a kind a caller can act on; the comments say which HTTP status a web host
/// would usually answer with. A host that maps errors to responses matches on [`Error::kind`],
/// one arm per [`ErrorKind`], rather than on the variants and their fields.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing does not exist, or the actor may not know that it exists (404).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: Entity,
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
        reason: Rule,
    },
    /// The room timed out and is read-only for the customer until an agent re-invites (409/423).
    #[error("the room has timed out; an agent must re-invite the customer")]
    RoomTimedOut,
    /// The room is closed and accepts no change; its customer can still read it (409/410).
    #[error("the room is closed")]
    RoomClosed,
    /// The room's content was erased: it keeps its sequence numbers and the record of the
    /// erasure, and accepts nothing more (410).
    #[error("the room was erased")]
    RoomErased,
    /// The invite's mobile number or email address is the customer's in another room of the
    /// tenant, and the deployment answers with that room rather than open a second
    /// ([`ExistingCustomer::Answer`](crate::rooms::ExistingCustomer::Answer)). Nothing was
    /// changed (409, naming `room`).
    #[error("the customer has a room already: {room}")]
    CustomerHasRoom {
        /// The customer's room.
        room: RoomId,
    },
    /// The room was merged into another room of the tenant, which holds its content now: send
    /// the command there (409, naming `into`).
    #[error("the room was merged into room {into}")]
    RoomMerged {
        /// The room it is part of now.
        into: RoomId,
    },
    /// The content is larger than the configured limit (413). Nothing was kept.
    #[error("too large: the limit is {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Storing the content would take the room past its storage quota
    /// ([`RoomsConfig::with_max_room_bytes`](crate::rooms::RoomsConfig::with_max_room_bytes)).
    /// Nothing was kept. Not a rate: waiting does not help, a smaller document or a room with
    /// room to spare does (413, with `available` as the largest document accepted now).
    #[error("the document would take the room past its storage quota of {quota} bytes ({available} bytes left)")]
    QuotaExceeded {
        /// The room's quota in bytes.
        quota: u64,
        /// The bytes the room can still take.
        available: u64,
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
    /// The client's upload stream ended in an error before its end: the client disconnected or
    /// its body could not be read (400). Nothing was kept. A fault of the connection, not of the
    /// server: worth a debug line, not an alarm.
    #[error("the upload was interrupted: {source}")]
    UploadAborted {
        /// The stream's own error.
        #[source]
        source: BoxError,
    },
    /// Something inside the library or the process failed that no backend or input explains: an
    /// encoding that cannot fail did, a worker thread could not start, the operating system's
    /// random number generator failed (500).
    #[error("internal error in {what}: {source}")]
    Internal {
        /// The part that failed.
        what: &'static str,
        /// Its own error.
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

    /// An [`Error::Internal`] in `what`, wrapping `source`.
    pub fn internal(what: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Internal {
            what,
            source: source.into(),
        }
    }

    /// The kind of this error, for a host to map onto its own responses.
    ///
    /// ```
    /// use collab_core::{Error, ErrorKind};
    ///
    /// let e = Error::invalid("message", "must not be empty");
    /// assert_eq!(e.kind(), ErrorKind::Invalid);
    /// assert_eq!(e.kind().as_str(), "invalid");
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Forbidden => ErrorKind::Forbidden,
            Self::Invalid { .. } => ErrorKind::Invalid,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::SmsNotActivated => ErrorKind::SmsNotActivated,
            Self::NotAllowed { .. } => ErrorKind::NotAllowed,
            Self::RoomTimedOut => ErrorKind::RoomTimedOut,
            Self::RoomClosed => ErrorKind::RoomClosed,
            Self::RoomErased => ErrorKind::RoomErased,
            Self::RoomMerged { .. } => ErrorKind::RoomMerged,
            Self::CustomerHasRoom { .. } => ErrorKind::CustomerHasRoom,
            Self::TooLarge { .. } => ErrorKind::TooLarge,
            Self::QuotaExceeded { .. } => ErrorKind::QuotaExceeded,
            Self::UnsupportedMediaType { .. } => ErrorKind::UnsupportedMediaType,
            Self::RangeNotSatisfiable { .. } => ErrorKind::RangeNotSatisfiable,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::BackendCredentials { .. } => ErrorKind::BackendCredentials,
            Self::Backend { .. } => ErrorKind::Backend,
            Self::UploadAborted { .. } => ErrorKind::UploadAborted,
            Self::Internal { .. } => ErrorKind::Internal,
        }
    }
}

/// What kind of [`Error`] happened: one value per way a caller can react.
///
/// [`as_str`](ErrorKind::as_str) gives each kind a stable code, `snake_case`, for APIs and logs.
/// New kinds may come in minor releases, so a `match` needs a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::Forbidden`].
    Forbidden,
    /// [`Error::Invalid`].
    Invalid,
    /// [`Error::Conflict`].
    Conflict,
    /// [`Error::SmsNotActivated`].
    SmsNotActivated,
    /// [`Error::NotAllowed`].
    NotAllowed,
    /// [`Error::RoomTimedOut`].
    RoomTimedOut,
    /// [`Error::RoomClosed`].
    RoomClosed,
    /// [`Error::RoomErased`].
    RoomErased,
    /// [`Error::RoomMerged`].
    RoomMerged,
    /// [`Error::CustomerHasRoom`].
    CustomerHasRoom,
    /// [`Error::TooLarge`].
    TooLarge,
    /// [`Error::QuotaExceeded`].
    QuotaExceeded,
    /// [`Error::UnsupportedMediaType`].
    UnsupportedMediaType,
    /// [`Error::RangeNotSatisfiable`].
    RangeNotSatisfiable,
    /// [`Error::RateLimited`].
    RateLimited,
    /// [`Error::Unsupported`].
    Unsupported,
    /// [`Error::BackendCredentials`].
    BackendCredentials,
    /// [`Error::Backend`].
    Backend,
    /// [`Error::UploadAborted`].
    UploadAborted,
    /// [`Error::Internal`].
    Internal,
}

impl ErrorKind {
    /// Every kind, in the order of the enum.
    pub const ALL: &'static [ErrorKind] = &[
        Self::NotFound,
        Self::Forbidden,
        Self::Invalid,
        Self::Conflict,
        Self::SmsNotActivated,
        Self::NotAllowed,
        Self::RoomTimedOut,
        Self::RoomClosed,
        Self::RoomErased,
        Self::RoomMerged,
        Self::CustomerHasRoom,
        Self::TooLarge,
        Self::QuotaExceeded,
        Self::UnsupportedMediaType,
        Self::RangeNotSatisfiable,
        Self::RateLimited,
        Self::Unsupported,
        Self::BackendCredentials,
        Self::Backend,
        Self::UploadAborted,
        Self::Internal,
    ];

    /// The kind's stable code: `not_found`, `invalid`, `sms_not_activated`…
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Invalid => "invalid",
            Self::Conflict => "conflict",
            Self::SmsNotActivated => "sms_not_activated",
            Self::NotAllowed => "not_allowed",
            Self::RoomTimedOut => "room_timed_out",
            Self::RoomClosed => "room_closed",
            Self::RoomErased => "room_erased",
            Self::RoomMerged => "room_merged",
            Self::CustomerHasRoom => "customer_has_room",
            Self::TooLarge => "too_large",
            Self::QuotaExceeded => "quota_exceeded",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::RateLimited => "rate_limited",
            Self::Unsupported => "unsupported",
            Self::BackendCredentials => "backend_credentials",
            Self::Backend => "backend",
            Self::UploadAborted => "upload_aborted",
            Self::Internal => "internal",
        }
    }

    /// Whether the fault lies with the deployment or the library rather than with the request:
    /// a host logs these at error level and shows the caller no detail.
    pub const fn is_server_fault(self) -> bool {
        matches!(self, Self::BackendCredentials | Self::Backend | Self::Internal)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an [`Error::NotFound`] looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// A room, or one the actor may not know of.
    Room,
    /// An invite, or its link: wrong, revoked and expired links are all this.
    Invite,
    /// A customer's session in a room.
    Participant,
    /// A chat message.
    Message,
    /// A shared document.
    Document,
    /// A document's thumbnail: the document is not an image, or no thumbnail can be made from
    /// it (too many pixels to decode safely, or bytes that do not decode).
    Thumbnail,
    /// A room's current link (none is available).
    Link,
    /// A delivery request in the outbox.
    OutboxRow,
}

impl Entity {
    /// The entity's name in words: `room`, `outbox row`…
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Room => "room",
            Self::Invite => "invite",
            Self::Participant => "participant",
            Self::Message => "message",
            Self::Document => "document",
            Self::Thumbnail => "thumbnail",
            Self::Link => "link",
            Self::OutboxRow => "outbox row",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rule refused a command, in an [`Error::NotAllowed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// A room holds at most [`MAX_PARTICIPANTS`](crate::decide::MAX_PARTICIPANTS) live customer
    /// sessions, one per link.
    TooManySessions,
    /// The policy makes a link available only once an SMS or email invite has gone out
    /// ([`Policy::with_link_requires_prior_invite`](crate::Policy::with_link_requires_prior_invite)).
    LinkBeforeInvite,
    /// The abuse guard does not send SMS to the number's country.
    SmsCountry,
    /// The abuse guard sends SMS only to mobile numbers.
    SmsNotMobile,
}

impl Rule {
    /// The rule in words a person can act on.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooManySessions => "the room has as many customer sessions as it may have",
            Self::LinkBeforeInvite => "a link is available once an SMS or email invite has gone out",
            Self::SmsCountry => "SMS invites to this country are not allowed",
            Self::SmsNotMobile => "this number cannot receive SMS (not a mobile number)",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code() {
        let mut codes: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
    }
}
