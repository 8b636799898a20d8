//! The one path by which an application becomes a NES certificate, for every front channel
//! (KDHS, KEC) and for institutional production alike:
//!
//! 1. the request's limits are checked (validity, the certificate it overwrites, the transport
//!    key a card key is to be wrapped for: registered, not withdrawn, within its validity —
//!    [`crate::transport_keys`]) — a refused request uses up nothing;
//! 2. the application's reference is recorded as pending *before* any key is generated or
//!    anything signed, so a replay or a retry gets the first result and never a second
//!    certificate;
//! 3. the card key is generated in the HSM and wrapped for the registered transport key, when
//!    asked; the record names the key it was wrapped for;
//! 4. ca-core issues (profile → lint → reserve serial → sign → compare), and in the same store
//!    transaction that stores the certificate records the application's outcome: its wrapped
//!    key, the commitment it awaits, the enrollment it produces and its invoice line;
//! 5. a failure after step 2 is recorded as the application's refusal, so its replay gets the
//!    same refusal.

use std::sync::Arc;

use crate::commitment::{commitment_text, new_commitment, CommitmentSubject};
use ca_core::engine::{Engine, Issued, NesApplication, SigningCa};
use ca_core::profile::{unix_time, NesProfile};
use ca_core::store::{
    ApplicationIssued, ApplicationOutcome, ApplicationStatus, CertStatus, ChannelApplication,
    FinishedApplication, ProducedEnrollment, Store,
};
use ca_core::{
    CaError, ChannelName, PersonName, Principal, Serial, SubjectKey, Tckn, UnixTime, VerifiedCsr,
};

use crate::card_key::WrappedCardKey;
use crate::error::{RaError, Result};
use crate::refusal::Refusal;
use crate::transport_keys::{TransportKeys, TrustedTransportKey};
use ca_core::transport_key::TransportKeyId;

/// A channel's reference for one application: 1 to 128 of `A-Z a-z 0-9 . _ : -` (a digest in
/// hex or base64url fits). An application is issued at most once per channel and reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelRef(String);

impl ChannelRef {
    /// Longest reference.
    pub const MAX_LEN: usize = 128;

    /// Checks a reference.
    pub fn parse(r: &str) -> Result<ChannelRef> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
        if r.is_empty() || r.len() > Self::MAX_LEN || !r.chars().all(ok_char) {
            return Err(RaError::invalid(
                "channel_ref",
                "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'",
            ));
        }
        Ok(ChannelRef(r.to_owned()))
    }

    /// The reference.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The person a NES is for, parsed at the edge.
#[derive(Debug, Clone)]
pub struct NesHolder {
    pub tckn: Tckn,
    pub given_name: PersonName,
    pub surname: PersonName,
}

/// Where the subscriber's key comes from.
pub enum SubscriberKey {
    /// The applicant's own key, proven by a CSR whose signature was checked.
    Csr(VerifiedCsr),
    /// A key pair generated in the HSM and wrapped for a registered transport key (RSA) of
    /// the card-personalisation system or a KEC device, named by its id: never a key the
    /// request brings.
    Card {
        algorithm: hsm::KeyAlgorithm,
        transport_key: TransportKeyId,
    },
}

/// One application for a NES certificate.
pub struct NesRequest {
    /// The channel it arrived through (production's applications are the institutional
    /// channel's).
    pub channel: ChannelName,
    /// The channel's reference: the certificate is issued at most once for it.
    pub channel_ref: ChannelRef,
    pub holder: NesHolder,
    pub key: SubscriberKey,
    /// `None`: the profile's default.
    pub validity_days: Option<u32>,
    /// Issue suspended until the holder's signed commitment arrives within this many seconds
    /// (identity-card channels); `None`: issue active.
    pub commitment_within_seconds: Option<i64>,
    /// A live certificate of the same person that the new one replaces (a full card slot).
    pub overwrite: Option<Serial>,
    /// The institutional enrollment this certificate produces, with its invoice line.
    pub production: Option<ProducedEnrollment>,
}

