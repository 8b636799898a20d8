//! The store side of commitments: each write runs inside the writer's batch
//! transaction, so a commitment, the lifecycle changes it causes and their audit records are
//! one atomic change.

use super::db;
use super::db::{params, Connection, OptionalExtension};

use super::audit::{append_audit, audit_entry, AuditHead};
use super::certificates;
use super::writer::{after_writes, refused, Refusal};
use super::Backend;
use crate::error::{CaError, Result};
use crate::lifecycle::{LifecycleAction, RequestId, RevocationReason};
use crate::serial::{IssuerId, Serial};
use crate::store::{
    CertStatus, CommitmentAcceptance, CommitmentExpiry, CommitmentRecord, CommitmentStatus,
    CommitmentStore, NewCommitment, TransitionWrite,
};
use crate::UnixTime;

/// Lifecycle request ids of the commitment process: derived from the serial, so that a change
/// applied twice (a retry after a crash) is recognised as the same request.
fn request_id(kind: &str, serial: &Serial) -> Result<RequestId, Refusal> {
    RequestId::new(&format!("{kind}-{}", serial.to_hex())).map_err(Refusal::Fatal)
}

/// The request id under which a certificate is suspended at issuance to await its commitment.
pub(super) fn hold_request_id(serial: &Serial) -> Result<RequestId, Refusal> {
    crate::store::commitment_hold_request_id(serial).map_err(Refusal::Fatal)
}

/// One lifecycle change made by the commitment process to `serial`, under the request id
/// `kind`-`of` (derived, so that a retried write is the same request), `by` (actor, time).
fn transition(
    conn: &Connection,
    head: &mut AuditHead,
    (issuer, serial): (&IssuerId, &Serial),
    (kind, of): (&str, &Serial),
    action: LifecycleAction,
    (actor, at): (&crate::Principal, UnixTime),
) -> Result<(), Refusal> {
    certificates::transition(
        conn,
        &TransitionWrite {
            request_id: request_id(kind, of)?,
            issuer: issuer.clone(),
            serial: *serial,
            action,
            requested_by: crate::store::RequestedBy::Commitment,
            actor: actor.clone(),
            at,
        },
        head,
    )
    .map(|_| ())
    // Every caller has written already: a refusal here must not leave that behind.
    .map_err(after_writes)
}

/// A revocation for `reason` (no invalidity date: only keyCompromise has one).
fn revocation(reason: RevocationReason) -> LifecycleAction {
    LifecycleAction::Revoke {
        reason: Some(reason),
        invalidity_date: None,
    }
}

/// The audit record of a commitment's own change (`action`), written after its update.
fn audit(
    conn: &Connection,
    head: &mut AuditHead,
    action: &'static str,
    (issuer, serial): (&IssuerId, &Serial),
    detail: String,
    (actor, at): (&crate::Principal, UnixTime),
) -> Result<(), Refusal> {
    append_audit(
        conn,
        head,
        audit_entry(at, actor, action, issuer, &serial.to_hex(), detail),
    )
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
        c.deadline.secs(),
        c.overwrite.map(|s| s.to_hex()),
        at
    ])?;
    Ok(())
}

const COLUMNS: &str = "issuer, serial, channel, channel_ref, text, sha256, deadline, overwrite_serial, status, evidence, accepted_at, created_at";

fn row(r: &db::Row<'_>) -> db::Result<CommitmentRecord> {
    let bad = |i: usize, what: &str| db::conversion_error(i, format!("bad {what}").into());
    let issuer: String = r.get(0)?;
    let serial: String = r.get(1)?;
    let overwrite: Option<String> = r.get(7)?;
    let status: String = r.get(8)?;
    Ok(CommitmentRecord {
        issuer: IssuerId::parse(&issuer).map_err(|_| bad(0, "issuer"))?,
        serial: Serial::parse_hex(&serial).map_err(|_| bad(1, "serial"))?,
        channel: {
            let channel: String = r.get(2)?;
            crate::ChannelName::parse(&channel).map_err(|_| bad(2, "channel"))?
        },
        channel_ref: r.get(3)?,
        text: r.get(4)?,
        sha256_hex: r.get(5)?,
        deadline: UnixTime::from_secs(r.get(6)?),
        overwrite: match overwrite {
            Some(h) => Some(Serial::parse_hex(&h).map_err(|_| bad(7, "overwrite_serial"))?),
            None => None,
        },
        status: CommitmentStatus::parse(&status).ok_or_else(|| bad(8, "status"))?,
        evidence: r.get(9)?,
        accepted_at: r.get::<_, Option<i64>>(10)?.map(UnixTime::from_secs),
        created_at: UnixTime::from_secs(r.get(11)?),
    })
}

/// The commitment of `serial` (serials are unique across issuers in practice; the first is
/// taken).
pub(super) fn read(conn: &Connection, serial: &Serial) -> db::Result<Option<CommitmentRecord>> {
    conn.prepare_cached(&by_serial_sql())?
        .query_row([serial.to_hex()], row)
        .optional()
}

/// A commitment by serial: the index `commitments_serial` (migration 10).
pub(super) fn by_serial_sql() -> String {
    format!("SELECT {COLUMNS} FROM commitments WHERE serial = ?1 ORDER BY issuer LIMIT 1")
}

/// A refusal because a row is no longer what the registration authority read.
fn conflict(field: &'static str, rule: String) -> Refusal {
    Refusal::Refused(CaError::Conflict { field, rule })
}

