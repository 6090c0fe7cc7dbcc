//! A byte cache with per-entry time-to-live.
//!
//! Used for things that are expensive to look up on every request (API keys
//! first of all). The Redis flavour is shared by every node, so deleting an
//! entry on one node takes effect on all of them at once.

use std::time::{Duration, Instant};

// Read through tokio's clock, which a test can pause and move.
use tokio::time::Instant as Now;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::BusError;

/// Get, set with a time-to-live, delete.
#[async_trait]
pub trait Cache: Send + Sync {
    /// The value under `key`, unless absent or expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BusError>;
    /// Stores `value` under `key` for `ttl` (at least a millisecond).
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), BusError>;
    /// Removes `key`; absent keys are fine.
    async fn delete(&self, key: &str) -> Result<(), BusError>;
}

/// The in-process cache: a bounded concurrent map (moka) whose entries each
/// carry their own expiry.
pub struct InProcessCache {
    entries: moka::future::Cache<String, Entry>,
}

#[derive(Clone)]
struct Entry {
    value: std::sync::Arc<[u8]>,
    ttl: Duration,
    expires_at: Now,
}

/// Tells moka when each entry expires.
struct PerEntryExpiry;

impl moka::Expiry<String, Entry> for PerEntryExpiry {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _now: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl InProcessCache {
    /// A cache holding at most `capacity` entries.
    pub fn new(capacity: u64) -> Self {
        InProcessCache {
            entries: moka::future::Cache::builder().max_capacity(capacity).expire_after(PerEntryExpiry).build(),
        }
    }
}

#[async_trait]
impl Cache for InProcessCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BusError> {
        // moka evicts lazily; an entry past its time must still read as absent.
        Ok(self.entries.get(key).await.filter(|e| e.expires_at > Now::now()).map(|e| e.value.to_vec()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), BusError> {
        let ttl = ttl.max(Duration::from_millis(1));
        let entry = Entry { value: value.into(), ttl, expires_at: Now::now() + ttl };
        self.entries.insert(key.to_string(), entry).await;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), BusError> {
        self.entries.invalidate(key).await;
        Ok(())
    }
}

/// The Redis cache: plain string keys under `{prefix}:cache:`, expiry by
/// `PX`.
pub struct RedisCache {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisCache {
    /// A cache on this connection, under this key prefix.
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        RedisCache { conn, prefix: format!("{prefix}:cache:") }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BusError> {
        let mut conn = self.conn.clone();
        Ok(conn.get(self.key(key)).await?)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), BusError> {
        let mut conn = self.conn.clone();
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let _: () =
            redis::cmd("SET").arg(self.key(key)).arg(value).arg("PX").arg(millis).query_async(&mut conn).await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), BusError> {
        let mut conn = self.conn.clone();
        let _: () = conn.del(self.key(key)).await?;
        Ok(())
    }
}
