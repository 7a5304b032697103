//! Metrics in Prometheus' text format, on a listener of their own (`--metrics-addr`): off the
//! public API, for the platform's scraper only.

use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of the durations (`*_seconds`), from half a millisecond to ten seconds.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the counts (appends per group commit, posts per append).
const COUNTS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Installs the Prometheus recorder for the process, with collab's metrics described
/// ([`collab_core::metrics`]). Once per process.
pub fn install() -> Result<PrometheusHandle, String> {
    let fail = |e: metrics_exporter_prometheus::BuildError| format!("metrics: {e}");
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
        .map_err(fail)?
        .set_buckets_for_metric(Matcher::Full(collab_core::metrics::POSTS_PER_APPEND.to_owned()), COUNTS)
        .map_err(fail)?
        .set_buckets_for_metric(
            Matcher::Full(collab_core::metrics::GROUP_COMMIT_APPENDS.to_owned()),
            COUNTS,
        )
        .map_err(fail)?
        .install_recorder()
        .map_err(fail)?;
    collab_core::metrics::describe();
    // Histograms keep their samples until an upkeep folds them in: without it they would
    // grow for as long as nobody scrapes.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// The metrics listener's routes: `GET /metrics`.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}
