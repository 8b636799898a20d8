//! `nesca plugin-host`: the process one plugin runs in. Started by the CA
//! ([`super::supervisor`]) with its socket as stdin; not a command for people.
//!
//! Order matters: inherited descriptors are closed, the `Init` frame read, the process confined
//! ([`super::confine`]), and only then is the plugin's library opened. From then on it hands
//! the CA's `Http` frames to its worker threads, and forwards the plugin's host calls and log
//! lines to the CA. It ends when the CA says `Shutdown` or closes the socket; on anything else
//! from the CA it says why on stderr (the CA logs it) and exits with status 2.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use nesca_plugin_api::{
    close_inherited_descriptors_at_start, CallLimits, HostApi, HostError, HostErrorCode,
    HttpRequest, LoadedPlugin, LogLevel, PluginError,
};

use super::frame::{Frame, FrameError, Kind};
use super::{confine, lock, start_workers, InitRequest, Ready, PROTOCOL};
use crate::error::{CliError, Result};

/// The CA enforces each call's timeout (and restarts a process whose calls hang); here `init`
/// and `shutdown` may run as long as the CA lets the process live.
const NO_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest `Init` frame: a plugin's configuration, which the operator wrote (16 MiB is far
/// beyond any real one; the bound only keeps a broken peer from costing memory).
const MAX_INIT_FRAME: usize = 16 << 20;

/// The socket to the CA, shared by the threads that write to it.
#[derive(Clone)]
struct Writer(Arc<Mutex<UnixStream>>);

impl Writer {
    /// Sends a frame; a CA that is gone ends the process (nothing is left to serve).
    fn send(&self, frame: Frame) {
        if frame.write_to(&mut *lock(&self.0)).is_err() {
            std::process::exit(0);
        }
    }
}

/// Host calls the plugin made that wait for the CA's answer, by call id.
type AwaitedAnswers =
    Arc<Mutex<HashMap<u64, mpsc::SyncSender<std::result::Result<Vec<u8>, HostError>>>>>;

/// The host API as the plugin in this process sees it: every call goes to the CA.
struct RemoteHost {
    writer: Writer,
    awaited: AwaitedAnswers,
    next_id: AtomicU64,
}

impl HostApi for RemoteHost {
    fn call(&self, _plugin: &str, method: &str, request_json: &[u8]) -> Result<Vec<u8>, HostError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.awaited).insert(id, tx);
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

/// A failed step of the set-up, with its cause.
fn setup<E: std::error::Error + Send + Sync + 'static>(
    step: &'static str,
) -> impl FnOnce(E) -> CliError {
    move |e| CliError::PluginHost {
        step,
        source: Box::new(e),
    }
}

/// `nesca plugin-host`.
pub(crate) fn run() -> Result<()> {
    // First, while this process has one thread and has opened nothing (the function's contract).
    close_inherited_descriptors_at_start().map_err(setup("closing inherited descriptors"))?;
    let socket: UnixStream = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(setup("taking the socket on stdin"))?;
    let writer = Writer(Arc::new(Mutex::new(
        socket.try_clone().map_err(setup("cloning the socket"))?,
    )));
    let mut reader = BufReader::new(socket);

    let init = Frame::read_from(&mut reader, MAX_INIT_FRAME).map_err(setup("reading Init"))?;
    if init.kind != Kind::Init || init.head != PROTOCOL {
        return Err(setup("reading Init")(FrameError::Unexpected {
            expected: PROTOCOL,
            kind: init.kind,
            head: init.head,
        }));
    }
    let request: InitRequest =
        serde_json::from_slice(&init.body).map_err(setup("decoding Init"))?;

    let readable =
        confine::readable_paths(&request.path, &confine::files_named_in(&request.config));
    let confinement = confine::restrict_to(&readable).map_err(setup("confinement"))?;
    confine::forbid_syscalls().map_err(setup("system-call filter"))?;
    // Said now, before any of the plugin's code runs: it could forge anything said later.
    writer.send(Frame::new(Kind::Confined, 0, "", json(&confinement)));

    let awaited: AwaitedAnswers = Arc::default();
    let host = Arc::new(RemoteHost {
        writer: writer.clone(),
        awaited: awaited.clone(),
        next_id: AtomicU64::new(1),
    });
    // The reader answers the CA from the start (a plugin whose init calls the host gets the
    // CA's refusal); HTTP calls come only once the plugin is loaded and the CA has its Ready.
    let (loaded_tx, loaded_rx) = mpsc::sync_channel::<LoadedPlugin>(1);
    let (max_frame, workers) = (request.max_frame, request.max_in_flight);
    let serving = {
        let writer = writer.clone();
        std::thread::Builder::new()
            .name("plugin-host reader".into())
            .spawn(move || serve(reader, max_frame, &writer, &awaited, &loaded_rx, workers))
            .map_err(setup("starting the reader thread"))?
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

/// Ends the process because the CA broke the protocol: one line on stderr, which the CA logs.
fn broken_by_the_ca(why: &dyn std::fmt::Display) -> ! {
    eprintln!("nesca plugin-host: {why}");
    std::process::exit(2)
}

/// Reads the CA's frames until it says stop or goes away: host-call answers go to the waiting
/// call, HTTP requests to the plugin (once it is loaded) through `workers` threads started
/// then (the CA sends at most that many calls at once).
fn serve(
    mut reader: BufReader<UnixStream>,
    max_frame: usize,
    writer: &Writer,
    awaited: &AwaitedAnswers,
    loaded: &mpsc::Receiver<LoadedPlugin>,
    workers: usize,
) {
    let mut plugin: Option<LoadedPlugin> = None;
    let mut calls: Option<mpsc::Sender<Frame>> = None;
    loop {
        let frame = match Frame::read_from(&mut reader, max_frame) {
            Ok(f) => f,
            Err(FrameError::Closed) => std::process::exit(0),
            Err(e) => broken_by_the_ca(&e),
        };
        match frame.kind {
            Kind::HostAnswer | Kind::HostFailed => {
                let answer = if frame.kind == Kind::HostAnswer {
                    Ok(frame.body)
                } else {
                    Err(HostError::from_payload(&frame.body))
                };
                if let Some(tx) = lock(awaited).remove(&frame.id) {
                    let _ = tx.send(answer);
                }
            }
            Kind::Http => {
                if calls.is_none() {
                    let Ok(p) = loaded.recv() else {
                        broken_by_the_ca(&"an Http frame before the plugin was loaded")
                    };
                    let (to_ca, called) = (writer.clone(), p.clone());
                    let started = start_workers(workers, "plugin-host call", move |f: Frame| {
                        to_ca.send(answer_http(&called, f.id, &f.body));
                    });
                    match started {
                        Ok(tx) => calls = Some(tx),
                        Err(e) => broken_by_the_ca(&format!("cannot start its threads: {e}")),
                    }
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
            other => broken_by_the_ca(&format!("a {other:?} frame from the CA")),
        }
    }
}

/// One HTTP call into the plugin, on this worker thread, as the frame that answers it.
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
