//! The portal (`[portal] listen`, docs/portal.md): server-rendered Turkish pages over TLS for
//! two kinds of people — holders, who sign in with their security word and an SMS code and
//! manage their certificates (`holder.rs`), and applicants invited by an institution's list,
//! who sign in with the e-mailed access password and complete their application
//! (`applicant.rs`). The transport parses forms and cookies and names the principal; the
//! rules are the registration authority's (`ra::portal`, `ra::enrollment`), the same services
//! the command line, the channels and the admin API call.
//!
//! Cookies are `__Host-` prefixed, HttpOnly, Secure and SameSite=Strict; every form carries a
//! CSRF token that must equal the `__Host-nesca_csrf` cookie (double submit, compared in
//! constant time); every page is sent with a strict Content-Security-Policy and no-store.

mod applicant;
mod checks;
mod holder;
mod html;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ca_core::store::{SignInSource, Store};
use nesca_ra::enrollment::Enrollments;
use nesca_ra::portal::HolderPortal;

use crate::config::Loaded;
use crate::error::Result;
use crate::serve::TlsListener;
use crate::wiring;

/// The largest form the portal reads.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// The CSRF cookie (double submit).
const CSRF_COOKIE: &str = "__Host-nesca_csrf";

/// What the pages work with.
pub(crate) struct Portal {
    holders: HolderPortal,
    enrollments: Enrollments,
    /// The threads of the checks that cost an argon2 verification: see [`blocking`].
    checks: checks::CheckPool,
}

/// At most this many argon2 checks run at once, whatever the number of cores.
const MAX_CHECKS: usize = 8;

/// The portal's listener, when `[portal] listen` is set.
pub(crate) fn listener(cfg: &Loaded, store: Arc<dyn Store>) -> Result<Option<TlsListener>> {
    let Some(listen) = cfg.raw.portal.listen.clone() else {
        return Ok(None);
    };
    let acceptor = crate::listener::mtls::server_acceptor(
        "portal",
        (
            &cfg.path(&cfg.raw.portal.tls_cert),
            &cfg.path(&cfg.raw.portal.tls_key),
        ),
    )?;
    let clock = wiring::clock();
    let checks = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, MAX_CHECKS);
    let portal = Arc::new(Portal {
        holders: HolderPortal::new(store.clone(), clock.clone()),
        enrollments: Enrollments::new(store, clock),
        checks: checks::CheckPool::start(checks).map_err(|e| {
            crate::error::CliError::io(
                "cannot start",
                std::path::Path::new("the portal's check threads"),
            )(e)
        })?,
    });
    Ok(Some(TlsListener {
        field: "portal.listen",
        what: "portal",
        tls: crate::serve::TlsKind::ServerOnly,
        listen,
        acceptor,
        app: router(portal),
    }))
}

fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .route("/", get(home))
        .merge(holder::routes())
        .merge(applicant::routes())
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(portal)
}

async fn home(headers: HeaderMap) -> Response {
    let body = r#"<p>Nitelikli elektronik sertifikanızla ilgili işlemler için:</p>
<ul><li><a href="/sertifika">Sertifika İşlemleri</a> — sertifikalarınızı görün, askıya alın, askıdan indirin, iptal edin; güvenlik sözcüğünüzü değiştirin.</li>
<li><a href="/basvuru">Başvuru</a> — kurumunuzun listesiyle davet edildiyseniz başvurunuzu tamamlayın.</li></ul>"#;
    Html::new(&headers).page("nesca Sertifika Portalı", None, body)
}

async fn not_found(headers: HeaderMap) -> Response {
    Html::new(&headers).error_page(
        StatusCode::NOT_FOUND,
        "Sayfa bulunamadı",
        r#"<p>Aradığınız sayfa yok. <a href="/">Ana sayfaya dönün.</a></p>"#,
    )
}

/// Headers every answer carries: no script, no framing, no caching, no referrer.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

