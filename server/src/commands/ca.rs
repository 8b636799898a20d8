//! `nesca ca …`: the CA's own certificates — `list` (each CA and each delegated OCSP signer it
//! has had), `renew-ocsp-signer` (`crate::ocsp_signer`), `revoke` (an issuing CA, by its root),
//! `rollover` (a new generation of an issuing CA), and, with an offline root, `import-cert` and
//! `import-crl`.

use std::path::PathBuf;
use std::sync::Arc;

use ca_core::store::{CaRecord, CaRole, Store};
use ca_core::{rfc3339, IssuerId, Principal, UnixTime};
use clap::Args;
use serde_json::json;

use super::emit;
use crate::config::Loaded;
use crate::error::Result;
use crate::ocsp_signer;
use crate::{wiring, ConfigArg};

#[derive(Args)]
pub(crate) struct RenewOcspSignerArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The issuing CA whose delegated OCSP signer is renewed (its id, as `ca list` prints it)
    #[arg(long)]
    ca: String,
}

#[derive(Args)]
pub(crate) struct RevokeArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The issuing CA whose certificate its root revokes (its id, as `ca list` prints it)
    #[arg(long)]
    ca: String,
    /// RFC 5280 reason: cACompromise, superseded, cessationOfOperation, affiliationChanged
    #[arg(long)]
    reason: String,
    /// The caller's id for this request: the same id again answers with the first outcome
    /// (default: a fresh random id)
    #[arg(long)]
    request_id: Option<String>,
}

/// The validity of a certificate as JSON fields (null when it does not decode).
fn validity_json(cert_der: &[u8]) -> (serde_json::Value, serde_json::Value) {
    match ocsp_signer::validity(cert_der) {
        Some((from, to)) => (rfc3339(from).into(), rfc3339(to).into()),
        None => (serde_json::Value::Null, serde_json::Value::Null),
    }
}

/// A CA's status at `now`: `active` within its validity, else `expired` (or `not-yet-valid`).
fn ca_status(cert_der: &[u8], now: UnixTime) -> &'static str {
    match ocsp_signer::validity(cert_der) {
        Some((from, _)) if now < from => "not-yet-valid",
        Some((_, to)) if now > to => "expired",
        Some(_) => "active",
        None => "unreadable",
    }
}

fn ca_json(store: &dyn Store, ca: &CaRecord, now: UnixTime) -> Result<serde_json::Value> {
    let (not_before, not_after) = validity_json(&ca.cert_der);
    // A CA certificate its root revoked is `revoked`, whatever its dates.
    let status = if wiring::is_revoked(store, ca)? {
        "revoked"
    } else {
        ca_status(&ca.cert_der, now)
    };
    Ok(json!({
        "kind": "ca",
        "id": ca.id.as_str(),
        "role": ca.role.as_str(),
        "key_label": ca.key_label,
        "not_before": not_before,
        "not_after": not_after,
        "status": status,
        "supersedes": ca.supersedes.as_ref().map(IssuerId::as_str),
    }))
}

