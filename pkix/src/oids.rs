//! Object identifiers this crate compares against, named as in their RFCs.

use der::oid::ObjectIdentifier as Oid;

/// id-data, RFC 5652 §4.
pub(crate) const ID_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData, RFC 5652 §5.1.
pub(crate) const ID_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
/// id-contentType, RFC 5652 §11.1.
pub(crate) const ID_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest, RFC 5652 §11.2.
pub(crate) const ID_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime, RFC 5652 §11.3.
pub(crate) const ID_SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");

/// id-sha256, RFC 5754 §2.2.
pub(crate) const ID_SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-sha384, RFC 5754 §2.3.
pub(crate) const ID_SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-sha512, RFC 5754 §2.4.
pub(crate) const ID_SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

/// id-ecPublicKey, RFC 5480 §2.1.1.
pub(crate) const ID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 (P-256), RFC 5480 §2.1.1.1.
pub(crate) const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 (P-384), RFC 5480 §2.1.1.1.
pub(crate) const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
/// ecdsa-with-SHA256, RFC 5758 §3.2.
pub(crate) const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384, RFC 5758 §3.2.
pub(crate) const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA512, RFC 5758 §3.2.
pub(crate) const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");

/// rsaEncryption, RFC 8017 Appendix C; in a SignerInfo it means PKCS#1 v1.5 with the
/// SignerInfo's digestAlgorithm (RFC 3370 §3.2).
pub(crate) const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// id-mgf1, RFC 8017 Appendix B.2.1.
pub(crate) const ID_MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
/// id-RSASSA-PSS, RFC 4055 §3.1.
pub(crate) const ID_RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
/// sha256WithRSAEncryption, RFC 4055 §5.
pub(crate) const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// sha384WithRSAEncryption, RFC 4055 §5.
pub(crate) const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption, RFC 4055 §5.
pub(crate) const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");

/// id-ce-subjectKeyIdentifier, RFC 5280 §4.2.1.2.
pub(crate) const ID_CE_SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");
/// id-ce-keyUsage, RFC 5280 §4.2.1.3.
pub(crate) const ID_CE_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
/// id-ce-extKeyUsage, RFC 5280 §4.2.1.12.
pub(crate) const ID_CE_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
/// id-ce-cRLDistributionPoints, RFC 5280 §4.2.1.13.
pub(crate) const ID_CE_CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
/// id-pe-authorityInfoAccess, RFC 5280 §4.2.2.1.
pub(crate) const ID_PE_AUTHORITY_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");
/// id-ad-caIssuers, RFC 5280 §4.2.2.1.
pub(crate) const ID_AD_CA_ISSUERS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.2");

/// id-at-surname, RFC 5280 Appendix A.1.
pub(crate) const ID_AT_SURNAME: Oid = Oid::new_unwrap("2.5.4.4");
/// id-at-serialNumber, RFC 5280 Appendix A.1.
pub(crate) const ID_AT_SERIAL_NUMBER: Oid = Oid::new_unwrap("2.5.4.5");
/// id-at-givenName, RFC 5280 Appendix A.1.
pub(crate) const ID_AT_GIVEN_NAME: Oid = Oid::new_unwrap("2.5.4.42");
