//! Counters of the responder, rendered in the Prometheus text format (version 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How a request ended, for `nesca_ocsp_requests_total{outcome="…"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered with a pre-produced response.
    Cached,
    /// Answered with a response signed for this request.
    Signed,
    /// A GET whose If-None-Match matched: 304, no body.
    NotModified,
    /// malformedRequest.
    Malformed,
    /// unauthorized: an issuer this responder does not serve.
    Unauthorized,
    /// tryLater: the store or the signer failed, or live signing was saturated.
    TryLater,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Cached,
        Outcome::Signed,
        Outcome::NotModified,
        Outcome::Malformed,
        Outcome::Unauthorized,
        Outcome::TryLater,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Cached => "cached",
            Outcome::Signed => "signed",
            Outcome::NotModified => "not_modified",
            Outcome::Malformed => "malformed",
            Outcome::Unauthorized => "unauthorized",
            Outcome::TryLater => "try_later",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds of the latency histogram, in seconds: the cached path is tens of
/// microseconds, live signing on an HSM hundreds.
const BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Keeps each hot counter on its own cache line: two cores bumping counters that share a
/// line would make every request pay for the line moving between them.
#[derive(Default)]
#[repr(align(64))]
struct Counter(AtomicU64);

/// The responder's counters; every field is atomic, so recording never blocks a request.
/// Requests and their latency are counted by the HTTP handlers ([`Responder::router`]);
/// direct calls of [`Responder::answer`] are not requests in this sense.
///
/// [`Responder::router`]: crate::Responder::router
/// [`Responder::answer`]: crate::Responder::answer
#[derive(Default)]
pub struct OcspMetrics {
    requests: [Counter; 6],
    /// Per bucket (not cumulative; summed when rendered); the last one is +Inf.
    latency: [Counter; BUCKETS.len() + 1],
    latency_sum_ns: Counter,
    signing_errors: Counter,
    source_errors: Counter,
    signatures: Counter,
    cached: Counter,
    over_budget: Counter,
}

impl OcspMetrics {
    /// Requests that ended with `outcome`.
    pub fn requests(&self, outcome: Outcome) -> u64 {
        self.requests[outcome.index()].0.load(Relaxed)
    }
    /// Signing failures (signer error or a signature that does not verify).
    pub fn signing_errors(&self) -> u64 {
        self.signing_errors.0.load(Relaxed)
    }
    /// Failures of the status source (the store).
    pub fn source_errors(&self) -> u64 {
        self.source_errors.0.load(Relaxed)
    }
    /// Requests past the live-signing budget (answered cached without their nonce, or
    /// tryLater).
    pub fn over_budget_requests(&self) -> u64 {
        self.over_budget.0.load(Relaxed)
    }
    /// Responses signed (live and pre-produced).
    pub fn signatures(&self) -> u64 {
        self.signatures.0.load(Relaxed)
    }
    /// Pre-produced responses held now.
    pub fn cached_responses(&self) -> u64 {
        self.cached.0.load(Relaxed)
    }

