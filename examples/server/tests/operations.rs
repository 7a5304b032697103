//! What an operator sees: `/healthz`, `/readyz`, and the Prometheus metrics on their own
//! listener, moving as the server works. Over HTTP against the real binary.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::process::ServerProcess;
use serde_json::json;

/// The value of the series `name{labels}` (exactly as rendered) in a Prometheus text page.
fn series(page: &str, name_and_labels: &str) -> Option<f64> {
    page.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        line.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn scrape(metrics: &str) -> String {
    let reply = reqwest::get(metrics).await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let content_type = reply.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    reply.text().await.unwrap()
}

#[tokio::test]
async fn health_probes_answer_and_metrics_move_with_the_work() {
    let server = ServerProcess::start(|command| {
        command.args(["--agents", "ada:secret", "--metrics-addr", "127.0.0.1:0"]);
    });
    let http = server.http();
    let metrics = format!("http://{}", server.printed("metrics on http://"));
    assert!(metrics.ends_with("/metrics"), "{metrics}");

    for probe in ["/healthz", "/readyz"] {
        let reply = http.call("GET", probe, None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{probe}");
        assert_eq!(reply.json()["status"], "ok", "{probe}");
    }
    // The public listener does not serve the metrics.
    assert_eq!(
        http.call("GET", "/metrics", None, None).await.status,
        StatusCode::NOT_FOUND
    );

    let agent = http.sign_in("ada", "secret").await;
    let room = http.call("POST", "/api/rooms", Some(&agent), None).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = scrape(&metrics).await;
    let appends_before = series(&before, "collab_append_duration_seconds_count").unwrap_or(0.0);
    for i in 0..3 {
        let posted = http
            .call(
                "POST",
                &format!("/api/rooms/{room}/messages"),
                Some(&agent),
                Some(json!({"text": format!("hello {i}")})),
            )
            .await;
        assert_eq!(posted.status, StatusCode::CREATED);
    }
    // An upload refused for its type: counted by reason.
    let refused = http
        .send(
            "POST",
            &format!("/api/rooms/{room}/documents?name=tool.exe"),
            &[("cookie", agent.as_str()), ("content-type", "application/octet-stream")],
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(
        refused.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{:?}",
        refused.json()
    );

    let after = scrape(&metrics).await;
    let appends_after = series(&after, "collab_append_duration_seconds_count").unwrap_or(0.0);
    assert!(
        appends_after >= appends_before + 3.0,
        "three posts, three appends at least: {appends_before} -> {appends_after}\n{after}"
    );
    assert!(
        series(&after, "collab_posts_per_append_count").unwrap_or(0.0) >= 1.0,
        "posts go through the lanes\n{after}"
    );
    assert_eq!(
        series(
            &after,
            r#"collab_documents_refused_total{reason="unsupported_media_type"}"#
        ),
        Some(1.0),
        "{after}"
    );
    assert!(
        series(&after, r#"collab_store_group_commit_appends_count{store="sqlite"}"#).unwrap_or(0.0) >= 3.0,
        "{after}"
    );
    // The dispatcher counted the outbox at its first pass: nothing queued, per channel.
    for gauge in [
        r#"collab_outbox_queued{channel="email"}"#,
        r#"collab_outbox_due{channel="sms"}"#,
        r#"collab_outbox_oldest_due_age_seconds{channel="email"}"#,
    ] {
        assert_eq!(series(&after, gauge), Some(0.0), "{gauge}\n{after}");
    }
    // An invite delivered: counted by channel, provider (the dev inbox here) and result.
    let invite = json!({"channel": "email", "first_name": "Grace", "last_name": "Hopper",
        "identifier": "grace@example.com"});
    let invited = http
        .call(
            "POST",
            &format!("/api/rooms/{room}/invites"),
            Some(&agent),
            Some(invite),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{:?}", invited.json());
    let delivered = r#"collab_deliveries_total{channel="email",provider="dev",result="sent"}"#;
    let mut page = String::new();
    for _ in 0..100 {
        page = scrape(&metrics).await;
        if series(&page, delivered).is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(series(&page, delivered), Some(1.0), "{page}");

    // Described, with units, and no room id anywhere in the page.
    assert!(after.contains("# HELP collab_append_duration_seconds"), "{after}");
    assert!(!after.contains(&room), "a room id in the metrics");
}
