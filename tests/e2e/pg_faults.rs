//! Faults of a PostgreSQL deployment, end to end (the real binary, the local PostgreSQL
//! server, SoftHSM):
//!
//! - the PostgreSQL server restarted while `nesca issue` processes run and `nesca serve`
//!   serves: while it is down, /healthz answers 503 and `nesca issue` fails with one line that
//!   names the store; once it is back, the same `nesca serve` is healthy again and answers
//!   OCSP for what was issued after the restart, with nothing lost or issued twice;
//! - one of two `nesca serve` nodes killed (SIGKILL) while issuance goes on through both
//!   configurations and `nesca issue` processes are killed mid-flight: the other node answers
//!   throughout, the killed one comes back, every certificate handed out is in the store, and
//!   the reservations the killed processes left are resolved as failed by a later start;
//! - a process issuing with many requests in flight killed (SIGKILL), as crash.rs does on
//!   SQLite.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::ocsp::{ocsp_good, ocsp_query};
use crate::support::postgres::{restart_server, test_server_url, PgDemo};
use crate::support::server::{Server, GRACE};
use crate::support::*;

/// Sets a flag when dropped: the workers of a scope stop when its body ends, panicking or not.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// splitmix64: the kill plan, replayable from its seed.
struct Rng(u64);

impl Rng {
    fn seeded(var: &str) -> (Rng, u64) {
        let seed = std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .expect("clock")
                    .as_nanos() as u64
            });
        (Rng(seed), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// `nesca issue --config CONFIG` for GIVEN YILMAZ from `csr` to `out`: the arguments.
fn issue_args(config: &Path, csr: &Path, given: &str, out: &Path) -> Vec<String> {
    [
        "issue",
        "--config",
        s(config),
        "--csr",
        s(csr),
        "--tckn",
        TCKN,
        "--given-name",
        given,
        "--surname",
        SURNAME,
        "--out",
        s(out),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `nesca issue` through `config` for AYŞE YILMAZ to `out`, whatever the outcome.
fn issue_through(pg: &PgDemo, config: &Path, csr: &Path, out: &Path) -> Output {
    let args = issue_args(config, csr, GIVEN, out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    pg.demo.nesca(&args)
}

/// The serial in a PEM certificate file, lowercase hex; `None` when the file is missing or
/// not a whole certificate.
fn serial_of_file(file: &Path) -> Option<String> {
    if !file.is_file() {
        return None;
    }
    let read = openssl_may_fail(&["x509", "-in", s(file), "-noout", "-serial"]);
    read.stdout
        .trim()
        .strip_prefix("serial=")
        .map(str::to_ascii_lowercase)
}

/// `nesca cert list` rows of NES certificates by serial; panics if a serial is listed twice.
#[track_caller]
fn nes_rows(demo: &Demo) -> BTreeMap<String, Value> {
    let mut listed = BTreeSet::new();
    let mut rows = BTreeMap::new();
    for row in demo.cert_list() {
        let serial = row["serial"].as_str().expect("serial").to_owned();
        assert!(
            listed.insert(serial.clone()),
            "serial {serial} listed twice: {row}"
        );
        if row["profile"] == "nes" {
            rows.insert(serial, row);
        }
    }
    rows
}

/// `nesca audit verify` says intact.
#[track_caller]
fn assert_audit_intact(pg: &PgDemo, config: &Path) {
    let audit = pg.nesca_with(config, &["audit", "verify"]).ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
}

/// `nesca audit checkpoint` through `config`: the audit key and a first checkpoint exist
/// before any `nesca serve` starts. `nesca serve` generates the key at its first checkpoint
/// and stores the checkpoint after it: killed in between (or with `nesca audit verify` run in
/// between), the key exists without a checkpoint, which `audit verify` reports as checkpoints
/// deleted ("the audit key exists but no checkpoint does"), a finding of that window, not of
/// what these tests are about.
#[track_caller]
fn first_checkpoint(demo: &Demo, config: &Path) {
    demo.nesca(&["audit", "checkpoint", "--config", s(config)])
        .ok();
}

/// The failure of a command at default verbosity: one line `error: …`, nothing from a panic.
#[track_caller]
fn assert_one_line_error(out: &Output, must_name: &str) {
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        !out.success()
            && out.status.code() == Some(1)
            && lines.len() == 1
            && lines[0].starts_with("error: ")
            && lines[0].contains(must_name)
            && !out.stderr.contains("panicked")
            && !out.stderr.to_ascii_lowercase().contains("backtrace"),
        "expected exactly one line `error: …{must_name}…` and exit 1: {}",
        out.describe()
    );
}

// --- 1. PostgreSQL restarted during issuance ---------------------------------------------

/// Where the restart was when an issuance started or ended.
const BEFORE: u8 = 0;
/// `pg_ctlcluster stop` running: connections are being cut.
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
/// `pg_ctlcluster start` running, until the test connects again.
const STARTING: u8 = 3;
const AFTER: u8 = 4;

/// The OCSP responder's poll interval in the restart test (as multinode.rs's).
const SLOW_POLL_MS: &str = "8000";

/// One `nesca issue` of the restart test.
struct Run {
    started: u8,
    ended: u8,
    out: Output,
    file: PathBuf,
}

/// PostgreSQL stopped and started again (`pg_ctlcluster`, fast shutdown: every connection is
/// cut, open transactions roll back) under a stream of `nesca issue` processes and a running
/// `nesca serve`.
///
/// While it is down: /healthz answers 503, and every `nesca issue` exits 1 with one line that
/// names the store (`error: store: connect: postgres: … Connection refused`). Once it is back,
/// the same `nesca serve` process (not restarted) is healthy again within seconds and answers
/// OCSP `good` for a certificate issued after the restart. In the store: every issuance that
/// reported success is active, no serial is listed twice, and what is left `reserved` comes
/// from processes cut off by the stop (their reservation committed, their completion lost);
/// the audit chain is intact.
#[test]
fn postgres_restarted_during_issuance() {
    let pg = PgDemo::init_exclusive();
    let config = pg.demo.config();
    // The responder's poll far longer than the wait allowed below for a new certificate's
    // answer: an answer in time proves the server heard of the commit (LISTEN, reconnected
    // after the restart), not that it polled.
    let text = std::fs::read_to_string(&config).expect("nesca.toml");
    let text = toml_replace_raw(&text, "ocsp", "poll_interval_ms", SLOW_POLL_MS);
    std::fs::write(&config, text).expect("write nesca.toml");
    first_checkpoint(&pg.demo, &config);
    let mut server = Server::serve_config(&pg.demo, &config);
    let csr = pg.demo.csr("req", Key::P256);
    let healthz = server.get("/healthz");
    assert_eq!(healthz.status, 200, "{}", healthz.describe());

    let phase = AtomicU8::new(BEFORE);
    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let runs: Mutex<Vec<Run>> = Mutex::new(Vec::new());
    let count = |f: &dyn Fn(&Run) -> bool| runs.lock().unwrap().iter().filter(|r| f(r)).count();
    let mut timings = Vec::new();

    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for _ in 0..2 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let file = pg.demo.work.join(format!("c{i}.pem"));
                    let started = phase.load(Ordering::SeqCst);
                    let out = issue_through(&pg, &config, &csr, &file);
                    let ended = phase.load(Ordering::SeqCst);
                    runs.lock().unwrap().push(Run {
                        started,
                        ended,
                        out,
                        file,
                    });
                }
            });
        }
        wait_for(
            "4 issuances before the restart",
            Duration::from_secs(30),
            Duration::from_millis(20),
            || match count(&|r| r.out.success()) {
                n if n >= 4 => Ok(()),
                n => Err(format!("{n} so far")),
            },
        );

        phase.store(STOPPING, Ordering::SeqCst);
        let stopping = Instant::now();
        // A failed check while the server is down must not leave it down: the checks' panic
        // is carried over the restart.
        let mut while_down = Ok(());
        restart_server(&pg, || {
            phase.store(DOWN, Ordering::SeqCst);
            while_down = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let down = Instant::now();
                timings.push(format!("pg_ctlcluster stop took {:?}", stopping.elapsed()));
                let r = wait_for(
                    "/healthz unhealthy while PostgreSQL is down",
                    Duration::from_secs(10),
                    Duration::from_millis(20),
                    || {
                        let r = server.get("/healthz");
                        if r.status == 200 {
                            Err(r.describe())
                        } else {
                            Ok(r)
                        }
                    },
                );
                timings.push(format!(
                    "/healthz unhealthy {:?} after the stop",
                    down.elapsed()
                ));
                assert_eq!(r.status, 503, "{}", r.describe());
                wait_for(
                    "2 issuances run entirely while PostgreSQL is down",
                    Duration::from_secs(20),
                    Duration::from_millis(20),
                    || match count(&|r| r.started == DOWN && r.ended == DOWN) {
                        n if n >= 2 => Ok(()),
                        n => Err(format!("{n} so far")),
                    },
                );
                let r = server.get("/healthz");
                assert_eq!(r.status, 503, "still down: {}", r.describe());
            }));
            phase.store(STARTING, Ordering::SeqCst);
        });
        if let Err(panic) = while_down {
            std::panic::resume_unwind(panic);
        }
        phase.store(AFTER, Ordering::SeqCst);
        let back = Instant::now();
        timings.push(format!(
            "PostgreSQL down for {:?} in all",
            stopping.elapsed()
        ));
        wait_for(
            "/healthz healthy again once PostgreSQL is back",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || {
                let r = server.get("/healthz");
                if r.status == 200 {
                    Ok(())
                } else {
                    Err(r.describe())
                }
            },
        );
        timings.push(format!(
            "/healthz healthy {:?} after PostgreSQL accepted connections again",
            back.elapsed()
        ));
        let file = wait_for(
            "an issuance after the restart",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || {
                runs.lock()
                    .unwrap()
                    .iter()
                    .find(|r| r.started == AFTER && r.out.success())
                    .map(|r| r.file.clone())
                    .ok_or_else(|| "none yet".to_owned())
            },
        );
        timings.push(format!(
            "first issuance after the restart done {:?} after PostgreSQL was back",
            back.elapsed()
        ));
        let ocsp_since = Instant::now();
        ocsp_good(&pg.demo, &server.url(), &file, "after.der");
        let ocsp_took = ocsp_since.elapsed();
        timings.push(format!(
            "OCSP good for it within {ocsp_took:?} ({:?} after PostgreSQL was back)",
            back.elapsed()
        ));
        assert!(
            ocsp_took < Duration::from_millis(6000),
            "OCSP answered a certificate issued after the restart after {ocsp_took:?}: it \
             waited for its {SLOW_POLL_MS} ms poll, the commit went unheard"
        );
        // Let the stream run on a little after the restart.
        wait_for(
            "4 issuances after the restart",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || match count(&|r| r.started == AFTER && r.out.success()) {
                n if n >= 4 => Ok(()),
                n => Err(format!("{n} so far")),
            },
        );
        stop.store(true, Ordering::Relaxed);
    });
    server.assert_running();
    let runs = runs.into_inner().unwrap();

    // A certificate issued before the restart is still answered by the same server.
    let before = runs
        .iter()
        .find(|r| r.ended == BEFORE && r.out.success())
        .expect("an issuance before the restart");
    ocsp_good(&pg.demo, &server.url(), &before.file, "before.der");

    let mut issued = BTreeSet::new();
    // Failed processes: cut off (started before PostgreSQL was down: in flight when the stop
    // cut their connections, or turned away by the server shutting down), or refused (started
    // while it was down or starting: no server to connect to).
    let (mut refused, mut cut_off) = (0, 0);
    let mut messages = BTreeSet::new();
    for r in &runs {
        if r.out.success() {
            let serial = single_serial_line(&r.out);
            assert_eq!(
                serial_of_file(&r.file).as_deref(),
                Some(serial.as_str()),
                "{} holds the certificate it printed the serial of",
                r.file.display()
            );
            assert!(
                issued.insert(serial.clone()),
                "serial {serial} printed twice"
            );
            assert!(
                !(r.started == DOWN && r.ended == DOWN),
                "an issuance succeeded while PostgreSQL was down: {}",
                r.out.describe()
            );
            continue;
        }
        assert_one_line_error(&r.out, "store");
        assert!(
            r.ended >= STOPPING && r.started <= STARTING,
            "an issuance failed while PostgreSQL was up (phase {} to {}): {}",
            r.started,
            r.ended,
            r.out.describe()
        );
        assert!(
            !r.file.exists(),
            "a failed issuance wrote {}",
            r.file.display()
        );
        messages.insert(r.out.stderr.trim().to_owned());
        if r.started <= STOPPING {
            cut_off += 1;
        } else {
            refused += 1;
        }
    }
    let rows = nes_rows(&pg.demo);
    for serial in &issued {
        let row = rows
            .get(serial)
            .unwrap_or_else(|| panic!("issued serial {serial} is not in the store"));
        assert_eq!(row["status"], "active", "{row}");
    }
    // What the failed processes left: at most one row each, reserved (committed before the
    // stop cut them off) or, where the completion committed but its answer was lost, active.
    let mut left = BTreeMap::<String, usize>::new();
    for (serial, row) in &rows {
        if issued.contains(serial) {
            continue;
        }
        let status = row["status"].as_str().unwrap_or_default().to_owned();
        assert!(
            status == "reserved" || status == "active",
            "unexpected row after the restart: {row}"
        );
        *left.entry(status).or_default() += 1;
    }
    let unclaimed: usize = left.values().sum();
    assert!(
        unclaimed <= cut_off,
        "{unclaimed} rows {left:?} beyond the {} reported issuances, for {cut_off} processes cut off",
        issued.len()
    );
    assert_audit_intact(&pg, &config);
    assert!(
        !server.stderr().contains("panicked"),
        "{}",
        server.describe()
    );
    let (status, _) = server.terminate(GRACE);
    assert!(status.success(), "nesca serve exited with {status}");
    println!(
        "pg restart: {} issuances ({} issued, {refused} refused while down or starting, \
         {cut_off} cut off leaving {left:?}); {}; failures said: {messages:?}",
        runs.len(),
        issued.len(),
        timings.join("; ")
    );
}

