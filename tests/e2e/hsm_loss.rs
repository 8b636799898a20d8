//! The HSM lost under load while `nesca serve` runs, and back, without a restart.
//!
//! The fault: the SoftHSM token's directory (`tokens/<uuid>`) leaves the token store and comes
//! back, as a token pulled out and plugged in again, or a network HSM that went away and
//! returned. The running server's SoftHSM then answers `CKR_OBJECT_HANDLE_INVALID` to
//! `C_SignInit`, finds no key, and `CKR_GENERAL_ERROR` to `C_GetTokenInfo`; it keeps doing so
//! after the directory is back until the module is finalised and initialised again, which is
//! nesca's to do (hsm/src/module.rs, `reconnect`).
//!
//! While the token is lost: live OCSP signing (a serial never issued, answered `revoked`
//! certificateHold and signed for the request) answers `tryLater`, the pre-produced response of
//! an issued certificate keeps answering `good` (with a nonce too, which it then leaves out),
//! and a CRL asked for through the admin API gets 503. Once the token is back, live signing
//! resumes within the issue's 5 s; the time is measured and printed (docs/BENCHMARKS.md "HSM
//! loss under nesca serve").

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::support::admin::{add_operator, Admin};
use crate::support::ocsp::{answered_never_issued, ocsp_good, ocsp_query, ocsp_serial, OcspRun};
use crate::support::server::{server_demo, Server, GRACE};
use crate::support::*;

/// Loss and return cycles in one server's life.
const CYCLES: usize = 3;
/// How long the token stays away in each cycle (the server's reconnection pause reaches its
/// longest, 1 s, well within it).
const LOST_FOR: Duration = Duration::from_secs(3);
/// The issue's target for signing to resume after the token returns.
const TARGET: Duration = Duration::from_secs(5);
/// What the test asserts (generous: a loaded test machine), and how long it waits at most.
const BOUND: Duration = Duration::from_secs(10);
const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// Threads asking the responder all along.
const LOAD_THREADS: usize = 3;

/// The demo's one token directory.
#[track_caller]
fn token_dir(demo: &Demo) -> PathBuf {
    let dirs: Vec<PathBuf> = fs::read_dir(demo.path("tokens"))
        .expect("the demo's token store")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "the demo has one token: {dirs:?}");
    dirs.into_iter().next().expect("one token")
}

/// A serial never issued, different at each call: its answer is signed live.
fn fresh_serial() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    format!(
        "7e{nanos:08x}{:06x}",
        N.fetch_add(1, Ordering::Relaxed) & 0xff_ffff
    )
}

/// How an `openssl ocsp` exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// A successful response that verifies under the chain.
    Signed,
    /// `tryLater` (RFC 6960 §4.2.1).
    TryLater,
    /// Anything else: no answer, another status, a response that does not verify.
    Other,
}

fn ended(run: &OcspRun) -> Ended {
    if run.text.contains("Responder Error: trylater (3)") {
        Ended::TryLater
    } else if run.text.contains("Response verify OK")
        && !run.text.contains("Response Verify Failure")
    {
        Ended::Signed
    } else {
        Ended::Other
    }
}

/// Live signing for a never-issued serial, until it is answered signed (`revoked`
/// certificateHold); how long that took from `since`.
#[track_caller]
fn wait_live_signing(demo: &Demo, url: &str, since: Instant, what: &str) -> Duration {
    let mut last = String::new();
    while since.elapsed() < WAIT_LIMIT {
        let serial = fresh_serial();
        let run = ocsp_serial(demo, url, &serial, "measure.der");
        if answered_never_issued(&run, &serial) {
            return since.elapsed();
        }
        assert_ne!(
            ended(&run),
            Ended::Other,
            "{what}: neither signed nor tryLater: {}",
            run.describe()
        );
        last = run.describe();
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: live OCSP signing did not resume within {WAIT_LIMIT:?}; last: {last}");
}

/// What the load threads saw.
#[derive(Default)]
struct Seen {
    signed: u64,
    try_later: u64,
    other: Vec<String>,
}

/// Asks, until `stop`, about a fresh serial (live), about `cert` with a nonce and about it
/// without (pre-produced), in turn.
fn load(demo: &Demo, url: &str, cert: &Path, n: usize, stop: &AtomicBool, seen: &Mutex<Seen>) {
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let respout = format!("load-{n}.der");
        let run = match i % 3 {
            0 => ocsp_serial(demo, url, &fresh_serial(), &respout),
            1 => ocsp_query(demo, url, &[cert], &[], &respout),
            _ => ocsp_query(demo, url, &[cert], &["-no_nonce"], &respout),
        };
        let mut seen = seen.lock().unwrap();
        match ended(&run) {
            Ended::Signed => seen.signed += 1,
            Ended::TryLater => seen.try_later += 1,
            Ended::Other => seen.other.push(run.describe()),
        }
        drop(seen);
        i += 1;
    }
}

