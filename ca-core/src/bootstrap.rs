//! Creating the CA hierarchy: a self-signed root, an issuing CA under it, and the issuing
//! CA's delegated OCSP signer. Each certificate goes through the same build → lint → reserve
//! → sign → check → store path as any other.

use std::sync::Arc;

use x509_cert::name::Name;

use crate::engine::{CertRequest, Engine, Issued, SigningCa, TbsSigner};
use crate::error::{CaError, Result};
use crate::profile::{CaProfile, CaUrls, OcspSignerProfile};
use crate::store::{CaRecord, CaRole, SubjectRecord};
use crate::IssuerId;

/// A CA key with its token label.
pub struct CaKey {
    pub label: String,
    pub signer: Arc<dyn TbsSigner>,
}

/// What to create.
pub struct HierarchyPlan {
    pub root_id: IssuerId,
    pub root_name: Name,
    pub root_validity_days: u32,
    pub issuing_id: IssuerId,
    pub issuing_name: Name,
    pub issuing_validity_days: u32,
    pub ocsp_name: Name,
    pub ocsp_validity_days: u32,
    /// The public base URL relying parties reach (CDP, AIA).
    pub public_url: String,
}

/// The created hierarchy.
pub struct Hierarchy {
    pub root_cert: Vec<u8>,
    pub issuing_cert: Vec<u8>,
    pub ocsp_cert: Vec<u8>,
}

fn record(name: &Name) -> SubjectRecord {
    SubjectRecord {
        subject: name.to_string(),
        ..SubjectRecord::default()
    }
}

/// Creates root, issuing CA and OCSP signer, and registers both CAs in the store.
pub fn create_hierarchy(
    engine: &Engine,
    plan: &HierarchyPlan,
    root: CaKey,
    issuing: CaKey,
    ocsp: CaKey,
    actor: &crate::Principal,
) -> Result<Hierarchy> {
    let store = engine.store();
    for id in [&plan.root_id, &plan.issuing_id] {
        if store.ca(id)?.is_some() {
            return Err(CaError::AlreadyExists {
                what: format!("CA \"{id}\" in the store"),
            });
        }
    }
    let root_cert = create_root(
        engine,
        &plan.root_id,
        &plan.root_name,
        plan.root_validity_days,
        root.label,
        root.signer.clone(),
        actor,
    )?;
    let root_ca = SigningCa::new(
        plan.root_id.clone(),
        root_cert.clone(),
        root.signer,
        Some(CaUrls::new(&plan.public_url, &plan.root_id)?),
    )?;

    let issuing_cert = issue_issuing_ca(
        engine,
        &root_ca,
        &plan.issuing_name,
        issuing.signer.public_key(),
        plan.issuing_validity_days,
        actor,
    )?;
    let ocsp_cert = install_issuing(
        engine,
        &IssuingInstall {
            id: plan.issuing_id.clone(),
            cert_der: issuing_cert.cert_der.clone(),
            ocsp_name: plan.ocsp_name.clone(),
            ocsp_validity_days: plan.ocsp_validity_days,
            public_url: plan.public_url.clone(),
            supersedes: None,
        },
        issuing,
        ocsp,
        actor,
    )?;
    Ok(Hierarchy {
        root_cert,
        issuing_cert: issuing_cert.cert_der,
        ocsp_cert,
    })
}

/// Creates the self-signed root CA (its key `signer`, token label `label`) and registers it;
/// returns its certificate (DER).
pub fn create_root(
    engine: &Engine,
    id: &IssuerId,
    name: &Name,
    validity_days: u32,
    label: String,
    signer: Arc<dyn TbsSigner>,
    actor: &crate::Principal,
) -> Result<Vec<u8>> {
    // The root signs itself: its issuer context is its own name and key, with no URLs.
    let spki = signer.public_key();
    let self_signing = SigningCa::self_signing(id.clone(), name.clone(), signer)?;
    let cert = issue(
        engine,
        &self_signing,
        &CaProfile::root(),
        name,
        spki,
        validity_days,
        actor,
    )?;
    engine.store().add_ca(
        CaRecord {
            id: id.clone(),
            role: CaRole::Root,
            key_label: label,
            cert_der: cert.cert_der.clone(),
            ocsp_key_label: None,
            ocsp_cert_der: None,
            supersedes: None,
        },
        actor,
        engine.clock().now_unix(),
    )?;
    Ok(cert.cert_der)
}

/// The root certifies an issuing CA's key under `name` (recorded in the root's store, as
/// everything the root issues is, for its CRL).
pub fn issue_issuing_ca(
    engine: &Engine,
    root: &SigningCa,
    name: &Name,
    key: spki::SubjectPublicKeyInfoOwned,
    validity_days: u32,
    actor: &crate::Principal,
) -> Result<Issued> {
    issue(
        engine,
        root,
        &CaProfile::issuing(),
        name,
        key,
        validity_days,
        actor,
    )
}

