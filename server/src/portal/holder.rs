//! The holder's pages: sign-in with the T.C. Kimlik No and security word, then the SMS code;
//! the certificate list with its actions (suspend, release, revoke after a confirmation with a
//! reason); the security word change; sign-out. The holder is the principal of every action,
//! proven by the security word and the SMS code (`ra::portal`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use ca_core::lifecycle::{LifecycleAction, RevocationReason};
use ca_core::store::CertRecord;
use ca_core::{Serial, Tckn};
use nesca_ra::portal::HolderSignedIn;
use nesca_ra::RaError;
use secrecy::SecretString;

use super::html::{self, esc};
use super::{cookie, forbidden, source, unavailable, Form, Html, Portal};

/// The holder's session cookie.
const SESSION_COOKIE: &str = "__Host-nesca_holder";
const SIGN_OUT: &str = "/sertifika/cikis";

pub(super) fn routes() -> Router<Arc<Portal>> {
    Router::new()
        .route("/sertifika", get(start))
        .route("/sertifika/giris", axum::routing::post(sign_in))
        .route("/sertifika/kod", axum::routing::post(confirm_code))
        .route("/sertifika/islem", axum::routing::post(act))
        .route("/sertifika/iptal", get(revoke_page).post(revoke))
        .route(
            "/sertifika/guvenlik-sozcugu",
            get(word_page).post(change_word),
        )
        .route(SIGN_OUT, get(sign_out))
}

/// What every refused sign-in shows: the same for every reason, with where to go instead.
const SIGN_IN_REFUSED: &str = "T.C. Kimlik No veya güvenlik sözcüğü hatalı ya da çok sayıda denemeden sonra giriş geçici olarak kapalı. Güvenlik sözcüğünüz veya cep telefonunuz kayıtlı değilse kimliğinizle kayıt merkezine ya da başvurduğunuz kanala (KEC, kimlik doğrulama merkezi) başvurunuz.";
const CODE_REFUSED: &str = "SMS onay kodu hatalı ya da süresi dolmuş. Üç hatalı denemeden sonra yeniden giriş yapmanız gerekir.";

fn sign_in_page(h: Html, tckn: &str, error: Option<&str>) -> Response {
    let mut body = String::new();
    if let Some(e) = error {
        body.push_str(&html::alert(e));
    }
    body.push_str(&html::form(
        "/sertifika/giris",
        h.csrf(),
        &format!(
            "{}{}",
            html::input(
                "tckn",
                "T.C. Kimlik No",
                "text",
                &format!(
                    r#"inputmode="numeric" autocomplete="username" maxlength="11" required value="{}""#,
                    esc(tckn)
                ),
                error.map(|_| "Bilgilerinizi kontrol edin."),
            ),
            html::input(
                "security_word",
                "Güvenlik Sözcüğü",
                "password",
                r#"autocomplete="current-password" maxlength="64" required"#,
                None,
            ),
        ),
        &html::button("Devam", None),
    ));
    h.page("Sertifika İşlemleri — Giriş", None, &body)
}

fn code_page(h: Html, error: Option<&str>) -> Response {
    let body = format!(
        "{}<p>Kayıtlı cep telefonunuza bir SMS onay kodu gönderildi.</p>{}",
        html::notice("Güvenlik sözcüğünüz doğrulandı."),
        html::form(
            "/sertifika/kod",
            h.csrf(),
            &html::input(
                "code",
                "SMS Onay Kodu",
                "text",
                r#"inputmode="numeric" autocomplete="one-time-code" maxlength="6" required"#,
                error,
            ),
            &html::button("Giriş", None),
        )
    );
    h.page("SMS Onay Kodu", Some(SIGN_OUT), &body)
}

