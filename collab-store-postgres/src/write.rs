//! The writer task (group commit of appends) and the other statements that change the database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use collab_core::guard::{Hit, MAX_COUNTER_WINDOW};
use collab_core::settings::SettingsChange;
use collab_core::store::{Append, ClaimedOutbox, Credential, Grant, OutboxMessage, OutboxTarget};
use collab_core::{Entity, Error, Event, OutboxId, RoomId, RoomSummary, Seq, Timestamp};
use deadpool_postgres::{Client, Pool, Transaction};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::read::{kind_from, limit_value, seq_from, seq_value, uuid};
use crate::{PostgresError, postgres};

/// An append waiting for the writer, and where its answer goes.
struct Job {
    append: Append,
    /// A plain append's values (see [`is_plain`]), encoded by its caller.
    plain: Option<PlainRows>,
    reply: oneshot::Sender<Result<(), Error>>,
}

/// A plain append's values as [`WRITE_PLAIN`] takes them. Each caller encodes its own append
/// before it joins a group, so that the JSON and the columns are made by the callers in
/// parallel rather than by the writer while the database waits for the group, and so that an
/// append that cannot be encoded fails alone.
struct PlainRows {
    room: RoomRow,
    expected: i64,
    wake_up: String,
    events: EventColumns,
}

impl PlainRows {
    fn of(append: &Append) -> Result<Self, Error> {
        let mut events = EventColumns::default();
        events.push(append)?;
        Ok(Self {
            room: RoomRow::of(&append.summary)?,
            expected: seq_value(append.expected)?,
            wake_up: wake_up(&append.summary),
            events,
        })
    }
}

/// The handle to the writer task. When the last one is dropped, the task ends after the queued
/// appends.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    pub(crate) fn start(pool: Pool, channel: String, max_batch: usize) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(pool, channel, queue, max_batch));
        Self { jobs }
    }

    /// Writes `append` in the next group commit.
    pub(crate) async fn append(&self, append: Append) -> Result<(), Error> {
        let plain = match is_plain(&append) {
            true => Some(PlainRows::of(&append)?),
            false => None,
        };
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { append, plain, reply })
            .map_err(|_| Error::from(PostgresError::WriterGone))?;
        answer.await.map_err(|_| Error::from(PostgresError::WriterGone))?
    }
}

async fn write_loop(pool: Pool, channel: String, mut queue: mpsc::UnboundedReceiver<Job>, max_batch: usize) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        take_waiting(&mut queue, &mut batch, max_batch);
        // The callers the last group answered are runnable now: letting them ask again before
        // the group is closed keeps the first of them from forming a group of its own (which
        // costs a commit) while the others wait for it. Measured: with 64 callers, groups of
        // 63 and 1 in turn without this. (A second group in flight on another connection
        // measured slower.)
        while batch.len() < max_batch {
            let before = batch.len();
            tokio::task::yield_now().await;
            take_waiting(&mut queue, &mut batch, max_batch);
            if batch.len() == before {
                break;
            }
        }
        metrics::histogram!(collab_core::metrics::GROUP_COMMIT_APPENDS, "store" => "postgres")
            .record(batch.len() as f64);
        commit_batch(&pool, &channel, batch).await;
    }
}

