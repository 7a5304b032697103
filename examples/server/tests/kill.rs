//! SIGKILL of the example server (its real binary, on SQLite and local files in a temp dir)
//! while agents and customers post, upload and invite by SMS through a Twilio mock, three
//! times, then a restart on the same data each time:
//!
//! - every post and upload the server acknowledged (HTTP 2xx) is there, once, intact;
//! - every SMS invite is recorded as sent exactly once, and reached the provider at least once;
//!   a second message happens only for an invite whose message the provider had taken from a
//!   process that was then killed before recording it (Twilio has no idempotency key: no
//!   library can tell whether such a message went out), and one kill is aimed at that moment;
//!   invites waiting in the outbox for a retry (a provider outage) when the process dies are
//!   sent exactly once;
//! - live clients (SSE with `Last-Event-ID`) resume after each restart with no gap and no
//!   duplicate;
//! - after the last run, every stored document is named by an event once orphans are swept, and
//!   every event's document is stored.
//!
//! Kill 1 falls at a random moment, kill 2 while the provider holds a message it took, kill 3
//! during a provider outage; the moments come from a fixed seed.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use collab_core::blob::{BlobKey, BlobPrefix, Sha256Digest};
use collab_core::rooms::{Rooms, RoomsConfig};
use collab_core::testing::files::pdf_with_pages;
use collab_core::time::ManualClock;
use collab_core::*;
use collab_store_s3::{Durability, ObjectBlobStore};
use collab_store_sqlite::SqliteRoomStore;
use common::http::Http;
use common::process::ServerProcess;
use futures_util::TryStreamExt;
use serde_json::{Value, json};

const ROOMS: usize = 4;
const KILLS: usize = 3;
const SEED: u64 = 0x00c0_11ab;
/// The dispatcher's lease, the shortest allowed: a dead process's claims free up after it.
const LEASE_SECS: u64 = 5;
const AGENT: &str = "agent@example.com";
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// A small deterministic generator: the same kill moments on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

// ---- a Twilio mock ---------------------------------------------------------------------------

/// A message the mock provider took: Twilio sends it once it has the request.
#[derive(Clone, Debug)]
struct Sms {
    invite: String,
    sid: String,
    link: String,
    at: Instant,
}

#[derive(Default)]
struct Provider {
    messages: Mutex<Vec<Sms>>,
    /// When set, the next message is taken and never answered; the sender learns its invite.
    hold: Mutex<Option<tokio::sync::oneshot::Sender<String>>>,
    /// While set, every request is refused with 503 (nothing sent): invites wait for a retry.
    outage: AtomicBool,
    /// The invites refused during the outage.
    refused: Mutex<Vec<String>>,
}

async fn twilio_mock(provider: Arc<Provider>) -> String {
    async fn create(
        axum::extract::State(provider): axum::extract::State<Arc<Provider>>,
        body: axum::body::Bytes,
    ) -> (StatusCode, String) {
        let form: HashMap<String, String> = collab_notify::twilio::parse_form(&body).into_iter().collect();
        let callback = form.get("StatusCallback").cloned().unwrap_or_default();
        let invite = callback
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("invite="))
            .unwrap_or_default()
            .to_owned();
        let link = form["Body"].rsplit(' ').next().unwrap_or_default().to_owned();
        if provider.outage.load(Ordering::Relaxed) {
            provider.refused.lock().unwrap().push(invite);
            return (StatusCode::SERVICE_UNAVAILABLE, json!({ "code": 20503 }).to_string());
        }
        let hold = provider.hold.lock().unwrap().take();
        let sid = {
            let mut messages = provider.messages.lock().unwrap();
            let sid = format!("SM{:032x}", messages.len() + 1);
            messages.push(Sms {
                invite: invite.clone(),
                sid: sid.clone(),
                link,
                at: Instant::now(),
            });
            sid
        };
        if let Some(held) = hold {
            let _ = held.send(invite);
            std::future::pending::<()>().await;
        }
        (StatusCode::CREATED, json!({ "sid": sid }).to_string())
    }
    let app = Router::new()
        .route("/2010-04-01/Accounts/{account}/Messages.json", post(create))
        .with_state(provider);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

// ---- the server process ----------------------------------------------------------------------

struct Server {
    /// Zero until the first run picks a port; every restart listens on that one.
    port: u16,
    data: PathBuf,
    twilio: String,
    process: Option<ServerProcess>,
    /// When each run started and, for killed ones, when it was killed.
    runs: Vec<(Instant, Option<Instant>)>,
}

