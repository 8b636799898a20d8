//! Injected time, so that validity, renewal windows and schedules are testable. The clock
//! lives in `nesca-ca-types` (`ca-types/src/clock.rs`), shared with `crl` and
//! `ocsp-responder`; the test clock of the binary stays here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use nesca_ca_types::clock::{truncate, unix_seconds, Clock, FixedClock, SystemClock};

/// The operating system's clock moved by a fixed offset: for end-to-end tests of schedules
/// that span months (renewal windows), never for production (the binary builds it only with
/// the `test-clock` feature).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    pub offset_seconds: i64,
}

impl Clock for OffsetClock {
    fn now(&self) -> SystemTime {
        let now = truncate(SystemTime::now());
        let by = Duration::from_secs(self.offset_seconds.unsigned_abs());
        if self.offset_seconds >= 0 {
            now + by
        } else {
            now.checked_sub(by).unwrap_or(UNIX_EPOCH)
        }
    }
}
