//! `nesca audit verify|checkpoint|export`: the audit log — its hash chain, the checkpoints the
//! audit key signed and their anchor (`crate::audit_checkpoint`), and an export an auditor can
//! check without nesca (docs/audit.md).

use std::path::PathBuf;
use std::sync::Arc;

use ca_core::store::{hashed_bytes, prelude::*};
use clap::Args;
use serde_json::json;

use super::{emit, OutFile};
use crate::audit_checkpoint;
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::{wiring, ConfigArg};

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The first record (default: the first)
    #[arg(long, default_value_t = 1)]
    from: i64,
    /// The last record (default: the last)
    #[arg(long)]
    to: Option<i64>,
    /// Where to write the JSON lines; must not exist
    #[arg(long)]
    out: PathBuf,
}

/// Verifies the chain, every checkpoint (its signature under the audit key, its hash in the
/// chain), the anchor against the store, and the certificates and transitions against their
/// audit records. Prints `audit log intact: N records` (then the checkpoints checked), or
/// fails with the first finding and the first record it makes suspect.
pub(crate) fn verify(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let store: Arc<dyn Store> = wiring::open_existing_store(&cfg)?;
    let hsm = wiring::open_hsm(&cfg)?;
    let (verdict, anchor_lines) = run_verify(&cfg, store.as_ref(), &hsm)?;
    let anchor_len = anchor_lines;
    let Some(first) = verdict.findings.first() else {
        return emit(&format!(
            "audit log intact: {} records\n{} checkpoints verified, anchor {} lines\n",
            verdict.records, verdict.checkpoints, anchor_len
        ));
    };
    let more = verdict.findings.len() - 1;
    Err(CliError::config(
        "audit",
        format!(
            "{}{}{}",
            first.describe(),
            verdict
                .first_bad_seq()
                .map(|s| format!(" (first bad record {s})"))
                .unwrap_or_default(),
            if more > 0 {
                format!("; {more} more finding(s)")
            } else {
                String::new()
            }
        ),
    ))
}

/// The verification `nesca audit verify` and the admin API's `GET /admin/v1/audit/verify`
/// run: the verdict, and how many lines the anchor holds.
pub(crate) fn run_verify(
    cfg: &Loaded,
    store: &dyn Store,
    hsm: &hsm::Hsm,
) -> Result<(ca_core::audit_check::AuditVerdict, usize)> {
    let anchor = audit_checkpoint::read_anchor(&audit_checkpoint::anchor_path(cfg))?;
    // The audit key, when it exists, proven to be the key whose public half the token
    // shows (the public object can be replaced without the PIN; the private one cannot).
    let label = cfg.raw.audit.key_label.clone();
    let key = if hsm.has_key(&label)? {
        let key = hsm.find_key(&label)?;
        audit_checkpoint::prove_key(&key)?;
        Some(key)
    } else {
        None
    };
    let signed = |cp: &ca_core::store::AuditCheckpoint| {
        key.as_ref()
            .is_some_and(|k| audit_checkpoint::signed_by(k, &label, cp))
    };
    let token = audit_checkpoint::token_latest(cfg, hsm)?;
    let verdict = ca_core::audit_check::verify(store, &anchor, &signed, key.is_some(), token)?;
    Ok((verdict, anchor.len()))
}

/// Signs the chain's head now (`nesca serve` does it on its own schedule, `[audit]`).
pub(crate) fn checkpoint(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let store: Arc<dyn Store> = wiring::open_existing_store(&cfg)?;
    let hsm = wiring::open_hsm(&cfg)?;
    let key = audit_checkpoint::audit_key(&cfg, &hsm)?;
    match audit_checkpoint::checkpoint(&cfg, &store, &hsm, &key) {
        Ok(Some(cp)) => emit(&format!("{}\n", audit_checkpoint::anchor_line(&cp))),
        // Another process (serve) checkpointed the same head first.
        Ok(None) | Err(CliError::Ca(ca_core::CaError::Conflict { .. })) => {
            emit("nothing new to checkpoint\n")
        }
        Err(e) => Err(e),
    }
}

/// Records `from..=to` as JSON lines (`type` `record`: its fields, `prev_hash`, `hash` and
/// `hashed`, the exact bytes the hash covers, in hex), then the checkpoints in that range
/// (`type` `checkpoint`, as in the anchor), then the audit key's public key (`type` `key`,
/// SubjectPublicKeyInfo PEM) when there are checkpoints.
pub(crate) fn export(a: ExportArgs) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let out = OutFile::claim("out", &a.out)?;
    let store: Arc<dyn Store> = wiring::open_existing_store(&cfg)?;
    let to = match a.to {
        Some(t) => t,
        None => store.audit_head()?.map(|(s, _)| s).unwrap_or(0),
    };
    if a.from < 1 || to < a.from {
        return Err(CliError::Argument {
            field: "from",
            rule: format!("the range {}..{to} names no record", a.from),
        });
    }
    let mut text = String::new();
    for r in store.audit_records(a.from, to)? {
        let e = &r.entry;
        let line = json!({
            "type": "record",
            "seq": e.seq,
            "at": e.at.secs(),
            "actor": e.actor,
            "action": e.action,
            "issuer": e.issuer,
            "serial": e.serial,
            "detail": e.detail,
            "prev_hash": hex::encode(&r.prev_hash),
            "hash": hex::encode(&r.hash),
            "hashed": hex::encode(hashed_bytes(&r.prev_hash, e)),
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let checkpoints: Vec<_> = store
        .audit_checkpoints()?
        .into_iter()
        .filter(|c| (a.from..=to).contains(&c.seq))
        .collect();
    for cp in &checkpoints {
        let mut v: serde_json::Value =
            serde_json::from_str(&audit_checkpoint::anchor_line(cp)).unwrap_or_default();
        v["type"] = "checkpoint".into();
        v["message"] =
            String::from_utf8_lossy(&ca_core::store::checkpoint_message(cp.seq, &cp.hash))
                .into_owned()
                .into();
        text.push_str(&v.to_string());
        text.push('\n');
    }
    if !checkpoints.is_empty() {
        let hsm = wiring::open_hsm(&cfg)?;
        let key = hsm.find_key(&cfg.raw.audit.key_label)?;
        let spki = der::Encode::to_der(&ca_core::engine::TbsSigner::public_key(&key))
            .map_err(|e| CliError::config("audit.key_label", e.to_string()))?;
        let pem = der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &spki)
            .map_err(|e| CliError::config("audit.key_label", e.to_string()))?;
        text.push_str(
            &json!({
                "type": "key",
                "label": cfg.raw.audit.key_label,
                "pem": pem,
                // The digest `openssl dgst -verify` needs for this key's signatures.
                "digest": if matches!(key.algorithm(), hsm::KeyAlgorithm::EcdsaP384) { "sha384" } else { "sha256" },
            })
            .to_string(),
        );
        text.push('\n');
    }
    out.commit(text.as_bytes())?;
    emit(&format!(
        "exported records {}..{to} and {} checkpoints to {}\n",
        a.from,
        checkpoints.len(),
        a.out.display()
    ))
}
