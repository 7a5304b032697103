//! What the library reports through the [`metrics`](https://docs.rs/metrics) facade: the host
//! installs the recorder it wants (Prometheus, StatsD, OpenTelemetry…); without one, reporting
//! costs next to nothing.
//!
//! Names and units follow Prometheus' conventions (base units, `_total` for counters). Labels
//! hold only small closed sets (a channel, an outcome, an error kind), never a room, a person or
//! anything else a caller chooses, so that series stay few and carry no personal data.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `collab_append_duration_seconds` | histogram | | one append to the room store, from call to answer |
//! | `collab_append_conflicts_total` | counter | | appends refused because another writer changed the room first (each is decided again) |
//! | `collab_posts_per_append` | histogram | | chat posts stored together in one append (a busy room's lane) |
//! | `collab_deliveries_total` | counter | `channel` (`sms`, `email`, `webhook`), `provider` ([`Notifier::provider`](crate::notify::Notifier::provider): `twilio`, `vonage`, `http_gateway`, `smtp`, `dev`…; `none` without a notifier), `result` (`sent`, `retry`, `failed`, `unrecorded`) | delivery attempts of invites and webhooks (a webhook's provider is `webhook`) |
//! | `collab_delivery_lag_seconds` | histogram | `channel` | how late a due delivery was when a dispatcher claimed it |
//! | `collab_outbox_queued` | gauge | `channel` | deliveries waiting in the outbox, claimed or not (refreshed by the dispatcher, every 10 s by default) |
//! | `collab_outbox_due` | gauge | `channel` | deliveries whose time has come, under no live lease |
//! | `collab_outbox_oldest_due_age_seconds` | gauge | `channel` | how long the oldest due delivery has been due (0 when none is) |
//! | `collab_invites_refused_total` | counter | `reason` (an [`ErrorKind`] code) | invites the [`InviteGuard`](crate::guard::InviteGuard) refused |
//! | `collab_live_subscriptions` | gauge | | live subscriptions open in this process |
//! | `collab_live_lagged_total` | counter | | times a live subscriber fell behind and caught up from the store |
//! | `collab_document_bytes_total` | counter | | bytes of documents stored |
//! | `collab_documents_refused_total` | counter | `reason` (an [`ErrorKind`] code) | uploads refused |
//!
//! The outbox gauges come from [`RoomStore::outbox_stats`](crate::store::RoomStore::outbox_stats)
//! in the process that runs [`Rooms::run_dispatcher`](crate::rooms::Rooms::run_dispatcher), at
//! most every [`DeliveryConfig::with_stats_interval`](crate::rooms::DeliveryConfig::with_stats_interval);
//! a store without it reports none. They describe the shared outbox, so every server running a
//! dispatcher reports the same figures: aggregate them with `max`, not `sum`.
//!
//! Stores report their own: `collab_store_group_commit_appends` (histogram, label `store`:
//! `sqlite`, `postgres`; the jobs committed in one transaction), and SQLite
//! `collab_sqlite_checkpoint_duration_seconds` (histogram, label `mode`: `PASSIVE`, `TRUNCATE`)
//! and `collab_sqlite_wal_frames` (gauge: the write-ahead log's length in pages after the
//! last checkpoint); PostgreSQL `collab_postgres_pool_wait_seconds` (histogram: the wait for a
//! pooled connection).

use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::store::{OutboxKind, OutboxStats};
use crate::time::Timestamp;

/// `collab_append_duration_seconds`.
pub const APPEND_DURATION: &str = "collab_append_duration_seconds";
/// `collab_append_conflicts_total`.
pub const APPEND_CONFLICTS: &str = "collab_append_conflicts_total";
/// `collab_posts_per_append`.
pub const POSTS_PER_APPEND: &str = "collab_posts_per_append";
/// `collab_deliveries_total`.
pub const DELIVERIES: &str = "collab_deliveries_total";
/// `collab_delivery_lag_seconds`.
pub const DELIVERY_LAG: &str = "collab_delivery_lag_seconds";
/// `collab_outbox_queued`.
pub const OUTBOX_QUEUED: &str = "collab_outbox_queued";
/// `collab_outbox_due`.
pub const OUTBOX_DUE: &str = "collab_outbox_due";
/// `collab_outbox_oldest_due_age_seconds`.
pub const OUTBOX_OLDEST_DUE_AGE: &str = "collab_outbox_oldest_due_age_seconds";
/// `collab_invites_refused_total`.
pub const INVITES_REFUSED: &str = "collab_invites_refused_total";
/// `collab_live_subscriptions`.
pub const LIVE_SUBSCRIPTIONS: &str = "collab_live_subscriptions";
/// `collab_live_lagged_total`.
pub const LIVE_LAGGED: &str = "collab_live_lagged_total";
/// `collab_document_bytes_total`.
pub const DOCUMENT_BYTES: &str = "collab_document_bytes_total";
/// `collab_documents_refused_total`.
pub const DOCUMENTS_REFUSED: &str = "collab_documents_refused_total";
/// `collab_store_group_commit_appends`, reported by the stores that commit appends in groups.
pub const GROUP_COMMIT_APPENDS: &str = "collab_store_group_commit_appends";