/// Refuses with `Conflict` unless the certificate still has the status the RA read.
fn expect_certificate(
    conn: &Connection,
    issuer: &IssuerId,
    serial: &Serial,
    expected: CertStatus,
) -> Result<(), Refusal> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM certificates WHERE issuer = ?1 AND serial = ?2")?
        .query_row(params![issuer.as_str(), serial.to_hex()], |r| r.get(0))
        .optional()?;
    if status.as_deref() == Some(expected.as_str()) {
        return Ok(());
    }
    Err(conflict(
        "serial",
        format!(
            "certificate {serial} is no longer {expected} (it is {}); read it again",
            status.as_deref().unwrap_or("gone")
        ),
    ))
}

/// Moves the commitment of `serial` from the status the RA read to `to`, with the evidence
/// when accepted; refuses with `Conflict` (nothing written) when it moved meanwhile.
fn move_commitment(
    conn: &Connection,
    (issuer, serial): (&IssuerId, &Serial),
    from: CommitmentStatus,
    to: CommitmentStatus,
    evidence: Option<(&[u8], UnixTime)>,
) -> Result<(), Refusal> {
    let n = conn
        .prepare_cached(
            "UPDATE commitments SET status = ?1, evidence = COALESCE(?2, evidence), accepted_at = COALESCE(?3, accepted_at)
             WHERE issuer = ?4 AND serial = ?5 AND status = ?6",
        )?
        .execute(params![
            to.as_str(),
            evidence.map(|(e, _)| e),
            evidence.map(|(_, at)| at.secs()),
            issuer.as_str(),
            serial.to_hex(),
            from.as_str()
        ])?;
    if n == 1 {
        return Ok(());
    }
    Err(conflict(
        "serial",
        format!(
            "the commitment of certificate {serial} is no longer {}; read it again",
            from.as_str()
        ),
    ))
}

/// Writes an accepted commitment: see [`CommitmentStore::accept_commitment`]. Every
/// expectation is checked before the first write, so a refusal leaves nothing behind.
pub(super) fn accept(
    conn: &Connection,
    a: &CommitmentAcceptance,
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let Some(c) = read(conn, &a.serial)?.filter(|c| c.issuer == a.issuer) else {
        return Err(refused(
            "serial",
            format!("certificate {} awaits no commitment", a.serial),
        ));
    };
    expect_certificate(conn, &a.issuer, &a.serial, a.certificate_from)?;
    if let Some(old) = &a.supersede {
        expect_certificate(conn, &a.issuer, &old.serial, old.status)?;
    }
    move_commitment(
        conn,
        (&a.issuer, &a.serial),
        a.from,
        CommitmentStatus::Accepted,
        Some((&a.evidence, a.at)),
    )?;
    let by = (&a.actor, a.at);
    let detail = format!("channel={} sha256={}", c.channel, c.sha256_hex);
    audit(
        conn,
        head,
        "commitment-accepted",
        (&c.issuer, &c.serial),
        detail,
        by,
    )?;
    let this = (&c.issuer, &c.serial);
    transition(
        conn,
        head,
        this,
        ("commitment-release", &c.serial),
        LifecycleAction::Release,
        by,
    )?;
    if let Some(old) = &a.supersede {
        let superseded = revocation(RevocationReason::Superseded);
        let old = (&c.issuer, &old.serial);
        transition(
            conn,
            head,
            old,
            ("superseded-by", &c.serial),
            superseded,
            by,
        )?;
    }
    Ok(())
}

/// The pending commitments whose deadline is before `at`: see
/// [`CommitmentStore::pending_commitments_due`].
pub(super) fn pending_due(
    conn: &Connection,
    at: UnixTime,
    limit: usize,
) -> db::Result<Vec<CommitmentRecord>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM commitments WHERE status = 'pending' AND deadline < ?1 ORDER BY deadline, issuer, serial LIMIT ?2"
    ))?;
    let rows = st.query_map(params![at.secs(), limit as i64], row)?;
    rows.collect()
}

/// Writes an overdue commitment: see [`CommitmentStore::expire_commitment`]. Every
/// expectation is checked before the first write.
pub(super) fn expire(
    conn: &Connection,
    e: &CommitmentExpiry,
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    if let Some(status) = e.revoke_from {
        expect_certificate(conn, &e.issuer, &e.serial, status)?;
    }
    move_commitment(
        conn,
        (&e.issuer, &e.serial),
        e.from,
        CommitmentStatus::Expired,
        None,
    )?;
    let (this, by) = ((&e.issuer, &e.serial), (&e.actor, e.at));
    audit(conn, head, "commitment-expired", this, String::new(), by)?;
    if e.revoke_from.is_some() {
        let ceased = revocation(RevocationReason::CessationOfOperation);
        transition(
            conn,
            head,
            this,
            ("commitment-expired", &e.serial),
            ceased,
            by,
        )?;
    }
    Ok(())
}

impl CommitmentStore for Backend {
    fn commitment(&self, serial: &Serial) -> Result<Option<CommitmentRecord>> {
        self.read(|c| read(c, serial), "read commitment")
    }

    fn pending_commitments_due(&self, at: UnixTime, limit: usize) -> Result<Vec<CommitmentRecord>> {
        self.read(|c| pending_due(c, at, limit), "read commitments due")
    }

    fn accept_commitment(&self, a: CommitmentAcceptance) -> Result<()> {
        self.submit(move |conn, head| accept(conn, &a, head))
    }

    fn expire_commitment(&self, e: CommitmentExpiry) -> Result<()> {
        self.submit(move |conn, head| expire(conn, &e, head))
    }
}
