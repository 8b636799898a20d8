//! Everything of the TBSCertList (RFC 5280 §5.1.2) but revokedCertificates: built as
//! `x509-cert` types so that the lint reads typed values, then encoded with `der` in the two
//! pieces that go before and after the entries.
//!
//! ```text
//! TBSCertList ::= SEQUENCE {
//!     version              Version OPTIONAL,   -- v2
//!     signature            AlgorithmIdentifier,
//!     issuer               Name,
//!     thisUpdate           Time,
//!     nextUpdate           Time OPTIONAL,
//!     revokedCertificates  SEQUENCE OF ... OPTIONAL,
//!     crlExtensions        [0] EXPLICIT Extensions OPTIONAL }
//! ```

use const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER;
use const_oid::AssociatedOid;
use der::asn1::{ContextSpecific, Ia5String, OctetString, Uint};
use der::{Decode, Encode, TagMode, TagNumber};
use nesca_ca_types::UnixTime;
use sha1::{Digest, Sha1};
use spki::AlgorithmIdentifierOwned;
use x509_cert::crl::TbsCertList;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber, FreshestCrl};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
use x509_cert::ext::Extension;
use x509_cert::Certificate;

use crate::error::CrlError;
use crate::tlv;

/// Full or delta, without the details: what the schedule says is due and what a summary
/// reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrlType {
    /// A complete (base) CRL.
    Full,
    /// A delta CRL (RFC 5280 §5.2.4).
    Delta,
}

/// Which CRL to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlKind {
    /// A complete (base) CRL. `freshest_crl`: the URL of the delta CRL, written as the
    /// non-critical freshestCRL extension (RFC 5280 §5.2.6).
    Full { freshest_crl: Option<String> },
    /// A delta CRL: critical deltaCRLIndicator (RFC 5280 §5.2.4) naming the cRLNumber of the
    /// published complete CRL it updates.
    Delta { base_number: u64 },
}

impl CrlKind {
    pub fn crl_type(&self) -> CrlType {
        match self {
            CrlKind::Full { .. } => CrlType::Full,
            CrlKind::Delta { .. } => CrlType::Delta,
        }
    }
}

/// The header of a CRL: who issues it, its number and its validity.
#[derive(Debug, Clone)]
pub struct CrlHeader<'a> {
    /// The issuer's certificate: the CRL's issuer Name is its subject, and the
    /// authorityKeyIdentifier its subjectKeyIdentifier (RFC 5280 §5.2.1).
    pub issuer_cert: &'a Certificate,
    /// cRLNumber (RFC 5280 §5.2.3): one increasing sequence shared by full and delta CRLs.
    pub number: u64,
    /// thisUpdate (§5.1.2.4).
    pub this_update: UnixTime,
    /// nextUpdate (§5.1.2.5).
    pub next_update: UnixTime,
    pub kind: CrlKind,
}

/// A header time X.509 cannot carry ([`CrlError::Time`] from `tlv`) as that header field's
/// refusal; any other error is passed on as it is.
fn header_time(e: CrlError) -> CrlError {
    match e {
        CrlError::Time { field, unix, rule } => {
            CrlError::header(field, format!("{unix} is {rule} and cannot be encoded"))
        }
        other => other,
    }
}

