//! Registered licensed ESHS operators ("partners") and their role and secure-communication
//! certificates: who may be registered, and the rule that only a registered, active partner
//! receives a certificate.

use std::sync::Arc;

use ca_core::engine::{CertRequest, Engine, Issued, SigningCa};
use ca_core::profile::{check_validity_days, partner_subject, PartnerCertProfile};
use ca_core::store::{CertRecord, CertStatus, Store, SubjectRecord};
use ca_core::{PartnerId, PartnerRecord, Principal, UnixTime, VerifiedCsr};

use crate::error::{RaError, Result};

/// The registry of partners.
pub struct Partners {
    store: Arc<dyn Store>,
}

/// A partner certificate the registration authority approved: the partner was registered and
/// active, the subject is built from its record, the validity is within the profile. Only
/// [`Partners::approve_certificate`] makes one, and only [`Partners::issue_certificate`]
/// takes one.
pub struct ApprovedPartnerCertificate<'p> {
    partner: PartnerRecord,
    profile: &'p PartnerCertProfile,
    request: CertRequest,
}

impl ApprovedPartnerCertificate<'_> {
    /// The partner it is for.
    pub fn partner(&self) -> &PartnerRecord {
        &self.partner
    }
}

impl Partners {
    /// The registry over a store.
    pub fn new(store: Arc<dyn Store>) -> Partners {
        Partners { store }
    }

    /// Registers a partner (active from now).
    pub fn register(
        &self,
        by: &Principal,
        id: PartnerId,
        name: String,
        license_no: String,
        now: UnixTime,
    ) -> Result<PartnerRecord> {
        let record = PartnerRecord {
            id,
            name,
            license_no,
            created_at: now,
            active: true,
        };
        self.store.add_partner(record.clone(), by, now)?;
        Ok(record)
    }

    /// No new certificates for the partner from now on; its existing ones stay until they
    /// are revoked one by one.
    pub fn deactivate(
        &self,
        by: &Principal,
        id: &PartnerId,
        now: UnixTime,
    ) -> Result<PartnerRecord> {
        self.store.deactivate_partner(id, by, now)?;
        self.store
            .partner(id)?
            .ok_or_else(|| RaError::invalid("id", format!("partner \"{id}\" disappeared")))
    }

    /// Every registered partner.
    pub fn list(&self) -> Result<Vec<PartnerRecord>> {
        Ok(self.store.partners()?)
    }

    /// Approves a certificate for a partner's device or system: the validity must be within
    /// the profile, and the partner registered and active — an unknown and an inactive
    /// partner get the same refusal. Reads the store only: nothing is signed yet.
    pub fn approve_certificate<'p>(
        &self,
        partner: &PartnerId,
        profile: &'p PartnerCertProfile,
        common_name: &str,
        csr: VerifiedCsr,
        validity_days: u32,
    ) -> Result<ApprovedPartnerCertificate<'p>> {
        check_validity_days(profile, validity_days)?;
        let record = self
            .store
            .partner(partner)?
            .filter(|p| p.active)
            .ok_or_else(|| unknown_partner(partner.as_str()))?;
        let subject = partner_subject(&record, common_name)?;
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
        Ok(ApprovedPartnerCertificate {
            partner: record,
            profile,
            request,
        })
    }

    /// Issues an approved partner certificate.
    pub fn issue_certificate(
        &self,
        by: &Principal,
        engine: &Engine,
        ca: &SigningCa,
        approved: ApprovedPartnerCertificate<'_>,
    ) -> Result<Issued> {
        Ok(engine.issue(ca, approved.profile, approved.request, by)?)
    }
}

impl Partners {
    /// Revokes (cessationOfOperation) every active or suspended role and secure-communication
    /// certificate of `partner` — those whose subject names its licence number — each under
    /// the lifecycle request id `{request_id}-{serial}`, so that doing it again records nothing
    /// twice. Returns the serials revoked. (The admin API's approved
    /// `revoke-partner-certificates`.)
    pub fn revoke_certificates(
        &self,
        lifecycle: &crate::lifecycle::Lifecycle,
        partner: &PartnerId,
        request_id: &str,
        by: &Principal,
    ) -> Result<Vec<ca_core::Serial>> {
        use ca_core::lifecycle::{LifecycleAction, LifecycleRequest, RequestId, RevocationReason};
        let record = self
            .store
            .partner(partner)?
            .ok_or_else(|| unknown_partner(partner.as_str()))?;
        let mut revoked = Vec::new();
        for cert in self.store.list(None)? {
            let live = matches!(cert.status, CertStatus::Active | CertStatus::Suspended);
            let theirs = cert.profile.is_partner()
                && cert.cert_der.as_deref().is_some_and(|der| {
                    nesca_pkix::subject::subject_attribute(der, "2.5.4.5")
                        .ok()
                        .flatten()
                        .is_some_and(|l| l == record.license_no)
                });
            if !(live && theirs) {
                continue;
            }
            lifecycle.apply(LifecycleRequest {
                request_id: RequestId::new(&format!("{request_id}-{}", cert.serial))?,
                issuer: Some(cert.issuer.clone()),
                serial: cert.serial,
                holder: None,
                action: LifecycleAction::Revoke {
                    reason: Some(RevocationReason::CessationOfOperation),
                    invalidity_date: None,
                },
                actor: by.clone(),
            })?;
            revoked.push(cert.serial);
        }
        Ok(revoked)
    }
}

