//! Tenant isolation end to end: another tenant's ids answer 404 exactly like
//! ids that do not exist, never appear in listings, and cannot be changed;
//! inside a tenant, members see only their own conversations. The filtering
//! is SQL, so both backends are exercised.

#[macro_use]
mod common;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use agentd_store::Role;
use agentd_store::testing::Backend;

use common::{TestApp, ids, req};

on_both_backends!(tenants_cannot_see_or_touch_each_others_data, members_see_only_their_own_sessions);

async fn tenants_cannot_see_or_touch_each_others_data(backend: Backend) {
    let app = TestApp::on(backend).await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;

    // Tenant A: a session with messages, a key and a user, all through the API
    // (so A's audit log has entries too).
    let session = app.create_session(&a.admin_key, "a's secrets").await;
    let sid = session["id"].as_str().unwrap().to_string();
    app.append(&a.admin_key, &sid, "first").await;
    app.append(&a.admin_key, &sid, "second").await;
    let created = app.post("/v1/keys", &a.admin_key, json!({ "name": "a's key" })).await;
    let created = created.expect_json(StatusCode::CREATED);
    let (a_key, a_key_id) = (created["key"].as_str().unwrap().to_string(), created["api_key"]["id"].clone());
    let a_key_id = a_key_id.as_str().unwrap().to_string();
    let a_user = app.user(a.id, "a-user@example.com", Role::Member).await;
    let a_ids = [sid.clone(), a_key_id.clone(), a.admin_key_id.to_string(), a_user.id.to_string()];

    let session_before = app.get(&format!("/v1/sessions/{sid}"), &a.admin_key).await.expect_json(StatusCode::OK);
    let messages_before =
        app.get(&format!("/v1/sessions/{sid}/messages"), &a.admin_key).await.expect_json(StatusCode::OK);

    // Tenant B has data of its own, so its listings are not trivially empty.
    let b_session = app.create_session(&b.admin_key, "b's").await;
    app.post("/v1/keys", &b.admin_key, json!({ "name": "b's key" })).await.expect_json(StatusCode::CREATED);

    // B's admin gets 404 on every one of A's ids: the same answer as for an
    // id that does not exist.
    let attempts = [
        req(Method::GET, &format!("/v1/sessions/{sid}")),
        req(Method::DELETE, &format!("/v1/sessions/{sid}")),
        req(Method::GET, &format!("/v1/sessions/{sid}/messages")),
        req(Method::POST, &format!("/v1/sessions/{sid}/messages")).json(&json!({ "role": "user", "content": "hi" })),
        req(Method::DELETE, &format!("/v1/keys/{a_key_id}")),
        req(Method::DELETE, &format!("/v1/keys/{}", a.admin_key_id)),
        req(Method::POST, "/v1/keys").json(&json!({ "name": "as a's user", "user_id": a_user.id })),
    ];
    for attempt in attempts {
        app.send(attempt.bearer(&b.admin_key)).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    }

    // B's listings hold B's data and none of A's.
    for path in ["/v1/sessions", "/v1/keys", "/v1/users", "/v1/audit"] {
        let page = app.get(path, &b.admin_key).await.expect_json(StatusCode::OK);
        for item in page["items"].as_array().unwrap() {
            let text = item.to_string();
            for id in &a_ids {
                assert!(!text.contains(id.as_str()), "{path} of tenant b shows a's {id}: {item}");
            }
            if let Some(tenant) = item.get("tenant_id") {
                assert_eq!(tenant, &json!(b.id), "{path} of tenant b: {item}");
            }
        }
        if path != "/v1/users" {
            assert!(!ids(&page).is_empty(), "{path} of tenant b is empty: {page}");
        }
    }
    let b_sessions = app.get("/v1/sessions", &b.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&b_sessions), [b_session["id"].as_str().unwrap()]);

    // A's data is exactly as it was.
    let session_after = app.get(&format!("/v1/sessions/{sid}"), &a.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(session_after, session_before);
    let messages_after =
        app.get(&format!("/v1/sessions/{sid}/messages"), &a.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(messages_after, messages_before);
    app.get("/v1/me", &a_key).await.expect_json(StatusCode::OK);
    let a_keys = app.get("/v1/keys", &a.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(a_keys["items"].as_array().unwrap().len(), 2);
    assert!(a_keys["items"].as_array().unwrap().iter().all(|k| k["revoked_at"].is_null()), "{a_keys}");
    let a_users = app.get("/v1/users", &a.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&a_users), [a_user.id.to_string()]);
    // And A sees none of B's.
    let a_sessions = app.get("/v1/sessions", &a.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&a_sessions), [sid.as_str()]);
    let a_audit = app.get("/v1/audit", &a.admin_key).await.expect_json(StatusCode::OK);
    assert!(a_audit["items"].as_array().unwrap().iter().all(|e| e["tenant_id"] == json!(a.id)), "{a_audit}");
}

async fn members_see_only_their_own_sessions(backend: Backend) {
    let app = TestApp::on(backend).await;
    let tenant = app.tenant("a").await;
    let (m1, _) = app.key(tenant.id, Role::Member, None).await;
    let (m2, _) = app.key(tenant.id, Role::Member, None).await;

    let session = app.create_session(&m1, "m1's").await;
    let sid = session["id"].as_str().unwrap().to_string();
    app.append(&m1, &sid, "private").await;
    let m2_session = app.create_session(&m2, "m2's").await;

    let attempts = [
        req(Method::GET, &format!("/v1/sessions/{sid}")),
        req(Method::DELETE, &format!("/v1/sessions/{sid}")),
        req(Method::GET, &format!("/v1/sessions/{sid}/messages")),
        req(Method::POST, &format!("/v1/sessions/{sid}/messages")).json(&json!({ "role": "user", "content": "hi" })),
    ];
    for attempt in attempts {
        app.send(attempt.bearer(&m2)).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    }
    let listed = app.get("/v1/sessions", &m2).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&listed), [m2_session["id"].as_str().unwrap()]);

    // The owner and the tenant's admin still see it, unchanged.
    let messages = |v: &Value| v["items"].as_array().unwrap().iter().map(|m| m["content"].clone()).collect::<Vec<_>>();
    for token in [&m1, &tenant.admin_key] {
        let got = app.get(&format!("/v1/sessions/{sid}"), token).await.expect_json(StatusCode::OK);
        assert_eq!(got["owner_id"], session["owner_id"]);
        let listed = app.get(&format!("/v1/sessions/{sid}/messages"), token).await.expect_json(StatusCode::OK);
        assert_eq!(messages(&listed), [json!("private")]);
    }
    let admin_list = app.get("/v1/sessions", &tenant.admin_key).await.expect_json(StatusCode::OK);
    let mut all = ids(&admin_list);
    all.sort();
    let mut expected = vec![sid.clone(), m2_session["id"].as_str().unwrap().to_string()];
    expected.sort();
    assert_eq!(all, expected);
}
