//! The channel documents' worked examples, run as written: the ```sh blocks under
//! "## Worked example" of docs/channels/kdhs-example.md and kec-example.md, in order, in one
//! `bash -euo pipefail` session in a partner's directory, against a running `nesca serve` with
//! the channels listening. The test only provides what the documents say a partner has (the
//! files and variables under "## What you need") and checks what the commands print.
//!
//! The partner's files come from the identity-card [`World`], with one intermediate CA more on
//! each outside side, so that `-certfile` and `auth_chain` carry something: the KDHS's KDBO
//! signer is issued by an intermediate under the KDHS trust anchor, with the KDHS licence in its
//! subject serialNumber (as its secure-communication certificate has it), and the applicant's
//! authentication certificate by an intermediate under the configured identity-card CA. The
//! demo's public URL is its own public listener, so that the OCSP URL in the certificates
//! answers; the channel listener serves `nesca channels tls-cert`'s certificate for
//! `localhost`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::doc_example::{
    assert_documented_variables, assert_in_order, assert_private_files, channel_doc, give,
    json_file, run_script, sh_blocks,
};
use crate::support::idcard::*;
use crate::support::mtls::channels_tls_cert;
use crate::support::server::{server_demo_config, Server};
use crate::support::*;

/// The heading of the commands the test runs.
const EXAMPLE: &str = "## Worked example";

/// The heading of the variables a reader sets first.
const SETUP: &str = "## What you need";

/// What separates the blocks' output: the block's number follows.
const MARK: &str = "@@@ worked example block ";

/// How long the example may run.
const LIMIT: Duration = Duration::from_secs(180);

/// Extensions of an intermediate CA certificate.
const SUB_CA_EXT: &str = "basicConstraints = critical,CA:TRUE,pathlen:0\n\
     keyUsage = critical,keyCertSign,cRLSign\n\
     subjectKeyIdentifier = hash\n\
     authorityKeyIdentifier = keyid\n";

/// A demo CA whose public URL (in every certificate's AIA and CDP) is its own public listener
/// on a port chosen now, with the identity-card world around it and the channel listener
/// serving a certificate for `localhost` and `127.0.0.1`.
fn example_demo() -> (Demo, World) {
    let port = free_port();
    let demo = Demo::init_with(&["--public-url", &format!("http://127.0.0.1:{port}")]);
    server_demo_config(&demo.config());
    let text = fs::read_to_string(demo.config()).expect("nesca.toml");
    let text = toml_replace(&text, "server", "listen", &format!("127.0.0.1:{port}"));
    fs::write(demo.config(), text).expect("write nesca.toml");
    let world = World::new(&demo, Options::default());
    channels_tls_cert(&demo);
    (demo, world)
}

/// An intermediate CA `name` under `parent`, valid from 5 minutes ago for a year, that issues
/// with `openssl ca` as its parent does (its own directory, `PARENT/NAME-ca`).
#[track_caller]
fn sub_ca(parent: &TestCa, name: &str, subject: &str) -> TestCa {
    let t = now();
    let issued = parent.issue(name, subject, SUB_CA_EXT, t - 300, t + 365 * 86400);
    let dir = parent.dir.join(format!("{name}-ca"));
    fs::create_dir_all(dir.join("newcerts")).expect("CA directory");
    fs::write(dir.join("index.txt"), "").expect("index.txt");
    fs::write(dir.join("serial"), "01\n").expect("serial");
    fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
    let config = fs::read_to_string(parent.dir.join("openssl.cnf")).expect("openssl.cnf");
    let from = format!("dir = {}\n", parent.dir.display());
    assert!(config.contains(&from), "{config}");
    let config = config.replace(&from, &format!("dir = {}\n", dir.display()));
    fs::write(dir.join("openssl.cnf"), config).expect("openssl.cnf");
    fs::copy(&issued.cert, dir.join("ca.pem")).expect("CA certificate");
    fs::copy(&issued.key, dir.join("ca.key")).expect("CA key");
    TestCa {
        cert: dir.join("ca.pem"),
        key: dir.join("ca.key"),
        dir,
    }
}

