//! The SQLite side of commitments (migration 5): each write runs inside the writer's batch
//! transaction, so a commitment, the lifecycle changes it causes and their audit records are
//! one atomic change.

use rusqlite::{params, Connection, OptionalExtension};

use super::audit::{append_audit, audit_entry, AuditHead};
use super::certificates;
use super::writer::{after_writes, refused, Refusal};
use super::SqliteStore;
use crate::error::{CaError, Result};
use crate::lifecycle::{LifecycleAction, RequestId, RevocationReason};
use crate::serial::{IssuerId, Serial};
use crate::store::{
    CertStatus, CommitmentAcceptance, CommitmentOutcome, CommitmentRecord, CommitmentStatus,
    CommitmentStore, NewCommitment, TransitionWrite,
};

/// Lifecycle request ids of the commitment process: derived from the serial, so that a change
/// applied twice (a retry after a crash) is recognised as the same request.
fn request_id(kind: &str, serial: &Serial) -> Result<RequestId, Refusal> {
    RequestId::new(&format!("{kind}-{}", serial.to_hex())).map_err(Refusal::Fatal)
}

/// The request id under which a certificate is suspended at issuance to await its commitment.
pub fn hold_request_id(serial: &Serial) -> Result<RequestId, CaError> {
    request_id("commitment-hold", serial).map_err(|r| match r {
        Refusal::Refused(e) | Refusal::Fatal(e) => e,
    })
}

/// One lifecycle change made by the commitment process, `by` (actor, time).
fn transition(
    conn: &Connection,
    head: &mut AuditHead,
    (issuer, serial): (&IssuerId, &Serial),
    request_id: RequestId,
    action: LifecycleAction,
    (actor, at): (&crate::Principal, i64),
) -> Result<(), Refusal> {
    certificates::transition(
        conn,
        &TransitionWrite {
            request_id,
            issuer: issuer.clone(),
            serial: *serial,
            action,
            requested_by: crate::store::RequestedBy::Commitment,
            actor: actor.clone(),
            at: crate::UnixTime::from_secs(at),
        },
        head,
    )
    .map(|_| ())
    // Every caller has written already: a refusal here must not leave that behind.
    .map_err(after_writes)
}

/// Inserts the commitment an issued application now awaits.
pub(super) fn insert(
    conn: &Connection,
    issuer: &IssuerId,
    serial: &Serial,
    channel: &str,
    channel_ref: &str,
    c: &NewCommitment,
    at: i64,
) -> Result<(), Refusal> {
    conn.prepare_cached(
        "INSERT INTO commitments (issuer, serial, channel, channel_ref, text, sha256, deadline, overwrite_serial, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9)",
    )?
    .execute(params![
        issuer.as_str(),
        serial.to_hex(),
        channel,
        channel_ref,
        c.text,
        c.sha256_hex,
        c.deadline,
        c.overwrite.map(|s| s.to_hex()),
        at
    ])?;
    Ok(())
}

const COLUMNS: &str = "issuer, serial, channel, channel_ref, text, sha256, deadline, overwrite_serial, status, evidence, accepted_at, created_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CommitmentRecord> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("bad {what}").into(),
        )
    };
    let issuer: String = r.get(0)?;
    let serial: String = r.get(1)?;
    let overwrite: Option<String> = r.get(7)?;
    let status: String = r.get(8)?;
    Ok(CommitmentRecord {
        issuer: IssuerId::parse(&issuer).map_err(|_| bad(0, "issuer"))?,
        serial: Serial::parse_hex(&serial).map_err(|_| bad(1, "serial"))?,
        channel: r.get(2)?,
        channel_ref: r.get(3)?,
        text: r.get(4)?,
        sha256_hex: r.get(5)?,
        deadline: r.get(6)?,
        overwrite: match overwrite {
            Some(h) => Some(Serial::parse_hex(&h).map_err(|_| bad(7, "overwrite_serial"))?),
            None => None,
        },
        status: CommitmentStatus::parse(&status).ok_or_else(|| bad(8, "status"))?,
        evidence: r.get(9)?,
        accepted_at: r.get(10)?,
        created_at: r.get(11)?,
    })
}

/// The commitment of `serial` (serials are unique across issuers in practice; the first is
/// taken).
pub(super) fn read(
    conn: &Connection,
    serial: &Serial,
) -> rusqlite::Result<Option<CommitmentRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM commitments WHERE serial = ?1 ORDER BY issuer LIMIT 1"
    ))?
    .query_row([serial.to_hex()], row)
    .optional()
}

/// Whether `serial` awaits its commitment: then only the commitment releases it.
pub(super) fn is_pending(
    conn: &Connection,
    issuer: &IssuerId,
    serial: &Serial,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM commitments WHERE issuer = ?1 AND serial = ?2 AND status = 'pending'",
    )?
    .query_row(params![issuer.as_str(), serial.to_hex()], |_| Ok(()))
    .optional()
    .map(|r| r.is_some())
}

fn status_of(
    conn: &Connection,
    issuer: &IssuerId,
    serial: &Serial,
) -> rusqlite::Result<Option<(CertStatus, i64)>> {
    conn.prepare_cached(
        "SELECT status, not_after FROM certificates WHERE issuer = ?1 AND serial = ?2",
    )?
    .query_row(params![issuer.as_str(), serial.to_hex()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })
    .optional()
    .map(|o| o.and_then(|(s, na)| s.parse().ok().map(|s| (s, na))))
}

