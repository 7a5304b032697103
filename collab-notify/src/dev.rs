//! A notifier for development: invites go to the log and to an in-memory "dev inbox".

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use collab_core::notify::{Notification, Notifier, NotifyError, Receipt};
use collab_core::{Clock, InviteId, Recipient, RoomId, SystemClock, Timestamp};

/// One invite the dev inbox caught.
#[derive(Clone, PartialEq, Eq)]
pub struct DevMessage {
    /// When it was "sent".
    pub at: Timestamp,
    /// The room.
    pub room: RoomId,
    /// The invite.
    pub invite: InviteId,
    /// Who it was for.
    pub recipient: Recipient,
    /// The email subject, for email.
    pub subject: Option<String>,
    /// The text, with the link.
    pub text: String,
    /// The invite link: open it to join as the customer.
    pub link: String,
}

impl fmt::Debug for DevMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevMessage")
            .field("at", &self.at)
            .field("room", &self.room)
            .field("invite", &self.invite)
            .field("recipient", &self.recipient)
            .field("link", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A [`Notifier`] for development and demos: it sends nothing. Each invite is kept in memory,
/// the last `capacity` of them, for a "dev inbox" page to show, and logged at `info` level
/// (target `collab_notify::dev`) without its link or text: the link is a bearer secret, and logs
/// travel further than the page.
///
/// **Not for production**: anyone who can read the inbox can join its rooms. Clones share one
/// inbox, so keep a clone to read it after handing the notifier to the builder:
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use collab_core::rooms::{InviteRequest, Rooms};
/// use collab_core::*;
/// use collab_notify::DevInbox;
///
/// let inbox = DevInbox::new(50);
/// let rooms = Rooms::builder().sms(inbox.clone()).email(inbox.clone()).build();
/// let agent = Actor::Agent { tenant: TenantId::new("acme")?, agent: AgentId::new("ada")? };
/// let room = rooms.create_room(&agent).await?.room;
/// rooms.invite(&agent, room, InviteRequest::sms("Grace", "Hopper", "+447911123456")).await?;
/// rooms.dispatch_due().await?;
///
/// let latest = &inbox.messages()[0];
/// assert!(latest.text.contains(&latest.link));
/// let token = latest.link.rsplit('/').next().unwrap_or_default();
/// rooms.join(token).await?;
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct DevInbox {
    inner: Arc<Inbox>,
}

struct Inbox {
    capacity: usize,
    clock: Arc<dyn Clock>,
    messages: Mutex<VecDeque<DevMessage>>,
}

impl fmt::Debug for DevInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevInbox")
            .field("capacity", &self.inner.capacity)
            .field("held", &self.lock().len())
            .finish()
    }
}

impl DevInbox {
    /// An inbox keeping the last `capacity` invites (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self::with_clock(capacity, SystemClock)
    }

    /// The same, stamping messages with `clock`.
    pub fn with_clock(capacity: usize, clock: impl Clock) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Arc::new(Inbox {
                capacity,
                clock: Arc::new(clock),
                messages: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<DevMessage>> {
        self.inner
            .messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The invites held, newest first.
    pub fn messages(&self) -> Vec<DevMessage> {
        self.lock().iter().rev().cloned().collect()
    }

    /// The newest invite to `recipient` (`+447911123456` or `grace@example.com`).
    pub fn latest_for(&self, recipient: &str) -> Option<DevMessage> {
        self.lock()
            .iter()
            .rev()
            .find(|m| m.recipient.to_string() == recipient)
            .cloned()
    }

    /// Empties the inbox.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[async_trait]
impl Notifier for DevInbox {
    fn provider(&self) -> &'static str {
        "dev"
    }

    async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let message = DevMessage {
            at: self.inner.clock.now(),
            room: notification.room,
            invite: notification.invite,
            recipient: notification.recipient.clone(),
            subject: notification.subject.clone(),
            text: notification.text.clone(),
            link: notification.link.clone(),
        };
        tracing::info!(
            target: "collab_notify::dev",
            room = %message.room,
            invite = %message.invite,
            // No recipient: a number or address in a log outlives the customer's erasure.
            "dev inbox: invite not sent, the Dev inbox shows its link"
        );
        let mut messages = self.lock();
        while messages.len() >= self.inner.capacity {
            messages.pop_front();
        }
        messages.push_back(message);
        Ok(Receipt {
            provider_id: Some(format!("dev-{}", notification.invite)),
        })
    }
}