impl Server {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let process = ServerProcess::start(|command| {
            command
                .args(["--addr", &format!("127.0.0.1:{}", self.port)])
                .arg("--data")
                .arg(&self.data)
                .env("COLLAB_DELIVERY_LEASE", LEASE_SECS.to_string())
                .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
                .env("TWILIO_AUTH_TOKEN", "twilio-auth-token")
                .env("COLLAB_SMS_FROM", "+15005550006")
                .env("TWILIO_BASE_URL", &self.twilio)
                // The load posts, uploads and re-invites far faster than the abuse limits let
                // one session or one number: they are not what this test is about.
                .env("COLLAB_MESSAGE_BURST", "1000000")
                .env("COLLAB_UPLOAD_BURST", "1000000")
                .env("COLLAB_INVITE_LIMITS", "off")
                // Every re-invite's link is checked to open the room after the kills: none may
                // supersede another.
                .env("COLLAB_LINKS", "keep")
                .env("RUST_LOG", "info");
        });
        self.port = process.port();
        self.process = Some(process);
        self.runs.push((Instant::now(), None));
    }

    fn kill(&mut self) {
        self.process.take().unwrap().kill();
        self.runs.last_mut().unwrap().1 = Some(Instant::now());
    }

    /// Whether `at` fell in a run that was then killed.
    fn in_killed_run(&self, at: Instant) -> bool {
        self.runs
            .iter()
            .any(|(start, killed)| killed.is_some_and(|killed| *start <= at && at <= killed))
    }
}

// ---- clients ---------------------------------------------------------------------------------

/// What the clients were told: the server's acknowledgements.
#[derive(Default)]
struct Acked {
    /// (room, client key) -> seq.
    posts: BTreeMap<(String, String), u64>,
    /// (room, document) -> SHA-256 of the bytes sent.
    uploads: BTreeMap<(String, String), Sha256Digest>,
    /// (room, invite).
    invites: BTreeSet<(String, String)>,
}

#[derive(Clone)]
struct Client {
    http: Http,
    /// The agent's cookie (`collab_agent=…`), renewed when its session died with a process.
    agent: Arc<Mutex<String>>,
}

enum As<'a> {
    Agent,
    Customer(&'a str),
}

impl Client {
    fn cookie(&self, who: &As<'_>) -> String {
        match who {
            As::Agent => self.agent.lock().unwrap().clone(),
            As::Customer(cookie) => (*cookie).to_owned(),
        }
    }

    /// Sends until the server answers (it may be down); signs the agent in again when its
    /// session died with the process.
    async fn call(&self, who: &As<'_>, method: &str, path: &str, body: Option<String>) -> (StatusCode, Value) {
        loop {
            let body = body.clone().map(String::into_bytes);
            let Some((status, answer)) = self.once(who, method, path, "application/json", body).await else {
                tokio::time::sleep(Duration::from_millis(30)).await;
                continue;
            };
            if status == StatusCode::UNAUTHORIZED && matches!(who, As::Agent) {
                self.sign_in().await;
                continue;
            }
            return (status, answer);
        }
    }

    async fn sign_in(&self) {
        let body = json!({ "agent": AGENT, "password": "dev" }).to_string().into_bytes();
        let headers = [("content-type", "application/json")];
        let Ok(reply) = self.http.send("POST", "/api/session", &headers, body).await else {
            return;
        };
        if let Some(cookie) = reply.cookie_named("collab_agent") {
            *self.agent.lock().unwrap() = cookie;
        }
    }

    /// One attempt: the status, or `None` if no answer came (the server died meanwhile).
    async fn once(
        &self,
        who: &As<'_>,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<Vec<u8>>,
    ) -> Option<(StatusCode, Value)> {
        let cookie = self.cookie(who);
        let headers = [("cookie", cookie.as_str()), ("content-type", content_type)];
        let reply = self
            .http
            .send(method, path, &headers, body.unwrap_or_default())
            .await
            .ok()?;
        Some((reply.status, reply.json()))
    }
}

