//! The load generator against the example server on loopback, small and short: its checks
//! (every event once and in order, every acknowledged post delivered) hold, and the figures
//! add up. No timing goal here: speed is measured by `scripts/load.sh`, not asserted in tests.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use collab_core::TenantId;
use collab_core::notify::RecordingNotifier;
use collab_core::rooms::Rooms;
use collab_loadgen::{Config, LoadError};
use collab_server::auth::Agents;
use collab_server::{AppState, Shared, app};
use collab_store_sqlite::SqliteRoomStore;

/// The example server's app on a real SQLite file, served on 127.0.0.1 at a free port.
async fn serve(dir: &tempfile::TempDir) -> String {
    let store = SqliteRoomStore::open(dir.path().join("rooms.db")).await.unwrap();
    let inbox = Arc::new(RecordingNotifier::new());
    let rooms = Rooms::builder().room_store(store).email(inbox.clone()).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let agents = HashMap::from([
        ("ada".to_owned(), "load-secret".to_owned()),
        ("bob".to_owned(), "load-secret".to_owned()),
    ]);
    let state = AppState::new(Shared {
        rooms: rooms.clone(),
        agents: Agents::new(TenantId::new("example").unwrap(), agents),
        inbox: Some(inbox),
        secure_cookies: false,
        origin: format!("http://{addr}"),
        twilio: None,
        vonage: None,
        allowed_hosts: vec![addr.to_string()],
        live_streams: collab_server::streams::LiveStreams::default(),
        // The load posts faster than one session may by default: not what this test checks.
        quotas: collab_server::quota::Quotas::unlimited(),
    });
    tokio::spawn(async move { rooms.run_dispatcher().await });
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    format!("http://{addr}")
}

fn small(server: String) -> Config {
    Config {
        server,
        agents: vec![
            ("ada".to_owned(), "load-secret".to_owned()),
            ("bob".to_owned(), "load-secret".to_owned()),
        ],
        rooms: 10,
        customers_per_room: 10,
        rate: 40.0,
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(3),
        server_pid: Some(std::process::id()),
        sample_every: Duration::from_secs(1),
        // Generous: CI machines are slow and shared; this test checks delivery, not speed.
        max_p99: Duration::from_secs(5),
        max_rss_growth: None,
        progress: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_gets_every_post_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = small(serve(&dir).await);
    let report = collab_loadgen::run(&config).await.unwrap();
    eprintln!("{report}");
    assert!(report.passed(), "{report}\n{:?}", report.failures);
    assert_eq!(report.listeners, 110, "10 customers and the agent in each of 10 rooms");
    assert_eq!(report.posted, 140, "40 posts a second for 3.5 s");
    assert_eq!((report.acked, report.post_errors), (140, 0));
    assert_eq!(
        report.expected_deliveries,
        140 * 11,
        "each post to the 11 listeners of its room"
    );
    assert_eq!(report.delivered, report.expected_deliveries);
    assert_eq!(
        (report.lost, report.duplicates, report.gaps, report.misrouted),
        (0, 0, 0, 0)
    );
    let latency = report.latency.unwrap();
    assert_eq!(
        latency.count,
        120 * 11,
        "the posts due after the warm-up, at every listener"
    );
    assert!(latency.p50 <= latency.p99 && latency.p99 <= latency.max);
    let server = report.server.unwrap();
    assert!(server.rss_at_warmup_kib > 0 && server.rss_max_kib >= server.rss_end_kib);
    assert!(report.samples.len() >= 4, "{:?}", report.samples);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stops_the_run_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small(serve(&dir).await);
    config.agents[1].1 = "wrong".to_owned();
    let error = collab_loadgen::run(&config).await.unwrap_err();
    assert!(matches!(error, LoadError::Status { status: 401, .. }), "{error}");
}

#[tokio::test]
async fn more_customers_than_a_room_takes_are_refused() {
    let config = Config {
        customers_per_room: 101,
        ..Config::default()
    };
    let error = collab_loadgen::run(&config).await.unwrap_err();
    assert!(
        matches!(error, LoadError::Invalid { field: "customers", .. }),
        "{error}"
    );
}
