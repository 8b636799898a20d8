//! The applicant's pages: a person an institution's list invited signs in with the T.C.
//! Kimlik No and the e-mailed access password, fills the form, confirms the mobile number
//! with the SMS code, and approves by e-Onay or by a wet signature on the printed form; then
//! follows the application. The same service (`ra::enrollment`) answers the partners' JSON
//! API, so the two cannot disagree.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use ca_core::store::EnrollmentStage;
use ca_core::Tckn;
use nesca_ra::enrollment::{ApplicantForm, ApplicantView, Approval, ApprovalOutcome};
use nesca_ra::RaError;
use secrecy::{ExposeSecret as _, SecretString};

use super::html::{self, esc};
use super::{cookie, forbidden, source, unavailable, Form, Html, Portal};

/// The applicant's session cookie (the enrollment session's token).
const SESSION_COOKIE: &str = "__Host-nesca_applicant";
const SIGN_OUT: &str = "/basvuru/cikis";

pub(super) fn routes() -> Router<Arc<Portal>> {
    Router::new()
        .route("/basvuru", get(start))
        .route("/basvuru/giris", post(sign_in))
        .route("/basvuru/parola", get(forgotten_password))
        .route("/basvuru/form", post(submit_form))
        .route("/basvuru/kod", post(confirm_code))
        .route("/basvuru/kod-yeniden", post(resend_code))
        .route("/basvuru/onay", post(approve))
        .route("/basvuru/form.pdf", get(wet_form))
        .route("/basvuru/basvurularim", get(applications))
        .route(SIGN_OUT, get(sign_out))
}

const SIGN_IN_REFUSED: &str = "T.C. Kimlik No veya erişim parolası hatalı ya da çok sayıda hatalı denemeden sonra giriş 30 dakika kapalı.";

fn sign_in_page(h: Html, tckn: &str, error: Option<&str>) -> Response {
    let mut body = String::new();
    if let Some(e) = error {
        body.push_str(&html::alert(e));
    }
    body.push_str(&html::form(
        "/basvuru/giris",
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
                "password",
                "Erişim Parolası",
                "password",
                r#"autocomplete="current-password" maxlength="64" required"#,
                None,
            ),
        ),
        &html::button("Giriş", None),
    ));
    body.push_str(r#"<p><a href="/basvuru/parola">Erişim Parolamı Bilmiyorum</a></p>"#);
    h.page("Başvuru — Giriş", None, &body)
}

/// The stage in the applicant's words.
fn stage_text(stage: EnrollmentStage) -> &'static str {
    match stage {
        EnrollmentStage::Invited => "Başvuru formu bekleniyor",
        EnrollmentStage::Form => "SMS onayı bekleniyor",
        EnrollmentStage::Confirmed => "Başvuru onayı bekleniyor",
        EnrollmentStage::AwaitingWet => "Islak imzalı form bekleniyor",
        EnrollmentStage::Approved => "Onaylandı, sertifika üretimi bekleniyor",
        EnrollmentStage::Produced => "Sertifika üretildi",
    }
}

