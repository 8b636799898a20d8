//! How many connections one listener holds at once: in all, and per client IP address. A
//! connection is admitted with a [`Slot`] that gives its places back when dropped, so a task
//! that ends in any way (answered, timed out, panicked) frees them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A refusal is logged at most this often: a flood must not flood the log too.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The listener holds `max_connections` already.
    Full,
    /// This client address holds `max_connections_per_ip` already.
    PerIp,
}

/// The counters of one listener.
pub(crate) struct Limiter {
    /// One permit per connection; all of them back means no connection is open.
    total: Arc<Semaphore>,
    max_total: u32,
    max_per_ip: usize,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    refusals: Mutex<RefusalLog>,
}

/// Refusals since the last warning, and when that warning was.
#[derive(Default)]
struct RefusalLog {
    since_warned: u64,
    warned_at: Option<Instant>,
}

/// A connection's places: one of the listener's, one of its address's.
#[derive(Debug)]
pub(crate) struct Slot {
    _total: OwnedSemaphorePermit,
    ip: IpAddr,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            // Addresses come and go: an entry lives only while the address holds a connection.
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Limiter {
    /// `max_total` ≥ 1 and `max_per_ip` ≥ 1 (the configuration checks both).
    pub(crate) fn new(max_total: u32, max_per_ip: usize) -> Limiter {
        Limiter {
            total: Arc::new(Semaphore::new(max_total as usize)),
            max_total,
            max_per_ip,
            per_ip: Arc::default(),
            refusals: Mutex::default(),
        }
    }

    /// Admits a connection from `ip`, or says why not (and warns once in a while).
    pub(crate) fn admit(&self, listener: &str, ip: IpAddr) -> Result<Slot, Refusal> {
        // An IPv4 client reaching a dual-stack socket counts as its IPv4 address.
        let ip = ip.to_canonical();
        let result = self.try_admit(ip);
        if let Err(why) = result {
            self.note_refusal(listener, ip, why);
        }
        result
    }

    fn try_admit(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut map = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let held = map.get(&ip).copied().unwrap_or(0);
        if held >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)?;
        map.insert(ip, held + 1);
        Ok(Slot {
            _total: total,
            ip,
            per_ip: self.per_ip.clone(),
        })
    }

    fn note_refusal(&self, listener: &str, ip: IpAddr, why: Refusal) {
        let mut log = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        log.since_warned += 1;
        let now = Instant::now();
        if log.warned_at.is_some_and(|t| now < t + LOG_EVERY) {
            return;
        }
        let rule = match why {
            Refusal::Full => "server.max_connections",
            Refusal::PerIp => "server.max_connections_per_ip",
        };
        tracing::warn!(
            listener,
            client = %ip,
            refused = log.since_warned,
            "connections refused: {rule} reached (closed at once; next warning in {}s at the earliest)",
            LOG_EVERY.as_secs()
        );
        log.since_warned = 0;
        log.warned_at = Some(now);
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.max_total as usize - self.total.available_permits()
    }

    /// Resolves once every admitted connection has given its slot back.
    pub(crate) async fn drained(&self) {
        // Closed only if the semaphore is closed, which nothing does: then nothing waits.
        let _ = self.total.acquire_many(self.max_total).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Admits one connection from each of `from`, in order, and says what each got.
    fn admit_all(l: &Limiter, from: &[&str]) -> Vec<Result<Slot, Refusal>> {
        from.iter().map(|a| l.admit("t", ip(a))).collect()
    }

    #[test]
    fn each_address_gets_its_own_count() {
        let l = Limiter::new(10, 2);
        let mut got = admit_all(&l, &["10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2"]);
        // The third from .1 is refused; .2 is not held back by .1's connections.
        assert_eq!(got[2].as_ref().unwrap_err(), &Refusal::PerIp);
        assert!(got[3].is_ok());
        assert_eq!(l.open(), 3);
        drop(got.remove(0));
        assert_eq!(l.open(), 2);
        assert!(l.admit("t", ip("10.0.0.1")).is_ok(), "a place came back");
    }

    #[test]
    fn the_listener_total_caps_all_addresses() {
        let l = Limiter::new(2, 2);
        let mut got = admit_all(&l, &["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert_eq!(got[2].as_ref().unwrap_err(), &Refusal::Full);
        // A refusal for the total takes nothing from the address's count.
        assert!(!l.per_ip.lock().unwrap().contains_key(&ip("10.0.0.3")));
        drop(got.remove(0));
        assert!(l.admit("t", ip("10.0.0.3")).is_ok(), "a place came back");
    }

    #[test]
    fn dropping_every_slot_forgets_the_address_and_drains() {
        let l = Limiter::new(4, 4);
        let slots: Vec<_> = (0..3).map(|_| l.admit("t", ip("::1")).unwrap()).collect();
        assert_eq!(l.per_ip.lock().unwrap().get(&ip("::1")), Some(&3));
        drop(slots);
        assert!(l.per_ip.lock().unwrap().is_empty());
        assert_eq!(l.open(), 0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), l.drained())
                .await
                .expect("no connection open: drained at once")
        });
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
        let l = Limiter::new(10, 1);
        let _a = l.admit("t", ip("127.0.0.1")).unwrap();
        assert_eq!(
            l.admit("t", ip("::ffff:127.0.0.1")).unwrap_err(),
            Refusal::PerIp
        );
    }

    #[test]
    fn a_burst_of_refusals_is_counted_and_warned_once() {
        let l = Limiter::new(1, 1);
        let _a = l.admit("t", ip("10.0.0.1")).unwrap();
        for _ in 0..5 {
            assert!(l.admit("t", ip("10.0.0.1")).is_err());
        }
        let log = l.refusals.lock().unwrap();
        // The first refusal warned; the four after it wait for the next warning.
        assert!(log.warned_at.is_some());
        assert_eq!(log.since_warned, 4);
    }
}
