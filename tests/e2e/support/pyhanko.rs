//! pyHanko (PyPI's `pyHanko` with `pyhanko-certvalidator`), an independent PDF signature
//! validator: found as the `python` of `$NESCA_PYHANKO_DIR` (a venv's bin directory, which
//! scripts/test.sh makes), else of the venv scripts/test.sh makes by default; it runs a small
//! script of ours ([`SCRIPT`]) that makes a PDF, signs it and validates the signature, and the
//! validation's JSON is read here ([`Validation`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::run::{run, s, Output};

const HOW: &str = "install it with `python3 -m venv V && V/bin/pip install pyHanko \
                   pyhanko-certvalidator` and set NESCA_PYHANKO_DIR=V/bin, or run \
                   scripts/test.sh, which does both";

/// The Python that has pyHanko: `$NESCA_PYHANKO_DIR/python`, else
/// `${NESCA_TOOLS_DIR:-$HOME/.cache/nesca-tools}/pyhanko-venv/bin/python` (where
/// scripts/test.sh installs it). Panics with a clear message when it is missing: the PDF tests
/// never pass without validating.
pub(crate) fn pyhanko_python() -> PathBuf {
    if let Some(dir) = std::env::var_os("NESCA_PYHANKO_DIR") {
        let p = Path::new(&dir).join("python");
        assert!(
            p.is_file(),
            "NESCA_PYHANKO_DIR={} holds no python (with pyHanko): {HOW}",
            Path::new(&dir).display()
        );
        return p;
    }
    let tools = match std::env::var_os("NESCA_TOOLS_DIR") {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".cache/nesca-tools"),
            None => panic!("neither NESCA_PYHANKO_DIR nor HOME is set: {HOW}"),
        },
    };
    let p = tools.join("pyhanko-venv/bin/python");
    assert!(
        p.is_file(),
        "pyHanko is neither in NESCA_PYHANKO_DIR nor in {}: {HOW}",
        p.display()
    );
    p
}

/// Which revocation information `validate` requires, for every certificate of the path but the
/// root (the only trust anchor); a certificate for which none is found fails the validation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Revinfo {
    /// A CRL or an OCSP answer: pyHanko's `require` mode (`pyhanko sign validate
    /// --force-revinfo`).
    CrlOrOcsp,
    /// CRLs only (with the delta CRLs the complete CRLs name, see [`SCRIPT`]).
    CrlOnly,
}

impl Revinfo {
    fn arg(self) -> &'static str {
        match self {
            Revinfo::CrlOrOcsp => "require",
            Revinfo::CrlOnly => "crl",
        }
    }
}

/// `python WORK/nesca_pdf.py ARGS` (the script written first), whatever its outcome. Only
/// 127.0.0.1 is fetched from: no proxy is used.
#[track_caller]
fn script(work: &Path, args: &[&str]) -> Output {
    let path = work.join("nesca_pdf.py");
    fs::write(&path, SCRIPT).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    let mut cmd = Command::new(pyhanko_python());
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("no_proxy", "*")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(&path)
        .args(args)
        .current_dir(work);
    run(cmd)
}

/// A one-page PDF, `WORK/NAME`, written by pyHanko's own writer.
#[track_caller]
pub(crate) fn make_pdf(work: &Path, name: &str) -> PathBuf {
    let pdf = work.join(name);
    script(work, &["make", s(&pdf)]).ok();
    assert!(pdf.is_file(), "no PDF at {}", pdf.display());
    pdf
}

/// Signs `pdf` into `WORK/OUT` (PAdES signature field `NES`, SHA-256) with `key` and `cert`,
/// embedding the certificates of `chain` when given; panics unless pyHanko does.
#[track_caller]
pub(crate) fn sign_pdf(
    work: &Path,
    pdf: &Path,
    out: &str,
    key: &Path,
    cert: &Path,
    chain: Option<&Path>,
) -> PathBuf {
    let signed = work.join(out);
    let mut args = vec!["sign", s(pdf), s(&signed), s(key), s(cert)];
    if let Some(chain) = chain {
        args.push(s(chain));
    }
    script(work, &args).ok();
    assert!(signed.is_file(), "no signed PDF at {}", signed.display());
    signed
}

/// pyHanko's judgement of the one signature of `signed`, `root` the only trust anchor,
/// fetching what the certificates name and requiring `revinfo`.
#[track_caller]
pub(crate) fn validate_pdf(
    work: &Path,
    signed: &Path,
    root: &Path,
    revinfo: Revinfo,
) -> Validation {
    let out = script(work, &["validate", s(signed), s(root), revinfo.arg()]).ok();
    let json: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the pyHanko script did not print one JSON object ({e}): {}",
            out.describe()
        )
    });
    Validation { json, out }
}

