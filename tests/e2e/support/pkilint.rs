//! DigiCert's pkilint (`lint_etsi_cert`, `lint_crl`, `lint_ocsp_response`): found in
//! `$NESCA_PKILINT_DIR` or on `PATH`, run, and its findings read.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::run::{run, s, Output};

/// Finds `lint_etsi_cert`: in `$NESCA_PKILINT_DIR`, else on `PATH`. Panics with a clear message
/// when it is missing: the lint tests never pass without linting.
pub(crate) fn lint_etsi_cert() -> PathBuf {
    const HOW: &str = "install it with `python3 -m venv V && V/bin/pip install pkilint` and set \
                       NESCA_PKILINT_DIR=V/bin, or run scripts/test.sh, which does both";
    if let Some(dir) = std::env::var_os("NESCA_PKILINT_DIR") {
        let p = Path::new(&dir).join("lint_etsi_cert");
        assert!(
            p.is_file(),
            "NESCA_PKILINT_DIR={} holds no lint_etsi_cert (pkilint): {HOW}",
            Path::new(&dir).display()
        );
        return p;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("lint_etsi_cert");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("lint_etsi_cert (pkilint) is neither in NESCA_PKILINT_DIR nor on PATH: {HOW}");
}

/// The findings of `lint_etsi_cert lint -t QCP-N-QSCD-NON-EIDAS-FINAL-CERTIFICATE -s WARNING
/// -f JSON CERT`, as (severity, code, message), with the raw output for messages.
#[track_caller]
pub(crate) fn pkilint(cert: &Path) -> (Vec<(String, String, String)>, Output) {
    let mut cmd = Command::new(lint_etsi_cert());
    cmd.args([
        "lint",
        "-t",
        "QCP-N-QSCD-NON-EIDAS-FINAL-CERTIFICATE",
        "-s",
        "WARNING",
        "-f",
        "JSON",
        s(cert),
    ]);
    let out = run(cmd);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "lint_etsi_cert did not print JSON ({e}): {}",
            out.describe()
        )
    });
    let mut findings = Vec::new();
    for r in v["results"].as_array().into_iter().flatten() {
        let node = r["node_path"].as_str().unwrap_or("").to_string();
        for f in r["finding_descriptions"].as_array().into_iter().flatten() {
            findings.push((
                f["severity"].as_str().unwrap_or("").to_string(),
                f["code"].as_str().unwrap_or("").to_string(),
                format!("{node}: {}", f["message"].as_str().unwrap_or("")),
            ));
        }
    }
    (findings, out)
}

/// Finds the pkilint program `name` (`lint_crl`, `lint_ocsp_response`, …) the way
/// [`lint_etsi_cert`] does: in `$NESCA_PKILINT_DIR`, else on `PATH`; panics when it is missing.
pub(crate) fn pkilint_tool(name: &str) -> PathBuf {
    const HOW: &str = "install it with `python3 -m venv V && V/bin/pip install pkilint` and set \
                       NESCA_PKILINT_DIR=V/bin, or run scripts/test.sh, which does both";
    if let Some(dir) = std::env::var_os("NESCA_PKILINT_DIR") {
        let p = Path::new(&dir).join(name);
        assert!(
            p.is_file(),
            "NESCA_PKILINT_DIR={} holds no {name} (pkilint): {HOW}",
            Path::new(&dir).display()
        );
        return p;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("{name} (pkilint) is neither in NESCA_PKILINT_DIR nor on PATH: {HOW}");
}

/// Runs the pkilint program `tool` with `ARGS FILE` and panics, showing its output, unless it
/// reports no finding (its exit code is the number of findings).
#[track_caller]
pub(crate) fn assert_pkilint_clean(tool: &str, args: &[&str], file: &Path) {
    let mut cmd = Command::new(pkilint_tool(tool));
    cmd.args(args).arg(file);
    let out = run(cmd);
    assert!(
        out.status.code() == Some(0),
        "{tool} reports findings for {}: {}",
        file.display(),
        out.describe()
    );
}
