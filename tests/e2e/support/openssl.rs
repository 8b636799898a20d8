//! CSRs and self-signed certificates made with `openssl req`, and certificates read back with
//! `openssl x509` and checked with `openssl verify`.

use std::path::{Path, PathBuf};

use super::run::{openssl, openssl_may_fail, s, Output};
use super::time::parse_time;

/// The key of a CSR.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Key {
    P256,
    P384,
    Secp256k1,
    Rsa1024,
    Rsa2048,
}

impl Key {
    fn req_args(self) -> &'static [&'static str] {
        match self {
            Key::P256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Key::P384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            Key::Secp256k1 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
            Key::Rsa1024 => &["-newkey", "rsa:1024"],
            Key::Rsa2048 => &["-newkey", "rsa:2048"],
        }
    }
}

/// Makes `DIR/NAME.csr` (PEM, or DER when `der`) with a new key in `DIR/NAME.key`. The subject
/// is deliberately not the holder's: nesca takes the subject from its flags.
#[track_caller]
pub(crate) fn make_csr(dir: &Path, name: &str, key: Key, der: bool) -> PathBuf {
    make_csr_for(dir, name, key, "/CN=ignored", der)
}

/// [`make_csr`] naming `subject` (openssl's `/C=…/O=…/CN=…` form).
#[track_caller]
pub(crate) fn make_csr_for(dir: &Path, name: &str, key: Key, subject: &str, der: bool) -> PathBuf {
    let csr = dir.join(format!("{name}.csr"));
    let keyfile = dir.join(format!("{name}.key"));
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(key.req_args());
    args.extend_from_slice(&[
        "-nodes",
        "-keyout",
        s(&keyfile),
        "-subj",
        subject,
        "-out",
        s(&csr),
    ]);
    if der {
        args.extend_from_slice(&["-outform", "DER"]);
    }
    openssl(&args);
    csr
}

/// `openssl req -x509` with a new P-256 key (unencrypted, to `key`): a self-signed certificate
/// (PEM, to `cert`) for `subject`, valid for `days` days, with the `extra` options (extensions,
/// a configuration).
#[track_caller]
pub(crate) fn self_signed_p256(key: &Path, cert: &Path, subject: &str, days: u32, extra: &[&str]) {
    let days = days.to_string();
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(Key::P256.req_args());
    args.extend_from_slice(&[
        "-nodes",
        "-keyout",
        s(key),
        "-out",
        s(cert),
        "-subj",
        subject,
        "-days",
        &days,
    ]);
    args.extend_from_slice(extra);
    openssl(&args);
}

/// The public key of a CSR, as PEM.
#[track_caller]
pub(crate) fn csr_public_key(csr: &Path, der: bool) -> String {
    let mut args = vec!["req", "-in", s(csr), "-noout", "-pubkey"];
    if der {
        args.extend_from_slice(&["-inform", "DER"]);
    }
    openssl(&args).stdout
}

/// The public key of a certificate, as PEM.
#[track_caller]
pub(crate) fn cert_public_key(cert: &Path) -> String {
    openssl(&["x509", "-in", s(cert), "-noout", "-pubkey"]).stdout
}

/// `openssl x509 -text` of a certificate, names printed in UTF-8.
#[track_caller]
pub(crate) fn cert_text(cert: &Path) -> String {
    openssl(&[
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-text",
        "-nameopt",
        "RFC2253,-esc_msb",
    ])
    .stdout
}

/// The DER encoding of a PEM certificate.
#[track_caller]
pub(crate) fn cert_der(cert: &Path) -> Vec<u8> {
    openssl(&["x509", "-in", s(cert), "-outform", "DER"]).stdout_bytes
}

/// The subject of a certificate with each attribute's ASN.1 string type, for example
/// `C=PRINTABLESTRING:TR,GN=UTF8STRING:AYŞE,…` in encoding order.
#[track_caller]
pub(crate) fn cert_subject_typed(cert: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-subject",
        "-nameopt",
        "utf8,sep_comma_plus,show_type",
    ]);
    out.stdout
        .trim()
        .strip_prefix("subject=")
        .unwrap_or(out.stdout.trim())
        .to_string()
}

