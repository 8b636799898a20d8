//! Checkpoints of the audit chain (docs/audit.md): the head's hash signed with the audit key
//! in the HSM, kept in the store and appended to the anchor file outside it, and the checks
//! `nesca audit verify` makes of them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use ca_core::engine::TbsSigner;
use ca_core::store::{checkpoint_message, AuditCheckpoint, Store};
use hsm::{Hsm, KeySigner};
use serde_json::json;

use crate::config::Loaded;
use crate::error::{CliError, Result};

/// The anchor file, as configured.
pub(crate) fn anchor_path(cfg: &Loaded) -> PathBuf {
    cfg.path(&cfg.raw.audit.anchor_file)
}

/// The audit key, generated in the token the first time (like the CA keys: sensitive, never
/// extractable).
pub(crate) fn audit_key(cfg: &Loaded, hsm: &Hsm) -> Result<KeySigner> {
    let label = &cfg.raw.audit.key_label;
    if hsm.has_key(label)? {
        return Ok(hsm.find_key(label)?);
    }
    Ok(hsm.generate_key(label, cfg.key_algorithm)?)
}

/// Signs the chain's head unless it is checkpointed already; returns the new checkpoint. It
/// is kept in the store, then appended to the anchor (a crash between the two leaves the
/// anchor one behind, which verification accepts).
pub(crate) fn checkpoint(
    cfg: &Loaded,
    store: &Arc<dyn Store>,
    hsm: &Hsm,
    key: &KeySigner,
) -> Result<Option<AuditCheckpoint>> {
    let Some((seq, hash)) = store.audit_head()? else {
        return Ok(None);
    };
    if store
        .audit_checkpoints()?
        .last()
        .is_some_and(|last| last.seq >= seq)
    {
        return Ok(None);
    }
    let signature = TbsSigner::sign(key, &checkpoint_message(seq, &hash))
        .map_err(|e| CliError::config("audit.key_label", e.to_string()))?;
    let cp = AuditCheckpoint {
        seq,
        hash,
        at: crate::wiring::clock().now_unix(),
        key_label: cfg.raw.audit.key_label.clone(),
        signature,
    };
    store.add_audit_checkpoint(cp.clone())?;
    // Every checkpoint of the store's the anchor lacks (a write that failed before), then this.
    let path = anchor_path(cfg);
    let anchored: std::collections::BTreeSet<i64> =
        read_anchor(&path)?.into_iter().map(|a| a.seq).collect();
    for missing in store
        .audit_checkpoints()?
        .into_iter()
        .filter(|c| !anchored.contains(&c.seq))
    {
        append_anchor(&path, &missing)?;
    }
    // And on the token, where only the PIN's holder writes (`token_latest`).
    hsm.put_private_data(
        &token_label(cfg),
        format!("{} {}", cp.seq, hex::encode(&cp.hash)).as_bytes(),
    )?;
    Ok(Some(cp))
}

/// The label of the token's private data object holding the latest checkpoint.
fn token_label(cfg: &Loaded) -> String {
    format!("{}-latest-checkpoint", cfg.raw.audit.key_label)
}

/// The latest checkpoint (seq, hash) the token holds, if any.
pub(crate) fn token_latest(cfg: &Loaded, hsm: &Hsm) -> Result<Option<(i64, Vec<u8>)>> {
    let parse = |v: &[u8]| -> Option<(i64, Vec<u8>)> {
        let text = std::str::from_utf8(v).ok()?;
        let (seq, hash) = text.split_once(' ')?;
        Some((seq.parse().ok()?, hex::decode(hash).ok()?))
    };
    Ok(hsm
        .private_data(&token_label(cfg))?
        .iter()
        .filter_map(|v| parse(v))
        .max_by_key(|(seq, _)| *seq))
}

