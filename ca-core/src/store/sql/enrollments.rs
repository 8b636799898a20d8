//! The store side of an invited person's completion: enrollments, applicant
//! sessions, e-Onay consents, invoice lines, and the SMS-code kind of outbox message. The
//! rules (which step may follow which, the limits and the quota) are the registration
//! authority's (`ra::enrollment`): each write here only checks, in its `UPDATE ... WHERE`, that
//! the enrollment is still what the write says it saw (compare-and-set), and counts failures
//! atomically; a refused write changes nothing.

use super::db;
use super::db::{params, Connection, OptionalExtension};

use super::audit::{append_event as audit, AuditHead};
use super::writer::{refused, Refusal};
use super::Backend;
use crate::error::{CaError, Result};
use crate::institution::Payer;
use crate::serial::{IssuerId, Serial};
use crate::store::enrollment::{
    ApprovalMethod, EOnayConsent, EnrollmentOutcome, EnrollmentRecord, EnrollmentStage,
    EnrollmentStore, EnrollmentWrite, InvoiceLine, InvoicePayer, LookupCandidate, LookupKey,
    ProducedEnrollment, MAX_LOOKUP_CANDIDATES,
};
use crate::store::CertStatus;
use crate::UnixTime;

/// The enrollment's columns; `locked_until` is the latest lock of any source.
const ENROLLMENT_COLUMNS: &str = "pre_application, stage, failed_sign_ins, (SELECT MAX(s.locked_until) FROM sign_in_sources s WHERE s.pre_application = enrollments.pre_application), security_word_hash, do_not_publish, delivery_address, sms_code_hash, sms_code_expires, sms_code_failures, sms_codes_sent, confirmed_at, approval_method, approval_text_sha256, approved_at, produce_after, card_csr, production_attempts, last_error, serial, produced_at, package_written, updated_at";

/// A column whose text does not parse as what it holds.
fn bad(i: usize, what: &str) -> db::Error {
    db::conversion_error(i, format!("bad {what}").into())
}

/// An instant column (Unix seconds).
fn time(r: &db::Row<'_>, i: usize) -> db::Result<UnixTime> {
    r.get(i).map(UnixTime::from_secs)
}

/// An instant column that may be NULL.
fn maybe_time(r: &db::Row<'_>, i: usize) -> db::Result<Option<UnixTime>> {
    Ok(r.get::<_, Option<i64>>(i)?.map(UnixTime::from_secs))
}

fn enrollment_row(r: &db::Row<'_>) -> db::Result<EnrollmentRecord> {
    let stage: String = r.get(1)?;
    let method: Option<String> = r.get(12)?;
    let serial: Option<String> = r.get(19)?;
    Ok(EnrollmentRecord {
        pre_application: r.get(0)?,
        stage: EnrollmentStage::parse(&stage).ok_or_else(|| bad(1, "stage"))?,
        sign_in_attempts: r.get(2)?,
        locked_until: maybe_time(r, 3)?,
        security_word_hash: r.get(4)?,
        do_not_publish: r.get(5)?,
        delivery_address: r.get(6)?,
        sms_code_hash: r.get(7)?,
        sms_code_expires: maybe_time(r, 8)?,
        sms_code_tries: r.get(9)?,
        sms_codes_sent: r.get(10)?,
        confirmed_at: maybe_time(r, 11)?,
        approval_method: match method {
            Some(m) => Some(ApprovalMethod::parse(&m).ok_or_else(|| bad(12, "method"))?),
            None => None,
        },
        approval_text_sha256: r.get(13)?,
        approved_at: maybe_time(r, 14)?,
        produce_after: maybe_time(r, 15)?,
        card_csr: r.get(16)?,
        production_attempts: r.get(17)?,
        last_error: r.get(18)?,
        serial: match serial {
            Some(s) => Some(Serial::parse_hex(&s).map_err(|_| bad(19, "serial"))?),
            None => None,
        },
        produced_at: maybe_time(r, 20)?,
        package_written: r.get(21)?,
        updated_at: time(r, 22)?,
    })
}