/// A NES issued for an application.
#[derive(Debug, Clone)]
pub struct IssuedNes {
    pub serial: Serial,
    pub cert_der: Vec<u8>,
    /// The HSM-generated key, wrapped for the card.
    pub wrapped_key: Option<WrappedCardKey>,
    /// True when this answers a reference seen before.
    pub replayed: bool,
}

/// What [`NesIssuance::apply`] did.
#[derive(Debug)]
pub enum NesOutcome {
    /// The certificate was issued now.
    Issued(IssuedNes),
    /// The reference was seen before: what was recorded for it.
    SeenBefore(ChannelApplication),
}

/// Issuance of NES certificates for applications: the engine, the issuing CA, the NES profile
/// and the token that generates card keys.
pub struct NesIssuance {
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub ca: SigningCa,
    pub nes: NesProfile,
    pub hsm: hsm::Hsm,
    /// The RSA mechanisms card keys may be wrapped with (`[hsm] allow_rsa_oaep_sha1_wrap`).
    pub wrap_policy: hsm::WrapPolicy,
}

/// The requested validity must be within the NES profile's maximum. `field` is the name the
/// request gives it (`validity_days` in an application, `validity-days` on the command line).
pub fn check_validity(nes: &NesProfile, days: u32, field: &'static str) -> Result<()> {
    ca_core::profile::check_validity_days(nes, days).map_err(|e| match e {
        CaError::Invalid { rule, .. } => RaError::invalid(field, rule),
        other => RaError::Ca(other),
    })
}

impl NesIssuance {
    /// Issues for an application, once per channel reference; see the module documentation.
    pub fn apply(&self, by: &Principal, req: NesRequest) -> Result<NesOutcome> {
        if let Some(days) = req.validity_days {
            check_validity(&self.nes, days, "validity_days")?;
        }
        if let Some(serial) = &req.overwrite {
            self.check_overwrite(serial, &req.holder.tckn)?;
        }
        let transport = match &req.key {
            SubscriberKey::Card { transport_key, .. } => {
                Some(TransportKeys::new(self.store.clone()).usable(
                    crate::transport_keys::FIELD,
                    transport_key,
                    self.now(),
                )?)
            }
            SubscriberKey::Csr(_) => None,
        };
        let channel = &req.channel;
        let reference = req.channel_ref.as_str();
        if let Some(seen) = self
            .store
            .begin_application(channel, reference, by, self.now())?
        {
            return Ok(NesOutcome::SeenBefore(seen));
        }
        match self.issue(by, &req, transport.as_ref()) {
            Ok(issued) => Ok(NesOutcome::Issued(issued)),
            Err(e) => {
                let refusal = Refusal::of(&e);
                let recorded = if refusal.kind.is_transient() {
                    // Not the request's fault (the HSM or the store down): released, so that
                    // a retry of the same reference issues instead of replaying the failure.
                    self.store
                        .release_pending_application(channel, reference, by, self.now())
                        .map(|_| ())
                } else {
                    // Recorded so that a replay gets the same refusal.
                    self.store.finish_application(
                        channel,
                        reference,
                        ApplicationOutcome::Refused(refusal.to_record()),
                        by,
                        self.now(),
                    )
                };
                // If even that cannot be written, the application stays pending and the next
                // start refuses it.
                if let Err(f) = recorded {
                    tracing::warn!(error = %f, %channel, channel_ref = reference, "could not record the failed application");
                }
                Err(e)
            }
        }
    }

    /// Issues a NES that the host operator asks for directly (`nesca issue`): the holder's own
    /// key, proven by its CSR, no channel application and no commitment. The validity was
    /// checked with [`check_validity`] before the token was opened.
    pub fn issue_for_operator(
        engine: &Engine,
        ca: &SigningCa,
        nes: &NesProfile,
        holder: NesHolder,
        csr: VerifiedCsr,
        validity_days: Option<u32>,
    ) -> Result<Issued> {
        if let Some(days) = validity_days {
            check_validity(nes, days, "validity-days")?;
        }
        Ok(engine.issue_nes(
            ca,
            nes,
            NesApplication {
                key: csr.into(),
                tckn: holder.tckn,
                given_name: holder.given_name,
                surname: holder.surname,
                validity_days,
                await_commitment: false,
            },
            &Principal::HostOperator,
        )?)
    }

