//! Certificate extensions: the ASN.1 types x509-cert lacks (ETSI EN 319 412-5 QC statements)
//! and small builders shared by the profiles.

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Any, Ia5String, OctetString, PrintableString, Utf8StringRef};
use der::{Decode, Encode, Sequence};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CrlDistributionPoints,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;

use crate::error::{CaError, Result};
use crate::oids;

/// QCStatement (RFC 3739 §3.2.6; ETSI EN 319 412-5 §4).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct QcStatement {
    pub statement_id: ObjectIdentifier,
    #[asn1(optional = "true")]
    pub statement_info: Option<Any>,
}

/// QCStatements ::= SEQUENCE OF QCStatement.
pub type QcStatements = Vec<QcStatement>;

/// PdsLocation (ETSI EN 319 412-5 §4.3.4).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PdsLocation {
    pub url: Ia5String,
    pub language: PrintableString,
}

/// SemanticsInformation (RFC 3739 §3.2.6.1), with the semantics identifier only.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SemanticsInformation {
    #[asn1(optional = "true")]
    pub semantics_identifier: Option<ObjectIdentifier>,
}

/// MonetaryValue (ETSI EN 319 412-5 §4.3.2), with an alphabetic ISO 4217 currency.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct MonetaryValue {
    pub currency: PrintableString,
    pub amount: i64,
    pub exponent: i64,
}

/// Wraps a value as an extension (RFC 5280 §4.1: extnValue is the DER of the value).
pub fn extension<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> Result<Extension> {
    let der = value.to_der().map_err(CaError::der("extension value"))?;
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(der).map_err(CaError::der("extnValue"))?,
    })
}

/// Wraps a value whose type knows its OID.
pub fn known<T: Encode + AssociatedOid>(critical: bool, value: &T) -> Result<Extension> {
    extension(T::OID, critical, value)
}

pub fn subject_key_identifier(key_id: &[u8]) -> Result<Extension> {
    known(
        false,
        &SubjectKeyIdentifier(OctetString::new(key_id).map_err(CaError::der("keyIdentifier"))?),
    )
}

pub fn authority_key_identifier(key_id: &[u8]) -> Result<Extension> {
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id).map_err(CaError::der("keyIdentifier"))?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    known(false, &aki)
}

pub fn uri(s: &str) -> Result<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(
        Ia5String::new(s).map_err(CaError::der("URI"))?,
    ))
}

pub fn crl_distribution_points(crl_url: &str) -> Result<Extension> {
    let dp = DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(crl_url)?])),
        reasons: None,
        crl_issuer: None,
    };
    known(false, &CrlDistributionPoints(vec![dp]))
}

/// authorityInfoAccess with an OCSP URL (absent for OCSP signers) and the caIssuers URL.
pub fn authority_info_access(ocsp_url: Option<&str>, ca_issuers_url: &str) -> Result<Extension> {
    let mut access = Vec::new();
    if let Some(ocsp) = ocsp_url {
        access.push(AccessDescription {
            access_method: oids::AD_OCSP,
            access_location: uri(ocsp)?,
        });
    }
    access.push(AccessDescription {
        access_method: oids::AD_CA_ISSUERS,
        access_location: uri(ca_issuers_url)?,
    });
    known(false, &AuthorityInfoAccessSyntax(access))
}

/// A QC statement whose info is `value`'s DER.
pub fn qc_statement<T: Encode>(id: ObjectIdentifier, value: Option<&T>) -> Result<QcStatement> {
    let statement_info = match value {
        Some(v) => Some(
            Any::from_der(&v.to_der().map_err(CaError::der("statementInfo"))?)
                .map_err(CaError::der("statementInfo"))?,
        ),
        None => None,
    };
    Ok(QcStatement {
        statement_id: id,
        statement_info,
    })
}

/// A UTF8String value (for notices), checked to be valid DER.
pub fn utf8(s: &str) -> Result<Utf8StringRef<'_>> {
    Utf8StringRef::new(s).map_err(CaError::der("UTF8String"))
}
