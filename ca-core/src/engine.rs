//! The issuance engine: decide, build, lint, reserve, sign, check, store.
//!
//! The signing step is small and comes last: by the time the HSM is asked, the request has
//! passed policy, the TBSCertificate has passed its profile's lint, and its serial is durably
//! reserved. What comes back is decoded again, its TBS compared byte for byte with the linted
//! one and its signature verified under the CA's public key before it is stored as issued.

use std::sync::Arc;

use der::asn1::BitString;
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;
use x509_cert::Certificate;

use crate::clock::Clock;
use crate::error::{CaError, Result};
use crate::profile::{self, CertificateProfile, IssuerContext, NesProfile, TbsInput};
use crate::store::{Completion, FinishedApplication, Reservation, Reserved, Store, SubjectRecord};
use crate::{name, verify, PersonName, Serial, SubjectKey, Tckn};

/// How many fresh serials to try when one is taken (with 159 random bits, one is plenty;
/// the loop only guards against a broken random source).
const SERIAL_ATTEMPTS: usize = 3;

/// The signer seam lives in `nesca-ca-types` (`ca-types/src/signer.rs`, with its
/// implementation for HSM keys), shared with `crl` and `ocsp-responder`.
pub use nesca_ca_types::TbsSigner;

/// A CA able to sign: its context for profiles and its key.
#[derive(Clone)]
pub struct SigningCa {
    pub context: IssuerContext,
    pub signer: Arc<dyn TbsSigner>,
    /// The CA's own certificate (absent while a root is signing itself).
    pub cert_der: Option<Vec<u8>>,
    /// The signer's public key and its kind, read once: every issuance verifies against it.
    public_key: SubjectPublicKeyInfoOwned,
    key_kind: verify::KeyKind,
}

impl SigningCa {
    /// A CA from its certificate and key; refuses a key that does not match the certificate.
    pub fn new(
        id: crate::IssuerId,
        cert_der: Vec<u8>,
        signer: Arc<dyn TbsSigner>,
        urls: Option<profile::CaUrls>,
    ) -> Result<SigningCa> {
        let cert = Certificate::from_der(&cert_der).map_err(CaError::der("CA certificate"))?;
        let spki = cert.tbs_certificate.subject_public_key_info.clone();
        if spki != signer.public_key() {
            return Err(CaError::Config {
                field: format!("CA {id}"),
                rule: "the token key does not match the CA certificate's public key".into(),
            });
        }
        let context = IssuerContext {
            id,
            name: cert.tbs_certificate.subject.clone(),
            key_id: verify::key_identifier(&spki),
            signature_algorithm: signer.signature_algorithm(),
            urls,
            not_after: Some(profile::unix_time(&cert.tbs_certificate.validity.not_after)),
        };
        Self::with_context(context, signer, Some(cert_der))
    }

    /// A root about to sign its own certificate: issuer name and key are its own, no URLs.
    pub fn self_signing(
        id: crate::IssuerId,
        name: Name,
        signer: Arc<dyn TbsSigner>,
    ) -> Result<SigningCa> {
        let spki = signer.public_key();
        let context = IssuerContext {
            id,
            name,
            key_id: verify::key_identifier(&spki),
            signature_algorithm: signer.signature_algorithm(),
            urls: None,
            not_after: None,
        };
        Self::with_context(context, signer, None)
    }

    fn with_context(
        context: IssuerContext,
        signer: Arc<dyn TbsSigner>,
        cert_der: Option<Vec<u8>>,
    ) -> Result<SigningCa> {
        let public_key = signer.public_key();
        let key_kind = verify::KeyKind::of(&public_key).map_err(|e| CaError::Config {
            field: format!("CA {}", context.id),
            rule: e.rule(),
        })?;
        Ok(SigningCa {
            context,
            signer,
            cert_der,
            public_key,
            key_kind,
        })
    }
}

/// What to certify: the subject, its key, and how long.
pub struct CertRequest {
    pub subject: Name,
    pub subject_key: SubjectPublicKeyInfoOwned,
    pub validity_days: u32,
    pub record: SubjectRecord,
    /// Store the certificate suspended (in the same transaction), to await its holder's
    /// signed commitment; it is never active before.
    pub await_commitment: bool,
}

/// A NES application after parsing at the edge: every field already typed and checked.
pub struct NesApplication {
    /// The key to certify: from a verified CSR (`VerifiedCsr::into`) or generated in the HSM.
    pub key: SubjectKey,
    pub tckn: Tckn,
    pub given_name: PersonName,
    pub surname: PersonName,
    /// `None`: the profile's default.
    pub validity_days: Option<u32>,
    /// Issue suspended, to await the holder's signed commitment (identity-card channels).
    pub await_commitment: bool,
}