pub(super) fn read_enrollment(conn: &Connection, id: &str) -> db::Result<Option<EnrollmentRecord>> {
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
    at: UnixTime,
    limit: u32,
) -> db::Result<Vec<EnrollmentRecord>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ENROLLMENT_COLUMNS} FROM enrollments WHERE (stage = 'approved' AND COALESCE(produce_after, 0) <= ?1) OR (stage = 'produced' AND package_written = 0) ORDER BY approved_at, pre_application LIMIT ?2"
    ))?;
    let rows = st.query_map(params![at.secs(), limit], enrollment_row)?;
    rows.collect()
}

pub(super) fn read_open_pre_application_id(
    conn: &Connection,
    tckn: &str,
) -> db::Result<Option<String>> {
    conn.prepare_cached("SELECT id FROM pre_applications WHERE tckn = ?1 AND status = 'invited'")?
        .query_row([tckn], |r| r.get(0))
        .optional()
}

pub(super) fn read_session(
    conn: &Connection,
    token_sha256: &str,
) -> db::Result<Option<(String, UnixTime)>> {
    conn.prepare_cached(
        "SELECT pre_application, expires_at FROM applicant_sessions WHERE token_sha256 = ?1",
    )?
    .query_row([token_sha256], |r| Ok((r.get(0)?, time(r, 1)?)))
    .optional()
}

pub(super) fn read_consent(conn: &Connection, tckn: &str) -> db::Result<Option<EOnayConsent>> {
    conn.prepare_cached(
        "SELECT tckn, reference, evidence, evidence_sha256, given_at, recorded_by, recorded_at FROM eonay_consents WHERE tckn = ?1",
    )?
    .query_row([tckn], |r| {
        Ok(EOnayConsent {
            tckn: super::tckn_column(r, 0)?,
            reference: r.get(1)?,
            evidence: r.get(2)?,
            evidence_sha256: r.get(3)?,
            given_at: time(r, 4)?,
            recorded_by: principal_column(r, 5)?,
            recorded_at: time(r, 6)?,
        })
    })
    .optional()
}

/// The evidence an approval recorded: `None` when there is no such enrollment or it records
/// none (not approved yet).
pub(super) fn read_approval_evidence(
    conn: &Connection,
    pre_application: &str,
) -> db::Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT approval_evidence FROM enrollments WHERE pre_application = ?1")?
        .query_row([pre_application], |r| r.get::<_, Option<Vec<u8>>>(0))
        .optional()?
        .flatten())
}

pub(super) fn read_invoice_lines(
    conn: &Connection,
    institution: &str,
    month: &str,
) -> db::Result<Vec<InvoiceLine>> {
    let mut st = conn.prepare_cached(
        "SELECT i.id, i.issuer, i.serial, i.pre_application, i.institution, i.payer, i.payer_name, i.payer_id, i.holder_tckn, i.holder_name, i.item, i.month, i.produced_at, COALESCE(e.production_attempts, 0)
         FROM invoice_lines i LEFT JOIN enrollments e ON e.pre_application = i.pre_application
         WHERE i.institution = ?1 AND i.month = ?2 ORDER BY i.produced_at, i.id",
    )?;
    let rows = st.query_map(params![institution, month], |r| {
        let issuer: String = r.get(1)?;
        let serial: String = r.get(2)?;
        let payer: String = r.get(5)?;
        Ok(InvoiceLine {
            id: r.get(0)?,
            issuer: IssuerId::parse(&issuer).map_err(|_| bad(1, "issuer"))?,
            serial: Serial::parse_hex(&serial).map_err(|_| bad(2, "serial"))?,
            produced: ProducedEnrollment {
                pre_application: r.get(3)?,
                // An invoice line exists only for a produced enrollment.
                from: EnrollmentStage::Approved,
                institution: {
                    let id: String = r.get(4)?;
                    crate::institution::InstitutionId::parse(&id)
                        .map_err(|_| bad(4, "institution"))?
                },
                payer: InvoicePayer {
                    kind: Payer::parse(&payer).map_err(|_| bad(5, "payer"))?,
                    name: r.get(6)?,
                    id: r.get(7)?,
                },
                holder_tckn: super::tckn_column(r, 8)?,
                holder_name: r.get(9)?,
                item: r.get(10)?,
                month: r.get(11)?,
                attempt: r.get(13)?,
            },
            produced_at: time(r, 12)?,
        })
    })?;
    rows.collect()
}

