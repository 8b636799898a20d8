//! [`UnixTime`]: an instant as nesca stores and compares it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An instant as nesca stores it: whole seconds since 1970-01-01T00:00:00Z (UTC), the
/// precision X.509 `Time` carries (RFC 5280 §4.1.2.5). Every stored instant — a certificate's
/// validity, a deadline, a lock, an audit entry's time — is one of these, so a duration or a
/// count can no longer be passed where an instant is meant.
///
/// Instants before the epoch are representable (a damaged row, a test) but nesca never makes
/// one: [`UnixTime::from_system`] counts those as the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(i64);

impl UnixTime {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// The instant `secs` seconds after the epoch (what a store column holds).
    pub const fn from_secs(secs: i64) -> UnixTime {
        UnixTime(secs)
    }

    /// Seconds since the epoch (what a store column holds).
    pub const fn secs(self) -> i64 {
        self.0
    }

    /// `t` truncated to whole seconds; times before the epoch count as the epoch.
    pub fn from_system(t: SystemTime) -> UnixTime {
        UnixTime(
            t.duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0),
        )
    }

    /// This instant as a `SystemTime` (instants before the epoch become the epoch).
    pub fn to_system(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(self.0).unwrap_or(0))
    }

    /// `secs` seconds later (earlier when negative), saturating at the ends of the range.
    pub const fn plus_secs(self, secs: i64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    /// `by` later, saturating.
    pub fn plus(self, by: Duration) -> UnixTime {
        self.plus_secs(i64::try_from(by.as_secs()).unwrap_or(i64::MAX))
    }

    /// `by` earlier, saturating.
    pub fn minus(self, by: Duration) -> UnixTime {
        UnixTime(
            self.0
                .saturating_sub(i64::try_from(by.as_secs()).unwrap_or(i64::MAX)),
        )
    }

    /// Seconds from `earlier` to this instant (negative when `earlier` is later).
    pub const fn secs_since(self, earlier: UnixTime) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl From<SystemTime> for UnixTime {
    fn from(t: SystemTime) -> UnixTime {
        UnixTime::from_system(t)
    }
}

impl From<UnixTime> for SystemTime {
    fn from(t: UnixTime) -> SystemTime {
        t.to_system()
    }
}

/// The seconds since the epoch, as stored (e.g. `1767225600`).
impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_system_time_and_truncates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_767_225_600_900);
        let u = UnixTime::from_system(t);
        assert_eq!(u.secs(), 1_767_225_600);
        assert_eq!(
            u.to_system(),
            UNIX_EPOCH + Duration::from_secs(1_767_225_600)
        );
        assert_eq!(
            UnixTime::from_system(UNIX_EPOCH - Duration::from_secs(5)),
            UnixTime::EPOCH
        );
    }

    #[test]
    fn arithmetic_saturates_and_orders() {
        let t = UnixTime::from_secs(100);
        assert_eq!(t.plus(Duration::from_secs(20)).secs(), 120);
        assert_eq!(t.minus(Duration::from_secs(150)).secs(), -50);
        assert_eq!(t.plus_secs(-10).secs(), 90);
        assert_eq!(UnixTime::from_secs(i64::MAX).plus_secs(1).secs(), i64::MAX);
        assert_eq!(t.secs_since(UnixTime::from_secs(40)), 60);
        assert!(UnixTime::from_secs(1) < t);
        assert_eq!(UnixTime::from_secs(-3).to_system(), UNIX_EPOCH);
        assert_eq!(t.to_string(), "100");
    }
}
