//! The commitment (taahhütname) of a certificate issued through an identity-card channel:
//! its text, the check of the holder's signature over it, and the deadline sweep.
//!
//! The certificate is stored suspended at issuance ([`ca_core::engine::CertRequest`]'s
//! `await_commitment`); the holder signs the text with the new key (CMS SignedData, RFC 5652);
//! [`Commitments::accept`] verifies that signature against the new certificate and the
//! recorded digest, and the store keeps it as evidence and releases the suspension in one
//! transaction. [`Commitments::expire_due`] revokes (cessationOfOperation) what was not signed
//! in time.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use nesca_pkix::cms::{verify_signed_data, Signer};
use sha2::{Digest, Sha256};

use ca_core::clock::{unix_seconds, Clock};
use ca_core::{Principal, SystemTask};

use crate::error::{RaError, Result};
use ca_core::store::{
    CommitmentAcceptance, CommitmentOutcome, CommitmentRecord, NewCommitment, Store,
};
use ca_core::Serial;

/// Who revokes a certificate whose commitment missed its deadline.
const DEADLINE: Principal = Principal::System(SystemTask::CommitmentDeadline);

/// Who the commitment is for, as the certificate states it.
pub struct CommitmentSubject<'a> {
    pub tckn: &'a str,
    pub given_name: &'a str,
    pub surname: &'a str,
    /// The issuing CA's id.
    pub issuer: &'a str,
}

/// The commitment text for a certificate: the holder's undertakings under Law 5070 and the
/// certificate it is about (serial, validity and the certificate's own SHA-256, so that the
/// signature binds this certificate and no other).
pub fn commitment_text(
    who: &CommitmentSubject<'_>,
    serial: &Serial,
    not_before: i64,
    not_after: i64,
    cert_der: &[u8],
) -> String {
    let date = |s: i64| ca_core::rfc3339(UNIX_EPOCH + Duration::from_secs(s.max(0) as u64));
    format!(
        "TAAHHÜTNAME\n\
         \n\
         Ben, {given} {surname} (T.C. Kimlik No {tckn}), {issuer} tarafından {nb} tarihinde \
         {serial} seri numarası ile adıma düzenlenen ve {na} tarihine kadar geçerli nitelikli \
         elektronik sertifikayı teslim aldığımı; imza oluşturma verisini yalnızca kendim \
         kullanacağımı ve başkasına kullandırmayacağımı; imza oluşturma verisinin veya \
         sertifikanın güvenliğinden şüphe ettiğimde sertifikamı derhal iptal ettireceğimi; \
         5070 sayılı Elektronik İmza Kanunu ve ilgili mevzuattan doğan yükümlülüklerimi \
         bildiğimi kabul ve taahhüt ederim.\n\
         \n\
         Sertifika seri no: {serial}\n\
         Sertifika SHA-256: {cert_sha}\n",
        given = who.given_name,
        surname = who.surname,
        tckn = who.tckn,
        issuer = who.issuer,
        nb = date(not_before),
        na = date(not_after),
        cert_sha = hex::encode(Sha256::digest(cert_der)),
    )
}

/// A commitment to record for a freshly issued certificate: its text, digest and deadline.
pub fn new_commitment(text: String, deadline: i64, overwrite: Option<Serial>) -> NewCommitment {
    let sha256_hex = hex::encode(Sha256::digest(text.as_bytes()));
    NewCommitment {
        text,
        sha256_hex,
        deadline,
        overwrite,
    }
}

/// Accepts signed commitments and sweeps missed deadlines.
pub struct Commitments {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

/// An accepted commitment, for the channel's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub record: CommitmentRecord,
    pub outcome: CommitmentOutcome,
}

impl Commitments {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Commitments {
        Commitments { store, clock }
    }

