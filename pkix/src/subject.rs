//! Certificate fields (RFC 5280 §4.1): subject attributes, serial number, extendedKeyUsage,
//! validity.

use der::asn1::{Ia5StringRef, ObjectIdentifier, PrintableStringRef, Utf8StringRef};
use der::{Decode, Tag, Tagged};
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::time::Time;
use x509_cert::Certificate;

use crate::unique::at_most_one;
use crate::{cert, oids, PkixError};

/// A natural person's identity as an ID-card authentication certificate states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonIdentity {
    /// subject serialNumber (2.5.4.5), exactly as written (the caller checks it is a valid T.C. Kimlik No).
    pub serial_number: String,
    /// subject givenName (2.5.4.42), exactly as written (UTF-8, Turkish letters kept).
    pub given_name: String,
    /// subject surname (2.5.4.4).
    pub surname: String,
}

/// Reads the person's identity from a certificate's subject; each missing or repeated attribute is an error naming it.
pub fn person_identity(cert_der: &[u8]) -> Result<PersonIdentity, PkixError> {
    let cert = cert::parse("certificate", cert_der)?;
    let required = |oid: ObjectIdentifier| {
        attribute_text(&cert, oid)?.ok_or_else(|| {
            PkixError::invalid(
                "subject",
                format!(
                    "the {} attribute is required, but absent",
                    attribute_name(oid)
                ),
            )
        })
    };
    Ok(PersonIdentity {
        serial_number: required(oids::ID_AT_SERIAL_NUMBER)?,
        given_name: required(oids::ID_AT_GIVEN_NAME)?,
        surname: required(oids::ID_AT_SURNAME)?,
    })
}

/// The subject attribute `oid` (dotted string) as text, when present exactly once (PrintableString / UTF8String / IA5String).
pub fn subject_attribute(cert_der: &[u8], oid: &str) -> Result<Option<String>, PkixError> {
    let oid = ObjectIdentifier::new(oid)
        .map_err(|_| PkixError::invalid("oid", format!("{oid:?} is not a dotted OID")))?;
    let cert = cert::parse("certificate", cert_der)?;
    attribute_text(&cert, oid)
}

/// The certificate's serial number as lower-case hex without leading zero octets (e.g. "1a2b"), the same spelling nesca uses.
///
/// The octets are those of the DER INTEGER (two's complement); a serial of zero is "00".
pub fn serial_hex(cert_der: &[u8]) -> Result<String, PkixError> {
    let cert = cert::parse("certificate", cert_der)?;
    let bytes = cert.tbs_certificate.serial_number.as_bytes();
    let start = bytes.iter().position(|b| *b != 0);
    Ok(match start.and_then(|i| bytes.get(i..)) {
        Some(significant) => significant.iter().map(|b| format!("{b:02x}")).collect(),
        None => "00".to_string(),
    })
}

/// The certificate's subjectPublicKeyInfo (RFC 5280 §4.1.2.7), DER: the signer's key, whichever
/// of its certificates carries it.
pub fn public_key_info_der(cert_der: &[u8]) -> Result<Vec<u8>, PkixError> {
    use der::Encode as _;
    let cert = cert::parse("certificate", cert_der)?;
    cert.tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(PkixError::der("subjectPublicKeyInfo"))
}

/// The extendedKeyUsage purposes (dotted strings); empty when the extension is absent.
pub fn extended_key_usages(cert_der: &[u8]) -> Result<Vec<String>, PkixError> {
    let field = "extensions.extKeyUsage";
    let cert = cert::parse("certificate", cert_der)?;
    let Some(ext) = cert::extension(&cert, oids::ID_CE_EXT_KEY_USAGE, field)? else {
        return Ok(Vec::new());
    };
    let eku =
        ExtendedKeyUsage::from_der(ext.extn_value.as_bytes()).map_err(PkixError::der(field))?;
    Ok(eku.0.iter().map(|oid| oid.to_string()).collect())
}

/// Whether the certificate's keyUsage (RFC 5280 §4.2.1.3) lets its key sign data other than
/// certificates and CRLs: the extension is absent (any use), or it asserts digitalSignature or
/// nonRepudiation (contentCommitment). A key marked for key agreement, encipherment or
/// certificate signing alone is not a signer's.
pub fn key_usage_allows_signing(cert_der: &[u8]) -> Result<bool, PkixError> {
    let field = "extensions.keyUsage";
    let cert = cert::parse("certificate", cert_der)?;
    let Some(ext) = cert::extension(&cert, oids::ID_CE_KEY_USAGE, field)? else {
        return Ok(true);
    };
    let usage = KeyUsage::from_der(ext.extn_value.as_bytes()).map_err(PkixError::der(field))?;
    Ok(
        usage.0.contains(KeyUsages::DigitalSignature)
            || usage.0.contains(KeyUsages::NonRepudiation),
    )
}

