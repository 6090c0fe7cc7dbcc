//! The bus: state that every API node must share — a cache and rate limits —
//! in-process on one machine, on Redis across many.
//!
//! Callers hold a [`Bus`] and never learn which flavour it is, except through
//! [`Bus::is_shared`], which tells whether another node would see a write.

mod cache;
mod rate_limit;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use cache::{Cache, InProcessCache, RedisCache};
pub use rate_limit::{InProcessLimiter, RateDecision, RateLimiter, RateQuota, RedisLimiter};

/// What can go wrong talking to the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Redis could not be reached or answered with an error.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered something the bus did not expect.
    #[error("unexpected answer from the bus: {0}")]
    Protocol(String),
}

/// Cache and rate limiter, behind one handle. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    cache: Arc<dyn Cache>,
    limiter: Arc<dyn RateLimiter>,
    redis: Option<ConnectionManager>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("backend", &self.backend()).finish()
    }
}

impl Bus {
    /// The embedded bus: everything in this process.
    pub fn in_process() -> Self {
        Bus { cache: Arc::new(InProcessCache::new(100_000)), limiter: Arc::new(InProcessLimiter::new()), redis: None }
    }

    /// The shared bus on Redis. Every key is put under `prefix` so that
    /// several deployments (or test runs) can share one Redis.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, BusError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Bus {
            cache: Arc::new(RedisCache::new(conn.clone(), prefix)),
            limiter: Arc::new(RedisLimiter::new(conn.clone(), prefix)),
            redis: Some(conn),
        })
    }

    /// The cache.
    pub fn cache(&self) -> &dyn Cache {
        self.cache.as_ref()
    }

    /// The rate limiter.
    pub fn limiter(&self) -> &dyn RateLimiter {
        self.limiter.as_ref()
    }

    /// Whether writes to this bus are seen by other processes.
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// `in-process` or `redis`, for logs and the configuration dump.
    pub fn backend(&self) -> &'static str {
        if self.is_shared() { "redis" } else { "in-process" }
    }

    /// Checks that the bus answers; always true in-process.
    pub async fn ping(&self) -> Result<(), BusError> {
        if let Some(conn) = &self.redis {
            let mut conn = conn.clone();
            let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
            if pong != "PONG" {
                return Err(BusError::Protocol(format!("PING answered {pong:?}")));
            }
        }
        Ok(())
    }
}
