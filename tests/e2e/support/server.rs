//! A running `nesca serve` or `nesca ocsp` as a child process of the test.
//!
//! The server listens on 127.0.0.1 port 0; the test learns the real port from the one line the
//! server prints on stdout once it accepts connections. The [`Server`] guard kills the child
//! when the test panics, so no server outlives its test.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::demo::{Demo, LINT_URL};
use super::http::{http, HttpResponse};
use super::run::{nesca_command, s, NOT_INHERITED};
use super::toml::{toml_replace, toml_replace_raw};

/// Longest a server may take to print its `listening on` line.
const START_LIMIT: Duration = Duration::from_secs(60);

/// `server.shutdown_grace_seconds` of the demo configuration.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

/// A demo CA (`init --demo --public-url LINT_URL`, so that pkilint has no internal-domain
/// finding) configured for tests: the public listener on port 0, and the OCSP responder
/// polling the store every 50 ms.
#[track_caller]
pub(crate) fn server_demo() -> Demo {
    let demo = Demo::init_with(&["--public-url", LINT_URL]);
    server_demo_config(&demo.config());
    demo
}

/// Rewrites the configuration at `path` as [`server_demo`]'s: the public and OCSP listeners
/// on port 0, the OCSP responder polling the store every 50 ms.
pub(crate) fn server_demo_config(path: &Path) {
    let text = fs::read_to_string(path).expect("nesca.toml");
    let text = toml_replace(&text, "server", "listen", "127.0.0.1:0");
    let text = toml_replace(&text, "ocsp", "listen", "127.0.0.1:0");
    let text = toml_replace_raw(&text, "ocsp", "poll_interval_ms", "50");
    fs::write(path, text).expect("write nesca.toml");
}

/// A `nesca serve` / `nesca ocsp` child process. Dropping it kills the child.
pub(crate) struct Server {
    child: Child,
    what: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stdout_lines: Arc<Mutex<Vec<String>>>,
    stdout_thread: Option<JoinHandle<()>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<JoinHandle<()>>,
    pin: Option<String>,
    exited: Option<ExitStatus>,
}

impl Server {
    /// `nesca serve --config DEMO/nesca.toml`, once it listens.
    #[track_caller]
    pub(crate) fn serve(demo: &Demo) -> Server {
        let config = demo.config();
        Server::start(
            demo,
            &["serve", "--config", s(&config)],
            "nesca serve: listening on http://",
        )
    }

    /// `nesca serve --config CONFIG` (a node's configuration beside the demo's), once it
    /// listens.
    #[track_caller]
    pub(crate) fn serve_config(demo: &Demo, config: &Path) -> Server {
        Server::start(
            demo,
            &["serve", "--config", s(config)],
            "nesca serve: listening on http://",
        )
    }

    /// [`Server::serve`] with these variables added to its environment.
    #[track_caller]
    pub(crate) fn serve_with_env(demo: &Demo, env: &[(&str, &str)]) -> Server {
        let config = demo.config();
        Server::start_with_env(
            demo,
            &["serve", "--config", s(&config)],
            "nesca serve: listening on http://",
            env,
        )
    }

    /// `nesca ocsp --config DEMO/nesca.toml --listen 127.0.0.1:0`, once it listens.
    #[track_caller]
    pub(crate) fn ocsp(demo: &Demo) -> Server {
        let config = demo.config();
        Server::start(
            demo,
            &["ocsp", "--config", s(&config), "--listen", "127.0.0.1:0"],
            "nesca ocsp: listening on http://",
        )
    }

    #[track_caller]
    fn start(demo: &Demo, args: &[&str], banner: &str) -> Server {
        Server::start_with_env(demo, args, banner, &[])
    }

    /// [`Server::serve_with_env`] started through `sh`, which first opens `file` as descriptor
    /// 7 without close-on-exec: `nesca serve` inherits it, as it might inherit a descriptor of
    /// whatever started it.
    #[track_caller]
    pub(crate) fn serve_inheriting(demo: &Demo, env: &[(&str, &str)], file: &Path) -> Server {
        let mut cmd = Command::new("sh");
        for var in NOT_INHERITED {
            cmd.env_remove(var);
        }
        cmd.args(["-c", "exec 7<\"$1\"; shift; exec \"$@\"", "sh"])
            .arg(file)
            .arg(nesca_command().get_program());
        let config = demo.config();
        Server::launch(
            demo,
            cmd,
            &["serve", "--config", s(&config)],
            "nesca serve: listening on http://",
            env,
        )
    }

