//! One plugin-host process, as the CA holds it: the child, its socket, the calls open on it,
//! and the host calls it makes. [`super::supervisor`] replaces it when it ends.
//!
//! Everything the process sends is treated as hostile: frames are bounded; a frame of a kind it
//! may not send, an answer to a call that is not open, or an undecodable start ends the
//! process; its errors are rebuilt as the CA's own (named after the plugin the CA started,
//! every text one bounded line); host calls are served as the plugin the CA started, never as
//! a name in the call, only while one of its channel's requests is being handled, and at most
//! `max_in_flight` at once. A panic of the host while serving one is the plugin's `internal`
//! error, not a lost thread.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nesca_plugin_api::{
    host_api, is_valid_plugin_name, is_valid_plugin_version, one_line, CallLimits, HostApi,
    HostError, HostErrorCode, HttpRequest, HttpResponse, LogLevel, PluginError,
};

use super::confine::Confinement;
use super::frame::{Frame, FrameError, Kind};
use super::{
    lock, start_workers, InitRequest, Ready, Spec, MAX_FRAME_FROM_HOST, MAX_HOST_ANSWER, PROTOCOL,
};

/// How long a process that closed its socket has to exit before it is killed.
const CLOSED_GRACE: Duration = Duration::from_millis(500);
/// Longest line of the process's stderr taken into the CA's log.
const MAX_STDERR_LINE: u64 = 4096;
/// The most lines a plugin's process puts into the CA's log per second (its log calls and its
/// stderr together); beyond, lines are dropped and their number logged once the second is
/// over, so that a plugin cannot flood the log (or the disk under it).
const MAX_LOG_LINES_PER_SECOND: u32 = 200;

/// Counts a process's log lines per second.
pub(super) struct LogBudget {
    window: Mutex<(Instant, u32, u64)>,
}

impl LogBudget {
    fn new() -> LogBudget {
        LogBudget {
            window: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// Whether one more line may be logged now; logs how many were dropped in the second
    /// that just ended, if any.
    fn admit(&self, plugin: &str) -> bool {
        let mut w = lock(&self.window);
        if w.0.elapsed() >= Duration::from_secs(1) {
            if w.2 > 0 {
                tracing::warn!(
                    plugin,
                    dropped = w.2,
                    "plugin log lines dropped: more than {MAX_LOG_LINES_PER_SECOND} a second"
                );
            }
            *w = (Instant::now(), 0, 0);
        }
        if w.1 < MAX_LOG_LINES_PER_SECOND {
            w.1 += 1;
            true
        } else {
            w.2 += 1;
            false
        }
    }
}

/// Why a process was, or must be, replaced.
#[derive(Debug, Clone)]
pub(super) enum Ended {
    /// It exited or was killed by a signal of its own doing.
    Exited(ExitStatus),
    /// Half of `max_in_flight` calls (at least one) passed the timeout unanswered.
    Hung { stuck: usize, timeout: Duration },
    /// It sent what it may not send.
    Violation(Violation),
    /// A write to it failed or timed out (it stopped reading): half a frame may be on the wire.
    WriteFailed(std::io::ErrorKind),
    /// It closed its socket and did not exit within [`CLOSED_GRACE`].
    ClosedWithoutExit,
    /// It did not start (answered `InitFailed`, or nothing in time).
    DidNotStart,
    /// It did not stop within the timeout after `Shutdown`.
    DidNotStop,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Exited(status) => f.write_str(&exit_reason(*status)),
            Ended::Hung { stuck, timeout } => write!(
                f,
                "killed: hung, {stuck} call(s) unanswered after {} ms",
                timeout.as_millis()
            ),
            Ended::Violation(v) => write!(f, "killed: protocol violation: {v}"),
            Ended::WriteFailed(kind) => write!(f, "killed: cannot write to it ({kind})"),
            Ended::ClosedWithoutExit => {
                f.write_str("killed: it closed its socket but did not exit")
            }
            Ended::DidNotStart => f.write_str("killed: it did not start"),
            Ended::DidNotStop => f.write_str("killed: it did not stop in time"),
        }
    }
}

