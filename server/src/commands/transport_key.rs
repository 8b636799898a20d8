//! `nesca transport-key add|list|revoke`: the transport keys card keys may be wrapped for —
//! certificates of the card-personalisation system and of KEC devices, registered by an
//! operator (`nesca_ra::transport_keys`).

use std::path::PathBuf;

use ca_core::rfc3339;
use ca_core::transport_key::{TransportKeyId, TransportKeyRecord};
use ca_core::Principal;
use clap::Args;
use nesca_ra::transport_keys::TransportKeys;
use serde_json::json;

use super::emit;
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::{wiring, ConfigArg};

#[derive(Args)]
pub(crate) struct AddArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The operator's name for the key (the personalisation line, the KEC device), 1 to 128 characters
    #[arg(long)]
    name: String,
    /// The transport key's X.509 certificate (RSA, 2048 bits or more), PEM or DER
    #[arg(long)]
    cert: PathBuf,
}

#[derive(Args)]
pub(crate) struct RevokeArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The transport key's id (64 lower-case hex digits, as `add` printed it)
    #[arg(long)]
    id: String,
}

fn to_json(k: &TransportKeyRecord) -> serde_json::Value {
    json!({
        "id": k.id.as_str(),
        "name": k.name,
        "not_before": rfc3339(k.not_before),
        "not_after": rfc3339(k.not_after),
        "registered_at": rfc3339(k.registered_at),
        "withdrawn_at": k.withdrawn_at.map(rfc3339),
        "active": k.withdrawn_at.is_none(),
    })
}

/// Registers a transport certificate; prints its id.
pub(crate) fn add(a: AddArgs) -> Result<()> {
    let bytes =
        std::fs::read(&a.cert).map_err(CliError::io("cannot read the certificate", &a.cert))?;
    let der = super::pem_or_der("cert", bytes, &["CERTIFICATE"])?;
    let cfg = Loaded::read(&a.config)?;
    let keys = TransportKeys::new(wiring::open_existing_store(&cfg)?);
    let now = wiring::clock().now_unix();
    let record = keys.register(&Principal::HostOperator, &a.name, &der, now)?;
    emit(&format!("{}\n", to_json(&record)))
}

/// Every registered transport key, one JSON object per line.
pub(crate) fn list(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let keys = TransportKeys::new(wiring::open_existing_store(&cfg)?);
    let mut text = String::new();
    for k in keys.list()? {
        text.push_str(&to_json(&k).to_string());
        text.push('\n');
    }
    emit(&text)
}

/// Withdraws a transport key for good: no card key is wrapped for it again.
pub(crate) fn revoke(a: RevokeArgs) -> Result<()> {
    let id = TransportKeyId::parse("id", &a.id)?;
    let cfg = Loaded::read(&a.config)?;
    let keys = TransportKeys::new(wiring::open_existing_store(&cfg)?);
    let now = wiring::clock().now_unix();
    let record = keys.withdraw(&Principal::HostOperator, &id, now)?;
    emit(&format!("{}\n", to_json(&record)))
}
