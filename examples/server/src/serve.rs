//! Serving the app over TCP with the time limits a server on the internet needs: a client that
//! sends its headers too slowly, keeps a connection open doing nothing, or trickles a request
//! body is cut off, so that idle or slow sockets cannot hold the server's descriptors for good
//! (issue 21, "connections never time out").
//!
//! - **Headers** (HTTP/1): hyper's header-read timeout, from the first byte awaited until the
//!   end of the request's head. hyper also runs it while a kept-alive connection waits for its
//!   next request, so an idle HTTP/1 connection is closed after the shorter of this and the idle
//!   timeout.
//! - **Idle**: a connection with no request in progress (an open live stream is one) for the
//!   idle timeout is shut down. This also covers what hyper's timer does not: a connection that
//!   never sends a byte (the protocol is sniffed from the first bytes, with no timer), and an
//!   HTTP/2 connection with no open stream.
//! - **Bodies**: a request body not received in full within the body timeout, counted from the
//!   request's arrival, ends in an error for the handler reading it (an upload is then refused
//!   as aborted, 400 `upload_aborted`, and the connection closed).
//!
//! Handlers see the peer's address as [`ConnectInfo<SocketAddr>`]. On the shutdown signal the
//! server stops accepting, lets each connection finish its request, and waits at most
//! [`SHUTDOWN_GRACE`] for them (a live stream never finishes by itself).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use bytes::Bytes;
use collab_core::Error;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// How long the server waits, once told to stop, for its connections to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The time limits of each connection. Every one is at least one second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    body_timeout: Duration,
}

impl Default for ConnectionLimits {
    /// Headers within 10 s, idle connections closed after 10 s, bodies within 5 minutes (a
    /// document at the default size limit over a slow mobile link).
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(300),
        }
    }
}

fn at_least_a_second(field: &'static str, value: Duration) -> Result<Duration, Error> {
    if value < Duration::from_secs(1) {
        return Err(Error::invalid(field, "must be at least 1 second"));
    }
    Ok(value)
}

