//! Live events across servers: `LISTEN` on a dedicated connection, wake-ups to local subscribers.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use collab_core::transport::{InProcessTransport, Live, LiveStream, Transport, Typing};
use collab_core::{Error, Event, RoomId, Seq};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::{PostgresConfig, PostgresError, postgres};

/// Between two checks that the listening connection still answers.
const HEALTH_CHECK: Duration = Duration::from_secs(15);
/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Typing signals waiting for the listening connection; more are dropped (they are ephemeral).
const TYPING_QUEUE: usize = 256;

/// A [`Transport`] across servers on PostgreSQL's `LISTEN/NOTIFY`, for [`crate::PostgresRoomStore`].
///
/// The store's appends notify the channel of [`PostgresConfig::channel`] in their transaction,
/// with the room and its new sequence number. This transport listens on that channel on a
/// dedicated connection and wakes the room's subscribers in this process
/// ([`Live::Wake`]): they read the new events from the store. Events published in this process
/// reach its own subscribers directly.
///
/// When the listening connection drops (a restart, a failover, an operator's
/// `pg_terminate_backend`), the transport reconnects with backoff (50 ms doubling to 5 s) and
/// then tells every local subscriber to catch up ([`Live::Lagged`]), so that nothing appended
/// meanwhile is missed. A connection that stops answering is noticed within about 25 s.
///
/// Typing signals ([`Transport::typing`]) go out as notifications on the same channel from the
/// listening connection (`typing {room} {typist}`), and reach every server's subscribers, this
/// one's included, the same way; those sent while the connection is down are lost.
///
/// Cheap to clone; the listener stops when the last clone is dropped.
#[derive(Clone)]
pub struct PostgresTransport {
    inner: Arc<Inner>,
}

struct Inner {
    local: Arc<InProcessTransport>,
    channel: String,
    /// Typing signals for the listening connection to send.
    typing: mpsc::Sender<(RoomId, Typing)>,
    listener: JoinHandle<()>,
    /// Whether the listening connection is up and listening now.
    listening: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl fmt::Debug for PostgresTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTransport")
            .field("channel", &self.inner.channel)
            .field("rooms", &self.inner.local.open_channels())
            .finish_non_exhaustive()
    }
}

impl PostgresTransport {
    /// Connects and starts listening. Returns once the first `LISTEN` succeeded, so that every
    /// subscription made afterwards hears every server's appends; fails with a backend error
    /// when the database is unreachable.
    pub async fn connect(config: &PostgresConfig) -> Result<Self, Error> {
        let local = Arc::new(InProcessTransport::default());
        let channel = config.channel();
        let (started, first) = oneshot::channel();
        let listening = Arc::new(AtomicBool::new(false));
        let (typing, to_send) = mpsc::channel(TYPING_QUEUE);
        let listener = tokio::spawn(listen(
            config.clone(),
            local.clone(),
            listening.clone(),
            to_send,
            started,
        ));
        match first.await {
            Ok(Ok(())) => Ok(Self {
                inner: Arc::new(Inner {
                    local,
                    channel,
                    typing,
                    listener,
                    listening,
                }),
            }),
            Ok(Err(e)) => {
                listener.abort();
                Err(e)
            }
            Err(_) => Err(PostgresError::ListenerGone.into()),
        }
    }
}

#[async_trait]
impl Transport for PostgresTransport {
    async fn publish(&self, room: RoomId, events: &[Arc<Event>]) -> Result<(), Error> {
        // Other servers hear of them through the append's NOTIFY.
        self.inner.local.publish(room, events).await
    }

    fn subscribe(&self, room: RoomId) -> LiveStream {
        self.inner.local.subscribe(room)
    }

    async fn typing(&self, room: RoomId, typing: Typing) -> Result<(), Error> {
        if self.inner.typing.try_send((room, typing)).is_err() {
            tracing::debug!(%room, "typing signal dropped: the listening connection is busy or down");
        }
        Ok(())
    }

    async fn check_ready(&self) -> Result<(), Error> {
        match self.inner.listening.load(Ordering::Relaxed) {
            true => Ok(()),
            false => Err(PostgresError::ListenerClosed.into()),
        }
    }
}

