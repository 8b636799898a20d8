//! OCSP over HTTP (RFC 6960 Appendix A, RFC 5019 §5–6): `POST /ocsp` with the DER request as
//! body, `GET /ocsp/{base64 request}`. Every OCSP answer, error statuses included, is HTTP 200
//! with `application/ocsp-response`; other methods get 405 and other paths 404 (from axum).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, EXPIRES, IF_NONE_MATCH, LAST_MODIFIED,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::metrics::Outcome;
use crate::request::decode_get_path;
use crate::responder::{OcspAnswer, Responder, Step};

/// How long a client may take to send a POST body (a slow sender holds a connection).
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

const OCSP_RESPONSE: HeaderValue = HeaderValue::from_static("application/ocsp-response");
/// For answers that belong to one request (nonce) or report an error: not to be stored.
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// The caching headers of a signed response that do not change with time (RFC 5019 §6.2).
#[derive(Debug)]
pub(crate) struct HttpMeta {
    etag: HeaderValue,
    last_modified: HeaderValue,
    expires: HeaderValue,
}

impl HttpMeta {
    pub(crate) fn new(etag: &str, this_update: SystemTime, next_update: SystemTime) -> HttpMeta {
        let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
        HttpMeta {
            etag: value(etag),
            last_modified: value(&http_date(this_update)),
            expires: value(&http_date(next_update)),
        }
    }
}

/// IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(t: SystemTime) -> String {
    let secs = nesca_ca_types::clock::unix_seconds(t);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| d.format(&format).ok())
        .unwrap_or_default()
}

impl Responder {
    /// The OCSP routes: `POST /ocsp`, `GET /ocsp/{request}`, and POST or GET at `/ocsp/`.
    /// Merge it into the server's router (`Router::merge`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/ocsp", post(post_ocsp))
            .route("/ocsp/", get(get_ocsp).post(post_ocsp))
            .route("/ocsp/{*request}", get(get_ocsp).post(post_ocsp))
            .with_state(self.clone())
    }

    /// The cached answer for a GET path answered before, if it is still fresh.
    pub(crate) fn answer_known_path(&self, encoded: &str) -> Option<OcspAnswer> {
        if self.is_stale() {
            return None;
        }
        let key = self.paths.get(encoded)?;
        let entry = self.cache.get(&key)?;
        (self.clock.now() < entry.next_update()).then(|| OcspAnswer::cached(entry, key))
    }

    /// [`Responder::answer`] for async callers: the cache path runs here, store reads and
    /// signing on a blocking thread, at most `live_concurrency` at once.
    pub(crate) async fn answer_async(self: &Arc<Self>, der: &[u8]) -> OcspAnswer {
        let live = match self.prepare(der) {
            Step::Done(answer) => return answer,
            Step::Live(live) => live,
        };
        let permit = match tokio::time::timeout(
            self.config.live_wait,
            self.live_slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(p)) => p,
            _ => return OcspAnswer::try_later(),
        };
        let r = self.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = permit;
            r.complete(live)
        })
        .await
        .unwrap_or_else(|_| OcspAnswer::try_later())
    }
}

async fn post_ocsp(State(r): State<Arc<Responder>>, req: Request) -> Response {
    let start = Instant::now();
    let answer = match read_body(req, r.config.max_body).await {
        Some(body) => r.answer_async(&body).await,
        None => OcspAnswer::malformed(),
    };
    let outcome = answer.outcome;
    // POST responses are not cached by HTTP caches (RFC 9111 §2): no caching headers.
    let res = ocsp_response(answer.der, false);
    r.metrics.observe(outcome, start.elapsed());
    res
}

/// The body, if it is at most `max` octets and arrives in time.
async fn read_body(req: Request, max: usize) -> Option<bytes::Bytes> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return None;
    }
    tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(req.into_body(), max))
        .await
        .ok()?
        .ok()
}

async fn get_ocsp(State(r): State<Arc<Responder>>, req: Request) -> Response {
    let start = Instant::now();
    // The router matched `/ocsp/…`; when nested, axum has already taken the prefix off.
    let encoded = req.uri().path().strip_prefix("/ocsp/").unwrap_or("");
    let answer = match r.answer_known_path(encoded) {
        Some(answer) => answer,
        None => {
            let answer = match decode_get_path(encoded, r.config.max_body) {
                Ok(der) => r.answer_async(&der).await,
                Err(_) => OcspAnswer::malformed(),
            };
            if let Some(key) = answer.cache_key {
                r.paths.insert(encoded, key);
            }
            answer
        }
    };
    let (res, outcome) = get_response(&r, answer, req.headers());
    r.metrics.observe(outcome, start.elapsed());
    res
}

/// A GET answer with the RFC 5019 §6.2 caching headers where the response may be cached.
pub(crate) fn get_response(
    r: &Responder,
    answer: OcspAnswer,
    headers: &HeaderMap,
) -> (Response, Outcome) {
    let Some(signed) = answer.cacheable else {
        return (ocsp_response(answer.der, true), answer.outcome);
    };
    let now = r.clock.now();
    let max_age = signed
        .next_update()
        .duration_since(now)
        .unwrap_or(Duration::ZERO);
    let cache_control = match (r.config.max_age_cap, &r.capped_cache_control) {
        (Some(cap), Some(capped)) if max_age >= cap => capped.clone(),
        _ => cache_control(max_age.as_secs()),
    };
    let not_modified = headers
        .get(IF_NONE_MATCH)
        .is_some_and(|v| etag_matches(v.as_bytes(), signed.etag().as_bytes()));
    let (mut res, outcome) = if not_modified {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        (res, Outcome::NotModified)
    } else {
        let mut res = Response::new(Body::from(answer.der));
        res.headers_mut().insert(CONTENT_TYPE, OCSP_RESPONSE);
        (res, answer.outcome)
    };
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, cache_control);
    h.insert(ETAG, signed.http.etag.clone());
    h.insert(LAST_MODIFIED, signed.http.last_modified.clone());
    h.insert(EXPIRES, signed.http.expires.clone());
    (res, outcome)
}

/// RFC 5019 §6.2 `Cache-Control` for a response fresh for `max_age` more seconds.
pub(crate) fn cache_control(max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "max-age={max_age}, public, no-transform, must-revalidate"
    ))
    .unwrap_or(NO_STORE)
}

/// HTTP 200 with the DER OCSPResponse.
fn ocsp_response(der: bytes::Bytes, no_store: bool) -> Response {
    let mut res = Response::new(Body::from(der));
    res.headers_mut().insert(CONTENT_TYPE, OCSP_RESPONSE);
    if no_store {
        res.headers_mut().insert(CACHE_CONTROL, NO_STORE);
    }
    res
}

/// If-None-Match (RFC 9110 §13.1.2): `*` or a list of entity tags, weak comparison.
fn etag_matches(header: &[u8], etag: &[u8]) -> bool {
    header.split(|b| *b == b',').any(|candidate| {
        let c = candidate.trim_ascii();
        let c = c.strip_prefix(b"W/").unwrap_or(c);
        c == b"*" || c == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn if_none_match() {
        assert!(etag_matches(b"\"ab\"", b"\"ab\""));
        assert!(etag_matches(b"\"x\", W/\"ab\"", b"\"ab\""));
        assert!(etag_matches(b"*", b"\"ab\""));
        assert!(!etag_matches(b"\"abc\"", b"\"ab\""));
    }
}
