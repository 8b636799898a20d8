//! Verifying the audit log beyond its hash chain (docs/audit.md): the checkpoints the audit
//! key signed, the anchor kept outside the database, and the cross-check of certificates and
//! transitions against their audit records. A chain recomputed after an edit passes the hash
//! walk but not a checkpoint signed before the edit; a truncated tail passes the walk but not
//! a checkpoint (or anchor line) past it; a deleted checkpoint row is still in the anchor.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::store::{AuditCheckpoint, Store, Unaudited};

/// One thing found wrong, with the first record it makes suspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFinding {
    /// The hash chain breaks here: an edited, inserted, deleted or reordered record.
    ChainBreak { seq: i64 },
    /// A checkpoint's signature does not verify under the audit key.
    BadSignature { seq: i64 },
    /// A checkpoint (signed: genuine) names a hash the chain no longer has at its seq: the
    /// chain was rewritten after `since` (the last checkpoint that still matches).
    Rewritten { seq: i64, since: i64 },
    /// A checkpoint or anchor line names a record past the log's end: records were cut off
    /// (or rewritten and shortened after `since`, the last checkpoint that still matches).
    Truncated {
        head: i64,
        checkpoint: i64,
        since: i64,
    },
    /// A checkpoint the anchor holds is missing from the store (its row was deleted).
    CheckpointDeleted { seq: i64 },
    /// The store's checkpoint differs from the anchor's at the same seq.
    AnchorDiffers { seq: i64 },
    /// A certificate or transition without its audit record.
    Unaudited(Unaudited),
    /// The audit key exists (so checkpoints were made) but the store and the anchor hold none.
    CheckpointsGone,
    /// A checkpoint of the store's, not its newest, is missing from the anchor.
    AnchorBehind { seq: i64 },
    /// The latest checkpoint the token holds (where only the PIN's holder writes) is not in
    /// the store, or names a record past the end or another hash.
    TokenDiffers { seq: i64, since: i64 },
}

impl AuditFinding {
    /// The first record this finding makes suspect (`None`: no record named).
    pub fn first_bad_seq(&self) -> Option<i64> {
        match self {
            AuditFinding::ChainBreak { seq } => Some(*seq),
            AuditFinding::BadSignature { seq }
            | AuditFinding::CheckpointDeleted { seq }
            | AuditFinding::AnchorDiffers { seq } => Some(*seq),
            AuditFinding::Rewritten { since, .. } => Some(since + 1),
            AuditFinding::Truncated { head, since, .. } => Some((head + 1).min(since + 1)),
            AuditFinding::Unaudited(u) => u.seq,
            AuditFinding::CheckpointsGone => Some(1),
            AuditFinding::TokenDiffers { seq, since } => Some((*since + 1).min(*seq)),
            AuditFinding::AnchorBehind { seq } => Some(*seq),
        }
    }

