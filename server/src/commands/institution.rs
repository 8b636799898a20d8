//! `nesca institution add|list`: institutions that get NES for their staff through the
//! institutional channel, each with its one e-İmza officer.

use std::path::PathBuf;

use ca_core::institution::{InstitutionId, InstitutionRecord, Payer, TaxNo};
use ca_core::store::prelude::*;
use ca_core::{rfc3339, Tckn};
use clap::Args;
use serde_json::json;

use super::{emit, pem_or_der};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::{wiring, ConfigArg};

/// The longest institution name.
const MAX_NAME_CHARS: usize = 256;

#[derive(Args)]
pub struct AddArgs {
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

fn to_json(i: &InstitutionRecord) -> serde_json::Value {
    use sha2::Digest as _;
    json!({
        "id": i.id.as_str(),
        "name": i.name,
        "tax_no": i.tax_no.as_str(),
        "payer": i.payer.as_str(),
        "officer_tckn": i.officer_tckn,
        "officer_cert_sha256": hex::encode(sha2::Sha256::digest(&i.officer_cert_der)),
        "created_at": rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(i.created_at.max(0) as u64)),
        "active": i.active,
    })
}

pub fn add(a: AddArgs) -> Result<()> {
    // Parse at the edge: a bad field is refused before the configuration or store is read.
    let id = InstitutionId::parse(&a.id)?;
    let name = a.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(CliError::Argument {
            field: "name",
            rule: format!("must be 1 to {MAX_NAME_CHARS} characters, no control characters"),
        });
    }
    let tax_no = TaxNo::parse(&a.tax_no)?;
    let payer = Payer::parse(&a.payer)?;
    let officer = Tckn::parse(&a.officer_tckn).map_err(|e| CliError::Argument {
        field: "officer-tckn",
        rule: e.to_string(),
    })?;
    let officer_cert_der = read_certificate(&a.officer_cert)?;
    // A certificate that names a person must name the officer (a NES writes PNOTR-<TCKN>).
    if let Ok(Some(serial_number)) =
        nesca_pkix::subject::subject_attribute(&officer_cert_der, "2.5.4.5")
    {
        let digits: String = serial_number.chars().filter(char::is_ascii_digit).collect();
        if digits.len() == 11 && digits != officer.as_str() {
            return Err(CliError::Argument {
                field: "officer-cert",
                rule: "its subject serialNumber names another person than --officer-tckn".into(),
            });
        }
    }
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let now = ca_core::clock::unix_seconds(crate::wiring::clock().now());
    let record = InstitutionRecord {
        id,
        name: name.to_owned(),
        tax_no,
        payer,
        officer_tckn: officer.to_string(),
        officer_cert_der,
        created_at: now,
        active: true,
    };
    store.add_institution(record.clone(), "cli", now)?;
    emit(&format!("{}\n", to_json(&record)))
}

pub fn list(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let mut text = String::new();
    for i in store.institutions()? {
        text.push_str(&to_json(&i).to_string());
        text.push('\n');
    }
    emit(&text)
}
