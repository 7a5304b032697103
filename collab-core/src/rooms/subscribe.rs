//! Live subscriptions without gaps or duplicates.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::Stream;
use futures_util::StreamExt;

use super::{Operation, Rooms};
use crate::Error;
use crate::decide::Actor;
use crate::event::{Event, EventData, Seq};
use crate::id::{ParticipantId, RoomId};
use crate::store::RoomStore;
use crate::transport::{Live, LiveStream, Typing, Typist};

/// A room's events in order: the stored ones after a sequence number, then live ones.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Arc<Event>, Error>> + Send>>;

/// What [`Rooms::follow`] yields: the room's events in order, with typing news between them.
pub type UpdateStream = Pin<Box<dyn Stream<Item = Result<RoomUpdate, Error>> + Send>>;

/// One item of [`Rooms::follow`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomUpdate {
    /// The room's next event, exactly as [`Rooms::subscribe`] yields it.
    Event(Arc<Event>),
    /// Someone else in the room is typing (never the subscriber itself). Ephemeral: show it
    /// for [`Typing::EXPIRES_AFTER`] or until that typist's next message.
    Typing(Typing),
}

/// Events read from the store per catch-up query.
const CATCH_UP_PAGE: usize = 500;

impl Rooms {
    /// The room's events after `after` (pass [`Seq::ZERO`] for all, or the last one the client
    /// saw to resume), then its new events as they happen: each exactly once, in order.
    ///
    /// Live news is only a hint: whenever it skips ahead or the subscriber falls behind the
    /// transport's buffer, the stream reads what it lacks from the store, so a slow or
    /// reconnecting subscriber never loses or repeats an event. A store error ends the stream
    /// after yielding the error; resubscribe from the last event received.
    ///
    /// Access is checked when subscribing. A customer's stream ends after the event that ends
    /// their access: their session revoked, or the room closed.
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn subscribe(&self, actor: &Actor, room: RoomId, after: Seq) -> Result<EventStream, Error> {
        let follow = self.start_following(actor, room, after, false).await?;
        Ok(Box::pin(EventsOnly(follow)))
    }

    /// As [`subscribe`](Rooms::subscribe), with typing news too: the room's events after
    /// `after`, each exactly once and in order, and between them [`RoomUpdate::Typing`] when
    /// someone else in the room types ([`Rooms::typing`]).
    #[tracing::instrument(skip_all, fields(%room))]
    pub async fn follow(&self, actor: &Actor, room: RoomId, after: Seq) -> Result<UpdateStream, Error> {
        Ok(Box::pin(self.start_following(actor, room, after, true).await?))
    }

    async fn start_following(&self, actor: &Actor, room: RoomId, after: Seq, typing: bool) -> Result<Follow, Error> {
        self.readable(actor, room, Operation::Read).await?;
        // Listen before reading the store, so that nothing can fall between the two.
        let live = self.inner.transport.subscribe(room);
        let (customer, me) = match actor {
            Actor::Customer { participant, .. } => (Some(*participant), Some(Typist::Customer(*participant))),
            Actor::Agent { agent, .. } => (None, Some(Typist::Agent(agent.clone()))),
            Actor::System => (None, None),
        };
        crate::metrics::live_subscribers(1.0);
        Ok(Follow {
            store: self.inner.store.clone(),
            room,
            customer,
            typing: typing.then_some(me).flatten(),
            last: after,
            live,
            backlog: VecDeque::new(),
            phase: Phase::CatchUp,
        })
    }
}

/// The events of a [`Follow`] that hears no typing news.
struct EventsOnly(Follow);

impl Stream for EventsOnly {
    type Item = Result<Arc<Event>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let item = match ready!(self.0.poll_next_unpin(cx)) {
                Some(Ok(RoomUpdate::Typing(_))) => continue,
                Some(Ok(RoomUpdate::Event(event))) => Some(Ok(event)),
                Some(Err(e)) => Some(Err(e)),
                None => None,
            };
            return Poll::Ready(item);
        }
    }
}

/// The state of one subscription. A hand-written stream: fan-out to thousands of subscribers
/// polls this once per event each, so it must not move itself around as an `async fn` would.
struct Follow {
    store: Arc<dyn RoomStore>,
    room: RoomId,
    /// The subscriber's participation, when a customer subscribes.
    customer: Option<ParticipantId>,
    /// Who the subscriber is, when it hears typing news: its own are skipped.
    typing: Option<Typist>,
    /// The last event yielded.
    last: Seq,
    live: LiveStream,
    backlog: VecDeque<Arc<Event>>,
    phase: Phase,
}

enum Phase {
    /// The store may hold events after `last` that were not yielded: read them.
    CatchUp,
    Reading(ReadEvents),
    Live,
    /// After a store error, or once the subscriber's access ended.
    Ended,
}

type ReadEvents = Pin<Box<dyn Future<Output = Result<Vec<Event>, Error>> + Send>>;

impl Follow {
    /// Notes `event` as yielded, and ends the stream after it if it ends the subscriber's access
    /// or, for a customer, closes the room, or erases the room for anyone: nothing new will
    /// come for them to see.
    fn yielded(&mut self, event: Arc<Event>) -> Arc<Event> {
        self.last = event.seq;
        let ends_access = match &event.data {
            EventData::Closed => self.customer.is_some(),
            EventData::RoomErased { .. } => true,
            EventData::SessionRevoked { participant } => self.customer == Some(*participant),
            _ => false,
        };
        if ends_access {
            self.phase = Phase::Ended;
            self.backlog.clear();
        }
        event
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        crate::metrics::live_subscribers(-1.0);
    }
}

impl Stream for Follow {
    type Item = Result<RoomUpdate, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.backlog.pop_front() {
                return Poll::Ready(Some(Ok(RoomUpdate::Event(this.yielded(event)))));
            }
            match &mut this.phase {
                Phase::Ended => return Poll::Ready(None),
                Phase::CatchUp => {
                    let (store, room, after) = (this.store.clone(), this.room, this.last);
                    this.phase =
                        Phase::Reading(Box::pin(
                            async move { store.read_events(room, after, CATCH_UP_PAGE).await },
                        ));
                }
                Phase::Reading(read) => match ready!(read.as_mut().poll(cx)) {
                    Ok(events) => {
                        this.phase = if events.len() == CATCH_UP_PAGE {
                            Phase::CatchUp
                        } else {
                            Phase::Live
                        };
                        this.backlog.extend(events.into_iter().map(Arc::new));
                    }
                    Err(e) => {
                        this.phase = Phase::Ended;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                Phase::Live => match ready!(this.live.poll_next_unpin(cx)) {
                    None => return Poll::Ready(None),
                    Some(Live::Event(event)) if event.seq <= this.last => {}
                    Some(Live::Event(event)) if event.seq == this.last.next() => {
                        return Poll::Ready(Some(Ok(RoomUpdate::Event(this.yielded(event)))));
                    }
                    // Ahead of us: something was missed. Read it from the store.
                    Some(Live::Event(_)) => this.phase = Phase::CatchUp,
                    Some(Live::Lagged) => {
                        crate::metrics::live_lagged();
                        this.phase = Phase::CatchUp;
                    }
                    Some(Live::Wake { seq }) if seq > this.last => this.phase = Phase::CatchUp,
                    Some(Live::Wake { .. }) => {}
                    Some(Live::Typing(typing)) => {
                        if this.typing.as_ref().is_some_and(|me| *me != typing.by) {
                            return Poll::Ready(Some(Ok(RoomUpdate::Typing(typing))));
                        }
                    }
                },
            }
        }
    }
}
