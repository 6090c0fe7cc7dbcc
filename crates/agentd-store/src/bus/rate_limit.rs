//! Rate limits by the generic cell rate algorithm (GCRA).
//!
//! GCRA keeps one number per key — the "theoretical arrival time" of the next
//! request — so a check is one read and one write. That makes the Redis
//! flavour a single Lua script (one round trip, atomic, on Redis's clock), and
//! lets the in-process flavour run the very same arithmetic
//! ([`gcra`]), so both behave alike by construction.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

// Read through tokio's clock, which a test can pause and move.
use tokio::time::Instant;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::BusError;

/// How fast a key may go: a steady rate, plus a burst that may be spent at
/// once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateQuota {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests allowed at once; at least 1.
    pub burst: u32,
}

impl RateQuota {
    /// Microseconds between two requests at the sustained rate.
    fn interval_micros(&self) -> u64 {
        let per_second = if self.per_second.is_finite() && self.per_second > 0.0 { self.per_second } else { 1e-6 };
        ((1e6 / per_second).round() as u64).max(1)
    }

    fn burst(&self) -> u64 {
        u64::from(self.burst.max(1))
    }
}

/// The answer to one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may go ahead (and was counted).
    pub allowed: bool,
    /// When refused: how long until a request would be allowed.
    pub retry_after: Duration,
    /// When allowed: how many more requests would be allowed right now.
    pub remaining: u32,
    /// The burst size, for the `RateLimit-Limit` header.
    pub limit: u32,
}

/// Counts a request against a key's quota.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `key` if the quota allows it.
    async fn check(&self, key: &str, quota: RateQuota) -> Result<RateDecision, BusError>;
}

/// One GCRA step. `tat` is the stored arrival time (absent for a new key),
/// `now` the current time, both in microseconds on one clock. Returns the
/// decision and, when allowed, the arrival time to store.
pub fn gcra(tat: Option<u64>, now: u64, quota: RateQuota) -> (RateDecision, Option<u64>) {
    let interval = quota.interval_micros();
    let burst = quota.burst();
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + interval;
    // `now < new_tat - burst * interval`, rearranged so that nothing
    // underflows while `now` is still small (the in-process clock starts at 0).
    let horizon = now.saturating_add(burst.saturating_mul(interval));
    let limit = u32::try_from(burst).unwrap_or(u32::MAX);
    if horizon < new_tat {
        let decision =
            RateDecision { allowed: false, retry_after: Duration::from_micros(new_tat - horizon), remaining: 0, limit };
        return (decision, None);
    }
    let remaining = u32::try_from((horizon - new_tat) / interval).unwrap_or(u32::MAX);
    (RateDecision { allowed: true, retry_after: Duration::ZERO, remaining, limit }, Some(new_tat))
}

/// The in-process limiter: a map from key to arrival time.
pub struct InProcessLimiter {
    epoch: Instant,
    state: Mutex<LimiterState>,
}

struct LimiterState {
    tats: HashMap<String, u64>,
    checks_since_sweep: u32,
}

/// How many checks pass between sweeps of keys whose time has passed.
const SWEEP_EVERY: u32 = 10_000;

impl InProcessLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        InProcessLimiter {
            epoch: Instant::now(),
            state: Mutex::new(LimiterState { tats: HashMap::new(), checks_since_sweep: 0 }),
        }
    }
}

impl Default for InProcessLimiter {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl RateLimiter for InProcessLimiter {
    async fn check(&self, key: &str, quota: RateQuota) -> Result<RateDecision, BusError> {
        let now = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.checks_since_sweep += 1;
        if state.checks_since_sweep >= SWEEP_EVERY {
            // A key whose arrival time has passed is the same as an absent key.
            state.tats.retain(|_, tat| *tat > now);
            state.checks_since_sweep = 0;
        }
        let (decision, new_tat) = gcra(state.tats.get(key).copied(), now, quota);
        if let Some(tat) = new_tat {
            state.tats.insert(key.to_string(), tat);
        }
        Ok(decision)
    }
}

/// The Redis limiter: [`gcra`] as a Lua script on Redis's own clock, so that
/// any number of nodes share one limit per key without clock agreement.
pub struct RedisLimiter {
    conn: ConnectionManager,
    prefix: String,
    script: redis::Script,
}

/// The same steps as [`gcra`]. Returns {allowed, retry_after_us, remaining}.
const GCRA_LUA: &str = r#"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, allow_at - now, 0}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0, math.floor((now - allow_at) / interval)}
"#;

impl RedisLimiter {
    /// A limiter on this connection, under this key prefix.
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        RedisLimiter { conn, prefix: format!("{prefix}:rate:"), script: redis::Script::new(GCRA_LUA) }
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn check(&self, key: &str, quota: RateQuota) -> Result<RateDecision, BusError> {
        let mut conn = self.conn.clone();
        let (allowed, retry_after, remaining): (i64, i64, i64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(quota.interval_micros())
            .arg(quota.burst())
            .invoke_async(&mut conn)
            .await?;
        Ok(RateDecision {
            allowed: allowed == 1,
            retry_after: Duration::from_micros(u64::try_from(retry_after).unwrap_or(0)),
            remaining: u32::try_from(remaining).unwrap_or(0),
            limit: quota.burst.max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_PER_SECOND_BURST_3: RateQuota = RateQuota { per_second: 10.0, burst: 3 };

    #[test]
    fn a_burst_is_allowed_then_refused_until_one_interval_passes() {
        let mut tat = None;
        for expected_remaining in [2, 1, 0] {
            let (decision, next) = gcra(tat, 1_000_000, TEN_PER_SECOND_BURST_3);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected_remaining);
            tat = next;
        }
        let (refused, next) = gcra(tat, 1_000_000, TEN_PER_SECOND_BURST_3);
        assert!(!refused.allowed);
        assert_eq!(next, None, "a refused request must not be counted");
        assert_eq!(refused.retry_after, Duration::from_millis(100));

        let (later, _) = gcra(tat, 1_100_000, TEN_PER_SECOND_BURST_3);
        assert!(later.allowed, "one interval later one more request fits");
    }

    #[test]
    fn a_quiet_key_recovers_its_whole_burst() {
        let (_, tat) = gcra(None, 0, TEN_PER_SECOND_BURST_3);
        let (_, tat) = gcra(tat, 0, TEN_PER_SECOND_BURST_3);
        let (decision, _) = gcra(tat, 10_000_000, TEN_PER_SECOND_BURST_3);
        assert!(decision.allowed);
        assert_eq!(decision.remaining, 2);
    }

    #[test]
    fn nonsense_rates_do_not_panic() {
        for per_second in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let quota = RateQuota { per_second, burst: 0 };
            let (first, tat) = gcra(None, 5, quota);
            assert!(first.allowed);
            let _ = gcra(tat, 5, quota);
        }
    }
}
