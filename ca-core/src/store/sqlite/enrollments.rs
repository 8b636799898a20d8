//! The SQLite side of an invited person's completion (migration 7): enrollments, applicant
//! sessions, e-Onay consents, invoice lines, and the SMS-code kind of outbox message. Each
//! write checks the stage it needs in its `UPDATE ... WHERE stage IN (...)`, so a refused
//! write changes nothing.

use rusqlite::{params, Connection, OptionalExtension};

use super::audit::{append_audit, event_entry, AuditHead};
use super::writer::{refused, Refusal};
use super::SqliteStore;
use crate::error::{CaError, Result};
use crate::serial::{IssuerId, Serial};
use crate::store::enrollment::{
    ApprovalMethod, EOnayConsent, EnrollmentOutcome, EnrollmentRecord, EnrollmentStage,
    EnrollmentStore, EnrollmentWrite, InvoiceLine, InvoicePayer, ProducedEnrollment,
    PublishedCertificate,
};

pub(super) const MIGRATION: &str = "
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

const ENROLLMENT_COLUMNS: &str = "pre_application, stage, failed_sign_ins, locked_until, security_word_hash, do_not_publish, delivery_address, sms_code_hash, sms_code_expires, sms_code_failures, sms_codes_sent, confirmed_at, approval_method, approval_text_sha256, approved_at, produce_after, card_csr, production_attempts, last_error, serial, produced_at, package_written, updated_at";

/// A column whose text does not parse as what it holds.
fn bad(i: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        i,
        rusqlite::types::Type::Text,
        format!("bad {what}").into(),
    )
}

fn enrollment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EnrollmentRecord> {
    let stage: String = r.get(1)?;
    let method: Option<String> = r.get(12)?;
    let serial: Option<String> = r.get(19)?;
    Ok(EnrollmentRecord {
        pre_application: r.get(0)?,
        stage: EnrollmentStage::parse(&stage).ok_or_else(|| bad(1, "stage"))?,
        failed_sign_ins: r.get(2)?,
        locked_until: r.get(3)?,
        security_word_hash: r.get(4)?,
        do_not_publish: r.get(5)?,
        delivery_address: r.get(6)?,
        sms_code_hash: r.get(7)?,
        sms_code_expires: r.get(8)?,
        sms_code_failures: r.get(9)?,
        sms_codes_sent: r.get(10)?,
        confirmed_at: r.get(11)?,
        approval_method: match method {
            Some(m) => Some(ApprovalMethod::parse(&m).ok_or_else(|| bad(12, "method"))?),
            None => None,
        },
        approval_text_sha256: r.get(13)?,
        approved_at: r.get(14)?,
        produce_after: r.get(15)?,
        card_csr: r.get(16)?,
        production_attempts: r.get(17)?,
        last_error: r.get(18)?,
        serial: match serial {
            Some(s) => Some(Serial::parse_hex(&s).map_err(|_| bad(19, "serial"))?),
            None => None,
        },
        produced_at: r.get(20)?,
        package_written: r.get(21)?,
        updated_at: r.get(22)?,
    })
}

pub(super) fn read_enrollment(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<EnrollmentRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE pre_application = ?1"
    ))?
    .query_row([id], enrollment_row)
    .optional()
}

/// Approved enrollments due at `at` (renewals whose window has come included), and produced
/// ones whose package is not out yet, oldest first.
pub(super) fn read_enrollments_due(
    conn: &Connection,
    at: i64,
    limit: u32,
) -> rusqlite::Result<Vec<EnrollmentRecord>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE (stage = 'approved' AND COALESCE(produce_after, 0) <= ?1) OR (stage = 'produced' AND package_written = 0) ORDER BY approved_at, pre_application LIMIT ?2"
    ))?;
    let rows = st.query_map(params![at, limit], enrollment_row)?;
    rows.collect()
}

pub(super) fn read_open_pre_application_id(
    conn: &Connection,
    tckn: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT id FROM pre_applications WHERE tckn = ?1 AND status <> 'closed'")?
        .query_row([tckn], |r| r.get(0))
        .optional()
}

