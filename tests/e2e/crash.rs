//! A process killed (SIGKILL) in the middle of issuing leaves a consistent store: the audit
//! chain verifies; every certificate row is either issued with its certificate or still
//! `reserved` with its serial and TBS on record; and the CA issues again afterwards.
//!
//! The load comes from `nesca bench issue --child`, which issues continuously in one process
//! against a demo CA it creates in `--dir`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn a_process_killed_while_issuing_leaves_a_consistent_store() {
    let demo = Demo::empty();
    let mut child = nesca_command()
        .args([
            "bench",
            "issue",
            "--child",
            "--algorithms",
            "ecdsa-p256",
            "--seconds",
            "4",
            "--clients",
            "8",
        ])
        .arg("--dir")
        .arg(&demo.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nesca bench");

    // Bounded wait until certificates are being issued, then kill mid-flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut issued = 0;
    while Instant::now() < deadline && issued < 40 {
        std::thread::sleep(Duration::from_millis(200));
        if demo.config().is_file() {
            let out = demo.nesca(&["cert", "list", "--config", s(&demo.config())]);
            if out.success() {
                issued = out.stdout.lines().count();
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the issuing process ended by itself ({status}) before it could be killed");
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(
        issued >= 40,
        "no issuance load within the time limit ({issued} rows)"
    );

    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&demo.config())])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
    let rows = demo.cert_list();
    for row in &rows {
        let status = row["status"].as_str().unwrap_or_default();
        assert!(
            status == "active" || status == "reserved",
            "unexpected status after a crash: {row}"
        );
        if status == "active" {
            assert!(
                row["issued_at"].is_string(),
                "an issued row without its issue time: {row}"
            );
        }
    }
    let active = rows.iter().filter(|r| r["status"] == "active").count();
    assert!(active >= 40, "{active} issued rows survive");

    // The CA goes on issuing.
    let csr = demo.csr("after", Key::P256);
    let (cert, _) = demo.issue_ok(&csr, "after.pem", &[]);
    assert_verifies(&demo.dir, &cert);
}