    /// Verifies `signed` (a CMS SignedData over the commitment text, attached or detached)
    /// against the certificate `serial` and the recorded digest, then has the store keep it
    /// as evidence, release the suspension and revoke the overwritten certificate.
    /// `channel`: the channel asking; only the channel that applied may answer.
    pub fn accept(
        &self,
        channel: &str,
        serial: &Serial,
        signed: &[u8],
        by: &Principal,
    ) -> Result<Accepted> {
        let record = self.store.commitment(serial)?.ok_or_else(|| {
            RaError::invalid(
                "serial",
                format!("certificate {serial} awaits no commitment"),
            )
        })?;
        if record.channel != channel {
            return Err(RaError::invalid(
                "serial",
                format!("certificate {serial} was applied for through another channel"),
            ));
        }
        let cert_der = self
            .store
            .get(Some(&record.issuer), serial)?
            .and_then(|r| r.cert_der)
            .ok_or_else(|| ca_core::CaError::NotFound {
                serial: serial.to_hex(),
            })?;
        let verified = verify_signed_data(
            signed,
            Some(record.text.as_bytes()),
            Signer::Exactly(&cert_der),
        )
        .map_err(|e| RaError::invalid("signed_commitment", e.to_string()))?;
        if verified.digest_algorithm != "sha256"
            || hex::encode(&verified.message_digest) != record.sha256_hex
        {
            return Err(RaError::invalid(
                "signed_commitment",
                format!(
                    "must be signed over SHA-256 {} (the commitment's digest); it signs {} {}",
                    record.sha256_hex,
                    verified.digest_algorithm,
                    hex::encode(&verified.message_digest)
                ),
            ));
        }
        let outcome = self.store.accept_commitment(CommitmentAcceptance {
            issuer: record.issuer.clone(),
            serial: *serial,
            evidence: signed.to_vec(),
            actor: by.clone(),
            at: unix_seconds(self.clock.now()),
        })?;
        tracing::info!(%serial, superseded = ?outcome.superseded.map(|s| s.to_hex()), replayed = outcome.replayed, "commitment accepted");
        Ok(Accepted { record, outcome })
    }

