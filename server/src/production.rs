//! Production of approved institutional applications: the card key is generated in the HSM
//! and wrapped for the card personalisation system (its configured transport key), or the
//! card bureau's CSR is used; the certificate is issued through ca-core, and in the same
//! store transaction the enrollment becomes produced, its pre-application closes and its
//! invoice line is written. Then the card package (certificate, chain, wrapped key, delivery
//! address) is written for the personalisation system.
//!
//! Each attempt is a channel application of its own (`{pre-application}.{attempt}`), so a
//! failed or interrupted attempt stays on record and the next pass tries again.

use std::path::PathBuf;
use std::sync::Arc;

use ca_core::engine::{Engine, NesApplication, SigningCa};
use ca_core::enrollment::billing_month;
use ca_core::institution::InstitutionId;
use ca_core::profile::NesProfile;
use ca_core::store::{
    ApplicationIssued, EnrollmentRecord, EnrollmentStage, EnrollmentWrite, FinishedApplication,
    InvoicePayer, ProducedEnrollment, Store,
};
use ca_core::{PersonName, Serial, SubjectKey, Tckn, VerifiedCsr};
use serde_json::json;

use crate::commands::cert_pem;
use crate::error::Result;

/// The channel name production's applications are recorded under.
pub const CHANNEL: &str = "batch-import";
const ACTOR: &str = "production";

/// Where card keys come from (`[production] key_source`).
pub enum CardKeys {
    /// Generated in the HSM and wrapped for the card personalisation system.
    Hsm {
        algorithm: hsm::KeyAlgorithm,
        transport_public_key_der: Vec<u8>,
    },
    /// The card bureau sends a CSR per application (`nesca production csr`).
    CardBureauCsr,
}

/// The production line.
pub struct Production {
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub ca: SigningCa,
    pub nes: NesProfile,
    pub hsm: hsm::Hsm,
    pub keys: CardKeys,
    /// Where card packages are written, one `<pre-application>.json` each.
    pub package_dir: PathBuf,
    /// The issuing CA then the root (DER), put in each package.
    pub chain_der: Vec<Vec<u8>>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProductionReport {
    pub produced: u64,
    /// Approved, waiting for the card bureau's CSR.
    pub waiting_for_csr: u64,
    pub failed: u64,
    pub packages: u64,
}

impl Production {
    /// Produces every approved application that is due (renewals whose window has come
    /// included), and writes the packages not written yet. A failure is recorded on its
    /// application and does not stop the others.
    pub fn run_due(&self, limit: u32) -> Result<ProductionReport> {
        let now = self.now();
        let mut report = ProductionReport::default();
        for e in self.store.enrollments_due(now, limit)? {
            let id = e.pre_application.clone();
            // Produce what is approved; then (and for what was produced before) the package.
            let produced = match e.stage {
                EnrollmentStage::Produced => Some(e),
                _ => match self.produce(&e) {
                    Ok(None) => {
                        report.waiting_for_csr += 1;
                        None
                    }
                    Ok(Some(serial)) => {
                        report.produced += 1;
                        tracing::info!(application = %id, %serial, "application produced");
                        self.store.enrollment(&id)?
                    }
                    Err(error) => {
                        report.failed += 1;
                        tracing::warn!(application = %id, %error, "production failed; will retry");
                        self.store
                            .enrollment_write(EnrollmentWrite::ProductionFailed {
                                id,
                                error,
                                at: self.now(),
                            })?;
                        None
                    }
                },
            };
            if let Some(done) = produced {
                match self.write_package(&done) {
                    Ok(()) => report.packages += 1,
                    Err(error) => {
                        report.failed += 1;
                        tracing::warn!(application = %done.pre_application, %error, "card package not written; will retry");
                    }
                }
            }
        }
        Ok(report)
    }

    fn now(&self) -> i64 {
        ca_core::clock::unix_seconds(self.engine.clock().now())
    }

