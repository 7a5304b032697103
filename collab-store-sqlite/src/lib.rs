//! collab's [`RoomStore`] on SQLite: the durable embedded default. One file, no server.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
//! use collab_core::rooms::Rooms;
//! use collab_store_sqlite::SqliteRoomStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteRoomStore::open(dir.path().join("rooms.db")).await?;
//! let rooms = Rooms::builder().room_store(store).build();
//! # Ok::<(), collab_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! # How it writes
//!
//! All writes go to **one writer thread** with its own connection. It takes whatever appends
//! are waiting, runs each in its own savepoint inside one transaction (*group commit*), commits
//! once, and then answers each caller with its own result: one caller's `Conflict` does not fail
//! the others. Reads use their own connections (WAL mode lets them run beside the writer) on
//! tokio's blocking threads. WAL checkpoints run on a separate thread, off the commit path; when
//! the log passes [`SqliteConfig::with_wal_limit`], the writer empties it between two commits.
//!
//! # Durability
//!
//! | [`Synchronous`] | after an acknowledged write, the process is killed | the machine loses power |
//! |---|---|---|
//! | `Normal` (default) | the write survives | the last transactions may be lost; the file stays consistent |
//! | `Full` | the write survives | the write survives |
//!
//! # Several processes
//!
//! Two processes may open the same file: the second writer waits for the first (up to the busy
//! timeout) instead of failing with "database is locked". For several *servers*, use a server
//! database (`collab-store-postgres`).

mod read;
mod schema;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use collab_core::guard::{CounterStore, Hit};
use collab_core::settings::SettingsChange;
use collab_core::store::{Append, ClaimedOutbox, Credential, EndedRooms, OutboxStats, RoomPage, RoomQuery, RoomStore};
use collab_core::{Error, Event, OutboxId, RoomId, RoomSummary, Seq, TenantId, Timestamp, TokenHash};

use crate::read::Readers;
use crate::write::Writer;

/// How hard SQLite works to make each commit survive a power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// `synchronous=NORMAL`: survives a crash of the process; a power loss may lose the last
    /// transactions (never corrupt the file).
    #[default]
    Normal,
    /// `synchronous=FULL`: every acknowledged write also survives a power loss; slower commits.
    Full,
}

/// Settings of a [`SqliteRoomStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteConfig {
    synchronous: Synchronous,
    busy_timeout: Duration,
    max_batch: usize,
    readers: usize,
    wal_limit: u64,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            max_batch: 1_024,
            readers: 4,
            wal_limit: 64 * 1024 * 1024,
        }
    }
}

impl SqliteConfig {
    /// Durability against power loss; see [`Synchronous`].
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long a writer waits for another process's write lock: 5 s by default, at most 10 min.
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        if timeout > Duration::from_secs(600) {
            return Err(Error::invalid("busy_timeout", "must be at most 10 minutes"));
        }
        self.busy_timeout = timeout;
        Ok(self)
    }

    /// The most writes committed together: 1 to 100,000, 1,024 by default.
    pub fn with_max_batch(mut self, max: usize) -> Result<Self, Error> {
        if max == 0 || max > 100_000 {
            return Err(Error::invalid("max_batch", "must be from 1 to 100000"));
        }
        self.max_batch = max;
        Ok(self)
    }

    /// How many read connections are kept: 1 to 64, 4 by default.
    pub fn with_readers(mut self, readers: usize) -> Result<Self, Error> {
        if readers == 0 || readers > 64 {
            return Err(Error::invalid("readers", "must be from 1 to 64"));
        }
        self.readers = readers;
        Ok(self)
    }

    /// The size the write-ahead log may reach before the writer empties it between two
    /// commits (writes wait meanwhile): 1 MiB to 16 GiB, 64 MiB by default.
    ///
    /// Routine checkpoints never block anyone, but under steady writes with readers about they
    /// cannot catch up with the log's end, and the log (and the index SQLite maps into every
    /// connection) would grow for as long as the load lasts.
    pub fn with_wal_limit(mut self, bytes: u64) -> Result<Self, Error> {
        if !(1024 * 1024..=16 * 1024 * 1024 * 1024).contains(&bytes) {
            return Err(Error::invalid("wal_limit", "must be from 1 MiB to 16 GiB"));
        }
        self.wal_limit = bytes;
        Ok(self)
    }
}