/// Every CA and every delegated OCSP signer each has had, one JSON object a line: the CA
/// (`kind` `ca`), then its signers oldest first (`kind` `ocsp-signer`, `status` `current`
/// for the one that signs, `previous` for one still valid, `expired`).
pub(crate) fn list(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let now = wiring::clock().now_unix();
    let mut text = String::new();
    for ca in store.cas()? {
        text.push_str(&ca_json(store.as_ref(), &ca, now)?.to_string());
        text.push('\n');
        if ca.role != CaRole::Issuing {
            continue;
        }
        for signer in store.ocsp_signers(&ca.id)? {
            let current = ca.ocsp_key_label.as_deref() == Some(signer.key_label.as_str());
            let status = match (current, ca_status(&signer.cert_der, now)) {
                (_, "expired") => "expired",
                (true, _) => "current",
                (false, _) => "previous",
            };
            let (not_before, not_after) = validity_json(&signer.cert_der);
            let line = json!({
                "kind": "ocsp-signer",
                "ca": ca.id.as_str(),
                "key_label": signer.key_label,
                "not_before": not_before,
                "not_after": not_after,
                "since": rfc3339(signer.since),
                "status": status,
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
    }
    emit(&text)
}

/// Renews the delegated OCSP signer of one issuing CA now, whatever its health; prints the
/// new signer. A running `nesca serve` or `nesca ocsp` takes it up at its next signer check
/// (`[ocsp] signer_check_seconds`).
pub(crate) fn renew_ocsp_signer(a: RenewOcspSignerArgs) -> Result<()> {
    let id = IssuerId::parse(&a.ca).map_err(|e| crate::error::CliError::config("ca", e.rule()))?;
    let cfg = Loaded::read(&a.config)?;
    let store: Arc<dyn Store> = wiring::open_existing_store(&cfg)?;
    let hsm = wiring::open_hsm(&cfg)?;
    let before = ocsp_signer::issuing_ca(store.as_ref(), &id)?;
    let renewal = ocsp_signer::Renewal::of(&cfg)?;
    let was = renewal.health_of(&before, wiring::clock().now_unix());
    let renewed = renewal.renew(&store, &hsm, &id, &Principal::HostOperator)?;
    let (not_before, not_after) = validity_json(&renewed.cert_der);
    let line = json!({
        "ca": id.as_str(),
        "key_label": renewed.key_label,
        "not_before": not_before,
        "not_after": not_after,
        "previous_key_label": before.ocsp_key_label,
        "previous_status": was.as_str(),
    });
    emit(&format!("{line}\n"))
}

/// Revokes an issuing CA's certificate (its root's decision): the root's CRL lists it from
/// then on. Prints the outcome.
pub(crate) fn revoke(a: RevokeArgs) -> Result<()> {
    let id = IssuerId::parse(&a.ca).map_err(|e| crate::error::CliError::config("ca", e.rule()))?;
    let reason: ca_core::lifecycle::RevocationReason = a
        .reason
        .parse()
        .map_err(|e: ca_core::CaTypesError| crate::error::CliError::config("reason", e.rule()))?;
    let request_id = match a.request_id.as_deref() {
        Some(r) => ca_core::lifecycle::RequestId::new(r)?,
        None => ca_core::lifecycle::RequestId::random(),
    };
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let record = ocsp_signer::issuing_ca(store.as_ref(), &id)?;
    if store
        .ca(&cfg.root_id)?
        .is_some_and(|r| r.key_label.starts_with(wiring::OFFLINE_ROOT_PREFIX))
    {
        return Err(crate::error::CliError::config(
            "ca",
            format!("the root \"{}\" is offline: revoke with `nesca root revoke` on the root's configuration, then `nesca root crl` and `nesca ca import-crl` here", cfg.root_id),
        ));
    }
    let serial = nesca_ra::certificate_serial(&record.cert_der).ok_or_else(|| {
        crate::error::CliError::config(
            "store",
            format!("the certificate of \"{id}\" does not decode"),
        )
    })?;
    let lifecycle = nesca_ra::lifecycle::Lifecycle::new(store, wiring::clock());
    let o = lifecycle.revoke_ca(nesca_ra::lifecycle::CaRevocation {
        serial,
        reason,
        request_id,
        actor: Principal::HostOperator,
    })?;
    let line = json!({
        "ca": id.as_str(),
        "issuer": o.issuer.as_str(),
        "serial": o.serial.to_hex(),
        "status": o.status.as_str(),
        "reason": reason.name(),
        "at": rfc3339(o.at),
        "replayed": o.replayed,
    });
    emit(&format!("{line}\n"))
}

#[derive(Args)]
pub(crate) struct RolloverArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The issuing CA to roll over (its newest generation: `ca list` shows which)
    #[arg(long)]
    ca: String,
    /// The new generation's id (default: ID-g2, then -g3, …)
    #[arg(long)]
    new_id: Option<String>,
}

/// The id of the generation after `id`: `nes-ca` → `nes-ca-g2`, `nes-ca-g2` → `nes-ca-g3`.
fn next_generation_id(id: &IssuerId) -> Result<IssuerId> {
    let s = id.as_str();
    let next = match s.rsplit_once("-g") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = n.parse().unwrap_or(1);
            format!("{base}-g{}", n.saturating_add(1))
        }
        _ => format!("{s}-g2"),
    };
    IssuerId::parse(&next).map_err(|e| {
        crate::error::CliError::config(
            "new_id",
            format!(
                "{next:?}: {}; name the new generation with --new-id",
                e.rule()
            ),
        )
    })
}

