//! CRL state: one sequence of CRL numbers per issuer for full and delta CRLs
//! (RFC 5280 §5.2.3), reserved before signing and marked published after; entries read from
//! one snapshot each.

use super::db;
use super::db::{params, Connection, OptionalExtension};

use super::audit::{append_audit, audit_entry, AuditHead};
use super::certificates::{revocation_at, status_column};
use super::writer::{refused, Refusal};
use super::{bad_column, opt_time_column, time_column, Backend};
use crate::error::{CaError, Result};
use crate::serial::{IssuerId, Serial};
use crate::store::{
    CertStatus, CrlKind, CrlPlan, CrlRecord, CrlReservation, CrlStore, DeltaEntry, RevokedEntry,
};
use crate::UnixTime;

const CRL_COLUMNS: &str =
    "issuer, number, kind, base_number, watermark, this_update, next_update, entries, published";

fn crl_row(r: &db::Row<'_>) -> db::Result<CrlRecord> {
    let bad = |i: usize, e: String| db::conversion_error(i, e.into());
    let issuer: String = r.get(0)?;
    let kind: String = r.get(2)?;
    Ok(CrlRecord {
        issuer: IssuerId::parse(&issuer).map_err(|e| bad(0, e.rule()))?,
        number: r.get::<_, i64>(1)? as u64,
        kind: CrlKind::parse(&kind).map_err(|e| bad_column(2, e))?,
        base_number: r.get::<_, Option<i64>>(3)?.map(|n| n as u64),
        watermark: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
        this_update: time_column(r, 5)?,
        next_update: time_column(r, 6)?,
        entries: r.get::<_, Option<i64>>(7)?.unwrap_or(0) as u64,
        published: r.get::<_, i64>(8)? != 0,
    })
}

fn latest_crl(
    conn: &Connection,
    issuer: &IssuerId,
    kind: CrlKind,
) -> db::Result<Option<CrlRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {CRL_COLUMNS} FROM crls WHERE issuer = ?1 AND kind = ?2 AND published = 1 ORDER BY number DESC LIMIT 1"
    ))?
    .query_row(params![issuer.as_str(), kind.as_str()], crl_row)
    .optional()
}

/// Takes the issuer's next CRL number: one increasing sequence for full and delta CRLs
/// (RFC 5280 §5.2.3). A number whose CRL is never published stays used: numbers only grow.
fn reserve_crl(
    conn: &Connection,
    r: &CrlReservation,
    head: &mut AuditHead,
) -> Result<CrlPlan, Refusal> {
    // Every CA signs CRLs: an issuing CA of the certificates it issued (full and delta), a
    // root of the CA certificates it issued (full only: the ARL).
    let role: Option<String> = conn
        .prepare_cached("SELECT role FROM cas WHERE id = ?1")?
        .query_row([r.issuer.as_str()], |row| row.get(0))
        .optional()?;
    let Some(role) = role else {
        return Err(refused(
            "ca",
            format!("\"{}\" is not a CA in the store", r.issuer),
        ));
    };
    if role == "root" && r.kind == CrlKind::Delta {
        return Err(refused(
            "delta",
            format!("\"{}\" is a root: its CRL has no deltas", r.issuer),
        ));
    }
    let base = match r.kind {
        CrlKind::Full => None,
        CrlKind::Delta => Some(latest_crl(conn, &r.issuer, CrlKind::Full)?.ok_or_else(|| {
            refused(
                "delta",
                "a delta CRL needs a published full CRL as its base; generate a full CRL first",
            )
        })?),
    };
    let number: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(number), 0) + 1 FROM crls WHERE issuer = ?1")?
        .query_row([r.issuer.as_str()], |row| row.get(0))?;
    conn.prepare_cached(
        "INSERT INTO crls (issuer, number, kind, base_number, this_update, next_update, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        r.issuer.as_str(), number, r.kind.as_str(), base.as_ref().map(|b| b.number as i64),
        r.this_update.secs(), r.next_update.secs(), r.at.secs()
    ])?;
    append_audit(
        conn,
        head,
        audit_entry(
            r.at,
            &r.actor,
            "crl-reserve",
            &r.issuer,
            "",
            format!("number={number} kind={}", r.kind.as_str()),
        ),
    )?;
    Ok(CrlPlan {
        number: number as u64,
        base,
    })
}

