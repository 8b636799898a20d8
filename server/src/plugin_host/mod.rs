//! Plugins run in plugin-host processes, one per plugin: the same `nesca` binary started as
//! `nesca plugin-host`, which loads the plugin's cdylib through the versioned ABI
//! (`nesca_plugin_api::LoadedPlugin`) and talks to the CA over a socket pair carrying the same
//! JSON payloads the ABI carries ([`frame`]).
//!
//! Why: PKCS#11 login is per process. A plugin loaded into the CA could sign with the CA key,
//! write the database, read the PIN, or take the CA down with a crash. A plugin-host process is
//! started with a cleared environment and no inherited descriptor, never reads the
//! configuration, and is confined with Landlock before the plugin's code runs ([`confine`]):
//! it holds no PIN, no database, no HSM session and no TLS key, and can reach the CA only
//! through the host API, as the channel it is. A crash or hang ends that process alone; the CA
//! answers the channel's requests `503` while it restarts the process with backoff, and keeps
//! serving OCSP and CRLs throughout.
//!
//! - [`supervisor`]: the CA's handle on a plugin — starting, calling, restarting;
//! - [`connection`]: one running process as the CA holds it — its calls and host calls;
//! - [`host_main`]: the plugin-host process's side (`nesca plugin-host`);
//! - [`frame`]: the wire between them; [`confine`]: the sandbox.

mod confine;
mod connection;
mod frame;
mod host_main;
mod supervisor;

pub(crate) use host_main::run as run_child;
pub(crate) use supervisor::{PluginProcess, Spec};

use std::sync::{mpsc, Arc, Mutex, MutexGuard};

/// Named in the `Init` frame's head: a host process of another nesca build refuses to start.
const PROTOCOL: &str = concat!("nesca-plugin-host/1 ", env!("CARGO_PKG_VERSION"));

/// The largest frame the CA accepts from a host process (an `HttpResponse` with its base64
/// body, a host call, a log line): 64 MiB, a list's report of 240,000 rows with room to spare.
/// Larger: the process is broken and is restarted.
const MAX_FRAME_FROM_HOST: usize = 64 << 20;

/// The largest host-call answer the CA sends (the same bound, the other way): a larger one is
/// answered as an internal error instead, so that the host process never has to refuse it.
const MAX_HOST_ANSWER: usize = 64 << 20;

/// The `Init` frame's body: what the host process loads, and how.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct InitRequest {
    /// The plugin's library.
    path: std::path::PathBuf,
    /// Its configuration section, as JSON.
    config: serde_json::Value,
    /// Calls the plugin may run at once (the CA bounds them too).
    max_in_flight: usize,
    /// The largest frame the host process accepts from the CA (a request and its body).
    max_frame: usize,
}

/// The `Ready` frame's body: the plugin as its table describes it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Ready {
    name: String,
    version: String,
    abi_version: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts `n` threads (at least one) named `name` that take jobs from the returned queue and
/// hand each to `work`, until every sender of the queue is gone. Started up front, with the
/// process they serve: a thread per call cost about as much as the call itself
/// (docs/BENCHMARKS.md, "Plugin-host processes").
fn start_workers<J: Send + 'static>(
    n: usize,
    name: &str,
    work: impl Fn(J) + Send + Sync + 'static,
) -> std::io::Result<mpsc::Sender<J>> {
    let (tx, rx) = mpsc::channel::<J>();
    let (rx, work) = (Arc::new(Mutex::new(rx)), Arc::new(work));
    for _ in 0..n.max(1) {
        let (rx, work) = (rx.clone(), work.clone());
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || loop {
                let next = lock(&rx).recv();
                let Ok(job) = next else { return };
                work(job);
            })?;
    }
    Ok(tx)
}
