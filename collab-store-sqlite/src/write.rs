//! The writer thread, group commit, and the statements that change the database.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use collab_core::guard::{Hit, MAX_COUNTER_WINDOW};
use collab_core::settings::SettingsChange;
use collab_core::store::{Append, ClaimedOutbox, Credential, Grant, OutboxMessage, OutboxTarget};
use collab_core::{Entity, Error, Event, EventData, OutboxId, RoomId, RoomSummary, Seq, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::read::{id_bytes, kind_from, uuid_from};
use crate::{SqliteConfig, SqliteError, schema, sqlite};

/// A write waiting for the writer thread. It runs in its own savepoint (or is told why it
/// cannot run), and learns after the commit whether its result stands.
struct Job(Box<dyn FnOnce(Connected<'_>) -> Pending + Send>);

/// The connection a job runs on, or why it cannot run (the transaction did not begin).
type Connected<'a> = Result<&'a Connection, &'a str>;

/// Answers a job's caller, given the commit's failure if there was one.
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

/// What a job left to do once the transaction is over.
struct Pending {
    succeeded: bool,
    answer: Answer,
}

/// What the writer thread is asked to do.
enum Queued {
    /// A write, in the next group commit.
    Job(Job),
    /// Empty the write-ahead log after the writes queued before it (an erasure's old pages must
    /// not linger there), then answer.
    EmptyWal(oneshot::Sender<()>),
}

/// The handle to the writer thread. Dropping the last one stops the thread after the queued
/// writes.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Queued>,
}

/// Group commits between two nudges of the checkpointer.
const COMMITS_PER_CHECKPOINT: u32 = 64;

impl Writer {
    pub(crate) fn start(conn: Connection, path: &Path, config: &SqliteConfig) -> Result<Self, Error> {
        let (jobs, queue) = mpsc::channel::<Queued>();
        let (nudge, nudges) = mpsc::sync_channel::<()>(1);
        let max_batch = config.max_batch;
        let wal_limit = config.wal_limit;
        let wal_too_long = Arc::new(AtomicBool::new(false));
        let checkpoints = schema::connect(path, config)?;
        thread::Builder::new()
            .name("collab-sqlite-writer".into())
            .spawn({
                let wal_too_long = wal_too_long.clone();
                move || write_loop(&conn, &queue, max_batch, &nudge, &wal_too_long)
            })
            .map_err(|e| Error::backend("sqlite writer thread", e))?;
        thread::Builder::new()
            .name("collab-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoints, &nudges, wal_limit, &wal_too_long))
            .map_err(|e| Error::backend("sqlite checkpoint thread", e))?;
        Ok(Self { jobs })
    }

    /// Runs `work` on the writer thread in the next group commit.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        let job = Job(Box::new(move |conn: Connected<'_>| {
            let result = match conn {
                Ok(conn) => work(conn),
                Err(reason) => Err(SqliteError::Commit(reason.to_owned()).into()),
            };
            Pending {
                succeeded: result.is_ok(),
                answer: Box::new(move |commit_failure| {
                    let result = match commit_failure {
                        Some(reason) if result.is_ok() => Err(SqliteError::Commit(reason.to_owned()).into()),
                        _ => result,
                    };
                    let _ = reply.send(result);
                }),
            }
        }));
        self.jobs
            .send(Queued::Job(job))
            .map_err(|_| Error::from(SqliteError::WriterGone))?;
        answer.await.map_err(|_| Error::from(SqliteError::WriterGone))?
    }

    /// Empties the write-ahead log once the writes queued so far are committed, waiting (up to
    /// the busy timeout) for readers of older pages. Best effort: a reader that holds on keeps
    /// the log, which the next checkpoint then empties.
    pub(crate) async fn empty_wal(&self) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Queued::EmptyWal(reply))
            .map_err(|_| Error::from(SqliteError::WriterGone))?;
        answer.await.map_err(|_| Error::from(SqliteError::WriterGone))
    }
}

