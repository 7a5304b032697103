//! collab's live events across servers over [NATS](https://nats.io): a [`Transport`] that
//! publishes a wake-up per append *after* the append committed, so that no database lock is
//! held for it (unlike PostgreSQL's `NOTIFY`, which takes a database-wide lock at commit).
//!
//! Every server runs one [`NatsTransport`] connected to the same NATS server (or cluster) with the
//! same subject prefix, beside a shared [`RoomStore`](collab_core::RoomStore) (e.g.
//! `collab-store-postgres`):
//!
//! ```no_run
//! # async fn run() -> Result<(), collab_core::Error> {
//! use collab_core::Rooms;
//! use collab_transport_nats::{NatsConfig, NatsTransport};
//!
//! let transport = NatsTransport::connect(&NatsConfig::new("nats://127.0.0.1:4222")?).await?;
//! let rooms = Rooms::builder().transport(transport).build();
//! # let _ = rooms;
//! # Ok(()) }
//! ```
//!
//! # What it promises
//!
//! Live news is a hint: a subscription reads every event from the store, in order, and uses
//! news only to know *when* to read. So this transport can lose a wake-up without losing,
//! repeating or reordering an event; a lost wake-up costs latency only. Core NATS delivers at
//! most once over TCP, and loses messages in two ways, both of which the client reports:
//!
//! - **A disconnect** (a NATS restart, a network cut): wake-ups published meanwhile are gone.
//!   The client reconnects by itself; once its subscription is active again (confirmed by a
//!   round trip), the transport tells every local subscriber to catch up from the store
//!   ([`Live::Lagged`]). A lost wake-up costs at most the time to reconnect.
//! - **Falling behind** (a slow consumer: the client dropped messages it could not buffer): the
//!   same catch-up, at once.
//!
//! Events appended in this process reach its own subscribers directly, without NATS; the
//! wake-ups it publishes carry its instance id so that it ignores its own.
//!
//! Typing signals ([`Transport::typing`]) go to `{prefix}.typing.{room}` carrying the typist,
//! and reach every server's subscribers, this one's included, through NATS: ephemeral, at most
//! once, and lost while the connection is down.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::Event as ClientEvent;
use async_trait::async_trait;
use bytes::Bytes;
use collab_core::transport::{InProcessTransport, Live, LiveStream, Transport, Typing};
use collab_core::{Error, Event, RoomId, Seq};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a round trip after a reconnection may take before the catch-up goes ahead anyway.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest subject prefix accepted, in bytes.
const MAX_PREFIX_LEN: usize = 64;

/// Where and how to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    url: String,
    prefix: String,
    connect_timeout: Duration,
}

/// Never the URL's credentials, if it holds any.
impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match self.url.split_once('@') {
            Some((_, host)) => format!("nats://…@{host}"),
            None => self.url.clone(),
        };
        f.debug_struct("NatsConfig")
            .field("url", &url)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl NatsConfig {
    /// The NATS server at `url` (`nats://host:port`; several, comma-separated, for a cluster),
    /// with the subject prefix `collab` and a 5 s connect timeout.
    pub fn new(url: &str) -> Result<Self, Error> {
        let url = url.trim();
        if url.is_empty() || url.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "url",
                "must be a NATS URL such as nats://127.0.0.1:4222",
            ));
        }
        Ok(Self {
            url: url.to_owned(),
            prefix: "collab".to_owned(),
            connect_timeout: Duration::from_secs(5),
        })
    }

    /// The subjects' prefix: wake-ups go to `{prefix}.{room}`. Deployments that share a NATS
    /// server keep apart by prefix. Letters, digits, `_` and `-` in `.`-separated tokens.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, Error> {
        let token_ok =
            |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if prefix.len() > MAX_PREFIX_LEN || !prefix.split('.').all(token_ok) {
            return Err(Error::invalid(
                "prefix",
                "must be up to 64 bytes of letters, digits, `_` and `-` in `.`-separated tokens",
            ));
        }
        self.prefix = prefix.to_owned();
        Ok(self)
    }

    /// How long the first connection may take, 100 ms to 60 s.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(60) {
            return Err(Error::invalid("connect_timeout", "must be from 100 ms to 60 s"));
        }
        self.connect_timeout = timeout;
        Ok(self)
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// A [`Transport`] across servers over NATS. Cheap to clone; its background task stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct NatsTransport {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    local: Arc<InProcessTransport>,
    prefix: String,
    /// Written into every wake-up this process publishes, so that it skips its own.
    instance: u64,
    listener: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl fmt::Debug for NatsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsTransport")
            .field("prefix", &self.inner.prefix)
            .field("instance", &format_args!("{:016x}", self.inner.instance))
            .field("rooms", &self.inner.local.open_channels())
            .finish_non_exhaustive()
    }
}

/// What the transport hears from other servers.
struct Subscriptions {
    /// `{prefix}.{room}`.
    wake_ups: async_nats::Subscriber,
    /// `{prefix}.typing.{room}`.
    typing: async_nats::Subscriber,
}