impl ConnectionLimits {
    /// The time a client has to send a request's head (HTTP/1), 10 s by default.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        self.header_read_timeout = at_least_a_second("header_read_timeout", timeout)?;
        Ok(self)
    }

    /// How long a connection with no request in progress stays open, 10 s by default.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        self.idle_timeout = at_least_a_second("idle_timeout", timeout)?;
        Ok(self)
    }

    /// The time a client has to send a request's whole body, from the request's arrival, 5
    /// minutes by default.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        self.body_timeout = at_least_a_second("body_timeout", timeout)?;
        Ok(self)
    }

    /// The time a client has to send a request's head.
    pub fn header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }

    /// How long a connection with no request in progress stays open.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The time a client has to send a request's whole body.
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` completes, then stops accepting,
/// shuts each connection down gracefully and waits for them, at most [`SHUTDOWN_GRACE`]. HTTP/1,
/// and HTTP/2 with prior knowledge, as `axum::serve` does.
pub async fn serve(
    mut listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // Closed by the signal: every connection task holds a receiver, so the sender learns when
    // the last one has ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            // axum's accept logs and retries on its own errors (a full descriptor table).
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        let connection = Connection {
            builder: builder.clone(),
            app: app.clone(),
            peer,
            limits,
            stop: stop_rx.clone(),
        };
        tokio::spawn(connection.run(stream));
    }
    drop(listener);
    drop(stop_rx);
    stop_tx.send_replace(());
    // Each task drops its receiver when its connection ends.
    let ended = stop_tx.closed();
    if tokio::time::timeout(SHUTDOWN_GRACE, ended).await.is_err() {
        tracing::info!(
            connections = stop_tx.receiver_count(),
            "connections still open after the shutdown grace period: closing them"
        );
    }
}

/// One accepted connection and what it needs.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    app: Router,
    peer: SocketAddr,
    limits: ConnectionLimits,
    stop: watch::Receiver<()>,
}

impl Connection {
    async fn run(mut self, stream: tokio::net::TcpStream) {
        let (activity, idle) = watch::channel(Activity {
            requests: 0,
            since: Instant::now(),
        });
        let (app, peer, body_timeout) = (self.app, self.peer, self.limits.body_timeout);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let busy = Busy::start(activity.clone());
            let app = app.clone();
            async move {
                let deadline = Instant::now() + body_timeout;
                let mut request = request.map(|body| Body::new(Deadline::new(body, deadline, body_timeout)));
                request.extensions_mut().insert(ConnectInfo(peer));
                let response = app.oneshot(request).await?;
                // The request counts as in progress until its response's body has been sent.
                Ok::<_, std::convert::Infallible>(response.map(|body| Body::new(Held { body, _busy: busy })))
            }
        });
        let mut connection = pin!(
            self.builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
        );
        let mut idle = pin!(idle_for(idle, self.limits.idle_timeout));
        let mut shutting_down = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        // Timeouts, resets, malformed requests: the client's doing.
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                () = &mut idle, if !shutting_down => {
                    tracing::debug!(peer = %peer, "idle connection closed");
                    connection.as_mut().graceful_shutdown();
                    shutting_down = true;
                }
                _ = self.stop.changed(), if !shutting_down => {
                    connection.as_mut().graceful_shutdown();
                    shutting_down = true;
                }
            }
        }
    }
}

/// Whether a connection has requests in progress, and since when it has had none.
#[derive(Clone, Copy, Debug)]
struct Activity {
    requests: usize,
    since: Instant,
}

/// Completes once the connection has had no request in progress for `timeout`.
async fn idle_for(mut activity: watch::Receiver<Activity>, timeout: Duration) {
    loop {
        let now = *activity.borrow_and_update();
        if now.requests == 0 {
            tokio::select! {
                () = tokio::time::sleep_until(now.since + timeout) => return,
                changed = activity.changed() => if changed.is_err() { return },
            }
        } else if activity.changed().await.is_err() {
            return;
        }
    }
}

/// A request in progress on its connection, until dropped.
struct Busy(watch::Sender<Activity>);

impl Busy {
    fn start(activity: watch::Sender<Activity>) -> Self {
        activity.send_modify(|a| a.requests += 1);
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|a| {
            a.requests = a.requests.saturating_sub(1);
            a.since = Instant::now();
        });
    }
}

/// A response body that keeps its request counted as in progress while it is sent.
struct Held {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails once its deadline has passed.
struct Deadline {
    body: Incoming,
    deadline: Instant,
    timeout: Duration,
    /// Started on the first read that has to wait: a body nobody reads needs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    expired: bool,
}

impl Deadline {
    fn new(body: Incoming, deadline: Instant, timeout: Duration) -> Self {
        Self {
            body,
            deadline,
            timeout,
            sleep: None,
            expired: false,
        }
    }

    fn expire(&mut self) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.expired = true;
        let message = format!("the request body was not received within {} s", self.timeout.as_secs());
        Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::TimedOut, message))))
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        // Checked before reading too: a body that keeps arriving, only too slowly, is never
        // pending for long enough for the timer alone to catch it.
        if Instant::now() >= this.deadline {
            return this.expire();
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(io::Error::other)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        this.expire()
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn limits_under_a_second_are_refused_naming_the_field() {
        let limits = ConnectionLimits::default();
        let short = Duration::from_millis(999);
        let refusals = [
            ("header_read_timeout", limits.with_header_read_timeout(short)),
            ("idle_timeout", limits.with_idle_timeout(short)),
            ("body_timeout", limits.with_body_timeout(short)),
        ];
        for (name, refused) in refusals {
            assert!(
                matches!(refused, Err(Error::Invalid { field, .. }) if field == name),
                "{name}: {refused:?}"
            );
        }
        let set = limits
            .with_header_read_timeout(Duration::from_secs(1))
            .and_then(|l| l.with_idle_timeout(Duration::from_secs(2)))
            .and_then(|l| l.with_body_timeout(Duration::from_secs(3)))
            .expect("limits of a second or more");
        assert_eq!(
            (set.header_read_timeout(), set.idle_timeout(), set.body_timeout()),
            (Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(3))
        );
    }
}
