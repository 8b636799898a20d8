//! Front-channel plugins through the real binary: `nesca plugins list`, start-up refusals
//! naming the file and the reason, and `nesca serve` forwarding `/channels/{name}/…` while a
//! plugin panics or hangs.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::http::http;
use crate::support::plugins::test_plugin;
use crate::support::server::{server_demo, Server};
use crate::support::*;

/// Appends `[[plugins]]` tables to the demo's nesca.toml, served on the plain public listener
/// (`[channels] allow_plain_http`: these tests speak plain HTTP).
fn add_plugins(demo: &Demo, tables: &[String]) {
    let path = demo.config();
    let mut text = fs::read_to_string(&path).expect("nesca.toml");
    text.push_str(
        "
[channels]
allow_plain_http = true
",
    );
    for t in tables {
        text.push_str("\n[[plugins]]\n");
        text.push_str(t);
        text.push('\n');
    }
    fs::write(&path, text).expect("write nesca.toml");
}

fn plugin_table(path: &std::path::Path, extra: &str) -> String {
    format!("path = \"{}\"\n{extra}", path.display())
}

#[test]
fn plugins_list_shows_name_version_abi_and_route() {
    let demo = Demo::init();
    let config = demo.config();
    let none = demo
        .nesca(&["plugins", "list", "--config", s(&config)])
        .ok();
    assert!(
        none.stdout.contains("no plugins configured"),
        "{}",
        none.describe()
    );

    let echo = test_plugin("echo");
    add_plugins(
        &demo,
        &[plugin_table(
            &echo,
            "[plugins.config]\ngreeting = \"merhaba\"",
        )],
    );
    let out = demo
        .nesca(&["plugins", "list", "--config", s(&config)])
        .ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("echo "))
        .unwrap_or_else(|| panic!("no line for echo: {}", out.describe()));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields[..4],
        ["echo", "1.0.0", "2", "/channels/echo/"],
        "{line}"
    );
    assert!(line.ends_with(s(&echo)), "{line}");
}

#[test]
fn a_plugin_that_does_not_load_is_named_with_its_reason() {
    let cases: Vec<(&str, PathBuf, Vec<String>)> = vec![
        (
            "wrong ABI",
            test_plugin("wrong_abi"),
            vec![
                "ABI version 1".into(),
                "speaks 2".into(),
                "rebuild the plugin".into(),
            ],
        ),
        (
            "missing file",
            PathBuf::from("/nonexistent/libnesca_missing.so"),
            vec!["/nonexistent/libnesca_missing.so".into()],
        ),
        (
            "not a shared library",
            PathBuf::from("/etc/hostname"),
            vec!["/etc/hostname".into()],
        ),
    ];
    let mut cases = cases;
    // A real shared library without the entry point, when SoftHSM is installed (it is for
    // every other e2e test).
    let softhsm = PathBuf::from("/usr/lib/softhsm/libsofthsm2.so");
    if softhsm.is_file() {
        cases.push((
            "missing symbol",
            softhsm.clone(),
            vec!["nesca_plugin_entry".into(), s(&softhsm).to_string()],
        ));
    }
    for (what, path, phrases) in cases {
        let demo = server_demo();
        add_plugins(&demo, &[plugin_table(&path, "")]);
        let config = demo.config();
        let phrases: Vec<&str> = phrases.iter().map(String::as_str).collect();
        let listed = demo.nesca(&["plugins", "list", "--config", s(&config)]);
        assert_refusal(&listed, &phrases);
        assert!(
            listed.stderr.contains("plugins[0]"),
            "{what}: {}",
            listed.describe()
        );
        // serve refuses to start the same way, before it listens.
        let served = demo.nesca(&["serve", "--config", s(&config)]);
        assert_refusal(&served, &phrases);
        assert!(
            !served.stdout.contains("listening"),
            "{what}: serve listened: {}",
            served.describe()
        );
    }
}

#[test]
fn a_plugin_that_panics_in_init_stops_start_up_with_a_message() {
    let demo = server_demo();
    add_plugins(
        &demo,
        &[plugin_table(
            &test_plugin("panicking"),
            "[plugins.config]\npanic_in_init = true",
        )],
    );
    let config = demo.config();
    let out = demo.nesca(&["serve", "--config", s(&config)]);
    assert_refusal(&out, &["plugins[0]", "panicking"]);
}

