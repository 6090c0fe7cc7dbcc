//! One table of every route the server has, and checks that walk it.
//!
//! Hand-written cases prove a rule on the few routes someone thought of; a
//! table proves it on all of them, and a new route joins the rules with one
//! line. The table must match the OpenAPI document exactly (a route missing
//! from either fails), and every status a check provokes must be one the
//! document lists for that operation, so a client generated from the
//! document knows every answer it can get.
//!
//! The rules, each on SQLite and PostgreSQL: a valid request with the least
//! role succeeds; no or bad credentials → 401; a member on an admin route →
//! 403; another tenant's id → 404 and nothing changes; an id that is not a
//! UUID → 400; malformed JSON → 400; an array, a scalar, a wrong type or an
//! unknown field → 422; a wrong content type → 415; a body over the limit
//! → 413; a bad `limit`, `cursor` or unknown query parameter → 400.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use agentd_models::{ModelRegistry, Provider, ScriptedChatModel, Usage};
use agentd_store::testing::Backend;
use agentd_store::{Role, User};

use common::{PASSWORD, Req, Resp, TestApp, TestTenant, config, req};

on_both_backends!(
    the_table_and_the_openapi_document_name_the_same_routes,
    links_lead_to_operations_of_the_document,
    a_valid_request_with_the_least_role_succeeds,
    no_or_bad_credentials_are_401,
    a_member_on_an_admin_route_is_403,
    another_tenants_ids_are_404_and_change_nothing,
    an_id_that_is_not_a_uuid_is_400,
    bodies_that_are_not_what_the_route_takes_are_refused,
    a_body_over_the_limit_is_413,
    bad_query_strings_are_400,
);

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    /// No credentials needed.
    Open,
    /// Any key or token of the tenant.
    Member,
    /// An admin's key or token.
    Admin,
}

/// What the `{…}` of a path names: each call gets a fresh one, made
/// through the API by the tenant that owns it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Id {
    /// A conversation of the tenant's member.
    Session,
    /// An API key of the tenant.
    Key,
    /// A document of the tenant.
    Document,
    /// An ingestion job of the tenant.
    Job,
    /// A model name (not a tenant's resource).
    Model,
}

impl Id {
    /// Whether the id is a UUID naming a tenant's row.
    fn owned(self) -> bool {
        self != Id::Model
    }
}

/// The body of a valid request.
#[derive(Debug, Clone, Copy)]
enum Body {
    None,
    /// A JSON object, made anew for each call (`n` keeps values unique).
    Json(fn(&Ctx, usize) -> Value),
}

/// One route of the server.
struct Route {
    method: Method,
    /// As the OpenAPI document writes it.
    path: &'static str,
    access: Access,
    id: Option<Id>,
    body: Body,
    /// What a valid request answers.
    ok: StatusCode,
    /// A listing, with `limit` and `cursor`.
    paged: bool,
    /// Refuses unknown fields (the OpenAI-compatible routes take them, as
    /// OpenAI's clients send fields agentd does not use).
    strict: bool,
}

const fn route(method: Method, path: &'static str, access: Access) -> Route {
    Route { method, path, access, id: None, body: Body::None, ok: StatusCode::OK, paged: false, strict: true }
}

