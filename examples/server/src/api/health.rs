//! Probes for the platform that runs the server: is the process up, can it do its work.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable`.
    pub status: &'static str,
    /// The part that failed, when unavailable: `store` (the rooms database did not answer),
    /// `dispatcher` (the invite dispatcher stopped) or `transport` (live events from other
    /// servers cannot arrive: PostgreSQL's listener or the NATS client is disconnected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<&'static str>,
}

/// Liveness: the process is up and serving (it checks nothing else).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health, description = "the process serves")))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        failing: None,
    })
}

/// Readiness: the rooms database answers, the invite dispatcher runs and the live transport
/// hears the other servers (`failing` names the part). A load balancer sends no traffic to a
/// server that answers 503 — mind that a NATS outage makes every server unready at once.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health, description = "ready"),
    (status = 503, body = Health, description = "a part the server needs is failing")))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    match state.rooms.check_ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                failing: None,
            }),
        ),
        Err(not_ready) => {
            tracing::warn!(failing = not_ready.as_str(), "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    failing: Some(not_ready.as_str()),
                }),
            )
        }
    }
}
