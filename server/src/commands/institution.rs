//! `nesca institution add|list|set-officer|deactivate|activate`: institutions that get NES
//! for their staff through the institutional channel, each with its one e-İmza officer.

use std::path::PathBuf;

use ca_core::institution::{InstitutionId, InstitutionRecord, Payer, TaxNo};
use ca_core::{rfc3339, Principal, Tckn};
use clap::Args;
use nesca_ra::institutions::{InstitutionRegistration, Institutions};
use serde_json::json;

use super::{emit, pem_or_der};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::{wiring, ConfigArg};

#[derive(Args)]
pub(crate) struct AddArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The institution's id in nesca: 1 to 32 lower-case letters, digits or '-'
    #[arg(long)]
    id: String,
    /// The institution's name, 1 to 256 characters
    #[arg(long)]
    name: String,
    /// Its tax number (10 digits)
    #[arg(long)]
    tax_no: String,
    /// Who pays for the certificates: institution or person
    #[arg(long)]
    payer: String,
    /// The e-İmza officer's T.C. Kimlik No
    #[arg(long)]
    officer_tckn: String,
    /// The officer's certificate (PEM or DER): their NES, or a client certificate nesca issued.
    /// Only lists signed with it are accepted.
    #[arg(long)]
    officer_cert: PathBuf,
}

/// Reads a certificate file, PEM (`CERTIFICATE`) or DER.
fn read_certificate(path: &std::path::Path) -> Result<Vec<u8>> {
    use der::Decode as _;
    let bytes = std::fs::read(path).map_err(CliError::io("cannot read certificate", path))?;
    let der = pem_or_der("officer-cert", bytes, &["CERTIFICATE"])?;
    x509_cert::Certificate::from_der(&der).map_err(|e| CliError::Argument {
        field: "officer-cert",
        rule: format!("not an X.509 certificate: {e}"),
    })?;
    Ok(der)
}

pub(crate) fn to_json(i: &InstitutionRecord) -> serde_json::Value {
    use sha2::Digest as _;
    json!({
        "id": i.id.as_str(),
        "name": i.name,
        "tax_no": i.tax_no.as_str(),
        "payer": i.payer.as_str(),
        "officer_tckn": i.officer_tckn.as_str(),
        "officer_cert_sha256": hex::encode(sha2::Sha256::digest(&i.officer_cert_der)),
        "created_at": rfc3339(i.created_at.to_system()),
        "active": i.active,
    })
}

pub(crate) fn add(a: AddArgs) -> Result<()> {
    // Parse at the edge: a bad field is refused before the configuration or store is read.
    let id = InstitutionId::parse(&a.id)?;
    let tax_no = TaxNo::parse(&a.tax_no)?;
    let payer = Payer::parse(&a.payer)?;
    let officer = Tckn::parse(&a.officer_tckn).map_err(|e| CliError::Argument {
        field: "officer-tckn",
        rule: e.to_string(),
    })?;
    let officer_cert_der = read_certificate(&a.officer_cert)?;
    let registration =
        InstitutionRegistration::new(id, &a.name, tax_no, payer, officer, officer_cert_der)?;
    let cfg = Loaded::read(&a.config)?;
    let institutions = Institutions::new(wiring::open_existing_store(&cfg)?);
    let now = crate::wiring::clock().now_unix();
    let record = institutions.register(&Principal::HostOperator, registration, now)?;
    emit(&format!("{}\n", to_json(&record)))
}

#[derive(Args)]
pub(crate) struct SetOfficerArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The institution's id
    #[arg(long)]
    id: String,
    /// The new e-İmza officer's T.C. Kimlik No
    #[arg(long)]
    officer_tckn: String,
    /// The new officer's certificate (PEM or DER); only lists signed with it are accepted
    #[arg(long)]
    officer_cert: PathBuf,
}

#[derive(Args)]
pub(crate) struct IdArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The institution's id
    #[arg(long)]
    id: String,
}

/// The registry of the configuration's store, and the institution's id.
fn registry(config: &std::path::Path, id: &str) -> Result<(Institutions, InstitutionId)> {
    let id = InstitutionId::parse(id)?;
    let cfg = Loaded::read(config)?;
    Ok((Institutions::new(wiring::open_existing_store(&cfg)?), id))
}

/// A new e-İmza officer: the old officer's lists are refused from now.
pub(crate) fn set_officer(a: SetOfficerArgs) -> Result<()> {
    let officer = Tckn::parse(&a.officer_tckn).map_err(|e| CliError::Argument {
        field: "officer-tckn",
        rule: e.to_string(),
    })?;
    let cert = read_certificate(&a.officer_cert)?;
    let (institutions, id) = registry(&a.config, &a.id)?;
    let now = wiring::clock().now_unix();
    let record = institutions.change_officer(&Principal::HostOperator, &id, officer, cert, now)?;
    emit(&format!("{}\n", to_json(&record)))
}

/// Deactivates (`active` false) or activates an institution.
pub(crate) fn set_active(a: IdArgs, active: bool) -> Result<()> {
    let (institutions, id) = registry(&a.config, &a.id)?;
    let now = wiring::clock().now_unix();
    let record = institutions.set_active(&Principal::HostOperator, &id, active, now)?;
    emit(&format!("{}\n", to_json(&record)))
}

pub(crate) fn list(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let institutions = Institutions::new(wiring::open_existing_store(&cfg)?);
    let mut text = String::new();
    for i in institutions.list()? {
        text.push_str(&to_json(&i).to_string());
        text.push('\n');
    }
    emit(&text)
}
