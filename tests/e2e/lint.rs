//! pkilint (`lint_etsi_cert`, type QCP-N-QSCD-NON-EIDAS-FINAL-CERTIFICATE) on issued NES
//! certificates. These tests fail, never skip, when pkilint is not installed.

use crate::support::*;

/// Issues a certificate for a CSR with `key` under a CA initialised with `LINT_URL` and asserts
/// that pkilint reports nothing at WARNING or above (its exit code is the number of findings).
fn assert_lints_clean(key: Key) {
    let lint = lint_etsi_cert(); // fail first, and clearly, when pkilint is missing
    assert!(lint.is_file());
    let demo = Demo::init_with(&["--public-url", LINT_URL]);
    let csr = demo.csr("req", key);
    let (cert, _) = demo.issue_ok(&csr, "cert.pem", &[]);
    let text = cert_text(&cert);
    assert!(
        text.contains(&format!("URI:{LINT_URL}/")),
        "--public-url {LINT_URL} does not appear in the certificate's URLs:\n{text}"
    );
    let (findings, out) = pkilint(&cert);
    assert!(
        out.status.code() == Some(0) && findings.is_empty(),
        "pkilint findings for a {key:?} certificate ({} finding(s)):\n{}",
        findings.len(),
        out.stdout
    );
}

#[test]
fn pkilint_finds_nothing_in_an_ecdsa_p256_certificate() {
    assert_lints_clean(Key::P256);
}

#[test]
fn pkilint_finds_nothing_in_an_rsa_2048_certificate() {
    assert_lints_clean(Key::Rsa2048);
}

/// With the default 127.0.0.1 URL, the only acceptable finding is the internal-domain one.
#[test]
fn pkilint_finds_only_the_internal_domain_in_a_default_demo_certificate() {
    lint_etsi_cert();
    let demo = Demo::init();
    let csr = demo.csr("req", Key::P256);
    let (cert, _) = demo.issue_ok(&csr, "cert.pem", &[]);
    let (findings, out) = pkilint(&cert);
    let others: Vec<_> = findings
        .iter()
        .filter(|(_, code, _)| code != "etsi.internal_domain_name")
        .collect();
    assert!(
        others.is_empty(),
        "pkilint findings other than etsi.internal_domain_name: {others:?}\n{}",
        out.stdout
    );
}
