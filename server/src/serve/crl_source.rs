//! The store as the CRL issuer's source: each operation the `crl` crate asks for, over the
//! store's method of the same name, with the records converted both ways.

use std::ops::ControlFlow;
use std::sync::Arc;

use ca_core::store::{self, RevokedEntry, Store};
use ca_core::{CaError, IssuerId, UnixTime};
use crl::source::{CrlPlan, CrlRecord, CrlReservation, CrlSource, DeltaEntry, SourceError};
use crl::{CrlEntry, CrlType};

/// Reads revoked entries from, and records CRLs in, the store the CA writes; publishes under
/// the CA's lease as a publisher of its own (the schedule and an operator's request in one
/// process exclude each other as two nodes do).
pub(crate) struct StoreCrlSource {
    store: Arc<dyn Store>,
    publisher: String,
}

fn entry(e: RevokedEntry) -> CrlEntry {
    CrlEntry {
        serial: e.serial,
        revocation_time: e.revocation.at,
        reason: e.revocation.reason,
        invalidity_date: e.revocation.invalidity_date,
    }
}

fn kind(t: CrlType) -> store::CrlKind {
    match t {
        CrlType::Full => store::CrlKind::Full,
        CrlType::Delta => store::CrlKind::Delta,
    }
}

fn record(r: store::CrlRecord) -> CrlRecord {
    CrlRecord {
        number: r.number,
        watermark: r.watermark,
        this_update: r.this_update,
    }
}

impl StoreCrlSource {
    /// A source over `store`, a publisher of its own.
    pub(crate) fn new(store: Arc<dyn Store>) -> StoreCrlSource {
        StoreCrlSource {
            store,
            publisher: nesca_ra::leases::publisher_id(),
        }
    }

    /// The lease of `issuer`'s CRL publication in this store, held by this publisher.
    fn lease(&self, issuer: &IssuerId) -> nesca_ra::leases::Lease {
        nesca_ra::leases::Lease::crl(
            self.store.clone(),
            crate::wiring::clock(),
            issuer,
            &self.publisher,
        )
    }
}

impl CrlSource for StoreCrlSource {
    fn hold_publication(
        &self,
        issuer: &IssuerId,
        wait: std::time::Duration,
    ) -> Result<bool, SourceError> {
        self.lease(issuer)
            .hold_within(wait)
            .map_err(SourceError::new)
    }

    fn release_publication(&self, issuer: &IssuerId) -> Result<(), SourceError> {
        self.lease(issuer).release().map_err(SourceError::new)
    }

    fn scan_revoked(
        &self,
        issuer: &IssuerId,
        sink: &mut dyn FnMut(CrlEntry) -> ControlFlow<()>,
    ) -> Result<i64, SourceError> {
        self.store
            .scan_revoked(issuer, &mut |e| match sink(entry(e)) {
                ControlFlow::Continue(()) => Ok(()),
                // The store's scan stops at the first error its sink returns.
                ControlFlow::Break(()) => Err(CaError::Store {
                    operation: "scan revoked",
                    reason: "the CRL encoder stopped".into(),
                    source: None,
                }),
            })
            .map_err(SourceError::new)
    }

    fn delta_since(
        &self,
        issuer: &IssuerId,
        base_watermark: i64,
    ) -> Result<(Vec<DeltaEntry>, i64), SourceError> {
        let (entries, watermark) = self
            .store
            .delta_since(issuer, base_watermark)
            .map_err(SourceError::new)?;
        let entries = entries
            .into_iter()
            .map(|e| match e {
                store::DeltaEntry::Listed(e) => DeltaEntry::Listed(entry(e)),
                store::DeltaEntry::Removed { serial, at } => DeltaEntry::Removed { serial, at },
            })
            .collect();
        Ok((entries, watermark))
    }

    fn reserve_crl(&self, r: CrlReservation) -> Result<CrlPlan, SourceError> {
        let plan = self
            .store
            .reserve_crl(store::CrlReservation {
                issuer: r.issuer,
                kind: kind(r.kind),
                this_update: r.this_update,
                next_update: r.next_update,
                actor: r.actor,
                at: r.at,
            })
            .map_err(SourceError::new)?;
        Ok(CrlPlan {
            number: plan.number,
            base: plan.base.map(record),
        })
    }

    fn publish_crl(
        &self,
        issuer: &IssuerId,
        number: u64,
        watermark: i64,
        entries: u64,
        actor: &ca_core::Principal,
        at: UnixTime,
    ) -> Result<(), SourceError> {
        self.store
            .publish_crl(issuer, number, watermark, entries, actor, at)
            .map_err(SourceError::new)
    }

    fn latest_crl(&self, issuer: &IssuerId, t: CrlType) -> Result<Option<CrlRecord>, SourceError> {
        self.store
            .latest_crl(issuer, kind(t))
            .map(|r| r.map(record))
            .map_err(SourceError::new)
    }
}
