//! `nesca operator add|list|disable`: the named PKI operators of the admin API, from the CA
//! host. `add` is how the first security officer is made (after that, operators are added
//! through the admin API under dual control); the host operator acts as `cli`.

use std::path::PathBuf;

use ca_core::profile::OperatorProfile;
use ca_core::store::OperatorRecord;
use ca_core::{rfc3339, OperatorName, OperatorRole, Principal, VerifiedCsr};
use clap::Args;
use nesca_ra::operators::Operators;
use serde_json::json;

use super::{emit, OutFile};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::{wiring, ConfigArg};

#[derive(Args)]
pub(crate) struct AddArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The person's name (the certificate's commonName), 1 to 64 characters
    #[arg(long)]
    name: String,
    /// ra-officer, ca-operator, auditor or security-officer (one role per person)
    #[arg(long)]
    role: String,
    /// The operator's PKCS#10 request, PEM or DER (their key never touches nesca)
    #[arg(long)]
    csr: PathBuf,
    /// Where to write the operator's certificate (PEM)
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub(crate) struct DisableArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The operator's name
    #[arg(long)]
    name: String,
}

/// An operator as `list` and the admin API show them.
pub(crate) fn to_json(o: &OperatorRecord) -> serde_json::Value {
    json!({
        "name": o.name.as_str(),
        "role": o.role.as_str(),
        "issuer": o.issuer.as_str(),
        "serial": o.serial.to_hex(),
        "created_at": rfc3339(o.created_at),
        "active": o.disabled_at.is_none(),
        "disabled_at": o.disabled_at.map(rfc3339),
    })
}

/// The operator profile of the configuration.
pub(crate) fn profile(cfg: &Loaded) -> Result<OperatorProfile> {
    Ok(OperatorProfile::new(cfg.raw.admin.operator_validity_days)?)
}

pub(crate) fn add(a: AddArgs) -> Result<()> {
    // Parse at the edge: a bad field is refused before the configuration or store is read.
    let name = OperatorName::parse(&a.name).map_err(ca_core::CaError::from)?;
    let role = OperatorRole::parse(&a.role).map_err(ca_core::CaError::from)?;
    let cfg = Loaded::read(&a.config)?;
    let csr_bytes = super::read_limited("csr", &a.csr, 64 * 1024)?;
    let csr = VerifiedCsr::parse(&csr_bytes)?;
    let profile = profile(&cfg)?;
    let store = wiring::open_existing_store(&cfg)?;
    let operators = Operators::new(store.clone(), wiring::clock());
    let approved = operators.approve(
        name,
        role,
        csr,
        &profile,
        (&cfg.raw.ca.country, &cfg.raw.ca.organization),
        cfg.raw.admin.operator_validity_days,
    )?;
    // Claimed now: an unwritable --out must not leave a certificate nobody received.
    let out = OutFile::claim("out", &a.out)?;
    let issuance = wiring::open_issuance(&cfg, store)?;
    let (record, issued) = operators.register(
        &Principal::HostOperator,
        &issuance.engine,
        &issuance.ca,
        approved,
    )?;
    out.deliver_certificate(&issued.cert_der)?;
    emit(&format!("{}\n", to_json(&record)))
}

pub(crate) fn list(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let operators = Operators::new(wiring::open_existing_store(&cfg)?, wiring::clock());
    let mut text = String::new();
    for o in operators.list()? {
        text.push_str(&to_json(&o).to_string());
        text.push('\n');
    }
    emit(&text)
}

/// Disables an operator: their certificate opens nothing from the next request on.
pub(crate) fn disable(a: DisableArgs) -> Result<()> {
    let name = OperatorName::parse(&a.name).map_err(ca_core::CaError::from)?;
    let cfg = Loaded::read(&a.config)?;
    let operators = Operators::new(wiring::open_existing_store(&cfg)?, wiring::clock());
    let record = operators
        .disable(&Principal::HostOperator, &name)
        .map_err(CliError::from)?;
    emit(&format!("{}\n", to_json(&record)))
}