/// What the public lookup reads of a candidate, with its holder's "do not publish" choice.
macro_rules! lookup_columns {
    () => {
        "SELECT c.serial, c.subject, c.status, c.not_before, c.not_after, c.cert_der,
                EXISTS (SELECT 1 FROM enrollments e WHERE e.serial = c.serial AND e.do_not_publish = 0)
         FROM certificates c"
    };
}

/// The public lookup's candidates by serial: the index `certificates_serial` (migration 10).
pub(super) const LOOKUP_BY_SERIAL: &str = concat!(
    lookup_columns!(),
    " WHERE c.cert_der IS NOT NULL AND c.serial = ?1 ORDER BY c.not_before DESC LIMIT ?2"
);

/// The public lookup's candidates by holder: the index `certificates_tckn`.
pub(super) const LOOKUP_BY_HOLDER: &str = concat!(
    lookup_columns!(),
    " WHERE c.cert_der IS NOT NULL AND c.tckn = ?1 ORDER BY c.not_before DESC LIMIT ?2"
);

/// Stored certificates (those with their DER: not reserved or failed) by serial or by holder,
/// newest first, each with whether its holder agreed to publication: the candidates of the public
/// lookup, which the registration authority filters.
pub(super) fn read_lookup_candidates(
    conn: &Connection,
    key: LookupKey<'_>,
) -> db::Result<Vec<LookupCandidate>> {
    // One statement per key, not `?1 IS NULL OR c.serial = ?1`: SQLite uses no index for such
    // an OR, and this public endpoint would scan every certificate.
    let (sql, value) = match key {
        LookupKey::Serial(s) => (LOOKUP_BY_SERIAL, s.to_hex()),
        LookupKey::Holder(t) => (LOOKUP_BY_HOLDER, t.as_str().to_owned()),
    };
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(params![value, MAX_LOOKUP_CANDIDATES], |r| {
        let serial: String = r.get(0)?;
        let status: String = r.get(2)?;
        Ok(LookupCandidate {
            serial: Serial::parse_hex(&serial).map_err(|_| bad(0, "serial"))?,
            subject: r.get(1)?,
            status: status.parse::<CertStatus>().map_err(|_| bad(2, "status"))?,
            not_before: time(r, 3)?,
            not_after: time(r, 4)?,
            cert_der: r.get(5)?,
            holder_agreed: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// The latest `not_after` of the person's certificates that are in use (active or
/// suspended): a new application of theirs is a renewal of it.
pub(super) fn read_current_not_after(
    conn: &Connection,
    tckn: &str,
    at: UnixTime,
) -> db::Result<Option<UnixTime>> {
    conn.prepare_cached(
        // Live as `lifecycle::is_live` says: in use, and `at` within notAfter (inclusive).
        "SELECT MAX(not_after) FROM certificates WHERE tckn = ?1 AND status IN ('active', 'suspended') AND not_after >= ?2",
    )?
    .query_row(params![tckn, at.secs()], |r| maybe_time(r, 0))
}

/// What a write expected of its enrollment besides existing: the stage, and the codes sent.
#[derive(Clone, Copy)]
struct Expect<'a> {
    from: EnrollmentStage,
    codes_sent: Option<u32>,
    /// The printed form's text hash (`Some(None)`: none printed), when the write checks it.
    printed_sha256: Option<Option<&'a str>>,
}

impl Expect<'_> {
    fn stage(from: EnrollmentStage) -> Expect<'static> {
        Expect {
            from,
            codes_sent: None,
            printed_sha256: None,
        }
    }
}

/// The conflict of a write whose enrollment is not what the registration authority saw
/// (moved on meanwhile, or missing): nothing was written.
fn stale(conn: &Connection, id: &str, expect: Expect<'_>) -> Refusal {
    let conflict = |field, rule| Refusal::Refused(CaError::Conflict { field, rule });
    match read_enrollment(conn, id) {
        Err(e) => e.into(),
        Ok(None) => conflict("stage", format!("application {id} is not started")),
        Ok(Some(e)) if e.stage != expect.from => conflict(
            "stage",
            format!(
                "application {id} is {}; it was {} when this step began: try again",
                e.stage, expect.from
            ),
        ),
        Ok(Some(e))
            if expect
                .printed_sha256
                .is_some_and(|p| p != e.approval_text_sha256.as_deref()) =>
        {
            conflict(
                "approval_text",
                format!("application {id}'s form was printed again meanwhile: try again"),
            )
        }
        Ok(Some(e)) => conflict(
            "sms_code",
            format!(
                "application {id} had {} codes sent, not {}: another code was queued meanwhile, try again",
                e.sms_codes_sent,
                expect.codes_sent.unwrap_or_default()
            ),
        ),
    }
}

/// Runs `sql`, an UPDATE of one enrollment guarded by what the write expected (it binds
/// `?1` to the id; its `WHERE` checks the stage and, when expected, the codes sent), and
/// refuses with a conflict when no row matched.
fn update_expecting(
    conn: &Connection,
    sql: &str,
    p: impl db::Params,
    id: &str,
    expect: Expect<'_>,
) -> Result<(), Refusal> {
    if conn.prepare_cached(sql)?.execute(p)? != 1 {
        return Err(stale(conn, id, expect));
    }
    Ok(())
}

/// Makes sure the enrollment row of an invited pre-application exists.
fn ensure(conn: &Connection, id: &str, at: UnixTime) -> Result<(), Refusal> {
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
    .execute(params![id, at.secs()])?;
    Ok(())
}

/// Queues an SMS code message (its code is drawn when it is sent). The enrollment's own
/// update (the codes sent counted, the previous code void) is the caller's.
fn queue_code(conn: &Connection, id: &str, mobile: &str, at: UnixTime) -> Result<(), Refusal> {
    conn.prepare_cached(
        "INSERT INTO outbox (kind, subject_ref, recipient, status, next_attempt_at, created_at) VALUES ('sms-code', ?1, ?2, 'pending', ?3, ?3)",
    )?
    .execute(params![id, mobile, at.secs()])?;
    Ok(())
}

/// Applies one [`EnrollmentWrite`].
pub(super) fn write(
    conn: &Connection,
    w: &EnrollmentWrite,
    head: &mut AuditHead,
) -> Result<EnrollmentOutcome, Refusal> {
    match w {
        EnrollmentWrite::SignInAttempt {
            id,
            source,
            actor,
            at,
        } => {
            ensure(conn, id, *at)?;
            // Counted unless the source's lock is live at `at`; the lock is read in the same
            // statement.
            let (count, locked_until): (u32, Option<UnixTime>) = conn
                .prepare_cached(
                    "INSERT INTO sign_in_sources (pre_application, source, failures) VALUES (?1, ?2, 1) ON CONFLICT (pre_application, source) DO UPDATE SET failures = sign_in_sources.failures + CASE WHEN COALESCE(sign_in_sources.locked_until, 0) <= ?3 THEN 1 ELSE 0 END RETURNING failures, locked_until",
                )?
                .query_row(params![id, source.as_str(), at.secs()], |r| {
                    Ok((r.get(0)?, maybe_time(r, 1)?))
                })?;
            let counted = locked_until.is_none_or(|u| u <= *at);
            let person_count: u32 = conn
                .prepare_cached(
                    "UPDATE enrollments SET failed_sign_ins = failed_sign_ins + ?2, updated_at = ?3 WHERE pre_application = ?1 RETURNING failed_sign_ins",
                )?
                .query_row(params![id, counted, at.secs()], |r| r.get(0))?;
            audit(
                conn,
                head,
                *at,
                actor,
                "sign-in-attempt",
                format!("pre_application={id} source={source} attempts={count} from_all_sources={person_count}"),
            )?;
            Ok(EnrollmentOutcome::AttemptCounted {
                count,
                locked_until,
                person_count,
            })
        }
        EnrollmentWrite::LockSignIn {
            id,
            source,
            until,
            actor,
            at,
        } => {
            ensure(conn, id, *at)?;
            conn.prepare_cached(
                "INSERT INTO sign_in_sources (pre_application, source, failures, locked_until) VALUES (?1, ?2, 0, ?3) ON CONFLICT (pre_application, source) DO UPDATE SET failures = 0, locked_until = ?3",
            )?
            .execute(params![id, source.as_str(), until.secs()])?;
            conn.prepare_cached(
                "UPDATE enrollments SET updated_at = ?2 WHERE pre_application = ?1",
            )?
            .execute(params![id, at.secs()])?;
            audit(
                conn,
                head,
                *at,
                actor,
                "sign-in-locked",
                format!("pre_application={id} source={source} until={until}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::SignedIn {
            id,
            source,
            expect_locked_until,
            token_sha256,
            expires_at,
            actor,
            at,
        } => {
            ensure(conn, id, *at)?;
            // Only a live lock counts: one that ended (and the row with it, which another
            // sign-in may have deleted meanwhile) refuses nothing.
            let live = |u: Option<i64>| u.filter(|u| *u > at.secs());
            let lock: Option<Option<i64>> = conn
                .prepare_cached(
                    "SELECT locked_until FROM sign_in_sources WHERE pre_application = ?1 AND source = ?2",
                )?
                .query_row(params![id, source.as_str()], |r| r.get(0))
                .optional()?;
            if live(lock.flatten()) != live(expect_locked_until.map(UnixTime::secs)) {
                return Err(Refusal::Refused(CaError::Conflict {
                    field: "sign_in",
                    rule: format!("application {id}: sign-in was locked meanwhile; try again"),
                }));
            }
            // This source's count and lock go, and every source's that holds no live lock
            // (the count from all sources starts again too); a live lock of another source
            // stays to its end.
            conn.prepare_cached(
                "DELETE FROM sign_in_sources WHERE pre_application = ?1 AND (source = ?2 OR COALESCE(locked_until, 0) <= ?3)",
            )?
            .execute(params![id, source.as_str(), at.secs()])?;
            conn.prepare_cached(
                "UPDATE enrollments SET failed_sign_ins = 0, updated_at = ?2 WHERE pre_application = ?1",
            )?
            .execute(params![id, at.secs()])?;
            conn.prepare_cached(
                "UPDATE sign_in_throttle SET attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE source = ?1",
            )?
            .execute([source.as_str()])?;
            // Expired sessions go as new ones come.
            conn.prepare_cached("DELETE FROM applicant_sessions WHERE expires_at < ?1")?
                .execute([at.secs()])?;
            conn.prepare_cached(
                "INSERT INTO applicant_sessions (token_sha256, pre_application, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![token_sha256, id, expires_at.secs(), at.secs()])?;
            audit(
                conn,
                head,
                *at,
                actor,
                "sign-in",
                format!("pre_application={id}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::SourceAttempt {
            source,
            window_seconds,
            at,
        } => {
            let window_ends_before = at.secs() - window_seconds;
            // Windows that ended, and locks that ended with no failure counted since, go as
            // attempts come (indexed: range deletes).
            conn.prepare_cached("DELETE FROM sign_in_throttle WHERE window_start <= ?1")?
                .execute([window_ends_before])?;
            conn.prepare_cached(
                "DELETE FROM sign_in_sources WHERE locked_until <= ?1 AND failures = 0",
            )?
            .execute([at.secs()])?;
            let count: u32 = conn
                .prepare_cached(
                    "INSERT INTO sign_in_throttle (source, window_start, attempts) VALUES (?1, ?2, 1) ON CONFLICT (source) DO UPDATE SET attempts = sign_in_throttle.attempts + 1 RETURNING attempts",
                )?
                .query_row(params![source.as_str(), at.secs()], |r| r.get(0))?;
            Ok(EnrollmentOutcome::Counted { count })
        }
        EnrollmentWrite::Form {
            id,
            from,
            expect_codes_sent,
            security_word_hash,
            do_not_publish,
            delivery_address,
            mobile,
            actor,
            at,
        } => {
            update_expecting(
                conn,
                "UPDATE enrollments SET stage = 'form', security_word_hash = ?4, do_not_publish = ?5, delivery_address = ?6, sms_codes_sent = sms_codes_sent + 1, sms_code_hash = NULL, sms_code_expires = NULL, sms_code_failures = 0, updated_at = ?7 WHERE pre_application = ?1 AND stage = ?2 AND sms_codes_sent = ?3",
                params![id, from.as_str(), expect_codes_sent, security_word_hash, do_not_publish, delivery_address, at.secs()],
                id,
                Expect {
                    codes_sent: Some(*expect_codes_sent),
                    ..Expect::stage(*from)
                },
            )?;
            queue_code(conn, id, mobile, *at)?;
            audit(
                conn,
                head,
                *at,
                actor,
                "application-form",
                format!("pre_application={id} do_not_publish={do_not_publish}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::ResendCode {
            id,
            from,
            expect_codes_sent,
            mobile,
            actor,
            at,
        } => {
            update_expecting(
                conn,
                "UPDATE enrollments SET sms_codes_sent = sms_codes_sent + 1, sms_code_hash = NULL, sms_code_expires = NULL, sms_code_failures = 0, updated_at = ?4 WHERE pre_application = ?1 AND stage = ?2 AND sms_codes_sent = ?3",
                params![id, from.as_str(), expect_codes_sent, at.secs()],
                id,
                Expect {
                    codes_sent: Some(*expect_codes_sent),
                    ..Expect::stage(*from)
                },
            )?;
            queue_code(conn, id, mobile, *at)?;
            audit(
                conn,
                head,
                *at,
                actor,
                "sms-code-resend",
                format!("pre_application={id}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::CodeIssued {
            id,
            from,
            code_hash,
            expires_at,
            actor,
            at,
        } => {
            update_expecting(
                conn,
                "UPDATE enrollments SET sms_code_hash = ?3, sms_code_expires = ?4, sms_code_failures = 0, updated_at = ?5 WHERE pre_application = ?1 AND stage = ?2",
                params![id, from.as_str(), code_hash, expires_at.secs(), at.secs()],
                id,
                Expect::stage(*from),
            )?;
            audit(
                conn,
                head,
                *at,
                actor,
                "sms-code-issued",
                format!("pre_application={id}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::CodeAttempt {
            id,
            from,
            actor,
            at,
        } => {
            let count: u32 = match conn
                .prepare_cached(
                    "UPDATE enrollments SET sms_code_failures = sms_code_failures + 1, updated_at = ?3 WHERE pre_application = ?1 AND stage = ?2 RETURNING sms_code_failures",
                )?
                .query_row(params![id, from.as_str(), at.secs()], |r| r.get(0))
                .optional()?
            {
                Some(count) => count,
                None => return Err(stale(conn, id, Expect::stage(*from))),
            };
            audit(
                conn,
                head,
                *at,
                actor,
                "sms-code-attempt",
                format!("pre_application={id} tries={count}"),
            )?;
            Ok(EnrollmentOutcome::Counted { count })
        }
        EnrollmentWrite::VoidCode {
            id,
            code_hash,
            actor,
            at,
        } => {
            let n = conn
                .prepare_cached(
                    "UPDATE enrollments SET sms_code_hash = NULL, sms_code_expires = NULL, updated_at = ?3 WHERE pre_application = ?1 AND sms_code_hash = ?2",
                )?
                .execute(params![id, code_hash, at.secs()])?;
            // Already void or replaced: nothing happened, so nothing is recorded.
            if n == 1 {
                audit(
                    conn,
                    head,
                    *at,
                    actor,
                    "sms-code-void",
                    format!("pre_application={id}"),
                )?;
            }
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::CodeConfirmed {
            id,
            from,
            code_hash,
            actor,
            at,
        } => {
            let confirmed = conn
                .prepare_cached(
                    "UPDATE enrollments SET stage = 'confirmed', confirmed_at = ?3, sms_code_hash = NULL, sms_code_expires = NULL, updated_at = ?3 WHERE pre_application = ?1 AND stage = ?2 AND sms_code_hash = ?4",
                )?
                .execute(params![id, from.as_str(), at.secs(), code_hash])?;
            if confirmed != 1 {
                return Err(match read_enrollment(conn, id)? {
                    Some(e) if e.stage == *from => Refusal::Refused(CaError::Conflict {
                        field: "sms_code",
                        rule: format!(
                            "application {id}: the code was voided or replaced meanwhile; ask for a new one"
                        ),
                    }),
                    _ => stale(conn, id, Expect::stage(*from)),
                });
            }
            audit(
                conn,
                head,
                *at,
                actor,
                "mobile-confirmed",
                format!("pre_application={id}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::Approve {
            id,
            from,
            expect_printed_sha256,
            method,
            text_sha256,
            evidence,
            produce_after,
            actor,
            at,
        } => {
            update_expecting(
                conn,
                "UPDATE enrollments SET stage = 'approved', approval_method = ?3, approval_text_sha256 = ?4, approval_evidence = ?5, approved_at = ?6, produce_after = ?7, updated_at = ?6 WHERE pre_application = ?1 AND stage = ?2 AND approval_text_sha256 IS NOT DISTINCT FROM ?8",
                params![id, from.as_str(), method.as_str(), text_sha256, evidence, at.secs(), produce_after.map(UnixTime::secs), expect_printed_sha256],
                id,
                Expect {
                    printed_sha256: Some(expect_printed_sha256.as_deref()),
                    ..Expect::stage(*from)
                },
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
            from,
            text_sha256,
            actor,
            at,
        } => {
            update_expecting(
                conn,
                "UPDATE enrollments SET stage = 'awaiting_wet', approval_method = 'wet', approval_text_sha256 = ?3, updated_at = ?4 WHERE pre_application = ?1 AND stage = ?2",
                params![id, from.as_str(), text_sha256, at.secs()],
                id,
                Expect::stage(*from),
            )?;
            audit(
                conn,
                head,
                *at,
                actor,
                "wet-signature-chosen",
                format!("pre_application={id} text_sha256={text_sha256}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::CardCsr {
            id,
            from,
            csr_der,
            actor,
            at,
        } => {
            update_expecting(
                conn,
                "UPDATE enrollments SET card_csr = ?3, updated_at = ?4 WHERE pre_application = ?1 AND stage = ?2",
                params![id, from.as_str(), csr_der, at.secs()],
                id,
                Expect::stage(*from),
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
        EnrollmentWrite::ProductionFailed {
            id,
            from,
            error,
            actor,
            at,
        } => {
            update_expecting(
                conn,
                "UPDATE enrollments SET production_attempts = production_attempts + 1, last_error = ?3, updated_at = ?4 WHERE pre_application = ?1 AND stage = ?2",
                params![id, from.as_str(), error, at.secs()],
                id,
                Expect::stage(*from),
            )?;
            audit(
                conn,
                head,
                *at,
                actor,
                "production-failed",
                format!("pre_application={id} error={error}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::PackageWritten {
            id,
            from,
            actor: _,
            at,
        } => {
            // Not audited: the certificate's production is, and the package only carries it
            // to the card personalisation system.
            update_expecting(
                conn,
                "UPDATE enrollments SET package_written = 1, updated_at = ?3 WHERE pre_application = ?1 AND stage = ?2",
                params![id, from.as_str(), at.secs()],
                id,
                Expect::stage(*from),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
        EnrollmentWrite::RecordConsent {
            tckn,
            reference,
            evidence,
            evidence_sha256,
            given_at,
            actor,
            at,
        } => {
            conn.prepare_cached(
                "INSERT INTO eonay_consents (tckn, reference, evidence, evidence_sha256, given_at, recorded_by, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tckn) DO UPDATE SET reference = excluded.reference, evidence = excluded.evidence, evidence_sha256 = excluded.evidence_sha256, given_at = excluded.given_at, recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at",
            )?
            .execute(params![tckn.as_str(), reference, evidence, evidence_sha256, given_at.secs(), actor.to_string(), at.secs()])?;
            audit(
                conn,
                head,
                *at,
                actor,
                "eonay-consent",
                format!("tckn={tckn} reference={reference} evidence_sha256={evidence_sha256}"),
            )?;
            Ok(EnrollmentOutcome::Done)
        }
    }
}

/// Refuses (before the certificate is written) a production whose enrollment is no longer at
/// the stage the registration authority saw.
pub(super) fn check_producible(conn: &Connection, p: &ProducedEnrollment) -> Result<(), Refusal> {
    let stage = read_enrollment(conn, &p.pre_application)?.map(|e| e.stage);
    if stage != Some(p.from) {
        return Err(stale(conn, &p.pre_application, Expect::stage(p.from)));
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
    update_expecting(
        conn,
        "UPDATE enrollments SET stage = 'produced', serial = ?3, produced_at = ?4, production_attempts = ?5, last_error = NULL, updated_at = ?4 WHERE pre_application = ?1 AND stage = ?2",
        params![id, p.from.as_str(), serial.to_hex(), at, p.attempt],
        id,
        Expect::stage(p.from),
    )?;
    conn.prepare_cached("UPDATE pre_applications SET status = 'closed' WHERE id = ?1")?
        .execute([id])?;
    // Closed: nothing left to sign in to, so the addresses sign-ins came from go.
    conn.prepare_cached("DELETE FROM sign_in_sources WHERE pre_application = ?1")?
        .execute([id])?;
    conn.prepare_cached(
        "INSERT INTO invoice_lines (issuer, serial, pre_application, institution, payer, payer_name, payer_id, holder_tckn, holder_name, item, month, produced_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        issuer.as_str(),
        serial.to_hex(),
        id,
        p.institution.as_str(),
        p.payer.kind.as_str(),
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
        UnixTime::from_secs(at),
        actor,
        "application-produced",
        format!(
            "pre_application={id} serial={} institution={} payer={} month={}",
            serial.to_hex(),
            p.institution,
            p.payer.kind.as_str(),
            p.month
        ),
    )
}

impl EnrollmentStore for Backend {
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

    fn approval_evidence(&self, pre_application: &str) -> Result<Option<Vec<u8>>> {
        self.read(
            |c| read_approval_evidence(c, pre_application),
            "read approval evidence",
        )
    }

    fn enrollments_due(&self, at: UnixTime, limit: u32) -> Result<Vec<EnrollmentRecord>> {
        self.read(|c| read_enrollments_due(c, at, limit), "read enrollments")
    }

    fn applicant_session(&self, token_sha256: &str) -> Result<Option<(String, UnixTime)>> {
        self.read(|c| read_session(c, token_sha256), "read applicant session")
    }

    fn end_applicant_session(&self, token_sha256: &str) -> Result<()> {
        let token = token_sha256.to_owned();
        self.submit(move |conn, _head| {
            conn.prepare_cached("DELETE FROM applicant_sessions WHERE token_sha256 = ?1")?
                .execute([&token])?;
            Ok(())
        })
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

    fn current_not_after(&self, tckn: &crate::Tckn, at: UnixTime) -> Result<Option<UnixTime>> {
        self.read(
            |c| read_current_not_after(c, tckn.as_str(), at),
            "read current certificate",
        )
    }

    fn lookup_candidates(&self, key: LookupKey<'_>) -> Result<Vec<LookupCandidate>> {
        self.read(
            |c| read_lookup_candidates(c, key),
            "read published certificates",
        )
    }
}

/// Reads a principal stored as its audit text.
fn principal_column(r: &db::Row<'_>, i: usize) -> db::Result<crate::Principal> {
    let text: String = r.get(i)?;
    text.parse()
        .map_err(|e| db::conversion_error(i, Box::new(e)))
}
