//! `/v1/documents`, `/v1/jobs` and `/v1/search` through the real router, on
//! both backends: uploads (multipart and JSON), ingestion status, search,
//! replacement, deletion, tenant isolation, and every kind of bad input
//! answered with a clear 4xx and nothing half-written.

#[macro_use]
mod common;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use agentd_store::testing::Backend;
use common::{TestApp, config, req};

on_both_backends!(
    files_are_uploaded_ingested_searched_and_deleted,
    json_text_is_a_document_too,
    a_document_is_replaced_by_a_new_version,
    other_tenants_documents_and_jobs_are_not_found,
    bad_uploads_are_refused_and_nothing_is_stored,
);

const GUIDE: &[u8] =
    b"# Deployment\n\nRun agentd behind a reverse proxy.\n\n## Backups\n\nCopy the data directory nightly.\n";
const PAGE: &[u8] = b"<html><head><title>Bread</title><script>var secret = 1;</script></head>\
<body><h1>Baking</h1><p>Bake the sourdough bread for forty minutes.</p></body></html>";

async fn app(backend: Backend) -> (TestApp, common::TestTenant) {
    let app = TestApp::with_knowledge(backend, config()).await;
    let tenant = app.tenant("acme").await;
    (app, tenant)
}

async fn upload(app: &TestApp, token: &str, parts: &[(&str, Option<&str>, &[u8])]) -> common::Resp {
    app.send(req(Method::POST, "/v1/documents").bearer(token).multipart(parts)).await
}

async fn search(app: &TestApp, token: &str, body: Value) -> Value {
    app.post("/v1/search", token, body).await.expect_json(StatusCode::OK)
}

