//! A process killed while SoftHSM rewrites its token metadata never costs the CA its token.
//!
//! SoftHSM 2.6 rewrites `<tokendir>/<token>/token.object` in place at every login: it
//! truncates the file, then writes it again. A process killed in between used to leave it
//! empty, and every later command failed with `no token labelled "nesca-demo"`: the CA keys
//! were gone for good. nesca keeps a copy beside it (`token.object.nesca-copy`, which SoftHSM
//! ignores) and puts it back before SoftHSM reads the token (hsm/src/softhsm_guard.rs).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::*;

const COPY: &str = "token.object.nesca-copy";
const RESTORED: &str = "SoftHSM token metadata restored from nesca's copy";
/// How long nesca lets a damaged token.object be before it restores it (a live process may be
/// between SoftHSM's truncation and its write), and a little more.
const SETTLE_MS: u64 = 520;

/// The directory of the demo's one token.
#[track_caller]
fn token_dir(demo: &Demo) -> PathBuf {
    let tokens: Vec<PathBuf> = fs::read_dir(demo.path("tokens"))
        .expect("the demo's token directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(tokens.len(), 1, "the demo has one token: {tokens:?}");
    tokens.into_iter().next().expect("one token")
}

/// The token's key objects (`<uuid>.object`), sorted, with their contents.
fn key_objects(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .expect("token directory")
        .map(|e| e.expect("directory entry"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".object") && n != "token.object")
        .map(|n| {
            let bytes = fs::read(dir.join(&n)).expect("key object");
            (n, bytes)
        })
        .collect();
    v.sort();
    v
}

/// `nesca ARGS` in the demo's work directory with warnings logged to stderr.
#[track_caller]
fn nesca_logging(demo: &Demo, args: &[&str]) -> Output {
    let mut cmd = nesca_command();
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .current_dir(&demo.work);
    run(cmd)
}

/// Every CA key on the token signs: the issuing CA's (a certificate and its CRL), the root's
/// (its CRL) and the OCSP signer's (a `good` answer from `nesca ocsp`).
#[track_caller]
fn every_key_signs(demo: &Demo, name: &str) {
    let config = demo.config();
    let csr = demo.csr(name, Key::P256);
    let (cert, _) = demo.issue_ok(&csr, &format!("{name}.pem"), &[]);
    assert_verifies(&demo.dir, &cert);
    for ca in ["nes-ca", "root-ca"] {
        let out = demo.work.join(format!("{name}-{ca}.crl"));
        demo.nesca(&["crl", "--config", s(&config), "--ca", ca, "--out", s(&out)])
            .ok();
    }
    let responder = crate::support::server::Server::ocsp(demo);
    crate::support::ocsp::ocsp_good(demo, &responder.url(), &cert, &format!("{name}.ocsp"));
}

/// The crash between SoftHSM's truncation and its write, made by hand: the next command puts
/// the token's metadata back, says so, and every key signs again. Before that, the copy nesca
/// keeps beside the token does not disturb SoftHSM.
#[test]
fn an_emptied_token_object_is_restored_by_the_next_command() {
    let demo = crate::support::server::server_demo();
    let dir = token_dir(&demo);
    let object = dir.join("token.object");
    let copy = dir.join(COPY);
    let keys = key_objects(&dir);
    assert!(keys.len() >= 6, "the demo's keys: {keys:?}");

    // The first command makes the copy; SoftHSM ignores it: the token and every key are found.
    every_key_signs(&demo, "before");
    let token_bytes = fs::read(&object).expect("token.object");
    let copy_bytes = fs::read(&copy).expect("nesca's copy of token.object");
    assert_eq!(
        copy_bytes[8..],
        token_bytes[8..],
        "the copy holds the token's metadata (all but SoftHSM's generation number)"
    );
    assert_eq!(
        fs::metadata(&copy).expect("copy").permissions().mode() & 0o777,
        0o600
    );

    // What a process killed between SoftHSM's ftruncate and its write leaves.
    fs::write(&object, b"").expect("empty token.object");
    let csr = demo.csr("after", Key::P256);
    let out = demo.work.join("after.pem");
    let config = demo.config();
    let issued = nesca_logging(&demo, &issue_args(&config, &csr, &out)).ok();
    assert!(
        issued.stderr.contains(RESTORED) && issued.stderr.contains(s(&dir)),
        "no warning naming the restored token: {}",
        issued.describe()
    );
    assert_verifies(&demo.dir, &out);
    let restored = fs::read(&object).expect("token.object");
    assert_eq!(
        restored[8..],
        copy_bytes[8..],
        "token.object is not the copy"
    );
    assert_eq!(key_objects(&dir), keys, "a key object changed");

    every_key_signs(&demo, "restored");
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&demo.config())])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
}

