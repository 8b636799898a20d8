//! PKI operators: registration (an operator certificate issued from the person's own CSR,
//! the key never touching nesca), listing, disabling, and the authentication of an operator
//! certificate presented to the admin API — the only place an [`OperatorActor`] is made from
//! a presented certificate.
//!
//! Separation of duties: one person (one name) holds one role; a second registration under
//! the same name is refused whatever its role.

use std::sync::Arc;

use ca_core::clock::Clock;
use ca_core::engine::{CertRequest, Issued, SigningCa};
use ca_core::profile::{check_validity_days, OperatorProfile};
use ca_core::store::{CertStatus, OperatorRecord, Store, SubjectRecord};
use ca_core::{IssuerId, OperatorActor, OperatorName, OperatorRole, Principal, VerifiedCsr};

use crate::error::{RaError, Result};

/// Operators: registration, listing, disabling, authentication.
pub struct Operators {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

/// An operator certificate the registration authority approved, not signed yet.
pub struct ApprovedOperator<'p> {
    name: OperatorName,
    role: OperatorRole,
    profile: &'p OperatorProfile,
    request: CertRequest,
}

/// Why a presented certificate does not authenticate an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperatorRefusal {
    /// Not an operator certificate nesca issued (unknown serial, other bytes, another
    /// profile).
    NotAnOperatorCertificate,
    /// Suspended, revoked, or never issued.
    Revoked,
    /// Outside its validity period now.
    NotValidNow,
    /// No operator is registered with it, or the operator is disabled.
    NotActive,
    /// The store could not be read: refused, never let through.
    Unavailable,
}

impl OperatorRefusal {
    /// Why, in words for the log and the answer.
    pub fn reason(self) -> &'static str {
        match self {
            OperatorRefusal::NotAnOperatorCertificate => "not an operator certificate nesca issued",
            OperatorRefusal::Revoked => "the certificate is suspended or revoked",
            OperatorRefusal::NotValidNow => "the certificate is not valid now",
            OperatorRefusal::NotActive => "no active operator holds this certificate",
            OperatorRefusal::Unavailable => "the operator's status cannot be read now",
        }
    }
}

impl Operators {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Operators {
        Operators { store, clock }
    }

