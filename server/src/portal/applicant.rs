//! The applicant's pages: a person an institution's list invited signs in with the T.C.
//! Kimlik No and the e-mailed access password, fills the form, confirms the mobile number
//! with the SMS code, and approves by e-Onay or by a wet signature on the printed form; then
//! follows the application. The same service (`ra::enrollment`) answers the partners' JSON
//! API, so the two cannot disagree.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use ca_core::store::EnrollmentStage;
use ca_core::Tckn;
use nesca_ra::enrollment::{
    ApplicantForm, ApplicantView, Approval, ApprovalOutcome, LOCK_SECONDS, SESSION_SECONDS,
};
use nesca_ra::RaError;
use secrecy::{ExposeSecret as _, SecretString};

use super::html::{self, esc};
use super::{blocking, cookie, Cost, Form, Html, Portal, Source};

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

fn sign_in_refused() -> String {
    format!(
        "T.C. Kimlik No veya erişim parolası hatalı ya da çok sayıda hatalı denemeden sonra giriş {} dakika kapalı.",
        LOCK_SECONDS / 60
    )
}

fn sign_in_page(h: Html, tckn: &str, refusal: Option<&str>) -> Response {
    let mut body = html::sign_in_form(
        ("/basvuru/giris", h.csrf()),
        tckn,
        ("password", "Erişim Parolası"),
        "Giriş",
        refusal,
    );
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
    cost: Cost,
    work: impl FnOnce(Arc<Portal>, Html, String, ApplicantView) -> Response + Send + 'static,
) -> Response {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return sign_in_page(Html::new(headers), "", None);
    };
    blocking(&p, headers, cost, move |p, h| {
        match p.enrollments.session(&token) {
            Ok(v) => work(p, h, token, v),
            Err(RaError::Unauthenticated { .. }) => sign_in_page(h, "", None),
            Err(e) => h.unavailable(&e),
        }
    })
    .await
}

async fn start(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    as_applicant(p, &headers, Cost::Store, |_, h, _, v| {
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
    Source(src): Source,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let typed = form.get("tckn").trim().to_owned();
    let password = SecretString::from(form.get("password").to_owned());
    blocking(&p, &headers, Cost::Check(src.clone()), move |p, h| {
        let Ok(tckn) = Tckn::parse(&typed) else {
            if let Err(e) = p.enrollments.refuse_unparsed(&password, &src) {
                return h.unavailable(&e);
            }
            return sign_in_page(h, &typed, Some(&sign_in_refused()));
        };
        match p.enrollments.sign_in(&tckn, &password, &src) {
            Ok(grant) => h
                .cookie(SESSION_COOKIE, grant.token.expose_secret(), SESSION_SECONDS)
                .see_other("/basvuru"),
            Err(RaError::Unauthenticated { .. } | RaError::Locked { .. }) => {
                sign_in_page(h, &typed, Some(&sign_in_refused()))
            }
            Err(e) => h.unavailable(&e),
        }
    })
    .await
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

/// Answers a step: the application page again, with the step's notice, or its refusal next
/// to the field it names (in the applicant's words, from `field_words`) or on top (with the
/// registration authority's own, English, rule beneath for the support desk).
fn after_step(
    p: &Portal,
    h: Html,
    token: &str,
    result: Result<&'static str, RaError>,
    field_words: &[(&str, String)],
) -> Response {
    let (message, error) = match result {
        Ok(done) => (Some(html::notice(done)), None),
        Err(e) => match field_error(&e) {
            Some((field, rule)) => match field_words.iter().find(|(f, _)| *f == field) {
                Some((_, words)) => (None, Some((field, words.clone()))),
                None => (
                    Some(format!(
                        r#"<div role="alert"><p class="hata">İşlem yapılamadı: başvurunuzun şu anki aşamasında bu adım yapılamaz.</p><p><small lang="en">{}</small></p></div>"#,
                        esc(&rule)
                    )),
                    None,
                ),
            },
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

async fn submit_form(
    State(p): State<Arc<Portal>>,
    Source(src): Source,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let word = SecretString::from(form.get("security_word").to_owned());
    let do_not_publish = form.get("do_not_publish") == "1";
    let address = form.get("delivery_address").to_owned();
    as_applicant(
        p,
        &headers,
        Cost::Check(src.clone()),
        move |p, h, token, _| {
            let result = ApplicantForm::parse(word, do_not_publish, &address)
                .and_then(|f| p.enrollments.submit_form(&token, f))
                .map(|()| "Formunuz kaydedildi; cep telefonunuza SMS onay kodu gönderiliyor.");
            after_step(
                &p,
                h,
                &token,
                result,
                &[
                    ("security_word", format!("{}.", super::security_word_rule())),
                    (
                        "delivery_address",
                        "10–500 karakterlik bir adres yazın.".to_owned(),
                    ),
                ],
            )
        },
    )
    .await
}

async fn confirm_code(
    State(p): State<Arc<Portal>>,
    Source(src): Source,
    headers: HeaderMap,
    form: Form,
) -> Response {
    let code = SecretString::from(form.get("code").trim().to_owned());
    as_applicant(
        p,
        &headers,
        Cost::Check(src.clone()),
        move |p, h, token, _| {
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
                    "SMS onay kodu hatalı ya da süresi dolmuş. Gerekirse yeni kod isteyin."
                        .to_owned(),
                )],
            )
        },
    )
    .await
}

async fn resend_code(State(p): State<Arc<Portal>>, headers: HeaderMap, _: Form) -> Response {
    as_applicant(p, &headers, Cost::Store, move |p, h, token, _| {
        let result = p
            .enrollments
            .resend_code(&token)
            .map(|()| "Yeni SMS onay kodu gönderiliyor.");
        after_step(&p, h, &token, result, &[])
    })
    .await
}

async fn approve(State(p): State<Arc<Portal>>, headers: HeaderMap, form: Form) -> Response {
    let approval = match form.get("method") {
        "e-onay" => Some(Approval::EOnay),
        "wet" => Some(Approval::Wet),
        _ => None,
    };
    as_applicant(p, &headers, Cost::Store, move |p, h, token, _| {
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
    as_applicant(p, &headers, Cost::Store, |p, h, token, _| {
        match p.enrollments.wet_form(&token) {
            Ok(pdf) => h.download("nes-basvuru-formu.pdf", "application/pdf", pdf),
            Err(e) => after_step(&p, h, &token, Err(e), &[]),
        }
    })
    .await
}

async fn applications(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    as_applicant(p, &headers, Cost::Store, |_, h, _, v| {
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

async fn sign_out(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    super::sign_out(&p, &headers, SESSION_COOKIE, |p, token| {
        p.enrollments.sign_out(token)
    })
    .await
}
