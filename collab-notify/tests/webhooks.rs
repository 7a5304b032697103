//! Webhooks over real HTTP: a SQLite store, an in-process receiver (wiremock), signatures
//! checked by the Standard Webhooks authors' own verifier.
#![cfg(feature = "http")]
// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use collab_core::time::ManualClock;
use collab_core::webhook::{WebhookConfig, WebhookEvent, WebhookMessage, WebhookSecret, WebhookSender};
use collab_core::*;
use collab_notify::webhook::{HttpWebhookSender, Verifier};
use collab_store_sqlite::SqliteRoomStore;
use common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ENDPOINT: EndpointId = EndpointId::from_u128(0xE1);

async fn rooms_on(file: &Path, clock: &Arc<ManualClock>, endpoint: WebhookEndpoint) -> rooms::Rooms {
    let store = SqliteRoomStore::open(file).await.unwrap();
    let sender = HttpWebhookSender::allowing_private_networks(Duration::from_secs(5)).unwrap();
    let config = WebhookConfig::new().with_endpoint(tenant(), endpoint).unwrap();
    builder(clock).room_store(store).webhooks(sender, config).build()
}

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn endpoint_at(server: &MockServer, secret: WebhookSecret) -> WebhookEndpoint {
    WebhookEndpoint::new(ENDPOINT, &format!("{}/hooks", server.uri()), secret)
        .unwrap()
        .with_events(&[WebhookEvent::MessagePosted])
        .unwrap()
}

async fn receiver(status: u16) -> MockServer {
    server_answering("/hooks", ResponseTemplate::new(status)).await
}

/// A receiver answering `status` to its first `times` requests, then 200.
async fn receiver_refusing(times: u64, status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(status))
        .up_to_n_times(times)
        .with_priority(1)
        .mount(&server)
        .await;
    answer(&server, "/hooks", ResponseTemplate::new(200)).await;
    server
}

fn header<'a>(request: &'a wiremock::Request, name: &str) -> &'a str {
    request.headers.get(name).unwrap().to_str().unwrap()
}

fn seq_of(request: &wiremock::Request) -> u64 {
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    body["data"]["seq"].as_u64().unwrap()
}

/// Dispatcher passes over half an hour, a minute apart: longer than the backoffs of a few
/// failures.
async fn drain(rooms: &rooms::Rooms, clock: &ManualClock) {
    for _ in 0..30 {
        rooms.dispatch_due().await.unwrap();
        clock.advance(Duration::from_secs(60));
    }
}

#[tokio::test]
async fn the_standard_webhooks_verifier_accepts_our_signatures_under_either_secret_while_rotating() {
    let dir = tempfile::tempdir().unwrap();
    let server = receiver(204).await;
    let old = WebhookSecret::generate().unwrap();
    let new = WebhookSecret::generate().unwrap();
    let clock = clock();
    let endpoint = endpoint_at(&server, old.clone()).with_next_secret(new.clone());
    let rooms = rooms_on(&dir.path().join("rooms.db"), &clock, endpoint).await;
    let room = rooms.create_room(&agent()).await.unwrap().room;
    rooms.post_message(&agent(), room, "Hello Grace", None).await.unwrap();
    assert_eq!(rooms.dispatch_due().await.unwrap().sent, 1);

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(header(request, "content-type"), "application/json");
    assert!(header(request, "webhook-id").starts_with("msg_"));
    assert_eq!(
        header(request, "webhook-signature").split(' ').count(),
        2,
        "one signature per secret"
    );
    for secret in [&old, &new] {
        let theirs = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
        theirs
            .verify(&request.body, &request.headers)
            .expect("the reference verifier accepts the signature");
        Verifier::new(secret.clone())
            .verify(
                header(request, "webhook-id"),
                header(request, "webhook-timestamp"),
                header(request, "webhook-signature"),
                &request.body,
            )
            .expect("ours too");
    }
    let stranger = standardwebhooks::Webhook::new(&WebhookSecret::generate().unwrap().expose()).unwrap();
    assert!(stranger.verify(&request.body, &request.headers).is_err());
    let mut tampered = request.body.clone();
    tampered.push(b' ');
    let theirs = standardwebhooks::Webhook::new(&old.expose()).unwrap();
    assert!(theirs.verify(&tampered, &request.headers).is_err());
}