/// With no copy to restore from (a token damaged before nesca ever kept one), nesca says which
/// file is damaged and how, and leaves the token's files as they are.
#[test]
fn a_damaged_token_object_without_a_copy_is_named_and_left_alone() {
    let demo = Demo::init();
    let dir = token_dir(&demo);
    let object = dir.join("token.object");
    let keys = key_objects(&dir);
    let _ = fs::remove_file(dir.join(COPY));
    fs::write(&object, b"").expect("empty token.object");

    let crl = demo.work.join("c.crl");
    let out = demo.nesca(&["crl", "--config", s(&demo.config()), "--out", s(&crl)]);
    assert!(!out.success(), "{}", out.describe());
    for phrase in [s(&object), "empty", "no copy"] {
        assert!(
            out.stderr.contains(phrase),
            "the error does not say {phrase:?}: {}",
            out.describe()
        );
    }
    assert_eq!(fs::read(&object).expect("token.object"), b"", "touched");
    assert!(
        !dir.join(COPY).exists(),
        "a copy was made from a damaged file"
    );
    assert_eq!(key_objects(&dir), keys, "a key object changed");
}

/// splitmix64: a small PRNG, seeded from the clock (or NESCA_TOKEN_CRASH_SEED to replay).
struct Rng(u64);

impl Rng {
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

/// When a round's `nesca issue` is killed.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// This long after it was started.
    After(Duration),
    /// The moment `token.object` is seen empty: inside SoftHSM's rewrite, the instant that
    /// used to lose the token (a random instant almost never falls in that window).
    WhenEmptied,
}

/// How one round ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Killed; and whether token.object was empty just after.
    Killed { left_empty: bool },
    /// Ran to its end before the kill, with this success.
    Finished(bool),
}

/// The arguments of `nesca issue` of the test holder's certificate from `csr` to `out`.
fn issue_args<'a>(config: &'a Path, csr: &'a Path, out: &'a Path) -> [&'a str; 13] {
    [
        "issue",
        "--config",
        s(config),
        "--csr",
        s(csr),
        "--tckn",
        TCKN,
        "--given-name",
        GIVEN,
        "--surname",
        SURNAME,
        "--out",
        s(out),
    ]
}

/// Starts `nesca issue` (stderr with warnings to `log`) and kills it as `kill` says.
fn round(demo: &Demo, csr: &Path, out: &Path, log: &Path, object: &Path, kill: Kill) -> End {
    let config = demo.config();
    let mut child = nesca_command()
        .args(issue_args(&config, csr, out))
        .env("RUST_LOG", "warn")
        .current_dir(&demo.work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).expect("log file"))
        .spawn()
        .expect("start nesca issue");
    let started = Instant::now();
    // Bounded: a process still running after this is killed whatever the plan.
    let limit = Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return End::Finished(status.success());
        }
        let now = started.elapsed();
        let due = match kill {
            Kill::After(at) => now >= at,
            Kill::WhenEmptied => fs::metadata(object).is_ok_and(|m| m.len() == 0),
        };
        if due || now >= limit {
            let _ = child.kill(); // SIGKILL
            let status = child.wait().expect("reap");
            if status.code().is_some() {
                // It ended by itself between the last look and the kill.
                return End::Finished(status.success());
            }
            let left_empty = fs::metadata(object).is_ok_and(|m| m.len() == 0);
            return End::Killed { left_empty };
        }
        if let Kill::After(at) = kill {
            std::thread::sleep((at - now).min(Duration::from_millis(1)));
        }
    }
}

