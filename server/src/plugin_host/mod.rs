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
//! serving OCSP and CRLs throughout ([`process`]).

mod child;
mod confine;
mod frame;
mod process;

pub(crate) use child::run as run_child;
pub(crate) use process::{PluginProcess, Spec};

use confine::Confinement;

/// Named in the `Init` frame's head: a host process of another nesca build refuses to start.
const PROTOCOL: &str = concat!("nesca-plugin-host/1 ", env!("CARGO_PKG_VERSION"));

/// The largest frame the CA accepts from a host process (an `HttpResponse` with its base64
/// body, a host call, a log line): 64 MiB, a list's report of 240,000 rows with room to spare.
/// Larger: the process is broken and is restarted.
const MAX_FRAME_FROM_HOST: usize = 64 << 20;

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

/// The `Ready` frame's body: the plugin as its table describes it, and the sandbox.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Ready {
    name: String,
    version: String,
    abi_version: u32,
    confinement: Confinement,
}
