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

    /// Approves an operator certificate for `name` in `role` with the CSR's key: the name
    /// must not be registered (in any role). Reads the store only.
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
        if let Some(existing) = self.store.operator(&name)? {
            return Err(RaError::Conflict {
                field: "name",
                rule: format!(
                    "\"{name}\" is registered already (as {}); one person holds one role",
                    existing.role
                ),
            });
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
        let active = all
            .iter()
            .filter(|o| o.role == OperatorRole::SecurityOfficer && o.disabled_at.is_none())
            .count() as u32;
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
