//! The object identifiers verification needs (the same values as `ca-core/src/oids.rs`).

use const_oid::ObjectIdentifier as Oid;

/// id-ecPublicKey (RFC 5480 §2.1.1).
pub(crate) const ID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// secp256r1, the named curve P-256 (RFC 5480 §2.1.1.1).
pub(crate) const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1, the named curve P-384 (RFC 5480 §2.1.1.1).
pub(crate) const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
/// secp521r1, the named curve P-521 (RFC 5480 §2.1.1.1).
pub(crate) const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");
/// rsaEncryption (RFC 3279 §2.3.1).
pub(crate) const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// sha256WithRSAEncryption (RFC 4055 §5).
pub(crate) const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// sha384WithRSAEncryption (RFC 4055 §5).
pub(crate) const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption (RFC 4055 §5).
pub(crate) const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// ecdsa-with-SHA256 (RFC 5758 §3.2).
pub(crate) const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384 (RFC 5758 §3.2).
pub(crate) const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA512 (RFC 5758 §3.2).
pub(crate) const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
