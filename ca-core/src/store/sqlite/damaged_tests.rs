//! Rows whose statuses, kinds and codes were damaged outside nesca are refused where they are
//! read, naming the column's rule: never a panic, never a silent default (an unknown
//! application status was once read as pending, an unknown CRLReason as unspecified).

use rusqlite::Connection;

use crate::store::prelude::*;
use crate::store::SqliteStore;
use crate::{ChannelName, IssuerId, Serial, UnixTime};

/// A store whose rows of every typed column hold text nesca never writes (the CHECK
/// constraints bypassed, as a hand edit could).
fn damaged_store(dir: &tempfile::TempDir) -> SqliteStore {
    let path = dir.path().join("damaged.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA ignore_check_constraints = ON;
         INSERT INTO certificates (issuer, serial, profile, status, subject, not_before, not_after, tbs_der, reserved_at, revoked_at, reason)
         VALUES ('nes-ca', '0101010101010101010101010101010101010101', 'nes', 'revoked', 'CN=A', 1, 2, x'30', 1, 1, 7);
         INSERT INTO certificates (issuer, serial, profile, status, subject, not_before, not_after, tbs_der, reserved_at)
         VALUES ('nes-ca', '0202020202020202020202020202020202020202', 'nes', 'misplaced', 'CN=B', 1, 2, x'30', 1);
         INSERT INTO transitions (seq, request_id, issuer, serial, action, from_status, to_status, holder, actor, at)
         VALUES (1, 'r-1', 'nes-ca', '0303030303030303030303030303030303030303', 'explode', 'active', 'revoked', 'operator', 'cli', 1);
         INSERT INTO cas (id, role, key_label, cert_der, created_at) VALUES ('odd-ca', 'sovereign', 'k', x'30', 1);
         INSERT INTO channel_applications (channel, channel_ref, status, created_at, updated_at)
         VALUES ('kdhs', 'ref-1', 'lost', 1, 1);
         INSERT INTO outbox (kind, subject_ref, recipient, status, next_attempt_at, created_at)
         VALUES ('fax', 'pa-1', 'a@example.com', 'pending', 1, 1);",
    )
    .unwrap();
    drop(conn);
    SqliteStore::open(&path).unwrap()
}

/// The error of a read, which must be the store's and name `what`.
#[track_caller]
fn refused<T: std::fmt::Debug>(read: crate::Result<T>, what: &str) {
    let e = read.unwrap_err().to_string();
    assert!(e.starts_with("store: "), "{e}");
    assert!(e.contains(what), "{what}: {e}");
}

#[test]
fn unknown_statuses_kinds_and_codes_are_refused_on_read() {
    let dir = crate::testkit::private_tempdir();
    let store = damaged_store(&dir);
    let nes = IssuerId::parse("nes-ca").unwrap();
    let serial = |n: &str| Serial::parse_hex(&n.repeat(20)).unwrap();
    // CRLReason 7 is not used (RFC 5280 §5.3.1): in the certificate, its status (the OCSP
    // responder's read) and the CRL's scan alike.
    refused(store.get(None, &serial("01")), "unknown CRLReason code 7");
    refused(
        store.status(&nes, &serial("01")),
        "unknown CRLReason code 7",
    );
    refused(
        store.scan_revoked(&nes, &mut |_| Ok(())),
        "unknown CRLReason code 7",
    );
    refused(
        store.status(&nes, &serial("02")),
        "unknown certificate status \"misplaced\"",
    );
    refused(
        store.transitions(&nes, &serial("03")),
        "unknown lifecycle action \"explode\"",
    );
    // (A CRL's kind is read only where it was asked for by kind.)
    refused(store.cas(), "unknown CA role \"sovereign\"");
    refused(
        store.application(&ChannelName::parse("kdhs").unwrap(), "ref-1"),
        "unknown application status \"lost\"",
    );
    refused(
        store.outbox_due(UnixTime::from_secs(10), 10),
        "unknown outbox message kind \"fax\"",
    );
    refused(store.outbox(), "unknown outbox message kind \"fax\"");
}