/// A partner's directory, `DEMO/work/NAME`, with the applicant's files in it: `auth.der`
/// (AYŞE's authentication certificate from an intermediate ID-card CA) and `auth-ca.der` (that
/// intermediate), and nesca's `ca-chain.pem`.
fn partner_dir(demo: &Demo, world: &World, name: &str) -> PathBuf {
    let dir = demo.work.join(name);
    fs::create_dir_all(&dir).expect("partner directory");
    let sub = sub_ca(
        &world.idcard_ca,
        &format!("{name}-idcard-sub"),
        "/C=TR/O=T.C. İçişleri Bakanlığı/CN=T.C. Kimlik Kartı Test Alt SM",
    );
    let t = now();
    let auth = sub.auth_cert(&format!("{name}-auth"), AYSE, t - 300, t + 365 * 86400);
    fs::write(dir.join("auth.der"), auth).expect("auth.der");
    fs::write(dir.join("auth-ca.der"), cert_der(&sub.cert)).expect("auth-ca.der");
    give(&world.ca_chain, &dir, "ca-chain.pem");
    dir
}

/// What one block of the example printed, with its source.
struct BlockRun {
    source: String,
    stdout: String,
    stderr: String,
}

/// The worked example's run: every block's output, and the whole run for messages.
struct ExampleRun {
    blocks: Vec<BlockRun>,
    described: String,
}

impl ExampleRun {
    /// Panics unless exactly one block's source satisfies `which` (described as `what`) and
    /// that block printed each of `expected` on stdout, in this order.
    #[track_caller]
    fn expect_in(&self, what: &str, which: impl Fn(&str) -> bool, expected: &[&str]) {
        let found: Vec<&BlockRun> = self.blocks.iter().filter(|b| which(&b.source)).collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one block of the example must be {what}"
        );
        let out = &found[0].stdout;
        assert_in_order(
            &format!("the block {what}"),
            out,
            expected,
            &format!("{out}\n\n{}", self.described),
        );
    }

    /// [`ExampleRun::expect_in`] the one block whose source contains `needle`.
    #[track_caller]
    fn expect(&self, needle: &str, expected: &[&str]) {
        self.expect_in(
            &format!("with {needle:?}"),
            |source| source.contains(needle),
            expected,
        );
    }

    /// Panics unless every `openssl ocsp` of the example verified its response (`Response
    /// verify OK` on stderr, once for each query of a block), and there was one at least.
    #[track_caller]
    fn expect_ocsp_verified(&self) {
        let mut queries = 0;
        for b in &self.blocks {
            let asked = b.source.matches("openssl ocsp").count();
            let verified = b.stderr.matches("Response verify OK").count();
            assert_eq!(
                verified, asked,
                "an OCSP response did not verify:\n{}\n{}\n\n{}",
                b.source, b.stderr, self.described
            );
            queries += asked;
        }
        assert!(queries > 0, "the example asks OCSP nothing");
    }
}

/// The part of `text` after the mark of each block, by number (`text` holds the marks of
/// `count` blocks).
fn split_marked(text: &str, count: usize) -> Vec<String> {
    let mut parts = vec![String::new(); count];
    let mut current: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        if let Some(n) = line.trim_end().strip_prefix(MARK) {
            current = n.parse().ok();
            continue;
        }
        if let Some(part) = current.and_then(|i| parts.get_mut(i)) {
            part.push_str(line);
        }
    }
    parts
}