fn write_loop(
    conn: &Connection,
    queue: &mpsc::Receiver<Queued>,
    max_batch: usize,
    nudge: &mpsc::SyncSender<()>,
    wal_too_long: &AtomicBool,
) {
    let mut commits = 0u32;
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::new();
        let mut emptied = Vec::new();
        let mut next = Some(first);
        while let Some(queued) = next.take() {
            match queued {
                Queued::Job(job) => batch.push(job),
                // The writes before it go first; the ones after it wait for the next commit.
                Queued::EmptyWal(reply) => {
                    emptied.push(reply);
                    break;
                }
            }
            if batch.len() < max_batch {
                next = queue.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            metrics::histogram!(collab_core::metrics::GROUP_COMMIT_APPENDS, "store" => "sqlite")
                .record(batch.len() as f64);
            commit_batch(conn, batch);
            commits += 1;
            if commits.is_multiple_of(COMMITS_PER_CHECKPOINT) {
                // Full means one is pending already.
                let _ = nudge.try_send(());
            }
        }
        if wal_too_long.swap(false, Ordering::Relaxed) || !emptied.is_empty() {
            empty_wal(conn);
        }
        for reply in emptied {
            let _ = reply.send(());
        }
    }
}

/// Runs `batch` in one transaction, each job in its own savepoint, and answers every job.
fn commit_batch(conn: &Connection, batch: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let reason = e.to_string();
        tracing::error!(error = %reason, "sqlite writer could not begin a transaction");
        for Job(job) in batch {
            (job(Err(&reason)).answer)(None);
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    for Job(job) in batch {
        let pending = match conn.execute_batch("SAVEPOINT job") {
            Ok(()) => {
                let pending = job(Ok(conn));
                let end = if pending.succeeded {
                    "RELEASE job"
                } else {
                    "ROLLBACK TO job; RELEASE job"
                };
                if let Err(e) = conn.execute_batch(end) {
                    tracing::error!(error = %e, "sqlite could not end a savepoint");
                }
                pending
            }
            Err(e) => job(Err(&e.to_string())),
        };
        answers.push(pending.answer);
    }
    let failure = conn.execute_batch("COMMIT").err().map(|e| e.to_string());
    if failure.is_some() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for answer in answers {
        answer(failure.as_deref());
    }
}

fn checkpoint_loop(conn: &Connection, nudges: &mpsc::Receiver<()>, wal_limit: u64, wal_too_long: &AtomicBool) {
    let page_size: u32 = conn.query_row("PRAGMA page_size", [], |row| row.get(0)).unwrap_or(4096);
    // Each frame of the log is a page and its 24-byte header.
    let frame_limit = wal_limit / (u64::from(page_size) + 24);
    loop {
        match nudges.recv_timeout(Duration::from_secs(5)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {
                // PASSIVE never blocks writers or readers; what it cannot copy now waits for the
                // next round.
                match checkpoint(conn, "PASSIVE") {
                    Ok((_, frames)) if frames > frame_limit => wal_too_long.store(true, Ordering::Relaxed),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "sqlite checkpoint failed"),
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Empties the write-ahead log, between two group commits. SQLite starts the log over only
/// once a checkpoint has reached its end, which PASSIVE never does under steady writes. This
/// runs on the writer's thread because a busy writer takes its lock again at once after each
/// commit: another connection waiting for it would rarely get it. TRUNCATE then waits (up to
/// the busy timeout) for the readers to step aside.
fn empty_wal(conn: &Connection) {
    match checkpoint(conn, "TRUNCATE") {
        Ok((false, _)) => tracing::debug!("sqlite write-ahead log emptied"),
        Ok((true, frames)) => tracing::warn!(frames, "sqlite write-ahead log over its limit, readers busy"),
        Err(e) => tracing::warn!(error = %e, "sqlite checkpoint failed"),
    }
}

/// Runs a checkpoint in `mode`: whether it was held back by the writer or a reader, and the
/// frames in the log.
/// Reports its time (`collab_sqlite_checkpoint_duration_seconds`) and the log's length in
/// frames (`collab_sqlite_wal_frames`).
fn checkpoint(conn: &Connection, mode: &'static str) -> rusqlite::Result<(bool, u64)> {
    let started = std::time::Instant::now();
    let done = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        let busy: i64 = row.get(0)?;
        let frames: i64 = row.get(1)?;
        Ok((busy != 0, u64::try_from(frames).unwrap_or(0)))
    });
    metrics::histogram!("collab_sqlite_checkpoint_duration_seconds", "mode" => mode)
        .record(started.elapsed().as_secs_f64());
    if let Ok((_, frames)) = &done {
        metrics::gauge!("collab_sqlite_wal_frames").set(*frames as f64);
    }
    done
}

/// Whether `e` is a constraint violation: a key that exists already.
fn is_constraint(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

/// Maps a constraint violation to `Conflict { reason }`, anything else to a backend error.
fn conflict_on_duplicate(reason: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| {
        if is_constraint(&e) {
            Error::conflict(reason)
        } else {
            sqlite(e)
        }
    }
}

pub(crate) fn append(conn: &Connection, append: &Append) -> Result<(), Error> {
    let room = id_bytes(append.room.as_u128());
    let current: i64 = conn
        .prepare_cached("SELECT seq FROM rooms WHERE room = ?1")
        .and_then(|mut s| s.query_row([&room], |row| row.get(0)).optional())
        .map_err(sqlite)?
        .unwrap_or(0);
    if u64::try_from(current).ok() != Some(append.expected.get()) {
        return Err(Error::conflict(format!(
            "room {} is at seq {current}, not {}",
            append.room, append.expected
        )));
    }
    for id in &append.completed_outbox {
        if !remove_outbox(conn, *id)? {
            return Err(Error::conflict("a completed outbox row is gone"));
        }
    }
    for credential in &append.credentials {
        insert_credential(conn, credential)?;
    }
    {
        let mut insert = conn
            .prepare_cached("INSERT INTO events (room, seq, data) VALUES (?1, ?2, ?3)")
            .map_err(sqlite)?;
        for event in &append.events {
            let data = serde_json::to_string(event).map_err(|e| Error::backend("sqlite", e))?;
            insert
                .execute(params![&room, seq_value(event.seq.get())?, data])
                .map_err(conflict_on_duplicate("an event with this seq exists"))?;
        }
    }
    // The expected-seq check above tells whether the room exists already.
    let row = if append.expected == Seq::ZERO {
        RoomRow::New
    } else {
        RoomRow::Existing {
            customer_changed: append
                .events
                .iter()
                .any(|e| matches!(e.data, EventData::CustomerInvited { .. })),
        }
    };
    write_room(conn, &room, &append.summary, row)?;
    for message in &append.outbox {
        insert_outbox(conn, message)?;
    }
    Ok(())
}

/// Events redacted per statement of an erasure, so that a long log is not held in memory whole.
const ERASE_PAGE: i64 = 1_000;

/// Writes an erasure: the room's outbox rows deleted, its append, then every earlier event
/// redacted, the room's credentials deleted and its customer columns emptied. The connection's `secure_delete`
/// overwrites what is removed.
pub(crate) fn erase(conn: &Connection, erasure: &Append) -> Result<(), Error> {
    let room = id_bytes(erasure.room.as_u128());
    // The rows queued before the erasure go; its own (its webhooks) stay. A refused append
    // rolls this back with it (each job runs in its own savepoint).
    conn.prepare_cached("DELETE FROM outbox WHERE room = ?1")
        .and_then(|mut s| s.execute([&room]))
        .map_err(sqlite)?;
    append(conn, erasure)?;
    let last = seq_value(erasure.expected.get())?;
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, String)> = conn
            .prepare_cached(
                "SELECT seq, data FROM events WHERE room = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4",
            )
            .and_then(|mut s| {
                s.query_map(params![&room, after, last, ERASE_PAGE], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?
                .collect()
            })
            .map_err(sqlite)?;
        let Some((seq, _)) = page.last() else {
            break;
        };
        after = *seq;
        let mut update = conn
            .prepare_cached("UPDATE events SET data = ?3 WHERE room = ?1 AND seq = ?2")
            .map_err(sqlite)?;
        for (seq, data) in &page {
            let event: Event = serde_json::from_str(data).map_err(|e| SqliteError::Corrupt(e.to_string()))?;
            let redacted = event.redacted();
            if redacted != event {
                let data = serde_json::to_string(&redacted).map_err(|e| Error::backend("sqlite", e))?;
                update.execute(params![&room, seq, data]).map_err(sqlite)?;
            }
        }
    }
    for statement in [
        "DELETE FROM credentials WHERE room = ?1",
        "UPDATE rooms SET first_lc = NULL, last_lc = NULL, full_lc = NULL, phone = NULL, email = NULL WHERE room = ?1",
    ] {
        conn.prepare_cached(statement)
            .and_then(|mut s| s.execute([&room]))
            .map_err(sqlite)?;
    }
    Ok(())
}

/// Deletes every row of a room.
pub(crate) fn purge(conn: &Connection, room: RoomId) -> Result<(), Error> {
    let room = id_bytes(room.as_u128());
    for statement in [
        "DELETE FROM events WHERE room = ?1",
        "DELETE FROM credentials WHERE room = ?1",
        "DELETE FROM outbox WHERE room = ?1",
        "DELETE FROM rooms WHERE room = ?1",
    ] {
        conn.prepare_cached(statement)
            .and_then(|mut s| s.execute([&room]))
            .map_err(sqlite)?;
    }
    Ok(())
}

/// Stores a settings change whose version follows the tenant's latest.
pub(crate) fn change_settings(conn: &Connection, change: &SettingsChange) -> Result<(), Error> {
    let tenant = change.tenant.as_str();
    let latest: i64 = conn
        .prepare_cached("SELECT coalesce(max(version), 0) FROM tenant_settings WHERE tenant = ?1")
        .and_then(|mut s| s.query_row([tenant], |row| row.get(0)))
        .map_err(sqlite)?;
    let version = i64::try_from(change.version).map_err(|_| Error::invalid("version", "too large"))?;
    if version != latest + 1 {
        return Err(Error::conflict(format!(
            "the settings are at version {latest}, not {}",
            version - 1
        )));
    }
    let text = serde_json::to_string(change).map_err(|e| Error::backend("sqlite", e))?;
    conn.prepare_cached("INSERT INTO tenant_settings (tenant, version, change) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![tenant, version, text]))
        .map_err(conflict_on_duplicate("a settings change with this version exists"))?;
    Ok(())
}

pub(crate) fn insert_credential(conn: &Connection, credential: &Credential) -> Result<(), Error> {
    let (kind, id) = match credential.grant {
        Grant::Invite(invite) => ("invite", invite.as_u128()),
        Grant::Session(participant) => ("session", participant.as_u128()),
    };
    conn.prepare_cached("INSERT INTO credentials (hash, room, grant_kind, grant_id) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut s| {
            s.execute(params![
                &credential.hash.as_bytes()[..],
                id_bytes(credential.room.as_u128()),
                kind,
                id_bytes(id)
            ])
        })
        .map_err(conflict_on_duplicate("a credential with this hash exists"))?;
    Ok(())
}

fn seq_value(seq: u64) -> Result<i64, Error> {
    i64::try_from(seq).map_err(|_| Error::invalid("seq", "too large"))
}

/// Where a room's row stands before an append.
enum RoomRow {
    /// The append creates the room.
    New,
    /// The room exists; `customer_changed` when the append invites (the customer's columns are
    /// indexed for search, so other appends leave them, and their indexes, alone).
    Existing { customer_changed: bool },
}

/// Writes the room's row.
fn write_room(conn: &Connection, room: &[u8; 16], summary: &RoomSummary, row: RoomRow) -> Result<(), Error> {
    let json = serde_json::to_string(summary).map_err(|e| Error::backend("sqlite", e))?;
    let seq = seq_value(summary.seq.get())?;
    let customer = summary.customer.as_ref();
    let lower = |s: &str| s.to_lowercase();
    let (first, last, full) = (
        customer.map(|c| lower(c.first_name.as_str())),
        customer.map(|c| lower(c.last_name.as_str())),
        customer.map(|c| lower(&c.full_name())),
    );
    let phone = customer.and_then(|c| c.phone.as_ref()).map(|p| p.as_str());
    let email = customer.and_then(|c| c.email.as_ref()).map(|e| e.match_key());
    let ended_at = summary.ended_at.map(Timestamp::unix_millis);
    let customer_changed = match row {
        RoomRow::New => {
            conn.prepare_cached(
                "INSERT INTO rooms (room, tenant, agent, status, seq, created_at, last_activity, \
                                    first_lc, last_lc, full_lc, phone, email, summary, ended_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    &room[..],
                    summary.tenant.as_str(),
                    summary.agent.as_str(),
                    summary.status.as_str(),
                    seq,
                    summary.created_at.unix_millis(),
                    summary.last_activity.unix_millis(),
                    first,
                    last,
                    full,
                    phone,
                    email,
                    json,
                    ended_at,
                ])
            })
            .map_err(sqlite)?;
            return Ok(());
        }
        RoomRow::Existing { customer_changed } => customer_changed,
    };
    conn.prepare_cached(
        "UPDATE rooms SET status = ?2, seq = ?3, last_activity = ?4, summary = ?5, ended_at = ?6 WHERE room = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            &room[..],
            summary.status.as_str(),
            seq,
            summary.last_activity.unix_millis(),
            json,
            ended_at
        ])
    })
    .map_err(sqlite)?;
    if customer_changed {
        conn.prepare_cached(
            "UPDATE rooms SET first_lc = ?2, last_lc = ?3, full_lc = ?4, phone = ?5, email = ?6 WHERE room = ?1",
        )
        .and_then(|mut s| s.execute(params![&room[..], first, last, full, phone, email]))
        .map_err(sqlite)?;
    }
    Ok(())
}