/// Accepts a verified signed commitment: see [`CommitmentStore::accept_commitment`].
pub(super) fn accept(
    conn: &Connection,
    a: &CommitmentAcceptance,
    head: &mut AuditHead,
) -> Result<CommitmentOutcome, Refusal> {
    let Some(c) = read(conn, &a.serial)?.filter(|c| c.issuer == a.issuer) else {
        return Err(refused(
            "serial",
            format!("certificate {} awaits no commitment", a.serial),
        ));
    };
    match c.status {
        CommitmentStatus::Accepted if c.evidence.as_deref() == Some(&a.evidence[..]) => {
            return Ok(CommitmentOutcome {
                superseded: c.overwrite,
                replayed: true,
            })
        }
        CommitmentStatus::Accepted => {
            return Err(refused(
                "signed_commitment",
                format!(
                    "the commitment of certificate {} was already accepted",
                    a.serial
                ),
            ))
        }
        CommitmentStatus::Expired => {
            return Err(refused(
                "signed_commitment",
                format!(
                    "the deadline of certificate {} passed; the certificate was revoked",
                    a.serial
                ),
            ))
        }
        CommitmentStatus::Pending => {}
    }
    if a.at > c.deadline {
        return Err(refused(
            "signed_commitment",
            format!(
                "the deadline of certificate {} passed {} s ago",
                a.serial,
                a.at - c.deadline
            ),
        ));
    }
    if status_of(conn, &c.issuer, &c.serial)?.map(|(s, _)| s) != Some(CertStatus::Suspended) {
        return Err(refused(
            "serial",
            format!(
                "certificate {} is no longer suspended awaiting its commitment",
                a.serial
            ),
        ));
    }
    conn.prepare_cached(
        "UPDATE commitments SET status = 'accepted', evidence = ?1, accepted_at = ?2 WHERE issuer = ?3 AND serial = ?4 AND status = 'pending'",
    )?
    .execute(params![a.evidence, a.at, c.issuer.as_str(), c.serial.to_hex()])?;
    append_audit(
        conn,
        head,
        audit_entry(
            crate::UnixTime::from_secs(a.at),
            &a.actor,
            "commitment-accepted",
            &c.issuer,
            &c.serial.to_hex(),
            format!("channel={} sha256={}", c.channel, c.sha256_hex),
        ),
    )?;
    transition(
        conn,
        head,
        (&c.issuer, &c.serial),
        request_id("commitment-release", &c.serial)?,
        LifecycleAction::Release,
        (&a.actor, a.at),
    )?;
    let mut superseded = None;
    if let Some(old) = c.overwrite {
        // An overwritten certificate that is revoked or expired already needs nothing more.
        let live = matches!(
            status_of(conn, &c.issuer, &old)?,
            Some((CertStatus::Active | CertStatus::Suspended, not_after)) if not_after >= a.at
        );
        if live {
            transition(
                conn,
                head,
                (&c.issuer, &old),
                request_id("superseded-by", &c.serial)?,
                LifecycleAction::Revoke {
                    reason: Some(RevocationReason::Superseded),
                    invalidity_date: None,
                },
                (&a.actor, a.at),
            )?;
            superseded = Some(old);
        }
    }
    Ok(CommitmentOutcome {
        superseded,
        replayed: false,
    })
}

/// Revokes the certificates whose commitment is overdue: see
/// [`CommitmentStore::expire_commitments`].
pub(super) fn expire(
    conn: &Connection,
    actor: &crate::Principal,
    at: i64,
    head: &mut AuditHead,
) -> Result<Vec<Serial>, Refusal> {
    let due: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT issuer, serial FROM commitments WHERE status = 'pending' AND deadline < ?1 ORDER BY deadline LIMIT 1000",
        )?
        .query_map([at], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut revoked = Vec::with_capacity(due.len());
    for (issuer, serial) in due {
        let issuer = IssuerId::parse(&issuer)
            .map_err(|e| Refusal::Fatal(CaError::invalid("issuer", e.rule())))?;
        let serial = Serial::parse_hex(&serial)
            .map_err(|e| Refusal::Fatal(CaError::invalid("serial", e.rule())))?;
        conn.prepare_cached(
            "UPDATE commitments SET status = 'expired' WHERE issuer = ?1 AND serial = ?2",
        )?
        .execute(params![issuer.as_str(), serial.to_hex()])?;
        append_audit(
            conn,
            head,
            audit_entry(
                crate::UnixTime::from_secs(at),
                actor,
                "commitment-expired",
                &issuer,
                &serial.to_hex(),
                String::new(),
            ),
        )?;
        // Still suspended unless the holder revoked it meanwhile; an expired certificate
        // (past notAfter) changes no more.
        let suspended = matches!(
            status_of(conn, &issuer, &serial)?,
            Some((CertStatus::Suspended, not_after)) if not_after >= at
        );
        if suspended {
            transition(
                conn,
                head,
                (&issuer, &serial),
                request_id("commitment-expired", &serial)?,
                LifecycleAction::Revoke {
                    reason: Some(RevocationReason::CessationOfOperation),
                    invalidity_date: None,
                },
                (actor, at),
            )?;
            revoked.push(serial);
        }
    }
    Ok(revoked)
}

impl CommitmentStore for SqliteStore {
    fn commitment(&self, serial: &Serial) -> Result<Option<CommitmentRecord>> {
        self.read(|c| read(c, serial), "read commitment")
    }

    fn accept_commitment(&self, a: CommitmentAcceptance) -> Result<CommitmentOutcome> {
        self.submit(move |conn, head| accept(conn, &a, head))
    }

    fn expire_commitments(&self, actor: &crate::Principal, at: i64) -> Result<Vec<Serial>> {
        let actor = actor.to_owned();
        self.submit(move |conn, head| expire(conn, &actor, at, head))
    }
}
