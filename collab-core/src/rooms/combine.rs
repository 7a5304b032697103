//! Posts to one busy room, decided together and stored in one append.
//!
//! Every command is decided against the room's latest state and stored only if the room is
//! still at that state (optimistic concurrency). When many callers post to one room at once,
//! each decides against the same state, one append wins, and the others conflict and decide
//! again: with 64 posters in one room most attempts are wasted, and posts fail once their
//! retries run out. So posts to a room queue in a lane; whoever gets the lane's turn decides
//! every queued post in order, each against the state the ones before it leave, and stores
//! them in one append. A store that commits appends in groups then commits a busy room's posts
//! as one, where it committed one per round before.
//!
//! A batch runs in a task of its own, holding the turn: a caller that goes away (a client
//! disconnecting) cancels neither its own post nor those it was storing for others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::{Executed, Operation, Rooms};
use crate::decide::{Actor, Command, Context, authorize_read, decide};
use crate::error::Error;
use crate::id::RoomId;
use crate::store::Append;

/// The lanes of the rooms that have posts queued or being stored.
#[derive(Default)]
pub(super) struct Lanes {
    rooms: Mutex<HashMap<RoomId, Arc<Lane>>>,
}

#[derive(Default)]
struct Lane {
    /// Held while a batch of the room's posts is decided and stored.
    turn: Arc<tokio::sync::Mutex<()>>,
    queued: Mutex<Vec<Queued>>,
}

struct Queued {
    actor: Actor,
    operation: Operation,
    command: Command,
    reply: oneshot::Sender<Result<Executed, Error>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Lanes {
    fn lane(&self, room: RoomId) -> Arc<Lane> {
        lock(&self.rooms).entry(room).or_default().clone()
    }

    /// Forgets the room's lane when nobody else holds it and nothing is queued in it.
    fn release(&self, room: RoomId, lane: Arc<Lane>) {
        let mut rooms = lock(&self.rooms);
        // Two holders: the map and `lane`.
        if Arc::strong_count(&lane) == 2 && lock(&lane.queued).is_empty() {
            rooms.remove(&room);
        }
    }
}

impl Rooms {
    /// Executes a command that needs no extras (a chat post) in the room's lane: decided and
    /// stored with the other commands queued for the room at the same time.
    pub(super) async fn execute_in_lane(
        &self,
        actor: &Actor,
        room: RoomId,
        operation: Operation,
        command: Command,
    ) -> Result<Executed, Error> {
        let lanes = &self.inner.lanes;
        let lane = lanes.lane(room);
        let (reply, mut answer) = oneshot::channel();
        lock(&lane.queued).push(Queued {
            actor: actor.clone(),
            operation,
            command,
            reply,
        });
        let turn = lane.turn.clone().lock_owned().await;
        // The previous turn may have stored this command with its own.
        if let Ok(done) = answer.try_recv() {
            drop(turn);
            lanes.release(room, lane);
            return done;
        }
        let batch = std::mem::take(&mut *lock(&lane.queued));
        let rooms = self.clone();
        tokio::spawn(async move {
            rooms.execute_batch(room, batch).await;
            drop(turn);
        });
        let done = answer.await;
        lanes.release(room, lane);
        done.unwrap_or_else(|_| Err(Error::internal("room lane", "the batch ended without an answer")))
    }

    /// Decides `batch` in order and stores its events in one append, retrying on conflict like
    /// [`Rooms::execute`]; answers every command.
    async fn execute_batch(&self, room: RoomId, mut batch: Vec<Queued>) {
        let mut attempt = 0;
        loop {
            let state = match self.load(room).await {
                Ok(state) => state,
                Err(e) => return answer_all(batch, e),
            };
            let policy = self.policy_for(state.tenant()).await;
            let mut after = state.clone();
            let mut decided = Vec::with_capacity(batch.len());
            let mut events = Vec::new();
            for queued in batch {
                let ctx = Context {
                    now: self.inner.clock.now(),
                    actor: &queued.actor,
                    policy: &policy,
                };
                let outcome = authorize_read(&after, &queued.actor)
                    .and_then(|()| self.check_hook(&queued.actor, queued.operation, Some(after.summary())))
                    .and_then(|()| decide(&after, &queued.command, &ctx));
                match outcome {
                    Ok(mine) => {
                        for event in &mine {
                            after.apply(event);
                        }
                        decided.push((queued, events.len()..events.len() + mine.len()));
                        events.extend(mine);
                    }
                    Err(e) => {
                        let _ = queued.reply.send(Err(e));
                    }
                }
            }
            if events.is_empty() {
                // Keyed retries only: recorded already.
                for (queued, _) in decided {
                    let _ = queued.reply.send(Ok(Executed {
                        state: after.clone(),
                        events: Vec::new(),
                    }));
                }
                return;
            }
            let append = Append::new(Some(&state), events.clone()).and_then(|mut append| {
                append.outbox = self.queued_rows(state.tenant(), Some(&state), &events)?;
                Ok(append)
            });
            let stored = match append {
                Ok(append) => {
                    let queued = !append.outbox.is_empty();
                    let started = std::time::Instant::now();
                    let stored = self.inner.store.append(append).await;
                    crate::metrics::append_finished(started.elapsed(), &stored);
                    if queued && stored.is_ok() {
                        self.inner.outbox_added.notify_one();
                    }
                    stored
                }
                Err(e) => Err(e),
            };
            match stored {
                Ok(()) => {
                    crate::metrics::posts_per_append(decided.len());
                    self.remember(&after);
                    self.publish(room, &events).await;
                    for (queued, range) in decided {
                        let _ = queued.reply.send(Ok(Executed {
                            state: after.clone(),
                            events: events[range].to_vec(),
                        }));
                    }
                    return;
                }
                Err(Error::Conflict { .. }) if attempt < self.inner.config.max_conflict_retries => {
                    attempt += 1;
                    tracing::debug!(%room, attempt, posts = decided.len(), "room changed meanwhile; deciding the batch again");
                    batch = decided.into_iter().map(|(queued, _)| queued).collect();
                    tokio::task::yield_now().await;
                }
                Err(e) => return answer_all(decided.into_iter().map(|(queued, _)| queued).collect(), e),
            }
        }
    }
}

/// Answers every command of a batch that failed as a whole with the same error. The error is
/// not `Clone` (its source may be any error): one caller gets it as it is, the others its kind
/// and its message.
fn answer_all(mut batch: Vec<Queued>, error: Error) {
    let last = batch.pop();
    for queued in batch {
        let _ = queued.reply.send(Err(same_error(&error)));
    }
    if let Some(queued) = last {
        let _ = queued.reply.send(Err(error));
    }
}

fn same_error(error: &Error) -> Error {
    match error {
        Error::NotFound { what } => Error::NotFound { what: *what },
        Error::Forbidden => Error::Forbidden,
        Error::Conflict { reason } => Error::Conflict { reason: reason.clone() },
        Error::RoomClosed => Error::RoomClosed,
        Error::RoomErased => Error::RoomErased,
        Error::RoomTimedOut => Error::RoomTimedOut,
        Error::Backend { backend, source } => Error::Backend {
            backend,
            source: source.to_string().into(),
        },
        Error::BackendCredentials { backend, source } => Error::BackendCredentials {
            backend,
            source: source.to_string().into(),
        },
        other => Error::internal("room lane", other.to_string()),
    }
}
