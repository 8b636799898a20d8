//! The live-signing budget: how many responses per second may be signed for requests (a
//! nonce, a serial never seen, a response past its time). Live signatures share the HSM with
//! issuance and CRLs; an unauthenticated flood of nonces or invented serials must not take
//! their turns. Past the budget, a request is answered from the pre-produced response
//! without its nonce (RFC 5019 §2.2.2 lets a responder leave the nonce out), or tryLater.
//! Pre-production by the refresher is not counted: it is what keeps the cache full.

use std::sync::Mutex;
use std::time::Instant;

/// A token bucket: `per_second` tokens a second, at most one second's worth saved up.
#[derive(Debug)]
pub(crate) struct LiveBudget {
    per_second: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl LiveBudget {
    pub(crate) fn new(per_second: u32, now: Instant) -> LiveBudget {
        let per_second = f64::from(per_second.max(1));
        LiveBudget {
            per_second,
            bucket: Mutex::new(Bucket {
                tokens: per_second,
                at: now,
            }),
        }
    }

    /// Takes one live signature's turn at `now`, if the budget has one.
    pub(crate) fn try_take(&self, now: Instant) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.per_second);
        b.at = now.max(b.at);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_second_s_worth_then_the_rate() {
        let t0 = Instant::now();
        let budget = LiveBudget::new(10, t0);
        let taken = (0..25).filter(|_| budget.try_take(t0)).count();
        assert_eq!(taken, 10, "one second's worth at once");
        assert!(!budget.try_take(t0 + Duration::from_millis(50)));
        assert!(budget.try_take(t0 + Duration::from_millis(100)));
        assert!(!budget.try_take(t0 + Duration::from_millis(100)));
        // A long pause saves up no more than one second's worth.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..25).filter(|_| budget.try_take(later)).count(), 10);
    }

    #[test]
    fn a_clock_that_steps_back_gives_nothing_extra() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let budget = LiveBudget::new(1, t0);
        assert!(budget.try_take(t0));
        assert!(!budget.try_take(t0 - Duration::from_secs(5)));
        assert!(!budget.try_take(t0));
    }
}