/// The refusal for a partner that is not registered or not active.
pub fn unknown_partner(id: &str) -> RaError {
    RaError::invalid("partner", format!("no registered ESHS partner \"{id}\""))
}

/// Why a client certificate does not authenticate a partner's system to the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelClientRefusal {
    /// Not a role or secure-communication certificate of a registered partner.
    NotAPartnerCertificate,
    /// Suspended or revoked.
    Revoked,
    /// Reserved or failed: never issued.
    NotIssued,
    /// The partner it was issued to is no longer registered or active.
    PartnerInactive,
    /// Not a certificate nesca issued (unknown serial, or other bytes under that serial).
    Unknown,
    /// The store could not be read: refused, never let through.
    Unavailable,
    /// Outside its validity period now.
    NotValidNow,
}

impl ChannelClientRefusal {
    /// Why, in words for the log and the answer.
    pub fn reason(self) -> &'static str {
        match self {
            ChannelClientRefusal::NotAPartnerCertificate => "not a partner certificate",
            ChannelClientRefusal::Revoked => "the certificate is suspended or revoked",
            ChannelClientRefusal::NotIssued => "the certificate was never issued",
            ChannelClientRefusal::PartnerInactive => "the partner is no longer active",
            ChannelClientRefusal::Unknown => "not a certificate nesca issued",
            ChannelClientRefusal::Unavailable => "the partner's status cannot be read now",
            ChannelClientRefusal::NotValidNow => "the certificate is not valid now",
        }
    }
}

/// The refusal when the store cannot be read; the store's error goes to the log, where an
/// operator can see why, and not to the partner.
fn unavailable(e: ca_core::CaError) -> ChannelClientRefusal {
    tracing::warn!(error = %e, "partner status cannot be read");
    ChannelClientRefusal::Unavailable
}

/// The partner certificates presented to the channels, checked on every request: a
/// certificate revoked, or a partner deactivated, after the TLS handshake must not keep an
/// open connection working; nor a certificate whose CA its root revoked since. One indexed
/// read of the certificate, of its CA's status and a read of the (short) partner registry per
/// request — no cache, so nothing is ever served from a stale verdict.
pub struct ChannelClients {
    store: Arc<dyn Store>,
    issuers: Vec<ca_core::IssuerId>,
    clock: Arc<dyn ca_core::clock::Clock>,
}

impl ChannelClients {
    /// Partner certificates of `issuers` (the CA that issues them, every generation of it:
    /// a partner certificate from before a key rollover authenticates until it expires).
    pub fn new(
        store: Arc<dyn Store>,
        issuers: Vec<ca_core::IssuerId>,
        clock: Arc<dyn ca_core::clock::Clock>,
    ) -> ChannelClients {
        ChannelClients {
            store,
            issuers,
            clock,
        }
    }

    /// Whether `end_entity` (DER, as the handshake verified it) still authenticates a
    /// partner's system: nesca's own record of it, a partner certificate, active, of a
    /// registered and active partner.
    pub fn check(&self, end_entity: &[u8]) -> std::result::Result<(), ChannelClientRefusal> {
        let serial = crate::certificate_serial(end_entity).ok_or(ChannelClientRefusal::Unknown)?;
        let mut found = None;
        for issuer in &self.issuers {
            found = self
                .store
                .get(Some(issuer), &serial)
                .map_err(unavailable)?
                .filter(|r| r.cert_der.as_deref() == Some(end_entity));
            if found.is_some() {
                break;
            }
        }
        let record = found.ok_or(ChannelClientRefusal::Unknown)?;
        check_channel_client(&record)?;
        // Its CA revoked since (checked per request: no restart needed).
        let revoked = crate::ca_status::is_revoked_id(self.store.as_ref(), &record.issuer)
            .map_err(|e| {
                tracing::warn!(error = %e, "the CA's status cannot be read");
                ChannelClientRefusal::Unavailable
            })?;
        if revoked {
            return Err(ChannelClientRefusal::Revoked);
        }
        // The handshake checked the validity once; a kept-alive connection outlives it.
        let now = self.clock.now_unix();
        if now < record.not_before || now > record.not_after {
            return Err(ChannelClientRefusal::NotValidNow);
        }
        // The partner is named in the subject by its licence number (serialNumber).
        let licence = nesca_pkix::subject::subject_attribute(end_entity, "2.5.4.5")
            .ok()
            .flatten()
            .ok_or(ChannelClientRefusal::NotAPartnerCertificate)?;
        let partners = self.store.partners().map_err(unavailable)?;
        if partners.iter().any(|p| p.active && p.license_no == licence) {
            Ok(())
        } else {
            Err(ChannelClientRefusal::PartnerInactive)
        }
    }
}

