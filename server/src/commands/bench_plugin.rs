//! `nesca bench plugin-call`: what a channel request costs through a plugin-host process, against
//! the same plugin loaded into this process, measured in one run, rounds alternating.
//!
//! Three requests to the echo test plugin (or any plugin that answers them): a small one, one
//! that makes one host call (`/lookup/01`, answered "not found" by the bench's host), and one
//! with a 1 MiB body.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use nesca_plugin_api::{
    CallLimits, HostApi, HostError, HostErrorCode, HttpRequest, HttpResponse, LoadedPlugin,
    LogLevel, PluginError,
};

use super::outln;
use crate::error::{CliError, Result};
use crate::plugin_host::{PluginProcess, Spec};

#[derive(Args)]
pub(crate) struct BenchPluginArgs {
    /// The plugin's library (the echo test plugin: target/release/libnesca_test_plugin_echo.so)
    #[arg(long)]
    plugin: PathBuf,
    /// Calls per round and kind of request
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Rounds (each runs in-process, then through the process)
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// Answers every host call "not found", at once.
struct BenchHost;

impl HostApi for BenchHost {
    fn call(&self, _plugin: &str, method: &str, _request: &[u8]) -> Result<Vec<u8>, HostError> {
        Err(HostError::without_field(
            HostErrorCode::NotFound,
            format!("{method}: nothing here (bench)"),
        ))
    }
    fn log(&self, _plugin: &str, _level: LogLevel, _message: &str) {}
}

fn request(path: &str, body: Vec<u8>) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: path.into(),
        query: None,
        headers: vec![("content-type".into(), "text/plain".into())],
        body,
        client_cert_chain: Vec::new(),
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::config("bench", format!("{what}: {e}"))
}

/// Mean microseconds per call of `n` calls.
fn time_calls(
    n: usize,
    req: &HttpRequest,
    call: &dyn Fn(&HttpRequest) -> std::result::Result<HttpResponse, PluginError>,
) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..n {
        call(req).map_err(|e| failed("call", e))?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn run(a: BenchPluginArgs) -> Result<()> {
    let limits = CallLimits {
        timeout: Duration::from_secs(30),
        max_in_flight: 4,
    };
    let config = serde_json::json!({});
    let in_process = LoadedPlugin::load(&a.plugin, &config, Arc::new(BenchHost), limits)
        .map_err(|e| failed("loading in-process", e))?;
    let process = PluginProcess::start(
        Spec {
            path: a.plugin.clone(),
            config,
            limits,
            max_body: 4 << 20,
        },
        Arc::new(BenchHost),
    )
    .map_err(|e| failed("starting the plugin-host process", e))?;

    let kinds = [
        ("small request", request("/x", b"merhaba".to_vec()), a.calls),
        ("one host call", request("/lookup/01", Vec::new()), a.calls),
        (
            "1 MiB body",
            request("/x", vec![b'a'; 1 << 20]),
            a.calls.div_ceil(20),
        ),
    ];
    outln!(
        "{:<16} {:>14} {:>16} {:>8}   ({} rounds, median)",
        "request",
        "in-process µs",
        "plugin-host µs",
        "ratio",
        a.rounds
    );
    for (name, req, n) in &kinds {
        // Warm-up: the first calls start threads and fault pages in.
        time_calls(n / 10 + 1, req, &|r| in_process.handle_http(r))?;
        time_calls(n / 10 + 1, req, &|r| process.handle_http(r))?;
        let (mut inside, mut outside) = (Vec::new(), Vec::new());
        for _ in 0..a.rounds.max(1) {
            inside.push(time_calls(*n, req, &|r| in_process.handle_http(r))?);
            outside.push(time_calls(*n, req, &|r| process.handle_http(r))?);
        }
        let (i, o) = (median(&mut inside), median(&mut outside));
        outln!("{name:<16} {i:>14.1} {o:>16.1} {:>8.2}", o / i);
    }
    process.shutdown();
    Ok(())
}
