//! The CA's side of a plugin-host process: starting it, calling the plugin through it, serving
//! its host calls as the channel it is, and restarting it with backoff when it dies or hangs.
//!
//! Everything the process sends is treated as hostile: frames are bounded, a frame of the wrong
//! kind or shape ends the process, host calls are attributed to the plugin the CA started (never
//! to a name the process gives), accepted only while one of the channel's requests is being
//! handled, and bounded in number.

use std::collections::HashMap;
use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nesca_plugin_api::{
    host_api, is_valid_plugin_name, one_line, CallLimits, HostApi, HostError, HostErrorCode,
    HttpRequest, HttpResponse, LogLevel, PluginError,
};

use super::confine::Confinement;
use super::frame::{Frame, FrameError, Kind};
use super::{InitRequest, Ready, MAX_FRAME_FROM_HOST, PROTOCOL};

/// First wait before a restart; doubled after each failed start, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that served this long before it ended is restarted after [`FIRST_BACKOFF`] again.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How often the supervisor looks at its process.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// How long a process that closed its socket has to exit before it is killed.
const CLOSED_GRACE: Duration = Duration::from_millis(500);

/// What a plugin-host process is started with.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The plugin's library.
    pub path: PathBuf,
    /// Its configuration section (JSON).
    pub config: serde_json::Value,
    /// Each call's timeout (also the start's) and the calls at once.
    pub limits: CallLimits,
    /// The largest request body forwarded (`max_body_bytes`); bounds the frames to the process.
    pub max_body: usize,
}

/// A plugin running in its own process, supervised. Cheap to share; usable from any thread.
pub(crate) struct PluginProcess {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    version: String,
    abi_version: u32,
    spec: Spec,
    host: Arc<dyn HostApi>,
    /// The running process; `None` while it is being restarted.
    current: Mutex<Option<Arc<Connection>>>,
    /// Calls the CA has sent and not had answered (timed-out ones included), across restarts.
    in_flight: Arc<AtomicUsize>,
    stopping: AtomicBool,
}

/// One running process and the calls open on it.
struct Connection {
    /// The plugin's name once its process has loaded it (its library's path before: for
    /// messages only). Host calls are served only under this name.
    plugin: String,
    /// Set when the process has said `Ready` and the CA accepted the plugin it named.
    named: std::sync::OnceLock<String>,
    limits: CallLimits,
    host: Arc<dyn HostApi>,
    writer: Mutex<UnixStream>,
    child: Mutex<Child>,
    pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
    /// Calls that timed out and have not been answered since.
    stuck: AtomicUsize,
    /// HTTP calls being handled now (not timed out): host calls are accepted only then.
    handling: AtomicUsize,
    /// Host calls being served now (or queued for a worker).
    host_calls: Arc<AtomicUsize>,
    /// The host-call workers' queue; `None` once the process is torn down (they then end).
    host_jobs: Mutex<Option<mpsc::Sender<(Frame, Slot)>>>,
    /// Set when the process must go (a protocol violation, a hang): why it was killed.
    broken: Mutex<Option<String>>,
    /// When the process closed its end of the socket (it is exiting, or must be made to).
    closed_at: Mutex<Option<Instant>>,
    /// `Ready` or `InitFailed`, once, to the start.
    init: Mutex<Option<mpsc::SyncSender<Result<Ready, PluginError>>>>,
    started: Instant,
}

/// A call waiting for its answer; dropping it (the process ended) wakes the caller.
struct Pending {
    answer: mpsc::SyncSender<Result<HttpResponse, PluginError>>,
    timed_out: bool,
    _slot: Slot,
}