    /// Issues one application's certificate; `Ok(None)` while its CSR is awaited.
    fn produce(&self, e: &EnrollmentRecord) -> std::result::Result<Option<Serial>, String> {
        let id = &e.pre_application;
        let pre = self
            .store
            .pre_application(id)
            .map_err(|x| x.to_string())?
            .ok_or_else(|| format!("pre-application {id} is gone"))?;
        let institution = InstitutionId::parse(&pre.institution).map_err(|x| x.to_string())?;
        let institution = self
            .store
            .institution(&institution)
            .map_err(|x| x.to_string())?
            .ok_or_else(|| format!("institution {} is gone", pre.institution))?;
        let (key, wrapped_key) = match &self.keys {
            CardKeys::CardBureauCsr => match &e.card_csr {
                None => return Ok(None),
                Some(csr) => (
                    SubjectKey::from(VerifiedCsr::parse(csr).map_err(|x| x.to_string())?),
                    None,
                ),
            },
            CardKeys::Hsm {
                algorithm,
                transport_public_key_der,
            } => {
                let card = self
                    .hsm
                    .generate_wrapped_card_key(*algorithm, transport_public_key_der)
                    .map_err(|x| format!("card key: {x}"))?;
                let key =
                    SubjectKey::generated(card.public_key.spki_der()).map_err(|x| x.to_string())?;
                let wrapped = json!({
                    "scheme": crate::channels::scheme_name(card.mechanism),
                    "wrapped_key": base64_std(&card.wrapped_key),
                    "wrapped_private_key": base64_std(&card.wrapped_private_key),
                });
                (key, Some(wrapped.to_string()))
            }
        };
        let channel_ref = format!("{id}.{}", e.production_attempts);
        let now = self.now();
        if let Some(seen) = self
            .store
            .begin_application(CHANNEL, &channel_ref, ACTOR, now)
            .map_err(|x| x.to_string())?
        {
            return Err(format!(
                "attempt {channel_ref} was cut off earlier ({}); trying again",
                seen.error
                    .unwrap_or_else(|| seen.status.as_str().to_owned())
            ));
        }
        let tckn = Tckn::parse(&pre.tckn).map_err(|x| x.to_string())?;
        let validity_days = self.nes.default_validity_days();
        let (payer, payer_id) = match institution.payer {
            ca_core::institution::Payer::Institution => (
                institution.name.clone(),
                institution.tax_no.as_str().to_owned(),
            ),
            ca_core::institution::Payer::Person => (
                format!("{} {}", pre.given_name, pre.surname),
                pre.tckn.clone(),
            ),
        };
        let clock = self.engine.clock().clone();
        let record = |issued: &ca_core::engine::Issued| -> ca_core::Result<_> {
            Ok(Some(FinishedApplication {
                channel: CHANNEL.to_owned(),
                channel_ref: channel_ref.clone(),
                issued: ApplicationIssued {
                    serial: issued.serial,
                    wrapped_key: wrapped_key.clone(),
                    commitment: None,
                },
                production: Some(ProducedEnrollment {
                    pre_application: id.clone(),
                    institution: pre.institution.clone(),
                    payer: InvoicePayer {
                        kind: institution.payer.as_str().to_owned(),
                        name: payer.clone(),
                        id: payer_id.clone(),
                    },
                    holder_tckn: pre.tckn.clone(),
                    holder_name: format!("{} {}", pre.given_name, pre.surname),
                    item: format!("NES {validity_days} gün"),
                    month: billing_month(ca_core::clock::unix_seconds(clock.now())),
                    attempt: e.production_attempts,
                }),
            }))
        };
        let issued = self.engine.issue_nes_then(
            &self.ca,
            &self.nes,
            NesApplication {
                key,
                tckn,
                given_name: PersonName::parse("given-name", &pre.given_name)
                    .map_err(|x| x.to_string())?,
                surname: PersonName::parse("surname", &pre.surname).map_err(|x| x.to_string())?,
                validity_days: None,
                await_commitment: false,
            },
            ACTOR,
            &record,
        );
        match issued {
            Ok(issued) => Ok(Some(issued.serial)),
            Err(x) => {
                let reason = x.to_string();
                if let Err(f) = self.store.finish_application(
                    CHANNEL,
                    &channel_ref,
                    Err(reason.clone()),
                    ACTOR,
                    self.now(),
                ) {
                    tracing::warn!(error = %f, "could not record the failed attempt");
                }
                Err(reason)
            }
        }
    }

