//! The audit chain in SQLite: every write appends its records at the head of the chain inside
//! the writer's batch transaction, so a change and its audit record commit together or not
//! at all.

use rusqlite::{params, Connection, OptionalExtension};

use super::writer::Refusal;
use super::{time_column, SqliteStore};
use crate::error::{CaError, Result};
use crate::serial::IssuerId;
use crate::store::audit::{chain_hash, AuditEntry, AuditReport, GENESIS};
use crate::store::AuditStore;
use crate::UnixTime;

/// The head of the audit chain while a batch is being written.
pub(super) struct AuditHead {
    /// The sequence number of the last record (0: none yet).
    pub(super) seq: i64,
    hash: Vec<u8>,
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
                })
            })
            .optional()
        })
        .map_err(CaError::store("read audit head"))?;
    Ok(head.unwrap_or(AuditHead {
        seq: 0,
        hash: GENESIS.to_vec(),
    }))
}

/// Appends an audit record at the head of the chain.
pub(super) fn append_audit(
    conn: &Connection,
    head: &mut AuditHead,
    mut e: AuditEntry,
) -> Result<(), Refusal> {
    e.seq = head.seq + 1;
    let hash = chain_hash(&head.hash, &e);
    conn.prepare_cached(
        "INSERT INTO audit (seq, at, actor, action, issuer, serial, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![e.seq, e.at.secs(), e.actor, e.action, e.issuer, e.serial, e.detail, head.hash, hash])?;
    head.seq = e.seq;
    head.hash = hash;
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

impl AuditStore for SqliteStore {
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
                    if e.seq != expected_seq || stored_prev != prev || chain_hash(&prev, &e) != stored {
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
