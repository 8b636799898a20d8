//! Test plugin "panicking": panics in `handle_http` on `/panic` (else answers 200 "ok"), and in
//! `init` when its configuration has `"panic_in_init": true`. The host must turn both into errors.
//! Worse than a panic: `/abort` aborts its process and `/null` reads through a null pointer
//! (SIGSEGV); the CA must outlive both, and restart the plugin's process.
//!
//! `deny`, not `forbid`: see the echo test plugin.
#![deny(unsafe_code)]

use nesca_plugin_api::{export_plugin, Host, HttpRequest, HttpResponse, InitError, Plugin};
use serde_json::Value;

pub struct Panicking;

impl Plugin for Panicking {
    const NAME: &'static str = "panicking";
    const VERSION: &'static str = "1.0.0";

    fn init(config: Value, _host: Host) -> Result<Self, InitError> {
        if config["panic_in_init"] == true {
            panic!("deliberate panic in init");
        }
        Ok(Panicking)
    }

    fn handle_http(&self, request: HttpRequest) -> HttpResponse {
        match request.path.as_str() {
            "/panic" => panic!("deliberate panic in the test plugin"),
            "/abort" => std::process::abort(),
            "/null" => null_read(),
            _ => {}
        }
        HttpResponse::text(200, "ok")
    }
}

/// Reads through a null pointer: the process gets SIGSEGV.
#[allow(unsafe_code)]
fn null_read() {
    let p: *const u8 = std::ptr::null();
    // SAFETY: none — this is the crash the test plugin exists to cause; `read_volatile` keeps
    // the compiler from reasoning the read away.
    let _ = unsafe { p.read_volatile() };
}

export_plugin!(Panicking);
