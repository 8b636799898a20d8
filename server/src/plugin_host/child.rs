//! `nesca plugin-host`: the process one plugin runs in. Started by the CA ([`super::process`])
//! with its socket as stdin; not a command for people.
//!
//! Order matters: inherited descriptors are closed, the `Init` frame read, the process confined
//! ([`super::confine`]), and only then is the plugin's library opened. From then on it serves
//! the CA's `Http` frames, each on a thread of its own, and forwards the plugin's host calls and
//! log lines to the CA. It ends when the CA says `Shutdown` or closes the socket.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use nesca_plugin_api::{
    close_inherited_descriptors, CallLimits, HostApi, HostError, HostErrorCode, HttpRequest,
    LoadedPlugin, LogLevel, PluginError,
};

use super::frame::{Frame, Kind};
use super::{confine, InitRequest, Ready, PROTOCOL};
use crate::error::{CliError, Result};

/// The CA enforces each call's timeout (and restarts a process whose calls hang); here a call
/// may run as long as the CA lets the process live.
const NO_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest `Init` frame (a plugin's configuration).
const MAX_INIT_FRAME: usize = 16 << 20;

/// The socket to the CA, shared by the threads that write to it.
#[derive(Clone)]
struct Writer(Arc<Mutex<UnixStream>>);

impl Writer {
    /// Sends a frame; a CA that is gone ends the process (nothing is left to serve).
    fn send(&self, frame: Frame) {
        let mut socket = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if frame.write_to(&mut *socket).is_err() {
            std::process::exit(0);
        }
    }
}

/// Host calls waiting for the CA's answer, by id.
type Pending = Arc<Mutex<HashMap<u64, mpsc::SyncSender<std::result::Result<Vec<u8>, HostError>>>>>;

/// The host API as the plugin in this process sees it: every call goes to the CA.
struct RemoteHost {
    writer: Writer,
    pending: Pending,
    next_id: AtomicU64,
}

impl HostApi for RemoteHost {
    fn call(&self, _plugin: &str, method: &str, request_json: &[u8]) -> Result<Vec<u8>, HostError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.pending).insert(id, tx);
        self.writer.send(Frame::new(
            Kind::HostCall,
            id,
            method,
            request_json.to_vec(),
        ));
        rx.recv().unwrap_or_else(|_| {
            Err(HostError::without_field(
                HostErrorCode::Unavailable,
                "the CA is gone",
            ))
        })
    }

    fn log(&self, _plugin: &str, level: LogLevel, message: &str) {
        self.writer.send(Frame::new(
            Kind::Log,
            0,
            &level.as_u32().to_string(),
            message.as_bytes().to_vec(),
        ));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `nesca plugin-host`.
pub(crate) fn run() -> Result<()> {
    let setup = |step: &'static str, e: &dyn std::fmt::Display| CliError::PluginHost {
        step,
        reason: e.to_string(),
    };
    close_inherited_descriptors().map_err(|e| setup("closing inherited descriptors", &e))?;
    let socket: UnixStream = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(|e| setup("stdin", &e))?;
    let writer = Writer(Arc::new(Mutex::new(
        socket.try_clone().map_err(|e| setup("socket", &e))?,
    )));
    let mut reader = BufReader::new(socket);

    let init = Frame::read_from(&mut reader, MAX_INIT_FRAME).map_err(|e| setup("init", &e))?;
    if init.kind != Kind::Init || init.head != PROTOCOL {
        return Err(setup(
            "init",
            &format!("expected {PROTOCOL}, got {:?} {:?}", init.kind, init.head),
        ));
    }
    let request: InitRequest =
        serde_json::from_slice(&init.body).map_err(|e| setup("init request", &e))?;

    let readable =
        confine::readable_paths(&request.path, &confine::files_named_in(&request.config));
    let confinement = match confine::restrict_to(&readable) {
        Ok(c) => c,
        Err(e) => return Err(setup("confinement", &e)),
    };

    let pending: Pending = Arc::default();
    let host = Arc::new(RemoteHost {
        writer: writer.clone(),
        pending: pending.clone(),
        next_id: AtomicU64::new(1),
    });
    // The plugin's init may call the host: the reader must already be answering.
    let (loaded_tx, loaded_rx) = mpsc::sync_channel::<LoadedPlugin>(1);
    let max_frame = request.max_frame;
    let workers = request.max_in_flight.max(1);
    let serving = {
        let writer = writer.clone();
        std::thread::Builder::new()
            .name("plugin-host reader".into())
            .spawn(move || serve(reader, max_frame, &writer, &pending, &loaded_rx, workers))
            .map_err(|e| setup("reader thread", &e))?
    };
    let limits = CallLimits {
        timeout: NO_TIMEOUT,
        max_in_flight: request.max_in_flight,
    };
    match LoadedPlugin::load(&request.path, &request.config, host, limits) {
        Ok(plugin) => {
            let ready = Ready {
                name: plugin.name().to_owned(),
                version: plugin.version().to_owned(),
                abi_version: plugin.abi_version(),
                confinement,
            };
            writer.send(Frame::new(Kind::Ready, 0, "", json(&ready)));
            let _ = loaded_tx.send(plugin);
        }
        Err(e) => {
            writer.send(Frame::new(Kind::InitFailed, 0, "", json(&e)));
            return Ok(());
        }
    }
    let _ = serving.join();
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec())
}