// --- 2. A node killed while the other serves on -------------------------------------------

/// How one `nesca issue` of the kill test ended.
enum End {
    Finished(Output),
    /// Killed (SIGKILL) before it ended; `left_reserved`: its row was still reserved then.
    Killed {
        left_reserved: bool,
    },
}

/// One `nesca issue` of the kill test.
struct Attempt {
    given: String,
    file: PathBuf,
    /// Started after node A was killed.
    after_kill: bool,
    end: End,
}

/// How a `nesca issue` is to be ended.
#[derive(Clone, Copy, Debug)]
enum Plan {
    RunToEnd,
    /// SIGKILL this long after it started.
    KillAfter(Duration),
    /// SIGKILL the moment its own reservation is in the store (between the reservation and
    /// the storage of the certificate: a random instant seldom falls in that window).
    KillWhenReserved,
}

/// A given name of its own for issuance `i` (letters and spaces only): the row of a killed
/// process is found by it.
fn given_name(i: usize) -> String {
    let letter = |n: usize| (b'A' + (n % 26) as u8) as char;
    format!("{GIVEN} {}{}{}", letter(i / 676), letter(i / 26), letter(i))
}

/// Whether the NES row of `given` is reserved.
fn reserved_row(db: &mut ::postgres::Client, given: &str) -> bool {
    db.query_opt(
        "SELECT 1 FROM certificates WHERE given_name = $1 AND status = 'reserved'",
        &[&given],
    )
    .expect("read the store")
    .is_some()
}

