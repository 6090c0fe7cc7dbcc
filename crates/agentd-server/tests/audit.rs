//! The audit log records who did what to what, under the request id the
//! client (or the server) gave the request, in the right tenant; and
//! `GET /v1/audit` pages through it and filters it by action.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use agentd_store::Role;

use common::{PASSWORD, TestApp, all_pages, req, token_for};

/// The one entry with `action` in the tenant's log.
async fn only_entry(app: &TestApp, token: &str, action: &str) -> Value {
    let page = app.get(&format!("/v1/audit?action={action}"), token).await.expect_json(StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "expected one {action} entry: {page}");
    items[0].clone()
}

#[tokio::test]
async fn actions_are_recorded_with_actor_target_and_request_id() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    let admin = &tenant.admin_key;
    let user = app.user(tenant.id, "alice@example.com", Role::Admin).await;

    // api_key.create and api_key.revoke, by the admin key.
    let created = app
        .send(req(Method::POST, "/v1/keys").bearer(admin).header("x-request-id", "req-key-create").json(&json!({
            "name": "ci", "role": "member"
        })))
        .await
        .expect_json(StatusCode::CREATED);
    let key_id = created["api_key"]["id"].as_str().unwrap().to_string();
    let revoke =
        req(Method::DELETE, &format!("/v1/keys/{key_id}")).bearer(admin).header("x-request-id", "req-key-revoke");
    app.send(revoke).await.expect_json(StatusCode::OK);

    // auth.login and auth.login_failed.
    let login = json!({ "email": "alice@example.com", "password": PASSWORD });
    let ok = req(Method::POST, "/v1/auth/token").header("x-request-id", "req-login-ok").json(&login);
    app.send(ok).await.expect_json(StatusCode::OK);
    let bad_login = json!({ "email": "Alice@example.com", "password": "wrong password" });
    let bad = req(Method::POST, "/v1/auth/token").header("x-request-id", "req-login-bad").json(&bad_login);
    app.send(bad).await.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");

    // session.delete, by the user (through a JWT).
    let jwt = token_for(&user);
    let session = app.create_session(&jwt, "doomed").await;
    let sid = session["id"].as_str().unwrap().to_string();
    let delete = req(Method::DELETE, &format!("/v1/sessions/{sid}")).bearer(&jwt).header("x-request-id", "req-del");
    assert_eq!(app.send(delete).await.status, StatusCode::NO_CONTENT);

    let entry = only_entry(&app, admin, "api_key.create").await;
    assert_eq!(entry["tenant_id"], json!(tenant.id));
    assert_eq!(entry["actor_id"], json!(tenant.admin_key_id));
    assert_eq!(entry["target"], key_id.as_str());
    assert_eq!(entry["request_id"], "req-key-create");
    assert_eq!(entry["details"]["name"], "ci");
    assert_eq!(entry["details"]["role"], "member");
    // The key itself is never recorded.
    assert!(!entry.to_string().contains(created["key"].as_str().unwrap()));

    let entry = only_entry(&app, admin, "api_key.revoke").await;
    assert_eq!(entry["actor_id"], json!(tenant.admin_key_id));
    assert_eq!(entry["target"], key_id.as_str());
    assert_eq!(entry["request_id"], "req-key-revoke");

    let entry = only_entry(&app, admin, "auth.login").await;
    assert_eq!(entry["tenant_id"], json!(tenant.id));
    assert_eq!(entry["actor_id"], json!(user.id));
    assert_eq!(entry["target"], json!(user.id.to_string()));
    assert_eq!(entry["request_id"], "req-login-ok");
    assert_eq!(entry["details"]["email"], "alice@example.com");
    assert!(!entry.to_string().contains(PASSWORD));

    // A failed login for a known email lands in that user's tenant.
    let entry = only_entry(&app, admin, "auth.login_failed").await;
    assert_eq!(entry["tenant_id"], json!(tenant.id));
    assert_eq!(entry["actor_id"], Value::Null);
    assert_eq!(entry["target"], "alice@example.com");
    assert_eq!(entry["request_id"], "req-login-bad");
    assert!(!entry.to_string().contains("wrong password"));

    let entry = only_entry(&app, admin, "session.delete").await;
    assert_eq!(entry["actor_id"], json!(user.id));
    assert_eq!(entry["target"], sid.as_str());
    assert_eq!(entry["request_id"], "req-del");

    // The user's JWT (an admin user's) reads the same log.
    let all = app.get("/v1/audit", &jwt).await.expect_json(StatusCode::OK);
    assert_eq!(all["items"].as_array().unwrap().len(), 5, "{all}");
}