/// The rule for the certificate a partner's system presents to the channels: nesca's own
/// record of it must be a partner certificate (role or secure communication), active.
pub fn check_channel_client(record: &CertRecord) -> std::result::Result<(), ChannelClientRefusal> {
    if !record.profile.is_partner() {
        return Err(ChannelClientRefusal::NotAPartnerCertificate);
    }
    match record.status {
        CertStatus::Active => Ok(()),
        CertStatus::Revoked | CertStatus::Suspended => Err(ChannelClientRefusal::Revoked),
        _ => Err(ChannelClientRefusal::NotIssued),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ca_core::profile::ProfileName;
    use ca_core::store::prelude::*;
    use ca_core::testkit::{fixture, nes_application};

    #[test]
    fn only_an_active_partner_certificate_authenticates_to_the_channels() {
        let f = fixture();
        let issued = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                nes_application(None, false),
                &ca_core::Principal::HostOperator,
            )
            .unwrap();
        let mut record = f.store.get(None, &issued.serial).unwrap().unwrap();
        assert_eq!(
            check_channel_client(&record),
            Err(ChannelClientRefusal::NotAPartnerCertificate)
        );
        for profile in [ProfileName::PartnerRole, ProfileName::PartnerSecureComm] {
            record.profile = profile;
            record.status = CertStatus::Active;
            assert_eq!(check_channel_client(&record), Ok(()));
            for status in [CertStatus::Suspended, CertStatus::Revoked] {
                record.status = status;
                assert_eq!(
                    check_channel_client(&record),
                    Err(ChannelClientRefusal::Revoked)
                );
            }
            record.status = CertStatus::Reserved;
            assert_eq!(
                check_channel_client(&record),
                Err(ChannelClientRefusal::NotIssued)
            );
        }
        record.profile = ProfileName::OcspSigner;
        record.status = CertStatus::Active;
        assert_eq!(
            check_channel_client(&record),
            Err(ChannelClientRefusal::NotAPartnerCertificate)
        );
    }

    #[test]
    fn a_partners_live_certificates_are_revoked_in_bulk_once() {
        use ca_core::clock::Clock;
        use ca_core::profile::{PartnerCertKind, PartnerProfileConfig};
        let f = fixture();
        let partners = Partners::new(f.store.clone());
        let lifecycle = crate::lifecycle::Lifecycle::new(f.store.clone(), f.clock.clone());
        let by = Principal::HostOperator;
        let profile = PartnerCertProfile::from_config(
            PartnerCertKind::Role,
            &PartnerProfileConfig::default(),
        )
        .unwrap();
        let mut serials = Vec::new();
        for (id, licence) in [("acme", "ESHS-1"), ("other", "ESHS-2")] {
            let id = PartnerId::parse(id).unwrap();
            partners
                .register(
                    &by,
                    id.clone(),
                    "A.Ş.".into(),
                    licence.into(),
                    f.clock.now_unix(),
                )
                .unwrap();
            let csr = VerifiedCsr::parse(&ca_core::testkit::p256_csr()).unwrap();
            let approved = partners
                .approve_certificate(&id, &profile, "kec-1", csr, 30)
                .unwrap();
            serials.push(
                partners
                    .issue_certificate(&by, &f.engine, &f.ca, approved)
                    .unwrap()
                    .serial,
            );
        }
        let acme = PartnerId::parse("acme").unwrap();
        let revoked = partners
            .revoke_certificates(&lifecycle, &acme, "bulk-r1", &by)
            .unwrap();
        assert_eq!(revoked, vec![serials[0]]);
        let status = |s| f.store.get(None, s).unwrap().unwrap().status;
        assert_eq!(status(&serials[0]), CertStatus::Revoked);
        assert_eq!(
            status(&serials[1]),
            CertStatus::Active,
            "another partner's stays"
        );
        // Again: nothing live is left.
        assert!(partners
            .revoke_certificates(&lifecycle, &acme, "bulk-r2", &by)
            .unwrap()
            .is_empty());
        assert!(partners
            .revoke_certificates(
                &lifecycle,
                &PartnerId::parse("nobody").unwrap(),
                "bulk-r3",
                &by
            )
            .is_err());
    }
}
