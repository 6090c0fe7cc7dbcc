//! The command line as users and scripts meet it: the real `agentd` binary,
//! run as a child process with only environment variables and flags.
//!
//! These tests pin the contract others rely on: `keys create` prints the key
//! alone on the last line of stdout and exits 0, errors go to stderr with a
//! non-zero status, every subcommand shares one configuration (SQLite data
//! dir or PostgreSQL URL), `serve` prints its URL and a first admin key, and
//! SIGTERM lets requests in flight finish.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{DataDir, Server, agentd, shared_models_env};

use agentd_store::testing::TestDatabase;

fn run(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    agentd(data_dir, env).args(args).output().expect("agentd runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Creating, listing and revoking keys, and the error path, with `env`
/// pointing every call at one database.
fn keys_round_trip(data_dir: &Path, env: &[(&str, &str)]) {
    let created = run(data_dir, env, &["keys", "create", "--tenant", "acme", "--role", "admin"]);
    assert!(created.status.success(), "stderr: {}", stderr(&created));
    let out = stdout(&created);
    let key = out.lines().last().expect("a last line");
    assert!(key.starts_with("agd_") && !key.contains(char::is_whitespace), "last line is the key alone: {out:?}");

    let listed = run(data_dir, env, &["keys", "list", "--tenant", "acme"]);
    assert!(listed.status.success(), "stderr: {}", stderr(&listed));
    let listing = stdout(&listed);
    let line = listing.lines().next().expect("one key listed");
    assert!(line.contains("admin") && line.contains("active") && key.starts_with(line.split('\t').nth(1).unwrap()));
    assert!(!listing.contains(key), "the secret is never listed");

    let id = line.split('\t').next().unwrap();
    let revoked = run(data_dir, env, &["keys", "revoke", "--tenant", "acme", id]);
    assert!(revoked.status.success(), "stderr: {}", stderr(&revoked));
    let listed = stdout(&run(data_dir, env, &["keys", "list", "--tenant", "acme"]));
    assert!(listed.contains("inactive"), "{listed}");

    let bad_role = run(data_dir, env, &["keys", "create", "--tenant", "acme", "--role", "superuser"]);
    assert!(!bad_role.status.success());
    assert!(stdout(&bad_role).is_empty(), "errors never go to stdout");
    assert!(stderr(&bad_role).contains("superuser"), "{}", stderr(&bad_role));

    let unknown_tenant = run(data_dir, env, &["keys", "list", "--tenant", "nobody"]);
    assert!(!unknown_tenant.status.success());
    assert!(stderr(&unknown_tenant).contains("nobody"));
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_from_the_command_line_on_sqlite() {
    let dir = DataDir::new();
    let path = dir.0.clone();
    tokio::task::spawn_blocking(move || keys_round_trip(&path, &[])).await.unwrap();
    let db = dir.0.join("agentd.db");
    assert!(db.exists(), "the embedded database lives in the data dir");

    // What the shell did is audited like the same action through the API.
    let store = agentd_store::Store::connect(&agentd_store::DatabaseTarget::Sqlite { path: db }, 1).await.unwrap();
    let tenant = store.tenants().by_name("acme").await.unwrap().expect("the tenant was created");
    let entries = store.audit().list(tenant.id, None, 50, None).await.unwrap().items;
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["api_key.revoke", "api_key.create"]);
    assert!(entries.iter().all(|e| e.details.0["via"] == "cli"));
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_from_the_command_line_on_postgres() {
    let database = TestDatabase::new().await;
    let dir = DataDir::new();
    let url = database.url.clone();
    tokio::task::spawn_blocking(move || {
        keys_round_trip(&dir.0, &[("AGENTD_DATABASE_URL", &url)]);
        assert!(!dir.0.join("agentd.db").exists(), "nothing is written to SQLite when PostgreSQL is configured");
    })
    .await
    .unwrap();
}

#[test]
fn migrate_is_safe_to_run_twice() {
    let dir = DataDir::new();
    for _ in 0..2 {
        let output = run(&dir.0, &[], &["migrate"]);
        assert!(output.status.success(), "stderr: {}", stderr(&output));
        assert!(stdout(&output).contains("sqlite"));
    }
}

#[test]
fn users_are_created_with_a_password_from_the_environment_only() {
    let dir = DataDir::new();
    let args = ["users", "create", "--tenant", "acme", "--email", "Ann@Example.org", "--role", "member"];
    let missing = run(&dir.0, &[], &args);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("AGENTD_USER_PASSWORD"));

    let short = run(&dir.0, &[("AGENTD_USER_PASSWORD", "short")], &args);
    assert!(!short.status.success());
    assert!(stderr(&short).contains("at least 8"));

    let created = run(&dir.0, &[("AGENTD_USER_PASSWORD", "a long password")], &args);
    assert!(created.status.success(), "stderr: {}", stderr(&created));
    let listed = stdout(&run(&dir.0, &[], &["users", "list", "--tenant", "acme"]));
    assert!(listed.contains("ann@example.org"), "{listed}");

    let again = run(&dir.0, &[("AGENTD_USER_PASSWORD", "a long password")], &args);
    assert!(!again.status.success(), "a second user with one email is refused");
    assert!(stderr(&again).contains("already exists"));
}

#[test]
fn config_show_prints_the_effective_configuration_with_secrets_masked() {
    let dir = DataDir::new();
    let env = [
        ("AGENTD_DATABASE_URL", "postgres://agentd:hunter2@db.internal/agentd"),
        ("AGENTD_JWT_SECRET", "a-very-secret-jwt-signing-key"),
        ("AGENTD_LISTEN", "0.0.0.0:9999"),
    ];
    let output = run(&dir.0, &env, &["config", "show"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let shown = stdout(&output);
    assert!(shown.contains("0.0.0.0:9999"), "{shown}");
    assert!(shown.contains("db.internal"), "{shown}");
    assert!(!shown.contains("hunter2") && !shown.contains("a-very-secret-jwt-signing-key"), "{shown}");

    let file = dir.0.join("agentd.toml");
    std::fs::write(&file, "database_url = \"postgres://agentd:hunter2@db/agentd\"\n").unwrap();
    let refused = run(&dir.0, &[], &["--config", file.to_str().unwrap(), "config", "show"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("AGENTD_DATABASE_URL"));
}

/// Sends raw bytes and returns the status code and body of the answer.
fn http(addr: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    read_response(&mut stream)
}

fn read_response(stream: &mut TcpStream) -> (u16, String) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn get(addr: &str, path: &str, key: &str) -> (u16, String) {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"))
}

#[test]
fn serve_prints_a_first_key_and_drains_requests_in_flight_on_sigterm() {
    let dir = DataDir::new();
    let mut server = Server::start(&dir.0);
    let key = server.first_key.clone().expect("a first start prints an admin key");
    let (status, body) = get(&server.addr, "/v1/me", &key);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"role\":\"admin\""), "{body}");

    // A request whose body is still arriving when SIGTERM comes must still
    // be answered.
    let json = r#"{"title":"in flight"}"#;
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        json.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&json.as_bytes()[..5]).unwrap();
    // Connections are accepted in order: once a later one is answered, the
    // server holds this one, its head read, its body incomplete.
    let (status, body) = get(&server.addr, "/v1/me", &key);
    assert_eq!(status, 200, "{body}");
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.child.try_wait().unwrap().is_none(), "the server waits for the request in flight");
    stream.write_all(&json.as_bytes()[5..]).unwrap();
    let (status, body) = read_response(&mut stream);
    assert_eq!(status, 201, "{body}");
    let exit = server.wait_exit(Duration::from_secs(10)).expect("the server exits after draining");
    assert!(exit.success(), "clean shutdown exits 0, got {exit:?}");

    // A restart on the same data keeps the data and makes no new key.
    let server = Server::start(&dir.0);
    assert!(server.first_key.is_none(), "only a first start creates a key");
    let (status, body) = get(&server.addr, "/v1/sessions", &key);
    assert_eq!(status, 200);
    assert!(body.contains("in flight"), "the session written before shutdown is there: {body}");
}

#[test]
fn models_fetch_puts_the_embedding_model_in_place_and_verify_checks_it() {
    let dir = DataDir::new();
    let missing = run(&dir.0, &[], &["models", "verify", "embedding"]);
    assert!(!missing.status.success(), "an empty models dir does not verify");
    assert!(stderr(&missing).contains("agentd models fetch"), "the error names the fix: {}", stderr(&missing));

    let (models, cache) = shared_models_env();
    let env = [("AGENTD_MODELS_DIR", models.as_str()), ("AGENTD_MODELS_CACHE", cache.as_str())];
    let fetched = run(&dir.0, &env, &["models", "fetch", "embedding"]);
    assert!(fetched.status.success(), "stderr: {}", stderr(&fetched));
    assert!(stdout(&fetched).contains("all-minilm-l6-v2"), "{}", stdout(&fetched));
    let again = run(&dir.0, &env, &["models", "fetch", "embedding"]);
    assert!(stdout(&again).contains("all-minilm-l6-v2: in place"), "a second fetch is a no-op: {}", stdout(&again));
    let verified = run(&dir.0, &env, &["models", "verify", "embedding"]);
    assert!(verified.status.success(), "stderr: {}", stderr(&verified));
}
