//! docs/channels/batch-import.md's worked example, run as written: the ```sh blocks under
//! "## Worked example", in order, as one `bash -euo pipefail` script in a portal's directory,
//! against a running `nesca serve` with the channels listening (TLS: the certificate `nesca
//! channels tls-cert` issues for `localhost`). The test provides only what the document says a
//! portal has — the files and the variables of "## Worked example: what you need" — and, on the
//! script's standard input, what the invited people type: the access password of their e-mail
//! and the SMS code of their phone, read from nesca's outbox as they arrive. Then it checks what
//! the commands printed, what nesca recorded (the approval records, through `nesca applicant
//! show` after the operator received the wet-signed form), and that the page the e-mail names
//! answers.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::doc_example::{
    assert_documented_variables, assert_in_order, assert_private_files, channel_doc, give,
    json_file, run_script, sh_blocks, Typed,
};
use crate::support::idcard::{partner_cert, Options, World};
use crate::support::institution::{applicant_show, institution, json as stdout_json};
use crate::support::mtls::channels_tls_cert;
use crate::support::outbox::{access_password_in, code_after, is_code, newest_to};
use crate::support::server::{server_demo, Server};
use crate::support::*;

/// The heading of the commands the test runs.
const EXAMPLE: &str = "## Worked example";

/// The heading of the variables a reader sets first.
const SETUP: &str = "## Worked example: what you need";

/// How long the test waits for an e-mail, an SMS, or the script.
const WAIT: Duration = Duration::from_secs(120);

/// The people of the example's list: (T.C. Kimlik No, e-mail, mobile number).
const AYSE: (&str, &str, &str) = ("10000000146", "ayse@ankara.bel.tr", "+905321234567");
const CAGRI: (&str, &str, &str) = ("10000000078", "cagri@ankara.bel.tr", "+905331112233");

fn document() -> PathBuf {
    channel_doc("batch-import.md")
}

/// The access password of the newest e-mail to `email`: the rest of the line that begins with
/// `Erişim parolası: ` (the document's "Where the password is").
fn access_password(demo: &Demo, email: &str) -> Option<String> {
    access_password_in(&newest_to(&demo.dir.join("outbox/email"), email)?)
}

/// The code of the newest SMS to `mobile`: the six digits after `kodunuz: `.
fn sms_code(demo: &Demo, mobile: &str) -> Option<String> {
    let sms = newest_to(&demo.dir.join("outbox/sms"), mobile)?;
    code_after(&sms, "kodunuz: ").filter(|c| is_code(c))
}

