//! The production line's wiring: `[production]` read into the registration authority's
//! [`Production`] (which decides and issues), and the card packages written as JSON files to
//! `[production] package_dir` for the card personalisation system.

use std::path::PathBuf;
use std::sync::Arc;

use ca_core::engine::{Engine, SigningCa};
use ca_core::store::Store;
use nesca_ra::nes::NesIssuance;
use nesca_ra::production::{CardKeys, CardPackage, CardPackages, Production, ProductionReport};
use serde_json::json;

use crate::commands::cert_pem;
use crate::error::Result;

/// The production line and where its packages go.
pub(crate) struct ProductionLine {
    production: Production,
    packages: PackageDir,
}

impl ProductionLine {
    /// One pass: produces what is due and writes the packages not written yet.
    pub(crate) fn run_due(&self, limit: u32) -> Result<ProductionReport> {
        Ok(self.production.run_due(limit, &self.packages)?)
    }
}

/// Card packages as `<package_dir>/<pre-application>.json`, written atomically.
struct PackageDir(PathBuf);

impl CardPackages for PackageDir {
    fn deliver(&self, p: &CardPackage) -> nesca_ra::Result<()> {
        let package = json!({
            "v": 1,
            "application": p.application,
            "serial": p.serial.to_hex(),
            "holder": { "tckn": p.holder_tckn.as_str(), "given_name": p.holder_given_name, "surname": p.holder_surname },
            "delivery_address": p.delivery_address,
            "certificate_pem": cert_pem(&p.certificate_der),
            "chain_pem": p.chain_der.iter().map(|c| cert_pem(c)).collect::<Vec<_>>(),
            "card_key": if p.hsm_generated { "hsm-wrapped" } else { "card-bureau-csr" },
            "wrapped_key": p.wrapped_key,
        });
        let text = serde_json::to_vec_pretty(&package).map_err(|e| nesca_ra::RaError::Write {
            dir: self.0.clone(),
            source: e.into(),
        })?;
        nesca_ra::outbox::write_atomically(&self.0, &format!("{}.json", p.application), &text)
    }
}

/// The production line as `[production]` configures it; `None` when the section is absent.
pub(crate) fn configured(
    cfg: &crate::config::Loaded,
    store: Arc<dyn Store>,
    ca: SigningCa,
    hsm: hsm::Hsm,
) -> Result<Option<ProductionLine>> {
    use crate::error::CliError;
    let Some(p) = &cfg.raw.production else {
        return Ok(None);
    };
    let keys = match p.key_source.as_str() {
        "hsm" => CardKeys::Hsm {
            algorithm: p.key_algorithm.parse().map_err(|e: hsm::HsmError| {
                CliError::config("production.key_algorithm", e.to_string())
            })?,
            transport_key: ca_core::transport_key::TransportKeyId::parse(
                "production.transport_key",
                p.transport_key.as_deref().unwrap_or(""),
            )?,
        },
        _ => CardKeys::CardBureauCsr,
    };
    let chain_der =
        crate::wiring::chain_der(cfg, store.as_ref(), ca.cert_der.clone().unwrap_or_default())?;
    // The configured transport key must be registered, not withdrawn and valid now; each
    // pass checks it again (`Production::run_due`).
    let line = ProductionLine {
        production: Production {
            issuance: NesIssuance {
                engine: Engine::new(store.clone(), crate::wiring::clock()),
                store,
                ca,
                nes: cfg.nes.clone(),
                hsm,
                wrap_policy: cfg.wrap_policy(),
            },
            keys,
            chain_der,
        },
        packages: PackageDir(cfg.path(&p.package_dir)),
    };
    line.production.check_transport_key()?;
    Ok(Some(line))
}
