//! Pre-produced responses (RFC 5019 §2.1.2), keyed by (issuer, serial, CertID form).
//!
//! Sharded maps behind `RwLock`s: the GET hot path takes one read lock for one lookup and
//! clones an `Arc`; writers (the refresher, live answers) hold one shard's write lock for one
//! insert. Every slot records the sequence number taken before its status was read, so an
//! answer built from an older read can never replace one built from a newer read (a live
//! answer racing the refresher after a revocation).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use nesca_ca_types::Serial;

use crate::cert_id::CertIdForm;
use crate::metrics::OcspMetrics;
use crate::response::SignedResponse;

/// What a pre-produced response answers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct CacheKey {
    /// Index of the served issuer.
    pub issuer: usize,
    pub serial: Serial,
    pub form: CertIdForm,
}

struct Slot {
    /// Taken before the status this entry shows was read.
    seq: u64,
    /// `None`: a tombstone left where an entry had to be dropped (its re-signing after a
    /// status change failed), so that an older answer still in flight cannot come back.
    entry: Option<Arc<SignedResponse>>,
}

type Shard = RwLock<HashMap<CacheKey, Slot>>;

const SHARDS: usize = 16;

pub(crate) struct Cache {
    shards: Box<[Shard]>,
    hasher: RandomState,
    not_issued: AtomicUsize,
    max_not_issued: usize,
    metrics: Arc<OcspMetrics>,
}

impl Cache {
    pub(crate) fn new(max_not_issued: usize, metrics: Arc<OcspMetrics>) -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
            not_issued: AtomicUsize::new(0),
            max_not_issued,
            metrics,
        }
    }

    fn shard(&self, key: &CacheKey) -> &Shard {
        let mut h = self.hasher.build_hasher();
        key.serial.hash(&mut h);
        let h = std::hash::Hasher::finish(&h);
        &self.shards[(h as usize) % SHARDS]
    }

    // A panic while a lock is held cannot leave a map half-updated (each write is one map
    // operation), so a poisoned lock is used as it is.
    fn read(shard: &Shard) -> RwLockReadGuard<'_, HashMap<CacheKey, Slot>> {
        shard.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(shard: &Shard) -> RwLockWriteGuard<'_, HashMap<CacheKey, Slot>> {
        shard.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry for `key`, whatever its age (the caller checks nextUpdate).
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Arc<SignedResponse>> {
        Self::read(self.shard(key))
            .get(key)
            .and_then(|s| s.entry.clone())
    }

    /// Stores `entry` (built from a status read after `seq` was taken) unless the slot holds
    /// something newer, or the entry is for a never-issued serial and the cap on those is
    /// reached. Returns whether it was stored.
    pub(crate) fn put(&self, key: CacheKey, seq: u64, entry: Arc<SignedResponse>) -> bool {
        let new_not_issued = entry.not_issued;
        let mut map = Self::write(self.shard(&key));
        let old = map.get(&key);
        if old.is_some_and(|s| s.seq > seq) {
            return false;
        }
        let old_entry = old.and_then(|s| s.entry.as_ref());
        let old_not_issued = old_entry.is_some_and(|e| e.not_issued);
        if new_not_issued && !old_not_issued {
            if self.not_issued.fetch_add(1, Ordering::Relaxed) >= self.max_not_issued {
                self.not_issued.fetch_sub(1, Ordering::Relaxed);
                return false;
            }
        } else if old_not_issued && !new_not_issued {
            self.not_issued.fetch_sub(1, Ordering::Relaxed);
        }
        if old_entry.is_none() {
            self.metrics.cached_changed(1);
        }
        map.insert(
            key,
            Slot {
                seq,
                entry: Some(entry),
            },
        );
        true
    }

    /// Drops the entry for `key` and leaves a tombstone at `seq`: answers built from status
    /// reads before `seq` are refused from now on.
    pub(crate) fn invalidate(&self, key: CacheKey, seq: u64) {
        let mut map = Self::write(self.shard(&key));
        let old = map.insert(key, Slot { seq, entry: None });
        if let Some(old) = old {
            if old.seq > seq {
                // Newer than the failure: keep it.
                map.insert(key, old);
                return;
            }
            self.forget(old.entry.as_ref());
        }
    }

    /// Removes `key` if it still holds exactly `entry` (an aged never-issued response).
    pub(crate) fn remove_if_same(&self, key: &CacheKey, entry: &Arc<SignedResponse>) -> bool {
        let mut map = Self::write(self.shard(key));
        let same = map
            .get(key)
            .and_then(|s| s.entry.as_ref())
            .is_some_and(|e| Arc::ptr_eq(e, entry));
        if same {
            let old = map.remove(key);
            self.forget(old.and_then(|s| s.entry).as_ref());
        }
        same
    }

    fn forget(&self, entry: Option<&Arc<SignedResponse>>) {
        if let Some(e) = entry {
            self.metrics.cached_changed(-1);
            if e.not_issued {
                self.not_issued.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Up to `limit` entries that `is_due`.
    pub(crate) fn due(
        &self,
        limit: usize,
        is_due: impl Fn(&CacheKey, &SignedResponse) -> bool,
    ) -> Vec<(CacheKey, Arc<SignedResponse>)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let map = Self::read(shard);
            for (k, slot) in map.iter() {
                if out.len() >= limit {
                    return out;
                }
                if let Some(e) = &slot.entry {
                    if is_due(k, e) {
                        out.push((*k, e.clone()));
                    }
                }
            }
        }
        out
    }

    /// Entries held (tombstones not counted).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| Self::read(s).values().filter(|s| s.entry.is_some()).count())
            .sum()
    }

    /// Responses for never-issued serials held.
    #[cfg(test)]
    pub(crate) fn not_issued_len(&self) -> usize {
        self.not_issued.load(Ordering::Relaxed)
    }
}

/// The exact text of GET paths already answered, to the cache key they name: a repeated GET
/// (what HTTP caches and RFC 5019 clients send) then skips base64 and DER decoding. A path
/// always names the same request, so an entry never goes stale; the response is still read
/// from the [`Cache`] each time. Only paths of issued serials are added (a client inventing
/// serials cannot fill it), and at `cap` entries the index is cleared and starts over, so
/// spelling games cost memory only up to the cap.
pub(crate) struct PathIndex {
    map: RwLock<HashMap<Box<str>, CacheKey>>,
    cap: usize,
}

impl PathIndex {
    pub(crate) fn new(cap: usize) -> PathIndex {
        PathIndex {
            map: RwLock::default(),
            cap,
        }
    }

    pub(crate) fn get(&self, path: &str) -> Option<CacheKey> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
            .copied()
    }

    pub(crate) fn insert(&self, path: &str, key: CacheKey) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.cap {
            map.clear();
        }
        map.insert(path.into(), key);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}
