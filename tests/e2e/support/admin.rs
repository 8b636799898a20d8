//! The admin API in a test: operators registered with `nesca operator add` from their own
//! CSRs, the `[admin]` listener on a free port, and `curl` as the operator's client (mutual
//! TLS, the listener verified against the demo's `ca-chain.pem`).

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::demo::Demo;
use super::net::free_port;
use super::openssl::Key;
use super::run::{s, Output};
use super::toml::toml_replace;

/// An operator's certificate and key.
pub(crate) struct Operator {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub serial: String,
}

/// `nesca operator add` for `name` in `role`, whatever the outcome, and where the
/// certificate and key are.
pub(crate) fn try_add_operator(demo: &Demo, name: &str, role: &str) -> (Output, Operator) {
    let file = format!("{}-{role}", name.replace(' ', "-").to_lowercase());
    let csr = demo.csr(&format!("op-{file}"), Key::P256);
    let cert = demo.work.join(format!("op-{file}.pem"));
    let o = demo.nesca(&[
        "operator",
        "add",
        "--config",
        s(&demo.config()),
        "--name",
        name,
        "--role",
        role,
        "--csr",
        s(&csr),
        "--out",
        s(&cert),
    ]);
    let serial = serde_json::from_str::<Value>(o.stdout.trim())
        .ok()
        .and_then(|v| v["serial"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let op = Operator {
        cert,
        key: demo.work.join(format!("op-{file}.key")),
        serial,
    };
    (o, op)
}

/// [`try_add_operator`]; panics unless it succeeds.
#[track_caller]
pub(crate) fn add_operator(demo: &Demo, name: &str, role: &str) -> Operator {
    let (o, op) = try_add_operator(demo, name, role);
    o.ok();
    assert!(
        op.cert.is_file() && !op.serial.is_empty(),
        "operator {name}"
    );
    op
}

/// The admin listener of a demo: its port and the chain that verifies it.
pub(crate) struct Admin {
    pub port: u16,
    pub ca: PathBuf,
}

/// One answer: the HTTP status (0: no HTTP answer, the connection was refused, as in a
/// handshake that refused the client certificate), the JSON body, and curl's stderr.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
    /// The response headers (and curl's own messages).
    pub headers: String,
}

impl Admin {
    /// Puts `[admin] listen` on a free port of 127.0.0.1 (the demo's listener certificate
    /// names 127.0.0.1). Start the server after.
    pub(crate) fn configure(demo: &Demo) -> Admin {
        Admin::configure_with(demo, &[])
    }

    /// [`Admin::configure`] with `[admin]` keys set to bare TOML values.
    pub(crate) fn configure_with(demo: &Demo, settings: &[(&str, &str)]) -> Admin {
        let port = free_port();
        let path = demo.config();
        let mut text = fs::read_to_string(&path).unwrap();
        text = toml_replace(&text, "admin", "listen", &format!("127.0.0.1:{port}"));
        for (key, value) in settings {
            text = super::toml::toml_replace_raw(&text, "admin", key, value);
        }
        fs::write(&path, text).unwrap();
        Admin {
            port,
            ca: demo.path("ca-chain.pem"),
        }
    }

    /// `METHOD /admin/v1/PATH` as `op` (no client certificate when `None`), with `body` as
    /// JSON.
    pub(crate) fn call(
        &self,
        op: Option<&Operator>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        self.call_with_headers(op, method, path, body, &[])
    }

    /// [`Admin::call`] with these request headers (`Name: value`) added.
    pub(crate) fn call_with_headers(
        &self,
        op: Option<&Operator>,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[&str],
    ) -> Answer {
        let mut cmd = Command::new("curl");
        for h in headers {
            cmd.args(["-H", h]);
        }
        cmd.args(["-sS", "--max-time", "20", "-D", "/dev/stderr", "--cacert"])
            .arg(&self.ca)
            .args(["-X", method, "-w", "\n%{http_code}"]);
        if let Some(op) = op {
            cmd.arg("--cert").arg(&op.cert).arg("--key").arg(&op.key);
        }
        if body.is_some() {
            cmd.args([
                "-H",
                "content-type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        cmd.arg(format!("https://127.0.0.1:{}/admin/v1/{path}", self.port));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            if let Some(b) = body {
                stdin.write_all(b.to_string().as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().expect("curl output");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let (text, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        Answer {
            status: code.trim().parse().unwrap_or(0),
            body: serde_json::from_str(text).unwrap_or(Value::Null),
            headers: stderr,
        }
    }

    pub(crate) fn get(&self, op: &Operator, path: &str) -> Answer {
        self.call(Some(op), "GET", path, None)
    }

    pub(crate) fn post(&self, op: &Operator, path: &str, body: &Value) -> Answer {
        self.call(Some(op), "POST", path, Some(body))
    }
}

impl Answer {
    /// The body, once the status is `status`; panics with the whole answer otherwise.
    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "expected {status}, got {}: {}\n{}",
            self.status, self.body, self.headers
        );
        &self.body
    }

    /// The `x-request-id` header of the answer.
    pub(crate) fn request_id(&self) -> String {
        self.headers
            .lines()
            .find_map(|l| {
                l.to_lowercase()
                    .strip_prefix("x-request-id: ")
                    .map(|v| v.trim().to_owned())
            })
            .unwrap_or_default()
    }

    /// Whether the TLS handshake was refused with an alert (no HTTP answer).
    pub(crate) fn refused_in_handshake(&self) -> bool {
        self.status == 0 && self.headers.contains("alert")
    }

    /// The error code of an error answer.
    pub(crate) fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}
