//! Certificates and their lifecycle: reservation (the unique constraint keeps a
//! serial once per issuer), completion with what the same transaction must also record,
//! failure, and lifecycle transitions once per request id.

use super::db;
use super::db::{params, Connection, OptionalExtension};
use crate::store::RequestedBy;

use super::applications::{finish_application, read_application};
use super::audit::{append_audit, audit_entry, AuditHead};
use super::writer::{after_writes, refused, Refusal};
use super::{bad_column, commitments, enrollments, opt_time_column, time_column, Backend};
use crate::error::{CaError, Result};
use crate::lifecycle::{next_status, LifecycleAction, RequestId, RevocationReason};
use crate::serial::{IssuerId, Serial};
use crate::store::{
    ApplicationOutcome, ApplicationStatus, CertRecord, CertStatus, CertificateStore, Completion,
    Reservation, Reserved, Revocation, StatusRecord, SubjectRecord, TransitionKind,
    TransitionOutcome, TransitionRecord, TransitionWrite,
};
use crate::UnixTime;

/// The CRLReason code (RFC 5280 §5.3.1) stored for a reason; `None`: unspecified.
pub(super) fn reason_code(r: Option<RevocationReason>) -> Option<i64> {
    r.map(|r| i64::from(r.code()))
}

/// Reads a CRLReason column (RFC 5280 §5.3.1): NULL or unspecified (0) is `None`; a code
/// nesca never writes is a damaged row, refused where it is read.
pub(super) fn reason_column(r: &db::Row<'_>, i: usize) -> db::Result<Option<RevocationReason>> {
    match r.get::<_, Option<i64>>(i)? {
        None | Some(0) => Ok(None),
        Some(code) => u8::try_from(code)
            .ok()
            .and_then(RevocationReason::from_code)
            .map(Some)
            .ok_or_else(|| {
                bad_column(
                    i,
                    CaError::invalid("reason", format!("unknown CRLReason code {code}")),
                )
            }),
    }
}

/// Reads a principal column (as [`crate::Principal`]'s `Display` wrote it).
fn principal_column(r: &db::Row<'_>, i: usize) -> db::Result<crate::Principal> {
    let s: String = r.get(i)?;
    s.parse()
        .map_err(|e: crate::CaTypesError| bad_column(i, e.into()))
}

/// Reads a certificate status column, refusing a status the store does not know.
/// Borrows the text (no allocation: OCSP status lookups read it).
pub(super) fn status_column(r: &db::Row<'_>, i: usize) -> db::Result<CertStatus> {
    db::text(r, i)?.parse().map_err(|e| bad_column(i, e))
}

/// Records a serial before signing; a serial the issuer has already is answered
/// `SerialTaken` with nothing written.
fn reserve(conn: &Connection, r: &Reservation, head: &mut AuditHead) -> Result<Reserved, Refusal> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO certificates (issuer, serial, profile, status, subject, tckn, given_name, surname, not_before, not_after, tbs_der, reserved_at)
                     VALUES (?1, ?2, ?3, 'reserved', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            r.issuer.as_str(), r.serial.to_hex(), r.profile, r.subject.subject, r.subject.tckn.as_ref().map(crate::Tckn::as_str), r.subject.given_name,
            r.subject.surname, r.not_before.secs(), r.not_after.secs(), r.tbs_der, r.at.secs()
        ])?;
    if inserted == 0 {
        return Ok(Reserved::SerialTaken);
    }
    let detail = format!("profile={} subject={}", r.profile, r.subject.subject);
    append_audit(
        conn,
        head,
        audit_entry(
            r.at,
            &r.actor,
            "reserve",
            &r.issuer,
            &r.serial.to_hex(),
            detail,
        ),
    )?;
    Ok(Reserved::Ok)
}

/// A reserved serial's signed certificate, and what `then` says in the same transaction.
struct Signed {
    issuer: IssuerId,
    serial: Serial,
    cert_der: Vec<u8>,
    then: Completion,
    actor: crate::Principal,
    at: UnixTime,
}