/// Hundreds of `nesca issue` processes, each killed (SIGKILL) at a random instant or at the
/// very moment SoftHSM has emptied `token.object`: the token survives every one (each next
/// process restores what the last one left), the CA still signs, the audit chain verifies,
/// every certificate a killed process wrote out whole is in the store, and every row of the
/// store is issued or still reserved.
#[test]
fn processes_killed_at_random_instants_never_lose_the_token() {
    /// Rounds, and how many of them aim at the rewrite (each of which that lands costs the
    /// next process SoftHSM's settling time, 0.5 s, before it restores).
    const ROUNDS: usize = 300;
    const AIMED: usize = 40;
    let seed = std::env::var("NESCA_TOKEN_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_nanos() as u64
        });
    // Shown with the test's output when it fails; NESCA_TOKEN_CRASH_SEED=… replays the plan.
    println!("token_crash seed {seed}");
    let mut rng = Rng(seed);

    let demo = Demo::init();
    let dir = token_dir(&demo);
    let object = dir.join("token.object");
    let keys = key_objects(&dir);
    let csr = demo.csr("req", Key::P256);
    let logs = demo.work.join("logs");
    fs::create_dir(&logs).expect("log directory");

    // How long one issuance takes here: random kills spread over about that.
    let started = Instant::now();
    demo.issue_ok(&csr, "first.pem", &[]);
    let lifetime = started.elapsed().as_millis() as u64;
    let spread = (lifetime * 3 / 2).max(20);

    let mut aimed_rounds = std::collections::BTreeSet::new();
    while aimed_rounds.len() < AIMED {
        aimed_rounds.insert(rng.between(0, ROUNDS as u64 - 1) as usize);
    }
    let looped = Instant::now();
    let (mut killed, mut finished) = (0, 0);
    let (mut emptied_aimed, mut emptied_at_random) = (0, 0);
    for i in 0..ROUNDS {
        // A process that finds token.object empty waits SETTLE before it restores it: most of
        // those are killed after that (at a random instant of the rest of their work), some
        // during it (the next one restores then).
        let pending = fs::metadata(&object).is_ok_and(|m| m.len() == 0);
        let offset = if pending && rng.between(0, 3) != 0 {
            SETTLE_MS
        } else {
            0
        };
        let kill = if aimed_rounds.contains(&i) && !pending {
            Kill::WhenEmptied
        } else if rng.between(0, 9) == 0 {
            // Now and then later, up to a few hundred ms.
            Kill::After(Duration::from_millis(offset + rng.between(2, 300)))
        } else {
            Kill::After(Duration::from_millis(offset + rng.between(2, spread)))
        };
        let out = demo.work.join(format!("k{i}.pem"));
        let log = logs.join(format!("k{i}.log"));
        match round(&demo, &csr, &out, &log, &object, kill) {
            End::Killed { left_empty } => {
                killed += 1;
                if left_empty && !pending {
                    match kill {
                        Kill::WhenEmptied => emptied_aimed += 1,
                        Kill::After(_) => emptied_at_random += 1,
                    }
                }
            }
            End::Finished(ok) => {
                finished += 1;
                // One process at a time: nothing but a kill may make it fail.
                assert!(
                    ok,
                    "seed {seed}: round {i} ({kill:?}) ran to its end and failed:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }
    let loop_time = looped.elapsed();
    let restored = fs::read_dir(&logs)
        .expect("logs")
        .filter(|e| {
            let path = e.as_ref().expect("log").path();
            fs::read_to_string(path).is_ok_and(|t| t.contains(RESTORED))
        })
        .count();
    let emptied = emptied_aimed + emptied_at_random;
    println!(
        "token_crash: {ROUNDS} rounds in {loop_time:?} (issuance {lifetime} ms): {killed} killed, \
         {finished} ran to their end; token.object left empty by {emptied_aimed} aimed kills and \
         {emptied_at_random} random ones, restored by {restored} processes"
    );

    // The CA still signs, with the same keys.
    let (cert, _) = demo.issue_ok(&csr, "after.pem", &[]);
    assert_verifies(&demo.dir, &cert);
    assert_eq!(key_objects(&dir), keys, "seed {seed}: a key object changed");
    assert!(
        emptied > 0,
        "seed {seed}: no kill caught SoftHSM's rewrite of token.object: the loop proved nothing"
    );
    assert!(
        restored > 0,
        "seed {seed}: token.object was left empty {emptied} times and never restored"
    );

    let config = demo.config();
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&config)])
        .ok();
    assert!(
        audit.stdout.contains("intact"),
        "seed {seed}: {}",
        audit.describe()
    );

    // Every row issued (with its issue time) or still reserved.
    let rows = demo.cert_list();
    for row in &rows {
        let status = row["status"].as_str().unwrap_or_default();
        assert!(
            status == "active" || status == "reserved",
            "seed {seed}: unexpected status after the kills: {row}"
        );
        if status == "active" {
            assert!(
                row["issued_at"].is_string(),
                "seed {seed}: an issued row without its issue time: {row}"
            );
        }
    }
    // Every certificate file a killed process wrote out whole is in the store, issued.
    let mut whole = 0;
    for i in 0..ROUNDS {
        let file = demo.work.join(format!("k{i}.pem"));
        if !file.is_file() {
            continue;
        }
        let read = openssl_may_fail(&["x509", "-in", s(&file), "-noout", "-serial"]);
        let Some(serial) = read.stdout.trim().strip_prefix("serial=") else {
            continue; // empty or cut short: the process was killed while writing it
        };
        whole += 1;
        let serial = serial.to_ascii_lowercase();
        let shown = demo.cert_show(&serial);
        assert_eq!(
            shown["status"].as_str(),
            Some("active"),
            "seed {seed}: k{i}.pem (serial {serial}) is not issued in the store: {shown}"
        );
    }
    let active = rows.iter().filter(|r| r["status"] == "active").count();
    println!(
        "token_crash: {whole} whole certificate files, {active} issued rows, {} reserved",
        rows.len() - active
    );
    assert!(
        active >= whole + 2,
        "seed {seed}: {active} issued rows for {whole} whole files and 2 more issuances"
    );
}
