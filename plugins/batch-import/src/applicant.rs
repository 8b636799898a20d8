//! The applicant endpoints, version 1 (`docs/channels/batch-import.md`): the ESHS portal
//! forwards an invited person's steps (sign-in, form, SMS code, approval) over the same mTLS
//! connection as list uploads. The session token travels as `Authorization: Bearer`. Each
//! step takes its own body fields and no other; the steps that send nothing take an empty
//! body or `{"v":1}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use nesca_plugin_api::host_api::{ApplicantAnswer, ApplicantCall, SecretText};
use nesca_plugin_api::{HostError, HostErrorCode, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::protocol::UploadError;
use crate::ImportHost;

/// One applicant endpoint (under `/v1/applicants/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `POST sign-in`
    SignIn,
    /// `GET me`
    Status,
    /// `POST me/form`
    Form,
    /// `POST me/sms-code`
    ConfirmCode,
    /// `POST me/sms-code/resend`
    ResendCode,
    /// `GET me/approval-text`
    ApprovalText,
    /// `POST me/approval`
    Approve,
    /// `GET me/form-pdf`: the wet-signature form again, while the application awaits it.
    FormPdf,
}

impl Step {
    /// The step at `rest` (the path after `/v1/applicants/`) and its method.
    pub fn route(method: &str, rest: &str) -> Result<Step, UploadError> {
        let (step, wants) = match rest {
            "sign-in" => (Step::SignIn, "POST"),
            "me" => (Step::Status, "GET"),
            "me/form" => (Step::Form, "POST"),
            "me/sms-code" => (Step::ConfirmCode, "POST"),
            "me/sms-code/resend" => (Step::ResendCode, "POST"),
            "me/approval-text" => (Step::ApprovalText, "GET"),
            "me/approval" => (Step::Approve, "POST"),
            "me/form-pdf" => (Step::FormPdf, "GET"),
            _ => {
                return Err(UploadError::new(
                    404,
                    "not_found",
                    format!("no endpoint /v1/applicants/{rest}"),
                ))
            }
        };
        if method != wants {
            return Err(UploadError::new(
                405,
                "method_not_allowed",
                format!("use {wants}"),
            ));
        }
        Ok(step)
    }

    fn action(self) -> &'static str {
        match self {
            Step::SignIn => "sign_in",
            Step::Status => "status",
            Step::Form => "form",
            Step::ConfirmCode => "confirm_code",
            Step::ResendCode => "resend_code",
            Step::ApprovalText => "approval_text",
            Step::Approve => "approve",
            Step::FormPdf => "wet_form",
        }
    }

    /// The body fields this step reads (besides `v`); any other is refused.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Step::SignIn => &["tckn", "password", "client_address"],
            Step::Form => &["security_word", "do_not_publish", "delivery_address"],
            Step::ConfirmCode => &["code"],
            Step::Approve => &["method", "signature"],
            Step::Status | Step::ResendCode | Step::ApprovalText | Step::FormPdf => &[],
        }
    }

    /// Whether the step sends nothing: an empty body is `{"v":1}`.
    fn takes_no_fields(self) -> bool {
        self.fields().is_empty()
    }
}

/// Every body field any step reads; each step reads its own (unknown ones are refused).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    v: u32,
    #[serde(default)]
    tckn: Option<String>,
    #[serde(default)]
    password: Option<SecretText>,
    /// Sign-in: the applicant's IP address as the portal saw it.
    #[serde(default)]
    client_address: Option<String>,
    #[serde(default)]
    security_word: Option<SecretText>,
    #[serde(default)]
    do_not_publish: Option<bool>,
    #[serde(default)]
    delivery_address: Option<String>,
    #[serde(default)]
    code: Option<SecretText>,
    #[serde(default)]
    method: Option<String>,
    /// CMS SignedData over the approval text, DER, base64.
    #[serde(default)]
    signature: Option<String>,
}

fn body(step: Step, raw: &[u8]) -> Result<Body, UploadError> {
    if step.takes_no_fields() && raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Body {
            v: 1,
            ..Body::default()
        });
    }
    let bad = |e: serde_json::Error| UploadError::new(400, "request", format!("body: {e}"));
    let value: serde_json::Value = serde_json::from_slice(raw).map_err(bad)?;
    // The field names as sent, before the body is read into the type that knows every step's.
    let given: Vec<String> = value
        .as_object()
        .map(|m| m.keys().filter(|k| *k != "v").cloned().collect())
        .unwrap_or_default();
    let b: Body = serde_json::from_value(value).map_err(bad)?;
    if b.v != 1 {
        return Err(UploadError::new(
            400,
            "request",
            format!("v: version {} is not spoken here (1 is)", b.v),
        ));
    }
    if let Some(other) = given.iter().find(|f| !step.fields().contains(&f.as_str())) {
        let takes = match step.fields() {
            [] => "this request takes no field but v (an empty body or {\"v\":1})".to_owned(),
            fields => format!("this request takes v and {}", fields.join(", ")),
        };
        return Err(UploadError::new(
            400,
            "request",
            format!("{other}: unknown field here; {takes}"),
        ));
    }
    Ok(b)
}