/// Stores a signed certificate: see [`CertificateStore::complete`].
fn complete(conn: &Connection, s: &Signed, head: &mut AuditHead) -> Result<(), Refusal> {
    let Signed {
        issuer,
        serial,
        cert_der,
        then,
        actor,
        at,
    } = s;
    if let Some(a) = &then.application {
        // Checked before anything is written: a refusal must leave nothing behind.
        let pending = read_application(conn, a.channel.as_str(), &a.channel_ref)?
            .is_some_and(|p| p.status == ApplicationStatus::Pending);
        if !pending {
            return Err(refused(
                "channel_ref",
                format!(
                    "no pending application {} of channel {}",
                    a.channel_ref, a.channel
                ),
            ));
        }
        if let Some(p) = &a.production {
            enrollments::check_producible(conn, p)?;
        }
    }
    let n = conn
        .prepare_cached(
            "UPDATE certificates SET status = 'active', cert_der = ?1, issued_at = ?2, change_seq = ?5 WHERE issuer = ?3 AND serial = ?4 AND status = 'reserved'",
        )?
        // The audit record appended below gets head.seq + 1.
        .execute(params![cert_der, at.secs(), issuer.as_str(), serial.to_hex(), head.seq + 1])?;
    if n != 1 {
        return Err(Refusal::Refused(CaError::Store {
            operation: "store certificate",
            reason: format!("serial {serial} is not reserved for {issuer}"),
            source: None,
        }));
    }
    append_audit(
        conn,
        head,
        audit_entry(*at, actor, "issue", issuer, &serial.to_hex(), String::new()),
    )?;
    if then.hold {
        transition(
            conn,
            &TransitionWrite {
                request_id: commitments::hold_request_id(serial)?,
                issuer: issuer.clone(),
                serial: *serial,
                action: LifecycleAction::Suspend,
                requested_by: crate::store::RequestedBy::Commitment,
                actor: actor.clone(),
                at: *at,
            },
            head,
        )
        .map_err(after_writes)?;
    }
    if let Some(a) = &then.application {
        let outcome = ApplicationOutcome::Issued(a.issued.clone());
        finish_application(
            conn,
            head,
            (a.channel.as_str(), &a.channel_ref),
            &outcome,
            (actor, *at),
        )
        .map_err(after_writes)?;
        if let Some(p) = &a.production {
            enrollments::produced(conn, p, issuer, serial, (actor, at.secs()), head)
                .map_err(after_writes)?;
        }
    }
    Ok(())
}

