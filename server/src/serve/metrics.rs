//! Prometheus text exposition of the public endpoints: requests by route and status, a
//! latency histogram, CRL signing errors and CRL age. Counters are atomics; no registry crate.

use ca_core::UnixTime;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The routes metrics are kept for: a fixed set, so a client cannot grow the label space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Ocsp,
    Crl,
    CaCert,
    Health,
    Metrics,
    Other,
}

impl Route {
    pub(super) fn of(path: &str) -> Route {
        if path.starts_with("/ocsp") {
            Route::Ocsp
        } else if path.starts_with("/crl/") {
            Route::Crl
        } else if path.starts_with("/ca/") {
            Route::CaCert
        } else if path == "/healthz" {
            Route::Health
        } else if path == "/metrics" {
            Route::Metrics
        } else {
            Route::Other
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::Ocsp => "ocsp",
            Route::Crl => "crl",
            Route::CaCert => "ca",
            Route::Health => "healthz",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

const ROUTES: [Route; 6] = [
    Route::Ocsp,
    Route::Crl,
    Route::CaCert,
    Route::Health,
    Route::Metrics,
    Route::Other,
];
/// Status codes counted one by one; anything else counts under "other".
const STATUSES: [u16; 9] = [200, 304, 400, 404, 405, 413, 500, 503, 0];

/// Request counters (lock-free: the OCSP hot path passes here), the latency histogram, and
/// the CRL gauges set by the scheduler.
#[derive(Default)]
pub(super) struct HttpMetrics {
    requests: [[AtomicU64; STATUSES.len()]; ROUTES.len()],
    latency: Histogram,
    crl_signing_errors: AtomicU64,
    crl_this_update: Mutex<BTreeMap<(String, &'static str), i64>>,
}

impl HttpMetrics {
    pub(super) fn record(&self, route: Route, status: u16, elapsed: Duration) {
        let r = ROUTES
            .iter()
            .position(|x| *x == route)
            .unwrap_or(ROUTES.len() - 1);
        let s = STATUSES
            .iter()
            .position(|x| *x == status)
            .unwrap_or(STATUSES.len() - 1);
        self.requests[r][s].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(elapsed);
    }

    pub(super) fn crl_signing_error(&self) {
        self.crl_signing_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn crl_published(&self, ca: &str, kind: &'static str, this_update: UnixTime) {
        // Exported as Unix seconds (a gauge).
        self.crl_this_update
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((ca.to_owned(), kind), this_update.secs());
    }

    /// The text exposition format (version 0.0.4).
    pub(super) fn render(&self, now: i64, out: &mut String) {
        out.push_str("# HELP nesca_http_requests_total Public HTTP requests by route and status.\n# TYPE nesca_http_requests_total counter\n");
        for (r, route) in ROUTES.iter().enumerate() {
            for (s, status) in STATUSES.iter().enumerate() {
                let n = self.requests[r][s].load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let status = match status {
                    0 => "other".to_string(),
                    code => code.to_string(),
                };
                let _ = writeln!(
                    out,
                    "nesca_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    route.name()
                );
            }
        }
        out.push_str("# HELP nesca_http_request_duration_seconds Time to answer a public HTTP request.\n# TYPE nesca_http_request_duration_seconds histogram\n");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "nesca_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.latency.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "nesca_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nnesca_http_request_duration_seconds_sum {}\nnesca_http_request_duration_seconds_count {count}",
            self.latency.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP nesca_crl_signing_errors_total CRL generations that failed.\n# TYPE nesca_crl_signing_errors_total counter\nnesca_crl_signing_errors_total {}",
            self.crl_signing_errors.load(Ordering::Relaxed)
        );
        out.push_str("# HELP nesca_crl_age_seconds Seconds since thisUpdate of the latest published CRL.\n# TYPE nesca_crl_age_seconds gauge\n");
        for ((ca, kind), this_update) in self
            .crl_this_update
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "nesca_crl_age_seconds{{ca=\"{ca}\",kind=\"{kind}\"}} {}",
                now - this_update
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = HttpMetrics::default();
        m.record(Route::of("/ocsp/MEUw"), 200, Duration::from_micros(700));
        m.record(Route::of("/crl/nes-ca.crl"), 404, Duration::from_millis(3));
        m.crl_signing_error();
        m.crl_published("nes-ca", "full", UnixTime::from_secs(1000));
        let mut text = String::new();
        m.render(1060, &mut text);
        assert!(text.contains("nesca_http_requests_total{route=\"ocsp\",status=\"200\"} 1"));
        assert!(text.contains("nesca_http_requests_total{route=\"crl\",status=\"404\"} 1"));
        assert!(text.contains("nesca_http_request_duration_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("nesca_http_request_duration_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("nesca_http_request_duration_seconds_count 2"));
        assert!(text.contains("nesca_crl_signing_errors_total 1"));
        assert!(text.contains("nesca_crl_age_seconds{ca=\"nes-ca\",kind=\"full\"} 60"));
    }
}