/// An issuing CA certificate to put into service on this store and token.
pub struct IssuingInstall {
    pub id: IssuerId,
    pub cert_der: Vec<u8>,
    pub ocsp_name: Name,
    pub ocsp_validity_days: u32,
    pub public_url: String,
    /// The generation it takes over from (a rollover), if any.
    pub supersedes: Option<IssuerId>,
}

/// Puts an issuing CA into service: its delegated OCSP signer (`ocsp`'s key) certified by
/// it, and both registered. Returns the signer's certificate (DER).
pub fn install_issuing(
    engine: &Engine,
    install: &IssuingInstall,
    issuing: CaKey,
    ocsp: CaKey,
    actor: &crate::Principal,
) -> Result<Vec<u8>> {
    let issuing_ca = SigningCa::new(
        install.id.clone(),
        install.cert_der.clone(),
        issuing.signer,
        Some(CaUrls::new(&install.public_url, &install.id)?),
    )?;
    let ocsp_cert = issue_ocsp_signer(
        engine,
        &issuing_ca,
        &install.ocsp_name,
        ocsp.signer.public_key(),
        install.ocsp_validity_days,
        actor,
    )?;
    engine.store().add_ca(
        CaRecord {
            id: install.id.clone(),
            role: CaRole::Issuing,
            key_label: issuing.label,
            cert_der: install.cert_der.clone(),
            ocsp_key_label: Some(ocsp.label),
            ocsp_cert_der: Some(ocsp_cert.cert_der.clone()),
            supersedes: install.supersedes.clone(),
        },
        actor,
        engine.clock().now_unix(),
    )?;
    Ok(ocsp_cert.cert_der)
}

/// A new generation of an issuing CA: same name, new key, certified by the root.
pub struct RolloverPlan {
    /// The generation it takes over from (its name is kept).
    pub previous: CaRecord,
    pub new_id: IssuerId,
    pub validity_days: u32,
    pub ocsp_validity_days: u32,
    /// The public base URL relying parties reach (CDP, AIA of the new generation).
    pub public_url: String,
}

/// The new generation's certificates.
pub struct Rolled {
    pub issuing_cert: Vec<u8>,
    pub ocsp_cert: Vec<u8>,
}

/// Rolls an issuing CA over to a new key: the root certifies `issuing`'s key under the
/// previous generation's name, the new generation certifies its delegated OCSP signer
/// (`ocsp`, named as the previous one's), and the store records it as superseding the
/// previous generation (refused if another rollover of it landed first).
pub fn roll_over(
    engine: &Engine,
    root: &SigningCa,
    plan: &RolloverPlan,
    issuing: CaKey,
    ocsp: CaKey,
    actor: &crate::Principal,
) -> Result<Rolled> {
    use der::Decode as _;
    let name_of = |der: &[u8], what: &str| {
        x509_cert::Certificate::from_der(der)
            .map(|c| c.tbs_certificate.subject)
            .map_err(|e| CaError::Invalid {
                field: "previous",
                rule: format!("the {what} certificate does not decode: {e}"),
            })
    };
    let name = name_of(&plan.previous.cert_der, "previous generation's")?;
    let ocsp_name = match &plan.previous.ocsp_cert_der {
        Some(der) => name_of(der, "previous OCSP signer's")?,
        None => name.clone(),
    };
    let issuing_cert = issue_issuing_ca(
        engine,
        root,
        &name,
        issuing.signer.public_key(),
        plan.validity_days,
        actor,
    )?;
    let ocsp_cert = install_issuing(
        engine,
        &IssuingInstall {
            id: plan.new_id.clone(),
            cert_der: issuing_cert.cert_der.clone(),
            ocsp_name,
            ocsp_validity_days: plan.ocsp_validity_days,
            public_url: plan.public_url.clone(),
            supersedes: Some(plan.previous.id.clone()),
        },
        issuing,
        ocsp,
        actor,
    )?;
    Ok(Rolled {
        issuing_cert: issuing_cert.cert_der,
        ocsp_cert,
    })
}

/// Issues a delegated OCSP signer certificate (RFC 6960 §4.2.2.2) for `key` from the issuing
/// CA `ca`: at creation, and for each renewal. Storing it as the CA's signer is the caller's
/// (`RegistryStore::replace_ocsp_signer`).
pub fn issue_ocsp_signer(
    engine: &Engine,
    ca: &SigningCa,
    name: &Name,
    key: spki::SubjectPublicKeyInfoOwned,
    validity_days: u32,
    actor: &crate::Principal,
) -> Result<Issued> {
    issue(
        engine,
        ca,
        &OcspSignerProfile::default(),
        name,
        key,
        validity_days,
        actor,
    )
}

fn issue(
    engine: &Engine,
    ca: &SigningCa,
    profile: &dyn crate::profile::CertificateProfile,
    name: &Name,
    key: spki::SubjectPublicKeyInfoOwned,
    validity_days: u32,
    actor: &crate::Principal,
) -> Result<Issued> {
    engine.issue(
        ca,
        profile,
        CertRequest {
            subject: name.clone(),
            subject_key: key,
            validity_days,
            record: record(name),
            await_commitment: false,
        },
        actor,
    )
}
