//! PKCS#10 certification requests (RFC 2986): parsing PEM or DER, and proof of possession.

use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::request::CertReq;

use crate::error::{CaError, Result};
use crate::verify::{self, KeyKind};

/// A CSR whose self-signature verified: the applicant holds the private key.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    pub public_key: SubjectPublicKeyInfoOwned,
    pub key_kind: KeyKind,
    /// The subject the request names (a CA's request: the name it is certified under).
    pub subject: x509_cert::name::Name,
}

/// A subject's public key that nesca accepts to certify: proven by a CSR, or generated in
/// the HSM for a card (where the HSM vouches for the key).
#[derive(Debug, Clone)]
pub struct SubjectKey {
    pub public_key: SubjectPublicKeyInfoOwned,
    pub key_kind: KeyKind,
}

impl From<VerifiedCsr> for SubjectKey {
    fn from(csr: VerifiedCsr) -> SubjectKey {
        SubjectKey {
            public_key: csr.public_key,
            key_kind: csr.key_kind,
        }
    }
}

impl SubjectKey {
    /// A key pair the HSM generated (no proof of possession is needed: the HSM made it).
    pub fn generated(spki_der: &[u8]) -> Result<SubjectKey> {
        let public_key = SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(|e| {
            CaError::invalid("public key", format!("not a SubjectPublicKeyInfo: {e}"))
        })?;
        let key_kind =
            KeyKind::of(&public_key).map_err(|e| CaError::invalid("public key", e.rule()))?;
        Ok(SubjectKey {
            public_key,
            key_kind,
        })
    }
}

/// The largest CSR nesca reads (an RSA-8192 CSR with attributes stays far below this).
const MAX_CSR_BYTES: usize = 64 * 1024;

impl VerifiedCsr {
    /// Parses a CSR in PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or DER,
    /// verifies its signature with its own public key and checks the key is acceptable.
    pub fn parse(input: &[u8]) -> Result<VerifiedCsr> {
        if input.len() > MAX_CSR_BYTES {
            return Err(CaError::invalid(
                "csr",
                format!("larger than {MAX_CSR_BYTES} bytes"),
            ));
        }
        let der = to_der(input)?;
        let req = CertReq::from_der(&der)
            .map_err(|e| CaError::invalid("csr", format!("not a PKCS#10 request: {e}")))?;
        let info = req
            .info
            .to_der()
            .map_err(CaError::der("CertificationRequestInfo"))?;
        let signature = req
            .signature
            .as_bytes()
            .ok_or_else(|| CaError::invalid("csr", "signature bit string has unused bits"))?;
        let key_kind = KeyKind::of(&req.info.public_key)
            .map_err(|e| CaError::invalid("csr public key", e.rule()))?;
        verify::verify_with(
            key_kind,
            &req.info.public_key,
            &req.algorithm,
            &info,
            signature,
        )
        .map_err(|e| {
            CaError::invalid(
                "csr",
                format!("signature check (proof of possession) failed: {e}"),
            )
        })?;
        Ok(VerifiedCsr {
            public_key: req.info.public_key,
            key_kind,
            subject: req.info.subject,
        })
    }
}

/// A PKCS#10 request (RFC 2986) for `signer`'s key under `subject`, signed by it (an HSM key:
/// an issuing CA asking an offline root to certify it). DER.
pub fn build(
    subject: &x509_cert::name::Name,
    signer: &dyn crate::engine::TbsSigner,
) -> Result<Vec<u8>> {
    use x509_cert::request::{CertReqInfo, Version};
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject.clone(),
        public_key: signer.public_key(),
        attributes: Default::default(),
    };
    let tbs = info
        .to_der()
        .map_err(CaError::der("CertificationRequestInfo"))?;
    let signature = signer.sign(&tbs)?;
    CertReq {
        info,
        algorithm: signer.signature_algorithm(),
        signature: der::asn1::BitString::from_bytes(&signature)
            .map_err(CaError::der("signature"))?,
    }
    .to_der()
    .map_err(CaError::der("CertificationRequest"))
}

fn to_der(input: &[u8]) -> Result<Vec<u8>> {
    let trimmed = input.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN") {
        return Ok(input.to_vec());
    }
    let (label, der) = der::pem::decode_vec(trimmed)
        .map_err(|e| CaError::invalid("csr", format!("PEM does not decode: {e}")))?;
    match label {
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Ok(der),
        other => Err(CaError::invalid(
            "csr",
            format!("PEM label is \"{other}\", expected \"CERTIFICATE REQUEST\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::p256_csr;

    #[test]
    fn a_built_request_verifies_and_names_its_subject() {
        let signer = crate::testkit::SoftSigner::random();
        let name: x509_cert::name::Name = "CN=nesca Test NES CA,O=nesca,C=TR".parse().unwrap();
        let der = build(&name, &signer).unwrap();
        let csr = VerifiedCsr::parse(&der).unwrap();
        assert_eq!(csr.subject, name);
        assert_eq!(
            csr.public_key,
            crate::engine::TbsSigner::public_key(&signer)
        );
    }

    #[test]
    fn a_valid_csr_in_der_and_pem_verifies() {
        let der = p256_csr();
        assert!(VerifiedCsr::parse(&der).is_ok());
        let pem =
            der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der).unwrap();
        assert!(VerifiedCsr::parse(pem.as_bytes()).is_ok());
        let wrong_label =
            der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der).unwrap();
        let e = VerifiedCsr::parse(wrong_label.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("csr: PEM label is \"CERTIFICATE\""), "{e}");
    }

    /// Input from outside never panics the parser: every truncation and every single-byte
    /// corruption of a valid request is either accepted or refused with an error.
    #[test]
    fn truncated_and_corrupted_requests_are_refused_without_panic() {
        let der = p256_csr();
        for len in 0..der.len() {
            assert!(
                VerifiedCsr::parse(&der[..len]).is_err(),
                "truncated to {len} bytes was accepted"
            );
        }
        let mut accepted_corruptions = 0;
        for i in 0..der.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= flip;
                if VerifiedCsr::parse(&bad).is_ok() {
                    accepted_corruptions += 1;
                }
            }
        }
        assert_eq!(accepted_corruptions, 0, "corrupted requests verified");
    }
}
