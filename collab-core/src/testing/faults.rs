//! Fault injection: wrappers around a [`RoomStore`], a [`BlobStore`] and a [`Notifier`] that
//! fail, stall or time out on the calls a test chooses, to show what the service does then.
//!
//! One [`Faults`] script is shared by the wrappers and the test. It counts the calls of each
//! [`Method`] from its creation, and applies the [`Fault`] planned for a call.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use collab_core::memory::MemoryRoomStore;
//! use collab_core::rooms::Rooms;
//! use collab_core::testing::faults::{Fault, Faults, FaultyRoomStore, Method};
//! use collab_core::*;
//!
//! let faults = Faults::new();
//! let rooms = Rooms::builder()
//!     .room_store(FaultyRoomStore::new(MemoryRoomStore::new(), faults.clone()))
//!     .build();
//! let agent = Actor::Agent { tenant: TenantId::new("acme")?, agent: AgentId::new("ada")? };
//! let room = rooms.create_room(&agent).await?.room; // append 1
//!
//! faults.plan(Method::Append, 2, Fault::Fail); // the 2nd append fails
//! assert!(matches!(rooms.post_message(&agent, room, "lost", None).await, Err(Error::Backend { .. })));
//! rooms.post_message(&agent, room, "again", None).await?; // the 3rd goes through
//! assert_eq!(faults.calls(Method::Append), 3);
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```
//!
//! A [`Gate`] holds calls until the test releases it, so that a test can act while a call is
//! under way (post while an upload stalls), or drop the caller there (a process that dies
//! mid-call):
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use collab_core::notify::{Notifier, RecordingNotifier};
//! use collab_core::testing::faults::{Fault, Faults, FaultyNotifier, Gate, Method};
//! # use collab_core::{notify::Notification, *};
//! # let notification = Notification {
//! #     room: RoomId::from_u128(1), invite: InviteId::from_u128(2),
//! #     recipient: Recipient::Email(EmailAddress::parse("a@example.com")?),
//! #     first_name: "Ada".into(), subject: None, text: "t".into(), link: "l".into(),
//! # };
//!
//! let faults = Faults::new();
//! let gate = Gate::new();
//! faults.plan_next(Method::Send, Fault::Stall(gate.clone()));
//! let notifier = FaultyNotifier::new(RecordingNotifier::new(), faults.clone());
//! let send = tokio::spawn(async move { notifier.send(&notification).await.is_ok() });
//! gate.arrivals(1).await; // the send is held at the gate now
//! gate.release();
//! assert!(send.await.unwrap());
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, stream};
use tokio::sync::watch;

use crate::Error;
use crate::blob::{BlobInfo, BlobKey, BlobListing, BlobMeta, BlobPrefix, BlobStore, ByteRange, Download, UploadStream};
use crate::event::{Event, Seq};
use crate::id::{OutboxId, RoomId, TenantId};
use crate::notify::{Notification, Notifier, NotifyError, Receipt};
use crate::settings::SettingsChange;
use crate::state::{RoomState, RoomSummary};
use crate::store::{Append, ClaimedOutbox, Credential, EndedRooms, OutboxStats, RoomPage, RoomQuery, RoomStore};
use crate::time::Timestamp;
use crate::token::TokenHash;

/// A call a wrapper can fault: the methods of [`RoomStore`], [`BlobStore`] and [`Notifier`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// [`RoomStore::append`].
    Append,
    /// [`RoomStore::read_events`].
    ReadEvents,
    /// [`RoomStore::latest_events`].
    LatestEvents,
    /// [`RoomStore::room_summary`].
    RoomSummary,
    /// [`RoomStore::list_rooms`].
    ListRooms,
    /// [`RoomStore::idle_rooms`].
    IdleRooms,
    /// [`RoomStore::find_credential`].
    FindCredential,
    /// [`RoomStore::claim_outbox`].
    ClaimOutbox,
    /// [`RoomStore::reschedule_outbox`].
    RescheduleOutbox,
    /// [`RoomStore::delete_outbox`].
    DeleteOutbox,
    /// [`RoomStore::add_credential`].
    AddCredential,
    /// [`RoomStore::load_room`].
    LoadRoom,
    /// [`RoomStore::outbox_stats`].
    OutboxStats,
    /// [`RoomStore::erase`].
    Erase,
    /// [`RoomStore::merge`].
    Merge,
    /// [`RoomStore::ended_rooms`].
    EndedRooms,
    /// [`RoomStore::purge`].
    Purge,
    /// [`BlobStore::put`].
    Put,
    /// [`BlobStore::get`].
    Get,
    /// [`BlobStore::head`].
    Head,
    /// [`BlobStore::delete`].
    Delete,
    /// [`BlobStore::list`].
    List,
    /// [`Notifier::send`].
    Send,
}

/// What happens to a faulted call.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Fails without reaching the wrapped part: nothing happened. Stores answer
    /// [`Error::Backend`]; notifiers [`NotifyError::Transient`] (nothing was sent).
    Fail,
    /// Reaches the wrapped part, which does the work; then the answer is lost. Stores answer
    /// [`Error::Backend`] although the write happened; notifiers [`NotifyError::Ambiguous`]
    /// although the message went out. If the wrapped call failed, its own error is returned.
    LoseAnswer,
    /// Waits at the gate until it is released, then goes through.
    Stall(Gate),
    /// Waits this long without reaching the wrapped part, then fails as a call that timed out:
    /// stores answer [`Error::Backend`]; notifiers [`NotifyError::Ambiguous`].
    TimeOut(Duration),
}

/// How a faulted call ended, as the source of the error a wrapper returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("injected fault: {method:?} {what}")]
pub struct InjectedFault {
    /// The call.
    pub method: Method,
    /// `failed`, `answer lost` or `timed out`.
    pub what: &'static str,
}

/// Holds the calls that reach it until [`Gate::release`]. Clones share the gate.
#[derive(Clone, Debug)]
pub struct Gate {
    open: Arc<watch::Sender<bool>>,
    arrived: Arc<watch::Sender<usize>>,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

/// How long [`Gate::arrivals`] waits before it fails the test.
const ARRIVALS_DEADLINE: Duration = Duration::from_secs(60);

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self {
            open: Arc::new(watch::channel(false).0),
            arrived: Arc::new(watch::channel(0).0),
        }
    }

    /// Lets every held call, and every later one, through.
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// How many calls have reached the gate so far (held, released or dropped while held).
    pub fn arrived(&self) -> usize {
        *self.arrived.borrow()
    }

    /// Waits until `count` calls have reached the gate.
    ///
    /// # Panics
    ///
    /// If they have not within a minute by the runtime's clock (at once under paused time, when
    /// nothing else can run): a call that never comes fails the test instead of hanging it.
    pub async fn arrivals(&self, count: usize) {
        let mut arrived = self.arrived.subscribe();
        // The sender lives in `self`: the wait itself cannot fail.
        let wait = arrived.wait_for(|n| *n >= count);
        if tokio::time::timeout(ARRIVALS_DEADLINE, wait).await.is_err() {
            let arrived = self.arrived();
            panic!("{count} calls did not reach the gate within {ARRIVALS_DEADLINE:?}; {arrived} did");
        }
    }

    async fn pass(&self) {
        let mut open = self.open.subscribe();
        self.arrived.send_modify(|n| *n += 1);
        let _ = open.wait_for(|open| *open).await;
    }
}

#[derive(Debug, Default)]
struct Script {
    calls: HashMap<Method, usize>,
    planned: HashMap<(Method, usize), Fault>,
    always: HashMap<Method, Fault>,
}

/// The plan of faults, shared by the wrappers (clones share it).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    script: Arc<Mutex<Script>>,
}

/// How a wrapper turns an injected fault into its own error type.
enum Injected {
    Failed,
    AnswerLost,
    TimedOut,
}

impl Injected {
    fn error(&self, method: Method) -> InjectedFault {
        let what = match self {
            Self::Failed => "failed",
            Self::AnswerLost => "answer lost",
            Self::TimedOut => "timed out",
        };
        InjectedFault { method, what }
    }
}

fn store_error(method: Method, injected: Injected) -> Error {
    Error::backend("fault injection", injected.error(method))
}

impl Faults {
    /// A script without faults.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Faults call number `call` of `method` (1 for the first call since the script was made).
    pub fn plan(&self, method: Method, call: usize, fault: Fault) {
        self.lock().planned.insert((method, call), fault);
    }

    /// Faults the next call of `method`.
    pub fn plan_next(&self, method: Method, fault: Fault) {
        let mut script = self.lock();
        let next = script.calls.get(&method).copied().unwrap_or(0) + 1;
        script.planned.insert((method, next), fault);
    }

    /// Faults every call of `method` from now on (a call's own plan comes first), until
    /// [`Faults::clear`].
    pub fn plan_always(&self, method: Method, fault: Fault) {
        self.lock().always.insert(method, fault);
    }

    /// Drops every plan not yet applied; calls go through again.
    pub fn clear(&self) {
        let mut script = self.lock();
        script.planned.clear();
        script.always.clear();
    }

    /// How many calls of `method` the wrappers have seen, faulted or not.
    pub fn calls(&self, method: Method) -> usize {
        self.lock().calls.get(&method).copied().unwrap_or(0)
    }

    /// Counts a call and takes its fault, if one is planned.
    fn strike(&self, method: Method) -> Option<Fault> {
        let mut script = self.lock();
        let call = script.calls.entry(method).or_insert(0);
        *call += 1;
        let call = *call;
        script
            .planned
            .remove(&(method, call))
            .or_else(|| script.always.get(&method).cloned())
    }

    /// Runs `call` under the fault planned for it; `error` makes the wrapper's error.
    async fn run<T, E>(
        &self,
        method: Method,
        call: impl Future<Output = Result<T, E>>,
        error: impl FnOnce(Injected) -> E,
    ) -> Result<T, E> {
        match self.strike(method) {
            None => call.await,
            Some(Fault::Fail) => Err(error(Injected::Failed)),
            Some(Fault::LoseAnswer) => {
                call.await?;
                Err(error(Injected::AnswerLost))
            }
            Some(Fault::Stall(gate)) => {
                gate.pass().await;
                call.await
            }
            Some(Fault::TimeOut(after)) => {
                tokio::time::sleep(after).await;
                Err(error(Injected::TimedOut))
            }
        }
    }

    async fn store<T>(&self, method: Method, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        self.run(method, call, |injected| store_error(method, injected)).await
    }
}

/// A [`RoomStore`] that applies a [`Faults`] script to the calls it passes to `S`.
#[derive(Debug)]
pub struct FaultyRoomStore<S> {
    inner: S,
    faults: Faults,
}

impl<S: RoomStore> FaultyRoomStore<S> {
    /// Wraps `inner`; `faults` says which calls fail.
    pub fn new(inner: S, faults: Faults) -> Self {
        Self { inner, faults }
    }

    /// The wrapped store, to look behind the faults.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: RoomStore> RoomStore for FaultyRoomStore<S> {
    async fn append(&self, append: Append) -> Result<(), Error> {
        self.faults.store(Method::Append, self.inner.append(append)).await
    }

    async fn read_events(&self, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error> {
        let call = self.inner.read_events(room, after, limit);
        self.faults.store(Method::ReadEvents, call).await
    }

    async fn latest_events(&self, room: RoomId, limit: usize) -> Result<Vec<Event>, Error> {
        let call = self.inner.latest_events(room, limit);
        self.faults.store(Method::LatestEvents, call).await
    }

    async fn room_summary(&self, room: RoomId) -> Result<Option<RoomSummary>, Error> {
        self.faults
            .store(Method::RoomSummary, self.inner.room_summary(room))
            .await
    }

    async fn list_rooms(&self, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error> {
        let call = self.inner.list_rooms(tenant, query);
        self.faults.store(Method::ListRooms, call).await
    }

    async fn idle_rooms(&self, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error> {
        let call = self.inner.idle_rooms(idle_since, limit);
        self.faults.store(Method::IdleRooms, call).await
    }

    async fn find_credential(&self, hash: &TokenHash) -> Result<Option<Credential>, Error> {
        let call = self.inner.find_credential(hash);
        self.faults.store(Method::FindCredential, call).await
    }

    async fn claim_outbox(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<ClaimedOutbox>, Error> {
        let call = self.inner.claim_outbox(now, lease, limit);
        self.faults.store(Method::ClaimOutbox, call).await
    }

    async fn reschedule_outbox(&self, id: OutboxId, not_before: Timestamp) -> Result<(), Error> {
        let call = self.inner.reschedule_outbox(id, not_before);
        self.faults.store(Method::RescheduleOutbox, call).await
    }

    async fn delete_outbox(&self, id: OutboxId) -> Result<(), Error> {
        self.faults
            .store(Method::DeleteOutbox, self.inner.delete_outbox(id))
            .await
    }

    async fn add_credential(&self, credential: Credential) -> Result<(), Error> {
        let call = self.inner.add_credential(credential);
        self.faults.store(Method::AddCredential, call).await
    }

    async fn load_room(&self, room: RoomId) -> Result<Option<RoomState>, Error> {
        self.faults.store(Method::LoadRoom, self.inner.load_room(room)).await
    }

    async fn outbox_stats(&self, now: Timestamp) -> Result<Vec<OutboxStats>, Error> {
        let call = self.inner.outbox_stats(now);
        self.faults.store(Method::OutboxStats, call).await
    }

    async fn erase(&self, append: Append) -> Result<(), Error> {
        self.faults.store(Method::Erase, self.inner.erase(append)).await
    }

    async fn tenant_settings(&self, tenant: &TenantId) -> Result<Option<SettingsChange>, Error> {
        self.inner.tenant_settings(tenant).await
    }

    async fn settings_history(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SettingsChange>, Error> {
        self.inner.settings_history(tenant, limit).await
    }

    async fn change_settings(&self, change: SettingsChange) -> Result<(), Error> {
        self.inner.change_settings(change).await
    }

    async fn merge(&self, survivor: Append, absorbed: Append) -> Result<(), Error> {
        self.faults
            .store(Method::Merge, self.inner.merge(survivor, absorbed))
            .await
    }

    async fn ended_rooms(&self, query: &EndedRooms) -> Result<Vec<RoomId>, Error> {
        let call = self.inner.ended_rooms(query);
        self.faults.store(Method::EndedRooms, call).await
    }

    async fn purge(&self, room: RoomId) -> Result<(), Error> {
        self.faults.store(Method::Purge, self.inner.purge(room)).await
    }
}

/// A [`BlobStore`] that applies a [`Faults`] script to the calls it passes to `B`.
#[derive(Debug)]
pub struct FaultyBlobStore<B> {
    inner: B,
    faults: Faults,
}

impl<B: BlobStore> FaultyBlobStore<B> {
    /// Wraps `inner`; `faults` says which calls fail.
    pub fn new(inner: B, faults: Faults) -> Self {
        Self { inner, faults }
    }

    /// The wrapped store, to look behind the faults.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

#[async_trait]
impl<B: BlobStore> BlobStore for FaultyBlobStore<B> {
    async fn put(&self, key: &BlobKey, data: UploadStream, limit: u64) -> Result<BlobInfo, Error> {
        self.faults.store(Method::Put, self.inner.put(key, data, limit)).await
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<Option<Download>, Error> {
        self.faults.store(Method::Get, self.inner.get(key, range)).await
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, Error> {
        self.faults.store(Method::Head, self.inner.head(key)).await
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), Error> {
        self.faults.store(Method::Delete, self.inner.delete(key)).await
    }

    /// The listing is faulted as a whole: a failed or timed-out listing yields one error; a
    /// stalled one yields nothing until released; a lost answer lists nothing but the error.
    fn list(&self, prefix: &BlobPrefix) -> BlobListing {
        let faults = self.faults.clone();
        let listing = self.inner.list(prefix);
        let first = async move {
            let call = async { Ok::<_, Error>(listing) };
            match faults.store(Method::List, call).await {
                Ok(listing) => listing,
                Err(e) => Box::pin(stream::iter([Err(e)])),
            }
        };
        Box::pin(stream::once(first).flatten())
    }
}

/// A [`Notifier`] that applies a [`Faults`] script to the sends it passes to `N`.
///
/// [`Fault::Fail`] is a transient refusal (nothing sent); [`Fault::LoseAnswer`] sends, then
/// answers ambiguously (the provider took it, the answer never came); [`Fault::TimeOut`] sends
/// nothing and answers ambiguously after the wait.
#[derive(Debug)]
pub struct FaultyNotifier<N> {
    inner: N,
    faults: Faults,
}

impl<N: Notifier> FaultyNotifier<N> {
    /// Wraps `inner`; `faults` says which sends fail.
    pub fn new(inner: N, faults: Faults) -> Self {
        Self { inner, faults }
    }

    /// The wrapped notifier, to see what went through.
    pub fn inner(&self) -> &N {
        &self.inner
    }
}

#[async_trait]
impl<N: Notifier> Notifier for FaultyNotifier<N> {
    async fn send(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let error = |injected: Injected| {
            let source = injected.error(Method::Send);
            match injected {
                Injected::Failed => NotifyError::transient(source),
                Injected::AnswerLost | Injected::TimedOut => NotifyError::ambiguous(source),
            }
        };
        self.faults
            .run(Method::Send, self.inner.send(notification), error)
            .await
    }
}