/// Runs the ```sh blocks under "## Worked example" of `markdown`, in order, as one
/// `bash -euo pipefail` script in `dir`, with `vars` and nothing else of the test's
/// environment but PATH (HOME is `dir`: no `~/.curlrc` of the machine's). Each block is
/// preceded by a line that marks its output, on stdout and stderr. Panics, showing the output
/// and the server, unless the script succeeds; `vars` must be exactly the variables the
/// document tells a reader to set.
#[track_caller]
fn run_example(
    markdown: &Path,
    dir: &Path,
    vars: &[(&str, String)],
    server: &Server,
) -> ExampleRun {
    assert_documented_variables(markdown, SETUP, vars);
    let blocks = sh_blocks(markdown, EXAMPLE);
    let mut script = String::new();
    for (i, block) in blocks.iter().enumerate() {
        script.push_str(&format!(
            "printf '\\n{MARK}{i}\\n'; printf '\\n{MARK}{i}\\n' >&2\n{block}"
        ));
    }
    let out = run_script(dir, &script, vars, &[], LIMIT);
    let described = format!(
        "{}\n--- script ---\n{script}\n--- server ---\n{}",
        out.describe(),
        server.describe()
    );
    assert!(
        out.success(),
        "the worked example of {} failed:\n{described}",
        markdown.display()
    );
    let stdout = split_marked(&out.stdout, blocks.len());
    let stderr = split_marked(&out.stderr, blocks.len());
    ExampleRun {
        blocks: blocks
            .into_iter()
            .zip(stdout.into_iter().zip(stderr))
            .map(|(source, (stdout, stderr))| BlockRun {
                source,
                stdout,
                stderr,
            })
            .collect(),
        described,
    }
}

