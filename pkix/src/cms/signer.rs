//! Finding the signer's certificate by the SignerInfo's sid (RFC 5652 §5.3: the
//! SignerIdentifier is issuerAndSerialNumber or subjectKeyIdentifier).

use cms::signed_data::SignerIdentifier;
use der::Decode;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::Certificate;

use crate::{cert, oids, PkixError};

/// True when `sid` identifies `certificate`.
pub(super) fn identifies(sid: &SignerIdentifier, certificate: &Certificate) -> bool {
    let tbs = &certificate.tbs_certificate;
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            ias.issuer == tbs.issuer && ias.serial_number == tbs.serial_number
        }
        // A certificate without the extension (or with it twice) is not identified by one.
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert::extension(
            certificate,
            oids::ID_CE_SUBJECT_KEY_IDENTIFIER,
            "extensions.subjectKeyIdentifier",
        )
        .ok()
        .flatten()
        .and_then(|ext| SubjectKeyIdentifier::from_der(ext.extn_value.as_bytes()).ok())
        .is_some_and(|own| own == *ski),
    }
}

/// The one certificate of `certificates` (DER and decoded) that `sid` identifies.
pub(super) fn find<'c, 'd>(
    sid: &SignerIdentifier,
    certificates: &'c [(&'d [u8], Certificate)],
) -> Result<&'c (&'d [u8], Certificate), PkixError> {
    let mut matching = certificates.iter().filter(|(_, c)| identifies(sid, c));
    let Some(found) = matching.next() else {
        return Err(PkixError::invalid(
            "SignerInfo.sid",
            "no certificate in SignedData.certificates matches the signer identifier",
        ));
    };
    // The same certificate twice is harmless; two different ones (e.g. a renewed
    // certificate sharing a key identifier) would leave the choice of signer to chance.
    if matching.any(|(other, _)| *other != found.0) {
        return Err(PkixError::invalid(
            "SignerInfo.sid",
            "matches more than one different certificate in SignedData.certificates",
        ));
    }
    Ok(found)
}