/// Marks a reserved serial as failed; the serial stays on record.
fn fail(
    conn: &Connection,
    (issuer, serial): (&IssuerId, &Serial),
    reason: &str,
    (actor, at): (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    conn.prepare_cached(
        "UPDATE certificates SET status = 'failed', fail_reason = ?1 WHERE issuer = ?2 AND serial = ?3 AND status = 'reserved'",
    )?
    .execute(params![reason, issuer.as_str(), serial.to_hex()])?;
    append_audit(
        conn,
        head,
        audit_entry(
            at,
            actor,
            "fail",
            issuer,
            &serial.to_hex(),
            reason.to_owned(),
        ),
    )?;
    Ok(())
}

/// One lifecycle change: replay check, state machine, row update, transition row, audit.
pub(super) fn transition(
    conn: &Connection,
    t: &TransitionWrite,
    head: &mut AuditHead,
) -> Result<TransitionOutcome, Refusal> {
    let serial_hex = t.serial.to_hex();
    let reason = t.action.reason();
    let invalidity = t.action.invalidity_date();
    // A request id seen before: the same request answers with its first outcome; another
    // request under the same id is refused rather than silently ignored.
    let seen = conn
        .prepare_cached(
            "SELECT issuer, serial, action, reason, invalidity_date, to_status, at FROM transitions WHERE request_id = ?1",
        )?
        .query_row([t.request_id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                opt_time_column(r, 4)?,
                status_column(r, 5)?,
                time_column(r, 6)?,
            ))
        })
        .optional()?;
    if let Some((issuer, serial, action, code, inv, to, at)) = seen {
        let same = issuer == t.issuer.as_str()
            && serial == serial_hex
            && action == t.action.name()
            && code == reason_code(reason)
            && inv == invalidity;
        if !same {
            return Err(refused(
                "request_id",
                format!("{} was already used for a different request", t.request_id),
            ));
        }
        return Ok(TransitionOutcome {
            issuer: t.issuer.clone(),
            serial: t.serial,
            status: to,
            reason,
            at,
            replayed: true,
        });
    }
    let current = conn
        .prepare_cached(
            "SELECT status, not_after FROM certificates WHERE issuer = ?1 AND serial = ?2",
        )?
        .query_row(params![t.issuer.as_str(), serial_hex], |r| {
            Ok((status_column(r, 0)?, time_column(r, 1)?))
        })
        .optional()?;
    let Some((from, not_after)) = current else {
        return Err(Refusal::Refused(CaError::NotFound { serial: serial_hex }));
    };
    let to = next_status(from, &t.action, not_after, t.at).map_err(Refusal::Refused)?;
    let seq = head.seq + 1;
    let (revoked_at, code, inv) = match to {
        CertStatus::Active => (None, None, None),
        _ => (Some(t.at), reason_code(reason), invalidity),
    };
    conn.prepare_cached(
        "UPDATE certificates SET status = ?1, revoked_at = ?2, reason = ?3, invalidity_date = ?4, change_seq = ?5 WHERE issuer = ?6 AND serial = ?7",
    )?
    .execute(params![to.as_str(), revoked_at.map(UnixTime::secs), code, inv.map(UnixTime::secs), seq, t.issuer.as_str(), serial_hex])?;
    conn.prepare_cached(
        "INSERT INTO transitions (seq, request_id, issuer, serial, action, from_status, to_status, reason, invalidity_date, holder, actor, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        seq, t.request_id.as_str(), t.issuer.as_str(), serial_hex, t.action.name(), from.as_str(),
        to.as_str(), reason_code(reason), invalidity.map(UnixTime::secs), t.requested_by.to_record(), t.actor.to_string(), t.at.secs()
    ])?;
    super::portal::queue_status_notices(conn, &t.issuer, &serial_hex, (seq, to), t.at)?;
    let mut detail = format!("request_id={} {}->{}", t.request_id, from, to);
    if let Some(r) = reason {
        detail.push_str(&format!(" reason={r}"));
    }
    if let Some(d) = invalidity {
        detail.push_str(&format!(" invalidity_date={d}"));
    }
    // Who asked, when an operator carried the change in: the holder through which channel,
    // or the provider on which grounds.
    if matches!(
        t.requested_by,
        RequestedBy::HolderThrough(..) | RequestedBy::Provider(_)
    ) {
        detail.push_str(&format!(" requested_by={}", t.requested_by.to_record()));
    }
    append_audit(
        conn,
        head,
        audit_entry(
            t.at,
            &t.actor,
            t.action.name(),
            &t.issuer,
            &serial_hex,
            detail,
        ),
    )?;
    Ok(TransitionOutcome {
        issuer: t.issuer.clone(),
        serial: t.serial,
        status: to,
        reason: if to == CertStatus::Active {
            None
        } else {
            reason
        },
        at: t.at,
        replayed: false,
    })
}

/// The columns [`cert_row`] reads (a macro: the statements below are built from it at compile
/// time, so each is one `&'static str` that a test can ask SQLite to plan).
macro_rules! cert_columns {
    () => {
        "issuer, serial, profile, status, subject, tckn, given_name, surname, not_before, not_after, reserved_at, issued_at, cert_der, revoked_at, reason, invalidity_date"
    };
}
pub(super) const CERT_COLUMNS: &str = cert_columns!();

/// One certificate of one issuer: the unique index `(issuer, serial)`.
pub(super) const GET_BY_ISSUER_AND_SERIAL: &str = concat!(
    "SELECT ",
    cert_columns!(),
    " FROM certificates WHERE issuer = ?1 AND serial = ?2"
);

/// One certificate by serial, any issuer: the index `certificates_serial` (migration 10).
pub(super) const GET_BY_SERIAL: &str = concat!(
    "SELECT ",
    cert_columns!(),
    " FROM certificates WHERE serial = ?1 ORDER BY issuer LIMIT 1"
);

/// Reservations made before `?1` whose signing never completed: the partial index
/// `certificates_reserved` (migration 10).
pub(super) const STALE_RESERVATIONS: &str =
    "SELECT issuer, serial FROM certificates WHERE status = 'reserved' AND reserved_at < ?1 ORDER BY reserved_at";

