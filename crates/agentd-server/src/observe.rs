//! What operators see: Prometheus metrics, request ids, and the middleware
//! that makes every error response JSON.
//!
//! Metrics go to one process-wide recorder (Prometheus allows one per
//! process); `/metrics` renders it with the database pool gauges refreshed
//! at scrape time.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::RequestId;

use crate::error::ApiError;
use crate::state::AppState;

/// Request latency histogram, by route and status.
const DURATION: &str = "agentd_http_request_duration_seconds";
/// Request counter, by route and status.
const REQUESTS: &str = "agentd_http_requests_total";

/// Latency buckets in seconds: 1 ms to 60 s.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.to_string()), BUCKETS)
            .expect("bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program's);
        // then our handle renders only what we record through it directly.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Middleware: counts and times every request by method, matched route
/// (not the raw path, which would explode the label set) and status.
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics: requests by route and status, durations, tokens, pools.
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
))]
pub async fn metrics_endpoint(State(state): State<AppState>) -> Response {
    let stats = state.store.pool_stats();
    let backend = state.store.backend();
    metrics::gauge!("agentd_db_pool_connections", "backend" => backend).set(f64::from(stats.size));
    metrics::gauge!("agentd_db_pool_idle_connections", "backend" => backend).set(f64::from(stats.idle));
    metrics::gauge!("agentd_db_pool_max_connections", "backend" => backend).set(f64::from(stats.max));
    let handle = prometheus();
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

/// Middleware: any error response that is not JSON yet (axum's 405, a
/// timeout's 408, a body-limit 413 from a layer) is given the API's JSON
/// error shape, keeping its status and headers.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    let fresh = ApiError::new(status, code, message).into_response();
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in fresh_parts.headers.iter() {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, body)
}

/// The id of the current request (from `x-request-id`, honoured or made
/// up), for audit entries.
#[derive(Debug, Clone, Default)]
pub struct ReqId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ReqId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ReqId(
            parts.extensions.get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).map(str::to_string),
        ))
    }
}
