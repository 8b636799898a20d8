//! Turning a loaded configuration into open parts: the store, the HSM, the issuing CA.
//! No policy here: that lives in the registration authority (`ra`).

use std::sync::Arc;

use ca_core::engine::{Engine, SigningCa};
use ca_core::store::{prelude::*, PgOptions, PgStore, SqliteStore};
use ca_core::SystemClock;
use hsm::{Hsm, HsmConfig};

use crate::config::{Loaded, StoreChoice};
use crate::error::{CliError, Result};

/// The clock every part of the binary reads. Built with the `test-clock` feature (tests
/// only), `NESCA_TEST_CLOCK_OFFSET_SECONDS` moves it.
pub(crate) fn clock() -> Arc<dyn ca_core::Clock> {
    #[cfg(feature = "test-clock")]
    if let Some(offset_seconds) = std::env::var("NESCA_TEST_CLOCK_OFFSET_SECONDS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        tracing::warn!(offset_seconds, "test clock: time is moved (a test build)");
        return Arc::new(ca_core::clock::OffsetClock { offset_seconds });
    }
    Arc::new(SystemClock)
}

/// Opens an existing store (commands other than `init` never create one): the SQLite file
/// must exist; a PostgreSQL database is migrated if it needs to be (`nesca init` fills it).
pub(crate) fn open_existing_store(cfg: &Loaded) -> Result<Arc<dyn Store>> {
    if let StoreChoice::Sqlite(path) = &cfg.store {
        if !path.is_file() {
            return Err(CliError::config(
                "store.sqlite",
                format!(
                    "database {} does not exist; run `nesca init` first",
                    path.display()
                ),
            ));
        }
    }
    open_store(cfg)
}

/// Opens (creating if needed) the configured store. SQLite refuses a database file, WAL or
/// directory that group or others may reach; that refusal names `store.sqlite`.
pub(crate) fn open_store(cfg: &Loaded) -> Result<Arc<dyn Store>> {
    Ok(match open_backend(cfg)? {
        StoreBackend::Sqlite(store) => store,
        StoreBackend::Postgres(store) => store,
    })
}

/// The configured store as its own type, for what only one backend does (benchmark fills).
pub(crate) enum StoreBackend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

/// Opens the configured store as its own type.
pub(crate) fn open_backend(cfg: &Loaded) -> Result<StoreBackend> {
    match &cfg.store {
        StoreChoice::Sqlite(path) => SqliteStore::open(path)
            .map(|s| StoreBackend::Sqlite(Arc::new(s)))
            .map_err(store_refusal),
        StoreChoice::Postgres { url, tls, pool } => {
            let options = PgOptions {
                url: url.clone(),
                password: cfg.postgres_password()?,
                tls: tls.clone(),
                pool_size: *pool,
            };
            PgStore::open(&options)
                .map(|s| StoreBackend::Postgres(Arc::new(s)))
                .map_err(crate::config::store_option_refused)
        }
    }
}

/// A store file or directory open to others is a configuration refusal of `store.sqlite`.
fn store_refusal(e: ca_core::CaError) -> CliError {
    match e {
        e @ ca_core::CaError::Exposed { .. } => CliError::config("store.sqlite", e.to_string()),
        other => other.into(),
    }
}

/// Opens the token and logs in.
pub(crate) fn open_hsm(cfg: &Loaded) -> Result<Hsm> {
    let pin = cfg.pin()?;
    Ok(Hsm::open(HsmConfig {
        module: cfg.raw.hsm.module.clone(),
        token_label: cfg.raw.hsm.token_label.clone(),
        pin,
        pool_size: cfg.raw.hsm.sessions,
        ocsp_pool_size: cfg.raw.hsm.ocsp_sessions,
        softhsm_conf: cfg.raw.hsm.softhsm_conf.as_ref().map(|p| cfg.path(p)),
    })?)
}

/// Everything needed to issue.
pub(crate) struct Issuance {
    pub engine: Engine,
    pub ca: SigningCa,
    /// The token the CA key is on (card keys are generated there too).
    pub hsm: Hsm,
}

/// The generation of the configured issuing CA (`ca.id`) that issues now: the newest of its
/// key rollovers (`nesca ca rollover`), or `ca.id` itself before any. Refused when its root
/// revoked it (`nesca ca revoke`): nothing is issued under a revoked CA.
pub(crate) fn current_issuing(cfg: &Loaded, store: &dyn Store) -> Result<ca_core::store::CaRecord> {
    let current = ca_core::store::generations(store, &cfg.issuing_id)?
        .pop()
        .ok_or_else(|| {
            CliError::config(
                "ca.id",
                format!(
                    "CA \"{}\" is not in the store; run `nesca init` first",
                    cfg.issuing_id
                ),
            )
        })?;
    if is_revoked(store, &current)? {
        return Err(CliError::config(
            "ca.id",
            format!(
                "the issuing CA \"{}\" is revoked: nothing is issued under it (roll over to a new generation: nesca ca rollover)",
                current.id
            ),
        ));
    }
    Ok(current)
}

