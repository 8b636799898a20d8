//! Signature verification in software, for proof of possession in CSRs and for checking
//! what the HSM returned before a certificate, a CRL or an OCSP response leaves nesca.

use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256, Sha384, Sha512};
use signature::hazmat::PrehashVerifier;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::CaTypesError;
use crate::oids;

/// What a subject public key is (RFC 5280 §4.1.2.7: RSA per RFC 3279 §2.3.1, EC per RFC 5480
/// §2.1.1), after the checks every profile shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, with its modulus length in bits.
    Rsa { bits: usize },
    /// ECDSA on the named curve P-256 (secp256r1).
    EcP256,
    /// ECDSA on the named curve P-384 (secp384r1).
    EcP384,
    /// ECDSA on the named curve P-521 (secp521r1).
    EcP521,
}

impl KeyKind {
    /// Reads the key type and size, refusing what nesca never certifies.
    /// RSA: at least 2048 and at most 8192 bits, public exponent 65537 (the keys nesca certifies
    /// and signs with).
    /// EC: the named curves P-256, P-384 and P-521. A refusal is
    /// [`CaTypesError::PublicKey`].
    pub fn of(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyKind, CaTypesError> {
        let alg = &spki.algorithm;
        if alg.oid == oids::RSA_ENCRYPTION {
            let key = rsa_key(spki)?;
            let bits = key.n().bits();
            if bits < 2048 {
                return Err(CaTypesError::public_key(format!(
                    "RSA key of {bits} bits is too short: at least 2048 bits are required"
                )));
            }
            if bits > 8192 {
                return Err(CaTypesError::public_key(format!(
                    "RSA key of {bits} bits is longer than the 8192 bits nesca accepts"
                )));
            }
            if key.e() != &rsa::BigUint::from(65537u32) {
                return Err(CaTypesError::public_key(
                    "RSA public exponent must be 65537",
                ));
            }
            return Ok(KeyKind::Rsa { bits });
        }
        if alg.oid == oids::ID_EC_PUBLIC_KEY {
            let curve: const_oid::ObjectIdentifier = alg
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as().ok())
                .ok_or_else(|| {
                    CaTypesError::public_key("EC key must name its curve (namedCurve)")
                })?;
            let point = spki.subject_public_key.raw_bytes();
            let kind = match curve {
                c if c == oids::SECP256R1 => {
                    p256::PublicKey::from_sec1_bytes(point)
                        .map_err(|_| CaTypesError::public_key("EC point is not on P-256"))?;
                    KeyKind::EcP256
                }
                c if c == oids::SECP384R1 => {
                    p384::PublicKey::from_sec1_bytes(point)
                        .map_err(|_| CaTypesError::public_key("EC point is not on P-384"))?;
                    KeyKind::EcP384
                }
                c if c == oids::SECP521R1 => {
                    p521::PublicKey::from_sec1_bytes(point)
                        .map_err(|_| CaTypesError::public_key("EC point is not on P-521"))?;
                    KeyKind::EcP521
                }
                c => {
                    return Err(CaTypesError::public_key(format!(
                        "unsupported curve {c} (supported: P-256, P-384, P-521)"
                    )))
                }
            };
            return Ok(kind);
        }
        Err(CaTypesError::public_key(format!(
            "unsupported public key algorithm {} (supported: RSA, ECDSA)",
            alg.oid
        )))
    }
}

fn rsa_key(spki: &SubjectPublicKeyInfoOwned) -> Result<rsa::RsaPublicKey, CaTypesError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    rsa::RsaPublicKey::from_pkcs1_der(spki.subject_public_key.raw_bytes())
        .map_err(|e| CaTypesError::public_key(format!("RSA public key does not decode: {e}")))
}

/// Verifies `signature` over `message` under `spki` with the signature algorithm `alg`.
/// A key nesca does not take is [`CaTypesError::PublicKey`]; a signature that does not
/// verify, or an algorithm that does not fit, [`CaTypesError::Signature`].
pub fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CaTypesError> {
    verify_with(KeyKind::of(spki)?, spki, alg, message, signature)
}

