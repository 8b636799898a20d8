//! A PDF signed with a NES nesca issued, judged by an independent validator, pyHanko
//! (support/pyhanko.rs): the root the only trust anchor, and revocation information required
//! for every other certificate of the path, fetched from where the certificates say (the demo's
//! public URL is the running `nesca serve`'s own address). Valid while everything is good; the
//! signer's certificate revoked after `nesca revoke` (by OCSP, then by the delta CRL); the
//! issuing CA revoked after `nesca ca revoke` (by the root's CRL).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::ocsp::{ocsp_good, ocsp_revoked};
use crate::support::pyhanko::*;
use crate::support::server::*;
use crate::support::*;

const ROOT_CN: &str = "nesca Demo Root CA";
const ISSUING_CN: &str = "nesca Demo NES CA";

/// A demo whose certificates name the address its `nesca serve` listens on, a NES issued to
/// AYŞE YILMAZ (key in `work/nes.key`), and that server, once it serves the root's CRL.
struct Reachable {
    demo: Demo,
    server: Server,
    /// `http://127.0.0.1:PORT`, the `--public-url` of `init` and the server's address.
    base: String,
    nes: PathBuf,
    serial: String,
    key: PathBuf,
}

/// A port free a moment ago becomes the demo's public URL (`init --public-url`, so that the
/// CA certificates name it too) and the server's `[server] listen`; the OCSP responder polls
/// the store every 50 ms.
#[track_caller]
fn reachable() -> Reachable {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let demo = Demo::init_with(&["--public-url", &base]);
    let config = demo.config();
    let text = fs::read_to_string(&config).expect("nesca.toml");
    let text = toml_replace(&text, "server", "listen", &format!("127.0.0.1:{port}"));
    let text = toml_replace(&text, "ocsp", "listen", "127.0.0.1:0");
    let text = toml_replace_raw(&text, "ocsp", "poll_interval_ms", "50");
    fs::write(&config, text).expect("write nesca.toml");

    let csr = demo.csr("nes", Key::P256);
    let key = demo.work.join("nes.key");
    let (nes, serial) = demo.issue_ok(&csr, "nes.pem", &[]);
    // What pyHanko follows: every URL in the certificates is the server's.
    let nes_text = cert_text(&nes);
    for url in [
        format!("URI:{base}/ocsp"),
        format!("URI:{base}/ca/nes-ca.crt"),
        format!("URI:{base}/crl/nes-ca.crl"),
    ] {
        assert!(
            nes_text.contains(&url),
            "the NES names no {url}:\n{nes_text}"
        );
    }
    let issuing_text = cert_text(&demo.path("issuing-ca.pem"));
    let root_crl = format!("URI:{base}/crl/root-ca.crl");
    assert!(
        issuing_text.contains(&root_crl),
        "the issuing CA names no {root_crl}:\n{issuing_text}"
    );

    let server = Server::serve(&demo);
    assert_eq!(
        server.addr,
        format!("127.0.0.1:{port}"),
        "the server must listen where the certificates point"
    );
    wait_for(
        "the root's CRL at /crl/root-ca.crl",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            let r = server.get("/crl/root-ca.crl");
            if r.status == 200 {
                Ok(())
            } else {
                Err(r.describe())
            }
        },
    );
    Reachable {
        demo,
        server,
        base,
        nes,
        serial,
        key,
    }
}

/// A serial as lowercase hex without leading zeros (pyHanko prints it so).
fn bare(serial: &str) -> String {
    let t = serial.trim_start_matches('0').to_ascii_lowercase();
    if t.is_empty() {
        "0".into()
    } else {
        t
    }
}

/// The signature is cryptographically sound, covers the whole file, and is about `serial`,
/// whose path runs root → issuing CA → holder.
#[track_caller]
fn assert_sound(v: &Validation, serial: &str) {
    assert!(v.flag("intact") && v.flag("valid"), "{}", v.describe());
    assert_eq!(v.text("coverage"), Some("ENTIRE_FILE"), "{}", v.describe());
    assert_eq!(v.text("md_algorithm"), Some("sha256"), "{}", v.describe());
    assert_eq!(
        v.text("mechanism"),
        Some("sha256_ecdsa"),
        "{}",
        v.describe()
    );
    assert_eq!(
        v.text("signer_serial").map(bare),
        Some(bare(serial)),
        "{}",
        v.describe()
    );
    let path = v.path();
    assert!(
        path.len() == 3
            && path[0].contains(ROOT_CN)
            && path[1].contains(ISSUING_CN)
            && path[2].contains(&format!("PNOTR-{TCKN}")),
        "the path must be root, issuing CA, holder: {}",
        v.describe()
    );
}

