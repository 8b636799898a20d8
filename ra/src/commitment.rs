//! The commitment (taahhütname) of a certificate issued through an identity-card channel:
//! its text, the check of the holder's signature over it, and the deadline sweep.
//!
//! The certificate is stored suspended at issuance ([`ca_core::engine::CertRequest`]'s
//! `await_commitment`); the holder signs the text with the new key (CMS SignedData, RFC 5652);
//! [`Commitments::accept`] verifies that signature against the new certificate and the
//! recorded digest; [`decide_acceptance`] decides (in time? still suspended? is the
//! overwritten certificate live, so superseded?) and the store keeps the evidence, releases the
//! suspension and supersedes in one transaction that checks the rows are still as read.
//! [`Commitments::expire_due`] revokes (cessationOfOperation) what was not signed in time, as
//! [`decide_expiry`] says.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use nesca_pkix::cms::{verify_signed_data, Signer};
use sha2::{Digest, Sha256};

use ca_core::clock::Clock;
use ca_core::lifecycle::RevocationReason;
use ca_core::{CaError, Principal, SystemTask, UnixTime};

use crate::error::{RaError, Result};
use ca_core::store::{
    CertStatus, CommitmentAcceptance, CommitmentExpiry, CommitmentOutcome, CommitmentRecord,
    CommitmentStatus, ExpectedCertificate, NewCommitment, StatusRecord, Store,
};
use ca_core::Serial;

/// Who revokes a certificate whose commitment missed its deadline.
const DEADLINE: Principal = Principal::System(SystemTask::CommitmentDeadline);

/// How many overdue commitments one sweep handles; the next sweep takes the rest.
const SWEEP_LIMIT: usize = 1000;

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
pub fn new_commitment(
    text: String,
    deadline: UnixTime,
    overwrite: Option<Serial>,
) -> NewCommitment {
    let sha256_hex = hex::encode(Sha256::digest(text.as_bytes()));
    NewCommitment {
        text,
        sha256_hex,
        deadline,
        overwrite,
    }
}

/// What a verified signed commitment leads to, decided from the rows as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptanceDecision {
    /// The same evidence was accepted before: its outcome again, nothing written.
    Replayed(CommitmentOutcome),
    /// Write this acceptance (it carries what was read, for the store to check).
    Accept(CommitmentAcceptance),
}

/// Decides a verified signed commitment `evidence` for `record` at `at`: refused once the
/// commitment was accepted with other evidence, expired, or past its deadline (accepted up to
/// and including the deadline second), or when the certificate is no longer suspended
/// awaiting it; otherwise accepted, superseding the overwritten certificate only while it is
/// live (active or suspended, within its validity). `certificate` and `overwritten` are the
/// statuses of the certificate and of the one it overwrites, as read.
pub fn decide_acceptance(
    record: &CommitmentRecord,
    evidence: &[u8],
    certificate: Option<&StatusRecord>,
    overwritten: Option<&StatusRecord>,
    (by, at): (&Principal, UnixTime),
) -> Result<AcceptanceDecision> {
    let serial = record.serial;
    match record.status {
        CommitmentStatus::Accepted if record.evidence.as_deref() == Some(evidence) => {
            // What the first acceptance did: superseded the overwritten certificate only if
            // it was live then, which shows now as its reason.
            let superseded = record.overwrite.filter(|_| {
                overwritten.is_some_and(|o| {
                    o.status == CertStatus::Revoked
                        && o.revocation.as_ref().and_then(|r| r.reason)
                            == Some(RevocationReason::Superseded)
                })
            });
            return Ok(AcceptanceDecision::Replayed(CommitmentOutcome {
                superseded,
                replayed: true,
            }));
        }
        CommitmentStatus::Accepted => {
            return Err(RaError::invalid(
                "signed_commitment",
                format!("the commitment of certificate {serial} was already accepted"),
            ))
        }
        CommitmentStatus::Expired => {
            return Err(RaError::invalid(
                "signed_commitment",
                format!("the deadline of certificate {serial} passed; the certificate was revoked"),
            ))
        }
        CommitmentStatus::Pending => {}
    }
    if at > record.deadline {
        return Err(RaError::invalid(
            "signed_commitment",
            format!(
                "the deadline of certificate {serial} passed {} s ago",
                at.secs_since(record.deadline)
            ),
        ));
    }
    if certificate.map(|c| c.status) != Some(CertStatus::Suspended) {
        return Err(RaError::invalid(
            "serial",
            format!("certificate {serial} is no longer suspended awaiting its commitment"),
        ));
    }
    // An overwritten certificate that is revoked or expired already needs nothing more.
    let supersede = record
        .overwrite
        .zip(overwritten)
        .filter(|(_, st)| is_live(st, at))
        .map(|(serial, st)| ExpectedCertificate {
            serial,
            status: st.status,
        });
    Ok(AcceptanceDecision::Accept(CommitmentAcceptance {
        issuer: record.issuer.clone(),
        serial,
        evidence: evidence.to_vec(),
        from: CommitmentStatus::Pending,
        certificate_from: CertStatus::Suspended,
        supersede,
        actor: by.clone(),
        at,
    }))
}