/// A cookie's value from the request, if sent (the first of that name).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A `Set-Cookie` value: `__Host-` cookies are Secure, host-only and for the whole site;
/// `max_age` 0 deletes it.
fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The answer builder of a request: it knows the CSRF token forms must carry, and sets the
/// CSRF cookie when the browser has none yet.
pub(super) struct Html {
    csrf: String,
    new_csrf: bool,
    cookies: Vec<HeaderValue>,
}

impl Html {
    pub(super) fn new(headers: &HeaderMap) -> Html {
        match cookie(headers, CSRF_COOKIE) {
            Some(csrf) => Html {
                csrf,
                new_csrf: false,
                cookies: Vec::new(),
            },
            None => {
                use rand::RngCore as _;
                let mut b = [0u8; 24];
                rand::rngs::OsRng.fill_bytes(&mut b);
                Html {
                    csrf: hex::encode(b),
                    new_csrf: true,
                    cookies: Vec::new(),
                }
            }
        }
    }

    /// The token this answer's forms carry.
    pub(super) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Sets a cookie with the answer.
    pub(super) fn cookie(mut self, name: &str, value: &str, max_age: i64) -> Html {
        self.cookies.push(set_cookie(name, value, max_age));
        self
    }

    fn finish(mut self, mut r: Response) -> Response {
        if self.new_csrf {
            self.cookies
                .push(set_cookie(CSRF_COOKIE, &self.csrf, 86_400));
        }
        for c in self.cookies {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
        r
    }

    /// A page.
    pub(super) fn page(self, title: &str, signed_in: Option<&str>, body: &str) -> Response {
        let r = (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html::page(title, signed_in, body),
        )
            .into_response();
        self.finish(r)
    }

    /// A redirect after a POST (303: the browser GETs `to`).
    pub(super) fn see_other(self, to: &'static str) -> Response {
        let r = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
        self.finish(r)
    }

    /// A page answering an error `status`, for nobody signed in.
    fn error_page(self, status: StatusCode, title: &str, body: &str) -> Response {
        let mut r = self.page(title, None, body);
        *r.status_mut() = status;
        r
    }

    /// The answer when the store or another service failed: 503, and nothing about why (the
    /// log has it).
    pub(super) fn unavailable(self, e: &dyn std::fmt::Display) -> Response {
        tracing::error!(error = %e, "portal request failed");
        self.error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Hizmet geçici olarak kullanılamıyor",
            "<p>İşleminiz şu anda yapılamadı. Lütfen biraz sonra yeniden deneyin.</p>",
        )
    }

    /// A file to save.
    pub(super) fn download(
        self,
        name: &str,
        content_type: &'static str,
        bytes: Vec<u8>,
    ) -> Response {
        let r = (
            [
                (header::CONTENT_TYPE, content_type.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            bytes,
        )
            .into_response();
        self.finish(r)
    }
}

/// A submitted form: its fields, after the CSRF token was checked against the cookie.
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    /// Parses an `application/x-www-form-urlencoded` body; `None` when the CSRF token is
    /// missing or is not the cookie's (the request is then refused as forbidden).
    pub(super) fn parse(headers: &HeaderMap, body: &Bytes) -> Option<Form> {
        let fields: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let sent = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v)?;
        let expected = cookie(headers, CSRF_COOKIE)?;
        let same = sent.len() == expected.len()
            && sent
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then_some(Form(fields))
    }

    /// A field's value ("" when absent).
    pub(super) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The rule of a security word in the person's words, from the registration authority's
/// bounds.
pub(super) fn security_word_rule() -> String {
    use nesca_ra::enrollment::{MAX_SECURITY_WORD_CHARS, MIN_SECURITY_WORD_CHARS};
    format!(
        "Güvenlik sözcüğü {MIN_SECURITY_WORD_CHARS}–{MAX_SECURITY_WORD_CHARS} harf ya da rakamdan oluşur (boşluksuz)"
    )
}

/// What a request's blocking work costs: a store read or write, or also an argon2 check for
/// the source named.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Cost {
    Store,
    Check(SignInSource),
}