/// Moves the appends waiting in `queue` to `batch`, up to `max_batch` in all.
fn take_waiting(queue: &mut mpsc::UnboundedReceiver<Job>, batch: &mut Vec<Job>, max_batch: usize) {
    while batch.len() < max_batch {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Why a group was not committed.
enum GroupFailure {
    /// The database refused a statement before the commit: nothing was written, and each append
    /// can be tried again on its own.
    Refused(tokio_postgres::Error),
    /// No connection, a connection lost, or a commit whose outcome is unknown: the same error
    /// for every append of the group.
    Failed(PostgresError),
}

/// A value that cannot go to the database or come back from it as it is (a seq beyond `i64`,
/// JSON that does not encode, a stored seq out of range): the whole group fails with it.
fn unusable(e: Error) -> GroupFailure {
    GroupFailure::Failed(PostgresError::Corrupt {
        what: "a value of the group".to_owned(),
        source: Some(e.into()),
    })
}

/// A statement error: refused by the database, or the connection's failure.
fn refused(e: tokio_postgres::Error) -> GroupFailure {
    if e.as_db_error().is_some() {
        GroupFailure::Refused(e)
    } else {
        GroupFailure::Failed(PostgresError::Postgres(e))
    }
}

/// Commits `batch`, and answers each job: the appends that only move a room forward in one
/// statement (see [`write_plain`]), the others in one transaction (see [`write_group`]).
async fn commit_batch(pool: &Pool, channel: &str, batch: Vec<Job>) {
    let mut client = match pool.get().await {
        Ok(client) => client,
        Err(e) => {
            let e = Arc::new(PostgresError::Pool(e));
            for job in batch {
                let _ = job.reply.send(Err(PostgresError::Shared(e.clone()).into()));
            }
            return;
        }
    };
    let (plain, general) = split(batch);
    if !plain.is_empty() {
        commit_group(&mut client, channel, plain, Path::Plain).await;
    }
    if !general.is_empty() {
        commit_group(&mut client, channel, general, Path::General).await;
    }
}

/// How a group is written.
#[derive(Clone, Copy)]
enum Path {
    /// [`write_plain`]: one autocommitted statement.
    Plain,
    /// [`write_group`]: a transaction that checks each append in Rust.
    General,
}

/// Splits `batch` into the plain appends (see [`is_plain`]) of rooms no other append of the
/// batch touches, and the rest. The two share no room, so the order between them is free.
fn split(batch: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut appends_per_room: HashMap<RoomId, usize> = HashMap::with_capacity(batch.len());
    for job in &batch {
        *appends_per_room.entry(job.append.room).or_default() += 1;
    }
    batch
        .into_iter()
        .partition(|job| job.plain.is_some() && appends_per_room.get(&job.append.room) == Some(&1))
}

/// Whether `append` only adds events to an existing room: no room creation, outbox row,
/// completed outbox row or credential, whose checks need the general path.
fn is_plain(append: &Append) -> bool {
    append.expected != Seq::ZERO
        && append.outbox.is_empty()
        && append.completed_outbox.is_empty()
        && append.credentials.is_empty()
}

/// Writes `jobs` as one group on `path`, and answers each job. When the database refuses the
/// group, each append is tried again in a transaction of its own, so that only the appends at
/// fault fail.
async fn commit_group(client: &mut Client, channel: &str, jobs: Vec<Job>, path: Path) {
    let (mut appends, mut plain, mut replies) = (Vec::new(), Vec::new(), Vec::new());
    for job in jobs {
        appends.push(job.append);
        plain.extend(job.plain);
        replies.push(job.reply);
    }
    let written = match path {
        Path::Plain => write_plain(client, channel, &appends, plain).await,
        Path::General => write_group(client, channel, &appends).await,
    };
    let results = match written {
        Ok(results) => results,
        Err(GroupFailure::Failed(e)) => shared_failure(e, appends.len()),
        Err(GroupFailure::Refused(e)) if appends.len() == 1 => vec![Err(postgres(e))],
        Err(GroupFailure::Refused(e)) => {
            tracing::debug!(error = %e, appends = appends.len(), "postgres refused a group; one append at a time");
            let mut results = Vec::with_capacity(appends.len());
            for append in &appends {
                results.push(match write_group(client, channel, std::slice::from_ref(append)).await {
                    Ok(mut one) => one.pop().unwrap_or(Ok(())),
                    Err(GroupFailure::Refused(e)) => Err(postgres(e)),
                    Err(GroupFailure::Failed(e)) => Err(e.into()),
                });
            }
            results
        }
    };
    for (reply, result) in replies.into_iter().zip(results) {
        // A caller that went away no longer needs its answer.
        let _ = reply.send(result);
    }
}

/// The same failure, `count` times.
fn shared_failure(e: PostgresError, count: usize) -> Vec<Result<(), Error>> {
    let e = Arc::new(e);
    (0..count)
        .map(|_| Err(PostgresError::Shared(e.clone()).into()))
        .collect()
}

/// What the database holds, as far as a group's appends are concerned, once their rows are
/// locked. Each accepted append moves it forward, so that the next one of the group is checked
/// against the state it will really meet.
struct Current {
    seqs: HashMap<RoomId, Seq>,
    outbox: HashSet<OutboxId>,
    credentials: HashSet<[u8; 32]>,
}

impl Current {
    /// Checks `append` and, when it passes, applies it.
    fn accept(&mut self, append: &Append) -> Result<(), Error> {
        let seq = self.seqs.get(&append.room).copied().unwrap_or(Seq::ZERO);
        if seq != append.expected {
            return Err(seq_conflict(append, seq));
        }
        let mut completed = HashSet::new();
        if !append
            .completed_outbox
            .iter()
            .all(|id| self.outbox.contains(id) && completed.insert(*id))
        {
            return Err(Error::conflict("a completed outbox row is gone"));
        }
        let mut hashes = HashSet::new();
        if !append
            .credentials
            .iter()
            .all(|c| !self.credentials.contains(c.hash.as_bytes()) && hashes.insert(*c.hash.as_bytes()))
        {
            return Err(Error::conflict("a credential with this hash exists"));
        }
        self.seqs.insert(append.room, append.summary.seq);
        self.outbox.retain(|id| !completed.contains(id));
        self.credentials.extend(hashes);
        Ok(())
    }
}

/// The answer to `append` when its room is at `seq`, not at the expected one.
fn seq_conflict(append: &Append, seq: Seq) -> Error {
    Error::conflict(format!("room {} is at seq {seq}, not {}", append.room, append.expected))
}

/// Writes plain appends of distinct rooms (see [`split`]), whose values are `rows`, in one
/// autocommitted statement, [`WRITE_PLAIN`]: no `BEGIN` or `COMMIT` round trips, and no wait
/// for a check in Rust. Returns each append's result.
async fn write_plain(
    client: &mut Client,
    channel: &str,
    appends: &[Append],
    rows: Vec<PlainRows>,
) -> Result<Vec<Result<(), Error>>, GroupFailure> {
    let mut rooms = RoomColumns::default();
    let mut expected = Vec::with_capacity(rows.len());
    let mut wake_ups = Vec::with_capacity(rows.len());
    let mut events = EventColumns::default();
    for row in rows {
        rooms.push(row.room);
        expected.push(row.expected);
        wake_ups.push(row.wake_up);
        events.extend(row.events);
    }
    let statement = client.prepare_cached(WRITE_PLAIN).await.map_err(refused)?;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&channel];
    params.extend(rooms.params());
    params.extend([&expected as &(dyn ToSql + Sync), &wake_ups]);
    params.extend(events.params());
    let rows = client.query(&statement, &params).await.map_err(refused)?;
    // Each locked room: its seq before the statement, and whether the statement wrote it.
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let room: Uuid = row.try_get(0).map_err(refused)?;
        let seq = seq_from(row.try_get(1).map_err(refused)?).map_err(unusable)?;
        let written: bool = row.try_get(2).map_err(refused)?;
        found.insert(RoomId::from_u128(room.as_u128()), (seq, written));
    }
    Ok(appends
        .iter()
        .map(|append| match found.get(&append.room) {
            Some((_, true)) => Ok(()),
            Some((seq, false)) => Err(seq_conflict(append, *seq)),
            None => Err(seq_conflict(append, Seq::ZERO)),
        })
        .collect())
}

