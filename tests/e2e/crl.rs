//! `nesca crl`: generation, signing (in the HSM) and publication of full and delta CRLs, checked
//! with `openssl crl` and pkilint's `lint_crl` (docs/STANDARDS.md "CRLs").

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::crl::*;
use crate::support::*;

/// `openssl crl -verify -CAfile issuing-ca.pem` says `verify OK`.
#[track_caller]
fn assert_crl_signature_verifies(demo: &Demo, der: &Path) {
    let issuing = demo.path("issuing-ca.pem");
    let out = openssl_may_fail(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        s(der),
        "-noout",
        "-verify",
        "-CAfile",
        s(&issuing),
    ]);
    assert!(
        out.success() && format!("{}{}", out.stdout, out.stderr).contains("verify OK"),
        "openssl does not verify the CRL's signature: {}",
        out.describe()
    );
}

/// The publication directory's full CRL.
fn published_full(demo: &Demo) -> PathBuf {
    demo.dir.join("crl").join("nes-ca.crl")
}

#[test]
fn delta_before_any_full_crl_is_refused_then_full_crls_number_upwards() {
    let demo = Demo::init_with(&["--public-url", LINT_URL]);

    // A delta needs a published full CRL as its base.
    let d = demo.work.join("early-delta.der");
    let out = run_crl(&demo, true, &d);
    assert_refusal(&out, &["full CRL"]);
    assert!(
        !d.exists(),
        "a refused delta left a file at --out: {}",
        out.describe()
    );
    assert!(
        !demo.dir.join("crl").join("nes-ca-delta.crl").exists(),
        "a refused delta was published"
    );

    // An empty full CRL: no revokedCertificates at all.
    let f1 = nesca_crl(&demo, false, "full-1.der");
    assert_eq!(f1.entries, 0, "{}", f1.line);
    let (text, _) = check_crl_shape(&f1.path, false);
    assert!(
        text.contains("No Revoked Certificates."),
        "an empty CRL must omit revokedCertificates:\n{text}"
    );
    assert_eq!(crl_number(&text), f1.number, "{}", f1.line);
    assert_crl_signature_verifies(&demo, &f1.path);
    assert_crl_lints_clean(&f1.path);

    // Published where /crl/ serves it from, the same bytes as the --out copy.
    let published = published_full(&demo);
    assert_eq!(
        fs::canonicalize(&f1.published).ok(),
        fs::canonicalize(&published).ok(),
        "published= names another file than crl.dir/nes-ca.crl: {}",
        f1.line
    );
    assert_eq!(
        fs::read(&published).expect("published CRL"),
        f1.der,
        "the published CRL differs from the --out copy"
    );

    // A second full CRL: a higher number.
    let f2 = nesca_crl(&demo, false, "full-2.der");
    assert!(
        f2.number > f1.number,
        "CRL numbers must increase: {} then {}",
        f1.line,
        f2.line
    );
    assert_eq!(fs::read(&published).expect("published CRL"), f2.der);
    assert_crl_lints_clean(&f2.path);

    // Now a delta works, on the latest full CRL, and numbers go on upwards.
    let d1 = nesca_crl(&demo, true, "delta-1.der");
    assert!(d1.number > f2.number, "{} then {}", f2.line, d1.line);
    let (dtext, base) = check_crl_shape(&d1.path, true);
    assert_eq!(
        base,
        Some(f2.number),
        "the delta's base is not the latest full CRL:\n{dtext}"
    );
    assert_eq!(crl_number(&dtext), d1.number);
    assert!(dtext.contains("No Revoked Certificates."), "{dtext}");
    assert_eq!(
        fs::read(demo.dir.join("crl").join("nes-ca-delta.crl")).expect("published delta"),
        d1.der
    );
    assert_crl_signature_verifies(&demo, &d1.path);
    assert_crl_lints_clean(&d1.path);
}

#[test]
fn crl_to_an_unwritable_out_is_refused_before_a_number_is_used() {
    let demo = Demo::init();
    let f1 = nesca_crl(&demo, false, "full-1.der");
    let published = published_full(&demo);
    let before = fs::read(&published).expect("published CRL");

    for delta in [false, true] {
        let bad = demo.work.join("missing").join("x.der");
        let out = run_crl(&demo, delta, &bad);
        assert_refusal(&out, &["out", "missing"]);
        assert!(!bad.exists());
        assert_eq!(
            fs::read(&published).expect("published CRL"),
            before,
            "a refused `nesca crl` changed the published CRL: {}",
            out.describe()
        );
        assert!(
            !demo.dir.join("crl").join("nes-ca-delta.crl").exists(),
            "a refused `nesca crl --delta` published a delta: {}",
            out.describe()
        );
    }

    // The refusals took no CRL number: the next one follows the first directly.
    let f2 = nesca_crl(&demo, false, "full-2.der");
    assert_eq!(
        f2.number,
        f1.number + 1,
        "a refused `nesca crl` consumed CRL numbers: {} then {}",
        f1.line,
        f2.line
    );
}

/// A revoked and a suspended certificate in a full CRL, each with its reason; an active one
/// not listed; the revoked one rejected by `openssl verify -crl_check`.
#[test]
fn full_crl_lists_revoked_and_suspended_certificates() {
    let demo = Demo::init_with(&["--public-url", LINT_URL]);
    let config = demo.config();
    let mut serials = Vec::new();
    for name in ["a", "b", "c"] {
        let csr = demo.csr(name, Key::P256);
        let (_, serial) = demo.issue_ok(&csr, &format!("{name}.pem"), &[]);
        serials.push(serial);
    }
    demo.nesca(&[
        "revoke",
        "--config",
        s(&config),
        "--serial",
        &serials[0],
        "--holder-tckn",
        TCKN,
        "--reason",
        "superseded",
    ])
    .ok();
    demo.nesca(&[
        "suspend",
        "--config",
        s(&config),
        "--serial",
        &serials[1],
        "--holder-tckn",
        TCKN,
    ])
    .ok();
    let f = nesca_crl(&demo, false, "full.der");
    assert_eq!(f.entries, 2, "{}", f.line);
    let (text, _) = check_crl_shape(&f.path, false);
    assert_eq!(
        crl_reason_of(&text, &serials[0]),
        Some(Some("Superseded".into())),
        "{text}"
    );
    assert_eq!(
        crl_reason_of(&text, &serials[1]),
        Some(Some("Certificate Hold".into())),
        "{text}"
    );
    assert_eq!(crl_reason_of(&text, &serials[2]), None, "{text}");
    assert_crl_signature_verifies(&demo, &f.path);
    assert_crl_lints_clean(&f.path);

    let pem = demo.work.join("full.pem");
    openssl(&["crl", "-inform", "DER", "-in", s(&f.path), "-out", s(&pem)]);
    let chain = demo.path("ca-chain.pem");
    let verify = |cert: &str| {
        openssl_may_fail(&[
            "verify",
            "-crl_check",
            "-CAfile",
            s(&chain),
            "-CRLfile",
            s(&pem),
            s(&demo.work.join(cert)),
        ])
    };
    let a = verify("a.pem");
    assert!(
        !a.success() && format!("{}{}", a.stdout, a.stderr).contains("certificate revoked"),
        "{}",
        a.describe()
    );
    let c = verify("c.pem");
    assert!(c.success() && c.stdout.contains(": OK"), "{}", c.describe());
}
