//! The store as the OCSP responder's status source.

use std::sync::Arc;

use ca_core::store::{CertStatus, Store};
use ca_core::{IssuerId, Serial};
use ocsp_responder::{CertState, SourceError, StatusSource};

/// Reads status from the same store the CA writes, so responders scale out next to it.
pub(super) struct StoreStatus(pub Arc<dyn Store>);

impl StatusSource for StoreStatus {
    fn status(&self, issuer: &IssuerId, serial: &Serial) -> Result<CertState, SourceError> {
        let record = self.0.status(issuer, serial).map_err(SourceError::new)?;
        Ok(match record {
            None => CertState::NotIssued,
            Some(r) => match (r.status, r.revocation) {
                // A reserved serial may have been signed (the reservation is committed before
                // C_Sign): it is answered as issued, never as "never issued".
                (CertStatus::Active | CertStatus::Reserved, _) => CertState::Good,
                (CertStatus::Suspended | CertStatus::Revoked, Some(v)) => CertState::Revoked {
                    time: v.at,
                    reason: v.reason,
                },
                // Signing failed: no certificate exists under this serial.
                _ => CertState::NotIssued,
            },
        })
    }

    fn changes_since(
        &self,
        cursor: i64,
        limit: usize,
    ) -> Result<(Vec<(IssuerId, Serial)>, i64), SourceError> {
        self.0
            .changes_since(cursor, limit)
            .map_err(SourceError::new)
    }

    fn latest_cursor(&self) -> Result<i64, SourceError> {
        self.0.latest_change().map_err(SourceError::new)
    }

    fn serials(
        &self,
        issuer: &IssuerId,
        after: Option<&Serial>,
        limit: usize,
    ) -> Result<Vec<Serial>, SourceError> {
        self.0
            .serials(issuer, after, limit)
            .map_err(SourceError::new)
    }
}