/// Whether the root revoked this CA (`nesca_ra::ca_status`).
pub(crate) fn is_revoked(store: &dyn Store, ca: &ca_core::store::CaRecord) -> Result<bool> {
    Ok(nesca_ra::ca_status::is_revoked(store, ca)?)
}

/// A root as a signer: its certificate from the store, its key from the token (refused when
/// the key is not there: an offline root signs on its own token).
pub(crate) fn root_signing_ca(
    cfg: &Loaded,
    hsm: &Hsm,
    root: &ca_core::store::CaRecord,
) -> Result<SigningCa> {
    if !hsm.has_key(&root.key_label)? {
        return Err(CliError::config(
            "ca.root_id",
            format!(
                "the root's key \"{}\" is not on this token: an offline root signs on its own token (`nesca root`)",
                root.key_label
            ),
        ));
    }
    Ok(SigningCa::new(
        root.id.clone(),
        root.cert_der.clone(),
        Arc::new(hsm.find_key(&root.key_label)?),
        Some(urls_of(cfg, &root.id)?),
    )?)
}

/// The URLs certificates of CA `id` carry (its own CRL and certificate, the OCSP responder).
pub(crate) fn urls_of(cfg: &Loaded, id: &ca_core::IssuerId) -> Result<ca_core::profile::CaUrls> {
    Ok(ca_core::profile::CaUrls::new(&cfg.raw.ca.public_url, id)?)
}

/// Loads the issuing CA's current generation from the store and its key from the token.
pub(crate) fn open_issuance(cfg: &Loaded, store: Arc<dyn Store>) -> Result<Issuance> {
    let record = current_issuing(cfg, store.as_ref())?;
    let hsm = open_hsm(cfg)?;
    let signer = hsm.find_key(&record.key_label)?;
    let ca = SigningCa::new(
        record.id.clone(),
        record.cert_der,
        Arc::new(signer),
        Some(urls_of(cfg, &record.id)?),
    )?;
    Ok(Issuance {
        engine: Engine::new(store, clock()),
        ca,
        hsm,
    })
}

/// An issuing CA as the public endpoints need it: its certificate, its key (CRLs) and its
/// delegated OCSP signer.
pub(crate) struct ServedCa {
    pub record: ca_core::store::CaRecord,
    pub cert: x509_cert::Certificate,
    pub ca_signer: Arc<dyn ca_core::engine::TbsSigner>,
    pub ocsp_signer: Arc<dyn ca_core::engine::TbsSigner>,
    pub ocsp_cert_der: Vec<u8>,
}

/// A CA's certificate as the store holds it, decoded.
fn ca_certificate(record: &ca_core::store::CaRecord) -> Result<x509_cert::Certificate> {
    use der::Decode;
    x509_cert::Certificate::from_der(&record.cert_der).map_err(|e| {
        CliError::config(
            "store",
            format!("certificate of CA \"{}\" does not decode: {e}", record.id),
        )
    })
}

/// Loads every issuing CA of the store with its keys from the token.
pub(crate) fn served_cas(store: &dyn Store, hsm: &Hsm) -> Result<Vec<ServedCa>> {
    let mut out = Vec::new();
    for record in store.cas()? {
        if record.role != ca_core::store::CaRole::Issuing {
            continue;
        }
        let cert = ca_certificate(&record)?;
        let (Some(label), Some(ocsp_cert_der)) =
            (record.ocsp_key_label.clone(), record.ocsp_cert_der.clone())
        else {
            return Err(CliError::config(
                "store",
                format!("CA \"{}\" has no delegated OCSP signer", record.id),
            ));
        };
        // A generation whose CA key is gone from the token (destroyed after its last
        // certificate expired, or a token restored from an older backup) is not served; the
        // others are.
        let ca_signer = match hsm.find_key(&record.key_label) {
            Ok(k) => Arc::new(k),
            Err(e @ hsm::HsmError::KeyNotFound { .. }) => {
                tracing::error!(ca = %record.id, error = %e, "CA not served: its key is not on the token");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let ocsp_signer = Arc::new(hsm.find_key(&label)?.on_ocsp_sessions());
        out.push(ServedCa {
            record,
            cert,
            ca_signer,
            ocsp_signer,
            ocsp_cert_der,
        });
    }
    if out.is_empty() {
        return Err(CliError::config(
            "store",
            "no issuing CA in the store; run `nesca init` first",
        ));
    }
    Ok(out)
}

/// The chain handed out with an issued certificate: the issuing CA's certificate, then the
/// configured root's (DER).
pub(crate) fn chain_der(
    cfg: &Loaded,
    store: &dyn Store,
    issuing_cert_der: Vec<u8>,
) -> Result<Vec<Vec<u8>>> {
    let mut chain = vec![issuing_cert_der];
    chain.extend(store.ca(&cfg.root_id)?.map(|r| r.cert_der));
    Ok(chain)
}

/// The configured issuing CA's current generation (`current_issuing`) among the served ones.
pub(crate) fn configured_ca<'a>(
    cfg: &Loaded,
    store: &dyn Store,
    cas: &'a [ServedCa],
) -> Result<&'a ServedCa> {
    let current = current_issuing(cfg, store)?;
    cas.iter()
        .find(|c| c.record.id == current.id)
        .ok_or_else(|| {
            CliError::config(
                "ca.id",
                format!("CA \"{}\" is not in the store", current.id),
            )
        })
}

