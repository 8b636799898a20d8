//! The channels' mTLS listener: only certificates nesca issued to a registered partner, and
//! active now, open a connection; the verified chain reaches the plugin.

use crate::support::http::HttpResponse;
use crate::support::idcard::{ChannelClient, Signer};
use crate::support::mtls::{channels_tls_cert, get_over_mtls, key_of, MtlsListener};
use crate::support::partner::{issue_cert, withdraw_partner_cert};
use crate::support::server::{server_demo, Server};
use crate::support::*;

#[test]
fn channels_over_mtls_accept_only_active_partner_certificates() {
    let demo = server_demo();
    let listener = MtlsListener::configure(&demo);
    let (o, revoked_cert) = issue_cert(&demo, "acme", "role", "kec-2", "revoked.pem");
    let revoked_serial = single_serial_line(&o.ok());

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

    // Refusals are logged at info: the NES one must be decided without the store.
    let mut server = Server::serve_with_env(&demo, &[("RUST_LOG", "info")]);
    let (port, ca) = (listener.port, listener.ca.clone());

    let ok = get_over_mtls(port, "/channels/echo/hello", listener.client(), &ca);
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

    // An end-entity client certificate from another CA; a certificate nesca issued with
    // extendedKeyUsage serverAuth only (the portal listener's).
    let other_ca =
        crate::support::idcard::TestCa::new(&demo.work, "other-ca", "/C=TR/O=Başka/CN=Başka SM");
    let t = now();
    let other_leaf = other_ca.issue(
        "other-client",
        "/C=TR/O=Başka/CN=istemci",
        "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n",
        t - 300,
        t + 86400,
    );
    // Each is refused in the handshake with the TLS alert docs/channels/kdhs.md names
    // (TLS 1.3, as OpenSSL reports it).
    for (what, client, alert) in [
        ("no client certificate", None, "alert certificate required"),
        (
            "a NES certificate (no extendedKeyUsage)",
            Some((nes_cert.as_path(), demo.work.join("nes.key"))),
            "alert access denied",
        ),
        (
            "another CA's end-entity certificate",
            Some((other_leaf.cert.as_path(), other_leaf.key.clone())),
            "alert unknown ca",
        ),
        (
            "a self-signed CA certificate",
            Some((foreign_cert.as_path(), foreign_key.clone())),
            "alert certificate unknown",
        ),
        (
            "nesca's serverAuth-only certificate",
            Some((
                demo.path("portal-tls.pem").as_path(),
                demo.path("portal-tls.key"),
            )),
            "alert unsupported certificate",
        ),
    ] {
        let out = match &client {
            Some((c, k)) => get_over_mtls(port, "/channels/echo/x", Some((c, k)), &ca),
            None => get_over_mtls(port, "/channels/echo/x", None, &ca),
        };
        assert!(!out.contains("HTTP/1.1 200"), "{what} got in:\n{out}");
        assert!(out.contains(alert), "{what}: no {alert:?}:\n{out}");
    }
    // The NES (no clientAuth) was refused on the certificate alone, before any store read
    //.
    server.wait_for_log_line(
        &["no clientAuth extended key usage: not a partner or operator certificate"],
        std::time::Duration::from_secs(5),
    );

    // Active, then revoked by the operator: refused at the next handshake.
    let revoked_key = key_of(&demo, "role", "kec-2");
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
    assert!(
        after.contains("alert certificate revoked"),
        "a revoked certificate: no certificate_revoked alert:\n{after}"
    );

    server.assert_running();
}

