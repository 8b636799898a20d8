//! A per-client token bucket for the public lookup by T.C. Kimlik No:
//! whoever can reach `GET /certificates?tckn=` could otherwise walk the space of valid
//! T.C. Kimlik Nos and learn who holds a certificate. Each client address gets `per_minute`
//! lookups at once, refilled evenly (one every `60 / per_minute` seconds); past that the
//! lookup is answered 429 with `Retry-After`.
//!
//! IPv6 clients are counted by their /64 (one subscriber's usual allocation), so a client
//! cannot mint fresh addresses for fresh buckets. The table is bounded: past
//! [`MAX_CLIENTS`] addresses, buckets that have refilled are forgotten (looked for at most
//! once a second, so a flood of new addresses cannot make every lookup walk the table); if
//! every one is still in use, the newcomers share one bucket.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most client buckets kept at once.
const MAX_CLIENTS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Lookups per client address per minute.
#[derive(Debug)]
pub(crate) struct PerClient {
    per_minute: f64,
    buckets: Mutex<Table>,
}

/// The buckets, and when the full table was last swept for refilled ones.
#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    swept_at: Option<Instant>,
}

/// The least time between two sweeps of a full table.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Where a client's lookups are counted: its address, an IPv6 one by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// The shared bucket of the newcomers when the table is full of buckets in use.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

impl PerClient {
    pub(crate) fn new(per_minute: u32) -> PerClient {
        PerClient {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(Table::default()),
        }
    }

    /// Takes one lookup from `ip`'s bucket at `now`: `Ok(())`, or how long until the next one.
    pub(crate) fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let rate = self.per_minute / 60.0; // tokens per second
        let mut table = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut k = key(ip);
        if !table.buckets.contains_key(&k) && table.buckets.len() >= MAX_CLIENTS {
            let due = table
                .swept_at
                .is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_EVERY);
            if due {
                let full = self.per_minute;
                table.buckets.retain(|_, b| {
                    b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < full
                });
                table.swept_at = Some(now);
            }
            if table.buckets.len() >= MAX_CLIENTS {
                k = OVERFLOW;
            }
        }
        let b = table.buckets.entry(k).or_insert(Bucket {
            tokens: self.per_minute,
            at: now,
        });
        let refilled = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate)
            .min(self.per_minute);
        b.at = now;
        if refilled >= 1.0 {
            b.tokens = refilled - 1.0;
            Ok(())
        } else {
            b.tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_gets_its_burst_then_one_per_interval() {
        let limit = PerClient::new(30);
        let t0 = Instant::now();
        for i in 0..30 {
            assert!(limit.admit(ip("192.0.2.1"), t0).is_ok(), "lookup {i}");
        }
        let wait = limit.admit(ip("192.0.2.1"), t0).unwrap_err();
        assert_eq!(wait.as_secs_f64().round(), 2.0, "{wait:?}");
        // Another client is not affected.
        assert!(limit.admit(ip("192.0.2.2"), t0).is_ok());
        // Two seconds later, one more (30 a minute).
        assert!(limit
            .admit(ip("192.0.2.1"), t0 + Duration::from_secs(2))
            .is_ok());
        assert!(limit
            .admit(ip("192.0.2.1"), t0 + Duration::from_secs(2))
            .is_err());
        // A minute later, the whole burst again and no more.
        let later = t0 + Duration::from_secs(120);
        for _ in 0..30 {
            assert!(limit.admit(ip("192.0.2.1"), later).is_ok());
        }
        assert!(limit.admit(ip("192.0.2.1"), later).is_err());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let limit = PerClient::new(2);
        let t0 = Instant::now();
        assert!(limit.admit(ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(limit.admit(ip("2001:db8:1:2::ffff"), t0).is_ok());
        assert!(limit.admit(ip("2001:db8:1:2:abcd::9"), t0).is_err());
        assert!(limit.admit(ip("2001:db8:1:3::1"), t0).is_ok());
        // An IPv4-mapped address is its IPv4 client.
        assert!(limit.admit(ip("192.0.2.9"), t0).is_ok());
        assert!(limit.admit(ip("::ffff:192.0.2.9"), t0).is_ok());
        assert!(limit.admit(ip("192.0.2.9"), t0).is_err());
    }

    #[test]
    fn the_table_is_bounded() {
        let limit = PerClient::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_CLIENTS as u32 {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            assert!(limit.admit(IpAddr::V4(a), t0).is_ok());
        }
        // Every bucket is in use: newcomers share one.
        assert!(limit.admit(ip("198.51.100.1"), t0).is_ok());
        assert!(limit.admit(ip("198.51.100.2"), t0).is_err());
        assert!(limit.buckets.lock().unwrap().buckets.len() <= MAX_CLIENTS + 1);
        // More newcomers within the second do not sweep again: they share the one bucket.
        let swept = limit.buckets.lock().unwrap().swept_at;
        assert!(limit
            .admit(ip("198.51.100.4"), t0 + Duration::from_millis(500))
            .is_err());
        assert_eq!(limit.buckets.lock().unwrap().swept_at, swept);
        // A minute later the old buckets have refilled and are forgotten.
        assert!(limit
            .admit(ip("198.51.100.3"), t0 + Duration::from_secs(61))
            .is_ok());
        assert!(limit.buckets.lock().unwrap().buckets.len() < 10);
    }
}
