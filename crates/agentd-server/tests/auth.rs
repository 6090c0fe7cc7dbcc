//! Who may call the API: bearer parsing, API keys (unknown, revoked,
//! expired), JWTs (garbage, forged, expired), admin-only routes, and the
//! password login with its tenant disambiguation and per-email rate limit.
//! Credentials are checked against the database, so every test runs on
//! SQLite and on PostgreSQL.

#[macro_use]
mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::json;

use agentd_server::auth::jwt::{Claims, JwtKeys, unix_now};
use agentd_store::testing::Backend;
use agentd_store::{Bus, RateQuota, Role};

use common::{PASSWORD, TestApp, config, ids, jwt_keys, key_expiring, req, token_for};

on_both_backends!(
    missing_credentials_are_401_with_a_bearer_challenge,
    malformed_and_unknown_credentials_are_401,
    api_keys_identify_their_tenant_role_and_subject,
    jwts_that_are_forged_expired_or_foreign_are_401,
    revoked_key_is_refused_at_once_despite_the_cache,
    expired_key_is_401,
    members_are_403_on_admin_routes_and_change_nothing,
    login_issues_a_token_that_works,
    wrong_password_and_unknown_email_are_the_same_401,
    email_in_two_tenants_needs_the_tenant_name,
    login_is_rate_limited_per_email,
);

async fn missing_credentials_are_401_with_a_bearer_challenge(backend: Backend) {
    let app = TestApp::on(backend).await;
    for (method, uri) in [(Method::GET, "/v1/me"), (Method::GET, "/v1/sessions"), (Method::POST, "/v1/keys")] {
        let resp = app.send(req(method, uri)).await;
        resp.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
        assert_eq!(resp.header("www-authenticate"), Some("Bearer"), "{uri}");
    }
}

async fn malformed_and_unknown_credentials_are_401(backend: Backend) {
    let app = TestApp::on(backend).await;
    let tenant = app.tenant("a").await;
    let unknown_key = format!("agd_{}", "A".repeat(43));
    let cases = [
        format!("Basic {}", tenant.admin_key),
        format!("Token {}", tenant.admin_key),
        tenant.admin_key.clone(),
        "Bearer".to_string(),
        "Bearer ".to_string(),
        "Bearer    ".to_string(),
        format!("Bearer {unknown_key}"),
        "Bearer agd_".to_string(),
        "Bearer not.a.jwt".to_string(),
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl".to_string(),
    ];
    for authorization in &cases {
        let resp = app.send(req(Method::GET, "/v1/me").header("authorization", authorization)).await;
        resp.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
        assert_eq!(resp.header("www-authenticate"), Some("Bearer"), "{authorization:?}");
    }

    // The same key in a well-formed header works, whatever the scheme's case.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let header = format!("{scheme} {}", tenant.admin_key);
        let resp = app.send(req(Method::GET, "/v1/me").header("authorization", &header)).await;
        resp.expect_json(StatusCode::OK);
    }
}

