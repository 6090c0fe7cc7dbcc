//! Shared helpers of the HTTP integration tests: an app on a fresh store,
//! tenants, keys and users to call it with, requests sent in-process through
//! the real router, and checks of the JSON error shape every failure must
//! have. Each test file includes this module; not every file uses all of it.
#![allow(dead_code)]

use std::sync::LazyLock;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use agentd_server::auth::api_keys::{KeySpec, create_api_key};
use agentd_server::auth::jwt::JwtKeys;
use agentd_server::auth::password::hash_password;
use agentd_server::{AppState, ServerConfig};
use agentd_store::testing::{Backend, TestStore};
use agentd_store::{ApiKey, ApiKeyId, Bus, NewUser, Role, Store, TenantId, User};

/// The JWT secret of every test app.
pub const SECRET: &str = "a-test-secret-of-enough-length";

/// The password of users made by [`TestApp::user`].
pub const PASSWORD: &str = "correct horse battery";

/// argon2 is slow in debug builds: hash the shared password once per binary.
static PASSWORD_HASH: LazyLock<String> = LazyLock::new(|| hash_password(PASSWORD).expect("hashing works"));

/// Runs each listed `async fn name(backend: Backend)` as a test on SQLite
/// (`sqlite::name`) and on PostgreSQL (`postgres::name`).
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(agentd_store::testing::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(agentd_store::testing::Backend::Postgres).await
                }
            )+
        }
    };
}

/// The default test configuration: test secret, everything else as shipped.
pub fn config() -> ServerConfig {
    ServerConfig::with_secret(SECRET)
}

/// Keys that sign tokens exactly like the server does (same secret).
pub fn jwt_keys() -> JwtKeys {
    JwtKeys::new(SECRET, Duration::from_secs(3600))
}

/// A JWT for `user`, as `POST /v1/auth/token` would issue it, without paying
/// for a password check.
pub fn token_for(user: &User) -> String {
    jwt_keys().issue(user.id, user.tenant_id, user.role).expect("signing works").0
}

/// A router over a fresh store, with what it was built from.
pub struct TestApp {
    /// Owns the database; dropping it removes the file or schema.
    pub db: TestStore,
    pub state: AppState,
    pub router: Router,
}

/// A tenant with an admin API key that acts for no user.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub id: TenantId,
    pub name: String,
    pub admin_key: String,
    pub admin_key_id: ApiKeyId,
}

impl TestApp {
    /// SQLite, in-process bus, default configuration.
    pub async fn new() -> Self {
        Self::build(Backend::Sqlite, Bus::in_process(), config()).await
    }

    /// `backend`, in-process bus, default configuration.
    pub async fn on(backend: Backend) -> Self {
        Self::build(backend, Bus::in_process(), config()).await
    }

    /// SQLite, in-process bus, this configuration.
    pub async fn with_config(config: ServerConfig) -> Self {
        Self::build(Backend::Sqlite, Bus::in_process(), config).await
    }

    /// Everything chosen by the caller.
    pub async fn build(backend: Backend, bus: Bus, config: ServerConfig) -> Self {
        let db = TestStore::new(backend).await;
        let (state, router) = node(db.store.clone(), bus, config);
        TestApp { db, state, router }
    }

    /// SQLite, in-process bus, default configuration, serving `models`.
    pub async fn with_models(models: agentd_models::ModelRegistry) -> Self {
        let db = TestStore::new(Backend::Sqlite).await;
        let state =
            AppState::new(db.store.clone(), Bus::in_process(), config()).with_models(std::sync::Arc::new(models));
        let router = agentd_server::app(state.clone());
        TestApp { db, state, router }
    }

    /// `backend`, in-process bus, with documents and search on a
    /// bag-of-words embedder and in-memory indexes. Jobs run when a test
    /// calls [`TestApp::run_jobs`].
    pub async fn with_knowledge(backend: Backend, config: ServerConfig) -> Self {
        let db = TestStore::new(backend).await;
        let embedder = std::sync::Arc::new(agentd_models::HashedWordsEmbedder::new(128));
        let knowledge = agentd_retrieval::Knowledge::open(db.store.clone(), embedder, Default::default())
            .await
            .expect("knowledge opens");
        let state = AppState::new(db.store.clone(), Bus::in_process(), config).with_knowledge(knowledge);
        let router = agentd_server::app(state.clone());
        TestApp { db, state, router }
    }