/// What the client reports that calls for a catch-up.
enum Lost {
    /// Reconnected: messages published while it was away are gone.
    Reconnected,
    /// It dropped messages it could not buffer.
    FellBehind,
}

impl NatsTransport {
    /// Connects and subscribes. Returns once the subscription is active on the server, so that
    /// every subscription made afterwards hears every server's appends; fails with a backend
    /// error when NATS cannot be reached in time.
    pub async fn connect(config: &NatsConfig) -> Result<Self, Error> {
        let (lost_tx, lost_rx) = mpsc::unbounded_channel();
        // The client reports its first connection too; only later ones follow a loss.
        let connected_before = AtomicBool::new(false);
        let options = async_nats::ConnectOptions::new()
            .name("collab")
            .connection_timeout(config.connect_timeout)
            .event_callback(move |event| {
                let lost = match event {
                    ClientEvent::Connected if connected_before.swap(true, Ordering::Relaxed) => Some(Lost::Reconnected),
                    ClientEvent::SlowConsumer(_) => Some(Lost::FellBehind),
                    ClientEvent::Disconnected => {
                        tracing::warn!("NATS connection lost; reconnecting");
                        None
                    }
                    other => {
                        tracing::debug!(event = %other, "NATS client event");
                        None
                    }
                };
                if let Some(lost) = lost {
                    // The receiver lives as long as the transport; after that nobody cares.
                    let _ = lost_tx.send(lost);
                }
                async {}
            });
        let connecting = options.connect(config.url.as_str());
        let client = tokio::time::timeout(config.connect_timeout, connecting)
            .await
            .map_err(|_| Error::backend("nats", "no connection within the connect timeout"))?
            .map_err(|e| Error::backend("nats", e))?;
        let subscriber = client
            .subscribe(format!("{}.*", config.prefix))
            .await
            .map_err(|e| Error::backend("nats", e))?;
        let typing = client
            .subscribe(format!("{}.typing.*", config.prefix))
            .await
            .map_err(|e| Error::backend("nats", e))?;
        let instance = getrandom::u64().map_err(|e| Error::internal("os random number generator", e))?;
        // Two tokens after the prefix: the wake-up subscription (one token) never hears it.
        let probe = format!("{}.sync.{instance:016x}", config.prefix);
        round_trip(&client, &probe, config.connect_timeout).await?;
        let local = Arc::new(InProcessTransport::default());
        let listener = tokio::spawn(listen(
            Subscriptions {
                wake_ups: subscriber,
                typing,
            },
            lost_rx,
            client.clone(),
            local.clone(),
            config.prefix.len() + 1,
            instance,
            probe,
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                local,
                prefix: config.prefix.clone(),
                instance,
                listener,
            }),
        })
    }
}

#[async_trait]
impl Transport for NatsTransport {
    async fn publish(&self, room: RoomId, events: &[Arc<Event>]) -> Result<(), Error> {
        self.inner.local.publish(room, events).await?;
        let Some(last) = events.last() else {
            return Ok(());
        };
        let payload = Bytes::from(format!("{} {:016x}", last.seq, self.inner.instance));
        self.inner
            .client
            .publish(format!("{}.{room}", self.inner.prefix), payload)
            .await
            .map_err(|e| Error::backend("nats", e))
    }

    fn subscribe(&self, room: RoomId) -> LiveStream {
        self.inner.local.subscribe(room)
    }

    async fn typing(&self, room: RoomId, typing: Typing) -> Result<(), Error> {
        let payload = Bytes::from(typing.by.to_string());
        self.inner
            .client
            .publish(format!("{}.typing.{room}", self.inner.prefix), payload)
            .await
            .map_err(|e| Error::backend("nats", e))
    }

    async fn check_ready(&self) -> Result<(), Error> {
        match self.inner.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(Error::backend(
                "nats",
                std::io::Error::new(std::io::ErrorKind::NotConnected, format!("the NATS client is {state}")),
            )),
        }
    }
}

/// A message to ourselves through the server: once it comes back, the server has processed
/// everything this client sent before it, its subscriptions included. (A flush only empties the
/// client's write buffer.)
async fn round_trip(client: &async_nats::Client, subject: &str, timeout: Duration) -> Result<(), Error> {
    let mut probe = client
        .subscribe(subject.to_owned())
        .await
        .map_err(|e| Error::backend("nats", e))?;
    client
        .publish(subject.to_owned(), Bytes::new())
        .await
        .map_err(|e| Error::backend("nats", e))?;
    match tokio::time::timeout(timeout, probe.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Error::backend("nats", "the connection closed during a round trip")),
        Err(_) => Err(Error::backend("nats", "no round trip within the timeout")),
    }
}