    /// Revokes every certificate whose commitment deadline passed; returns their serials.
    pub fn expire_due(&self) -> Result<Vec<Serial>> {
        let revoked = self
            .store
            .expire_commitments(&DEADLINE, unix_seconds(self.clock.now()))?;
        for serial in &revoked {
            tracing::warn!(%serial, "commitment not signed by its deadline: certificate revoked (cessationOfOperation)");
        }
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::lifecycle::Lifecycle;
    use ca_core::lifecycle::{LifecycleAction, LifecycleRequest, RequestId, RevocationReason};
    use ca_core::store::prelude::*;
    use ca_core::store::{
        ApplicationIssued, ApplicationStatus, CertStatus, CommitmentStatus, FinishedApplication,
    };
    use ca_core::testkit::{fixture, nes_application, Fixture};
    use ca_core::Tckn;

    const HOLDER: &str = "10000000146";
    const CHANNEL: &str = "kdhs";
    const DEADLINE: i64 = 600;

    fn now(f: &Fixture) -> i64 {
        unix_seconds(f.clock.now())
    }

    /// Issues through a channel as the host does: a pending application, then the certificate
    /// stored suspended with the application's outcome and its commitment, in one write.
    fn issue_awaiting(f: &Fixture, channel_ref: &str, overwrite: Option<Serial>) -> Serial {
        assert!(f
            .store
            .begin_application(
                &ca_core::ChannelName::parse(CHANNEL).unwrap(),
                channel_ref,
                &ca_core::Principal::HostOperator,
                f.clock.now_unix(),
            )
            .unwrap()
            .is_none());
        let deadline = now(f) + DEADLINE;
        let issued = f
            .engine
            .issue_nes_then(
                &f.ca,
                &f.nes,
                nes_application(None, true),
                &ca_core::Principal::HostOperator,
                &|issued| {
                    let text = commitment_text(
                        &CommitmentSubject {
                            tckn: HOLDER,
                            given_name: "AYŞE",
                            surname: "YILMAZ",
                            issuer: f.ca.context.id.as_str(),
                        },
                        &issued.serial,
                        0,
                        1,
                        &issued.cert_der,
                    );
                    Ok(Some(FinishedApplication {
                        production: None,
                        channel: CHANNEL.into(),
                        channel_ref: channel_ref.into(),
                        issued: ApplicationIssued {
                            serial: issued.serial,
                            wrapped_key: Some(test_wrapped_key()),
                            commitment: Some(new_commitment(text, deadline, overwrite)),
                        },
                    }))
                },
            )
            .unwrap();
        let app = f
            .store
            .application(&ca_core::ChannelName::parse(CHANNEL).unwrap(), channel_ref)
            .unwrap()
            .unwrap();
        assert_eq!(
            (app.status, app.serial, app.wrapped_key),
            (
                ApplicationStatus::Issued,
                Some(issued.serial),
                Some(test_wrapped_key())
            )
        );
        issued.serial
    }

    /// A wrapped key as the store keeps it (its bytes are not a real key: nothing unwraps it).
    fn test_wrapped_key() -> ca_core::card_key::WrappedCardKey {
        ca_core::card_key::WrappedCardKey {
            scheme: ca_core::card_key::WrapSchemeName::RsaOaepSha256AesKwp,
            wrapped_key: vec![1, 2, 3],
            wrapped_private_key: vec![4, 5, 6],
        }
    }

    fn status(f: &Fixture, serial: &Serial) -> (CertStatus, Option<RevocationReason>) {
        let r = f.store.get(None, serial).unwrap().unwrap();
        (r.status, r.revocation.and_then(|r| r.reason))
    }

    fn accept(f: &Fixture, serial: &Serial, evidence: &[u8]) -> Result<CommitmentOutcome> {
        Ok(f.store.accept_commitment(CommitmentAcceptance {
            issuer: f.ca.context.id.clone(),
            serial: *serial,
            evidence: evidence.to_vec(),
            actor: ca_core::Principal::HostOperator,
            at: now(f),
        })?)
    }

    #[test]
    fn issued_suspended_and_only_the_commitment_releases_it() {
        let f = fixture();
        let serial = issue_awaiting(&f, "ref-1", None);
        assert_eq!(
            status(&f, &serial),
            (
                CertStatus::Suspended,
                Some(RevocationReason::CertificateHold)
            )
        );
        let c = f.store.commitment(&serial).unwrap().unwrap();
        assert_eq!(c.status, CommitmentStatus::Pending);
        assert_eq!(c.sha256_hex, hex::encode(Sha256::digest(c.text.as_bytes())));
        assert!(
            c.text.contains(&serial.to_hex()) && c.text.contains(HOLDER),
            "{}",
            c.text
        );

        // The holder cannot lift the hold by asking for a release.
        let lifecycle = Lifecycle::new(f.store.clone(), f.clock.clone());
        let e = lifecycle
            .apply(LifecycleRequest {
                request_id: RequestId::new("r-1").unwrap(),
                issuer: None,
                serial,
                holder: Some(Tckn::parse(HOLDER).unwrap()),
                action: LifecycleAction::Release,
                actor: Principal::HostOperator,
            })
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("stays suspended until its signed commitment arrives"),
            "{e}"
        );
        assert_eq!(status(&f, &serial).0, CertStatus::Suspended);

        let o = accept(&f, &serial, b"evidence").unwrap();
        assert_eq!(
            o,
            CommitmentOutcome {
                superseded: None,
                replayed: false
            }
        );
        assert_eq!(status(&f, &serial), (CertStatus::Active, None));
        let c = f.store.commitment(&serial).unwrap().unwrap();
        assert_eq!(
            (c.status, c.evidence.as_deref()),
            (CommitmentStatus::Accepted, Some(&b"evidence"[..]))
        );

        // The same evidence again: the first outcome; other evidence: refused.
        assert!(accept(&f, &serial, b"evidence").unwrap().replayed);
        let e = accept(&f, &serial, b"other").unwrap_err();
        assert!(e.to_string().contains("already accepted"), "{e}");
        assert_eq!(f.store.verify_audit().unwrap().first_break, None);
    }

