//! Tasks that run in one place at a time when several processes (nodes) share the store:
//! each CA's CRL publication, the commitment sweep, the outbox, production. A [`Lease`] names
//! the task; this process holds it under its [`node_id`] while it works.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ca_core::clock::Clock;
use ca_core::store::Store;

use crate::error::Result;

/// This process's name as a lease holder: `HOST:PID:RANDOM`, so that a restarted process is
/// a new holder (it waits for its predecessor's lease to run out like anyone else).
pub fn node_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "host".into());
        format!(
            "{host}:{}:{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    })
}

/// Whether `holder` (a [`node_id`]) names a process of this host that no longer runs. A
/// holder of another host, or one that cannot be read, is not known to be gone.
fn gone_from_this_host(holder: &str) -> bool {
    let mine = node_id();
    let host_of = |id: &str| id.rsplitn(3, ':').nth(2).map(str::to_owned);
    let Some(pid) = holder
        .rsplit(':')
        .nth(1)
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return false;
    };
    host_of(holder).is_some_and(|h| Some(h) == host_of(mine))
        && holder != mine
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A named task's lease, held by this process while it works.
pub struct Lease {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    name: String,
    ttl: Duration,
}

impl Lease {
    /// The lease of task `name`, taken for `ttl` at a time: how long the others wait after
    /// this process stopped renewing it (it died) before one of them takes the task over.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, name: String, ttl: Duration) -> Lease {
        Lease {
            store,
            clock,
            name,
            ttl,
        }
    }

    /// The lease of CA `ca`'s CRL publication (scheduled or asked for).
    pub fn crl(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ca: &ca_core::IssuerId) -> Lease {
        Lease::new(store, clock, format!("crl:{ca}"), CRL_LEASE)
    }

    /// Takes or renews the lease; whether this process holds it now. A lease held by a
    /// process of this host that no longer runs (killed, so it never gave it up) is taken
    /// over at once rather than when it runs out.
    pub fn hold(&self) -> Result<bool> {
        let now = self.clock.now_unix();
        let until = now.plus_secs(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2));
        if self
            .store
            .acquire_lease(&self.name, node_id(), now, until)?
        {
            return Ok(true);
        }
        match self.store.lease_holder(&self.name)? {
            Some((holder, _)) if gone_from_this_host(&holder) => {
                Ok(self
                    .store
                    .take_over_lease(&self.name, &holder, node_id(), until)?)
            }
            _ => Ok(false),
        }
    }

    /// Takes the lease, trying again every 100 ms for at most `wait`; whether it was had.
    pub fn hold_within(&self, wait: Duration) -> Result<bool> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if self.hold()? {
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Gives the lease up (the next process that asks takes it at once).
    pub fn release(&self) -> Result<()> {
        Ok(self.store.release_lease(&self.name, node_id())?)
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How long a CRL publication may take before another node may start one: longer than a
/// million-entry CRL takes to sign and write.
pub const CRL_LEASE: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_holds_a_task_until_it_gives_it_up() {
        let f = ca_core::testkit::fixture();
        let store: Arc<dyn Store> = f.store.clone();
        let lease = Lease::crl(
            store.clone(),
            f.clock.clone(),
            &ca_core::IssuerId::parse("nes-ca").unwrap(),
        );
        assert!(lease.hold().unwrap());
        assert!(lease.hold().unwrap(), "the holder renews");
        // Another node (another holder name) is refused while it is held.
        let now = f.clock.now_unix();
        assert!(!store
            .acquire_lease(lease.name(), "other-node", now, now.plus_secs(60))
            .unwrap());
        lease.release().unwrap();
        assert!(store
            .acquire_lease(lease.name(), "other-node", now, now.plus_secs(60))
            .unwrap());
        assert!(!lease.hold_within(Duration::from_millis(250)).unwrap());
    }

    #[test]
    fn a_holder_of_this_host_that_no_longer_runs_is_gone() {
        let host = node_id().rsplitn(3, ':').nth(2).unwrap().to_owned();
        assert!(gone_from_this_host(&format!("{host}:4294967295:0badcafe")));
        // This process, a running one (pid 1), another host's: not known to be gone.
        assert!(!gone_from_this_host(node_id()));
        assert!(!gone_from_this_host(&format!("{host}:1:0badcafe")));
        assert!(!gone_from_this_host("another-host:4294967295:0badcafe"));
        assert!(!gone_from_this_host("garbage"));
    }

    #[test]
    fn a_lease_left_by_a_killed_process_of_this_host_is_taken_over_at_once() {
        let f = ca_core::testkit::fixture();
        let store: Arc<dyn Store> = f.store.clone();
        let host = node_id().rsplitn(3, ':').nth(2).unwrap().to_owned();
        let now = f.clock.now_unix();
        let dead = format!("{host}:4294967295:0badcafe");
        assert!(store
            .acquire_lease("outbox", &dead, now, now.plus_secs(600))
            .unwrap());
        let lease = Lease::new(
            store,
            f.clock.clone(),
            "outbox".into(),
            Duration::from_secs(20),
        );
        assert!(lease.hold().unwrap());
    }
}
