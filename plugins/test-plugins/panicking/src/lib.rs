//! Test plugin "panicking": panics in `handle_http` on `/panic` (else answers 200 "ok"), and in
//! `init` when its configuration has `"panic_in_init": true`. The host must turn both into errors.
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
        if request.path == "/panic" {
            panic!("deliberate panic in the test plugin");
        }
        HttpResponse::text(200, "ok")
    }
}

export_plugin!(Panicking);
