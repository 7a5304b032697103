//! The queries that only read, and the conversions between the core's types and columns.

use collab_core::settings::SettingsChange;
use collab_core::store::{Credential, EndedRooms, Grant, OutboxKind, OutboxStats, RoomPage, RoomQuery};
use collab_core::{Error, Event, InviteId, ParticipantId, RoomId, RoomSummary, Seq, TenantId, Timestamp, TokenHash};
use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::{PostgresError, postgres};

/// An id as stored: a `uuid` column.
pub(crate) fn uuid(id: u128) -> Uuid {
    Uuid::from_u128(id)
}

pub(crate) fn seq_value(seq: Seq) -> Result<i64, Error> {
    i64::try_from(seq.get()).map_err(|_| Error::invalid("seq", "too large"))
}

pub(crate) fn seq_from(value: i64) -> Result<Seq, Error> {
    u64::try_from(value)
        .map(Seq::new)
        .map_err(|_| corrupt(format!("seq {value}"), None))
}

pub(crate) fn limit_value(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// An outbox row's kind, from its `channel` column.
pub(crate) fn kind_from(name: &str) -> Result<OutboxKind, Error> {
    OutboxKind::parse(name).ok_or_else(|| corrupt(format!("outbox kind {name:?}"), None))
}

/// A stored value this version cannot read back.
pub(crate) fn corrupt(what: String, source: Option<collab_core::BoxError>) -> Error {
    PostgresError::Corrupt { what, source }.into()
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| corrupt("stored JSON".to_owned(), Some(e.into())))
}

/// Runs `sql` and parses its first column, JSON text, into `T`s.
async fn collect_json<T: serde::de::DeserializeOwned>(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<T>, Error> {
    let statement = client.prepare_cached(sql).await.map_err(postgres)?;
    let rows = client.query(&statement, params).await.map_err(postgres)?;
    rows.iter()
        .map(|row| json(row.try_get::<_, &str>(0).map_err(postgres)?))
        .collect()
}

pub(crate) async fn events_after(client: &Client, room: RoomId, after: Seq, limit: usize) -> Result<Vec<Event>, Error> {
    let after = i64::try_from(after.get()).unwrap_or(i64::MAX);
    collect_json(
        client,
        "SELECT data FROM events WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        &[&uuid(room.as_u128()), &after, &limit_value(limit)],
    )
    .await
}

pub(crate) async fn latest_events(client: &Client, room: RoomId, limit: usize) -> Result<Vec<Event>, Error> {
    collect_json(
        client,
        "SELECT data FROM events WHERE room = $1 ORDER BY seq DESC LIMIT $2",
        &[&uuid(room.as_u128()), &limit_value(limit)],
    )
    .await
}

pub(crate) async fn summary(client: &Client, room: RoomId) -> Result<Option<RoomSummary>, Error> {
    let mut found: Vec<RoomSummary> = collect_json(
        client,
        "SELECT summary FROM rooms WHERE room = $1",
        &[&uuid(room.as_u128())],
    )
    .await?;
    Ok(found.pop())
}

/// The first text after every text that starts with `prefix`, in byte order (the name columns
/// are `COLLATE "C"`): the prefix followed by the highest code point.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

pub(crate) async fn list_rooms(client: &Client, tenant: &TenantId, query: &RoomQuery) -> Result<RoomPage, Error> {
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(tenant.as_str().to_owned())];
    let mut sql = String::from("SELECT summary FROM rooms WHERE tenant = $1");
    let mut bind = |value: Box<dyn ToSql + Sync + Send>| {
        values.push(value);
        format!("${}", values.len())
    };
    if let Some(prefix) = query.normalized_name_prefix() {
        // One index range per name column; the planner combines them.
        let (start, end) = (bind(Box::new(prefix.clone())), bind(Box::new(prefix_end(&prefix))));
        sql.push_str(&format!(
            " AND ((first_lc >= {start} AND first_lc < {end}) OR (last_lc >= {start} AND last_lc < {end}) \
               OR (full_lc >= {start} AND full_lc < {end}))"
        ));
    }
    if let Some(agent) = &query.agent {
        sql.push_str(&format!(" AND agent = {}", bind(Box::new(agent.as_str().to_owned()))));
    }
    if let Some(status) = query.status {
        sql.push_str(&format!(" AND status = {}", bind(Box::new(status.as_str().to_owned()))));
    }
    if let Some(phone) = &query.phone {
        sql.push_str(&format!(" AND phone = {}", bind(Box::new(phone.as_str().to_owned()))));
    }
    if let Some(email) = &query.email {
        sql.push_str(&format!(" AND email = {}", bind(Box::new(email.match_key()))));
    }
    if let Some(after) = query.after {
        let created = bind(Box::new(after.created_at.unix_millis()));
        let room = bind(Box::new(uuid(after.room.as_u128())));
        sql.push_str(&format!(" AND (created_at, room) < ({created}, {room})"));
    }
    // One more than asked, to know whether a next page exists.
    let limit = bind(Box::new(limit_value(query.limit.saturating_add(1))));
    sql.push_str(&format!(" ORDER BY created_at DESC, room DESC LIMIT {limit}"));
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
    let rooms: Vec<RoomSummary> = collect_json(client, &sql, &params).await?;
    Ok(RoomPage::from_one_more(rooms, query.limit))
}

/// Up to `limit` settings changes of `tenant`, newest first.
pub(crate) async fn settings_changes(
    client: &Client,
    tenant: &TenantId,
    limit: usize,
) -> Result<Vec<SettingsChange>, Error> {
    let statement = client
        .prepare_cached("SELECT change FROM tenant_settings WHERE tenant = $1 ORDER BY version DESC LIMIT $2")
        .await
        .map_err(postgres)?;
    let rows = client
        .query(&statement, &[&tenant.as_str(), &limit_value(limit)])
        .await
        .map_err(postgres)?;
    rows.iter()
        .map(|row| json(row.try_get::<_, &str>(0).map_err(postgres)?))
        .collect()
}