/// Rolls an issuing CA over to a new key: a new key pair generated in the HSM, a certificate
/// from the root under the same name (new key identifier), a new delegated OCSP signer; from
/// then on issuance uses the new generation. The previous one keeps its CRL and OCSP for the
/// certificates it issued. Writes `NEW-ID.pem` beside the configuration and rewrites
/// `ca-chain.pem` there (every generation, newest first, then the root). A running `nesca
/// serve` or `nesca ocsp` serves the new generation from its next start.
pub(crate) fn rollover(a: RolloverArgs) -> Result<()> {
    use crate::error::CliError;
    let id = IssuerId::parse(&a.ca).map_err(|e| CliError::config("ca", e.rule()))?;
    let new_id = a
        .new_id
        .as_deref()
        .map(|n| IssuerId::parse(n).map_err(|e| CliError::config("new_id", e.rule())))
        .transpose()?;
    let cfg = Loaded::read(&a.config)?;
    let store: Arc<dyn Store> = wiring::open_existing_store(&cfg)?;
    let hsm = wiring::open_hsm(&cfg)?;
    let line = roll_over(&cfg, &store, &hsm, &id, new_id, &Principal::HostOperator)?;
    emit(&format!("{line}\n"))
}

/// Rolls the issuing CA `id` over to a new key (`nesca ca rollover`, and the admin API's
/// `rollover-ca` once approved): a new generation `new_id` (default the next `-gN`),
/// certified by the root on this token, with its own OCSP signer; writes `NEW.pem` and the
/// chain beside the configuration. Returns what `ca rollover` prints.
pub(crate) fn roll_over(
    cfg: &Loaded,
    store: &Arc<dyn Store>,
    hsm: &hsm::Hsm,
    id: &IssuerId,
    new_id: Option<IssuerId>,
    actor: &Principal,
) -> Result<serde_json::Value> {
    use crate::error::CliError;
    let previous = ocsp_signer::issuing_ca(store.as_ref(), id)?;
    if let Some(next) = store
        .cas()?
        .iter()
        .find(|c| c.supersedes.as_ref() == Some(id))
    {
        return Err(CliError::config(
            "ca",
            format!(
                "\"{id}\" was rolled over already: \"{}\" supersedes it",
                next.id
            ),
        ));
    }
    let new_id = match new_id {
        Some(n) => n,
        None => next_generation_id(id)?,
    };
    check_generation_file_free(cfg, &new_id)?;
    let root = store.ca(&cfg.root_id)?.ok_or_else(|| {
        CliError::config(
            "ca.root_id",
            format!("no root \"{}\" in the store", cfg.root_id),
        )
    })?;
    let root_ca = wiring::root_signing_ca(cfg, hsm, &root)?;
    let algorithm = hsm.find_key(&previous.key_label)?.algorithm();
    // Unique labels (the time and random bits): two rollovers racing never make two keys
    // under one label; the one the store refuses destroys its own.
    let unique = format!(
        "{}-{:08x}",
        wiring::clock().now_unix().secs(),
        rand::random::<u32>()
    );
    let labels = [
        format!("{new_id}-{unique}"),
        format!("{new_id}-ocsp-{unique}"),
    ];
    let mut made = Vec::new();
    let result = (|| -> Result<ca_core::bootstrap::Rolled> {
        let mut keys = Vec::new();
        for label in &labels {
            let key = hsm.generate_key(label, algorithm)?;
            made.push(label.clone());
            keys.push(ca_core::bootstrap::CaKey {
                label: label.clone(),
                signer: Arc::new(key),
            });
        }
        let ocsp = keys.pop().expect("two keys");
        let issuing = keys.pop().expect("two keys");
        let engine = ca_core::engine::Engine::new(store.clone(), wiring::clock());
        Ok(ca_core::bootstrap::roll_over(
            &engine,
            &root_ca,
            &ca_core::bootstrap::RolloverPlan {
                previous: previous.clone(),
                new_id: new_id.clone(),
                validity_days: cfg.raw.ca.issuing_validity_days,
                ocsp_validity_days: cfg.raw.ca.ocsp_validity_days,
                public_url: cfg.raw.ca.public_url.clone(),
            },
            issuing,
            ocsp,
            actor,
        )?)
    })();
    let rolled = match result {
        Ok(r) => r,
        Err(e) => {
            // Keys that certify nothing go.
            for label in &made {
                if let Err(d) = hsm.destroy_key(label) {
                    tracing::warn!(error = %d, label, "an unused rollover key could not be destroyed");
                }
            }
            return Err(e);
        }
    };
    write_generation_files(cfg, store.as_ref(), &new_id, &rolled.issuing_cert)?;
    let (not_before, not_after) = validity_json(&rolled.issuing_cert);
    Ok(json!({
        "ca": new_id.as_str(),
        "supersedes": id.as_str(),
        "key_label": labels[0],
        "ocsp_key_label": labels[1],
        "not_before": not_before,
        "not_after": not_after,
    }))
}