/// [`verify`] for a key whose [`KeyKind`] the caller has already established.
///
/// P-256, P-384 and RSA go through ring's constant-time, assembly-optimised code (the same
/// that rustls uses): verification runs twice per issuance (CSR proof of possession and the
/// post-signing check), and RustCrypto's portable P-256 made it the largest CPU cost.
/// P-521 and ECDSA with SHA-512 fall back to RustCrypto.
pub fn verify_with(
    kind: KeyKind,
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CaTypesError> {
    use ring::signature as rs;
    let is_rsa_alg = [
        oids::SHA256_WITH_RSA,
        oids::SHA384_WITH_RSA,
        oids::SHA512_WITH_RSA,
    ]
    .contains(&alg.oid);
    let is_ecdsa_alg = [
        oids::ECDSA_WITH_SHA256,
        oids::ECDSA_WITH_SHA384,
        oids::ECDSA_WITH_SHA512,
    ]
    .contains(&alg.oid);
    if !is_rsa_alg && !is_ecdsa_alg {
        return Err(CaTypesError::signature(format!(
            "unsupported signature algorithm {}",
            alg.oid
        )));
    }
    let ring_alg: Option<&'static dyn rs::VerificationAlgorithm> = match (kind, alg.oid) {
        (KeyKind::Rsa { .. }, o) if o == oids::SHA256_WITH_RSA => {
            Some(&rs::RSA_PKCS1_2048_8192_SHA256)
        }
        (KeyKind::Rsa { .. }, o) if o == oids::SHA384_WITH_RSA => {
            Some(&rs::RSA_PKCS1_2048_8192_SHA384)
        }
        (KeyKind::Rsa { .. }, o) if o == oids::SHA512_WITH_RSA => {
            Some(&rs::RSA_PKCS1_2048_8192_SHA512)
        }
        (KeyKind::EcP256, o) if o == oids::ECDSA_WITH_SHA256 => Some(&rs::ECDSA_P256_SHA256_ASN1),
        (KeyKind::EcP256, o) if o == oids::ECDSA_WITH_SHA384 => Some(&rs::ECDSA_P256_SHA384_ASN1),
        (KeyKind::EcP384, o) if o == oids::ECDSA_WITH_SHA256 => Some(&rs::ECDSA_P384_SHA256_ASN1),
        (KeyKind::EcP384, o) if o == oids::ECDSA_WITH_SHA384 => Some(&rs::ECDSA_P384_SHA384_ASN1),
        // An RSA algorithm with an EC key, or an ECDSA algorithm with an RSA key.
        (_, _) if is_rsa_alg => return Err(mismatch(alg)),
        (KeyKind::Rsa { .. }, _) => return Err(mismatch(alg)),
        _ => None,
    };
    let key = spki.subject_public_key.raw_bytes();
    if let Some(ring_alg) = ring_alg {
        return rs::UnparsedPublicKey::new(ring_alg, key)
            .verify(message, signature)
            .map_err(|_| CaTypesError::signature("signature does not verify"));
    }
    let digest = match alg.oid {
        o if o == oids::ECDSA_WITH_SHA256 => Sha256::digest(message).to_vec(),
        o if o == oids::ECDSA_WITH_SHA384 => Sha384::digest(message).to_vec(),
        _ => Sha512::digest(message).to_vec(),
    };
    let bad = |_| CaTypesError::signature("signature does not verify");
    match kind {
        KeyKind::EcP256 => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(bad)?;
            vk.verify_prehash(
                &digest,
                &p256::ecdsa::Signature::from_der(signature).map_err(bad)?,
            )
            .map_err(bad)
        }
        KeyKind::EcP384 => {
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(bad)?;
            vk.verify_prehash(
                &digest,
                &p384::ecdsa::Signature::from_der(signature).map_err(bad)?,
            )
            .map_err(bad)
        }
        KeyKind::EcP521 => {
            let vk = p521::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(bad)?;
            vk.verify_prehash(
                &digest,
                &p521::ecdsa::Signature::from_der(signature).map_err(bad)?,
            )
            .map_err(bad)
        }
        KeyKind::Rsa { .. } => Err(mismatch(alg)),
    }
}

/// An RSA algorithm with an EC key, or an ECDSA algorithm with an RSA key.
fn mismatch(alg: &AlgorithmIdentifierOwned) -> CaTypesError {
    CaTypesError::signature(format!(
        "signature algorithm {} does not match the key type",
        alg.oid
    ))
}
