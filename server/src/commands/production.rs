//! `nesca production run|csr`: produce approved institutional applications now, and hand in
//! the card bureau's CSR of one.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{emit, pem_or_der, read_limited};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::{wiring, ConfigArg};

/// Applications one pass takes at most.
const PASS_LIMIT: u32 = 10_000;

#[derive(Args)]
pub(crate) struct CsrArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The approved application (pre-application id, `pa-…`)
    #[arg(long)]
    id: String,
    /// The card bureau's PKCS#10 CSR for it (PEM or DER)
    #[arg(long)]
    csr: PathBuf,
}

/// Produces what is due once; prints what it did as one JSON object.
pub(crate) fn run(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let issuance = wiring::open_issuance(&cfg, store.clone())?;
    let production = crate::production::configured(&cfg, store, issuance.ca, issuance.hsm)?
        .ok_or_else(|| {
            CliError::config(
                "production",
                "add a [production] section to produce applications",
            )
        })?;
    let report = production.run_due(PASS_LIMIT)?;
    emit(&format!("{}\n", json!(report)))
}

/// Checks the CSR (its signature, its key) and keeps it with the approved application; the
/// next production pass issues the certificate.
pub(crate) fn csr(a: CsrArgs) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let der = pem_or_der(
        "csr",
        read_limited("csr", &a.csr, super::applicant::MAX_FILE_BYTES)?,
        &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"],
    )?;
    let enrollments = nesca_ra::enrollment::Enrollments::new(store, wiring::clock());
    enrollments.receive_card_csr(&a.id, der, &ca_core::Principal::HostOperator)?;
    emit(&format!("{}\n", json!({ "id": a.id, "card_csr": true })))
}
