//! The hash-chained audit log: each record's hash covers the previous record's hash, so a
//! removed, reordered or edited record breaks the chain from that point on.

use sha2::{Digest as _, Sha256};

use crate::error::Result;
use crate::UnixTime;

/// One audit record as written.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Position in the chain (1, 2, …).
    pub seq: i64,
    /// When the change was made.
    pub at: UnixTime,
    /// Who made it (a [`crate::Principal`] as recorded).
    pub actor: String,
    /// What was done (`issue`, `revoke`, `add-partner`, …).
    pub action: String,
    /// The CA concerned, empty when none.
    pub issuer: String,
    /// The certificate concerned, empty when none.
    pub serial: String,
    /// Free-form detail.
    pub detail: String,
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub records: u64,
    /// The sequence number of the first record whose hash does not match, if any.
    pub first_break: Option<i64>,
}

/// The genesis "previous hash".
pub(super) const GENESIS: [u8; 32] = [0u8; 32];

/// SHA-256 over the previous hash and every field, each length-prefixed so that no two
/// different records hash alike.
pub(super) fn chain_hash(prev: &[u8], e: &AuditEntry) -> Vec<u8> {
    Sha256::digest(hashed_bytes(prev, e)).to_vec()
}

/// The bytes [`chain_hash`] hashes for `e` after `prev`: what an auditor hashes with
/// `openssl dgst -sha256` to check a record without nesca (`docs/audit.md`).
pub fn hashed_bytes(prev: &[u8], e: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(prev.len() + 64 + e.detail.len());
    out.extend_from_slice(prev);
    out.extend_from_slice(&e.seq.to_be_bytes());
    out.extend_from_slice(&e.at.secs().to_be_bytes());
    for field in [&e.actor, &e.action, &e.issuer, &e.serial, &e.detail] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// A record as stored: the entry with the previous record's hash and its own.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub entry: AuditEntry,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The chain's head signed with the audit key in the HSM: no one without that key can
/// recompute the chain after an edit and have it pass (docs/audit.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The sequence number of the record whose hash is signed.
    pub seq: i64,
    /// That record's hash.
    pub hash: Vec<u8>,
    pub at: UnixTime,
    /// The audit key's token label.
    pub key_label: String,
    /// The signature over [`checkpoint_message`], as the key's algorithm makes it (ECDSA: DER).
    pub signature: Vec<u8>,
}

/// What a checkpoint signs: a line of text an auditor can rebuild with `printf` and check
/// with `openssl dgst -sha256 -verify` (docs/audit.md).
pub fn checkpoint_message(seq: i64, hash: &[u8]) -> Vec<u8> {
    format!("nesca audit checkpoint v1\n{seq}\n{}\n", hex::encode(hash)).into_bytes()
}

/// A certificate or a lifecycle transition the store holds without its audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unaudited {
    /// `issue` (an issued certificate) or the transition's action.
    pub what: String,
    pub issuer: String,
    pub serial: String,
    /// The transition's sequence number (its audit record's), when it is one.
    pub seq: Option<i64>,
}

/// The audit log as a whole. Its records are written by every other store's writes, each in
/// the transaction of the change it records.
pub trait AuditStore: Send + Sync {
    /// Walks the audit chain and reports the first break.
    fn verify_audit(&self) -> Result<AuditReport>;
    /// The last record's sequence number and hash (`None`: no record yet).
    fn audit_head(&self) -> Result<Option<(i64, Vec<u8>)>>;
    /// Records at `from..=to`, in order.
    fn audit_records(&self, from: i64, to: i64) -> Result<Vec<AuditRecord>>;
    /// Keeps a checkpoint; refuses one whose seq is not after the last checkpoint's, or
    /// whose hash is not the record's at that seq ([`crate::CaError::Conflict`]).
    fn add_audit_checkpoint(&self, checkpoint: AuditCheckpoint) -> Result<()>;
    /// Every checkpoint, in order.
    fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>>;
    /// Issued certificates without their `issue` record and transitions without theirs.
    fn unaudited(&self) -> Result<Vec<Unaudited>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail: &str) -> AuditEntry {
        AuditEntry {
            seq: 1,
            at: UnixTime::from_secs(2),
            actor: "a".into(),
            action: "b".into(),
            issuer: "c".into(),
            serial: "d".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn field_boundaries_matter() {
        let mut a = entry("x");
        let mut b = entry("x");
        a.actor = "ab".into();
        a.action = "c".into();
        b.actor = "a".into();
        b.action = "bc".into();
        assert_ne!(chain_hash(&GENESIS, &a), chain_hash(&GENESIS, &b));
        assert_ne!(
            chain_hash(&GENESIS, &entry("x")),
            chain_hash(&[1u8; 32], &entry("x"))
        );
    }
}