/// An issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub serial: Serial,
    pub cert_der: Vec<u8>,
}

/// The engine; cheap to share between worker threads.
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Engine {
        Engine { store, clock }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Issues a NES for a verified application.
    pub fn issue_nes(
        &self,
        ca: &SigningCa,
        profile: &NesProfile,
        app: NesApplication,
        actor: &crate::Principal,
    ) -> Result<Issued> {
        self.issue_nes_then(ca, profile, app, actor, &|_| Ok(None))
    }

    /// Issues a NES and records, in the transaction that stores it, the channel application
    /// `then` makes of the signed certificate (see [`Engine::issue_then`]).
    pub fn issue_nes_then(
        &self,
        ca: &SigningCa,
        profile: &NesProfile,
        app: NesApplication,
        actor: &crate::Principal,
        then: &dyn Fn(&Issued) -> Result<Option<FinishedApplication>>,
    ) -> Result<Issued> {
        let subject = name::nes_subject(
            &app.tckn,
            &app.given_name,
            &app.surname,
            profile.legacy_serial_number(),
        )?;
        let record = SubjectRecord {
            subject: subject.to_string(),
            tckn: Some(app.tckn),
            given_name: Some(app.given_name.to_string()),
            surname: Some(app.surname.to_string()),
        };
        let request = CertRequest {
            subject,
            subject_key: app.key.public_key,
            validity_days: app.validity_days.unwrap_or(profile.default_validity_days()),
            record,
            await_commitment: app.await_commitment,
        };
        self.issue_then(ca, profile, request, actor, then)
    }

    /// Builds, lints, reserves, signs, checks and stores one certificate.
    pub fn issue(
        &self,
        ca: &SigningCa,
        profile: &dyn CertificateProfile,
        req: CertRequest,
        actor: &crate::Principal,
    ) -> Result<Issued> {
        self.issue_then(ca, profile, req, actor, &|_| Ok(None))
    }

    /// [`Engine::issue`], and `then`: given the signed and checked certificate, the channel
    /// application to record as issued with it. The certificate, its suspension
    /// (`await_commitment`) and that record are one store transaction: no crash leaves a
    /// certificate whose application still looks unanswered.
    pub fn issue_then(
        &self,
        ca: &SigningCa,
        profile: &dyn CertificateProfile,
        req: CertRequest,
        actor: &crate::Principal,
        then: &dyn Fn(&Issued) -> Result<Option<FinishedApplication>>,
    ) -> Result<Issued> {
        let not_before = self.clock.now_unix();
        let (serial, tbs, tbs_der) = self.reserve(ca, profile, &req, not_before, actor)?;

        let signed = ca
            .signer
            .sign(&tbs_der)
            .map_err(CaError::from)
            .and_then(|signature| {
                let cert = Certificate {
                    tbs_certificate: tbs,
                    signature_algorithm: ca.context.signature_algorithm.clone(),
                    signature: BitString::from_bytes(&signature)
                        .map_err(CaError::der("signature"))?,
                };
                let cert_der = cert.to_der().map_err(CaError::der("Certificate"))?;
                check_signed(&cert_der, &tbs_der, ca, &serial)?;
                let application = then(&Issued {
                    serial,
                    cert_der: cert_der.clone(),
                })?;
                Ok((cert_der, application))
            });
        let now = self.clock.now_unix();
        match signed {
            Ok((cert_der, application)) => {
                let completion = Completion {
                    hold: req.await_commitment,
                    application,
                };
                if let Err(e) = self.store.complete(
                    &ca.context.id,
                    &serial,
                    cert_der.clone(),
                    completion,
                    actor,
                    now,
                ) {
                    // Signed but refused by the store (its application was not pending): the
                    // certificate goes nowhere, and its serial is recorded as failed. If even
                    // that write fails, the row stays reserved, as after a crash.
                    let reason = format!("signed certificate not stored: {e}");
                    if let Err(f) = self
                        .store
                        .fail(&ca.context.id, &serial, &reason, actor, now)
                    {
                        tracing::error!(%serial, error = %f, "could not record the serial as failed");
                    }
                    return Err(e);
                }
                tracing::info!(issuer = %ca.context.id, %serial, profile = %profile.name(), actor = %actor, "certificate issued");
                Ok(Issued { serial, cert_der })
            }
            Err(e) => {
                // The serial stays on record as failed, never silently burned or reused.
                tracing::warn!(issuer = %ca.context.id, %serial, profile = %profile.name(), error = %e, "signing failed; serial recorded as failed");
                self.store
                    .fail(&ca.context.id, &serial, &e.to_string(), actor, now)?;
                Err(e)
            }
        }
    }

    /// Draws a serial, builds and lints the TBS, and records both durably.
    fn reserve(
        &self,
        ca: &SigningCa,
        profile: &dyn CertificateProfile,
        req: &CertRequest,
        not_before: crate::UnixTime,
        actor: &crate::Principal,
    ) -> Result<(Serial, x509_cert::TbsCertificate, Vec<u8>)> {
        for _ in 0..SERIAL_ATTEMPTS {
            let serial = Serial::random();
            let tbs = profile::build_tbs(
                profile,
                TbsInput {
                    serial,
                    subject: req.subject.clone(),
                    subject_key: req.subject_key.clone(),
                    not_before,
                    validity_days: req.validity_days,
                    issuer: &ca.context,
                },
            )?;
            profile::lint(profile, &tbs, &ca.context)?;
            let tbs_der = tbs.to_der().map_err(CaError::der("TBSCertificate"))?;
            let reservation = Reservation {
                issuer: ca.context.id.clone(),
                serial,
                profile: profile.name(),
                subject: req.record.clone(),
                not_before: profile::unix_time(&tbs.validity.not_before),
                not_after: profile::unix_time(&tbs.validity.not_after),
                tbs_der: tbs_der.clone(),
                actor: actor.clone(),
                at: not_before,
            };
            match self.store.reserve(reservation)? {
                Reserved::Ok => return Ok((serial, tbs, tbs_der)),
                Reserved::SerialTaken => continue,
            }
        }
        Err(CaError::Store {
            operation: "reserve serial",
            reason: format!("{SERIAL_ATTEMPTS} random serials in a row were taken"),
            source: None,
        })
    }
}

