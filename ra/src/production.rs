//! Production of approved institutional applications: the card key comes from the HSM
//! (wrapped for the card personalisation system's transport key) or from the card bureau's
//! CSR; the certificate is issued on the one NES path ([`crate::nes`]), and in the same store
//! transaction the enrollment becomes produced, its pre-application closes and its invoice
//! line is written (who pays is decided here). Then the card package is handed to the
//! personalisation system through [`CardPackages`].
//!
//! Each attempt is an application of its own (`{pre-application}.{attempt}`), so a failed or
//! interrupted attempt stays on record and the next pass tries again.

use crate::enrollment::billing_month;
use crate::enrollment::stage::Step;
use ca_core::institution::{InstitutionRecord, Payer};
use ca_core::store::{
    EnrollmentRecord, EnrollmentStage, EnrollmentWrite, InvoicePayer, PreApplication,
    ProducedEnrollment,
};
use ca_core::{
    ChannelName, PersonName, Principal, Serial, SystemTask, Tckn, UnixTime, VerifiedCsr,
};

use crate::card_key::WrappedCardKey;
use crate::error::{RaError, Result};
use crate::nes::{ChannelRef, NesHolder, NesIssuance, NesOutcome, NesRequest, SubscriberKey};

/// The channel production's applications are recorded under.
pub const CHANNEL: &str = "batch-import";

/// [`CHANNEL`] as a channel's name.
fn channel() -> ChannelName {
    ChannelName::parse(CHANNEL).expect("the institutional channel's name")
}

/// Where card keys come from (`[production] key_source`).
pub enum CardKeys {
    /// Generated in the HSM and wrapped for the card personalisation system's registered
    /// transport key (`[production] transport_key`).
    Hsm {
        algorithm: hsm::KeyAlgorithm,
        transport_key: ca_core::transport_key::TransportKeyId,
    },
    /// The card bureau sends a CSR per application (`nesca production csr`).
    CardBureauCsr,
}

/// What the card personalisation system receives for one produced application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardPackage {
    /// The pre-application's id.
    pub application: String,
    pub serial: Serial,
    pub holder_tckn: Tckn,
    pub holder_given_name: String,
    pub holder_surname: String,
    pub delivery_address: Option<String>,
    pub certificate_der: Vec<u8>,
    /// The issuing CA, then the root.
    pub chain_der: Vec<Vec<u8>>,
    /// True when the key was generated in the HSM (and is in `wrapped_key`); false when the
    /// card bureau made it.
    pub hsm_generated: bool,
    pub wrapped_key: Option<WrappedCardKey>,
}