async fn api_keys_identify_their_tenant_role_and_subject(backend: Backend) {
    let app = TestApp::on(backend).await;
    let tenant = app.tenant("a").await;
    let me = app.get("/v1/me", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(me, json!({ "tenant_id": tenant.id, "role": "admin", "kind": "api_key", "id": tenant.admin_key_id }));

    // A key bound to a user acts as that user, with the key's role.
    let user = app.user(tenant.id, "bob@example.com", Role::Admin).await;
    let (key, _) = app.key(tenant.id, Role::Member, Some(&user)).await;
    let me = app.get("/v1/me", &key).await.expect_json(StatusCode::OK);
    assert_eq!(me, json!({ "tenant_id": tenant.id, "role": "member", "kind": "user", "id": user.id }));
}

async fn jwts_that_are_forged_expired_or_foreign_are_401(backend: Backend) {
    let app = TestApp::on(backend).await;
    let tenant = app.tenant("a").await;
    let user = app.user(tenant.id, "alice@example.com", Role::Admin).await;
    let now = unix_now();
    let claims = |iss: &str, iat: u64, exp: u64| Claims {
        sub: user.id,
        tid: tenant.id,
        role: Role::Admin,
        iss: iss.to_string(),
        iat,
        exp,
    };

    // Control: claims signed with the server's secret are accepted, so the
    // refusals below are about the one thing each case changes.
    let good = jwt_keys().sign(&claims("agentd", now, now + 600)).unwrap();
    let me = app.get("/v1/me", &good).await.expect_json(StatusCode::OK);
    assert_eq!(me, json!({ "tenant_id": tenant.id, "role": "admin", "kind": "user", "id": user.id }));

    let forged = JwtKeys::new("another-secret-of-enough-length", Duration::from_secs(600))
        .sign(&claims("agentd", now, now + 600))
        .unwrap();
    let expired = jwt_keys().sign(&claims("agentd", now - 600, now - 120)).unwrap();
    let foreign_issuer = jwt_keys().sign(&claims("someone-else", now, now + 600)).unwrap();
    // A member's genuine token with its payload rewritten to say admin.
    let member = jwt_keys().sign(&Claims { role: Role::Member, ..claims("agentd", now, now + 600) }).unwrap();
    let parts: Vec<&str> = member.split('.').collect();
    let admin_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("agentd", now, now + 600)).unwrap());
    let tampered = format!("{}.{admin_payload}.{}", parts[0], parts[2]);
    app.get("/v1/me", &member).await.expect_json(StatusCode::OK);

    for (name, token) in [("forged", &forged), ("foreign issuer", &foreign_issuer), ("tampered", &tampered)] {
        let error = app.get("/v1/me", token).await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
        assert_eq!(error["message"], "invalid token", "{name}");
    }
    let error = app.get("/v1/me", &expired).await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(error["message"], "token expired");
}

