//! The public certificate lookup (sertifika sorgulama): a relying party fetches a certificate
//! by serial, or lists a person's certificates by T.C. Kimlik No. Publication is opt-in: only
//! certificates whose holder agreed are shown — those produced from an institutional
//! enrollment whose form asked, with "do not publish my certificate" left unticked — whatever
//! became of them (active, suspended or revoked). Every other certificate (a holder who said
//! no, a channel or an operator that never asked) does not exist to the lookup: a T.C.
//! Kimlik No must not list what its holder never agreed to show.

use std::sync::Arc;

use ca_core::store::{CertStatus, LookupCandidate, LookupKey, Store};
use ca_core::{Serial, Tckn};

use crate::error::Result;

/// Whether the lookup shows `c`: issued (not reserved or failed) and its holder agreed.
pub fn is_public(c: &LookupCandidate) -> bool {
    let issued = matches!(
        c.status,
        CertStatus::Active | CertStatus::Suspended | CertStatus::Revoked
    );
    issued && c.holder_agreed
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

    fn certificate(status: CertStatus, holder_agreed: bool) -> LookupCandidate {
        LookupCandidate {
            serial: Serial::random(),
            subject: "CN=AYŞE YILMAZ".into(),
            status,
            not_before: UnixTime::from_secs(0),
            not_after: UnixTime::from_secs(1),
            cert_der: vec![0x30, 0x00],
            holder_agreed,
        }
    }

    #[test]
    fn issued_certificates_are_public_only_when_their_holder_agreed() {
        for status in [
            CertStatus::Active,
            CertStatus::Suspended,
            CertStatus::Revoked,
        ] {
            assert!(is_public(&certificate(status, true)), "{status}");
            assert!(!is_public(&certificate(status, false)), "{status}");
        }
        for status in [CertStatus::Reserved, CertStatus::Failed] {
            assert!(!is_public(&certificate(status, true)), "{status}");
        }
    }
}