pub(crate) async fn idle_rooms(client: &Client, idle_since: Timestamp, limit: usize) -> Result<Vec<RoomId>, Error> {
    let statement = client
        .prepare_cached(
            // The index has the minute (see migration V2); ordered by the minute first, the rows
            // come presorted by it, in the same order as by last_activity alone.
            "SELECT room FROM rooms \
             WHERE status = 'active' AND activity_minute <= $1::bigint / 60000 AND last_activity <= $1 \
             ORDER BY activity_minute, last_activity, room LIMIT $2",
        )
        .await
        .map_err(postgres)?;
    let rows = client
        .query(&statement, &[&idle_since.unix_millis(), &limit_value(limit)])
        .await
        .map_err(postgres)?;
    rows.iter()
        .map(|row| {
            Ok(RoomId::from_u128(
                row.try_get::<_, Uuid>(0).map_err(postgres)?.as_u128(),
            ))
        })
        .collect()
}

pub(crate) async fn ended_rooms(client: &Client, query: &EndedRooms) -> Result<Vec<RoomId>, Error> {
    let ended_before = query.ended_before.unix_millis();
    let limit = limit_value(query.limit);
    let rows = match &query.tenant {
        Some(tenant) => {
            let statement = client
                .prepare_cached(
                    "SELECT room FROM rooms WHERE ended_at <= $1 AND tenant = $2 AND status <> 'draft' \
                     ORDER BY ended_at, room LIMIT $3",
                )
                .await
                .map_err(postgres)?;
            client
                .query(&statement, &[&ended_before, &tenant.as_str(), &limit])
                .await
        }
        None => {
            let except: Vec<&str> = query.except.iter().map(TenantId::as_str).collect();
            let statement = client
                .prepare_cached(
                    "SELECT room FROM rooms WHERE ended_at <= $1 AND tenant <> ALL($2::text[]) AND status <> 'draft' \
                     ORDER BY ended_at, room LIMIT $3",
                )
                .await
                .map_err(postgres)?;
            client.query(&statement, &[&ended_before, &except, &limit]).await
        }
    }
    .map_err(postgres)?;
    rows.iter()
        .map(|row| {
            Ok(RoomId::from_u128(
                row.try_get::<_, Uuid>(0).map_err(postgres)?.as_u128(),
            ))
        })
        .collect()
}

pub(crate) async fn credential(client: &Client, hash: &TokenHash) -> Result<Option<Credential>, Error> {
    let statement = client
        .prepare_cached("SELECT room, grant_kind, grant_id FROM credentials WHERE hash = $1")
        .await
        .map_err(postgres)?;
    let Some(row) = client
        .query_opt(&statement, &[&&hash.as_bytes()[..]])
        .await
        .map_err(postgres)?
    else {
        return Ok(None);
    };
    let room: Uuid = row.try_get(0).map_err(postgres)?;
    let kind: &str = row.try_get(1).map_err(postgres)?;
    let id: Uuid = row.try_get(2).map_err(postgres)?;
    let grant = match kind {
        "invite" => Grant::Invite(InviteId::from_u128(id.as_u128())),
        "session" => Grant::Session(ParticipantId::from_u128(id.as_u128())),
        other => return Err(corrupt(format!("grant kind {other:?}"), None)),
    };
    Ok(Some(Credential {
        hash: *hash,
        room: RoomId::from_u128(room.as_u128()),
        grant,
    }))
}

pub(crate) async fn recent_hits(client: &Client, key: &str, since: Timestamp) -> Result<Vec<Timestamp>, Error> {
    let statement = client
        .prepare_cached("SELECT at FROM counter_hits WHERE key = $1 AND at > $2 ORDER BY at")
        .await
        .map_err(postgres)?;
    let rows = client
        .query(&statement, &[&key, &since.unix_millis()])
        .await
        .map_err(postgres)?;
    rows.iter()
        .map(|row| Ok(Timestamp::from_unix_millis(row.try_get(0).map_err(postgres)?)))
        .collect()
}

/// The outbox's figures per channel. A scan of the table: it holds the deliveries still to
/// make, few unless they fall behind, and this runs every few seconds per server. No index for
/// it: one on `leased_until` would make every claim's update a non-HOT one.
pub(crate) async fn outbox_stats(client: &Client, now: Timestamp) -> Result<Vec<OutboxStats>, Error> {
    // Due as `claim_outbox` sees it.
    let statement = client
        .prepare_cached(
            "SELECT channel, count(*), count(*) FILTER (WHERE due), min(not_before) FILTER (WHERE due) \
             FROM (SELECT channel, not_before, \
                          not_before <= $1 AND (leased_until IS NULL OR leased_until <= $1) AS due \
                   FROM outbox) AS rows \
             GROUP BY channel",
        )
        .await
        .map_err(postgres)?;
    let rows = client
        .query(&statement, &[&now.unix_millis()])
        .await
        .map_err(postgres)?;
    rows.iter()
        .map(|row| {
            let queued: i64 = row.try_get(1).map_err(postgres)?;
            let due: i64 = row.try_get(2).map_err(postgres)?;
            let oldest_due: Option<i64> = row.try_get(3).map_err(postgres)?;
            Ok(OutboxStats::new(
                kind_from(row.try_get(0).map_err(postgres)?)?,
                u64::try_from(queued).unwrap_or(0),
                u64::try_from(due).unwrap_or(0),
                oldest_due.map(Timestamp::from_unix_millis),
            ))
        })
        .collect()
}