/// The plain appends of a group in one statement. `locked` locks the rooms in id order (the
/// same on every server, so that groups never deadlock) and reads their seqs as they are now,
/// after any concurrent commit; `updated` moves forward the rooms whose seq is the expected one;
/// `inserted` writes the events of those rooms only; `notified` sends the wake-ups of the rooms
/// written (as [`NOTIFY_GROUP`] does), delivered when the statement commits, and only if it
/// does (none with an empty channel: the store was told not to notify); the final `SELECT`
/// answers for every locked room. A room missing from the answer does
/// not exist.
pub(crate) const WRITE_PLAIN: &str = "WITH input AS ( \
         SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], \
                              $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
                              $14::text[], $15::bigint[], $16::bigint[], $17::text[]) \
             AS i (room, tenant, agent, status, seq, created_at, last_activity, first_lc, last_lc, full_lc, \
                   phone, email, summary, ended_at, expected, wake_up)), \
     locked AS MATERIALIZED ( \
         SELECT room, seq FROM rooms WHERE room = ANY($2::uuid[]) ORDER BY room FOR UPDATE), \
     updated AS ( \
         UPDATE rooms SET status = i.status, seq = i.seq, last_activity = i.last_activity, \
                first_lc = i.first_lc, last_lc = i.last_lc, full_lc = i.full_lc, phone = i.phone, \
                email = i.email, summary = i.summary, ended_at = i.ended_at \
         FROM locked l JOIN input i ON i.room = l.room AND i.expected = l.seq \
         WHERE rooms.room = l.room \
         RETURNING rooms.room, i.wake_up), \
     inserted AS ( \
         INSERT INTO events (room, seq, data) \
         SELECT * FROM unnest($18::uuid[], $19::bigint[], $20::text[]) AS e (room, seq, data) \
         WHERE e.room IN (SELECT room FROM updated)), \
     notified AS ( \
         SELECT count(pg_notify($1, wake_ups)) AS notifies FROM ( \
             SELECT string_agg(wake_up, ' ') AS wake_ups \
             FROM (SELECT wake_up, (row_number() OVER () - 1) / 100 AS part FROM updated \
                   WHERE $1 <> '') AS w \
             GROUP BY part) AS parts) \
     SELECT l.room, l.seq, u.room IS NOT NULL, (SELECT notifies FROM notified) \
     FROM locked l LEFT JOIN updated u ON u.room = l.room";

/// The wake-ups of a group's rooms ($2): one notification per 100 rooms, their wake-ups
/// separated by spaces. Each is at most 56 bytes (a UUID, `:`, a seq), so a notification stays
/// under PostgreSQL's 8,000-byte payload limit. Notifications are queued while the committing
/// transaction holds the database-wide notification lock: one per group keeps that lock short.
const NOTIFY_GROUP: &str = "SELECT pg_notify($1, string_agg(wake_up, ' ')) \
     FROM (SELECT wake_up, (ordinality - 1) / 100 AS part \
           FROM unnest($2::text[]) WITH ORDINALITY AS w (wake_up, ordinality)) AS w \
     GROUP BY part";

/// The wake-up of the servers for `summary`'s room: the room and its new seq.
fn wake_up(summary: &RoomSummary) -> String {
    format!("{}:{}", summary.room, summary.seq)
}

/// The columns of the events a group writes.
#[derive(Default)]
struct EventColumns {
    room: Vec<Uuid>,
    seq: Vec<i64>,
    data: Vec<String>,
}

impl EventColumns {
    fn push(&mut self, append: &Append) -> Result<(), Error> {
        for event in &append.events {
            self.room.push(uuid(append.room.as_u128()));
            self.seq.push(seq_value(event.seq)?);
            self.data
                .push(serde_json::to_string(event).map_err(|e| Error::backend("postgres", e))?);
        }
        Ok(())
    }

    fn extend(&mut self, other: Self) {
        self.room.extend(other.room);
        self.seq.extend(other.seq);
        self.data.extend(other.data);
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 3] {
        [&self.room, &self.seq, &self.data]
    }
}

/// Writes `appends` in one transaction: locks their rooms and completed outbox rows, checks
/// each append in order, writes those that pass with one statement per table, wakes the servers
/// and commits. Returns each append's result.
async fn write_group(
    client: &mut Client,
    channel: &str,
    appends: &[Append],
) -> Result<Vec<Result<(), Error>>, GroupFailure> {
    let tx = client.transaction().await.map_err(refused)?;
    let mut current = lock(&tx, appends).await?;
    let results: Vec<Result<(), Error>> = appends.iter().map(|a| current.accept(a)).collect();
    let accepted: Vec<&Append> = appends
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(a, _)| a)
        .collect();
    if accepted.is_empty() {
        tx.rollback()
            .await
            .map_err(|e| GroupFailure::Failed(PostgresError::Postgres(e)))?;
        return Ok(results);
    }
    write_accepted(&tx, channel, &accepted).await?;
    tx.commit()
        .await
        .map_err(|e| GroupFailure::Failed(PostgresError::Postgres(e)))?;
    Ok(results)
}