/// Runs `nesca issue` through `config` for `given` to `file` as `plan` says.
fn attempt(
    pg: &PgDemo,
    db: &mut ::postgres::Client,
    config: &Path,
    csr: &Path,
    given: &str,
    file: &Path,
    plan: Plan,
) -> End {
    let args = issue_args(config, csr, given, file);
    let log = file.with_extension("log");
    let outfile = file.with_extension("out");
    let mut child = nesca_command()
        .args(&args)
        .current_dir(&pg.demo.work)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&outfile).expect("stdout file"))
        .stderr(std::fs::File::create(&log).expect("stderr file"))
        .spawn()
        .expect("start nesca issue");
    let finished = |status| {
        End::Finished(Output {
            what: format!("nesca {}", args.join(" ")),
            status,
            stdout_bytes: Vec::new(),
            stdout: std::fs::read_to_string(&outfile).unwrap_or_default(),
            stderr: std::fs::read_to_string(&log).unwrap_or_default(),
        })
    };
    let started = Instant::now();
    let limit = Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return finished(status);
        }
        let due = match plan {
            Plan::RunToEnd => false,
            Plan::KillAfter(at) => started.elapsed() >= at,
            Plan::KillWhenReserved => reserved_row(db, given),
        };
        if due || started.elapsed() >= limit {
            let _ = child.kill(); // SIGKILL
            let status = child.wait().expect("reap");
            if status.code().is_some() {
                // It ended by itself between the last look and the kill.
                return finished(status);
            }
            assert!(due, "nesca issue still running after {limit:?}: killed");
            return End::Killed {
                left_reserved: reserved_row(db, given),
            };
        }
        std::thread::sleep(match plan {
            Plan::KillWhenReserved => Duration::from_micros(200),
            _ => Duration::from_millis(1),
        });
    }
}

