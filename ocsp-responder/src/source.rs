//! What the responder asks the certificate store: the status of one serial, the serials whose
//! status changed since a cursor, and every serial of an issuer (to pre-produce responses).

use ca_core::lifecycle::RevocationReason;
use ca_core::{IssuerId, Serial};

/// The status of one serial of a served issuer, as the store knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    /// Issued and neither revoked nor suspended (RFC 6960 §2.2 `good`).
    Good,
    /// Revoked or suspended (`CertificateHold`); `reason: None` is unspecified, which RFC 5280
    /// says to leave out rather than write.
    Revoked {
        /// revocationTime, Unix seconds.
        time: i64,
        reason: Option<RevocationReason>,
    },
    /// Never issued by this issuer (no serial reserved). Answered as `revoked`, reason
    /// certificateHold, revocationTime 1970-01-01T00:00:00Z, with the extended-revoke
    /// extension in responseExtensions (RFC 6960 §2.2).
    NotIssued,
}

/// The store, as the responder sees it. Calls block (database); the responder makes them from
/// blocking threads only.
pub trait StatusSource: Send + Sync + 'static {
    /// The status of `serial` under `issuer`.
    fn status(&self, issuer: &IssuerId, serial: &Serial) -> Result<CertState, String>;

    /// Serials whose status changed (issued, suspended, released, revoked) with a change cursor
    /// greater than `cursor`, oldest first, at most `limit`; returns them and the new cursor.
    fn changes_since(
        &self,
        cursor: i64,
        limit: usize,
    ) -> Result<(Vec<(IssuerId, Serial)>, i64), String>;

    /// Every serial of `issuer` after `after` in serial order, at most `limit`.
    fn serials(
        &self,
        issuer: &IssuerId,
        after: Option<&Serial>,
        limit: usize,
    ) -> Result<Vec<Serial>, String>;

    /// The cursor of the latest change now: polling starts there, after the responses of every
    /// serial have been pre-produced. The default pages through [`changes_since`] from 0; a
    /// store that can read its latest cursor directly should say so here.
    ///
    /// [`changes_since`]: StatusSource::changes_since
    fn latest_cursor(&self) -> Result<i64, String> {
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
