//! The upload protocol, version 1 (`docs/channels/batch-import.md`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use nesca_plugin_api::host_api::ImportList;
use nesca_plugin_api::{HostError, HostErrorCode, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::ImportHost;

/// The body of `POST /v1/institutions/{id}/lists`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListUpload {
    pub v: u32,
    /// The file's name: `.xlsx` or `.csv`.
    pub file_name: String,
    /// The list, base64.
    pub file: String,
    /// The officer's detached CMS signature over the file, DER, base64.
    #[serde(default)]
    pub signature: Option<String>,
    /// The scan of the list signed on paper, base64.
    #[serde(default)]
    pub wet_scan: Option<String>,
}

/// A request this protocol refuses before the host is asked.
#[derive(Debug, PartialEq, Eq)]
pub struct UploadError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl UploadError {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> UploadError {
        UploadError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn response(&self) -> HttpResponse {
        HttpResponse::json(
            self.status,
            &json!({ "v": 1, "error": { "code": self.code, "message": self.message } }),
        )
    }
}

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST /v1/institutions/{id}/lists`
    Upload { institution: &'a str },
    /// `/v1/applicants/…`: an invited person's step.
    Applicant(crate::applicant::Step),
}

/// Routes a request, or says why not (404, 405).
pub fn route<'a>(method: &str, path: &'a str) -> Result<Route<'a>, UploadError> {
    if let Some(rest) = path.strip_prefix("/v1/applicants/") {
        return crate::applicant::Step::route(method, rest).map(Route::Applicant);
    }
    let institution = path
        .strip_prefix("/v1/institutions/")
        .and_then(|rest| rest.strip_suffix("/lists"))
        .filter(|id| !id.is_empty() && !id.contains('/'));
    match (institution, method) {
        (Some(institution), "POST") => Ok(Route::Upload { institution }),
        (Some(_), _) => Err(UploadError::new(405, "method_not_allowed", "use POST")),
        (None, _) => Err(UploadError::new(
            404,
            "not_found",
            format!("no endpoint {path}"),
        )),
    }
}

fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, UploadError> {
    STANDARD
        .decode(text)
        .map_err(|e| UploadError::new(400, "request", format!("{field}: not base64: {e}")))
}

/// Parses an upload into the host's request.
fn parse(institution: &str, body: &[u8]) -> Result<ImportList, UploadError> {
    let u: ListUpload = serde_json::from_slice(body)
        .map_err(|e| UploadError::new(400, "request", format!("body: {e}")))?;
    if u.v != 1 {
        return Err(UploadError::new(
            400,
            "request",
            format!("v: version {} is not spoken here (1 is)", u.v),
        ));
    }
    let (signature_der, wet_scan) = match (&u.signature, &u.wet_scan) {
        (Some(s), None) => (Some(decode("signature", s)?), None),
        (None, Some(w)) => (None, Some(decode("wet_scan", w)?)),
        _ => {
            return Err(UploadError::new(
                400,
                "request",
                "signature: give exactly one of signature and wet_scan",
            ))
        }
    };
    Ok(ImportList {
        institution: institution.to_owned(),
        file_name: u.file_name,
        file: decode("file", &u.file)?,
        signature_der,
        wet_scan,
    })
}

/// A refused import: 422, with the protocol's code for the field the host names (the
/// signature, the institution, the file), `refused` for anything else; 503 `unavailable` when
/// nesca could not decide now (its store busy, the officer's certificate status not to be
/// had): the same upload may succeed later.
fn refusal(e: &HostError) -> UploadError {
    if e.code == HostErrorCode::Unavailable {
        return UploadError::new(503, "unavailable", e.to_string());
    }
    let code = match e.field.as_deref() {
        Some("signature") => "signature",
        Some("institution") => "institution",
        Some("file" | "file_name") => "file",
        _ => "refused",
    };
    UploadError::new(422, code, e.to_string())
}

/// Answers one request.
pub(crate) fn handle(host: &dyn ImportHost, request: &HttpRequest) -> HttpResponse {
    let result = (|| {
        // The portal connects with a certificate nesca issued it (the listener checked it).
        if request.client_cert_chain.is_empty() {
            return Err(UploadError::new(
                401,
                "client_certificate",
                "client certificate: the portal must connect with its secure-communication certificate",
            ));
        }
        let institution = match route(&request.method, &request.path)? {
            Route::Upload { institution } => institution,
            Route::Applicant(step) => {
                return Ok(Err(crate::applicant::handle(host, step, request)))
            }
        };
        let list = parse(institution, &request.body)?;
        host.import_list(&list).map(Ok).map_err(|e| refusal(&e))
    })();
    match result {
        Ok(Err(applicant)) => applicant,
        Ok(Ok(imported)) => {
            let wants_csv = request
                .header("accept")
                .is_some_and(|a| a.contains("text/csv"));
            let status = if imported.replayed { 200 } else { 201 };
            if wants_csv {
                return HttpResponse::new(status, imported.report_csv)
                    .with_header("content-type", "text/csv; charset=utf-8");
            }
            HttpResponse::json(status, &imported)
        }
        Err(e) => e.response(),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use nesca_plugin_api::host_api::ListImported;
    use nesca_plugin_api::HostErrorCode;

    use super::*;

    struct FakeHost {
        seen: RefCell<Vec<ImportList>>,
        answer: Result<ListImported, HostError>,
    }

    impl ImportHost for FakeHost {
        fn import_list(&self, list: &ImportList) -> Result<ListImported, HostError> {
            self.seen.borrow_mut().push(list.clone());
            self.answer.clone()
        }
        fn applicant(
            &self,
            _: &nesca_plugin_api::host_api::ApplicantCall,
        ) -> Result<nesca_plugin_api::host_api::ApplicantAnswer, HostError> {
            Err(HostError::internal("not here"))
        }
    }

    fn imported(replayed: bool) -> ListImported {
        ListImported {
            file_sha256: "ab".repeat(32),
            status: "accepted".into(),
            replayed,
            valid: 2,
            invalid: 1,
            created: 2,
            already_open: 0,
            problems: vec![],
            warnings: vec![],
            report_csv: "row,field,reason\r\n3,tckn,x\r\n".into(),
        }
    }

    fn request(path: &str, body: &str, cert: bool) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: path.into(),
            query: None,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            client_cert_chain: if cert { vec![vec![0x30]] } else { vec![] },
        }
    }

    fn host(answer: Result<ListImported, HostError>) -> FakeHost {
        FakeHost {
            seen: RefCell::new(vec![]),
            answer,
        }
    }

    fn error_code(r: &HttpResponse) -> (u16, String) {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        (
            r.status,
            v["error"]["code"].as_str().unwrap_or_default().to_owned(),
        )
    }

    const GOOD: &str = r#"{"v":1,"file_name":"liste.csv","file":"YQ==","signature":"MAA="}"#;

    #[test]
    fn an_upload_reaches_the_host_decoded() {
        let h = host(Ok(imported(false)));
        let r = handle(&h, &request("/v1/institutions/ankara-bb/lists", GOOD, true));
        assert_eq!(r.status, 201);
        let seen = h.seen.borrow();
        assert_eq!(seen[0].institution, "ankara-bb");
        assert_eq!(
            (seen[0].file.as_slice(), seen[0].signature_der.as_deref()),
            (&b"a"[..], Some(&[0x30u8, 0][..]))
        );
        assert_eq!(seen[0].wet_scan, None);
        // A replay answers 200; asking for csv gets the report as csv.
        let h = host(Ok(imported(true)));
        let mut req = request("/v1/institutions/ankara-bb/lists", GOOD, true);
        req.headers.push(("accept".into(), "text/csv".into()));
        let r = handle(&h, &req);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"row,field,reason\r\n3,tckn,x\r\n");
    }

    #[test]
    fn refusals_carry_their_code() {
        let cases: [(&str, &str, bool, u16, &str); 7] = [
            (
                "/v1/institutions/x/lists",
                GOOD,
                false,
                401,
                "client_certificate",
            ),
            ("/v1/institutions/x/other", GOOD, true, 404, "not_found"),
            ("/v1/institutions/x/lists", "{", true, 400, "request"),
            (
                "/v1/institutions/x/lists",
                r#"{"v":2,"file_name":"a.csv","file":"","signature":""}"#,
                true,
                400,
                "request",
            ),
            (
                "/v1/institutions/x/lists",
                r#"{"v":1,"file_name":"a.csv","file":""}"#,
                true,
                400,
                "request",
            ),
            (
                "/v1/institutions/x/lists",
                r#"{"v":1,"file_name":"a.csv","file":"!!","signature":"MAA="}"#,
                true,
                400,
                "request",
            ),
            (
                "/v1/institutions/x/lists",
                r#"{"v":1,"file_name":"a.csv","file":"","signature":"MAA=","x":1}"#,
                true,
                400,
                "request",
            ),
        ];
        for (path, body, cert, status, code) in cases {
            let h = host(Ok(imported(false)));
            let r = handle(&h, &request(path, body, cert));
            assert_eq!(error_code(&r), (status, code.to_owned()), "{path} {body}");
            assert!(h.seen.borrow().is_empty(), "{body}");
        }
        for (refusal, code) in [
            (
                HostError::invalid("signature", "not the officer's signature"),
                "signature",
            ),
            (
                HostError::invalid("institution", "no registered institution \"x\""),
                "institution",
            ),
            (
                HostError::invalid("file", "header: the column \"Adı\" is missing"),
                "file",
            ),
            (
                HostError::invalid("file_name", "must end in .xlsx or .csv"),
                "file",
            ),
            (
                HostError::new(HostErrorCode::Unavailable, "store", "busy"),
                "unavailable",
            ),
            (
                HostError::without_field(HostErrorCode::Internal, "DER Certificate: bad"),
                "refused",
            ),
        ] {
            let message = refusal.to_string();
            let h = host(Err(refusal));
            let r = handle(&h, &request("/v1/institutions/x/lists", GOOD, true));
            let status = if code == "unavailable" { 503 } else { 422 };
            assert_eq!(error_code(&r), (status, code.to_owned()), "{message}");
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["error"]["message"], message);
        }
        let mut get = request("/v1/institutions/x/lists", GOOD, true);
        get.method = "GET".into();
        assert_eq!(error_code(&handle(&host(Ok(imported(false))), &get)).0, 405);
    }
}