/// Where a certificate says its issuer publishes (RFC 5280 §4.2.2.1, §4.2.1.13): the `http:`
/// URLs of its authorityInfoAccess caIssuers entries and of its cRLDistributionPoints full
/// names, in the certificate's order. Empty lists when the extensions are absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IssuerUrls {
    /// Where the issuer's certificate is (DER, or PEM).
    pub ca_issuers: Vec<String>,
    /// Where the issuer's CRL is.
    pub crls: Vec<String>,
}

/// The [`IssuerUrls`] of a certificate.
pub fn issuer_urls(cert_der: &[u8]) -> Result<IssuerUrls, PkixError> {
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    use x509_cert::ext::pkix::{AuthorityInfoAccessSyntax, CrlDistributionPoints};
    let cert = cert::parse("certificate", cert_der)?;
    let http = |name: &GeneralName| match name {
        GeneralName::UniformResourceIdentifier(uri) if uri.as_str().starts_with("http://") => {
            Some(uri.as_str().to_owned())
        }
        _ => None,
    };
    let mut urls = IssuerUrls::default();
    let field = "extensions.authorityInfoAccess";
    if let Some(ext) = cert::extension(&cert, oids::ID_PE_AUTHORITY_INFO_ACCESS, field)? {
        let aia = AuthorityInfoAccessSyntax::from_der(ext.extn_value.as_bytes())
            .map_err(PkixError::der(field))?;
        urls.ca_issuers = aia
            .0
            .iter()
            .filter(|d| d.access_method == oids::ID_AD_CA_ISSUERS)
            .filter_map(|d| http(&d.access_location))
            .collect();
    }
    let field = "extensions.cRLDistributionPoints";
    if let Some(ext) = cert::extension(&cert, oids::ID_CE_CRL_DISTRIBUTION_POINTS, field)? {
        let cdp = CrlDistributionPoints::from_der(ext.extn_value.as_bytes())
            .map_err(PkixError::der(field))?;
        urls.crls = cdp
            .0
            .iter()
            .filter_map(|dp| match &dp.distribution_point {
                Some(DistributionPointName::FullName(names)) => Some(names),
                _ => None,
            })
            .flatten()
            .filter_map(http)
            .collect();
    }
    Ok(urls)
}

/// notBefore and notAfter, Unix seconds.
pub fn validity(cert_der: &[u8]) -> Result<(i64, i64), PkixError> {
    let cert = cert::parse("certificate", cert_der)?;
    let v = &cert.tbs_certificate.validity;
    Ok((
        unix("validity.notBefore", v.not_before)?,
        unix("validity.notAfter", v.not_after)?,
    ))
}

pub(crate) fn unix(field: &'static str, time: Time) -> Result<i64, PkixError> {
    i64::try_from(time.to_unix_duration().as_secs())
        .map_err(|_| PkixError::invalid(field, "out of range"))
}

