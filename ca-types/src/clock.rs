//! Injected time, so that validity, renewal windows and schedules are testable.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now, truncated to whole seconds (X.509 times carry no fractions).
    fn now(&self) -> SystemTime;

    /// Now, as the store keeps instants.
    fn now_unix(&self) -> crate::UnixTime {
        crate::UnixTime::from_system(self.now())
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        truncate(SystemTime::now())
    }
}

/// A clock that stands still until moved (tests).
#[derive(Debug)]
pub struct FixedClock(Mutex<SystemTime>);

impl FixedClock {
    /// A clock standing at `at`, truncated to whole seconds.
    pub fn new(at: SystemTime) -> Self {
        FixedClock(Mutex::new(truncate(at)))
    }
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Drops sub-second precision.
pub fn truncate(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Seconds since the Unix epoch (times before it count as 0).
pub fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_truncates_and_advances() {
        let c = FixedClock::new(UNIX_EPOCH + Duration::from_millis(1_500));
        assert_eq!(unix_seconds(c.now()), 1);
        c.advance(Duration::from_secs(10));
        assert_eq!(unix_seconds(c.now()), 11);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }
}