    /// Whether the certificate `serial` still awaits its holder's signed commitment: the window
    /// in which a retried application is a retry for a card that did not get its answer, and
    /// may be handed the card key again or fill in the holder's details.
    pub fn awaits_commitment(&self, serial: &Serial) -> Result<bool> {
        Ok(self
            .store
            .commitment(serial)?
            .is_some_and(|c| c.status == ca_core::store::CommitmentStatus::Pending))
    }

    /// The answer to a reference seen before: the same certificate, or the same refusal.
    pub fn replay(&self, seen: ChannelApplication) -> Result<IssuedNes> {
        match (seen.status, seen.serial) {
            (ApplicationStatus::Issued, Some(serial)) => {
                // A card key is handed out again only while the key it was wrapped for may
                // still be wrapped for: a withdrawn (leaked) transport key gets nothing.
                if let Some(wrapped) = &seen.wrapped_key {
                    // And only while its certificate awaits its commitment: a retry is for a
                    // card that did not get the key the first time. Once the commitment is in
                    // (the card has the key and uses it) or its deadline passed, the private
                    // key of a live certificate is not handed out again, to anyone who can
                    // write a fresh KDB with the same kdb_id.
                    if !self.awaits_commitment(&serial)? {
                        return Err(RaError::Conflict {
                            field: "hsm_key",
                            rule: format!(
                                "the card key of certificate {serial} is handed out again only while the certificate awaits its commitment; it no longer does (a new verification, with a new kdb_id, applies anew)"
                            ),
                        });
                    }
                    let Some(id) = &wrapped.transport_key else {
                        return Err(RaError::invalid(
                            crate::transport_keys::FIELD,
                            "the card key of this application was wrapped for no registered transport key; it is not handed out again",
                        ));
                    };
                    TransportKeys::new(self.store.clone()).usable(
                        crate::transport_keys::FIELD,
                        id,
                        self.now(),
                    )?;
                }
                let cert_der = self
                    .store
                    .get(Some(&self.ca.context.id), &serial)?
                    .and_then(|r| r.cert_der)
                    .ok_or_else(|| RaError::NotFound {
                        field: "channel_ref",
                        rule: format!("certificate {serial} of a replayed application is missing"),
                    })?;
                Ok(IssuedNes {
                    serial,
                    cert_der,
                    wrapped_key: seen.wrapped_key,
                    replayed: true,
                })
            }
            (ApplicationStatus::Refused, _) => Err(RaError::RefusedBefore {
                refusal: Refusal::from_record(&seen.error.unwrap_or_default()),
            }),
            _ => Err(RaError::Conflict {
                field: "channel_ref",
                rule: format!("application {} is still being processed", seen.channel_ref),
            }),
        }
    }

    /// The new certificate may replace only a live certificate of the same person.
    fn check_overwrite(&self, serial: &Serial, tckn: &Tckn) -> Result<()> {
        let record = self
            .store
            .get(None, serial)?
            .ok_or_else(|| RaError::NotFound {
                field: "overwrite_serial",
                rule: format!("certificate {serial} is not found"),
            })?;
        if record.subject.tckn.as_ref() != Some(tckn) {
            return Err(RaError::Refused {
                field: "overwrite_serial",
                rule: format!("certificate {serial} belongs to another person"),
            });
        }
        // In use, expired or not: a card slot holding an expired certificate may be
        // overwritten (the acceptance then supersedes only a live one, `ra::commitment`).
        if !matches!(record.status, CertStatus::Active | CertStatus::Suspended) {
            return Err(RaError::Refused {
                field: "overwrite_serial",
                rule: format!(
                    "certificate {serial} is {}, not active or suspended",
                    record.status
                ),
            });
        }
        Ok(())
    }

