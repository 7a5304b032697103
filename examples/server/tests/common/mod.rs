//! The example server in-process for the API tests: a real SQLite file and local-file documents
//! in a temp dir, a manual clock, a recording notifier, and a request helper; and for tests over
//! the wire, the real `collab-server` process ([`process`]) and an HTTP client ([`http`]).
// Fixtures panic on a broken set-up, like assertions; not every test file uses every fixture.
#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use collab_core::notify::RecordingNotifier;
use collab_core::rooms::{Rooms, RoomsBuilder};
use collab_core::time::ManualClock;
use collab_core::{TenantId, Timestamp};
use collab_server::auth::{Agents, PasswordCost};
use collab_server::quota::Quotas;
use collab_server::streams::StreamLimits;
use collab_server::{AppState, Shared, app};
use collab_store_s3::{Durability, ObjectBlobStore};
use collab_store_sqlite::SqliteRoomStore;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub mod http;
pub mod matrix;
pub mod process;

/// The origin the test server believes it has.
pub const ORIGIN: &str = "http://127.0.0.1:8080";

/// The Twilio auth token the test server checks callbacks with: 32 hex digits, as Twilio's are.
pub const TWILIO_TOKEN: &str = "9f86d081884c7d659a2feaa0c55ad015";
/// The Vonage signature secret the test servers check delivery receipts with.
pub const VONAGE_SIGNATURE_SECRET: &str = "vonage-signature-secret-0123456789";

/// The example's agents in the tests: `ada` (password `secret`, an admin) and `bob` (`hunter2`),
/// both of tenant `example`, their passwords hashed at the least cost (the tests sign in
/// hundreds of times).
pub fn agents() -> Agents {
    let passwords = HashMap::from([
        ("ada".to_owned(), "secret".to_owned()),
        ("bob".to_owned(), "hunter2".to_owned()),
    ]);
    let tenant = TenantId::new("example").unwrap();
    Agents::new(tenant.clone(), HashMap::new())
        .with_password_cost(PasswordCost::MINIMAL)
        .with_tenant(tenant.clone(), passwords)
        .with_admin(tenant, "ada")
}

/// Waits until `done` answers true, asking every 20 ms for up to 10 s; panics saying `what`
/// never happened.
pub async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server and what a test may reach behind it.
pub struct Server {
    pub app: Router,
    pub state: AppState,
    pub rooms: Rooms,
    pub clock: Arc<ManualClock>,
    pub inbox: Arc<RecordingNotifier>,
    pub dir: tempfile::TempDir,
    /// The `Host` it answers to, and its origin: what its requests send.
    host: String,
    origin: String,
}

/// One answer, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
    pub fn cookie(&self) -> String {
        let set = self.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    }
    /// The cookie `name` the answer sets (`name=value`), if it sets one.
    pub fn cookie_named(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default())
            .find(|v| v.split_once('=').is_some_and(|(key, _)| key == name))
            .map(str::to_owned)
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap_or_default())
    }
}

impl Server {
    /// The server with [`agents`] and the default settings.
    pub async fn start() -> Server {
        Self::start_with(agents(), |builder| builder).await
    }

    /// The server with `agents`; `customize` may change the service's parts and settings.
    pub async fn start_with(agents: Agents, customize: impl FnOnce(RoomsBuilder) -> RoomsBuilder) -> Server {
        Self::start_with_quotas(agents, Quotas::default(), customize).await
    }

    /// As [`Server::start_with`], with these rate limits per session.
    pub async fn start_with_quotas(
        agents: Agents,
        quotas: Quotas,
        customize: impl FnOnce(RoomsBuilder) -> RoomsBuilder,
    ) -> Server {
        Self::build(agents, quotas, StreamLimits::default(), customize, "127.0.0.1:8080").await
    }

    /// As [`Server::start_with`], with these live-stream limits (how often an open stream
    /// checks its caller's session, among them).
    pub async fn start_with_streams(
        agents: Agents,
        streams: StreamLimits,
        customize: impl FnOnce(RoomsBuilder) -> RoomsBuilder,
    ) -> Server {
        Self::build(agents, Quotas::default(), streams, customize, "127.0.0.1:8080").await
    }

    /// The server with [`agents`], served on a loopback port as well, for a browser (its host
    /// and origin are that port's; the manual clock is still the test's): the server and its
    /// base URL.
    pub async fn start_listening() -> (Server, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let server = Self::build(
            agents(),
            Quotas::default(),
            StreamLimits::default(),
            |builder| builder,
            &host,
        )
        .await;
        tokio::spawn(collab_server::serve::serve(
            listener,
            server.app.clone(),
            collab_server::serve::ConnectionLimits::default(),
            std::future::pending(),
        ));
        (server, format!("http://{host}"))
    }

    async fn build(
        agents: Agents,
        quotas: Quotas,
        streams: StreamLimits,
        customize: impl FnOnce(RoomsBuilder) -> RoomsBuilder,
        host: &str,
    ) -> Server {
        let origin = format!("http://{host}");
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteRoomStore::open(dir.path().join("rooms.db")).await.unwrap();
        let documents = ObjectBlobStore::local(dir.path().join("documents"), Durability::Synced)
            .unwrap()
            .build()
            .unwrap();
        let clock = Arc::new(ManualClock::new(Timestamp::from(std::time::SystemTime::now())));
        let inbox = Arc::new(RecordingNotifier::new());
        let builder = Rooms::builder()
            .room_store(store)
            .blob_store(documents)
            .email(inbox.clone())
            .clock(clock.clone())
            .access_hook(agents.admin_hook());
        let rooms = customize(builder).build();
        let state = AppState::new(Shared {
            rooms: rooms.clone(),
            agents,
            inbox: Some(inbox.clone()),
            secure_cookies: false,
            origin: origin.clone(),
            twilio: Some(collab_notify::TwilioWebhook::new(collab_notify::SecretString::from(
                TWILIO_TOKEN,
            ))),
            vonage: Some(collab_notify::VonageReceipts::new(
                collab_notify::SecretString::from(VONAGE_SIGNATURE_SECRET),
                collab_notify::vonage::SignatureMethod::Sha256Hmac,
            )),
            allowed_hosts: vec![host.to_owned()],
            live_streams: collab_server::streams::LiveStreams::new(streams),
            quotas,
        });
        tokio::spawn({
            let rooms = rooms.clone();
            async move { rooms.run_dispatcher().await }
        });
        Server {
            app: app(state.clone()),
            state,
            rooms,
            clock,
            inbox,
            dir,
            host: host.to_owned(),
            origin,
        }
    }

