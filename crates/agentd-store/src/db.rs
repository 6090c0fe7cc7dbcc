//! The connection to the relational database, embedded or shared.
//!
//! [`Store`] wraps either a SQLite pool (one file under the data directory) or
//! a PostgreSQL pool. Repository functions dispatch on it with [`on_pool!`],
//! which compiles the same query code once per backend: SQL that both
//! dialects accept is written once (`$1` placeholders work in both), SQL that
//! differs is written twice.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::clock::{Clock, SystemClock};
use crate::error::StoreError;

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::db::Pool::Postgres($pool) => $body,
            $crate::db::Pool::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Where the relational data lives.
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseTarget {
    /// A SQLite file, created if absent.
    Sqlite { path: PathBuf },
    /// A PostgreSQL server; `schema`, when set, is created if absent and
    /// used as the search path (tests give each run its own schema).
    Postgres { url: String, schema: Option<String> },
}

impl DatabaseTarget {
    /// Reads a configured URL: `postgres://…`/`postgresql://…`, or
    /// `sqlite://PATH`/`sqlite:PATH`. Anything else is an error that names
    /// the accepted forms.
    pub fn from_url(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseTarget::Postgres { url: url.to_string(), schema: None })
        } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err("sqlite URL has no file path".into());
            }
            Ok(DatabaseTarget::Sqlite { path: PathBuf::from(path) })
        } else {
            Err(format!("unsupported database URL {:?}: expected postgres://… or sqlite://PATH", redact_url(url)))
        }
    }

    /// The embedded default: `agentd.db` in the data directory.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        DatabaseTarget::Sqlite { path: data_dir.join("agentd.db") }
    }

    /// The backend's name, for logs and metrics.
    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseTarget::Sqlite { .. } => "sqlite",
            DatabaseTarget::Postgres { .. } => "postgres",
        }
    }
}

/// Hides the password of a URL so it can be logged.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Connection-pool figures for the metrics endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, busy or idle.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most connections the pool will open.
    pub max: u32,
}

/// The relational store: a pool of connections plus the repositories that
/// use it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    max_connections: u32,
    clock: Arc<dyn Clock>,
}

impl Store {
    /// The same store reading the time from `clock` (a test's
    /// [`crate::ManualClock`]) instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Connects to `target` with at most `max_connections` connections.
    /// Does not migrate; call [`Store::migrate`] for that.
    pub async fn connect(target: &DatabaseTarget, max_connections: u32) -> Result<Self, StoreError> {
        let max_connections = max_connections.max(1);
        let pool = match target {
            DatabaseTarget::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?;
                Pool::Sqlite(pool)
            }
            DatabaseTarget::Postgres { url, schema } => {
                let mut options = PgConnectOptions::from_str(url)?;
                if let Some(schema) = schema {
                    ensure_schema(&options, schema).await?;
                    // `public` after it: extensions (pgvector's type and
                    // operators) live there for every schema.
                    let search_path = format!("\"{schema}\", public");
                    options = options.options([("search_path", search_path.as_str())]);
                }
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?;
                Pool::Postgres(pool)
            }
        };
        Ok(Store { pool, max_connections, clock: Arc::new(SystemClock) })
    }

    /// Applies the migrations of this backend that are not applied yet.
    /// Safe to run any number of times, from any number of processes.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
            Pool::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// Round-trips a trivial query; the readiness check.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// The backend's name: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Postgres(_) => "postgres",
            Pool::Sqlite(_) => "sqlite",
        }
    }

    /// Current pool figures.
    pub fn pool_stats(&self) -> PoolStats {
        let (size, idle) = on_pool!(self, pool => (pool.size(), pool.num_idle() as u32));
        PoolStats { size, idle, max: self.max_connections }
    }

    /// Closes every connection; later calls fail as "unavailable".
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Creates `schema` if it does not exist, over a short-lived connection.
async fn ensure_schema(options: &PgConnectOptions, schema: &str) -> Result<(), StoreError> {
    use sqlx::Connection;
    if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || schema.is_empty() {
        return Err(StoreError::Conflict(format!("schema name {schema:?} must be letters, digits and underscores")));
    }
    let mut conn = sqlx::PgConnection::connect_with(options).await?;
    let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}