impl Route {
    const fn id(mut self, id: Id) -> Self {
        self.id = Some(id);
        self
    }
    const fn json(mut self, body: fn(&Ctx, usize) -> Value) -> Self {
        self.body = Body::Json(body);
        self
    }
    const fn answers(mut self, ok: StatusCode) -> Self {
        self.ok = ok;
        self
    }
    const fn paged(mut self) -> Self {
        self.paged = true;
        self
    }
    const fn lenient(mut self) -> Self {
        self.strict = false;
        self
    }
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Every route, with how to call it.
fn table() -> Vec<Route> {
    use Access::{Admin, Member, Open};
    let created = StatusCode::CREATED;
    let accepted = StatusCode::ACCEPTED;
    let deleted = StatusCode::NO_CONTENT;
    vec![
        route(Method::GET, "/healthz", Open),
        route(Method::GET, "/readyz", Open),
        route(Method::GET, "/metrics", Open),
        route(Method::POST, "/v1/auth/token", Open)
            .json(|ctx, _| json!({ "email": ctx.a.member.email, "password": PASSWORD, "tenant": ctx.a.tenant.name })),
        route(Method::GET, "/v1/me", Member),
        route(Method::POST, "/v1/keys", Admin).json(|_, n| json!({ "name": format!("key {n}") })).answers(created),
        route(Method::GET, "/v1/keys", Admin).paged(),
        // Revoking answers the revoked key.
        route(Method::DELETE, "/v1/keys/{id}", Admin).id(Id::Key),
        route(Method::POST, "/v1/users", Admin)
            .json(|_, n| json!({ "email": format!("user{n}@example.com"), "password": "a long password" }))
            .answers(created),
        route(Method::GET, "/v1/users", Admin).paged(),
        route(Method::POST, "/v1/sessions", Member)
            .json(|_, n| json!({ "title": format!("chat {n}") }))
            .answers(created),
        route(Method::GET, "/v1/sessions", Member).paged(),
        route(Method::GET, "/v1/sessions/{id}", Member).id(Id::Session),
        route(Method::DELETE, "/v1/sessions/{id}", Member).id(Id::Session).answers(deleted),
        route(Method::POST, "/v1/sessions/{id}/messages", Member)
            .id(Id::Session)
            .json(|_, n| json!({ "role": "user", "content": format!("message {n}") }))
            .answers(created),
        route(Method::GET, "/v1/sessions/{id}/messages", Member).id(Id::Session).paged(),
        route(Method::GET, "/v1/audit", Admin).paged(),
        route(Method::GET, "/v1/models", Member),
        route(Method::GET, "/v1/models/{model}", Member).id(Id::Model),
        route(Method::POST, "/v1/embeddings", Member)
            .json(|_, n| json!({ "model": EMBEDDER, "input": format!("text {n}") }))
            .lenient(),
        route(Method::POST, "/v1/chat/completions", Member)
            .json(|ctx, n| {
                ctx.chat.push_text(&["Hello"], Usage { prompt_tokens: 3, completion_tokens: 1 });
                json!({ "model": CHAT, "messages": [{ "role": "user", "content": format!("hi {n}") }] })
            })
            .lenient(),
        route(Method::POST, "/v1/documents", Member).json(document).answers(accepted),
        route(Method::GET, "/v1/documents", Member).paged(),
        route(Method::GET, "/v1/documents/{id}", Member).id(Id::Document),
        route(Method::PUT, "/v1/documents/{id}", Member).id(Id::Document).json(document).answers(accepted),
        route(Method::DELETE, "/v1/documents/{id}", Member).id(Id::Document).answers(deleted),
        route(Method::GET, "/v1/jobs/{id}", Member).id(Id::Job),
        route(Method::POST, "/v1/search", Member).json(|_, n| json!({ "query": format!("backups {n}") })),
    ]
}

fn document(_: &Ctx, n: usize) -> Value {
    json!({ "title": format!("notes {n}"), "text": format!("# Backups\n\nCopy the data folder, run {n}.") })
}

const CHAT: &str = "scripted";
const EMBEDDER: &str = "hashed-words";

/// The JSON body limit of the test app; uploads take four times as much.
const JSON_LIMIT: usize = 16 * 1024;

/// Two tenants with everything the table's requests need.
struct Ctx {
    app: TestApp,
    chat: Arc<ScriptedChatModel>,
    a: Side,
    b: Side,
    /// The OpenAPI document the app serves, read once.
    doc: Value,
    counter: AtomicUsize,
}

/// One tenant's credentials.
struct Side {
    tenant: TestTenant,
    /// A key acting for `member`.
    member_key: String,
    member: User,
}

impl Ctx {
    async fn new(backend: Backend) -> Ctx {
        let mut config = config();
        config.json_body_limit = JSON_LIMIT;
        config.upload_body_limit = 4 * JSON_LIMIT;
        // The table sends many requests from one caller.
        config.rate_limit = None;
        config.login_rate_limit = None;
        let chat = Arc::new(ScriptedChatModel::new(CHAT));
        let models = ModelRegistry::empty(CHAT, EMBEDDER)
            .with_chat(chat.clone(), Provider::Local)
            .with_embedder(Arc::new(agentd_models::HashedWordsEmbedder::new(16)), Provider::Local);
        let app = TestApp::full(backend, config, models).await;
        let a = side(&app, "a").await;
        let b = side(&app, "b").await;
        let doc = openapi(&app).await;
        Ctx { app, chat, a, b, doc, counter: AtomicUsize::new(0) }
    }

    fn next(&self) -> usize {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// The credential of `side` that `access` needs (none for open routes).
    fn credential<'s>(&self, side: &'s Side, access: Access) -> Option<&'s str> {
        match access {
            Access::Open => None,
            Access::Member => Some(&side.member_key),
            Access::Admin => Some(&side.tenant.admin_key),
        }
    }