/// Locks the rooms of `appends` (in id order, the same on every server, so that groups never
/// deadlock) and the outbox rows they complete, and reads which of their credentials exist.
async fn lock(tx: &Transaction<'_>, appends: &[Append]) -> Result<Current, GroupFailure> {
    let mut rooms: Vec<Uuid> = appends.iter().map(|a| uuid(a.room.as_u128())).collect();
    rooms.sort_unstable();
    rooms.dedup();
    let mut completed: Vec<Uuid> = appends
        .iter()
        .flat_map(|a| a.completed_outbox.iter().map(|id| uuid(id.as_u128())))
        .collect();
    completed.sort_unstable();
    completed.dedup();
    let hashes: Vec<&[u8]> = appends
        .iter()
        .flat_map(|a| a.credentials.iter().map(|c| &c.hash.as_bytes()[..]))
        .collect();
    let lock_rooms = tx
        .prepare_cached("SELECT room, seq FROM rooms WHERE room = ANY($1) ORDER BY room FOR UPDATE")
        .await
        .map_err(refused)?;
    let lock_outbox = tx
        .prepare_cached("SELECT id FROM outbox WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .await
        .map_err(refused)?;
    let find_credentials = tx
        .prepare_cached("SELECT hash FROM credentials WHERE hash = ANY($1)")
        .await
        .map_err(refused)?;
    // Sent together: one round trip.
    let (rooms, outbox, credentials) = tokio::try_join!(
        async { tx.query(&lock_rooms, &[&rooms]).await },
        async {
            if completed.is_empty() {
                return Ok(Vec::new());
            }
            tx.query(&lock_outbox, &[&completed]).await
        },
        async {
            if hashes.is_empty() {
                return Ok(Vec::new());
            }
            tx.query(&find_credentials, &[&hashes]).await
        },
    )
    .map_err(refused)?;
    let mut current = Current {
        seqs: HashMap::with_capacity(rooms.len()),
        outbox: HashSet::with_capacity(outbox.len()),
        credentials: HashSet::with_capacity(credentials.len()),
    };
    for row in rooms {
        let room: Uuid = row.try_get(0).map_err(refused)?;
        let seq = seq_from(row.try_get(1).map_err(refused)?).map_err(unusable)?;
        current.seqs.insert(RoomId::from_u128(room.as_u128()), seq);
    }
    for row in outbox {
        let id: Uuid = row.try_get(0).map_err(refused)?;
        current.outbox.insert(OutboxId::from_u128(id.as_u128()));
    }
    for row in credentials {
        let hash: &[u8] = row.try_get(0).map_err(refused)?;
        if let Ok(hash) = <[u8; 32]>::try_from(hash) {
            current.credentials.insert(hash);
        }
    }
    Ok(current)
}

/// The columns of the rooms a group writes, one entry per room.
#[derive(Default)]
struct RoomColumns {
    room: Vec<Uuid>,
    tenant: Vec<String>,
    agent: Vec<String>,
    status: Vec<&'static str>,
    seq: Vec<i64>,
    created_at: Vec<i64>,
    last_activity: Vec<i64>,
    first_lc: Vec<Option<String>>,
    last_lc: Vec<Option<String>>,
    full_lc: Vec<Option<String>>,
    phone: Vec<Option<String>>,
    email: Vec<Option<String>>,
    summary: Vec<String>,
    ended_at: Vec<Option<i64>>,
}

/// One room's columns (see [`RoomColumns`]).
struct RoomRow {
    room: Uuid,
    tenant: String,
    agent: String,
    status: &'static str,
    seq: i64,
    created_at: i64,
    last_activity: i64,
    first_lc: Option<String>,
    last_lc: Option<String>,
    full_lc: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    summary: String,
    ended_at: Option<i64>,
}

impl RoomRow {
    fn of(summary: &RoomSummary) -> Result<Self, Error> {
        let customer = summary.customer.as_ref();
        Ok(Self {
            room: uuid(summary.room.as_u128()),
            tenant: summary.tenant.as_str().to_owned(),
            agent: summary.agent.as_str().to_owned(),
            status: summary.status.as_str(),
            seq: seq_value(summary.seq)?,
            created_at: summary.created_at.unix_millis(),
            last_activity: summary.last_activity.unix_millis(),
            first_lc: customer.map(|c| c.first_name.as_str().to_lowercase()),
            last_lc: customer.map(|c| c.last_name.as_str().to_lowercase()),
            full_lc: customer.map(|c| c.full_name().to_lowercase()),
            phone: customer.and_then(|c| c.phone.as_ref()).map(|p| p.as_str().to_owned()),
            email: customer.and_then(|c| c.email.as_ref()).map(|e| e.match_key()),
            summary: serde_json::to_string(summary).map_err(|e| Error::backend("postgres", e))?,
            ended_at: summary.ended_at.map(Timestamp::unix_millis),
        })
    }
}

impl RoomColumns {
    fn push(&mut self, row: RoomRow) {
        self.room.push(row.room);
        self.tenant.push(row.tenant);
        self.agent.push(row.agent);
        self.status.push(row.status);
        self.seq.push(row.seq);
        self.created_at.push(row.created_at);
        self.last_activity.push(row.last_activity);
        self.first_lc.push(row.first_lc);
        self.last_lc.push(row.last_lc);
        self.full_lc.push(row.full_lc);
        self.phone.push(row.phone);
        self.email.push(row.email);
        self.summary.push(row.summary);
        self.ended_at.push(row.ended_at);
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 14] {
        [
            &self.room,
            &self.tenant,
            &self.agent,
            &self.status,
            &self.seq,
            &self.created_at,
            &self.last_activity,
            &self.first_lc,
            &self.last_lc,
            &self.full_lc,
            &self.phone,
            &self.email,
            &self.summary,
            &self.ended_at,
        ]
    }
}

const INSERT_ROOMS: &str = "INSERT INTO rooms (room, tenant, agent, status, seq, created_at, last_activity, \
                                               first_lc, last_lc, full_lc, phone, email, summary, ended_at) \
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], \
                          $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[])";

/// The tenant, agent and creation time of a room never change; the rest follows the summary.
const UPDATE_ROOMS: &str = "UPDATE rooms SET status = u.status, seq = u.seq, last_activity = u.last_activity, \
            first_lc = u.first_lc, last_lc = u.last_lc, full_lc = u.full_lc, phone = u.phone, email = u.email, \
            summary = u.summary, ended_at = u.ended_at \
     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], \
                 $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[]) \
          AS u (room, tenant, agent, status, seq, created_at, last_activity, first_lc, last_lc, full_lc, phone, \
                email, summary, ended_at) \
     WHERE rooms.room = u.room";

/// Writes the accepted appends of a group, one statement per table, sent together.
async fn write_accepted(tx: &Transaction<'_>, channel: &str, accepted: &[&Append]) -> Result<(), GroupFailure> {
    // Each room's last summary; a room the group creates is inserted with it.
    let mut last: HashMap<RoomId, (&RoomSummary, bool)> = HashMap::new();
    for append in accepted {
        let created = append.expected == Seq::ZERO;
        last.entry(append.room)
            .and_modify(|(summary, _)| *summary = &append.summary)
            .or_insert((&append.summary, created));
    }
    let (mut new_rooms, mut changed_rooms) = (RoomColumns::default(), RoomColumns::default());
    let mut wake_ups = Vec::with_capacity(last.len());
    for (summary, created) in last.values() {
        if *created {
            new_rooms.push(RoomRow::of(summary).map_err(unusable)?);
        } else {
            changed_rooms.push(RoomRow::of(summary).map_err(unusable)?);
        }
        wake_ups.push(wake_up(summary));
    }

    let mut events = EventColumns::default();
    let mut completed = Vec::new();
    let (mut credential_hash, mut credential_room, mut grant_kind, mut grant_id) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut outbox = OutboxColumns::default();
    for append in accepted {
        events.push(append).map_err(unusable)?;
        completed.extend(append.completed_outbox.iter().map(|id| uuid(id.as_u128())));
        for credential in &append.credentials {
            let (kind, id) = grant_columns(credential.grant);
            credential_hash.push(&credential.hash.as_bytes()[..]);
            credential_room.push(uuid(credential.room.as_u128()));
            grant_kind.push(kind);
            grant_id.push(id);
        }
        for message in &append.outbox {
            outbox.push(message);
        }
    }

    let insert_rooms = tx.prepare_cached(INSERT_ROOMS).await.map_err(refused)?;
    let update_rooms = tx.prepare_cached(UPDATE_ROOMS).await.map_err(refused)?;
    let insert_events = tx
        .prepare_cached(
            "INSERT INTO events (room, seq, data) SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[])",
        )
        .await
        .map_err(refused)?;
    let delete_outbox = tx.prepare_cached(DELETE_OUTBOX).await.map_err(refused)?;
    let insert_credentials = tx
        .prepare_cached(
            "INSERT INTO credentials (hash, room, grant_kind, grant_id) \
             SELECT * FROM unnest($1::bytea[], $2::uuid[], $3::text[], $4::uuid[])",
        )
        .await
        .map_err(refused)?;
    let insert_outbox = tx.prepare_cached(INSERT_OUTBOX).await.map_err(refused)?;
    // The wake-ups are delivered when the transaction commits, and only if it does.
    let notify = tx.prepare_cached(NOTIFY_GROUP).await.map_err(refused)?;

    let skip = || async { Ok::<u64, tokio_postgres::Error>(0) };
    // Sent together: one round trip. A refused statement fails the group before the commit.
    tokio::try_join!(
        async {
            match new_rooms.room.is_empty() {
                true => skip().await,
                false => tx.execute(&insert_rooms, &new_rooms.params()).await,
            }
        },
        async {
            match changed_rooms.room.is_empty() {
                true => skip().await,
                false => tx.execute(&update_rooms, &changed_rooms.params()).await,
            }
        },
        async {
            match completed.is_empty() {
                true => skip().await,
                false => tx.query_one(&delete_outbox, &[&completed]).await.map(|_| 0),
            }
        },
        async {
            match credential_hash.is_empty() {
                true => skip().await,
                false => {
                    tx.execute(
                        &insert_credentials,
                        &[&credential_hash, &credential_room, &grant_kind, &grant_id],
                    )
                    .await
                }
            }
        },
        async { tx.execute(&insert_events, &events.params()).await },
        async {
            match outbox.id.is_empty() {
                true => skip().await,
                false => tx.execute(&insert_outbox, &outbox.params()).await,
            }
        },
        async {
            match channel.is_empty() {
                true => skip().await,
                false => tx.execute(&notify, &[&channel, &wake_ups]).await,
            }
        },
    )
    .map_err(refused)?;
    Ok(())
}

/// Events redacted per statement of an erasure, so that a long log is not held in memory whole.
const ERASE_PAGE: i64 = 1_000;

/// Writes an erasure in one transaction: its append, checked and written as a group of one,
/// then every earlier event redacted, the room's credentials and outbox rows deleted and its
/// customer columns emptied. The old row versions stay in the table's files until `VACUUM`
/// reclaims them (autovacuum does, in time); no query sees them.
pub(crate) async fn erase(client: &mut Client, channel: &str, erasure: &Append) -> Result<(), Error> {
    let failed = |failure: GroupFailure| match failure {
        GroupFailure::Refused(e) => postgres(e),
        GroupFailure::Failed(e) => e.into(),
    };
    let tx = client.transaction().await.map_err(postgres)?;
    let mut current = lock(&tx, std::slice::from_ref(erasure)).await.map_err(failed)?;
    current.accept(erasure)?;
    let room = uuid(erasure.room.as_u128());
    // The rows queued before the erasure go; its own (its webhooks) stay.
    let delete_outbox = tx
        .prepare_cached("DELETE FROM outbox WHERE room = $1")
        .await
        .map_err(postgres)?;
    tx.execute(&delete_outbox, &[&room]).await.map_err(postgres)?;
    write_accepted(&tx, channel, &[erasure]).await.map_err(failed)?;

    let last = seq_value(erasure.expected)?;
    let page = tx
        .prepare_cached("SELECT seq, data FROM events WHERE room = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4")
        .await
        .map_err(postgres)?;
    let update = tx
        .prepare_cached(
            "UPDATE events SET data = r.data FROM unnest($2::bigint[], $3::text[]) AS r (seq, data) \
             WHERE events.room = $1 AND events.seq = r.seq",
        )
        .await
        .map_err(postgres)?;
    let mut after = 0i64;
    loop {
        let rows = tx
            .query(&page, &[&room, &after, &last, &ERASE_PAGE])
            .await
            .map_err(postgres)?;
        let Some(row) = rows.last() else {
            break;
        };
        after = row.try_get(0).map_err(postgres)?;
        let (mut seqs, mut data) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
        for row in &rows {
            let event: Event = crate::read::json(row.try_get(1).map_err(postgres)?)?;
            let redacted = event.redacted();
            if redacted != event {
                seqs.push(row.try_get::<_, i64>(0).map_err(postgres)?);
                data.push(serde_json::to_string(&redacted).map_err(|e| Error::backend("postgres", e))?);
            }
        }
        if !seqs.is_empty() {
            tx.execute(&update, &[&room, &seqs, &data]).await.map_err(postgres)?;
        }
    }
    for statement in [
        "DELETE FROM credentials WHERE room = $1",
        "UPDATE rooms SET first_lc = NULL, last_lc = NULL, full_lc = NULL, phone = NULL, email = NULL WHERE room = $1",
    ] {
        let statement = tx.prepare_cached(statement).await.map_err(postgres)?;
        tx.execute(&statement, &[&room]).await.map_err(postgres)?;
    }
    tx.commit().await.map_err(postgres)
}

/// Stores a settings change whose version follows the tenant's latest. Two at once: the
/// primary key refuses the second.
pub(crate) async fn change_settings(client: &Client, change: &SettingsChange) -> Result<(), Error> {
    let version = i64::try_from(change.version).map_err(|_| Error::invalid("version", "too large"))?;
    let text = serde_json::to_string(change).map_err(|e| Error::backend("postgres", e))?;
    let statement = client
        .prepare_cached(
            "INSERT INTO tenant_settings (tenant, version, change) \
             SELECT $1::text, $2::bigint, $3::text \
             WHERE (SELECT coalesce(max(version), 0) FROM tenant_settings WHERE tenant = $1::text) = $2::bigint - 1 \
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(postgres)?;
    let inserted = client
        .execute(&statement, &[&change.tenant.as_str(), &version, &text])
        .await
        .map_err(postgres)?;
    if inserted == 0 {
        return Err(Error::conflict("the settings changed meanwhile: read them again"));
    }
    Ok(())
}

/// Writes a merge's two appends in one transaction of its own: both or neither.
pub(crate) async fn merge(
    client: &mut Client,
    channel: &str,
    survivor: &Append,
    absorbed: &Append,
) -> Result<(), Error> {
    let failed = |failure: GroupFailure| match failure {
        GroupFailure::Refused(e) => postgres(e),
        GroupFailure::Failed(e) => e.into(),
    };
    let both = [survivor.clone(), absorbed.clone()];
    let tx = client.transaction().await.map_err(postgres)?;
    let mut current = lock(&tx, &both).await.map_err(failed)?;
    current.accept(survivor)?;
    current.accept(absorbed)?;
    write_accepted(&tx, channel, &[survivor, absorbed])
        .await
        .map_err(failed)?;
    tx.commit().await.map_err(postgres)
}

/// Deletes every row of a room, in one transaction.
pub(crate) async fn purge(client: &mut Client, room: RoomId) -> Result<(), Error> {
    let room = uuid(room.as_u128());
    let tx = client.transaction().await.map_err(postgres)?;
    for statement in [
        "DELETE FROM events WHERE room = $1",
        "DELETE FROM credentials WHERE room = $1",
        "DELETE FROM outbox WHERE room = $1",
        "DELETE FROM rooms WHERE room = $1",
    ] {
        let statement = tx.prepare_cached(statement).await.map_err(postgres)?;
        tx.execute(&statement, &[&room]).await.map_err(postgres)?;
    }
    tx.commit().await.map_err(postgres)
}

fn grant_columns(grant: Grant) -> (&'static str, Uuid) {
    match grant {
        Grant::Invite(invite) => ("invite", uuid(invite.as_u128())),
        Grant::Session(participant) => ("session", uuid(participant.as_u128())),
    }
}

/// In the arrays' order, so that `queued` numbers a room's rows as they were queued.
/// Inserts outbox rows in array order, each parked (migration V6) when a row of its room and
/// subject is queued already, in the table or earlier in the arrays. The caller holds the rooms'
/// row locks, so no concurrent delete can unpark the row before it without seeing it.
const INSERT_OUTBOX: &str = "INSERT INTO outbox (id, room, invite, channel, payload, not_before, parked) \
     SELECT id, room, invite, channel, payload, not_before, \
            row_number() OVER (PARTITION BY room, invite ORDER BY n) > 1 \
            OR EXISTS (SELECT 1 FROM outbox AS queued WHERE queued.room = rows.room AND queued.invite = rows.invite) \
     FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bigint[]) \
          WITH ORDINALITY AS rows (id, room, invite, channel, payload, not_before, n) \
     ORDER BY n";

/// Deletes the outbox rows `$1`, unparks the row queued next for each one's room and subject,
/// and counts the rows deleted. One snapshot for the whole statement: the next row is the first
/// one not deleted. The caller holds the rooms' row locks (see `INSERT_OUTBOX`).
const DELETE_OUTBOX: &str = "WITH gone AS (DELETE FROM outbox WHERE id = ANY($1) RETURNING room, invite), \
          unparked AS (UPDATE outbox SET parked = false \
                       WHERE parked AND queued IN (SELECT (SELECT min(queued) FROM outbox AS next \
                                                           WHERE next.room = gone.room AND next.invite = gone.invite \
                                                             AND next.id <> ALL($1)) \
                                                   FROM gone) \
                       RETURNING 1) \
     SELECT count(*) FROM gone";

/// The columns of outbox rows to insert.
#[derive(Default)]
struct OutboxColumns<'a> {
    id: Vec<Uuid>,
    room: Vec<Uuid>,
    invite: Vec<Uuid>,
    channel: Vec<&'static str>,
    payload: Vec<&'a str>,
    not_before: Vec<i64>,
}

impl<'a> OutboxColumns<'a> {
    fn push(&mut self, message: &'a OutboxMessage) {
        self.id.push(uuid(message.id.as_u128()));
        self.room.push(uuid(message.room.as_u128()));
        self.invite.push(uuid(message.target.subject()));
        self.channel.push(message.target.kind().as_str());
        self.payload.push(&message.payload);
        self.not_before.push(message.not_before.unix_millis());
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.id,
            &self.room,
            &self.invite,
            &self.channel,
            &self.payload,
            &self.not_before,
        ]
    }
}

