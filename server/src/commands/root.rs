//! `nesca root …`: an offline root CA on a token and store of its own (its own nesca.toml),
//! for the key ceremony — create the root, sign an issuing CA's request, sign the root's CRL,
//! revoke an issuing CA. The online CA (`init --external-root`, `ca import-cert`,
//! `ca import-crl`) never holds the root's key.

use std::path::PathBuf;
use std::sync::Arc;

use ca_core::store::Store;
use ca_core::{rfc3339, Principal};
use clap::Args;
use serde_json::json;

use super::{cert_pem, emit, OutFile};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::wiring;

#[derive(Args)]
pub(crate) struct RootInitArgs {
    /// A demo root (`--demo --dir`), or the root's own nesca.toml (`--config`: its token and
    /// store); `--public-url` is what the certificates the root signs name
    #[command(flatten)]
    target: super::init::InitTarget,
}

#[derive(Args)]
pub(crate) struct RootSignArgs {
    /// The root's nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The issuing CA's certification request (PEM or DER), as `init --external-root` wrote it
    #[arg(long)]
    csr: PathBuf,
    /// Where to write the issuing CA's certificate (PEM); must not exist
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub(crate) struct RootCrlArgs {
    /// The root's nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// Where to write the root's CRL (DER); copy it to the online CA (`nesca ca import-crl`)
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub(crate) struct RootRevokeArgs {
    /// The root's nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// Serial number of the issuing CA's certificate, hexadecimal
    #[arg(long)]
    serial: String,
    /// RFC 5280 reason: cACompromise, superseded, cessationOfOperation, affiliationChanged
    #[arg(long)]
    reason: String,
}

/// Creates the root alone, on the token its configuration names (or a demo's own).
pub(crate) fn init(a: RootInitArgs) -> Result<()> {
    super::init::init(a.target, super::init::Scope::RootOnly)
}

/// Certifies an issuing CA's key (its request's proof of possession checked) under the name
/// its request gives, with the issuing-CA profile; the certificate is recorded in the root's
/// store for its CRL, and written to `--out`.
pub(crate) fn sign(a: RootSignArgs) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let out = OutFile::claim("out", &a.out)?;
    let bytes = std::fs::read(&a.csr).map_err(CliError::io("cannot read the request", &a.csr))?;
    let csr = ca_core::VerifiedCsr::parse(&bytes)?;
    if csr.subject.0.is_empty() {
        return Err(CliError::Argument {
            field: "csr",
            rule: "names no subject: an issuing CA is certified under its name".into(),
        });
    }
    let store: Arc<dyn Store> = wiring::open_existing_store(&cfg)?;
    let root = store.ca(&cfg.root_id)?.ok_or_else(|| {
        CliError::config(
            "ca.root_id",
            format!(
                "no root \"{}\" in the store; run `nesca root init` first",
                cfg.root_id
            ),
        )
    })?;
    // A CA under the root's own name would pass for the root in every name-chained path.
    let root_name = {
        use der::Decode as _;
        x509_cert::Certificate::from_der(&root.cert_der)
            .map(|c| c.tbs_certificate.subject)
            .map_err(|e| CliError::config("store", format!("the root's certificate: {e}")))?
    };
    if csr.subject == root_name {
        return Err(CliError::Argument {
            field: "csr",
            rule: format!(
                "names the root itself (\"{root_name}\"): an issuing CA needs a name of its own"
            ),
        });
    }
    let hsm = wiring::open_hsm(&cfg)?;
    let root_ca = wiring::root_signing_ca(&cfg, &hsm, &root)?;
    let engine = ca_core::engine::Engine::new(store, wiring::clock());
    let issued = ca_core::bootstrap::issue_issuing_ca(
        &engine,
        &root_ca,
        &csr.subject,
        csr.public_key,
        cfg.raw.ca.issuing_validity_days,
        &Principal::HostOperator,
    )?;
    out.commit(cert_pem(&issued.cert_der).as_bytes())?;
    let line = json!({
        "serial": issued.serial.to_hex(),
        "subject": csr.subject.to_string(),
        "out": a.out.display().to_string(),
    });
    emit(&format!("{line}\n"))
}

/// The root's CRL now (`nesca crl --ca ROOT`).
pub(crate) fn crl(a: RootCrlArgs) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    super::crl::run_for(&cfg, Some(cfg.root_id.to_string()), false, &a.out)
}

/// Revokes an issuing CA's certificate the root signed; its next CRL lists it.
pub(crate) fn revoke(a: RootRevokeArgs) -> Result<()> {
    let serial = ca_core::Serial::parse_hex(&a.serial).map_err(|e| CliError::Argument {
        field: "serial",
        rule: e.rule(),
    })?;
    let reason: ca_core::lifecycle::RevocationReason =
        a.reason
            .parse()
            .map_err(|e: ca_core::CaTypesError| CliError::Argument {
                field: "reason",
                rule: e.rule(),
            })?;
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let o = nesca_ra::lifecycle::Lifecycle::new(store, wiring::clock()).revoke_ca(
        nesca_ra::lifecycle::CaRevocation {
            serial,
            reason,
            request_id: ca_core::lifecycle::RequestId::random(),
            actor: Principal::HostOperator,
        },
    )?;
    let line = json!({
        "serial": o.serial.to_hex(),
        "status": o.status.as_str(),
        "reason": reason.name(),
        "at": rfc3339(o.at),
    });
    emit(&format!("{line}\n"))
}
