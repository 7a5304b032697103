//! In-memory stores: the defaults for tests, examples and single-process trials. Nothing
//! survives the process.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, stream};

use crate::blob::{
    BlobInfo, BlobKey, BlobListing, BlobMeta, BlobPrefix, BlobStore, ByteRange, Download, StoredBlob, UploadDigest,
    UploadStream, upload_interrupted,
};
use crate::error::{Entity, Error};
use crate::event::{Event, Seq};
use crate::guard::{CounterStore, Hit, MAX_COUNTER_WINDOW};
use crate::id::{OutboxId, RoomId, TenantId};
use crate::settings::SettingsChange;
use crate::state::{RoomStatus, RoomSummary};
use crate::store::{
    Append, ClaimedOutbox, Credential, EndedRooms, OutboxKind, OutboxMessage, OutboxStats, RoomCursor, RoomPage,
    RoomQuery, RoomStore,
};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::token::TokenHash;

/// Locks a mutex; a panic in another holder cannot leave these maps half-written, since every
/// write path checks first and mutates last.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A [`RoomStore`] in memory.
#[derive(Default)]
pub struct MemoryRoomStore {
    inner: Mutex<RoomData>,
}

/// Counts only: the content is customers' messages and tokens' hashes, not for logs.
impl std::fmt::Debug for MemoryRoomStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let data = lock(&self.inner);
        f.debug_struct("MemoryRoomStore")
            .field("rooms", &data.rooms.len())
            .field("outbox", &data.outbox.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct RoomData {
    rooms: HashMap<RoomId, StoredRoom>,
    credentials: HashMap<TokenHash, Credential>,
    outbox: BTreeMap<OutboxId, OutboxRow>,
    /// The `queued` number of the next outbox row.
    next_queued: u64,
    /// Each tenant's settings changes, oldest first.
    settings: HashMap<TenantId, Vec<SettingsChange>>,
}

struct StoredRoom {
    events: Vec<Event>,
    summary: RoomSummary,
}

struct OutboxRow {
    message: OutboxMessage,
    attempts: u32,
    leased_until: Option<Timestamp>,
    /// The order rows were queued in: a row waits for the earlier rows of its room and subject.
    queued: u64,
}

impl OutboxRow {
    /// Due at `now`, and held by no live lease.
    fn is_claimable(&self, now: Timestamp) -> bool {
        self.message.not_before <= now && self.leased_until.is_none_or(|until| until <= now)
    }
}

impl RoomData {
    /// The checks an append passes before it changes anything.
    fn check(&self, append: &Append) -> Result<(), Error> {
        let last = self.rooms.get(&append.room).map_or(Seq::ZERO, |r| r.summary.seq);
        if last != append.expected {
            return Err(Error::conflict(format!(
                "room {} is at seq {last}, not {}",
                append.room, append.expected
            )));
        }
        if append.completed_outbox.iter().any(|id| !self.outbox.contains_key(id)) {
            return Err(Error::conflict("a completed outbox row is gone"));
        }
        if append
            .credentials
            .iter()
            .any(|c| self.credentials.contains_key(&c.hash))
        {
            return Err(Error::conflict("a credential with this hash exists"));
        }
        Ok(())
    }

    /// Writes a checked append.
    fn write(&mut self, append: Append) {
        let Append {
            room,
            events,
            summary,
            outbox,
            completed_outbox,
            credentials,
            ..
        } = append;
        for id in completed_outbox {
            self.outbox.remove(&id);
        }
        for message in outbox {
            let row = OutboxRow {
                message,
                attempts: 0,
                leased_until: None,
                queued: self.next_queued,
            };
            self.next_queued += 1;
            self.outbox.insert(row.message.id, row);
        }
        for credential in credentials {
            self.credentials.insert(credential.hash, credential);
        }
        let stored = self.rooms.entry(room).or_insert_with(|| StoredRoom {
            events: Vec::new(),
            summary: summary.clone(),
        });
        stored.events.extend(events);
        stored.summary = summary;
    }
}

impl MemoryRoomStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RoomStore for MemoryRoomStore {
    async fn append(&self, append: Append) -> Result<(), Error> {
        append.validate()?;
        let mut data = lock(&self.inner);
        data.check(&append)?;
        data.write(append);
        Ok(())
    }

    async fn tenant_settings(&self, tenant: &TenantId) -> Result<Option<SettingsChange>, Error> {
        Ok(lock(&self.inner)
            .settings
            .get(tenant)
            .and_then(|changes| changes.last().cloned()))
    }

    async fn settings_history(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SettingsChange>, Error> {
        let data = lock(&self.inner);
        let changes = data.settings.get(tenant).map(Vec::as_slice).unwrap_or_default();
        Ok(changes.iter().rev().take(limit).cloned().collect())
    }

    async fn change_settings(&self, change: SettingsChange) -> Result<(), Error> {
        let mut data = lock(&self.inner);
        let changes = data.settings.entry(change.tenant.clone()).or_default();
        let latest = changes.last().map_or(0, |c| c.version);
        if change.version != latest + 1 {
            return Err(Error::conflict(format!(
                "the settings are at version {latest}, not {}",
                change.version.saturating_sub(1)
            )));
        }
        changes.push(change);
        Ok(())
    }

    async fn merge(&self, survivor: Append, absorbed: Append) -> Result<(), Error> {
        Append::validate_merge(&survivor, &absorbed)?;
        let mut data = lock(&self.inner);
        data.check(&survivor)?;
        data.check(&absorbed)?;
        data.write(survivor);
        data.write(absorbed);
        Ok(())
    }

    async fn erase(&self, append: Append) -> Result<(), Error> {
        append.validate()?;
        let mut data = lock(&self.inner);
        data.check(&append)?;
        let room = append.room;
        if let Some(stored) = data.rooms.get_mut(&room) {
            for event in &mut stored.events {
                *event = event.redacted();
            }
        }
        data.credentials.retain(|_, c| c.room != room);
        data.outbox.retain(|_, row| row.message.room != room);
        data.write(append);
        Ok(())
    }

    async fn ended_rooms(&self, query: &EndedRooms) -> Result<Vec<RoomId>, Error> {
        let data = lock(&self.inner);
        let mut ended: Vec<&RoomSummary> = data
            .rooms
            .values()
            .map(|r| &r.summary)
            .filter(|s| query.matches(s))
            .collect();
        ended.sort_by_key(|s| (s.ended_at, s.room));
        Ok(ended.into_iter().take(query.limit).map(|s| s.room).collect())
    }

    async fn purge(&self, room: RoomId) -> Result<(), Error> {
        let mut data = lock(&self.inner);
        data.rooms.remove(&room);
        data.credentials.retain(|_, c| c.room != room);
        data.outbox.retain(|_, row| row.message.room != room);
        Ok(())
    }

    async fn read_events(&self, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error> {
        let data = lock(&self.inner);
        let Some(stored) = data.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        // Seq n sits at index n - 1.
        let start = usize::try_from(after.get()).unwrap_or(usize::MAX);
        Ok(stored.events.iter().skip(start).take(limit).cloned().collect())
    }

    async fn latest_events(&self, room: RoomId, limit: usize) -> Result<Vec<Event>, Error> {
        let data = lock(&self.inner);
        Ok(data
            .rooms
            .get(&room)
            .map(|r| r.events.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn room_summary(&self, room: RoomId) -> Result<Option<RoomSummary>, Error> {
        Ok(lock(&self.inner).rooms.get(&room).map(|r| r.summary.clone()))
    }

    async fn list_rooms(&self, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error> {
        query.validate()?;
        let data = lock(&self.inner);
        let mut rooms: Vec<&RoomSummary> = data
            .rooms
            .values()
            .map(|r| &r.summary)
            .filter(|s| s.tenant == *tenant && query.matches(s))
            .filter(|s| query.after.is_none_or(|cursor| cursor.precedes(s)))
            .collect();
        rooms.sort_by_key(|s| std::cmp::Reverse(RoomCursor::after(s)));
        let rooms = rooms.into_iter().take(query.limit.saturating_add(1)).cloned().collect();
        Ok(RoomPage::from_one_more(rooms, query.limit))
    }

    async fn idle_rooms(&self, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error> {
        let data = lock(&self.inner);
        let mut idle: Vec<&RoomSummary> = data
            .rooms
            .values()
            .map(|r| &r.summary)
            .filter(|s| s.status == RoomStatus::Active && s.last_activity <= idle_since)
            .collect();
        idle.sort_by_key(|s| (s.last_activity, s.room));
        Ok(idle.into_iter().take(limit).map(|s| s.room).collect())
    }

    async fn find_credential(&self, hash: &TokenHash) -> Result<Option<Credential>, Error> {
        Ok(lock(&self.inner).credentials.get(hash).copied())
    }

    async fn claim_outbox(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<ClaimedOutbox>, Error> {
        let mut data = lock(&self.inner);
        // The first row queued of each room and subject: the others wait for it.
        let mut first: HashMap<(RoomId, u128), u64> = HashMap::new();
        for row in data.outbox.values() {
            let key = (row.message.room, row.message.target.subject());
            let queued = first.entry(key).or_insert(row.queued);
            *queued = (*queued).min(row.queued);
        }
        let mut due: Vec<&mut OutboxRow> = data
            .outbox
            .values_mut()
            .filter(|row| {
                row.is_claimable(now)
                    && first.get(&(row.message.room, row.message.target.subject())) == Some(&row.queued)
            })
            .collect();
        due.sort_by_key(|row| (row.message.not_before, row.message.id));
        let leased_until = now.saturating_add(lease);
        Ok(due
            .into_iter()
            .take(limit)
            .map(|row| {
                row.attempts += 1;
                row.leased_until = Some(leased_until);
                ClaimedOutbox {
                    message: row.message.clone(),
                    attempts: row.attempts,
                }
            })
            .collect())
    }

    async fn reschedule_outbox(&self, id: OutboxId, not_before: Timestamp) -> Result<(), Error> {
        let mut data = lock(&self.inner);
        let row = data.outbox.get_mut(&id).ok_or(Error::NotFound {
            what: Entity::OutboxRow,
        })?;
        row.message.not_before = not_before;
        row.leased_until = None;
        Ok(())
    }

    async fn add_credential(&self, credential: Credential) -> Result<(), Error> {
        let mut data = lock(&self.inner);
        if data.credentials.contains_key(&credential.hash) {
            return Err(Error::conflict("a credential with this hash exists"));
        }
        data.credentials.insert(credential.hash, credential);
        Ok(())
    }

    async fn delete_outbox(&self, id: OutboxId) -> Result<(), Error> {
        lock(&self.inner).outbox.remove(&id).map(|_| ()).ok_or(Error::NotFound {
            what: Entity::OutboxRow,
        })
    }

    async fn outbox_stats(&self, now: Timestamp) -> Result<Vec<OutboxStats>, Error> {
        let data = lock(&self.inner);
        let mut stats: Vec<OutboxStats> = OutboxKind::ALL.map(|k| OutboxStats::new(k, 0, 0, None)).into();
        for row in data.outbox.values() {
            let Some(entry) = stats.iter_mut().find(|s| s.kind == row.message.target.kind()) else {
                continue;
            };
            entry.queued += 1;
            // Due as `claim_outbox` sees it.
            if row.is_claimable(now) {
                entry.due += 1;
                let not_before = row.message.not_before;
                entry.oldest_due = Some(entry.oldest_due.map_or(not_before, |t| t.min(not_before)));
            }
        }
        stats.retain(|s| s.queued > 0);
        Ok(stats)
    }
}

/// A [`BlobStore`] in memory. Its [`list`](BlobStore::list) dates blobs by its clock (the
/// system's, unless [`MemoryBlobStore::with_clock`] sets another).
pub struct MemoryBlobStore {
    blobs: Mutex<HashMap<BlobKey, (Bytes, Timestamp)>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryBlobStore {
    fn default() -> Self {
        Self::with_clock(SystemClock)
    }
}

/// Counts only: the content is customers' documents.
impl std::fmt::Debug for MemoryBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBlobStore")
            .field("blobs", &lock(&self.blobs).len())
            .finish()
    }
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that dates the blobs it stores by `clock` (share the clock of the
    /// [`Rooms`](crate::rooms::Rooms) under test).
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            blobs: Mutex::new(HashMap::new()),
            clock: Arc::new(clock),
        }
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &BlobKey, mut data: UploadStream, limit: u64) -> Result<BlobInfo, Error> {
        let mut digest = UploadDigest::new(limit);
        let mut bytes = BytesMut::new();
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(upload_interrupted)?;
            digest.update(&chunk)?;
            bytes.extend_from_slice(&chunk);
        }
        lock(&self.blobs).insert(key.clone(), (bytes.freeze(), self.clock.now()));
        Ok(digest.finish())
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<Option<Download>, Error> {
        let Some((bytes, _)) = lock(&self.blobs).get(key).cloned() else {
            return Ok(None);
        };
        let size = bytes.len() as u64;
        let range = match range {
            Some(range) => range.resolve(size)?,
            None => 0..size,
        };
        // The range lies within `bytes`, whose length fits in usize.
        let part = bytes.slice(range.start as usize..range.end as usize);
        Ok(Some(Download {
            size,
            range,
            stream: Box::pin(stream::iter([Ok(part)])),
        }))
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, Error> {
        Ok(lock(&self.blobs)
            .get(key)
            .map(|(b, _)| BlobMeta { size: b.len() as u64 }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), Error> {
        lock(&self.blobs).remove(key);
        Ok(())
    }

    fn list(&self, prefix: &BlobPrefix) -> BlobListing {
        let found: Vec<Result<StoredBlob, Error>> = lock(&self.blobs)
            .iter()
            .filter(|(key, _)| prefix.contains(key))
            .map(|(key, (bytes, modified))| {
                Ok(StoredBlob {
                    key: key.clone(),
                    size: bytes.len() as u64,
                    modified: *modified,
                })
            })
            .collect();
        Box::pin(stream::iter(found))
    }
}

/// A [`CounterStore`] in memory: limits reset when the process restarts.
#[derive(Default)]
pub struct MemoryCounterStore {
    hits: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

impl fmt::Debug for MemoryCounterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.hits.lock().map_or(0, |h| h.len());
        f.debug_struct("MemoryCounterStore").field("keys", &keys).finish()
    }
}

impl MemoryCounterStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CounterStore for MemoryCounterStore {
    async fn hit(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> Result<Hit, Error> {
        let mut hits = self.hits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let times = hits.entry(key.to_owned()).or_default();
        let forget_before = now.saturating_sub(MAX_COUNTER_WINDOW);
        while times.front().is_some_and(|t| *t <= forget_before) {
            times.pop_front();
        }
        let start = now.saturating_sub(window);
        let in_window: Vec<Timestamp> = times.iter().copied().filter(|t| *t > start).collect();
        if in_window.len() >= limit as usize {
            let oldest = in_window.first().copied().unwrap_or(now);
            return Ok(Hit::Refused {
                retry_after: oldest.saturating_add(window).since(now),
            });
        }
        times.push_back(now);
        Ok(Hit::Counted {
            count: u32::try_from(in_window.len() + 1).unwrap_or(u32::MAX),
        })
    }

    async fn recent(&self, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, Error> {
        let hits = self.hits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(hits
            .get(key)
            .map(|times| times.iter().copied().filter(|t| *t > since).collect())
            .unwrap_or_default())
    }

    async fn forget_before(&self, before: Timestamp) -> Result<u64, Error> {
        let mut hits = self.hits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut forgotten = 0;
        hits.retain(|_, times| {
            let old = times.iter().take_while(|t| **t <= before).count();
            times.drain(..old);
            forgotten += old as u64;
            !times.is_empty()
        });
        Ok(forgotten)
    }
}
