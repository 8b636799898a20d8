//! The institutional channel's operator side: an institution and its officer, lists signed
//! with `openssl cms` and imported with `nesca import`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::demo::Demo;
use super::openssl::Key;
use super::run::{openssl, s, Output};

/// The officer: a person with a NES from the demo CA.
const OFFICER_TCKN: &str = "17291716060";

/// An institution registered with its officer's NES; returns the officer's certificate and key.
pub(crate) fn institution(demo: &Demo, id: &str, tax_no: &str) -> (PathBuf, PathBuf) {
    let csr = demo.csr(&format!("officer-{id}"), Key::P256);
    let cert = demo.work.join(format!("officer-{id}.pem"));
    demo.issue_as(&csr, OFFICER_TCKN, "MEHMET", "KAYA", &["--out", s(&cert)])
        .ok();
    register(demo, id, tax_no, &cert);
    (cert, demo.work.join(format!("officer-{id}.key")))
}

/// `nesca institution add` of institution `id` whose officer (T.C. Kimlik No 17291716060) holds
/// `cert` (PEM), whoever issued it.
pub(crate) fn register(demo: &Demo, id: &str, tax_no: &str, cert: &Path) {
    let config = demo.config();
    demo.nesca(&[
        "institution",
        "add",
        "--config",
        s(&config),
        "--id",
        id,
        "--name",
        "Ankara Büyükşehir Belediyesi",
        "--tax-no",
        tax_no,
        "--payer",
        "institution",
        "--officer-tckn",
        OFFICER_TCKN,
        "--officer-cert",
        s(cert),
    ])
    .ok();
}

/// `openssl cms -sign`: the officer's detached signature over `file`.
pub(crate) fn sign(dir: &Path, file: &Path, cert: &Path, key: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    openssl(&[
        "cms",
        "-sign",
        "-binary",
        "-md",
        "sha256",
        "-outform",
        "DER",
        "-in",
        s(file),
        "-signer",
        s(cert),
        "-inkey",
        s(key),
        "-out",
        s(&out),
    ]);
    out
}

/// `nesca import --institution ID --file FILE SIGNED.0 SIGNED.1 EXTRA…` (SIGNED is
/// `--signature` or `--wet-scan` and its file), whatever the outcome.
pub(crate) fn import(
    demo: &Demo,
    id: &str,
    file: &Path,
    signed: (&str, &Path),
    extra: &[&str],
) -> Output {
    let config = demo.config();
    let mut args = vec![
        "import",
        "--config",
        s(&config),
        "--institution",
        id,
        "--file",
        s(file),
        signed.0,
        s(signed.1),
    ];
    args.extend_from_slice(extra);
    demo.nesca(&args)
}

/// The one JSON object a command printed on stdout; panics when it is not one.
pub(crate) fn json(out: &Output) -> Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.describe()))
}

/// Writes a csv list named `NAME.csv` in the work directory (the FRM.01.03 header, then one
/// `TCKN;GIVEN;SURNAME;EMAIL;MOBILE;UNIT` line per row), has the officer (`cert`, `key`) sign
/// it and imports it into institution `id`; panics unless every row became a pre-application.
#[track_caller]
pub(crate) fn import_signed_rows(
    demo: &Demo,
    id: &str,
    (cert, key): (&Path, &Path),
    name: &str,
    rows: &[String],
) {
    let mut csv = String::from("T.C. Kimlik No;Adı;Soyadı;E-posta;Cep Telefonu;Birim\n");
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    let list = demo.work.join(format!("{name}.csv"));
    std::fs::write(&list, csv).expect("write the list");
    let sig = sign(&demo.work, &list, cert, key, &format!("{name}.p7s"));
    let out = import(demo, id, &list, ("--signature", &sig), &[]).ok();
    assert_eq!(
        json(&out)["rows"]["created"],
        rows.len(),
        "{}",
        out.describe()
    );
}

/// `nesca applicant show --id ID`: the application as an operator sees it.
#[track_caller]
pub(crate) fn applicant_show(demo: &Demo, id: &str) -> Value {
    json(
        &demo
            .nesca(&[
                "applicant",
                "show",
                "--config",
                s(&demo.config()),
                "--id",
                id,
            ])
            .ok(),
    )
}

/// `nesca applicant list --institution ID`: one JSON object per application.
#[track_caller]
pub(crate) fn applicant_list(demo: &Demo, id: &str) -> Vec<Value> {
    let out = demo
        .nesca(&[
            "applicant",
            "list",
            "--config",
            s(&demo.config()),
            "--institution",
            id,
        ])
        .ok();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