/// A room with its customer joined; returns the room and the customer's cookie.
async fn room_with_customer(client: &Client, index: usize) -> (String, String) {
    let (status, room) = client.call(&As::Agent, "POST", "/api/rooms", None).await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    let room = room["id"].as_str().unwrap().to_owned();
    let invite = json!({
        "channel": "sms", "first_name": "Grace", "last_name": "Hopper",
        "identifier": format!("+4479111234{index:02}"),
    });
    let path = format!("/api/rooms/{room}/invites");
    let (status, answer) = client.call(&As::Agent, "POST", &path, Some(invite.to_string())).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let link = json!({ "channel": "link" }).to_string();
    let (_, answer) = client.call(&As::Agent, "POST", &path, Some(link)).await;
    let token = answer["link"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let joined = client
        .http
        .call("POST", "/api/join", None, Some(json!({ "token": token })))
        .await;
    assert_eq!(joined.status, StatusCode::OK);
    (room, joined.cookie_named("collab_customer").unwrap())
}

/// An answer that says "try again": a conflict past the service's retries, a failure.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::CONFLICT || status.is_server_error()
}

/// What a load task works with: one room, its customer, the shared acknowledgements.
#[derive(Clone)]
struct Worker {
    client: Client,
    room: String,
    customer: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
}