    /// Approves an operator certificate for `name` in `role` with the CSR's key: neither the
    /// name (compared as [`same_person_name`]: case, spacing and composition aside) nor the
    /// key may be registered already, in any role — one person, one role. Reads the store
    /// only.
    pub fn approve<'p>(
        &self,
        name: OperatorName,
        role: OperatorRole,
        csr: VerifiedCsr,
        profile: &'p OperatorProfile,
        (country, organization): (&str, &str),
        validity_days: u32,
    ) -> Result<ApprovedOperator<'p>> {
        check_validity_days(profile, validity_days)?;
        let key = der::Encode::to_der(&csr.public_key)
            .map_err(|e| RaError::invalid("csr", format!("public key: {e}")))?;
        for existing in self.store.operators()? {
            if same_person_name(&existing.name, &name) {
                return Err(RaError::Conflict {
                    field: "name",
                    rule: format!(
                        "\"{name}\" is registered already (as {}, \"{}\"); one person holds one role",
                        existing.role, existing.name
                    ),
                });
            }
            let cert = self.store.get(Some(&existing.issuer), &existing.serial)?;
            let same_key = cert
                .and_then(|c| c.cert_der)
                .and_then(|der| subject_public_key_der(&der))
                .is_some_and(|k| k == key);
            if same_key {
                return Err(RaError::Conflict {
                    field: "csr",
                    rule: format!(
                        "this key is registered already (operator \"{}\"); one person holds one role",
                        existing.name
                    ),
                });
            }
        }
        let subject = ca_core::name::organization_name(country, organization, name.as_str())?;
        let request = CertRequest {
            record: SubjectRecord {
                subject: subject.to_string(),
                ..SubjectRecord::default()
            },
            subject,
            subject_key: csr.public_key,
            validity_days,
            await_commitment: false,
        };
        Ok(ApprovedOperator {
            name,
            role,
            profile,
            request,
        })
    }

    /// Issues the approved certificate and registers the operator with it. A name taken in
    /// between leaves a certificate no operator holds: it authenticates nobody.
    pub fn register(
        &self,
        by: &Principal,
        engine: &ca_core::engine::Engine,
        ca: &SigningCa,
        approved: ApprovedOperator<'_>,
    ) -> Result<(OperatorRecord, Issued)> {
        crate::ca_status::ensure_not_revoked(self.store.as_ref(), &ca.context.id)?;
        let issued = engine.issue(ca, approved.profile, approved.request, by)?;
        let record = OperatorRecord {
            name: approved.name,
            role: approved.role,
            issuer: ca.context.id.clone(),
            serial: issued.serial,
            created_at: self.clock.now_unix(),
            disabled_at: None,
        };
        self.store
            .add_operator(record.clone(), by, record.created_at)?;
        tracing::info!(operator = %record.name, role = %record.role, serial = %record.serial, "operator registered");
        Ok((record, issued))
    }

    pub fn list(&self) -> Result<Vec<OperatorRecord>> {
        Ok(self.store.operators()?)
    }

    /// Refuses to disable `name` when that would leave fewer than `keep` active security
    /// officers: with fewer than a dual-control request needs, nobody could add or disable
    /// an operator through the admin API any more (only the host's `nesca operator add`).
    pub fn check_disable(&self, name: &OperatorName, keep: u32) -> Result<()> {
        let all = self.store.operators()?;
        let target = all
            .iter()
            .find(|o| &o.name == name && o.disabled_at.is_none())
            .ok_or_else(|| RaError::NotFound {
                field: "name",
                rule: format!("no active operator \"{name}\""),
            })?;
        if target.role != OperatorRole::SecurityOfficer {
            return Ok(());
        }
        let mut active = 0u32;
        for o in all
            .iter()
            .filter(|o| o.role == OperatorRole::SecurityOfficer)
        {
            if self.can_act(o)? {
                active += 1;
            }
        }
        if active <= keep {
            return Err(RaError::Conflict {
                field: "name",
                rule: format!(
                    "disabling \"{name}\" would leave {} active security officer(s); dual control needs {keep}",
                    active - 1
                ),
            });
        }
        Ok(())
    }

    /// Whether `o` can act now: not disabled, with an operator certificate that is active
    /// and within its validity (one whose certificate was revoked cannot act, disabled or
    /// not).
    pub fn can_act(&self, o: &OperatorRecord) -> Result<bool> {
        can_act(self.store.as_ref(), self.clock.now_unix(), o)
    }

    /// Disables an active operator: their certificate opens nothing from the next request on.
    pub fn disable(&self, by: &Principal, name: &OperatorName) -> Result<OperatorRecord> {
        let record = self
            .store
            .disable_operator(name, by, self.clock.now_unix())?;
        tracing::info!(operator = %name, "operator disabled");
        Ok(record)
    }

    /// The operator `end_entity` (DER, as the TLS handshake verified it up to one of
    /// `issuers`) authenticates now: nesca's own record of that very certificate, an operator
    /// certificate, active and valid now, under a CA its root has not revoked, held by a
    /// registered operator who is not disabled. Checked on every request.
    pub fn authenticate(
        &self,
        end_entity: &[u8],
        issuers: &[IssuerId],
    ) -> std::result::Result<OperatorActor, OperatorRefusal> {
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "operator status cannot be read");
            OperatorRefusal::Unavailable
        };
        let serial = crate::certificate_serial(end_entity)
            .ok_or(OperatorRefusal::NotAnOperatorCertificate)?;
        let mut found = None;
        for issuer in issuers {
            found = self
                .store
                .get(Some(issuer), &serial)
                .map_err(|e| unavailable(&e))?
                .filter(|r| r.cert_der.as_deref() == Some(end_entity));
            if found.is_some() {
                break;
            }
        }
        let record = found.ok_or(OperatorRefusal::NotAnOperatorCertificate)?;
        if record.profile != ca_core::profile::ProfileName::Operator {
            return Err(OperatorRefusal::NotAnOperatorCertificate);
        }
        if record.status != CertStatus::Active {
            return Err(OperatorRefusal::Revoked);
        }
        let now = self.clock.now_unix();
        if now < record.not_before || now > record.not_after {
            return Err(OperatorRefusal::NotValidNow);
        }
        if crate::ca_status::is_revoked_id(self.store.as_ref(), &record.issuer)
            .map_err(|e| unavailable(&e))?
        {
            return Err(OperatorRefusal::Revoked);
        }
        let operator = self
            .store
            .operator_by_certificate(&record.issuer, &record.serial)
            .map_err(|e| unavailable(&e))?
            .filter(|o| o.disabled_at.is_none())
            .ok_or(OperatorRefusal::NotActive)?;
        Ok(OperatorActor {
            name: operator.name,
            role: operator.role,
            serial: operator.serial,
        })
    }
}