/// Records a reserved CRL as published, with what it covers.
fn publish_crl(
    conn: &Connection,
    (issuer, number): (&IssuerId, u64),
    (watermark, entries): (i64, u64),
    (actor, at): (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let n = conn
        .prepare_cached(
            "UPDATE crls SET published = 1, watermark = ?1, entries = ?2 WHERE issuer = ?3 AND number = ?4 AND published = 0",
        )?
        .execute(params![watermark, entries as i64, issuer.as_str(), number as i64])?;
    if n != 1 {
        return Err(Refusal::Refused(CaError::Store {
            operation: "publish CRL",
            reason: format!("CRL number {number} of {issuer} is not reserved"),
            source: None,
        }));
    }
    append_audit(
        conn,
        head,
        audit_entry(
            at,
            actor,
            "crl-publish",
            issuer,
            "",
            format!("number={number} entries={entries} watermark={watermark}"),
        ),
    )?;
    Ok(())
}

/// How many revoked entries one page of [`CrlStore::scan_revoked`] reads (in unit tests,
/// few, so that the conformance suite's CRLs cross pages).
const SCAN_PAGE: i64 = if cfg!(test) { 2 } else { 10_000 };

impl CrlStore for Backend {
    fn scan_revoked(
        &self,
        issuer: &IssuerId,
        sink: &mut dyn FnMut(RevokedEntry) -> Result<()>,
    ) -> Result<i64> {
        let (conn, watermark) = self.snapshot("scan revoked")?;
        // Pages in serial order from the one snapshot (keyset: after the page's last serial),
        // so a driver that reads a result in full holds one page, not the whole CRL.
        let mut st = conn
            .prepare(
                "SELECT serial, revoked_at, reason, invalidity_date FROM certificates INDEXED BY certificates_revoked
                 WHERE issuer = ?1 AND status IN ('suspended', 'revoked') AND serial > ?2 ORDER BY serial LIMIT ?3",
            )
            .map_err(CaError::store("scan revoked"))?;
        let mut after = String::new();
        loop {
            let mut rows = st
                .query(params![issuer.as_str(), after, SCAN_PAGE])
                .map_err(CaError::store("scan revoked"))?;
            let mut in_page = 0;
            loop {
                let row = match rows.next() {
                    Ok(Some(row)) => row,
                    Ok(None) => break,
                    Err(err) => return Err(CaError::store("scan revoked")(err)),
                };
                in_page += 1;
                let hex: String = row.get(0).map_err(CaError::store("scan revoked"))?;
                let serial = Serial::parse_hex(&hex).map_err(|reason| CaError::Store {
                    operation: "scan revoked",
                    reason: format!("serial {hex}: {}", reason.rule()),
                    source: None,
                })?;
                let revocation = revocation_at(row, 1)
                    .map_err(CaError::store("scan revoked"))?
                    .ok_or_else(|| CaError::Store {
                        operation: "scan revoked",
                        reason: format!("serial {hex} is revoked without a revocation time"),
                        source: None,
                    })?;
                sink(RevokedEntry { serial, revocation })?;
                after = hex;
            }
            if in_page < SCAN_PAGE {
                break;
            }
        }
        Ok(watermark)
    }

    fn delta_since(
        &self,
        issuer: &IssuerId,
        base_watermark: i64,
    ) -> Result<(Vec<DeltaEntry>, i64)> {
        let op = "delta entries";
        let (conn, watermark) = self.snapshot(op)?;
        // Changed since the base: what is listed now, and what was on hold at the base and is
        // good again (removeFromCRL). A certificate issued after the base and never held is
        // not in either CRL.
        let mut st = conn
            .prepare(
                "SELECT c.serial, c.status, c.revoked_at, c.reason, c.invalidity_date,
                    (SELECT t.to_status FROM transitions t WHERE t.issuer = c.issuer AND t.serial = c.serial AND t.seq <= ?2 ORDER BY t.seq DESC LIMIT 1),
                    (SELECT t.at FROM transitions t WHERE t.issuer = c.issuer AND t.serial = c.serial ORDER BY t.seq DESC LIMIT 1)
                 FROM certificates c WHERE c.change_seq > ?2 AND c.issuer = ?1 AND c.status IN ('active', 'suspended', 'revoked')
                 ORDER BY c.serial",
            )
            .map_err(CaError::store(op))?;
        let rows = st
            .query_map(params![issuer.as_str(), base_watermark], |r| {
                let hex: String = r.get(0)?;
                let status = status_column(r, 1)?;
                let revocation = revocation_at(r, 2)?;
                let at_base = if db::is_null(r, 5)? {
                    None
                } else {
                    Some(status_column(r, 5)?)
                };
                let last_change = opt_time_column(r, 6)?;
                Ok((hex, status, revocation, at_base, last_change))
            })
            .map_err(CaError::store(op))?;
        let mut out = Vec::new();
        for row in rows {
            let (hex, status, revocation, at_base, last_change) =
                row.map_err(CaError::store(op))?;
            let serial = Serial::parse_hex(&hex).map_err(|reason| CaError::Store {
                operation: op,
                reason: format!("serial {hex}: {}", reason.rule()),
                source: None,
            })?;
            match (status, revocation) {
                (CertStatus::Suspended | CertStatus::Revoked, Some(revocation)) => {
                    out.push(DeltaEntry::Listed(RevokedEntry { serial, revocation }))
                }
                (CertStatus::Active, _) if at_base == Some(CertStatus::Suspended) => {
                    out.push(DeltaEntry::Removed {
                        serial,
                        at: last_change.unwrap_or(UnixTime::EPOCH),
                    })
                }
                _ => {}
            }
        }
        Ok((out, watermark))
    }

    fn reserve_crl(&self, r: CrlReservation) -> Result<CrlPlan> {
        self.submit(move |conn, head| reserve_crl(conn, &r, head))
    }

    fn publish_crl(
        &self,
        issuer: &IssuerId,
        number: u64,
        watermark: i64,
        entries: u64,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (issuer, actor) = (issuer.clone(), actor.to_owned());
        self.submit(move |conn, head| {
            publish_crl(
                conn,
                (&issuer, number),
                (watermark, entries),
                (&actor, at),
                head,
            )
        })
    }

    fn latest_crl(&self, issuer: &IssuerId, kind: CrlKind) -> Result<Option<CrlRecord>> {
        self.read(|c| latest_crl(c, issuer, kind), "read CRL")
    }
}
