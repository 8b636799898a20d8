//! The CA's handle on a plugin: [`PluginProcess`] starts the plugin's process
//! ([`super::connection`]), calls it, and restarts it with backoff when it ends or hangs, until
//! it is shut down.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nesca_plugin_api::{CallLimits, HostApi, HttpRequest, HttpResponse, PluginError};

use super::confine::Confinement;
use super::connection::{Connection, Ended, Slot};
use super::lock;

/// The wait before a restart: 0.1 s, doubled with each restart up to [`MAX_BACKOFF`], back to
/// the first once a process has served [`STABLE_AFTER`]. A plugin that crashes at once on every
/// start costs one start every 30 s, not a busy loop.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How often the supervisor looks at its process: a crash is noticed within this, while an
/// idle plugin costs 20 wake-ups a second.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// What a plugin-host process is started with.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The plugin's library.
    pub path: PathBuf,
    /// Its configuration section (JSON).
    pub config: serde_json::Value,
    /// Each call's timeout (also the start's and the stop's) and the calls at once.
    pub limits: CallLimits,
    /// The largest request body forwarded (`max_body_bytes`); bounds the frames to the process.
    pub max_body: usize,
}

/// A plugin running in its own process, supervised. Usable from any thread; dropping it stops
/// the process.
pub(crate) struct PluginProcess {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    version: String,
    abi_version: u32,
    spec: Spec,
    host: Arc<dyn HostApi>,
    /// The running process; `None` while it is being restarted or once stopped.
    current: Mutex<Option<Arc<Connection>>>,
    /// Calls sent and not answered (timed-out ones included), across restarts.
    in_flight: Arc<AtomicUsize>,
    stopping: AtomicBool,
}

impl PluginProcess {
    /// Starts the plugin's process and waits (at most the call timeout) until its plugin is
    /// loaded; then supervises it. A plugin that does not load is an error here, as it was in
    /// the process (missing file, wrong ABI, init refused…).
    pub(crate) fn start(spec: Spec, host: Arc<dyn HostApi>) -> Result<PluginProcess, PluginError> {
        let (connection, ready) = Connection::start(&spec, host.clone(), None)?;
        log_confinement(&ready.name, connection.confinement());
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
        let supervisor = std::thread::Builder::new()
            .name(format!("plugin {} supervisor", shared.name))
            .spawn(move || supervise(&watched));
        let process = PluginProcess { shared };
        match supervisor {
            Ok(_) => Ok(process),
            Err(e) => Err(PluginError::Failed {
                plugin: process.shared.name.clone(),
                reason: format!("cannot start the supervisor thread: {e}"),
            }), // dropping `process` stops the plugin's process
        }
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
    /// Blocking. While the process is being restarted: `Unavailable`; with `max_in_flight`
    /// calls unanswered: `Busy`.
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
        // Set before `current` is taken: a restart that finishes after this sees it and stops
        // its new process itself (`supervise`).
        if s.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(c) = lock(&s.current).take() {
            stop(&c, s.spec.limits.timeout);
        }
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `Shutdown`, a wait of at most `grace` for the process to exit, then kill and reap.
fn stop(c: &Connection, grace: Duration) {
    c.request_shutdown();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !c.has_exited() {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !c.has_exited() {
        c.kill(Ended::DidNotStop);
    }
    c.tear_down();
}

fn log_confinement(plugin: &str, confinement: Confinement) {
    match confinement {
        Confinement::Full => tracing::info!(plugin, "plugin host process confined (Landlock)"),
        Confinement::Partial => tracing::warn!(
            plugin,
            "plugin host process partly confined (Landlock): this kernel lacks some of its rights"
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
        let Some(why) = connection.end_if_gone() else {
            continue;
        };
        *lock(&s.current) = None;
        connection.tear_down();
        if connection.uptime() >= STABLE_AFTER {
            backoff = FIRST_BACKOFF;
        }
        tracing::error!(plugin = %s.name, reason = %why, "plugin host process ended; restarting it");
        loop {
            if sleep_unless_stopping(s, backoff) {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            match Connection::start(&s.spec, s.host.clone(), Some(&s.name)) {
                Ok((c, _)) => {
                    log_confinement(&s.name, c.confinement());
                    tracing::warn!(plugin = %s.name, "plugin host process restarted");
                    let mut current = lock(&s.current);
                    if s.stopping.load(Ordering::SeqCst) {
                        // `shutdown` ran while this process started: it is not to live.
                        drop(current);
                        stop(&c, s.spec.limits.timeout);
                        return;
                    }
                    *current = Some(c);
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
