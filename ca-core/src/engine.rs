//! The issuance engine: decide, build, lint, reserve, sign, check, store.
//!
//! The signing step is small and comes last: by the time the HSM is asked, the request has
//! passed policy, the TBSCertificate has passed its profile's lint, and its serial is durably
//! reserved. What comes back is decoded again, its TBS compared byte for byte with the linted
//! one and its signature verified under the CA's public key before it is stored as issued.

use std::sync::Arc;

use der::asn1::BitString;
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::name::Name;
use x509_cert::Certificate;

use crate::clock::{unix_seconds, Clock};
use crate::error::{CaError, Result};
use crate::profile::{self, CertificateProfile, IssuerContext, NesProfile, TbsInput};
use crate::store::{Reservation, Reserved, Store, SubjectRecord};
use crate::{name, verify, PersonName, Serial, Tckn, VerifiedCsr};

/// How many fresh serials to try when one is taken (with 159 random bits, one is plenty;
/// the loop only guards against a broken random source).
const SERIAL_ATTEMPTS: usize = 3;

/// Something that signs TBS bytes with a CA key. Implemented for HSM keys; unit tests use a
/// software key.
pub trait TbsSigner: Send + Sync {
    /// The signatureAlgorithm this key produces.
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned;
    /// The key's public half.
    fn public_key(&self) -> SubjectPublicKeyInfoOwned;
    /// Signs; returns the signature value as X.509 carries it.
    fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>>;
}

impl TbsSigner for hsm::KeySigner {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        hsm::KeySigner::signature_algorithm(self)
    }
    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        hsm::KeySigner::public_key(self).spki().clone()
    }
    fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>> {
        Ok(hsm::KeySigner::sign(self, tbs_der)?)
    }
}

/// A CA able to sign: its context for profiles and its key.
#[derive(Clone)]
pub struct SigningCa {
    pub context: IssuerContext,
    pub signer: Arc<dyn TbsSigner>,
    /// The CA's own certificate (absent while a root is signing itself).
    pub cert_der: Option<Vec<u8>>,
}

impl SigningCa {
    /// A CA from its certificate and key; refuses a key that does not match the certificate.
    pub fn new(id: crate::IssuerId, cert_der: Vec<u8>, signer: Arc<dyn TbsSigner>, urls: Option<profile::CaUrls>) -> Result<SigningCa> {
        let cert = Certificate::from_der(&cert_der).map_err(CaError::der("CA certificate"))?;
        let spki = cert.tbs_certificate.subject_public_key_info.clone();
        if spki != signer.public_key() {
            return Err(CaError::Config { field: format!("CA {id}"), rule: "the token key does not match the CA certificate's public key".into() });
        }
        Ok(SigningCa {
            context: IssuerContext {
                id,
                name: cert.tbs_certificate.subject.clone(),
                key_id: verify::key_identifier(&spki),
                signature_algorithm: signer.signature_algorithm(),
                urls,
                not_after: Some(cert.tbs_certificate.validity.not_after.to_system_time()),
            },
            signer,
            cert_der: Some(cert_der),
        })
    }
}

/// What to certify: the subject, its key, and how long.
pub struct CertRequest {
    pub subject: Name,
    pub subject_key: SubjectPublicKeyInfoOwned,
    pub validity_days: u32,
    pub record: SubjectRecord,
}

/// A NES application after parsing at the edge: every field already typed and checked.
pub struct NesApplication {
    pub csr: VerifiedCsr,
    pub tckn: Tckn,
    pub given_name: PersonName,
    pub surname: PersonName,
    /// `None`: the profile's default.
    pub validity_days: Option<u32>,
}

/// An issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub serial: Serial,
    pub cert_der: Vec<u8>,
}

impl Issued {
    pub fn to_pem(&self) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.cert_der).unwrap_or_default()
    }
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
    pub fn issue_nes(&self, ca: &SigningCa, profile: &NesProfile, app: NesApplication, actor: &str) -> Result<Issued> {
        let subject = name::nes_subject(&app.tckn, &app.given_name, &app.surname, profile.legacy_serial_number())?;
        let record = SubjectRecord {
            subject: subject.to_string(),
            tckn: Some(app.tckn.to_string()),
            given_name: Some(app.given_name.to_string()),
            surname: Some(app.surname.to_string()),
        };
        let request = CertRequest {
            subject,
            subject_key: app.csr.public_key,
            validity_days: app.validity_days.unwrap_or(profile.default_validity_days()),
            record,
        };
        self.issue(ca, profile, request, actor)
    }

    /// Builds, lints, reserves, signs, checks and stores one certificate.
    pub fn issue(&self, ca: &SigningCa, profile: &dyn CertificateProfile, req: CertRequest, actor: &str) -> Result<Issued> {
        let not_before = self.clock.now();
        let (serial, tbs, tbs_der) = self.reserve(ca, profile, &req, not_before, actor)?;

        let signed = ca.signer.sign(&tbs_der).and_then(|signature| {
            let cert = Certificate {
                tbs_certificate: tbs,
                signature_algorithm: ca.context.signature_algorithm.clone(),
                signature: BitString::from_bytes(&signature).map_err(CaError::der("signature"))?,
            };
            let cert_der = cert.to_der().map_err(CaError::der("Certificate"))?;
            check_signed(&cert_der, &tbs_der, ca, &serial)?;
            Ok(cert_der)
        });
        let now = unix_seconds(self.clock.now());
        match signed {
            Ok(cert_der) => {
                self.store.complete(&ca.context.id, &serial, cert_der.clone(), actor, now)?;
                Ok(Issued { serial, cert_der })
            }
            Err(e) => {
                // The serial stays on record as failed, never silently burned or reused.
                self.store.fail(&ca.context.id, &serial, &e.to_string(), actor, now)?;
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
        not_before: std::time::SystemTime,
        actor: &str,
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
                not_before: unix_seconds(tbs.validity.not_before.to_system_time()),
                not_after: unix_seconds(tbs.validity.not_after.to_system_time()),
                tbs_der: tbs_der.clone(),
                actor: actor.to_string(),
                at: unix_seconds(not_before),
            };
            match self.store.reserve(reservation)? {
                Reserved::Ok => return Ok((serial, tbs, tbs_der)),
                Reserved::SerialTaken => continue,
            }
        }
        Err(CaError::Store { operation: "reserve serial", reason: format!("{SERIAL_ATTEMPTS} random serials in a row were taken") })
    }
}

/// The signed certificate must carry exactly the linted TBS and a signature that verifies
/// under the CA key.
fn check_signed(cert_der: &[u8], tbs_der: &[u8], ca: &SigningCa, serial: &Serial) -> Result<()> {
    let mismatch = |reason: String| CaError::SignedMismatch { serial: serial.to_hex(), reason };
    let cert = Certificate::from_der(cert_der).map_err(|e| mismatch(format!("does not decode: {e}")))?;
    let signed_tbs = cert.tbs_certificate.to_der().map_err(|e| mismatch(format!("TBS does not encode: {e}")))?;
    if signed_tbs != tbs_der {
        return Err(mismatch("signed TBSCertificate differs from the linted one".into()));
    }
    let signature = cert.signature.as_bytes().ok_or_else(|| mismatch("signature has unused bits".into()))?;
    verify::verify(&ca.signer.public_key(), &cert.signature_algorithm, tbs_der, signature)
        .map_err(|e| mismatch(format!("signature under the CA key: {e}")))
}