    /// A fresh `id` of `side`'s, made through the API.
    async fn fresh(&self, side: &Side, id: Id) -> String {
        let n = self.next();
        let (admin, member) = (&side.tenant.admin_key, &side.member_key);
        let value = match id {
            Id::Session => self.app.create_session(member, &format!("s{n}")).await["id"].clone(),
            Id::Key => {
                let created = self.app.post("/v1/keys", admin, json!({ "name": format!("k{n}") })).await;
                created.expect_json(StatusCode::CREATED)["api_key"]["id"].clone()
            }
            Id::Document | Id::Job => {
                let submitted = self.app.post("/v1/documents", admin, document(self, n)).await;
                let submitted = submitted.expect_json(StatusCode::ACCEPTED);
                self.app.run_jobs().await;
                match id {
                    Id::Job => submitted["job_id"].clone(),
                    _ => submitted["documents"][0]["id"].clone(),
                }
            }
            Id::Model => json!(CHAT),
        };
        value.as_str().expect("an id").to_string()
    }

    /// `route`'s path with `id` in its braces.
    fn path(route: &Route, id: Option<&str>) -> String {
        match (route.path.find('{'), id) {
            (Some(open), Some(id)) => {
                let close = route.path[open..].find('}').map_or(route.path.len(), |c| open + c + 1);
                format!("{}{id}{}", &route.path[..open], &route.path[close..])
            }
            _ => route.path.to_string(),
        }
    }

    /// A valid request to `route` for `side`'s data, without credentials.
    async fn valid(&self, route: &Route, side: &Side) -> Req {
        let id = self.fresh_for(route, side).await;
        self.request(route, id.as_deref())
    }

    /// A fresh id for `route`'s path, if it has one.
    async fn fresh_for(&self, route: &Route, side: &Side) -> Option<String> {
        match route.id {
            Some(id) => Some(self.fresh(side, id).await),
            None => None,
        }
    }

    /// A request to `route` with `id` in its path and a valid body.
    fn request(&self, route: &Route, id: Option<&str>) -> Req {
        let request = req(route.method.clone(), &Ctx::path(route, id));
        match route.body {
            Body::None => request,
            Body::Json(make) => request.json(&make(self, self.next())),
        }
    }

    /// Sends `request` as `credential`, and checks that the answer is one
    /// the OpenAPI document lists for `route` and, when an error, has the
    /// error shape.
    async fn send(&self, route: &Route, request: Req, credential: Option<&str>) -> Resp {
        let request = match credential {
            Some(token) => request.bearer(token),
            None => request,
        };
        let response = self.app.send(request).await;
        let documented = documented_statuses(&self.doc, route);
        assert!(
            documented.contains(&response.status.as_u16()),
            "{}: answered {}, which the OpenAPI document does not list ({documented:?}): {}",
            route.name(),
            response.status,
            response.text()
        );
        if response.status.is_client_error() || response.status.is_server_error() {
            common::assert_error_shape(&response.json());
        }
        response
    }
}

async fn side(app: &TestApp, name: &str) -> Side {
    let tenant = app.tenant(name).await;
    let member = app.user(tenant.id, &format!("member@{name}.example.com"), Role::Member).await;
    let (member_key, _) = app.key(tenant.id, Role::Member, Some(&member)).await;
    Side { tenant, member_key, member }
}

/// The OpenAPI document as the server serves it.
async fn openapi(app: &TestApp) -> Value {
    app.send(req(Method::GET, "/openapi.json")).await.expect_json(StatusCode::OK)
}

/// The statuses the document lists for `route`.
fn documented_statuses(doc: &Value, route: &Route) -> BTreeSet<u16> {
    let method = route.method.as_str().to_ascii_lowercase();
    let responses = doc["paths"][route.path][&method]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{} is not in the OpenAPI document", route.name()));
    responses.keys().map(|code| code.parse().unwrap_or_else(|_| panic!("{}: status {code}", route.name()))).collect()
}

async fn the_table_and_the_openapi_document_name_the_same_routes(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let doc = &ctx.doc;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            documented.insert(format!("{} {path}", method.to_ascii_uppercase()));
        }
    }
    let tabled: BTreeSet<String> = table().iter().map(Route::name).collect();
    assert_eq!(tabled.len(), table().len(), "a route is in the table twice");
    assert_eq!(
        documented.difference(&tabled).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes the document lists and the table lacks"
    );
    assert_eq!(
        tabled.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes the table lists and the document lacks"
    );
    // The document says which routes need credentials, as the table does.
    for route in table() {
        let operation = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(secured, route.access != Access::Open, "{}: security in the document", route.name());
    }
}

