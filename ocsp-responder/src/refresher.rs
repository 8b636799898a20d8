//! Keeping pre-produced responses current: produce one for every serial at start, re-sign on
//! every status change the store reports, and re-sign before nextUpdate comes near.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use nesca_ca_types::Serial;

use crate::cache::CacheKey;
use crate::cert_id::CertIdForm;
use crate::error::OcspError;
use crate::responder::Responder;
use crate::source::SourceError;

/// Serials, changes or due entries handled in one blocking batch: small enough that shutdown
/// and new status changes wait at most one batch.
const PAGE: usize = 1000;
/// Batches of changes, and of due entries, per poll: bounds one round when the signer fails.
const MAX_PAGES_PER_POLL: usize = 100;
/// Tries of a pre-production page whose serials fail before moving on.
const PAGE_ATTEMPTS: u32 = 3;
/// Failures in one pre-production page after which the rest of the page is not tried.
const MAX_FAILURES_PER_PAGE: usize = 10;
/// Longest pause between retries after the store failed.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Responder {
    /// Keeps the cache current until `shutdown` becomes `true` (or its sender is dropped).
    ///
    /// 1. Reads the store's latest change cursor.
    /// 2. Pre-produces the SHA-1 response of every serial of every served issuer, page by
    ///    page, polling changes between pages so that a revocation during a long start is
    ///    not masked by a response produced before it.
    /// 3. Every `poll_interval`: re-signs the serials whose status changed (every CertID form
    ///    held), then the entries whose nextUpdate is within `refresh_before` (responses for
    ///    never-issued serials are dropped instead, so they age out).
    pub async fn run_refresher(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(self.config.poll_interval);
        let mut cursor = loop {
            if *shutdown.borrow() {
                return;
            }
            match blocking(&self, |r| {
                r.source
                    .latest_cursor()
                    .map_err(OcspError::source("latest_cursor"))
            })
            .await
            {
                Ok(c) => {
                    self.mark_synced();
                    break c;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "OCSP refresher cannot read the change cursor");
                    if wait(&mut shutdown, backoff.next()).await {
                        return;
                    }
                }
            }
        };
        backoff.reset();
        let mut produced = 0usize;
        for issuer in 0..self.issuers.len() {
            let mut after: Option<Serial> = None;
            let mut attempts = 0;
            loop {
                if *shutdown.borrow() {
                    return;
                }
                match blocking(&self, move |r| r.prefill_page(issuer, after, PAGE)).await {
                    Ok(page) if page.failed > 0 && attempts < PAGE_ATTEMPTS => {
                        // Try the page again; past the last attempt its failed serials are
                        // left to be answered live.
                        attempts += 1;
                        if wait(&mut shutdown, backoff.next()).await {
                            return;
                        }
                    }
                    Ok(page) => {
                        if page.failed > 0 {
                            tracing::error!(
                                issuer = %self.issuers[issuer].id,
                                failed = page.failed,
                                "OCSP pre-production skipped serials that kept failing"
                            );
                        }
                        if page.failed == 0 {
                            backoff.reset();
                        }
                        attempts = 0;
                        produced += page.listed - page.failed.min(page.listed);
                        if page.listed < PAGE || page.last.is_none() {
                            break;
                        }
                        after = page.last;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "OCSP pre-production cannot list serials; retrying");
                        if wait(&mut shutdown, backoff.next()).await {
                            return;
                        }
                    }
                }
                cursor = self.poll(cursor).await;
            }
        }
        tracing::info!(serials = produced, "OCSP responses pre-produced");
        loop {
            if self.wait_for_change(&mut shutdown).await {
                return;
            }
            cursor = self.poll(cursor).await;
            // Refreshing a large batch (all of a start's responses come due together) takes
            // a while: changes are polled between batches so that a revocation waits at
            // most one batch. A batch with failures ends the round (signer or store down).
            for _ in 0..MAX_PAGES_PER_POLL {
                if *shutdown.borrow() {
                    return;
                }
                match blocking(&self, |r| Ok(r.refresh_due(PAGE))).await {
                    Ok(round) if round.due == PAGE && round.failed == 0 => {
                        cursor = self.poll(cursor).await;
                    }
                    _ => break,
                }
            }
        }
    }

    /// Waits until the source says changes may be there, at most one poll interval; whether
    /// the responder is shutting down.
    async fn wait_for_change(self: &Arc<Self>, shutdown: &mut watch::Receiver<bool>) -> bool {
        let source = self.source.clone();
        let interval = self.config.poll_interval;
        let waited = tokio::task::spawn_blocking(move || source.wait_for_change(interval));
        tokio::select! {
            _ = waited => *shutdown.borrow(),
            changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
        }
    }

    /// Applies the changes after `cursor`; returns the cursor to poll from next.
    async fn poll(self: &Arc<Self>, mut cursor: i64) -> i64 {
        for _ in 0..MAX_PAGES_PER_POLL {
            match blocking(self, move |r| r.apply_changes(cursor, PAGE)).await {
                Ok((n, next)) => {
                    self.mark_synced();
                    cursor = next.max(cursor);
                    if n < PAGE {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "OCSP refresher cannot read status changes");
                    break;
                }
            }
        }
        cursor
    }

    /// Produces the SHA-1 response of up to `limit` serials of `issuer` after `after` (those
    /// not held fresh already). Stops producing after [`MAX_FAILURES_PER_PAGE`] failures (the
    /// signer or the store is down, not one serial).
    pub(crate) fn prefill_page(
        &self,
        issuer: usize,
        after: Option<Serial>,
        limit: usize,
    ) -> Result<PrefillPage, OcspError> {
        let id = &self.issuers[issuer].id;
        let serials = self
            .source
            .serials(id, after.as_ref(), limit)
            .map_err(|e| {
                self.metrics.source_error();
                OcspError::source("serials")(e)
            })?;
        let fresh_until = self.clock.now() + self.config.refresh_before;
        let mut failed = 0;
        for (i, serial) in serials.iter().enumerate() {
            let key = CacheKey {
                issuer,
                serial: *serial,
                form: CertIdForm::SHA1,
            };
            let fresh = self
                .cache
                .get(&key)
                .is_some_and(|e| e.next_update() > fresh_until);
            if fresh {
                continue;
            }
            if let Err(e) = self.produce(key) {
                if failed == 0 {
                    tracing::warn!(error = %e, serial = %serial, "OCSP pre-production failed");
                }
                failed += 1;
                if failed >= MAX_FAILURES_PER_PAGE {
                    failed += serials.len() - i - 1;
                    break;
                }
            }
        }
        Ok(PrefillPage {
            listed: serials.len(),
            last: serials.last().copied(),
            failed,
        })
    }

    /// Re-signs the serials whose status changed after `cursor` (at most `limit`): the SHA-1
    /// form always (a newly issued serial gets its first response here), other forms where
    /// held. Where re-signing fails the old response is dropped, never left to show the old
    /// status. Returns how many changes there were and the new cursor.
    pub(crate) fn apply_changes(
        &self,
        cursor: i64,
        limit: usize,
    ) -> Result<(usize, i64), OcspError> {
        let (changes, next) = self.source.changes_since(cursor, limit).map_err(|e| {
            self.metrics.source_error();
            OcspError::source("changes_since")(e)
        })?;
        for (issuer_id, serial) in &changes {
            // Changes of CAs served elsewhere (or of the root) are not ours.
            let Some(issuer) = self.issuer_index(issuer_id) else {
                continue;
            };
            for form in CertIdForm::ALL {
                let key = CacheKey {
                    issuer,
                    serial: *serial,
                    form,
                };
                if form != CertIdForm::SHA1 && self.cache.get(&key).is_none() {
                    continue;
                }
                if let Err(e) = self.produce(key) {
                    tracing::error!(error = %e, serial = %serial, "OCSP response not re-signed after a status change; dropped");
                    self.cache.invalidate(key, self.next_seq());
                }
            }
        }
        Ok((changes.len(), next))
    }

    /// Re-signs up to `limit` entries whose nextUpdate is within `refresh_before` or whose
    /// signer was replaced since they were signed; drops those for never-issued serials. Stops after [`MAX_FAILURES_PER_PAGE`] failures.
    pub(crate) fn refresh_due(&self, limit: usize) -> RefreshRound {
        let now = self.clock.now();
        let deadline = now + self.config.refresh_before;
        // Due: near its nextUpdate, or signed by a signer that was replaced since.
        let generations: Vec<u64> = self
            .issuers
            .iter()
            .map(|i| i.delegate().generation)
            .collect();
        let due = self.cache.due(limit, |key, entry| {
            entry.next_update() <= deadline
                || generations.get(key.issuer) != Some(&entry.signer_generation)
        });
        let mut failed = 0;
        for (key, entry) in &due {
            if entry.not_issued {
                self.cache.remove_if_same(key, entry);
                continue;
            }
            if let Err(e) = self.produce(*key) {
                if failed == 0 {
                    tracing::warn!(error = %e, serial = %key.serial, "OCSP response not refreshed");
                }
                failed += 1;
                // Never kept past nextUpdate (it would not be served anyway).
                if entry.next_update() <= now {
                    self.cache.remove_if_same(key, entry);
                }
                if failed >= MAX_FAILURES_PER_PAGE {
                    break;
                }
            }
        }
        RefreshRound {
            due: due.len(),
            failed,
        }
    }
}

