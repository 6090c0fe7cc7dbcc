//! What operators and browsers rely on: liveness and readiness (including a
//! database that went away), Prometheus metrics, request ids, the OpenAPI
//! document and its docs page, and CORS.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::json;

use agentd_store::testing::{Backend, redis_bus};

use common::{TestApp, config, req};

#[tokio::test]
async fn healthz_answers_without_credentials() {
    let app = TestApp::new().await;
    let body = app.send(req(Method::GET, "/healthz")).await.expect_json(StatusCode::OK);
    assert_eq!(body, json!({ "status": "ok" }));
}

#[tokio::test]
async fn readyz_is_ready_then_503_when_the_database_is_gone() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    let ready = app.send(req(Method::GET, "/readyz")).await.expect_json(StatusCode::OK);
    assert_eq!(
        ready,
        json!({ "status": "ready", "checks": {
            "database": "ok", "database_backend": "sqlite", "bus": "ok", "bus_backend": "in-process"
        } })
    );

    // The app holds a clone of this store; closing one closes the pool.
    app.store().clone().close().await;

    let resp = app.send(req(Method::GET, "/readyz")).await;
    let error = resp.expect_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert!(error["details"]["database"].as_str().is_some_and(|d| d != "ok"), "{error}");
    assert_eq!(error["details"]["bus"], "ok");
    // The API says the same rather than 500, and liveness is unaffected.
    let resp = app.get("/v1/sessions", &tenant.admin_key).await;
    resp.expect_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let resp = app.post("/v1/sessions", &tenant.admin_key, json!({})).await;
    resp.expect_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    app.send(req(Method::GET, "/healthz")).await.expect_json(StatusCode::OK);
}

#[tokio::test]
async fn readyz_reports_postgres_and_redis() {
    let app = TestApp::build(Backend::Postgres, redis_bus().await, config()).await;
    let ready = app.send(req(Method::GET, "/readyz")).await.expect_json(StatusCode::OK);
    assert_eq!(
        ready["checks"],
        json!({ "database": "ok", "database_backend": "postgres", "bus": "ok", "bus_backend": "redis" })
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_not_by_raw_path() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    // Traffic before anything has scraped /metrics must be counted too.
    let session = app.create_session(&tenant.admin_key, "s").await;
    let sid = session["id"].as_str().unwrap();
    app.get(&format!("/v1/sessions/{sid}"), &tenant.admin_key).await.expect_json(StatusCode::OK);
    app.get("/v1/nope", &tenant.admin_key).await.expect_error(StatusCode::NOT_FOUND, "not_found");

    let resp = app.send(req(Method::GET, "/metrics")).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert!(resp.header("content-type").is_some_and(|c| c.starts_with("text/plain")), "{:?}", resp.headers);
    let text = resp.text();
    let has_line = |prefix: &str, labels: &[&str]| {
        text.lines().any(|line| line.starts_with(prefix) && labels.iter().all(|label| line.contains(label)))
    };
    assert!(
        has_line("agentd_http_requests_total{", &[r#"method="POST""#, r#"route="/v1/sessions""#, r#"status="201""#]),
        "{text}"
    );
    assert!(
        has_line(
            "agentd_http_requests_total{",
            &[r#"method="GET""#, r#"route="/v1/sessions/{id}""#, r#"status="200""#]
        ),
        "{text}"
    );
    assert!(
        has_line("agentd_http_request_duration_seconds_bucket{", &[r#"route="/v1/sessions/{id}""#, "le="]),
        "{text}"
    );
    assert!(has_line("agentd_db_pool_connections{", &[r#"backend="sqlite""#]), "{text}");
    assert!(!text.contains(sid), "raw ids must not become labels");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;

    let resp = app.send(req(Method::GET, "/v1/me").bearer(&tenant.admin_key).header("x-request-id", "abc-123")).await;
    resp.expect_json(StatusCode::OK);
    assert_eq!(resp.header("x-request-id"), Some("abc-123"));
    // Errors carry it too, so a client can quote it.
    let resp = app.send(req(Method::GET, "/v1/me").header("x-request-id", "err-456")).await;
    resp.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(resp.header("x-request-id"), Some("err-456"));

    let first = app.send(req(Method::GET, "/healthz")).await;
    let second = app.send(req(Method::GET, "/healthz")).await;
    let ids: Vec<&str> = [&first, &second].iter().map(|r| r.header("x-request-id").expect("generated id")).collect();
    for id in &ids {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "generated id {id:?} is not a UUID");
    }
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = TestApp::new().await;
    let doc = app.send(req(Method::GET, "/openapi.json")).await.expect_json(StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/v1/sessions",
        "/v1/sessions/{id}",
        "/v1/sessions/{id}/messages",
        "/v1/auth/token",
        "/v1/keys",
        "/v1/keys/{id}",
        "/v1/users",
        "/v1/audit",
        "/v1/me",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    assert!(paths["/v1/sessions"]["post"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

#[tokio::test]
async fn the_docs_page_is_served_from_vendored_assets() {
    let app = TestApp::new().await;
    let resp = app.send(req(Method::GET, "/docs/")).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert!(resp.header("content-type").is_some_and(|c| c.starts_with("text/html")), "{:?}", resp.headers);
    assert!(resp.text().to_lowercase().contains("swagger"));
    // The page's script points at our document.
    let init = app.send(req(Method::GET, "/docs/swagger-initializer.js")).await;
    assert_eq!(init.status, StatusCode::OK);
    assert!(init.text().contains("/openapi.json"), "{}", init.text());
    let bundle = app.send(req(Method::GET, "/docs/swagger-ui-bundle.js")).await;
    assert_eq!(bundle.status, StatusCode::OK);
    assert!(bundle.body.len() > 10_000);
}

#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let mut config = config();
    config.cors_origins = vec!["https://app.example".into()];
    let app = TestApp::with_config(config).await;
    let tenant = app.tenant("a").await;
    let preflight = |origin: &str| {
        req(Method::OPTIONS, "/v1/sessions")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
    };

    let resp = app.send(preflight("https://app.example")).await;
    assert!(resp.status.is_success(), "preflight: {} {}", resp.status, resp.text());
    assert_eq!(resp.header("access-control-allow-origin"), Some("https://app.example"));
    assert!(resp.header("access-control-allow-methods").is_some());
    assert!(resp.header("access-control-allow-headers").is_some());

    let resp = app.send(preflight("https://evil.example")).await;
    assert_eq!(resp.header("access-control-allow-origin"), None);

    // Actual requests: the allowed origin may read the response and its
    // request id.
    let request = req(Method::GET, "/v1/sessions").bearer(&tenant.admin_key).header("origin", "https://app.example");
    let resp = app.send(request).await;
    resp.expect_json(StatusCode::OK);
    assert_eq!(resp.header("access-control-allow-origin"), Some("https://app.example"));
    assert!(resp.header("access-control-expose-headers").is_some_and(|h| h.contains("x-request-id")));
}

#[tokio::test]
async fn no_cors_headers_without_configured_origins() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    let preflight = req(Method::OPTIONS, "/v1/sessions")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST");
    let resp = app.send(preflight).await;
    assert_eq!(resp.header("access-control-allow-origin"), None);
    let request = req(Method::GET, "/v1/sessions").bearer(&tenant.admin_key).header("origin", "https://app.example");
    let resp = app.send(request).await;
    resp.expect_json(StatusCode::OK);
    assert_eq!(resp.header("access-control-allow-origin"), None);
}
