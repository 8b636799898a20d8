//! `nesca partner add|list|deactivate|issue-cert`: registered licensed ESHS operators and their role and
//! secure-communication certificates.

use std::path::PathBuf;

use ca_core::partner::{parse_license_no, parse_partner_name};
use ca_core::profile::{parse_common_name, PartnerCertKind};
use ca_core::{rfc3339, PartnerId, PartnerRecord, Principal, VerifiedCsr};
use clap::Args;
use nesca_ra::partners::Partners;
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
    /// The partner's id in nesca: 1 to 32 lower-case letters, digits or '-'
    #[arg(long)]
    id: String,
    /// The operator's legal name (subject organizationName), 1 to 128 characters
    #[arg(long)]
    name: String,
    /// The operator's ESHS licence number (subject serialNumber), 1 to 64 printable characters
    #[arg(long)]
    license_no: String,
}

#[derive(Args)]
pub(crate) struct IssueCertArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// Id of the registered partner the certificate is for
    #[arg(long)]
    partner: String,
    /// role (clientAuth) or secure-comm (clientAuth and serverAuth)
    #[arg(long)]
    kind: String,
    /// PKCS#10 certification request, PEM or DER
    #[arg(long)]
    csr: PathBuf,
    /// The device or system name (subject commonName), 1 to 64 characters
    #[arg(long)]
    common_name: String,
    /// Validity in days (default: profile.partner.validity_days)
    #[arg(long, allow_negative_numbers = true, value_parser = parse_days)]
    validity_days: Option<u32>,
    /// Where to write the certificate (PEM)
    #[arg(long)]
    out: PathBuf,
}

/// Whole days, at least 1 (the profile maximum is checked once the configuration is read).
fn parse_days(s: &str) -> std::result::Result<u32, String> {
    match s.parse::<i64>() {
        Ok(d) if d >= 1 => u32::try_from(d).map_err(|_| "is too large".to_string()),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) => Err("must be a whole number of days".into()),
    }
}

fn to_json(p: &PartnerRecord) -> serde_json::Value {
    json!({
        "id": p.id.as_str(),
        "name": p.name,
        "license_no": p.license_no,
        "created_at": rfc3339(p.created_at),
        "active": p.active,
    })
}

pub(crate) fn add(a: AddArgs) -> Result<()> {
    // Parse at the edge: a bad field is refused before the configuration or store is read.
    let id = PartnerId::parse(&a.id)?;
    let name = parse_partner_name(&a.name)?;
    let license_no = parse_license_no(&a.license_no)?;
    let cfg = Loaded::read(&a.config)?;
    let partners = Partners::new(wiring::open_existing_store(&cfg)?);
    let now = crate::wiring::clock().now_unix();
    let record = partners.register(&Principal::HostOperator, id, name, license_no, now)?;
    emit(&format!("{}\n", to_json(&record)))
}

#[derive(Args)]
pub(crate) struct DeactivateArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The partner's id
    #[arg(long)]
    id: String,
}

/// No new certificates for the partner; its existing ones are revoked one by one.
pub(crate) fn deactivate(a: DeactivateArgs) -> Result<()> {
    let id = PartnerId::parse(&a.id)?;
    let cfg = Loaded::read(&a.config)?;
    let partners = Partners::new(wiring::open_existing_store(&cfg)?);
    let now = crate::wiring::clock().now_unix();
    let record = partners.deactivate(&Principal::HostOperator, &id, now)?;
    emit(&format!("{}\n", to_json(&record)))
}

pub(crate) fn list(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let partners = Partners::new(wiring::open_existing_store(&cfg)?);
    let mut text = String::new();
    for p in partners.list()? {
        text.push_str(&to_json(&p).to_string());
        text.push('\n');
    }
    emit(&text)
}

pub(crate) fn issue_cert(a: IssueCertArgs) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;

    // Parse at the edge: every refusal here happens before the store or the HSM is touched.
    let id = PartnerId::parse(&a.partner).map_err(|_| unknown_partner(&a.partner))?;
    let kind = PartnerCertKind::parse(&a.kind)?;
    let common_name = parse_common_name(&a.common_name)?;
    let csr_bytes = std::fs::read(&a.csr).map_err(CliError::io("cannot read CSR", &a.csr))?;
    let csr = VerifiedCsr::parse(&csr_bytes)?;
    let profile = cfg.partner_profile(kind);
    let validity_days = a.validity_days.unwrap_or(profile.default_validity_days());

    // The registration authority approves (a registered, active partner; validity within the
    // profile) before the token is opened.
    let store = wiring::open_existing_store(&cfg)?;
    let partners = Partners::new(store.clone());
    let approved = partners.approve_certificate(&id, profile, &common_name, csr, validity_days)?;

    // Claimed now: an unwritable --out must not leave a certificate nobody received.
    let out = OutFile::claim("out", &a.out)?;

    let issuance = wiring::open_issuance(&cfg, store)?;
    let issued = partners.issue_certificate(
        &Principal::HostOperator,
        &issuance.engine,
        &issuance.ca,
        approved,
    )?;
    out.deliver_certificate(&issued.cert_der)?;
    emit(&format!("{}\n", issued.serial))
}

fn unknown_partner(id: &str) -> CliError {
    nesca_ra::partners::unknown_partner(id).into()
}