/// The listener task: one session after another, for as long as the transport lives. The
/// first session's outcome goes to `first`; after that, failures are logged and retried.
async fn listen(
    config: PostgresConfig,
    local: Arc<InProcessTransport>,
    listening: Arc<AtomicBool>,
    mut typing: mpsc::Receiver<(RoomId, Typing)>,
    first: oneshot::Sender<Result<(), Error>>,
) {
    let mut first = Some(first);
    let mut backoff = MIN_BACKOFF;
    loop {
        // Signals queued while no connection was up are stale by now.
        while typing.try_recv().is_ok() {}
        let lost = session(&config, &local, &mut typing, &mut || {
            listening.store(true, Ordering::Relaxed);
            backoff = MIN_BACKOFF;
            match first.take() {
                Some(first) => {
                    let _ = first.send(Ok(()));
                }
                // Anything appended while no one listened is in the store: catch up.
                None => local.announce_to_all(Live::Lagged),
            }
        })
        .await;
        listening.store(false, Ordering::Relaxed);
        if let Some(first) = first.take() {
            let _ = first.send(Err(lost));
            return;
        }
        tracing::warn!(error = %lost, retry_in = ?backoff, "postgres listener lost its connection; reconnecting");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One listening connection: connects, `LISTEN`s, calls `listening`, then wakes local
/// subscribers and sends typing signals until the connection fails. Returns why it ended.
async fn session(
    config: &PostgresConfig,
    local: &Arc<InProcessTransport>,
    typing: &mut mpsc::Receiver<(RoomId, Typing)>,
    listening: &mut (dyn FnMut() + Send),
) -> Error {
    let mut settings = config.connection();
    // So that operators (and tests) can tell it from the store's connections.
    settings.application_name(format!("collab listener on {}", config.channel()));
    let (client, mut connection) = match settings.connect(NoTls).await {
        Ok(connected) => connected,
        Err(e) => return postgres(e),
    };
    let (ended, end) = oneshot::channel();
    // The connection hands over notifications only when polled for them.
    let _driver = AbortOnDrop(tokio::spawn({
        let local = local.clone();
        async move {
            let reason = loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => wake(&local, n.payload()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break postgres(e),
                    None => break PostgresError::ListenerClosed.into(),
                }
            };
            let _ = ended.send(reason);
        }
    }));
    let mut end = std::pin::pin!(end);
    // The channel name is built from a checked schema name: letters, digits and `_`.
    if let Err(e) = answered(config, &client, &format!("LISTEN {}", config.channel())).await {
        return e;
    }
    listening();
    let channel = config.channel();
    // An interval, not a sleep per turn: typing signals must not put the check off for ever.
    let mut health = tokio::time::interval_at(tokio::time::Instant::now() + HEALTH_CHECK, HEALTH_CHECK);
    loop {
        tokio::select! {
            reason = &mut end => return reason.unwrap_or_else(|_| PostgresError::ListenerClosed.into()),
            _ = health.tick() => if let Err(e) = answered(config, &client, "SELECT 1").await {
                return e;
            },
            Some((room, signal)) = typing.recv() => {
                let payload = format!("typing {room} {}", signal.by);
                let notify = "SELECT pg_notify($1, $2)";
                match tokio::time::timeout(config.timeout, client.execute(notify, &[&channel, &payload])).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return postgres(e),
                    Err(_) => return PostgresError::ListenerSilent.into(),
                }
            }
        }
    }
}

/// Runs `sql`, failing when the server does not answer within the configured timeout.
async fn answered(config: &PostgresConfig, client: &tokio_postgres::Client, sql: &str) -> Result<(), Error> {
    match tokio::time::timeout(config.timeout, client.batch_execute(sql)).await {
        Ok(result) => result.map_err(postgres),
        Err(_) => Err(PostgresError::ListenerSilent.into()),
    }
}

/// Wakes the local subscribers of the rooms a notification names (`room:seq`, space-separated:
/// one notification per group commit), or tells them of a typing signal (`typing {room}
/// {typist}`).
fn wake(local: &InProcessTransport, payload: &str) {
    if let Some(signal) = payload.strip_prefix("typing ") {
        let parsed = signal
            .split_once(' ')
            .and_then(|(room, by)| Some((room.parse::<RoomId>().ok()?, by.parse().ok()?)));
        match parsed {
            Some((room, by)) => local.announce(room, Live::Typing(Typing { by })),
            None => tracing::warn!("unreadable postgres typing signal; ignored"),
        }
        return;
    }
    for wake_up in payload.split(' ') {
        let parsed = wake_up
            .split_once(':')
            .and_then(|(room, seq)| Some((room.parse::<RoomId>().ok()?, seq.parse::<u64>().ok()?)));
        match parsed {
            Some((room, seq)) => local.announce(room, Live::Wake { seq: Seq::new(seq) }),
            None => tracing::warn!(wake_up, "postgres notification not from collab; ignored"),
        }
    }
}