/// Refuses a new generation id whose certificate file, `NEW-ID.pem` beside the
/// configuration, would replace a file that is there (`admin-tls.pem`, `ocsp-signer.pem`, a
/// file the configuration names): checked before any key is made.
pub(crate) fn check_generation_file_free(cfg: &Loaded, new_id: &IssuerId) -> Result<()> {
    let file = cfg.dir().join(format!("{new_id}.pem"));
    if file.exists() || std::fs::symlink_metadata(&file).is_ok() {
        return Err(crate::error::CliError::config(
            "new_id",
            format!(
                "{} exists already: a new generation's certificate would replace it; choose another id",
                file.display()
            ),
        ));
    }
    Ok(())
}

/// `NEW-ID.pem` and a rewritten `ca-chain.pem` (every generation of `ca.id`, newest first,
/// then the root) beside the configuration, each written whole and renamed into place.
fn write_generation_files(
    cfg: &Loaded,
    store: &dyn Store,
    new_id: &IssuerId,
    cert_der: &[u8],
) -> Result<()> {
    let dir = cfg.dir();
    let mut chain = String::new();
    for g in ca_core::store::generations(store, &cfg.issuing_id)?
        .iter()
        .rev()
    {
        chain.push_str(&super::cert_pem(&g.cert_der));
    }
    if let Some(root) = store.ca(&cfg.root_id)? {
        chain.push_str(&super::cert_pem(&root.cert_der));
    }
    for (name, text) in [
        (format!("{new_id}.pem"), super::cert_pem(cert_der)),
        ("ca-chain.pem".to_owned(), chain),
    ] {
        super::replace_file(&dir.join(&name), text.as_bytes())?;
    }
    Ok(())
}

/// The token label nesca records for a root whose key is offline.
fn offline_root_label(root: &IssuerId) -> String {
    format!("{}{root}", wiring::OFFLINE_ROOT_PREFIX)
}

#[derive(Args)]
pub(crate) struct ImportCertArgs {
    /// Path of nesca.toml (made with `init --external-root`)
    #[arg(long)]
    config: PathBuf,
    /// The issuing CA's certificate, signed by the offline root (PEM or DER)
    #[arg(long)]
    cert: PathBuf,
    /// The offline root's certificate (PEM or DER)
    #[arg(long)]
    root: PathBuf,
}

#[derive(Args)]
pub(crate) struct ImportCrlArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The offline root's CRL (DER or PEM), as `nesca root crl` made it
    #[arg(long)]
    crl: PathBuf,
}

fn read_der(field: &'static str, path: &std::path::Path, labels: &[&str]) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(crate::error::CliError::io("cannot read", path))?;
    super::pem_or_der(field, bytes, labels)
}

