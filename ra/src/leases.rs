//! Tasks that run in one place at a time when several processes (nodes) share the store:
//! each CA's CRL publication, the commitment sweep, the outbox, production. A [`Lease`] names
//! the task; this process holds it under its [`node_id`] while it works.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ca_core::clock::Clock;
use ca_core::store::Store;

use crate::error::Result;

/// This process's name as a lease holder: `HOST:MACHINE:PID:RANDOM`, MACHINE being this
/// boot of this machine and its process-id namespace (`BOOT_ID-PIDNS`, `unknown` when they
/// cannot be read). A restarted process is a new holder (it waits for its predecessor's lease
/// to run out like anyone else, unless that one is known to be gone: [`gone`]).
pub fn node_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().replace(':', "_"))
            .unwrap_or_else(|_| "host".into());
        format!(
            "{host}:{}:{}:{:08x}",
            machine(),
            std::process::id(),
            rand::random::<u32>()
        )
    })
}

/// This boot of this machine and this process-id namespace, where a process id means one
/// process: `BOOT_ID-PIDNS`, or `unknown`.
fn machine() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|b| b.trim().replace('-', ""))
        .ok()
        .filter(|b| !b.is_empty() && b.chars().all(|c| c.is_ascii_hexdigit()));
    let pid_ns = std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|l| {
            let text = l.to_string_lossy().into_owned();
            text.strip_prefix("pid:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()));
    match (boot, pid_ns) {
        (Some(boot), Some(ns)) => format!("{boot}-{ns}"),
        _ => "unknown".into(),
    }
}

/// A holder name of this process for one publisher of its own (`NODE#N`): two publishers of
/// one process (the CRL schedule and an operator's request) then exclude each other too.
pub fn publisher_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{}#{}",
        node_id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Whether `holder` (a [`node_id`], or a [`publisher_id`]) names a process that no longer
/// runs on this machine, in this boot and this process-id namespace: killed, it never gave
/// its lease up. A holder of another machine (or namespace, or boot), this process, or one
/// whose machine is `unknown`, is not known to be gone.
fn gone(holder: &str) -> bool {
    let process = holder.split('#').next().unwrap_or(holder);
    let mut fields = process.rsplitn(4, ':');
    let (Some(_random), Some(pid), Some(their_machine)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let mine = machine();
    mine != "unknown" && their_machine == mine && pid != std::process::id() && !runs(pid)
}

/// Whether process `pid` runs: `kill(pid, 0)` answers ESRCH only for a process that does not
/// exist (EPERM for another user's; `/proc` may hide those, `hidepid`).
fn runs(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// A named task's lease, held by this process while it works.
pub struct Lease {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    name: String,
    /// Who holds it: this process ([`node_id`]), or one publisher of it ([`publisher_id`]).
    holder: String,
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
            holder: node_id().to_owned(),
            ttl,
        }
    }

    /// The lease of CA `ca`'s CRL publication (scheduled or asked for), held by `publisher`
    /// (a [`publisher_id`]).
    pub fn crl(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ca: &ca_core::IssuerId,
        publisher: &str,
    ) -> Lease {
        Lease {
            holder: publisher.to_owned(),
            ..Lease::new(store, clock, format!("crl:{ca}"), CRL_LEASE)
        }
    }

    /// The same lease held under another name than this process's: what another node's
    /// process holding it looks like (tests of what runs where).
    pub fn held_as(self, holder: String) -> Lease {
        Lease { holder, ..self }
    }

    /// Takes or renews the lease; whether this process holds it now. A lease held by a
    /// process of this host that no longer runs (killed, so it never gave it up) is taken
    /// over at once rather than when it runs out.
    pub fn hold(&self) -> Result<bool> {
        let now = self.clock.now_unix();
        let until = now.plus_secs(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2));
        if self
            .store
            .acquire_lease(&self.name, &self.holder, now, until)?
        {
            return Ok(true);
        }
        match self.store.lease_holder(&self.name)? {
            Some((holder, _)) if gone(&holder) => {
                Ok(self
                    .store
                    .take_over_lease(&self.name, &holder, &self.holder, until)?)
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
        Ok(self.store.release_lease(&self.name, &self.holder)?)
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
            &publisher_id(),
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

    /// A holder name of this machine for process `pid`.
    fn holder_of(pid: u32) -> String {
        format!("somehost:{}:{pid}:0badcafe", machine())
    }

    #[test]
    fn a_holder_of_this_machine_that_no_longer_runs_is_gone() {
        assert_ne!(
            machine(),
            "unknown",
            "boot id and pid namespace are readable here"
        );
        // No such process (a pid above the kernel's pid_max).
        let dead = 4_194_304 + 1;
        assert!(gone(&holder_of(dead)));
        assert!(gone(&format!("{}#3", holder_of(dead))));
        // This process, a running one (pid 1), another machine's or namespace's, garbage:
        // not known to be gone.
        assert!(!gone(node_id()));
        assert!(!gone(&publisher_id()));
        assert!(!gone(&holder_of(1)));
        assert!(!gone("somehost:0123abcd-4026531836:4294967295:0badcafe"));
        assert!(!gone("somehost:unknown:4294967295:0badcafe"));
        assert!(!gone("garbage"));
    }

    #[test]
    fn two_publishers_of_one_process_exclude_each_other() {
        let f = ca_core::testkit::fixture();
        let store: Arc<dyn Store> = f.store.clone();
        let ca = ca_core::IssuerId::parse("nes-ca").unwrap();
        let (first, second) = (publisher_id(), publisher_id());
        let scheduled = Lease::crl(store.clone(), f.clock.clone(), &ca, &first);
        let asked = Lease::crl(store, f.clock.clone(), &ca, &second);
        assert!(scheduled.hold().unwrap());
        assert!(!asked.hold().unwrap());
        // Releasing it is the holder's: the other's release leaves it held.
        asked.release().unwrap();
        assert!(!asked.hold().unwrap());
        scheduled.release().unwrap();
        assert!(asked.hold().unwrap());
    }

    #[test]
    fn a_lease_left_by_a_killed_process_of_this_host_is_taken_over_at_once() {
        let f = ca_core::testkit::fixture();
        let store: Arc<dyn Store> = f.store.clone();
        let now = f.clock.now_unix();
        let dead = holder_of(4_194_304 + 1);
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
