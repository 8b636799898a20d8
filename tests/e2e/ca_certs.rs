//! The CA's own certificates over their lifetime: the delegated OCSP signer renewed at start
//! when the clock has passed its validity (`NESCA_TEST_CLOCK_OFFSET_SECONDS`, 100 and 300 days
//! ahead), its answers verified by OpenSSL at that time; renewal on demand, from two processes
//! at once; `nesca ca list`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::ocsp::*;
use crate::support::server::*;
use crate::support::*;

const DAY: i64 = 86_400;

/// `nesca ARGS` with the clock `days` ahead (a test build reads the offset).
#[track_caller]
fn nesca_at(demo: &Demo, days: i64, args: &[&str]) -> Output {
    let mut cmd: Command = nesca_command();
    cmd.args(args)
        .current_dir(&demo.work)
        .env("NESCA_TEST_CLOCK_OFFSET_SECONDS", (days * DAY).to_string());
    run(cmd)
}

/// `nesca ca list` at `days` ahead, one JSON object a line.
#[track_caller]
fn ca_list(demo: &Demo, days: i64) -> Vec<Value> {
    let out = nesca_at(demo, days, &["ca", "list", "--config", s(&demo.config())]).ok();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The OCSP signers `ca list` names, in its order.
fn signers(list: &[Value]) -> Vec<&Value> {
    list.iter().filter(|v| v["kind"] == "ocsp-signer").collect()
}

/// The key label of the one current signer (panics unless there is exactly one).
#[track_caller]
fn current_signer(list: &[Value]) -> String {
    let current: Vec<&Value> = signers(list)
        .into_iter()
        .filter(|v| v["status"] == "current")
        .collect();
    assert_eq!(current.len(), 1, "exactly one current signer: {list:?}");
    current[0]["key_label"].as_str().unwrap().to_owned()
}

/// Asks about `cert` with OpenSSL verifying at `days` ahead (`-attime`, and a response time
/// window wide enough for the moved clock): a verified `good` answer. Returns the responder
/// certificate it carried (PEM).
#[track_caller]
fn good_at(demo: &Demo, url: &str, cert: &Path, days: i64, name: &str) -> String {
    let at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + days * DAY)
        .to_string();
    let window = (days * DAY + 3_600).to_string();
    let run = ocsp_query(
        demo,
        url,
        &[cert],
        &["-attime", &at, "-validity_period", &window, "-no_nonce"],
        name,
    );
    assert!(run.verified(), "{}", run.describe());
    assert_eq!(run.status_of(cert).as_deref(), Some("good"), "{}", run.text);
    // The responder's certificate, as OpenSSL prints it with -resp_text.
    let pem_start = run
        .text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("signer certificate");
    let pem_end = run.text.find("-----END CERTIFICATE-----").expect("PEM end") + 25;
    run.text[pem_start..pem_end].to_owned()
}

/// Day 100 and day 300: `nesca serve` starts although the signer `init` made has expired (90
/// days), renews it at start (a new key in the token, a new certificate from the CA), and its
/// answers verify in OpenSSL at that time; `ca list` shows the old signer expired and exactly
/// one current one. The signer never stops the server from starting.
#[test]
fn serve_renews_an_expired_ocsp_signer_at_start_and_answers() {
    let demo = server_demo();
    let (nes, _) = demo.issue_ok(&demo.csr("nes", Key::P256), "nes.pem", &[]);
    let first = ca_list(&demo, 0);
    let init_signer = current_signer(&first);
    assert!(
        first
            .iter()
            .any(|v| v["kind"] == "ca" && v["role"] == "root" && v["status"] == "active"),
        "{first:?}"
    );

    let mut seen = vec![init_signer.clone()];
    for days in [100, 300] {
        let offset = (days * DAY).to_string();
        let mut server = Server::serve_with_env(
            &demo,
            &[("NESCA_TEST_CLOCK_OFFSET_SECONDS", offset.as_str())],
        );
        let responder_cert = good_at(&demo, &server.url(), &nes, days, &format!("day{days}.der"));
        server.assert_running();
        drop(server);
        let list = ca_list(&demo, days);
        let current = current_signer(&list);
        assert!(
            !seen.contains(&current),
            "a new signer at day {days}: {list:?}"
        );
        for old in &seen {
            let row = signers(&list)
                .into_iter()
                .find(|v| v["key_label"] == old.as_str())
                .expect("the old signer is listed");
            assert_eq!(row["status"], "expired", "{row}");
        }
        // The answer carried the new signer's certificate, not init's.
        let init_pem = std::fs::read_to_string(demo.path("ocsp-signer.pem")).unwrap();
        assert_ne!(responder_cert.trim(), init_pem.trim());
        seen.push(current);
    }
}

/// `nesca ca renew-ocsp-signer` from two processes at once: each either renews or is refused
/// as a conflict, and afterwards exactly one signer is current, the others listed once each;
/// a running responder takes the new signer up.
#[test]
fn renewals_from_two_processes_leave_exactly_one_current_signer() {
    let demo = server_demo();
    let config = demo.config();
    let before = signers(&ca_list(&demo, 0)).len();
    let renew = || {
        let mut cmd = nesca_command();
        cmd.args([
            "ca",
            "renew-ocsp-signer",
            "--config",
            s(&config),
            "--ca",
            "nes-ca",
        ])
        .current_dir(&demo.work);
        cmd
    };
    let outs: Vec<Output> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..2).map(|_| sc.spawn(|| run(renew()))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let renewed = outs.iter().filter(|o| o.success()).count();
    assert!(renewed >= 1, "{}", outs[0].describe());
    for o in outs.iter().filter(|o| !o.success()) {
        assert!(
            o.stderr.contains("ocsp_signer"),
            "a refusal names the signer: {}",
            o.describe()
        );
    }
    let list = ca_list(&demo, 0);
    current_signer(&list);
    assert_eq!(signers(&list).len(), before + renewed, "{list:?}");
    // Unknown and root CAs are refused, naming the field.
    for (ca, rule) in [("nobody", "no CA"), ("root-ca", "root CA")] {
        let out = demo.nesca(&[
            "ca",
            "renew-ocsp-signer",
            "--config",
            s(&config),
            "--ca",
            ca,
        ]);
        assert!(
            !out.success() && out.stderr.contains(rule),
            "{}",
            out.describe()
        );
    }
}
