//! The audit chain: every write appends its records at the head of the chain inside
//! the writer's batch transaction, so a change and its audit record commit together or not
//! at all.

use super::db;
use super::db::{params, Connection, OptionalExtension};

use super::writer::Refusal;
use super::{time_column, Backend};
use crate::error::{CaError, Result};
use crate::serial::IssuerId;
use crate::store::audit::{
    chain_hash, AuditCheckpoint, AuditEntry, AuditRecord, AuditReport, Unaudited, GENESIS,
};
use crate::store::AuditStore;
use crate::UnixTime;

/// The head of the audit chain while a batch is being written, with the records the batch
/// appended that are not written yet: they are written together, in a few multi-row
/// statements, before the batch commits ([`AuditHead::flush`]) — one statement per record
/// was a round trip each to a database server. Nothing reads a record back within its batch.
pub(super) struct AuditHead {
    /// The sequence number of the last record (0: none yet).
    pub(super) seq: i64,
    hash: Vec<u8>,
    pending: Vec<PendingRecord>,
}

/// An appended record waiting for [`AuditHead::flush`].
struct PendingRecord {
    entry: AuditEntry,
    at: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// How many records one INSERT writes at most (9 values each).
const FLUSH_ROWS: usize = 64;

impl AuditHead {
    /// Writes the records appended since the last flush, in order; the writer calls it
    /// before it commits.
    pub(super) fn flush(&mut self, conn: &Connection) -> db::Result<()> {
        for chunk in self.pending.chunks(FLUSH_ROWS) {
            let rows = (0..chunk.len())
                .map(|i| {
                    let p = i * 9;
                    format!(
                        "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6,
                        p + 7,
                        p + 8,
                        p + 9
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mut values: Vec<&dyn db::ToSql> = Vec::with_capacity(chunk.len() * 9);
            for r in chunk {
                values.extend([
                    &r.entry.seq as &dyn db::ToSql,
                    &r.at,
                    &r.entry.actor,
                    &r.entry.action,
                    &r.entry.issuer,
                    &r.entry.serial,
                    &r.entry.detail,
                    &r.prev_hash,
                    &r.hash,
                ]);
            }
            conn.prepare_cached(&format!(
                "INSERT INTO audit (seq, at, actor, action, issuer, serial, detail, prev_hash, hash) VALUES {rows}"
            ))?
            .execute(&values[..])?;
        }
        self.pending.clear();
        Ok(())
    }

    /// Whether the chain holds this head's record (its sequence number with its hash).
    pub(super) fn is_committed(&self, conn: &Connection) -> db::Result<bool> {
        let stored: Option<Vec<u8>> = conn
            .prepare_cached("SELECT hash FROM audit WHERE seq = ?1")?
            .query_row(params![self.seq], |r| r.get(0))
            .optional()?;
        Ok(stored.as_deref() == Some(self.hash.as_slice()))
    }
}

/// The head of the chain as committed.
pub(super) fn audit_head(conn: &Connection) -> Result<AuditHead> {
    let head = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .and_then(|mut st| {
            st.query_row([], |r| {
                Ok(AuditHead {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                    pending: Vec::new(),
                })
            })
            .optional()
        })
        .map_err(CaError::store("read audit head"))?;
    Ok(head.unwrap_or(AuditHead {
        seq: 0,
        hash: GENESIS.to_vec(),
        pending: Vec::new(),
    }))
}

/// Appends an audit record at the head of the chain (written at the batch's
/// [`AuditHead::flush`]; the writes that append take their connection as every write does).
pub(super) fn append_audit(
    _conn: &Connection,
    head: &mut AuditHead,
    mut e: AuditEntry,
) -> Result<(), Refusal> {
    e.seq = head.seq + 1;
    let hash = chain_hash(&head.hash, &e);
    head.seq = e.seq;
    let prev_hash = std::mem::replace(&mut head.hash, hash.clone());
    head.pending.push(PendingRecord {
        at: e.at.secs(),
        entry: e,
        prev_hash,
        hash,
    });
    Ok(())
}

/// An audit record of a change to one CA's certificate (or to the CA itself).
pub(super) fn audit_entry(
    at: UnixTime,
    actor: &crate::Principal,
    action: &'static str,
    issuer: &IssuerId,
    serial: &str,
    detail: String,
) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at,
        actor: actor.to_string(),
        action: action.into(),
        issuer: issuer.to_string(),
        serial: serial.into(),
        detail,
    }
}

/// Appends the audit record of a change that is not about one certificate (a registry
/// change, an enrollment's step): issuer and serial stay empty, what changed is in `detail`.
pub(super) fn append_event(
    conn: &Connection,
    head: &mut AuditHead,
    at: UnixTime,
    actor: &crate::Principal,
    action: &'static str,
    detail: String,
) -> Result<(), Refusal> {
    append_audit(
        conn,
        head,
        event_entry(at, actor, action, String::new(), detail),
    )
}

/// An audit record of a change that is not about one CA's certificate (partners, channel
/// applications): no issuer.
pub(super) fn event_entry(
    at: UnixTime,
    actor: &crate::Principal,
    action: &'static str,
    serial: impl Into<String>,
    detail: String,
) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at,
        actor: actor.to_string(),
        action: action.into(),
        issuer: String::new(),
        serial: serial.into(),
        detail,
    }
}