/// Node A of two `nesca serve` nodes on one database is killed (SIGKILL) at a random moment
/// while `nesca issue` processes run through both nodes' configurations, some of them killed
/// mid-flight too. Node B answers OCSP `good` (and /healthz 200) throughout and after; node A
/// starts again and answers. In the store: every issuance that reported success, and every
/// certificate file written, is active; no serial twice; each killed process left at most one
/// row (reserved, or active when it was killed after the storage). A node started with the
/// clock 700 s ahead resolves those reservations as failed: none is left reserved, no serial
/// is reused, and the audit chain is intact.
#[test]
fn a_node_killed_while_issuing_leaves_the_other_serving() {
    let (rng, seed) = Rng::seeded("NESCA_PG_FAULTS_SEED");
    // Shown with the test's output; NESCA_PG_FAULTS_SEED=… replays the plan.
    println!("pg_faults seed {seed}");
    let rng = Mutex::new(rng);
    let between = |lo, hi| rng.lock().unwrap().between(lo, hi);

    let pg = PgDemo::init();
    let node_a = pg.demo.config();
    let node_b = pg.node_config("node-b");
    first_checkpoint(&pg.demo, &node_a);
    let a = Server::serve_config(&pg.demo, &node_a);
    let b = Server::serve_config(&pg.demo, &node_b);
    let csr = pg.demo.csr("req", Key::P256);
    let first = pg.demo.work.join("first.pem");
    let started = Instant::now();
    issue_through(&pg, &node_b, &csr, &first).ok();
    let lifetime = started.elapsed().as_millis() as u64;
    ocsp_good(&pg.demo, &a.url(), &first, "a-first.der");
    ocsp_good(&pg.demo, &b.url(), &first, "b-first.der");
    let connect = || ::postgres::Client::connect(pg.db.url(), ::postgres::NoTls).expect("connect");

    let stop = AtomicBool::new(false);
    let a_killed = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let attempts: Mutex<Vec<Attempt>> = Mutex::new(Vec::new());
    let probes: Mutex<Vec<(bool, Result<(), String>)>> = Mutex::new(Vec::new());
    let killed_at = Mutex::new(None);
    let mut a_again = None;
    let load = Instant::now();

    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for _ in 0..2 {
            scope.spawn(|| {
                let mut db = connect();
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let config = if i.is_multiple_of(2) {
                        &node_a
                    } else {
                        &node_b
                    };
                    let plan = match between(0, 5) {
                        0 => Plan::KillWhenReserved,
                        1 | 2 => Plan::KillAfter(Duration::from_millis(between(
                            5,
                            (lifetime * 3 / 2).max(20),
                        ))),
                        _ => Plan::RunToEnd,
                    };
                    let given = given_name(i);
                    let file = pg.demo.work.join(format!("k{i}.pem"));
                    let after_kill = a_killed.load(Ordering::SeqCst);
                    let end = attempt(&pg, &mut db, config, &csr, &given, &file, plan);
                    attempts.lock().unwrap().push(Attempt {
                        given,
                        file,
                        after_kill,
                        end,
                    });
                }
            });
        }
        scope.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let after_kill = a_killed.load(Ordering::SeqCst);
                let r = ocsp_query(&pg.demo, &b.url(), &[&first], &[], &format!("p{n}.der"));
                let outcome = if r.verified() && r.status_of(&first).as_deref() == Some("good") {
                    let h = b.get("/healthz");
                    if h.status == 200 {
                        Ok(())
                    } else {
                        Err(h.describe())
                    }
                } else {
                    Err(r.describe())
                };
                probes.lock().unwrap().push((after_kill, outcome));
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        });

        // Node A dies at a random moment of the load.
        std::thread::sleep(Duration::from_millis(between(300, 2000)));
        let kill = std::process::Command::new("kill")
            .args(["-KILL", &a.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -KILL {}: {kill}", a.pid());
        a_killed.store(true, Ordering::SeqCst);
        *killed_at.lock().unwrap() = Some(Instant::now());
        wait_for(
            "node A's port closed",
            Duration::from_secs(5),
            Duration::from_millis(20),
            || match std::net::TcpStream::connect(&a.addr) {
                Ok(_) => Err("still accepting".into()),
                Err(_) => Ok(()),
            },
        );
        std::thread::sleep(Duration::from_millis(1500));

        // Node A again: it starts beside B and answers for what was issued meanwhile.
        let again = Server::serve_config(&pg.demo, &node_a);
        let healthz = again.get("/healthz");
        assert_eq!(healthz.status, 200, "{}", healthz.describe());
        let issued_after = wait_for(
            "an issuance after node A was killed",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || {
                attempts
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|t| t.after_kill && matches!(&t.end, End::Finished(o) if o.success()))
                    .map(|t| t.file.clone())
                    .ok_or_else(|| "none yet".to_owned())
            },
        );
        ocsp_good(&pg.demo, &again.url(), &issued_after, "a-after.der");
        ocsp_good(&pg.demo, &again.url(), &first, "a-again-first.der");
        ocsp_good(&pg.demo, &b.url(), &issued_after, "b-after.der");
        a_again = Some(again);

        // Enough kills, one of which left its reservation behind, and enough issuances.
        wait_for(
            "killed processes (one leaving its reservation) and issuances",
            Duration::from_secs(30),
            Duration::from_millis(20),
            || {
                let list = attempts.lock().unwrap();
                let killed = list
                    .iter()
                    .filter(|t| matches!(t.end, End::Killed { .. }))
                    .count();
                let left = list
                    .iter()
                    .filter(|t| {
                        matches!(
                            t.end,
                            End::Killed {
                                left_reserved: true
                            }
                        )
                    })
                    .count();
                let done = list
                    .iter()
                    .filter(|t| matches!(&t.end, End::Finished(o) if o.success()))
                    .count();
                if killed >= 8 && left >= 1 && done >= 12 {
                    Ok(())
                } else {
                    Err(format!(
                        "{killed} killed, {left} left reserved, {done} issued"
                    ))
                }
            },
        );
        stop.store(true, Ordering::Relaxed);
    });
    let killed_at = killed_at.into_inner().unwrap().expect("node A was killed");
    let probes = probes.into_inner().unwrap();
    let failures: Vec<&String> = probes
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    assert!(
        failures.is_empty(),
        "node B failed {} of {} probes; the first: {}",
        failures.len(),
        probes.len(),
        failures[0]
    );
    let probes_after = probes.iter().filter(|(after, _)| *after).count();
    assert!(
        probes_after >= 5,
        "node B was asked only {probes_after} times after node A was killed"
    );
    let a_again = a_again.expect("node A started again");
    ocsp_good(&pg.demo, &b.url(), &first, "b-last.der");
    for node in [a_again, b] {
        let (status, _) = node.terminate(GRACE);
        assert!(status.success(), "nesca serve exited with {status}");
    }
    drop(a);
    let attempts = attempts.into_inner().unwrap();

    // Every issuance that reported success, and every certificate file, is in the store.
    let mut issued = BTreeSet::new();
    let mut killed = 0;
    for t in &attempts {
        match &t.end {
            End::Finished(out) => {
                assert!(out.success(), "an issuance failed: {}", out.describe());
                let serial = single_serial_line(out);
                assert_eq!(serial_of_file(&t.file).as_deref(), Some(serial.as_str()));
                assert!(
                    issued.insert(serial.clone()),
                    "serial {serial} printed twice"
                );
            }
            End::Killed { .. } => killed += 1,
        }
    }
    let rows = nes_rows(&pg.demo);
    let mut files = 0;
    for t in &attempts {
        let Some(serial) = serial_of_file(&t.file) else {
            continue;
        };
        files += 1;
        let row = rows.get(&serial).unwrap_or_else(|| {
            panic!("{} (serial {serial}) is not in the store", t.file.display())
        });
        assert_eq!(row["status"], "active", "{}: {row}", t.file.display());
    }
    // What the killed processes left: at most one row each, under their own given names.
    let killed_names: BTreeSet<&str> = attempts
        .iter()
        .filter(|t| matches!(t.end, End::Killed { .. }))
        .map(|t| t.given.as_str())
        .collect();
    let first_serial = serial_of_file(&first).expect("first.pem");
    let mut reserved = BTreeSet::new();
    let mut left_active = 0;
    for (serial, row) in &rows {
        let status = row["status"].as_str().unwrap_or_default();
        if issued.contains(serial) || *serial == first_serial {
            assert_eq!(status, "active", "{row}");
            continue;
        }
        let given = row["given_name"].as_str().unwrap_or_default();
        assert!(
            killed_names.contains(given),
            "a row no killed process can have left: {row}"
        );
        match status {
            "reserved" => {
                reserved.insert(serial.clone());
            }
            "active" => left_active += 1,
            _ => panic!("unexpected status left by a killed process: {row}"),
        }
    }
    let per_name = rows
        .values()
        .filter(|r| killed_names.contains(r["given_name"].as_str().unwrap_or_default()))
        .fold(BTreeMap::<&str, usize>::new(), |mut m, r| {
            *m.entry(r["given_name"].as_str().unwrap_or_default())
                .or_default() += 1;
            m
        });
    assert!(
        per_name.values().all(|&n| n == 1),
        "a killed process left more than one row: {per_name:?}"
    );
    assert!(!reserved.is_empty(), "no killed process left a reservation");

    // A node started with its clock 700 s ahead finds every reservation older than ten
    // minutes: each becomes failed, none is left reserved.
    let offset = Server::serve_with_env(&pg.demo, &[("NESCA_TEST_CLOCK_OFFSET_SECONDS", "700")]);
    let after = nes_rows(&pg.demo);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        rows.keys().collect::<Vec<_>>(),
        "the rows are the same serials"
    );
    for (serial, row) in &after {
        let want = if reserved.contains(serial) {
            "failed"
        } else {
            rows[serial]["status"].as_str().unwrap_or_default()
        };
        assert_eq!(row["status"], want, "{row}");
    }
    for serial in &reserved {
        assert!(
            offset.stderr().contains(serial.as_str()),
            "no log line names the resolved reservation {serial}: {}",
            offset.describe()
        );
    }
    let (status, _) = offset.terminate(GRACE);
    assert!(status.success(), "nesca serve exited with {status}");
    // The CA goes on issuing, under a serial of its own.
    let last = pg.demo.work.join("last.pem");
    let out = issue_through(&pg, &node_b, &csr, &last).ok();
    let serial = single_serial_line(&out);
    assert!(!after.contains_key(&serial), "serial {serial} reused");
    assert!(nes_rows(&pg.demo)[&serial]["status"] == "active");
    assert_audit_intact(&pg, &node_a);
    println!(
        "pg node kill: node A killed {:?} into the load; {} issuances ({} issued, {killed} killed \
         leaving {} reserved and {left_active} active), {files} certificate files; node B \
         answered {} probes ({probes_after} after the kill)",
        killed_at.duration_since(load),
        attempts.len(),
        issued.len(),
        reserved.len(),
        probes.len()
    );
}

