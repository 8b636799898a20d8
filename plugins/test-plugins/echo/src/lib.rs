//! Test plugin "echo": answers every request with what it received and its configuration;
//! `/lookup/{serial}` goes through the host API, `/log` logs through the host, `POST /apply`
//! submits the application in its body (a `SubmitApplication` JSON) and
//! `/application/{channel_ref}` looks one up.
//!
//! `deny`, not `forbid`: the entry point made by `export_plugin!` carries an
//! `#[allow(unsafe_code)]` for its `#[no_mangle]`, which `forbid` would reject. This crate itself
//! contains no unsafe code.
#![deny(unsafe_code)]

use nesca_plugin_api::{
    export_plugin, Host, HttpRequest, HttpResponse, InitError, LogLevel, Plugin,
};
use serde_json::{json, Value};

pub struct Echo {
    config: Value,
    host: Host,
}

impl Plugin for Echo {
    const NAME: &'static str = "echo";
    const VERSION: &'static str = "1.0.0";

    fn init(config: Value, host: Host) -> Result<Self, InitError> {
        Ok(Echo { config, host })
    }

    fn handle_http(&self, request: HttpRequest) -> HttpResponse {
        if let Some(serial) = request.path.strip_prefix("/lookup/") {
            return match self.host.lookup_certificate(serial) {
                Ok(info) => HttpResponse::json(200, &info),
                Err(e) => HttpResponse::text(404, e.to_string()),
            };
        }
        if request.path == "/apply" && request.method == "POST" {
            let application = match nesca_plugin_api::decode::<
                nesca_plugin_api::host_api::SubmitApplication,
            >(&request.body)
            {
                Ok(a) => a,
                Err(e) => return HttpResponse::text(400, e.to_string()),
            };
            return match self.host.submit_application(&application) {
                Ok(issued) => HttpResponse::json(200, &issued),
                Err(e) => HttpResponse::text(422, e.to_string()),
            };
        }
        if let Some(reference) = request.path.strip_prefix("/application/") {
            return match self.host.lookup_application(reference) {
                Ok(info) => HttpResponse::json(200, &info),
                Err(e) => HttpResponse::text(404, e.to_string()),
            };
        }
        if request.path == "/log" {
            self.host.log(LogLevel::Info, "hello from echo");
            return HttpResponse::text(200, "logged");
        }
        HttpResponse::json(
            200,
            &json!({
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "body": String::from_utf8_lossy(&request.body),
                "config": self.config,
                "client_certs": request.client_cert_chain.len(),
            }),
        )
        .with_header("x-plugin", "echo")
    }
}

export_plugin!(Echo);
