//! The message digest algorithms accepted (RFC 5754 §2): SHA-256, SHA-384, SHA-512.
//!
//! SHA-1 and MD5 are refused: a signature over them proves nothing about the content today.

use der::asn1::Null;
use der::{Decode, Encode};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::AlgorithmIdentifierOwned;

use crate::oids;
use crate::PkixError;

/// A digest algorithm of the SHA-2 family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DigestAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm with this OID, if accepted.
    pub(crate) fn from_oid(oid: &der::oid::ObjectIdentifier) -> Option<Self> {
        match *oid {
            oids::ID_SHA256 => Some(Self::Sha256),
            oids::ID_SHA384 => Some(Self::Sha384),
            oids::ID_SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Reads a DigestAlgorithmIdentifier (RFC 5652 §10.1.1). RFC 5754 §2: the parameters
    /// SHOULD be absent, but NULL MUST be accepted.
    pub(crate) fn from_identifier(
        field: &'static str,
        id: &AlgorithmIdentifierOwned,
    ) -> Result<Self, PkixError> {
        let algorithm = Self::from_oid(&id.oid).ok_or_else(|| {
            PkixError::invalid(
                field,
                format!(
                    "only sha256, sha384 and sha512 are accepted (found {})",
                    id.oid
                ),
            )
        })?;
        if !parameters_absent_or_null(&id.parameters) {
            return Err(PkixError::invalid(
                field,
                "parameters must be absent or NULL (RFC 5754 §2)",
            ));
        }
        Ok(algorithm)
    }

    /// The name callers see: "sha256", "sha384" or "sha512".
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The digest of `data`.
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// The digest's length in octets.
    pub(crate) fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// True when an AlgorithmIdentifier's parameters are absent or an ASN.1 NULL.
pub(crate) fn parameters_absent_or_null(parameters: &Option<der::Any>) -> bool {
    match parameters {
        None => true,
        Some(any) => any
            .to_der()
            .ok()
            .is_some_and(|der| Null::from_der(&der).is_ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(oid: &str, parameters: Option<der::Any>) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: oid.parse().unwrap(),
            parameters,
        }
    }

    #[test]
    fn sha2_is_accepted_with_absent_or_null_parameters() {
        let null = Some(der::Any::from(Null));
        assert_eq!(
            DigestAlgorithm::from_identifier("d", &id("2.16.840.1.101.3.4.2.1", None)),
            Ok(DigestAlgorithm::Sha256)
        );
        assert_eq!(
            DigestAlgorithm::from_identifier("d", &id("2.16.840.1.101.3.4.2.3", null)),
            Ok(DigestAlgorithm::Sha512)
        );
    }

    #[test]
    fn sha1_is_refused_by_name() {
        let e = DigestAlgorithm::from_identifier(
            "SignerInfo.digestAlgorithm",
            &id("1.3.14.3.2.26", None),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "SignerInfo.digestAlgorithm: only sha256, sha384 and sha512 are accepted (found 1.3.14.3.2.26)"
        );
    }

    #[test]
    fn parameters_other_than_null_are_refused() {
        let oid_param = der::Any::encode_from(&oids::ID_DATA).unwrap();
        assert!(DigestAlgorithm::from_identifier(
            "d",
            &id("2.16.840.1.101.3.4.2.2", Some(oid_param))
        )
        .is_err());
    }

    #[test]
    fn digests_have_their_lengths() {
        for d in [
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ] {
            assert_eq!(d.digest(b"abc").len(), d.output_len());
        }
        // FIPS 180-2 test vector "abc".
        assert_eq!(
            DigestAlgorithm::Sha256.digest(b"abc")[..4],
            [0xba, 0x78, 0x16, 0xbf]
        );
    }
}