/// Every name above, for a host that describes or checks them.
pub const ALL: &[&str] = &[
    APPEND_DURATION,
    APPEND_CONFLICTS,
    POSTS_PER_APPEND,
    DELIVERIES,
    DELIVERY_LAG,
    OUTBOX_QUEUED,
    OUTBOX_DUE,
    OUTBOX_OLDEST_DUE_AGE,
    INVITES_REFUSED,
    LIVE_SUBSCRIPTIONS,
    LIVE_LAGGED,
    DOCUMENT_BYTES,
    DOCUMENTS_REFUSED,
    GROUP_COMMIT_APPENDS,
];

/// Describes every metric (unit and help text) to the installed recorder: call it once after
/// installing one, so that an exporter can say what each series is.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(APPEND_DURATION, Unit::Seconds, "One append to the room store");
    describe_counter!(APPEND_CONFLICTS, "Appends refused because the room changed first");
    describe_histogram!(
        POSTS_PER_APPEND,
        Unit::Count,
        "Chat posts stored together in one append"
    );
    describe_counter!(DELIVERIES, "Invite delivery attempts by channel, provider and result");
    describe_histogram!(DELIVERY_LAG, Unit::Seconds, "How late a due invite was when claimed");
    describe_gauge!(OUTBOX_QUEUED, Unit::Count, "Invites waiting in the outbox, by channel");
    describe_gauge!(
        OUTBOX_DUE,
        Unit::Count,
        "Invites a dispatcher could claim now, by channel"
    );
    describe_gauge!(
        OUTBOX_OLDEST_DUE_AGE,
        Unit::Seconds,
        "How long the oldest due invite has been due, by channel (0 when none is)"
    );
    describe_counter!(INVITES_REFUSED, "Invites refused by the invite guard");
    describe_gauge!(LIVE_SUBSCRIPTIONS, "Live subscriptions open in this process");
    describe_counter!(
        LIVE_LAGGED,
        "Live subscribers that fell behind and caught up from the store"
    );
    describe_counter!(DOCUMENT_BYTES, Unit::Bytes, "Bytes of documents stored");
    describe_counter!(DOCUMENTS_REFUSED, "Uploads refused, by reason");
    describe_histogram!(
        GROUP_COMMIT_APPENDS,
        Unit::Count,
        "Appends committed together by a store"
    );
}

pub(crate) fn append_finished(took: Duration, result: &Result<(), Error>) {
    metrics::histogram!(APPEND_DURATION).record(took.as_secs_f64());
    if matches!(result, Err(Error::Conflict { .. })) {
        metrics::counter!(APPEND_CONFLICTS).increment(1);
    }
}

pub(crate) fn posts_per_append(posts: usize) {
    metrics::histogram!(POSTS_PER_APPEND).record(posts as f64);
}

pub(crate) fn delivery(channel: &'static str, provider: &'static str, result: &'static str) {
    metrics::counter!(DELIVERIES, "channel" => channel, "provider" => provider, "result" => result).increment(1);
}

pub(crate) fn delivery_lag(channel: &'static str, lag: Duration) {
    metrics::histogram!(DELIVERY_LAG, "channel" => channel).record(lag.as_secs_f64());
}

/// Sets the outbox gauges from `stats`, taken at `now`: to zero for a kind that has no rows,
/// so that an emptied queue reads 0 rather than its last figure.
pub(crate) fn outbox(stats: &[OutboxStats], now: Timestamp) {
    for kind in OutboxKind::ALL {
        if !stats.iter().any(|s| s.kind == kind) {
            outbox_gauges(&OutboxStats::new(kind, 0, 0, None), now);
        }
    }
    for kind in stats {
        outbox_gauges(kind, now);
    }
}

fn outbox_gauges(stats: &OutboxStats, now: Timestamp) {
    let channel = stats.kind.as_str();
    metrics::gauge!(OUTBOX_QUEUED, "channel" => channel).set(stats.queued as f64);
    metrics::gauge!(OUTBOX_DUE, "channel" => channel).set(stats.due as f64);
    let age = stats.oldest_due.map_or(Duration::ZERO, |oldest| now.since(oldest));
    metrics::gauge!(OUTBOX_OLDEST_DUE_AGE, "channel" => channel).set(age.as_secs_f64());
}

pub(crate) fn invite_refused(kind: ErrorKind) {
    metrics::counter!(INVITES_REFUSED, "reason" => kind.as_str()).increment(1);
}

pub(crate) fn live_subscribers(change: f64) {
    metrics::gauge!(LIVE_SUBSCRIPTIONS).increment(change);
}

pub(crate) fn live_lagged() {
    metrics::counter!(LIVE_LAGGED).increment(1);
}

pub(crate) fn document_stored(bytes: u64) {
    metrics::counter!(DOCUMENT_BYTES).increment(bytes);
}

pub(crate) fn document_refused(kind: ErrorKind) {
    metrics::counter!(DOCUMENTS_REFUSED, "reason" => kind.as_str()).increment(1);
}
