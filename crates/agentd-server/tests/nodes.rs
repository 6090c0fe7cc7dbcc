//! Several API nodes behind one load balancer: two apps on one store and two
//! Redis buses with one prefix must act as one server. A caller's burst is
//! shared however its requests are spread, and a key revoked through one
//! node stops working on the other at once, even with long cache lifetimes.

mod common;

use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};

use agentd_server::ServerConfig;
use agentd_store::testing::{Backend, TestStore, redis_bus_with_prefix};
use agentd_store::{RateQuota, Role, Store};

use common::{Resp, config, key, node, req, tenant};

/// Two routers on `store`, each with its own connection to Redis under one
/// fresh prefix.
async fn two_nodes(store: &Store, config: ServerConfig) -> (Router, Router) {
    let prefix = format!("agentd-test-{}", uuid::Uuid::new_v4().simple());
    let (_, a) = node(store.clone(), redis_bus_with_prefix(&prefix).await, config.clone());
    let (_, b) = node(store.clone(), redis_bus_with_prefix(&prefix).await, config);
    (a, b)
}

async fn get(router: &Router, uri: &str, token: &str) -> Resp {
    req(Method::GET, uri).bearer(token).send(router).await
}

#[tokio::test]
async fn the_burst_is_shared_across_nodes() {
    let db = TestStore::new(Backend::Sqlite).await;
    let mut config = config();
    config.rate_limit = Some(RateQuota { per_second: 0.001, burst: 6 });
    let (a, b) = two_nodes(&db.store, config).await;
    let t = tenant(&db.store, "a").await;

    // Alternating nodes, the remaining budget goes down by one each time.
    for (i, router) in [&a, &b, &a, &b, &a, &b].into_iter().enumerate() {
        let resp = get(router, "/v1/me", &t.admin_key).await;
        resp.expect_json(StatusCode::OK);
        assert_eq!(resp.header("x-ratelimit-remaining"), Some((5 - i).to_string().as_str()), "request {i}");
    }
    // Six requests spent the burst of six: both nodes now refuse.
    for router in [&a, &b] {
        get(router, "/v1/me", &t.admin_key).await.expect_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
}

#[tokio::test]
async fn revocation_through_one_node_is_seen_by_the_other_at_once() {
    let db = TestStore::new(Backend::Sqlite).await;
    let mut config = config();
    config.api_key_cache_ttl = Duration::from_secs(60);
    let (a, b) = two_nodes(&db.store, config).await;
    let t = tenant(&db.store, "a").await;
    let (member_key, record) = key(&db.store, t.id, Role::Member, None).await;

    // Both nodes have looked the key up, so it sits in the shared cache for
    // the next minute.
    get(&b, "/v1/me", &member_key).await.expect_json(StatusCode::OK);
    get(&a, "/v1/me", &member_key).await.expect_json(StatusCode::OK);

    let revoke = req(Method::DELETE, &format!("/v1/keys/{}", record.id)).bearer(&t.admin_key);
    revoke.send(&a).await.expect_json(StatusCode::OK);

    // The revocation removed the key from the shared cache before it
    // answered: the other node's very next lookup reads the database.
    let refused = get(&b, "/v1/me", &member_key).await;
    let error = refused.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(error["message"], "API key revoked");
    get(&a, "/v1/me", &member_key).await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    // Other keys are unaffected on both nodes.
    get(&a, "/v1/me", &t.admin_key).await.expect_json(StatusCode::OK);
    get(&b, "/v1/me", &t.admin_key).await.expect_json(StatusCode::OK);
}