/// Event reads of at most this many rows run on the calling task (an indexed range of a few
/// dozen rows takes tens of microseconds); larger ones go to a blocking thread.
const INLINE_READ_LIMIT: usize = 100;

/// A [`RoomStore`] in a SQLite file.
#[derive(Clone)]
pub struct SqliteRoomStore {
    path: Arc<PathBuf>,
    writer: Writer,
    readers: Readers,
}

impl fmt::Debug for SqliteRoomStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteRoomStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteRoomStore {
    /// Opens (or creates) the database at `path` with the default settings, and brings its
    /// schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, SqliteConfig::default()).await
    }

    /// Opens (or creates) the database at `path`. Fails with a clear error when the file is not
    /// a SQLite database, is corrupt, or was written by a newer version of this crate.
    pub async fn open_with(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self, Error> {
        let path = path.as_ref().to_owned();
        let opened = {
            let path = path.clone();
            let config = config.clone();
            tokio::task::spawn_blocking(move || schema::open_writer(&path, &config))
                .await
                .map_err(|e| Error::backend("sqlite", e))??
        };
        Ok(Self {
            writer: Writer::start(opened, &path, &config)?,
            readers: Readers::new(path.clone(), config),
            path: Arc::new(path),
        })
    }

    /// Runs SQLite's `PRAGMA integrity_check`: `Ok(())` when the file is sound.
    pub async fn integrity_check(&self) -> Result<(), Error> {
        self.readers.run(read::integrity_check).await
    }
}

#[async_trait]
impl RoomStore for SqliteRoomStore {
    async fn append(&self, append: Append) -> Result<(), Error> {
        append.validate()?;
        self.writer.run(move |conn| write::append(conn, &append)).await
    }

