//! `nesca crl` run and its line read, and CRLs read back with `openssl crl` and pkilint.

use std::fs;
use std::path::{Path, PathBuf};

use super::demo::Demo;
use super::openssl::{extension, norm_serial};
use super::pkilint::assert_pkilint_clean;
use super::run::{openssl, s, Output};

/// What `nesca crl` printed and wrote.
pub(crate) struct CrlOut {
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
pub(crate) fn run_crl(demo: &Demo, delta: bool, out: &Path) -> Output {
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
pub(crate) fn nesca_crl(demo: &Demo, delta: bool, name: &str) -> CrlOut {
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
pub(crate) fn parse_crl_number(v: &str) -> Option<u128> {
    let v = v.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u128::from_str_radix(&h.replace(':', ""), 16).ok(),
        None => v.parse().ok(),
    }
}

/// `openssl crl -inform DER -in FILE -noout -text`.
#[track_caller]
pub(crate) fn crl_text(der: &Path) -> String {
    openssl(&["crl", "-inform", "DER", "-in", s(der), "-noout", "-text"]).stdout
}

/// The CRL Number in `openssl crl -text` output.
#[track_caller]
pub(crate) fn crl_number(text: &str) -> u128 {
    let (critical, body) = extension(text, "X509v3 CRL Number")
        .unwrap_or_else(|| panic!("the CRL has no CRL Number:\n{text}"));
    assert!(!critical, "cRLNumber must not be critical:\n{text}");
    parse_crl_number(&body).unwrap_or_else(|| panic!("unreadable CRL Number {body:?}:\n{text}"))
}

/// The entries of `openssl crl -text` output: (normalised serial, reason as OpenSSL names it).
pub(crate) fn crl_entries(text: &str) -> Vec<(String, Option<String>)> {
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
pub(crate) fn crl_reason_of(text: &str, serial: &str) -> Option<Option<String>> {
    let want = norm_serial(serial);
    crl_entries(text)
        .into_iter()
        .find(|(s, _)| *s == want)
        .map(|(_, r)| r)
}

/// `lint_crl lint -t CRL -p PKIX FILE` reports nothing.
#[track_caller]
pub(crate) fn assert_crl_lints_clean(der: &Path) {
    assert_pkilint_clean("lint_crl", &["lint", "-t", "CRL", "-p", "PKIX"], der);
}

/// Checks of every CRL nesca makes: v2, nextUpdate, AKI, a non-critical CRL Number; a full CRL
/// carries a non-critical freshestCRL naming the delta; a delta a critical deltaCRLIndicator
/// (whose base number is returned). Returns the text.
#[track_caller]
pub(crate) fn check_crl_shape(der: &Path, delta: bool) -> (String, Option<u128>) {
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
