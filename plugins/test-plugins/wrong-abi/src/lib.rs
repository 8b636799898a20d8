//! Test plugin "wrong-abi": exports a table that claims the previous ABI version, as a plugin
//! built against an older nesca does. Written by hand with the raw ABI types (not
//! `export_plugin!`); the host must refuse it before calling any of its functions, so they only
//! report an error.
#![deny(unsafe_code)]

use std::mem::size_of;

use nesca_plugin_api::{HostTable, PluginTable, RBuf, RStr, ABI_VERSION};

/// The ABI version this table claims: the one before this crate's.
pub const CLAIMED_ABI_VERSION: u32 = ABI_VERSION - 1;

// Safe functions coerce to the table's `unsafe extern "C" fn` types. None of them dereferences
// its pointers: the host never calls them.
extern "C" fn init(_host: *const HostTable, _config_json: RStr, _out: *mut RBuf) -> i32 {
    1
}

extern "C" fn handle_http(_request_json: RStr, _out: *mut RBuf) -> i32 {
    1
}

extern "C" fn free_buf(_buf: RBuf) {}

extern "C" fn shutdown() {}

static TABLE: PluginTable = PluginTable {
    abi_version: CLAIMED_ABI_VERSION,
    table_size: size_of::<PluginTable>() as u32,
    name: RStr::from_static("wrong-abi"),
    version: RStr::from_static("1.0.0"),
    init,
    handle_http,
    free_buf,
    shutdown,
};

/// The entry point, under the ABI's symbol name.
// SAFETY: `#[no_mangle]` is the one thing the `unsafe_code` lint flags here (an exported symbol
// can clash with another of the same name); the name is the one reserved for nesca plugins and is
// exported once, and the function only returns a pointer to an immutable static.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn nesca_plugin_entry() -> *const PluginTable {
    &TABLE
}
