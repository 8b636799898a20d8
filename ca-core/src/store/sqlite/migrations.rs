//! The schema: versioned migrations, applied in order at open. Never edit one that shipped:
//! existing databases must open.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{CaError, Result};

/// Versioned schema migrations, applied in order at open; never edit one that shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: certificates, CAs, audit log.
    "CREATE TABLE certificates (
        issuer       TEXT NOT NULL,
        serial       TEXT NOT NULL,
        profile      TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('reserved', 'active', 'failed')),
        subject      TEXT NOT NULL,
        tckn         TEXT,
        given_name   TEXT,
        surname      TEXT,
        not_before   INTEGER NOT NULL,
        not_after    INTEGER NOT NULL,
        tbs_der      BLOB NOT NULL,
        cert_der     BLOB,
        reserved_at  INTEGER NOT NULL,
        issued_at    INTEGER,
        fail_reason  TEXT,
        -- The constraint that makes a serial unique per issuer (RFC 5280 §4.1.2.2). A rowid
        -- table: rows carry kilobytes of DER, too large for a WITHOUT ROWID b-tree.
        UNIQUE (issuer, serial)
    );
    CREATE INDEX certificates_tckn ON certificates (tckn);
    CREATE TABLE cas (
        id             TEXT PRIMARY KEY,
        role           TEXT NOT NULL CHECK (role IN ('root', 'issuing')),
        key_label      TEXT NOT NULL,
        cert_der       BLOB NOT NULL,
        ocsp_key_label TEXT,
        ocsp_cert_der  BLOB,
        created_at     INTEGER NOT NULL
    );
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        issuer    TEXT NOT NULL,
        serial    TEXT NOT NULL,
        detail    TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash      BLOB NOT NULL
    );",
    // 2: the lifecycle (suspended, revoked), lifecycle requests, CRL numbers. The certificates
    // table is rebuilt because SQLite cannot change a CHECK constraint in place; the status
    // columns come before the DER so reading them never walks a row's overflow pages.
    "CREATE TABLE certificates_v2 (
        issuer          TEXT NOT NULL,
        serial          TEXT NOT NULL,
        profile         TEXT NOT NULL,
        status          TEXT NOT NULL
                        CHECK (status IN ('reserved', 'active', 'failed', 'suspended', 'revoked')),
        subject         TEXT NOT NULL,
        tckn            TEXT,
        given_name      TEXT,
        surname         TEXT,
        not_before      INTEGER NOT NULL,
        not_after       INTEGER NOT NULL,
        reserved_at     INTEGER NOT NULL,
        issued_at       INTEGER,
        fail_reason     TEXT,
        -- Suspended or revoked: revocationDate, CRLReason code (NULL: unspecified), invalidityDate.
        revoked_at      INTEGER,
        reason          INTEGER,
        invalidity_date INTEGER,
        -- Audit sequence number of the last status change (issue, suspend, release, revoke):
        -- what delta CRLs and the OCSP refresher read changes by.
        change_seq      INTEGER NOT NULL DEFAULT 0,
        tbs_der         BLOB NOT NULL,
        cert_der        BLOB,
        UNIQUE (issuer, serial)
    );
    INSERT INTO certificates_v2 (issuer, serial, profile, status, subject, tckn, given_name,
        surname, not_before, not_after, reserved_at, issued_at, fail_reason, tbs_der, cert_der)
      SELECT issuer, serial, profile, status, subject, tckn, given_name, surname, not_before,
        not_after, reserved_at, issued_at, fail_reason, tbs_der, cert_der FROM certificates;
    DROP TABLE certificates;
    ALTER TABLE certificates_v2 RENAME TO certificates;
    CREATE INDEX certificates_tckn ON certificates (tckn);
    CREATE INDEX certificates_change ON certificates (change_seq);
    -- Covering index of the full CRL's entries: a million-entry CRL scans this, not the table.
    CREATE INDEX certificates_revoked
        ON certificates (issuer, serial, status, revoked_at, reason, invalidity_date)
        WHERE status IN ('suspended', 'revoked');
    CREATE TABLE transitions (
        seq             INTEGER PRIMARY KEY,   -- the audit record's seq
        request_id      TEXT NOT NULL UNIQUE,  -- a request applies once
        issuer          TEXT NOT NULL,
        serial          TEXT NOT NULL,
        action          TEXT NOT NULL CHECK (action IN ('suspend', 'release', 'revoke')),
        from_status     TEXT NOT NULL,
        to_status       TEXT NOT NULL,
        reason          INTEGER,
        invalidity_date INTEGER,
        holder          TEXT NOT NULL,
        actor           TEXT NOT NULL,
        at              INTEGER NOT NULL
    );
    CREATE INDEX transitions_certificate ON transitions (issuer, serial, seq);
    CREATE TABLE crls (
        issuer      TEXT NOT NULL,
        number      INTEGER NOT NULL,          -- one sequence per issuer, full and delta
        kind        TEXT NOT NULL CHECK (kind IN ('full', 'delta')),
        base_number INTEGER,
        watermark   INTEGER,
        this_update INTEGER NOT NULL,
        next_update INTEGER NOT NULL,
        entries     INTEGER,
        published   INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (issuer, number)
    );",
    // 3: registered licensed ESHS operators, the only holders of role and secure-communication
    // certificates.
    "CREATE TABLE partners (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        license_no TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        active     INTEGER NOT NULL DEFAULT 1
    );",
    // 4: applications that front channels submitted, by the channel's own reference: a
    // reference seen before issues nothing new (replay of a KDBO, a retried request).
    "CREATE TABLE channel_applications (
        channel     TEXT NOT NULL,
        channel_ref TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('pending', 'issued', 'refused')),
        serial      TEXT,
        error       TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (channel, channel_ref)
    );",
    // 5: commitments (taahhütname) that certificates of the identity-card channels await while
    // suspended, with the signed commitment kept as evidence; and the card key wrapped for the
    // card, kept so that a replayed application answers with it (the HSM copy is destroyed).
    "CREATE TABLE commitments (
        issuer           TEXT NOT NULL,
        serial           TEXT NOT NULL,
        channel          TEXT NOT NULL,
        channel_ref      TEXT NOT NULL,
        text             TEXT NOT NULL,
        sha256           TEXT NOT NULL,
        deadline         INTEGER NOT NULL,
        overwrite_serial TEXT,
        status           TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'expired')),
        evidence         BLOB,
        accepted_at      INTEGER,
        created_at       INTEGER NOT NULL,
        PRIMARY KEY (issuer, serial)
    );
    CREATE INDEX commitments_due ON commitments (deadline) WHERE status = 'pending';
    ALTER TABLE channel_applications ADD COLUMN wrapped_key TEXT;",
    // 6: the institutional channel: institutions and their officers, imported FRM.01.03
    // lists, pre-applications, the notification outbox.
    INSTITUTIONS_MIGRATION,
    // 7: an invited person's completion: enrollments, applicant sessions, e-Onay consents,
    // invoice lines; the outbox learns SMS codes.
    ENROLLMENTS_MIGRATION,
    // 8: the rows a list import skipped as already open, for its replay. (One open
    // pre-application per person is migration 6's unique index `pre_applications_open`.)
    ALREADY_OPEN_MIGRATION,
    // 9: held lists block no one (only invited pre-applications are one per person); a held
    // list ends rejected or expired.
    HELD_LISTS_MIGRATION,
    // 10: lookups by serial alone (the channels' certificate lookup, `cert show`, the public
    // lookup, a commitment by serial) use an index instead of scanning every certificate; the
    // start-up reconcile finds reservations that never completed without a scan either.
    "CREATE INDEX certificates_serial ON certificates (serial);
    CREATE INDEX commitments_serial ON commitments (serial);
    CREATE INDEX certificates_reserved ON certificates (reserved_at) WHERE status = 'reserved';",
    // 11: the trusted transport keys (certificates of the card-personalisation system and of
    // KEC devices) that card keys may be wrapped for, registered and withdrawn by an operator.
    TRANSPORT_KEYS_MIGRATION,
    // 12: sign-in failures and locks per person and source, and the attempts per source
    // whoever they name; a lock written before moves to the unnamed source.
    SIGN_IN_SOURCES_MIGRATION,
    // 13: every delegated OCSP signer an issuing CA has had (renewal keeps the old ones).
    OCSP_SIGNERS_MIGRATION,
    // 14: an issuing CA's generations (key rollover).
    CA_GENERATIONS_MIGRATION,
    // 15: an issuing CA's revocation as an offline root's CRL reported it.
    CA_REVOKED_MIGRATION,
    // 16: signed checkpoints of the audit chain's head (issue 14).
    CHECKPOINTS_MIGRATION,
    // 17: PKI operators, dual-control requests and their approvals, security-word checks.
    ADMIN_MIGRATION,
    // 18: leases on the tasks that run in one place at a time (several processes or nodes).
    "CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );",
    // 19: the holders' portal: contact details per certificate, attempts counted per key,
    // holder sessions; the outbox learns the holder's sign-in code, status notices and expiry
    // reminders.
    PORTAL_MIGRATION,
];

