//! The PostgreSQL schema: versioned migrations, applied in order at open, by one node at a
//! time. Never edit one that shipped: existing databases must open.
//!
//! Version 1 is the whole schema SQLite reached in its 17 migrations, in PostgreSQL's types:
//! every integer `BIGINT`, every blob `BYTEA`. Tables some reads order by insertion carry the
//! `rowid` column SQLite gives every table.

use super::db::Connection;
use crate::error::{CaError, Result};

/// The advisory lock a node holds while it migrates: nodes starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6e65_7363_6102;

/// Versioned schema migrations, applied in order at open; never edit one that shipped.
const MIGRATIONS: &[&str] = &[
    // 1: everything of SQLite's migrations 1–17.
    "
    CREATE TABLE cas (
            id             TEXT PRIMARY KEY,
            role           TEXT NOT NULL CHECK (role IN ('root', 'issuing')),
            key_label      TEXT NOT NULL,
            cert_der       BYTEA NOT NULL,
            ocsp_key_label TEXT,
            ocsp_cert_der  BYTEA,
            created_at     BIGINT NOT NULL,
            supersedes     TEXT,
            revoked_at     BIGINT
        );

    CREATE TABLE audit (
            seq       BIGINT PRIMARY KEY,
            at        BIGINT NOT NULL,
            actor     TEXT NOT NULL,
            action    TEXT NOT NULL,
            issuer    TEXT NOT NULL,
            serial    TEXT NOT NULL,
            detail    TEXT NOT NULL,
            prev_hash BYTEA NOT NULL,
            hash      BYTEA NOT NULL
        );

    CREATE TABLE certificates (
            -- Insertion order (SQLite's rowid), which some reads are ordered by.
            rowid BIGINT GENERATED ALWAYS AS IDENTITY,
            issuer          TEXT NOT NULL,
            serial          TEXT NOT NULL,
            profile         TEXT NOT NULL,
            status          TEXT NOT NULL
                            CHECK (status IN ('reserved', 'active', 'failed', 'suspended', 'revoked')),
            subject         TEXT NOT NULL,
            tckn            TEXT,
            given_name      TEXT,
            surname         TEXT,
            not_before      BIGINT NOT NULL,
            not_after       BIGINT NOT NULL,
            reserved_at     BIGINT NOT NULL,
            issued_at       BIGINT,
            fail_reason     TEXT,
            -- Suspended or revoked: revocationDate, CRLReason code (NULL: unspecified), invalidityDate.
            revoked_at      BIGINT,
            reason          BIGINT,
            invalidity_date BIGINT,
            -- Audit sequence number of the last status change (issue, suspend, release, revoke):
            -- what delta CRLs and the OCSP refresher read changes by.
            change_seq      BIGINT NOT NULL DEFAULT 0,
            tbs_der         BYTEA NOT NULL,
            cert_der        BYTEA,
            UNIQUE (issuer, serial)
        );

    CREATE INDEX certificates_tckn ON certificates (tckn);

    CREATE INDEX certificates_change ON certificates (change_seq);

    CREATE INDEX certificates_revoked
            ON certificates (issuer, serial, status, revoked_at, reason, invalidity_date)
            WHERE status IN ('suspended', 'revoked');

    CREATE TABLE transitions (
            seq             BIGINT PRIMARY KEY,   -- the audit record's seq
            request_id      TEXT NOT NULL UNIQUE,  -- a request applies once
            issuer          TEXT NOT NULL,
            serial          TEXT NOT NULL,
            action          TEXT NOT NULL CHECK (action IN ('suspend', 'release', 'revoke')),
            from_status     TEXT NOT NULL,
            to_status       TEXT NOT NULL,
            reason          BIGINT,
            invalidity_date BIGINT,
            holder          TEXT NOT NULL,
            actor           TEXT NOT NULL,
            at              BIGINT NOT NULL
        );

    CREATE INDEX transitions_certificate ON transitions (issuer, serial, seq);

    CREATE TABLE crls (
            issuer      TEXT NOT NULL,
            number      BIGINT NOT NULL,          -- one sequence per issuer, full and delta
            kind        TEXT NOT NULL CHECK (kind IN ('full', 'delta')),
            base_number BIGINT,
            watermark   BIGINT,
            this_update BIGINT NOT NULL,
            next_update BIGINT NOT NULL,
            entries     BIGINT,
            published   BIGINT NOT NULL DEFAULT 0,
            created_at  BIGINT NOT NULL,
            PRIMARY KEY (issuer, number)
        );

    CREATE TABLE partners (
            id         TEXT PRIMARY KEY,
            name       TEXT NOT NULL,
            license_no TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            active     BIGINT NOT NULL DEFAULT 1
        );

    CREATE TABLE channel_applications (
            channel     TEXT NOT NULL,
            channel_ref TEXT NOT NULL,
            status      TEXT NOT NULL CHECK (status IN ('pending', 'issued', 'refused')),
            serial      TEXT,
            error       TEXT,
            created_at  BIGINT NOT NULL,
            updated_at  BIGINT NOT NULL,
            wrapped_key TEXT,
            PRIMARY KEY (channel, channel_ref)
        );

    CREATE TABLE commitments (
            issuer           TEXT NOT NULL,
            serial           TEXT NOT NULL,
            channel          TEXT NOT NULL,
            channel_ref      TEXT NOT NULL,
            text             TEXT NOT NULL,
            sha256           TEXT NOT NULL,
            deadline         BIGINT NOT NULL,
            overwrite_serial TEXT,
            status           TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'expired')),
            evidence         BYTEA,
            accepted_at      BIGINT,
            created_at       BIGINT NOT NULL,
            PRIMARY KEY (issuer, serial)
        );

    CREATE INDEX commitments_due ON commitments (deadline) WHERE status = 'pending';

    CREATE TABLE institutions (
            id           TEXT PRIMARY KEY,
            name         TEXT NOT NULL,
            tax_no       TEXT NOT NULL UNIQUE,
            payer        TEXT NOT NULL CHECK (payer IN ('institution', 'person')),
            officer_tckn TEXT NOT NULL,
            officer_cert BYTEA NOT NULL,
            created_at   BIGINT NOT NULL,
            active       BIGINT NOT NULL DEFAULT 1
        );

    CREATE TABLE pre_applications (
            id            TEXT PRIMARY KEY,
            institution   TEXT NOT NULL,
            file_sha256   TEXT NOT NULL,
            row_no        BIGINT NOT NULL,
            tckn          TEXT NOT NULL,
            given_name    TEXT NOT NULL,
            surname       TEXT NOT NULL,
            email         TEXT NOT NULL,
            mobile        TEXT NOT NULL,
            unit          TEXT NOT NULL,
            title         TEXT,
            status        TEXT NOT NULL CHECK (status IN ('held', 'invited', 'closed')),
            password_hash TEXT,
            created_at    BIGINT NOT NULL
        );

    CREATE INDEX pre_applications_list ON pre_applications (institution, file_sha256);

    CREATE TABLE outbox (
            id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            kind            TEXT NOT NULL CHECK (kind IN ('access-password', 'sms-code')),
            subject_ref     TEXT NOT NULL,
            recipient       TEXT NOT NULL,
            status          TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
            attempts        BIGINT NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL,
            last_error      TEXT,
            created_at      BIGINT NOT NULL,
            sent_at         BIGINT
        );

    CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';

    CREATE TABLE enrollments (
            pre_application      TEXT PRIMARY KEY,
            stage                TEXT NOT NULL CHECK (stage IN
                ('invited', 'form', 'confirmed', 'awaiting_wet', 'approved', 'produced')),
            failed_sign_ins      BIGINT NOT NULL DEFAULT 0,
            locked_until         BIGINT,
            security_word_hash   TEXT,
            do_not_publish       BIGINT NOT NULL DEFAULT 0,
            delivery_address     TEXT,
            sms_code_hash        TEXT,
            sms_code_expires     BIGINT,
            sms_code_failures    BIGINT NOT NULL DEFAULT 0,
            sms_codes_sent       BIGINT NOT NULL DEFAULT 0,
            confirmed_at         BIGINT,
            approval_method      TEXT CHECK (approval_method IN ('e-onay', 'signature', 'wet')),
            approval_text_sha256 TEXT,
            approval_evidence    BYTEA,
            approved_at          BIGINT,
            produce_after        BIGINT,
            card_csr             BYTEA,
            production_attempts  BIGINT NOT NULL DEFAULT 0,
            last_error           TEXT,
            serial               TEXT,
            produced_at          BIGINT,
            package_written      BIGINT NOT NULL DEFAULT 0,
            updated_at           BIGINT NOT NULL
        );

    CREATE INDEX enrollments_due ON enrollments (produce_after) WHERE stage = 'approved';

    CREATE INDEX enrollments_serial ON enrollments (serial) WHERE serial IS NOT NULL;

    CREATE TABLE applicant_sessions (
            token_sha256    TEXT PRIMARY KEY,
            pre_application TEXT NOT NULL,
            expires_at      BIGINT NOT NULL,
            created_at      BIGINT NOT NULL
        );

    CREATE TABLE eonay_consents (
            tckn            TEXT PRIMARY KEY,
            reference       TEXT NOT NULL,
            evidence        BYTEA NOT NULL,
            evidence_sha256 TEXT NOT NULL,
            given_at        BIGINT NOT NULL,
            recorded_by     TEXT NOT NULL,
            recorded_at     BIGINT NOT NULL
        );

    CREATE TABLE invoice_lines (
            id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
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
            produced_at     BIGINT NOT NULL
        );

    CREATE INDEX invoice_lines_month ON invoice_lines (institution, month);

    CREATE TABLE list_import_already_open (
            institution     TEXT NOT NULL,
            file_sha256     TEXT NOT NULL,
            row_no          BIGINT NOT NULL,
            pre_application TEXT NOT NULL,
            PRIMARY KEY (institution, file_sha256, row_no)
        );

    CREATE TABLE list_imports (
            institution  TEXT NOT NULL,
            file_sha256  TEXT NOT NULL,
            file_name    TEXT NOT NULL,
            signature    TEXT NOT NULL CHECK (signature IN ('cms', 'wet')),
            evidence     BYTEA NOT NULL,
            status       TEXT NOT NULL
                         CHECK (status IN ('accepted', 'awaiting_confirmation', 'rejected', 'expired')),
            rows_created BIGINT NOT NULL,
            rows_invalid BIGINT NOT NULL,
            created_at   BIGINT NOT NULL,
            PRIMARY KEY (institution, file_sha256)
        );

    CREATE INDEX list_imports_held ON list_imports (created_at)
            WHERE status = 'awaiting_confirmation';

    CREATE UNIQUE INDEX pre_applications_open ON pre_applications (tckn) WHERE status = 'invited';

    CREATE INDEX certificates_serial ON certificates (serial);

    CREATE INDEX commitments_serial ON commitments (serial);

    CREATE INDEX certificates_reserved ON certificates (reserved_at) WHERE status = 'reserved';

    CREATE TABLE transport_keys (
            id            TEXT PRIMARY KEY,
            name          TEXT NOT NULL,
            cert_der      BYTEA NOT NULL,
            spki_der      BYTEA NOT NULL,
            not_before    BIGINT NOT NULL,
            not_after     BIGINT NOT NULL,
            registered_at BIGINT NOT NULL,
            withdrawn_at  BIGINT
        );

    CREATE TABLE sign_in_sources (
            pre_application TEXT NOT NULL,
            source          TEXT NOT NULL,
            failures        BIGINT NOT NULL DEFAULT 0,
            locked_until    BIGINT,
            PRIMARY KEY (pre_application, source)
        );

    CREATE INDEX sign_in_sources_locks ON sign_in_sources (locked_until);

    CREATE TABLE sign_in_throttle (
            source       TEXT PRIMARY KEY,
            window_start BIGINT NOT NULL,
            attempts     BIGINT NOT NULL
        );

    CREATE INDEX sign_in_throttle_window ON sign_in_throttle (window_start);

    CREATE TABLE ocsp_signers (
            -- Insertion order (SQLite's rowid), which some reads are ordered by.
            rowid BIGINT GENERATED ALWAYS AS IDENTITY,
            ca        TEXT NOT NULL,
            key_label TEXT NOT NULL,
            cert_der  BYTEA NOT NULL,
            since     BIGINT NOT NULL,
            PRIMARY KEY (ca, key_label)
        );

    CREATE UNIQUE INDEX cas_supersedes ON cas (supersedes) WHERE supersedes IS NOT NULL;

    CREATE TABLE audit_checkpoints (
            seq        BIGINT PRIMARY KEY,
            hash       BYTEA NOT NULL,
            at         BIGINT NOT NULL,
            key_label  TEXT NOT NULL,
            signature  BYTEA NOT NULL
        );

    CREATE INDEX audit_certificate ON audit (issuer, serial, action);

    CREATE TABLE operators (
            name        TEXT PRIMARY KEY,
            role        TEXT NOT NULL,
            issuer      TEXT NOT NULL,
            serial      TEXT NOT NULL,
            created_at  BIGINT NOT NULL,
            disabled_at BIGINT,
            UNIQUE (issuer, serial)
        );

    CREATE TABLE admin_requests (
            id            TEXT PRIMARY KEY,
            action        TEXT NOT NULL,
            payload       TEXT NOT NULL,
            approver_role TEXT NOT NULL,
            requested_by  TEXT NOT NULL,
            created_at    BIGINT NOT NULL,
            expires_at    BIGINT NOT NULL,
            status        TEXT NOT NULL,
            decided_at    BIGINT,
            result        TEXT
        );

    CREATE INDEX admin_requests_created ON admin_requests (created_at);

    CREATE TABLE admin_request_approvals (
            -- Insertion order (SQLite's rowid), which some reads are ordered by.
            rowid BIGINT GENERATED ALWAYS AS IDENTITY,
            request_id TEXT NOT NULL,
            operator   TEXT NOT NULL,
            at         BIGINT NOT NULL,
            PRIMARY KEY (request_id, operator)
        );

    CREATE TABLE security_word_checks (
            issuer TEXT NOT NULL,
            serial TEXT NOT NULL,
            at     BIGINT NOT NULL
        );

    CREATE INDEX security_word_checks_certificate ON security_word_checks (issuer, serial, at);

    CREATE TABLE security_words (
            issuer TEXT NOT NULL,
            serial TEXT NOT NULL,
            hash   TEXT NOT NULL,
            PRIMARY KEY (issuer, serial)
        );

    CREATE INDEX security_words_serial ON security_words (serial);
    ",
    // 2: leases on the tasks that run on one node at a time.
    "CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    // 3: the holders' portal (SQLite's migration 19).
    "ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
    ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('access-password',
        'sms-code', 'holder-sms-code', 'status-notice', 'expiry-reminder',
        'security-word-notice'));
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
        window_start   BIGINT NOT NULL,
        window_seconds BIGINT NOT NULL,
        count          BIGINT NOT NULL
    );
    CREATE TABLE holder_sessions (
        id              TEXT PRIMARY KEY,
        token_sha256    TEXT NOT NULL UNIQUE,
        tckn            TEXT NOT NULL,
        stage           TEXT NOT NULL CHECK (stage IN ('awaiting-code', 'signed-in', 'ended')),
        code_hash       TEXT,
        code_expires_at BIGINT,
        code_failures   BIGINT NOT NULL DEFAULT 0,
        created_at      BIGINT NOT NULL,
        last_seen_at    BIGINT NOT NULL,
        expires_at      BIGINT NOT NULL
    )",
];

