//! Object identifiers nesca writes and checks, named after their ASN.1 names.

use const_oid::ObjectIdentifier as Oid;

// X.520 attribute types (RFC 5280 Appendix A.1).
pub const AT_COUNTRY_NAME: Oid = Oid::new_unwrap("2.5.4.6");
pub const AT_ORGANIZATION_NAME: Oid = Oid::new_unwrap("2.5.4.10");
pub const AT_COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
pub const AT_SURNAME: Oid = Oid::new_unwrap("2.5.4.4");
pub const AT_GIVEN_NAME: Oid = Oid::new_unwrap("2.5.4.42");
pub const AT_SERIAL_NUMBER: Oid = Oid::new_unwrap("2.5.4.5");
pub const AT_ORGANIZATION_IDENTIFIER: Oid = Oid::new_unwrap("2.5.4.97");

// Certificate extensions (RFC 5280 §4.2).
pub const CE_AUTHORITY_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.35");
pub const CE_SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");
pub const CE_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
pub const CE_CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
pub const CE_POLICY_MAPPINGS: Oid = Oid::new_unwrap("2.5.29.33");
pub const CE_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
pub const CE_NAME_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.30");
pub const CE_POLICY_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.36");
pub const CE_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
pub const CE_SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
pub const CE_CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
pub const CE_INHIBIT_ANY_POLICY: Oid = Oid::new_unwrap("2.5.29.54");
pub const PE_AUTHORITY_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");
pub const PE_QC_STATEMENTS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.3");

// Access methods (RFC 5280 §4.2.2.1).
pub const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
pub const AD_CA_ISSUERS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.2");

// Policy qualifiers (RFC 5280 §4.2.1.4).
pub const QT_CPS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.2.1");
pub const QT_UNOTICE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.2.2");

// OCSP signer (RFC 6960 §4.2.2.2).
pub const KP_OCSP_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.9");
pub const PKIX_OCSP_NOCHECK: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.5");

// ETSI EN 319 411-2: QCP-n-qscd.
pub const QCP_N_QSCD: Oid = Oid::new_unwrap("0.4.0.194112.1.2");

// ETSI EN 319 412-5 QC statements.
pub const QCS_QC_COMPLIANCE: Oid = Oid::new_unwrap("0.4.0.1862.1.1");
pub const QCS_QC_LIMIT_VALUE: Oid = Oid::new_unwrap("0.4.0.1862.1.2");
pub const QCS_QC_RETENTION_PERIOD: Oid = Oid::new_unwrap("0.4.0.1862.1.3");
pub const QCS_QC_SSCD: Oid = Oid::new_unwrap("0.4.0.1862.1.4");
pub const QCS_QC_PDS: Oid = Oid::new_unwrap("0.4.0.1862.1.5");
pub const QCS_QC_TYPE: Oid = Oid::new_unwrap("0.4.0.1862.1.6");
pub const QCT_ESIGN: Oid = Oid::new_unwrap("0.4.0.1862.1.6.1");
pub const QCS_QC_CC_LEGISLATION: Oid = Oid::new_unwrap("0.4.0.1862.1.7");
/// id-qcs-pkixQCSyntax-v2 (RFC 3739 §3.2.6).
pub const QCS_PKIX_QC_SYNTAX_V2: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.11.2");
/// id-etsi-qcs-semanticsId-Natural (ETSI EN 319 412-1 §5.1.3).
pub const SEMANTICS_ID_NATURAL: Oid = Oid::new_unwrap("0.4.0.194121.1.1");
/// The BTK statement that a certificate is a NES under Law 5070.
pub const BTK_NES_STATEMENT: Oid = Oid::new_unwrap("2.16.792.1.61.0.1.5070.1.1");

// Public key and signature algorithms.
pub const ID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
pub const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