    /// `WRAPPER… nesca serve --config …`: the server run by another program (such as
    /// `faketime -f +100d`, which moves the system clock the release binary reads).
    #[track_caller]
    pub(crate) fn serve_wrapped(demo: &Demo, wrapper: &[&str]) -> Server {
        let mut cmd = Command::new(wrapper[0]);
        for var in NOT_INHERITED {
            cmd.env_remove(var);
        }
        cmd.args(&wrapper[1..]).arg(nesca_command().get_program());
        let config = demo.config();
        Server::launch(
            demo,
            cmd,
            &["serve", "--config", s(&config)],
            "nesca serve: listening on http://",
            &[],
        )
    }

    #[track_caller]
    fn start_with_env(demo: &Demo, args: &[&str], banner: &str, env: &[(&str, &str)]) -> Server {
        Server::launch(demo, nesca_command(), args, banner, env)
    }

    /// Starts `cmd` (nesca, or what runs it) with `-v` and `args`.
    #[track_caller]
    fn launch(
        demo: &Demo,
        mut cmd: Command,
        args: &[&str],
        banner: &str,
        env: &[(&str, &str)],
    ) -> Server {
        cmd.envs(env.iter().copied());
        // -v: the server's log goes to stderr, shown when an assertion fails.
        cmd.arg("-v")
            .args(args)
            .current_dir(&demo.work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = format!("{cmd:?}");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_thread = {
            let stderr = stderr.clone();
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match stderr_pipe.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => stderr.lock().unwrap().extend_from_slice(&chunk[..n]),
                    }
                }
            })
        };
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout_thread = {
            let lines = stdout_lines.clone();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            })
        };
        let pin = fs::read_to_string(demo.dir.join("user-pin"))
            .ok()
            .map(|p| p.trim().to_string())
            .filter(|p| p.len() >= 8);
        // The guard exists from here on: a panic below kills the child.
        let mut server = Server {
            child,
            what,
            addr: String::new(),
            stdout_lines,
            stdout_thread: Some(stdout_thread),
            stderr,
            stderr_thread: Some(stderr_thread),
            pin,
            exited: None,
        };
        let deadline = Instant::now() + START_LIMIT;
        let line = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!(
                "no `{banner}…` line within {START_LIMIT:?}: {}",
                server.describe()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                // stdout closed: the server exited (or is about to).
                server.wait_exit(Duration::from_secs(10));
                panic!(
                    "the server closed stdout before listening: {}",
                    server.describe()
                );
            }
        };
        let Some(addr) = line.strip_prefix(banner) else {
            panic!(
                "the server's first stdout line is not `{banner}ADDR`: {line:?}\n{}",
                server.describe()
            );
        };
        let addr = addr.trim().trim_end_matches('/').to_string();
        let parsed: SocketAddr = addr.parse().unwrap_or_else(|e| {
            panic!(
                "the listening line names no socket address ({e}): {line:?}\n{}",
                server.describe()
            )
        });
        assert!(
            parsed.ip().is_loopback() && parsed.port() != 0,
            "the server must listen on a real loopback port, it says {line:?}"
        );
        server.addr = addr;
        server
    }

    /// The server process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `127.0.0.1:PORT` a TLS listener announced after the listening line
    /// (`nesca serve: WHAT (TLS) on https://ADDR`, or `(mTLS)`; WHAT such as `portal`), waiting
    /// up to 10 s for the line; panics when it never comes.
    #[track_caller]
    pub(crate) fn tls_listener_addr(&self, what: &str) -> String {
        let prefix = format!(": {what} (");
        super::net::wait_for(
            &format!("the `{what} (TLS) on https://…` line"),
            Duration::from_secs(10),
            Duration::from_millis(20),
            || {
                let lines = self.stdout_lines.lock().unwrap().clone();
                lines
                    .iter()
                    .filter_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
                    .find_map(|rest| rest.split_once(") on https://").map(|(_, a)| a))
                    .map(|a| a.trim().trim_end_matches('/').to_string())
                    .ok_or_else(|| self.describe())
            },
        )
    }

    /// The server's stderr so far.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits up to `limit` for a line of the server's stderr that contains every one of
    /// `phrases` (the log reaches the test through a pipe read on a thread of its own); returns
    /// that line, or panics with the log.
    #[track_caller]
    pub(crate) fn wait_for_log_line(&self, phrases: &[&str], limit: Duration) -> String {
        super::net::wait_for(
            &format!("a log line with {phrases:?}"),
            limit,
            Duration::from_millis(50),
            || {
                let log = self.stderr();
                log.lines()
                    .find(|l| phrases.iter().all(|p| l.contains(p)))
                    .map(str::to_owned)
                    .ok_or(log)
            },
        )
    }

    /// The command, its state and its output so far, for assertion messages.
    pub(crate) fn describe(&self) -> String {
        let stdout = self.stdout_lines.lock().unwrap().join("\n");
        let mut stderr = self.stderr();
        // Keep messages readable: the end of the log is what matters.
        if stderr.len() > 20_000 {
            let mut cut = stderr.len() - 20_000;
            while !stderr.is_char_boundary(cut) {
                cut += 1;
            }
            stderr = format!("…{}", &stderr[cut..]);
        }
        if self.pin.as_deref().is_some_and(|p| stderr.contains(p)) {
            stderr = "(not shown: it holds the user PIN)".into();
        }
        format!(
            "`{}` ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            self.what,
            match self.exited {
                Some(st) => format!("exited with {st}"),
                None => "running".into(),
            },
            stderr.trim_end()
        )
    }

    /// Waits up to `limit` for the child to exit; its status if it did.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    self.exited = Some(st);
                    return Some(st);
                }
                Ok(None) if start.elapsed() >= limit => return None,
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for {}: {e}", self.what),
            }
        }
    }

    /// Asserts the server is still running (it did not crash under what the test sent).
    #[track_caller]
    pub(crate) fn assert_running(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            self.exited = Some(st);
            panic!("the server exited unexpectedly: {}", self.describe());
        }
    }

    /// Sends SIGTERM (`kill -TERM PID`) and waits up to `limit` for the server to exit; panics
    /// (killing it) if it does not. Returns the exit status and how long the exit took, after
    /// checking that stdout held only the listening line and that the PIN never appeared.
    #[track_caller]
    pub(crate) fn terminate(mut self, limit: Duration) -> (ExitStatus, Duration) {
        self.assert_running();
        let start = Instant::now();
        self.send_sigterm();
        self.wait_terminated(start, limit)
    }

    /// `kill -TERM PID`.
    #[track_caller]
    pub(crate) fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill -TERM");
        assert!(kill.success(), "kill -TERM {pid} failed: {kill}");
    }

    /// After [`Server::send_sigterm`] at `start`: what [`Server::terminate`] returns.
    #[track_caller]
    pub(crate) fn wait_terminated(
        mut self,
        start: Instant,
        limit: Duration,
    ) -> (ExitStatus, Duration) {
        let Some(status) = self.wait_exit(limit) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "the server did not exit within {limit:?} of SIGTERM: {}",
                self.describe()
            );
        };
        let took = start.elapsed();
        // The pipes close with the process: collect everything it wrote.
        for t in [self.stdout_thread.take(), self.stderr_thread.take()]
            .into_iter()
            .flatten()
        {
            let _ = t.join();
        }
        let lines = self.stdout_lines.lock().unwrap().clone();
        // The listening line, and one for each TLS listener configured (channels, admin API,
        // portal).
        let expected = 1 + lines
            .iter()
            .filter(|l| l.contains(" (mTLS) on https://") || l.contains(" (TLS) on https://"))
            .count();
        assert_eq!(
            lines.len(),
            expected,
            "the server must print only its listening line(s): {}",
            self.describe()
        );
        if let Some(pin) = &self.pin {
            assert!(
                !self.stderr().contains(pin.as_str()) && !lines.join("\n").contains(pin.as_str()),
                "the user PIN appears in the output of `{}` (output not shown)",
                self.what
            );
        }
        (status, took)
    }

    /// `GET PATH`.
    #[track_caller]
    pub(crate) fn get(&self, path: &str) -> HttpResponse {
        http(&self.addr, "GET", path, &[], None)
    }

    /// `POST PATH` with a body of `content_type`.
    #[track_caller]
    pub(crate) fn post(&self, path: &str, content_type: &str, body: &[u8]) -> HttpResponse {
        http(
            &self.addr,
            "POST",
            path,
            &[("Content-Type", content_type)],
            Some(body),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}