/// One call counted against `max_in_flight`; released when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn acquire(counter: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PluginProcess {
    /// Starts the plugin's process and waits (at most the call timeout) until its plugin is
    /// loaded; then supervises it. A plugin that does not load is an error here, as it was in
    /// the process (missing file, wrong ABI, init refused…).
    pub(crate) fn start(spec: Spec, host: Arc<dyn HostApi>) -> Result<PluginProcess, PluginError> {
        let (connection, ready) = Connection::start(&spec, host.clone(), None)?;
        log_confinement(&ready.name, ready.confinement);
        let shared = Arc::new(Shared {
            name: ready.name,
            version: ready.version,
            abi_version: ready.abi_version,
            spec,
            host,
            current: Mutex::new(Some(connection)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            stopping: AtomicBool::new(false),
        });
        let watched = shared.clone();
        std::thread::Builder::new()
            .name(format!("plugin {} supervisor", shared.name))
            .spawn(move || supervise(&watched))
            .map_err(|e| PluginError::Failed {
                plugin: shared.name.clone(),
                reason: format!("cannot start the supervisor thread: {e}"),
            })?;
        Ok(PluginProcess { shared })
    }

    pub(crate) fn name(&self) -> &str {
        &self.shared.name
    }
    pub(crate) fn version(&self) -> &str {
        &self.shared.version
    }
    pub(crate) fn abi_version(&self) -> u32 {
        self.shared.abi_version
    }
    pub(crate) fn path(&self) -> &Path {
        &self.shared.spec.path
    }

    /// Hands `request` to the plugin and waits at most the call timeout for its answer.
    /// Blocking. While the process is being restarted: `Unavailable`.
    pub(crate) fn handle_http(&self, request: &HttpRequest) -> Result<HttpResponse, PluginError> {
        let s = &self.shared;
        let Some(connection) = lock(&s.current).clone() else {
            return Err(PluginError::Unavailable {
                plugin: s.name.clone(),
                reason: "its process is being restarted".into(),
            });
        };
        let slot = Slot::acquire(&s.in_flight, s.spec.limits.max_in_flight).ok_or_else(|| {
            PluginError::Busy {
                plugin: s.name.clone(),
            }
        })?;
        connection.call(request, slot)
    }

    /// Asks the process to stop (the plugin's `shutdown`), waits at most the call timeout,
    /// then kills it; no restart follows.
    pub(crate) fn shutdown(&self) {
        let s = &self.shared;
        if s.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(c) = lock(&s.current).take() {
            let _ = c.send(Frame::new(Kind::Shutdown, 0, "", Vec::new()));
            let deadline = Instant::now() + s.spec.limits.timeout;
            while Instant::now() < deadline {
                if matches!(lock(&c.child).try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            c.kill("it did not stop in time");
            let _ = lock(&c.child).wait();
        }
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn log_confinement(plugin: &str, confinement: Confinement) {
    match confinement {
        Confinement::Full => tracing::info!(plugin, "plugin host process confined (Landlock)"),
        Confinement::Partial => tracing::warn!(
            plugin,
            "plugin host process partly confined: this kernel lacks some Landlock rights"
        ),
        Confinement::None => tracing::warn!(
            plugin,
            "plugin host process not confined: this kernel has no Landlock"
        ),
    }
}

/// Restarts the process when it ended or must go, with backoff, until `shutdown`.
fn supervise(s: &Shared) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        std::thread::sleep(WATCH_EVERY);
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Some(connection) = lock(&s.current).clone() else {
            continue;
        };
        let Some(why) = connection.ended() else {
            continue;
        };
        *lock(&s.current) = None;
        connection.tear_down();
        if connection.started.elapsed() >= STABLE_AFTER {
            backoff = FIRST_BACKOFF;
        }
        tracing::error!(plugin = %s.name, reason = %why, "plugin host process ended; restarting it");
        loop {
            if sleep_unless_stopping(s, backoff) {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            match Connection::start(&s.spec, s.host.clone(), Some(&s.name)) {
                Ok((c, ready)) => {
                    log_confinement(&s.name, ready.confinement);
                    *lock(&s.current) = Some(c);
                    tracing::warn!(plugin = %s.name, "plugin host process restarted");
                    break;
                }
                Err(e) => {
                    tracing::error!(plugin = %s.name, error = %e, retry_in_ms = backoff.as_millis() as u64, "plugin host process did not start")
                }
            }
        }
    }
}

/// Sleeps `d`, waking early to answer true when the plugin is being shut down.
fn sleep_unless_stopping(s: &Shared, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if s.stopping.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(WATCH_EVERY.min(until - Instant::now()));
    }
    s.stopping.load(Ordering::SeqCst)
}

impl Connection {
    /// Starts a process, sends it `Init` and waits for its answer. `expected`: the name the
    /// plugin had before (a restart must bring back the same plugin).
    fn start(
        spec: &Spec,
        host: Arc<dyn HostApi>,
        expected: Option<&str>,
    ) -> Result<(Arc<Connection>, Ready), PluginError> {
        let label = expected.map_or_else(|| spec.path.display().to_string(), str::to_owned);
        let failed = |reason: String| PluginError::Failed {
            plugin: label.clone(),
            reason,
        };
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| failed(format!("cannot make a socket pair: {e}")))?;
        let exe = std::env::current_exe()
            .map_err(|e| failed(format!("cannot find the nesca binary: {e}")))?;
        // A cleared environment (no PIN, no password, no RUST_LOG); the socket is its stdin;
        // its stdout is nobody's; stderr is the CA's, so that a crash's last words are seen.
        let child = Command::new(exe)
            .arg("plugin-host")
            .env_clear()
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| failed(format!("cannot start the plugin host process: {e}")))?;
        // A process that stops reading must not block the CA's threads in a write for ever.
        ours.set_write_timeout(Some(spec.limits.timeout))
            .map_err(|e| failed(format!("cannot set the socket's write timeout: {e}")))?;
        let reader = ours
            .try_clone()
            .map_err(|e| failed(format!("cannot clone the socket: {e}")))?;
        let (init_tx, init_rx) = mpsc::sync_channel(1);
        let connection = Arc::new(Connection {
            plugin: label.clone(),
            named: std::sync::OnceLock::new(),
            limits: spec.limits,
            host,
            writer: Mutex::new(ours),
            child: Mutex::new(child),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            stuck: AtomicUsize::new(0),
            handling: AtomicUsize::new(0),
            host_calls: Arc::new(AtomicUsize::new(0)),
            host_jobs: Mutex::new(None),
            broken: Mutex::new(None),
            closed_at: Mutex::new(None),
            init: Mutex::new(Some(init_tx)),
            started: Instant::now(),
        });
        connection
            .start_host_workers()
            .map_err(|e| failed(format!("cannot start the host-call threads: {e}")))?;
        {
            let c = connection.clone();
            std::thread::Builder::new()
                .name(format!("plugin {label} reader"))
                .spawn(move || c.read_frames(BufReader::new(reader)))
                .map_err(|e| failed(format!("cannot start the reader thread: {e}")))?;
        }
        let init = InitRequest {
            path: spec.path.clone(),
            config: spec.config.clone(),
            max_in_flight: spec.limits.max_in_flight,
            max_frame: max_frame_to_host(spec.max_body),
        };
        let body = serde_json::to_vec(&init)
            .map_err(|e| failed(format!("cannot encode the configuration: {e}")))?;
        let outcome = connection
            .send(Frame::new(Kind::Init, 0, PROTOCOL, body))
            .and_then(|()| match init_rx.recv_timeout(spec.limits.timeout) {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => Err(PluginError::Timeout {
                    plugin: label.clone(),
                    after: spec.limits.timeout,
                }),
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(failed(connection.end_reason())),
            })
            .and_then(|ready| check_ready(ready, expected, &label));
        match outcome {
            Ok(ready) => {
                let _ = connection.named.set(ready.name.clone());
                Ok((connection, ready))
            }
            Err(e) => {
                connection.kill("it did not start");
                connection.tear_down();
                Err(e)
            }
        }
    }

    /// The plugin's name, or its library's path until the process has named it.
    fn name(&self) -> &str {
        self.named.get().unwrap_or(&self.plugin)
    }

    /// Sends a frame. A write that fails or times out may have left half a frame on the
    /// socket: the process is killed and restarted.
    fn send(&self, frame: Frame) -> Result<(), PluginError> {
        let written = frame.write_to(&mut *lock(&self.writer));
        written.map_err(|e| {
            self.kill(&format!("cannot write to it: {e}"));
            PluginError::Unavailable {
                plugin: self.name().to_owned(),
                reason: format!("cannot write to its process: {e}"),
            }
        })
    }

    /// One HTTP call: sent, then waited for at most the timeout.
    fn call(&self, request: &HttpRequest, slot: Slot) -> Result<HttpResponse, PluginError> {
        let body = serde_json::to_vec(request).map_err(|e| PluginError::Payload {
            plugin: self.name().to_owned(),
            reason: format!("cannot encode the HttpRequest: {e}"),
        })?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.pending).insert(
            id,
            Pending {
                answer: tx,
                timed_out: false,
                _slot: slot,
            },
        );
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
                    reason: self.end_reason(),
                }),
            });
        self.handling.fetch_sub(1, Ordering::SeqCst);
        if result.is_err() {
            // Sent nothing, or timed out: an entry left without an answer must not hold a slot.
            let mut pending = lock(&self.pending);
            if pending.get(&id).is_some_and(|p| !p.timed_out) {
                pending.remove(&id);
            }
        }
        result
    }

    /// A call that timed out stays counted (its slot held) until the process answers it or
    /// ends. When half the calls the plugin may run are stuck so, the process is hung: it is
    /// killed, and the supervisor restarts it.
    fn timed_out(&self, id: u64) {
        let mut pending = lock(&self.pending);
        let Some(p) = pending.get_mut(&id) else {
            return;
        };
        p.timed_out = true;
        drop(pending);
        let stuck = self.stuck.fetch_add(1, Ordering::SeqCst) + 1;
        if stuck >= (self.limits.max_in_flight / 2).max(1) {
            self.kill(&format!(
                "{stuck} calls did not answer within {} ms",
                self.limits.timeout.as_millis()
            ));
        }
    }

    /// Marks the process for the supervisor and kills it.
    fn kill(&self, why: &str) {
        lock(&self.broken).get_or_insert_with(|| format!("killed: {why}"));
        let _ = lock(&self.child).kill();
    }

    /// Why the process must be replaced, if it must: it exited (its status, or why it was
    /// killed), was marked broken, or closed its socket and did not exit soon after.
    fn ended(&self) -> Option<String> {
        if let Ok(Some(status)) = lock(&self.child).try_wait() {
            let why = lock(&self.broken).clone();
            return Some(why.unwrap_or_else(|| exit_reason(status)));
        }
        if let Some(why) = lock(&self.broken).clone() {
            let _ = lock(&self.child).kill();
            return Some(why);
        }
        let closed = *lock(&self.closed_at);
        if closed.is_some_and(|t| t.elapsed() >= CLOSED_GRACE) {
            self.kill("it closed its connection and did not exit");
            return lock(&self.broken).clone();
        }
        None
    }

    /// What callers waiting on an ended process are told.
    fn end_reason(&self) -> String {
        lock(&self.broken)
            .clone()
            .unwrap_or_else(|| "its process ended while handling the call".into())
    }

    /// `max_in_flight` threads (at least one) that serve the plugin's host calls from
    /// `host_jobs`, each holding the connection only while it serves a call.
    fn start_host_workers(self: &Arc<Self>) -> std::io::Result<()> {
        let (tx, rx) = mpsc::channel::<(Frame, Slot)>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..self.limits.max_in_flight.max(1) {
            let (rx, weak) = (rx.clone(), Arc::downgrade(self));
            std::thread::Builder::new()
                .name(format!("plugin {} host calls", self.plugin))
                .spawn(move || loop {
                    let next = lock(&rx).recv();
                    let Ok((frame, slot)) = next else { return };
                    let Some(c) = weak.upgrade() else { return };
                    c.serve_host_call(&frame);
                    drop(slot);
                })?;
        }
        *lock(&self.host_jobs) = Some(tx);
        Ok(())
    }

    /// One host call, answered on the socket.
    fn serve_host_call(&self, frame: &Frame) {
        let reply = match self.host.call(self.name(), &frame.head, &frame.body) {
            Ok(body) => Frame::new(Kind::HostAnswer, frame.id, "", body),
            Err(e) => Frame::new(Kind::HostFailed, frame.id, "", e.to_payload()),
        };
        let _ = self.send(reply);
    }

    /// The process is gone: reaped, and every call still waiting is answered (by dropping it).
    fn tear_down(&self) {
        lock(&self.host_jobs).take();
        let _ = lock(&self.child).kill();
        let _ = lock(&self.child).wait();
        lock(&self.pending).clear();
        lock(&self.init).take();
    }

    /// The reader: every frame from the process, until it closes the socket or breaks the
    /// protocol (then the process is killed and restarted).
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
                    self.kill(&format!("protocol violation: {e}"));
                    break;
                }
            };
            if let Err(why) = self.on_frame(frame) {
                self.kill(&format!("protocol violation: {why}"));
                break;
            }
        }
        // Every waiting call learns now, not at the supervisor's next look.
        lock(&self.pending).clear();
        lock(&self.init).take();
    }

    fn on_frame(self: &Arc<Self>, frame: Frame) -> Result<(), String> {
        match frame.kind {
            Kind::Ready | Kind::InitFailed => {
                let sender = lock(&self.init).take().ok_or("a second Ready")?;
                let outcome = if frame.kind == Kind::Ready {
                    Ok(serde_json::from_slice::<Ready>(&frame.body)
                        .map_err(|e| format!("bad Ready: {e}"))?)
                } else {
                    Err(serde_json::from_slice::<PluginError>(&frame.body)
                        .map_err(|e| format!("bad InitFailed: {e}"))?)
                };
                let _ = sender.send(outcome);
            }
            Kind::HttpAnswer | Kind::HttpFailed => {
                let Some(pending) = lock(&self.pending).remove(&frame.id) else {
                    // An answer to no call: the process made it up.
                    return Err(format!("an answer to call {} that is not open", frame.id));
                };
                if pending.timed_out {
                    self.stuck.fetch_sub(1, Ordering::SeqCst);
                }
                let answer = if frame.kind == Kind::HttpAnswer {
                    serde_json::from_slice::<HttpResponse>(&frame.body).map_err(|e| {
                        PluginError::Payload {
                            plugin: self.name().to_owned(),
                            reason: format!("bad HttpResponse: {e}"),
                        }
                    })
                } else {
                    Err(
                        serde_json::from_slice::<PluginError>(&frame.body).unwrap_or_else(|_| {
                            PluginError::Failed {
                                plugin: self.name().to_owned(),
                                reason: one_line(&frame.body),
                            }
                        }),
                    )
                };
                let _ = pending.answer.send(answer);
            }
            Kind::HostCall => self.host_call(frame),
            Kind::Log => {
                let level = frame
                    .head
                    .parse()
                    .ok()
                    .and_then(LogLevel::from_u32)
                    .unwrap_or(LogLevel::Info);
                self.host.log(self.name(), level, &one_line(&frame.body));
            }
            other => return Err(format!("a {other:?} frame from the process")),
        }
        Ok(())
    }

    /// A host call from the plugin, queued for the host-call threads, served as the plugin the
    /// CA started.
    /// Refused while the plugin starts (its `init`), outside a request of the channel, and past
    /// the bound of host calls at once.
    fn host_call(&self, frame: Frame) {
        let id = frame.id;
        let refuse = |rule: &str| {
            let _ = self.send(Frame::new(
                Kind::HostFailed,
                id,
                "",
                HostError::without_field(HostErrorCode::Unavailable, rule).to_payload(),
            ));
        };
        if !host_api::METHODS.contains(&frame.head.as_str()) {
            let _ = self.send(Frame::new(
                Kind::HostFailed,
                frame.id,
                "",
                HostError::without_field(
                    HostErrorCode::Invalid,
                    format!("unknown host method {:?}", one_line(frame.head.as_bytes())),
                )
                .to_payload(),
            ));
            return;
        }
        if self.named.get().is_none() {
            refuse("the host serves no calls while the plugin starts");
            return;
        }
        if self.handling.load(Ordering::SeqCst) == 0 {
            refuse("a host call outside any request of the channel");
            return;
        }
        let max = self.limits.max_in_flight.max(1);
        let Some(slot) = Slot::acquire(&self.host_calls, max) else {
            refuse("too many host calls at once");
            return;
        };
        let queued = lock(&self.host_jobs)
            .as_ref()
            .is_some_and(|jobs| jobs.send((frame, slot)).is_ok());
        if !queued {
            refuse("the plugin's process is being stopped");
        }
    }
}

