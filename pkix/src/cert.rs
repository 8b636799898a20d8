//! Decoding a Certificate (RFC 5280 §4.1) once its size is known to be acceptable.

use der::Decode;
use x509_cert::Certificate;

use crate::limits::{check_len, MAX_CERTIFICATE_LEN};
use crate::unique::at_most_one;
use crate::PkixError;

/// Decodes `der` as a Certificate; `field` names it in errors.
pub(crate) fn parse(field: &'static str, der: &[u8]) -> Result<Certificate, PkixError> {
    check_len(field, der, MAX_CERTIFICATE_LEN)?;
    Certificate::from_der(der).map_err(PkixError::der(field))
}

/// The one extension `oid` of `cert`, when present. RFC 5280 §4.2: "A certificate MUST NOT
/// include more than one instance of a particular extension", so a repeat is an error rather
/// than a choice between two values.
pub(crate) fn extension<'c>(
    cert: &'c Certificate,
    oid: der::oid::ObjectIdentifier,
    field: &'static str,
) -> Result<Option<&'c x509_cert::ext::Extension>, PkixError> {
    let matching = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oid);
    at_most_one(matching).map_err(|_| {
        PkixError::invalid(
            field,
            "the extension appears more than once (RFC 5280 §4.2)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_certificate_is_refused_before_parsing() {
        let big = vec![0x30; MAX_CERTIFICATE_LEN + 1];
        assert!(matches!(
            parse("certificate", &big),
            Err(PkixError::TooLarge {
                what: "certificate",
                ..
            })
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        let e = parse("certificate", b"not a certificate").unwrap_err();
        assert!(
            e.to_string().starts_with("certificate: malformed DER"),
            "{e}"
        );
    }
}
