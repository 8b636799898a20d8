//! Verifying a SignerInfo's signature with the signer certificate's public key
//! (RFC 5652 §5.6).
//!
//! ECDSA goes through the RustCrypto `p256` / `p384` crates on a digest this module computes,
//! because *ring* has no ECDSA with SHA-512 and CMS allows any SHA-2 digest with either curve.
//! RSA goes through *ring*, which already enforces 2048..8192-bit moduli.

use der::asn1::{ObjectIdentifier, UintRef};
use der::{Decode, Encode, Sequence};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::digest::{parameters_absent_or_null, DigestAlgorithm};
use crate::oids;
use crate::PkixError;

const SIGNATURE_ALGORITHM: &str = "SignerInfo.signatureAlgorithm";
const SIGNER_KEY: &str = "signer certificate subjectPublicKeyInfo";

/// The smallest RSA modulus accepted, in bits (as webpki's RSA_PKCS1_2048_8192 algorithms).
const RSA_MIN_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits.
const RSA_MAX_BITS: usize = 8192;

/// How a signature is computed: the scheme and the digest it signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// ECDSA (RFC 5758 §3.2) with the digest named by the ecdsa-with-SHA* OID.
    Ecdsa(DigestAlgorithm),
    /// RSASSA-PKCS1-v1_5 (RFC 8017 §8.2).
    RsaPkcs1(DigestAlgorithm),
    /// RSASSA-PSS (RFC 4055 §3) with MGF1 over the same digest and a salt of the digest's length.
    RsaPss(DigestAlgorithm),
}

impl Scheme {
    /// Reads a SignerInfo's signatureAlgorithm. `digest_algorithm` is the SignerInfo's own,
    /// which the bare rsaEncryption OID relies on (RFC 3370 §3.2).
    pub(crate) fn from_identifier(
        id: &AlgorithmIdentifierOwned,
        digest_algorithm: DigestAlgorithm,
    ) -> Result<Self, PkixError> {
        let scheme = match id.oid {
            oids::ECDSA_WITH_SHA256 => Scheme::Ecdsa(DigestAlgorithm::Sha256),
            oids::ECDSA_WITH_SHA384 => Scheme::Ecdsa(DigestAlgorithm::Sha384),
            oids::ECDSA_WITH_SHA512 => Scheme::Ecdsa(DigestAlgorithm::Sha512),
            oids::SHA256_WITH_RSA => Scheme::RsaPkcs1(DigestAlgorithm::Sha256),
            oids::SHA384_WITH_RSA => Scheme::RsaPkcs1(DigestAlgorithm::Sha384),
            oids::SHA512_WITH_RSA => Scheme::RsaPkcs1(DigestAlgorithm::Sha512),
            oids::RSA_ENCRYPTION => Scheme::RsaPkcs1(digest_algorithm),
            oids::ID_RSASSA_PSS => return pss_scheme(id.parameters.as_ref()),
            other => {
                return Err(PkixError::invalid(
                    SIGNATURE_ALGORITHM,
                    format!(
                        "{other} is not accepted (ecdsa-with-SHA256/384/512, \
                         sha256/384/512WithRSAEncryption, rsaEncryption or RSASSA-PSS)"
                    ),
                ))
            }
        };
        // RFC 5758 §3.2 omits the parameters of ECDSA, RFC 4055 §5 has NULL for PKCS#1 v1.5;
        // both spellings are seen in the wild, anything else is not one of these algorithms.
        if !parameters_absent_or_null(&id.parameters) {
            return Err(PkixError::invalid(
                SIGNATURE_ALGORITHM,
                format!("{}: parameters must be absent or NULL", id.oid),
            ));
        }
        Ok(scheme)
    }