/// Wakes local subscribers for other servers' wake-ups, and has them all catch up when the
/// client reports that wake-ups may have been lost.
async fn listen(
    Subscriptions {
        wake_ups: mut subscriber,
        mut typing,
    }: Subscriptions,
    mut lost: mpsc::UnboundedReceiver<Lost>,
    client: async_nats::Client,
    local: Arc<InProcessTransport>,
    prefix_len: usize,
    instance: u64,
    probe: String,
) {
    loop {
        tokio::select! {
            message = subscriber.next() => {
                let Some(message) = message else {
                    tracing::error!("the NATS subscription ended; live news from other servers stops");
                    local.announce_to_all(Live::Lagged);
                    return;
                };
                match wake_up(&message.subject, &message.payload, prefix_len, instance) {
                    Ok(Some((room, seq))) => local.announce(room, Live::Wake { seq }),
                    Ok(None) => {}
                    Err(reason) => tracing::warn!(subject = %message.subject, reason, "unreadable NATS wake-up ignored"),
                }
            }
            Some(message) = typing.next() => match typing_signal(&message.subject, &message.payload, prefix_len) {
                Ok((room, typing)) => local.announce(room, Live::Typing(typing)),
                Err(reason) => tracing::warn!(reason, "unreadable NATS typing signal ignored"),
            },
            Some(lost) = lost.recv() => {
                if let Lost::Reconnected = lost {
                    // The client subscribes again as it reconnects; a round trip after that
                    // means the server has it, so nothing published from now on is missed.
                    if let Err(e) = round_trip(&client, &probe, ROUND_TRIP_TIMEOUT).await {
                        tracing::warn!(error = %e, "no NATS round trip after reconnecting");
                    }
                    tracing::info!("NATS connection back; local subscribers catch up from the store");
                } else {
                    tracing::warn!("NATS dropped wake-ups for a slow consumer; local subscribers catch up from the store");
                }
                local.announce_to_all(Live::Lagged);
            }
        }
    }
}

/// The room and seq of a wake-up (`{prefix}.{room}` carrying `{seq} {instance}`); `None` for
/// this process's own.
fn wake_up(
    subject: &str,
    payload: &[u8],
    prefix_len: usize,
    instance: u64,
) -> Result<Option<(RoomId, Seq)>, &'static str> {
    let room = subject.get(prefix_len..).ok_or("subject without a room")?;
    let room = RoomId::from_str(room).map_err(|_| "subject with a malformed room id")?;
    let payload = std::str::from_utf8(payload).map_err(|_| "payload not UTF-8")?;
    let (seq, from) = payload.split_once(' ').ok_or("payload without an instance")?;
    let seq = seq.parse::<u64>().map_err(|_| "payload with a malformed seq")?;
    let from = u64::from_str_radix(from, 16).map_err(|_| "payload with a malformed instance")?;
    Ok((from != instance).then_some((room, Seq::new(seq))))
}

/// The room and typist of a typing signal (`{prefix}.typing.{room}` carrying the typist).
fn typing_signal(subject: &str, payload: &[u8], prefix_len: usize) -> Result<(RoomId, Typing), &'static str> {
    let room = subject
        .get(prefix_len..)
        .and_then(|rest| rest.strip_prefix("typing."))
        .ok_or("subject without a room")?;
    let room = RoomId::from_str(room).map_err(|_| "subject with a malformed room id")?;
    let by = std::str::from_utf8(payload).map_err(|_| "payload not UTF-8")?;
    let by = by.parse().map_err(|_| "payload not a typist")?;
    Ok((room, Typing { by }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_ups_are_read_and_own_ones_skipped() {
        let room = RoomId::from_u128(7);
        let subject = format!("collab.{room}");
        assert_eq!(
            wake_up(&subject, b"12 00000000000000ff", 7, 1),
            Ok(Some((room, Seq::new(12))))
        );
        assert_eq!(wake_up(&subject, b"12 00000000000000ff", 7, 0xff), Ok(None));
        for bad in [&b"12"[..], b"x 01", b"12 zz", b"\xff 01"] {
            assert!(wake_up(&subject, bad, 7, 1).is_err(), "{bad:?}");
        }
        assert!(wake_up("collab.not-a-room", b"1 01", 7, 1).is_err());
    }

    #[test]
    fn typing_signals_are_read() {
        let room = RoomId::from_u128(7);
        let subject = format!("collab.typing.{room}");
        let (heard, typing) = typing_signal(&subject, b"agent:ana", 7).expect("readable");
        assert_eq!((heard, typing.by.to_string()), (room, "agent:ana".to_owned()));
        assert!(typing_signal(&subject, b"someone", 7).is_err());
        assert!(typing_signal(&subject, b"\xff", 7).is_err());
        assert!(typing_signal(&format!("collab.{room}"), b"agent:ana", 7).is_err());
    }

    #[test]
    fn settings_are_checked() {
        assert!(NatsConfig::new("").is_err());
        assert!(NatsConfig::new("nats://a b").is_err());
        let config = NatsConfig::new("nats://127.0.0.1:4222").expect("valid");
        assert!(config.clone().with_prefix("a.b-c_1").is_ok());
        for bad in ["", "a..b", "a.*", "a>b", "a b", &"x".repeat(65)] {
            assert!(config.clone().with_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(config.clone().with_connect_timeout(Duration::from_millis(10)).is_err());
        let secret = NatsConfig::new("nats://user:pass@127.0.0.1:4222").expect("valid");
        assert!(!format!("{secret:?}").contains("pass"));
    }
}