    #[test]
    fn an_application_no_longer_pending_leaves_nothing_behind() {
        let f = fixture();
        let before: Vec<Serial> = f
            .store
            .list(None)
            .unwrap()
            .iter()
            .map(|r| r.serial)
            .collect();
        // No begin_application: the certificate's write is refused as a whole.
        let e = f
            .engine
            .issue_nes_then(
                &f.ca,
                &f.nes,
                nes_application(None, true),
                &ca_core::Principal::HostOperator,
                &|issued| {
                    Ok(Some(FinishedApplication {
                        production: None,
                        channel: CHANNEL.into(),
                        channel_ref: "never-begun".into(),
                        issued: ApplicationIssued::plain(issued.serial),
                    }))
                },
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("no pending application never-begun"),
            "{e}"
        );
        let rows = f.store.list(None).unwrap();
        let new: Vec<_> = rows
            .iter()
            .filter(|r| !before.contains(&r.serial))
            .collect();
        assert_eq!(new.len(), 1, "the serial stays on record");
        assert_eq!(new[0].status, CertStatus::Failed, "never stored as issued");
        assert!(new[0].cert_der.is_none());
        assert!(f.store.commitment(&new[0].serial).unwrap().is_none());
    }

    #[test]
    fn a_missed_deadline_revokes_and_a_late_commitment_is_refused() {
        let f = fixture();
        let serial = issue_awaiting(&f, "ref-1", None);
        let commitments = Commitments::new(f.store.clone(), f.clock.clone());
        // Not due yet.
        assert!(commitments.expire_due().unwrap().is_empty());
        f.clock.advance(Duration::from_secs(DEADLINE as u64 + 1));
        let e = accept(&f, &serial, b"late").unwrap_err();
        assert!(e.to_string().contains("deadline"), "{e}");
        assert_eq!(commitments.expire_due().unwrap(), vec![serial]);
        assert_eq!(
            status(&f, &serial),
            (
                CertStatus::Revoked,
                Some(RevocationReason::CessationOfOperation)
            )
        );
        assert_eq!(
            f.store.commitment(&serial).unwrap().unwrap().status,
            CommitmentStatus::Expired
        );
        // Nothing more to do, and the late commitment stays refused.
        assert!(commitments.expire_due().unwrap().is_empty());
        let e = accept(&f, &serial, b"late").unwrap_err();
        assert!(e.to_string().contains("was revoked"), "{e}");
    }

    #[test]
    fn accepting_the_successor_revokes_the_overwritten_certificate_as_superseded() {
        let f = fixture();
        let old = issue_awaiting(&f, "ref-1", None);
        accept(&f, &old, b"first").unwrap();
        let new = issue_awaiting(&f, "ref-2", Some(old));
        // Until the successor is accepted the old certificate stays as it is.
        assert_eq!(status(&f, &old).0, CertStatus::Active);
        let o = accept(&f, &new, b"second").unwrap();
        assert_eq!(o.superseded, Some(old));
        assert_eq!(
            status(&f, &old),
            (CertStatus::Revoked, Some(RevocationReason::Superseded))
        );
        assert_eq!(status(&f, &new).0, CertStatus::Active);
    }

    #[test]
    fn only_the_applying_channel_may_answer_and_the_signature_is_checked() {
        let f = fixture();
        let serial = issue_awaiting(&f, "ref-1", None);
        let commitments = Commitments::new(f.store.clone(), f.clock.clone());
        let e = commitments
            .accept("kec", &serial, b"x", &Principal::HostOperator)
            .unwrap_err();
        assert!(e.to_string().contains("another channel"), "{e}");
        let e = commitments
            .accept(CHANNEL, &serial, b"not cms", &Principal::HostOperator)
            .unwrap_err();
        assert!(e.to_string().starts_with("signed_commitment:"), "{e}");
        let e = commitments
            .accept(CHANNEL, &Serial::random(), b"x", &Principal::HostOperator)
            .unwrap_err();
        assert!(e.to_string().contains("awaits no commitment"), "{e}");
        assert_eq!(status(&f, &serial).0, CertStatus::Suspended);
    }
}