/// What a process sent that it may not send.
#[derive(Debug, Clone, thiserror::Error)]
pub(super) enum Violation {
    #[error("{0}")]
    Frame(String),
    #[error("a second Ready or InitFailed")]
    SecondStart,
    #[error("a second Confined, or one after the plugin was loaded")]
    SecondConfined,
    #[error("a {0} that does not decode")]
    Undecodable(&'static str),
    #[error("an answer to call {0}, which is not open")]
    AnswerToNoCall(u64),
    #[error("a {0:?} frame, which only the CA sends")]
    WrongKind(Kind),
}

/// One running process and the calls open on it.
pub(super) struct Connection {
    /// The plugin's library path until the process has named the plugin: for messages only.
    label: String,
    /// The plugin's name, set when the CA accepted the process's `Ready`. Host calls are
    /// served under it, and only once it is set.
    named: Arc<OnceLock<String>>,
    path: std::path::PathBuf,
    limits: CallLimits,
    host: Arc<dyn HostApi>,
    writer: Mutex<UnixStream>,
    child: Mutex<Child>,
    open_calls: Mutex<HashMap<u64, OpenCall>>,
    next_id: AtomicU64,
    /// Calls that timed out and have not been answered since.
    stuck: AtomicUsize,
    /// HTTP calls being waited for now (not timed out): host calls are served only then.
    handling: AtomicUsize,
    /// Host calls queued or being served.
    host_calls: Arc<AtomicUsize>,
    /// The host-call threads' queue; `None` once the process is torn down (they then end).
    host_jobs: Mutex<Option<mpsc::Sender<(Frame, Slot)>>>,
    /// Why the CA killed the process, once it did.
    killed: Mutex<Option<Ended>>,
    /// When the process closed its end of the socket.
    closed_at: Mutex<Option<Instant>>,
    /// The sandbox, as the process said before the plugin's code ran.
    confinement: OnceLock<Confinement>,
    /// Its log lines (log calls and stderr) this second.
    log_budget: Arc<LogBudget>,
    /// `Ready` or `InitFailed`, once, to the start.
    start_answer: Mutex<Option<mpsc::SyncSender<Result<Ready, PluginError>>>>,
    started: Instant,
}

/// A call waiting for its answer; dropping it (the process ended) wakes the caller.
struct OpenCall {
    answer: mpsc::SyncSender<Result<HttpResponse, PluginError>>,
    timed_out: bool,
    _slot: Slot,
}

/// One call counted against a bound; released when dropped.
pub(super) struct Slot(Arc<AtomicUsize>);

impl Slot {
    pub(super) fn acquire(counter: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(counter.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Connection {
    /// Starts a process, sends it `Init` and waits (at most the call timeout) for its answer.
    /// `expected`: the name the plugin had before (a restart must bring back the same plugin).
    pub(super) fn start(
        spec: &Spec,
        host: Arc<dyn HostApi>,
        expected: Option<&str>,
    ) -> Result<(Arc<Connection>, Ready), PluginError> {
        let label = expected.map_or_else(|| spec.path.display().to_string(), str::to_owned);
        let failed = |what: &str, e: &dyn fmt::Display| PluginError::Failed {
            plugin: label.clone(),
            reason: format!("{what}: {e}"),
        };
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| failed("cannot make a socket pair", &e))?;
        // A process that stops reading must not hold the CA's threads in a write for ever.
        ours.set_write_timeout(Some(spec.limits.timeout))
            .map_err(|e| failed("cannot set the socket's write timeout", &e))?;
        let reader = ours
            .try_clone()
            .map_err(|e| failed("cannot clone the socket", &e))?;
        let exe =
            std::env::current_exe().map_err(|e| failed("cannot find the nesca binary", &e))?;
        // A cleared environment (no PIN, no password, no RUST_LOG); the process's end of the
        // socket is its stdin; stdout is nobody's; stderr comes to the CA's log line by line.
        // Its own process group, so that nothing it does to "its group" reaches the CA.
        let mut child = Command::new(exe)
            .arg("plugin-host")
            .process_group(0)
            .env_clear()
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed("cannot start the plugin host process", &e))?;
        let stderr = child.stderr.take();
        let (start_tx, start_rx) = mpsc::sync_channel(1);
        let connection = Arc::new(Connection {
            label: label.clone(),
            named: Arc::new(OnceLock::new()),
            path: spec.path.clone(),
            limits: spec.limits,
            host,
            writer: Mutex::new(ours),
            child: Mutex::new(child),
            open_calls: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            stuck: AtomicUsize::new(0),
            handling: AtomicUsize::new(0),
            host_calls: Arc::new(AtomicUsize::new(0)),
            host_jobs: Mutex::new(None),
            killed: Mutex::new(None),
            closed_at: Mutex::new(None),
            confinement: OnceLock::new(),
            log_budget: Arc::new(LogBudget::new()),
            start_answer: Mutex::new(Some(start_tx)),
            started: Instant::now(),
        });
        // From here on the child exists: every failure kills and reaps it.
        let outcome = connection
            .start_threads(reader, stderr)
            .map_err(|e| failed("cannot start its threads", &e))
            .and_then(|()| connection.handshake(spec, &start_rx, expected));
        match outcome {
            Ok(ready) => Ok((connection, ready)),
            Err(e) => {
                connection.kill(Ended::DidNotStart);
                connection.tear_down();
                Err(e)
            }
        }
    }

    /// The reader of its frames, the reader of its stderr, and the host-call threads.
    fn start_threads(
        self: &Arc<Self>,
        reader: UnixStream,
        stderr: Option<ChildStderr>,
    ) -> std::io::Result<()> {
        let weak = Arc::downgrade(self);
        let jobs = start_workers(
            self.limits.max_in_flight,
            "plugin host calls",
            move |(frame, slot): (Frame, Slot)| {
                if let Some(c) = weak.upgrade() {
                    c.serve_host_call(&frame);
                }
                drop(slot);
            },
        )?;
        *lock(&self.host_jobs) = Some(jobs);
        let c = self.clone();
        std::thread::Builder::new()
            .name("plugin host reader".into())
            .spawn(move || c.read_frames(BufReader::new(reader)))?;
        if let Some(stderr) = stderr {
            let (label, named, budget) = (
                self.label.clone(),
                self.named.clone(),
                self.log_budget.clone(),
            );
            std::thread::Builder::new()
                .name("plugin host stderr".into())
                .spawn(move || log_stderr(stderr, &label, &named, &budget))?;
        }
        Ok(())
    }

    /// Sends `Init` and waits for `Ready` (checked) or `InitFailed`.
    fn handshake(
        &self,
        spec: &Spec,
        start_rx: &mpsc::Receiver<Result<Ready, PluginError>>,
        expected: Option<&str>,
    ) -> Result<Ready, PluginError> {
        let init = InitRequest {
            path: spec.path.clone(),
            config: spec.config.clone(),
            max_in_flight: spec.limits.max_in_flight,
            max_frame: max_frame_to_host(spec.max_body).max(MAX_HOST_ANSWER + (1 << 10)),
        };
        let body = serde_json::to_vec(&init).map_err(|e| PluginError::Failed {
            plugin: self.label.clone(),
            reason: format!("cannot encode the configuration: {e}"),
        })?;
        self.send(Frame::new(Kind::Init, 0, PROTOCOL, body))?;
        let ready = match start_rx.recv_timeout(spec.limits.timeout) {
            Ok(answer) => answer?,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(PluginError::Timeout {
                    plugin: self.label.clone(),
                    after: spec.limits.timeout,
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PluginError::Failed {
                    plugin: self.label.clone(),
                    reason: self.why_gone("its process ended before the plugin was loaded"),
                })
            }
        };
        check_ready(&ready, expected, &self.label)?;
        if self.confinement.get().is_none() {
            return Err(PluginError::Failed {
                plugin: self.label.clone(),
                reason: "its process said Ready without saying its sandbox first".into(),
            });
        }
        let _ = self.named.set(ready.name.clone());
        Ok(ready)
    }

    /// The sandbox the process said it is in before its plugin was loaded.
    pub(super) fn confinement(&self) -> Confinement {
        self.confinement.get().copied().unwrap_or(Confinement::None)
    }

    /// The plugin's name, or its library's path until the process has named it.
    fn name(&self) -> &str {
        self.named.get().unwrap_or(&self.label)
    }

    /// How long the process has run.
    pub(super) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sends a frame. A write that fails or times out may have left half a frame on the
    /// socket: the process is killed and restarted.
    fn send(&self, frame: Frame) -> Result<(), PluginError> {
        let written = frame.write_to(&mut *lock(&self.writer));
        written.map_err(|e| {
            self.kill(Ended::WriteFailed(e.kind()));
            PluginError::Unavailable {
                plugin: self.name().to_owned(),
                reason: format!("cannot write to its process: {e}"),
            }
        })
    }

    /// One HTTP call: sent, then waited for at most the timeout.
    pub(super) fn call(
        &self,
        request: &HttpRequest,
        slot: Slot,
    ) -> Result<HttpResponse, PluginError> {
        let body = serde_json::to_vec(request).map_err(|e| PluginError::Payload {
            plugin: self.name().to_owned(),
            reason: format!("cannot encode the HttpRequest: {e}"),
        })?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::sync_channel(1);
        let open = OpenCall {
            answer: tx,
            timed_out: false,
            _slot: slot,
        };
        lock(&self.open_calls).insert(id, open);
        self.handling.fetch_add(1, Ordering::SeqCst);
        let result = self
            .send(Frame::new(Kind::Http, id, "", body))
            .and_then(|()| match rx.recv_timeout(self.limits.timeout) {
                Ok(answer) => answer,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.timed_out(id);
                    Err(PluginError::Timeout {
                        plugin: self.name().to_owned(),
                        after: self.limits.timeout,
                    })
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(PluginError::Failed {
                    plugin: self.name().to_owned(),
                    reason: self.why_gone("its process ended while handling the call"),
                }),
            });
        self.handling.fetch_sub(1, Ordering::SeqCst);
        if result.is_err() {
            // Not sent, or the process is gone: an entry left without an answer must not hold
            // a slot. A timed-out one stays, counted, until answered or torn down.
            let mut open = lock(&self.open_calls);
            if open.get(&id).is_some_and(|c| !c.timed_out) {
                open.remove(&id);
            }
        }
        result
    }

    /// A call that timed out stays counted (its slot held) until the process answers it or
    /// ends. When half the calls the plugin may run (at least one) are stuck so, the process
    /// is hung: killed, and the supervisor restarts it. Half, not all: a plugin that hangs on
    /// every call would otherwise fill its slots and answer only `busy`, never restarted; the
    /// other half keeps serving while one slow call is waited for.
    fn timed_out(&self, id: u64) {
        // Marked and counted under one lock: an answer arriving in between would otherwise
        // take one off the count before it was added.
        let stuck = {
            let mut open = lock(&self.open_calls);
            let Some(call) = open.get_mut(&id) else {
                return;
            };
            call.timed_out = true;
            self.stuck.fetch_add(1, Ordering::SeqCst) + 1
        };
        if stuck >= (self.limits.max_in_flight / 2).max(1) {
            self.kill(Ended::Hung {
                stuck,
                timeout: self.limits.timeout,
            });
        }
    }

    /// Kills the process, saying why (the first reason stays).
    pub(super) fn kill(&self, why: Ended) {
        lock(&self.killed).get_or_insert(why);
        let _ = lock(&self.child).kill();
    }

    /// Whether the process has ended or must be replaced, and why. Kills a process that closed
    /// its socket and did not exit within [`CLOSED_GRACE`].
    pub(super) fn end_if_gone(&self) -> Option<Ended> {
        if let Ok(Some(status)) = lock(&self.child).try_wait() {
            return Some(lock(&self.killed).clone().unwrap_or(Ended::Exited(status)));
        }
        if let Some(why) = lock(&self.killed).clone() {
            return Some(why);
        }
        if lock(&self.closed_at).is_some_and(|t| t.elapsed() >= CLOSED_GRACE) {
            self.kill(Ended::ClosedWithoutExit);
            return Some(Ended::ClosedWithoutExit);
        }
        None
    }

    /// Whether the process has exited (after `Shutdown`).
    pub(super) fn has_exited(&self) -> bool {
        matches!(lock(&self.child).try_wait(), Ok(Some(_)))
    }

    /// Asks the process to stop.
    pub(super) fn request_shutdown(&self) {
        let _ = self.send(Frame::new(Kind::Shutdown, 0, "", Vec::new()));
    }

    /// What callers waiting on an ended process are told.
    fn why_gone(&self, otherwise: &str) -> String {
        lock(&self.killed)
            .as_ref()
            .map_or_else(|| otherwise.to_owned(), Ended::to_string)
    }

    /// The process is gone: killed if it was not, reaped, every call still waiting answered (by
    /// dropping it), the host-call threads ended.
    pub(super) fn tear_down(&self) {
        let _ = lock(&self.child).kill();
        let _ = lock(&self.child).wait();
        // Ends the reader even if something else (a process the plugin forked) still holds
        // the other end: no thread or descriptor outlives the process.
        let _ = lock(&self.writer).shutdown(std::net::Shutdown::Both);
        lock(&self.open_calls).clear();
        lock(&self.host_jobs).take();
        lock(&self.start_answer).take();
    }

    /// The reader: every frame from the process, until it closes the socket or breaks the
    /// protocol (then the process is killed).
    fn read_frames(self: Arc<Self>, mut reader: BufReader<UnixStream>) {
        loop {
            let frame = match Frame::read_from(&mut reader, MAX_FRAME_FROM_HOST) {
                Ok(f) => f,
                // Exiting (or crashed): the supervisor reads its exit status.
                Err(FrameError::Closed) => {
                    lock(&self.closed_at).get_or_insert_with(Instant::now);
                    break;
                }
                Err(e) => {
                    self.kill(Ended::Violation(Violation::Frame(e.to_string())));
                    break;
                }
            };
            if let Err(v) = self.on_frame(frame) {
                self.kill(Ended::Violation(v));
                break;
            }
        }
        // Every waiting call learns now, not at the supervisor's next look.
        lock(&self.open_calls).clear();
        lock(&self.start_answer).take();
    }

    fn on_frame(&self, frame: Frame) -> Result<(), Violation> {
        match frame.kind {
            Kind::Confined => {
                let said = serde_json::from_slice::<Confinement>(&frame.body)
                    .map_err(|_| Violation::Undecodable("Confined"))?;
                // Only before Ready: once the plugin's code runs, it could say anything.
                let starting = lock(&self.start_answer).is_some();
                if !starting || self.confinement.set(said).is_err() {
                    return Err(Violation::SecondConfined);
                }
            }
            Kind::Ready => {
                let ready = serde_json::from_slice::<Ready>(&frame.body)
                    .map_err(|_| Violation::Undecodable("Ready"))?;
                self.answer_start(Ok(ready))?;
            }
            Kind::InitFailed => {
                let e = serde_json::from_slice::<PluginError>(&frame.body)
                    .map_err(|_| Violation::Undecodable("InitFailed"))?;
                self.answer_start(Err(self.as_ours(e)))?;
            }
            Kind::HttpAnswer | Kind::HttpFailed => {
                let call = {
                    let mut open = lock(&self.open_calls);
                    let call = open
                        .remove(&frame.id)
                        .ok_or(Violation::AnswerToNoCall(frame.id))?;
                    if call.timed_out {
                        self.stuck.fetch_sub(1, Ordering::SeqCst);
                    }
                    call
                };
                let answer = if frame.kind == Kind::HttpAnswer {
                    serde_json::from_slice::<HttpResponse>(&frame.body).map_err(|e| {
                        PluginError::Payload {
                            plugin: self.name().to_owned(),
                            reason: format!("bad HttpResponse: {e}"),
                        }
                    })
                } else {
                    Err(match serde_json::from_slice::<PluginError>(&frame.body) {
                        Ok(e) => self.as_ours(e),
                        Err(_) => PluginError::Failed {
                            plugin: self.name().to_owned(),
                            reason: one_line(&frame.body),
                        },
                    })
                };
                let _ = call.answer.send(answer);
            }
            Kind::HostCall => self.host_call(frame),
            Kind::Log => {
                let level = frame
                    .head
                    .parse()
                    .ok()
                    .and_then(LogLevel::from_u32)
                    .unwrap_or(LogLevel::Info);
                if !self.log_budget.admit(self.name()) {
                    return Ok(());
                }
                let message = one_line(&frame.body);
                let logged = catch_unwind(AssertUnwindSafe(|| {
                    self.host.log(self.name(), level, &message)
                }));
                if logged.is_err() {
                    tracing::error!(plugin = %self.name(), "the host panicked logging a plugin's line");
                }
            }
            other => return Err(Violation::WrongKind(other)),
        }
        Ok(())
    }

    fn answer_start(&self, answer: Result<Ready, PluginError>) -> Result<(), Violation> {
        let sender = lock(&self.start_answer)
            .take()
            .ok_or(Violation::SecondStart)?;
        let _ = sender.send(answer);
        Ok(())
    }

    /// A `PluginError` the process sent, rebuilt as the CA's own: named after the plugin the CA
    /// started and the library it gave, every text one bounded line. The process could write
    /// anything there, other plugins' names and forged log lines included.
    fn as_ours(&self, e: PluginError) -> PluginError {
        let plugin = self.name().to_owned();
        let path = self.path.clone();
        let line = |s: String| one_line(s.as_bytes());
        match e {
            // Before the CA has the name, an init failure names the plugin its table names, if
            // that is a valid name (the messages operators know), else the library.
            PluginError::Init { plugin: p, reason } => PluginError::Init {
                plugin: if self.named.get().is_none() && is_valid_plugin_name(&p) {
                    p
                } else {
                    plugin
                },
                reason: line(reason),
            },
            PluginError::Panicked { message, .. } => PluginError::Panicked {
                plugin,
                message: line(message),
            },
            PluginError::Busy { .. } => PluginError::Busy { plugin },
            PluginError::Payload { reason, .. } => PluginError::Payload {
                plugin,
                reason: line(reason),
            },
            PluginError::Failed { reason, .. } => PluginError::Failed {
                plugin,
                reason: line(reason),
            },
            PluginError::Unavailable { reason, .. } => PluginError::Unavailable {
                plugin,
                reason: line(reason),
            },
            PluginError::Timeout { after, .. } => PluginError::Timeout { plugin, after },
            PluginError::MissingFile { .. } => PluginError::MissingFile { path },
            PluginError::Load { reason, .. } => PluginError::Load {
                path,
                reason: line(reason),
            },
            PluginError::MissingSymbol { symbol, .. } => PluginError::MissingSymbol {
                path,
                symbol: line(symbol),
            },
            PluginError::AbiMismatch {
                plugin_abi,
                host_abi,
                ..
            } => PluginError::AbiMismatch {
                path,
                plugin_abi,
                host_abi,
            },
            PluginError::BadTable { reason, .. } => PluginError::BadTable {
                path,
                reason: line(reason),
            },
            // A variant added later: its own words, in one line, under the CA's name.
            other => PluginError::Failed {
                plugin,
                reason: line(other.to_string()),
            },
        }
    }

    /// A host call from the plugin, queued for the host-call threads. Refused (`refused`, not
    /// worth retrying: a plugin's bug) while the plugin starts and outside a request of its
    /// channel; `unavailable` past `max_in_flight` at once or once the process is stopping.
    fn host_call(&self, frame: Frame) {
        let id = frame.id;
        let refuse = |code: HostErrorCode, rule: String| {
            let e = HostError::without_field(code, rule);
            let _ = self.send(Frame::new(Kind::HostFailed, id, "", e.to_payload()));
        };
        if !host_api::METHODS.contains(&frame.head.as_str()) {
            let method = one_line(frame.head.as_bytes());
            return refuse(
                HostErrorCode::Invalid,
                format!("unknown host method {method:?}"),
            );
        }
        if self.named.get().is_none() {
            return refuse(
                HostErrorCode::Refused,
                "the host serves no calls while the plugin starts".into(),
            );
        }
        if self.handling.load(Ordering::SeqCst) == 0 {
            return refuse(
                HostErrorCode::Refused,
                "a host call while none of the channel's requests is being handled".into(),
            );
        }
        let Some(slot) = Slot::acquire(&self.host_calls, self.limits.max_in_flight.max(1)) else {
            return refuse(
                HostErrorCode::Unavailable,
                "too many host calls at once".into(),
            );
        };
        let queued = lock(&self.host_jobs)
            .as_ref()
            .is_some_and(|jobs| jobs.send((frame, slot)).is_ok());
        if !queued {
            refuse(
                HostErrorCode::Unavailable,
                "the plugin's process is stopping".into(),
            );
        }
    }

    /// One host call, served as the plugin the CA started and answered on the socket. An
    /// answer larger than the process accepts, or a panic of the host, is an internal error.
    fn serve_host_call(&self, frame: &Frame) {
        let served = catch_unwind(AssertUnwindSafe(|| {
            self.host.call(self.name(), &frame.head, &frame.body)
        }));
        let reply = match served {
            Ok(Ok(body)) if body.len() <= MAX_HOST_ANSWER => {
                Frame::new(Kind::HostAnswer, frame.id, "", body)
            }
            Ok(Ok(body)) => {
                tracing::error!(plugin = %self.name(), method = %frame.head, bytes = body.len(), "a host answer too large for the plugin's process");
                let e = HostError::internal("the answer is too large");
                Frame::new(Kind::HostFailed, frame.id, "", e.to_payload())
            }
            Ok(Err(e)) => Frame::new(Kind::HostFailed, frame.id, "", e.to_payload()),
            Err(_) => {
                tracing::error!(plugin = %self.name(), method = %frame.head, "the host API panicked serving a plugin call");
                let e = HostError::internal("internal error in the host");
                Frame::new(Kind::HostFailed, frame.id, "", e.to_payload())
            }
        };
        let _ = self.send(reply);
    }
}

/// Each line the process writes to stderr (a crash's last words, a panic's message), one
/// bounded line each, into the CA's log.
fn log_stderr(stderr: ChildStderr, label: &str, named: &OnceLock<String>, budget: &LogBudget) {
    let mut stderr = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut stderr)
            .take(MAX_STDERR_LINE)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let plugin = named.get().map_or(label, String::as_str);
                if budget.admit(plugin) {
                    tracing::warn!(plugin, "plugin host process stderr: {}", one_line(&line));
                }
            }
        }
    }
}

