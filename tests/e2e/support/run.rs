//! Running `nesca` and `openssl` as child processes under a time limit, and what they left
//! behind ([`Output`]).
//!
//! Nothing here changes the environment or the working directory of the test process: every
//! setting travels on the `Command` it is meant for, so the tests run in parallel safely.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Longest any external command may run before the test fails (and the command is killed).
const TIME_LIMIT: Duration = Duration::from_secs(180);

/// What a finished command left behind.
pub(crate) struct Output {
    pub what: String,
    pub status: ExitStatus,
    pub stdout_bytes: Vec<u8>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub(crate) fn success(&self) -> bool {
        self.status.success()
    }

    /// The command, its exit status and its output, for assertion messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.status,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }

    /// Panics with the whole output unless the command succeeded.
    #[track_caller]
    pub(crate) fn ok(self) -> Output {
        assert!(self.success(), "command failed: {}", self.describe());
        self
    }
}

/// Runs `cmd` (stdin closed, stdout and stderr captured) and kills it after [`TIME_LIMIT`].
#[track_caller]
pub(crate) fn run(mut cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Read both pipes on their own threads so that a chatty child never blocks on a full pipe.
    let mut out_pipe = child.stdout.take().expect("stdout is piped");
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > TIME_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {TIME_LIMIT:?}: killed");
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    let stdout_bytes = out_reader.join().expect("stdout reader");
    let stderr_bytes = err_reader.join().expect("stderr reader");
    Output {
        what,
        status,
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr: String::from_utf8_lossy(&stderr_bytes).into_owned(),
    }
}

/// A `Command` for the `nesca` binary Cargo built for this test run, with a clean environment
/// for the things nesca must not depend on: the demo config names its own `softhsm2.conf`, so
/// nesca sets `SOFTHSM2_CONF` itself; and refusals are checked at the default verbosity.
pub(crate) fn nesca_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nesca"));
    for var in NOT_INHERITED {
        cmd.env_remove(var);
    }
    cmd
}

/// The test process's variables nesca does not get (they would change what it does).
pub(crate) const NOT_INHERITED: [&str; 4] =
    ["SOFTHSM2_CONF", "RUST_LOG", "RUST_BACKTRACE", "NESCA_LOG"];

/// Runs `openssl ARGS` and panics unless it succeeds.
#[track_caller]
pub(crate) fn openssl(args: &[&str]) -> Output {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    run(cmd).ok()
}

/// Runs `openssl ARGS`, whatever its outcome.
#[track_caller]
pub(crate) fn openssl_may_fail(args: &[&str]) -> Output {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    run(cmd)
}

/// A path as `&str` (temporary directories have ASCII names).
pub(crate) fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}
