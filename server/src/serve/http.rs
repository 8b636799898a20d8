//! The public HTTP endpoints besides OCSP: CRLs from the publication directory, CA
//! certificates, health and metrics.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::crl_header::validity_of;
use super::metrics::{HttpMetrics, Route};

/// Appends more metrics text (the OCSP responder's) to /metrics.
pub(super) type MetricsText = Arc<dyn Fn(&mut String) + Send + Sync>;
/// Checks what the endpoints depend on (the store), for /healthz.
pub(super) type HealthCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the public routes need.
pub(super) struct Public {
    /// Where CRLs are published.
    pub crl_dir: PathBuf,
    /// CA certificates by file name (`{id}.crt`), DER.
    pub ca_certs: HashMap<String, Vec<u8>>,
    pub metrics: Arc<HttpMetrics>,
    /// Extra metrics text (the OCSP responder's), appended to /metrics.
    pub extra_metrics: Option<MetricsText>,
    /// Health of what the endpoints depend on (the store), checked on /healthz.
    pub health: HealthCheck,
}

pub(super) fn router(public: Arc<Public>) -> Router {
    Router::new()
        .route("/crl/{file}", get(crl))
        .route("/ca/{file}", get(ca_cert))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(public)
}

/// Health and metrics only (the standalone OCSP responder).
pub(super) fn health_router(public: Arc<Public>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(public)
}

/// Counts every request by route and status and times it.
pub(super) async fn observe(
    State(m): State<Arc<HttpMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = Route::of(req.uri().path());
    let start = Instant::now();
    let response = next.run(req).await;
    m.record(route, response.status().as_u16(), start.elapsed());
    response
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// `{ca}.crl` and `{ca}-delta.crl` only: the name never reaches the file system otherwise.
fn crl_file_name(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".crl")?;
    let ok = !stem.is_empty()
        && stem.len() <= 80
        && stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    ok.then_some(name)
}

async fn crl(State(p): State<Arc<Public>>, Path(name): Path<String>) -> Response {
    let Some(name) = crl_file_name(&name) else {
        return not_found();
    };
    let path = p.crl_dir.join(name);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read published CRL");
            return (StatusCode::SERVICE_UNAVAILABLE, "CRL unavailable\n").into_response();
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pkix-crl"),
    );
    // Caching: until the CRL's nextUpdate, when a newer one is due at the latest.
    if let Some((this_update, next_update)) = validity_of(&bytes) {
        let now = ca_core::UnixTime::from_system(std::time::SystemTime::now());
        let max_age = next_update.secs_since(now).max(0);
        let cache = format!("public, max-age={max_age}, no-transform, must-revalidate");
        if let Ok(v) = HeaderValue::from_str(&cache) {
            headers.insert(header::CACHE_CONTROL, v);
        }
        for (name, t) in [
            (header::LAST_MODIFIED, this_update),
            (header::EXPIRES, next_update),
        ] {
            if let Some(v) = http_date(t.secs()).and_then(|d| HeaderValue::from_str(&d).ok()) {
                headers.insert(name, v);
            }
        }
        if let Ok(v) =
            HeaderValue::from_str(&format!("\"{:x}-{:x}\"", this_update.secs(), bytes.len()))
        {
            headers.insert(header::ETAG, v);
        }
    }
    (headers, bytes).into_response()
}

async fn ca_cert(State(p): State<Arc<Public>>, Path(name): Path<String>) -> Response {
    match p.ca_certs.get(&name) {
        Some(der) => (
            [
                (header::CONTENT_TYPE, "application/pkix-cert"),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            der.clone(),
        )
            .into_response(),
        None => not_found(),
    }
}

async fn healthz(State(p): State<Arc<Public>>) -> Response {
    let health = p.health.clone();
    match tokio::task::spawn_blocking(move || health()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(e)) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {e}\n")).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n").into_response(),
    }
}

async fn metrics(State(p): State<Arc<Public>>) -> Response {
    let mut text = String::new();
    let now = ca_core::clock::unix_seconds(std::time::SystemTime::now());
    p.metrics.render(now, &mut text);
    if let Some(extra) = &p.extra_metrics {
        extra(&mut text);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// RFC 9110 HTTP-date (IMF-fixdate).
pub(super) fn http_date(unix: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&f).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_crl_names_reach_the_file_system() {
        assert_eq!(crl_file_name("nes-ca.crl"), Some("nes-ca.crl"));
        assert_eq!(crl_file_name("nes-ca-delta.crl"), Some("nes-ca-delta.crl"));
        for bad in [
            "../x.crl",
            ".crl",
            "nes-ca.der",
            "a/b.crl",
            "NES.crl",
            "..crl",
        ] {
            assert_eq!(crl_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date(0).as_deref(),
            Some("Thu, 01 Jan 1970 00:00:00 GMT")
        );
        assert_eq!(
            http_date(1_795_305_600).as_deref(),
            Some("Sun, 22 Nov 2026 00:00:00 GMT")
        );
    }
}