    /// Records one HTTP request.
    pub(crate) fn observe(&self, outcome: Outcome, elapsed: Duration) {
        self.requests[outcome.index()].0.fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.latency[bucket].0.fetch_add(1, Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_ns.0.fetch_add(ns, Relaxed);
    }

    pub(crate) fn signing_error(&self) {
        self.signing_errors.0.fetch_add(1, Relaxed);
    }
    pub(crate) fn source_error(&self) {
        self.source_errors.0.fetch_add(1, Relaxed);
    }
    pub(crate) fn over_budget(&self) {
        self.over_budget.0.fetch_add(1, Relaxed);
    }
    pub(crate) fn signed(&self) {
        self.signatures.0.fetch_add(1, Relaxed);
    }
    pub(crate) fn cached_changed(&self, added: i64) {
        if added >= 0 {
            self.cached.0.fetch_add(added as u64, Relaxed);
        } else {
            self.cached.0.fetch_sub(added.unsigned_abs(), Relaxed);
        }
    }

    /// Appends the metrics in the Prometheus text exposition format.
    pub fn render_prometheus(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = self.render(out);
    }

    fn render(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP nesca_ocsp_requests_total OCSP requests by outcome."
        )?;
        writeln!(out, "# TYPE nesca_ocsp_requests_total counter")?;
        for o in Outcome::ALL {
            writeln!(
                out,
                "nesca_ocsp_requests_total{{outcome=\"{}\"}} {}",
                o.label(),
                self.requests(o)
            )?;
        }
        writeln!(
            out,
            "# HELP nesca_ocsp_request_duration_seconds Time to answer an OCSP request over HTTP."
        )?;
        writeln!(out, "# TYPE nesca_ocsp_request_duration_seconds histogram")?;
        let mut cumulative = 0u64;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += self.latency[i].0.load(Relaxed);
            writeln!(
                out,
                "nesca_ocsp_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            )?;
        }
        cumulative += self.latency[BUCKETS.len()].0.load(Relaxed);
        writeln!(
            out,
            "nesca_ocsp_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        )?;
        let sum = self.latency_sum_ns.0.load(Relaxed) as f64 / 1e9;
        writeln!(out, "nesca_ocsp_request_duration_seconds_sum {sum}")?;
        writeln!(
            out,
            "nesca_ocsp_request_duration_seconds_count {cumulative}"
        )?;
        let simple = [
            (
                "nesca_ocsp_signing_errors_total",
                "counter",
                "Signing failures (signer error or a signature that does not verify).",
                self.signing_errors(),
            ),
            (
                "nesca_ocsp_source_errors_total",
                "counter",
                "Failures of the status source (the store).",
                self.source_errors(),
            ),
            (
                "nesca_ocsp_over_budget_total",
                "counter",
                "Requests past the live-signing budget (answered cached without nonce, or tryLater).",
                self.over_budget_requests(),
            ),
            (
                "nesca_ocsp_signatures_total",
                "counter",
                "OCSP responses signed, live and pre-produced.",
                self.signatures(),
            ),
            (
                "nesca_ocsp_cached_responses",
                "gauge",
                "Pre-produced OCSP responses held.",
                self.cached_responses(),
            ),
        ];
        for (name, kind, help, value) in simple {
            writeln!(out, "# HELP {name} {help}")?;
            writeln!(out, "# TYPE {name} {kind}")?;
            writeln!(out, "{name} {value}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for OcspMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspMetrics")
            .field("signing_errors", &self.signing_errors())
            .field("cached_responses", &self.cached_responses())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_histogram() {
        let m = OcspMetrics::default();
        m.observe(Outcome::Cached, Duration::from_micros(30));
        m.observe(Outcome::Cached, Duration::from_micros(70));
        m.observe(Outcome::Malformed, Duration::from_secs(3));
        m.signing_error();
        m.cached_changed(5);
        m.cached_changed(-2);
        let mut s = String::new();
        m.render_prometheus(&mut s);
        assert!(
            s.contains("nesca_ocsp_requests_total{outcome=\"cached\"} 2\n"),
            "{s}"
        );
        assert!(s.contains("nesca_ocsp_requests_total{outcome=\"malformed\"} 1\n"));
        assert!(s.contains("nesca_ocsp_request_duration_seconds_bucket{le=\"0.00005\"} 1\n"));
        assert!(s.contains("nesca_ocsp_request_duration_seconds_bucket{le=\"0.0001\"} 2\n"));
        assert!(s.contains("nesca_ocsp_request_duration_seconds_bucket{le=\"1\"} 2\n"));
        assert!(s.contains("nesca_ocsp_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(s.contains("nesca_ocsp_request_duration_seconds_count 3\n"));
        assert!(s.contains("nesca_ocsp_signing_errors_total 1\n"));
        assert!(s.contains("nesca_ocsp_cached_responses 3\n"));
    }
}
