//! What the tests of the `agentd` binary share: temporary data
//! directories, the binary with a clean environment, a running server, and
//! the models directory shared between runs.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use agentd_models::Selection;

/// A temporary data directory, removed when dropped.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("agentd-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        DataDir(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `agentd` with a clean environment: only what the test gives it.
pub fn agentd(data_dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentd"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("AGENTD_DATA_DIR", data_dir);
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// The models directory and wheel cache the model tests share, so that a
/// fresh machine downloads each package once.
pub fn shared_models_env() -> (String, String) {
    let home = std::env::var("HOME").expect("HOME is set");
    let dir = std::env::var("AGENTD_MODELS_DIR").unwrap_or_else(|_| format!("{home}/.cache/agentd/models"));
    let cache = std::env::var("AGENTD_MODELS_CACHE").unwrap_or_else(|_| format!("{home}/.cache/agentd/pip"));
    (dir, cache)
}

/// The shared models directory with the default chat model and embedder
/// fetched into it (once per test binary; a no-op when they are there).
pub fn default_models() -> (String, String) {
    static FETCHED: OnceLock<(String, String)> = OnceLock::new();
    FETCHED
        .get_or_init(|| {
            let (models, cache) = shared_models_env();
            let selection = Selection::parse("all-minilm-l6-v2-int8,smollm2-135m-instruct");
            if let Err(err) = agentd_models::fetch(Path::new(&models), Path::new(&cache), &selection) {
                panic!("could not fetch the default models for the tests: {err}");
            }
            (models, cache)
        })
        .clone()
}

/// The environment that points `agentd` at the shared default models.
pub fn models_env() -> Vec<(&'static str, String)> {
    let (models, cache) = default_models();
    vec![("AGENTD_MODELS_DIR", models), ("AGENTD_MODELS_CACHE", cache), ("AGENTD_MODEL_THREADS", "2".into())]
}

/// The Python of the test environment (`openai`, `schemathesis`): the test
/// script exports it as `AGENTD_TEST_PYTHON`; run alone, a test prepares it
/// with `scripts/python-env` the same way.
pub fn python() -> String {
    if let Ok(python) = std::env::var("AGENTD_TEST_PYTHON") {
        return python;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/python-env");
    let output = Command::new("bash").arg(&script).output().expect("scripts/python-env runs");
    assert!(output.status.success(), "scripts/python-env failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// The repository's sample documents and evaluation set.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

/// `url` of a PostgreSQL test schema, as `AGENTD_DATABASE_URL` for the
/// binary: the server, with the schema first on the search path and
/// `public` (where extensions such as pgvector live) after it.
pub fn schema_url(test: &agentd_store::testing::TestStore) -> String {
    let agentd_store::DatabaseTarget::Postgres { url, schema: Some(schema) } = &test.target else {
        panic!("a PostgreSQL test store with a schema of its own")
    };
    format!("{url}?options[search_path]={schema},public")
}

/// A child process killed (SIGKILL) when dropped, so a failing test leaves
/// no process behind holding the test's output open.
pub struct Killed(pub Child);

impl Killed {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `agentd serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub first_key: Option<String>,
}

impl Server {
    /// Starts `agentd serve` on `data_dir` with the default models (fetched
    /// into the shared models directory first).
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    /// Like [`Server::start`], with more arguments to `agentd serve`.
    pub fn start_with(data_dir: &Path, args: &[&str]) -> Server {
        Server::start_env(data_dir, args, &[])
    }

    /// Like [`Server::start_with`], with more environment (which wins over
    /// the defaults here).
    pub fn start_env(data_dir: &Path, args: &[&str], more_env: &[(&str, String)]) -> Server {
        let (models, cache) = default_models();
        let mut env = vec![
            ("AGENTD_LOG", "warn"),
            ("AGENTD_JWT_SECRET", "a-test-secret-of-enough-length"),
            ("AGENTD_MODELS_DIR", models.as_str()),
            ("AGENTD_MODELS_CACHE", cache.as_str()),
            ("AGENTD_MODEL_THREADS", "2"),
        ];
        env.extend(more_env.iter().map(|(k, v)| (*k, v.as_str())));
        let mut child = agentd(data_dir, &env)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("agentd serve starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("a first line").unwrap();
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .to_string();
        let mut first_key = None;
        // A first start prints two more lines: an explanation and the key.
        // Reading on a thread keeps a restart (which prints nothing more)
        // from blocking the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            if line.starts_with("agd_") {
                first_key = Some(line);
                break;
            }
        }
        Server { child, addr, first_key }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn terminate(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
