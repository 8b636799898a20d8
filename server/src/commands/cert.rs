//! `nesca cert show|list`.

use std::path::PathBuf;

use ca_core::store::CertRecord;
use ca_core::{rfc3339, Serial, UnixTime};
use clap::Args;
use serde_json::json;

use super::emit;
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::{wiring, ConfigArg};

#[derive(Args)]
pub(crate) struct ShowArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// Serial number, hexadecimal (as `issue` prints it or as OpenSSL shows it)
    #[arg(long)]
    serial: String,
}

pub(crate) fn to_json(r: &CertRecord) -> serde_json::Value {
    let at = |t: UnixTime| rfc3339(t);
    json!({
        "serial": r.serial.to_hex(),
        "issuer": r.issuer.as_str(),
        "profile": r.profile.as_str(),
        "status": r.status.as_str(),
        "subject": r.subject.subject,
        "tckn": r.subject.tckn.map(|t| t.to_string()),
        "given_name": r.subject.given_name,
        "surname": r.subject.surname,
        "not_before": at(r.not_before),
        "not_after": at(r.not_after),
        "reserved_at": at(r.reserved_at),
        "issued_at": r.issued_at.map(at),
        "revocation": r.revocation.map(|v| json!({
            "at": at(v.at),
            "reason": v.reason.map(|r| r.name()).unwrap_or("unspecified"),
            "invalidity_date": v.invalidity_date.map(at),
        })),
    })
}

pub(crate) fn show(a: ShowArgs) -> Result<()> {
    let serial = Serial::parse_hex(&a.serial).map_err(|e| CliError::Argument {
        field: "serial",
        rule: e.rule(),
    })?;
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let record = store
        .get(None, &serial)?
        .ok_or(ca_core::CaError::NotFound {
            serial: serial.to_hex(),
        })?;
    let value = detail_json(store.as_ref(), &record)?;
    emit(&format!(
        "{}\n",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    ))
}

/// A certificate with its history and, when it has one, its commitment: what `cert show`
/// prints and the admin API's `GET /admin/v1/certificates/{serial}` answers.
pub(crate) fn detail_json(
    store: &dyn ca_core::store::Store,
    record: &CertRecord,
) -> ca_core::Result<serde_json::Value> {
    let at = |t: UnixTime| rfc3339(t);
    let history: Vec<_> = store
        .transitions(&record.issuer, &record.serial)?
        .iter()
        .map(|t| {
            json!({
                "at": at(t.at),
                "action": t.action.as_str(),
                "from": t.from.as_str(),
                "to": t.to.as_str(),
                "reason": t.reason.map(|r| r.name()),
                "request_id": t.request_id.as_str(),
                "actor": t.actor.to_string(),
            })
        })
        .collect();
    let mut value = to_json(record);
    value["history"] = serde_json::Value::Array(history);
    // The commitment (taahhütname) of a certificate issued through an identity-card channel:
    // its state, and a digest of the evidence rather than the evidence itself.
    if let Some(c) = store.commitment(&record.serial)? {
        value["commitment"] = json!({
            "status": c.status.as_str(),
            "channel": c.channel.as_str(),
            "sha256": c.sha256_hex,
            "deadline": at(c.deadline),
            "accepted_at": c.accepted_at.map(at),
            "evidence_sha256": c.evidence_sha256(),
            "overwrites": c.overwrite.map(|s| s.to_hex()),
        });
    }
    Ok(value)
}

pub(crate) fn list(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let mut text = String::new();
    for r in store.list(None)? {
        text.push_str(&to_json(&r).to_string());
        text.push('\n');
    }
    emit(&text)
}