/// Puts into service the issuing CA whose key `init --external-root` made and whose
/// certificate the offline root signed: checked against the key on the token, the
/// configured name and the root (`ca_core::import_check`); then registered with the root
/// (whose key stays offline) and a delegated OCSP signer of its own. Writes `root-ca.pem`,
/// `issuing-ca.pem`, `ocsp-signer.pem` and `ca-chain.pem` beside the configuration.
pub(crate) fn import_cert(a: ImportCertArgs) -> Result<()> {
    use crate::error::CliError;
    let cfg = Loaded::read(&a.config)?;
    let cert_der = read_der("cert", &a.cert, &["CERTIFICATE"])?;
    let root_der = read_der("root", &a.root, &["CERTIFICATE"])?;
    let store: Arc<dyn Store> = wiring::open_existing_store(&cfg)?;
    if store.ca(&cfg.issuing_id)?.is_some() {
        return Err(CliError::config(
            "ca",
            format!(
                "CA \"{}\" is in the store already: nothing to import",
                cfg.issuing_id
            ),
        ));
    }
    // A root left by an import that failed after it (same certificate) is taken as it is.
    let root_known = match store.ca(&cfg.root_id)? {
        Some(r) if r.cert_der == root_der => true,
        Some(_) => {
            return Err(CliError::config(
                "root",
                format!("another root \"{}\" is in the store already", cfg.root_id),
            ))
        }
        None => false,
    };
    let hsm = wiring::open_hsm(&cfg)?;
    let issuing_key = hsm.find_key(cfg.issuing_id.as_str())?;
    let c = &cfg.raw.ca;
    let name =
        ca_core::name::organization_name(&c.country, &c.organization, &c.issuing_common_name)?;
    let now = wiring::clock().now_unix();
    ca_core::import_check::check_issuing_import(
        &root_der,
        &cert_der,
        &name,
        &ca_core::engine::TbsSigner::public_key(&issuing_key),
        now,
    )?;
    // The root's CRL must be where this CA serves it, or relying parties find none.
    let expected = wiring::urls_of(&cfg, &cfg.root_id)?.crl;
    let named = nesca_pkix::subject::issuer_urls(&cert_der)
        .map(|u| u.crls)
        .unwrap_or_default();
    if !named.contains(&expected) {
        return Err(CliError::Argument {
            field: "cert",
            rule: format!(
                "names the root's CRL at {named:?}, but this CA serves it at {expected} (the root's configuration must have the same ca.root_id and ca.public_url)"
            ),
        });
    }
    let actor = Principal::HostOperator;
    if !root_known {
        store.add_ca(
            CaRecord {
                id: cfg.root_id.clone(),
                role: CaRole::Root,
                key_label: offline_root_label(&cfg.root_id),
                cert_der: root_der.clone(),
                ocsp_key_label: None,
                ocsp_cert_der: None,
                supersedes: None,
            },
            &actor,
            now,
        )?;
    }
    let ocsp_label = format!(
        "{}-ocsp-{}-{:08x}",
        cfg.issuing_id,
        now.secs(),
        rand::random::<u32>()
    );
    let ocsp_key = hsm.generate_key(&ocsp_label, issuing_key.algorithm())?;
    let engine = ca_core::engine::Engine::new(store.clone(), wiring::clock());
    let installed = ca_core::bootstrap::install_issuing(
        &engine,
        &ca_core::bootstrap::IssuingInstall {
            id: cfg.issuing_id.clone(),
            cert_der: cert_der.clone(),
            ocsp_name: ca_core::name::organization_name(
                &c.country,
                &c.organization,
                &c.ocsp_common_name,
            )?,
            ocsp_validity_days: c.ocsp_validity_days,
            public_url: c.public_url.clone(),
            supersedes: None,
        },
        ca_core::bootstrap::CaKey {
            label: cfg.issuing_id.to_string(),
            signer: Arc::new(issuing_key),
        },
        ca_core::bootstrap::CaKey {
            label: ocsp_label.clone(),
            signer: Arc::new(ocsp_key),
        },
        &actor,
    );
    let ocsp_cert = match installed {
        Ok(c) => c,
        Err(e) => {
            if let Err(d) = hsm.destroy_key(&ocsp_label) {
                tracing::warn!(error = %d, "the unused OCSP signer key could not be destroyed");
            }
            return Err(e.into());
        }
    };
    let dir = cfg.dir();
    let chain_pem = format!(
        "{}{}",
        super::cert_pem(&cert_der),
        super::cert_pem(&root_der)
    );
    for (name, text) in [
        ("root-ca.pem", super::cert_pem(&root_der)),
        ("issuing-ca.pem", super::cert_pem(&cert_der)),
        ("ocsp-signer.pem", super::cert_pem(&ocsp_cert)),
        ("ca-chain.pem", chain_pem),
    ] {
        super::replace_file(&dir.join(name), text.as_bytes())?;
    }
    let (not_before, not_after) = validity_json(&cert_der);
    let crl_urls = named;
    let line = json!({
        "ca": cfg.issuing_id.as_str(),
        "root": cfg.root_id.as_str(),
        "not_before": not_before,
        "not_after": not_after,
        "ocsp_key_label": ocsp_label,
        "root_crl_urls": crl_urls,
    });
    emit(&format!("{line}\n"))
}

