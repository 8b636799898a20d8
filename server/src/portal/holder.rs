//! The holder's pages: sign-in with the T.C. Kimlik No and security word, then the SMS code;
//! the certificate list with the actions the registration authority allows on each (suspend,
//! release, revoke after a confirmation with a reason); the security word change; sign-out.
//! The holder is the principal of every action, proven by the security word and the SMS code
//! (`ra::portal`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use ca_core::lifecycle::{LifecycleAction, RevocationReason};
use ca_core::{Serial, Tckn};
use nesca_ra::portal::{
    HolderCertificate, HolderCertificateState, HolderSignedIn, CODES_PER_WINDOW,
    HOLDER_REVOCATION_REASONS, MAX_CODE_FAILURES, SESSION_SECONDS,
};
use nesca_ra::RaError;
use secrecy::{ExposeSecret as _, SecretString};

use super::html::{self, esc};
use super::{blocking, cookie, Cost, Form, Html, Portal, Source};

/// The holder's session cookie.
const SESSION_COOKIE: &str = "__Host-nesca_holder";
const SIGN_OUT: &str = "/sertifika/cikis";

pub(super) fn routes() -> Router<Arc<Portal>> {
    Router::new()
        .route("/sertifika", get(start))
        .route("/sertifika/giris", post(sign_in))
        .route("/sertifika/kod", post(confirm_code))
        .route("/sertifika/islem", post(act))
        .route("/sertifika/iptal", get(revoke_page).post(revoke))
        .route(
            "/sertifika/guvenlik-sozcugu",
            get(word_page).post(change_word),
        )
        .route(SIGN_OUT, get(sign_out))
}

/// What every refused sign-in shows: the same for every reason, with where to go instead.
fn sign_in_refused() -> String {
    format!(
        "T.C. Kimlik No veya güvenlik sözcüğü hatalı ya da çok sayıda denemeden (ya da {CODES_PER_WINDOW} SMS kodundan) sonra giriş geçici olarak kapalı. Güvenlik sözcüğünüz veya cep telefonunuz kayıtlı değilse kimliğinizle kayıt merkezine ya da başvurduğunuz kanala (KEC, kimlik doğrulama merkezi) başvurunuz."
    )
}

fn code_refused() -> String {
    format!("SMS onay kodu hatalı ya da süresi dolmuş. {MAX_CODE_FAILURES} hatalı denemeden sonra yeniden giriş yapmanız gerekir.")
}

fn sign_in_page(h: Html, tckn: &str, refusal: Option<&str>) -> Response {
    let body = html::sign_in_form(
        ("/sertifika/giris", h.csrf()),
        tckn,
        ("security_word", "Güvenlik Sözcüğü"),
        "Devam",
        refusal,
    );
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
    let hdrs = headers.clone();
    blocking(&p, &headers, Cost::Store, move |p, h| {
        match signed_in(&p, &hdrs) {
            Ok(Some(holder)) => return list_page(&p, h, &holder, None),
            Ok(None) => {}
            Err(e) => return h.unavailable(&e),
        }
        match cookie(&hdrs, SESSION_COOKIE).map(|t| p.holders.awaiting_code(&t)) {
            Some(Ok(true)) => code_page(h, None),
            Some(Err(e)) => h.unavailable(&e),
            _ => sign_in_page(h, "", None),
        }
    })
    .await
}

