//! Turning a loaded configuration into open parts: the store, the HSM, the issuing CA.
//! No policy here: that lives in ca-core.

use std::sync::Arc;

use ca_core::engine::{Engine, SigningCa};
use ca_core::store::{SqliteStore, Store};
use ca_core::SystemClock;
use hsm::{Hsm, HsmConfig};

use crate::config::Loaded;
use crate::error::{CliError, Result};

/// Opens an existing store (commands other than `init` never create one).
pub fn open_existing_store(cfg: &Loaded) -> Result<Arc<SqliteStore>> {
    let path = cfg.path(&cfg.raw.store.sqlite);
    if !path.is_file() {
        return Err(CliError::config(
            "store.sqlite",
            format!(
                "database {} does not exist; run `nesca init` first",
                path.display()
            ),
        ));
    }
    Ok(Arc::new(SqliteStore::open(&path)?))
}

/// Opens the token and logs in.
pub fn open_hsm(cfg: &Loaded) -> Result<Hsm> {
    let pin = cfg.pin()?;
    Ok(Hsm::open(HsmConfig {
        module: cfg.raw.hsm.module.clone(),
        token_label: cfg.raw.hsm.token_label.clone(),
        pin,
        pool_size: cfg.raw.hsm.sessions,
        softhsm_conf: cfg.raw.hsm.softhsm_conf.as_ref().map(|p| cfg.path(p)),
    })?)
}

/// Everything needed to issue.
pub struct Issuance {
    pub engine: Engine,
    pub ca: SigningCa,
}

/// Loads the issuing CA from the store and its key from the token.
pub fn open_issuance(cfg: &Loaded, store: Arc<SqliteStore>) -> Result<Issuance> {
    let record = store.ca(&cfg.issuing_id)?.ok_or_else(|| {
        CliError::config(
            "ca.id",
            format!(
                "CA \"{}\" is not in the store; run `nesca init` first",
                cfg.issuing_id
            ),
        )
    })?;
    let hsm = open_hsm(cfg)?;
    let signer = hsm.find_key(&record.key_label)?;
    let ca = SigningCa::new(
        cfg.issuing_id.clone(),
        record.cert_der,
        Arc::new(signer),
        Some(cfg.urls.clone()),
    )?;
    let store: Arc<dyn Store> = store;
    Ok(Issuance {
        engine: Engine::new(store, Arc::new(SystemClock)),
        ca,
    })
}