/// Runs a request's blocking work (the store; argon2) off the async runtime. Work that checks
/// a password, word or code runs on one of the portal's few check threads, a source holding at
/// most half of them; when none is free the answer is 503 at once, so that a flood of sign-ins
/// (each check allocating about 19 MiB) cannot take the server's memory or the threads the
/// other listeners use, and one address cannot take every check thread.
pub(super) async fn blocking(
    p: &Arc<Portal>,
    headers: &HeaderMap,
    cost: Cost,
    work: impl FnOnce(Arc<Portal>, Html) -> Response + Send + 'static,
) -> Response {
    let (portal, h) = (p.clone(), Html::new(headers));
    match cost {
        Cost::Store => tokio::task::spawn_blocking(move || work(portal, h))
            .await
            .unwrap_or_else(|e| unavailable(headers, &e)),
        Cost::Check(source) => match p
            .checks
            .try_run(&source.to_string(), move || work(portal, h))
            .await
        {
            Ok(r) => r,
            Err(checks::NotRun::Busy) => busy(headers),
            Err(checks::NotRun::Failed) => {
                unavailable(headers, &"the check failed (see the log above)")
            }
        },
    }
}

/// Signs the person of `cookie_name`'s session out: `end` ends the session in the store (a
/// failure is logged, the cookie cleared all the same), then home.
pub(super) async fn sign_out(
    p: &Arc<Portal>,
    headers: &HeaderMap,
    cookie_name: &'static str,
    end: fn(&Portal, &str) -> nesca_ra::Result<()>,
) -> Response {
    let token = cookie(headers, cookie_name);
    blocking(p, headers, Cost::Store, move |p, h| {
        if let Some(token) = token {
            if let Err(e) = end(&p, &token) {
                tracing::warn!(error = %e, "portal sign-out not recorded");
            }
        }
        h.cookie(cookie_name, "", 0).see_other("/")
    })
    .await
}

/// The answer when every check permit is taken.
fn busy(headers: &HeaderMap) -> Response {
    let mut r = Html::new(headers).error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sistem yoğun",
        "<p>Şu anda çok sayıda istek var. Lütfen birkaç saniye sonra yeniden deneyin.</p>",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// The answer to a form whose CSRF token is missing or wrong.
fn forbidden(headers: &HeaderMap) -> Response {
    Html::new(headers).error_page(
        StatusCode::FORBIDDEN,
        "İstek reddedildi",
        r#"<p>Form süresi dolmuş ya da başka bir siteden gönderilmiş. <a href="/">Ana sayfadan</a> yeniden deneyin.</p>"#,
    )
}

/// The answer when the store or another service failed (see [`Html::unavailable`]).
pub(super) fn unavailable(headers: &HeaderMap, e: &dyn std::fmt::Display) -> Response {
    Html::new(headers).unavailable(e)
}

/// Where a request comes from, for the attempt limits (IPv6 counted per /64): the TCP peer
/// the listener recorded with the connection.
pub(super) struct Source(pub(super) SignInSource);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Source, Response> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Source(SignInSource::address(peer.ip())))
    }
}

/// A form is read only with its CSRF token ([`Form::parse`]); without it, or with another,
/// the request is answered 403 and reaches no handler. A body over the limit is 413.
impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Form, Response> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Form::parse(&headers, &body).ok_or_else(|| forbidden(&headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    #[test]
    fn a_form_is_read_only_with_the_cookies_csrf_token() {
        let h = headers("a=b; __Host-nesca_csrf=abc123");
        let ok = Form::parse(&h, &Bytes::from_static(b"csrf=abc123&tckn=1%202")).unwrap();
        assert_eq!(ok.get("tckn"), "1 2");
        assert_eq!(ok.get("missing"), "");
        assert!(Form::parse(&h, &Bytes::from_static(b"csrf=abc124")).is_none());
        assert!(Form::parse(&h, &Bytes::from_static(b"tckn=1")).is_none());
        assert!(Form::parse(&headers("x=y"), &Bytes::from_static(b"csrf=")).is_none());
    }

    #[test]
    fn cookies_are_host_only_secure_and_strict() {
        let c = set_cookie("__Host-nesca_holder", "t", 60);
        let c = c.to_str().unwrap();
        for part in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!c.contains("Domain"));
    }
}