async fn sign_in(
    State(p): State<Arc<Portal>>,
    Source(src): Source,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let typed = form.get("tckn").trim().to_owned();
    let word = SecretString::from(form.get("security_word").to_owned());
    blocking(&p, &headers, Cost::Check(src.clone()), move |p, h| {
        // A malformed number is refused as an unknown one is, and costs what it costs.
        let result = match Tckn::parse(&typed) {
            Ok(tckn) => p.holders.sign_in(&tckn, &word, &src),
            Err(_) => {
                if let Err(e) = p.holders.refuse_unparsed(&word, &src) {
                    return h.unavailable(&e);
                }
                return sign_in_page(h, &typed, Some(&sign_in_refused()));
            }
        };
        match result {
            Ok(challenge) => h
                .cookie(
                    SESSION_COOKIE,
                    challenge.token.expose_secret(),
                    SESSION_SECONDS,
                )
                .see_other("/sertifika"),
            Err(RaError::Unauthenticated { .. }) => {
                sign_in_page(h, &typed, Some(&sign_in_refused()))
            }
            Err(e) => h.unavailable(&e),
        }
    })
    .await
}

async fn confirm_code(
    State(p): State<Arc<Portal>>,
    Source(src): Source,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return sign_in_page(Html::new(&headers), "", Some(&code_refused()));
    };
    let code = SecretString::from(form.get("code").trim().to_owned());
    blocking(&p, &headers, Cost::Check(src.clone()), move |p, h| {
        match p.holders.confirm_code(&token, &code, &src) {
            // Signed in under a new token: the code step's token opens nothing any more.
            Ok(signed_in) => h
                .cookie(
                    SESSION_COOKIE,
                    signed_in.token.expose_secret(),
                    SESSION_SECONDS,
                )
                .see_other("/sertifika"),
            // Still awaiting (a wrong code): the code page again; ended: sign in again.
            Err(RaError::Unauthenticated { .. }) => match p.holders.awaiting_code(&token) {
                Ok(true) => code_page(h, Some(&code_refused())),
                Ok(false) => sign_in_page(h, "", Some(&code_refused())),
                Err(e) => h.unavailable(&e),
            },
            Err(e) => h.unavailable(&e),
        }
    })
    .await
}

/// A certificate's state as the holder reads it.
fn state_text(c: &HolderCertificate) -> &'static str {
    match c.state {
        HolderCertificateState::Valid => "Geçerli",
        HolderCertificateState::Suspended => "Askıda",
        HolderCertificateState::Revoked => "İptal Edildi",
        HolderCertificateState::Expired => "Süresi Doldu",
    }
}

