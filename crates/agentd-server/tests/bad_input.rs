//! Bad input is the client's fault and must be answered as such: a 4xx with
//! the JSON error shape and a code that says what was wrong, never a 500 and
//! never axum's plain-text rejections.

#[macro_use]
mod common;

use axum::http::{Method, StatusCode};
use serde_json::json;

use agentd_store::Role;
use agentd_store::testing::Backend;

use common::{TestApp, TestTenant, config, req};

/// A SQLite app with a tenant and its admin key.
async fn setup() -> (TestApp, TestTenant) {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    (app, tenant)
}

#[tokio::test]
async fn malformed_json_is_400() {
    let (app, tenant) = setup().await;
    let session = app.create_session(&tenant.admin_key, "s").await;
    let messages = format!("/v1/sessions/{}/messages", session["id"].as_str().unwrap());
    // Each broken before any field could be judged against the route's type.
    let bodies: [&[u8]; 7] = [b"{", b"{,}", b"{title: 1}", b"{\"unterminated", b"", b"nul", b"}"];
    for body in bodies {
        for uri in ["/v1/sessions", messages.as_str(), "/v1/keys"] {
            let request = req(Method::POST, uri).bearer(&tenant.admin_key).raw(Some("application/json"), body);
            app.send(request).await.expect_error(StatusCode::BAD_REQUEST, "malformed_json");
        }
        // The open login route too.
        let request = req(Method::POST, "/v1/auth/token").raw(Some("application/json"), body);
        app.send(request).await.expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    }
}