pub(super) fn read_session(
    conn: &Connection,
    token_sha256: &str,
) -> rusqlite::Result<Option<(String, i64)>> {
    conn.prepare_cached(
        "SELECT pre_application, expires_at FROM applicant_sessions WHERE token_sha256 = ?1",
    )?
    .query_row([token_sha256], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

pub(super) fn read_consent(
    conn: &Connection,
    tckn: &str,
) -> rusqlite::Result<Option<EOnayConsent>> {
    conn.prepare_cached(
        "SELECT tckn, reference, evidence, evidence_sha256, given_at, recorded_by, recorded_at FROM eonay_consents WHERE tckn = ?1",
    )?
    .query_row([tckn], |r| {
        Ok(EOnayConsent {
            tckn: super::tckn_column(r, 0)?,
            reference: r.get(1)?,
            evidence: r.get(2)?,
            evidence_sha256: r.get(3)?,
            given_at: r.get(4)?,
            recorded_by: principal_column(r, 5)?,
            recorded_at: r.get(6)?,
        })
    })
    .optional()
}

pub(super) fn read_invoice_lines(
    conn: &Connection,
    institution: &str,
    month: &str,
) -> rusqlite::Result<Vec<InvoiceLine>> {
    let mut st = conn.prepare_cached(
        "SELECT i.id, i.issuer, i.serial, i.pre_application, i.institution, i.payer, i.payer_name, i.payer_id, i.holder_tckn, i.holder_name, i.item, i.month, i.produced_at, COALESCE(e.production_attempts, 0)
         FROM invoice_lines i LEFT JOIN enrollments e ON e.pre_application = i.pre_application
         WHERE i.institution = ?1 AND i.month = ?2 ORDER BY i.produced_at, i.id",
    )?;
    let rows = st.query_map(params![institution, month], |r| {
        let issuer: String = r.get(1)?;
        let serial: String = r.get(2)?;
        Ok(InvoiceLine {
            id: r.get(0)?,
            issuer: IssuerId::parse(&issuer).map_err(|_| bad(1, "issuer"))?,
            serial: Serial::parse_hex(&serial).map_err(|_| bad(2, "serial"))?,
            produced: ProducedEnrollment {
                pre_application: r.get(3)?,
                institution: r.get(4)?,
                payer: InvoicePayer {
                    kind: r.get(5)?,
                    name: r.get(6)?,
                    id: r.get(7)?,
                },
                holder_tckn: super::tckn_column(r, 8)?,
                holder_name: r.get(9)?,
                item: r.get(10)?,
                month: r.get(11)?,
                attempt: r.get(13)?,
            },
            produced_at: r.get(12)?,
        })
    })?;
    rows.collect()
}

/// Issued certificates (not reserved or failed) whose holder did not choose "do not publish",
/// by serial or by holder; newest first.
pub(super) fn read_published(
    conn: &Connection,
    serial: Option<&Serial>,
    tckn: Option<&str>,
) -> rusqlite::Result<Vec<PublishedCertificate>> {
    let mut st = conn.prepare_cached(
        "SELECT c.serial, c.subject, c.status, c.not_before, c.not_after, c.cert_der FROM certificates c
         WHERE c.status IN ('active', 'suspended', 'revoked') AND c.cert_der IS NOT NULL
           AND (?1 IS NULL OR c.serial = ?1) AND (?2 IS NULL OR c.tckn = ?2)
           AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.serial = c.serial AND e.do_not_publish = 1)
         ORDER BY c.not_before DESC LIMIT 100",
    )?;
    let rows = st.query_map(params![serial.map(|s| s.to_hex()), tckn], |r| {
        let serial: String = r.get(0)?;
        Ok(PublishedCertificate {
            serial: Serial::parse_hex(&serial).map_err(|_| bad(0, "serial"))?,
            subject: r.get(1)?,
            status: r.get(2)?,
            not_before: r.get(3)?,
            not_after: r.get(4)?,
            cert_der: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// The latest `not_after` of the person's certificates that are in use (active or
/// suspended): a new application of theirs is a renewal of it.
pub(super) fn read_current_not_after(
    conn: &Connection,
    tckn: &str,
    at: i64,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT MAX(not_after) FROM certificates WHERE tckn = ?1 AND status IN ('active', 'suspended') AND not_after > ?2",
    )?
    .query_row(params![tckn, at], |r| r.get(0))
}

/// Runs `sql` (an UPDATE of one enrollment guarded by its stage) and refuses when no row
/// matched: the enrollment is missing or not at a stage the write needs.
fn update_one(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    id: &str,
    needs: &str,
) -> Result<(), Refusal> {
    let n = conn.prepare_cached(sql)?.execute(p)?;
    if n != 1 {
        let now = read_enrollment(conn, id)?.map(|e| e.stage.as_str());
        return Err(Refusal::Refused(CaError::Conflict {
            field: "stage",
            rule: format!(
                "application {id} is {}; this step needs it {needs}",
                now.unwrap_or("not started")
            ),
        }));
    }
    Ok(())
}

fn audit(
    conn: &Connection,
    head: &mut AuditHead,
    at: i64,
    actor: &crate::Principal,
    action: &'static str,
    detail: String,
) -> Result<(), Refusal> {
    append_audit(
        conn,
        head,
        event_entry(
            crate::UnixTime::from_secs(at),
            actor,
            action,
            String::new(),
            detail,
        ),
    )
}

/// Makes sure the enrollment row of an invited pre-application exists.
fn ensure(conn: &Connection, id: &str, at: i64) -> Result<(), Refusal> {
    let invited: bool = conn
        .prepare_cached("SELECT status = 'invited' FROM pre_applications WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    if !invited {
        return Err(refused(
            "pre_application",
            format!("no invited pre-application {id}"),
        ));
    }
    conn.prepare_cached(
        "INSERT INTO enrollments (pre_application, stage, updated_at) VALUES (?1, 'invited', ?2) ON CONFLICT DO NOTHING",
    )?
    .execute(params![id, at])?;
    Ok(())
}

/// Refuses (before anything is written) when the application had its last SMS code.
fn check_codes_left(conn: &Connection, id: &str, max_codes: u32) -> Result<(), Refusal> {
    let sent: Option<u32> = conn
        .prepare_cached("SELECT sms_codes_sent FROM enrollments WHERE pre_application = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    if sent.unwrap_or(0) >= max_codes {
        return Err(refused(
            "sms_code",
            format!("{max_codes} codes were sent already; ask the ESHS to reset the application"),
        ));
    }
    Ok(())
}

/// Queues an SMS code message (its code is drawn when it is sent); the previous code is void.
fn queue_code(conn: &Connection, id: &str, mobile: &str, at: i64) -> Result<(), Refusal> {
    conn.prepare_cached(
        "INSERT INTO outbox (kind, subject_ref, recipient, status, next_attempt_at, created_at) VALUES ('sms-code', ?1, ?2, 'pending', ?3, ?3)",
    )?
    .execute(params![id, mobile, at])?;
    conn.prepare_cached(
        "UPDATE enrollments SET sms_codes_sent = sms_codes_sent + 1, sms_code_hash = NULL, sms_code_expires = NULL, sms_code_failures = 0, updated_at = ?2 WHERE pre_application = ?1",
    )?
    .execute(params![id, at])?;
    Ok(())
}

/// Applies one [`EnrollmentWrite`].
pub(super) fn write(
    conn: &Connection,
    w: &EnrollmentWrite,
    head: &mut AuditHead,
) -> Result<EnrollmentOutcome, Refusal> {
    let applicant = |id: &str| crate::Principal::Applicant {
        pre_application: id.to_owned(),
    };
    match w {
        EnrollmentWrite::SignInFailed {
            id,
            max_failures,
            lock_seconds,
            at,
        } => {
            ensure(conn, id, *at)?;
            let count: u32 = conn
                .prepare_cached(
                    "UPDATE enrollments SET failed_sign_ins = failed_sign_ins + 1, updated_at = ?2 WHERE pre_application = ?1 RETURNING failed_sign_ins",
                )?
                .query_row(params![id, at], |r| r.get(0))?;
            let locked = count >= *max_failures;
            if locked {
                conn.prepare_cached(
                    "UPDATE enrollments SET failed_sign_ins = 0, locked_until = ?2 WHERE pre_application = ?1",
                )?
                .execute(params![id, at + lock_seconds])?;
            }
            let action = if locked {
                "sign-in-locked"
            } else {
                "sign-in-failed"
            };
            audit(
                conn,
                head,
                *at,
                &applicant(id),
                action,
                format!("pre_application={id} failures={count}"),
            )?;
            Ok(EnrollmentOutcome::Failures { count, locked })
        }
        EnrollmentWrite::SignedIn {
            id,
            token_sha256,
            expires_at,
            at,
        } => {
            ensure(conn, id, *at)?;
            conn.prepare_cached(
                "UPDATE enrollments SET failed_sign_ins = 0, locked_until = NULL, updated_at = ?2 WHERE pre_application = ?1",
            )?
            .execute(params![id, at])?;
            // Expired sessions go as new ones come.
            conn.prepare_cached("DELETE FROM applicant_sessions WHERE expires_at < ?1")?
                .execute([at])?;
            conn.prepare_cached(
                "INSERT INTO applicant_sessions (token_sha256, pre_application, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![token_sha256, id, expires_at, at])?;
            audit(
                conn,
                head,
                *at,
                &applicant(id),
                "sign-in",
                format!("pre_application={id}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::Form {
            id,
            security_word_hash,
            do_not_publish,
            delivery_address,
            mobile,
            max_codes,
            at,
        } => {
            // The stage first (what the applicant must hear), then the codes left: both
            // before anything is written.
            let stage = read_enrollment(conn, id)?.map(|e| e.stage);
            if !matches!(
                stage,
                Some(EnrollmentStage::Invited | EnrollmentStage::Form)
            ) {
                return Err(Refusal::Refused(CaError::Conflict {
                    field: "stage",
                    rule: format!(
                        "application {id} is {}; the form is filled before the code is confirmed",
                        stage.map(EnrollmentStage::as_str).unwrap_or("not started")
                    ),
                }));
            }
            check_codes_left(conn, id, *max_codes)?;
            update_one(
                conn,
                "UPDATE enrollments SET stage = 'form', security_word_hash = ?2, do_not_publish = ?3, delivery_address = ?4, updated_at = ?5 WHERE pre_application = ?1 AND stage IN ('invited', 'form')",
                params![id, security_word_hash, do_not_publish, delivery_address, at],
                id,
                "invited or with its form unconfirmed",
            )?;
            queue_code(conn, id, mobile, *at)?;
            audit(
                conn,
                head,
                *at,
                &applicant(id),
                "application-form",
                format!("pre_application={id} do_not_publish={do_not_publish}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::ResendCode {
            id,
            mobile,
            max_codes,
            at,
        } => {
            let stage = read_enrollment(conn, id)?.map(|e| e.stage);
            if stage != Some(EnrollmentStage::Form) {
                return Err(Refusal::Refused(CaError::Conflict {
                    field: "stage",
                    rule: format!("application {id} has no code awaiting confirmation"),
                }));
            }
            check_codes_left(conn, id, *max_codes)?;
            queue_code(conn, id, mobile, *at)?;
            audit(
                conn,
                head,
                *at,
                &applicant(id),
                "sms-code-resend",
                format!("pre_application={id}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::CodeIssued {
            id,
            code_hash,
            expires_at,
            at,
        } => {
            update_one(
                conn,
                "UPDATE enrollments SET sms_code_hash = ?2, sms_code_expires = ?3, sms_code_failures = 0, updated_at = ?4 WHERE pre_application = ?1 AND stage = 'form'",
                params![id, code_hash, expires_at, at],
                id,
                "awaiting its SMS code",
            )?;
            audit(
                conn,
                head,
                *at,
                &crate::Principal::System(crate::SystemTask::Outbox),
                "sms-code-issued",
                format!("pre_application={id}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::CodeFailed {
            id,
            max_failures,
            at,
        } => {
            let count: u32 = conn
                .prepare_cached(
                    "UPDATE enrollments SET sms_code_failures = sms_code_failures + 1, updated_at = ?2 WHERE pre_application = ?1 AND stage = 'form' RETURNING sms_code_failures",
                )?
                .query_row(params![id, at], |r| r.get(0))
                .optional()?
                .ok_or_else(|| refused("stage", format!("application {id} has no code awaiting confirmation")))?;
            let locked = count >= *max_failures;
            if locked {
                conn.prepare_cached(
                    "UPDATE enrollments SET sms_code_hash = NULL, sms_code_expires = NULL WHERE pre_application = ?1",
                )?
                .execute([id])?;
            }
            audit(
                conn,
                head,
                *at,
                &applicant(id),
                "sms-code-failed",
                format!("pre_application={id} failures={count}"),
            )?;
            Ok(EnrollmentOutcome::Failures { count, locked })
        }
        EnrollmentWrite::CodeConfirmed { id, at } => {
            update_one(
                conn,
                "UPDATE enrollments SET stage = 'confirmed', confirmed_at = ?2, sms_code_hash = NULL, sms_code_expires = NULL, updated_at = ?2 WHERE pre_application = ?1 AND stage = 'form'",
                params![id, at],
                id,
                "awaiting its SMS code",
            )?;
            audit(
                conn,
                head,
                *at,
                &applicant(id),
                "mobile-confirmed",
                format!("pre_application={id}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::Approve {
            id,
            method,
            text_sha256,
            evidence,
            produce_after,
            actor,
            at,
        } => {
            let from = match method {
                ApprovalMethod::Wet => "'awaiting_wet'",
                _ => "'confirmed'",
            };
            update_one(
                conn,
                &format!("UPDATE enrollments SET stage = 'approved', approval_method = ?2, approval_text_sha256 = ?3, approval_evidence = ?4, approved_at = ?5, produce_after = ?6, updated_at = ?5 WHERE pre_application = ?1 AND stage = {from} AND (approval_text_sha256 IS NULL OR approval_text_sha256 = ?3)"),
                params![id, method.as_str(), text_sha256, evidence, at, produce_after],
                id,
                if *method == ApprovalMethod::Wet { "awaiting its wet-signed form" } else { "with its mobile number confirmed" },
            )?;
            audit(
                conn,
                head,
                *at,
                actor,
                "application-approved",
                format!(
                    "pre_application={id} method={} text_sha256={text_sha256} produce_after={}",
                    method.as_str(),
                    produce_after.map(|t| t.to_string()).unwrap_or_default()
                ),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::AwaitWet {
            id,
            text_sha256,
            at,
        } => {
            update_one(
                conn,
                "UPDATE enrollments SET stage = 'awaiting_wet', approval_method = 'wet', approval_text_sha256 = ?2, updated_at = ?3 WHERE pre_application = ?1 AND stage = 'confirmed'",
                params![id, text_sha256, at],
                id,
                "with its mobile number confirmed",
            )?;
            audit(
                conn,
                head,
                *at,
                &applicant(id),
                "wet-signature-chosen",
                format!("pre_application={id} text_sha256={text_sha256}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::CardCsr {
            id,
            csr_der,
            actor,
            at,
        } => {
            update_one(
                conn,
                "UPDATE enrollments SET card_csr = ?2, updated_at = ?3 WHERE pre_application = ?1 AND stage = 'approved'",
                params![id, csr_der, at],
                id,
                "approved and not yet produced",
            )?;
            audit(
                conn,
                head,
                *at,
                actor,
                "card-csr",
                format!("pre_application={id}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::ProductionFailed { id, error, at } => {
            update_one(
                conn,
                "UPDATE enrollments SET production_attempts = production_attempts + 1, last_error = ?2, updated_at = ?3 WHERE pre_application = ?1 AND stage = 'approved'",
                params![id, error, at],
                id,
                "approved and not yet produced",
            )?;
            audit(
                conn,
                head,
                *at,
                &crate::Principal::System(crate::SystemTask::Production),
                "production-failed",
                format!("pre_application={id} error={error}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::PackageWritten { id, at } => {
            update_one(
                conn,
                "UPDATE enrollments SET package_written = 1, updated_at = ?2 WHERE pre_application = ?1 AND stage = 'produced'",
                params![id, at],
                id,
                "produced",
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::RecordConsent { consent: c } => {
            conn.prepare_cached(
                "INSERT INTO eonay_consents (tckn, reference, evidence, evidence_sha256, given_at, recorded_by, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tckn) DO UPDATE SET reference = excluded.reference, evidence = excluded.evidence, evidence_sha256 = excluded.evidence_sha256, given_at = excluded.given_at, recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at",
            )?
            .execute(params![c.tckn.as_str(), c.reference, c.evidence, c.evidence_sha256, c.given_at, c.recorded_by.to_string(), c.recorded_at])?;
            audit(
                conn,
                head,
                c.recorded_at,
                &c.recorded_by,
                "eonay-consent",
                format!(
                    "tckn={} reference={} evidence_sha256={}",
                    c.tckn, c.reference, c.evidence_sha256
                ),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
    }
}

/// Refuses (before the certificate is written) an enrollment that is not approved.
pub(super) fn check_producible(conn: &Connection, id: &str) -> Result<(), Refusal> {
    let stage = read_enrollment(conn, id)?.map(|e| e.stage);
    if stage != Some(EnrollmentStage::Approved) {
        return Err(Refusal::Refused(CaError::Conflict {
            field: "stage",
            rule: format!(
                "application {id} is {}; only an approved one is produced",
                stage.map(EnrollmentStage::as_str).unwrap_or("not started")
            ),
        }));
    }
    Ok(())
}

/// The production's share of the transaction that stores its certificate (already written):
/// the enrollment becomes produced, its pre-application closes (the person may be listed
/// again), and the invoice line. Refusals here roll the certificate back too.
pub(super) fn produced(
    conn: &Connection,
    p: &ProducedEnrollment,
    issuer: &IssuerId,
    serial: &Serial,
    (actor, at): (&crate::Principal, i64),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let id = &p.pre_application;
    update_one(
        conn,
        "UPDATE enrollments SET stage = 'produced', serial = ?2, produced_at = ?3, production_attempts = ?4, last_error = NULL, updated_at = ?3 WHERE pre_application = ?1 AND stage = 'approved'",
        params![id, serial.to_hex(), at, p.attempt],
        id,
        "approved and not yet produced",
    )?;
    conn.prepare_cached("UPDATE pre_applications SET status = 'closed' WHERE id = ?1")?
        .execute([id])?;
    conn.prepare_cached(
        "INSERT INTO invoice_lines (issuer, serial, pre_application, institution, payer, payer_name, payer_id, holder_tckn, holder_name, item, month, produced_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        issuer.as_str(),
        serial.to_hex(),
        id,
        p.institution,
        p.payer.kind,
        p.payer.name,
        p.payer.id,
        p.holder_tckn.as_str(),
        p.holder_name,
        p.item,
        p.month,
        at
    ])?;
    audit(
        conn,
        head,
        at,
        actor,
        "application-produced",
        format!(
            "pre_application={id} serial={} institution={} payer={} month={}",
            serial.to_hex(),
            p.institution,
            p.payer.kind,
            p.month
        ),
    )
}

impl EnrollmentStore for SqliteStore {
    fn enrollment_write(&self, w: EnrollmentWrite) -> Result<EnrollmentOutcome> {
        self.submit(move |conn, head| write(conn, &w, head))
    }

    fn open_pre_application(&self, tckn: &crate::Tckn) -> Result<Option<String>> {
        self.read(
            |c| read_open_pre_application_id(c, tckn.as_str()),
            "read pre-application",
        )
    }

    fn enrollment(&self, pre_application: &str) -> Result<Option<EnrollmentRecord>> {
        self.read(|c| read_enrollment(c, pre_application), "read enrollment")
    }

    fn enrollments_due(&self, at: i64, limit: u32) -> Result<Vec<EnrollmentRecord>> {
        self.read(|c| read_enrollments_due(c, at, limit), "read enrollments")
    }

    fn applicant_session(&self, token_sha256: &str) -> Result<Option<(String, i64)>> {
        self.read(|c| read_session(c, token_sha256), "read applicant session")
    }

    fn eonay_consent(&self, tckn: &crate::Tckn) -> Result<Option<EOnayConsent>> {
        self.read(|c| read_consent(c, tckn.as_str()), "read e-Onay consent")
    }

    fn invoice_lines(&self, institution: &str, month: &str) -> Result<Vec<InvoiceLine>> {
        self.read(
            |c| read_invoice_lines(c, institution, month),
            "read invoice lines",
        )
    }

    fn current_not_after(&self, tckn: &crate::Tckn, at: i64) -> Result<Option<i64>> {
        self.read(
            |c| read_current_not_after(c, tckn.as_str(), at),
            "read current certificate",
        )
    }

    fn published_certificates(
        &self,
        serial: Option<&Serial>,
        tckn: Option<&crate::Tckn>,
    ) -> Result<Vec<PublishedCertificate>> {
        self.read(
            |c| read_published(c, serial, tckn.map(crate::Tckn::as_str)),
            "read published certificates",
        )
    }
}

/// Reads a principal stored as its audit text.
fn principal_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<crate::Principal> {
    let text: String = r.get(i)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}