#[tokio::test]
async fn a_generated_request_id_is_the_one_recorded() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    let resp = app.post("/v1/keys", &tenant.admin_key, json!({ "name": "k" })).await;
    resp.expect_json(StatusCode::CREATED);
    let generated = resp.header("x-request-id").expect("a generated request id").to_string();
    let entry = only_entry(&app, &tenant.admin_key, "api_key.create").await;
    assert_eq!(entry["request_id"], generated.as_str());
}

#[tokio::test]
async fn failed_logins_stay_out_of_other_tenants_logs() {
    let app = TestApp::new().await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    app.user(a.id, "alice@example.com", Role::Member).await;
    app.login("alice@example.com", "wrong password", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    app.login("nobody@example.com", "wrong password", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");

    // A's log has its user's failure; B's has neither, nor does anyone's
    // have the unknown email.
    let a_entry = only_entry(&app, &a.admin_key, "auth.login_failed").await;
    assert_eq!(a_entry["target"], "alice@example.com");
    let b_log = app.get("/v1/audit", &b.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(b_log["items"], json!([]));
}

#[tokio::test]
async fn the_log_pages_newest_first_and_filters_by_action() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    let admin = &tenant.admin_key;
    let mut key_ids = Vec::new();
    for i in 0..5 {
        let created = app.post("/v1/keys", admin, json!({ "name": format!("k{i}") })).await;
        key_ids.push(created.expect_json(StatusCode::CREATED)["api_key"]["id"].as_str().unwrap().to_string());
    }
    for id in &key_ids[..2] {
        app.delete(&format!("/v1/keys/{id}"), admin).await.expect_json(StatusCode::OK);
    }

    let everything = all_pages(&app, "/v1/audit", admin, 2).await;
    assert_eq!(everything.len(), 7);
    let actions: Vec<&str> = everything.iter().map(|e| e["action"].as_str().unwrap()).collect();
    let mut expected = vec!["api_key.revoke"; 2];
    expected.extend(["api_key.create"; 5]);
    assert_eq!(actions, expected, "newest first");
    let entry_ids: Vec<&str> = everything.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = entry_ids.clone();
    sorted.sort_unstable_by(|x, y| y.cmp(x));
    sorted.dedup();
    assert_eq!(entry_ids, sorted, "ids strictly descending: no entry twice, none out of order");

    let creates = all_pages(&app, "/v1/audit?action=api_key.create", admin, 2).await;
    let targets: Vec<&str> = creates.iter().map(|e| e["target"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = key_ids.iter().rev().map(String::as_str).collect();
    assert_eq!(targets, newest_first);

    let revokes = app.get("/v1/audit?action=api_key.revoke", admin).await.expect_json(StatusCode::OK);
    let targets: Vec<&str> =
        revokes["items"].as_array().unwrap().iter().map(|e| e["target"].as_str().unwrap()).collect();
    assert_eq!(targets, [key_ids[1].as_str(), key_ids[0].as_str()]);

    let none = app.get("/v1/audit?action=no.such.action", admin).await.expect_json(StatusCode::OK);
    assert_eq!(none, json!({ "items": [], "next_cursor": null }));
}
