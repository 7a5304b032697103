//! Read connections and the queries that only read.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use collab_core::settings::SettingsChange;
use collab_core::store::{Credential, EndedRooms, Grant, OutboxKind, OutboxStats, RoomPage, RoomQuery};
use collab_core::{Error, Event, InviteId, ParticipantId, RoomId, RoomSummary, Seq, TenantId, Timestamp, TokenHash};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::{SqliteConfig, SqliteError, schema, sqlite};

/// A small pool of read connections, used from tokio's blocking threads.
#[derive(Clone)]
pub(crate) struct Readers {
    shared: Arc<Pool>,
}

struct Pool {
    path: PathBuf,
    config: SqliteConfig,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, config: SqliteConfig) -> Self {
        Self {
            shared: Arc::new(Pool {
                path,
                config,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Runs `query` on a read connection, off the async threads.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let pool = self.shared.clone();
        tokio::task::spawn_blocking(move || pool.with_connection(query))
            .await
            .map_err(|e| Error::backend("sqlite", e))?
    }

    /// Runs `query` right here, on the calling task's thread. Only for indexed lookups that
    /// read a bounded handful of rows (tens of microseconds): handing those to a blocking thread
    /// costs more than the query itself.
    pub(crate) fn run_inline<T>(&self, query: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        self.shared.with_connection(query)
    }
}

impl Pool {
    fn with_connection<T>(&self, query: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        let conn = match self.idle().pop() {
            Some(conn) => conn,
            None => {
                let conn = schema::connect(&self.path, &self.config)?;
                conn.execute_batch("PRAGMA query_only = ON").map_err(sqlite)?;
                conn
            }
        };
        let result = query(&conn);
        let mut idle = self.idle();
        if idle.len() < self.config.readers {
            idle.push(conn);
        }
        result
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A UUID as stored: 16 big-endian bytes, so that byte order is id order.
pub(crate) fn id_bytes(id: u128) -> [u8; 16] {
    id.to_be_bytes()
}

pub(crate) fn uuid_from(bytes: &[u8]) -> Result<u128, Error> {
    let bytes: [u8; 16] = bytes
        .try_into()
        .map_err(|_| SqliteError::Corrupt(format!("an id of {} bytes", bytes.len())))?;
    Ok(u128::from_be_bytes(bytes))
}

/// An outbox row's kind, from its `channel` column.
pub(crate) fn kind_from(name: &str) -> Result<OutboxKind, Error> {
    OutboxKind::parse(name).ok_or_else(|| SqliteError::Corrupt(format!("outbox kind {name:?}")).into())
}

fn json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| SqliteError::Corrupt(e.to_string()).into())
}

fn limit_value(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn collect_json<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<T>, Error> {
    let mut statement = conn.prepare_cached(sql).map_err(sqlite)?;
    let rows = statement
        .query_map(params, |row| row.get::<_, String>(0))
        .map_err(sqlite)?;
    rows.map(|row| json(&row.map_err(sqlite)?)).collect()
}

pub(crate) fn events_after(conn: &Connection, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error> {
    let after = i64::try_from(after.get()).unwrap_or(i64::MAX);
    collect_json(
        conn,
        "SELECT data FROM events WHERE room = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        params![id_bytes(room.as_u128()), after, limit_value(limit)],
    )
}

pub(crate) fn latest_events(conn: &Connection, room: RoomId, limit: usize) -> Result<Vec<Event>, Error> {
    collect_json(
        conn,
        "SELECT data FROM events WHERE room = ?1 ORDER BY seq DESC LIMIT ?2",
        params![id_bytes(room.as_u128()), limit_value(limit)],
    )
}

pub(crate) fn summary(conn: &Connection, room: RoomId) -> Result<Option<RoomSummary>, Error> {
    let text: Option<String> = conn
        .prepare_cached("SELECT summary FROM rooms WHERE room = ?1")
        .and_then(|mut s| s.query_row([id_bytes(room.as_u128())], |row| row.get(0)).optional())
        .map_err(sqlite)?;
    text.map(|t| json(&t)).transpose()
}

/// The first text after every text that starts with `prefix`, in SQLite's byte order: the
/// prefix followed by the highest code point.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

pub(crate) fn list_rooms(conn: &Connection, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error> {
    let mut values: Vec<Value> = Vec::new();
    let mut sql = String::new();
    if let Some(prefix) = query.normalized_name_prefix() {
        // The rooms whose names match first, one indexed range per name column, and only then
        // the date order: an OR of the three would let the planner walk the whole tenant in
        // date order, which is slow when few names match. CROSS JOIN keeps that order.
        sql.push_str("WITH matches (id) AS (");
        for (i, column) in ["first_lc", "last_lc", "full_lc"].into_iter().enumerate() {
            if i > 0 {
                sql.push_str(" UNION ");
            }
            sql.push_str(&format!(
                "SELECT rowid FROM rooms WHERE tenant = ? AND {column} >= ? AND {column} < ?"
            ));
            values.push(Value::Text(tenant.as_str().to_owned()));
            values.push(Value::Text(prefix.clone()));
            values.push(Value::Text(prefix_end(&prefix)));
        }
        sql.push_str(") SELECT summary FROM matches CROSS JOIN rooms ON rooms.rowid = matches.id WHERE tenant = ?");
    } else {
        sql.push_str("SELECT summary FROM rooms WHERE tenant = ?");
    }
    values.push(Value::Text(tenant.as_str().to_owned()));
    if let Some(agent) = &query.agent {
        sql.push_str(" AND agent = ?");
        values.push(Value::Text(agent.as_str().to_owned()));
    }
    if let Some(status) = query.status {
        sql.push_str(" AND status = ?");
        values.push(Value::Text(status.as_str().to_owned()));
    }
    if let Some(phone) = &query.phone {
        sql.push_str(" AND phone = ?");
        values.push(Value::Text(phone.as_str().to_owned()));
    }
    if let Some(email) = &query.email {
        sql.push_str(" AND email = ?");
        values.push(Value::Text(email.match_key()));
    }
    if let Some(after) = query.after {
        sql.push_str(" AND (created_at, room) < (?, ?)");
        values.push(Value::Integer(after.created_at.unix_millis()));
        values.push(Value::Blob(id_bytes(after.room.as_u128()).to_vec()));
    }
    sql.push_str(" ORDER BY created_at DESC, room DESC LIMIT ?");
    // One more than asked, to know whether a next page exists.
    values.push(Value::Integer(limit_value(query.limit.saturating_add(1))));
    let rooms: Vec<RoomSummary> = collect_json(conn, &sql, params_from_iter(values))?;
    Ok(RoomPage::from_one_more(rooms, query.limit))
}

/// Up to `limit` settings changes of `tenant`, newest first.
pub(crate) fn settings_changes(
    conn: &Connection,
    tenant: &TenantId,
    limit: usize,
) -> Result<Vec<SettingsChange>, Error> {
    let mut statement = conn
        .prepare_cached("SELECT change FROM tenant_settings WHERE tenant = ?1 ORDER BY version DESC LIMIT ?2")
        .map_err(sqlite)?;
    let rows = statement
        .query_map(params![tenant.as_str(), limit_value(limit)], |row| {
            row.get::<_, String>(0)
        })
        .map_err(sqlite)?;
    rows.map(|row| {
        let text = row.map_err(sqlite)?;
        serde_json::from_str(&text).map_err(|e| Error::backend("sqlite", e))
    })
    .collect()
}

pub(crate) fn idle_rooms(conn: &Connection, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error> {
    let mut statement = conn
        .prepare_cached(
            "SELECT room FROM rooms WHERE status = 'active' AND last_activity <= ?1 \
             ORDER BY last_activity, room LIMIT ?2",
        )
        .map_err(sqlite)?;
    let rows = statement
        .query_map(params![idle_since.unix_millis(), limit_value(limit)], |row| {
            row.get::<_, Vec<u8>>(0)
        })
        .map_err(sqlite)?;
    rows.map(|row| Ok(RoomId::from_u128(uuid_from(&row.map_err(sqlite)?)?)))
        .collect()
}

pub(crate) fn ended_rooms(conn: &Connection, query: &EndedRooms) -> Result<Vec<RoomId>, Error> {
    let ended_before = query.ended_before.unix_millis();
    let limit = limit_value(query.limit);
    let rows: Vec<Vec<u8>> = match &query.tenant {
        Some(tenant) => conn
            .prepare_cached(
                "SELECT room FROM rooms WHERE ended_at <= ?1 AND tenant = ?2 AND status <> 'draft' \
                 ORDER BY ended_at, room LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map(params![ended_before, tenant.as_str(), limit], |row| row.get(0))?
                    .collect()
            }),
        None => {
            let except = serde_json::to_string(&query.except).map_err(|e| Error::backend("sqlite", e))?;
            conn.prepare_cached(
                "SELECT room FROM rooms WHERE ended_at <= ?1 AND status <> 'draft' \
                 AND tenant NOT IN (SELECT value FROM json_each(?2)) \
                 ORDER BY ended_at, room LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map(params![ended_before, except, limit], |row| row.get(0))?
                    .collect()
            })
        }
    }
    .map_err(sqlite)?;
    rows.iter()
        .map(|room| Ok(RoomId::from_u128(uuid_from(room)?)))
        .collect()
}

pub(crate) fn credential(conn: &Connection, hash: &TokenHash) -> Result<Option<Credential>, Error> {
    let row: Option<(Vec<u8>, String, Vec<u8>)> = conn
        .prepare_cached("SELECT room, grant_kind, grant_id FROM credentials WHERE hash = ?1")
        .and_then(|mut s| {
            s.query_row([&hash.as_bytes()[..]], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()
        })
        .map_err(sqlite)?;
    let Some((room, kind, id)) = row else {
        return Ok(None);
    };
    let id = uuid_from(&id)?;
    let grant = match kind.as_str() {
        "invite" => Grant::Invite(InviteId::from_u128(id)),
        "session" => Grant::Session(ParticipantId::from_u128(id)),
        other => return Err(SqliteError::Corrupt(format!("grant kind {other:?}")).into()),
    };
    Ok(Some(Credential {
        hash: *hash,
        room: RoomId::from_u128(uuid_from(&room)?),
        grant,
    }))
}

pub(crate) fn integrity_check(conn: &Connection) -> Result<(), Error> {
    let report: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(sqlite)?;
    if report == "ok" {
        Ok(())
    } else {
        Err(SqliteError::Corrupt(format!("integrity check: {report}")).into())
    }
}

pub(crate) fn recent_hits(conn: &Connection, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, Error> {
    let mut statement = conn
        .prepare_cached("SELECT at FROM counter_hits WHERE key = ?1 AND at > ?2 ORDER BY at")
        .map_err(sqlite)?;
    let rows = statement
        .query_map(params![key, since.unix_millis()], |row| row.get::<_, i64>(0))
        .map_err(sqlite)?;
    rows.map(|row| Ok(Timestamp::from_unix_millis(row.map_err(sqlite)?)))
        .collect()
}

pub(crate) fn outbox_stats(conn: &Connection, now: Timestamp) -> Result<Vec<OutboxStats>, Error> {
    // Due as `claim_outbox` sees it. A scan of the table: indexing it for this query cost every
    // write to the outbox more than the scan costs (migration 0007).
    let mut statement = conn
        .prepare_cached(
            "SELECT channel, count(*), \
                    sum(due), min(CASE WHEN due THEN not_before END) \
             FROM (SELECT channel, not_before, \
                          not_before <= ?1 AND (leased_until IS NULL OR leased_until <= ?1) AS due \
                   FROM outbox) \
             GROUP BY channel",
        )
        .map_err(sqlite)?;
    let rows = statement
        .query_map([now.unix_millis()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Option<i64>>(3)?,
            ))
        })
        .map_err(sqlite)?;
    rows.map(|row| {
        let (channel, queued, due, oldest_due) = row.map_err(sqlite)?;
        Ok(OutboxStats::new(
            kind_from(&channel)?,
            u64::try_from(queued).unwrap_or(0),
            u64::try_from(due).unwrap_or(0),
            oldest_due.map(Timestamp::from_unix_millis),
        ))
    })
    .collect()
}
