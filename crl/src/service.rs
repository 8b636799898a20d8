//! One issuing CA's CRLs end to end: take the next number from the store, stream the entries
//! out of it, generate and sign, publish atomically, and record what the CRL covers.

use std::ops::ControlFlow;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Duration;

use nesca_ca_types::clock::Clock;
use nesca_ca_types::{IssuerId, Principal, RevocationReason, TbsSigner, UnixTime};
use x509_cert::Certificate;

use crate::entry::CrlEntry;
use crate::error::CrlError;
use crate::generate::{generate, CrlSummary};
use crate::header::{CrlHeader, CrlKind, CrlType};
use crate::publish::{file_name, PublishOutcome, Publisher};
use crate::schedule::CrlSchedule;
use crate::source::{CrlRecord, CrlReservation, CrlSource, DeltaEntry, SourceError};

/// How long an asked-for publication (`nesca crl`, the admin API) waits for another
/// process's publication of the same CA to finish.
/// Shorter than an admin API request's time limit (30 s by default).
const PUBLICATION_WAIT: Duration = Duration::from_secs(20);

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

/// A CRL generated, signed and put up for publication.
#[derive(Debug, Clone)]
pub struct Published {
    pub summary: CrlSummary,
    /// Where the CRL is published (whether or not this one replaced the file there).
    pub path: std::path::PathBuf,
    /// Whether this CRL is the published file now, or one numbered at least as high was
    /// there already and stays (then the store does not record this CRL as published).
    pub outcome: PublishOutcome,
}

/// Writes everything to `file` and the same bytes to `copy`.
struct Tee<'a> {
    file: &'a mut dyn std::io::Write,
    copy: &'a mut dyn std::io::Write,
}

impl std::io::Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.copy.flush()
    }
}

impl CrlIssuer {
    /// Generates, signs and publishes a full or delta CRL now. A published CRL is never
    /// replaced by one of a lower number: when another publisher put a newer CRL in place
    /// first, that one stays ([`PublishOutcome::Kept`]).
    pub fn publish(&self, kind: CrlType, actor: &Principal) -> Result<Published, CrlError> {
        self.publish_and_copy(kind, actor, &mut std::io::sink())
    }

    /// [`CrlIssuer::publish`], also writing the CRL's DER to `copy` as it is written for
    /// publication: exactly the CRL this call made, whichever CRL the published file holds
    /// afterwards. On an error `copy` may hold part of a CRL.
    pub fn publish_and_copy(
        &self,
        kind: CrlType,
        actor: &Principal,
        copy: &mut dyn std::io::Write,
    ) -> Result<Published, CrlError> {
        if !self
            .source
            .hold_publication(&self.issuer, PUBLICATION_WAIT)
            .map_err(CrlError::Store)?
        {
            return Err(CrlError::Busy {
                issuer: self.issuer.to_string(),
            });
        }
        let published = self.publish_held(kind, actor, copy);
        self.release_publication();
        published
    }

    /// Gives the publication lease up; a failure only delays the next publisher (the lease
    /// runs out), so it is logged, not returned.
    fn release_publication(&self) {
        if let Err(e) = self.source.release_publication(&self.issuer) {
            tracing::warn!(ca = %self.issuer, error = %e, "CRL publication lease not given up; it runs out by itself");
        }
    }

    /// [`CrlIssuer::publish_and_copy`] with the publication lease held.
    fn publish_held(
        &self,
        kind: CrlType,
        actor: &Principal,
        copy: &mut dyn std::io::Write,
    ) -> Result<Published, CrlError> {
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
        // The rename is skipped when the file in place has a number at least as high; `copy`
        // gets the bytes either way.
        let ((summary, watermark), outcome) =
            self.publisher
                .publish_crl_with(&name, plan.number, |file| {
                    self.write(&header, plan.base.as_ref(), &mut Tee { file, copy })
                })?;
        let path = self.publisher.path(&name);
        if let PublishOutcome::Kept { published } = outcome {
            // Not published, so not recorded as published: the store's latest CRL (a delta's
            // base) stays one that was put in place. The number stays used.
            tracing::warn!(
                ca = %self.issuer,
                number = summary.number,
                published,
                kind = ?kind,
                path = %path.display(),
                "CRL not published: the published file holds a CRL numbered at least as high, which stays"
            );
            return Ok(Published {
                summary,
                path,
                outcome,
            });
        }
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
            path,
            outcome,
        })
    }

    /// The CRL of `header` into `out`: a full CRL without `base`, else a delta of the
    /// changes since it. Returns what was written and the store's watermark it covers.
    fn write(
        &self,
        header: &CrlHeader<'_>,
        base: Option<&CrlRecord>,
        out: &mut dyn std::io::Write,
    ) -> Result<(CrlSummary, i64), CrlError> {
        match base {
            None => self.write_full(header, out),
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
                    generate(header, entries, self.signer.as_ref(), out)?,
                    watermark,
                ))
            }
        }
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
        if self.due()?.is_none() {
            return Ok(Vec::new());
        }
        // Due: whoever holds the lease publishes; another node that does now is left to it.
        if !self
            .source
            .hold_publication(&self.issuer, Duration::ZERO)
            .map_err(CrlError::Store)?
        {
            return Ok(Vec::new());
        }
        let mut done = Vec::new();
        let mut outcome = Ok(());
        for _ in 0..2 {
            // Asked again under the lease: the node that held it before may have published.
            match self.due() {
                Ok(Some(kind)) => match self.publish_held(kind, actor, &mut std::io::sink()) {
                    Ok(p) => done.push(p),
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        self.release_publication();
        outcome.map(|()| done)
    }

    /// Which CRL is due now, if one is.
    fn due(&self) -> Result<Option<CrlType>, CrlError> {
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
        Ok(self
            .schedule
            .due(now, last(CrlType::Full)?, last(CrlType::Delta)?))
    }
}
