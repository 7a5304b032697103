//! collab on PostgreSQL, for running on several servers: [`PostgresRoomStore`] (a
//! [`RoomStore`] and a [`CounterStore`]) and [`PostgresTransport`], which carries live events
//! between servers over `LISTEN/NOTIFY`.
//!
//! ```no_run
//! # async fn example() -> Result<(), collab_core::Error> {
//! use collab_core::rooms::Rooms;
//! use collab_store_postgres::{PostgresConfig, PostgresRoomStore, PostgresTransport};
//!
//! let config = PostgresConfig::new("postgres://collab@db.internal/collab")?;
//! let store = PostgresRoomStore::connect(&config).await?; // brings the schema up to date
//! let transport = PostgresTransport::connect(&config).await?;
//! let rooms = Rooms::builder().room_store(store).transport(transport).build();
//! # Ok(()) }
//! ```
//!
//! Every server of a deployment connects to the same database with the same [`PostgresConfig`]:
//! a post on one server reaches subscribers on all of them.
//!
//! # How it writes
//!
//! A room's sequence numbers are a primary key, `(room, seq)`, so two servers can never store
//! the same one; the room's row is locked while an append checks the expected sequence number,
//! and a lost race is the core's [`Error::Conflict`]. The events, the room's summary, the outbox
//! rows, the completed rows and the credentials of an append are written in one transaction,
//! with a `NOTIFY` carrying the room and its new sequence number.
//!
//! Appends are committed in groups (*group commit*): a writer task takes the appends waiting
//! and writes them together. The plain ones (events only, on an existing room that no other
//! append of the group touches: the bulk of the traffic) are one autocommitted statement that
//! locks their rooms (in id order, so that two servers never deadlock), moves forward the rooms
//! at the expected sequence number, inserts the events of those rooms and sends their
//! wake-ups. The others (room creations, outbox rows, credentials) go in one transaction that
//! locks the rooms and outbox rows the same way, checks each append in turn, and writes all that
//! pass with one statement per table. Each caller gets its own answer: one append's `Conflict`
//! does not fail the others. If the database refuses a group for another reason (a race on a
//! key no check covers), its appends are tried again one transaction each.
//!
//! Room updates are HOT (they touch no index) as long as the room's status, names and
//! contacts stay the same and its last activity stays in the same minute: the table keeps free
//! space on each page for the new versions (`fillfactor` 50).
//!
//! Outbox claims use `FOR UPDATE SKIP LOCKED` with a lease, so that the dispatchers of several
//! servers never claim the same delivery at once.
//!
//! # Live events
//!
//! [`PostgresTransport`] hands a server's own events to its local subscribers directly, and
//! listens on a dedicated connection for the wake-ups of every server's appends. A wake-up
//! carries only the room and its sequence number: subscribers read what they lack from the
//! store, so a lost notification costs latency, never an event. When the listening connection
//! drops, the transport reconnects (with backoff) and tells every local subscriber to catch up.
//!
//! # Durability and TLS
//!
//! An acknowledged append is committed; what a commit survives is the server's setting
//! (`synchronous_commit`, replication). Connections are plain TCP: this version has no TLS, so
//! keep the database on a private network (or a local socket tunnel) and use `sslmode=disable`
//! or the default `prefer`.
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `testing` | the `testing` module: a throw-away schema per test and a private PostgreSQL server to restart (not a stable API) |

mod read;
mod schema;
#[cfg(feature = "testing")]
pub mod testing;
mod transport;
mod write;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use collab_core::guard::{CounterStore, Hit};
use collab_core::settings::SettingsChange;
use collab_core::store::{Append, ClaimedOutbox, Credential, EndedRooms, OutboxStats, RoomPage, RoomQuery, RoomStore};
use collab_core::{Error, Event, OutboxId, RoomId, RoomSummary, Seq, TenantId, Timestamp, TokenHash};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub use crate::transport::PostgresTransport;
use crate::write::Writer;