// --- 3. The crash of crash.rs on PostgreSQL ----------------------------------------------

/// Drops the database a killed `nesca bench issue --postgres-url` left behind (its URL is in
/// the demo's configuration).
struct BenchDatabase<'a>(&'a Demo);

impl Drop for BenchDatabase<'_> {
    fn drop(&mut self) {
        let Ok(text) = std::fs::read_to_string(self.0.config()) else {
            return;
        };
        let Some(name) = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("postgres_url = \""))
            .map(|url| url.trim_end_matches('"'))
            .map(|url| url.split('?').next().unwrap_or(url))
            .and_then(|url| url.rsplit('/').next())
            .filter(|n| n.starts_with("nesca_bench_"))
        else {
            return;
        };
        let _ = ca_core::store::ScratchDatabase::drop_named(&test_server_url(), name);
    }
}

/// crash.rs's crash on a PostgreSQL store: `nesca bench issue --child --postgres-url`, 8
/// requests in flight through one writer, killed (SIGKILL) mid-flight; the audit chain
/// verifies, every row is issued or still reserved, and the CA issues again.
#[test]
fn a_process_killed_while_issuing_leaves_a_consistent_postgres_store() {
    // The server to this test's and the others' use, not restarted meanwhile (the demo itself
    // is not used: the benchmark makes its own, on a database of its own).
    let _shared = PgDemo::init();
    let demo = Demo::empty();
    let _drop = BenchDatabase(&demo);
    let server = test_server_url();
    crate::crash::kill_while_issuing(&demo, &["--postgres-url", &server]);
    let text = std::fs::read_to_string(demo.config()).expect("the benchmark's configuration");
    assert!(
        text.contains("postgres_url = \"") && text.contains("/nesca_bench_"),
        "the benchmark's store is not PostgreSQL: {text}"
    );

    // What the killed process left reserved, a node started with the clock 700 s ahead
    // resolves as failed; nothing else changes.
    let before: BTreeMap<String, String> = demo
        .cert_list()
        .iter()
        .map(|r| {
            (
                r["serial"].as_str().expect("serial").to_owned(),
                r["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect();
    crate::support::server::server_demo_config(&demo.config());
    let text = std::fs::read_to_string(demo.config()).expect("nesca.toml");
    let text = toml_replace(&text, "admin", "listen", "127.0.0.1:0");
    let text = toml_replace(&text, "portal", "listen", "127.0.0.1:0");
    std::fs::write(demo.config(), text).expect("write nesca.toml");
    first_checkpoint(&demo, &demo.config());
    let node = Server::serve_with_env(&demo, &[("NESCA_TEST_CLOCK_OFFSET_SECONDS", "700")]);
    let after = demo.cert_list();
    assert_eq!(after.len(), before.len(), "rows appeared or went");
    for row in &after {
        let was = &before[row["serial"].as_str().expect("serial")];
        let want = if was == "reserved" { "failed" } else { was };
        assert_eq!(row["status"], want, "was {was}: {row}");
    }
    let (status, _) = node.terminate(GRACE);
    assert!(status.success(), "nesca serve exited with {status}");
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&demo.config())])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
    let reserved = before.values().filter(|s| *s == "reserved").count();
    println!(
        "pg crash: {} rows after the kill, {reserved} reserved, resolved as failed at a later start",
        before.len()
    );
}