fn result_titles(response: &Value) -> Vec<String> {
    response["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["title"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn files_are_uploaded_ingested_searched_and_deleted(backend: Backend) {
    let (app, acme) = app(backend).await;
    let metadata = br#"{"team": "ops"}"#;
    let submitted = upload(
        &app,
        &acme.admin_key,
        &[("file", Some("guide.md"), GUIDE), ("file", Some("bread.html"), PAGE), ("metadata", None, metadata)],
    )
    .await
    .expect_json(StatusCode::ACCEPTED);
    let documents = submitted["documents"].as_array().expect("documents");
    assert_eq!(documents.len(), 2);
    assert_eq!(documents[0]["status"], "queued");
    assert_eq!(documents[0]["title"], "guide.md");
    assert_eq!(documents[1]["metadata"], json!({"team": "ops"}));
    let job = submitted["job_id"].as_str().expect("a job").to_string();
    assert_eq!(documents[0]["job_id"], job.as_str());
    assert_eq!(
        app.get(&format!("/v1/jobs/{job}"), &acme.admin_key).await.expect_json(StatusCode::OK)["status"],
        "queued"
    );

    app.run_jobs().await;
    let job = app.get(&format!("/v1/jobs/{job}"), &acme.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(job["status"], "succeeded");
    assert!(job["progress_total"].as_i64().unwrap_or(0) >= 2);
    let guide_id = documents[0]["id"].as_str().expect("id").to_string();
    let guide = app.get(&format!("/v1/documents/{guide_id}"), &acme.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(guide["status"], "ready");
    assert!(guide["chunk_count"].as_i64().unwrap_or(0) >= 1);

    let found = search(&app, &acme.admin_key, json!({"query": "sourdough bread", "k": 3, "debug": true})).await;
    assert_eq!(result_titles(&found)[0], "bread.html");
    let best = &found["results"][0];
    assert!(best["text"].as_str().unwrap_or("").contains("sourdough"));
    assert!(!best["text"].as_str().unwrap_or("").contains("secret"), "script text is not indexed");
    assert_eq!(best["heading_path"], json!(["Baking"]));
    assert!(best["span"]["byte_end"].as_i64() > best["span"]["byte_start"].as_i64());
    assert!(found["timings"]["total_ms"].as_f64().is_some());
    let keyword = search(&app, &acme.admin_key, json!({"query": "nightly", "mode": "keyword"})).await;
    assert_eq!(result_titles(&keyword), vec!["guide.md"]);
    assert!(keyword.get("timings").is_none());

    let listed = app.get("/v1/documents?metadata=%7B%22team%22%3A%22ops%22%7D", &acme.admin_key).await;
    assert_eq!(listed.expect_json(StatusCode::OK)["items"].as_array().map(Vec::len), Some(2));
    let none = app.get("/v1/documents?metadata=%7B%22team%22%3A%22hr%22%7D", &acme.admin_key).await;
    assert_eq!(none.expect_json(StatusCode::OK)["items"].as_array().map(Vec::len), Some(0));

    let deleted = app.delete(&format!("/v1/documents/{guide_id}"), &acme.admin_key).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get(&format!("/v1/documents/{guide_id}"), &acme.admin_key)
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    let gone = search(&app, &acme.admin_key, json!({"query": "nightly", "mode": "keyword"})).await;
    assert!(result_titles(&gone).is_empty());
    // Uploading the same bytes again is recognised.
    let again = upload(&app, &acme.admin_key, &[("file", Some("bread-copy.html"), PAGE)]).await;
    let again = again.expect_json(StatusCode::ACCEPTED);
    assert_eq!((again["documents"][0]["duplicate"].as_bool(), again["job_id"].clone()), (Some(true), Value::Null));
}

async fn json_text_is_a_document_too(backend: Backend) {
    let (app, acme) = app(backend).await;
    let body =
        json!({"title": "Onboarding", "text": "# Week one\n\nMeet the on-call team.", "metadata": {"lang": "en"}});
    let submitted = app.post("/v1/documents", &acme.admin_key, body).await.expect_json(StatusCode::ACCEPTED);
    assert_eq!(submitted["documents"][0]["format"], "markdown");
    app.run_jobs().await;
    let found =
        search(&app, &acme.admin_key, json!({"query": "on-call team", "filter": {"metadata": {"lang": "en"}}})).await;
    assert_eq!(result_titles(&found), vec!["Onboarding"]);
    assert_eq!(found["results"][0]["heading_path"], json!(["Week one"]));
}

async fn a_document_is_replaced_by_a_new_version(backend: Backend) {
    let (app, acme) = app(backend).await;
    let submitted = upload(&app, &acme.admin_key, &[("file", Some("code.md"), b"The door code is 4711.")]).await;
    let id = submitted.expect_json(StatusCode::ACCEPTED)["documents"][0]["id"].as_str().expect("id").to_string();
    app.run_jobs().await;
    let put = app
        .send(req(Method::PUT, &format!("/v1/documents/{id}")).bearer(&acme.admin_key).multipart(&[(
            "file",
            Some("code.md"),
            b"The door code is 9000.",
        )]))
        .await
        .expect_json(StatusCode::ACCEPTED);
    assert_eq!(put["documents"][0]["version"], 2);
    app.run_jobs().await;
    let found = search(&app, &acme.admin_key, json!({"query": "4711", "mode": "keyword"})).await;
    assert!(result_titles(&found).is_empty());
    let found = search(&app, &acme.admin_key, json!({"query": "9000", "mode": "keyword"})).await;
    assert_eq!(result_titles(&found), vec!["code.md"]);
    let missing = uuid::Uuid::now_v7();
    let put = app
        .send(req(Method::PUT, &format!("/v1/documents/{missing}")).bearer(&acme.admin_key).multipart(&[(
            "file",
            Some("x.md"),
            b"x",
        )]))
        .await;
    put.expect_error(StatusCode::NOT_FOUND, "not_found");
}

async fn other_tenants_documents_and_jobs_are_not_found(backend: Backend) {
    let (app, acme) = app(backend).await;
    let globex = app.tenant("globex").await;
    let submitted = upload(&app, &acme.admin_key, &[("file", Some("secret.md"), b"Acme plans to buy Initech.")]).await;
    let submitted = submitted.expect_json(StatusCode::ACCEPTED);
    let id = submitted["documents"][0]["id"].as_str().expect("id").to_string();
    let job = submitted["job_id"].as_str().expect("job").to_string();
    app.run_jobs().await;
    let theirs = &globex.admin_key;
    app.get(&format!("/v1/documents/{id}"), theirs).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.get(&format!("/v1/jobs/{job}"), theirs).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.delete(&format!("/v1/documents/{id}"), theirs).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    let put =
        req(Method::PUT, &format!("/v1/documents/{id}")).bearer(theirs).multipart(&[("file", Some("x.md"), b"x")]);
    app.send(put).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    let listed = app.get("/v1/documents", theirs).await.expect_json(StatusCode::OK);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(0));
    for mode in ["hybrid", "vector", "keyword"] {
        let body = json!({"query": "Acme Initech", "mode": mode, "filter": {"document_ids": [id]}});
        assert!(result_titles(&search(&app, theirs, body).await).is_empty(), "{mode}");
    }
    // Still there for its owner.
    let found = search(&app, &acme.admin_key, json!({"query": "Initech"})).await;
    assert_eq!(result_titles(&found), vec!["secret.md"]);
}

async fn bad_uploads_are_refused_and_nothing_is_stored(backend: Backend) {
    let mut small = config();
    small.upload_body_limit = 64 * 1024;
    let app = TestApp::with_knowledge(backend, small).await;
    let acme = app.tenant("acme").await;
    let key = acme.admin_key.as_str();
    let post = |content_type: &str, body: &[u8]| {
        req(Method::POST, "/v1/documents").bearer(key).raw(Some(content_type), body.to_vec())
    };
    app.send(post("application/json", b"{\"title\": \"x\", \"text\": "))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    app.post("/v1/documents", key, json!({"text": "no title"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    app.post("/v1/documents", key, json!({"title": " ", "text": "x"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    app.post("/v1/documents", key, json!({"title": "x", "text": "y", "metadata": [1]}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    app.send(req(Method::POST, "/v1/documents").bearer(key).multipart(&[("title", None, b"only a title")]))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_multipart");
    app.send(req(Method::POST, "/v1/documents").bearer(key).multipart(&[("picture", Some("a.md"), b"x")]))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_multipart");
    app.send(
        req(Method::POST, "/v1/documents")
            .bearer(key)
            .multipart(&[("file", Some("a.md"), b"x"), ("metadata", None, b"{not json")]),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    app.send(post("multipart/form-data; boundary=nope", b"garbage"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_multipart");
    let big = vec![b'a'; 100 * 1024];
    app.send(req(Method::POST, "/v1/documents").bearer(key).multipart(&[("file", Some("big.txt"), &big)]))
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let listed = app.get("/v1/documents", key).await.expect_json(StatusCode::OK);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(0), "nothing stored");

    // Files that cannot be read fail alone, with a reason.
    let submitted = upload(
        &app,
        key,
        &[
            ("file", Some("latin1.txt"), b"caf\xe9"),
            ("file", Some("empty.md"), b""),
            ("file", Some("broken.pdf"), b"%PDF-1.4 truncated"),
            ("file", Some("fine.md"), b"Fine text."),
        ],
    )
    .await
    .expect_json(StatusCode::ACCEPTED);
    assert_eq!(submitted["documents"][1]["status"], "failed");
    app.run_jobs().await;
    let listed = app.get("/v1/documents", key).await.expect_json(StatusCode::OK);
    let mut statuses: Vec<(String, String)> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| (d["title"].as_str().unwrap_or("").to_string(), d["status"].as_str().unwrap_or("").to_string()))
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            ("broken.pdf".to_string(), "failed".to_string()),
            ("empty.md".to_string(), "failed".to_string()),
            ("fine.md".to_string(), "ready".to_string()),
            ("latin1.txt".to_string(), "failed".to_string()),
        ]
    );
    let latin1 = listed["items"].as_array().and_then(|d| d.iter().find(|d| d["title"] == "latin1.txt")).cloned();
    assert!(latin1.and_then(|d| d["error"].as_str().map(|e| e.contains("UTF-8"))).unwrap_or(false));

    // Unknown ids and bad searches.
    let missing = uuid::Uuid::now_v7();
    app.get(&format!("/v1/documents/{missing}"), key).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.get(&format!("/v1/jobs/{missing}"), key).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.get("/v1/documents/not-a-uuid", key).await.expect_error(StatusCode::BAD_REQUEST, "invalid_path");
    app.get("/v1/documents?metadata=%5B1%5D", key).await.expect_error(StatusCode::BAD_REQUEST, "invalid_query");
    for body in [
        json!({"query": ""}),
        json!({"query": "x", "k": 0}),
        json!({"query": "x", "k": 1000}),
        json!({"query": "x", "mmr": 2}),
    ] {
        app.post("/v1/search", key, body).await.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    app.post("/v1/search", key, json!({"query": "x", "mode": "fuzzy"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    app.post("/v1/search", key, json!({"query": "x", "surprise": 1}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let huge = "word ".repeat(5000);
    app.post("/v1/search", key, json!({"query": huge}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
}

#[tokio::test]
async fn without_knowledge_the_routes_say_so() {
    let app = TestApp::new().await;
    let acme = app.tenant("acme").await;
    app.post("/v1/search", &acme.admin_key, json!({"query": "x"}))
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    app.get("/v1/documents", &acme.admin_key).await.expect_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
}
