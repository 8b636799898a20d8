//! KDBs (identity verification notices) and their signed form, KDBOs: CMS SignedData made and
//! checked with `openssl cms`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::run::{openssl, openssl_may_fail, s, Output};

/// A certificate with its private key, PEM files: a KDBO signer or a TLS client.
#[derive(Clone, Debug)]
pub(crate) struct Signer {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CSR of the applicant's key: DER file, its bytes, and the private key (PEM).
pub(crate) struct CardCsr {
    pub path: PathBuf,
    pub der: Vec<u8>,
    pub key: PathBuf,
}

/// A KDB (identity verification notice), v1.
#[derive(Clone, Debug)]
pub(crate) struct Kdb {
    pub kdb_id: String,
    /// application, revoke, suspend or unsuspend.
    pub purpose: &'static str,
    pub tckn: String,
    pub verified_at: i64,
    /// The certificate concerned (revoke, suspend, unsuspend).
    pub serial: Option<String>,
}

impl Kdb {
    /// The KDB's JSON, the content of a KDBO.
    pub(crate) fn json(&self) -> String {
        let mut v = json!({
            "v": 1,
            "kdb_id": self.kdb_id,
            "purpose": self.purpose,
            "tckn": self.tckn,
            "verified_at": self.verified_at,
            "method": "id-card-pin",
        });
        if let Some(serial) = &self.serial {
            v["serial"] = json!(serial);
        }
        v.to_string()
    }
}

/// Where a CMS SignedData keeps the content it signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Content {
    /// Inside (`-nodetach`): a KDBO carries its KDB.
    Attached,
    /// Outside: a signed commitment, whose text the CA has already.
    Detached,
}

/// `openssl cms -sign -binary -md sha256` of `content` by `cert` (PEM) and its `key`: the DER
/// of a CMS SignedData, with the content inside or not as `encap` says. A KDBO, or the signed
/// commitment for a software key (the card-CSR case). Files go to `dir/NAME.*`.
#[track_caller]
pub(crate) fn cms_sign(
    dir: &Path,
    name: &str,
    cert: &Path,
    key: &Path,
    content: &[u8],
    encap: Content,
) -> Vec<u8> {
    cms_sign_with_digest(dir, name, (cert, key), content, encap, "sha256")
}

/// [`cms_sign`] with the digest `md` (`sha256`, `sha384`, `sha512`): a P-384 card key signs
/// over SHA-384.
#[track_caller]
pub(crate) fn cms_sign_with_digest(
    dir: &Path,
    name: &str,
    (cert, key): (&Path, &Path),
    content: &[u8],
    encap: Content,
    md: &str,
) -> Vec<u8> {
    let input = dir.join(format!("{name}.content"));
    let out = dir.join(format!("{name}.p7s"));
    fs::write(&input, content).expect("CMS content");
    let mut args = vec!["cms", "-sign", "-binary"];
    if encap == Content::Attached {
        args.push("-nodetach");
    }
    args.extend([
        "-md",
        md,
        "-signer",
        s(cert),
        "-inkey",
        s(key),
        "-in",
        s(&input),
        "-outform",
        "DER",
        "-out",
        s(&out),
    ]);
    openssl(&args);
    fs::read(&out).expect("CMS output")
}

/// `openssl cms -verify` of a DER SignedData (`detached`: the content when it is not inside)
/// under the trust anchors in `ca_file`, whatever the outcome.
#[track_caller]
pub(crate) fn cms_verify(
    dir: &Path,
    name: &str,
    cms: &[u8],
    detached: Option<&[u8]>,
    ca_file: &Path,
) -> Output {
    let input = dir.join(format!("{name}.verify.der"));
    let out = dir.join(format!("{name}.verified"));
    fs::write(&input, cms).expect("CMS to verify");
    let content = dir.join(format!("{name}.verify.content"));
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        s(&input),
        "-CAfile",
        s(ca_file),
        "-purpose",
        "any",
        "-out",
        s(&out),
    ];
    if let Some(d) = detached {
        fs::write(&content, d).expect("detached content");
        args.extend_from_slice(&["-content", s(&content)]);
    }
    openssl_may_fail(&args)
}
