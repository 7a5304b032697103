//! Languages over the API: invites sent in the language asked for (or the tenant's), the
//! customer's page language in `GET /api/me`, the strings files served and complete.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use collab_core::notify::{Notification, RecordingNotifier};
use collab_core::rooms::RoomsConfig;
use collab_core::{Locale, TenantId};
use collab_server::i18n;
use common::{Server, agents};
use serde_json::{Value, json};

/// The test server with `config`'s language settings, the shipped invite texts, and SMS
/// activated through `sms`.
async fn server(config: RoomsConfig, sms: Arc<RecordingNotifier>) -> Server {
    let config = i18n::with_invite_texts(config);
    Server::start_with(agents(), move |builder| builder.config(config).sms(sms)).await
}

/// What `notifier` has sent, once it has sent `count` messages (the dispatcher runs apart).
async fn sent(notifier: &RecordingNotifier, count: usize) -> Vec<Notification> {
    for _ in 0..500 {
        if notifier.sent().len() >= count {
            return notifier.sent();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} of {count} messages sent", notifier.sent().len());
}

fn tag(tag: &str) -> Locale {
    Locale::parse(tag).unwrap()
}

#[tokio::test]
async fn an_invite_in_spanish_is_sent_with_the_spanish_template() {
    let sms = Arc::new(RecordingNotifier::new());
    let server = server(RoomsConfig::default(), sms.clone()).await;
    let agent = server.agent("ada", "secret").await;

    let room = server.create_room(&agent).await;
    let invite = json!({"channel": "email", "first_name": "Ana", "last_name": "García",
        "identifier": "ana@example.com", "locale": "es"});
    server.invite(&agent, &room, invite).await;
    let email = &sent(&server.inbox, 1).await[0];
    assert_eq!(email.subject.as_deref(), Some("Su sala de colaboración"));
    assert!(email.text.starts_with("Hola, Ana:"), "{}", email.text);
    assert!(email.text.contains(&email.link), "the link is in the text");

    let answer = server
        .invite(
            &agent,
            &room,
            json!({"channel": "sms", "identifier": "+447911123456", "locale": "es"}),
        )
        .await;
    let text = &sent(&sms, 1).await[0].text;
    assert!(
        text.starts_with("Hola Ana, únase a su sala de colaboración: "),
        "{text}"
    );
    // "ú" is not GSM-7: the text weighs as UCS-2, and the answer says so.
    assert!(answer["sms_segments"].as_u64().unwrap() >= 2, "{answer}");

    // Without a locale: the deployment's English.
    let other = server.create_room(&agent).await;
    let invite = json!({"channel": "email", "first_name": "Bo", "last_name": "Li", "identifier": "bo@example.com"});
    server.invite(&agent, &other, invite).await;
    assert_eq!(
        sent(&server.inbox, 2).await[1].subject.as_deref(),
        Some("Your collaboration room")
    );
}

#[tokio::test]
async fn a_tenant_in_hebrew_invites_in_hebrew_and_a_bad_locale_is_refused() {
    let config = RoomsConfig::default().with_tenant_locale(TenantId::new("example").unwrap(), tag("he"));
    let server = server(config, Arc::new(RecordingNotifier::new())).await;
    let agent = server.agent("ada", "secret").await;
    let room = server.create_room(&agent).await;

    let bad = json!({"channel": "email", "first_name": "Ana", "last_name": "Levi",
        "identifier": "ana@example.com", "locale": "hebrew!"});
    let reply = server
        .call("POST", &format!("/api/rooms/{room}/invites"), Some(&agent), Some(bad))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", reply.json());
    assert_eq!(reply.json()["error"]["field"], "locale");
    let view = server
        .call("GET", &format!("/api/rooms/{room}"), Some(&agent), None)
        .await;
    assert_eq!(view.json()["status"], "draft", "a refused invite changes nothing");

    let invite = json!({"channel": "email", "first_name": "Ana", "last_name": "Levi", "identifier": "ana@example.com"});
    server.invite(&agent, &room, invite).await;
    let email = &sent(&server.inbox, 1).await[0];
    assert_eq!(email.subject.as_deref(), Some("חדר שיתוף הפעולה שלכם"));
}

/// `GET /api/me` as the customer of a new room of tenant `example`, with `accept_language`.
async fn customer_locale(server: &Server, accept_language: &str) -> Value {
    let agent = server.agent("ada", "secret").await;
    let (_, customer) = server.room_with_customer(&agent).await;
    let reply = server
        .send_with(
            "GET",
            "/api/me",
            &[
                ("cookie", &customer),
                ("x-collab-as", "customer"),
                ("accept-language", accept_language),
            ],
            Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    reply.json()["locale"].clone()
}

#[tokio::test]
async fn the_customer_page_follows_the_tenant_and_the_browser_only_where_allowed() {
    let hebrew = RoomsConfig::default().with_tenant_locale(TenantId::new("example").unwrap(), tag("he"));
    let server_he = server(hebrew.clone(), Arc::new(RecordingNotifier::new())).await;
    assert_eq!(customer_locale(&server_he, "es-ES,es;q=0.9").await, "he");

    let server_browser = server(hebrew.with_browser_locale(true), Arc::new(RecordingNotifier::new())).await;
    assert_eq!(customer_locale(&server_browser, "es-ES,es;q=0.9").await, "es");
    // A language the page does not have: the tenant's.
    assert_eq!(customer_locale(&server_browser, "ja").await, "he");

    let plain = server(RoomsConfig::default(), Arc::new(RecordingNotifier::new())).await;
    assert_eq!(customer_locale(&plain, "he").await, "en");
    // Agents learn which languages an invite may name.
    let agent = plain.agent("ada", "secret").await;
    let me = plain.call("GET", "/api/me", Some(&agent), None).await.json();
    assert_eq!(me["languages"], json!(["en", "es", "he"]));
    assert_eq!(me["locale"], Value::Null);
}

#[tokio::test]
async fn system_events_carry_what_a_page_needs_to_word_them() {
    let server = server(RoomsConfig::default(), Arc::new(RecordingNotifier::new())).await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let events = server
        .send_with(
            "GET",
            &format!("/api/rooms/{room}/events"),
            &[("cookie", &customer), ("x-collab-as", "customer")],
            Body::empty(),
        )
        .await
        .json();
    let of = |kind: &str| {
        events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} in {events}"))
    };
    assert_eq!(of("customer_invited")["channel"], "email");
    assert_eq!(of("room_renamed")["name"], "Grace Hopper");
}

#[tokio::test]
async fn the_strings_files_are_served_from_the_origin() {
    let server = Server::start().await;
    let reply = server
        .send_with(
            "GET",
            "/assets/i18n/he.json",
            &[("accept-encoding", "gzip")],
            Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.header("content-type").starts_with("application/json"),
        "{}",
        reply.header("content-type")
    );
    assert_eq!(reply.header("content-encoding"), "gzip");
    assert_eq!(reply.header("cache-control"), "no-cache");
    let missing = server
        .send_with("GET", "/assets/i18n/xx.json", &[], Body::empty())
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Every strings file has exactly en.json's keys, every value a string; `dir` says the direction.
#[test]
fn every_strings_file_has_the_same_keys() {
    let dir = Path::new(i18n::DIR);
    let read = |name: &str| -> serde_json::Map<String, Value> {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let english = read("en.json");
    let keys: BTreeSet<&String> = english.keys().collect();
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        Locale::parse(stem).unwrap_or_else(|e| panic!("{name}: not named by a language tag: {e}"));
        let strings = read(&name);
        let theirs: BTreeSet<&String> = strings.keys().collect();
        let missing: Vec<_> = keys.difference(&theirs).collect();
        let extra: Vec<_> = theirs.difference(&keys).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name}: missing {missing:?}, extra {extra:?}"
        );
        assert!(
            strings.values().all(Value::is_string),
            "{name}: a value is not a string"
        );
        assert!(matches!(strings["dir"].as_str(), Some("ltr" | "rtl")), "{name}: dir");
        files += 1;
    }
    assert!(files >= 3, "en, es and he ship");
    assert_eq!(read("he.json")["dir"], "rtl");
}

/// Every key the page's scripts name literally (`t("…")`, `data-i18n…="…"`) is in the files.
#[test]
fn every_key_the_pages_use_is_in_the_strings() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let english: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(assets.join("i18n/en.json")).unwrap()).unwrap();
    let mut used = 0;
    for file in ["customer.js", "common.js", "pdf-viewer.js", "customer.html"] {
        let text = std::fs::read_to_string(assets.join(file)).unwrap();
        for opener in [
            "t(\"",
            "data-i18n=\"",
            "data-i18n-placeholder=\"",
            "data-i18n-aria-label=\"",
        ] {
            for (at, _) in text.match_indices(opener) {
                // `t(` as a call, not the end of another name (`split("-")`).
                if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let rest = &text[at + opener.len()..];
                let key = &rest[..rest.find('"').unwrap()];
                assert!(english.contains_key(key), "{file}: {key:?} is not in en.json");
                used += 1;
            }
        }
    }
    assert!(used > 15, "only {used} keys found: has the page stopped using t()?");
}
