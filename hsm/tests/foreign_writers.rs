//! Processes opening one SoftHSM token while other programs log in to it again and again.
//!
//! Every SoftHSM `C_Login` rewrites the token's metadata file (truncated, then written after
//! SoftHSM's file lock is released), and a process reading the token store at that instant sees
//! no token, a token with a blank label, or `CKR_GENERAL_ERROR`. nesca processes take turns
//! (`store_lock`), but a program that is not nesca (here: plain PKCS#11 calls, as
//! `softhsm2-util` or another application make them) does not; `Hsm::open` must read the store
//! again until it succeeds. Its own test binary: the children are this binary run again, and
//! SoftHSM reads its configuration once per process.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;
use hsm::{Hsm, HsmConfig};
use secrecy::SecretString;

use common::MODULE;
const LABEL: &str = "foreign-writers";
const USER_PIN: &str = "foreign-user-1234";

/// The child's role (`writer` or `opener`) and the `softhsm2.conf` to use.
const ROLE_ENV: &str = "NESCA_HSM_TEST_ROLE";
const CONF_ENV: &str = "NESCA_HSM_TEST_CONF";
/// A writer stops once this file exists.
const STOP_ENV: &str = "NESCA_HSM_TEST_STOP";

const WRITERS: usize = 2;
const OPENERS: usize = 24;

fn pin() -> SecretString {
    SecretString::from(USER_PIN.to_string())
}

/// A child: this test binary running [`child`] alone with `role`.
fn spawn(role: &str, conf: &Path, stop: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(CONF_ENV, conf)
        .env(STOP_ENV, stop)
        .env_remove("SOFTHSM2_CONF")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn every_opener_succeeds_while_other_programs_log_in() {
    assert!(Path::new(MODULE).is_file(), "apt-get install -y softhsm2");
    let dir = tempfile::tempdir().unwrap();
    let conf = common::new_token(dir.path(), LABEL, "foreign-so-5678", &pin());
    let stop = dir.path().join("stop");

    // The writers log in and out as fast as they can; wait until each is at it.
    let mut writers: Vec<_> = (0..WRITERS)
        .map(|_| spawn("writer", &conf, &stop))
        .collect();
    for w in &mut writers {
        let mut lines = BufReader::new(w.stdout.take().unwrap()).lines();
        assert!(
            lines.any(|l| l.is_ok_and(|l| l.ends_with("writer: logging in"))),
            "a writer did not start"
        );
        // Keep its stdout drained (it prints nothing more).
        std::thread::spawn(move || lines.for_each(drop));
    }

    let openers: Vec<_> = (0..OPENERS)
        .map(|_| spawn("opener", &conf, &stop))
        .collect();
    let outputs: Vec<_> = openers
        .into_iter()
        .map(|o| o.wait_with_output().unwrap())
        .collect();
    std::fs::write(&stop, b"").unwrap();
    let logins: Vec<u64> = writers
        .into_iter()
        .map(|w| {
            let out = w.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "a writer failed: {err}");
            err.lines()
                .find_map(|l| l.strip_prefix("writer: logins "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        })
        .collect();

    let failed: Vec<String> = outputs
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| {
            let err = String::from_utf8_lossy(&o.stderr);
            err.lines()
                .find(|l| l.contains("Hsm::open failed"))
                .unwrap_or(&err)
                .to_string()
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {OPENERS} openers failed (the writers logged in {logins:?} times):\n{}",
        failed.len(),
        failed.join("\n")
    );
    let retried = outputs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stdout).contains("retried"))
        .count();
    eprintln!("{retried} of {OPENERS} openers read the store again; the writers logged in {logins:?} times");
    assert!(
        logins.iter().all(|n| *n > 0),
        "the writers never logged in: {logins:?}"
    );
}

/// Not a test of its own: with [`ROLE_ENV`] set, a writer or an opener of the token that
/// [`CONF_ENV`] names.
#[test]
fn child() {
    let Some(role) = std::env::var_os(ROLE_ENV) else {
        return;
    };
    let conf = PathBuf::from(std::env::var_os(CONF_ENV).unwrap());
    let stop = PathBuf::from(std::env::var_os(STOP_ENV).unwrap());
    match role.to_str() {
        Some("writer") => writer(&conf, &stop),
        Some("opener") => opener(conf),
        other => panic!("unknown role {other:?}"),
    }
}

/// Logs in and out until `stop` exists (20 s at most), with plain PKCS#11 calls: no
/// `store_lock`, as any program that is not nesca.
fn writer(conf: &Path, stop: &Path) {
    std::env::set_var("SOFTHSM2_CONF", conf);
    let ctx = Pkcs11::new(MODULE).unwrap();
    // The other writer may be logging in already: find the token as nesca does, again and again.
    let mut slot = None;
    for _ in 0..500 {
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        slot = ctx.get_slots_with_token().unwrap().into_iter().find(|s| {
            ctx.get_token_info(*s)
                .is_ok_and(|i| i.label().trim_end() == LABEL)
        });
        if slot.is_some() {
            break;
        }
        ctx.clone().finalize().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let slot = slot.expect("the writer never saw the token");
    println!("writer: logging in");
    let started = Instant::now();
    let mut logins = 0u64;
    while !stop.exists() && started.elapsed() < Duration::from_secs(20) {
        let session = ctx.open_rw_session(slot).unwrap();
        // What SoftHSM answers while the other writer rewrites the file does not matter here.
        if session.login(UserType::User, Some(&pin())).is_ok() {
            logins += 1;
            let _ = session.logout();
        }
    }
    eprintln!("writer: logins {logins}");
}

/// `Hsm::open`, as every nesca command does first; says whether it had to read the store again.
fn opener(conf: PathBuf) {
    let logs = tracing_capture();
    let opened = Hsm::open(HsmConfig {
        module: MODULE.into(),
        token_label: LABEL.into(),
        pin: pin(),
        pool_size: 1,
        ocsp_pool_size: 0,
        softhsm_conf: Some(conf),
    });
    match opened {
        Ok(_) => println!("opened{}", if logs.retried() { " (retried)" } else { "" }),
        Err(e) => panic!("Hsm::open failed: {e}"),
    }
}

/// A `tracing` subscriber of its own (the crate has no subscriber crate): it notes whether
/// `Hsm::open` warned that it read the token store again.
fn tracing_capture() -> &'static Capture {
    static CAPTURE: Capture = Capture(AtomicBool::new(false));
    tracing::subscriber::set_global_default(&CAPTURE).unwrap();
    &CAPTURE
}

struct Capture(AtomicBool);

impl Capture {
    fn retried(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl tracing::Subscriber for &'static Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message"
                    && format!("{value:?}").contains("token not readable yet")
                {
                    self.0 = true;
                }
            }
        }
        let mut message = Message(false);
        event.record(&mut message);
        if message.0 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