fn bearer(request: &HttpRequest) -> Option<SecretText> {
    request
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| SecretText(t.trim().to_owned()))
}

/// Answers one applicant request.
pub(crate) fn handle(host: &dyn ImportHost, step: Step, request: &HttpRequest) -> HttpResponse {
    match call(host, step, request) {
        Ok(r) => r,
        Err(e) => e.response(),
    }
}

fn call(
    host: &dyn ImportHost,
    step: Step,
    request: &HttpRequest,
) -> Result<HttpResponse, UploadError> {
    let b = body(step, &request.body)?;
    let token = match step {
        Step::SignIn => None,
        _ => Some(bearer(request).ok_or_else(|| {
            UploadError::new(
                401,
                "unauthenticated",
                "authorization: send the session token as `Authorization: Bearer <token>`",
            )
        })?),
    };
    let signature_der = match &b.signature {
        Some(s) => Some(STANDARD.decode(s).map_err(|e| {
            UploadError::new(400, "request", format!("signature: not base64: {e}"))
        })?),
        None => None,
    };
    let answer = host
        .applicant(&ApplicantCall {
            action: step.action().to_owned(),
            token,
            tckn: b.tckn,
            password: b.password,
            client_address: b.client_address,
            security_word: b.security_word,
            do_not_publish: b.do_not_publish,
            delivery_address: b.delivery_address,
            code: b.code,
            method: b.method,
            signature_der,
        })
        .map_err(|e| refusal(step, &e))?;
    let wants_pdf = request
        .header("accept")
        .is_some_and(|a| a.contains("application/pdf"));
    let status = match (step, &answer.form_pdf) {
        (Step::Form | Step::ResendCode, _) => 202,
        (Step::Approve, Some(_)) => 202,
        _ => 200,
    };
    if let (Some(pdf), true) = (&answer.form_pdf, wants_pdf) {
        return Ok(
            HttpResponse::new(status, pdf.clone()).with_header("content-type", "application/pdf")
        );
    }
    Ok(HttpResponse::json(status, &wire(answer)))
}

/// A refused step: the protocol's status and code (a fixed set, whatever the host said) for
/// the host's code; anything but a refusal of what the applicant sent is `unavailable` (503).
/// The SMS code's refusals have codes of their own, so that a portal tells a mistyped code
/// (422 `sms_code`: type it again) and a code that cannot be confirmed any more (409
/// `sms_code_void`: ask for a new one) from a dead session (401 `unauthenticated`: sign in).
fn refusal(step: Step, e: &HostError) -> UploadError {
    let code_step = step == Step::ConfirmCode && e.field.as_deref() == Some("sms_code");
    let (status, code) = match e.code {
        HostErrorCode::Invalid if code_step => (422, "sms_code"),
        HostErrorCode::Conflict if code_step => (409, "sms_code_void"),
        HostErrorCode::Invalid => (422, "invalid"),
        HostErrorCode::Unauthenticated => (401, "unauthenticated"),
        HostErrorCode::Locked => (429, "locked"),
        HostErrorCode::Conflict => (409, "conflict"),
        _ => (503, "unavailable"),
    };
    UploadError::new(status, code, e.to_string())
}