/// Where the database is and how the store uses it; shared by [`PostgresRoomStore`] and
/// [`PostgresTransport`], which must agree on it.
#[derive(Clone)]
pub struct PostgresConfig {
    connection: tokio_postgres::Config,
    schema: Option<String>,
    pool_size: usize,
    max_batch: usize,
    timeout: Duration,
    notify: bool,
}

/// Never the password.
impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("hosts", &self.connection.get_hosts())
            .field("ports", &self.connection.get_ports())
            .field("dbname", &self.connection.get_dbname())
            .field("user", &self.connection.get_user())
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("max_batch", &self.max_batch)
            .field("timeout", &self.timeout)
            .field("notify", &self.notify)
            .finish_non_exhaustive()
    }
}

impl PostgresConfig {
    /// The database at `url`: a `postgres://user:password@host:port/dbname` URL or a libpq
    /// `key=value` string.
    pub fn new(url: &str) -> Result<Self, Error> {
        let connection = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::invalid("database", format!("not a PostgreSQL URL: {e}")))?;
        if connection.get_hosts().is_empty() {
            return Err(Error::invalid("database", "the URL names no host"));
        }
        Ok(Self {
            connection,
            schema: None,
            pool_size: 16,
            max_batch: 256,
            timeout: Duration::from_secs(5),
            notify: true,
        })
    }

    /// Keeps collab's tables in this schema (created if missing) instead of the user's default
    /// one, so that several deployments or test runs can share a database: lower-case ASCII
    /// letters, digits and `_`, starting with a letter or `_`, at most 40 characters.
    pub fn with_schema(mut self, schema: &str) -> Result<Self, Error> {
        let valid = !schema.is_empty()
            && schema.len() <= 40
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid || schema.starts_with("pg_") {
            return Err(Error::invalid(
                "schema",
                "must be 1 to 40 lower-case letters, digits or _, starting with a letter or _, and not pg_",
            ));
        }
        self.schema = Some(schema.to_owned());
        Ok(self)
    }

    /// The most connections the store keeps: 2 to 256, 16 by default. The transport keeps one
    /// more, and the writer uses one of these while it commits.
    pub fn with_pool_size(mut self, size: usize) -> Result<Self, Error> {
        if !(2..=256).contains(&size) {
            return Err(Error::invalid("pool_size", "must be from 2 to 256"));
        }
        self.pool_size = size;
        Ok(self)
    }

    /// The most appends committed together: 1 to 10,000, 256 by default.
    pub fn with_max_batch(mut self, max: usize) -> Result<Self, Error> {
        if !(1..=10_000).contains(&max) {
            return Err(Error::invalid("max_batch", "must be from 1 to 10000"));
        }
        self.max_batch = max;
        Ok(self)
    }

    /// How long connecting, or waiting for a free connection, may take before a call fails
    /// with a backend error: 100 ms to 10 min, 5 s by default.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(600) {
            return Err(Error::invalid("timeout", "must be from 100 ms to 10 minutes"));
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// Whether appends wake the other servers with a `NOTIFY` in their transaction (one per
    /// group commit), for [`PostgresTransport`]: on by default. Turn it off when another
    /// transport carries the wake-ups after the commit (`collab-transport-nats`): PostgreSQL
    /// takes a database-wide lock to queue notifications at commit, so every server's commits
    /// wait for it in turn. Without it a `PostgresTransport` hears nothing.
    pub fn with_notify(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// The schema, if one was set.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The `NOTIFY` channel appends wake the servers on: `collab_rooms`, or
    /// `collab_rooms_SCHEMA` with a schema.
    pub fn channel(&self) -> String {
        match &self.schema {
            Some(schema) => format!("collab_rooms_{schema}"),
            None => "collab_rooms".to_owned(),
        }
    }

    /// The settings of every connection: the schema first on the search path, the timeouts,
    /// TCP keep-alives (so that a dead server is noticed), and a name operators can see.
    fn connection(&self) -> tokio_postgres::Config {
        let mut connection = self.connection.clone();
        if connection.get_connect_timeout().is_none() {
            connection.connect_timeout(self.timeout);
        }
        if connection.get_application_name().is_none() {
            connection.application_name("collab");
        }
        connection.keepalives(true).keepalives_idle(Duration::from_secs(30));
        if let Some(schema) = &self.schema {
            let options = match connection.get_options() {
                Some(options) => format!("{options} -c search_path={schema}"),
                None => format!("-c search_path={schema}"),
            };
            connection.options(&options);
        }
        connection
    }
}