/// pyHanko judges the signature valid: sound, trusted, nothing revoked.
#[track_caller]
fn assert_trusted(v: &Validation, serial: &str) {
    assert_sound(v, serial);
    assert!(
        v.flag("trusted") && v.flag("bottom_line") && !v.flag("revoked"),
        "pyHanko does not judge the signature valid: {}",
        v.describe()
    );
    assert_eq!(v.text("trust_problem_indic"), None, "{}", v.describe());
    assert_eq!(
        v.text("summary"),
        Some("INTACT:TRUSTED,UNTOUCHED"),
        "{}",
        v.describe()
    );
}

/// pyHanko judges the signature invalid because a certificate of its path is revoked: the
/// signer's (`ca_revoked` false) or the issuing CA's (true), for `reason` (asn1crypto's name).
#[track_caller]
fn assert_revoked(v: &Validation, serial: &str, ca_revoked: bool, reason: &str) {
    assert_sound(v, serial);
    assert!(
        v.flag("revoked") && !v.flag("trusted") && !v.flag("bottom_line"),
        "pyHanko does not report a revocation: {}",
        v.describe()
    );
    let indic = if ca_revoked {
        "REVOKED_CA_NO_POE"
    } else {
        "REVOKED_NO_POE"
    };
    assert_eq!(
        v.text("trust_problem_indic"),
        Some(indic),
        "{}",
        v.describe()
    );
    assert_eq!(
        v.text("summary"),
        Some("INTACT:REVOKED,UNTOUCHED"),
        "{}",
        v.describe()
    );
    let r = &v.json["revocation"];
    assert_eq!(
        (r["ca_revoked"].as_bool(), r["reason"].as_str()),
        (Some(ca_revoked), Some(reason)),
        "{}",
        v.describe()
    );
}

/// The CRLs pyHanko used that `issuer` signed, as (is a delta CRL, entries).
fn crls_of(v: &Validation, issuer: &str) -> Vec<(bool, u64)> {
    v.crls()
        .into_iter()
        .filter(|(i, _, _)| i.contains(issuer))
        .map(|(_, delta, entries)| (delta, entries))
        .collect()
}

/// `nesca crl --config … ARGS --out WORK/NAME`: a CRL made and published now (to the
/// directory the running server serves); its one line must start with `kind`.
#[track_caller]
fn publish_crl(demo: &Demo, args: &[&str], name: &str, kind: &str) -> String {
    let config = demo.config();
    let out_path = demo.work.join(name);
    let mut all = vec!["crl", "--config", s(&config)];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", s(&out_path)]);
    let out = demo.nesca(&all).ok();
    assert!(out.stdout.starts_with(kind), "{}", out.describe());
    out.stdout.trim().to_owned()
}

/// The PDF signed with the NES, once embedding the CA chain (as a signer's software does),
/// once the signer's certificate alone (pyHanko fetches the issuing CA from the AIA).
#[track_caller]
fn signed_pdfs(r: &Reachable) -> (PathBuf, PathBuf) {
    let work: &Path = &r.demo.work;
    let pdf = make_pdf(work, "doc.pdf");
    let chain = r.demo.path("ca-chain.pem");
    let with_chain = sign_pdf(work, &pdf, "signed.pdf", &r.key, &r.nes, Some(&chain));
    let bare_pdf = sign_pdf(work, &pdf, "signed-bare.pdf", &r.key, &r.nes, None);
    (with_chain, bare_pdf)
}

