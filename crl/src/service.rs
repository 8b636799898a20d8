//! One issuing CA's CRLs end to end: take the next number from the store, stream the entries
//! out of it, generate and sign, publish atomically, and record what the CRL covers.

use std::ops::ControlFlow;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use nesca_ca_types::clock::Clock;
use nesca_ca_types::{IssuerId, Principal, RevocationReason, TbsSigner, UnixTime};
use x509_cert::Certificate;

use crate::entry::CrlEntry;
use crate::error::CrlError;
use crate::generate::{generate, CrlSummary};
use crate::header::{CrlHeader, CrlKind, CrlType};
use crate::publish::{file_name, Publisher};
use crate::schedule::CrlSchedule;
use crate::source::{CrlReservation, CrlSource, DeltaEntry, SourceError};

/// Entries travel from the store's scan to the encoder in batches of this many, at most
/// [`BATCHES_IN_FLIGHT`] batches at a time: bounded memory whatever the CRL's size, and the
/// database read and the DER encoding run on two threads.
const BATCH: usize = 4096;
const BATCHES_IN_FLIGHT: usize = 4;

/// The CRLs of one issuing CA.
pub struct CrlIssuer {
    /// The store, through the operations a CRL needs.
    pub source: Arc<dyn CrlSource>,
    pub issuer: IssuerId,
    pub issuer_cert: Certificate,
    /// The CA's own key: a CRL is signed by the CA that issued the certificates it lists.
    pub signer: Arc<dyn TbsSigner>,
    pub publisher: Publisher,
    pub schedule: CrlSchedule,
    pub clock: Arc<dyn Clock>,
    /// URL of the delta CRL, written into full CRLs as freshestCRL.
    pub delta_url: Option<String>,
}

/// A CRL generated and published.
#[derive(Debug, Clone)]
pub struct Published {
    pub summary: CrlSummary,
    pub path: std::path::PathBuf,
}

impl CrlIssuer {
    /// Generates, signs and publishes a full or delta CRL now.
    pub fn publish(&self, kind: CrlType, actor: &Principal) -> Result<Published, CrlError> {
        let now = self.clock.now_unix();
        let next_update = self.schedule.next_update(kind, now);
        let plan = self
            .source
            .reserve_crl(CrlReservation {
                issuer: self.issuer.clone(),
                kind,
                this_update: now,
                next_update,
                actor: actor.clone(),
                at: now,
            })
            .map_err(CrlError::Store)?;
        let header = CrlHeader {
            issuer_cert: &self.issuer_cert,
            number: plan.number,
            this_update: now,
            next_update,
            kind: match (&kind, &plan.base) {
                (CrlType::Full, _) => CrlKind::Full {
                    freshest_crl: self.delta_url.clone(),
                },
                (CrlType::Delta, Some(base)) => CrlKind::Delta {
                    base_number: base.number,
                },
                (CrlType::Delta, None) => {
                    return Err(CrlError::Header {
                        field: "deltaCRLIndicator",
                        rule: "the store returned no base CRL for a delta".into(),
                    })
                }
            },
        };
        let name = file_name(&self.issuer, kind);
        let (summary, watermark) = self.publisher.publish_with(&name, |out| match &plan.base {
            None => self.write_full(&header, out),
            Some(base) => {
                let (entries, watermark) = self
                    .source
                    .delta_since(&self.issuer, base.watermark)
                    .map_err(CrlError::Store)?;
                let entries = entries.into_iter().map(|e| {
                    Ok::<_, CrlError>(match e {
                        DeltaEntry::Listed(e) => e,
                        DeltaEntry::Removed { serial, at } => CrlEntry {
                            serial,
                            revocation_time: at,
                            reason: Some(RevocationReason::RemoveFromCrl),
                            invalidity_date: None,
                        },
                    })
                });
                Ok((
                    generate(&header, entries, self.signer.as_ref(), out)?,
                    watermark,
                ))
            }
        })?;
        // Recorded after the rename: a crash in between leaves a published CRL the store
        // does not use as a base, which only makes the next delta longer.
        self.source
            .publish_crl(
                &self.issuer,
                plan.number,
                watermark,
                summary.entries,
                actor,
                now,
            )
            .map_err(CrlError::Store)?;
        tracing::info!(
            ca = %self.issuer,
            number = summary.number,
            entries = summary.entries,
            bytes = summary.bytes,
            kind = ?kind,
            "CRL published"
        );
        Ok(Published {
            summary,
            path: self.publisher.path(&name),
        })
    }

    /// A full CRL, its entries streamed from the store's snapshot on a second thread.
    fn write_full(
        &self,
        header: &CrlHeader<'_>,
        out: &mut dyn std::io::Write,
    ) -> Result<(CrlSummary, i64), CrlError> {
        let (tx, rx) = sync_channel::<Result<Vec<CrlEntry>, SourceError>>(BATCHES_IN_FLIGHT);
        std::thread::scope(|s| {
            let scan = s.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                let result = self.source.scan_revoked(&self.issuer, &mut |e| {
                    batch.push(e);
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        // The encoder stopped (it failed): stop reading.
                        if tx.send(Ok(full)).is_err() {
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                });
                match result {
                    Ok(watermark) => {
                        if !batch.is_empty() {
                            let _ = tx.send(Ok(batch));
                        }
                        Some(watermark)
                    }
                    Err(e) => {
                        // The encoder sees the failure as an entry error and signs nothing.
                        let _ = tx.send(Err(e));
                        None
                    }
                }
            });
            let entries = rx.into_iter().flat_map(
                |batch| -> Box<dyn Iterator<Item = Result<CrlEntry, SourceError>>> {
                    match batch {
                        Ok(b) => Box::new(b.into_iter().map(Ok)),
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    }
                },
            );
            let summary = generate(header, entries, self.signer.as_ref(), out);
            let watermark = scan.join().ok().flatten();
            match (summary, watermark) {
                (Ok(summary), Some(watermark)) => Ok((summary, watermark)),
                (Err(e), _) => Err(e),
                // Signed but the scan did not finish cleanly: never published.
                (Ok(_), None) => Err(CrlError::Source {
                    index: 0,
                    reason: "the store scan did not complete".into(),
                }),
            }
        })
    }

    /// Publishes whatever the schedule says is due now (a full CRL first when none exists or
    /// its file is gone, then a delta so the full CRL's freshestCRL always resolves).
    pub fn publish_due(&self, actor: &Principal) -> Result<Vec<Published>, CrlError> {
        let mut done = Vec::new();
        for _ in 0..2 {
            let now = self.clock.now_unix();
            let last = |kind: CrlType| -> Result<Option<UnixTime>, CrlError> {
                let rec = self
                    .source
                    .latest_crl(&self.issuer, kind)
                    .map_err(CrlError::Store)?;
                // A published record whose file is missing (a new publication directory) counts
                // as never published.
                let present = self
                    .publisher
                    .path(&file_name(&self.issuer, kind))
                    .is_file();
                Ok(rec.filter(|_| present).map(|r| r.this_update))
            };
            let last_full = last(CrlType::Full)?;
            let last_delta = last(CrlType::Delta)?;
            match self.schedule.due(now, last_full, last_delta) {
                Some(kind) => done.push(self.publish(kind, actor)?),
                None => break,
            }
        }
        Ok(done)
    }
}