/// `cert` answered `good`, verified, from the pre-produced response (no nonce asked).
#[track_caller]
fn assert_pre_produced_good(demo: &Demo, url: &str, cert: &Path, what: &str) {
    let run = ocsp_query(demo, url, &[cert], &["-no_nonce"], "cached.der");
    assert!(
        run.verified() && run.status_of(cert).as_deref() == Some("good"),
        "{what}: the pre-produced response did not answer good: {}",
        run.describe()
    );
}

#[test]
fn serve_answers_try_later_while_the_token_is_lost_and_signs_again_once_it_is_back() {
    let demo = server_demo();
    let admin = Admin::configure(&demo);
    let operator = add_operator(&demo, "Can Operator", "ca-operator");
    let csr = demo.csr("held", Key::P256);
    let (cert, _) = demo.issue_ok(&csr, "held.pem", &[]);
    let mut server = Server::serve(&demo);
    let url = server.url();

    // In order first: good (live, with a nonce), its pre-produced response, and live signing.
    ocsp_good(&demo, &url, &cert, "good-before.der");
    assert_pre_produced_good(&demo, &url, &cert, "before the loss");
    wait_live_signing(&demo, &url, Instant::now(), "before the loss");
    admin.post(&operator, "crl", &json!({})).expect(200);

    let dir = token_dir(&demo);
    let away = demo.work.join("token-away");
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(Seen::default());
    let mut measured = Vec::new();
    std::thread::scope(|scope| {
        for n in 0..LOAD_THREADS {
            let (demo, url, cert, stop, seen) = (&demo, url.as_str(), cert.as_path(), &stop, &seen);
            scope.spawn(move || load(demo, url, cert, n, stop, seen));
        }
        for cycle in 1..=CYCLES {
            // Lost.
            fs::rename(&dir, &away).expect("move the token directory out of the store");
            let lost = Instant::now();
            let serial = fresh_serial();
            let run = ocsp_serial(&demo, &url, &serial, "lost.der");
            let refused_in = lost.elapsed();
            assert_eq!(
                ended(&run),
                Ended::TryLater,
                "cycle {cycle}: live signing with the token lost: {}",
                run.describe()
            );
            assert_pre_produced_good(&demo, &url, &cert, "token lost");
            // With a nonce: the pre-produced response, without the nonce (RFC 5019 §2.2.2).
            let run = ocsp_query(&demo, &url, &[&cert], &[], "lost-nonce.der");
            assert!(
                run.text.contains("Response verify OK")
                    && run.status_of(&cert).as_deref() == Some("good"),
                "cycle {cycle}: a nonce with the token lost: {}",
                run.describe()
            );
            let crl = admin.post(&operator, "crl", &json!({}));
            assert_eq!(crl.expect(503)["error"]["code"], "unavailable");
            server.assert_running();
            let left = LOST_FOR.saturating_sub(lost.elapsed());
            std::thread::sleep(left);
            assert_eq!(
                ended(&ocsp_serial(&demo, &url, &fresh_serial(), "lost.der")),
                Ended::TryLater,
                "cycle {cycle}: live signing still lost"
            );

            // Back.
            fs::rename(&away, &dir).expect("move the token directory back");
            let back = Instant::now();
            let resumed = wait_live_signing(&demo, &url, back, &format!("cycle {cycle}"));
            println!(
                "hsm_loss: cycle {cycle}: first tryLater {} ms after the loss; live OCSP signing again {} ms after the token returned",
                refused_in.as_millis(),
                resumed.as_millis()
            );
            measured.push(resumed);
            assert!(
                resumed < BOUND,
                "cycle {cycle}: signing resumed only after {resumed:?}"
            );
            admin.post(&operator, "crl", &json!({})).expect(200);
            ocsp_good(&demo, &url, &cert, "good-after.der");
        }
        stop.store(true, Ordering::Relaxed);
    });

    let seen = seen.into_inner().unwrap();
    println!(
        "hsm_loss: load: {} signed answers, {} tryLater; recovery {:?} (target {TARGET:?})",
        seen.signed, seen.try_later, measured
    );
    assert!(
        seen.other.is_empty(),
        "answers neither signed nor tryLater under load: {:#?}",
        seen.other
    );
    assert!(
        seen.try_later > 0 && seen.signed > 0,
        "the load saw no loss"
    );
    let log = server.stderr();
    assert!(!log.contains("panicked"), "{}", server.describe());
    assert_eq!(
        log.matches("HSM token back: reconnected").count(),
        CYCLES,
        "{}",
        server.describe()
    );
    // The token serves other processes as before, and the server stops as usual (its check:
    // the PIN never in its output).
    let (issued, _) = demo.issue_ok(&demo.csr("after", Key::P256), "after.pem", &[]);
    assert_verifies(&demo.dir, &issued);
    let (status, _) = server.terminate(GRACE + Duration::from_secs(5));
    assert!(status.success(), "{status}");
}