/// The plugin a `Ready` describes must be a valid one, and after a restart the same one.
pub(super) fn check_ready(
    ready: &Ready,
    expected: Option<&str>,
    label: &str,
) -> Result<(), PluginError> {
    let bad = |reason: String| PluginError::Failed {
        plugin: label.to_owned(),
        reason,
    };
    if !is_valid_plugin_name(&ready.name) {
        return Err(bad(format!(
            "its process named the plugin {:?}",
            one_line(ready.name.as_bytes())
        )));
    }
    if !is_valid_plugin_version(&ready.version) {
        return Err(bad("its process gave a bad plugin version".into()));
    }
    match expected {
        Some(name) if ready.name != name => Err(bad(format!(
            "the restarted process loaded plugin \"{}\", not \"{name}\"",
            ready.name
        ))),
        _ => Ok(()),
    }
}

/// The largest frame sent to the process with a request: its body in base64 (4 bytes for 3),
/// and 1 MiB for the rest — the JSON around it, the headers (hyper reads at most about 400 KiB
/// of them) and the client's certificate chain.
pub(super) fn max_frame_to_host(max_body: usize) -> usize {
    max_body.div_ceil(3) * 4 + (1 << 20)
}

/// An exit status in words: the code, or the signal and its name.
fn exit_reason(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("its process exited with code {code}"),
        (None, Some(sig)) => format!("its process was killed by signal {sig}{}", signal_name(sig)),
        _ => format!("its process ended: {status}"),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(name: &str, version: &str) -> Ready {
        Ready {
            name: name.into(),
            version: version.into(),
            abi_version: 2,
        }
    }

    #[test]
    fn a_process_names_a_valid_plugin_and_after_a_restart_the_same_one() {
        assert!(check_ready(&ready("kdhs", "1.0.0"), None, "/p.so").is_ok());
        assert!(check_ready(&ready("kdhs", "1.0.1"), Some("kdhs"), "kdhs").is_ok());
        for (r, expected) in [
            (ready("../kdhs", "1"), None),
            (ready("KDHS", "1"), None),
            (ready("kdhs", ""), None),
            (ready("kdhs", "1\n2"), None),
            (ready("kdhs", &"9".repeat(65)), None),
            (ready("kec", "1.0.0"), Some("kdhs")),
        ] {
            let e = check_ready(&r, expected, "kdhs").unwrap_err();
            assert!(matches!(e, PluginError::Failed { .. }), "{e}");
        }
    }

    #[test]
    fn a_plugin_logs_at_most_its_budget_a_second() {
        let budget = LogBudget::new();
        let admitted = (0..MAX_LOG_LINES_PER_SECOND + 50)
            .filter(|_| budget.admit("p"))
            .count();
        assert_eq!(admitted, MAX_LOG_LINES_PER_SECOND as usize);
        // A new second: lines again (the window is moved back instead of waiting for it).
        lock(&budget.window).0 -= Duration::from_secs(1);
        assert!(budget.admit("p"));
    }

    #[test]
    fn exit_statuses_are_told_in_words() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            exit_reason(ExitStatus::from_raw(6)),
            "its process was killed by signal 6 (SIGABRT)"
        );
        assert_eq!(
            exit_reason(ExitStatus::from_raw(11)),
            "its process was killed by signal 11 (SIGSEGV)"
        );
        assert_eq!(
            exit_reason(ExitStatus::from_raw(2 << 8)),
            "its process exited with code 2"
        );
    }

    /// The largest request the CA forwards — a full body, as many header bytes as hyper reads,
    /// every one a character JSON escapes, and a client chain — fits the frame the process
    /// accepts.
    #[test]
    fn the_largest_request_fits_the_process_frame() {
        for max_body in [1024, 4 << 20, 16 << 20] {
            let request = HttpRequest {
                method: "POST".into(),
                path: format!("/{}", "p".repeat(8000)),
                query: Some("q".repeat(8000)),
                headers: (0..100)
                    .map(|i| (format!("x-h{i}"), "\"".repeat(4000)))
                    .collect(),
                body: vec![0xff; max_body],
                client_cert_chain: vec![vec![0x30; 4096]; 4],
            };
            let frame = Frame::new(
                Kind::Http,
                u64::MAX,
                "",
                serde_json::to_vec(&request).unwrap(),
            );
            let mut wire = Vec::new();
            frame.write_to(&mut wire).unwrap();
            assert!(
                wire.len() - 4 <= max_frame_to_host(max_body),
                "{max_body}: a frame of {} bytes, the process accepts {}",
                wire.len() - 4,
                max_frame_to_host(max_body)
            );
        }
    }
}