/// The signed certificate must carry exactly the linted TBS, byte for byte as it stands in
/// the certificate, and a signature that verifies under the CA key (a faulty HSM signature
/// never leaves the CA; for RSA this also guards against fault attacks on the key).
fn check_signed(cert_der: &[u8], tbs_der: &[u8], ca: &SigningCa, serial: &Serial) -> Result<()> {
    let mismatch = |reason: String| CaError::SignedMismatch {
        serial: serial.to_hex(),
        reason,
    };
    let cert =
        Certificate::from_der(cert_der).map_err(|e| mismatch(format!("does not decode: {e}")))?;
    let signed_tbs =
        signed_tbs_bytes(cert_der).map_err(|e| mismatch(format!("does not decode: {e}")))?;
    if signed_tbs != tbs_der {
        return Err(mismatch(
            "signed TBSCertificate differs from the linted one".into(),
        ));
    }
    let signature = cert
        .signature
        .as_bytes()
        .ok_or_else(|| mismatch("signature has unused bits".into()))?;
    verify::verify_with(
        ca.key_kind,
        &ca.public_key,
        &cert.signature_algorithm,
        tbs_der,
        signature,
    )
    .map_err(|e| mismatch(format!("signature under the CA key: {e}")))
}

/// The TBSCertificate's encoding as it stands inside a Certificate (its first element).
fn signed_tbs_bytes(cert_der: &[u8]) -> der::Result<&[u8]> {
    use der::{Header, Reader, SliceReader};
    let mut reader = SliceReader::new(cert_der)?;
    Header::decode(&mut reader)?;
    reader.tlv_bytes()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use der::Decode;
    use nesca_ca_types::CaTypesError;
    use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    use x509_cert::{Certificate, TbsCertificate};

    use super::*;
    use crate::profile::{CertificateProfile, Findings};
    use crate::store::{prelude::*, CertStatus, SqliteStore};
    use crate::testkit::{fixture, fixture_with, SoftSigner};

    fn application(validity_days: Option<u32>) -> NesApplication {
        crate::testkit::nes_application(validity_days, false)
    }

    fn nes_rows(store: &SqliteStore) -> Vec<crate::store::CertRecord> {
        store
            .list(None)
            .unwrap()
            .into_iter()
            .filter(|r| r.profile == crate::profile::ProfileName::Nes)
            .collect()
    }

    #[test]
    fn issues_lints_and_stores_a_nes() {
        let f = fixture();
        let issued = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                application(None),
                &crate::Principal::HostOperator,
            )
            .unwrap();
        let cert = Certificate::from_der(&issued.cert_der).unwrap();
        // The stored certificate passes its own profile's lint again, and is the one returned.
        profile::lint(&f.nes, &cert.tbs_certificate, &f.ca.context).unwrap();
        let rec = f
            .store
            .get(Some(&f.ca.context.id), &issued.serial)
            .unwrap()
            .unwrap();
        assert_eq!(rec.status, CertStatus::Active);
        assert_eq!(rec.cert_der.as_deref(), Some(issued.cert_der.as_slice()));
        assert_eq!(
            rec.subject.tckn.map(|t| t.to_string()).as_deref(),
            Some("10000000146")
        );
        assert_eq!(
            Serial::from_der_bytes(cert.tbs_certificate.serial_number.as_bytes()),
            Some(issued.serial)
        );
        let days = rec.not_after.secs_since(rec.not_before) / 86_400;
        assert_eq!(days, 1095);
        assert_eq!(f.store.verify_audit().unwrap().first_break, None);
    }

    /// Records the store's view of the serial at the moment the signer is called.
    struct ObservingSigner {
        inner: SoftSigner,
        store: Mutex<Option<Arc<SqliteStore>>>,
        seen: Mutex<Vec<Option<CertStatus>>>,
    }

    impl TbsSigner for ObservingSigner {
        fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
            self.inner.signature_algorithm()
        }
        fn public_key(&self) -> SubjectPublicKeyInfoOwned {
            self.inner.public_key()
        }
        fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, CaTypesError> {
            if let Some(store) = self.store.lock().unwrap().as_ref() {
                let tbs = TbsCertificate::from_der(tbs_der).unwrap();
                let serial = Serial::from_der_bytes(tbs.serial_number.as_bytes()).unwrap();
                let status = store.get(None, &serial).unwrap().map(|r| r.status);
                self.seen.lock().unwrap().push(status);
            }
            self.inner.sign(tbs_der)
        }
    }

    #[test]
    fn serial_is_durably_reserved_before_the_signer_is_called() {
        let signer = Arc::new(ObservingSigner {
            inner: SoftSigner::random(),
            store: Mutex::new(None),
            seen: Mutex::new(vec![]),
        });
        let f = fixture_with(signer.clone());
        *signer.store.lock().unwrap() = Some(f.store.clone());
        f.engine
            .issue_nes(
                &f.ca,
                &f.nes,
                application(None),
                &crate::Principal::HostOperator,
            )
            .unwrap();
        assert_eq!(
            *signer.seen.lock().unwrap(),
            vec![Some(CertStatus::Reserved)]
        );
    }

    /// A signer whose token fails, or that returns a signature over something else.
    struct BadSigner {
        inner: SoftSigner,
        mode: &'static str,
        armed: Mutex<bool>,
    }

    impl TbsSigner for BadSigner {
        fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
            self.inner.signature_algorithm()
        }
        fn public_key(&self) -> SubjectPublicKeyInfoOwned {
            self.inner.public_key()
        }
        fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, CaTypesError> {
            if !*self.armed.lock().unwrap() {
                return self.inner.sign(tbs_der);
            }
            match self.mode {
                "fail" => Err(CaTypesError::Signer {
                    rule: "token went away".into(),
                }),
                _ => self.inner.sign(b"some other message"),
            }
        }
    }

    fn armed_fixture(mode: &'static str) -> (crate::testkit::Fixture, Arc<BadSigner>) {
        let signer = Arc::new(BadSigner {
            inner: SoftSigner::random(),
            mode,
            armed: Mutex::new(false),
        });
        let f = fixture_with(signer.clone());
        *signer.armed.lock().unwrap() = true;
        (f, signer)
    }

    #[test]
    fn a_failed_signing_leaves_the_serial_recorded_as_failed() {
        let (f, _s) = armed_fixture("fail");
        let e = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                application(None),
                &crate::Principal::HostOperator,
            )
            .unwrap_err();
        assert!(e.to_string().contains("token went away"), "{e}");
        let rows = nes_rows(&f.store);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, CertStatus::Failed);
        assert!(rows[0].cert_der.is_none());
    }

    #[test]
    fn a_signature_that_does_not_verify_is_never_stored_as_issued() {
        let (f, _s) = armed_fixture("wrong");
        let e = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                application(None),
                &crate::Principal::HostOperator,
            )
            .unwrap_err();
        assert!(matches!(e, CaError::SignedMismatch { .. }), "{e}");
        let rows = nes_rows(&f.store);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, CertStatus::Failed);
    }

    #[test]
    fn refused_requests_store_nothing() {
        let f = fixture();
        let before = f.store.list(None).unwrap().len();
        let e = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                application(Some(5000)),
                &crate::Principal::HostOperator,
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "validity-days: 5000 days exceeds the nes profile maximum of 1826 days"
        );
        let e = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                application(Some(0)),
                &crate::Principal::HostOperator,
            )
            .unwrap_err();
        assert!(e.to_string().starts_with("validity-days:"), "{e}");
        assert_eq!(f.store.list(None).unwrap().len(), before);
    }

    #[test]
    fn validity_cannot_outlive_the_issuing_ca() {
        let f = fixture();
        f.clock
            .advance(std::time::Duration::from_secs(3000 * 86_400));
        let e = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                application(Some(1826)),
                &crate::Principal::HostOperator,
            )
            .unwrap_err();
        assert!(e.to_string().contains("outlive"), "{e}");
    }

    /// A profile that builds the NES extensions wrong (keyUsage digitalSignature) but lints
    /// as the NES profile: the lint must stop it before the signer.
    struct BrokenNes(NesProfile);

    impl CertificateProfile for BrokenNes {
        fn name(&self) -> crate::profile::ProfileName {
            crate::profile::ProfileName::Nes
        }
        fn max_validity_days(&self) -> u32 {
            self.0.max_validity_days()
        }
        fn extensions(
            &self,
            key: &SubjectPublicKeyInfoOwned,
            issuer: &profile::IssuerContext,
        ) -> Result<Vec<x509_cert::ext::Extension>> {
            use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
            let mut exts = self.0.extensions(key, issuer)?;
            exts[2] = crate::ext::known(
                true,
                &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation),
            )?;
            Ok(exts)
        }
        fn lint_profile(
            &self,
            tbs: &x509_cert::TbsCertificate,
            issuer: &profile::IssuerContext,
            f: &mut Findings,
        ) {
            self.0.lint_profile(tbs, issuer, f)
        }
    }

    #[test]
    fn lint_stops_a_wrong_certificate_before_signing_and_before_reserving() {
        let signer = Arc::new(ObservingSigner {
            inner: SoftSigner::random(),
            store: Mutex::new(None),
            seen: Mutex::new(vec![]),
        });
        let f = fixture_with(signer.clone());
        *signer.store.lock().unwrap() = Some(f.store.clone());
        let app = application(None);
        let subject =
            crate::name::nes_subject(&app.tckn, &app.given_name, &app.surname, false).unwrap();
        let req = CertRequest {
            subject,
            subject_key: app.key.public_key,
            validity_days: 365,
            record: Default::default(),
            await_commitment: false,
        };
        let e = f
            .engine
            .issue(
                &f.ca,
                &BrokenNes(f.nes.clone()),
                req,
                &crate::Principal::HostOperator,
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("keyUsage must be nonRepudiation only"),
            "{e}"
        );
        assert!(
            signer.seen.lock().unwrap().is_empty(),
            "the signer must not be called"
        );
        assert!(nes_rows(&f.store).is_empty());
    }

    #[test]
    fn concurrent_issuance_group_commits_distinct_serials() {
        let f = fixture();
        let serials = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..10 {
                        let issued = f
                            .engine
                            .issue_nes(
                                &f.ca,
                                &f.nes,
                                application(None),
                                &crate::Principal::HostOperator,
                            )
                            .unwrap();
                        serials.lock().unwrap().push(issued.serial);
                    }
                });
            }
        });
        let mut serials = serials.into_inner().unwrap();
        serials.sort();
        serials.dedup();
        assert_eq!(serials.len(), 80);
        let rows = nes_rows(&f.store);
        assert_eq!(rows.len(), 80);
        assert!(rows.iter().all(|r| r.status == CertStatus::Active));
        let report = f.store.verify_audit().unwrap();
        assert_eq!(report.first_break, None);
        assert!(
            report.records >= 160,
            "a reserve and an issue record per certificate"
        );
    }

    #[test]
    fn tampering_with_the_audit_log_is_detected() {
        let f = fixture();
        f.engine
            .issue_nes(
                &f.ca,
                &f.nes,
                application(None),
                &crate::Principal::HostOperator,
            )
            .unwrap();
        let conn = rusqlite::Connection::open(f.store.path()).unwrap();
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3", [])
            .unwrap();
        assert_eq!(f.store.verify_audit().unwrap().first_break, Some(3));
    }

    #[test]
    fn reopening_the_store_keeps_data_and_runs_no_migration_twice() {
        let f = fixture();
        let issued = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                application(None),
                &crate::Principal::HostOperator,
            )
            .unwrap();
        let again = SqliteStore::open(f.store.path()).unwrap();
        assert_eq!(
            again.get(None, &issued.serial).unwrap().unwrap().status,
            CertStatus::Active
        );
    }
}
