//! The bus — cache and rate limiter — in both flavours, in-process and on a
//! real Redis.
//!
//! Callers never learn which flavour they hold, so both must behave alike:
//! each shared case runs once per flavour (`<case>::in_process`,
//! `<case>::redis`). The Redis-only cases check what the embedded bus cannot
//! do: two nodes of one deployment sharing one cache and one limit.

use std::time::Duration;

use agentd_store::testing::{redis_bus, redis_bus_with_prefix};
use agentd_store::{Bus, RateQuota};

/// Turns `case_name, |bus| { ... }` into a module `case_name` with one test
/// per bus flavour; the body gets `bus: &Bus` and returns `anyhow::Result<()>`.
macro_rules! on_both_buses {
    ($name:ident, |$bus:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn case($bus: &Bus) -> anyhow::Result<()> $body

            #[tokio::test]
            async fn in_process() -> anyhow::Result<()> {
                case(&Bus::in_process()).await
            }

            #[tokio::test]
            async fn redis() -> anyhow::Result<()> {
                case(&redis_bus().await).await
            }
        }
    };
}

/// One request an hour after a burst: a refusal cannot turn into an
/// allowance because a busy machine was slow between two checks.
const SLOW: f64 = 1.0 / 3600.0;
const SLOW_BURST_3: RateQuota = RateQuota { per_second: SLOW, burst: 3 };
const HOUR: Duration = Duration::from_secs(3600);

const LONG: Duration = Duration::from_secs(60);

/// A fresh key prefix, so Redis-only tests never see each other's keys.
fn unique_prefix() -> String {
    format!("agentd-test-{}", uuid::Uuid::new_v4().simple())
}

// ---- both flavours --------------------------------------------------------

#[tokio::test]
async fn in_process_bus_answers_and_is_not_shared() -> anyhow::Result<()> {
    let bus = Bus::in_process();
    bus.ping().await?;
    assert!(!bus.is_shared());
    assert_eq!(bus.backend(), "in-process");
    Ok(())
}

#[tokio::test]
async fn redis_bus_answers_and_is_shared() -> anyhow::Result<()> {
    let bus = redis_bus().await;
    bus.ping().await?;
    assert!(bus.is_shared());
    assert_eq!(bus.backend(), "redis");
    Ok(())
}

on_both_buses!(cache_set_get_overwrite_delete, |bus| {
    let cache = bus.cache();
    assert_eq!(cache.get("missing").await?, None);

    cache.set("k", b"first", LONG).await?;
    cache.set("other", b"\x00\xffbinary", LONG).await?;
    assert_eq!(cache.get("k").await?.as_deref(), Some(&b"first"[..]));
    assert_eq!(cache.get("other").await?.as_deref(), Some(&b"\x00\xffbinary"[..]));

    cache.set("k", b"second", LONG).await?;
    assert_eq!(cache.get("k").await?.as_deref(), Some(&b"second"[..]));

    cache.delete("k").await?;
    assert_eq!(cache.get("k").await?, None);
    assert_eq!(cache.get("other").await?.as_deref(), Some(&b"\x00\xffbinary"[..]), "delete removes only its key");
    cache.delete("never-set").await?;
    Ok(())
});

/// Waits until `key` reads as absent (a real clock: Redis keeps its own
/// time), and fails after half a minute.
async fn until_gone(cache: &dyn agentd_store::Cache, key: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cache.get(key).await?.is_some() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "{key} never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

on_both_buses!(cache_entries_expire, |bus| {
    let cache = bus.cache();
    cache.set("short", b"v", Duration::from_millis(200)).await?;
    cache.set("long", b"v", LONG).await?;
    cache.set("renewed", b"v", Duration::from_millis(200)).await?;
    // Overwriting an entry gives it the new time-to-live.
    cache.set("renewed", b"v", LONG).await?;
    until_gone(cache, "short").await?;
    assert!(cache.get("long").await?.is_some(), "other entries keep their time");
    assert!(cache.get("renewed").await?.is_some(), "the later time-to-live holds");
    Ok(())
});

#[tokio::test(start_paused = true)]
async fn in_process_entries_last_exactly_their_time_to_live() -> anyhow::Result<()> {
    let bus = Bus::in_process();
    let cache = bus.cache();
    cache.set("k", b"v", Duration::from_millis(200)).await?;
    tokio::time::advance(Duration::from_millis(199)).await;
    assert!(cache.get("k").await?.is_some(), "not expired yet");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(cache.get("k").await?, None);
    Ok(())
}

on_both_buses!(rate_limit_allows_a_burst_then_refuses, |bus| {
    let limiter = bus.limiter();
    for expected in [2, 1, 0] {
        let decision = limiter.check("client-a", SLOW_BURST_3).await?;
        assert!(decision.allowed);
        assert_eq!(decision.remaining, expected);
        assert_eq!(decision.limit, 3);
        assert_eq!(decision.retry_after, Duration::ZERO);
    }
    for _ in 0..2 {
        let refused = limiter.check("client-a", SLOW_BURST_3).await?;
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.limit, 3);
        assert!(
            refused.retry_after > HOUR / 2 && refused.retry_after <= HOUR,
            "retry_after {:?} should be within one interval",
            refused.retry_after
        );
    }

    // Another key has its own budget.
    let other = limiter.check("client-b", SLOW_BURST_3).await?;
    assert!(other.allowed);
    assert_eq!(other.remaining, 2);
    Ok(())
});