/// The attribute's usual name and OID, e.g. "serialNumber (2.5.4.5)".
fn attribute_name(oid: ObjectIdentifier) -> String {
    // The const-oid database knows some attributes by their short names ("cn", "c"); the
    // X.520 names read better in a message.
    let x520 = match oid.to_string().as_str() {
        "2.5.4.3" => Some("commonName"),
        "2.5.4.6" => Some("countryName"),
        "2.5.4.10" => Some("organizationName"),
        "2.5.4.11" => Some("organizationalUnitName"),
        _ => None,
    };
    match x520.or_else(|| const_oid::db::DB.by_oid(&oid)) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

/// The text of the subject's one attribute `oid`, wherever it sits among the RDNs.
fn attribute_text(cert: &Certificate, oid: ObjectIdentifier) -> Result<Option<String>, PkixError> {
    let matching = cert
        .tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == oid);
    // Two serialNumbers (or names) leave the identity ambiguous: refuse rather than pick.
    let found = at_most_one(matching).map_err(|n| {
        PkixError::invalid(
            "subject",
            format!(
                "the {} attribute appears {n} times; exactly one is accepted",
                attribute_name(oid)
            ),
        )
    })?;
    let Some(atv) = found else {
        return Ok(None);
    };
    let value = &atv.value;
    let decode_error = |e: der::Error| {
        PkixError::invalid(
            "subject",
            format!(
                "the {} attribute is not valid text: {e}",
                attribute_name(oid)
            ),
        )
    };
    let text = match value.tag() {
        Tag::PrintableString => PrintableStringRef::try_from(value)
            .map_err(decode_error)?
            .as_str()
            .to_string(),
        Tag::Utf8String => Utf8StringRef::try_from(value)
            .map_err(decode_error)?
            .as_str()
            .to_string(),
        Tag::Ia5String => Ia5StringRef::try_from(value)
            .map_err(decode_error)?
            .as_str()
            .to_string(),
        other => {
            return Err(PkixError::invalid(
                "subject",
                format!(
                    "the {} attribute must be a PrintableString, UTF8String or IA5String (found {other})",
                    attribute_name(oid)
                ),
            ))
        }
    };
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    fn leaf_with_subject(subject: x509_cert::name::Name, serial: Vec<u8>) -> Vec<u8> {
        let pki = Pki::new();
        let mut spec = leaf_spec(&pki.root, spki_of(pki.leaf_key.verifying_key()));
        spec.subject = subject;
        spec.serial = serial;
        der_of(&issue(spec, &pki.root_key))
    }

    /// A leaf (serial 01) whose subject is `attrs`, one attribute per RDN.
    fn leaf_named(attrs: &[(&str, Str, &str)]) -> Vec<u8> {
        leaf_with_subject(name(attrs), vec![1])
    }

    #[test]
    fn person_identity_keeps_turkish_letters() {
        let leaf = der_of(&Pki::new().leaf);
        assert_eq!(
            person_identity(&leaf).unwrap(),
            PersonIdentity {
                serial_number: "10000000146".into(),
                given_name: "Ayşe".into(),
                surname: "Yılmaz".into(),
            }
        );
    }

    #[test]
    fn a_missing_or_repeated_identity_attribute_is_named() {
        let missing_given_name: &[_] = &[
            ("2.5.4.5", Str::Printable, "10000000146"),
            ("2.5.4.4", Str::Utf8, "Yılmaz"),
        ];
        let repeated_serial_number: &[_] = &[
            ("2.5.4.5", Str::Printable, "10000000146"),
            ("2.5.4.5", Str::Printable, "10000000078"),
            ("2.5.4.42", Str::Utf8, "Ayşe"),
            ("2.5.4.4", Str::Utf8, "Yılmaz"),
        ];
        for (subject, expected) in [
            (
                missing_given_name,
                "subject: the givenName (2.5.4.42) attribute is required, but absent",
            ),
            (
                repeated_serial_number,
                "subject: the serialNumber (2.5.4.5) attribute appears 2 times; exactly one is accepted",
            ),
        ] {
            assert_eq!(
                person_identity(&leaf_named(subject))
                    .unwrap_err()
                    .to_string(),
                expected
            );
        }
    }

    #[test]
    fn subject_attribute_reads_the_three_string_types() {
        let attrs = [
            ("2.5.4.6", Str::Printable, "TR"),
            ("2.5.4.3", Str::Utf8, "AYŞE YILMAZ"),
            ("1.2.840.113549.1.9.1", Str::Ia5, "ayse@example.com.tr"),
        ];
        let leaf = leaf_named(&attrs);
        for (oid, _, text) in attrs {
            assert_eq!(
                subject_attribute(&leaf, oid).unwrap().as_deref(),
                Some(text),
                "{oid}"
            );
        }
        assert_eq!(subject_attribute(&leaf, "2.5.4.10").unwrap(), None);
        assert_eq!(
            subject_attribute(&leaf, "CN").unwrap_err().to_string(),
            "oid: \"CN\" is not a dotted OID"
        );
    }

    #[test]
    fn bmp_string_is_refused_by_type() {
        let leaf = leaf_named(&[("2.5.4.3", Str::Bmp, "AYŞE")]);
        assert_eq!(
            subject_attribute(&leaf, "2.5.4.3").unwrap_err().to_string(),
            "subject: the commonName (2.5.4.3) attribute must be a PrintableString, \
             UTF8String or IA5String (found BMPString)"
        );
    }

    #[test]
    fn serial_hex_drops_the_sign_octet() {
        assert_eq!(serial_hex(&der_of(&Pki::new().leaf)).unwrap(), "1a2b");
        // 0x8a2b needs a leading 0x00 in DER to stay positive; nesca's spelling drops it.
        let leaf = leaf_with_subject(ayse(), vec![0x00, 0x8a, 0x2b]);
        assert_eq!(serial_hex(&leaf).unwrap(), "8a2b");
    }

    #[test]
    fn extended_key_usages_are_listed_or_empty() {
        let pki = Pki::new();
        assert_eq!(
            extended_key_usages(&der_of(&pki.leaf)).unwrap(),
            vec![crate::chain::ID_KP_CLIENT_AUTH.to_string()]
        );
        assert!(extended_key_usages(&der_of(&pki.root)).unwrap().is_empty());
    }

    #[test]
    fn a_signers_key_usage_allows_signing() {
        let pki = Pki::new();
        // A leaf: digitalSignature and nonRepudiation.
        assert!(key_usage_allows_signing(&der_of(&pki.leaf)).unwrap());
        // A CA certificate: keyCertSign and cRLSign only.
        assert!(!key_usage_allows_signing(&der_of(&pki.root)).unwrap());
    }

    #[test]
    fn validity_is_in_unix_seconds() {
        let pki = Pki::new();
        assert_eq!(super::validity(&der_of(&pki.leaf)).unwrap(), (Y2024, Y2034));
        assert_eq!(super::validity(&der_of(&pki.root)).unwrap(), (Y2020, Y2040));
    }

    #[test]
    fn garbage_and_oversize_certificates_are_refused() {
        assert!(matches!(
            person_identity(b"garbage"),
            Err(PkixError::Malformed {
                field: "certificate",
                ..
            })
        ));
        let big = vec![0x30; crate::MAX_CERTIFICATE_LEN + 1];
        assert!(matches!(serial_hex(&big), Err(PkixError::TooLarge { .. })));
    }
}