fn insert_outbox(conn: &Connection, message: &OutboxMessage) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO outbox (id, room, invite, channel, payload, not_before, parked) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, EXISTS (SELECT 1 FROM outbox WHERE room = ?2 AND invite = ?3))",
    )
    .and_then(|mut s| {
        s.execute(params![
            id_bytes(message.id.as_u128()),
            id_bytes(message.room.as_u128()),
            id_bytes(message.target.subject()),
            message.target.kind().as_str(),
            message.payload,
            message.not_before.unix_millis(),
        ])
    })
    .map_err(conflict_on_duplicate("an outbox row with this id exists"))?;
    Ok(())
}

pub(crate) fn claim_outbox(
    conn: &Connection,
    now: Timestamp,
    lease: Duration,
    limit: usize,
) -> Result<Vec<ClaimedOutbox>, Error> {
    let until = now.saturating_add(lease).unix_millis();
    let mut claim = conn
        .prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, leased_until = ?2 \
             WHERE id IN (SELECT id FROM outbox \
                          WHERE parked = 0 AND not_before <= ?1 AND (leased_until IS NULL OR leased_until <= ?1) \
                          ORDER BY not_before, id LIMIT ?3) \
             RETURNING id, room, invite, channel, payload, not_before, attempts",
        )
        .map_err(sqlite)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = claim
        .query_map(params![now.unix_millis(), until, limit], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, Vec<u8>>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, i64>(6)?,
            ))
        })
        .map_err(sqlite)?;
    let mut claimed = Vec::new();
    for row in rows {
        let (id, room, invite, channel, payload, not_before, attempts) = row.map_err(sqlite)?;
        claimed.push(ClaimedOutbox {
            message: OutboxMessage {
                id: OutboxId::from_u128(uuid_from(&id)?),
                room: RoomId::from_u128(uuid_from(&room)?),
                target: OutboxTarget::from_parts(kind_from(&channel)?, uuid_from(&invite)?),
                payload,
                not_before: Timestamp::from_unix_millis(not_before),
            },
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        });
    }
    // RETURNING gives no order.
    claimed.sort_by_key(|c| (c.message.not_before, c.message.id));
    Ok(claimed)
}

