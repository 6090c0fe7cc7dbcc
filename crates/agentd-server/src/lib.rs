//! agentd-server: the HTTP face of agentd.
//!
//! [`app`] builds the whole router — `/v1` REST, health, metrics, the
//! OpenAPI document and its docs page — around an [`AppState`]; [`serve`]
//! runs it until a shutdown signal, finishing requests in flight. The
//! binary does the wiring (configuration, store, bus); tests call [`app`]
//! directly and drive it like a client would.

pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod extract;
pub mod observe;
pub mod routes;
pub mod state;

use std::future::Future;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_swagger_ui::SwaggerUi;

pub use config::ServerConfig;
pub use error::ApiError;
pub use state::AppState;

/// The request-id header, honoured when a client or proxy sends one.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    // Install the metrics recorder before the first request: until it is
    // installed, whatever is recorded is dropped, so traffic served before
    // the first scrape of /metrics would never be counted.
    observe::prometheus();
    let (v1, mut openapi) = routes::v1(state.clone()).split_for_parts();
    routes::shared_responses::add(&mut openapi);
    routes::string_rules::add(&mut openapi);
    routes::documents::describe_metadata_filter(&mut openapi);
    routes::links::add(&mut openapi);
    let config = state.config.clone();

    let router = Router::new()
        .merge(v1)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(config.json_body_limit))
        .layer(middleware::from_fn(observe::json_errors))
        .layer(middleware::from_fn(observe::record_metrics))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.request_timeout));

    let router = match cors_layer(&config.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };

    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %request_id,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// CORS for the configured origins; none configured means no CORS headers.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(CorsLayer::new().allow_origin(allow).allow_methods(Any).allow_headers(Any).expose_headers([REQUEST_ID]))
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops taking
/// connections and waits for requests in flight to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