    /// The scheme's name for messages.
    pub(crate) fn name(self) -> &'static str {
        use DigestAlgorithm::*;
        match self {
            Scheme::Ecdsa(Sha256) => "ecdsa-with-SHA256",
            Scheme::Ecdsa(Sha384) => "ecdsa-with-SHA384",
            Scheme::Ecdsa(Sha512) => "ecdsa-with-SHA512",
            Scheme::RsaPkcs1(Sha256) => "sha256WithRSAEncryption",
            Scheme::RsaPkcs1(Sha384) => "sha384WithRSAEncryption",
            Scheme::RsaPkcs1(Sha512) => "sha512WithRSAEncryption",
            Scheme::RsaPss(Sha256) => "RSASSA-PSS with SHA-256",
            Scheme::RsaPss(Sha384) => "RSASSA-PSS with SHA-384",
            Scheme::RsaPss(Sha512) => "RSASSA-PSS with SHA-512",
        }
    }
}

/// RSASSA-PSS-params (RFC 4055 §3.1). The module is EXPLICIT TAGS.
#[derive(Sequence)]
struct RsassaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

/// Accepts only the PSS parameter sets *ring* verifies: SHA-2, MGF1 with the same digest, a
/// salt as long as the digest, trailer 1. The DEFAULTs (SHA-1, salt 20) are refused.
fn pss_scheme(parameters: Option<&der::Any>) -> Result<Scheme, PkixError> {
    let params = parameters
        .ok_or_else(|| PkixError::invalid(SIGNATURE_ALGORITHM, "RSASSA-PSS-params are absent"))?
        .to_der()
        .and_then(|der| RsassaPssParams::from_der(&der))
        .map_err(PkixError::der(SIGNATURE_ALGORITHM))?;
    let hash_id = params.hash_algorithm.ok_or_else(|| {
        PkixError::invalid(
            SIGNATURE_ALGORITHM,
            "RSASSA-PSS hashAlgorithm is the default sha1, which is not accepted",
        )
    })?;
    let digest = DigestAlgorithm::from_identifier(SIGNATURE_ALGORITHM, &hash_id)?;
    let mgf = params.mask_gen_algorithm.ok_or_else(|| {
        PkixError::invalid(
            SIGNATURE_ALGORITHM,
            "RSASSA-PSS maskGenAlgorithm is the default mgf1SHA1, which is not accepted",
        )
    })?;
    let mgf_digest = mgf
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<AlgorithmIdentifierOwned>().ok())
        .and_then(|h| DigestAlgorithm::from_oid(&h.oid));
    if mgf.oid != oids::ID_MGF1 || mgf_digest != Some(digest) {
        return Err(PkixError::invalid(
            SIGNATURE_ALGORITHM,
            "RSASSA-PSS maskGenAlgorithm must be MGF1 with the hashAlgorithm",
        ));
    }
    let salt = params.salt_length.unwrap_or(20);
    if usize::try_from(salt).ok() != Some(digest.output_len()) {
        return Err(PkixError::invalid(
            SIGNATURE_ALGORITHM,
            format!(
                "RSASSA-PSS saltLength must be {} for {} (found {salt})",
                digest.output_len(),
                digest.name()
            ),
        ));
    }
    if params.trailer_field.unwrap_or(1) != 1 {
        return Err(PkixError::invalid(
            SIGNATURE_ALGORITHM,
            "RSASSA-PSS trailerField must be 1",
        ));
    }
    Ok(Scheme::RsaPss(digest))
}

/// Verifies `signature` over `message` with the key in `spki` under `scheme`.
pub(crate) fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    scheme: Scheme,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkixError> {
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| PkixError::invalid(SIGNER_KEY, "subjectPublicKey has unused bits"))?;
    match scheme {
        Scheme::Ecdsa(digest) => verify_ecdsa(spki, key, digest, scheme, message, signature),
        Scheme::RsaPkcs1(_) | Scheme::RsaPss(_) => {
            verify_rsa(spki, key, scheme, message, signature)
        }
    }
}

