//! The hash-chained audit log: each record's hash covers the previous record's hash, so a
//! removed, reordered or edited record breaks the chain from that point on.

use sha2::{Digest, Sha256};

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
    let mut h = Sha256::new();
    h.update(prev);
    h.update(e.seq.to_be_bytes());
    h.update(e.at.secs().to_be_bytes());
    for field in [&e.actor, &e.action, &e.issuer, &e.serial, &e.detail] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().to_vec()
}

/// The audit log as a whole. Its records are written by every other store's writes, each in
/// the transaction of the change it records.
pub trait AuditStore: Send + Sync {
    /// Walks the audit chain and reports the first break.
    fn verify_audit(&self) -> Result<AuditReport>;
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
