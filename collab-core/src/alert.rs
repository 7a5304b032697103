//! Agent alerts: the room's agent hears when the customer wrote and nobody read it.
//!
//! # When an alert goes out
//!
//! - When the customer posts a message or shares a document and no earlier one of theirs is
//!   waiting, the same append queues an outbox row for the room's alert, due one quiet period
//!   later ([`RoomsConfig::with_alert_after`](crate::RoomsConfig::with_alert_after), 5 minutes by
//!   default). Later posts of the same burst queue nothing: they ride on that row.
//! - When the row is due, the dispatcher looks at the room again. An agent who watches the room
//!   has read the posts meanwhile (the pages say what they show,
//!   [`Rooms::mark_read`](crate::Rooms::mark_read)): then nothing is sent. If some posts still
//!   wait but the oldest of them is younger than the quiet period (an agent read the older
//!   ones), the row waits until it is not. Otherwise [`AgentAlerts::customer_waiting`] is
//!   called once for all of them, and [`EventData::AgentsAlerted`](crate::EventData::AgentsAlerted)
//!   records how far it covered. So a customer who writes ten messages in a minute to an
//!   absent agent causes one alert, and the next alert comes at least a quiet period later.
//! - Delivery is the outbox's: at least once, retried with backoff up to the attempt limit,
//!   then given up and recorded (`failure`). Closed and erased rooms alert nobody.
//!
//! Implement [`AgentAlerts`] for your own channel (chat, push, a ticket), or use
//! `collab_notify::smtp::SmtpAgentAlerts` to email agents through the SMTP settings of the
//! invites. Register it with [`RoomsBuilder::agent_alerts`](crate::RoomsBuilder::agent_alerts).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::id::{AgentId, RoomId, TenantId};
use crate::notify::{NotifyError, Receipt};
use crate::time::Timestamp;

/// The customer of a room wrote, and no agent has read it for the quiet period.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerWaiting {
    /// The room's tenant.
    pub tenant: TenantId,
    /// The room.
    pub room: RoomId,
    /// The room's agent: the one who opened it.
    pub agent: AgentId,
    /// The customer's name, once invited ("Grace Hopper").
    pub customer: Option<String>,
    /// How many of the customer's messages and documents wait unread.
    pub waiting: u32,
    /// When the oldest of them was posted.
    pub since: Timestamp,
}

/// No customer name: it is personal data, and `Debug` ends up in logs.
impl fmt::Debug for CustomerWaiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerWaiting")
            .field("tenant", &self.tenant)
            .field("room", &self.room)
            .field("agent", &self.agent)
            .field("waiting", &self.waiting)
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

/// Tells a room's agent that the customer is waiting. The dispatcher calls it; the contract is
/// the one of [`Notifier`](crate::notify::Notifier): one attempt per call, failures classified
/// honestly (permanent, transient, ambiguous), never the customer's name in logs.
///
/// ```
/// use async_trait::async_trait;
/// use collab_core::alert::{AgentAlerts, CustomerWaiting};
/// use collab_core::notify::{NotifyError, Receipt};
///
/// /// Posts to the team's chat (here: pretends to).
/// #[derive(Debug)]
/// struct TeamChat;
///
/// #[async_trait]
/// impl AgentAlerts for TeamChat {
///     async fn customer_waiting(&self, alert: &CustomerWaiting) -> Result<Receipt, NotifyError> {
///         let _text = format!("@{}: {} unread in room {}", alert.agent, alert.waiting, alert.room);
///         Ok(Receipt::default())
///     }
/// }
/// ```
#[async_trait]
pub trait AgentAlerts: fmt::Debug + Send + Sync + 'static {
    /// Makes one attempt to tell `alert.agent`.
    async fn customer_waiting(&self, alert: &CustomerWaiting) -> Result<Receipt, NotifyError>;
}

#[async_trait]
impl<T: AgentAlerts + ?Sized> AgentAlerts for Arc<T> {
    async fn customer_waiting(&self, alert: &CustomerWaiting) -> Result<Receipt, NotifyError> {
        (**self).customer_waiting(alert).await
    }
}

/// A fake [`AgentAlerts`] that records the alerts it is asked to send, and fails when told to.
#[derive(Debug, Default)]
pub struct RecordingAgentAlerts {
    sent: Mutex<Vec<CustomerWaiting>>,
    failures: Mutex<VecDeque<NotifyError>>,
}

impl RecordingAgentAlerts {
    /// A recorder that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// The alerts accepted so far, in order.
    pub fn sent(&self) -> Vec<CustomerWaiting> {
        lock(&self.sent).clone()
    }

    /// Makes the next call fail with `error`; several queue up, in order.
    pub fn fail_next(&self, error: NotifyError) {
        lock(&self.failures).push_back(error);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl AgentAlerts for RecordingAgentAlerts {
    async fn customer_waiting(&self, alert: &CustomerWaiting) -> Result<Receipt, NotifyError> {
        if let Some(error) = lock(&self.failures).pop_front() {
            return Err(error);
        }
        lock(&self.sent).push(alert.clone());
        Ok(Receipt::default())
    }
}
