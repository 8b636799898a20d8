//! thisUpdate and nextUpdate of a published CRL, read from the start of its DER so that a
//! CRL of tens of megabytes is never decoded whole to answer an HTTP request.

use ca_core::profile::unix_time;
use ca_core::UnixTime;
use der::asn1::AnyRef;
use der::{Decode, Header, Reader, SliceReader, Tag};
use x509_cert::time::Time;

/// `(thisUpdate, nextUpdate)` (RFC 5280 §5.1.2.4–5), `None` when the bytes do not start like a
/// CertificateList or there is no nextUpdate.
pub(super) fn validity_of(crl: &[u8]) -> Option<(UnixTime, UnixTime)> {
    let mut r = SliceReader::new(crl).ok()?;
    Header::decode(&mut r).ok()?; // CertificateList SEQUENCE
    Header::decode(&mut r).ok()?; // TBSCertList SEQUENCE
    if r.peek_tag().ok()? == Tag::Integer {
        AnyRef::decode(&mut r).ok()?; // version
    }
    AnyRef::decode(&mut r).ok()?; // signature AlgorithmIdentifier
    AnyRef::decode(&mut r).ok()?; // issuer Name
    let this_update = Time::decode(&mut r).ok()?;
    let next_update = Time::decode(&mut r).ok()?;
    Some((unix_time(&this_update), unix_time(&next_update)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_real_crl_and_refuses_garbage() {
        // A v2 CRL made by `openssl ca -gencrl` (lastUpdate 2026-11-22 05:40:39Z, nextUpdate
        // one day later), kept as a test vector.
        let der = include_bytes!("../../tests/data/openssl-v2.crl");
        assert_eq!(
            validity_of(der),
            Some((
                UnixTime::from_secs(1_795_326_039),
                UnixTime::from_secs(1_795_412_439)
            ))
        );
        assert_eq!(validity_of(&der[..40]), None);
        assert_eq!(validity_of(b"garbage"), None);
        assert_eq!(validity_of(&[]), None);
    }
}