/// Active or suspended, and not past its notAfter at `at`.
fn is_live(st: &StatusRecord, at: UnixTime) -> bool {
    ca_core::lifecycle::is_live(st.status, st.not_after, at)
}

/// Decides what an overdue commitment leads to at `at`: nothing while it is not pending or
/// not past its deadline; else it expires, and its certificate is revoked
/// (cessationOfOperation) if it is still suspended awaiting it and within its validity (a
/// holder may have revoked it meanwhile; an expired certificate changes no more).
pub fn decide_expiry(
    record: &CommitmentRecord,
    certificate: Option<&StatusRecord>,
    (by, at): (&Principal, UnixTime),
) -> Option<CommitmentExpiry> {
    if record.status != CommitmentStatus::Pending || at <= record.deadline {
        return None;
    }
    let revoke_from = certificate
        .filter(|c| c.status == CertStatus::Suspended && is_live(c, at))
        .map(|c| c.status);
    Some(CommitmentExpiry {
        issuer: record.issuer.clone(),
        serial: record.serial,
        from: CommitmentStatus::Pending,
        revoke_from,
        actor: by.clone(),
        at,
    })
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
        let record = self.awaited(serial)?;
        if record.channel.as_str() != channel {
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
        // The signature binds the content through messageDigest, under whichever digest the
        // card's key pairs with (SHA-256, -384 or -512: a P-384 key signs over SHA-384), and
        // `verify_signed_data` has checked both that digest and that an attached content is
        // the text given: a client's wrong text is refused there. This only guards the
        // invariant that the text and the digest recorded together still agree.
        if verified.content != record.text.as_bytes()
            || hex::encode(Sha256::digest(&verified.content)) != record.sha256_hex
        {
            return Err(RaError::invalid(
                "signed_commitment",
                format!(
                    "must sign the commitment text whose SHA-256 is {}",
                    record.sha256_hex
                ),
            ));
        }
        let outcome = self.record_acceptance(serial, signed, by, self.clock.now_unix())?;
        tracing::info!(%serial, superseded = ?outcome.superseded.map(|s| s.to_hex()), replayed = outcome.replayed, "commitment accepted");
        Ok(Accepted { record, outcome })
    }

    /// The commitment `serial` awaits (or received).
    fn awaited(&self, serial: &Serial) -> Result<CommitmentRecord> {
        self.store.commitment(serial)?.ok_or_else(|| {
            RaError::invalid(
                "serial",
                format!("certificate {serial} awaits no commitment"),
            )
        })
    }

    /// Decides and writes a verified signed commitment of `serial` (see
    /// [`decide_acceptance`]). A write refused because a row moved meanwhile (a concurrent
    /// acceptance of the same commitment) is decided once more from fresh reads, so that the
    /// same evidence answers `replayed` and anything else its refusal.
    fn record_acceptance(
        &self,
        serial: &Serial,
        signed: &[u8],
        by: &Principal,
        at: UnixTime,
    ) -> Result<CommitmentOutcome> {
        let mut retried = false;
        loop {
            let record = self.awaited(serial)?;
            let certificate = self.store.status(&record.issuer, serial)?;
            let overwritten = match record.overwrite {
                Some(old) => self.store.status(&record.issuer, &old)?,
                None => None,
            };
            let write = match decide_acceptance(
                &record,
                signed,
                certificate.as_ref(),
                overwritten.as_ref(),
                (by, at),
            )? {
                AcceptanceDecision::Replayed(outcome) => return Ok(outcome),
                AcceptanceDecision::Accept(write) => write,
            };
            let superseded = write.supersede.map(|s| s.serial);
            match self.store.accept_commitment(write) {
                Ok(()) => {
                    return Ok(CommitmentOutcome {
                        superseded,
                        replayed: false,
                    })
                }
                Err(CaError::Conflict { .. }) if !retried => retried = true,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Revokes every certificate whose commitment deadline passed (see [`decide_expiry`]);
    /// returns their serials. A commitment whose rows moved since they were read (accepted
    /// at the last second) is left to the next sweep, which reads it again.
    pub fn expire_due(&self) -> Result<Vec<Serial>> {
        let now = self.clock.now_unix();
        let mut revoked = Vec::new();
        for record in self.store.pending_commitments_due(now, SWEEP_LIMIT)? {
            let certificate = self.store.status(&record.issuer, &record.serial)?;
            let Some(expiry) = decide_expiry(&record, certificate.as_ref(), (&DEADLINE, now))
            else {
                continue;
            };
            let revokes = expiry.revoke_from.is_some();
            match self.store.expire_commitment(expiry) {
                Ok(()) if revokes => {
                    tracing::warn!(serial = %record.serial, "commitment not signed by its deadline: certificate revoked (cessationOfOperation)");
                    revoked.push(record.serial);
                }
                Ok(()) => {}
                Err(CaError::Conflict { rule, .. }) => {
                    tracing::info!(serial = %record.serial, %rule, "overdue commitment changed meanwhile; the next sweep reads it again");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::lifecycle::Lifecycle;
    use ca_core::lifecycle::{LifecycleAction, LifecycleRequest, RequestId};
    use ca_core::store::prelude::*;
    use ca_core::store::{
        ApplicationIssued, ApplicationStatus, CertStatus, CommitmentStatus, FinishedApplication,
    };
    use ca_core::testkit::{fixture, nes_application, Fixture};
    use ca_core::Tckn;

    const HOLDER: &str = "10000000146";
    const CHANNEL: &str = "kdhs";
    const DEADLINE: i64 = 600;

    fn now(f: &Fixture) -> UnixTime {
        f.clock.now_unix()
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
                now(f)
            )
            .unwrap()
            .is_none());
        let deadline = now(f).plus_secs(DEADLINE);
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
                        channel: ca_core::ChannelName::parse(CHANNEL).unwrap(),
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
            transport_key: Some(ca_core::transport_key::TransportKeyId::of_spki(b"spki")),
        }
    }

    fn status(f: &Fixture, serial: &Serial) -> (CertStatus, Option<RevocationReason>) {
        let r = f.store.get(None, serial).unwrap().unwrap();
        (r.status, r.revocation.and_then(|r| r.reason))
    }

    /// Accepts `evidence` as if its signature had been verified.
    fn accept(f: &Fixture, serial: &Serial, evidence: &[u8]) -> Result<CommitmentOutcome> {
        Commitments::new(f.store.clone(), f.clock.clone()).record_acceptance(
            serial,
            evidence,
            &Principal::HostOperator,
            now(f),
        )
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
                        channel: ca_core::ChannelName::parse(CHANNEL).unwrap(),
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

    /// An accepted (active) certificate and its successor awaiting its commitment.
    fn successor(f: &Fixture) -> (Serial, Serial) {
        let old = issue_awaiting(f, "ref-1", None);
        accept(f, &old, b"first").unwrap();
        (old, issue_awaiting(f, "ref-2", Some(old)))
    }

    #[test]
    fn accepting_the_successor_revokes_the_overwritten_certificate_as_superseded() {
        let f = fixture();
        let (old, new) = successor(&f);
        // Until the successor is accepted the old certificate stays as it is.
        assert_eq!(status(&f, &old).0, CertStatus::Active);
        let o = accept(&f, &new, b"second").unwrap();
        assert_eq!(o.superseded, Some(old));
        assert_eq!(
            status(&f, &old),
            (CertStatus::Revoked, Some(RevocationReason::Superseded))
        );
        assert_eq!(status(&f, &new).0, CertStatus::Active);
        // Sent again, the same evidence reports the same outcome.
        let again = accept(&f, &new, b"second").unwrap();
        assert_eq!((again.superseded, again.replayed), (Some(old), true));
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

    /// A pending commitment of serial 01…, due at 1000, overwriting serial 02….
    fn pending() -> CommitmentRecord {
        CommitmentRecord {
            issuer: ca_core::IssuerId::parse("nes-ca").unwrap(),
            serial: Serial::parse_hex(&"01".repeat(20)).unwrap(),
            channel: ca_core::ChannelName::parse(CHANNEL).unwrap(),
            channel_ref: "ref-1".into(),
            text: "taahhüt".into(),
            sha256_hex: "00".repeat(32),
            deadline: UnixTime::from_secs(1000),
            overwrite: Some(Serial::parse_hex(&"02".repeat(20)).unwrap()),
            status: CommitmentStatus::Pending,
            evidence: None,
            accepted_at: None,
            created_at: UnixTime::from_secs(1),
        }
    }

    fn cert(status: CertStatus, not_after: i64) -> StatusRecord {
        StatusRecord {
            status,
            revocation: None,
            not_after: UnixTime::from_secs(not_after),
        }
    }

    fn decide(
        c: &CommitmentRecord,
        evidence: &[u8],
        overwritten: Option<StatusRecord>,
        at: i64,
    ) -> Result<AcceptanceDecision> {
        decide_acceptance(
            c,
            evidence,
            Some(&cert(CertStatus::Suspended, 10_000)),
            overwritten.as_ref(),
            (&Principal::HostOperator, UnixTime::from_secs(at)),
        )
    }

    fn accepted(d: AcceptanceDecision) -> CommitmentAcceptance {
        match d {
            AcceptanceDecision::Accept(a) => a,
            other => panic!("not an acceptance: {other:?}"),
        }
    }

    #[test]
    fn acceptance_is_in_time_up_to_the_deadline_second() {
        let c = pending();
        let a = accepted(decide(&c, b"e", None, 1000).unwrap());
        assert_eq!(
            (a.from, a.certificate_from, a.supersede, a.at),
            (
                CommitmentStatus::Pending,
                CertStatus::Suspended,
                None,
                UnixTime::from_secs(1000)
            )
        );
        let e = decide(&c, b"e", None, 1001).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "signed_commitment: the deadline of certificate {} passed 1 s ago",
                c.serial
            )
        );
    }

    #[test]
    fn acceptance_supersedes_only_a_live_overwritten_certificate() {
        let c = pending();
        let old = c.overwrite.unwrap();
        for live in [CertStatus::Active, CertStatus::Suspended] {
            let a = accepted(decide(&c, b"e", Some(cert(live, 1000)), 1000).unwrap());
            assert_eq!(
                a.supersede,
                Some(ExpectedCertificate {
                    serial: old,
                    status: live
                })
            );
        }
        for gone in [
            Some(cert(CertStatus::Revoked, 10_000)),
            Some(cert(CertStatus::Active, 999)),
            None,
        ] {
            assert_eq!(
                accepted(decide(&c, b"e", gone, 1000).unwrap()).supersede,
                None
            );
        }
    }

    #[test]
    fn acceptance_replays_the_same_evidence_and_refuses_the_rest() {
        let mut c = pending();
        c.status = CommitmentStatus::Accepted;
        c.evidence = Some(b"e".to_vec());
        // The replay reports what the first acceptance did: superseded the overwritten
        // certificate only if it is revoked as superseded.
        let superseded = StatusRecord {
            revocation: Some(ca_core::store::Revocation {
                at: UnixTime::from_secs(4000),
                reason: Some(RevocationReason::Superseded),
                invalidity_date: None,
            }),
            ..cert(CertStatus::Revoked, 10_000)
        };
        let compromised = StatusRecord {
            revocation: Some(ca_core::store::Revocation {
                reason: Some(RevocationReason::KeyCompromise),
                ..superseded.revocation.unwrap()
            }),
            ..superseded
        };
        for (overwritten, reported) in [
            (Some(superseded), c.overwrite),
            (Some(compromised), None),
            (Some(cert(CertStatus::Active, 10_000)), None),
            (None, None),
        ] {
            assert_eq!(
                decide(&c, b"e", overwritten, 5000).unwrap(),
                AcceptanceDecision::Replayed(CommitmentOutcome {
                    superseded: reported,
                    replayed: true
                })
            );
        }
        let e = decide(&c, b"other", None, 5).unwrap_err();
        assert!(e.to_string().contains("already accepted"), "{e}");
        c.status = CommitmentStatus::Expired;
        let e = decide(&c, b"e", None, 5).unwrap_err();
        assert!(e.to_string().contains("the certificate was revoked"), "{e}");
        // Pending, but the certificate is no longer suspended (revoked by its holder).
        let e = decide_acceptance(
            &pending(),
            b"e",
            Some(&cert(CertStatus::Revoked, 10_000)),
            None,
            (&Principal::HostOperator, UnixTime::from_secs(5)),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("serial: certificate"), "{e}");
        assert!(e.to_string().contains("no longer suspended"), "{e}");
    }

    #[test]
    fn expiry_is_due_after_the_deadline_and_revokes_only_a_suspended_certificate() {
        let c = pending();
        let by = &super::DEADLINE;
        let suspended = cert(CertStatus::Suspended, 10_000);
        let at = |s| (by, UnixTime::from_secs(s));
        assert_eq!(decide_expiry(&c, Some(&suspended), at(1000)), None);
        let e = decide_expiry(&c, Some(&suspended), at(1001)).unwrap();
        assert_eq!(
            (e.from, e.revoke_from, e.actor.clone()),
            (
                CommitmentStatus::Pending,
                Some(CertStatus::Suspended),
                super::DEADLINE
            )
        );
        // Revoked by its holder meanwhile, or past its notAfter: only the commitment expires.
        for st in [
            cert(CertStatus::Revoked, 10_000),
            cert(CertStatus::Suspended, 1000),
        ] {
            assert_eq!(
                decide_expiry(&c, Some(&st), at(1001)).unwrap().revoke_from,
                None
            );
        }
        let mut done = pending();
        done.status = CommitmentStatus::Accepted;
        assert_eq!(decide_expiry(&done, Some(&suspended), at(5000)), None);
    }

    /// The overwritten certificate was revoked between the decision and the write: the write
    /// is refused with nothing written, and deciding again no longer supersedes it.
    #[test]
    fn a_stale_acceptance_is_refused_and_decided_again() {
        let f = fixture();
        let (old, new) = successor(&f);
        let record = f.store.commitment(&new).unwrap().unwrap();
        let issuer = record.issuer.clone();
        let stale = accepted(
            decide_acceptance(
                &record,
                b"second",
                f.store.status(&issuer, &new).unwrap().as_ref(),
                f.store.status(&issuer, &old).unwrap().as_ref(),
                (&Principal::HostOperator, now(&f)),
            )
            .unwrap(),
        );
        assert!(stale.supersede.is_some());
        let lifecycle = Lifecycle::new(f.store.clone(), f.clock.clone());
        lifecycle
            .apply(LifecycleRequest {
                request_id: RequestId::new("lost-1").unwrap(),
                issuer: None,
                serial: old,
                holder: Some(Tckn::parse(HOLDER).unwrap()),
                action: LifecycleAction::Revoke {
                    reason: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                },
                actor: Principal::HostOperator,
            })
            .unwrap();
        let audit = f.store.verify_audit().unwrap().records;
        let e = f.store.accept_commitment(stale).unwrap_err();
        assert!(
            matches!(
                e,
                CaError::Conflict {
                    field: "serial",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(f.store.verify_audit().unwrap().records, audit);
        assert_eq!(
            f.store.commitment(&new).unwrap().unwrap().status,
            CommitmentStatus::Pending
        );
        // Decided again from fresh reads: accepted, the old certificate keeps its reason.
        let o = accept(&f, &new, b"second").unwrap();
        assert_eq!(o.superseded, None);
        assert_eq!(
            status(&f, &old),
            (CertStatus::Revoked, Some(RevocationReason::KeyCompromise))
        );
        assert_eq!(status(&f, &new).0, CertStatus::Active);
    }
}