async fn links_lead_to_operations_of_the_document(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let doc = &ctx.doc;
    // operationId → the path parameters of that operation.
    let mut operations = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for operation in item.as_object().expect("a path item").values() {
            let params: BTreeSet<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            operations.insert(operation["operationId"].as_str().unwrap().to_string(), (path.clone(), params));
        }
    }
    let mut links = 0;
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for response in operation["responses"].as_object().unwrap().values() {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    links += 1;
                    let target = link["operationId"].as_str().unwrap_or_else(|| panic!("{name}: no operationId"));
                    let (_, params) = operations.get(target).unwrap_or_else(|| panic!("{name}: no operation {target}"));
                    let given: BTreeSet<String> = link["parameters"].as_object().unwrap().keys().cloned().collect();
                    assert_eq!(&given, params, "{name} must fill exactly the path parameters of {target}");
                }
            }
        }
    }
    assert!(links >= 10, "the document links created resources to their operations ({links} links)");
}

async fn a_valid_request_with_the_least_role_succeeds(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    for route in table() {
        let request = ctx.valid(&route, &ctx.a).await;
        let response = ctx.send(&route, request, ctx.credential(&ctx.a, route.access)).await;
        assert_eq!(response.status, route.ok, "{}: {}", route.name(), response.text());
    }
}

async fn no_or_bad_credentials_are_401(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let forged = common::token_for(&ctx.a.member).replace('.', "x.");
    for route in table().into_iter().filter(|r| r.access != Access::Open) {
        for credential in [None, Some("agd_not-a-key"), Some(forged.as_str()), Some("")] {
            let request = ctx.valid(&route, &ctx.a).await;
            let response = ctx.send(&route, request, credential).await;
            response.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
            assert_eq!(response.header("www-authenticate"), Some("Bearer"), "{}", route.name());
        }
    }
}

async fn a_member_on_an_admin_route_is_403(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    for route in table().into_iter().filter(|r| r.access == Access::Admin) {
        let request = ctx.valid(&route, &ctx.a).await;
        let response = ctx.send(&route, request, Some(&ctx.a.member_key)).await;
        response.expect_error(StatusCode::FORBIDDEN, "forbidden");
    }
}

async fn another_tenants_ids_are_404_and_change_nothing(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    for route in table().into_iter().filter(|r| r.id.is_some_and(Id::owned)) {
        // Tenant A's resource, asked for by B with the role the route needs.
        let a_id = ctx.fresh_for(&route, &ctx.a).await.expect("an id");
        let request = ctx.request(&route, Some(&a_id));
        let response = ctx.send(&route, request, ctx.credential(&ctx.b, route.access)).await;
        let error = response.expect_error(StatusCode::NOT_FOUND, "not_found");
        assert!(!error.to_string().contains(&a_id), "{}: the answer names A's id: {error}", route.name());
        // A's resource is still there and unchanged for A.
        if let Some(get) = reader(route.id.expect("an id")) {
            let path = get.replace("ID", &a_id);
            let read = ctx.app.get(&path, ctx.credential(&ctx.a, Access::Admin).unwrap_or_default()).await;
            assert_eq!(read.status, StatusCode::OK, "{}: A's resource after B's try: {}", route.name(), read.text());
        }
    }
    // An id in a body is a tenant's resource too: a key for A's user.
    let response =
        ctx.app.post("/v1/keys", &ctx.b.tenant.admin_key, json!({ "name": "k", "user_id": ctx.a.member.id })).await;
    response.expect_error(StatusCode::NOT_FOUND, "not_found");
}

/// Where an owned resource can be read back, `ID` standing for its id.
fn reader(id: Id) -> Option<&'static str> {
    match id {
        Id::Session => Some("/v1/sessions/ID"),
        Id::Document => Some("/v1/documents/ID"),
        Id::Job => Some("/v1/jobs/ID"),
        // Keys are read back in a listing.
        Id::Key | Id::Model => None,
    }
}

async fn an_id_that_is_not_a_uuid_is_400(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    for route in table().into_iter().filter(|r| r.id.is_some_and(Id::owned)) {
        for bad in ["not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g"] {
            let request = ctx.request(&route, Some(bad));
            let response = ctx.send(&route, request, ctx.credential(&ctx.a, route.access)).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{} with id {bad}: {}", route.name(), response.text());
        }
    }
}