pub(crate) async fn add_credential(client: &Client, credential: &Credential) -> Result<(), Error> {
    let (kind, id) = grant_columns(credential.grant);
    let statement = client
        .prepare_cached("INSERT INTO credentials (hash, room, grant_kind, grant_id) VALUES ($1, $2, $3, $4)")
        .await
        .map_err(postgres)?;
    client
        .execute(
            &statement,
            &[
                &&credential.hash.as_bytes()[..],
                &uuid(credential.room.as_u128()),
                &kind,
                &id,
            ],
        )
        .await
        .map_err(|e| match postgres(e) {
            Error::Conflict { .. } => Error::conflict("a credential with this hash exists"),
            other => other,
        })?;
    Ok(())
}

/// Claims due rows. `SKIP LOCKED` passes over rows another dispatcher is claiming right now,
/// and the lease keeps them from being claimed again until it runs out.
pub(crate) async fn claim_outbox(
    client: &Client,
    now: Timestamp,
    lease: Duration,
    limit: usize,
) -> Result<Vec<ClaimedOutbox>, Error> {
    let until = now.saturating_add(lease).unix_millis();
    let statement = client
        .prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, leased_until = $2 \
             WHERE id IN (SELECT id FROM outbox \
                          WHERE NOT parked AND not_before <= $1 AND (leased_until IS NULL OR leased_until <= $1) \
                          ORDER BY not_before, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, room, invite, channel, payload, not_before, attempts",
        )
        .await
        .map_err(postgres)?;
    let rows = client
        .query(&statement, &[&now.unix_millis(), &until, &limit_value(limit)])
        .await
        .map_err(postgres)?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let get_id = |i: usize| row.try_get::<_, Uuid>(i).map(|id| id.as_u128()).map_err(postgres);
        let attempts: i32 = row.try_get(6).map_err(postgres)?;
        claimed.push(ClaimedOutbox {
            message: OutboxMessage {
                id: OutboxId::from_u128(get_id(0)?),
                room: RoomId::from_u128(get_id(1)?),
                target: OutboxTarget::from_parts(kind_from(row.try_get(3).map_err(postgres)?)?, get_id(2)?),
                payload: row.try_get(4).map_err(postgres)?,
                not_before: Timestamp::from_unix_millis(row.try_get(5).map_err(postgres)?),
            },
            attempts: u32::try_from(attempts).unwrap_or(0),
        });
    }
    // RETURNING gives no order.
    claimed.sort_by_key(|c| (c.message.not_before, c.message.id));
    Ok(claimed)
}