/// Refuses a signer key whose algorithm is not `expected` (`expected_name`), the one `scheme`
/// needs.
fn require_key_algorithm(
    spki: &SubjectPublicKeyInfoOwned,
    expected: ObjectIdentifier,
    expected_name: &str,
    scheme: Scheme,
) -> Result<(), PkixError> {
    if spki.algorithm.oid == expected {
        return Ok(());
    }
    Err(PkixError::invalid(
        SIGNER_KEY,
        format!(
            "{} needs an {expected_name} key (found {})",
            scheme.name(),
            spki.algorithm.oid
        ),
    ))
}

fn verify_ecdsa(
    spki: &SubjectPublicKeyInfoOwned,
    point: &[u8],
    digest: DigestAlgorithm,
    scheme: Scheme,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkixError> {
    require_key_algorithm(spki, oids::ID_EC_PUBLIC_KEY, "id-ecPublicKey", scheme)?;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let prehash = digest.digest(message);
    let bad = |curve: &str| PkixError::BadSignature {
        algorithm: format!("{} over {curve}", scheme.name()),
    };
    let bad_key = |e: p256::ecdsa::Error| PkixError::invalid(SIGNER_KEY, format!("EC point: {e}"));
    let bad_value = |e: p256::ecdsa::Error| {
        PkixError::invalid(
            "SignerInfo.signature",
            format!("not a DER ECDSA-Sig-Value (RFC 5480 §2.2): {e}"),
        )
    };
    match curve {
        Some(oids::SECP256R1) => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_key)?;
            let sig = p256::ecdsa::Signature::from_der(signature).map_err(bad_value)?;
            key.verify_prehash(&prehash, &sig).map_err(|_| bad("P-256"))
        }
        Some(oids::SECP384R1) => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_key)?;
            let sig = p384::ecdsa::Signature::from_der(signature).map_err(bad_value)?;
            key.verify_prehash(&prehash, &sig).map_err(|_| bad("P-384"))
        }
        other => Err(PkixError::invalid(
            SIGNER_KEY,
            format!(
                "the EC curve must be P-256 or P-384 (found {})",
                other.map_or_else(|| "no namedCurve".to_string(), |o| o.to_string())
            ),
        )),
    }
}

/// RSAPublicKey (RFC 8017 Appendix A.1.1), read only to name a wrong modulus size.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

fn verify_rsa(
    spki: &SubjectPublicKeyInfoOwned,
    key: &[u8],
    scheme: Scheme,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkixError> {
    require_key_algorithm(spki, oids::RSA_ENCRYPTION, "rsaEncryption", scheme)?;
    let parsed = RsaPublicKey::from_der(key).map_err(PkixError::der(SIGNER_KEY))?;
    let bits = modulus_bits(parsed.modulus.as_bytes());
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(PkixError::invalid(
            SIGNER_KEY,
            format!("the RSA modulus must be {RSA_MIN_BITS} to {RSA_MAX_BITS} bits (found {bits})"),
        ));
    }
    use ring::signature as rs;
    use DigestAlgorithm::*;
    let algorithm: &'static dyn rs::VerificationAlgorithm = match scheme {
        Scheme::RsaPkcs1(Sha256) => &rs::RSA_PKCS1_2048_8192_SHA256,
        Scheme::RsaPkcs1(Sha384) => &rs::RSA_PKCS1_2048_8192_SHA384,
        Scheme::RsaPkcs1(Sha512) => &rs::RSA_PKCS1_2048_8192_SHA512,
        Scheme::RsaPss(Sha256) => &rs::RSA_PSS_2048_8192_SHA256,
        Scheme::RsaPss(Sha384) => &rs::RSA_PSS_2048_8192_SHA384,
        Scheme::RsaPss(Sha512) => &rs::RSA_PSS_2048_8192_SHA512,
        Scheme::Ecdsa(_) => {
            return Err(PkixError::invalid(
                SIGNATURE_ALGORITHM,
                "ECDSA with an RSA key",
            ))
        }
    };
    rs::UnparsedPublicKey::new(algorithm, key)
        .verify(message, signature)
        .map_err(|_| PkixError::BadSignature {
            algorithm: format!("{} with a {bits}-bit RSA key", scheme.name()),
        })
}

