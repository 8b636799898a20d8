//! The protocol core: from a DER OCSPRequest to a DER OCSPResponse.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use x509_cert::ext::Extension;
use x509_ocsp::{CertId, OcspResponseStatus};

use nesca_ca_types::{Clock, Serial};

use crate::budget::LiveBudget;
use crate::cache::{Cache, CacheKey, PathIndex};
use crate::cert_id::{serial_of, CertIdForm};
use crate::config::ResponderConfig;
use crate::error::OcspError;
use crate::http::cache_control;
use crate::issuer::{Issuer, ServedIssuer};
use crate::metrics::{OcspMetrics, Outcome};
use crate::request::{self, Malformed};
use crate::response::{self, SignedResponse, Single};
use crate::source::{CertState, StatusSource};

/// GET paths remembered at most; past that the index starts over (see [`PathIndex`]).
const PATH_INDEX_CAP: usize = 65_536;

/// An OCSP responder for a fixed set of CAs: answers requests from pre-produced responses
/// where it can and signs live where it must. Build with [`Responder::new`], serve with
/// [`Responder::router`], and keep [`Responder::run_refresher`] running beside it.
pub struct Responder {
    pub(crate) issuers: Vec<Issuer>,
    pub(crate) source: Arc<dyn StatusSource>,
    pub(crate) config: ResponderConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) cache: Cache,
    /// GET paths seen before, to the response they name (skips base64 and DER parsing).
    pub(crate) paths: PathIndex,
    /// `Cache-Control` for the usual case where max-age is `max_age_cap`.
    pub(crate) capped_cache_control: Option<axum::http::HeaderValue>,
    pub(crate) metrics: Arc<OcspMetrics>,
    /// Taken before each status read; orders answers in the cache (see `cache`).
    seq: AtomicU64,
    /// Turns for live signing (HSM calls on blocking threads).
    pub(crate) live_slots: Arc<tokio::sync::Semaphore>,
    /// Live signatures per second (see `budget`).
    live_budget: LiveBudget,
    /// When the refresher last read the store's changes, in milliseconds since `started`
    /// (0: no refresher runs; [`ResponderConfig::stale_after`] does not apply).
    synced_ms: AtomicU64,
    started: std::time::Instant,
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    /// How it ended (also the metrics label).
    pub outcome: Outcome,
    /// The DER OCSPResponse, whatever its status.
    pub der: Bytes,
    /// For a successful response without a nonce: the signed response with its times and
    /// ETag, from which HTTP caching headers are made. `None` for error statuses and for
    /// responses that echo a nonce (they belong to one request and must not be cached).
    pub cacheable: Option<Arc<SignedResponse>>,
    /// Where the response is kept, when it is (single CertID, no nonce, issued serial).
    pub(crate) cache_key: Option<CacheKey>,
}

impl OcspAnswer {
    fn status(outcome: Outcome, status: OcspResponseStatus) -> OcspAnswer {
        OcspAnswer {
            outcome,
            der: response::unsigned(status),
            cacheable: None,
            cache_key: None,
        }
    }
    pub(crate) fn malformed() -> OcspAnswer {
        Self::status(Outcome::Malformed, OcspResponseStatus::MalformedRequest)
    }
    pub(crate) fn unauthorized() -> OcspAnswer {
        Self::status(Outcome::Unauthorized, OcspResponseStatus::Unauthorized)
    }
    pub(crate) fn try_later() -> OcspAnswer {
        Self::status(Outcome::TryLater, OcspResponseStatus::TryLater)
    }
    pub(crate) fn cached(entry: Arc<SignedResponse>, key: CacheKey) -> OcspAnswer {
        OcspAnswer {
            outcome: Outcome::Cached,
            der: entry.der().clone(),
            cache_key: (!entry.not_issued).then_some(key),
            cacheable: Some(entry),
        }
    }
}

/// A request that needs the store and the signer: it runs on a blocking thread.
pub(crate) struct LiveRequest {
    issuer: usize,
    /// Each CertID with its serial (`None`: negative or longer than nesca's serials, so
    /// never issued).
    items: Vec<(CertId, Option<Serial>, CertIdForm)>,
    nonce: Option<Extension>,
}

/// The first, non-blocking step of answering.
pub(crate) enum Step {
    Done(OcspAnswer),
    Live(LiveRequest),
}

