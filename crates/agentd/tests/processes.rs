//! What the README claims about running processes, proved on running
//! processes: `agentd serve` ranking vectors with pgvector behind the
//! search API, two servers sharing one Redis rate limit, readiness that
//! follows Redis going away and coming back, and the request timeout and
//! body limits as a client on a socket meets them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use agentd_store::testing::{Backend, TestStore, redis_url};
use common::{DataDir, Killed, Server, schema_url};

/// A client of one server with one key.
struct Api {
    client: reqwest::Client,
    server: String,
    key: String,
}

/// A status, the headers and the JSON body (null when there is none).
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Api {
    fn new(server: &Server, key: &str) -> Api {
        Api { client: reqwest::Client::new(), server: server.url(""), key: key.to_string() }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.server)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let (status, headers) = (response.status(), response.headers().clone());
        let body = response.json().await.unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    /// Waits until every document of the tenant is ready; fails on a failed one.
    async fn until_all_ready(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let listing = self.get("/v1/documents?limit=100").await;
            assert_eq!(listing.status, StatusCode::OK, "{}", listing.body);
            let items = listing.body["items"].as_array().expect("items").clone();
            assert!(items.iter().all(|d| d["status"] != "failed"), "{}", listing.body);
            if items.len() == count && items.iter().all(|d| d["status"] == "ready") {
                return;
            }
            assert!(Instant::now() < deadline, "not ingested in time: {}", listing.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_on_postgres_with_pgvector_ranks_vectors_there_behind_the_search_api() {
    let schema = TestStore::new(Backend::PgVector).await;
    let dir = DataDir::new();
    let server = Server::start_env(&dir.0, &[], &[("AGENTD_DATABASE_URL", schema_url(&schema))]);
    let api = Api::new(&server, server.first_key.as_deref().expect("a first start prints a key"));
    let documents = [
        ("bread.md", "# Sourdough\n\nFeed the starter, then let the dough rise overnight in a cool room."),
        ("lighthouse.md", "# Keepers\n\nThe keeper climbs the tower at dusk to light the lamp for ships."),
    ];
    for (title, text) in documents {
        let stored = api.send(Method::POST, "/v1/documents", Some(json!({"title": title, "text": text}))).await;
        assert_eq!(stored.status, StatusCode::ACCEPTED, "{}", stored.body);
    }
    api.until_all_ready(documents.len()).await;

    let query = json!({"query": "how long should my bread dough rest", "mode": "vector", "k": 2, "debug": true});
    let found = api.send(Method::POST, "/v1/search", Some(query)).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["results"][0]["title"], "bread.md", "{}", found.body);
    assert_eq!(found.body["timings"]["vector_backend"], "pgvector", "{}", found.body);
    // The vectors are rows of the database, not only this node's graph.
    let tenant = schema.tenants().by_name("default").await.expect("read").expect("the first start's tenant");
    let stored = schema.vectors().count(tenant.id).await.expect("vectors counted");
    assert!(stored >= 2, "{stored} vectors in PostgreSQL");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_one_redis_share_one_rate_limit() {
    let schema = TestStore::new(Backend::Postgres).await;
    let prefix = format!("agentd-test-{}", uuid::Uuid::new_v4().simple());
    // One request an hour after a burst of four: no refill during the test.
    let env = [
        ("AGENTD_DATABASE_URL", schema_url(&schema)),
        ("AGENTD_REDIS_URL", redis_url()),
        ("AGENTD_REDIS_PREFIX", prefix),
        ("AGENTD_RATE_LIMIT_PER_SECOND", "0.0003".to_string()),
        ("AGENTD_RATE_LIMIT_BURST", "4".to_string()),
    ];
    let (dir_a, dir_b) = (DataDir::new(), DataDir::new());
    let a = Server::start_env(&dir_a.0, &[], &env);
    let key = a.first_key.clone().expect("a first start prints a key");
    let b = Server::start_env(&dir_b.0, &[], &env);
    assert!(b.first_key.is_none(), "the second server finds the first one's tenant");
    let (a, b) = (Api::new(&a, &key), Api::new(&b, &key));

    for (i, node) in [&a, &b, &a, &b].into_iter().enumerate() {
        let reply = node.get("/v1/me").await;
        assert_eq!(reply.status, StatusCode::OK, "request {i}: {}", reply.body);
        let remaining = reply.headers.get("x-ratelimit-remaining").and_then(|v| v.to_str().ok());
        assert_eq!(remaining, Some((3 - i).to_string().as_str()), "request {i}: one budget across both servers");
    }
    for node in [&a, &b] {
        let refused = node.get("/v1/me").await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
        assert_eq!(refused.body["error"]["code"], "rate_limited", "{}", refused.body);
        assert!(refused.headers.contains_key("retry-after"));
    }
}

/// A Redis server of this test's own, on `port`, killed when dropped.
fn private_redis(port: u16) -> Killed {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server runs (scripts/services installs it)");
    let redis = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers_ping(port) {
        assert!(Instant::now() < deadline, "redis-server on port {port} never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    redis
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `/readyz` until it answers `status`; returns its body.
async fn until_readiness(client: &reqwest::Client, server: &Server, status: StatusCode) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = client.get(server.url("/readyz")).send().await.expect("the server answers");
        let got = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if got == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {got}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_fails_while_redis_is_down_and_recovers_when_it_is_back() {
    let port = free_port();
    let mut redis = private_redis(port);
    let dir = DataDir::new();
    let server = Server::start_env(&dir.0, &[], &[("AGENTD_REDIS_URL", format!("redis://127.0.0.1:{port}"))]);
    let client = reqwest::Client::new();

    let ready = until_readiness(&client, &server, StatusCode::OK).await;
    assert_eq!(ready["checks"]["bus"], "ok", "{ready}");
    assert_eq!(ready["checks"]["bus_backend"], "redis", "{ready}");

    redis.kill();
    let down = until_readiness(&client, &server, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(down["error"]["code"], "unavailable", "{down}");
    assert_eq!(down["error"]["details"]["database"], "ok", "{down}");
    assert_ne!(down["error"]["details"]["bus"], "ok", "{down}");
    // The process answers all the while: a balancer only stops sending it traffic.
    let alive = client.get(server.url("/healthz")).send().await.expect("answers");
    assert_eq!(alive.status(), StatusCode::OK);

    let _back = private_redis(port);
    let ready = until_readiness(&client, &server, StatusCode::OK).await;
    assert_eq!(ready["checks"]["bus"], "ok", "{ready}");
}

/// Sends `head` and the first `sent` bytes of a body of `length` bytes,
/// then waits for the answer without sending the rest.
fn stalled_request(addr: &str, head: &str, sent: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(sent).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_stalls_is_answered_408_and_oversized_bodies_413() {
    let dir = DataDir::new();
    let env = [
        ("AGENTD_REQUEST_TIMEOUT_SECS", "1".to_string()),
        ("AGENTD_JSON_BODY_LIMIT", "4096".to_string()),
        ("AGENTD_MAX_DOCUMENT_BYTES", "2000".to_string()),
    ];
    let server = Server::start_env(&dir.0, &[], &env);
    let key = server.first_key.clone().expect("a first start prints a key");

    // The body never finishes arriving: the server gives up after its timeout.
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\nConnection: close\r\n\r\n"
    );
    let (status, body) = stalled_request(&server.addr, &head, br#"{"title": "#);
    assert_eq!(status, 408, "{body}");
    assert!(body.is_empty() || body.contains("timeout") || body.contains("time"), "{body}");

    let api = Api::new(&server, &key);
    // A JSON body over the limit, whatever the route.
    let big_query = json!({"query": "x".repeat(5000)});
    let refused = api.send(Method::POST, "/v1/search", Some(big_query)).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "payload_too_large", "{}", refused.body);

    // A document over `max_document_bytes`, as a file and as JSON text.
    let boundary = "agentd-test-boundary";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    form.extend(std::iter::repeat_n(b'a', 3000));
    form.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let response = api
        .client
        .post(server.url("/v1/documents"))
        .bearer_auth(&key)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(form)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    let text = json!({"title": "big", "text": "word ".repeat(500)});
    let refused = api.send(Method::POST, "/v1/documents", Some(text)).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", refused.body);

    // Nothing of them was kept.
    let listing = api.get("/v1/documents").await;
    assert_eq!(listing.body["items"], json!([]), "{}", listing.body);
    // And the server still serves.
    assert_eq!(api.get("/v1/me").await.status, StatusCode::OK);
}