    /// Writes the card package of a produced application (again after a crash: the
    /// certificate and the wrapped key are in the store).
    fn write_package(&self, e: &EnrollmentRecord) -> std::result::Result<(), String> {
        let id = &e.pre_application;
        let serial = e.serial.ok_or_else(|| format!("{id} has no serial"))?;
        let cert = self
            .store
            .get(None, &serial)
            .map_err(|x| x.to_string())?
            .and_then(|r| r.cert_der)
            .ok_or_else(|| format!("certificate {serial} is not in the store"))?;
        let channel_ref = format!("{id}.{}", e.production_attempts);
        let wrapped: Option<serde_json::Value> = self
            .store
            .application(CHANNEL, &channel_ref)
            .map_err(|x| x.to_string())?
            .and_then(|a| a.wrapped_key)
            .map(|w| serde_json::from_str(&w).unwrap_or(serde_json::Value::Null));
        let pre = self
            .store
            .pre_application(id)
            .map_err(|x| x.to_string())?
            .ok_or_else(|| format!("pre-application {id} is gone"))?;
        let package = json!({
            "v": 1,
            "application": id,
            "serial": serial.to_hex(),
            "holder": { "tckn": pre.tckn, "given_name": pre.given_name, "surname": pre.surname },
            "delivery_address": e.delivery_address,
            "certificate_pem": cert_pem(&cert),
            "chain_pem": self.chain_der.iter().map(|c| cert_pem(c)).collect::<Vec<_>>(),
            "card_key": match &self.keys {
                CardKeys::Hsm { .. } => "hsm-wrapped",
                CardKeys::CardBureauCsr => "card-bureau-csr",
            },
            "wrapped_key": wrapped,
        });
        let text = serde_json::to_vec_pretty(&package).map_err(|x| x.to_string())?;
        ca_core::outbox::write_atomically(&self.package_dir, &format!("{id}.json"), &text)?;
        self.store
            .enrollment_write(EnrollmentWrite::PackageWritten {
                id: id.clone(),
                at: self.now(),
            })
            .map(|_| ())
            .map_err(|x| x.to_string())
    }
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The production line as `[production]` configures it; `None` when the section is absent.
pub fn configured(
    cfg: &crate::config::Loaded,
    store: Arc<dyn Store>,
    ca: SigningCa,
    hsm: hsm::Hsm,
) -> Result<Option<Production>> {
    use crate::error::CliError;
    let Some(p) = &cfg.raw.production else {
        return Ok(None);
    };
    let keys = match p.key_source.as_str() {
        "hsm" => {
            let path = cfg.path(
                p.transport_public_key
                    .as_deref()
                    .unwrap_or(std::path::Path::new("")),
            );
            let bytes = std::fs::read(&path)
                .map_err(CliError::io("cannot read the transport public key", &path))?;
            let der = crate::commands::pem_or_der(
                "production.transport_public_key",
                bytes,
                &["PUBLIC KEY"],
            )?;
            check_rsa_spki(&der).map_err(|r| {
                CliError::config(
                    "production.transport_public_key",
                    format!("{}: {r}", path.display()),
                )
            })?;
            CardKeys::Hsm {
                algorithm: p
                    .key_algorithm
                    .parse()
                    .map_err(|r| CliError::config("production.key_algorithm", r))?,
                transport_public_key_der: der,
            }
        }
        _ => CardKeys::CardBureauCsr,
    };
    let chain_der =
        crate::wiring::chain_der(cfg, store.as_ref(), ca.cert_der.clone().unwrap_or_default())?;
    Ok(Some(Production {
        engine: Engine::new(store.clone(), crate::wiring::clock()),
        store,
        ca,
        nes: cfg.nes.clone(),
        hsm,
        keys,
        package_dir: cfg.path(&p.package_dir),
        chain_der,
    }))
}

/// The transport key must be an RSA SubjectPublicKeyInfo (the AES key is wrapped with
/// RSA-OAEP).
fn check_rsa_spki(der: &[u8]) -> std::result::Result<(), String> {
    use der::Decode as _;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|e| format!("not a SubjectPublicKeyInfo: {e}"))?;
    const RSA: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    if spki.algorithm.oid != RSA {
        return Err(format!(
            "must be an RSA public key, not {}",
            spki.algorithm.oid
        ));
    }
    Ok(())
}
