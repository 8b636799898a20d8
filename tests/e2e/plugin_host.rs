//! Plugins in their own processes, attacked through the real binary: a plugin that aborts or
//! dereferences null leaves `nesca serve` answering OCSP and its other channels, and is started
//! again; a plugin gone bad finds none of the CA's environment, files, network or processes
//! within reach.

use std::fs;
use std::time::Duration;

use crate::support::ocsp::ocsp_good;
use crate::support::plugins::test_plugin;
use crate::support::server::{server_demo, Server};
use crate::support::*;

/// Appends the plugins (plain HTTP channels, `[channels] allow_plain_http`) to the demo.
fn with_plugins(demo: &Demo, plugins: &[&str]) {
    let path = demo.config();
    let mut text = fs::read_to_string(&path).expect("nesca.toml");
    text.push_str("\n[channels]\nallow_plain_http = true\n");
    for p in plugins {
        text.push_str(&format!(
            "\n[[plugins]]\npath = \"{}\"\ntimeout_ms = 3000\n",
            s(&test_plugin(p))
        ));
    }
    fs::write(&path, text).expect("write nesca.toml");
}

#[test]
fn a_plugin_that_aborts_or_reads_null_leaves_serve_answering_ocsp() {
    let demo = server_demo();
    let csr = demo.csr("req", Key::P256);
    let (cert, _) = demo.issue_ok(&csr, "a.pem", &[]);
    with_plugins(&demo, &["panicking", "echo"]);
    let server = Server::serve_with_env(&demo, &[("RUST_LOG", "warn")]);
    assert_eq!(server.get("/channels/panicking/ok").status, 200);

    for (route, signal) in [("/abort", "SIGABRT"), ("/null", "SIGSEGV")] {
        // The process dies under the call: that request fails, nothing else does.
        let r = server.get(&format!("/channels/panicking{route}"));
        assert_eq!(r.status, 502, "{route}: {}", r.describe());
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON error");
        assert_eq!(v["error"]["code"], "internal", "{v}");
        server.wait_for_log_line(
            &["plugin host process ended", signal],
            Duration::from_secs(5),
        );
        // Meanwhile OCSP, CRLs, CA certificates and the other channel answer.
        ocsp_good(&demo, &server.url(), &cert, "good.der");
        assert_eq!(server.get("/crl/nes-ca.crl").status, 200, "{route}");
        assert_eq!(server.get("/ca/nes-ca.crt").status, 200, "{route}");
        assert_eq!(server.get("/channels/echo/still").status, 200, "{route}");
        // And the plugin comes back by itself.
        wait_for(
            &format!("the panicking plugin back after {route}"),
            Duration::from_secs(10),
            Duration::from_millis(100),
            || match server.get("/channels/panicking/ok") {
                r if r.status == 200 => Ok(()),
                r => Err(r.describe()),
            },
        );
    }
    let restarted = server
        .stderr()
        .lines()
        .filter(|l| l.contains("plugin host process restarted") && l.contains("panicking"))
        .count();
    assert_eq!(restarted, 2, "{}", server.describe());
}

/// What the snoop plugin's route answered: `(ok, detail)`.
fn probe(server: &Server, route: &str) -> (bool, String) {
    let r = server.get(&format!("/channels/snoop{route}"));
    assert_eq!(r.status, 200, "{route}: {}", r.describe());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("snoop answers JSON");
    (
        v["ok"].as_bool().expect("ok"),
        v["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn a_plugin_reaches_nothing_of_the_ca() {
    let demo = server_demo();
    with_plugins(&demo, &["snoop"]);
    let canary = "NESCA_TEST_CANARY";
    let server = Server::serve_with_env(&demo, &[("RUST_LOG", "info"), (canary, "s3cret")]);
    server.wait_for_log_line(
        &["snoop", "plugin host process confined (Landlock)"],
        Duration::from_secs(5),
    );

    // Its own process, a child of the CA's, with an empty environment.
    let r = server.get("/channels/snoop/pid");
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("pid JSON");
    assert_ne!(v["pid"].as_u64(), Some(u64::from(server.pid())), "{v}");
    assert_eq!(v["ppid"].as_u64(), Some(u64::from(server.pid())), "{v}");
    let (_, names) = probe(&server, "/env");
    assert_eq!(names, "", "the plugin sees environment variables: {names}");

    // None of the CA's files: database, PIN, configuration, token, CRLs; nor the CA process's
    // memory or environment; nor anything else outside the library directories.
    let ppid = server.pid();
    let mut secret_files = vec![
        demo.path("nesca.db"),
        demo.path("user-pin"),
        demo.path("so-pin"),
        demo.config(),
        demo.path("softhsm2.conf"),
        demo.path("crl/nes-ca.crl"),
        std::path::PathBuf::from(format!("/proc/{ppid}/environ")),
        std::path::PathBuf::from(format!("/proc/{ppid}/mem")),
        std::path::PathBuf::from("/etc/hostname"),
    ];
    if let Some(token_file) = fs::read_dir(demo.path("tokens"))
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
    {
        secret_files.push(token_file.path().join("token.object"));
    }
    for file in &secret_files {
        let (ok, detail) = probe(&server, &format!("/read?{}", s(file)));
        assert!(!ok, "the plugin read {}", file.display());
        assert!(
            detail.contains("ermission denied") || detail.contains("No such file"),
            "{}: {detail}",
            file.display()
        );
    }
    // Nothing written, nothing run, no TCP (not even to the CA's own listener).
    let planted = demo.path("planted");
    let (ok, _) = probe(&server, &format!("/write?{}", s(&planted)));
    assert!(!ok && !planted.exists(), "the plugin wrote a file");
    let (ok, detail) = probe(&server, "/exec");
    assert!(!ok, "the plugin ran a program");
    assert!(detail.contains("ermission denied"), "{detail}");
    let (ok, detail) = probe(&server, &format!("/connect?{}", server.addr));
    assert!(!ok, "the plugin connected to {}", server.addr);
    assert!(detail.contains("ermission denied"), "{detail}");

    // The CA itself is untouched and still serving.
    assert_eq!(server.get("/healthz").status, 200);
    assert!(
        !server.stderr().contains("s3cret"),
        "the canary reached the log: {}",
        server.describe()
    );
}
