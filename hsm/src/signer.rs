//! Signing with a token key, in the shape the RustCrypto builders accept.
//!
//! [`KeySigner`] implements `signature::Keypair`, `signature::Signer<HsmSignature>` and
//! `spki::DynSignatureAlgorithmIdentifier`, which is what `x509-cert`'s and `x509-ocsp`'s
//! builders ask of a signer; nesca's own issuance path calls [`KeySigner::sign`] on TBS bytes
//! it has linted first.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use const_oid::ObjectIdentifier;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use der::asn1::{BitString, UintRef};
use der::{Encode, Sequence};
use sha2::{Digest, Sha256, Sha384};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};

use crate::key::private_handle;
use crate::module::Lane;
use crate::{Hsm, HsmError, KeyAlgorithm};

/// ecdsa-with-SHA256 (RFC 5758 §3.2).
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384 (RFC 5758 §3.2).
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// sha256WithRSAEncryption (RFC 8017 Appendix C).
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// A public key as its SubjectPublicKeyInfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    spki: SubjectPublicKeyInfoOwned,
    der: Vec<u8>,
}

impl PublicKey {
    pub(crate) fn new(spki: SubjectPublicKeyInfoOwned) -> Result<Self, HsmError> {
        let der = spki.to_der().map_err(|e| HsmError::Encoding {
            what: "SubjectPublicKeyInfo",
            reason: e.to_string(),
        })?;
        Ok(PublicKey { spki, der })
    }

    /// The SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    pub fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    /// The SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.der
    }
}

impl EncodePublicKey for PublicKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.der.as_slice())?)
    }
}

/// A signature value as it goes into a certificate, CRL or OCSP response: DER
/// `ECDSA-Sig-Value` for ECDSA, the raw octets for RSA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HsmSignature(pub Vec<u8>);

impl SignatureBitStringEncoding for HsmSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

/// ECDSA-Sig-Value (RFC 3279 §2.2.3).
#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// A private key in the token, usable for signing by any number of threads.
pub struct KeySigner {
    hsm: Hsm,
    label: String,
    algorithm: KeyAlgorithm,
    /// Handles stay valid for the process's login, within one module epoch (a reconnection
    /// makes new ones, and the old numbers may name other objects); refreshed if the token
    /// says otherwise.
    handle: Arc<Mutex<Option<(ObjectHandle, u64)>>>,
    public: PublicKey,
    /// The sessions it signs on.
    lane: Lane,
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySigner")
            .field("label", &self.label)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl KeySigner {
    pub(crate) fn new(
        hsm: Hsm,
        label: String,
        algorithm: KeyAlgorithm,
        handle: ObjectHandle,
        public: PublicKey,
    ) -> Self {
        // Found by a caller that holds its share of the token: the epoch is the handle's.
        let epoch = hsm.epoch();
        KeySigner {
            hsm,
            label,
            algorithm,
            handle: Arc::new(Mutex::new(Some((handle, epoch)))),
            public,
            lane: Lane::Signing,
        }
    }

    /// This signer, signing on the sessions kept for OCSP (`HsmConfig::ocsp_pool_size`): for a
    /// delegated OCSP signer, whose signatures answer anonymous relying parties.
    pub fn on_ocsp_sessions(mut self) -> Self {
        self.lane = Lane::Ocsp;
        self
    }

    /// The key's label on the token.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The signatureAlgorithm this key signs with (RFC 5280 §4.1.1.2).
    pub fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            KeyAlgorithm::EcdsaP384 => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA384,
                parameters: None,
            },
            _ => AlgorithmIdentifierOwned {
                oid: SHA256_WITH_RSA,
                parameters: Some(der::asn1::Null.into()),
            },
        }
    }

    /// Signs `message` inside the token; returns the signature value for X.509.
    ///
    /// ECDSA: the digest is computed here and signed with `CKM_ECDSA` (SoftHSM has no
    /// `CKM_ECDSA_SHA256`), and the raw r‖s is re-encoded as DER. RSA: `CKM_SHA256_RSA_PKCS`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let input = match self.algorithm {
            KeyAlgorithm::EcdsaP256 => Sha256::digest(message).to_vec(),
            KeyAlgorithm::EcdsaP384 => Sha384::digest(message).to_vec(),
            _ => message.to_vec(),
        };
        let (cache, label, algorithm) = (self.handle.clone(), self.label.clone(), self.algorithm);
        let epoch = self.hsm.inner.epoch.clone();
        let raw = self.hsm.with_session(self.lane, move |session| {
            // Built here: a Mechanism is not Send, the job runs on a worker thread.
            let mechanism = match algorithm {
                KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => Mechanism::Ecdsa,
                _ => Mechanism::Sha256RsaPkcs,
            };
            // Stable while this job runs: its caller holds its share of the token.
            let epoch_now = epoch.load(Ordering::SeqCst);
            let cached = *cache.lock().unwrap_or_else(|p| p.into_inner());
            let handle = match cached {
                Some((h, e)) if e == epoch_now => h,
                _ => {
                    // This signer's key was on the token: missing now, the token lost it
                    // (removed, its store gone) or our login; transient.
                    let h = private_handle(session, &label).map_err(|e| match e {
                        HsmError::KeyNotFound { label } => HsmError::KeyVanished { label },
                        other => other,
                    })?;
                    *cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((h, epoch_now));
                    h
                }
            };
            session.sign(&mechanism, handle, &input).map_err(|e| {
                if let CkError::Pkcs11(
                    RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid,
                    _,
                ) = e
                {
                    // Stale after a lost login: look the key up again on the retry.
                    *cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                HsmError::from_ck("C_Sign", e)
            })
        })?;
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => ecdsa_raw_to_der(&raw),
            _ => Ok(raw),
        }
    }
}

/// r‖s (PKCS#11 §2.3.1) → DER ECDSA-Sig-Value; `UintRef` strips leading zeros and adds the
/// 0x00 that keeps a high-bit value positive.
fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, HsmError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(HsmError::Encoding {
            what: "ECDSA signature",
            reason: format!("odd raw length {}", raw.len()),
        });
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let enc = |e: der::Error| HsmError::Encoding {
        what: "ECDSA signature",
        reason: e.to_string(),
    };
    EcdsaSigValue {
        r: UintRef::new(r).map_err(enc)?,
        s: UintRef::new(s).map_err(enc)?,
    }
    .to_der()
    .map_err(enc)
}

impl signature::Keypair for KeySigner {
    type VerifyingKey = PublicKey;
    fn verifying_key(&self) -> PublicKey {
        self.public.clone()
    }
}

impl signature::Signer<HsmSignature> for KeySigner {
    fn try_sign(&self, msg: &[u8]) -> Result<HsmSignature, signature::Error> {
        self.sign(msg)
            .map(HsmSignature)
            .map_err(signature::Error::from_source)
    }
}

impl DynSignatureAlgorithmIdentifier for KeySigner {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.signature_algorithm())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_signature_becomes_der_with_sign_padding() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x00; // leading zero in r is stripped
        raw[1] = 0x7f;
        raw[32] = 0x80; // high bit in s needs a 0x00 prefix
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(der[0], 0x30);
        // r: INTEGER of 31 bytes; s: INTEGER of 33 bytes
        assert_eq!(&der[2..4], &[0x02, 31]);
        assert_eq!(der[4], 0x7f);
        assert_eq!(&der[35..38], &[0x02, 33, 0x00]);
    }

    #[test]
    fn odd_raw_signature_is_refused() {
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_err());
    }
}