/// The serial of the answer `name` in `dir` (lower-case hex), checked to be what nesca holds
/// with `status` (and `reason`, when revoked).
#[track_caller]
fn serial_in(demo: &Demo, dir: &Path, name: &str, status: &str, reason: Option<&str>) -> String {
    let serial = json_file(dir, name)["serial"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no serial"))
        .to_string();
    let shown = demo.cert_show(&serial);
    assert_eq!(shown["status"], status, "{serial}: {shown}");
    assert_eq!(
        shown["revocation"]["reason"].as_str(),
        reason,
        "{serial}: {shown}"
    );
    serial
}

/// docs/channels/kdhs-example.md, as written: a KDHS's application with a card CSR, its
/// replays (the same body, the same KDB signed again), OCSP certificateHold, the commitment,
/// OCSP good, and a refusal for unapproved firmware.
#[test]
fn the_kdhs_worked_example_runs_as_written() {
    let (demo, world) = example_demo();
    let dir = partner_dir(&demo, &world, "kdhs-partner");

    // The KDHS's own PKI: an intermediate under the trust anchor, and the KDBO signer under it
    // with the KDHS licence in its subject serialNumber.
    let sub = sub_ca(
        &world.kdhs_ca,
        "kdbo-sub",
        "/C=TR/O=Test KDHS A.Ş./CN=Test KDHS KDBO Alt SM",
    );
    let t = now();
    let signer = sub.issue(
        "kdbo-signer",
        &format!("/C=TR/O=Test KDHS A.Ş./serialNumber={KDHS_LICENCE}/CN=Test KDHS KDBO İmza"),
        SIGNER_EXT,
        t - 300,
        t + 365 * 86400,
    );
    give(&world.kdhs_client.cert, &dir, "kdhs-tls.pem");
    give(&world.kdhs_client.key, &dir, "kdhs-tls.key");
    give(&signer.cert, &dir, "kdbo-signer.pem");
    give(&signer.key, &dir, "kdbo-signer.key");
    give(&sub.cert, &dir, "kdbo-chain.pem");

    let mut server = Server::serve(&demo);
    let vars = [
        ("NESCA", format!("https://localhost:{}", world.port)),
        ("CA_CHAIN", "ca-chain.pem".to_string()),
        ("TLS_CERT", "kdhs-tls.pem".to_string()),
        ("TLS_KEY", "kdhs-tls.key".to_string()),
        ("KDBO_CERT", "kdbo-signer.pem".to_string()),
        ("KDBO_KEY", "kdbo-signer.key".to_string()),
        ("KDBO_CHAIN", "kdbo-chain.pem".to_string()),
        ("AUTH_CERT", "auth.der".to_string()),
        ("AUTH_CHAIN", "auth-ca.der".to_string()),
        ("TCKN", AYSE.tckn.to_string()),
        ("FIRMWARE_SHA256", world.firmware.clone()),
    ];
    let run = run_example(&channel_doc("kdhs-example.md"), &dir, &vars, &server);

    let licence = format!("TLS certificate: {KDHS_LICENCE}, KDBO signer: {KDHS_LICENCE}");
    run.expect("licence()", &[&licence]);
    run.expect("-out kdbo.der", &["the KDBO carries the KDB"]);
    let serial = serial_in(&demo, &dir, "application.json", "active", None);
    let issued = format!("{{\"serial\":\"{serial}\",\"status\":\"suspended\",\"replayed\":false}}");
    run.expect(
        "application-request.json application.json",
        &["201", &issued],
    );
    let subject = format!("serialNumber=PNOTR-{}", AYSE.tckn);
    run.expect(
        "openssl verify",
        &[&subject, &format!("GN={}", AYSE.given), "cert.pem: OK"],
    );
    let replayed =
        format!("{{\"serial\":\"{serial}\",\"status\":\"suspended\",\"replayed\":true}}");
    run.expect(
        "replay.json",
        &[
            "200",
            &replayed,
            "a new KDBO over the same KDB",
            "200",
            &replayed,
        ],
    );
    run.expect_in(
        "the OCSP query before the commitment",
        |source| source.contains("openssl ocsp") && !source.contains("sleep"),
        &["cert.pem: revoked", "Reason: certificateHold"],
    );
    run.expect(
        "sha256sum -c",
        &[
            "commitment.txt: OK",
            "TAAHHÜTNAME",
            &format!("{} {}", AYSE.given, AYSE.surname),
        ],
    );
    let committed = format!(
        "{{\"serial\":\"{serial}\",\"status\":\"active\",\"superseded\":null,\"replayed\":false}}"
    );
    run.expect(
        "commitment-request.json commitment.json",
        &["200", &committed],
    );
    run.expect("sleep 2", &["cert.pem: good"]);
    run.expect_ocsp_verified();
    run.expect("refused.json", &["422", "{\"code\":\"firmware\""]);
    assert_eq!(json_file(&dir, "refused.json")["error"]["code"], "firmware");
    // The replays name the first application.
    let first = json_file(&dir, "application.json");
    for name in ["replay.json", "retry.json"] {
        let again = json_file(&dir, name);
        for field in ["application", "serial", "certificate"] {
            assert_eq!(again[field], first[field], "{name}: {field}");
        }
    }

    // The files the commands left are what nesca holds: the certificate is the one issued for
    // the card's key, and no second certificate came from the replays or the refusal.
    assert_eq!(
        cert_public_key(&dir.join("cert.pem")),
        csr_public_key(&dir.join("card.csr"), true),
        "the certificate must certify the card's key"
    );
    let nes: Vec<Value> = demo
        .cert_list()
        .into_iter()
        .filter(|c| c["tckn"] == AYSE.tckn)
        .collect();
    assert_eq!(nes.len(), 1, "one certificate for the applicant: {nes:?}");
    assert_private_files(
        &dir,
        &["kdb.json", "kdbo.der", "card.key", "commitment.txt"],
    );
    server.assert_running();
}

/// docs/channels/kec-example.md, as written: a KEC's application with slots, the commitment,
/// the holder's suspension (and its replay) and release, a full card refused without
/// `overwrite_serial`, and the overwrite that supersedes the first certificate.
#[test]
fn the_kec_worked_example_runs_as_written() {
    let (demo, world) = example_demo();
    let dir = partner_dir(&demo, &world, "kec-partner");
    give(&world.kec_client.cert, &dir, "kec-tls.pem");
    give(&world.kec_client.key, &dir, "kec-tls.key");
    give(&world.kec_device.cert, &dir, "kec-role.pem");
    give(&world.kec_device.key, &dir, "kec-role.key");

    let mut server = Server::serve(&demo);
    let vars = [
        ("NESCA", format!("https://localhost:{}", world.port)),
        ("CA_CHAIN", "ca-chain.pem".to_string()),
        ("TLS_CERT", "kec-tls.pem".to_string()),
        ("TLS_KEY", "kec-tls.key".to_string()),
        ("ROLE_CERT", "kec-role.pem".to_string()),
        ("ROLE_KEY", "kec-role.key".to_string()),
        ("AUTH_CERT", "auth.der".to_string()),
        ("AUTH_CHAIN", "auth-ca.der".to_string()),
        ("TCKN", AYSE.tckn.to_string()),
        ("FIRMWARE_SHA256", world.firmware.clone()),
    ];
    let run = run_example(&channel_doc("kec-example.md"), &dir, &vars, &server);

    let licence = format!("TLS certificate: {KEC_LICENCE}, role certificate: {KEC_LICENCE}");
    run.expect("licence()", &[&licence, "TLS Web Client Authentication"]);
    let first = serial_in(
        &demo,
        &dir,
        "application.json",
        "revoked",
        Some("superseded"),
    );
    run.expect(
        "application-request.json application.json",
        &[
            "201",
            &format!("{{\"serial\":\"{first}\",\"status\":\"suspended\",\"replayed\":false}}"),
        ],
    );
    run.expect(
        "openssl verify",
        &[&format!("serialNumber=PNOTR-{}", AYSE.tckn), "cert.pem: OK"],
    );
    run.expect(
        "commitment-request.json commitment.json",
        &[
            "commitment.txt: OK",
            "TAAHHÜTNAME",
            "200",
            &format!(
                "{{\"serial\":\"{first}\",\"status\":\"active\",\"superseded\":null,\"replayed\":false}}"
            ),
        ],
    );
    run.expect_in(
        "the OCSP query after the commitment",
        |source| source.starts_with("sleep 2\nopenssl ocsp") && !source.contains("cert-2.pem"),
        &["cert.pem: good"],
    );
    run.expect(
        "suspend-request.json suspend.json",
        &[
            "200",
            &format!("{{\"serial\":\"{first}\",\"status\":\"suspended\""),
            "\"replayed\":false}",
        ],
    );
    run.expect(
        "suspend-again.json",
        &[
            "200",
            &format!("{{\"serial\":\"{first}\",\"status\":\"suspended\",\"replayed\":true}}"),
            "cert.pem: revoked",
            "Reason: certificateHold",
        ],
    );
    run.expect(
        "unsuspend-request.json unsuspend.json",
        &[
            "200",
            &format!("{{\"serial\":\"{first}\",\"status\":\"active\""),
            "\"replayed\":false}",
            "cert.pem: good",
        ],
    );
    run.expect(
        "full-request.json full.json",
        &["422", "{\"code\":\"slots\""],
    );
    let second = serial_in(&demo, &dir, "overwrite.json", "active", None);
    assert_ne!(second, first);
    run.expect(
        "overwrite-request.json overwrite.json",
        &[
            "201",
            &format!("{{\"serial\":\"{second}\",\"status\":\"suspended\",\"replayed\":false}}"),
            "commitment-2.txt: OK",
            "200",
            &format!(
                "{{\"serial\":\"{second}\",\"status\":\"active\",\"superseded\":\"{first}\",\"replayed\":false}}"
            ),
        ],
    );
    run.expect(
        "-cert cert-2.pem",
        &[
            "cert.pem: revoked",
            "Reason: superseded",
            "cert-2.pem: good",
        ],
    );
    run.expect_ocsp_verified();
    assert_eq!(
        cert_public_key(&dir.join("cert-2.pem")),
        csr_public_key(&dir.join("card-2.csr"), true),
        "the second certificate must certify the second card key"
    );
    server.assert_running();
}