const PORTAL_MIGRATION: &str = "
    CREATE TABLE outbox_v3 (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        kind            TEXT NOT NULL CHECK (kind IN ('access-password', 'sms-code',
            'holder-sms-code', 'status-notice', 'expiry-reminder', 'security-word-notice')),
        subject_ref     TEXT NOT NULL,
        recipient       TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        created_at      INTEGER NOT NULL,
        sent_at         INTEGER
    );
    INSERT INTO outbox_v3 (id, kind, subject_ref, recipient, status, attempts, next_attempt_at,
        last_error, created_at, sent_at)
      SELECT id, kind, subject_ref, recipient, status, attempts, next_attempt_at, last_error,
        created_at, sent_at FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_v3 RENAME TO outbox;
    CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
    -- A reminder or notice is queued once per event and recipient.
    CREATE UNIQUE INDEX outbox_notices ON outbox (kind, subject_ref, recipient)
        WHERE kind IN ('status-notice', 'expiry-reminder', 'security-word-notice');
    -- The expiry reminders' sweep.
    CREATE INDEX certificates_not_after ON certificates (not_after) WHERE status = 'active';
    CREATE TABLE holder_contacts (
        issuer TEXT NOT NULL,
        serial TEXT NOT NULL,
        mobile TEXT,
        email  TEXT,
        PRIMARY KEY (issuer, serial)
    );
    CREATE TABLE portal_attempts (
        key            TEXT PRIMARY KEY,
        window_start   INTEGER NOT NULL,
        window_seconds INTEGER NOT NULL,
        count          INTEGER NOT NULL
    );
    CREATE TABLE holder_sessions (
        id              TEXT PRIMARY KEY,
        token_sha256    TEXT NOT NULL UNIQUE,
        tckn            TEXT NOT NULL,
        stage           TEXT NOT NULL CHECK (stage IN ('awaiting-code', 'signed-in', 'ended')),
        code_hash       TEXT,
        code_expires_at INTEGER,
        code_failures   INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        last_seen_at    INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL
    );";