/// The answer as the portal gets it (the PDF as base64).
fn wire(a: ApplicantAnswer) -> serde_json::Value {
    let mut v = serde_json::json!({ "v": 1 });
    let m = v.as_object_mut().expect("an object");
    if let Some(t) = a.token {
        m.insert("token".into(), t.0.into());
    }
    if let Some(x) = a.expires_at {
        m.insert("expires_at".into(), x.into());
    }
    if let Some(app) = a.application {
        m.insert(
            "application".into(),
            serde_json::to_value(app).unwrap_or_default(),
        );
    }
    if let Some(t) = a.approval_text {
        m.insert("approval_text".into(), t.into());
    }
    if let Some(t) = a.approval_text_sha256 {
        m.insert("approval_text_sha256".into(), t.into());
    }
    if let Some(pdf) = a.form_pdf {
        m.insert("form_pdf".into(), STANDARD.encode(pdf).into());
    }
    v
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use nesca_plugin_api::host_api::{ImportList, ListImported};

    use super::*;

    struct FakeHost {
        seen: RefCell<Vec<ApplicantCall>>,
        error: Option<HostErrorCode>,
        /// The field the error names (`sign_in` when `None`).
        field: Option<&'static str>,
    }

    impl ImportHost for FakeHost {
        fn import_list(&self, _: &ImportList) -> Result<ListImported, HostError> {
            Err(HostError::internal("not here"))
        }
        fn applicant(&self, call: &ApplicantCall) -> Result<ApplicantAnswer, HostError> {
            self.seen.borrow_mut().push(call.clone());
            if let Some(code) = self.error {
                return Err(HostError::new(
                    code,
                    self.field.unwrap_or("sign_in"),
                    "wrong",
                ));
            }
            Ok(ApplicantAnswer {
                token: Some(SecretText("tok".into())),
                expires_at: Some(5),
                application: None,
                approval_text: None,
                approval_text_sha256: None,
                form_pdf: (call.method.as_deref() == Some("wet") || call.action == "wet_form")
                    .then(|| b"%PDF-1.4".to_vec()),
            })
        }
    }

    fn req(method: &str, path: &str, body: &str, token: Option<&str>) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            path: path.into(),
            query: None,
            headers: token
                .map(|t| vec![("authorization".to_owned(), format!("Bearer {t}"))])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
            client_cert_chain: vec![vec![0x30]],
        }
    }

    fn host(error: Option<HostErrorCode>) -> FakeHost {
        FakeHost {
            seen: RefCell::new(vec![]),
            error,
            field: None,
        }
    }

    #[test]
    fn routes_and_methods() {
        assert_eq!(Step::route("POST", "sign-in").unwrap(), Step::SignIn);
        assert_eq!(
            Step::route("GET", "me/approval-text").unwrap(),
            Step::ApprovalText
        );
        assert_eq!(Step::route("GET", "sign-in").unwrap_err().status, 405);
        assert_eq!(Step::route("POST", "me/other").unwrap_err().status, 404);
    }

    #[test]
    fn steps_reach_the_host_with_their_fields_and_token() {
        let h = host(None);
        let r = handle(
            &h,
            Step::SignIn,
            &req(
                "POST",
                "",
                r#"{"v":1,"tckn":"10000000146","password":"p"}"#,
                None,
            ),
        );
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["token"], "tok");
        let r = handle(
            &h,
            Step::Approve,
            &req("POST", "", r#"{"v":1,"method":"wet"}"#, Some("tok")),
        );
        assert_eq!(r.status, 202);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["form_pdf"], STANDARD.encode(b"%PDF-1.4"));
        let r = handle(&h, Step::Status, &req("GET", "", "", Some("tok")));
        assert_eq!(r.status, 200);
        let seen = h.seen.borrow();
        assert_eq!(seen[0].action, "sign_in");
        assert_eq!(seen[0].password, Some(SecretText("p".into())));
        assert_eq!(seen[1].token, Some(SecretText("tok".into())));
        assert_eq!(seen[2].action, "status");
    }

    #[test]
    fn refusals_become_statuses() {
        for (host_code, status, code) in [
            (HostErrorCode::Invalid, 422, "invalid"),
            (HostErrorCode::Unauthenticated, 401, "unauthenticated"),
            (HostErrorCode::Locked, 429, "locked"),
            (HostErrorCode::Conflict, 409, "conflict"),
            (HostErrorCode::Unavailable, 503, "unavailable"),
            (HostErrorCode::Internal, 503, "unavailable"),
            (HostErrorCode::NotFound, 503, "unavailable"),
        ] {
            let r = handle(
                &host(Some(host_code)),
                Step::Status,
                &req("GET", "", "", Some("t")),
            );
            assert_eq!(r.status, status, "{host_code}");
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(
                v["error"],
                serde_json::json!({"code": code, "message": "sign_in: wrong"})
            );
        }
        // No token, a bad body, an unknown field: refused before the host is asked.
        let h = host(None);
        assert_eq!(
            handle(&h, Step::Status, &req("GET", "", "", None)).status,
            401
        );
        assert_eq!(
            handle(&h, Step::Form, &req("POST", "", "{", Some("t"))).status,
            400
        );
        assert_eq!(
            handle(
                &h,
                Step::Form,
                &req("POST", "", r#"{"v":1,"pin":"1"}"#, Some("t"))
            )
            .status,
            400
        );
        assert_eq!(
            handle(&h, Step::Form, &req("POST", "", r#"{"v":2}"#, Some("t"))).status,
            400
        );
        assert!(h.seen.borrow().is_empty());
    }

    /// A mistyped code, a void one and a dead session are three answers a portal acts on
    /// differently; the codes of the SMS step are its own (another step's `sms_code` refusal,
    /// such as the code quota on a resend, stays `invalid`).
    #[test]
    fn the_sms_code_step_has_codes_of_its_own() {
        let answer = |step: Step, code: HostErrorCode, field: &'static str| {
            let h = FakeHost {
                field: Some(field),
                ..host(Some(code))
            };
            let body = match step {
                Step::ConfirmCode => r#"{"v":1,"code":"123456"}"#,
                _ => "",
            };
            let r = handle(&h, step, &req("POST", "", body, Some("t")));
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (r.status, v["error"]["code"].as_str().unwrap().to_owned())
        };
        for (step, host_code, field, status, code) in [
            (
                Step::ConfirmCode,
                HostErrorCode::Invalid,
                "sms_code",
                422,
                "sms_code",
            ),
            (
                Step::ConfirmCode,
                HostErrorCode::Conflict,
                "sms_code",
                409,
                "sms_code_void",
            ),
            (
                Step::ConfirmCode,
                HostErrorCode::Unauthenticated,
                "token",
                401,
                "unauthenticated",
            ),
            (
                Step::ConfirmCode,
                HostErrorCode::Conflict,
                "stage",
                409,
                "conflict",
            ),
            (
                Step::ConfirmCode,
                HostErrorCode::Invalid,
                "code",
                422,
                "invalid",
            ),
            (
                Step::ResendCode,
                HostErrorCode::Invalid,
                "sms_code",
                422,
                "invalid",
            ),
        ] {
            assert_eq!(
                answer(step, host_code, field),
                (status, code.to_owned()),
                "{step:?} {host_code} {field}"
            );
        }
    }

    /// Each step takes its own fields and no other; the steps that send nothing take an
    /// empty body or `{"v":1}`.
    #[test]
    fn each_step_takes_its_own_fields() {
        let h = host(None);
        for (step, method, body) in [
            (Step::ResendCode, "POST", ""),
            (Step::ResendCode, "POST", r#"{"v":1}"#),
            (Step::Status, "GET", ""),
            (Step::FormPdf, "GET", r#"{"v":1}"#),
        ] {
            let r = handle(&h, step, &req(method, "", body, Some("t")));
            assert!(r.status < 300, "{step:?} {body}: {}", r.status);
        }
        assert_eq!(h.seen.borrow().len(), 4);
        for (step, body, field) in [
            (Step::ResendCode, r#"{"v":1,"code":"123456"}"#, "code"),
            (Step::ResendCode, r#"{"v":2}"#, "v"),
            (Step::ResendCode, "{", "body"),
            (
                Step::ConfirmCode,
                r#"{"v":1,"code":"1","method":"wet"}"#,
                "method",
            ),
            (
                Step::SignIn,
                r#"{"v":1,"tckn":"1","password":"p","code":"1"}"#,
                "code",
            ),
            (
                Step::Form,
                r#"{"v":1,"security_word":"abcd","tckn":"1"}"#,
                "tckn",
            ),
        ] {
            let h = host(None);
            let r = handle(&h, step, &req("POST", "", body, Some("t")));
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(
                (r.status, v["error"]["code"].as_str()),
                (400, Some("request")),
                "{body}"
            );
            let message = v["error"]["message"].as_str().unwrap();
            assert!(message.starts_with(&format!("{field}:")), "{message}");
            assert!(h.seen.borrow().is_empty(), "{body}");
        }
        let r = handle(
            &host(None),
            Step::ResendCode,
            &req("POST", "", r#"{"v":1,"tckn":"1"}"#, Some("t")),
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v["error"]["message"],
            r#"tckn: unknown field here; this request takes no field but v (an empty body or {"v":1})"#
        );
    }

    /// The wet form again: `GET me/form-pdf`, as JSON (base64) or, asked for, the PDF itself.
    #[test]
    fn the_wet_form_is_fetched_again() {
        assert_eq!(Step::route("GET", "me/form-pdf").unwrap(), Step::FormPdf);
        assert_eq!(Step::route("POST", "me/form-pdf").unwrap_err().status, 405);
        let h = host(None);
        let r = handle(&h, Step::FormPdf, &req("GET", "", "", Some("t")));
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["form_pdf"], STANDARD.encode(b"%PDF-1.4"));
        let mut pdf = req("GET", "", "", Some("t"));
        pdf.headers
            .push(("accept".to_owned(), "application/pdf".to_owned()));
        let r = handle(&h, Step::FormPdf, &pdf);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"%PDF-1.4"[..]));
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/pdf"));
        assert_eq!(h.seen.borrow()[0].action, "wet_form");
    }
}