    /// Generates the card key if asked and issues, recording the application's outcome in the
    /// certificate's transaction.
    fn issue(
        &self,
        by: &Principal,
        req: &NesRequest,
        transport: Option<&TrustedTransportKey>,
    ) -> Result<IssuedNes> {
        // Checked at each issuance: a CA revoked while a server runs issues nothing more.
        crate::ca_status::ensure_not_revoked(self.store.as_ref(), &self.ca.context.id)?;
        let (key, wrapped) = match (&req.key, transport) {
            (SubscriberKey::Csr(csr), _) => (SubjectKey::from(csr.clone()), None),
            (SubscriberKey::Card { .. }, None) => {
                return Err(RaError::invalid(
                    crate::transport_keys::FIELD,
                    "no trusted transport key was decided for the card key",
                ))
            }
            (SubscriberKey::Card { algorithm, .. }, Some(transport)) => {
                let card = self
                    .hsm
                    .generate_wrapped_card_key(*algorithm, transport.spki_der(), self.wrap_policy)
                    .map_err(|e| match e {
                        // A transport key nesca will not wrap under is the request's fault.
                        hsm::HsmError::TransportKey { .. } => {
                            RaError::invalid("hsm_key", e.to_string())
                        }
                        other => RaError::CardKey(other),
                    })?;
                let key = SubjectKey::generated(card.public_key.spki_der())?;
                (
                    key,
                    Some(WrappedCardKey::from_hsm(&card, transport.id().clone())),
                )
            }
        };
        let deadline = req
            .commitment_within_seconds
            .map(|within| self.now().plus_secs(within));
        let record = |issued: &Issued| -> ca_core::Result<_> {
            let commitment = match deadline {
                Some(deadline) => Some(new_commitment(
                    self.commitment_text(&req.holder, issued)?,
                    deadline,
                    req.overwrite,
                )),
                None => None,
            };
            Ok(Some(FinishedApplication {
                production: req.production.clone(),
                channel: req.channel.clone(),
                channel_ref: req.channel_ref.as_str().to_owned(),
                issued: ApplicationIssued {
                    serial: issued.serial,
                    wrapped_key: wrapped.clone(),
                    commitment,
                },
            }))
        };
        let issued = self.engine.issue_nes_then(
            &self.ca,
            &self.nes,
            NesApplication {
                key,
                tckn: req.holder.tckn,
                given_name: req.holder.given_name.clone(),
                surname: req.holder.surname.clone(),
                validity_days: req.validity_days,
                await_commitment: deadline.is_some(),
            },
            by,
            &record,
        )?;
        Ok(IssuedNes {
            serial: issued.serial,
            cert_der: issued.cert_der,
            wrapped_key: wrapped,
            replayed: false,
        })
    }

    /// The commitment text of a freshly signed certificate.
    fn commitment_text(&self, holder: &NesHolder, issued: &Issued) -> ca_core::Result<String> {
        use der::Decode as _;
        let cert = x509_cert::Certificate::from_der(&issued.cert_der)
            .map_err(CaError::der("Certificate"))?;
        let validity = &cert.tbs_certificate.validity;
        Ok(commitment_text(
            &CommitmentSubject {
                tckn: holder.tckn.as_str(),
                given_name: &holder.given_name.to_string(),
                surname: &holder.surname.to_string(),
                issuer: self.ca.context.id.as_str(),
            },
            &issued.serial,
            unix_time(&validity.not_before).secs(),
            unix_time(&validity.not_after).secs(),
            &issued.cert_der,
        ))
    }

    /// Now, as the store keeps instants, from the engine's clock.
    pub fn now(&self) -> UnixTime {
        self.engine.clock().now_unix()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_references_are_checked() {
        for good in ["a", "kdbo-0123abcd", "A.b_c:d-e", &"x".repeat(128)] {
            assert_eq!(ChannelRef::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "a b", "a/b", "ş", &"x".repeat(129)] {
            let e = ChannelRef::parse(bad).unwrap_err();
            assert!(
                e.to_string().starts_with("channel_ref: must be 1 to 128"),
                "{e}"
            );
        }
    }
}