/// The schema version, read without taking a lock (0 for a new database).
fn schema_version(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    // Up to date: nothing to write, so no write lock. Read-only commands (cert list, audit
    // verify) must not queue behind a busy writer just to learn that.
    if schema_version(conn) == MIGRATIONS.len() as i64 {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(CaError::store("migrate"))?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(CaError::store("migrate"))?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(CaError::store("migrate"))?;
    if current > MIGRATIONS.len() as i64 {
        return Err(CaError::Store {
            operation: "migrate",
            reason: format!(
                "database schema version {current} is newer than this nesca understands ({})",
                MIGRATIONS.len()
            ),
            source: None,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(CaError::store("migrate"))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i as i64 + 1],
        )
        .map_err(CaError::store("migrate"))?;
    }
    tx.commit().map_err(CaError::store("migrate"))
}

const INSTITUTIONS_MIGRATION: &str = "
    CREATE TABLE institutions (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        tax_no       TEXT NOT NULL UNIQUE,
        payer        TEXT NOT NULL CHECK (payer IN ('institution', 'person')),
        officer_tckn TEXT NOT NULL,
        officer_cert BLOB NOT NULL,
        created_at   INTEGER NOT NULL,
        active       INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE list_imports (
        institution  TEXT NOT NULL,
        file_sha256  TEXT NOT NULL,
        file_name    TEXT NOT NULL,
        signature    TEXT NOT NULL CHECK (signature IN ('cms', 'wet')),
        evidence     BLOB NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('accepted', 'awaiting_confirmation')),
        rows_created INTEGER NOT NULL,
        rows_invalid INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (institution, file_sha256)
    );
    CREATE TABLE pre_applications (
        id            TEXT PRIMARY KEY,
        institution   TEXT NOT NULL,
        file_sha256   TEXT NOT NULL,
        row_no        INTEGER NOT NULL,
        tckn          TEXT NOT NULL,
        given_name    TEXT NOT NULL,
        surname       TEXT NOT NULL,
        email         TEXT NOT NULL,
        mobile        TEXT NOT NULL,
        unit          TEXT NOT NULL,
        title         TEXT,
        status        TEXT NOT NULL CHECK (status IN ('held', 'invited', 'closed')),
        password_hash TEXT,
        created_at    INTEGER NOT NULL
    );
    -- One open application per person, whichever institution listed them.
    CREATE UNIQUE INDEX pre_applications_open ON pre_applications (tckn) WHERE status <> 'closed';
    CREATE INDEX pre_applications_list ON pre_applications (institution, file_sha256);
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        kind            TEXT NOT NULL CHECK (kind IN ('access-password')),
        subject_ref     TEXT NOT NULL,
        recipient       TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        created_at      INTEGER NOT NULL,
        sent_at         INTEGER
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';";

const ENROLLMENTS_MIGRATION: &str = "
    -- The outbox learns a second kind of message; SQLite cannot change a CHECK in place.
    CREATE TABLE outbox_v2 (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        kind            TEXT NOT NULL CHECK (kind IN ('access-password', 'sms-code')),
        subject_ref     TEXT NOT NULL,
        recipient       TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        created_at      INTEGER NOT NULL,
        sent_at         INTEGER
    );
    INSERT INTO outbox_v2 (id, kind, subject_ref, recipient, status, attempts, next_attempt_at,
        last_error, created_at, sent_at)
      SELECT id, kind, subject_ref, recipient, status, attempts, next_attempt_at, last_error,
        created_at, sent_at FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_v2 RENAME TO outbox;
    CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
    CREATE TABLE enrollments (
        pre_application      TEXT PRIMARY KEY,
        stage                TEXT NOT NULL CHECK (stage IN
            ('invited', 'form', 'confirmed', 'awaiting_wet', 'approved', 'produced')),
        failed_sign_ins      INTEGER NOT NULL DEFAULT 0,
        locked_until         INTEGER,
        security_word_hash   TEXT,
        do_not_publish       INTEGER NOT NULL DEFAULT 0,
        delivery_address     TEXT,
        sms_code_hash        TEXT,
        sms_code_expires     INTEGER,
        sms_code_failures    INTEGER NOT NULL DEFAULT 0,
        sms_codes_sent       INTEGER NOT NULL DEFAULT 0,
        confirmed_at         INTEGER,
        approval_method      TEXT CHECK (approval_method IN ('e-onay', 'signature', 'wet')),
        approval_text_sha256 TEXT,
        approval_evidence    BLOB,
        approved_at          INTEGER,
        produce_after        INTEGER,
        card_csr             BLOB,
        production_attempts  INTEGER NOT NULL DEFAULT 0,
        last_error           TEXT,
        serial               TEXT,
        produced_at          INTEGER,
        package_written      INTEGER NOT NULL DEFAULT 0,
        updated_at           INTEGER NOT NULL
    );
    CREATE INDEX enrollments_due ON enrollments (produce_after) WHERE stage = 'approved';
    CREATE INDEX enrollments_serial ON enrollments (serial) WHERE serial IS NOT NULL;
    CREATE TABLE applicant_sessions (
        token_sha256    TEXT PRIMARY KEY,
        pre_application TEXT NOT NULL,
        expires_at      INTEGER NOT NULL,
        created_at      INTEGER NOT NULL
    );
    CREATE TABLE eonay_consents (
        tckn            TEXT PRIMARY KEY,
        reference       TEXT NOT NULL,
        evidence        BLOB NOT NULL,
        evidence_sha256 TEXT NOT NULL,
        given_at        INTEGER NOT NULL,
        recorded_by     TEXT NOT NULL,
        recorded_at     INTEGER NOT NULL
    );
    CREATE TABLE invoice_lines (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        issuer          TEXT NOT NULL,
        serial          TEXT NOT NULL,
        pre_application TEXT NOT NULL UNIQUE,
        institution     TEXT NOT NULL,
        payer           TEXT NOT NULL CHECK (payer IN ('institution', 'person')),
        payer_name      TEXT NOT NULL,
        payer_id        TEXT NOT NULL,
        holder_tckn     TEXT NOT NULL,
        holder_name     TEXT NOT NULL,
        item            TEXT NOT NULL,
        month           TEXT NOT NULL,
        produced_at     INTEGER NOT NULL
    );
    CREATE INDEX invoice_lines_month ON invoice_lines (institution, month);";

/// Migration 8: the rows a list import skipped because their person had an open
/// pre-application, so that importing the same file again answers its first outcome in full.
/// Lists imported before it have none recorded.
const ALREADY_OPEN_MIGRATION: &str = "
    CREATE TABLE list_import_already_open (
        institution     TEXT NOT NULL,
        file_sha256     TEXT NOT NULL,
        row_no          INTEGER NOT NULL,
        pre_application TEXT NOT NULL,
        PRIMARY KEY (institution, file_sha256, row_no)
    ) WITHOUT ROWID;";

/// Migration 9: held lists no longer block anyone. Only invited pre-applications are one per
/// person (a held row, from a wet-signed list nobody has confirmed, is not an application
/// yet); a held list may end rejected by an operator or expired. `list_imports` is rebuilt
/// because SQLite cannot change a CHECK constraint in place.
const HELD_LISTS_MIGRATION: &str = "
    CREATE TABLE list_imports_v9 (
        institution  TEXT NOT NULL,
        file_sha256  TEXT NOT NULL,
        file_name    TEXT NOT NULL,
        signature    TEXT NOT NULL CHECK (signature IN ('cms', 'wet')),
        evidence     BLOB NOT NULL,
        status       TEXT NOT NULL
                     CHECK (status IN ('accepted', 'awaiting_confirmation', 'rejected', 'expired')),
        rows_created INTEGER NOT NULL,
        rows_invalid INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (institution, file_sha256)
    );
    INSERT INTO list_imports_v9 SELECT institution, file_sha256, file_name, signature, evidence,
        status, rows_created, rows_invalid, created_at FROM list_imports;
    DROP TABLE list_imports;
    ALTER TABLE list_imports_v9 RENAME TO list_imports;
    CREATE INDEX list_imports_held ON list_imports (created_at)
        WHERE status = 'awaiting_confirmation';
    DROP INDEX pre_applications_open;
    CREATE UNIQUE INDEX pre_applications_open ON pre_applications (tckn) WHERE status = 'invited';";

/// Migration 11: the trusted transport keys card keys may be wrapped for.
const TRANSPORT_KEYS_MIGRATION: &str = "CREATE TABLE transport_keys (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        cert_der      BLOB NOT NULL,
        spki_der      BLOB NOT NULL,
        not_before    INTEGER NOT NULL,
        not_after     INTEGER NOT NULL,
        registered_at INTEGER NOT NULL,
        withdrawn_at  INTEGER
    );";