#[tokio::test]
async fn a_receiver_that_answers_500_three_times_gets_each_event_in_order_with_stable_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = receiver_refusing(3, 500).await;
    let clock = clock();
    let rooms = rooms_on(
        &dir.path().join("rooms.db"),
        &clock,
        endpoint_at(&server, WebhookSecret::generate().unwrap()),
    )
    .await;
    let room = rooms.create_room(&agent()).await.unwrap().room;
    let mut posted = Vec::new();
    for text in ["one", "two", "three", "four", "five"] {
        posted.push(rooms.post_message(&agent(), room, text, None).await.unwrap().seq.get());
    }
    drain(&rooms, &clock).await;

    let received = requests(&server).await;
    assert_eq!(received.len(), posted.len() + 3, "three refusals, then one each");
    let mut delivered = Vec::new();
    let mut last_id: Option<(String, u64)> = None;
    for request in &received {
        let (id, seq) = (header(request, "webhook-id").to_owned(), seq_of(request));
        if let Some((previous_id, previous_seq)) = &last_id {
            assert!(seq >= *previous_seq, "never an older event after a newer one");
            assert_eq!(
                seq == *previous_seq,
                id == *previous_id,
                "a retry keeps its id; a new event has a new one"
            );
        }
        if delivered.last() != Some(&seq) {
            delivered.push(seq);
        }
        last_id = Some((id, seq));
    }
    assert_eq!(delivered, posted, "every event, in the room's order");
}

#[tokio::test]
async fn a_webhook_queued_before_a_crash_is_sent_after_the_restart_with_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rooms.db");
    let server = receiver_refusing(1, 503).await;
    let secret = WebhookSecret::generate().unwrap();
    let clock = clock();
    {
        let rooms = rooms_on(&file, &clock, endpoint_at(&server, secret.clone())).await;
        let room = rooms.create_room(&agent()).await.unwrap().room;
        rooms
            .post_message(&agent(), room, "before the crash", None)
            .await
            .unwrap();
        // One attempt, refused; then the process is gone (its Rooms and store dropped).
        assert_eq!(rooms.dispatch_due().await.unwrap().retried, 1);
    }
    let rooms = rooms_on(&file, &clock, endpoint_at(&server, secret)).await;
    clock.advance(Duration::from_secs(3600));
    assert_eq!(rooms.dispatch_due().await.unwrap().sent, 1);
    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    assert_eq!(header(&received[0], "webhook-id"), header(&received[1], "webhook-id"));
    assert_eq!(seq_of(&received[1]), 2);
}

#[tokio::test]
async fn the_default_sender_refuses_plain_http_and_private_addresses_without_a_request() {
    let server = receiver(200).await;
    let sender = HttpWebhookSender::new(Duration::from_secs(5)).unwrap();
    let message = WebhookMessage {
        id: "msg_1".to_owned(),
        event: WebhookEvent::MessagePosted,
        body: "{}".to_owned(),
    };
    let port = server.address().port();
    for url in [
        format!("http://127.0.0.1:{port}/hooks"),
        format!("https://127.0.0.1:{port}/hooks"),
        format!("https://[::1]:{port}/hooks"),
        format!("https://localhost:{port}/hooks"),
        "https://10.0.0.1/hooks".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        let endpoint = WebhookEndpoint::new(ENDPOINT, &url, WebhookSecret::generate().unwrap()).unwrap();
        let refused = sender.send(&endpoint, &message).await.expect_err(&url);
        let text = format!("{refused}");
        assert!(
            text.contains("private") || text.contains("https") || text.contains("could not connect"),
            "{url}: {text}"
        );
    }
    assert!(
        requests(&server).await.is_empty(),
        "nothing reached the loopback receiver"
    );
}