    /// The files under the documents folder: what uploads left on disk.
    pub fn stored_documents(&self) -> usize {
        fn count(path: &std::path::Path) -> usize {
            std::fs::read_dir(path).map_or(0, |entries| {
                entries
                    .flatten()
                    .map(|e| if e.path().is_dir() { count(&e.path()) } else { 1 })
                    .sum()
            })
        }
        count(&self.dir.path().join("documents"))
    }

    /// A request with a content type and maybe a cookie.
    pub async fn send(&self, method: &str, uri: &str, cookie: Option<&str>, body: Body, content_type: &str) -> Reply {
        let mut headers = vec![(header::CONTENT_TYPE.as_str(), content_type)];
        headers.extend(cookie.map(|cookie| (header::COOKIE.as_str(), cookie)));
        self.send_with(method, uri, &headers, body).await
    }

    /// A request with any headers.
    pub async fn send_with(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: Body) -> Reply {
        self.send_within(method, uri, headers, body, None).await
    }

    /// A request with any headers; with `within`, the body is read until then only (for streams
    /// that never end, like live events).
    pub async fn send_within(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
        within: Option<Duration>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        // As a browser on the server's page would: the server refuses requests naming no host,
        // and state changes naming no origin. A test's own `host` or `origin` replaces these.
        let given = |name: &str| headers.iter().any(|(given, _)| given.eq_ignore_ascii_case(name));
        for (name, value) in [("host", self.host.as_str()), ("origin", self.origin.as_str())] {
            if !given(name) {
                request = request.header(name, value);
            }
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self.app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = match within {
            None => axum::body::to_bytes(response.into_body(), 64 << 20)
                .await
                .unwrap()
                .to_vec(),
            Some(within) => {
                let mut stream = response.into_body().into_data_stream();
                let mut body = Vec::new();
                let deadline = tokio::time::Instant::now() + within;
                while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
                    body.extend_from_slice(&chunk);
                }
                body
            }
        };
        Reply { status, headers, body }
    }

    /// A JSON request.
    pub async fn call(&self, method: &str, uri: &str, cookie: Option<&str>, body: Option<Value>) -> Reply {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.send(method, uri, cookie, body, "application/json").await
    }

    /// Signs `name` in: the agent's cookie (`collab_agent=…`).
    pub async fn agent(&self, name: &str, password: &str) -> String {
        let reply = self
            .call(
                "POST",
                "/api/session",
                None,
                Some(json!({"agent": name, "password": password})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        let cookie = reply.cookie();
        let set = reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        cookie
    }

    /// A new room of `agent`'s tenant.
    pub async fn create_room(&self, agent: &str) -> String {
        let reply = self.call("POST", "/api/rooms", Some(agent), None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
        reply.json()["id"].as_str().unwrap().to_owned()
    }

    /// Invites a customer to `room` through `channel`; the answer's JSON.
    pub async fn invite(&self, agent: &str, room: &str, invite: Value) -> Value {
        let reply = self
            .call("POST", &format!("/api/rooms/{room}/invites"), Some(agent), Some(invite))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
        reply.json()
    }

    /// A fresh "Get Link" token of `room`.
    pub async fn link_token(&self, agent: &str, room: &str) -> String {
        let link = self.invite(agent, room, json!({"channel": "link"})).await;
        link["link"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
    }

    /// Joins through an invite token: the customer's cookie (`collab_customer=…`).
    pub async fn join(&self, token: &str) -> String {
        let joined = self
            .call("POST", "/api/join", None, Some(json!({"token": token})))
            .await;
        assert_eq!(joined.status, StatusCode::OK, "{:?}", joined.json());
        joined.cookie()
    }

    /// A room with `first last` invited by email, and the customer's cookie.
    pub async fn room_for(&self, agent: &str, first: &str, last: &str) -> (String, String) {
        let room = self.create_room(agent).await;
        let email = format!("{}@example.com", first.to_lowercase());
        let invite = json!({"channel": "email", "first_name": first, "last_name": last, "identifier": email});
        self.invite(agent, &room, invite).await;
        let token = self.link_token(agent, &room).await;
        (room, self.join(&token).await)
    }

    /// A room with Grace invited by email, and her customer cookie.
    pub async fn room_with_customer(&self, agent: &str) -> (String, String) {
        self.room_for(agent, "Grace", "Hopper").await
    }

    /// Uploads `bytes` as `name` (already URL-encoded) to `room`.
    pub async fn upload(&self, room: &str, cookie: &str, name: &str, bytes: Vec<u8>) -> Reply {
        let uri = format!("/api/rooms/{room}/documents?name={name}");
        self.send(
            "POST",
            &uri,
            Some(cookie),
            Body::from(bytes),
            "application/octet-stream",
        )
        .await
    }
}