/// The certificate list, with `message_html` (a notice or an alert, already HTML) on top.
fn list_page(p: &Portal, h: Html, holder: &HolderSignedIn, message_html: Option<&str>) -> Response {
    let certs = match p.holders.certificates(holder) {
        Ok(c) => c,
        Err(e) => return h.unavailable(&e),
    };
    let mut body = message_html.unwrap_or_default().to_owned();
    body.push_str(r#"<p><a href="/sertifika/guvenlik-sozcugu">Güvenlik Sözcüğü Değiştir</a></p>"#);
    if certs.is_empty() {
        body.push_str("<p>Adınıza kayıtlı sertifika yok.</p>");
        return h.page("Sertifikalarım", Some(SIGN_OUT), &body);
    }
    body.push_str("<table><caption>Sertifikalarım</caption><thead><tr><th scope=\"col\">Seri No</th><th scope=\"col\">Durum</th><th scope=\"col\">Geçerlilik Sonu</th><th scope=\"col\">İşlemler</th></tr></thead><tbody>");
    for c in &certs {
        let serial = c.record.serial.to_hex();
        let hidden = format!(r#"<input type="hidden" name="serial" value="{serial}">"#);
        let mut actions = String::new();
        for (allowed, text, action) in [
            (c.may_suspend, "Askıya Al", "suspend"),
            (c.may_release, "Askıdan İndir", "release"),
        ] {
            if allowed {
                actions.push_str(&html::form(
                    "/sertifika/islem",
                    h.csrf(),
                    &hidden,
                    &html::button(text, Some(("action", action))),
                ));
            }
        }
        if c.may_revoke {
            actions.push_str(&format!(
                r#"<form method="get" action="/sertifika/iptal">{hidden}{}</form>"#,
                html::button("İptal Et", None)
            ));
        }
        body.push_str(&format!(
            "<tr><td><code>{serial}</code></td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
            state_text(c),
            esc(&ca_core::rfc3339(c.record.not_after)),
        ));
    }
    body.push_str("</tbody></table>");
    h.page("Sertifikalarım", Some(SIGN_OUT), &body)
}

/// The refusal of an action in the holder's words, with the registration authority's own
/// (English) rule beneath for the support desk. `None`: not a refusal (the store failed).
fn refusal_html(e: &RaError) -> Option<String> {
    let (words, rule) = match e {
        RaError::NotFound { rule, .. } => ("Bu sertifika size ait değil ya da bulunamadı.", rule),
        RaError::Refused { rule, .. } => (
            "Bu askıya alma portaldan yapılmadı: askıdan indirmek için kayıt merkezine başvurun.",
            rule,
        ),
        RaError::Locked { until_text, .. } => (
            "Bugün portaldan yapılabilecek işlem sayısına ulaşıldı: kayıt merkezine başvurun ya da yarın yeniden deneyin.",
            until_text,
        ),
        RaError::Invalid { rule, .. } | RaError::Conflict { rule, .. } => {
            ("Sertifikanın şu anki durumunda bu işlem yapılamaz.", rule)
        }
        _ => return None,
    };
    Some(format!(
        r#"<div role="alert"><p class="hata">İşlem yapılamadı. {words}</p><p><small lang="en">{}</small></p></div>"#,
        esc(rule)
    ))
}

/// Runs `work` for the signed-in holder of the request, or answers the sign-in page.
async fn as_holder(
    p: Arc<Portal>,
    headers: &HeaderMap,
    cost: Cost,
    work: impl FnOnce(Arc<Portal>, Html, HolderSignedIn) -> Response + Send + 'static,
) -> Response {
    let hdrs = headers.clone();
    blocking(&p, headers, cost, move |p, h| match signed_in(&p, &hdrs) {
        Ok(Some(holder)) => work(p, h, holder),
        Ok(None) => sign_in_page(h, "", None),
        Err(e) => h.unavailable(&e),
    })
    .await
}

/// An action on one of the holder's certificates, answered with the list and what happened.
fn act_and_list(
    p: &Portal,
    h: Html,
    holder: &HolderSignedIn,
    request: Option<(Serial, LifecycleAction)>,
    done: &str,
) -> Response {
    let message = match request.map(|(serial, action)| p.holders.act(holder, &serial, action)) {
        None => html::alert("İşlem yapılamadı: geçersiz istek."),
        Some(Ok(_)) => html::notice(done),
        Some(Err(e)) => match refusal_html(&e) {
            Some(m) => m,
            None => return h.unavailable(&e),
        },
    };
    list_page(p, h, holder, Some(&message))
}

fn parse_serial(s: &str) -> Option<Serial> {
    Serial::parse_hex(s.trim()).ok()
}

async fn act(State(p): State<Arc<Portal>>, headers: HeaderMap, form: Form) -> Response {
    let (action, done) = match form.get("action") {
        "suspend" => (
            Some(LifecycleAction::Suspend),
            "Sertifikanız askıya alındı.",
        ),
        "release" => (
            Some(LifecycleAction::Release),
            "Sertifikanız askıdan indirildi.",
        ),
        _ => (None, ""),
    };
    let request = parse_serial(form.get("serial")).zip(action);
    as_holder(p, &headers, Cost::Store, move |p, h, holder| {
        act_and_list(&p, h, &holder, request, done)
    })
    .await
}

/// A reason's RFC 5280 name (the form's value; "" for unspecified) and its Turkish words.
fn reason_option(reason: Option<RevocationReason>) -> (&'static str, &'static str) {
    match reason {
        None => ("", "Belirtilmemiş"),
        Some(RevocationReason::KeyCompromise) => ("keyCompromise", "Anahtar Güvenliğini Yitirdi"),
        Some(RevocationReason::AffiliationChanged) => {
            ("affiliationChanged", "Bilgilerde Değişiklik")
        }
        Some(RevocationReason::Superseded) => ("superseded", "Yeni Sertifikayla Değiştirildi"),
        Some(RevocationReason::CessationOfOperation) => {
            ("cessationOfOperation", "Kullanım Sona Erdi")
        }
        Some(other) => (other.name(), other.name()),
    }
}

async fn revoke_page(State(p): State<Arc<Portal>>, headers: HeaderMap, uri: Uri) -> Response {
    let serial = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "serial")
        .and_then(|(_, v)| parse_serial(&v));
    as_holder(p, &headers, Cost::Store, move |p, h, holder| {
        let Some(serial) = serial else {
            return act_and_list(&p, h, &holder, None, "");
        };
        let hex = serial.to_hex();
        let options: Vec<(&str, &str)> = HOLDER_REVOCATION_REASONS
            .iter()
            .map(|r| reason_option(*r))
            .collect();
        let body = format!(
            "<p><code>{hex}</code> seri numaralı sertifikanız iptal edilecek. İptal geri alınamaz.</p>{}<p><a href=\"/sertifika\">Vazgeç</a></p>",
            html::form(
                "/sertifika/iptal",
                h.csrf(),
                &format!(
                    r#"<input type="hidden" name="serial" value="{hex}">{}"#,
                    html::select("reason", "İptal Nedeni", &options)
                ),
                &html::button("İptali Onayla", None),
            )
        );
        h.page("Sertifika İptali", Some(SIGN_OUT), &body)
    })
    .await
}

async fn revoke(State(p): State<Arc<Portal>>, headers: HeaderMap, form: Form) -> Response {
    // Only a reason the page offers; anything else is no request at all.
    let reason = HOLDER_REVOCATION_REASONS
        .into_iter()
        .find(|r| reason_option(*r).0 == form.get("reason"));
    let request =
        parse_serial(form.get("serial")).zip(reason.map(|reason| LifecycleAction::Revoke {
            reason,
            invalidity_date: None,
        }));
    as_holder(p, &headers, Cost::Store, move |p, h, holder| {
        act_and_list(&p, h, &holder, request, "Sertifikanız iptal edildi.")
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
        "<p>{}; tüm geçerli sertifikalarınız için kullanılır.</p>{body}<p><a href=\"/sertifika\">Sertifikalarım</a></p>",
        super::security_word_rule()
    );
    h.page("Güvenlik Sözcüğü Değiştir", Some(SIGN_OUT), &body)
}

async fn word_page(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    as_holder(p, &headers, Cost::Store, |_, h, _| word_form(h, None, None)).await
}

async fn change_word(
    State(p): State<Arc<Portal>>,
    Source(src): Source,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let current = SecretString::from(form.get("current_security_word").to_owned());
    let new = SecretString::from(form.get("new_security_word").to_owned());
    as_holder(
        p,
        &headers,
        Cost::Check(src.clone()),
        move |p, h, holder| match p
            .holders
            .change_security_word(&holder, &current, &new, &src)
        {
            Ok(()) => list_page(
                &p,
                h,
                &holder,
                Some(&html::notice("Güvenlik sözcüğünüz değiştirildi.")),
            ),
            Err(RaError::Invalid { .. }) => word_form(h, None, Some(&super::security_word_rule())),
            Err(RaError::Unauthenticated { .. }) => word_form(
                h,
                Some("Mevcut güvenlik sözcüğü hatalı ya da çok sayıda deneme yapıldı."),
                None,
            ),
            Err(e) => h.unavailable(&e),
        },
    )
    .await
}

async fn sign_out(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    super::sign_out(&p, &headers, SESSION_COOKIE, |p, token| {
        p.holders.sign_out(token)
    })
    .await
}
