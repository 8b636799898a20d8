//! The public certificate lookup (sertifika sorgulama): a relying party fetches a certificate
//! by serial, or lists a person's certificates by T.C. Kimlik No. Issued certificates are
//! shown whatever became of them (active, suspended or revoked), except those whose holder
//! chose "do not publish my certificate": to the lookup, those do not exist.

use std::sync::Arc;

use ca_core::store::{CertStatus, LookupCandidate, LookupKey, Store};
use ca_core::{Serial, Tckn};

use crate::error::Result;

/// Whether the lookup shows `c`: issued (not reserved or failed) and its holder did not
/// choose "do not publish".
pub fn is_public(c: &LookupCandidate) -> bool {
    let issued = matches!(
        c.status,
        CertStatus::Active | CertStatus::Suspended | CertStatus::Revoked
    );
    issued && !c.do_not_publish
}

/// At most this many certificates are shown for one person, newest first.
pub const MAX_SHOWN: usize = 100;

/// The lookup service.
pub struct CertificateLookup {
    store: Arc<dyn Store>,
}

impl CertificateLookup {
    pub fn new(store: Arc<dyn Store>) -> CertificateLookup {
        CertificateLookup { store }
    }

    /// The published certificate with this serial.
    pub fn by_serial(&self, serial: &Serial) -> Result<Option<LookupCandidate>> {
        Ok(self
            .published(LookupKey::Serial(serial))?
            .into_iter()
            .next())
    }

    /// The person's published certificates, newest first.
    pub fn by_holder(&self, tckn: &Tckn) -> Result<Vec<LookupCandidate>> {
        self.published(LookupKey::Holder(tckn))
    }

    /// Filters before it truncates, so hidden certificates never crowd out shown ones.
    fn published(&self, key: LookupKey<'_>) -> Result<Vec<LookupCandidate>> {
        let mut found = self.store.lookup_candidates(key)?;
        found.retain(is_public);
        found.truncate(MAX_SHOWN);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ca_core::UnixTime;

    fn certificate(status: CertStatus, do_not_publish: bool) -> LookupCandidate {
        LookupCandidate {
            serial: Serial::random(),
            subject: "CN=AYŞE YILMAZ".into(),
            status,
            not_before: UnixTime::from_secs(0),
            not_after: UnixTime::from_secs(1),
            cert_der: vec![0x30, 0x00],
            do_not_publish,
        }
    }

    #[test]
    fn issued_certificates_are_public_unless_their_holder_said_no() {
        for status in [
            CertStatus::Active,
            CertStatus::Suspended,
            CertStatus::Revoked,
        ] {
            assert!(is_public(&certificate(status, false)), "{status}");
            assert!(!is_public(&certificate(status, true)), "{status}");
        }
        for status in [CertStatus::Reserved, CertStatus::Failed] {
            assert!(!is_public(&certificate(status, false)), "{status}");
        }
    }
}