pub(crate) async fn reschedule_outbox(client: &Client, id: OutboxId, not_before: Timestamp) -> Result<(), Error> {
    let statement = client
        .prepare_cached("UPDATE outbox SET not_before = $2, leased_until = NULL WHERE id = $1")
        .await
        .map_err(postgres)?;
    let changed = client
        .execute(&statement, &[&uuid(id.as_u128()), &not_before.unix_millis()])
        .await
        .map_err(postgres)?;
    if changed == 0 {
        return Err(Error::NotFound {
            what: Entity::OutboxRow,
        });
    }
    Ok(())
}

/// Deletes an outbox row under its room's row lock, which appends to the room take too: a row
/// queued by a concurrent append is then either seen and unparked, or queued after the delete
/// and not parked behind it (see `INSERT_OUTBOX`).
pub(crate) async fn delete_outbox(client: &mut Client, id: OutboxId) -> Result<(), Error> {
    let tx = client.transaction().await.map_err(postgres)?;
    let lock_room = tx
        .prepare_cached("SELECT 1 FROM rooms WHERE room = (SELECT room FROM outbox WHERE id = $1) FOR UPDATE")
        .await
        .map_err(postgres)?;
    let delete = tx.prepare_cached(DELETE_OUTBOX).await.map_err(postgres)?;
    let id = uuid(id.as_u128());
    let ids = vec![id];
    let lock_params: [&(dyn ToSql + Sync); 1] = [&id];
    let delete_params: [&(dyn ToSql + Sync); 1] = [&ids];
    // Sent together; the delete starts, and takes its snapshot, once the lock is held.
    let (_, removed) = tokio::try_join!(
        tx.query(&lock_room, &lock_params),
        tx.query_one(&delete, &delete_params)
    )
    .map_err(postgres)?;
    let removed: i64 = removed.try_get(0).map_err(postgres)?;
    tx.commit().await.map_err(postgres)?;
    if removed == 0 {
        return Err(Error::NotFound {
            what: Entity::OutboxRow,
        });
    }
    Ok(())
}