    /// `backend`, in-process bus, `config`, with documents and search as in
    /// [`TestApp::with_knowledge`] and `models` served: every route works.
    pub async fn full(backend: Backend, config: ServerConfig, models: agentd_models::ModelRegistry) -> Self {
        let db = TestStore::new(backend).await;
        let embedder = std::sync::Arc::new(agentd_models::HashedWordsEmbedder::new(128));
        let knowledge = agentd_retrieval::Knowledge::open(db.store.clone(), embedder, Default::default())
            .await
            .expect("knowledge opens");
        let state = AppState::new(db.store.clone(), Bus::in_process(), config)
            .with_knowledge(knowledge)
            .with_models(std::sync::Arc::new(models));
        let router = agentd_server::app(state.clone());
        TestApp { db, state, router }
    }

    /// Runs every due ingestion job to its end.
    pub async fn run_jobs(&self) {
        let knowledge = self.state.knowledge.as_ref().expect("an app with knowledge");
        knowledge.worker(0).drain().await.expect("jobs run");
    }

    /// The store the app runs on.
    pub fn store(&self) -> &Store {
        &self.db.store
    }

    pub async fn send(&self, request: Req) -> Resp {
        request.send(&self.router).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> Resp {
        self.send(req(Method::GET, uri).bearer(token)).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> Resp {
        self.send(req(Method::POST, uri).bearer(token).json(&body)).await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> Resp {
        self.send(req(Method::DELETE, uri).bearer(token)).await
    }

    /// The tenant `name` (created if needed) with a fresh admin key.
    pub async fn tenant(&self, name: &str) -> TestTenant {
        tenant(self.store(), name).await
    }

    /// A key of `tenant` with `role`, acting for `user` when given.
    pub async fn key(&self, tenant: TenantId, role: Role, user: Option<&User>) -> (String, ApiKey) {
        key(self.store(), tenant, role, user).await
    }

    /// A user of `tenant` whose password is [`PASSWORD`].
    pub async fn user(&self, tenant: TenantId, email: &str, role: Role) -> User {
        user(self.store(), tenant, email, role).await
    }

    /// `POST /v1/auth/token`.
    pub async fn login(&self, email: &str, password: &str, tenant: Option<&str>) -> Resp {
        let mut body = json!({ "email": email, "password": password });
        if let Some(tenant) = tenant {
            body["tenant"] = json!(tenant);
        }
        self.send(req(Method::POST, "/v1/auth/token").json(&body)).await
    }

    /// Creates a session through the API and returns it.
    pub async fn create_session(&self, token: &str, title: &str) -> Value {
        self.post("/v1/sessions", token, json!({ "title": title })).await.expect_json(StatusCode::CREATED)
    }

    /// Appends a message through the API and returns it.
    pub async fn append(&self, token: &str, session: &str, content: &str) -> Value {
        let uri = format!("/v1/sessions/{session}/messages");
        self.post(&uri, token, json!({ "role": "user", "content": content })).await.expect_json(StatusCode::CREATED)
    }
}

/// An app (state and router) on an existing store: several of these on one
/// store and one shared bus behave like several nodes of a deployment.
pub fn node(store: Store, bus: Bus, config: ServerConfig) -> (AppState, Router) {
    let state = AppState::new(store, bus, config);
    let router = agentd_server::app(state.clone());
    (state, router)
}

/// The tenant `name` (created if needed) with a fresh admin key.
pub async fn tenant(store: &Store, name: &str) -> TestTenant {
    let (tenant, _) = store.tenants().get_or_create(name).await.expect("tenant");
    let (admin_key, record) = key(store, tenant.id, Role::Admin, None).await;
    TestTenant { id: tenant.id, name: tenant.name, admin_key, admin_key_id: record.id }
}

/// A key of `tenant` with `role`, acting for `user` when given.
pub async fn key(store: &Store, tenant: TenantId, role: Role, user: Option<&User>) -> (String, ApiKey) {
    key_expiring(store, tenant, role, user, None).await
}

/// Like [`key`], with an expiry (which may be in the past: the store does
/// not check, only the API does).
pub async fn key_expiring(
    store: &Store,
    tenant: TenantId,
    role: Role,
    user: Option<&User>,
    expires_at: Option<DateTime<Utc>>,
) -> (String, ApiKey) {
    let spec = KeySpec {
        tenant_id: tenant,
        user_id: user.map(|u| u.id),
        name: format!("test {} key", role.as_str()),
        role,
        expires_at,
    };
    create_api_key(store, spec).await.expect("create key")
}

/// A user of `tenant` whose password is [`PASSWORD`].
pub async fn user(store: &Store, tenant: TenantId, email: &str, role: Role) -> User {
    let new = NewUser {
        tenant_id: tenant,
        email: email.to_string(),
        display_name: None,
        role,
        password_hash: PASSWORD_HASH.clone(),
    };
    store.users().create(new).await.expect("create user")
}

/// A request being built.
pub struct Req {
    builder: axum::http::request::Builder,
    body: Body,
}

/// Starts a request; no headers yet.
pub fn req(method: Method, uri: &str) -> Req {
    Req { builder: Request::builder().method(method).uri(uri), body: Body::empty() }
}

impl Req {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header(header::AUTHORIZATION.as_str(), &format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// A JSON body with its content type.
    pub fn json(self, body: &Value) -> Self {
        self.raw(Some("application/json"), serde_json::to_vec(body).expect("serialisable"))
    }

    /// A `multipart/form-data` body of `(field, file name, bytes)` parts
    /// (no file name: a plain field).
    pub fn multipart(self, parts: &[(&str, Option<&str>, &[u8])]) -> Self {
        let boundary = "agentd-test-boundary-7d41";
        let mut body = Vec::new();
        for (field, file_name, bytes) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let disposition = match file_name {
                Some(name) => format!("Content-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"),
                None => format!("Content-Disposition: form-data; name=\"{field}\"\r\n"),
            };
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.raw(Some(&format!("multipart/form-data; boundary={boundary}")), body)
    }

    /// Arbitrary body bytes, with a content type when given.
    pub fn raw(mut self, content_type: Option<&str>, bytes: impl Into<Vec<u8>>) -> Self {
        if let Some(content_type) = content_type {
            self.builder = self.builder.header(header::CONTENT_TYPE, content_type);
        }
        self.body = Body::from(bytes.into());
        self
    }

    /// Sends the request through `router`, in-process, and reads the whole
    /// response.
    pub async fn send(self, router: &Router) -> Resp {
        let request = self.builder.body(self.body).expect("valid request");
        let response = router.clone().oneshot(request).await.expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body readable").to_bytes();
        Resp { status: parts.status, headers: parts.headers, body }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// A header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("header is text"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}); status {}: {}", self.status, self.text()))
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect_json(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text());
        self.json()
    }

    /// Asserts the status, a JSON content type, the error shape
    /// `{"error": {"code", "message", "details"}}` and the code; returns the
    /// inner `error` object.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text());
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with("application/json"), "error content-type {content_type:?}: {}", self.text());
        let error = assert_error_shape(&self.json());
        assert_eq!(error["code"], code, "unexpected error code: {error}");
        error
    }
}

/// Checks the shape every error body must have and returns `error`.
#[track_caller]
pub fn assert_error_shape(body: &Value) -> Value {
    let outer = body.as_object().unwrap_or_else(|| panic!("error body is not an object: {body}"));
    assert_eq!(outer.keys().collect::<Vec<_>>(), ["error"], "error body has other keys: {body}");
    let error = outer["error"].as_object().unwrap_or_else(|| panic!("`error` is not an object: {body}"));
    let mut keys: Vec<_> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "details", "message", "param", "type"], "error has other keys: {body}");
    assert!(error["param"].is_null(), "param is not null: {body}");
    let kinds = [
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "server_error",
    ];
    assert!(kinds.contains(&error["type"].as_str().unwrap_or_default()), "type is not OpenAI's: {body}");
    assert!(error["code"].as_str().is_some_and(|c| !c.is_empty()), "code is not a non-empty string: {body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "message is not a non-empty string: {body}");
    assert!(error["details"].is_object(), "details is not an object: {body}");
    Value::Object(error.clone())
}

/// The ids (`"id"` fields) of a page's items.
pub fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|item| item["id"].as_str().expect("item has an id").to_string())
        .collect()
}

/// Every item of a listing, following `next_cursor` with pages of `limit`.
pub async fn all_pages(app: &TestApp, path: &str, token: &str, limit: u32) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let uri = match &cursor {
            None => format!("{path}{separator}limit={limit}"),
            Some(c) => format!("{path}{separator}limit={limit}&cursor={c}"),
        };
        let page = app.get(&uri, token).await.expect_json(StatusCode::OK);
        let batch = page["items"].as_array().expect("items").clone();
        assert!(batch.len() <= limit as usize, "page larger than its limit: {page}");
        items.extend(batch);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
    panic!("pagination of {path} never ended");
}