/// The revocation columns (revoked_at, reason, invalidity_date) starting at `i`.
pub(super) fn revocation_at(r: &db::Row<'_>, i: usize) -> db::Result<Option<Revocation>> {
    Ok(match opt_time_column(r, i)? {
        Some(at) => Some(Revocation {
            at,
            reason: reason_column(r, i + 1)?,
            invalidity_date: opt_time_column(r, i + 2)?,
        }),
        None => None,
    })
}

pub(super) fn cert_row(r: &db::Row<'_>) -> db::Result<CertRecord> {
    let bad = |i: usize, e: String| db::conversion_error(i, e.into());
    let issuer: String = r.get(0)?;
    let serial: String = r.get(1)?;
    Ok(CertRecord {
        issuer: IssuerId::parse(&issuer).map_err(|e| bad(0, e.rule()))?,
        serial: Serial::parse_hex(&serial).map_err(|e| bad(1, e.rule()))?,
        profile: r.get(2)?,
        status: status_column(r, 3)?,
        subject: SubjectRecord {
            subject: r.get(4)?,
            tckn: match r.get::<_, Option<String>>(5)? {
                Some(t) => Some(crate::Tckn::parse(&t).map_err(|e| bad(5, e.to_string()))?),
                None => None,
            },
            given_name: r.get(6)?,
            surname: r.get(7)?,
        },
        not_before: time_column(r, 8)?,
        not_after: time_column(r, 9)?,
        reserved_at: time_column(r, 10)?,
        issued_at: opt_time_column(r, 11)?,
        cert_der: r.get(12)?,
        revocation: revocation_at(r, 13)?,
    })
}

impl CertificateStore for Backend {
    fn reserve(&self, r: Reservation) -> Result<Reserved> {
        self.submit(move |conn, head| reserve(conn, &r, head))
    }

    fn complete(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        cert_der: Vec<u8>,
        then: Completion,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let signed = Signed {
            issuer: issuer.clone(),
            serial: *serial,
            cert_der,
            then,
            actor: actor.clone(),
            at,
        };
        self.submit(move |conn, head| complete(conn, &signed, head))
    }

    fn fail(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        reason: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (issuer, serial, reason, actor) =
            (issuer.clone(), *serial, reason.to_owned(), actor.to_owned());
        self.submit(move |conn, head| fail(conn, (&issuer, &serial), &reason, (&actor, at), head))
    }

    fn transition(&self, t: TransitionWrite) -> Result<TransitionOutcome> {
        self.submit(move |conn, head| transition(conn, &t, head))
    }

    fn get(&self, issuer: Option<&IssuerId>, serial: &Serial) -> Result<Option<CertRecord>> {
        // Two statements, not one with `?2 IS NULL OR issuer = ?2`: SQLite cannot use an index
        // for such an OR, and every lookup would scan the whole table.
        self.read(
            |c| match issuer {
                Some(issuer) => c
                    .prepare_cached(GET_BY_ISSUER_AND_SERIAL)?
                    .query_row(params![issuer.as_str(), serial.to_hex()], cert_row)
                    .optional(),
                None => c
                    .prepare_cached(GET_BY_SERIAL)?
                    .query_row(params![serial.to_hex()], cert_row)
                    .optional(),
            },
            "read certificate",
        )
    }