/// The plugin a `Ready` describes must be a valid one, and after a restart the same one.
fn check_ready(ready: Ready, expected: Option<&str>, label: &str) -> Result<Ready, PluginError> {
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
    if ready.version.is_empty()
        || ready.version.len() > 64
        || ready.version.chars().any(char::is_control)
    {
        return Err(bad("its process gave a bad plugin version".into()));
    }
    if let Some(name) = expected {
        if ready.name != name {
            return Err(bad(format!(
                "the restarted process loaded plugin \"{}\", not \"{name}\"",
                ready.name
            )));
        }
    }
    Ok(ready)
}

/// The largest frame sent to the process: a request with its body in base64, headers and the
/// client's chain.
fn max_frame_to_host(max_body: usize) -> usize {
    max_body / 3 * 4 + (1 << 20)
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
            confinement: Confinement::Full,
        }
    }

    #[test]
    fn a_process_names_a_valid_plugin_and_after_a_restart_the_same_one() {
        assert!(check_ready(ready("kdhs", "1.0.0"), None, "/p.so").is_ok());
        assert!(check_ready(ready("kdhs", "1.0.1"), Some("kdhs"), "kdhs").is_ok());
        for (r, expected) in [
            (ready("../kdhs", "1"), None),
            (ready("KDHS", "1"), None),
            (ready("kdhs", ""), None),
            (ready("kdhs", "1\n2"), None),
            (ready("kdhs", &"9".repeat(65)), None),
            (ready("kec", "1.0.0"), Some("kdhs")),
        ] {
            let e = check_ready(r, expected, "kdhs").unwrap_err();
            assert!(matches!(e, PluginError::Failed { .. }), "{e}");
        }
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

    #[test]
    fn frames_to_the_process_hold_the_largest_body_in_base64() {
        for body in [1024, 4 << 20, 128 << 20] {
            assert!(
                max_frame_to_host(body) >= body / 3 * 4 + 4 + (1 << 16),
                "{body}"
            );
        }
    }
}