/// Posts with a client key each, retried with the same key until answered: every key ends up
/// in the timeline once, acknowledged or not.
async fn poster(worker: Worker) {
    let mut n = 0u64;
    while !worker.stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("post-{n}");
        let who = if n.is_multiple_of(2) {
            As::Customer(&worker.customer)
        } else {
            As::Agent
        };
        let body = json!({ "text": format!("message {n}"), "client_key": key }).to_string();
        let path = format!("/api/rooms/{}/messages", worker.room);
        let (status, event) = worker.client.call(&who, "POST", &path, Some(body)).await;
        if status == StatusCode::CREATED {
            let seq = event["seq"].as_u64().unwrap();
            let posts = &mut worker.acked.lock().unwrap().posts;
            posts.insert((worker.room.clone(), key), seq);
        } else {
            // Busy (a conflict past the retries) or failing: it may be recorded; never twice.
            assert!(retryable(status), "post {n}: {status} {event}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Uploads text and PDF documents; an upload whose answer never came is not retried.
async fn uploader(worker: Worker) {
    let Worker {
        client, room, customer, ..
    } = &worker;
    let mut n = 0u64;
    while !worker.stop.load(Ordering::Relaxed) {
        n += 1;
        let (name, bytes) = if n.is_multiple_of(4) {
            (format!("scan-{n}.pdf"), pdf_with_pages(1 + (n as usize % 3)))
        } else {
            let mut text = format!("upload {n} of room {room}\n").into_bytes();
            text.resize(128 * 1024 + n as usize, b'.');
            (format!("notes-{n}.txt"), text)
        };
        let digest = Sha256Digest::of(&bytes);
        let path = format!("/api/rooms/{room}/documents?name={name}");
        match client
            .once(
                &As::Customer(customer),
                "POST",
                &path,
                "application/octet-stream",
                Some(bytes),
            )
            .await
        {
            Some((StatusCode::CREATED, event)) => {
                let document = event["document"]["id"].as_str().unwrap().to_owned();
                let uploads = &mut worker.acked.lock().unwrap().uploads;
                uploads.insert((room.clone(), document), digest);
            }
            Some((status, event)) => assert!(retryable(status), "upload {n}: {status} {event}"),
            None => tokio::time::sleep(Duration::from_millis(30)).await,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Re-invites the customers by SMS, one room after another.
async fn inviter(client: Client, rooms: Vec<String>, stop: Arc<AtomicBool>, acked: Arc<Mutex<Acked>>) {
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let room = &rooms[n % rooms.len()];
        let path = format!("/api/rooms/{room}/invites");
        let body = json!({ "channel": "sms" }).to_string().into_bytes();
        match client
            .once(&As::Agent, "POST", &path, "application/json", Some(body))
            .await
        {
            Some((StatusCode::CREATED, answer)) => {
                let invite = answer["invite"].as_str().unwrap().to_owned();
                acked.lock().unwrap().invites.insert((room.clone(), invite));
            }
            Some((StatusCode::UNAUTHORIZED, _)) => client.sign_in().await,
            Some((status, answer)) => assert!(retryable(status), "invite {n}: {status} {answer}"),
            None => tokio::time::sleep(Duration::from_millis(30)).await,
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// What a live client saw.
#[derive(Debug, Default)]
struct Seen {
    seqs: Vec<u64>,
    connections: usize,
}

/// Follows the room's live events as its customer, reconnecting with `Last-Event-ID` whenever
/// the stream ends, until `stop` and caught up with `until`.
async fn live_reader(http: Http, room: String, customer: String, seen: Arc<Mutex<Seen>>) {
    let path = format!("/api/rooms/{room}/live?as=customer");
    loop {
        let last = seen.lock().unwrap().seqs.last().copied().unwrap_or(0).to_string();
        let mut headers = vec![("cookie", customer.as_str())];
        if last != "0" {
            headers.push(("last-event-id", &last));
        }
        let reply = http.open("GET", &path, &headers, Vec::new()).await;
        let reply = reply.ok().filter(|r| r.status() == StatusCode::OK);
        let Some(mut reply) = reply else {
            tokio::time::sleep(Duration::from_millis(30)).await;
            continue;
        };
        seen.lock().unwrap().connections += 1;
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = reply.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let message: String = buffer.drain(..end + 2).collect();
                if let Some(id) = message.lines().find_map(|l| l.strip_prefix("id: ")) {
                    seen.lock().unwrap().seqs.push(id.trim().parse().unwrap());
                }
            }
        }
    }
}

// ---- the test --------------------------------------------------------------------------------

fn sent_records(events: &[Event]) -> BTreeMap<InviteId, Vec<Option<String>>> {
    let mut sent: BTreeMap<InviteId, Vec<Option<String>>> = BTreeMap::new();
    for event in events {
        if let EventData::InviteDelivery {
            invite,
            status: DeliveryStatus::Sent { provider_id },
        } = &event.data
        {
            sent.entry(*invite).or_default().push(provider_id.clone());
        }
    }
    sent
}

async fn quiet(client: &Client, rooms: &[String]) -> bool {
    for room in rooms {
        let mut after = 0;
        let (mut invited, mut delivered) = (0, 0);
        loop {
            let path = format!("/api/rooms/{room}/events?after={after}&limit=1000");
            let (status, events) = client.call(&As::Agent, "GET", &path, None).await;
            assert_eq!(status, StatusCode::OK, "{events}");
            let events = events.as_array().unwrap().clone();
            for event in &events {
                let text = event["text"].as_str().unwrap_or_default();
                invited += usize::from(event["type"] == "customer_invited" && text.starts_with("Invited by sms"));
                delivered += usize::from(event["type"] == "invite_delivery");
                after = event["seq"].as_u64().unwrap();
            }
            if events.len() < 1000 {
                break;
            }
        }
        if invited != delivered {
            return false;
        }
    }
    true
}

fn documents_dir(data: &Path) -> PathBuf {
    data.join("documents")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged_and_sends_each_invite_once_but_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(Provider::default());
    let twilio = twilio_mock(provider.clone()).await;
    let mut server = Server {
        port: 0,
        data: dir.path().join("data"),
        twilio,
        process: None,
        runs: Vec::new(),
    };
    server.start();
    let http = Http::new(&server.base());
    let client = Client {
        http: http.clone(),
        agent: Arc::default(),
    };
    client.sign_in().await;

    let mut rooms = Vec::new();
    for index in 0..ROOMS {
        rooms.push(room_with_customer(&client, index).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut load = Vec::new();
    let mut readers = Vec::new();
    let live_http = Http::with_timeout(&server.base(), Duration::from_secs(600));
    for (room, customer) in &rooms {
        let worker = Worker {
            client: client.clone(),
            room: room.clone(),
            customer: customer.clone(),
            stop: stop.clone(),
            acked: acked.clone(),
        };
        load.push(tokio::spawn(poster(worker.clone())));
        load.push(tokio::spawn(uploader(worker)));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let reader = tokio::spawn(live_reader(
            live_http.clone(),
            room.clone(),
            customer.clone(),
            seen.clone(),
        ));
        readers.push((room.clone(), seen, reader));
    }
    let room_ids: Vec<String> = rooms.iter().map(|(room, _)| room.clone()).collect();
    load.push(tokio::spawn(inviter(
        client.clone(),
        room_ids.clone(),
        stop.clone(),
        acked.clone(),
    )));

    // Lets the load run in the current process: every live client connected to it, and posts
    // acknowledged by it. The machine may be slow; this keeps each run meaningful.
    let settle = |run: usize| {
        let readers: Vec<Arc<Mutex<Seen>>> = readers.iter().map(|(_, seen, _)| seen.clone()).collect();
        let acked = acked.clone();
        async move {
            let posts = acked.lock().unwrap().posts.len();
            let started = Instant::now();
            loop {
                let connected = readers.iter().all(|seen| seen.lock().unwrap().connections >= run);
                if connected && acked.lock().unwrap().posts.len() >= posts + ROOMS {
                    return;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "run {run} made no progress"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let mut random = Lcg(SEED);
    let mut held_invite = None;
    let mut outage_began = None;
    for kill in 1..=KILLS {
        settle(kill).await;
        if kill == 2 {
            // Aimed at the window: the provider has taken a message, the server has not
            // recorded it.
            let (held, invite) = tokio::sync::oneshot::channel();
            *provider.hold.lock().unwrap() = Some(held);
            let invite = tokio::time::timeout(Duration::from_secs(60), invite).await;
            held_invite = Some(invite.expect("an invite reached the provider").unwrap());
        } else if kill == 3 {
            // During a provider outage: refused invites wait for their retry in the outbox.
            outage_began = Some(Instant::now());
            provider.outage.store(true, Ordering::Relaxed);
            let started = Instant::now();
            while provider.refused.lock().unwrap().len() < 2 {
                assert!(started.elapsed() < Duration::from_secs(60), "no invite was refused");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(random.below(500))).await;
        } else {
            tokio::time::sleep(Duration::from_millis(random.below(1500))).await;
        }
        server.kill();
        tokio::time::sleep(Duration::from_millis(random.below(300))).await;
        server.start();
    }
    settle(KILLS + 1).await;
    provider.outage.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await.unwrap();
    }

    // Every invite delivered and recorded: dead processes' claims free up after the lease.
    let started = Instant::now();
    while !quiet(&client, &room_ids).await {
        assert!(started.elapsed() < Duration::from_secs(60), "invites still undelivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut last_seqs = BTreeMap::new();
    for room in &room_ids {
        let (_, view) = client
            .call(&As::Agent, "GET", &format!("/api/rooms/{room}"), None)
            .await;
        last_seqs.insert(room.clone(), view["seq"].as_u64().unwrap());
    }
    let started = Instant::now();
    for (room, seen, _) in &readers {
        while seen.lock().unwrap().seqs.last() != last_seqs.get(room) {
            assert!(started.elapsed() < Duration::from_secs(30), "a live client is behind");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    server.kill(); // quiet now: nothing is in flight

    // ---- what the data holds --------------------------------------------------------------
    let store = SqliteRoomStore::open(server.data.join("rooms.db")).await.unwrap();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let messages = provider.messages.lock().unwrap().clone();
    let mut by_invite: HashMap<&str, Vec<&Sms>> = HashMap::new();
    for sms in &messages {
        by_invite.entry(sms.invite.as_str()).or_default().push(sms);
    }
    let mut duplicates = 0;
    let mut logged_invites = BTreeSet::new();
    for room in &room_ids {
        let id: RoomId = room.parse().unwrap();
        let events = store.read_events(id, Seq::ZERO, usize::MAX).await.unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq.get()).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());

        // Posts: every acknowledged one at its seq; every key once, acknowledged or not.
        let mut keys: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for event in &events {
            if let EventData::MessagePosted {
                client_key: Some(key), ..
            } = &event.data
            {
                keys.entry(key.clone()).or_default().push(event.seq.get());
            }
        }
        for ((r, key), seq) in &acked.posts {
            if r == room {
                assert_eq!(keys.get(key), Some(&vec![*seq]), "acknowledged post {key} of {room}");
            }
        }
        assert!(keys.values().all(|s| s.len() == 1), "a post recorded twice: {keys:?}");

        // Uploads: every acknowledged one recorded, its bytes stored intact.
        let documents: HashMap<String, &DocumentMeta> = events
            .iter()
            .filter_map(|e| match &e.data {
                EventData::DocumentShared(meta) => Some((meta.id.to_string(), meta)),
                _ => None,
            })
            .collect();
        let blobs = ObjectBlobStore::local(documents_dir(&server.data), Durability::Synced)
            .unwrap()
            .build()
            .unwrap();
        for ((r, document), digest) in &acked.uploads {
            if r != room {
                continue;
            }
            let meta = documents
                .get(document)
                .unwrap_or_else(|| panic!("upload {document} lost"));
            assert_eq!(meta.sha256, *digest);
            let download = blobs.get(&meta.blob, None).await.unwrap().expect("stored");
            let chunks: Vec<bytes::Bytes> = download.stream.try_collect().await.unwrap();
            assert_eq!(Sha256Digest::of(&chunks.concat()), *digest, "upload {document} intact");
        }

        // Invites: each recorded as sent once, with the id of a message the provider took;
        // any other message for it was taken from a process that was then killed.
        let sent = sent_records(&events);
        for event in &events {
            let EventData::CustomerInvited {
                invite,
                channel: Channel::Sms,
                ..
            } = &event.data
            else {
                continue;
            };
            logged_invites.insert((room.clone(), invite.to_string()));
            let records = sent.get(invite).cloned().unwrap_or_default();
            assert_eq!(records.len(), 1, "invite {invite}: {records:?}");
            let delivered = by_invite.get(invite.to_string().as_str()).cloned().unwrap_or_default();
            assert!(!delivered.is_empty(), "invite {invite} never reached the provider");
            let recorded = records[0].clone().unwrap();
            assert!(delivered.iter().any(|m| m.sid == recorded), "invite {invite}");
            for extra in delivered.iter().filter(|m| m.sid != recorded) {
                assert!(
                    server.in_killed_run(extra.at),
                    "invite {invite}: a second message without a kill"
                );
                duplicates += 1;
            }
            assert!(delivered.len() <= 1 + KILLS, "invite {invite}: {}", delivered.len());
        }
    }
    for invite in &acked.invites {
        assert!(logged_invites.contains(invite), "acknowledged invite {invite:?} lost");
    }
    // The aimed kill: the held message was taken and never recorded; it went out again, and
    // both links open the room.
    let held = held_invite.unwrap();
    let held_messages = &by_invite[held.as_str()];
    assert!(held_messages.len() >= 2, "{held_messages:?}");
    // The invites waiting through the outage and the kill: each sent exactly once since.
    let outage_began = outage_began.unwrap();
    let waited: BTreeSet<String> = provider.refused.lock().unwrap().iter().cloned().collect();
    for invite in &waited {
        let since = by_invite[invite.as_str()]
            .iter()
            .filter(|m| m.at > outage_began)
            .count();
        assert_eq!(since, 1, "invite {invite} waited for its retry");
    }

    // Live clients: every event once, in order, across the restarts.
    for (room, seen, reader) in readers {
        reader.abort();
        let seen = seen.lock().unwrap();
        let expected: Vec<u64> = (1..=last_seqs[&room]).collect();
        assert_eq!(seen.seqs, expected, "live events of {room}");
        assert!(seen.connections > KILLS, "{room}: resumed after each restart");
    }

    // Orphans a kill left between a put and its event are swept; every event keeps its bytes.
    let clock =
        ManualClock::new(Timestamp::from(std::time::SystemTime::now()).saturating_add(Duration::from_secs(7200)));
    let blobs = ObjectBlobStore::local(documents_dir(&server.data), Durability::Synced)
        .unwrap()
        .build()
        .unwrap();
    let service = Rooms::builder()
        .room_store(store.clone())
        .blob_store(blobs.clone())
        .clock(clock)
        .config(RoomsConfig::default())
        .build();
    let sweep = service.sweep_orphan_documents().await.unwrap();
    let stored: BTreeSet<BlobKey> = blobs
        .list(&BlobPrefix::everything())
        .map_ok(|b| b.key)
        .try_collect()
        .await
        .unwrap();
    let mut named = BTreeSet::new();
    for room in &room_ids {
        let state = store.load_room(room.parse().unwrap()).await.unwrap().unwrap();
        named.extend(state.documents().iter().map(|d| d.blob.clone()));
    }
    assert_eq!(stored, named, "stored documents are exactly the named ones");

    // Both links of the held invite open the room (checked on a fresh run).
    server.start();
    for message in held_messages {
        let token = message.link.rsplit('/').next().unwrap();
        let joined = http
            .call("POST", "/api/join", None, Some(json!({ "token": token })))
            .await;
        assert_eq!(joined.status, StatusCode::OK, "link of {}", message.sid);
    }
    println!(
        "kills: {KILLS}; acknowledged: {} posts, {} uploads, {} invites; provider messages: {}, second sends: {duplicates}; invites waiting through the outage and a kill: {}; orphans swept: {}",
        acked.posts.len(),
        acked.uploads.len(),
        acked.invites.len(),
        messages.len(),
        waited.len(),
        sweep.deleted
    );
}