/// Valid with the whole path's revocation checked (the issuing CA on the root's CRL, the NES
/// by OCSP; then by CRLs alone, nesca's delta CRL included); after `nesca revoke`, revoked
/// (keyCompromise) by OCSP as soon as the responder says so, and by CRL once the next delta
/// CRL is out.
#[test]
fn a_pdf_signed_with_a_nes_validates_in_pyhanko_until_the_nes_is_revoked() {
    let r = reachable();
    let (demo, url) = (&r.demo, r.server.url());
    let root = demo.path("root-ca.pem");
    let (signed, signed_bare) = signed_pdfs(&r);
    ocsp_good(demo, &url, &r.nes, "good.der");

    // CRL or OCSP for each certificate under the root (pyhanko's --force-revinfo).
    let v = validate_pdf(&demo.work, &signed, &root, Revinfo::CrlOrOcsp);
    assert_trusted(&v, &r.serial);
    eprintln!("validator: {}", v.text("versions").unwrap_or("?"));
    assert_eq!(v.json["embedded_certs"], 3, "{}", v.describe());
    assert_eq!(
        crls_of(&v, ROOT_CN),
        vec![(false, 0)],
        "the issuing CA's status must come from the root's CRL: {}",
        v.describe()
    );
    assert_eq!(
        v.ocsp_answers(),
        vec![(bare(&r.serial), "good".to_owned())],
        "the NES's status must come from nesca's OCSP responder: {}",
        v.describe()
    );

    // The signer's certificate alone in the PDF: the issuing CA comes from the AIA's URL.
    let v = validate_pdf(&demo.work, &signed_bare, &root, Revinfo::CrlOrOcsp);
    assert_trusted(&v, &r.serial);
    assert_eq!(v.json["embedded_certs"], 1, "{}", v.describe());

    // CRLs only: the NES on its CA's complete CRL with the delta CRL it names, the issuing CA
    // on the root's.
    let v = validate_pdf(&demo.work, &signed, &root, Revinfo::CrlOnly);
    assert_trusted(&v, &r.serial);
    assert_eq!(
        v.json["deltas_handed_over"],
        serde_json::json!([format!("{}/crl/nes-ca-delta.crl", r.base)]),
        "{}",
        v.describe()
    );
    let mut issuing = crls_of(&v, ISSUING_CN);
    issuing.sort();
    assert_eq!(issuing, vec![(false, 0), (true, 0)], "{}", v.describe());
    assert_eq!(crls_of(&v, ROOT_CN), vec![(false, 0)], "{}", v.describe());
    assert!(v.ocsp_answers().is_empty(), "{}", v.describe());

    // The holder revokes the NES.
    let config = demo.config();
    let out = demo
        .nesca(&[
            "revoke",
            "--config",
            s(&config),
            "--serial",
            &r.serial,
            "--holder-tckn",
            TCKN,
            "--reason",
            "keyCompromise",
        ])
        .ok();
    assert!(
        out.stdout.starts_with("revoked serial="),
        "{}",
        out.describe()
    );
    ocsp_revoked(demo, &url, &r.nes, "keyCompromise", "revoked.der");
    let v = validate_pdf(&demo.work, &signed, &root, Revinfo::CrlOrOcsp);
    assert_revoked(&v, &r.serial, false, "key_compromise");
    assert_eq!(
        v.ocsp_answers(),
        vec![(bare(&r.serial), "revoked".to_owned())],
        "{}",
        v.describe()
    );

    // The next delta CRL lists it: CRLs alone say revoked too.
    publish_crl(demo, &["--delta"], "delta.crl", "delta CRL ");
    let v = validate_pdf(&demo.work, &signed, &root, Revinfo::CrlOnly);
    assert_revoked(&v, &r.serial, false, "key_compromise");
    assert!(
        crls_of(&v, ISSUING_CN).contains(&(true, 1)),
        "the delta CRL must list the NES: {}",
        v.describe()
    );
    assert!(v.ocsp_answers().is_empty(), "{}", v.describe());
}

/// The root revokes the issuing CA (`nesca ca revoke`, cACompromise): once the root's next CRL
/// is out, pyHanko rejects the NES's signature because its CA is revoked, although the NES
/// itself is still good.
#[test]
fn a_pdf_signed_under_a_revoked_issuing_ca_is_rejected_by_pyhanko() {
    let r = reachable();
    let (demo, url) = (&r.demo, r.server.url());
    let root = demo.path("root-ca.pem");
    let (_, signed_bare) = signed_pdfs(&r);
    ocsp_good(demo, &url, &r.nes, "good.der");
    let v = validate_pdf(&demo.work, &signed_bare, &root, Revinfo::CrlOrOcsp);
    assert_trusted(&v, &r.serial);

    let config = demo.config();
    demo.nesca(&[
        "ca",
        "revoke",
        "--config",
        s(&config),
        "--ca",
        "nes-ca",
        "--reason",
        "cACompromise",
    ])
    .ok();
    publish_crl(demo, &["--ca", "root-ca"], "arl.crl", "full CRL ");
    let v = validate_pdf(&demo.work, &signed_bare, &root, Revinfo::CrlOrOcsp);
    assert_revoked(&v, &r.serial, true, "ca_compromise");
    assert_eq!(
        crls_of(&v, ROOT_CN),
        vec![(false, 1)],
        "the root's CRL must list the issuing CA: {}",
        v.describe()
    );
}
