//! The audit log proves what happened (docs/audit.md): checkpoints of the chain's head signed
//! with the audit key in the HSM and appended to the anchor file, and `nesca audit verify`
//! finding — with the first bad record — every way an intruder holding the database file
//! could change it: an edited, deleted, inserted or reordered record, a chain recomputed after
//! an edit, a truncated tail, a deleted or forged checkpoint, a certificate or a transition
//! without its audit record. `nesca audit export` writes what an auditor checks with OpenSSL.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use sha2::{Digest as _, Sha256};

use crate::support::*;

/// The store's files (the database, its WAL and shared memory) and the anchor.
const DB_FILES: [&str; 4] = [
    "nesca.db",
    "nesca.db-wal",
    "nesca.db-shm",
    "audit-anchor.jsonl",
];

fn save(demo: &Demo) -> PathBuf {
    let dir = demo.work.join("pristine");
    std::fs::create_dir_all(&dir).unwrap();
    for f in DB_FILES {
        let from = demo.path(f);
        if from.exists() {
            std::fs::copy(&from, dir.join(f)).unwrap();
        }
    }
    dir
}

fn restore(demo: &Demo, saved: &Path) {
    for f in DB_FILES {
        let _ = std::fs::remove_file(demo.path(f));
        let from = saved.join(f);
        if from.exists() {
            std::fs::copy(&from, demo.path(f)).unwrap();
        }
    }
}

/// Changes the store as an intruder with the file would (SQL on it, nesca not involved).
fn tamper(demo: &Demo, sql: &str) {
    let conn = Connection::open(demo.path("nesca.db")).unwrap();
    conn.execute_batch(sql).unwrap();
}

/// Recomputes every record's hash from `from` on, as an intruder who knows the format would
/// after an edit: the chain walks clean again.
fn recompute_chain(demo: &Demo, from: i64) {
    let conn = Connection::open(demo.path("nesca.db")).unwrap();
    let mut prev: Vec<u8> = conn
        .query_row("SELECT hash FROM audit WHERE seq = ?1", [from - 1], |r| {
            r.get(0)
        })
        .unwrap_or_else(|_| vec![0u8; 32]);
    let rows: Vec<(i64, i64, String, String, String, String, String)> = conn
        .prepare("SELECT seq, at, actor, action, issuer, serial, detail FROM audit WHERE seq >= ?1 ORDER BY seq")
        .unwrap()
        .query_map([from], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (seq, at, actor, action, issuer, serial, detail) in rows {
        let e = ca_core::store::AuditEntry {
            seq,
            at: ca_core::UnixTime::from_secs(at),
            actor,
            action,
            issuer,
            serial,
            detail,
        };
        let hash = Sha256::digest(ca_core::store::hashed_bytes(&prev, &e)).to_vec();
        conn.execute(
            "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            params![prev, hash, seq],
        )
        .unwrap();
        prev = hash;
    }
}

/// `nesca audit verify`: `Ok(stdout)` when intact, else `Err(stderr)`.
fn verify(demo: &Demo) -> Result<String, String> {
    let out = demo.nesca(&["audit", "verify", "--config", s(&demo.config())]);
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(out.stderr)
    }
}

#[track_caller]
fn refused_at(demo: &Demo, what: &str, first_bad: i64) {
    let err = verify(demo).expect_err(what);
    assert!(
        err.contains(&format!("(first bad record {first_bad})")),
        "{what}: expected first bad record {first_bad}: {err}"
    );
}

