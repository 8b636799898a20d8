//! The nesca plugin ABI: what front-channel plugins (cdylibs) and the `nesca` host share.
//!
//! - [`abi`](crate#the-c-abi): the versioned C ABI — [`PluginTable`], [`HostTable`], [`RStr`],
//!   [`RBuf`], [`ABI_VERSION`], [`ENTRY_SYMBOL`].
//! - Payloads: the serde JSON that crosses it, each object with `"v": 1` — [`HttpRequest`],
//!   [`HttpResponse`], [`host_api`], and [`HostError`], the typed answer of a host call that
//!   failed.
//! - Plugin side: implement [`Plugin`], call the host through [`Host`], export with
//!   [`export_plugin!`].
//! - Host side: [`LoadedPlugin::load`] checks and initialises a plugin file, and
//!   [`LoadedPlugin::handle_http`] calls it with a timeout and a bound on calls in flight; the
//!   server implements [`HostApi`].
//!
//! # The C ABI
//!
//! A plugin exports `nesca_plugin_entry`, an `extern "C" fn() -> *const PluginTable`. The host
//! checks the table's ABI version and size, the plugin's name (`[a-z0-9-]{1,32}`) and version
//! before calling anything else, then calls `init` with its [`HostTable`] and the plugin's
//! configuration (JSON). Tables only ever grow at the end (`table_size`). Buffers are freed by the
//! side that allocated them; panics never cross the boundary. The README beside this crate
//! documents the payloads with examples.
//!
//! All of the crate's `unsafe` is in three modules: the C ABI glue (`abi`), the loader, and
//! `process` (closing a plugin-host process's inherited descriptors).
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

// First: `payload!`, the macro of the versioned payloads, is used by `host_error` too.
#[macro_use]
mod payload;
#[allow(unsafe_code)]
mod abi;
mod error;
mod host_error;
#[allow(unsafe_code)]
mod loader;
mod plugin;
#[allow(unsafe_code)]
mod process;

pub use abi::{
    free_buf, HostTable, PluginTable, RBuf, RStr, ABI_VERSION, ENTRY_SYMBOL, HOST_TABLE_V1_SIZE,
    PLUGIN_TABLE_V1_SIZE, STATUS_ERROR, STATUS_OK, STATUS_PANIC,
};
pub use error::{one_line, PluginError};
pub use host_error::{HostError, HostErrorCode};
pub use loader::{CallLimits, HostApi, LoadedPlugin};
pub use payload::{decode, encode, host_api, HttpRequest, HttpResponse, LogLevel, PAYLOAD_VERSION};
#[doc(hidden)]
pub use plugin::__private;
pub use plugin::{is_valid_plugin_name, is_valid_plugin_version, Host, InitError, Plugin};
pub use process::close_inherited_descriptors_at_start;
