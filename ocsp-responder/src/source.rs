//! What the responder asks the certificate store: the status of one serial, the serials whose
//! status changed since a cursor, and every serial of an issuer (to pre-produce responses).

use nesca_ca_types::{IssuerId, RevocationReason, Serial, UnixTime};

/// The status of one serial of a served issuer, as the store knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    /// Issued and neither revoked nor suspended (RFC 6960 §2.2 `good`).
    Good,
    /// Revoked or suspended (`CertificateHold`); `reason: None` is unspecified, which RFC 5280
    /// says to leave out rather than write.
    Revoked {
        /// revocationTime.
        time: UnixTime,
        reason: Option<RevocationReason>,
    },
    /// Never issued by this issuer (no serial reserved). Answered as `revoked`, reason
    /// certificateHold, revocationTime 1970-01-01T00:00:00Z, with the extended-revoke
    /// extension in responseExtensions (RFC 6960 §2.2).
    NotIssued,
}

/// Why the status source could not answer: the source's own error, kept whole (its message
/// is shown unchanged, and it stays reachable through `source()` and
/// [`SourceError::get_ref`]).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SourceError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl SourceError {
    /// Wraps the source's error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        SourceError(Box::new(e))
    }

    /// The source's error, to downcast to the type the source uses.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.0.as_ref()
    }
}

/// The store, as the responder sees it. Calls block (database); the responder makes them from
/// blocking threads only.
pub trait StatusSource: Send + Sync + 'static {
    /// The status of `serial` under `issuer`.
    fn status(&self, issuer: &IssuerId, serial: &Serial) -> Result<CertState, SourceError>;

    /// Serials whose status changed (issued, suspended, released, revoked) with a change cursor
    /// greater than `cursor`, oldest first, at most `limit`; returns them and the new cursor.
    fn changes_since(
        &self,
        cursor: i64,
        limit: usize,
    ) -> Result<(Vec<(IssuerId, Serial)>, i64), SourceError>;

    /// Every serial of `issuer` after `after` in serial order, at most `limit`.
    fn serials(
        &self,
        issuer: &IssuerId,
        after: Option<&Serial>,
        limit: usize,
    ) -> Result<Vec<Serial>, SourceError>;

    /// Returns when the store may hold changes the responder has not read, or after `timeout`
    /// at the latest; the refresher polls [`changes_since`] after it. The default waits out
    /// the timeout (polling); a store that hears of changes (PostgreSQL's LISTEN/NOTIFY)
    /// returns as soon as one is committed, on any node.
    ///
    /// [`changes_since`]: StatusSource::changes_since
    fn wait_for_change(&self, timeout: std::time::Duration) {
        std::thread::sleep(timeout);
    }

    /// The cursor of the latest change now: polling starts there, after the responses of every
    /// serial have been pre-produced. The default pages through [`changes_since`] from 0; a
    /// store that can read its latest cursor directly should say so here.
    ///
    /// [`changes_since`]: StatusSource::changes_since
    fn latest_cursor(&self) -> Result<i64, SourceError> {
        const PAGE: usize = 10_000;
        let mut cursor = 0;
        loop {
            let (changes, next) = self.changes_since(cursor, PAGE)?;
            if changes.is_empty() || next <= cursor {
                return Ok(cursor.max(next));
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_errors_show_and_keep_the_sources_error() {
        let io = std::io::Error::other("database is down");
        let e = crate::OcspError::source("status")(SourceError::new(io));
        assert_eq!(
            e.to_string(),
            "OCSP status source: status: database is down"
        );
        let source = std::error::Error::source(&e).expect("source kept");
        let inner = source
            .downcast_ref::<SourceError>()
            .expect("a SourceError")
            .get_ref();
        assert!(inner.downcast_ref::<std::io::Error>().is_some());
    }
}
