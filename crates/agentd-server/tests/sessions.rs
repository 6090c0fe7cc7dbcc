//! The conversation API as a client uses it: create, list with pagination,
//! read, append messages in order, and delete (after which everything about
//! the session is gone).

mod common;

use std::collections::HashSet;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use common::{TestApp, all_pages, ids};

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a timestamp: {value}"))
}

#[tokio::test]
async fn a_session_lives_and_dies() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    let token = &tenant.admin_key;

    let body = json!({ "title": "Trip planning", "metadata": { "client": { "name": "cli", "v": 2 } } });
    let created = app.post("/v1/sessions", token, body).await.expect_json(StatusCode::CREATED);
    assert_eq!(created["title"], "Trip planning");
    assert_eq!(created["metadata"], json!({ "client": { "name": "cli", "v": 2 } }));
    assert_eq!(created["tenant_id"], json!(tenant.id));
    assert_eq!(created["owner_id"], json!(tenant.admin_key_id));
    let sid = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/sessions/{sid}");

    assert_eq!(app.get(&path, token).await.expect_json(StatusCode::OK), created);

    let roles = ["system", "user", "assistant"];
    for (i, role) in roles.iter().enumerate() {
        let body = json!({ "role": role, "content": format!("message {}", i + 1), "metadata": { "n": i + 1 } });
        let message = app.post(&format!("{path}/messages"), token, body).await.expect_json(StatusCode::CREATED);
        assert_eq!(message["seq"], i + 1);
        assert_eq!(message["session_id"], sid.as_str());
        assert_eq!(message["role"], *role);
        assert_eq!(message["metadata"], json!({ "n": i + 1 }));
    }
    // Appending touches the session.
    let touched = app.get(&path, token).await.expect_json(StatusCode::OK);
    assert!(time(&touched["updated_at"]) > time(&created["updated_at"]), "{touched}");
    assert_eq!(touched["created_at"], created["created_at"]);

    let listed = app.get(&format!("{path}/messages"), token).await.expect_json(StatusCode::OK);
    let contents: Vec<_> = listed["items"].as_array().unwrap().iter().map(|m| m["content"].clone()).collect();
    assert_eq!(contents, [json!("message 1"), json!("message 2"), json!("message 3")]);
    assert_eq!(listed["next_cursor"], Value::Null);

    // Messages page in order too.
    let first = app.get(&format!("{path}/messages?limit=2"), token).await.expect_json(StatusCode::OK);
    let seqs: Vec<_> = first["items"].as_array().unwrap().iter().map(|m| m["seq"].clone()).collect();
    assert_eq!(seqs, [json!(1), json!(2)]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let rest = app.get(&format!("{path}/messages?limit=2&cursor={cursor}"), token).await.expect_json(StatusCode::OK);
    let seqs: Vec<_> = rest["items"].as_array().unwrap().iter().map(|m| m["seq"].clone()).collect();
    assert_eq!(seqs, [json!(3)]);
    assert_eq!(rest["next_cursor"], Value::Null);

    let deleted = app.delete(&path, token).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty());

    app.get(&path, token).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.get(&format!("{path}/messages"), token).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    let append = json!({ "role": "user", "content": "too late" });
    app.post(&format!("{path}/messages"), token, append).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.delete(&path, token).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    let listed = app.get("/v1/sessions", token).await.expect_json(StatusCode::OK);
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn an_empty_object_starts_an_untitled_session() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    let created = app.post("/v1/sessions", &tenant.admin_key, json!({})).await.expect_json(StatusCode::CREATED);
    assert_eq!(created["title"], Value::Null);
    assert_eq!(created["metadata"], json!({}));
}

#[tokio::test]
async fn sessions_list_newest_first_and_paginate() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    let token = &tenant.admin_key;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(app.create_session(token, &format!("s{i}")).await["id"].as_str().unwrap().to_string());
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let everything = app.get("/v1/sessions", token).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&everything), newest_first);
    assert_eq!(everything["next_cursor"], Value::Null);

    let page1 = app.get("/v1/sessions?limit=2", token).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&page1), newest_first[..2]);
    let cursor = page1["next_cursor"].as_str().expect("more pages");
    let page2 = app.get(&format!("/v1/sessions?limit=2&cursor={cursor}"), token).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&page2), newest_first[2..4]);

    let paged = all_pages(&app, "/v1/sessions", token, 2).await;
    let paged_ids: Vec<String> = paged.iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(paged_ids, newest_first);
    assert_eq!(paged_ids.iter().collect::<HashSet<_>>().len(), 5, "no session twice");

    // Page sizes out of 1..=200 are refused, not clamped; the bounds pass.
    for limit in ["0", "201", "100000"] {
        let uri = format!("/v1/sessions?limit={limit}");
        app.get(&uri, token).await.expect_error(StatusCode::BAD_REQUEST, "invalid_query");
    }
    let one = app.get("/v1/sessions?limit=1", token).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&one), newest_first[..1]);
    let all = app.get("/v1/sessions?limit=200", token).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&all), newest_first);
    // An empty cursor is no cursor: the first page.
    let first = app.get("/v1/sessions?limit=2&cursor=", token).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&first), newest_first[..2]);
}

#[tokio::test]
async fn deleting_one_session_leaves_the_others() {
    let app = TestApp::new().await;
    let tenant = app.tenant("a").await;
    let token = &tenant.admin_key;
    let keep = app.create_session(token, "keep").await["id"].as_str().unwrap().to_string();
    let drop = app.create_session(token, "drop").await["id"].as_str().unwrap().to_string();
    app.append(token, &keep, "kept").await;
    app.append(token, &drop, "dropped").await;

    assert_eq!(app.delete(&format!("/v1/sessions/{drop}"), token).await.status, StatusCode::NO_CONTENT);
    let listed = app.get("/v1/sessions", token).await.expect_json(StatusCode::OK);
    assert_eq!(ids(&listed), [keep.as_str()]);
    let messages = app.get(&format!("/v1/sessions/{keep}/messages"), token).await.expect_json(StatusCode::OK);
    assert_eq!(messages["items"][0]["content"], "kept");
    // Numbering of the survivor goes on where it was.
    assert_eq!(app.append(token, &keep, "more").await["seq"], 2);
}