/// A [`RoomStore`] and [`CounterStore`] in a PostgreSQL database. Cheap to clone: clones share
/// the connections and the writer.
#[derive(Clone)]
pub struct PostgresRoomStore {
    pool: Pool,
    writer: Writer,
    /// The `NOTIFY` channel, empty when the store does not notify.
    channel: String,
    schema: Option<String>,
}

impl fmt::Debug for PostgresRoomStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresRoomStore")
            .field("schema", &self.schema)
            .field("connections", &status.size)
            .field("idle", &status.available)
            .finish_non_exhaustive()
    }
}

impl PostgresRoomStore {
    /// Connects, and brings the schema up to date (servers starting together take turns).
    /// Fails with a backend error when the database is unreachable, refuses the credentials,
    /// or was migrated by a newer version of this crate.
    pub async fn connect(config: &PostgresConfig) -> Result<Self, Error> {
        schema::migrate(config).await?;
        let manager = Manager::from_config(
            config.connection(),
            NoTls,
            ManagerConfig {
                // A connection whose socket closed is dropped; a live one is reused unchecked.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
            .build()
            .map_err(|e| Error::backend("postgres", e))?;
        // An empty channel sends no notification (`write`).
        let channel = if config.notify { config.channel() } else { String::new() };
        Ok(Self {
            writer: Writer::start(pool.clone(), channel.clone(), config.max_batch),
            channel,
            pool,
            schema: config.schema.clone(),
        })
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, Error> {
        client(&self.pool).await
    }
}

/// A connection from `pool`, or the reason there is none.
///
/// Reports the wait for it (`collab_postgres_pool_wait_seconds`, a histogram).
pub(crate) async fn client(pool: &Pool) -> Result<deadpool_postgres::Client, Error> {
    let started = std::time::Instant::now();
    let client = pool.get().await;
    metrics::histogram!("collab_postgres_pool_wait_seconds").record(started.elapsed().as_secs_f64());
    client.map_err(|e| PostgresError::Pool(e).into())
}

#[async_trait]
impl RoomStore for PostgresRoomStore {
    async fn append(&self, append: Append) -> Result<(), Error> {
        append.validate()?;
        self.writer.append(append).await
    }

    async fn read_events(&self, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error> {
        read::events_after(&self.client().await?, room, after, limit).await
    }

    async fn latest_events(&self, room: RoomId, limit: usize) -> Result<Vec<Event>, Error> {
        read::latest_events(&self.client().await?, room, limit).await
    }

    async fn room_summary(&self, room: RoomId) -> Result<Option<RoomSummary>, Error> {
        read::summary(&self.client().await?, room).await
    }

    async fn list_rooms(&self, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error> {
        query.validate()?;
        read::list_rooms(&self.client().await?, tenant, query).await
    }

    async fn idle_rooms(&self, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error> {
        read::idle_rooms(&self.client().await?, idle_since, limit).await
    }

    async fn find_credential(&self, hash: &TokenHash) -> Result<Option<Credential>, Error> {
        read::credential(&self.client().await?, hash).await
    }

    async fn claim_outbox(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<ClaimedOutbox>, Error> {
        write::claim_outbox(&self.client().await?, now, lease, limit).await
    }

    async fn reschedule_outbox(&self, id: OutboxId, not_before: Timestamp) -> Result<(), Error> {
        write::reschedule_outbox(&self.client().await?, id, not_before).await
    }

    async fn delete_outbox(&self, id: OutboxId) -> Result<(), Error> {
        write::delete_outbox(&mut self.client().await?, id).await
    }

    async fn add_credential(&self, credential: Credential) -> Result<(), Error> {
        write::add_credential(&self.client().await?, &credential).await
    }

    async fn outbox_stats(&self, now: Timestamp) -> Result<Vec<OutboxStats>, Error> {
        read::outbox_stats(&self.client().await?, now).await
    }

    async fn tenant_settings(&self, tenant: &TenantId) -> Result<Option<SettingsChange>, Error> {
        let latest = read::settings_changes(&self.client().await?, tenant, 1).await?;
        Ok(latest.into_iter().next())
    }

    async fn settings_history(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SettingsChange>, Error> {
        read::settings_changes(&self.client().await?, tenant, limit).await
    }

    async fn change_settings(&self, change: SettingsChange) -> Result<(), Error> {
        write::change_settings(&self.client().await?, &change).await
    }

    async fn merge(&self, survivor: Append, absorbed: Append) -> Result<(), Error> {
        Append::validate_merge(&survivor, &absorbed)?;
        write::merge(&mut self.client().await?, &self.channel, &survivor, &absorbed).await
    }

    async fn erase(&self, erasure: Append) -> Result<(), Error> {
        erasure.validate()?;
        write::erase(&mut self.client().await?, &self.channel, &erasure).await
    }

    async fn ended_rooms(&self, query: &EndedRooms) -> Result<Vec<RoomId>, Error> {
        read::ended_rooms(&self.client().await?, query).await
    }

    async fn purge(&self, room: RoomId) -> Result<(), Error> {
        write::purge(&mut self.client().await?, room).await
    }
}

#[async_trait]
impl CounterStore for PostgresRoomStore {
    async fn hit(&self, key: &str, now: Timestamp, window: Duration, limit: u32) -> Result<Hit, Error> {
        write::hit(&mut self.client().await?, key, now, window, limit).await
    }

    async fn recent(&self, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, Error> {
        read::recent_hits(&self.client().await?, key, since).await
    }

    async fn forget_before(&self, before: Timestamp) -> Result<u64, Error> {
        write::forget_hits(&self.client().await?, before).await
    }
}

/// The store's private errors, kept as sources of [`Error::Backend`].
#[derive(Debug, thiserror::Error)]
enum PostgresError {
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(deadpool_postgres::PoolError),
    #[error(transparent)]
    Migration(#[from] refinery::Error),
    #[error(
        "the database was migrated by a newer version of collab-store-postgres ({found}; this version knows up to V{known}); refusing to use it"
    )]
    NewerSchema { found: String, known: usize },
    #[error("a stored value is unreadable: {what}")]
    Corrupt {
        what: String,
        #[source]
        source: Option<collab_core::BoxError>,
    },
    #[error("the writer task has stopped")]
    WriterGone,
    #[error(transparent)]
    Shared(Arc<PostgresError>),
    #[error("the listener task has stopped")]
    ListenerGone,
    #[error("the listening connection closed")]
    ListenerClosed,
    #[error("the listening connection stopped answering")]
    ListenerSilent,
}

impl From<PostgresError> for Error {
    fn from(e: PostgresError) -> Self {
        Error::backend("postgres", e)
    }
}

/// A tokio-postgres error as the core's error: a key that exists already, or a lost race the
/// database detected, is a [`Error::Conflict`]; anything else a backend error.
fn postgres(e: tokio_postgres::Error) -> Error {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => Error::conflict("a row with this key exists"),
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE => {
            Error::conflict("another writer changed the room at the same time")
        }
        _ => PostgresError::Postgres(e).into(),
    }
}
