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
    kill_while_issuing(&Demo::empty(), &[]);
}

/// The crash of [`a_process_killed_while_issuing_leaves_a_consistent_store`] in `demo` (a
/// fresh directory, no CA yet), with `bench_extra` added to `nesca bench issue`'s flags (the
/// store: none for SQLite, `--postgres-url SERVER` for a database of its own on that server,
/// which the killed process leaves behind for the caller to drop).
pub(crate) fn kill_while_issuing(demo: &Demo, bench_extra: &[&str]) {
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
        .args(bench_extra)
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

/// Records a reservation of a fresh serial under `issuer` made `age_secs` ago, exactly as the
/// engine writes one before the HSM signs, and nothing after it: what a process killed between
/// the reservation and the storage of the certificate leaves behind. Returns the serial (hex).
fn reservation_left_by_a_crash(demo: &Demo, issuer: &str, age_secs: i64) -> String {
    use ca_core::store::prelude::*;
    use ca_core::store::{Reservation, SqliteStore, SubjectRecord};
    let store = SqliteStore::open(&demo.dir.join("nesca.db")).expect("open the demo's store");
    let now = ca_core::UnixTime::from_system(std::time::SystemTime::now());
    let serial = ca_core::Serial::random();
    let reserved = store
        .reserve(Reservation {
            issuer: ca_core::IssuerId::parse(issuer).expect("issuer id"),
            serial,
            profile: ca_core::profile::ProfileName::Nes,
            subject: SubjectRecord {
                subject: "C=TR,CN=CRASHED ISSUANCE".into(),
                ..SubjectRecord::default()
            },
            not_before: now,
            not_after: now.plus_secs(86_400),
            tbs_der: vec![0x30, 0x00],
            actor: ca_core::Principal::HostOperator,
            at: now.plus_secs(-age_secs),
        })
        .expect("reserve");
    assert_eq!(reserved, ca_core::store::Reserved::Ok);
    serial.to_hex()
}

/// A reservation whose signing never completed is not `good` for ever:
/// once older than ten minutes, `nesca serve` resolves it as failed when it starts (an audit
/// record by serve-start, the chain intact) and OCSP answers it as never issued; a younger
/// one stays reserved and is not `good` either. `nesca ocsp` does the same at its start.
#[test]
fn a_reservation_left_by_a_crash_is_never_answered_good() {
    let demo = crate::support::server::server_demo();
    let csr = demo.csr("ayse", Key::P256);
    let (cert, serial) = demo.issue_ok(&csr, "ayse.pem", &[]);
    let issuer = demo.cert_show(&serial)["issuer"]
        .as_str()
        .expect("issuer")
        .to_owned();
    let old = reservation_left_by_a_crash(&demo, &issuer, 11 * 60);
    let young = reservation_left_by_a_crash(&demo, &issuer, 60);

    let server = crate::support::server::Server::serve_with_env(&demo, &[("RUST_LOG", "warn")]);
    let url = server.url();
    let status = |hex: &str| {
        demo.cert_list()
            .into_iter()
            .find(|r| r["serial"].as_str() == Some(hex))
            .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(status(&old).as_deref(), Some("failed"));
    assert_eq!(status(&young).as_deref(), Some("reserved"));
    assert!(
        server.stderr().contains(&old),
        "no log line names the resolved reservation: {}",
        server.describe()
    );
    for hex in [&old, &young] {
        let r = crate::support::ocsp::ocsp_serial(&demo, &url, hex, "left.der");
        assert!(
            crate::support::ocsp::answered_never_issued(&r, hex),
            "a reservation that never completed must not be good: {}",
            r.describe()
        );
    }
    // The certificate issued before is good; the audit chain holds.
    crate::support::ocsp::ocsp_good(&demo, &url, &cert, "ayse.der");
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&demo.config())])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
    drop(server);

    // The standalone responder resolves at its start too.
    let older = reservation_left_by_a_crash(&demo, &issuer, 3600);
    let responder = crate::support::server::Server::ocsp(&demo);
    assert_eq!(status(&older).as_deref(), Some("failed"));
    let r = crate::support::ocsp::ocsp_serial(&demo, &responder.url(), &older, "older.der");
    assert!(
        crate::support::ocsp::answered_never_issued(&r, &older),
        "{}",
        r.describe()
    );
}
