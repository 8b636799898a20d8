//! `openssl ocsp` against a running responder: a query, its verified answer, and waiting for a
//! certificate's status to reach the responder.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::demo::Demo;
use super::net::wait_for;
use super::pkilint::assert_pkilint_clean;
use super::run::{openssl, openssl_may_fail, s, Output};

/// The unsigned OCSPResponse {responseStatus malformedRequest(1)}.
pub(crate) const MALFORMED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x01];

/// The unsigned OCSPResponse {responseStatus unauthorized(6)}.
pub(crate) const UNAUTHORIZED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x06];

/// How long a status change may take to reach the responder (it polls the store).
pub(crate) const STATUS_LIMIT: Duration = Duration::from_secs(10);

/// An `openssl ocsp` exchange: its output (stdout and stderr together) and the saved response.
pub(crate) struct OcspRun {
    pub out: Output,
    pub text: String,
    pub respout: PathBuf,
}

impl OcspRun {
    /// `Response verify OK`, and no nonce trouble.
    pub(crate) fn verified(&self) -> bool {
        self.text.contains("Response verify OK")
            && !self.text.contains("Response Verify Failure")
            && !self.text.contains("WARNING: no nonce in response")
            && !self.text.contains("Nonce Verify error")
    }

    /// The status line `openssl ocsp` prints for `cert` (`PATH: good`).
    pub(crate) fn status_of(&self, cert: &Path) -> Option<String> {
        let prefix = format!("{}: ", s(cert));
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().to_string())
    }

    /// Whitespace collapsed, for lines such as `Revocation Time: Jan  1 00:00:00 1970 GMT`.
    pub(crate) fn squeezed(&self) -> String {
        self.text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    pub(crate) fn describe(&self) -> String {
        self.out.describe()
    }
}

/// `openssl ocsp -issuer ISSUING EXTRA… -cert C… -url URL/ocsp -CAfile ca-chain.pem -resp_text
/// -respout WORK/RESPOUT`, whatever its outcome. `extra` comes before the `-cert` options (a
/// digest option applies to the certificates after it).
#[track_caller]
pub(crate) fn ocsp_query(
    demo: &Demo,
    url: &str,
    certs: &[&Path],
    extra: &[&str],
    respout: &str,
) -> OcspRun {
    let mut about: Vec<&str> = extra.to_vec();
    for c in certs {
        about.extend_from_slice(&["-cert", s(c)]);
    }
    ocsp_exchange(demo, url, &about, respout)
}

/// `openssl ocsp -issuer ISSUING -serial 0xHEX -url URL/ocsp -CAfile ca-chain.pem -resp_text
/// -respout WORK/RESPOUT`: the answer about a bare serial, whatever its outcome.
#[track_caller]
pub(crate) fn ocsp_serial(demo: &Demo, url: &str, serial_hex: &str, respout: &str) -> OcspRun {
    let serial = format!("0x{serial_hex}");
    ocsp_exchange(demo, url, &["-serial", &serial], respout)
}

/// `openssl ocsp -issuer ISSUING ABOUT… -url URL/ocsp -timeout 20 -CAfile ca-chain.pem
/// -resp_text -respout WORK/RESPOUT`, whatever its outcome.
#[track_caller]
fn ocsp_exchange(demo: &Demo, url: &str, about: &[&str], respout: &str) -> OcspRun {
    let issuing = demo.path("issuing-ca.pem");
    let chain = demo.path("ca-chain.pem");
    let respout = demo.work.join(respout);
    let _ = fs::remove_file(&respout);
    let url = format!("{url}/ocsp");
    let mut args = vec!["ocsp", "-issuer", s(&issuing)];
    args.extend_from_slice(about);
    args.extend_from_slice(&[
        "-url",
        &url,
        "-timeout",
        "20",
        "-CAfile",
        s(&chain),
        "-resp_text",
        "-respout",
        s(&respout),
    ]);
    let out = openssl_may_fail(&args);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    OcspRun { out, text, respout }
}

/// Whether `run` answers `serial_hex` as nesca answers a serial it never issued: revoked,
/// certificateHold, revocationTime 1970-01-01 (docs/STANDARDS.md, "OCSP").
pub(crate) fn answered_never_issued(run: &OcspRun, serial_hex: &str) -> bool {
    let squeezed = run.squeezed();
    run.verified()
        && squeezed.contains(&format!("0x{serial_hex}: revoked"))
        && squeezed.contains("Reason: certificateHold")
        && squeezed.contains("Revocation Time: Jan 1 00:00:00 1970 GMT")
}

/// Asks about `cert` until `ok` accepts the answer (a verified response), for at most
/// [`STATUS_LIMIT`]; panics with the last answer otherwise.
#[track_caller]
pub(crate) fn ocsp_until(
    demo: &Demo,
    url: &str,
    cert: &Path,
    respout: &str,
    what: &str,
    ok: impl Fn(&OcspRun) -> bool,
) -> OcspRun {
    wait_for(what, STATUS_LIMIT, Duration::from_millis(200), || {
        let r = ocsp_query(demo, url, &[cert], &[], respout);
        if r.verified() && ok(&r) {
            Ok(r)
        } else {
            Err(r.describe())
        }
    })
}

/// Waits for `cert` to be `good`.
#[track_caller]
pub(crate) fn ocsp_good(demo: &Demo, url: &str, cert: &Path, respout: &str) -> OcspRun {
    ocsp_until(demo, url, cert, respout, "OCSP status good", |r| {
        r.status_of(cert).as_deref() == Some("good")
    })
}

/// Waits for `cert` to be `revoked` with `Reason: REASON`.
#[track_caller]
pub(crate) fn ocsp_revoked(
    demo: &Demo,
    url: &str,
    cert: &Path,
    reason: &str,
    respout: &str,
) -> OcspRun {
    let what = format!("OCSP status revoked ({reason})");
    ocsp_until(demo, url, cert, respout, &what, |r| {
        r.status_of(cert).as_deref() == Some("revoked")
            && r.squeezed().contains(&format!("Reason: {reason}"))
    })
}

/// `lint_ocsp_response lint FILE` reports nothing.
#[track_caller]
pub(crate) fn assert_ocsp_lints_clean(resp: &Path) {
    assert_pkilint_clean("lint_ocsp_response", &["lint"], resp);
}

/// `openssl ocsp -issuer ISSUING -cert CERT [-no_nonce] -reqout WORK/NAME`: a request, DER.
#[track_caller]
pub(crate) fn make_request(demo: &Demo, cert: &Path, nonce: bool, name: &str) -> Vec<u8> {
    let issuing = demo.path("issuing-ca.pem");
    let req = demo.work.join(name);
    let mut args = vec!["ocsp", "-issuer", s(&issuing), "-cert", s(cert)];
    if !nonce {
        args.push("-no_nonce");
    }
    args.extend_from_slice(&["-reqout", s(&req)]);
    openssl(&args);
    fs::read(&req).expect("the OCSP request")
}