/// Migration 12: sign-in counted per person and source (`sign_in_sources`: the failures since
/// the source's last sign-in or lock, and its lock), and per source whoever the attempt names
/// (`sign_in_throttle`: the attempts in the source's current window). `enrollments.failed_sign_ins`
/// stays the count from every source; `enrollments.locked_until` is no longer written (a lock
/// it held moves to the unnamed source, `portal`).
const SIGN_IN_SOURCES_MIGRATION: &str = "
    CREATE TABLE sign_in_sources (
        pre_application TEXT NOT NULL,
        source          TEXT NOT NULL,
        failures        INTEGER NOT NULL DEFAULT 0,
        locked_until    INTEGER,
        PRIMARY KEY (pre_application, source)
    ) WITHOUT ROWID;
    CREATE INDEX sign_in_sources_locks ON sign_in_sources (locked_until);
    INSERT INTO sign_in_sources (pre_application, source, failures, locked_until)
      SELECT pre_application, 'portal', 0, locked_until FROM enrollments
      WHERE locked_until IS NOT NULL;
    UPDATE enrollments SET locked_until = NULL;
    CREATE TABLE sign_in_throttle (
        source       TEXT PRIMARY KEY,
        window_start INTEGER NOT NULL,
        attempts     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sign_in_throttle_window ON sign_in_throttle (window_start);";

/// Migration 13: every delegated OCSP signer an issuing CA has had (`cas.ocsp_key_label`
/// and `ocsp_cert_der` stay the current one's).
const OCSP_SIGNERS_MIGRATION: &str = "CREATE TABLE ocsp_signers (
        ca        TEXT NOT NULL,
        key_label TEXT NOT NULL,
        cert_der  BLOB NOT NULL,
        since     INTEGER NOT NULL,
        PRIMARY KEY (ca, key_label)
    );
    INSERT INTO ocsp_signers (ca, key_label, cert_der, since)
      SELECT id, ocsp_key_label, ocsp_cert_der, created_at FROM cas
      WHERE ocsp_key_label IS NOT NULL AND ocsp_cert_der IS NOT NULL;";