/// Publishes the offline root's CRL where `nesca serve` serves it (`crl.dir`, `/crl/ROOT.crl`,
/// the URL the issuing CA's certificate names): verified under the root's certificate in the
/// store, current, and not older than the one published.
pub(crate) fn import_crl(a: ImportCrlArgs) -> Result<()> {
    use crate::error::CliError;
    let cfg = Loaded::read(&a.config)?;
    let der = read_der("crl", &a.crl, &["X509 CRL"])?;
    let store = wiring::open_existing_store(&cfg)?;
    let root = store.ca(&cfg.root_id)?.ok_or_else(|| {
        CliError::config(
            "ca.root_id",
            format!("no root \"{}\" in the store", cfg.root_id),
        )
    })?;
    // The newest generation, revoked or not (a later CRL still lists a revoked one).
    let issuing = ca_core::store::generations(store.as_ref(), &cfg.issuing_id)?
        .pop()
        .ok_or_else(|| {
            CliError::config(
                "ca.id",
                format!("no issuing CA \"{}\" in the store", cfg.issuing_id),
            )
        })?;
    let issuing_serial = {
        use der::Decode as _;
        x509_cert::Certificate::from_der(&issuing.cert_der)
            .map(|c| c.tbs_certificate.serial_number.as_bytes().to_vec())
            .unwrap_or_default()
    };
    let checked = ca_core::import_check::check_root_crl(
        &root.cert_der,
        &der,
        &issuing_serial,
        wiring::clock().now_unix(),
    )?;
    let (number, revoked) = (checked.number, checked.lists_issuing);
    let publisher = crl::Publisher::new(cfg.path(&cfg.raw.crl.dir))?;
    let name = crl::full_file_name(&cfg.root_id);
    let older = |published: u128| CliError::Argument {
        field: "crl",
        rule: format!("its cRLNumber {number} is older than the published one ({published})"),
    };
    // Under the publication directory's lock, the number in place is compared with this
    // one's (a CRL never goes back); the same number in place is this CRL imported again.
    let in_place = u64::try_from(number)
        .map_err(|_| CliError::Argument {
            field: "crl",
            rule: format!("its cRLNumber {number} is past the largest nesca publishes (2^64-1)"),
        })
        .and_then(|n| {
            Ok(publisher
                .publish_crl_with(&name, n, |w| {
                    w.write_all(&der).map_err(crl::CrlError::Output)
                })?
                .1)
        })?;
    match in_place {
        crl::PublishOutcome::Kept { published } if published > number => {
            return Err(older(published))
        }
        _ => {}
    }
    if revoked {
        // From now on nothing is issued under it (`wiring::is_revoked`).
        store.record_ca_revoked(
            &issuing.id,
            &Principal::HostOperator,
            wiring::clock().now_unix(),
        )?;
        tracing::warn!(ca = %issuing.id, "the root's CRL lists the issuing CA as revoked: it issues nothing from now on");
    }
    let line = json!({
        "ca": cfg.root_id.as_str(),
        "number": number.to_string(),
        "published": publisher.path(&name).display().to_string(),
        "issuing_ca_revoked": revoked,
    });
    emit(&format!("{line}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_generation_is_named_after_the_one_it_supersedes() {
        let next =
            |s: &str| next_generation_id(&IssuerId::parse(s).unwrap()).map(|i| i.to_string());
        assert_eq!(next("nes-ca").unwrap(), "nes-ca-g2");
        assert_eq!(next("nes-ca-g2").unwrap(), "nes-ca-g3");
        assert_eq!(next("nes-ca-g19").unwrap(), "nes-ca-g20");
        // "-g" not followed by digits is part of the name.
        assert_eq!(next("nes-ca-gx").unwrap(), "nes-ca-gx-g2");
        // Past the id's 32 characters: refused, naming --new-id.
        let long = "a".repeat(31);
        let e = next(&long).unwrap_err().to_string();
        assert!(e.starts_with("new_id: ") && e.contains("--new-id"), "{e}");
    }
}
