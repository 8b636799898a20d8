//! Waiting on the network: a free port on 127.0.0.1, and polling until something is seen.

use std::thread;
use std::time::{Duration, Instant};

/// Polls `probe` every `every` until it returns `Some`, for at most `limit`; panics with
/// `what` and the last probe's description when it never does.
#[track_caller]
pub(crate) fn wait_for<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= limit => {
                panic!("{what}: not seen within {limit:?}; last attempt:\n{last}")
            }
            Err(_) => thread::sleep(every),
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