/// Every generation of the configured issuing CA among the served ones, oldest first, but
/// those their root revoked: the certificates of all of them stay trusted where nesca checks
/// its own (partners' TLS); a revoked CA's are not.
pub(crate) fn configured_generations<'a>(
    cfg: &Loaded,
    store: &dyn Store,
    cas: &'a [ServedCa],
) -> Result<Vec<&'a ServedCa>> {
    let mut out = Vec::new();
    for g in ca_core::store::generations(store, &cfg.issuing_id)? {
        if is_revoked(store, &g)? {
            continue;
        }
        out.extend(cas.iter().find(|c| c.record.id == g.id));
    }
    Ok(out)
}

/// The key label nesca records for a root whose key is offline (`nesca ca import-cert`): no
/// label nesca generates has a `:`, so nothing on the token ever signs as that root.
pub(crate) const OFFLINE_ROOT_PREFIX: &str = "offline:";

/// The root CAs' CRL issuers (the ARL: full CRLs only, `[crl] root_every_seconds` and
/// `root_validity_seconds`), each signed with the root's key from the token. The entries are
/// the issuing-CA certificates the root revoked.
pub(crate) fn root_crl_issuers(
    cfg: &Loaded,
    store: Arc<dyn Store>,
    hsm: &Hsm,
) -> Result<Vec<crl::CrlIssuer>> {
    let c = &cfg.raw.crl;
    let secs = std::time::Duration::from_secs;
    let schedule =
        crl::CrlSchedule::full_only(secs(c.root_every_seconds), secs(c.root_validity_seconds));
    schedule.validate().map_err(|e| match e {
        crl::CrlError::Schedule { field, rule } => CliError::config(
            if field == "full_every" {
                "crl.root_every_seconds"
            } else {
                "crl.root_validity_seconds"
            },
            rule,
        ),
        other => other.into(),
    })?;
    let mut out = Vec::new();
    for record in store.cas()? {
        // An offline root signs its CRL on its own token (`nesca root crl`; published here
        // with `nesca ca import-crl`).
        if record.role != ca_core::store::CaRole::Root
            || record.key_label.starts_with(OFFLINE_ROOT_PREFIX)
        {
            continue;
        }
        let cert = ca_certificate(&record)?;
        out.push(crl::CrlIssuer {
            source: Arc::new(crate::serve::crl_source::StoreCrlSource::new(store.clone())),
            issuer: record.id.clone(),
            issuer_cert: cert,
            signer: Arc::new(hsm.find_key(&record.key_label)?),
            publisher: crl::Publisher::new(cfg.path(&c.dir))?,
            schedule,
            clock: clock(),
            delta_url: None,
        });
    }
    Ok(out)
}

/// The CRL issuer of one CA, as configured.
pub(crate) fn crl_issuer(
    cfg: &Loaded,
    store: Arc<dyn Store>,
    ca: &ServedCa,
) -> Result<crl::CrlIssuer> {
    let c = &cfg.raw.crl;
    let secs = std::time::Duration::from_secs;
    let schedule = crl::CrlSchedule {
        full_every: secs(c.full_every_seconds),
        delta_every: secs(c.delta_every_seconds),
        full_validity: secs(c.full_validity_seconds),
        delta_validity: secs(c.delta_validity_seconds),
        deltas: true,
    };
    schedule.validate()?;
    let urls = ca_core::profile::CaUrls::new(&cfg.raw.ca.public_url, &ca.record.id)?;
    Ok(crl::CrlIssuer {
        source: Arc::new(crate::serve::crl_source::StoreCrlSource::new(store)),
        issuer: ca.record.id.clone(),
        issuer_cert: ca.cert.clone(),
        signer: ca.ca_signer.clone(),
        publisher: crl::Publisher::new(cfg.path(&c.dir))?,
        schedule,
        clock: clock(),
        delta_url: Some(urls.delta_crl),
    })
}