#[test]
fn the_batch_import_worked_example_runs_as_written() {
    let demo = server_demo();
    let world = World::new(&demo, Options::default());
    // The outbox every second; the portal on a port of its own, so that the page the e-mail
    // names (the portal's applicants' page, by default) can be asked.
    let portal_port = free_port();
    let config = demo.config();
    let text = fs::read_to_string(&config).expect("nesca.toml");
    let mut text = toml_replace(
        &text,
        "portal",
        "listen",
        &format!("127.0.0.1:{portal_port}"),
    );
    text.push_str("\n[outbox]\ninterval_seconds = 1\n");
    fs::write(&config, text).expect("write nesca.toml");
    channels_tls_cert(&demo);
    let (officer_cert, officer_key) = institution(&demo, "ankara-bb", "0680049583");
    let nes_csr = demo.csr("ayse-nes", Key::P256);
    let nes_cert = demo.work.join("ayse-nes.pem");
    demo.issue_as(
        &nes_csr,
        AYSE.0,
        "AYŞE",
        "YILMAZ",
        &["--out", s(&nes_cert), "--validity-days", "30"],
    )
    .ok();
    let nes_serial = cert_serial(&nes_cert).to_ascii_lowercase();
    let (portal, _) = partner_cert(&demo, "eshs-gw", "secure-comm", "eshs-portal");

    // The portal's directory, with the files the document lists.
    let dir = demo.work.join("portal");
    fs::create_dir_all(&dir).expect("the portal's directory");
    give(&world.ca_chain, &dir, "ca-chain.pem");
    give(&portal.cert, &dir, "portal-tls.pem");
    give(&portal.key, &dir, "portal-tls.key");
    give(&officer_cert, &dir, "officer.pem");
    give(&officer_key, &dir, "officer.key");
    give(&nes_cert, &dir, "ayse-nes.pem");
    give(&demo.work.join("ayse-nes.key"), &dir, "ayse-nes.key");

    let server = Server::serve(&demo);
    let vars = [
        ("NESCA", format!("https://localhost:{}", world.port)),
        ("CA_CHAIN", "ca-chain.pem".to_string()),
        ("TLS_CERT", "portal-tls.pem".to_string()),
        ("TLS_KEY", "portal-tls.key".to_string()),
        ("INSTITUTION", "ankara-bb".to_string()),
        ("OFFICER_CERT", "officer.pem".to_string()),
        ("OFFICER_KEY", "officer.key".to_string()),
        ("NES_CERT", "ayse-nes.pem".to_string()),
        ("NES_KEY", "ayse-nes.key".to_string()),
    ];
    assert_documented_variables(&document(), SETUP, &vars);
    let blocks = sh_blocks(&document(), EXAMPLE);
    let script = blocks.concat();
    let ayse_password = || access_password(&demo, AYSE.1);
    let ayse_code = || sms_code(&demo, AYSE.2);
    let cagri_password = || access_password(&demo, CAGRI.1);
    let cagri_code = || sms_code(&demo, CAGRI.2);
    let typed: [Typed; 4] = [
        ("AYŞE's access password e-mail", &ayse_password),
        ("AYŞE's SMS code", &ayse_code),
        ("Çağrı's access password e-mail", &cagri_password),
        ("Çağrı's SMS code", &cagri_code),
    ];
    let example = run_script(&dir, &script, &vars, &typed, WAIT);
    let described = format!(
        "{}\n--- script ---\n{script}\n--- server ---\n{}",
        example.describe(),
        server.describe()
    );
    assert!(example.success(), "the worked example failed:\n{described}");

    // What the document says the commands print.
    assert_in_order(
        "the example",
        &example.stdout,
        &[
            "upload: 201",
            r#"{"status":"accepted","replayed":false,"valid":2,"invalid":1,"created":2,"already_open":0}"#,
            "row,field,reason",
            "4,tckn,checksum digit 10 is wrong (not a valid T.C. Kimlik No)",
            "upload again: 200",
            r#"{"replayed":true,"created":2}"#,
            "sign-in: 200",
            r#"{"stage":"invited","given_name":"AYŞE","surname":"YILMAZ","mobile":"+90532*****67"}"#,
            "me/form: 202",
            "me/sms-code: 200",
            "confirmed",
            "me/approval-text: 200",
            "ayse-approval.txt: OK",
            "me/approval: 200",
            r#"{"stage":"approved","approval_method":"signature"}"#,
            "sign-in: 200",
            "me/form: 202",
            "me/sms-code: 200",
            "me/approval: 202",
            r#"{"stage":"awaiting_wet","approval_method":"wet"}"#,
            "me/form-pdf: 200",
            "the same form",
        ],
        &described,
    );
    let pdf = fs::read(dir.join("cagri-form.pdf")).expect("the wet form");
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");

    // The operator receives Çağrı's signed paper; both approval records are on view.
    let cagri_id = json_file(&dir, "cagri-approval.json")["application"]["id"]
        .as_str()
        .expect("an application id")
        .to_owned();
    let scan = demo.work.join("cagri-signed-scan.pdf");
    fs::write(&scan, &pdf).expect("the scan");
    let received = stdout_json(
        &demo
            .nesca(&[
                "applicant",
                "receive-wet",
                "--config",
                s(&config),
                "--id",
                &cagri_id,
                "--scan",
                s(&scan),
            ])
            .ok(),
    );
    assert_eq!(received["stage"], "approved", "{received}");
    let cagri = applicant_show(&demo, &cagri_id);
    let approval = &cagri["approval"];
    assert_eq!(approval["method"], "wet", "{cagri}");
    assert_eq!(approval["evidence_sha256"], sha256_hex(&pdf), "{cagri}");
    assert!(approval["approved_at"].is_i64(), "{cagri}");

    let ayse_id = json_file(&dir, "ayse-approval.json")["application"]["id"]
        .as_str()
        .expect("an application id")
        .to_owned();
    let ayse = applicant_show(&demo, &ayse_id);
    let approval = &ayse["approval"];
    let text = fs::read(dir.join("ayse-approval.txt")).expect("the approval text");
    let signature = fs::read(dir.join("ayse-approval.p7s")).expect("the signature");
    assert_eq!(
        (
            approval["method"].as_str(),
            approval["approval_text_sha256"].as_str(),
            approval["evidence_sha256"].as_str(),
            approval["signer_serial"].as_str(),
        ),
        (
            Some("signature"),
            Some(sha256_hex(&text).as_str()),
            Some(sha256_hex(&signature).as_str()),
            Some(nes_serial.as_str()),
        ),
        "{ayse}"
    );

    // The e-mail names the portal's applicants' page, and that page answers.
    let mail = newest_to(&demo.dir.join("outbox/email"), AYSE.1).expect("AYŞE's e-mail");
    let url = format!("https://127.0.0.1:{portal_port}/basvuru");
    assert!(
        mail.contains(&format!("{url} adresinde")),
        "the e-mail does not name {url}"
    );
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--cacert"])
        .arg(dir.join("ca-chain.pem"))
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(&url);
    let fetched = run(curl);
    assert_eq!(fetched.stdout.trim(), "200", "{}", fetched.describe());
    assert_private_files(&dir, &["liste.csv", "upload.json", "token-header"]);
    drop(server);
}
