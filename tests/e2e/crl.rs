//! `nesca crl`: generation, signing (in the HSM) and publication of full and delta CRLs, checked
//! with `openssl crl` and pkilint's `lint_crl` (STANDARDS.md "CRLs").

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::*;

/// What `nesca crl` printed and wrote.
pub struct CrlOut {
    pub number: u128,
    pub entries: u64,
    /// The `published=` path.
    pub published: PathBuf,
    /// The `--out` copy.
    pub path: PathBuf,
    pub der: Vec<u8>,
    pub line: String,
}

/// `nesca crl --config … [--delta] --out WORK/NAME`, whatever the outcome.
#[track_caller]
pub fn run_crl(demo: &Demo, delta: bool, out: &Path) -> Output {
    let config = demo.config();
    let mut args = vec!["crl", "--config", s(&config)];
    if delta {
        args.push("--delta");
    }
    args.extend_from_slice(&["--out", s(out)]);
    demo.nesca(&args)
}

/// `nesca crl` to `WORK/NAME`; panics unless it succeeds and prints exactly
/// `full|delta CRL number=N entries=M bytes=B published=PATH`, with B the size of the copy.
#[track_caller]
pub fn nesca_crl(demo: &Demo, delta: bool, name: &str) -> CrlOut {
    let path = demo.work.join(name);
    let out = run_crl(demo, delta, &path).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "nesca crl must print exactly one line: {}",
        out.describe()
    );
    let line = lines[0].trim().to_string();
    let kind = if delta { "delta CRL " } else { "full CRL " };
    let rest = line
        .strip_prefix(kind)
        .unwrap_or_else(|| panic!("the line does not start with {kind:?}: {}", out.describe()));
    let mut number = None;
    let mut entries = None;
    let mut bytes: Option<u64> = None;
    let mut published = None;
    for token in rest.split(' ') {
        match token.split_once('=') {
            Some(("number", v)) => number = parse_crl_number(v),
            Some(("entries", v)) => entries = v.parse().ok(),
            Some(("bytes", v)) => bytes = v.parse().ok(),
            Some(("published", v)) => published = Some(PathBuf::from(v)),
            _ => panic!("unexpected token {token:?} in {line:?}"),
        }
    }
    let (Some(number), Some(entries), Some(_), Some(published)) =
        (number, entries, bytes, published)
    else {
        panic!("the line lacks number=, entries=, bytes= or published=: {line:?}");
    };
    let der = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(
        Some(der.len() as u64),
        bytes,
        "bytes= does not match the --out copy: {line}"
    );
    CrlOut {
        number,
        entries,
        published,
        path,
        der,
        line,
    }
}

/// A CRL number as OpenSSL or nesca prints it: decimal, or hex with `0x`.
pub fn parse_crl_number(v: &str) -> Option<u128> {
    let v = v.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u128::from_str_radix(&h.replace(':', ""), 16).ok(),
        None => v.parse().ok(),
    }
}

/// `openssl crl -inform DER -in FILE -noout -text`.
#[track_caller]
pub fn crl_text(der: &Path) -> String {
    openssl(&["crl", "-inform", "DER", "-in", s(der), "-noout", "-text"]).stdout
}

/// The CRL Number in `openssl crl -text` output.
#[track_caller]
pub fn crl_number(text: &str) -> u128 {
    let (critical, body) = extension(text, "X509v3 CRL Number")
        .unwrap_or_else(|| panic!("the CRL has no CRL Number:\n{text}"));
    assert!(!critical, "cRLNumber must not be critical:\n{text}");
    parse_crl_number(&body).unwrap_or_else(|| panic!("unreadable CRL Number {body:?}:\n{text}"))
}

/// The entries of `openssl crl -text` output: (normalised serial, reason as OpenSSL names it).
pub fn crl_entries(text: &str) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim() != "Revoked Certificates:")
        .skip(1);
    while let Some(l) = lines.next() {
        let t = l.trim();
        if t.starts_with("Signature Algorithm") || t.starts_with("Signature Value") {
            break;
        }
        if let Some(serial) = t.strip_prefix("Serial Number:") {
            out.push((norm_serial(serial), None));
        } else if t.starts_with("X509v3 CRL Reason Code") {
            let reason = lines.next().map(|r| r.trim().to_string());
            if let Some(last) = out.last_mut() {
                last.1 = reason;
            }
        }
    }
    out
}

/// The reason OpenSSL prints for `serial` in a CRL, `Some(None)` for an entry without one,
/// `None` when the serial is not listed.
pub fn crl_reason_of(text: &str, serial: &str) -> Option<Option<String>> {
    let want = norm_serial(serial);
    crl_entries(text)
        .into_iter()
        .find(|(s, _)| *s == want)
        .map(|(_, r)| r)
}

/// `lint_crl lint -t CRL -p PKIX FILE` reports nothing.
#[track_caller]
pub fn assert_crl_lints_clean(der: &Path) {
    assert_pkilint_clean("lint_crl", &["lint", "-t", "CRL", "-p", "PKIX"], der);
}

/// Checks of every CRL nesca makes: v2, nextUpdate, AKI, a non-critical CRL Number; a full CRL
/// carries a non-critical freshestCRL naming the delta; a delta a critical deltaCRLIndicator
/// (whose base number is returned). Returns the text.
#[track_caller]
pub fn check_crl_shape(der: &Path, delta: bool) -> (String, Option<u128>) {
    let text = crl_text(der);
    assert!(text.contains("Version 2"), "not a v2 CRL:\n{text}");
    assert!(text.contains("Next Update:"), "no nextUpdate:\n{text}");
    assert!(
        !text.contains("Next Update: NONE"),
        "nextUpdate must be present:\n{text}"
    );
    assert!(
        extension(&text, "X509v3 Authority Key Identifier").is_some(),
        "no authorityKeyIdentifier:\n{text}"
    );
    crl_number(&text);
    let indicator = extension(&text, "X509v3 Delta CRL Indicator");
    let freshest = extension(&text, "X509v3 Freshest CRL");
    if delta {
        let (critical, body) =
            indicator.unwrap_or_else(|| panic!("a delta CRL without deltaCRLIndicator:\n{text}"));
        assert!(
            critical,
            "deltaCRLIndicator must be critical (`Delta CRL Indicator: critical`):\n{text}"
        );
        assert!(
            freshest.is_none(),
            "a delta CRL must not carry freshestCRL:\n{text}"
        );
        let base = parse_crl_number(&body)
            .unwrap_or_else(|| panic!("unreadable base CRL number {body:?}:\n{text}"));
        (text, Some(base))
    } else {
        assert!(
            indicator.is_none(),
            "a full CRL must not carry deltaCRLIndicator:\n{text}"
        );
        let (critical, body) =
            freshest.unwrap_or_else(|| panic!("a full CRL without Freshest CRL:\n{text}"));
        assert!(!critical, "freshestCRL must not be critical:\n{text}");
        assert!(
            body.contains("nes-ca-delta.crl"),
            "freshestCRL does not name the delta CRL:\n{text}"
        );
        (text, None)
    }
}

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
