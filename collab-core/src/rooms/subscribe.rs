//! Live subscriptions without gaps or duplicates.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;
use futures_util::{StreamExt, stream};

use super::{Operation, Rooms};
use crate::Error;
use crate::decide::Actor;
use crate::event::{Event, Seq};
use crate::id::RoomId;
use crate::store::RoomStore;
use crate::transport::{Live, LiveStream};

/// A room's events in order: the stored ones after a sequence number, then live ones.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Arc<Event>, Error>> + Send>>;

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
    /// Access is checked when subscribing; a session revoked later is refused at the next
    /// subscribe, not mid-stream.
    pub async fn subscribe(&self, actor: &Actor, room: RoomId, after: Seq) -> Result<EventStream, Error> {
        self.readable(actor, room, Operation::Read).await?;
        // Listen before reading the store, so that nothing can fall between the two.
        let live = self.inner.transport.subscribe(room);
        let follow = Follow {
            store: self.inner.store.clone(),
            room,
            last: after,
            live,
            backlog: VecDeque::new(),
            catch_up: true,
            failed: false,
        };
        Ok(Box::pin(stream::unfold(follow, Follow::next)))
    }
}

struct Follow {
    store: Arc<dyn RoomStore>,
    room: RoomId,
    /// The last event yielded.
    last: Seq,
    live: LiveStream,
    backlog: VecDeque<Arc<Event>>,
    /// Whether the store may hold events after `last` that were not yielded.
    catch_up: bool,
    failed: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<Arc<Event>, Error>, Self)> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(event) = self.backlog.pop_front() {
                self.last = event.seq;
                return Some((Ok(event), self));
            }
            if self.catch_up {
                match self.store.read_events(self.room, self.last, CATCH_UP_PAGE).await {
                    Ok(events) => {
                        self.catch_up = events.len() == CATCH_UP_PAGE;
                        self.backlog.extend(events.into_iter().map(Arc::new));
                    }
                    Err(e) => {
                        self.failed = true;
                        return Some((Err(e), self));
                    }
                }
                continue;
            }
            match self.live.next().await? {
                Live::Event(event) if event.seq <= self.last => {}
                Live::Event(event) if event.seq == self.last.next() => {
                    self.last = event.seq;
                    return Some((Ok(event), self));
                }
                // Ahead of us: something was missed. Read it from the store.
                Live::Event(_) | Live::Lagged => self.catch_up = true,
                Live::Wake { seq } => self.catch_up = seq > self.last,
            }
        }
    }
}