/// How many schema versions this nesca knows.
#[cfg(test)]
pub(super) const VERSIONS: usize = MIGRATIONS.len();

/// Brings the database's schema up to date, holding [`MIGRATION_LOCK`] so that of several
/// nodes starting at once one migrates and the others find it done.
pub(super) fn migrate(conn: &Connection) -> Result<()> {
    let op = "migrate";
    conn.execute_batch(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .map_err(CaError::store(op))?;
    let outcome = migrate_locked(conn);
    let unlocked = conn
        .execute_batch(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .map_err(CaError::store(op));
    outcome.and(unlocked)
}

fn migrate_locked(conn: &Connection) -> Result<()> {
    let op = "migrate";
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .map_err(CaError::store(op))?;
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(CaError::store(op))?;
    if current > MIGRATIONS.len() as i64 {
        return Err(CaError::Store {
            operation: op,
            reason: format!(
                "database schema version {current} is newer than this nesca understands ({})",
                MIGRATIONS.len()
            ),
            source: None,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        // One transaction per migration: a failure leaves the previous version whole.
        conn.execute_batch(&format!(
            "BEGIN; {sql}; INSERT INTO schema_version (version) VALUES ({}); COMMIT;",
            i + 1
        ))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            CaError::store(op)(e)
        })?;
    }
    Ok(())
}