on_both_buses!(rate_limit_recovers_after_retry_after, |bus| {
    // A fast rate keeps the wait short. A busy machine may refill the
    // budget between two checks, so the case asserts only what holds
    // however slow the machine is.
    let quota = RateQuota { per_second: 20.0, burst: 2 };
    let limiter = bus.limiter();
    let mut checks = 0;
    let refused = loop {
        let decision = limiter.check("k", quota).await?;
        if !decision.allowed {
            break decision;
        }
        checks += 1;
        anyhow::ensure!(checks < 10_000, "never refused");
    };
    assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_millis(50));
    // Refused requests are not counted: more of them do not push the wait out.
    let again = limiter.check("k", quota).await?;
    let wait = if again.allowed {
        Duration::ZERO
    } else {
        assert!(again.retry_after <= refused.retry_after);
        again.retry_after
    };
    tokio::time::sleep(wait).await;
    let allowed = limiter.check("k", quota).await?;
    assert!(allowed.allowed, "allowed once retry_after has passed");
    Ok(())
});

#[tokio::test(start_paused = true)]
async fn in_process_limits_refuse_until_exactly_retry_after() -> anyhow::Result<()> {
    let bus = Bus::in_process();
    let limiter = bus.limiter();
    let quota = RateQuota { per_second: 20.0, burst: 2 };
    assert!(limiter.check("k", quota).await?.allowed);
    assert!(limiter.check("k", quota).await?.allowed);
    let refused = limiter.check("k", quota).await?;
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after, Duration::from_millis(50));
    tokio::time::advance(Duration::from_millis(49)).await;
    let early = limiter.check("k", quota).await?;
    assert!(!early.allowed);
    assert_eq!(early.retry_after, Duration::from_millis(1));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(limiter.check("k", quota).await?.allowed);
    assert!(!limiter.check("k", quota).await?.allowed, "one interval refills one request");
    Ok(())
}

// ---- Redis only -----------------------------------------------------------

#[tokio::test]
async fn two_redis_nodes_share_one_limit() -> anyhow::Result<()> {
    let prefix = unique_prefix();
    let (a, b) = (redis_bus_with_prefix(&prefix).await, redis_bus_with_prefix(&prefix).await);
    let quota = RateQuota { per_second: SLOW, burst: 4 };
    let mut remaining = Vec::new();
    for node in [&a, &a, &b, &b] {
        let decision = node.limiter().check("client", quota).await?;
        assert!(decision.allowed);
        remaining.push(decision.remaining);
    }
    assert_eq!(remaining, [3, 2, 1, 0], "one budget across both nodes");
    assert!(!a.limiter().check("client", quota).await?.allowed);
    assert!(!b.limiter().check("client", quota).await?.allowed);
    Ok(())
}

#[tokio::test]
async fn two_redis_nodes_share_one_cache() -> anyhow::Result<()> {
    let prefix = unique_prefix();
    let (a, b) = (redis_bus_with_prefix(&prefix).await, redis_bus_with_prefix(&prefix).await);
    a.cache().set("api-key", b"record", LONG).await?;
    assert_eq!(b.cache().get("api-key").await?.as_deref(), Some(&b"record"[..]));
    b.cache().delete("api-key").await?;
    assert_eq!(a.cache().get("api-key").await?, None, "a delete on one node holds on all");
    Ok(())
}

#[tokio::test]
async fn redis_prefixes_keep_deployments_apart() -> anyhow::Result<()> {
    let (a, b) = (redis_bus().await, redis_bus().await);
    a.cache().set("k", b"a's", LONG).await?;
    assert_eq!(b.cache().get("k").await?, None);

    let quota = RateQuota { per_second: SLOW, burst: 1 };
    assert!(a.limiter().check("client", quota).await?.allowed);
    assert!(!a.limiter().check("client", quota).await?.allowed);
    assert!(b.limiter().check("client", quota).await?.allowed);
    Ok(())
}

#[tokio::test]
async fn unreachable_redis_is_an_error_not_a_hang() {
    let prefix = unique_prefix();
    let connect = Bus::redis("redis://127.0.0.1:1", &prefix);
    let outcome = tokio::time::timeout(Duration::from_secs(10), connect).await;
    match outcome {
        Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("connected to a port nothing listens on"),
        Err(_) => panic!("Bus::redis hung for 10 s instead of failing"),
    }
}