fn record_row(r: &db::Row<'_>) -> db::Result<AuditRecord> {
    Ok(AuditRecord {
        entry: AuditEntry {
            seq: r.get(0)?,
            at: time_column(r, 1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            issuer: r.get(4)?,
            serial: r.get(5)?,
            detail: r.get(6)?,
        },
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

fn add_checkpoint(conn: &Connection, cp: &AuditCheckpoint) -> Result<(), Refusal> {
    let conflict = |rule: String| {
        Err(Refusal::Refused(CaError::Conflict {
            field: "checkpoint",
            rule,
        }))
    };
    let last: Option<i64> = conn
        .prepare_cached("SELECT MAX(seq) FROM audit_checkpoints")?
        .query_row([], |r| r.get(0))?;
    if last.is_some_and(|l| l >= cp.seq) {
        return conflict(format!("a checkpoint at or after record {} exists", cp.seq));
    }
    let hash: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hash FROM audit WHERE seq = ?1")?
        .query_row([cp.seq], |r| r.get(0))
        .optional()?;
    if hash.as_deref() != Some(cp.hash.as_slice()) {
        return conflict(format!(
            "record {} does not have the checkpoint's hash",
            cp.seq
        ));
    }
    conn.prepare_cached(
        "INSERT INTO audit_checkpoints (seq, hash, at, key_label, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![cp.seq, cp.hash, cp.at.secs(), cp.key_label, cp.signature])?;
    Ok(())
}

impl AuditStore for Backend {
    fn audit_head(&self) -> Result<Option<(i64, Vec<u8>)>> {
        self.read(
            |c| {
                c.query_row(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            },
            "read the audit head",
        )
    }

    fn audit_records(&self, from: i64, to: i64) -> Result<Vec<AuditRecord>> {
        self.read(
            |c| {
                let mut st = c.prepare("SELECT seq, at, actor, action, issuer, serial, detail, prev_hash, hash FROM audit WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq")?;
                let rows = st.query_map(params![from, to], record_row)?;
                rows.collect()
            },
            "read audit records",
        )
    }

    fn add_audit_checkpoint(&self, checkpoint: AuditCheckpoint) -> Result<()> {
        self.submit(move |conn, _head| add_checkpoint(conn, &checkpoint))
    }

    fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>> {
        self.read(
            |c| {
                let mut st = c.prepare(
                    "SELECT seq, hash, at, key_label, signature FROM audit_checkpoints ORDER BY seq",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(AuditCheckpoint {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                        at: time_column(r, 2)?,
                        key_label: r.get(3)?,
                        signature: r.get(4)?,
                    })
                })?;
                rows.collect()
            },
            "read audit checkpoints",
        )
    }

    fn unaudited(&self) -> Result<Vec<Unaudited>> {
        self.read(
            |c| {
                let mut out = Vec::new();
                let mut st = c.prepare(
                    "SELECT c.issuer, c.serial FROM certificates c WHERE c.cert_der IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit a WHERE a.action = 'issue' AND a.issuer = c.issuer AND a.serial = c.serial) ORDER BY c.rowid",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(Unaudited { what: "issue".into(), issuer: r.get(0)?, serial: r.get(1)?, seq: None })
                })?;
                for r in rows {
                    out.push(r?);
                }
                // A transition must have its record, saying the same change (from, to).
                let mut st = c.prepare(
                    "SELECT t.seq, t.action, t.issuer, t.serial FROM transitions t WHERE NOT EXISTS (SELECT 1 FROM audit a WHERE a.seq = t.seq AND a.action = t.action AND a.issuer = t.issuer AND a.serial = t.serial AND a.detail LIKE ('% ' || t.from_status || '->' || t.to_status || '%')) ORDER BY t.seq",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(Unaudited { seq: Some(r.get(0)?), what: r.get(1)?, issuer: r.get(2)?, serial: r.get(3)? })
                })?;
                for r in rows {
                    out.push(r?);
                }
                // The other way round: a record of an issuance or a transition must still
                // have its row.
                let mut st = c.prepare(
                    "SELECT a.seq, a.action, a.issuer, a.serial FROM audit a WHERE (a.action = 'issue' AND a.issuer != '' AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.issuer = a.issuer AND c.serial = a.serial AND c.cert_der IS NOT NULL)) OR (a.action IN ('suspend', 'release', 'revoke') AND NOT EXISTS (SELECT 1 FROM transitions t WHERE t.seq = a.seq)) ORDER BY a.seq",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(Unaudited { seq: Some(r.get(0)?), what: format!("row of the {}", r.get::<_, String>(1)?), issuer: r.get(2)?, serial: r.get(3)? })
                })?;
                for r in rows {
                    out.push(r?);
                }
                // A CA's revocation as an offline root's CRL reported it (`cas.revoked_at`) and
                // its `ca-revoked` record, both ways: un-revoking the row is found.
                let mut st = c.prepare(
                    "SELECT c.id FROM cas c WHERE c.revoked_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit a WHERE a.action = 'ca-revoked' AND a.detail = 'ca=' || c.id) ORDER BY c.id",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(Unaudited { what: "ca-revoked".into(), issuer: r.get(0)?, serial: String::new(), seq: None })
                })?;
                for r in rows {
                    out.push(r?);
                }
                let mut st = c.prepare(
                    "SELECT a.seq, substr(a.detail, 4) FROM audit a WHERE a.action = 'ca-revoked' AND NOT EXISTS (SELECT 1 FROM cas c WHERE 'ca=' || c.id = a.detail AND c.revoked_at IS NOT NULL) ORDER BY a.seq",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(Unaudited { seq: Some(r.get(0)?), what: "row of the ca-revoked".into(), issuer: r.get(1)?, serial: String::new() })
                })?;
                for r in rows {
                    out.push(r?);
                }
                // A certificate's status is what its last transition made it (active without
                // one).
                let mut st = c.prepare(
                    "SELECT issuer, serial, status, last_seq, want FROM (SELECT c.rowid AS row_order, c.issuer, c.serial, c.status, (SELECT t.seq FROM transitions t WHERE t.issuer = c.issuer AND t.serial = c.serial ORDER BY t.seq DESC LIMIT 1) AS last_seq, COALESCE((SELECT t.to_status FROM transitions t WHERE t.issuer = c.issuer AND t.serial = c.serial ORDER BY t.seq DESC LIMIT 1), 'active') AS want FROM certificates c WHERE c.cert_der IS NOT NULL) AS latest WHERE status != want ORDER BY row_order",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(Unaudited { what: format!("status {} (its records say {})", r.get::<_, String>(2)?, r.get::<_, String>(4)?), issuer: r.get(0)?, serial: r.get(1)?, seq: r.get(3)? })
                })?;
                for r in rows {
                    out.push(r?);
                }
                Ok(out)
            },
            "cross-check the audit log",
        )
    }

    fn verify_audit(&self) -> Result<AuditReport> {
        self.read(
            |c| {
                let mut stmt = c.prepare("SELECT seq, at, actor, action, issuer, serial, detail, prev_hash, hash FROM audit ORDER BY seq")?;
                let mut rows = stmt.query([])?;
                let mut prev = GENESIS.to_vec();
                let mut records = 0u64;
                let mut expected_seq = 1i64;
                while let Some(r) = rows.next()? {
                    let e = AuditEntry { seq: r.get(0)?, at: time_column(r, 1)?, actor: r.get(2)?, action: r.get(3)?, issuer: r.get(4)?, serial: r.get(5)?, detail: r.get(6)? };
                    let stored_prev: Vec<u8> = r.get(7)?;
                    let stored: Vec<u8> = r.get(8)?;
                    // A gap names the first missing record; anything else the record itself.
                    if e.seq != expected_seq {
                        return Ok(AuditReport { records, first_break: Some(expected_seq.min(e.seq)) });
                    }
                    if stored_prev != prev || chain_hash(&prev, &e) != stored {
                        return Ok(AuditReport { records, first_break: Some(e.seq) });
                    }
                    prev = stored;
                    records += 1;
                    expected_seq += 1;
                }
                Ok(AuditReport { records, first_break: None })
            },
            "verify audit",
        )
    }
}