/// Reads the CA's frames until it says stop or goes away: host-call answers go to the waiting
/// call, HTTP requests to the plugin (once it is loaded) through `workers` threads started
/// then (the CA sends at most that many calls at once).
fn serve(
    mut reader: BufReader<UnixStream>,
    max_frame: usize,
    writer: &Writer,
    pending: &Pending,
    loaded: &mpsc::Receiver<LoadedPlugin>,
    workers: usize,
) {
    let mut plugin: Option<LoadedPlugin> = None;
    let mut calls: Option<mpsc::Sender<Frame>> = None;
    loop {
        let frame = match Frame::read_from(&mut reader, max_frame) {
            Ok(f) => f,
            Err(_) => std::process::exit(0),
        };
        match frame.kind {
            Kind::HostAnswer | Kind::HostFailed => {
                let answer = if frame.kind == Kind::HostAnswer {
                    Ok(frame.body)
                } else {
                    Err(HostError::from_payload(&frame.body))
                };
                if let Some(tx) = lock(pending).remove(&frame.id) {
                    let _ = tx.send(answer);
                }
            }
            Kind::Http => {
                if calls.is_none() {
                    let Ok(p) = loaded.recv() else {
                        std::process::exit(2)
                    };
                    calls = Some(start_workers(&p, writer, workers));
                    plugin = Some(p);
                }
                if let Some(calls) = &calls {
                    let _ = calls.send(frame);
                }
            }
            Kind::Shutdown => {
                if let Some(p) = plugin.take().or_else(|| loaded.try_recv().ok()) {
                    p.shutdown();
                }
                let _ = lock(&writer.0).flush();
                std::process::exit(0);
            }
            // Only the CA's kinds come this way; anything else means the CA is not one.
            _ => std::process::exit(2),
        }
    }
}

/// `n` threads that take `Http` frames from the returned sender, call the plugin and send its
/// answers. A process that cannot start them cannot serve: it ends, and the CA restarts it.
fn start_workers(plugin: &LoadedPlugin, writer: &Writer, n: usize) -> mpsc::Sender<Frame> {
    let (tx, rx) = mpsc::channel::<Frame>();
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..n {
        let (plugin, writer, rx) = (plugin.clone(), writer.clone(), rx.clone());
        let spawned = std::thread::Builder::new()
            .name("plugin-host call".into())
            .spawn(move || loop {
                let next = lock(&rx).recv();
                let Ok(frame) = next else { return };
                writer.send(answer_http(&plugin, frame.id, &frame.body));
            });
        if spawned.is_err() {
            std::process::exit(2);
        }
    }
    tx
}

/// One HTTP call into the plugin, as the frame that answers it.
fn answer_http(plugin: &LoadedPlugin, id: u64, body: &[u8]) -> Frame {
    let result = serde_json::from_slice::<HttpRequest>(body)
        .map_err(|e| PluginError::Payload {
            plugin: plugin.name().to_owned(),
            reason: format!("the CA sent a bad HttpRequest: {e}"),
        })
        .and_then(|request| plugin.handle_http_on_this_thread(&request));
    match result {
        Ok(response) => Frame::new(Kind::HttpAnswer, id, "", json(&response)),
        Err(e) => Frame::new(Kind::HttpFailed, id, "", json(&e)),
    }
}
