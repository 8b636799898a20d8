//! `nesca plugins list`: load the configured plugins and show what loaded.

use std::sync::Arc;

use nesca_plugin_api::{HostApi, HostError, HostErrorCode, LogLevel};

use super::outln;
use crate::config::Loaded;
use crate::error::Result;
use crate::{channels, ConfigArg};

/// Listing starts the plugins' processes but serves nothing. The CA refuses host calls while a
/// plugin starts and outside requests before they reach a host, so this one only answers
/// whatever might still get through, with a refusal.
struct ListingHost;

impl HostApi for ListingHost {
    fn call(&self, _plugin: &str, method: &str, _request: &[u8]) -> Result<Vec<u8>, HostError> {
        Err(HostError::new(
            HostErrorCode::Unavailable,
            method,
            "the host serves no requests during `nesca plugins list`",
        ))
    }
    fn log(&self, plugin: &str, _level: LogLevel, message: &str) {
        tracing::info!(plugin, "{message}");
    }
}

pub(crate) fn list(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    if cfg.raw.plugins.is_empty() {
        outln!(
            "no plugins configured ([[plugins]] in {})",
            cfg.file.display()
        );
        return Ok(());
    }
    let plugins = channels::load_all(&cfg, Arc::new(ListingHost))?;
    outln!(
        "{:<20} {:<12} {:<4} {:<28} path",
        "name",
        "version",
        "abi",
        "route"
    );
    for p in plugins.iter().map(|c| &c.plugin) {
        outln!(
            "{:<20} {:<12} {:<4} {:<28} {}",
            p.name(),
            p.version(),
            p.abi_version(),
            format!("/channels/{}/", p.name()),
            p.path().display()
        );
    }
    Ok(())
}
