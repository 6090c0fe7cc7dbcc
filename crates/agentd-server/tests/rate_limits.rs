//! The per-caller rate limit: a burst, then 429 with the JSON error shape
//! and `Retry-After`; each caller has its own budget. Runs on the in-process
//! bus and on Redis, which must behave alike.

mod common;

use axum::http::StatusCode;

use agentd_store::testing::{Backend, redis_bus};
use agentd_store::{Bus, RateQuota, Role};

use common::{TestApp, config, token_for};

/// So slow a refill that none happens during a test.
const QUOTA: RateQuota = RateQuota { per_second: 0.001, burst: 4 };

async fn burst_then_429_per_caller(bus: Bus) {
    let mut config = config();
    config.rate_limit = Some(QUOTA);
    let app = TestApp::build(Backend::Sqlite, bus, config).await;
    let tenant = app.tenant("a").await;
    let (other_key, _) = app.key(tenant.id, Role::Member, None).await;

    for remaining in (0..4).rev() {
        let resp = app.get("/v1/sessions", &tenant.admin_key).await;
        resp.expect_json(StatusCode::OK);
        assert_eq!(resp.header("x-ratelimit-limit"), Some("4"));
        assert_eq!(resp.header("x-ratelimit-remaining"), Some(remaining.to_string().as_str()));
    }
    let resp = app.get("/v1/sessions", &tenant.admin_key).await;
    let error = resp.expect_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry_after: u64 = resp.header("retry-after").expect("retry-after").parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(error["details"]["retry_after_seconds"], retry_after);
    // Every route counts against the same caller.
    let resp = app.get("/v1/me", &tenant.admin_key).await;
    resp.expect_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    // Another key has its own budget.
    let resp = app.get("/v1/me", &other_key).await;
    resp.expect_json(StatusCode::OK);
    assert_eq!(resp.header("x-ratelimit-remaining"), Some("3"));

    // A user is one caller however it authenticates: its keys and its JWTs
    // share one budget.
    let user = app.user(tenant.id, "alice@example.com", Role::Member).await;
    let (user_key, _) = app.key(tenant.id, Role::Member, Some(&user)).await;
    let jwt = token_for(&user);
    for token in [&user_key, &jwt, &user_key, &jwt] {
        app.get("/v1/me", token).await.expect_json(StatusCode::OK);
    }
    app.get("/v1/me", &jwt).await.expect_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    app.get("/v1/me", &user_key).await.expect_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    // Open routes are not behind the per-caller limit.
    for _ in 0..6 {
        app.send(common::req(axum::http::Method::GET, "/healthz")).await.expect_json(StatusCode::OK);
    }
}

#[tokio::test]
async fn in_process_bus_limits_each_caller() {
    burst_then_429_per_caller(Bus::in_process()).await;
}

#[tokio::test]
async fn redis_bus_limits_each_caller() {
    burst_then_429_per_caller(redis_bus().await).await;
}

#[tokio::test]
async fn no_limit_configured_means_no_429_and_no_headers() {
    let mut config = config();
    config.rate_limit = None;
    let app = TestApp::with_config(config).await;
    let tenant = app.tenant("a").await;
    for _ in 0..50 {
        let resp = app.get("/v1/me", &tenant.admin_key).await;
        resp.expect_json(StatusCode::OK);
        assert_eq!(resp.header("x-ratelimit-limit"), None);
    }
}