/// Whether `o` can act at `now` (see [`Operators::can_act`]).
pub fn can_act(store: &dyn Store, now: ca_core::UnixTime, o: &OperatorRecord) -> Result<bool> {
    if o.disabled_at.is_some() {
        return Ok(false);
    }
    Ok(store.get(Some(&o.issuer), &o.serial)?.is_some_and(|c| {
        c.status == CertStatus::Active && c.not_before <= now && now <= c.not_after
    }))
}

/// Whether two names name the same person as far as registration goes: equal once case,
/// runs of spaces and Unicode composition (a precomposed `ü` against `u` and a combining
/// diaeresis) are set aside. Invisible characters never get this far ([`OperatorName`]).
pub fn same_person_name(a: &OperatorName, b: &OperatorName) -> bool {
    fn folded(n: &OperatorName) -> String {
        n.as_str()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            // Combining marks (U+0300–U+036F) dropped: "Gu\u{308}ven" and "Güven" both fold
            // to letters a reader sees alike, once each precomposed letter is its base letter (`turkish::base_letter`).
            .map(crate::turkish::base_letter)
            .filter(|c| !('\u{0300}'..='\u{036F}').contains(c))
            .flat_map(char::to_lowercase)
            .collect()
    }
    folded(a) == folded(b)
}