/// The holder signed in by the request's cookie, if any.
fn signed_in(p: &Portal, headers: &HeaderMap) -> Result<Option<HolderSignedIn>, RaError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    match p.holders.session(&token) {
        Ok(h) => Ok(Some(h)),
        Err(RaError::Unauthenticated { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn start(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    let h = Html::new(&headers);
    match signed_in(&p, &headers) {
        Ok(Some(holder)) => return list_page(&p, h, &holder, None),
        Ok(None) => {}
        Err(e) => return unavailable(&headers, &e),
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        match p.holders.awaiting_code(&token) {
            Ok(true) => return code_page(h, None),
            Ok(false) => {}
            Err(e) => return unavailable(&headers, &e),
        }
    }
    sign_in_page(h, "", None)
}

async fn sign_in(
    State(p): State<Arc<Portal>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = Form::parse(&headers, &body) else {
        return forbidden(&headers);
    };
    let h = Html::new(&headers);
    let typed = form.get("tckn").trim().to_owned();
    // A malformed number is refused as an unknown one is: the form says nothing more.
    let Ok(tckn) = Tckn::parse(&typed) else {
        return sign_in_page(h, &typed, Some(SIGN_IN_REFUSED));
    };
    let word = SecretString::from(form.get("security_word").to_owned());
    let src = source(peer);
    let now = p.clock.now_unix();
    let result = tokio::task::spawn_blocking(move || p.holders.sign_in(&tckn, &word, &src)).await;
    match result {
        Ok(Ok(challenge)) => {
            let max_age = (challenge.expires_at.secs() - now.secs()).max(0);
            h.cookie(
                SESSION_COOKIE,
                secrecy::ExposeSecret::expose_secret(&challenge.token),
                max_age,
            )
            .see_other("/sertifika")
        }
        Ok(Err(RaError::Unauthenticated { .. })) => sign_in_page(h, &typed, Some(SIGN_IN_REFUSED)),
        Ok(Err(e)) => unavailable(&headers, &e),
        Err(e) => unavailable(&headers, &e),
    }
}

async fn confirm_code(
    State(p): State<Arc<Portal>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = Form::parse(&headers, &body) else {
        return forbidden(&headers);
    };
    let h = Html::new(&headers);
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return sign_in_page(h, "", Some(CODE_REFUSED));
    };
    let code = SecretString::from(form.get("code").trim().to_owned());
    let src = source(peer);
    let p2 = p.clone();
    let result =
        tokio::task::spawn_blocking(move || p2.holders.confirm_code(&token, &code, &src)).await;
    match result {
        Ok(Ok(_)) => h.see_other("/sertifika"),
        Ok(Err(RaError::Unauthenticated { .. })) => {
            // Still awaiting (a wrong code): the code page again; ended: sign in again.
            let awaiting = cookie(&headers, SESSION_COOKIE)
                .map(|t| p.holders.awaiting_code(&t))
                .transpose();
            match awaiting {
                Ok(Some(true)) => code_page(h, Some(CODE_REFUSED)),
                Ok(_) => sign_in_page(h, "", Some(CODE_REFUSED)),
                Err(e) => unavailable(&headers, &e),
            }
        }
        Ok(Err(e)) => unavailable(&headers, &e),
        Err(e) => unavailable(&headers, &e),
    }
}

/// A status as the holder reads it.
fn status_text(c: &CertRecord) -> &'static str {
    nesca_ra::notices::status_words(c.status.as_str()).unwrap_or("Bilinmiyor")
}

fn list_page(p: &Portal, h: Html, holder: &HolderSignedIn, message: Option<&str>) -> Response {
    let certs = match p.holders.certificates(&holder.tckn) {
        Ok(c) => c,
        Err(e) => return h.unavailable(&e),
    };
    let now = p.clock.now_unix();
    let mut body = String::new();
    if let Some(m) = message {
        body.push_str(m);
    }
    body.push_str(r#"<p><a href="/sertifika/guvenlik-sozcugu">Güvenlik Sözcüğü Değiştir</a></p>"#);
    if certs.is_empty() {
        body.push_str("<p>Adınıza kayıtlı sertifika yok.</p>");
    } else {
        body.push_str("<table><caption>Sertifikalarım</caption><thead><tr><th scope=\"col\">Seri No</th><th scope=\"col\">Durum</th><th scope=\"col\">Geçerlilik Sonu</th><th scope=\"col\">İşlemler</th></tr></thead><tbody>");
        for c in &certs {
            let serial = c.serial.to_hex();
            let live = ca_core::lifecycle::is_live(c.status, c.not_after, now);
            let mut actions = String::new();
            if live {
                let button = if c.status.as_str() == "suspended" {
                    html::button("Askıdan İndir", Some(("action", "release")))
                } else {
                    html::button("Askıya Al", Some(("action", "suspend")))
                };
                actions.push_str(&html::form(
                    "/sertifika/islem",
                    h.csrf(),
                    &format!(r#"<input type="hidden" name="serial" value="{serial}">"#),
                    &button,
                ));
                actions.push_str(&format!(
                    r#"<form method="get" action="/sertifika/iptal"><input type="hidden" name="seri" value="{serial}">{}</form>"#,
                    html::button("İptal Et", None)
                ));
            }
            body.push_str(&format!(
                "<tr><td><code>{serial}</code></td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
                status_text(c),
                esc(&ca_core::rfc3339(c.not_after)),
            ));
        }
        body.push_str("</tbody></table>");
    }
    h.page("Sertifikalarım", Some(SIGN_OUT), &body)
}

/// The refusal of an action, in the holder's words.
fn refusal_text(e: &RaError) -> String {
    match e {
        RaError::Invalid { rule, .. }
        | RaError::Conflict { rule, .. }
        | RaError::NotFound { rule, .. }
        | RaError::Refused { rule, .. } => format!("İşlem yapılamadı: {rule}"),
        _ => "İşlem yapılamadı.".to_owned(),
    }
}

/// Runs `work` for the signed-in holder of the request, or answers the sign-in page.
async fn as_holder(
    p: Arc<Portal>,
    headers: &HeaderMap,
    work: impl FnOnce(Arc<Portal>, Html, HolderSignedIn) -> Response + Send + 'static,
) -> Response {
    let h = Html::new(headers);
    let headers2 = headers.clone();
    let result = tokio::task::spawn_blocking(move || match signed_in(&p, &headers2) {
        Ok(Some(holder)) => work(p, h, holder),
        Ok(None) => sign_in_page(h, "", None),
        Err(e) => unavailable(&headers2, &e),
    })
    .await;
    result.unwrap_or_else(|e| unavailable(headers, &e))
}

fn parse_serial(s: &str) -> Option<Serial> {
    Serial::parse_hex(s.trim()).ok()
}

async fn act(State(p): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(form) = Form::parse(&headers, &body) else {
        return forbidden(&headers);
    };
    let serial = parse_serial(form.get("serial"));
    let action = match form.get("action") {
        "suspend" => Some(LifecycleAction::Suspend),
        "release" => Some(LifecycleAction::Release),
        _ => None,
    };
    as_holder(p, &headers, move |p, h, holder| {
        let (Some(serial), Some(action)) = (serial, action) else {
            return list_page(
                &p,
                h,
                &holder,
                Some(&html::alert("İşlem yapılamadı: geçersiz istek.")),
            );
        };
        let message = match p.holders.act(&holder, &serial, action) {
            Ok(_) => html::notice(match action {
                LifecycleAction::Suspend => "Sertifikanız askıya alındı.",
                _ => "Sertifikanız askıdan indirildi.",
            }),
            Err(
                e @ (RaError::Invalid { .. }
                | RaError::Conflict { .. }
                | RaError::NotFound { .. }
                | RaError::Refused { .. }),
            ) => html::alert(&refusal_text(&e)),
            Err(e) => return h.unavailable(&e),
        };
        list_page(&p, h, &holder, Some(&message))
    })
    .await
}

/// The reasons a holder may give, in Turkish (RFC 5280 §5.3.1 names as values; "" is
/// unspecified, written without a reasonCode).
const REASONS: [(&str, &str); 6] = [
    ("", "Belirtilmemiş"),
    ("keyCompromise", "Anahtar Güvenliğini Yitirdi"),
    ("affiliationChanged", "Bilgilerde Değişiklik"),
    ("superseded", "Yeni Sertifikayla Değiştirildi"),
    ("cessationOfOperation", "Kullanım Sona Erdi"),
    ("privilegeWithdrawn", "Yetki Geri Alındı"),
];

async fn revoke_page(State(p): State<Arc<Portal>>, headers: HeaderMap, uri: Uri) -> Response {
    let seri = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "seri")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let serial = parse_serial(&seri);
    as_holder(p, &headers, move |p, h, holder| {
        let Some(serial) = serial else {
            return list_page(&p, h, &holder, Some(&html::alert("İşlem yapılamadı: geçersiz seri numarası.")));
        };
        let hex = serial.to_hex();
        let body = format!(
            "<p><code>{hex}</code> seri numaralı sertifikanız iptal edilecek. İptal geri alınamaz.</p>{}<p><a href=\"/sertifika\">Vazgeç</a></p>",
            html::form(
                "/sertifika/iptal",
                h.csrf(),
                &format!(
                    r#"<input type="hidden" name="serial" value="{hex}">{}"#,
                    html::select("reason", "İptal Nedeni", &REASONS)
                ),
                &html::button("İptali Onayla", None),
            )
        );
        h.page("Sertifika İptali", Some(SIGN_OUT), &body)
    })
    .await
}

async fn revoke(State(p): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(form) = Form::parse(&headers, &body) else {
        return forbidden(&headers);
    };
    let serial = parse_serial(form.get("serial"));
    // Only the reasons the page offers (`REASONS`); anything else is no reason at all.
    let reason = match form.get("reason") {
        "" => Some(None),
        r if REASONS.iter().any(|(v, _)| *v == r) => r.parse::<RevocationReason>().ok().map(Some),
        _ => None,
    };
    as_holder(p, &headers, move |p, h, holder| {
        let (Some(serial), Some(reason)) = (serial, reason) else {
            return list_page(
                &p,
                h,
                &holder,
                Some(&html::alert("İşlem yapılamadı: geçersiz istek.")),
            );
        };
        let action = LifecycleAction::Revoke {
            reason,
            invalidity_date: None,
        };
        let message = match p.holders.act(&holder, &serial, action) {
            Ok(_) => html::notice("Sertifikanız iptal edildi."),
            Err(
                e @ (RaError::Invalid { .. }
                | RaError::Conflict { .. }
                | RaError::NotFound { .. }
                | RaError::Refused { .. }),
            ) => html::alert(&refusal_text(&e)),
            Err(e) => return h.unavailable(&e),
        };
        list_page(&p, h, &holder, Some(&message))
    })
    .await
}

fn word_form(h: Html, current_error: Option<&str>, new_error: Option<&str>) -> Response {
    let body = html::form(
        "/sertifika/guvenlik-sozcugu",
        h.csrf(),
        &format!(
            "{}{}",
            html::input(
                "current_security_word",
                "Mevcut Güvenlik Sözcüğü",
                "password",
                r#"autocomplete="current-password" maxlength="64" required"#,
                current_error,
            ),
            html::input(
                "new_security_word",
                "Yeni Güvenlik Sözcüğü",
                "password",
                r#"autocomplete="new-password" minlength="4" maxlength="64" required"#,
                new_error,
            ),
        ),
        &html::button("Kaydet", None),
    );
    let body = format!(
        "<p>Yeni güvenlik sözcüğü 4–64 harf ya da rakamdan oluşur (boşluksuz); tüm geçerli sertifikalarınız için kullanılır.</p>{body}<p><a href=\"/sertifika\">Sertifikalarım</a></p>"
    );
    h.page("Güvenlik Sözcüğü Değiştir", Some(SIGN_OUT), &body)
}

async fn word_page(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    as_holder(p, &headers, |_, h, _| word_form(h, None, None)).await
}

async fn change_word(
    State(p): State<Arc<Portal>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = Form::parse(&headers, &body) else {
        return forbidden(&headers);
    };
    let current = SecretString::from(form.get("current_security_word").to_owned());
    let new = SecretString::from(form.get("new_security_word").to_owned());
    let src = source(peer);
    as_holder(p, &headers, move |p, h, holder| {
        match p
            .holders
            .change_security_word(&holder, &current, &new, &src)
        {
            Ok(()) => list_page(
                &p,
                h,
                &holder,
                Some(&html::notice("Güvenlik sözcüğünüz değiştirildi.")),
            ),
            Err(RaError::Invalid { .. }) => {
                word_form(h, None, Some("4–64 harf ya da rakam olmalı (boşluksuz)."))
            }
            Err(RaError::Unauthenticated { .. }) => word_form(
                h,
                Some("Mevcut güvenlik sözcüğü hatalı ya da çok sayıda deneme yapıldı."),
                None,
            ),
            Err(e) => h.unavailable(&e),
        }
    })
    .await
}

async fn sign_out(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    let h = Html::new(&headers);
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let result = tokio::task::spawn_blocking(move || p.holders.sign_out(&token)).await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "portal sign-out not recorded");
        }
    }
    h.cookie(SESSION_COOKIE, "", 0).see_other("/")
}
