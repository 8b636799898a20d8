//! The channels' mTLS listener in a test: a partner with a server and a client certificate,
//! the `[channels]` section that serves the echo plugin on it, and `openssl s_client` talking
//! to it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::demo::Demo;
use super::net::free_port;
use super::partner::{add_partner, issue_cert};
use super::plugins::test_plugin;
use super::run::{s, Output};

/// Longest one `s_client` exchange may take (`timeout` kills it then).
const S_CLIENT_LIMIT_SECONDS: &str = "20";

/// A partner `acme` with a secure-communication certificate for the listener (127.0.0.1) and
/// a role certificate `kec-1` for the client, and the port the listener will use.
pub(crate) struct MtlsListener {
    pub port: u16,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The CA chain s_client verifies the listener with.
    pub ca: PathBuf,
}

impl MtlsListener {
    /// Registers the partner, issues both certificates and writes `[channels]` (the listener
    /// on a free port, the echo plugin) into the demo's configuration. Start the server after.
    #[track_caller]
    pub(crate) fn configure(demo: &Demo) -> MtlsListener {
        add_partner(demo, "acme").ok();
        let (o, server_cert) = issue_cert(demo, "acme", "secure-comm", "127.0.0.1", "server.pem");
        o.ok();
        let (o, client_cert) = issue_cert(demo, "acme", "role", "kec-1", "client.pem");
        o.ok();
        let server_key = key_of(demo, "secure-comm", "127.0.0.1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&server_key, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let chain_file = demo.work.join("server-chain.pem");
        let chain = format!(
            "{}{}",
            fs::read_to_string(&server_cert).unwrap(),
            fs::read_to_string(demo.path("issuing-ca.pem")).unwrap()
        );
        fs::write(&chain_file, chain).unwrap();
        let port = free_port();
        let path = demo.config();
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            "\n[channels]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            s(&chain_file),
            s(&server_key)
        ));
        text.push_str(&format!(
            "\n[[plugins]]\npath = \"{}\"\n",
            s(&test_plugin("echo"))
        ));
        fs::write(&path, text).unwrap();
        MtlsListener {
            port,
            client_cert,
            client_key: key_of(demo, "role", "kec-1"),
            ca: demo.path("ca-chain.pem"),
        }
    }

    /// The partner's client certificate and key, for [`over_mtls`].
    pub(crate) fn client(&self) -> Option<(&Path, &Path)> {
        Some((&self.client_cert, &self.client_key))
    }
}

/// The key [`issue_cert`] made for a `kind` certificate named `cn`.
pub(crate) fn key_of(demo: &Demo, kind: &str, cn: &str) -> PathBuf {
    demo.work.join(format!("{kind}-{cn}.key"))
}

/// Sends `request` through `openssl s_client` presenting `client` (none when `None`) and
/// returns everything s_client printed and how long it ran. stdin stays open until s_client
/// ends: at its end of file s_client would close the connection before the answer arrives.
/// So s_client ends when the server closes the connection (after a `Connection: close`
/// answer, at a refused handshake, or by a timeout of its own), or after 20 s.
pub(crate) fn over_mtls(
    port: u16,
    request: &str,
    client: Option<(&Path, &Path)>,
    ca: &Path,
) -> (String, Duration) {
    let mut cmd = Command::new("timeout");
    cmd.args([S_CLIENT_LIMIT_SECONDS, "openssl", "s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-CAfile",
            s(ca),
            "-verify_return_error",
            "-quiet",
            "-no_ign_eof",
        ]);
    if let Some((cert, key)) = client {
        cmd.args(["-cert", s(cert), "-key", s(key)]);
    }
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(request.as_bytes());
    let _ = stdin.flush();
    let out = child.wait_with_output().expect("s_client output");
    let took = started.elapsed();
    drop(stdin);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text, took)
}

/// One HTTP/1.1 GET of `path` over mTLS (`Connection: close`); what s_client printed.
pub(crate) fn get_over_mtls(
    port: u16,
    path: &str,
    client: Option<(&Path, &Path)>,
    ca: &Path,
) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    over_mtls(port, &request, client, ca).0
}

/// `nesca channels tls-cert --name localhost --name 127.0.0.1`: the channel listener's own
/// certificate for both names, in place (the command must succeed; its output is returned).
#[track_caller]
pub(crate) fn channels_tls_cert(demo: &Demo) -> Output {
    demo.nesca(&[
        "channels",
        "tls-cert",
        "--config",
        s(&demo.config()),
        "--name",
        "localhost",
        "--name",
        "127.0.0.1",
    ])
    .ok()
}