/// The TBSCertList with every field but revokedCertificates (left `None`).
pub(crate) fn tbs_without_entries(
    header: &CrlHeader<'_>,
    signature: AlgorithmIdentifierOwned,
) -> Result<TbsCertList, CrlError> {
    let this_update = tlv::time("thisUpdate", header.this_update).map_err(header_time)?;
    let next_update = tlv::time("nextUpdate", header.next_update).map_err(header_time)?;

    // The order RFC 5280 §5.2 lists them in; nothing depends on it but readability.
    let mut extensions = vec![
        extension(
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(
                    OctetString::new(authority_key_id(header.issuer_cert)?)
                        .map_err(CrlError::der("authorityKeyIdentifier"))?,
                ),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
        extension(false, &CrlNumber(crl_number(header.number)?))?,
    ];
    match &header.kind {
        CrlKind::Full { freshest_crl: None } => {}
        CrlKind::Full {
            freshest_crl: Some(url),
        } => extensions.push(extension(false, &FreshestCrl(vec![http_point(url)?]))?),
        CrlKind::Delta { base_number } => {
            extensions.push(extension(true, &BaseCrlNumber(crl_number(*base_number)?))?)
        }
    }

    Ok(TbsCertList {
        version: x509_cert::Version::V2,
        signature,
        issuer: header.issuer_cert.tbs_certificate.subject.clone(),
        this_update,
        next_update: Some(next_update),
        revoked_certificates: None,
        crl_extensions: Some(extensions),
    })
}

/// The DER of a TBSCertList's content around revokedCertificates.
pub(crate) struct EncodedParts {
    /// version, signature, issuer, thisUpdate, nextUpdate.
    pub(crate) before_entries: Vec<u8>,
    /// `[0] EXPLICIT Extensions` (empty if there are none).
    pub(crate) after_entries: Vec<u8>,
}

/// Encodes the fields of `tbs` (whose revokedCertificates is ignored) in DER order, as the
/// derived `TbsCertList` encoder would, but split where the entries go.
pub(crate) fn encode_parts(tbs: &TbsCertList) -> Result<EncodedParts, CrlError> {
    let mut before = Vec::with_capacity(256);
    tbs.version
        .encode_to_vec(&mut before)
        .map_err(CrlError::der("version"))?;
    tbs.signature
        .encode_to_vec(&mut before)
        .map_err(CrlError::der("signature"))?;
    tbs.issuer
        .encode_to_vec(&mut before)
        .map_err(CrlError::der("issuer"))?;
    tbs.this_update
        .encode_to_vec(&mut before)
        .map_err(CrlError::der("thisUpdate"))?;
    if let Some(next) = &tbs.next_update {
        next.encode_to_vec(&mut before)
            .map_err(CrlError::der("nextUpdate"))?;
    }
    let mut after = Vec::with_capacity(256);
    if let Some(exts) = &tbs.crl_extensions {
        ContextSpecific {
            tag_number: TagNumber::N0,
            tag_mode: TagMode::Explicit,
            value: exts.clone(),
        }
        .encode_to_vec(&mut after)
        .map_err(CrlError::der("crlExtensions"))?;
    }
    Ok(EncodedParts {
        before_entries: before,
        after_entries: after,
    })
}

/// The issuer's key identifier: its subjectKeyIdentifier, or, for a certificate without one,
/// SHA-1 of its subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1, as nesca computes SKIs).
pub(crate) fn authority_key_id(cert: &Certificate) -> Result<Vec<u8>, CrlError> {
    let tbs = &cert.tbs_certificate;
    let ski = tbs
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_CE_SUBJECT_KEY_IDENTIFIER);
    match ski {
        Some(ext) => {
            let ski = SubjectKeyIdentifier::from_der(ext.extn_value.as_bytes()).map_err(|e| {
                CrlError::header(
                    "authorityKeyIdentifier",
                    format!("the issuer certificate's subjectKeyIdentifier does not decode: {e}"),
                )
            })?;
            Ok(ski.0.as_bytes().to_vec())
        }
        None => {
            Ok(Sha1::digest(tbs.subject_public_key_info.subject_public_key.raw_bytes()).to_vec())
        }
    }
}

/// CRLNumber ::= INTEGER (0..MAX) (RFC 5280 §5.2.3); a u64 takes at most 9 octets.
fn crl_number(n: u64) -> Result<Uint, CrlError> {
    Uint::new(&n.to_be_bytes()).map_err(CrlError::der("cRLNumber"))
}

/// One DistributionPoint with a fullName URI: the form of freshestCRL (RFC 5280 §5.2.6,
/// syntax of §4.2.1.13). Plain http, as for cRLDistributionPoints (docs/STANDARDS.md "NES
/// certificate for a natural person"): relying parties fetch revocation data without TLS, which
/// itself would need revocation checking.
fn http_point(url: &str) -> Result<DistributionPoint, CrlError> {
    let ok = url.strip_prefix("http://").is_some_and(|rest| {
        !rest.is_empty()
            && rest.is_ascii()
            && !rest.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control())
    });
    if !ok {
        return Err(CrlError::header(
            "freshestCRL",
            format!("{url:?} must be an http:// URL of printable ASCII"),
        ));
    }
    let uri = Ia5String::new(url).map_err(CrlError::der("freshestCRL URI"))?;
    Ok(DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(uri),
        ])),
        reasons: None,
        crl_issuer: None,
    })
}

/// extnValue is the DER of the value (RFC 5280 §4.1, §5.2).
fn extension<T: Encode + AssociatedOid>(critical: bool, value: &T) -> Result<Extension, CrlError> {
    let der = value
        .to_der()
        .map_err(CrlError::der("CRL extension value"))?;
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(der).map_err(CrlError::der("extnValue"))?,
    })
}

/// The extensions of a built header, for the lint.
pub(crate) fn extensions(tbs: &TbsCertList) -> &[Extension] {
    tbs.crl_extensions.as_deref().unwrap_or(&[])
}