async fn bodies_that_are_not_what_the_route_takes_are_refused(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    for route in table() {
        let Body::Json(make) = route.body else { continue };
        let credential = ctx.credential(&ctx.a, route.access);
        let id = ctx.fresh_for(&route, &ctx.a).await;
        let path = Ctx::path(&route, id.as_deref());
        let valid = make(&ctx, ctx.next());
        let fields = valid.as_object().expect("bodies are objects").clone();

        let to = |content_type: Option<&str>, body: String| req(route.method.clone(), &path).raw(content_type, body);
        let json = |body: Value| to(Some("application/json"), body.to_string());
        let (bad, invalid) = (StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY);
        // A body that breaks the schema is 422; the OpenAI-compatible routes
        // answer 400, as OpenAI does, where a value is checked past its type.
        let breaks_schema = if route.strict { vec![invalid] } else { vec![bad, invalid] };
        let unsupported = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        let mut cases: Vec<(String, Req, Vec<StatusCode>)> = vec![
            ("malformed JSON".into(), to(Some("application/json"), "{not json".into()), vec![bad]),
            ("an array".into(), json(json!(fields.values().collect::<Vec<_>>())), vec![invalid]),
            ("a scalar".into(), json(json!("text")), vec![invalid]),
            ("null".into(), json(Value::Null), vec![invalid]),
            ("JSON as text/plain".into(), to(Some("text/plain"), valid.to_string()), vec![unsupported]),
            ("no content type".into(), to(None, valid.to_string()), vec![unsupported]),
        ];
        for (field, value) in &fields {
            let mut body = fields.clone();
            body.insert(field.clone(), wrong_type(value));
            cases.push((format!("{field} of the wrong type"), json(Value::Object(body)), breaks_schema.clone()));
            let mut body = fields.clone();
            body.remove(field);
            if required(&route, field) {
                cases.push((format!("no {field}"), json(Value::Object(body)), breaks_schema.clone()));
            }
        }
        if route.strict {
            let mut body = fields.clone();
            body.insert("unexpected_field".into(), json!(1));
            cases.push(("an unknown field".into(), json(Value::Object(body)), vec![invalid]));
        }
        for (what, request, expected) in cases {
            let response = ctx.send(&route, request, credential).await;
            assert!(expected.contains(&response.status), "{} with {what}: {}", route.name(), response.text());
        }
    }
}

/// Whether the valid body's `field` is one the route cannot do without.
fn required(route: &Route, field: &str) -> bool {
    !matches!((route.path, field), ("/v1/auth/token", "tenant") | ("/v1/sessions", "title"))
}

/// A value of another JSON type than `value`'s.
fn wrong_type(value: &Value) -> Value {
    match value {
        Value::String(_) => json!(12345),
        _ => json!("text"),
    }
}

async fn a_body_over_the_limit_is_413(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    for route in table() {
        let Body::Json(make) = route.body else { continue };
        let id = ctx.fresh_for(&route, &ctx.a).await;
        // Well-formed JSON over the limit of uploads, the larger one.
        let mut body = make(&ctx, ctx.next());
        body["padding"] = json!("x".repeat(4 * JSON_LIMIT + 1));
        let request = req(route.method.clone(), &Ctx::path(&route, id.as_deref())).json(&body);
        let response = ctx.send(&route, request, ctx.credential(&ctx.a, route.access)).await;
        response.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
}

async fn bad_query_strings_are_400(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    for route in table().into_iter().filter(|r| r.paged) {
        let credential = ctx.credential(&ctx.a, route.access);
        let id = ctx.fresh_for(&route, &ctx.a).await;
        let path = Ctx::path(&route, id.as_deref());
        for query in ["limit=0", "limit=201", "limit=-1", "limit=many", "cursor=not-a-cursor", "unknown=1"] {
            let request = req(route.method.clone(), &format!("{path}?{query}"));
            let response = ctx.send(&route, request, credential).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{} ?{query}: {}", route.name(), response.text());
        }
        // An empty cursor is no cursor, and the bounds of `limit` are fine.
        for query in ["cursor=", "limit=1", "limit=200"] {
            let request = req(route.method.clone(), &format!("{path}?{query}"));
            let response = ctx.send(&route, request, credential).await;
            assert_eq!(response.status, StatusCode::OK, "{} ?{query}: {}", route.name(), response.text());
        }
    }
}
