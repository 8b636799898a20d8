//! What a CRL issuer asks of the certificate store: the revoked entries of one snapshot, the
//! changes since a base CRL, and the bookkeeping of CRL numbers (RFC 5280 §5.2.3) and
//! publications. The server implements it over its store (`server/src/serve/crl_source.rs`);
//! this crate never sees the store's own types.

use std::ops::ControlFlow;
use std::time::Duration;

use nesca_ca_types::{IssuerId, Principal, Serial, UnixTime};

use crate::entry::CrlEntry;
use crate::header::CrlType;

/// An entry of a delta CRL: a status change after the base CRL's watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaEntry {
    /// Suspended or revoked now: listed as in a full CRL.
    Listed(CrlEntry),
    /// Released from a hold that the base CRL listed: listed with removeFromCRL
    /// (RFC 5280 §5.3.1), `at` being the release time.
    Removed { serial: Serial, at: UnixTime },
}

/// A CRL number to take from the issuer's one sequence (shared by full and delta CRLs,
/// RFC 5280 §5.2.3), before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlReservation {
    pub issuer: IssuerId,
    pub kind: CrlType,
    /// thisUpdate.
    pub this_update: UnixTime,
    /// nextUpdate.
    pub next_update: UnixTime,
    /// Who asks (recorded with the reservation).
    pub actor: Principal,
    /// When.
    pub at: UnixTime,
}

/// A published CRL as the source recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlRecord {
    /// cRLNumber.
    pub number: u64,
    /// Every status change up to this watermark of the source is in the CRL.
    pub watermark: i64,
    /// thisUpdate.
    pub this_update: UnixTime,
}

/// The number and the base of a CRL about to be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlPlan {
    /// cRLNumber.
    pub number: u64,
    /// For a delta CRL: the latest published full CRL (its deltaCRLIndicator, RFC 5280
    /// §5.2.4).
    pub base: Option<CrlRecord>,
}

/// Why the source could not answer: the source's own error, kept whole (its message is
/// shown unchanged, and it stays reachable through `source()` and [`SourceError::get_ref`]).
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

/// The store, as a CRL issuer sees it. Calls block (database).
pub trait CrlSource: Send + Sync {
    /// Every suspended or revoked certificate of `issuer` from one snapshot, handed to `sink`
    /// one at a time in serial order; returns the snapshot's watermark. When `sink` answers
    /// [`ControlFlow::Break`] (the encoder stopped), the scan stops and fails.
    fn scan_revoked(
        &self,
        issuer: &IssuerId,
        sink: &mut dyn FnMut(CrlEntry) -> ControlFlow<()>,
    ) -> Result<i64, SourceError>;

    /// The changes since a base watermark, from one snapshot, with that snapshot's watermark.
    fn delta_since(
        &self,
        issuer: &IssuerId,
        base_watermark: i64,
    ) -> Result<(Vec<DeltaEntry>, i64), SourceError>;

    /// Takes the next CRL number of the issuer. A delta needs a published full CRL as its
    /// base.
    fn reserve_crl(&self, r: CrlReservation) -> Result<CrlPlan, SourceError>;

    /// Records a reserved CRL as published, with what it covers.
    fn publish_crl(
        &self,
        issuer: &IssuerId,
        number: u64,
        watermark: i64,
        entries: u64,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<(), SourceError>;

    /// The latest published CRL of a kind.
    fn latest_crl(
        &self,
        issuer: &IssuerId,
        kind: CrlType,
    ) -> Result<Option<CrlRecord>, SourceError>;

    /// Takes the issuer's publication lease, waiting at most `wait`: one publisher at a time
    /// per CA, across the processes and nodes sharing the store. Whether it was had. The
    /// default (a source no other process shares) always has it.
    fn hold_publication(&self, issuer: &IssuerId, wait: Duration) -> Result<bool, SourceError> {
        let _ = (issuer, wait);
        Ok(true)
    }

    /// Gives the issuer's publication lease up.
    fn release_publication(&self, issuer: &IssuerId) -> Result<(), SourceError> {
        let _ = issuer;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_errors_show_and_keep_the_sources_error() {
        let io = std::io::Error::other("database is locked");
        let e = crate::CrlError::Store(SourceError::new(io));
        assert_eq!(e.to_string(), "store: database is locked");
        let source = std::error::Error::source(&e).expect("source kept");
        let inner = source
            .downcast_ref::<SourceError>()
            .expect("a SourceError")
            .get_ref();
        assert!(inner.downcast_ref::<std::io::Error>().is_some());
    }
}