/// The subject of a certificate in OpenSSL's one-line UTF-8 form, encoding order
/// (`C=TR, GN=AYŞE, …`).
#[track_caller]
pub(crate) fn cert_subject(cert: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-subject",
        "-nameopt",
        "utf8,sep_comma_plus",
    ]);
    out.stdout
        .trim()
        .strip_prefix("subject=")
        .unwrap_or(out.stdout.trim())
        .to_string()
}

/// The issuer of a certificate, same form as [`cert_subject`].
#[track_caller]
pub(crate) fn cert_issuer(cert: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-issuer",
        "-nameopt",
        "utf8,sep_comma_plus",
    ]);
    out.stdout
        .trim()
        .strip_prefix("issuer=")
        .unwrap_or(out.stdout.trim())
        .to_string()
}

/// The serial of a certificate as OpenSSL prints it (upper-case hex).
#[track_caller]
pub(crate) fn cert_serial(cert: &Path) -> String {
    let out = openssl(&["x509", "-in", s(cert), "-noout", "-serial"]);
    out.stdout
        .trim()
        .strip_prefix("serial=")
        .unwrap_or_else(|| panic!("unexpected `openssl x509 -serial` output: {}", out.stdout))
        .to_string()
}

/// notBefore and notAfter of a certificate, in Unix seconds.
#[track_caller]
pub(crate) fn cert_validity(cert: &Path) -> (i64, i64) {
    let out = openssl(&[
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-dateopt",
        "iso_8601",
        "-startdate",
        "-enddate",
    ]);
    let mut nb = None;
    let mut na = None;
    for line in out.stdout.lines() {
        if let Some(v) = line.strip_prefix("notBefore=") {
            nb = parse_time(v);
        } else if let Some(v) = line.strip_prefix("notAfter=") {
            na = parse_time(v);
        }
    }
    match (nb, na) {
        (Some(nb), Some(na)) => (nb, na),
        _ => panic!(
            "cannot read the validity of {}: {}",
            cert.display(),
            out.stdout
        ),
    }
}

/// Normalises a hex serial for comparison: lower case, no `:`, no leading zeros.
pub(crate) fn norm_serial(hex: &str) -> String {
    let clean: String = hex
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let t = clean.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// `openssl verify -CAfile root -untrusted issuing CERT` for a demo directory.
#[track_caller]
pub(crate) fn verify_cert(ca_dir: &Path, cert: &Path, strict: bool) -> Output {
    let root = ca_dir.join("root-ca.pem");
    let issuing = ca_dir.join("issuing-ca.pem");
    let mut args = vec!["verify"];
    if strict {
        args.push("-x509_strict");
    }
    args.extend_from_slice(&["-CAfile", s(&root), "-untrusted", s(&issuing), s(cert)]);
    openssl_may_fail(&args)
}

/// Asserts that `openssl verify` accepts `cert` under the demo's root and issuing CA.
#[track_caller]
pub(crate) fn assert_verifies(ca_dir: &Path, cert: &Path) {
    let out = verify_cert(ca_dir, cert, false);
    assert!(
        out.success() && out.stdout.trim_end().ends_with(": OK"),
        "openssl verify rejects the certificate: {}",
        out.describe()
    );
}

/// An extension in `openssl x509 -text` output: whether it is marked critical, and its body
/// (the more-indented lines after its header, trimmed, joined by `\n`).
pub(crate) fn extension(text: &str, name: &str) -> Option<(bool, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let i = lines.iter().position(|l| {
        let t = l.trim_start();
        t.strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    })?;
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let indent = indent_of(lines[i]);
    let critical = lines[i].trim_end().ends_with("critical");
    let mut body = Vec::new();
    for l in &lines[i + 1..] {
        if l.trim().is_empty() || indent_of(l) <= indent {
            break;
        }
        body.push(l.trim());
    }
    Some((critical, body.join("\n")))
}