/// The bit length of a big-endian unsigned integer without leading zero octets.
fn modulus_bits(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(top) => be.len() * 8 - top.leading_zeros() as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::Null;

    fn id(oid: ObjectIdentifier, parameters: Option<der::Any>) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned { oid, parameters }
    }

    #[test]
    fn rsa_encryption_takes_the_signer_infos_digest() {
        let s = Scheme::from_identifier(
            &id(oids::RSA_ENCRYPTION, Some(der::Any::from(Null))),
            DigestAlgorithm::Sha384,
        );
        assert_eq!(s, Ok(Scheme::RsaPkcs1(DigestAlgorithm::Sha384)));
    }

    #[test]
    fn ecdsa_oid_fixes_the_digest() {
        let s =
            Scheme::from_identifier(&id(oids::ECDSA_WITH_SHA512, None), DigestAlgorithm::Sha256);
        assert_eq!(s, Ok(Scheme::Ecdsa(DigestAlgorithm::Sha512)));
    }

    #[test]
    fn sha1_with_rsa_is_refused() {
        let e = Scheme::from_identifier(
            &id("1.2.840.113549.1.1.5".parse().unwrap(), None),
            DigestAlgorithm::Sha256,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("SignerInfo.signatureAlgorithm: 1.2.840.113549.1.1.5 is not accepted"),
            "{e}"
        );
    }

    fn pss_params(hash: DigestAlgorithm, mgf_hash: DigestAlgorithm, salt: u32) -> der::Any {
        let hash_id = |d: DigestAlgorithm| {
            id(
                match d {
                    DigestAlgorithm::Sha256 => oids::ID_SHA256,
                    DigestAlgorithm::Sha384 => oids::ID_SHA384,
                    DigestAlgorithm::Sha512 => oids::ID_SHA512,
                },
                None,
            )
        };
        let params = RsassaPssParams {
            hash_algorithm: Some(hash_id(hash)),
            mask_gen_algorithm: Some(id(
                oids::ID_MGF1,
                Some(der::Any::encode_from(&hash_id(mgf_hash)).unwrap()),
            )),
            salt_length: Some(salt),
            trailer_field: None,
        };
        der::Any::encode_from(&params).unwrap()
    }

    #[test]
    fn pss_with_matching_mgf_and_salt_is_accepted() {
        let p = pss_params(DigestAlgorithm::Sha256, DigestAlgorithm::Sha256, 32);
        assert_eq!(
            Scheme::from_identifier(&id(oids::ID_RSASSA_PSS, Some(p)), DigestAlgorithm::Sha256),
            Ok(Scheme::RsaPss(DigestAlgorithm::Sha256))
        );
    }

    #[test]
    fn pss_with_other_salt_or_mgf_digest_is_refused() {
        let p = pss_params(DigestAlgorithm::Sha256, DigestAlgorithm::Sha256, 20);
        let e = Scheme::from_identifier(&id(oids::ID_RSASSA_PSS, Some(p)), DigestAlgorithm::Sha256)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "SignerInfo.signatureAlgorithm: RSASSA-PSS saltLength must be 32 for sha256 (found 20)"
        );
        let p = pss_params(DigestAlgorithm::Sha256, DigestAlgorithm::Sha512, 32);
        assert!(Scheme::from_identifier(
            &id(oids::ID_RSASSA_PSS, Some(p)),
            DigestAlgorithm::Sha256
        )
        .is_err());
        assert!(
            Scheme::from_identifier(&id(oids::ID_RSASSA_PSS, None), DigestAlgorithm::Sha256)
                .is_err()
        );
    }

    #[test]
    fn modulus_bits_counts_from_the_top_bit() {
        assert_eq!(modulus_bits(&[]), 0);
        assert_eq!(modulus_bits(&[0x01, 0x00]), 9);
        assert_eq!(modulus_bits(&[0x80; 256]), 2048);
    }
}