/// Partner status is checked on every request, not only at the handshake: a certificate
/// revoked, or its partner deactivated, after the handshake gets 403 `client_certificate` on
/// the open keep-alive connection's next request.
#[test]
fn an_open_connection_stops_when_its_certificate_or_partner_does() {
    let demo = server_demo();
    let listener = MtlsListener::configure(&demo);
    let (o, cert) = issue_cert(&demo, "acme", "role", "kec-3", "kec3.pem");
    let serial = single_serial_line(&o.ok());
    let mut server = Server::serve(&demo);
    let client = |cert: &std::path::Path, key: std::path::PathBuf| {
        ChannelClient::new(
            listener.port,
            &listener.ca,
            Some(&Signer {
                cert: cert.to_path_buf(),
                key,
            }),
        )
    };
    let refused = |r: &HttpResponse, why: &str| {
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            r.status == 403 && body.contains("client_certificate") && body.contains(why),
            "{} {body}",
            r.status
        );
    };

    let revoked = client(&cert, key_of(&demo, "role", "kec-3"));
    let mut open = revoked.keep_alive().unwrap();
    assert_eq!(open.get("/channels/echo/a").unwrap().status, 200);
    withdraw_partner_cert(&demo, &serial).ok();
    refused(
        &open.get("/channels/echo/b").unwrap(),
        "suspended or revoked",
    );

    let kec1 = client(&listener.client_cert, listener.client_key.clone());
    let mut open = kec1.keep_alive().unwrap();
    assert_eq!(open.get("/channels/echo/a").unwrap().status, 200);
    demo.nesca(&[
        "partner",
        "deactivate",
        "--config",
        s(&demo.config()),
        "--id",
        "acme",
    ])
    .ok();
    refused(&open.get("/channels/echo/b").unwrap(), "no longer active");
    server.assert_running();
}

/// A modern TLS client (rustls, the name checked) refuses a partner's secure-communication
/// certificate as the listener's (its host only in the subject CN), and accepts the listener
/// certificate `nesca channels tls-cert` issues (the names in subjectAltName, serverAuth).
#[test]
fn a_rustls_client_verifies_the_channel_listener_by_name() {
    let demo = server_demo();
    let listener = MtlsListener::configure(&demo);
    let partner = Signer {
        cert: listener.client_cert.clone(),
        key: listener.client_key.clone(),
    };
    let get = |name: &str| {
        ChannelClient::verifying(listener.port, &listener.ca, Some(&partner), name)
            .get("/channels/echo/hello")
    };
    let server = Server::serve(&demo);
    let refused = match get("127.0.0.1") {
        Err(e) => e,
        Ok(r) => panic!(
            "a certificate without subjectAltName was accepted: {}",
            r.status
        ),
    };
    assert!(refused.contains("not valid for name"), "{refused}");
    server.terminate(std::time::Duration::from_secs(20));

    let out = channels_tls_cert(&demo);
    let issued: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    let chain = issued["tls_cert"].as_str().expect("tls_cert");
    let ext = openssl(&[
        "x509",
        "-in",
        chain,
        "-noout",
        "-ext",
        "subjectAltName,extendedKeyUsage",
    ])
    .stdout;
    assert!(
        ext.contains("DNS:localhost")
            && ext.contains("IP Address:127.0.0.1")
            && ext.contains("TLS Web Server Authentication"),
        "{ext}"
    );
    let _server = Server::serve(&demo);
    for name in ["localhost", "127.0.0.1"] {
        let answer = get(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(answer.status, 200, "{name}: {}", answer.text());
    }
    assert!(
        get("example.com").is_err(),
        "a name the certificate does not carry"
    );
}

/// A listener certificate is issued only where it can be written: `channels tls-cert` without
/// `[channels] tls_cert`, or `portal tls-cert` whose key goes into a directory that does not
/// exist, is refused naming the option, and no certificate is added to the store (none left
/// active with its key lost); the demo's portal files stay as they were.
#[test]
fn a_listener_certificate_is_issued_only_where_it_can_be_written() {
    let demo = server_demo();
    let before = demo.cert_list().len();
    let config = demo.config();
    let unset = demo.nesca(&["channels", "tls-cert", "--config", s(&config)]);
    assert!(!unset.success(), "{}", unset.describe());
    assert!(
        unset.stderr.contains("channels.tls_cert"),
        "{}",
        unset.describe()
    );

    let pem = std::fs::read(demo.path("portal-tls.pem")).unwrap();
    let key = std::fs::read(demo.path("portal-tls.key")).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let text = toml_replace(&text, "portal", "tls_key", "no-such-dir/portal-tls.key");
    std::fs::write(&config, text).unwrap();
    let unwritable = demo.nesca(&["portal", "tls-cert", "--config", s(&config)]);
    assert!(!unwritable.success(), "{}", unwritable.describe());
    assert!(
        unwritable.stderr.contains("portal.tls_key"),
        "{}",
        unwritable.describe()
    );
    assert_eq!(
        demo.cert_list().len(),
        before,
        "a certificate was issued anyway"
    );
    assert_eq!(std::fs::read(demo.path("portal-tls.pem")).unwrap(), pem);
    assert_eq!(std::fs::read(demo.path("portal-tls.key")).unwrap(), key);
}
