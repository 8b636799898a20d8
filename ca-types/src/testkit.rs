//! Test helpers (feature `testkit`): a software CA key standing in for the HSM in the unit
//! tests of nesca's crates; the end-to-end tests use SoftHSM.

use der::Decode;
use p256::pkcs8::EncodePublicKey;
use signature::Signer;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::CaTypesError;
use crate::oids;
use crate::signer::TbsSigner;

/// A P-256 key in memory, signing ecdsa-with-SHA256.
pub struct SoftSigner(pub p256::ecdsa::SigningKey);

impl SoftSigner {
    /// A fresh key from the OS CSPRNG.
    pub fn random() -> Self {
        SoftSigner(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng))
    }
}

impl TbsSigner for SoftSigner {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: oids::ECDSA_WITH_SHA256,
            parameters: None,
        }
    }
    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        let der = self
            .0
            .verifying_key()
            .to_public_key_der()
            .expect("encode SPKI");
        SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).expect("decode SPKI")
    }
    fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, CaTypesError> {
        let sig: p256::ecdsa::Signature = self.0.sign(tbs_der);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_signatures_verify_under_the_public_key() {
        let s = SoftSigner::random();
        let sig = s.sign(b"tbs").unwrap();
        let (spki, alg) = (s.public_key(), s.signature_algorithm());
        crate::verify::verify(&spki, &alg, b"tbs", &sig).unwrap();
        let e = crate::verify::verify(&spki, &alg, b"other", &sig).unwrap_err();
        assert!(matches!(e, CaTypesError::Signature { .. }), "{e}");
        assert_eq!(e.to_string(), "signature does not verify");
    }
}