/// One anchor line (JSON): the checkpoint, hashes in hex, the signature in base64.
pub(crate) fn anchor_line(cp: &AuditCheckpoint) -> String {
    json!({
        "seq": cp.seq,
        "hash": hex::encode(&cp.hash),
        "at": cp.at.secs(),
        "key_label": cp.key_label,
        "signature": base64::engine::general_purpose::STANDARD.encode(&cp.signature),
    })
    .to_string()
}

/// Appends a checkpoint to the anchor, synced, as one write of the whole line: the file only
/// ever grows.
fn append_anchor(path: &Path, cp: &AuditCheckpoint) -> Result<()> {
    regular_or_absent(path)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(CliError::io("cannot open the audit anchor", path))?;
    let line = format!("{}\n", anchor_line(cp));
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(CliError::io("cannot append to the audit anchor", path))
}

/// The anchor is a regular file (not a pipe or a device that could hang or flood a reader).
fn regular_or_absent(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => Err(CliError::config(
            "audit.anchor_file",
            format!("{} is not a regular file", path.display()),
        )),
        _ => Ok(()),
    }
}

/// The anchor's checkpoints (none when the file does not exist yet). A line that does not
/// parse is an error naming it: the anchor is evidence, not something to skip over.
pub(crate) fn read_anchor(path: &Path) -> Result<Vec<AuditCheckpoint>> {
    regular_or_absent(path)?;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CliError::io("cannot read the audit anchor", path)(e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            parse_anchor_line(l).ok_or_else(|| {
                CliError::config(
                    "audit.anchor_file",
                    format!("{}: line {} is not a checkpoint", path.display(), i + 1),
                )
            })
        })
        .collect()
}

fn parse_anchor_line(line: &str) -> Option<AuditCheckpoint> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(AuditCheckpoint {
        seq: v["seq"].as_i64()?,
        hash: hex::decode(v["hash"].as_str()?).ok()?,
        at: ca_core::UnixTime::from_secs(v["at"].as_i64()?),
        key_label: v["key_label"].as_str()?.to_owned(),
        signature: base64::engine::general_purpose::STANDARD
            .decode(v["signature"].as_str()?)
            .ok()?,
    })
}

/// Proves the token's audit key: its private half signs a fresh random challenge that its
/// public half, as the token shows it, verifies. A public-key object swapped for another
/// (possible without the PIN) fails here.
pub(crate) fn prove_key(key: &KeySigner) -> Result<()> {
    let challenge = format!("nesca audit key challenge {:032x}", rand::random::<u128>());
    let signature = TbsSigner::sign(key, challenge.as_bytes())
        .map_err(|e| CliError::config("audit.key_label", e.to_string()))?;
    ca_core::verify::verify(
        &TbsSigner::public_key(key),
        &TbsSigner::signature_algorithm(key),
        challenge.as_bytes(),
        &signature,
    )
    .map_err(|_| {
        CliError::config(
            "audit.key_label",
            "the audit key's public half on the token is not its private half's: the public-key object was replaced",
        )
    })
}

/// Whether `cp`'s signature verifies under the audit key `key` (and names it).
pub(crate) fn signed_by(key: &KeySigner, label: &str, cp: &AuditCheckpoint) -> bool {
    cp.key_label == label
        && ca_core::verify::verify(
            &TbsSigner::public_key(key),
            &TbsSigner::signature_algorithm(key),
            &checkpoint_message(cp.seq, &cp.hash),
            &cp.signature,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_lines_round_trip_and_garbage_is_refused() {
        let cp = AuditCheckpoint {
            seq: 42,
            hash: vec![0xab; 32],
            at: ca_core::UnixTime::from_secs(1_800_000_000),
            key_label: "nesca-audit".into(),
            signature: vec![1, 2, 3],
        };
        assert_eq!(parse_anchor_line(&anchor_line(&cp)), Some(cp));
        for bad in ["", "{}", "not json", r#"{"seq":"x","hash":"zz"}"#] {
            assert_eq!(parse_anchor_line(bad), None, "{bad}");
        }
    }
}
