//! The CAs the responder answers for, each with its delegated signer (RFC 6960 §4.2.2.2), and
//! what is computed once per CA: CertID hashes, the ResponderID, the decoded signer certificate.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
use der::asn1::OctetString;
use der::{Decode, Encode};
use sha1::{Digest, Sha1};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::Certificate;
use x509_ocsp::ResponderId;

use nesca_ca_types::verify::KeyKind;
use nesca_ca_types::IssuerId;
use nesca_ca_types::TbsSigner;

use crate::cert_id::IssuerHashes;
use crate::error::OcspError;

/// A CA this responder answers for.
pub struct ServedIssuer {
    /// The CA's id in the store.
    pub id: IssuerId,
    /// The CA certificate: CertIDs name it by the hashes of its subject and key.
    pub ca_cert: Certificate,
    /// The delegated OCSP signer's key (in production an HSM key).
    pub signer: Arc<dyn TbsSigner>,
    /// The delegated signer's certificate, issued directly by `ca_cert`, DER. Sent in every
    /// response's `certs` so that clients can verify it.
    pub signer_cert_der: Vec<u8>,
}

/// A served issuer, checked and with what every response needs precomputed. Its delegated
/// signer can be replaced while the responder runs ([`Issuer::replace_delegate`]).
pub(crate) struct Issuer {
    pub id: IssuerId,
    pub hashes: IssuerHashes,
    /// The CA certificate, to check a replacement signer certificate against.
    ca_cert: Certificate,
    delegate: RwLock<Arc<Delegate>>,
}

/// The delegated signer an issuer signs with now, and what every signature needs of it.
pub(crate) struct Delegate {
    /// Counts replacements from 1: a response signed by an older delegate is re-signed.
    pub generation: u64,
    pub signer: Arc<dyn TbsSigner>,
    pub signer_spki: SubjectPublicKeyInfoOwned,
    /// Read once: every signature is verified against this key before it is served.
    pub signer_key_kind: KeyKind,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// ResponderID byKey: SHA-1 of the signer's subjectPublicKey BIT STRING value
    /// (RFC 6960 §4.2.2.3).
    pub responder_id: ResponderId,
    pub signer_cert: Certificate,
    /// The signer certificate's validity: never used to sign outside it.
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Delegate {
    /// Whether the signer certificate is valid at `now`.
    pub(crate) fn valid_at(&self, now: SystemTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

impl Issuer {
    /// Checks that the signer certificate belongs to the signer key and was issued by the CA
    /// as an OCSP signer: a misconfigured signer would make every response fail at the
    /// client, so it fails here instead. A signer outside its validity is accepted (so that a
    /// responder whose signer expired still starts, to be given a new one) but never signs.
    pub(crate) fn prepare(served: ServedIssuer) -> Result<Issuer, OcspError> {
        let hashes = IssuerHashes::new(&served.ca_cert).map_err(|e| OcspError::Issuer {
            issuer: served.id.clone(),
            what: "CA certificate",
            reason: e.to_string(),
        })?;
        let delegate = Delegate::prepare(
            &served.id,
            &served.ca_cert,
            served.signer,
            &served.signer_cert_der,
            1,
        )?;
        Ok(Issuer {
            id: served.id,
            hashes,
            ca_cert: served.ca_cert,
            delegate: RwLock::new(Arc::new(delegate)),
        })
    }

    /// The delegate that signs now.
    pub(crate) fn delegate(&self) -> Arc<Delegate> {
        self.delegate
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the delegated signer (checked as at start); returns the new generation.
    pub(crate) fn replace_delegate(
        &self,
        signer: Arc<dyn TbsSigner>,
        signer_cert_der: &[u8],
    ) -> Result<u64, OcspError> {
        let mut current = self.delegate.write().unwrap_or_else(|p| p.into_inner());
        let generation = current.generation + 1;
        let next = Delegate::prepare(&self.id, &self.ca_cert, signer, signer_cert_der, generation)?;
        *current = Arc::new(next);
        Ok(generation)
    }

    /// notAfter of the current signer certificate.
    pub(crate) fn signer_not_after(&self) -> SystemTime {
        self.delegate().not_after
    }
}

impl Delegate {
    fn prepare(
        id: &IssuerId,
        ca_cert: &Certificate,
        signer: Arc<dyn TbsSigner>,
        signer_cert_der: &[u8],
        generation: u64,
    ) -> Result<Delegate, OcspError> {
        let fail = |what: &'static str, reason: String| OcspError::Issuer {
            issuer: id.clone(),
            what,
            reason,
        };
        let signer_cert = Certificate::from_der(signer_cert_der)
            .map_err(|e| fail("signer certificate", format!("does not decode: {e}")))?;
        let signer_spki = signer.public_key();
        if signer_cert.tbs_certificate.subject_public_key_info != signer_spki {
            return Err(fail(
                "signer certificate",
                "certifies a different key than the signer holds".into(),
            ));
        }
        let ca_signs_itself = &signer_cert == ca_cert;
        if !ca_signs_itself {
            check_delegation(id, ca_cert, &signer_cert)?;
        }
        let validity = &signer_cert.tbs_certificate.validity;
        let (not_before, not_after) = (
            validity.not_before.to_system_time(),
            validity.not_after.to_system_time(),
        );
        let signer_key_kind =
            KeyKind::of(&signer_spki).map_err(|e| fail("signer key", e.rule()))?;
        let key_hash = Sha1::digest(signer_spki.subject_public_key.raw_bytes());
        let responder_id = ResponderId::ByKey(
            OctetString::new(&key_hash[..]).map_err(|e| fail("responder id", e.to_string()))?,
        );
        Ok(Delegate {
            generation,
            signature_algorithm: signer.signature_algorithm(),
            signer,
            signer_spki,
            signer_key_kind,
            responder_id,
            signer_cert,
            not_before,
            not_after,
        })
    }
}

/// RFC 6960 §4.2.2.2: a delegated responder certificate is issued directly by the CA and
/// carries id-kp-OCSPSigning. A refusal is [`OcspError::Issuer`] for the signer certificate
/// of the CA `id`.
fn check_delegation(
    id: &IssuerId,
    ca: &Certificate,
    signer: &Certificate,
) -> Result<(), OcspError> {
    let refuse = |reason: String| OcspError::Issuer {
        issuer: id.clone(),
        what: "signer certificate",
        reason,
    };
    if signer.tbs_certificate.issuer != ca.tbs_certificate.subject {
        return Err(refuse("is not issued by the CA it answers for".into()));
    }
    let tbs = signer
        .tbs_certificate
        .to_der()
        .map_err(|e| refuse(format!("does not encode: {e}")))?;
    nesca_ca_types::verify::verify(
        &ca.tbs_certificate.subject_public_key_info,
        &signer.signature_algorithm,
        &tbs,
        signer.signature.raw_bytes(),
    )
    .map_err(|e| refuse(format!("is not signed by the CA: {e}")))?;
    let eku = signer
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE)
        .ok_or_else(|| refuse("has no extendedKeyUsage (id-kp-OCSPSigning is required)".into()))?;
    let eku = ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
        .map_err(|e| refuse(format!("extendedKeyUsage does not decode: {e}")))?;
    if !eku.0.contains(&ID_KP_OCSP_SIGNING) {
        return Err(refuse("extendedKeyUsage lacks id-kp-OCSPSigning".into()));
    }
    Ok(())
}