impl Responder {
    /// Checks the configuration and every served issuer (see [`ServedIssuer`]); the cache
    /// starts empty until [`Responder::run_refresher`] fills it.
    pub fn new(
        issuers: Vec<ServedIssuer>,
        source: Arc<dyn StatusSource>,
        config: ResponderConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Responder>, OcspError> {
        config.check()?;
        if issuers.is_empty() {
            return Err(OcspError::Config {
                field: "issuers",
                rule: "at least one CA must be served".into(),
            });
        }
        let now = clock.now();
        let mut prepared: Vec<Issuer> = Vec::with_capacity(issuers.len());
        for served in issuers {
            let issuer = Issuer::prepare(served)?;
            if prepared
                .iter()
                .any(|p| p.id == issuer.id || p.hashes.same_as(&issuer.hashes))
            {
                return Err(OcspError::Config {
                    field: "issuers",
                    rule: format!("{} is served twice", issuer.id),
                });
            }
            if issuer.signer_not_after() < now {
                tracing::error!(
                    issuer = %issuer.id,
                    "the OCSP signer certificate has expired: nothing is signed for this CA until it is renewed"
                );
            } else if issuer.signer_not_after() < now + config.validity {
                tracing::warn!(
                    issuer = %issuer.id,
                    "the OCSP signer certificate expires before responses signed now do"
                );
            }
            prepared.push(issuer);
        }
        let metrics = Arc::new(OcspMetrics::default());
        Ok(Arc::new(Responder {
            issuers: prepared,
            source,
            cache: Cache::new(config.max_not_issued_cached, metrics.clone()),
            paths: PathIndex::new(PATH_INDEX_CAP),
            capped_cache_control: config.max_age_cap.map(|cap| cache_control(cap.as_secs())),
            live_slots: Arc::new(tokio::sync::Semaphore::new(config.live_concurrency)),
            live_budget: LiveBudget::new(config.live_per_second, std::time::Instant::now()),
            config,
            clock,
            metrics,
            seq: AtomicU64::new(1),
            synced_ms: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }))
    }

    /// Records that the store's changes were read just now (the refresher).
    pub(crate) fn mark_synced(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.synced_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// Whether the refresher has not read the store's changes for longer than
    /// [`ResponderConfig::stale_after`]: answers would be status this node may no longer
    /// know to be true.
    pub fn is_stale(&self) -> bool {
        let synced = self.synced_ms.load(Ordering::Relaxed);
        synced != 0
            && self
                .started
                .elapsed()
                .as_millis()
                .saturating_sub(u128::from(synced))
                > self.config.stale_after.as_millis()
    }

    /// The responder's counters.
    pub fn metrics(&self) -> &OcspMetrics {
        &self.metrics
    }

    /// Answers a DER OCSPRequest. Synchronous: a request that is not answered from the cache
    /// reads the store and signs on the calling thread. The HTTP handlers split this in two
    /// so that only that part runs on a blocking thread.
    pub fn answer(&self, request_der: &[u8]) -> OcspAnswer {
        match self.prepare(request_der) {
            Step::Done(a) => a,
            Step::Live(live) => self.complete(live),
        }
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Parses, finds the issuer, and answers from the cache when it can. Never blocks.
    pub(crate) fn prepare(&self, der: &[u8]) -> Step {
        if der.len() > self.config.max_body {
            return Step::Done(OcspAnswer::malformed());
        }
        if self.is_stale() {
            return Step::Done(OcspAnswer::try_later());
        }
        let parsed = match request::parse(der) {
            Ok(p) => p,
            Err(Malformed(why)) => {
                tracing::debug!(why, "malformed OCSP request");
                return Step::Done(OcspAnswer::malformed());
            }
        };
        // Every CertID must name the same served issuer: one response is signed by one
        // delegated signer, which speaks for its own CA only.
        let mut issuer = None;
        let mut items = Vec::with_capacity(parsed.cert_ids.len());
        for cert_id in parsed.cert_ids {
            let Some(form) = CertIdForm::of(&cert_id.hash_algorithm) else {
                return Step::Done(OcspAnswer::unauthorized());
            };
            let found = self.issuers.iter().position(|i| {
                i.hashes.matches(
                    form.alg,
                    cert_id.issuer_name_hash.as_bytes(),
                    cert_id.issuer_key_hash.as_bytes(),
                )
            });
            match (found, issuer) {
                (None, _) => return Step::Done(OcspAnswer::unauthorized()),
                (Some(f), Some(i)) if f != i => return Step::Done(OcspAnswer::unauthorized()),
                (Some(f), _) => issuer = Some(f),
            }
            let serial = serial_of(cert_id.serial_number.as_bytes());
            items.push((cert_id, serial, form));
        }
        let Some(issuer) = issuer else {
            return Step::Done(OcspAnswer::malformed());
        };
        if parsed.nonce.is_none() {
            if let Some(cached) = self.fresh_cached(issuer, &items) {
                return Step::Done(cached);
            }
        }
        if !self.live_budget.try_take(std::time::Instant::now()) {
            // Past the budget: the pre-produced response without the nonce (RFC 5019
            // §2.2.2), while it is fresh; else tryLater.
            self.metrics.over_budget();
            return Step::Done(
                self.fresh_cached(issuer, &items)
                    .unwrap_or_else(OcspAnswer::try_later),
            );
        }
        Step::Live(LiveRequest {
            issuer,
            items,
            nonce: parsed.nonce,
        })
    }

    /// The pre-produced response of a single issued serial, while it is fresh: never one
    /// past its nextUpdate (a fresh one is signed instead).
    fn fresh_cached(
        &self,
        issuer: usize,
        items: &[(CertId, Option<Serial>, CertIdForm)],
    ) -> Option<OcspAnswer> {
        let [(_, Some(serial), form)] = items else {
            return None;
        };
        self.fresh_cached_key(CacheKey {
            issuer,
            serial: *serial,
            form: *form,
        })
    }

    /// The pre-produced response under `key`, while it is fresh.
    fn fresh_cached_key(&self, key: CacheKey) -> Option<OcspAnswer> {
        let entry = self.cache.get(&key)?;
        (self.clock.now() < entry.next_update()).then(|| OcspAnswer::cached(entry, key))
    }

    /// Reads the status of every CertID and signs one response for all of them. Blocks.
    pub(crate) fn complete(&self, live: LiveRequest) -> OcspAnswer {
        let seq = self.next_seq();
        let issuer = &self.issuers[live.issuer];
        // The single serial's pre-produced response: what a nonce gets when signing fails.
        let single = match live.items.as_slice() {
            [(_, Some(serial), form)] => Some(CacheKey {
                issuer: live.issuer,
                serial: *serial,
                form: *form,
            }),
            _ => None,
        };
        let cache_key = single.filter(|_| live.nonce.is_none());
        let mut singles = Vec::with_capacity(live.items.len());
        for (cert_id, serial, _) in live.items {
            let state = match serial {
                None => CertState::NotIssued,
                Some(serial) => match self.status(issuer, &serial) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "OCSP status lookup failed");
                        return OcspAnswer::try_later();
                    }
                },
            };
            singles.push(Single { cert_id, state });
        }
        let has_nonce = live.nonce.is_some();
        match self.sign(issuer, singles, live.nonce) {
            Ok(signed) => {
                let signed = Arc::new(signed);
                let mut stored = None;
                if let Some(key) = cache_key {
                    if self.cache.put(key, seq, signed.clone()) && !signed.not_issued {
                        stored = Some(key);
                    }
                }
                OcspAnswer {
                    outcome: Outcome::Signed,
                    der: signed.der().clone(),
                    cacheable: (!has_nonce).then_some(signed),
                    cache_key: stored,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "OCSP response not signed");
                // The signer is down (the HSM lost, say): a serial whose pre-produced response
                // is fresh still gets it, without the nonce (RFC 5019 §2.2.2), as past the
                // live budget. That response is the store's status: a change that could not
                // be re-signed dropped it.
                single
                    .and_then(|key| self.fresh_cached_key(key))
                    .unwrap_or_else(OcspAnswer::try_later)
            }
        }
    }