    /// One line for the operator.
    pub fn describe(&self) -> String {
        match self {
            AuditFinding::CheckpointsGone => {
                "the audit key exists but no checkpoint does, in the store or the anchor: they were deleted".into()
            }
            AuditFinding::AnchorBehind { seq } => format!(
                "the checkpoint at record {seq} is in the store but not in the anchor"
            ),
            AuditFinding::TokenDiffers { seq, .. } => format!(
                "the latest checkpoint the token holds (record {seq}) is not the store's: the log or its checkpoints were rewritten or cut"
            ),
            AuditFinding::ChainBreak { seq } => format!(
                "the hash chain breaks at record {seq}: a record was edited, inserted, deleted or moved"
            ),
            AuditFinding::BadSignature { seq } => {
                format!("the checkpoint at record {seq} is not signed by the audit key")
            }
            AuditFinding::Rewritten { seq, since } => format!(
                "the chain was rewritten after record {since}: the signed checkpoint at record {seq} names another hash"
            ),
            AuditFinding::Truncated {
                head, checkpoint, ..
            } => format!(
                "the log ends at record {head} but a checkpoint names record {checkpoint}: records were cut off"
            ),
            AuditFinding::CheckpointDeleted { seq } => {
                format!("the checkpoint at record {seq} is in the anchor but not in the store")
            }
            AuditFinding::AnchorDiffers { seq } => {
                format!("the checkpoint at record {seq} differs from the anchor's")
            }
            AuditFinding::Unaudited(u) => match (u.seq, u.what.as_str()) {
                (None, "issue") => format!(
                    "certificate {}/{} was issued without an audit record",
                    u.issuer, u.serial
                ),
                (seq, what) if what.starts_with("status ") => format!(
                    "certificate {}/{} has {what}{}",
                    u.issuer,
                    u.serial,
                    seq.map(|s| format!(" (record {s})")).unwrap_or_default()
                ),
                (Some(seq), what) if what.starts_with("row of the ") => format!(
                    "record {seq} ({}) has no {what} for {}/{}",
                    what.trim_start_matches("row of the "),
                    u.issuer,
                    u.serial
                ),
                (seq, what) => format!(
                    "the {what} of {}/{}{} has no audit record saying so",
                    u.issuer,
                    u.serial,
                    seq.map(|s| format!(" (record {s})")).unwrap_or_default()
                ),
            },
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerdict {
    /// Records that chain correctly from the start.
    pub records: u64,
    /// Checkpoints checked (the store's and the anchor's, by seq).
    pub checkpoints: usize,
    /// Everything found, in order of the first record each makes suspect.
    pub findings: Vec<AuditFinding>,
}

impl AuditVerdict {
    /// The first record anything makes suspect.
    pub fn first_bad_seq(&self) -> Option<i64> {
        self.findings
            .iter()
            .filter_map(AuditFinding::first_bad_seq)
            .min()
    }
}

/// Verifies the store's audit log against its checkpoints, the `anchor` (the checkpoints as
/// kept outside the database) and its own tables; `signed` says whether a checkpoint's
/// signature verifies under the audit key, `key_exists` whether that key was ever made (then,
/// once the token holds a checkpoint, checkpoints were made and cannot all be gone),
/// `token_latest` the latest checkpoint the token holds.
pub fn verify(
    store: &dyn Store,
    anchor: &[AuditCheckpoint],
    signed: &dyn Fn(&AuditCheckpoint) -> bool,
    key_exists: bool,
    token_latest: Option<(i64, Vec<u8>)>,
) -> Result<AuditVerdict> {
    let mut findings = Vec::new();
    let report = store.verify_audit()?;
    if let Some(seq) = report.first_break {
        findings.push(AuditFinding::ChainBreak { seq });
    }
    let head = store.audit_head()?.map(|(seq, _)| seq).unwrap_or(0);
    let stored: BTreeMap<i64, AuditCheckpoint> = store
        .audit_checkpoints()?
        .into_iter()
        .map(|c| (c.seq, c))
        .collect();
    // The anchor is appended after the store: only the store's newest may be missing there.
    let anchored: std::collections::BTreeSet<i64> = anchor.iter().map(|a| a.seq).collect();
    let newest = stored.keys().next_back().copied();
    for seq in stored.keys() {
        if !anchored.contains(seq) && Some(*seq) != newest {
            findings.push(AuditFinding::AnchorBehind { seq: *seq });
        }
    }
    // The key with no checkpoint anywhere is a deletion once the token holds a checkpoint
    // (written with the PIN, after the store and the anchor). With none on the token either,
    // the process that made the key stopped before its first checkpoint: nothing was deleted.
    if key_exists && stored.is_empty() && anchor.is_empty() && token_latest.is_some() {
        findings.push(AuditFinding::CheckpointsGone);
    }
    let mut all = stored.clone();
    for a in anchor {
        match stored.get(&a.seq) {
            None => findings.push(AuditFinding::CheckpointDeleted { seq: a.seq }),
            Some(s) if s != a => findings.push(AuditFinding::AnchorDiffers { seq: a.seq }),
            Some(_) => {}
        }
        all.entry(a.seq).or_insert_with(|| a.clone());
    }
    let mut last_good = 0;
    for (seq, cp) in &all {
        if !signed(cp) {
            findings.push(AuditFinding::BadSignature { seq: *seq });
            continue;
        }
        if *seq > head {
            findings.push(AuditFinding::Truncated {
                head,
                checkpoint: *seq,
                since: last_good,
            });
            continue;
        }
        // Past a break of the chain a checkpoint cannot match anyway: the break says more.
        if report.first_break.is_some_and(|b| b <= *seq) {
            continue;
        }
        let at = store.audit_records(*seq, *seq)?;
        match at.first() {
            Some(r) if r.hash == cp.hash => last_good = *seq,
            _ => findings.push(AuditFinding::Rewritten {
                seq: *seq,
                since: last_good,
            }),
        }
    }
    // The token's copy of the latest checkpoint: written with the PIN only, so the store and
    // the anchor cannot be rewritten behind it.
    if let Some((seq, hash)) = token_latest {
        let in_store = stored.get(&seq).is_some_and(|c| c.hash == hash);
        let in_chain = store
            .audit_records(seq, seq)?
            .first()
            .is_some_and(|r| r.hash == hash);
        // Past a break of the chain the break says more (as for the checkpoints above).
        let explained = report.first_break.is_some_and(|b| b <= seq);
        if (!in_store || !in_chain) && !explained {
            findings.push(AuditFinding::TokenDiffers {
                seq,
                since: last_good.min(seq),
            });
        }
    }
    findings.extend(store.unaudited()?.into_iter().map(AuditFinding::Unaudited));
    findings.sort_by_key(|f| f.first_bad_seq().unwrap_or(i64::MAX));
    Ok(AuditVerdict {
        records: report.records,
        checkpoints: all.len(),
        findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone(verdict: &AuditVerdict) -> bool {
        verdict
            .findings
            .iter()
            .any(|f| matches!(f, AuditFinding::CheckpointsGone))
    }

    /// The audit key made and the process stopped before its first checkpoint: no finding.
    /// The same with a checkpoint on the token: every checkpoint was deleted.
    #[test]
    fn a_key_without_checkpoints_is_a_deletion_only_once_the_token_holds_one() {
        let f = crate::testkit::fixture();
        let store: &dyn Store = f.store.as_ref();
        let never = verify(store, &[], &|_| true, true, None).unwrap();
        assert!(!gone(&never), "{:?}", never.findings);
        let (seq, hash) = store.audit_head().unwrap().unwrap();
        let deleted = verify(store, &[], &|_| true, true, Some((seq, hash))).unwrap();
        assert!(gone(&deleted), "{:?}", deleted.findings);
    }
}