/// Migration 14: an issuing CA's generations (a key rollover makes a new one that supersedes
/// the previous); at most one generation supersedes a CA.
const CA_GENERATIONS_MIGRATION: &str = "ALTER TABLE cas ADD COLUMN supersedes TEXT;
    CREATE UNIQUE INDEX cas_supersedes ON cas (supersedes) WHERE supersedes IS NOT NULL;";

/// Migration 15: an issuing CA's revocation as an offline root's CRL reported it.
const CA_REVOKED_MIGRATION: &str = "ALTER TABLE cas ADD COLUMN revoked_at INTEGER;";

/// Migration 16: signed checkpoints of the audit chain's head.
const CHECKPOINTS_MIGRATION: &str = "CREATE TABLE audit_checkpoints (
        seq        INTEGER PRIMARY KEY,
        hash       BLOB NOT NULL,
        at         INTEGER NOT NULL,
        key_label  TEXT NOT NULL,
        signature  BLOB NOT NULL
    );
    -- The cross-check of certificates against their audit records (`unaudited`).
    CREATE INDEX audit_certificate ON audit (issuer, serial, action);";

/// Migration 17: operators, dual-control requests and approvals, security-word checks.
const ADMIN_MIGRATION: &str = "CREATE TABLE operators (
        name        TEXT PRIMARY KEY,
        role        TEXT NOT NULL,
        issuer      TEXT NOT NULL,
        serial      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        disabled_at INTEGER,
        UNIQUE (issuer, serial)
    );
    CREATE TABLE admin_requests (
        id            TEXT PRIMARY KEY,
        action        TEXT NOT NULL,
        payload       TEXT NOT NULL,
        approver_role TEXT NOT NULL,
        requested_by  TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        status        TEXT NOT NULL,
        decided_at    INTEGER,
        result        TEXT
    );
    CREATE INDEX admin_requests_created ON admin_requests (created_at);
    CREATE TABLE admin_request_approvals (
        request_id TEXT NOT NULL,
        operator   TEXT NOT NULL,
        at         INTEGER NOT NULL,
        PRIMARY KEY (request_id, operator)
    );
    CREATE TABLE security_word_checks (
        issuer TEXT NOT NULL,
        serial TEXT NOT NULL,
        at     INTEGER NOT NULL
    );
    CREATE INDEX security_word_checks_certificate ON security_word_checks (issuer, serial, at);
    CREATE TABLE security_words (
        issuer TEXT NOT NULL,
        serial TEXT NOT NULL,
        hash   TEXT NOT NULL,
        PRIMARY KEY (issuer, serial)
    );
    CREATE INDEX security_words_serial ON security_words (serial);";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partner::{PartnerId, PartnerRecord};
    use crate::serial::Serial;
    use crate::store::prelude::*;
    use crate::store::{CertStatus, OutboxKind, OutboxStatus, SqliteStore};

    /// A database written by the first schema keeps its rows when migration 2 rebuilds the
    /// certificates table.
    #[test]
    fn migration_2_keeps_version_1_rows() {
        let dir = crate::testkit::private_tempdir();
        let path = dir.path().join("v1.db");
        {
            // Created 0600, as nesca creates its databases: an older one is no different.
            super::super::files::create_private(&path).unwrap();
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (1);
                 INSERT INTO certificates (issuer, serial, profile, status, subject, tckn, not_before, not_after, tbs_der, cert_der, reserved_at, issued_at)
                 VALUES ('nes-ca', '0101010101010101010101010101010101010101', 'nes', 'active', 'CN=A', '10000000146', 1, 2000000000, x'30', x'3000', 1, 1);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let serial = Serial::parse_hex("0101010101010101010101010101010101010101").unwrap();
        let rec = store.get(None, &serial).unwrap().unwrap();
        assert_eq!(rec.status, CertStatus::Active);
        assert_eq!(rec.cert_der.as_deref(), Some(&[0x30, 0][..]));
        assert_eq!(
            rec.subject.tckn.map(|t| t.to_string()).as_deref(),
            Some("10000000146")
        );
        assert_eq!(rec.revocation, None);
        let version: i64 = store
            .read(
                |c| c.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)),
                "v",
            )
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    /// Rows whose typed columns were damaged outside nesca (a T.C. Kimlik No that is not one, a
    /// profile nesca does not issue) are refused where they are read, naming the row's
    /// operation — never a panic, never a half-typed record.
    #[test]
    fn damaged_typed_columns_are_refused_on_read() {
        let dir = crate::testkit::private_tempdir();
        let path = dir.path().join("damaged.db");
        let serial = |n: &str| Serial::parse_hex(&n.repeat(20)).unwrap();
        {
            let store = SqliteStore::open(&path).unwrap();
            drop(store);
            // Created 0600, as nesca creates its databases: an older one is no different.
            super::super::files::create_private(&path).unwrap();
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "INSERT INTO certificates (issuer, serial, profile, status, subject, tckn, not_before, not_after, tbs_der, reserved_at)
                 VALUES ('nes-ca', '0101010101010101010101010101010101010101', 'nes', 'reserved', 'CN=A', '12345678901', 1, 2, x'30', 1);
                 INSERT INTO certificates (issuer, serial, profile, status, subject, tckn, not_before, not_after, tbs_der, reserved_at)
                 VALUES ('nes-ca', '0202020202020202020202020202020202020202', 'root-of-all', 'reserved', 'CN=B', NULL, 1, 2, x'30', 1);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        for (hex, what) in [("01", "checksum digit"), ("02", "root-of-all")] {
            let e = store.get(None, &serial(hex)).unwrap_err().to_string();
            assert!(e.starts_with("store: "), "{e}");
            assert!(e.contains(what), "{e}");
        }
    }

    fn partner(id: &str) -> PartnerRecord {
        PartnerRecord {
            id: PartnerId::parse(id).unwrap(),
            name: "Örnek ESHS A.Ş.".into(),
            license_no: "BTK-2024-17".into(),
            created_at: crate::UnixTime::from_secs(1_700_000_000),
            active: true,
        }
    }

    /// A database at schema version 2 keeps its certificates and gains the partners table.
    #[test]
    fn migration_3_keeps_version_2_rows() {
        let dir = crate::testkit::private_tempdir();
        let path = dir.path().join("v2.db");
        {
            // Created 0600, as nesca creates its databases: an older one is no different.
            super::super::files::create_private(&path).unwrap();
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(MIGRATIONS[1]).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (1);
                 INSERT INTO schema_version VALUES (2);
                 INSERT INTO certificates (issuer, serial, profile, status, subject, tckn, not_before, not_after, tbs_der, cert_der, reserved_at, issued_at, revoked_at, reason)
                 VALUES ('nes-ca', '0202020202020202020202020202020202020202', 'nes', 'revoked', 'CN=B', '10000000146', 1, 2000000000, x'30', x'3000', 1, 1, 5, 1);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let serial = Serial::parse_hex("0202020202020202020202020202020202020202").unwrap();
        let rec = store.get(None, &serial).unwrap().unwrap();
        assert_eq!(rec.status, CertStatus::Revoked);
        assert_eq!(
            rec.revocation.map(|r| r.at),
            Some(crate::UnixTime::from_secs(5))
        );
        assert!(store.partners().unwrap().is_empty());
        store
            .add_partner(
                partner("eshs-a"),
                &crate::Principal::HostOperator,
                crate::UnixTime::from_secs(1_700_000_000),
            )
            .unwrap();
        assert_eq!(store.partners().unwrap().len(), 1);
        let version: i64 = store
            .read(
                |c| c.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)),
                "v",
            )
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    /// A database at schema `version` (created 0600, as nesca creates its databases: an older
    /// one is no different), migrations applied by hand.
    fn database_at(path: &std::path::Path, version: usize) -> Connection {
        super::super::files::create_private(path).unwrap();
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL);")
            .unwrap();
        for (i, sql) in MIGRATIONS[..version].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.execute("INSERT INTO schema_version VALUES (?1)", [i as i64 + 1])
                .unwrap();
        }
        conn
    }

    /// A database at schema version 9 gains migrations 10 and 11 (the transport keys): a card key
    /// wrapped before it reads back naming no transport key, and keys can be registered.
    #[test]
    fn migrations_10_and_11_keep_version_9_wrapped_keys() {
        let dir = crate::testkit::private_tempdir();
        let path = dir.path().join("v9.db");
        let record = r#"{"scheme":"rsa-oaep-sha1+aes-kwp","wrapped_key":"AQID","wrapped_private_key":"BAUG"}"#;
        {
            let conn = database_at(&path, 9);
            conn.execute(
                "INSERT INTO channel_applications (channel, channel_ref, status, serial, error, created_at, updated_at, wrapped_key)
                 VALUES ('kdhs', 'kdbo-1', 'issued', '0a', NULL, 5, 5, ?1)",
                [record],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let kdhs = crate::ChannelName::parse("kdhs").unwrap();
        let seen = store
            .begin_application(
                &kdhs,
                "kdbo-1",
                &crate::Principal::HostOperator,
                crate::UnixTime::from_secs(6),
            )
            .unwrap()
            .unwrap();
        let wrapped = seen.wrapped_key.unwrap();
        assert_eq!(
            (wrapped.wrapped_key, wrapped.transport_key),
            (vec![1, 2, 3], None)
        );
        assert!(store.transport_keys().unwrap().is_empty());
    }

    /// A database at schema version 7 gains migration 8 (the rows an import skipped as
    /// already open): a list imported before it replays with the rows it created and no
    /// already-open rows recorded; and migration 9 (held lists end rejected or expired).
    #[test]
    fn migrations_8_and_9_keep_version_7_lists() {
        let dir = crate::testkit::private_tempdir();
        let path = dir.path().join("v7.db");
        let sha = "ab".repeat(32);
        {
            let conn = database_at(&path, 7);
            conn.execute(
                "INSERT INTO list_imports (institution, file_sha256, file_name, signature, evidence, status, rows_created, rows_invalid, created_at)
                 VALUES ('acme', ?1, 'liste.csv', 'wet', x'01', 'awaiting_confirmation', 1, 1, 5)",
                [&sha],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO pre_applications (id, institution, file_sha256, row_no, tckn, given_name, surname, email, mobile, unit, status, created_at)
                 VALUES ('pa-1', 'acme', ?1, 2, '10000000146', 'AYŞE', 'YILMAZ', 'a@example.gov.tr', '+905321234567', 'BİM', 'held', 5)",
                [&sha],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let acme = crate::institution::InstitutionId::parse("acme").unwrap();
        let list = store.list_import(&acme, &sha).unwrap().unwrap();
        assert_eq!(
            (list.status, list.created, list.already_open),
            (
                crate::store::ImportStatus::AwaitingConfirmation,
                vec![(2, "pa-1".to_owned())],
                vec![]
            )
        );
        assert_eq!(
            store.pre_application("pa-1").unwrap().unwrap().status,
            crate::store::PreApplicationStatus::Held
        );
        // Migration 9 rebuilt the lists table: a held list may end rejected.
        use crate::store::InstitutionStore as _;
        let closed = store
            .end_held_list(crate::store::HeldListEnd {
                institution: acme.clone(),
                file_sha256: sha.clone(),
                from: crate::store::ImportStatus::AwaitingConfirmation,
                to: crate::store::HeldListEnding::Rejected,
                actor: crate::Principal::HostOperator,
                at: crate::UnixTime::from_secs(6),
            })
            .unwrap();
        assert_eq!(closed, 1);
        assert_eq!(
            store.list_import(&acme, &sha).unwrap().unwrap().status,
            crate::store::ImportStatus::Rejected
        );
    }

    /// A database at schema version 18 gains migration 19 (the portal): its outbox messages,
    /// pending and sent, keep their ids, kinds and attempts, the due index still finds the
    /// pending one, and the new kinds can be written.
    #[test]
    fn migration_19_keeps_version_18_outbox() {
        let dir = crate::testkit::private_tempdir();
        let path = dir.path().join("v18.db");
        {
            let conn = database_at(&path, 18);
            conn.execute_batch(
                "INSERT INTO outbox (id, kind, subject_ref, recipient, status, attempts, next_attempt_at, created_at, sent_at)
                 VALUES (7, 'access-password', 'pa-1', 'a@example.gov.tr', 'sent', 1, 5, 5, 6),
                        (8, 'sms-code', 'pa-1', '+905321234567', 'pending', 2, 50, 5, NULL);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let all = store.outbox().unwrap();
        assert_eq!(
            all.iter()
                .map(|(m, s)| (m.id, m.kind, m.attempts, *s))
                .collect::<Vec<_>>(),
            [
                (7, OutboxKind::AccessPassword, 1, OutboxStatus::Sent),
                (8, OutboxKind::SmsCode, 2, OutboxStatus::Pending)
            ]
        );
        let due = store
            .outbox_due(crate::UnixTime::from_secs(60), 10)
            .unwrap();
        assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), [8]);
        let session = crate::store::NewHolderSession {
            id: "s1".into(),
            token_sha256: "t1".into(),
            tckn: crate::Tckn::parse("10000000146").unwrap(),
            mobile: "+905321234567".into(),
            expires_at: crate::UnixTime::from_secs(4_000),
        };
        store
            .start_holder_session(
                &session,
                &crate::Principal::HostOperator,
                crate::UnixTime::from_secs(60),
            )
            .unwrap();
        let ids: Vec<i64> = store.outbox().unwrap().iter().map(|(m, _)| m.id).collect();
        assert_eq!(ids, [7, 8, 9], "new messages follow the old ids");
    }
}