fn head(demo: &Demo) -> i64 {
    let conn = Connection::open(demo.path("nesca.db")).unwrap();
    conn.query_row("SELECT MAX(seq) FROM audit", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn every_tampering_of_the_audit_log_is_found_with_its_first_bad_record() {
    let demo = Demo::init();
    let config = demo.config();
    let checkpoint = || {
        demo.nesca(&["audit", "checkpoint", "--config", s(&config)])
            .ok();
    };
    let (_, first) = demo.issue_ok(&demo.csr("a", Key::P256), "a.pem", &[]);
    demo.issue_ok(&demo.csr("b", Key::P256), "b.pem", &[]);
    let lifecycle = |verb: &str, extra: &[&str]| {
        let mut args = vec![
            verb,
            "--config",
            s(&config),
            "--serial",
            &first,
            "--holder-tckn",
            TCKN,
        ];
        args.extend_from_slice(extra);
        demo.nesca(&args).ok();
    };
    lifecycle("suspend", &[]);
    checkpoint();
    let k1 = head(&demo);
    demo.issue_ok(&demo.csr("c", Key::P256), "c.pem", &[]);
    lifecycle("revoke", &["--reason", "keyCompromise"]);
    checkpoint();
    let k2 = head(&demo);
    assert!(k2 > k1 + 1, "{k1} {k2}");
    let anchor = std::fs::read_to_string(demo.path("audit-anchor.jsonl")).unwrap();
    assert_eq!(anchor.lines().count(), 2, "{anchor}");
    let ok = verify(&demo).expect("intact");
    assert!(
        ok.starts_with(&format!(
            "audit log intact: {k2} records\n2 checkpoints verified"
        )),
        "{ok}"
    );
    let saved = save(&demo);

    for (what, sql, first_bad) in [
        // An edited record (the chain not recomputed).
        ("edited", "UPDATE audit SET detail = detail || ' edited' WHERE seq = 3", 3),
        // A deleted record.
        ("deleted", "DELETE FROM audit WHERE seq = 4", 4),
        // An inserted record (the ones after it moved up one).
        (
            "inserted",
            "UPDATE audit SET seq = seq + 1000 WHERE seq >= 5; UPDATE audit SET seq = seq - 999 WHERE seq >= 1005;
             INSERT INTO audit (seq, at, actor, action, issuer, serial, detail, prev_hash, hash)
               SELECT 5, at, actor, 'inserted', issuer, serial, detail, prev_hash, hash FROM audit WHERE seq = 4;",
            5,
        ),
        // Two records swapped.
        (
            "reordered",
            "UPDATE audit SET seq = -1 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = -1;",
            3,
        ),
    ] {
        tamper(&demo, sql);
        refused_at(&demo, what, first_bad);
        restore(&demo, &saved);
    }
    // An edit after the first checkpoint, the chain recomputed: the signed second checkpoint
    // names the old hash. Located after the last checkpoint that still matches.
    tamper(
        &demo,
        &format!(
            "UPDATE audit SET detail = 'rewritten' WHERE seq = {}",
            k1 + 1
        ),
    );
    recompute_chain(&demo, k1 + 1);
    refused_at(&demo, "recomputed", k1 + 1);
    // … and the checkpoint rewritten to match: its signature no longer verifies, and the
    // token's copy of it names the old hash (found first, at the rewritten record).
    tamper(&demo, &format!(
        "UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit WHERE seq = {k2}) WHERE seq = {k2}"
    ));
    let err = verify(&demo).expect_err("forged checkpoint");
    assert!(
        err.contains("the latest checkpoint the token holds")
            && err.contains(&format!("(first bad record {})", k1 + 1))
            && err.contains("more finding"),
        "{err}"
    );
    restore(&demo, &saved);
    // The tail cut off after the first checkpoint (and the second checkpoint's row with it):
    // the anchor still names it.
    tamper(
        &demo,
        &format!(
            "DELETE FROM audit WHERE seq > {k1}; DELETE FROM audit_checkpoints WHERE seq = {k2};"
        ),
    );
    refused_at(&demo, "truncated", k1 + 1);
    restore(&demo, &saved);
    // A checkpoint row deleted: the anchor has it.
    tamper(
        &demo,
        &format!("DELETE FROM audit_checkpoints WHERE seq = {k1}"),
    );
    let err = verify(&demo).expect_err("checkpoint deleted");
    assert!(
        err.contains(&format!(
            "checkpoint at record {k1} is in the anchor but not in the store"
        )),
        "{err}"
    );
    restore(&demo, &saved);
    // A certificate without its issuance record, a transition without its record.
    tamper(&demo, "UPDATE certificates SET serial = 'ab' || serial WHERE rowid = (SELECT MAX(rowid) FROM certificates)");
    // Both ways: its issuance record names a certificate no longer there, and the renamed row
    // has no issuance record (the second finding).
    let err = verify(&demo).expect_err("unaudited certificate");
    assert!(
        err.contains("has no row of the issue") && err.contains("1 more finding"),
        "{err}"
    );
    restore(&demo, &saved);
    tamper(
        &demo,
        "UPDATE transitions SET seq = 900000 WHERE seq = (SELECT MIN(seq) FROM transitions)",
    );
    // Its record (the suspension, the first checkpoint's head) now has no row.
    refused_at(&demo, "unaudited transition", k1);
    restore(&demo, &saved);
    // A revoked certificate made active again in its row (the CRL would leave it out).
    tamper(&demo, &format!(
        "UPDATE certificates SET status = 'active', revoked_at = NULL, reason = NULL WHERE serial = '{first}'"
    ));
    let err = verify(&demo).expect_err("un-revoked");
    assert!(
        err.contains("has status active (its records say revoked)"),
        "{err}"
    );
    restore(&demo, &saved);
    // A transition's row deleted (its record stays).
    tamper(
        &demo,
        "DELETE FROM transitions WHERE seq = (SELECT MAX(seq) FROM transitions)",
    );
    // Found twice: the certificate's status is no longer what its transitions say (first, at
    // the suspension), and the revocation's record has no row.
    let err = verify(&demo).expect_err("transition row deleted");
    assert!(
        err.contains("its records say suspended") && err.contains("1 more finding"),
        "{err}"
    );
    restore(&demo, &saved);
    // Every checkpoint deleted and the anchor with them: the audit key says there were some.
    tamper(&demo, "DELETE FROM audit_checkpoints");
    std::fs::remove_file(demo.path("audit-anchor.jsonl")).unwrap();
    let err = verify(&demo).expect_err("checkpoints gone");
    assert!(err.contains("no checkpoint does"), "{err}");
    restore(&demo, &saved);
    // Store and anchor both rewritten from the first checkpoint on (an intruder on the host
    // holding both files, without the PIN): the token's copy of the latest checkpoint, which
    // only the PIN's holder writes, still names the second.
    tamper(
        &demo,
        &format!("UPDATE audit SET detail = 'rewritten' WHERE seq = {}; DELETE FROM audit_checkpoints WHERE seq = {k2};", k1 + 1),
    );
    recompute_chain(&demo, k1 + 1);
    let first_line = anchor.lines().next().unwrap().to_owned() + "\n";
    std::fs::write(demo.path("audit-anchor.jsonl"), first_line).unwrap();
    let err = verify(&demo).expect_err("rewritten behind the token");
    assert!(
        err.contains("the latest checkpoint the token holds"),
        "{err}"
    );
    assert!(
        err.contains(&format!("(first bad record {})", k1 + 1)),
        "{err}"
    );
    restore(&demo, &saved);
    // The anchor behind the store by more than its newest checkpoint.
    std::fs::write(demo.path("audit-anchor.jsonl"), "").unwrap();
    let err = verify(&demo).expect_err("anchor behind");
    assert!(
        err.contains(&format!(
            "checkpoint at record {k1} is in the store but not in the anchor"
        )),
        "{err}"
    );
    restore(&demo, &saved);
    assert!(verify(&demo).is_ok(), "restored");

    // The export: every record's hash is SHA-256 of its `hashed` bytes, which begin with the
    // previous record's hash; each checkpoint's message verifies under the exported key with
    // OpenSSL alone.
    let out = demo.work.join("audit.jsonl");
    demo.nesca(&["audit", "export", "--config", s(&config), "--out", s(&out)])
        .ok();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key = lines
        .iter()
        .find(|l| l["type"] == "key")
        .expect("the audit key");
    let key_pem = demo.work.join("audit-key.pem");
    std::fs::write(&key_pem, key["pem"].as_str().unwrap()).unwrap();
    let mut prev = "00".repeat(32);
    for r in lines.iter().filter(|l| l["type"] == "record") {
        let hashed = hex::decode(r["hashed"].as_str().unwrap()).unwrap();
        assert!(r["hashed"].as_str().unwrap().starts_with(&prev), "{r}");
        assert_eq!(
            hex::encode(Sha256::digest(&hashed)),
            r["hash"].as_str().unwrap()
        );
        prev = r["hash"].as_str().unwrap().to_owned();
    }
    let checkpoints: Vec<_> = lines.iter().filter(|l| l["type"] == "checkpoint").collect();
    assert_eq!(checkpoints.len(), 2);
    for (i, cp) in checkpoints.iter().enumerate() {
        let msg = demo.work.join(format!("cp{i}.txt"));
        let sig = demo.work.join(format!("cp{i}.sig"));
        std::fs::write(&msg, cp["message"].as_str().unwrap()).unwrap();
        use base64::Engine as _;
        std::fs::write(
            &sig,
            base64::engine::general_purpose::STANDARD
                .decode(cp["signature"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        let v = openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            s(&key_pem),
            "-signature",
            s(&sig),
            s(&msg),
        ]);
        assert!(v.stdout.contains("Verified OK"), "{}", v.describe());
    }
}