/// Where card packages go (the server writes them to `[production] package_dir`).
pub trait CardPackages {
    /// Hands one package over; written atomically, replacing an earlier copy.
    fn deliver(&self, package: &CardPackage) -> Result<()>;
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

/// The production line.
pub struct Production {
    pub issuance: NesIssuance,
    pub keys: CardKeys,
    /// The issuing CA then the root (DER), put in each package.
    pub chain_der: Vec<Vec<u8>>,
}

impl Production {
    /// Produces every approved application that is due (renewals whose window has come
    /// included), and delivers the packages not delivered yet. A failure is recorded on its
    /// application and does not stop the others.
    ///
    /// With HSM-generated keys, the configured transport key must be registered, not
    /// withdrawn and within its certificate's validity (`production.transport_key`,
    /// [`crate::transport_keys`]); otherwise the pass is refused and produces nothing.
    pub fn run_due(&self, limit: u32, packages: &dyn CardPackages) -> Result<ProductionReport> {
        self.check_transport_key()?;
        let store = &self.issuance.store;
        let mut report = ProductionReport::default();
        for e in store.enrollments_due(self.now(), limit)? {
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
                        store.enrollment(&id)?
                    }
                    Err(error) => {
                        report.failed += 1;
                        tracing::warn!(application = %id, %error, "production failed; will retry");
                        // Recorded on an enrollment that is still approved; one that moved on
                        // meanwhile (produced by another pass) is refused, and that refusal
                        // stops this pass like any store failure.
                        let t = Step::RecordProductionFailure.check(&id, Some(e.stage))?;
                        store.enrollment_write(EnrollmentWrite::ProductionFailed {
                            id,
                            from: t.from,
                            error: error.to_string(),
                            actor: production(),
                            at: self.now(),
                        })?;
                        None
                    }
                },
            };
            if let Some(done) = produced {
                match self.deliver(&done, packages) {
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

    /// The configured transport key may be wrapped for now (HSM-generated keys only).
    pub fn check_transport_key(&self) -> Result<()> {
        if let CardKeys::Hsm { transport_key, .. } = &self.keys {
            crate::transport_keys::TransportKeys::new(self.issuance.store.clone()).usable(
                "production.transport_key",
                transport_key,
                self.now(),
            )?;
        }
        Ok(())
    }

    /// Issues one application's certificate; `Ok(None)` while its CSR is awaited.
    fn produce(&self, e: &EnrollmentRecord) -> Result<Option<Serial>> {
        let t = Step::Produce.check(&e.pre_application, Some(e.stage))?;
        let pre = self.pre_application(&e.pre_application)?;
        let institution = self.institution(&pre)?;
        let key = match &self.keys {
            CardKeys::CardBureauCsr => match &e.card_csr {
                None => return Ok(None),
                Some(csr) => SubscriberKey::Csr(VerifiedCsr::parse(csr)?),
            },
            CardKeys::Hsm {
                algorithm,
                transport_key,
            } => SubscriberKey::Card {
                algorithm: *algorithm,
                transport_key: transport_key.clone(),
            },
        };
        let channel_ref = ChannelRef::parse(&attempt_ref(e))?;
        let validity_days = self.issuance.nes.default_validity_days();
        let request = NesRequest {
            channel: channel(),
            channel_ref,
            holder: NesHolder {
                tckn: pre.tckn,
                given_name: PersonName::parse("given-name", &pre.given_name)?,
                surname: PersonName::parse("surname", &pre.surname)?,
            },
            key,
            validity_days: None,
            commitment_within_seconds: None,
            overwrite: None,
            production: Some(ProducedEnrollment {
                pre_application: pre.id.clone(),
                from: t.from,
                institution: pre.institution.clone(),
                payer: invoice_payer(&institution, &pre),
                holder_tckn: pre.tckn,
                holder_name: format!("{} {}", pre.given_name, pre.surname),
                item: format!("NES {validity_days} gün"),
                month: billing_month(self.now()),
                attempt: e.production_attempts,
            }),
        };
        match self.issuance.apply(&production(), request)? {
            NesOutcome::Issued(issued) => Ok(Some(issued.serial)),
            NesOutcome::SeenBefore(seen) => Err(RaError::Conflict {
                field: "application",
                rule: format!(
                    "attempt {} was cut off earlier ({}); trying again",
                    seen.channel_ref,
                    seen.error
                        .unwrap_or_else(|| seen.status.as_str().to_owned())
                ),
            }),
        }
    }

    /// Hands over the card package of a produced application (again after a crash: the
    /// certificate and the wrapped key are in the store), then records it delivered.
    fn deliver(&self, e: &EnrollmentRecord, packages: &dyn CardPackages) -> Result<()> {
        let store = &self.issuance.store;
        let id = &e.pre_application;
        let missing = |rule: String| RaError::NotFound {
            field: "application",
            rule,
        };
        let serial = e
            .serial
            .ok_or_else(|| missing(format!("{id} has no serial")))?;
        let certificate_der = store
            .get(None, &serial)?
            .and_then(|r| r.cert_der)
            .ok_or_else(|| missing(format!("certificate {serial} is not in the store")))?;
        let wrapped_key = store
            .application(&channel(), &attempt_ref(e))?
            .and_then(|a| a.wrapped_key);
        let pre = self.pre_application(id)?;
        let package = CardPackage {
            application: id.clone(),
            serial,
            holder_tckn: pre.tckn,
            holder_given_name: pre.given_name,
            holder_surname: pre.surname,
            delivery_address: e.delivery_address.clone(),
            certificate_der,
            chain_der: self.chain_der.clone(),
            hsm_generated: matches!(self.keys, CardKeys::Hsm { .. }),
            wrapped_key,
        };
        packages.deliver(&package)?;
        let t = Step::WritePackage.check(id, Some(e.stage))?;
        store.enrollment_write(EnrollmentWrite::PackageWritten {
            id: id.clone(),
            from: t.from,
            actor: production(),
            at: self.now(),
        })?;
        Ok(())
    }

    fn now(&self) -> UnixTime {
        self.issuance.now()
    }

    fn pre_application(&self, id: &str) -> Result<PreApplication> {
        self.issuance
            .store
            .pre_application(id)?
            .ok_or_else(|| RaError::NotFound {
                field: "application",
                rule: format!("pre-application {id} is gone"),
            })
    }

    fn institution(&self, pre: &PreApplication) -> Result<InstitutionRecord> {
        self.issuance
            .store
            .institution(&pre.institution)?
            .ok_or_else(|| RaError::NotFound {
                field: "institution",
                rule: format!("institution {} is gone", pre.institution),
            })
    }
}

/// Who produces: nesca's production task.
fn production() -> Principal {
    Principal::System(SystemTask::Production)
}

/// The channel reference of an enrollment's current production attempt.
fn attempt_ref(e: &EnrollmentRecord) -> String {
    format!("{}.{}", e.pre_application, e.production_attempts)
}

/// Who is invoiced for a produced certificate: the institution (with its tax number) or the
/// person (with their T.C. Kimlik No), as the institution was registered.
fn invoice_payer(institution: &InstitutionRecord, pre: &PreApplication) -> InvoicePayer {
    let (name, id) = match institution.payer {
        Payer::Institution => (
            institution.name.clone(),
            institution.tax_no.as_str().to_owned(),
        ),
        Payer::Person => (
            format!("{} {}", pre.given_name, pre.surname),
            pre.tckn.to_string(),
        ),
    };
    InvoicePayer {
        kind: institution.payer,
        name,
        id,
    }
}
