//! Live events: the [`Transport`] that carries a room's new events to its subscribers.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures_core::Stream;
use futures_util::stream;
use tokio::sync::broadcast;

use crate::Error;
use crate::event::{Event, Seq};
use crate::id::{AgentId, ParticipantId, RoomId};

/// What a subscriber hears from a [`Transport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Live {
    /// A new event.
    Event(Arc<Event>),
    /// The room has events up to `seq`; read the ones you lack from the store. Transports that
    /// carry only wake-ups (a database's notifications) send this.
    Wake {
        /// The room's last sequence number when the wake-up was sent.
        seq: Seq,
    },
    /// Some events were dropped for this subscriber (it fell behind); read the store to catch up.
    Lagged,
    /// Someone in the room is typing. Ephemeral: never stored, and lost without harm.
    Typing(Typing),
}

/// Someone in a room is typing now: the room's other participants show it for
/// [`Typing::EXPIRES_AFTER`], or until the typist's next message arrives. A typist who goes on
/// typing signals again before then (see
/// [`RoomsConfig::with_typing_interval`](crate::rooms::RoomsConfig::with_typing_interval)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Typing {
    /// Who types.
    pub by: Typist,
}

impl Typing {
    /// How long a typing indicator shows after its signal: 6 s.
    pub const EXPIRES_AFTER: Duration = Duration::from_secs(6);
}

/// Who is typing. As text (for transports between processes): `agent:{id}` or
/// `customer:{participant}`.
///
/// ```
/// use collab_core::transport::Typist;
///
/// let typist: Typist = "agent:ana lópez".parse()?;
/// assert_eq!(typist.to_string(), "agent:ana lópez");
/// assert!("nobody:1".parse::<Typist>().is_err());
/// # Ok::<(), collab_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Typist {
    /// An agent.
    Agent(AgentId),
    /// The room's customer, through one participation.
    Customer(ParticipantId),
}

impl fmt::Display for Typist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Agent(agent) => write!(f, "agent:{agent}"),
            Self::Customer(participant) => write!(f, "customer:{participant}"),
        }
    }
}

impl FromStr for Typist {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.split_once(':') {
            Some(("agent", agent)) => Ok(Self::Agent(agent.parse()?)),
            Some(("customer", participant)) => Ok(Self::Customer(participant.parse()?)),
            _ => Err(Error::invalid("typist", "must be agent:{id} or customer:{participant}")),
        }
    }
}

/// A subscriber's stream of [`Live`] news about one room.
pub type LiveStream = Pin<Box<dyn Stream<Item = Live> + Send>>;

/// Carries new events from the process that appended them to every subscriber of the room.
///
/// # Contract
///
/// - It is a *hint*, not the source of truth: subscriptions read the store for anything they
///   miss, so a transport may drop, repeat or reorder news. It must never invent events.
/// - [`publish`](Transport::publish) is called after each successful append, with the events in
///   order. A failure is logged by the caller, never returned to the writer: the events are
///   stored already.
/// - [`subscribe`](Transport::subscribe) starts hearing news from the moment it returns.
/// - [`typing`](Transport::typing) is best effort: a signal may be lost, never stored.
///
/// # Implement your own
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use collab_core::transport::{Live, LiveStream, Transport};
/// use collab_core::{Error, Event, RoomId};
///
/// /// A transport for a single process that never hears anything: subscribers still work, by
/// /// reading the store when they start (useful for batch jobs).
/// #[derive(Debug)]
/// struct Silent;
///
/// #[async_trait]
/// impl Transport for Silent {
///     async fn publish(&self, _room: RoomId, _events: &[Arc<Event>]) -> Result<(), Error> {
///         Ok(())
///     }
///
///     fn subscribe(&self, _room: RoomId) -> LiveStream {
///         Box::pin(futures_util::stream::pending::<Live>())
///     }
/// }
/// ```
#[async_trait]
pub trait Transport: fmt::Debug + Send + Sync + 'static {
    /// Announces events just appended to `room`.
    async fn publish(&self, room: RoomId, events: &[Arc<Event>]) -> Result<(), Error>;

    /// News about `room` from now on.
    fn subscribe(&self, room: RoomId) -> LiveStream;

    /// Tells the subscribers of `room`, in every process the transport reaches, that someone
    /// is typing ([`Live::Typing`]). By default nothing is sent: with a transport that does not
    /// carry typing, nobody sees typing indicators, and nothing else changes.
    async fn typing(&self, room: RoomId, typing: Typing) -> Result<(), Error> {
        let _ = (room, typing);
        Ok(())
    }

    /// Whether news from other processes can reach this one now (for a readiness probe:
    /// [`Rooms::check_ready`](crate::rooms::Rooms::check_ready)). By default `Ok`: a transport
    /// within one process is always connected.
    async fn check_ready(&self) -> Result<(), Error> {
        Ok(())
    }
}