    async fn read_events(&self, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error> {
        if limit <= INLINE_READ_LIMIT {
            return self
                .readers
                .run_inline(|conn| read::events_after(conn, room, after, limit));
        }
        self.readers
            .run(move |conn| read::events_after(conn, room, after, limit))
            .await
    }

    async fn latest_events(&self, room: RoomId, limit: usize) -> Result<Vec<Event>, Error> {
        if limit <= INLINE_READ_LIMIT {
            return self.readers.run_inline(|conn| read::latest_events(conn, room, limit));
        }
        self.readers
            .run(move |conn| read::latest_events(conn, room, limit))
            .await
    }

    async fn room_summary(&self, room: RoomId) -> Result<Option<RoomSummary>, Error> {
        self.readers.run_inline(|conn| read::summary(conn, room))
    }

    async fn list_rooms(&self, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error> {
        query.validate()?;
        let (tenant, query) = (tenant.clone(), query.clone());
        self.readers
            .run(move |conn| read::list_rooms(conn, &tenant, &query))
            .await
    }

    async fn idle_rooms(&self, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error> {
        self.readers
            .run(move |conn| read::idle_rooms(conn, idle_since, limit))
            .await
    }

    async fn find_credential(&self, hash: &TokenHash) -> Result<Option<Credential>, Error> {
        self.readers.run_inline(|conn| read::credential(conn, hash))
    }

    async fn claim_outbox(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<ClaimedOutbox>, Error> {
        self.writer
            .run(move |conn| write::claim_outbox(conn, now, lease, limit))
            .await
    }

    async fn reschedule_outbox(&self, id: OutboxId, not_before: Timestamp) -> Result<(), Error> {
        self.writer
            .run(move |conn| write::reschedule_outbox(conn, id, not_before))
            .await
    }

    async fn delete_outbox(&self, id: OutboxId) -> Result<(), Error> {
        self.writer.run(move |conn| write::delete_outbox(conn, id)).await
    }

    async fn add_credential(&self, credential: Credential) -> Result<(), Error> {
        self.writer
            .run(move |conn| write::insert_credential(conn, &credential))
            .await
    }

    async fn outbox_stats(&self, now: Timestamp) -> Result<Vec<OutboxStats>, Error> {
        self.readers.run(move |conn| read::outbox_stats(conn, now)).await
    }

    async fn merge(&self, survivor: Append, absorbed: Append) -> Result<(), Error> {
        Append::validate_merge(&survivor, &absorbed)?;
        // One job runs in one savepoint: both appends stand, or neither.
        self.writer
            .run(move |conn| {
                write::append(conn, &survivor)?;
                write::append(conn, &absorbed)
            })
            .await
    }

    async fn tenant_settings(&self, tenant: &TenantId) -> Result<Option<SettingsChange>, Error> {
        let latest = self
            .readers
            .run_inline(|conn| read::settings_changes(conn, tenant, 1))?;
        Ok(latest.into_iter().next())
    }

    async fn settings_history(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SettingsChange>, Error> {
        let tenant = tenant.clone();
        self.readers
            .run(move |conn| read::settings_changes(conn, &tenant, limit))
            .await
    }

    async fn change_settings(&self, change: SettingsChange) -> Result<(), Error> {
        self.writer.run(move |conn| write::change_settings(conn, &change)).await
    }

    async fn erase(&self, erasure: Append) -> Result<(), Error> {
        erasure.validate()?;
        self.writer.run(move |conn| write::erase(conn, &erasure)).await?;
        // `secure_delete` overwrote the old content in the database's pages; the log still
        // holds the pages as they were until it is emptied.
        self.writer.empty_wal().await
    }

    async fn ended_rooms(&self, query: &EndedRooms) -> Result<Vec<RoomId>, Error> {
        let query = query.clone();
        self.readers.run(move |conn| read::ended_rooms(conn, &query)).await
    }

    async fn purge(&self, room: RoomId) -> Result<(), Error> {
        self.writer.run(move |conn| write::purge(conn, room)).await?;
        self.writer.empty_wal().await
    }
}

#[async_trait]
impl CounterStore for SqliteRoomStore {
    async fn hit(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> Result<Hit, Error> {
        let key = key.to_owned();
        self.writer
            .run(move |conn| write::hit(conn, &key, now, window, limit))
            .await
    }

    async fn recent(&self, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, Error> {
        let key = key.to_owned();
        self.readers.run(move |conn| read::recent_hits(conn, &key, since)).await
    }

    async fn forget_before(&self, before: Timestamp) -> Result<u64, Error> {
        self.writer.run(move |conn| write::forget_hits(conn, before)).await
    }
}

/// The store's private errors, kept as sources of [`Error::Backend`].
#[derive(Debug, thiserror::Error)]
enum SqliteError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}: not a SQLite database, or a corrupt one")]
    NotADatabase(String),
    #[error(
        "the database was written by a newer version of collab-store-sqlite (schema version {found}, this version knows up to {known}); refusing to open it"
    )]
    NewerSchema { found: i64, known: usize },
    #[error(transparent)]
    Migration(#[from] rusqlite_migration::Error),
    #[error("a stored value is unreadable: {0}")]
    Corrupt(String),
    #[error("the transaction failed to commit: {0}")]
    Commit(String),
    #[error("the writer thread has stopped")]
    WriterGone,
}

impl From<SqliteError> for Error {
    fn from(e: SqliteError) -> Self {
        Error::backend("sqlite", e)
    }
}

/// A rusqlite error as the core's backend error.
fn sqlite(e: rusqlite::Error) -> Error {
    SqliteError::Sqlite(e).into()
}
