//! The time the store writes and compares: the system's, or one a test
//! moves by hand.
//!
//! Job leases, retry backoffs and every `created_at` are read from the
//! store's [`Clock`], never from the system directly, so that a test of
//! "the lease has run out" advances a [`ManualClock`] instead of sleeping
//! and hoping that a busy machine did not sleep longer.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Where the store reads the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock: what every store uses unless told otherwise.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at the system's time now.
    pub fn new() -> Self {
        ManualClock { now: Mutex::new(Utc::now()) }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - start, chrono::Duration::milliseconds(1500));
    }
}
