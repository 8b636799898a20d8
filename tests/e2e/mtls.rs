//! The channels' mTLS listener: only certificates nesca issued to a registered partner, and
//! active now, open a connection; the verified chain reaches the plugin.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::partner::{add_partner, issue_cert, withdraw_partner_cert};
use crate::support::plugins::test_plugin;
use crate::support::server::{server_demo, Server};
use crate::support::*;

/// One HTTP/1.1 GET through `openssl s_client` presenting `cert`/`key` (none when `None`);
/// returns everything s_client printed. Bounded by `timeout`.
fn get_over_mtls(port: u16, path: &str, client: Option<(&Path, &Path)>, ca: &Path) -> String {
    let mut cmd = Command::new("timeout");
    cmd.args(["20", "openssl", "s_client", "-connect"])
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
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    // stdin stays open until s_client ends: at its end of file s_client would close the
    // connection before the answer arrives. The server closes it after answering
    // (Connection: close), or at once when it refuses the handshake.
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(request.as_bytes());
    let _ = stdin.flush();
    let out = child.wait_with_output().expect("s_client output");
    drop(stdin);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn channels_over_mtls_accept_only_active_partner_certificates() {
    let demo = server_demo();
    add_partner(&demo, "acme").ok();
    let (o, server_cert) = issue_cert(&demo, "acme", "secure-comm", "127.0.0.1", "server.pem");
    o.ok();
    let (o, client_cert) = issue_cert(&demo, "acme", "role", "kec-1", "client.pem");
    o.ok();
    let (o, revoked_cert) = issue_cert(&demo, "acme", "role", "kec-2", "revoked.pem");
    let revoked_serial = single_serial_line(&o.ok());
    // issue_cert's CSR keys: work/{kind}-{cn}.key.
    let key_of = |kind: &str, cn: &str| demo.work.join(format!("{kind}-{cn}.key"));
    let server_key = key_of("secure-comm", "127.0.0.1");
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

    // Certificates that must not get in: nesca's NES (no clientAuth, not a partner's), and a
    // client certificate from another CA.
    let nes_csr = demo.csr("nes", Key::P256);
    let (nes_cert, _) = demo.issue_ok(&nes_csr, "nes.pem", &[]);
    let foreign_key = demo.work.join("foreign.key");
    let foreign_cert = demo.work.join("foreign.pem");
    self_signed_p256(
        &foreign_key,
        &foreign_cert,
        "/CN=intruder",
        30,
        &["-addext", "extendedKeyUsage=clientAuth"],
    );

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
    let mut server = Server::serve(&demo);
    let ca = demo.path("ca-chain.pem");

    let ok = get_over_mtls(
        port,
        "/channels/echo/hello",
        Some((&client_cert, &key_of("role", "kec-1"))),
        &ca,
    );
    assert!(
        ok.contains("HTTP/1.1 200"),
        "a partner's role certificate was refused:\n{ok}\n{}",
        server.describe()
    );
    assert!(
        // The leaf, and what else s_client sends of the chain it built from -CAfile.
        ok.contains("\"client_certs\":") && !ok.contains("\"client_certs\":0"),
        "the plugin did not get the client chain:\n{ok}"
    );
    assert!(ok.contains("\"path\":\"/hello\""), "{ok}");

    // With mTLS configured, the plain public listener does not serve the channels.
    assert_eq!(server.get("/channels/echo/hello").status, 404);

    for (what, client) in [
        ("no client certificate", None),
        (
            "a NES certificate",
            Some((nes_cert.as_path(), demo.work.join("nes.key"))),
        ),
        (
            "another CA's certificate",
            Some((foreign_cert.as_path(), foreign_key.clone())),
        ),
    ] {
        let out = match &client {
            Some((c, k)) => get_over_mtls(port, "/channels/echo/x", Some((c, k)), &ca),
            None => get_over_mtls(port, "/channels/echo/x", None, &ca),
        };
        assert!(!out.contains("HTTP/1.1 200"), "{what} got in:\n{out}");
    }

    // Active, then revoked by the operator: refused at the next handshake.
    let revoked_key = key_of("role", "kec-2");
    let before = get_over_mtls(
        port,
        "/channels/echo/x",
        Some((&revoked_cert, &revoked_key)),
        &ca,
    );
    assert!(before.contains("HTTP/1.1 200"), "{before}");
    withdraw_partner_cert(&demo, &revoked_serial);
    let after = get_over_mtls(
        port,
        "/channels/echo/x",
        Some((&revoked_cert, &revoked_key)),
        &ca,
    );
    assert!(
        !after.contains("HTTP/1.1 200"),
        "a revoked certificate got in:\n{after}"
    );

    server.assert_running();
}