/// The page of an application at its stage, with `message` on top.
fn application_page(
    h: Html,
    v: &ApplicantView,
    message: Option<String>,
    field_error: Option<(&str, &str)>,
) -> Response {
    let err = |f: &str| field_error.filter(|(n, _)| *n == f).map(|(_, e)| e);
    let mut body = message.unwrap_or_default();
    body.push_str(&format!(
        "<p>Sayın {} {}, başvurunuzun durumu: <strong>{}</strong>.</p>",
        esc(&v.pre.given_name),
        esc(&v.pre.surname),
        stage_text(v.enrollment.stage)
    ));
    match v.enrollment.stage {
        EnrollmentStage::Invited => body.push_str(&html::form(
            "/basvuru/form",
            h.csrf(),
            &format!(
                "{}{}{}",
                html::input(
                    "security_word",
                    "Güvenlik Sözcüğü",
                    "password",
                    r#"autocomplete="new-password" minlength="4" maxlength="64" required"#,
                    err("security_word"),
                ),
                html::checkbox("do_not_publish", "Sertifikam İnternette Yayınlanmasın"),
                html::input(
                    "delivery_address",
                    "Teslimat Adresi",
                    "text",
                    r#"autocomplete="street-address" maxlength="500" required"#,
                    err("delivery_address"),
                ),
            ),
            &html::button("Kaydet", None),
        )),
        EnrollmentStage::Form => {
            body.push_str("<p>Cep telefonunuza gönderilen SMS onay kodunu girin.</p>");
            body.push_str(&html::form(
                "/basvuru/kod",
                h.csrf(),
                &html::input(
                    "code",
                    "SMS Onay Kodu",
                    "text",
                    r#"inputmode="numeric" autocomplete="one-time-code" maxlength="6" required"#,
                    err("code"),
                ),
                &html::button("Onayla", None),
            ));
            body.push_str(&html::form(
                "/basvuru/kod-yeniden",
                h.csrf(),
                "",
                &html::button("Kodu Yeniden Gönder", None),
            ));
        }
        EnrollmentStage::Confirmed => {
            body.push_str("<p>Başvurunuzu e-Onay ile ya da yazdırıp ıslak imzayla onaylayın.</p>");
            body.push_str(&html::form(
                "/basvuru/onay",
                h.csrf(),
                "",
                &format!(
                    "{}{}",
                    html::button("e-Onay ile Onayla", Some(("method", "e-onay"))),
                    html::button(
                        "Islak İmza ile Onaylamak için Formu İndir",
                        Some(("method", "wet"))
                    )
                ),
            ));
        }
        EnrollmentStage::AwaitingWet => body.push_str(
            r#"<p>İndirdiğiniz formu imzalayıp kayıt merkezine ulaştırın. <a href="/basvuru/form.pdf">Formu yeniden indir</a></p>"#,
        ),
        EnrollmentStage::Approved | EnrollmentStage::Produced => {}
    }
    body.push_str(r#"<p><a href="/basvuru/basvurularim">Başvurularım</a></p>"#);
    h.page("Başvuru", Some(SIGN_OUT), &body)
}

/// Runs `work` for the application of the request's session, or answers the sign-in page.
async fn as_applicant(
    p: Arc<Portal>,
    headers: &HeaderMap,
    work: impl FnOnce(Arc<Portal>, Html, String, ApplicantView) -> Response + Send + 'static,
) -> Response {
    let h = Html::new(headers);
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return sign_in_page(h, "", None);
    };
    let headers2 = headers.clone();
    let result = tokio::task::spawn_blocking(move || match p.enrollments.session(&token) {
        Ok(v) => work(p, h, token, v),
        Err(RaError::Unauthenticated { .. }) => sign_in_page(h, "", None),
        Err(e) => unavailable(&headers2, &e),
    })
    .await;
    result.unwrap_or_else(|e| unavailable(headers, &e))
}

async fn start(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    as_applicant(p, &headers, |_, h, _, v| {
        application_page(h, &v, None, None)
    })
    .await
}

async fn forgotten_password(headers: HeaderMap) -> Response {
    Html::new(&headers).page(
        "Erişim Parolamı Bilmiyorum",
        None,
        r#"<p>Erişim parolanız, kurumunuz sizi başvuru listesine eklediğinde kayıtlı e-posta adresinize gönderilir ("Nitelikli elektronik sertifika başvurunuz" konulu ileti). İleti size ulaşmadıysa ya da parolanız kaybolduysa kurumunuzun başvuru yetkilisine başvurun: listeniz yeniden işlendiğinde yeni bir parola gönderilir ve yalnızca en son gönderilen parola geçerlidir.</p>
<p><a href="/basvuru">Giriş sayfasına dön</a></p>"#,
    )
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
    let Ok(tckn) = Tckn::parse(&typed) else {
        return sign_in_page(h, &typed, Some(SIGN_IN_REFUSED));
    };
    let password = SecretString::from(form.get("password").to_owned());
    let src = source(peer);
    let now = p.clock.now_unix();
    let result =
        tokio::task::spawn_blocking(move || p.enrollments.sign_in(&tckn, &password, &src)).await;
    match result {
        Ok(Ok(grant)) => h
            .cookie(
                SESSION_COOKIE,
                grant.token.expose_secret(),
                (grant.expires_at.secs() - now.secs()).max(0),
            )
            .see_other("/basvuru"),
        Ok(Err(RaError::Unauthenticated { .. } | RaError::Locked { .. })) => {
            sign_in_page(h, &typed, Some(SIGN_IN_REFUSED))
        }
        Ok(Err(e)) => unavailable(&headers, &e),
        Err(e) => unavailable(&headers, &e),
    }
}

/// The field a refusal names, and its words for the applicant.
fn field_error(e: &RaError) -> Option<(&'static str, String)> {
    match e {
        RaError::Invalid { field, rule }
        | RaError::Conflict { field, rule }
        | RaError::Refused { field, rule }
        | RaError::Unauthenticated { field, rule } => Some((field, rule.clone())),
        RaError::Locked {
            field, until_text, ..
        } => Some((
            field,
            format!("çok sayıda hatalı deneme; {until_text} sonrasında yeniden deneyin"),
        )),
        _ => None,
    }
}

