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
                (CertStatus::Active, _) => CertState::Good,
                (CertStatus::Suspended | CertStatus::Revoked, Some(v)) => CertState::Revoked {
                    time: v.at,
                    reason: v.reason,
                },
                // Reserved (signing not completed) or failed: nesca handed out no certificate
                // under this serial (the engine returns one only once it is stored), so it is
                // answered as never issued, never `good`. A reservation
                // being signed this instant gets its real answer once it completes: completion
                // is a status change the refresher re-signs.
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

    fn wait_for_change(&self, timeout: std::time::Duration) {
        self.0.wait_for_change(timeout)
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

#[cfg(test)]
mod tests {
    use ca_core::store::prelude::*;
    use ca_core::store::{Completion, Reservation, SqliteStore, SubjectRecord};
    use ca_core::{Principal, UnixTime};

    use super::*;

    /// Only an issued certificate is `good`: a reservation whose signing has not completed
    /// (or never will) and a failed one are answered as never issued.
    #[test]
    fn reserved_and_failed_serials_are_never_good() {
        let dir = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let issuer = IssuerId::parse("nes-ca").unwrap();
        let at = UnixTime::from_secs(1_795_305_600);
        let reserve = |serial: Serial| {
            store
                .reserve(Reservation {
                    issuer: issuer.clone(),
                    serial,
                    profile: ca_core::profile::ProfileName::Nes,
                    subject: SubjectRecord::default(),
                    not_before: at,
                    not_after: at.plus_secs(86_400),
                    tbs_der: vec![0x30, 0x00],
                    actor: Principal::HostOperator,
                    at,
                })
                .unwrap();
        };
        let source = StoreStatus(store.clone());
        let (reserved, failed, issued) = (Serial::random(), Serial::random(), Serial::random());
        for s in [reserved, failed, issued] {
            reserve(s);
        }
        store
            .fail(&issuer, &failed, "HSM", &Principal::HostOperator, at)
            .unwrap();
        store
            .complete(
                &issuer,
                &issued,
                vec![0x30, 0x00],
                Completion::default(),
                &Principal::HostOperator,
                at,
            )
            .unwrap();
        let state = |s: &Serial| source.status(&issuer, s).unwrap();
        assert_eq!(state(&reserved), CertState::NotIssued);
        assert_eq!(state(&failed), CertState::NotIssued);
        assert_eq!(state(&Serial::random()), CertState::NotIssued);
        assert_eq!(state(&issued), CertState::Good);
    }
}
