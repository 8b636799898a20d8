//! The signer seam: what signs a TBSCertificate, a TBSCertList or an OCSP ResponseData with a
//! CA key. The HSM's keys implement it (feature `hsm`); tests use software keys.

use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::CaTypesError;

/// Something that signs TBS bytes with a CA key (the signatureValue of RFC 5280 §4.1.1.3 and
/// §5.1.1.3, the signature of RFC 6960 §4.2.1). Implemented for HSM keys; unit tests use a
/// software key.
pub trait TbsSigner: Send + Sync {
    /// The signatureAlgorithm this key produces.
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned;
    /// The key's public half.
    fn public_key(&self) -> SubjectPublicKeyInfoOwned;
    /// Signs; returns the signature value as X.509 carries it.
    fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, CaTypesError>;
}

#[cfg(feature = "hsm")]
impl TbsSigner for hsm::KeySigner {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        hsm::KeySigner::signature_algorithm(self)
    }
    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        hsm::KeySigner::public_key(self).spki().clone()
    }
    fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, CaTypesError> {
        Ok(hsm::KeySigner::sign(self, tbs_der)?)
    }
}