/// Deletes the counter hits at or before `before`, of every key.
pub(crate) async fn forget_hits(client: &Client, before: Timestamp) -> Result<u64, Error> {
    let statement = client
        .prepare_cached("DELETE FROM counter_hits WHERE at <= $1")
        .await
        .map_err(postgres)?;
    client
        .execute(&statement, &[&before.unix_millis()])
        .await
        .map_err(postgres)
}

/// Counts a hit. The key's advisory lock makes concurrent hits on one key (from any server)
/// take turns, so that no more than `limit` pass.
pub(crate) async fn hit(
    client: &mut Client,
    key: &str,
    now: Timestamp,
    window: Duration,
    limit: u32,
) -> Result<Hit, Error> {
    let tx = client.transaction().await.map_err(postgres)?;
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .await
        .map_err(postgres)?;
    let forget = tx
        .prepare_cached("DELETE FROM counter_hits WHERE key = $1 AND at <= $2")
        .await
        .map_err(postgres)?;
    let count = tx
        .prepare_cached("SELECT count(*), min(at) FROM counter_hits WHERE key = $1 AND at > $2")
        .await
        .map_err(postgres)?;
    let insert = tx
        .prepare_cached("INSERT INTO counter_hits (key, at) VALUES ($1, $2)")
        .await
        .map_err(postgres)?;
    let forget_before = now.saturating_sub(MAX_COUNTER_WINDOW).unix_millis();
    let start = now.saturating_sub(window).unix_millis();
    let (_, _, row) = tokio::try_join!(
        async { tx.execute(&lock, &[&key]).await },
        async { tx.execute(&forget, &[&key, &forget_before]).await },
        async { tx.query_one(&count, &[&key, &start]).await },
    )
    .map_err(postgres)?;
    let in_window: i64 = row.try_get(0).map_err(postgres)?;
    let oldest: Option<i64> = row.try_get(1).map_err(postgres)?;
    if in_window >= i64::from(limit) {
        tx.rollback().await.map_err(postgres)?;
        let oldest = Timestamp::from_unix_millis(oldest.unwrap_or(now.unix_millis()));
        return Ok(Hit::Refused {
            retry_after: oldest.saturating_add(window).since(now),
        });
    }
    tx.execute(&insert, &[&key, &now.unix_millis()])
        .await
        .map_err(postgres)?;
    tx.commit().await.map_err(postgres)?;
    Ok(Hit::Counted {
        count: u32::try_from(in_window + 1).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wake-ups per notification, as both statements that notify write it.
    const WAKE_UPS_PER_NOTIFY: usize = 100;

    #[test]
    fn a_notification_of_a_group_fits_the_payload_limit() {
        let longest = format!("{}:{}", RoomId::from_u128(u128::MAX), i64::MAX);
        assert!(WAKE_UPS_PER_NOTIFY * (longest.len() + 1) < 8_000);
        let split = format!("/ {WAKE_UPS_PER_NOTIFY} AS part");
        assert!(WRITE_PLAIN.contains(&split), "the plain statement splits as documented");
        assert!(
            NOTIFY_GROUP.contains(&split),
            "the group statement splits as documented"
        );
    }
}