#[test]
fn serve_forwards_channels_and_outlives_panics_and_hangs() {
    let demo = server_demo();
    let csr = demo.csr("req", Key::P256);
    let (_, serial) = demo.issue_ok(&csr, "a.pem", &[]);
    add_plugins(
        &demo,
        &[
            plugin_table(
                &test_plugin("echo"),
                "[plugins.config]\ngreeting = \"merhaba\"",
            ),
            plugin_table(&test_plugin("panicking"), ""),
            plugin_table(
                &test_plugin("hanging"),
                "timeout_ms = 500\nmax_in_flight = 2",
            ),
        ],
    );
    // Errors and warnings logged (stderr): the panic's text goes there, not to the client;
    // so do a plugin process's end and restart.
    let mut server = Server::serve_with_env(&demo, &[("RUST_LOG", "warn")]);

    // Forwarded with method, path below the prefix, query, body and the plugin's config.
    let r = server.post("/channels/echo/hello?x=1", "text/plain", b"govde");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("x-plugin"), Some("echo"), "{}", r.describe());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("echo answers JSON");
    assert_eq!(v["method"], "POST", "{v}");
    assert_eq!(v["path"], "/hello", "{v}");
    assert_eq!(v["query"], "x=1", "{v}");
    assert_eq!(v["body"], "govde", "{v}");
    assert_eq!(v["config"]["greeting"], "merhaba", "{v}");

    // The narrow host API: a certificate lookup goes through the host to the store.
    let r = server.get(&format!("/channels/echo/lookup/{serial}"));
    assert_eq!(r.status, 200, "{}", r.describe());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("lookup answers JSON");
    assert_eq!(v["status"], "active", "{v}");
    assert_eq!(v["tckn"], TCKN, "{v}");
    let r = server.get("/channels/echo/lookup/0123");
    assert_eq!(r.status, 404, "{}", r.describe());

    // A panic becomes an error for that request; the plugin and the CA keep serving.
    // Its text is logged under a request id; the client reads only that id.
    let r = server.get("/channels/panicking/panic");
    assert_eq!(r.status, 500, "{}", r.describe());
    assert!(!r.text().contains("deliberate panic"), "{}", r.describe());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON error");
    assert_eq!(v["error"]["code"], "internal", "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    let id = message
        .strip_prefix("internal error; request id ")
        .unwrap_or_else(|| panic!("no request id: {v}"));
    server.wait_for_log_line(&[id, "deliberate panic"], Duration::from_secs(5));
    let r = server.get("/channels/panicking/ok");
    assert_eq!(r.status, 200, "{}", r.describe());

    // A call that never returns gets 504 after the plugin's timeout; meanwhile everything
    // else answers.
    let started = Instant::now();
    let addr = server.addr.clone();
    let hung = std::thread::spawn(move || http(&addr, "GET", "/channels/hanging/hang", &[], None));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/channels/hanging/ok").status, 200);
    let r = hung.join().expect("hung request thread");
    assert_eq!(r.status, 504, "{}", r.describe());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "504 took {:?}",
        started.elapsed()
    );
    // With max_in_flight 2, one stuck call is half of what the plugin may run: its process is
    // hung, killed and started again; until then its channel answers 503, the others 200.
    server.wait_for_log_line(
        &[
            "plugin host process ended",
            "hung, 1 call(s) unanswered after 500 ms",
        ],
        Duration::from_secs(5),
    );
    assert_eq!(server.get("/channels/echo/still").status, 200);
    server.wait_for_log_line(
        &["hanging", "plugin host process restarted"],
        Duration::from_secs(10),
    );
    let r = server.get("/channels/hanging/ok");
    assert_eq!(r.status, 200, "{}", r.describe());

    // An unknown channel: the channels' error shape, and the name sent is not echoed.
    let r = server.get("/channels/n%3Cscript%3Eope/x");
    assert_eq!(r.status, 404, "{}", r.describe());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!({"v":1,"error":{"code":"not_found","message":"channel: no such channel is served here"}})
    );
    server.assert_running();
    let (status, _) = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "serve exited with {status}");
}