pub(crate) fn reschedule_outbox(conn: &Connection, id: OutboxId, not_before: Timestamp) -> Result<(), Error> {
    let changed = conn
        .prepare_cached("UPDATE outbox SET not_before = ?2, leased_until = NULL WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id_bytes(id.as_u128()), not_before.unix_millis()]))
        .map_err(sqlite)?;
    if changed == 0 {
        return Err(Error::NotFound {
            what: Entity::OutboxRow,
        });
    }
    Ok(())
}

pub(crate) fn delete_outbox(conn: &Connection, id: OutboxId) -> Result<(), Error> {
    if !remove_outbox(conn, id)? {
        return Err(Error::NotFound {
            what: Entity::OutboxRow,
        });
    }
    Ok(())
}

/// Deletes an outbox row and unparks the row queued next for its room and subject (migration
/// 0007): `false` if there was no such row.
fn remove_outbox(conn: &Connection, id: OutboxId) -> Result<bool, Error> {
    let removed = conn
        .prepare_cached("DELETE FROM outbox WHERE id = ?1 RETURNING room, invite")
        .and_then(|mut s| {
            s.query_row([id_bytes(id.as_u128())], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .optional()
        })
        .map_err(sqlite)?;
    let Some((room, subject)) = removed else {
        return Ok(false);
    };
    conn.prepare_cached(
        "UPDATE outbox SET parked = 0 \
         WHERE rowid = (SELECT min(rowid) FROM outbox WHERE room = ?1 AND invite = ?2) AND parked = 1",
    )
    .and_then(|mut s| s.execute(params![room, subject]))
    .map_err(sqlite)?;
    Ok(true)
}

/// Deletes the counter hits at or before `before`, of every key.
pub(crate) fn forget_hits(conn: &Connection, before: Timestamp) -> Result<u64, Error> {
    let deleted = conn
        .prepare_cached("DELETE FROM counter_hits WHERE at <= ?1")
        .and_then(|mut s| s.execute([before.unix_millis()]))
        .map_err(sqlite)?;
    Ok(deleted as u64)
}

pub(crate) fn hit(conn: &Connection, key: &str, now: Timestamp, window: Duration, limit: u32) -> Result<Hit, Error> {
    let forget = now.saturating_sub(MAX_COUNTER_WINDOW).unix_millis();
    conn.prepare_cached("DELETE FROM counter_hits WHERE key = ?1 AND at <= ?2")
        .and_then(|mut s| s.execute(params![key, forget]))
        .map_err(sqlite)?;
    let start = now.saturating_sub(window).unix_millis();
    let (count, oldest): (i64, Option<i64>) = conn
        .prepare_cached("SELECT count(*), min(at) FROM counter_hits WHERE key = ?1 AND at > ?2")
        .and_then(|mut s| s.query_row(params![key, start], |row| Ok((row.get(0)?, row.get(1)?))))
        .map_err(sqlite)?;
    if count >= i64::from(limit) {
        let oldest = Timestamp::from_unix_millis(oldest.unwrap_or(now.unix_millis()));
        return Ok(Hit::Refused {
            retry_after: oldest.saturating_add(window).since(now),
        });
    }
    conn.prepare_cached("INSERT INTO counter_hits (key, at) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![key, now.unix_millis()]))
        .map_err(sqlite)?;
    Ok(Hit::Counted {
        count: u32::try_from(count + 1).unwrap_or(u32::MAX),
    })
}