/// Answers a step: the application page again, with the step's notice or its refusal next
/// to the field it names.
fn after_step(
    p: &Portal,
    h: Html,
    token: &str,
    result: Result<&'static str, RaError>,
    field_words: &[(&str, &'static str)],
) -> Response {
    let (message, error) = match result {
        Ok(done) => (Some(html::notice(done)), None),
        Err(e) => match field_error(&e) {
            Some((field, rule)) => {
                let words = field_words
                    .iter()
                    .find(|(f, _)| *f == field)
                    .map(|(_, w)| (*w).to_owned());
                match words {
                    Some(w) => (None, Some((field, w))),
                    None => (
                        Some(html::alert(&format!("İşlem yapılamadı: {rule}"))),
                        None,
                    ),
                }
            }
            None => return h.unavailable(&e),
        },
    };
    match p.enrollments.session(token) {
        Ok(v) => application_page(
            h,
            &v,
            message,
            error.as_ref().map(|(f, w)| (*f, w.as_str())),
        ),
        Err(RaError::Unauthenticated { .. }) => sign_in_page(h, "", None),
        Err(e) => h.unavailable(&e),
    }
}

async fn submit_form(State(p): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(form) = Form::parse(&headers, &body) else {
        return forbidden(&headers);
    };
    let word = SecretString::from(form.get("security_word").to_owned());
    let do_not_publish = form.get("do_not_publish") == "1";
    let address = form.get("delivery_address").to_owned();
    as_applicant(p, &headers, move |p, h, token, _| {
        let result = ApplicantForm::parse(word, do_not_publish, &address)
            .and_then(|f| p.enrollments.submit_form(&token, f))
            .map(|()| "Formunuz kaydedildi; cep telefonunuza SMS onay kodu gönderiliyor.");
        after_step(
            &p,
            h,
            &token,
            result,
            &[
                ("security_word", "4–64 harf ya da rakam olmalı (boşluksuz)."),
                ("delivery_address", "10–500 karakterlik bir adres yazın."),
            ],
        )
    })
    .await
}

async fn confirm_code(State(p): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(form) = Form::parse(&headers, &body) else {
        return forbidden(&headers);
    };
    let code = SecretString::from(form.get("code").trim().to_owned());
    as_applicant(p, &headers, move |p, h, token, _| {
        let result = p
            .enrollments
            .confirm_code(&token, &code)
            .map(|()| "Cep telefonunuz doğrulandı.");
        after_step(
            &p,
            h,
            &token,
            result,
            &[(
                "code",
                "SMS onay kodu hatalı ya da süresi dolmuş. Gerekirse yeni kod isteyin.",
            )],
        )
    })
    .await
}

async fn resend_code(State(p): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    if Form::parse(&headers, &body).is_none() {
        return forbidden(&headers);
    }
    as_applicant(p, &headers, move |p, h, token, _| {
        let result = p
            .enrollments
            .resend_code(&token)
            .map(|()| "Yeni SMS onay kodu gönderiliyor.");
        after_step(&p, h, &token, result, &[])
    })
    .await
}

async fn approve(State(p): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(form) = Form::parse(&headers, &body) else {
        return forbidden(&headers);
    };
    let approval = match form.get("method") {
        "e-onay" => Some(Approval::EOnay),
        "wet" => Some(Approval::Wet),
        _ => None,
    };
    as_applicant(p, &headers, move |p, h, token, _| {
        let Some(approval) = approval else {
            return after_step(
                &p,
                h,
                &token,
                Err(RaError::Invalid {
                    field: "method",
                    rule: "e-onay or wet".into(),
                }),
                &[],
            );
        };
        match p.enrollments.approve(&token, approval) {
            Ok(ApprovalOutcome::AwaitingWet { form_pdf }) => {
                h.download("nes-basvuru-formu.pdf", "application/pdf", form_pdf)
            }
            Ok(ApprovalOutcome::Approved { .. }) => {
                after_step(&p, h, &token, Ok("Başvurunuz onaylandı."), &[])
            }
            Err(e) => after_step(&p, h, &token, Err(e), &[]),
        }
    })
    .await
}

async fn wet_form(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    as_applicant(p, &headers, |p, h, token, _| {
        match p.enrollments.wet_form(&token) {
            Ok(pdf) => h.download("nes-basvuru-formu.pdf", "application/pdf", pdf),
            Err(e) => after_step(&p, h, &token, Err(e), &[]),
        }
    })
    .await
}

async fn applications(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    as_applicant(p, &headers, |_, h, _, v| {
        let body = format!(
            "<table><caption>Başvurularım</caption><thead><tr><th scope=\"col\">Başvuru No</th><th scope=\"col\">Kurum</th><th scope=\"col\">Aşama</th></tr></thead><tbody><tr><td>{}</td><td>{}</td><td>{}</td></tr></tbody></table><p><a href=\"/basvuru\">Başvuruma dön</a></p>",
            esc(&v.pre.id),
            esc(v.pre.institution.as_str()),
            stage_text(v.enrollment.stage)
        );
        h.page("Başvurularım", Some(SIGN_OUT), &body)
    })
    .await
}

async fn sign_out(headers: HeaderMap) -> Response {
    // The enrollment session ends by itself (30 minutes); the browser forgets it now.
    Html::new(&headers)
        .cookie(SESSION_COOKIE, "", 0)
        .see_other("/")
}