#[tokio::test]
async fn well_formed_json_of_the_wrong_shape_is_422() {
    let (app, tenant) = setup().await;
    let session = app.create_session(&tenant.admin_key, "s").await;
    let messages = format!("/v1/sessions/{}/messages", session["id"].as_str().unwrap());
    let cases = [
        ("/v1/sessions", json!({ "title": 5 })),
        ("/v1/sessions", json!({ "title": "t", "owner_id": "someone" })),
        ("/v1/sessions", json!([])),
        (messages.as_str(), json!({ "role": "user" })),
        (messages.as_str(), json!({ "content": "no role" })),
        (messages.as_str(), json!({ "role": "wizard", "content": "x" })),
        (messages.as_str(), json!({ "role": "user", "content": 42 })),
        (messages.as_str(), json!({ "role": "user", "content": "x", "seq": 7 })),
        ("/v1/keys", json!({})),
        ("/v1/keys", json!({ "name": "k", "role": "root" })),
        ("/v1/keys", json!({ "name": "k", "user_id": "not-a-uuid" })),
        ("/v1/keys", json!({ "name": "k", "expires_at": "tomorrow" })),
        ("/v1/users", json!({ "email": "x@example.com" })),
        ("/v1/users", json!({ "email": "x@example.com", "password": "long enough", "is_root": true })),
    ];
    for (uri, body) in cases {
        let resp = app.post(uri, &tenant.admin_key, body.clone()).await;
        assert_eq!(resp.status, StatusCode::UNPROCESSABLE_ENTITY, "{uri} {body}: {}", resp.text());
        resp.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    for body in [json!({ "email": "x@example.com" }), json!({ "email": "x", "password": "y", "extra": 1 })] {
        let resp = app.send(req(Method::POST, "/v1/auth/token").json(&body)).await;
        resp.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    // Nothing was appended along the way.
    let listed = app.get(&messages, &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn a_body_without_json_content_type_is_415() {
    let (app, tenant) = setup().await;
    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let request = req(Method::POST, "/v1/sessions").bearer(&tenant.admin_key).raw(content_type, "{}");
        app.send(request).await.expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    let request = req(Method::POST, "/v1/auth/token").raw(None, r#"{"email":"a@b.c","password":"x"}"#);
    app.send(request).await.expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    // A JSON content type with parameters is JSON.
    let request =
        req(Method::POST, "/v1/sessions").bearer(&tenant.admin_key).raw(Some("application/json; charset=utf-8"), "{}");
    app.send(request).await.expect_json(StatusCode::CREATED);
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_400() {
    let (app, tenant) = setup().await;
    let attempts = [
        req(Method::GET, "/v1/sessions/not-a-uuid"),
        req(Method::DELETE, "/v1/sessions/123"),
        req(Method::GET, "/v1/sessions/xyz/messages"),
        req(Method::POST, "/v1/sessions/xyz/messages").json(&json!({ "role": "user", "content": "x" })),
        req(Method::DELETE, "/v1/keys/%F0%9F%94%91"),
    ];
    for attempt in attempts {
        app.send(attempt.bearer(&tenant.admin_key)).await.expect_error(StatusCode::BAD_REQUEST, "invalid_path");
    }
}

#[tokio::test]
async fn a_bad_query_string_is_400() {
    let (app, tenant) = setup().await;
    for uri in [
        "/v1/sessions?limit=abc",
        "/v1/sessions?limit=-1",
        "/v1/sessions?limit=99999999999",
        "/v1/sessions?page=2",
        "/v1/keys?limit=ten",
        "/v1/users?sort=email",
        "/v1/audit?limit=x",
        "/v1/audit?actor=me",
    ] {
        app.get(uri, &tenant.admin_key).await.expect_error(StatusCode::BAD_REQUEST, "invalid_query");
    }
    let session = app.create_session(&tenant.admin_key, "s").await;
    let uri = format!("/v1/sessions/{}/messages?limit=many", session["id"].as_str().unwrap());
    app.get(&uri, &tenant.admin_key).await.expect_error(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let mut config = config();
    config.json_body_limit = 1024;
    let app = TestApp::with_config(config).await;
    let tenant = app.tenant("a").await;
    let session = app.create_session(&tenant.admin_key, "s").await;
    let messages = format!("/v1/sessions/{}/messages", session["id"].as_str().unwrap());

    // Just under the limit is fine: the limit is what refuses, not the size.
    let fits = json!({ "role": "user", "content": "x".repeat(900) });
    app.post(&messages, &tenant.admin_key, fits).await.expect_json(StatusCode::CREATED);

    let big = json!({ "role": "user", "content": "x".repeat(2000) });
    let resp = app.post(&messages, &tenant.admin_key, big.clone()).await;
    resp.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // Also when the client announces the length up front.
    let bytes = serde_json::to_vec(&big).unwrap();
    let request = req(Method::POST, &messages)
        .bearer(&tenant.admin_key)
        .header("content-length", &bytes.len().to_string())
        .raw(Some("application/json"), bytes);
    app.send(request).await.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // And on the open login route.
    let login = json!({ "email": "a@example.com", "password": "p".repeat(2000) });
    let resp = app.send(req(Method::POST, "/v1/auth/token").json(&login)).await;
    resp.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    let listed = app.get(&messages, &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn invalid_utf8_in_a_json_body_is_400() {
    let (app, tenant) = setup().await;
    let body: &[u8] = b"{\"title\": \"\xff\xfe bad\"}";
    let request = req(Method::POST, "/v1/sessions").bearer(&tenant.admin_key).raw(Some("application/json"), body);
    app.send(request).await.expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    let listed = app.get("/v1/sessions", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn values_the_api_does_not_accept_are_422() {
    let (app, tenant) = setup().await;
    let session = app.create_session(&tenant.admin_key, "s").await;
    let messages = format!("/v1/sessions/{}/messages", session["id"].as_str().unwrap());
    let cases = [
        (messages.as_str(), json!({ "role": "user", "content": "" })),
        (messages.as_str(), json!({ "role": "user", "content": "x", "metadata": [1, 2] })),
        (messages.as_str(), json!({ "role": "user", "content": "x", "metadata": "text" })),
        ("/v1/sessions", json!({ "metadata": 5 })),
        ("/v1/sessions", json!({ "metadata": ["a"] })),
        ("/v1/sessions", json!({ "title": "t".repeat(201) })),
        ("/v1/keys", json!({ "name": "" })),
        ("/v1/keys", json!({ "name": "   " })),
        ("/v1/keys", json!({ "name": "n".repeat(101) })),
        ("/v1/keys", json!({ "name": "k", "expires_at": "2000-01-01T00:00:00Z" })),
        ("/v1/users", json!({ "email": "not-an-email", "password": "long enough password" })),
        ("/v1/users", json!({ "email": "a@example.com", "password": "short" })),
    ];
    for (uri, body) in cases {
        let resp = app.post(uri, &tenant.admin_key, body.clone()).await;
        assert_eq!(resp.status, StatusCode::UNPROCESSABLE_ENTITY, "{uri} {body}: {}", resp.text());
        resp.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    // The title limit counts characters, not bytes.
    let created = app.post("/v1/sessions", &tenant.admin_key, json!({ "title": "é".repeat(200) })).await;
    assert_eq!(created.expect_json(StatusCode::CREATED)["title"], "é".repeat(200));
    // Nothing else was created.
    let listed = app.get("/v1/sessions", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let keys = app.get("/v1/keys", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(keys["items"].as_array().unwrap().len(), 1);
    let users = app.get("/v1/users", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(users["items"], json!([]));
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let (app, tenant) = setup().await;
    for uri in ["/nope", "/v1", "/v1/nope", "/v1/sessions/a/b/c", "/v2/sessions"] {
        let resp = app.send(req(Method::GET, uri).bearer(&tenant.admin_key)).await;
        resp.expect_error(StatusCode::NOT_FOUND, "not_found");
    }
    let resp = app.send(req(Method::GET, "/nope")).await;
    resp.expect_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_wrong_method_is_405_json_with_allow() {
    let (app, tenant) = setup().await;
    for (method, uri) in [
        (Method::PUT, "/v1/sessions"),
        (Method::PATCH, "/v1/keys"),
        (Method::POST, "/v1/me"),
        (Method::GET, "/v1/auth/token"),
        (Method::POST, "/healthz"),
        (Method::DELETE, "/metrics"),
    ] {
        let resp = app.send(req(method.clone(), uri).bearer(&tenant.admin_key)).await;
        resp.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert!(resp.header("allow").is_some_and(|a| !a.is_empty()), "{method} {uri}: no Allow header");
    }
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let (app, tenant) = setup().await;
    let id = uuid::Uuid::now_v7();
    let attempts = [
        req(Method::GET, &format!("/v1/sessions/{id}")),
        req(Method::DELETE, &format!("/v1/sessions/{id}")),
        req(Method::GET, &format!("/v1/sessions/{id}/messages")),
        req(Method::POST, &format!("/v1/sessions/{id}/messages")).json(&json!({ "role": "user", "content": "x" })),
        req(Method::DELETE, &format!("/v1/keys/{id}")),
        req(Method::POST, "/v1/keys").json(&json!({ "name": "for nobody", "user_id": id })),
    ];
    for attempt in attempts {
        app.send(attempt.bearer(&tenant.admin_key)).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn a_cursor_that_is_not_ours_is_400() {
    let (app, tenant) = setup().await;
    let session = app.create_session(&tenant.admin_key, "s").await;
    let sid = session["id"].as_str().unwrap();
    for uri in [
        "/v1/sessions?cursor=garbage".to_string(),
        "/v1/keys?cursor=garbage".to_string(),
        "/v1/users?cursor=garbage".to_string(),
        "/v1/audit?cursor=garbage".to_string(),
        format!("/v1/sessions/{sid}/messages?cursor=garbage"),
        format!("/v1/sessions/{sid}/messages?cursor=-1"),
    ] {
        app.get(&uri, &tenant.admin_key).await.expect_error(StatusCode::BAD_REQUEST, "invalid_cursor");
    }
}

#[tokio::test]
async fn a_key_cannot_have_more_rights_than_its_user() {
    let (app, tenant) = setup().await;
    let member = app.user(tenant.id, "member@example.com", Role::Member).await;
    let resp =
        app.post("/v1/keys", &tenant.admin_key, json!({ "name": "k", "role": "admin", "user_id": member.id })).await;
    resp.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");

    // A member key for the member is fine, and acts as the user.
    let resp = app.post("/v1/keys", &tenant.admin_key, json!({ "name": "k", "user_id": member.id })).await;
    let created = resp.expect_json(StatusCode::CREATED);
    assert_eq!(created["api_key"]["role"], "member");
    let me = app.get("/v1/me", created["key"].as_str().unwrap()).await.expect_json(StatusCode::OK);
    assert_eq!(me["kind"], "user");
    assert_eq!(me["id"], json!(member.id));
    let keys = app.get("/v1/keys", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(keys["items"].as_array().unwrap().len(), 2, "the refused key must not exist: {keys}");
}

#[tokio::test]
async fn a_duplicate_email_is_409() {
    let (app, tenant) = setup().await;
    let body = json!({ "email": "dup@example.com", "password": "long enough password" });
    app.post("/v1/users", &tenant.admin_key, body).await.expect_json(StatusCode::CREATED);
    let again = json!({ "email": "DUP@example.com", "password": "another long password" });
    app.post("/v1/users", &tenant.admin_key, again).await.expect_error(StatusCode::CONFLICT, "conflict");
    let users = app.get("/v1/users", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
    // Another tenant may use the same email.
    let other = app.tenant("b").await;
    let body = json!({ "email": "dup@example.com", "password": "long enough password" });
    app.post("/v1/users", &other.admin_key, body).await.expect_json(StatusCode::CREATED);
}

on_both_backends!(nul_characters_are_refused_not_500);

/// PostgreSQL cannot store NUL in `text` or `jsonb`; the API must refuse
/// such input on every backend instead of failing in the database.
async fn nul_characters_are_refused_not_500(backend: Backend) {
    let app = TestApp::on(backend).await;
    let tenant = app.tenant("a").await;
    let session = app.create_session(&tenant.admin_key, "s").await;
    let messages = format!("/v1/sessions/{}/messages", session["id"].as_str().unwrap());
    let cases = [
        (messages.as_str(), json!({ "role": "user", "content": "a\u{0}b" })),
        (messages.as_str(), json!({ "role": "user", "content": "x", "metadata": { "k": "\u{0}" } })),
        (messages.as_str(), json!({ "role": "user", "content": "x", "metadata": { "k\u{0}": 1 } })),
        ("/v1/sessions", json!({ "title": "\u{0}" })),
        ("/v1/keys", json!({ "name": "k\u{0}" })),
        ("/v1/users", json!({ "email": "a\u{0}@example.com", "password": "long enough password" })),
    ];
    for (uri, body) in cases {
        let resp = app.post(uri, &tenant.admin_key, body.clone()).await;
        assert_eq!(resp.status, StatusCode::UNPROCESSABLE_ENTITY, "{uri} {body}: {}", resp.text());
        resp.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    for login in [
        json!({ "email": "a\u{0}@example.com", "password": "x" }),
        json!({ "email": "a@example.com", "password": "x", "tenant": "a\u{0}" }),
    ] {
        let resp = app.send(req(Method::POST, "/v1/auth/token").json(&login)).await;
        resp.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    let resp = app.get("/v1/audit?action=a%00b", &tenant.admin_key).await;
    resp.expect_error(StatusCode::BAD_REQUEST, "invalid_query");

    // A backslash followed by "u0000" is ordinary text, kept as sent.
    let text = json!({ "role": "user", "content": "a\\u0000b" });
    let message = app.post(&messages, &tenant.admin_key, text).await.expect_json(StatusCode::CREATED);
    assert_eq!(message["content"], "a\\u0000b");
    let listed = app.get(&messages, &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}
