//! The CAs the responder answers for, each with its delegated signer (RFC 6960 §4.2.2.2), and
//! what is computed once per CA: CertID hashes, the ResponderID, the decoded signer certificate.

use std::sync::Arc;
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

/// A served issuer, checked and with what every response needs precomputed.
pub(crate) struct Issuer {
    pub id: IssuerId,
    pub hashes: IssuerHashes,
    pub signer: Arc<dyn TbsSigner>,
    pub signer_spki: SubjectPublicKeyInfoOwned,
    /// Read once: every signature is verified against this key before it is served.
    pub signer_key_kind: KeyKind,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// ResponderID byKey: SHA-1 of the signer's subjectPublicKey BIT STRING value
    /// (RFC 6960 §4.2.2.3).
    pub responder_id: ResponderId,
    pub signer_cert: Certificate,
}

impl Issuer {
    /// Checks that the signer certificate belongs to the signer key, was issued by the CA and
    /// is a valid OCSP signer now: a misconfigured signer would make every response fail at
    /// the client, so it fails here instead.
    pub(crate) fn prepare(served: ServedIssuer, now: SystemTime) -> Result<Issuer, OcspError> {
        let id = served.id.clone();
        let fail = |what: &'static str, reason: String| OcspError::Issuer {
            issuer: id.clone(),
            what,
            reason,
        };
        let hashes = IssuerHashes::new(&served.ca_cert)
            .map_err(|e| fail("CA certificate", e.to_string()))?;
        let signer_cert = Certificate::from_der(&served.signer_cert_der)
            .map_err(|e| fail("signer certificate", format!("does not decode: {e}")))?;
        let signer_spki = served.signer.public_key();
        if signer_cert.tbs_certificate.subject_public_key_info != signer_spki {
            return Err(fail(
                "signer certificate",
                "certifies a different key than the signer holds".into(),
            ));
        }
        let ca_signs_itself = signer_cert == served.ca_cert;
        if !ca_signs_itself {
            check_delegation(&id, &served.ca_cert, &signer_cert)?;
        }
        let validity = &signer_cert.tbs_certificate.validity;
        if now < validity.not_before.to_system_time() || now > validity.not_after.to_system_time() {
            return Err(fail(
                "signer certificate",
                "is outside its validity period".into(),
            ));
        }
        let signer_key_kind =
            KeyKind::of(&signer_spki).map_err(|e| fail("signer key", e.rule()))?;
        let key_hash = Sha1::digest(signer_spki.subject_public_key.raw_bytes());
        let responder_id = ResponderId::ByKey(
            OctetString::new(&key_hash[..]).map_err(|e| fail("responder id", e.to_string()))?,
        );
        Ok(Issuer {
            signature_algorithm: served.signer.signature_algorithm(),
            id: served.id,
            hashes,
            signer: served.signer,
            signer_spki,
            signer_key_kind,
            responder_id,
            signer_cert,
        })
    }

    /// notAfter of the signer certificate.
    pub(crate) fn signer_not_after(&self) -> SystemTime {
        self.signer_cert
            .tbs_certificate
            .validity
            .not_after
            .to_system_time()
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
