//! Fresh, throw-away stores and buses for tests, on every backend.
//!
//! Each call gets its own SQLite file or its own PostgreSQL schema, and its
//! own Redis key prefix, so tests run in parallel and repeatedly without
//! seeing each other. The real servers are required: if PostgreSQL or Redis
//! is down these helpers fail loudly rather than skip.
//!
//! `AGENTD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! `AGENTD_TEST_PGVECTOR_URL` (default `postgres://postgres@127.0.0.1:55432/postgres`,
//! the server `scripts/pgvector-server` starts) and `AGENTD_TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`) say where the servers are.

use std::path::PathBuf;

use crate::{Bus, DatabaseTarget, Store};

/// The backends a store test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// A PostgreSQL server with the pgvector extension (`scripts/pgvector-server`).
    PgVector,
}

/// The PostgreSQL server tests use.
pub fn postgres_url() -> String {
    std::env::var("AGENTD_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The PostgreSQL server with pgvector that tests use.
pub fn pgvector_url() -> String {
    std::env::var("AGENTD_TEST_PGVECTOR_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into())
}

/// The Redis server tests use.
pub fn redis_url() -> String {
    std::env::var("AGENTD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A migrated store that cleans up after itself when dropped.
pub struct TestStore {
    pub store: Store,
    pub target: DatabaseTarget,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Schema { url: String, schema: String },
}

impl TestStore {
    /// A fresh, migrated store on `backend`.
    pub async fn new(backend: Backend) -> TestStore {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let (target, cleanup) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("agentd-test-{unique}.db"));
                (DatabaseTarget::Sqlite { path: path.clone() }, Cleanup::File(path))
            }
            Backend::Postgres | Backend::PgVector => {
                let schema = format!("agentd_test_{unique}");
                let url = if backend == Backend::PgVector { pgvector_url() } else { postgres_url() };
                (
                    DatabaseTarget::Postgres { url: url.clone(), schema: Some(schema.clone()) },
                    Cleanup::Schema { url, schema },
                )
            }
        };
        let store = Store::connect(&target, 5)
            .await
            .unwrap_or_else(|e| panic!("test {backend:?} store unreachable ({e}); is the server running?"));
        store.migrate().await.expect("migrations apply");
        TestStore { store, target, cleanup }
    }
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::Schema { url, schema } => {
                // Drop runs inside the test's runtime, which cannot be
                // blocked on; a short-lived thread with its own runtime can.
                let (url, schema) = (url.clone(), schema.clone());
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                    if let Ok(runtime) = runtime {
                        runtime.block_on(drop_schema(&url, &schema));
                    }
                })
                .join();
            }
        }
    }
}

async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(url).await {
        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
        let _ = conn.close().await;
    }
}

/// A bus on the real Redis under a fresh key prefix.
pub async fn redis_bus() -> Bus {
    let prefix = format!("agentd-test-{}", uuid::Uuid::new_v4().simple());
    redis_bus_with_prefix(&prefix).await
}

/// A bus on the real Redis under `prefix`: two of these with one prefix
/// behave like two nodes of one deployment.
pub async fn redis_bus_with_prefix(prefix: &str) -> Bus {
    Bus::redis(&redis_url(), prefix)
        .await
        .unwrap_or_else(|e| panic!("test Redis unreachable ({e}); is the server running?"))
}

/// A fresh, empty PostgreSQL database for tests that need a whole database
/// (a separate process given only a URL, say); dropped with the guard.
pub struct TestDatabase {
    /// The URL of the new database.
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates the database on the test server.
    pub async fn new() -> TestDatabase {
        use sqlx::Connection;
        let admin_url = postgres_url();
        let name = format!("agentd_test_db_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("test PostgreSQL unreachable ({e}); is the server running?"));
        let sql = format!("CREATE DATABASE \"{name}\"");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("create test database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin_url).expect("test PostgreSQL URL parses");
        url.set_path(&name);
        TestDatabase { url: url.to_string(), admin_url, name }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                        let _ = conn.close().await;
                    }
                });
            }
        })
        .join();
    }
}
