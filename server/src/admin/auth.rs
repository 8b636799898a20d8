//! Who calls the admin API: the operator certificate the TLS handshake verified, checked
//! again on every request (a disabled operator or a revoked certificate stops a kept-alive
//! connection at its next request), each request given an id and counted against its
//! operator certificate's rate limit. Handlers receive the [`OperatorActor`] this made; no
//! other code makes one from a request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use ca_core::{IssuerId, OperatorActor, OperatorRole, Serial};
use nesca_ra::operators::{OperatorRefusal, Operators};
use rand::RngCore;

use super::error::{ApiError, RequestId};
use crate::listener::mtls::{ClientChain, ClientCheck, ClientRefusal};

/// The admin listener admits the certificates of active operators.
pub(crate) struct OperatorCheck {
    pub(crate) operators: Operators,
    pub(crate) issuers: Vec<IssuerId>,
}

impl ClientCheck for OperatorCheck {
    fn check(&self, end_entity: &[u8]) -> Result<(), ClientRefusal> {
        self.operators
            .authenticate(end_entity, &self.issuers)
            .map(|_| ())
            .map_err(|why| match why {
                OperatorRefusal::Revoked => ClientRefusal::Revoked,
                other => ClientRefusal::Refused(other.reason()),
            })
    }
}

/// Requests per operator certificate per minute (a fixed window per certificate).
pub(crate) struct RateLimit {
    per_minute: u32,
    windows: Mutex<HashMap<Serial, (u64, u32)>>,
}

impl RateLimit {
    pub(crate) fn new(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `serial` at `now` (Unix seconds): `Err(seconds)` when over the
    /// limit, the seconds until the window ends.
    fn admit(&self, serial: Serial, now: u64) -> Result<(), u64> {
        let minute = now / 60;
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: windows of past minutes are dropped whenever the map grows.
        if w.len() > 10_000 {
            w.retain(|_, (m, _)| *m == minute);
        }
        let entry = w.entry(serial).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 <= self.per_minute {
            Ok(())
        } else {
            Err(60 - now % 60)
        }
    }
}

/// What the middleware needs.
pub(crate) struct Gate {
    pub(crate) check: Arc<OperatorCheck>,
    pub(crate) limit: RateLimit,
}

/// A fresh request id: 128 random bits, hex.
fn new_request_id() -> RequestId {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    RequestId(hex::encode(b))
}

/// The middleware: request id, operator authentication, rate limit; then the route with the
/// [`OperatorActor`] and the [`RequestId`] as extensions.
pub(crate) async fn gate(State(gate): State<Arc<Gate>>, mut req: Request, next: Next) -> Response {
    let id = new_request_id();
    if let Some(refusal) = refuse_before_authentication(&req) {
        let mut r = refusal.into_response_with(&id);
        if let Ok(v) = axum::http::HeaderValue::from_str(&id.0) {
            r.headers_mut().insert("x-request-id", v);
        }
        return r;
    }
    let end_entity = req
        .extensions()
        .get::<ClientChain>()
        .and_then(|c| c.0.first().cloned());
    let mut response = match end_entity {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate",
            None,
            "an operator certificate is required",
        )
        .into_response_with(&id),
        Some(cert) => {
            let check = gate.check.clone();
            let verdict = tokio::task::spawn_blocking(move || {
                check.operators.authenticate(&cert, &check.issuers)
            })
            .await
            .unwrap_or(Err(OperatorRefusal::Unavailable));
            match verdict {
                Err(why) => {
                    tracing::info!(request_id = %id.0, reason = why.reason(), "admin request refused: client certificate");
                    let status = match why {
                        OperatorRefusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                        _ => StatusCode::FORBIDDEN,
                    };
                    ApiError::new(
                        status,
                        "client_certificate",
                        None,
                        format!("client certificate: {}", why.reason()),
                    )
                    .into_response_with(&id)
                }
                Ok(actor) => {
                    let now = crate::wiring::clock().now_unix().secs().max(0) as u64;
                    if let Err(wait) = gate.limit.admit(actor.serial, now) {
                        tracing::info!(request_id = %id.0, operator = %actor.name, "admin request refused: rate limit");
                        let mut e = ApiError::new(
                            StatusCode::TOO_MANY_REQUESTS,
                            "rate_limited",
                            None,
                            "too many requests from this operator certificate; try again in a minute",
                        );
                        e.retry_after = Some(wait);
                        e.into_response_with(&id)
                    } else {
                        tracing::info!(
                            request_id = %id.0,
                            operator = %actor.name,
                            role = %actor.role,
                            method = %req.method(),
                            path = %req.uri().path(),
                            "admin request"
                        );
                        req.extensions_mut().insert(actor);
                        req.extensions_mut().insert(id.clone());
                        next.run(req).await
                    }
                }
            }
        }
    };
    if let Ok(v) = axum::http::HeaderValue::from_str(&id.0) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// What is refused whoever sends it:
/// - a request a web page made (`Origin`, or `Sec-Fetch-Site` other than `none`): an
///   operator's browser holding their certificate must not be made to act by another site
///   (no API client sends these);
/// - a change (POST) with a query string: no change takes parameters there, and one ignored
///   would do something else than asked (`POST /admin/v1/crl?delta=true` is not a delta).
fn refuse_before_authentication(req: &Request) -> Option<ApiError> {
    let h = req.headers();
    let fetch_site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if h.contains_key("origin") || fetch_site.is_some_and(|s| s != "none") {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            Some("origin"),
            "requests made by web pages are refused",
        ));
    }
    if req.method() == axum::http::Method::POST && req.uri().query().is_some() {
        return Some(ApiError::invalid(
            "query",
            "a change takes no query parameters: give them in the JSON body",
        ));
    }
    None
}

/// Refuses `actor` unless their role is one of `roles` (403 `forbidden`).
pub(crate) fn allow(actor: &OperatorActor, roles: &[OperatorRole]) -> Result<(), ApiError> {
    if roles.contains(&actor.role) {
        return Ok(());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Err(ApiError::forbidden(format!(
        "this endpoint is for {}; you are {}",
        names.join(", "),
        actor.role
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_counts_per_certificate_and_minute() {
        let limit = RateLimit::new(2);
        let (a, b) = (Serial::random(), Serial::random());
        assert_eq!(limit.admit(a, 60), Ok(()));
        assert_eq!(limit.admit(a, 61), Ok(()));
        assert_eq!(limit.admit(a, 62), Err(58));
        assert_eq!(limit.admit(b, 62), Ok(()));
        assert_eq!(limit.admit(a, 120), Ok(()));
    }
}
