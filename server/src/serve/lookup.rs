//! The public certificate lookup (sertifika sorgulama): a relying party fetches a certificate
//! by serial, or lists a person's certificates by T.C. Kimlik No. Publication is opt-in: only
//! certificates whose holder agreed on the application form are shown; to the lookup the
//! others do not exist (the registration authority's [`CertificateLookup`] decides).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use ca_core::store::{LookupCandidate, Store};
use ca_core::{Serial, Tckn};
use nesca_ra::enrollment::lookup::CertificateLookup;
use serde_json::json;

use super::rate_limit::PerClient;

/// The lookup routes. Lookups by T.C. Kimlik No are limited to `per_minute` per client
/// address ([`PerClient`]); by serial (20 random bytes, nothing to enumerate) they are not.
pub(super) fn router(store: Arc<dyn Store>, per_minute: u32) -> Router {
    Router::new()
        .route("/certificates", get(search))
        .route("/certificates/{serial}", get(by_serial))
        .with_state(Arc::new(Lookup {
            lookup: Arc::new(CertificateLookup::new(store)),
            limit: PerClient::new(per_minute),
        }))
}

/// The lookup and its rate limit.
pub(super) struct Lookup {
    lookup: Arc<CertificateLookup>,
    limit: PerClient,
}

fn refused(status: StatusCode, field: &str, rule: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": { "field": field, "rule": rule } }).to_string(),
    )
        .into_response()
}

async fn read(
    lookup: Arc<CertificateLookup>,
    serial: Option<Serial>,
    tckn: Option<Tckn>,
) -> Result<Vec<LookupCandidate>, Response> {
    let found = tokio::task::spawn_blocking(move || match (serial, tckn) {
        (Some(serial), _) => lookup.by_serial(&serial).map(|c| c.into_iter().collect()),
        (None, Some(tckn)) => lookup.by_holder(&tckn),
        (None, None) => Ok(Vec::new()),
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    found.map_err(|error| {
        tracing::warn!(%error, "certificate lookup failed");
        refused(StatusCode::SERVICE_UNAVAILABLE, "store", "try again later")
    })
}

/// `GET /certificates/{serial}` (hex): the certificate, DER.
async fn by_serial(State(state): State<Arc<Lookup>>, Path(serial): Path<String>) -> Response {
    let lookup = state.lookup.clone();
    let Ok(serial) = Serial::parse_hex(&serial) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "serial",
            "must be a hexadecimal serial number",
        );
    };
    match read(lookup, Some(serial), None).await {
        Ok(found) => match found.into_iter().next() {
            Some(c) => (
                [(header::CONTENT_TYPE, "application/pkix-cert")],
                c.cert_der,
            )
                .into_response(),
            None => refused(
                StatusCode::NOT_FOUND,
                "serial",
                "no published certificate with this serial",
            ),
        },
        Err(r) => r,
    }
}

/// `GET /certificates?tckn=…`: the person's published certificates, newest first.
async fn search(
    State(state): State<Arc<Lookup>>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    RawQuery(q): RawQuery,
) -> Response {
    // Every listener nesca serves this on hands the client's address in; without one (a test
    // router) all callers share one bucket.
    let ip = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0 .0.ip());
    if let Err(wait) = state.limit.admit(ip, Instant::now()) {
        let secs = wait.as_secs().max(1);
        let mut r = refused(
            StatusCode::TOO_MANY_REQUESTS,
            "tckn",
            &format!("too many lookups from this address; try again in {secs} s"),
        );
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let lookup = state.lookup.clone();
    let tckn = q
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("tckn="))
        .and_then(|t| Tckn::parse(t).ok());
    let Some(tckn) = tckn else {
        return refused(
            StatusCode::BAD_REQUEST,
            "tckn",
            "give a valid T.C. Kimlik No (?tckn=…)",
        );
    };
    match read(lookup, None, Some(tckn)).await {
        Ok(found) => {
            let list: Vec<_> = found
                .iter()
                .map(|c| {
                    json!({
                        "serial": c.serial.to_hex(),
                        "subject": c.subject,
                        "status": c.status.as_str(),
                        "not_before": c.not_before.secs(),
                        "not_after": c.not_after.secs(),
                        "href": format!("/certificates/{}", c.serial.to_hex()),
                    })
                })
                .collect();
            (
                [(header::CONTENT_TYPE, "application/json")],
                json!({ "certificates": list }).to_string(),
            )
                .into_response()
        }
        Err(r) => r,
    }
}