/// The SubjectPublicKeyInfo (DER) of a certificate (DER), if it parses.
fn subject_public_key_der(cert_der: &[u8]) -> Option<Vec<u8>> {
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    cert.tbs_certificate.subject_public_key_info.to_der().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ca_core::store::prelude::*;
    use ca_core::testkit::{fixture, nes_application};

    fn csr() -> VerifiedCsr {
        VerifiedCsr::parse(&ca_core::testkit::p256_csr()).unwrap()
    }

    #[test]
    fn an_operator_authenticates_until_disabled_or_revoked() {
        let f = fixture();
        let ops = Operators::new(f.store.clone(), f.engine.clock().clone());
        let profile = OperatorProfile::new(365).unwrap();
        let name = OperatorName::parse("Ayşe Yılmaz").unwrap();
        let approved = ops
            .approve(
                name.clone(),
                OperatorRole::RaOfficer,
                csr(),
                &profile,
                ("TR", "ESHS"),
                30,
            )
            .unwrap();
        let (record, issued) = ops
            .register(&Principal::HostOperator, &f.engine, &f.ca, approved)
            .unwrap();
        let issuers = [f.ca.context.id.clone()];
        let actor = ops.authenticate(&issued.cert_der, &issuers).unwrap();
        assert_eq!(actor.name, name);
        assert_eq!(actor.role, OperatorRole::RaOfficer);
        assert_eq!(actor.serial, record.serial);

        // One person, one role: the same name again is refused, in any role.
        let again = ops
            .approve(
                name.clone(),
                OperatorRole::Auditor,
                csr(),
                &profile,
                ("TR", "ESHS"),
                30,
            )
            .err()
            .unwrap();
        assert!(
            again
                .to_string()
                .starts_with("name: \"Ayşe Yılmaz\" is registered already"),
            "{again}"
        );

        // A NES is not an operator certificate; nor are other bytes.
        let nes = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                nes_application(None, false),
                &Principal::HostOperator,
            )
            .unwrap();
        assert_eq!(
            ops.authenticate(&nes.cert_der, &issuers),
            Err(OperatorRefusal::NotAnOperatorCertificate)
        );
        assert_eq!(
            ops.authenticate(b"junk", &issuers),
            Err(OperatorRefusal::NotAnOperatorCertificate)
        );
        assert_eq!(
            ops.authenticate(&issued.cert_der, &[]),
            Err(OperatorRefusal::NotAnOperatorCertificate)
        );

        ops.disable(&Principal::HostOperator, &name).unwrap();
        assert_eq!(
            ops.authenticate(&issued.cert_der, &issuers),
            Err(OperatorRefusal::NotActive)
        );
        assert!(ops.disable(&Principal::HostOperator, &name).is_err());
    }

    #[test]
    fn names_that_read_alike_and_a_key_registered_already_are_one_person() {
        let n = |s: &str| OperatorName::parse(s).unwrap();
        assert!(same_person_name(&n("Selin Güven"), &n("selin  GÜVEN")));
        assert!(same_person_name(
            &n("Selin Güven"),
            &n("Selin Gu\u{308}ven")
        ));
        assert!(same_person_name(&n("Ayşe Işık"), &n("AYSE ISIK")));
        assert!(!same_person_name(&n("Selin Güven"), &n("Selin Güvenç")));

        let f = fixture();
        let ops = Operators::new(f.store.clone(), f.engine.clock().clone());
        let profile = OperatorProfile::new(365).unwrap();
        let csr_der = ca_core::testkit::p256_csr();
        let approved = ops
            .approve(
                n("Selin Güven"),
                OperatorRole::SecurityOfficer,
                VerifiedCsr::parse(&csr_der).unwrap(),
                &profile,
                ("TR", "ESHS"),
                30,
            )
            .unwrap();
        ops.register(&Principal::HostOperator, &f.engine, &f.ca, approved)
            .unwrap();
        let err = ops
            .approve(
                n("SELIN GUVEN"),
                OperatorRole::RaOfficer,
                csr(),
                &profile,
                ("TR", "ESHS"),
                30,
            )
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("name: "), "{err}");
        let err = ops
            .approve(
                n("Başka Biri"),
                OperatorRole::RaOfficer,
                VerifiedCsr::parse(&csr_der).unwrap(),
                &profile,
                ("TR", "ESHS"),
                30,
            )
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("csr: this key is registered already"),
            "{err}"
        );
    }

    #[test]
    fn a_revoked_operator_certificate_authenticates_nobody() {
        let f = fixture();
        let ops = Operators::new(f.store.clone(), f.engine.clock().clone());
        let profile = OperatorProfile::new(365).unwrap();
        let name = OperatorName::parse("Mehmet Kaya").unwrap();
        let approved = ops
            .approve(
                name,
                OperatorRole::Auditor,
                csr(),
                &profile,
                ("TR", "ESHS"),
                30,
            )
            .unwrap();
        let (record, issued) = ops
            .register(&Principal::HostOperator, &f.engine, &f.ca, approved)
            .unwrap();
        let lifecycle = crate::lifecycle::Lifecycle::new(f.store.clone(), f.engine.clock().clone());
        lifecycle
            .apply(ca_core::lifecycle::LifecycleRequest {
                request_id: ca_core::lifecycle::RequestId::random(),
                issuer: None,
                serial: record.serial,
                holder: None,
                action: ca_core::lifecycle::LifecycleAction::Revoke {
                    reason: None,
                    invalidity_date: None,
                },
                actor: Principal::HostOperator,
            })
            .unwrap();
        assert_eq!(
            ops.authenticate(&issued.cert_der, std::slice::from_ref(&f.ca.context.id)),
            Err(OperatorRefusal::Revoked)
        );
        assert!(f
            .store
            .operator_by_certificate(&record.issuer, &record.serial)
            .unwrap()
            .is_some());
    }
}