/// What pyHanko said of a signature (the JSON [`SCRIPT`] prints).
pub(crate) struct Validation {
    pub json: Value,
    pub out: Output,
}

impl Validation {
    /// A boolean field; panics if it is not one.
    #[track_caller]
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.json[key]
            .as_bool()
            .unwrap_or_else(|| panic!("no boolean {key:?}: {}", self.describe()))
    }

    /// A string field (`None` when null).
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.json[key].as_str()
    }

    /// The subjects of the validation path, root first.
    pub(crate) fn path(&self) -> Vec<&str> {
        self.json["path"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    }

    /// The CRLs pyHanko used, as (issuer, is a delta CRL, number of entries).
    pub(crate) fn crls(&self) -> Vec<(String, bool, u64)> {
        self.json["crls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["issuer"].as_str().unwrap_or("").to_owned(),
                    c["delta"].as_bool().unwrap_or(false),
                    c["entries"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// The answers of the OCSP responses pyHanko used, as (serial in lowercase hex without
    /// leading zeros, `good` / `revoked` / `unknown`).
    pub(crate) fn ocsp_answers(&self) -> Vec<(String, String)> {
        let mut answers = Vec::new();
        for r in self.json["ocsps"].as_array().into_iter().flatten() {
            for a in r["answers"].as_array().into_iter().flatten() {
                answers.push((
                    a["serial"].as_str().unwrap_or("").to_owned(),
                    a["status"].as_str().unwrap_or("").to_owned(),
                ));
            }
        }
        answers
    }

    /// pyHanko's own report, the JSON and the script's stderr, for assertion messages.
    pub(crate) fn describe(&self) -> String {
        let mut json = self.json.clone();
        let pretty = json
            .as_object_mut()
            .and_then(|o| o.remove("pretty"))
            .and_then(|p| p.as_str().map(str::to_owned))
            .unwrap_or_default();
        format!(
            "--- pyHanko's report ---\n{}\n--- JSON ---\n{}\n--- stderr ---\n{}",
            pretty.trim_end(),
            serde_json::to_string_pretty(&json).unwrap_or_default(),
            self.out.stderr.trim_end()
        )
    }
}

/// The Python script the helpers above run, written to the work directory of the test.
const SCRIPT: &str = r#""""nesca's end-to-end PDF check with pyHanko (tests/e2e/support/pyhanko.rs writes and runs it).

  python nesca_pdf.py make OUT.pdf
  python nesca_pdf.py sign IN.pdf OUT.pdf KEY CERT [CHAIN]
  python nesca_pdf.py validate SIGNED.pdf ROOT require|crl

`sign` embeds CERT, and the certificates of CHAIN when given. `validate` trusts ROOT alone,
fetches what the certificates name (AIA caIssuers, OCSP, CRL distribution points) and requires
revocation information for every certificate of the path but the root: from a CRL or OCSP
(`require`, pyHanko's `--force-revinfo`), or from CRLs only (`crl`). It prints one JSON object:
what pyHanko judged, and the revocation information it used.
"""

import json
import sys


def make(out):
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.generic import pdf_name
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    w = PdfFileWriter()
    font = generic.DictionaryObject(
        {
            pdf_name('/Type'): pdf_name('/Font'),
            pdf_name('/Subtype'): pdf_name('/Type1'),
            pdf_name('/BaseFont'): pdf_name('/Helvetica'),
        }
    )
    resources = generic.DictionaryObject(
        {pdf_name('/Font'): generic.DictionaryObject({pdf_name('/F1'): w.add_object(font)})}
    )
    content = generic.StreamObject(stream_data=b'BT /F1 24 Tf 72 720 Td (nesca NES) Tj ET')
    page = PageObject(
        contents=w.add_object(content), media_box=(0, 0, 595, 842), resources=resources
    )
    w.insert_page(page)
    with open(out, 'wb') as f:
        w.write(f)


def sign(inp, out, key, cert, chain=None):
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    chain_files = None if chain is None else (chain,)
    signer = signers.SimpleSigner.load(key, cert, ca_chain_files=chain_files)
    if signer is None:
        raise SystemExit('pyHanko could not load the key or the certificates')
    meta = signers.PdfSignatureMetadata(field_name='NES', md_algorithm='sha256')
    with open(inp, 'rb') as f:
        w = IncrementalPdfFileWriter(f)
        with open(out, 'wb') as o:
            signers.sign_pdf(w, meta, signer=signer, output=o)


def fetch_crl(url):
    import urllib.request

    from asn1crypto import crl

    with urllib.request.urlopen(url, timeout=20) as r:
        return crl.CertificateList.load(r.read())


def delta_urls(certs):
    """The delta CRLs the complete CRLs of `certs` name in their freshestCRL extension."""
    urls = []
    for cert in certs:
        for dp in cert.crl_distribution_points:
            full = fetch_crl(dp.url)
            for delta_dp in full.freshest_crl_value or []:
                if delta_dp.url and delta_dp.url not in urls:
                    urls.append(delta_dp.url)
    return urls


def name(n):
    return n.human_friendly


def validate(signed, root_file, policy):
    from pyhanko.version import __version__ as pyhanko_version
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator import __version__ as certvalidator_version
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )

    root = load_cert_from_pemder(root_file)
    with open(signed, 'rb') as f:
        reader = PdfFileReader(f)
        sigs = reader.embedded_signatures
        if len(sigs) != 1:
            raise SystemExit(f'expected one signature, found {len(sigs)}')
        sig = sigs[0]
        embedded = [c.chosen for c in sig.signed_data['certificates']]
        deltas = []
        if policy == 'require':
            # What `pyhanko sign validate --force-revinfo` asks: revocation information for
            # every certificate of the path but the root, from a CRL or an OCSP responder.
            vc = ValidationContext(
                trust_roots=[root], allow_fetching=True, revocation_mode='require'
            )
        elif policy == 'crl':
            # CRLs only, for every certificate of the path but the root. pyHanko looks for
            # delta CRLs only where a certificate names them (its freshestCRL extension); RFC
            # 5280 (5.2.6) lets a complete CRL name them too, as nesca's do: those are fetched
            # here and handed over. pyHanko still checks them against the complete CRL.
            urls = delta_urls(embedded)
            deltas = [(u, fetch_crl(u)) for u in urls]
            rules = RevocationCheckingPolicy(
                ee_certificate_rule=RevocationCheckingRule.CRL_REQUIRED,
                intermediate_ca_cert_rule=RevocationCheckingRule.CRL_REQUIRED,
            )
            vc = ValidationContext(
                trust_roots=[root],
                allow_fetching=True,
                revinfo_policy=CertRevTrustPolicy(rules),
                crls=[c for _, c in deltas],
            )
        else:
            raise SystemExit(f'unknown policy {policy}')
        status = validate_pdf_signature(sig, vc)
    rd = status.revocation_details
    path = status.validation_path
    result = {
        'versions': f'pyHanko {pyhanko_version}, pyhanko-certvalidator {certvalidator_version}',
        'intact': status.intact,
        'valid': status.valid,
        'trusted': status.trusted,
        'revoked': status.revoked,
        'bottom_line': status.bottom_line,
        'summary': status.summary(),
        'trust_problem_indic': (
            None if status.trust_problem_indic is None else status.trust_problem_indic.name
        ),
        'coverage': None if status.coverage is None else status.coverage.name,
        'docmdp_ok': status.docmdp_ok,
        'md_algorithm': status.md_algorithm,
        'mechanism': status.pkcs7_signature_mechanism,
        'signer_subject': name(status.signing_cert.subject),
        'signer_serial': format(status.signing_cert.serial_number, 'x'),
        'embedded_certs': len(embedded),
        'deltas_handed_over': [u for u, _ in deltas],
        'path': (
            None
            if path is None
            else [name(c.subject) for c in path.iter_certs(include_root=True)]
        ),
        'revocation': (
            None
            if rd is None
            else {
                'ca_revoked': rd.ca_revoked,
                'reason': rd.revocation_reason.native,
                'date': rd.revocation_date.isoformat(),
            }
        ),
        'crls': [
            {
                'issuer': name(c['tbs_cert_list']['issuer']),
                'delta': any(
                    e['extn_id'].native == 'delta_crl_indicator'
                    for e in c['tbs_cert_list']['crl_extensions']
                ),
                'entries': len(c['tbs_cert_list']['revoked_certificates']),
            }
            for c in vc.crls
        ],
        'ocsps': [
            {
                'status': r['response_status'].native,
                'answers': [
                    {
                        'serial': format(s['cert_id']['serial_number'].native, 'x'),
                        'status': s['cert_status'].name,
                    }
                    for s in r['response_bytes']['response'].parsed['tbs_response_data'][
                        'responses'
                    ]
                ],
            }
            for r in vc.ocsps
        ],
        'error_time_horizon': (
            None if status.error_time_horizon is None else status.error_time_horizon.isoformat()
        ),
        'pretty': status.pretty_print_details(),
    }
    print(json.dumps(result))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ''
    if cmd == 'make' and len(argv) == 3:
        make(argv[2])
    elif cmd == 'sign' and len(argv) in (6, 7):
        sign(*argv[2:])
    elif cmd == 'validate' and len(argv) == 5:
        validate(argv[2], argv[3], argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
"#;