/// What one refresh batch did.
pub(crate) struct RefreshRound {
    /// Entries that were due.
    pub due: usize,
    /// Entries whose re-signing failed.
    pub failed: usize,
}

/// What one pre-production page did.
pub(crate) struct PrefillPage {
    /// Serials the store listed.
    pub listed: usize,
    /// The last of them (where the next page starts).
    pub last: Option<Serial>,
    /// Serials not produced (failed, or not tried after too many failures).
    pub failed: usize,
}

/// Runs `f` on a blocking thread (it calls the store and the signer).
async fn blocking<T, F>(r: &Arc<Responder>, f: F) -> Result<T, OcspError>
where
    T: Send + 'static,
    F: FnOnce(&Responder) -> Result<T, OcspError> + Send + 'static,
{
    let r = r.clone();
    tokio::task::spawn_blocking(move || f(&r))
        .await
        .unwrap_or_else(|e| {
            Err(OcspError::Source {
                operation: "refresher task",
                source: SourceError::new(e),
            })
        })
}

/// Sleeps `d`; true when shutdown was asked for meanwhile (or its sender is gone).
async fn wait(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
    }
}

struct Backoff {
    base: Duration,
    current: Duration,
}

impl Backoff {
    fn new(base: Duration) -> Backoff {
        Backoff {
            base,
            current: base,
        }
    }
    fn next(&mut self) -> Duration {
        let d = self.current;
        self.current = self
            .current
            .saturating_mul(2)
            .min(MAX_BACKOFF.max(self.base));
        d
    }
    fn reset(&mut self) {
        self.current = self.base;
    }
}