async fn revoked_key_is_refused_at_once_despite_the_cache(backend: Backend) {
    // A long cache lifetime: only the revocation's cache delete can make the
    // key fail right away.
    let mut config = config();
    config.api_key_cache_ttl = Duration::from_secs(60);
    let app = TestApp::build(backend, Bus::in_process(), config).await;
    let tenant = app.tenant("a").await;
    let (key, record) = app.key(tenant.id, Role::Member, None).await;
    app.get("/v1/me", &key).await.expect_json(StatusCode::OK); // now cached

    let revoked = app.delete(&format!("/v1/keys/{}", record.id), &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(revoked["id"], json!(record.id));
    assert!(revoked["revoked_at"].is_string(), "{revoked}");

    let error = app.get("/v1/me", &key).await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(error["message"], "API key revoked");
    // The admin key is untouched.
    app.get("/v1/me", &tenant.admin_key).await.expect_json(StatusCode::OK);
}

async fn expired_key_is_401(backend: Backend) {
    let app = TestApp::on(backend).await;
    let tenant = app.tenant("a").await;
    let past = Some(Utc::now() - chrono::Duration::minutes(5));
    let (expired, _) = key_expiring(app.store(), tenant.id, Role::Admin, None, past).await;
    let future = Some(Utc::now() + chrono::Duration::hours(1));
    let (valid, _) = key_expiring(app.store(), tenant.id, Role::Admin, None, future).await;

    let error = app.get("/v1/me", &expired).await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(error["message"], "API key expired");
    // Still refused once the lookup could have been cached.
    app.get("/v1/me", &expired).await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    app.get("/v1/me", &valid).await.expect_json(StatusCode::OK);
}

async fn members_are_403_on_admin_routes_and_change_nothing(backend: Backend) {
    let app = TestApp::on(backend).await;
    let tenant = app.tenant("a").await;
    let (member_key, _) = app.key(tenant.id, Role::Member, None).await;
    let member_user = app.user(tenant.id, "member@example.com", Role::Member).await;
    let member_jwt = token_for(&member_user);
    let admin_key_path = format!("/v1/keys/{}", tenant.admin_key_id);

    for token in [&member_key, &member_jwt] {
        let cases = [
            req(Method::POST, "/v1/keys").json(&json!({ "name": "sneaky", "role": "admin" })),
            req(Method::GET, "/v1/keys"),
            req(Method::DELETE, &admin_key_path),
            req(Method::GET, "/v1/users"),
            req(Method::POST, "/v1/users")
                .json(&json!({ "email": "sneaky@example.com", "password": "long enough password" })),
            req(Method::GET, "/v1/audit"),
        ];
        for request in cases {
            app.send(request.bearer(token)).await.expect_error(StatusCode::FORBIDDEN, "forbidden");
        }
    }

    // Nothing was created or revoked.
    let keys = app.get("/v1/keys", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(keys["items"].as_array().unwrap().len(), 2, "{keys}");
    assert!(keys["items"].as_array().unwrap().iter().all(|k| k["revoked_at"].is_null() && k["name"] != "sneaky"));
    let users = app.get("/v1/users", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&users), [member_user.id.to_string()]);
    // The same routes answer admins.
    app.get("/v1/audit", &tenant.admin_key).await.expect_json(StatusCode::OK);
}

async fn login_issues_a_token_that_works(backend: Backend) {
    let app = TestApp::on(backend).await;
    let tenant = app.tenant("a").await;
    let user = app.user(tenant.id, "alice@example.com", Role::Member).await;

    // Emails compare case-insensitively and without surrounding blanks.
    let body = app.login(" Alice@Example.COM ", PASSWORD, None).await.expect_json(StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().expect("a token");
    let me = app.get("/v1/me", token).await.expect_json(StatusCode::OK);
    assert_eq!(me, json!({ "tenant_id": tenant.id, "role": "member", "kind": "user", "id": user.id }));
    // The token acts as the user: what it creates is the user's.
    let session = app.create_session(token, "mine").await;
    assert_eq!(session["owner_id"], json!(user.id));
}

async fn wrong_password_and_unknown_email_are_the_same_401(backend: Backend) {
    let app = TestApp::on(backend).await;
    let tenant = app.tenant("a").await;
    app.user(tenant.id, "alice@example.com", Role::Member).await;

    let wrong = app.login("alice@example.com", "not the password", None).await;
    let wrong = wrong.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let unknown = app.login("nobody@example.com", PASSWORD, None).await;
    let unknown = unknown.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    // Nothing tells a guesser which emails exist.
    assert_eq!(wrong, unknown);
    // A known email in a tenant that does not exist is no better.
    let resp = app.login("alice@example.com", PASSWORD, Some("no-such-tenant")).await;
    assert_eq!(resp.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated"), wrong);
}

async fn email_in_two_tenants_needs_the_tenant_name(backend: Backend) {
    let app = TestApp::on(backend).await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    app.user(a.id, "shared@example.com", Role::Admin).await;
    let in_b = app.user(b.id, "shared@example.com", Role::Member).await;

    let resp = app.login("shared@example.com", PASSWORD, None).await;
    resp.expect_error(StatusCode::BAD_REQUEST, "tenant_required");

    let body = app.login("shared@example.com", PASSWORD, Some("b")).await.expect_json(StatusCode::OK);
    let me = app.get("/v1/me", body["access_token"].as_str().unwrap()).await.expect_json(StatusCode::OK);
    assert_eq!(me, json!({ "tenant_id": b.id, "role": "member", "kind": "user", "id": in_b.id }));
    // A wrong password is still just wrong, tenant or not.
    let resp = app.login("shared@example.com", "not the password", None).await;
    resp.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn login_is_rate_limited_per_email(backend: Backend) {
    let mut config = config();
    config.login_rate_limit = Some(RateQuota { per_second: 0.001, burst: 3 });
    let app = TestApp::build(backend, Bus::in_process(), config).await;
    let tenant = app.tenant("a").await;
    app.user(tenant.id, "alice@example.com", Role::Member).await;

    for _ in 0..3 {
        let resp = app.login("alice@example.com", "guess", None).await;
        resp.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    // The fourth attempt, however the email is spelled and even with the
    // right password, is refused before any password is checked.
    for email in ["alice@example.com", "ALICE@example.com"] {
        let resp = app.login(email, PASSWORD, None).await;
        let error = resp.expect_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let retry_after: u64 = resp.header("retry-after").expect("retry-after").parse().unwrap();
        assert!(retry_after >= 1);
        assert_eq!(error["details"]["retry_after_seconds"], retry_after);
    }
    // Other emails have their own budget.
    let resp = app.login("bob@example.com", PASSWORD, None).await;
    resp.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
}