    /// Signs a fresh response for `key` and stores it (pre-production and refresh).
    pub(crate) fn produce(&self, key: CacheKey) -> Result<Arc<SignedResponse>, OcspError> {
        let seq = self.next_seq();
        let issuer = &self.issuers[key.issuer];
        let state = self.status(issuer, &key.serial)?;
        let cert_id = issuer
            .hashes
            .cert_id(key.form, &key.serial)
            .map_err(OcspError::encoding("CertID"))?;
        let signed = Arc::new(self.sign(issuer, vec![Single { cert_id, state }], None)?);
        self.cache.put(key, seq, signed.clone());
        Ok(signed)
    }

    fn status(&self, issuer: &Issuer, serial: &Serial) -> Result<CertState, OcspError> {
        self.source.status(&issuer.id, serial).map_err(|e| {
            self.metrics.source_error();
            OcspError::source("status")(e)
        })
    }

    fn sign(
        &self,
        issuer: &Issuer,
        singles: Vec<Single>,
        nonce: Option<Extension>,
    ) -> Result<SignedResponse, OcspError> {
        let now: SystemTime = self.clock.now();
        match response::sign(issuer, singles, nonce, now, self.config.validity) {
            Ok(s) => {
                self.metrics.signed();
                Ok(s)
            }
            Err(e) => {
                self.metrics.signing_error();
                Err(e)
            }
        }
    }

    /// Replaces the delegated signer of the CA `id` (a renewed signer: its key and its
    /// certificate, checked as at start). Responses signed by the one it replaces are
    /// re-signed by the refresher, batch by batch; until then they are served as they are
    /// (the old signer's certificate stays valid through the overlap).
    pub fn replace_signer(
        &self,
        id: &nesca_ca_types::IssuerId,
        signer: Arc<dyn nesca_ca_types::TbsSigner>,
        signer_cert_der: &[u8],
    ) -> Result<(), OcspError> {
        let issuer = self
            .issuer_index(id)
            .map(|i| &self.issuers[i])
            .ok_or_else(|| OcspError::Config {
                field: "issuers",
                rule: format!("{id} is not served here"),
            })?;
        let generation = issuer.replace_delegate(signer, signer_cert_der)?;
        tracing::info!(issuer = %id, generation, "OCSP signer replaced; re-signing its responses");
        Ok(())
    }

    /// The notAfter of the delegated signer each served CA signs with now.
    pub fn signer_not_after(&self) -> Vec<(nesca_ca_types::IssuerId, SystemTime)> {
        self.issuers
            .iter()
            .map(|i| (i.id.clone(), i.signer_not_after()))
            .collect()
    }

    /// Index of the served issuer with this id.
    pub(crate) fn issuer_index(&self, id: &nesca_ca_types::IssuerId) -> Option<usize> {
        self.issuers.iter().position(|i| &i.id == id)
    }
}
