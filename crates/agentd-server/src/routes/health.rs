//! Liveness and readiness, for load balancers and orchestrators.
//!
//! `/healthz` says the process answers. `/readyz` says it can do useful
//! work: the database answers and, when configured, Redis does; otherwise
//! 503, so a balancer stops sending traffic here.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a dependency may take to answer a readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Database (and Redis, if configured) reachable.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready to serve"),
    (status = 503, description = "A dependency is unreachable", body = crate::error::ErrorBody),
))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let bus = match tokio::time::timeout(PROBE_TIMEOUT, state.bus.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let show = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    };
    let checks = json!({
        "database": show(&database),
        "database_backend": state.store.backend(),
        "bus": show(&bus),
        "bus_backend": state.bus.backend(),
    });
    if database.is_ok() && bus.is_ok() {
        (StatusCode::OK, axum::Json(json!({ "status": "ready", "checks": checks }))).into_response()
    } else {
        ApiError::unavailable("not ready").with_details(checks).into_response()
    }
}
