//! The rules a deployment can tune, with their defaults and bounds.

use std::time::Duration;

use crate::Error;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The room rules [`crate::decide`] applies. Build it from [`Policy::default`] and the `with_`
/// methods; those that take a bound check it and say which field is wrong.
///
/// ```
/// use std::time::Duration;
/// use collab_core::Policy;
///
/// let policy = Policy::default()
///     .with_sms_activated(true)
///     .with_inactivity_timeout(Duration::from_secs(30 * 24 * 3600))?;
/// assert!(Policy::default().with_inactivity_timeout(Duration::from_secs(3600)).is_err());
/// # Ok::<(), collab_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    sms_activated: bool,
    link_requires_prior_invite: bool,
    supersede_links: bool,
    inactivity_timeout: Duration,
    invite_ttl: Duration,
    max_message_chars: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            sms_activated: false,
            link_requires_prior_invite: true,
            supersede_links: true,
            inactivity_timeout: Self::DEFAULT_INACTIVITY_TIMEOUT,
            invite_ttl: Self::DEFAULT_INVITE_TTL,
            max_message_chars: Self::DEFAULT_MAX_MESSAGE_CHARS,
        }
    }
}

impl Policy {
    /// 90 days.
    pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(90 * 24 * 60 * 60);
    /// 3 days: the shortest inactivity timeout accepted.
    pub const MIN_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(3 * 24 * 60 * 60);
    /// 7 days.
    pub const DEFAULT_INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
    /// 4,000 characters.
    pub const DEFAULT_MAX_MESSAGE_CHARS: usize = 4_000;
    /// 100,000 characters: the largest message limit accepted.
    pub const MAX_MESSAGE_CHARS: usize = 100_000;

    /// Whether SMS is activated: a sender number is configured. Off by default.
    pub fn with_sms_activated(mut self, activated: bool) -> Self {
        self.sms_activated = activated;
        self
    }

    /// Whether "Get Link" needs an SMS or email invite first, as in the product. On by default.
    pub fn with_link_requires_prior_invite(mut self, required: bool) -> Self {
        self.link_requires_prior_invite = required;
        self
    }

    /// Whether a new invite supersedes the earlier ones of its channel: their links stop opening
    /// the room (the sessions they opened go on), so that each "Get Link", SMS or email leaves
    /// one live link per channel. On by default; off keeps every link until it expires or is
    /// revoked.
    pub fn with_superseding_links(mut self, supersede: bool) -> Self {
        self.supersede_links = supersede;
        self
    }

    /// How long a room may be idle before it times out: at least 3 days, 90 by default.
    pub fn with_inactivity_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        if timeout < Self::MIN_INACTIVITY_TIMEOUT {
            return Err(Error::invalid("inactivity_timeout", "must be at least 3 days"));
        }
        self.inactivity_timeout = timeout;
        Ok(self)
    }

    /// How long an invite link works: from 1 minute to 90 days, 7 days by default.
    pub fn with_invite_ttl(mut self, ttl: Duration) -> Result<Self, Error> {
        if ttl < Duration::from_secs(60) || ttl > 90 * DAY {
            return Err(Error::invalid("invite_ttl", "must be from 1 minute to 90 days"));
        }
        self.invite_ttl = ttl;
        Ok(self)
    }

    /// The longest chat message, in characters: from 1 to 100,000, 4,000 by default.
    pub fn with_max_message_chars(mut self, max: usize) -> Result<Self, Error> {
        if max == 0 || max > Self::MAX_MESSAGE_CHARS {
            return Err(Error::invalid("max_message_chars", "must be from 1 to 100000"));
        }
        self.max_message_chars = max;
        Ok(self)
    }

    /// Whether SMS is activated.
    pub fn sms_activated(&self) -> bool {
        self.sms_activated
    }

    /// Whether "Get Link" needs an SMS or email invite first.
    pub fn link_requires_prior_invite(&self) -> bool {
        self.link_requires_prior_invite
    }

    /// Whether a new invite supersedes the earlier ones of its channel.
    pub fn supersedes_links(&self) -> bool {
        self.supersede_links
    }

    /// How long a room may be idle before it times out.
    pub fn inactivity_timeout(&self) -> Duration {
        self.inactivity_timeout
    }

    /// How long an invite link works.
    pub fn invite_ttl(&self) -> Duration {
        self.invite_ttl
    }

    /// The longest chat message, in characters.
    pub fn max_message_chars(&self) -> usize {
        self.max_message_chars
    }
}