macro_rules! forward_transport {
    ($wrapper:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: Transport + ?Sized> Transport for $wrapper {
            async fn publish(&self, room: RoomId, events: &[Arc<Event>]) -> Result<(), Error> {
                (**self).publish(room, events).await
            }

            fn subscribe(&self, room: RoomId) -> LiveStream {
                (**self).subscribe(room)
            }

            async fn typing(&self, room: RoomId, typing: Typing) -> Result<(), Error> {
                (**self).typing(room, typing).await
            }

            async fn check_ready(&self) -> Result<(), Error> {
                (**self).check_ready().await
            }
        }
    };
}

forward_transport!(Arc<T>);
forward_transport!(Box<T>);

/// A [`Transport`] within one process, on a `tokio::sync::broadcast` channel per room.
///
/// It is also the local half of a transport between processes: such a transport hands what it
/// hears from the others to [`announce`](InProcessTransport::announce) (a wake-up) and, after it
/// may have missed something, to [`announce_to_all`](InProcessTransport::announce_to_all).
#[derive(Debug)]
pub struct InProcessTransport {
    capacity: usize,
    channels: Mutex<Channels>,
}

#[derive(Debug, Default)]
struct Channels {
    rooms: HashMap<RoomId, broadcast::Sender<Live>>,
    /// When the map reaches this size, rooms nobody listens to any more are dropped.
    sweep_at: usize,
}

impl Default for InProcessTransport {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl InProcessTransport {
    /// Events buffered per room for slow subscribers before they lag: 1,024.
    pub const DEFAULT_CAPACITY: usize = 1_024;

    /// A transport that buffers `capacity` events per room (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            channels: Mutex::default(),
        }
    }

    fn channels(&self) -> MutexGuard<'_, Channels> {
        self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many rooms have a channel (for tests and metrics).
    pub fn open_channels(&self) -> usize {
        self.channels().rooms.len()
    }

    /// Tells the subscribers of `room` in this process `news`, if it has any.
    pub fn announce(&self, room: RoomId, news: Live) {
        self.send(room, [news]);
    }

    fn send(&self, room: RoomId, news: impl IntoIterator<Item = Live>) {
        let mut channels = self.channels();
        let Some(sender) = channels.rooms.get(&room) else {
            return;
        };
        if sender.receiver_count() == 0 {
            // Nobody listens any more: forget the channel.
            channels.rooms.remove(&room);
            return;
        }
        for news in news {
            // An error means every receiver left meanwhile; nothing to deliver then.
            let _ = sender.send(news);
        }
    }

    /// Tells every subscriber in this process `news`: [`Live::Lagged`] after news may have been
    /// lost, so that each catches up from the store.
    pub fn announce_to_all(&self, news: Live) {
        for sender in self.channels().rooms.values() {
            let _ = sender.send(news.clone());
        }
    }
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn publish(&self, room: RoomId, events: &[Arc<Event>]) -> Result<(), Error> {
        self.send(room, events.iter().map(|event| Live::Event(event.clone())));
        Ok(())
    }

    async fn typing(&self, room: RoomId, typing: Typing) -> Result<(), Error> {
        self.announce(room, Live::Typing(typing));
        Ok(())
    }

    fn subscribe(&self, room: RoomId) -> LiveStream {
        let mut channels = self.channels();
        if channels.rooms.len() >= channels.sweep_at {
            // Amortised: rooms whose subscribers all left, and that saw no publish since.
            channels.rooms.retain(|_, sender| sender.receiver_count() > 0);
            channels.sweep_at = (channels.rooms.len() * 2).max(64);
        }
        let receiver = channels
            .rooms
            .entry(room)
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe();
        drop(channels);
        Box::pin(stream::unfold(receiver, |mut receiver| async move {
            let live = match receiver.recv().await {
                Ok(news) => news,
                Err(broadcast::error::RecvError::Lagged(_)) => Live::Lagged,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((live, receiver))
        }))
    }
}