    fn fail_stale_reservations(
        &self,
        before: UnixTime,
        reason: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<Vec<(IssuerId, Serial)>> {
        let (reason, actor) = (reason.to_owned(), actor.clone());
        self.submit(move |conn, head| {
            let stale = {
                let mut st = conn.prepare_cached(STALE_RESERVATIONS)?;
                let rows = st.query_map(params![before.secs()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
                rows.collect::<db::Result<Vec<_>>>()?
            };
            let mut failed = Vec::with_capacity(stale.len());
            for (issuer, serial) in stale {
                let issuer = IssuerId::parse(&issuer)
                    .map_err(|e| Refusal::Fatal(CaError::invalid("issuer", e.rule())))?;
                let serial = Serial::parse_hex(&serial)
                    .map_err(|e| Refusal::Fatal(CaError::invalid("serial", e.rule())))?;
                fail(conn, (&issuer, &serial), &reason, (&actor, at), head)
                    .map_err(after_writes)?;
                failed.push((issuer, serial));
            }
            Ok(failed)
        })
    }

    fn list(&self, issuer: Option<&IssuerId>) -> Result<Vec<CertRecord>> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE (CAST(?1 AS TEXT) IS NULL OR issuer = ?1) ORDER BY reserved_at, serial");
        self.read(
            |c| {
                let mut stmt = c.prepare(&sql)?;
                let rows = stmt.query_map(params![issuer.map(|i| i.as_str())], cert_row)?;
                rows.collect()
            },
            "list certificates",
        )
    }

    fn transitions(&self, issuer: &IssuerId, serial: &Serial) -> Result<Vec<TransitionRecord>> {
        self.read(
            |c| {
                let mut st = c.prepare_cached(
                    "SELECT seq, request_id, action, from_status, to_status, reason, invalidity_date, at, actor FROM transitions WHERE issuer = ?1 AND serial = ?2 ORDER BY seq",
                )?;
                let rows = st.query_map(params![issuer.as_str(), serial.to_hex()], |r| {
                    let action: String = r.get(2)?;
                    Ok(TransitionRecord {
                        seq: r.get(0)?,
                        request_id: {
                            let id: String = r.get(1)?;
                            RequestId::new(&id).map_err(|e| bad_column(1, e))?
                        },
                        action: TransitionKind::parse(&action).map_err(|e| bad_column(2, e))?,
                        from: status_column(r, 3)?,
                        to: status_column(r, 4)?,
                        reason: reason_column(r, 5)?,
                        invalidity_date: opt_time_column(r, 6)?,
                        at: time_column(r, 7)?,
                        actor: principal_column(r, 8)?,
                    })
                })?;
                rows.collect()
            },
            "read transitions",
        )
    }

    fn status(&self, issuer: &IssuerId, serial: &Serial) -> Result<Option<StatusRecord>> {
        self.read(
            |c| {
                c.prepare_cached(
                    "SELECT status, not_after, revoked_at, reason, invalidity_date FROM certificates WHERE issuer = ?1 AND serial = ?2",
                )?
                .query_row(params![issuer.as_str(), serial.to_hex()], |r| {
                    Ok(StatusRecord {
                        status: status_column(r, 0)?,
                        not_after: time_column(r, 1)?,
                        revocation: revocation_at(r, 2)?,
                    })
                })
                .optional()
            },
            "read status",
        )
    }

    fn changes_since(&self, cursor: i64, limit: usize) -> Result<(Vec<(IssuerId, Serial)>, i64)> {
        self.read(
            |c| {
                let mut st = c.prepare_cached(
                    "SELECT issuer, serial, change_seq FROM certificates WHERE change_seq > ?1 ORDER BY change_seq LIMIT ?2",
                )?;
                let mut rows = st.query(params![cursor, limit as i64])?;
                let mut out = Vec::new();
                let mut next = cursor;
                while let Some(r) = rows.next()? {
                    let issuer: String = r.get(0)?;
                    let serial: String = r.get(1)?;
                    next = r.get(2)?;
                    if let (Ok(i), Ok(s)) = (IssuerId::parse(&issuer), Serial::parse_hex(&serial)) {
                        out.push((i, s));
                    }
                }
                Ok((out, next))
            },
            "read changes",
        )
    }

    fn wait_for_change(&self, timeout: std::time::Duration) {
        self.wait_for_change_signal(timeout)
    }

    fn latest_change(&self) -> Result<i64> {
        self.read(
            |c| {
                c.query_row(
                    "SELECT COALESCE(MAX(change_seq), 0) FROM certificates",
                    [],
                    |r| r.get(0),
                )
            },
            "read latest change",
        )
    }

    fn serials(
        &self,
        issuer: &IssuerId,
        after: Option<&Serial>,
        limit: usize,
    ) -> Result<Vec<Serial>> {
        self.read(
            |c| {
                let mut st = c.prepare_cached(
                    "SELECT serial FROM certificates WHERE issuer = ?1 AND serial > ?2 AND status IN ('active', 'suspended', 'revoked') ORDER BY serial LIMIT ?3",
                )?;
                let after = after.map(|s| s.to_hex()).unwrap_or_default();
                let rows = st.query_map(params![issuer.as_str(), after, limit as i64], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for hex in rows {
                    if let Ok(s) = Serial::parse_hex(&hex?) {
                        out.push(s);
                    }
                }
                Ok(out)
            },
            "list serials",
        )
    }
}
