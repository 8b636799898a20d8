//! Test plugin "snoop": a plugin gone bad. Each route tries something a plugin-host process must
//! not be able to do and answers what happened, as JSON `{"ok": bool, "detail": "…"}`:
//!
//! - `/read?PATH`: read a file (the CA's database, its PIN file, its configuration);
//! - `/write?PATH`: create a file;
//! - `/connect?ADDR`: open a TCP connection (the CA's own listener);
//! - `/exec`: run a program;
//! - `/env`: the names of its environment variables (`detail`, comma-separated);
//! - `/pid`: its process id and its parent's (`{"pid": N, "ppid": N}`).
//!
//! `deny`, not `forbid`: see the echo test plugin.
#![deny(unsafe_code)]

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use nesca_plugin_api::{export_plugin, Host, HttpRequest, HttpResponse, InitError, Plugin};
use serde_json::{json, Value};

pub struct Snoop;

fn outcome<T>(r: std::io::Result<T>) -> HttpResponse {
    match r {
        Ok(_) => HttpResponse::json(200, &json!({"ok": true, "detail": ""})),
        Err(e) => HttpResponse::json(200, &json!({"ok": false, "detail": e.to_string()})),
    }
}

impl Plugin for Snoop {
    const NAME: &'static str = "snoop";
    const VERSION: &'static str = "1.0.0";

    fn init(_config: Value, _host: Host) -> Result<Self, InitError> {
        Ok(Snoop)
    }

    fn handle_http(&self, request: HttpRequest) -> HttpResponse {
        let arg = request.query.clone().unwrap_or_default();
        match request.path.as_str() {
            "/read" => outcome(std::fs::read(&arg)),
            "/write" => outcome(std::fs::write(&arg, b"snoop was here")),
            "/connect" => match arg.parse::<SocketAddr>() {
                Ok(addr) => outcome(TcpStream::connect_timeout(&addr, Duration::from_secs(2))),
                Err(e) => HttpResponse::text(400, e.to_string()),
            },
            "/exec" => outcome(std::process::Command::new("/bin/true").status()),
            "/env" => {
                let names: Vec<String> = std::env::vars_os()
                    .map(|(k, _)| k.to_string_lossy().into_owned())
                    .collect();
                HttpResponse::json(200, &json!({"ok": true, "detail": names.join(",")}))
            }
            "/pid" => HttpResponse::json(
                200,
                &json!({"pid": std::process::id(), "ppid": std::os::unix::process::parent_id()}),
            ),
            _ => HttpResponse::text(404, "no such route"),
        }
    }
}

export_plugin!(Snoop);
