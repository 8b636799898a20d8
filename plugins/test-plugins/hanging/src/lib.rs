//! Test plugin "hanging": never returns from `/hang` (else answers 200 "ok"). The host must time
//! the call out and stay responsive.
//!
//! `deny`, not `forbid`: see the echo test plugin.
#![deny(unsafe_code)]

use std::thread::sleep;
use std::time::Duration;

use nesca_plugin_api::{export_plugin, Host, HttpRequest, HttpResponse, InitError, Plugin};
use serde_json::Value;

pub struct Hanging;

impl Plugin for Hanging {
    const NAME: &'static str = "hanging";
    const VERSION: &'static str = "1.0.0";

    fn init(_config: Value, _host: Host) -> Result<Self, InitError> {
        Ok(Hanging)
    }

    fn handle_http(&self, request: HttpRequest) -> HttpResponse {
        if request.path == "/hang" {
            loop {
                sleep(Duration::from_secs(3600));
            }
        }
        HttpResponse::text(200, "ok")
    }
}

export_plugin!(Hanging);