/// An application through a channel is issued once per `channel_ref`: the same reference
/// again (a replayed KDBO, a retry) answers with the first certificate and issues nothing;
/// a refused input does not use the reference up; the application can be looked up.
#[test]
fn channel_applications_are_issued_once_per_reference() {
    let demo = server_demo();
    add_plugins(&demo, &[plugin_table(&test_plugin("echo"), "")]);
    let csr = make_csr(&demo.work, "applicant", Key::P256, true);
    let csr_b64 = base64_std(&fs::read(&csr).expect("CSR"));
    let application = |tckn: &str, reference: &str| {
        serde_json::json!({
            "v": 1,
            "csr_der": csr_b64,
            "tckn": tckn,
            "given_name": "AYŞE",
            "surname": "YILMAZ",
            "validity_days": null,
            "channel_ref": reference,
        })
        .to_string()
    };
    let mut server = Server::serve(&demo);
    let before = demo.cert_list_lines().len();

    // A refused input (bad T.C. Kimlik No) does not use the reference up.
    let r = server.post(
        "/channels/echo/apply",
        "application/json",
        application("17291716050", "kdbo-1").as_bytes(),
    );
    assert_eq!(r.status, 422, "{}", r.describe());
    assert!(r.text().starts_with("tckn:"), "{}", r.describe());
    assert_eq!(demo.cert_list_lines().len(), before);

    let first = server.post(
        "/channels/echo/apply",
        "application/json",
        application(TCKN, "kdbo-1").as_bytes(),
    );
    assert_eq!(first.status, 200, "{}", first.describe());
    let first: serde_json::Value = serde_json::from_slice(&first.body).expect("Issued JSON");
    let after_first = demo.cert_list_lines().len();
    assert_eq!(after_first, before + 1);

    let again = server.post(
        "/channels/echo/apply",
        "application/json",
        application(TCKN, "kdbo-1").as_bytes(),
    );
    assert_eq!(again.status, 200, "{}", again.describe());
    let again: serde_json::Value = serde_json::from_slice(&again.body).expect("Issued JSON");
    assert_eq!(again["serial"], first["serial"]);
    assert_eq!(again["certificate_der"], first["certificate_der"]);
    assert_eq!(
        demo.cert_list_lines().len(),
        after_first,
        "a replay issued again"
    );

    let looked = server.get("/channels/echo/application/kdbo-1");
    assert_eq!(looked.status, 200, "{}", looked.describe());
    let looked: serde_json::Value = serde_json::from_slice(&looked.body).expect("ApplicationInfo");
    assert_eq!(looked["status"], "issued");
    assert_eq!(looked["serial"], first["serial"]);
    assert_eq!(
        server.get("/channels/echo/application/kdbo-404").status,
        404
    );
    let bad_ref = server.post(
        "/channels/echo/apply",
        "application/json",
        application(TCKN, "a b").as_bytes(),
    );
    assert_eq!(bad_ref.status, 422, "{}", bad_ref.describe());
    assert!(
        bad_ref.text().starts_with("channel_ref:"),
        "{}",
        bad_ref.describe()
    );

    let shown = demo.cert_show(first["serial"].as_str().expect("serial"));
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["tckn"], TCKN);
    let config = demo.config();
    demo.nesca(&["audit", "verify", "--config", s(&config)])
        .ok();
    server.assert_running();
}

/// Plugins without the mTLS listener would be open to anyone who reaches the public address:
/// `nesca serve` refuses, naming `channels.listen`, unless the configuration says
/// `allow_plain_http` (development).
#[test]
fn plugins_without_the_mtls_listener_are_refused() {
    let demo = server_demo();
    let path = demo.config();
    let mut text = fs::read_to_string(&path).expect("nesca.toml");
    text.push_str(&format!(
        "\n[[plugins]]\n{}\n",
        plugin_table(&test_plugin("echo"), "")
    ));
    fs::write(&path, text).expect("write nesca.toml");
    let out = demo.nesca(&["serve", "--config", s(&path)]);
    assert_refusal(&out, &["channels.listen", "allow_plain_http"]);
}
