//! Responder settings.

use std::time::Duration;

use crate::error::OcspError;

/// How responses are produced, kept and served.
#[derive(Debug, Clone)]
pub struct ResponderConfig {
    /// nextUpdate − thisUpdate of every response (RFC 5019 §2.2.4).
    pub validity: Duration,
    /// A pre-produced response is signed again when its nextUpdate is this close.
    pub refresh_before: Duration,
    /// How often the refresher asks the store for status changes.
    pub poll_interval: Duration,
    /// Largest OCSPRequest accepted, in octets (POST body, or decoded GET path); larger ones
    /// get malformedRequest.
    pub max_body: usize,
    /// Upper bound of `Cache-Control: max-age` on GET responses. RFC 5019 §6.2 only asks that
    /// max-age not pass nextUpdate; a shorter cap bounds how long an HTTP cache in front of the
    /// responder keeps serving `good` after a revocation. `None`: up to nextUpdate.
    pub max_age_cap: Option<Duration>,
    /// How many responses for never-issued serials are kept. Such responses are signed for
    /// whatever serial a client invents, so they are capped (and dropped rather than re-signed
    /// when they age) to keep a flood of random serials from growing memory.
    pub max_not_issued_cached: usize,
    /// How many requests may be signed live at once (HSM calls on blocking threads); more
    /// wait for a turn, for at most `live_wait` (then tryLater).
    pub live_concurrency: usize,
    /// The longest a request waits for a live-signing turn before it gets tryLater.
    pub live_wait: Duration,
    /// How many responses per second may be signed live, for requests (a nonce, an unseen
    /// serial); past it a request is answered from the pre-produced response without its
    /// nonce, or tryLater. Pre-production does not count.
    pub live_per_second: u32,
    /// While the refresher runs: once it has not read the store's status changes for this
    /// long (the store unreachable from this node), every request gets tryLater — the
    /// responder no longer knows whether a certificate it would call good was revoked
    /// meanwhile — until a read succeeds again.
    pub stale_after: Duration,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            validity: Duration::from_secs(24 * 3600),
            refresh_before: Duration::from_secs(12 * 3600),
            poll_interval: Duration::from_secs(1),
            max_body: 8 * 1024,
            max_age_cap: Some(Duration::from_secs(3600)),
            max_not_issued_cached: 10_000,
            live_concurrency: 16,
            live_wait: Duration::from_secs(5),
            live_per_second: 200,
            stale_after: Duration::from_secs(15),
        }
    }
}

impl ResponderConfig {
    pub(crate) fn check(&self) -> Result<(), OcspError> {
        let bad = |field, rule: &str| {
            Err(OcspError::Config {
                field,
                rule: rule.to_string(),
            })
        };
        if self.validity < Duration::from_secs(60)
            || self.validity > Duration::from_secs(366 * 86400)
        {
            return bad("validity", "must be between 60 seconds and 366 days");
        }
        if self.refresh_before >= self.validity {
            return bad("refresh_before", "must be shorter than validity");
        }
        if self.poll_interval.is_zero() {
            return bad("poll_interval", "must be more than zero");
        }
        if self.max_body < 64 || self.max_body > 1 << 20 {
            return bad("max_body", "must be between 64 octets and 1 MiB");
        }
        if self.live_concurrency == 0 {
            return bad("live_concurrency", "must be at least 1");
        }
        if self.live_per_second == 0 || self.live_per_second > 100_000 {
            return bad("live_per_second", "must be between 1 and 100000");
        }
        Ok(())
    }
}
