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
    // The restart is logged just after the process is back: wait for the line, not only the 200.
    wait_for(
        "two restarts of the panicking plugin logged",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            let log = server.stderr();
            let restarted = log
                .lines()
                .filter(|l| l.contains("plugin host process restarted") && l.contains("panicking"))
                .count();
            if restarted == 2 {
                Ok(())
            } else {
                Err(log)
            }
        },
    );
}

/// Whether an error's text is a refusal: Landlock's `EACCES`, seccomp's `EPERM`, or a file
/// that is not there at all.
fn refused(detail: &str) -> bool {
    [
        "Permission denied",
        "Operation not permitted",
        "No such file",
    ]
    .iter()
    .any(|r| detail.contains(r))
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
    // Confined fully, or partly on a kernel older than Landlock's scoping (Linux 6.12): the
    // file-system and TCP rules this test checks hold either way.
    wait_for(
        "the snoop plugin's process confined",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            let log = server.stderr();
            log.lines()
                .find(|l| {
                    l.contains("snoop")
                        && (l.contains("process confined (Landlock)")
                            || l.contains("process partly confined (Landlock)"))
                })
                .map(|_| ())
                .ok_or(log)
        },
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
        // nesca's copy of it (softhsm_guard): the same PIN blobs.
        secret_files.push(token_file.path().join("token.object.nesca-copy"));
    }
    for file in &secret_files {
        let (ok, detail) = probe(&server, &format!("/read?{}", s(file)));
        assert!(!ok, "the plugin read {}", file.display());
        assert!(refused(&detail), "{}: {detail}", file.display());
    }
    // Nothing written, nothing run, no TCP (not even to the CA's own listener).
    let planted = demo.path("planted");
    let (ok, _) = probe(&server, &format!("/write?{}", s(&planted)));
    assert!(!ok && !planted.exists(), "the plugin wrote a file");
    // Not a program on PATH, not one under the library directories it may read, not one run
    // through the dynamic loader it may read: no process at all (seccomp), and nothing to
    // execute (Landlock).
    for program in [
        "/bin/true",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2,--version",
        "/lib64/ld-linux-x86-64.so.2,/bin/true",
    ] {
        let (ok, detail) = probe(&server, &format!("/exec?{program}"));
        assert!(!ok, "the plugin ran {program}");
        assert!(refused(&detail), "{program}: {detail}");
    }
    // No socket of any kind: not UDP, not a UNIX socket (a service's, or the CA's own), while
    // threads, which plugins use, still start.
    let (ok, detail) = probe(&server, &format!("/udp?{}", server.addr));
    assert!(!ok && refused(&detail), "UDP: {detail}");
    let unix = demo.work.join("service.sock");
    let _service = std::os::unix::net::UnixListener::bind(&unix).expect("a UNIX socket");
    let (ok, detail) = probe(&server, &format!("/unix?{}", s(&unix)));
    assert!(!ok && refused(&detail), "UNIX socket: {detail}");
    let (ok, detail) = probe(&server, "/thread");
    assert!(ok, "a thread: {detail}");

    // Nothing done to the CA's process: not its limits, not its priority.
    let limits = || fs::read_to_string(format!("/proc/{ppid}/limits")).expect("the CA's limits");
    let before = limits();
    let (ok, detail) = probe(&server, &format!("/prlimit?{ppid}"));
    assert!(!ok && refused(&detail), "prlimit of the CA: {detail}");
    let (ok, detail) = probe(&server, "/renice-group");
    assert!(!ok && refused(&detail), "renice of its group: {detail}");
    assert_eq!(limits(), before);
    let (ok, detail) = probe(&server, &format!("/connect?{}", server.addr));
    assert!(!ok, "the plugin connected to {}", server.addr);
    assert!(refused(&detail), "{detail}");

    // The CA itself is untouched and still serving.
    assert_eq!(server.get("/healthz").status, 200);
    assert!(
        !server.stderr().contains("s3cret"),
        "the canary reached the log: {}",
        server.describe()
    );
}

/// The process is a peer the CA does not believe: a host call from a thread of the plugin's own
/// while none of its requests is handled is refused; a frame it forges ends it, and it comes
/// back; what it writes to stderr reaches the log as its lines, one by one.
#[test]
fn a_plugin_process_is_held_to_the_protocol() {
    let demo = server_demo();
    with_plugins(&demo, &["snoop"]);
    let server = Server::serve_with_env(&demo, &[("RUST_LOG", "warn")]);

    let (ok, _) = probe(&server, "/later");
    assert!(ok);
    let answer = wait_for(
        "the host's answer to the call made between requests",
        Duration::from_secs(10),
        Duration::from_millis(1000),
        || match probe(&server, "/later-result") {
            (true, detail) => Ok(detail),
            (false, _) => Err("no answer yet".to_owned()),
        },
    );
    assert!(
        answer.starts_with("refused: a host call while none of the channel's requests"),
        "{answer}"
    );

    let r = server.get("/channels/snoop/stderr");
    assert_eq!(r.status, 200, "{}", r.describe());
    server.wait_for_log_line(
        &["plugin host process stderr: snoop on stderr", "snoop"],
        Duration::from_secs(5),
    );
    server.wait_for_log_line(
        &["plugin host process stderr: its second line"],
        Duration::from_secs(5),
    );

    for (forged, violation) in [
        ("answer", "an answer to call 999999, which is not open"),
        ("huge", "over the limit"),
    ] {
        let r = server.get(&format!("/channels/snoop/forge?{forged}"));
        assert!([200, 502].contains(&r.status), "{forged}: {}", r.describe());
        server.wait_for_log_line(
            &["plugin host process ended", "protocol violation", violation],
            Duration::from_secs(5),
        );
        assert_eq!(server.get("/healthz").status, 200, "{forged}");
        wait_for(
            &format!("snoop back after the forged {forged}"),
            Duration::from_secs(10),
            Duration::from_millis(100),
            || match server.get("/channels/snoop/pid") {
                r if r.status == 200 => Ok(()),
                r => Err(r.describe()),
            },
        );
    }
}

/// With `max_in_flight` calls unanswered the channel answers 503 `busy` at once; when half of
/// them have timed out the process is hung, killed and started again.
#[test]
fn a_busy_then_hung_plugin_is_refused_then_restarted() {
    let demo = server_demo();
    let path = demo.config();
    let mut text = fs::read_to_string(&path).expect("nesca.toml");
    text.push_str(&format!(
        "\n[channels]\nallow_plain_http = true\n\n[[plugins]]\npath = \"{}\"\ntimeout_ms = 2000\nmax_in_flight = 4\n",
        s(&test_plugin("hanging"))
    ));
    fs::write(&path, text).expect("write nesca.toml");
    let server = Server::serve_with_env(&demo, &[("RUST_LOG", "warn")]);

    let hung: Vec<_> = (0..4)
        .map(|_| {
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                crate::support::http::http(&addr, "GET", "/channels/hanging/hang", &[], None)
            })
        })
        .collect();
    // The four reach the plugin within milliseconds on loopback; a probe sent earlier would
    // take one of their slots itself.
    std::thread::sleep(Duration::from_millis(500));
    let r = server.get("/channels/hanging/ok");
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON error");
    assert_eq!(
        (r.status, v["error"]["code"].as_str()),
        (503, Some("busy")),
        "{}",
        r.describe()
    );
    // The first two to time out answer 504 and make the process hung; the others time out
    // too (504) or meet its end first (502).
    let statuses: Vec<u16> = hung
        .into_iter()
        .map(|h| h.join().expect("hung call").status)
        .collect();
    assert!(
        statuses.iter().filter(|s| **s == 504).count() >= 2
            && statuses.iter().all(|s| [502, 504].contains(s)),
        "{statuses:?}"
    );
    server.wait_for_log_line(
        &["plugin host process ended", "hung", "after 2000 ms"],
        Duration::from_secs(5),
    );
    wait_for(
        "the hanging plugin back",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || match server.get("/channels/hanging/ok") {
            r if r.status == 200 => Ok(()),
            r => Err(r.describe()),
        },
    );
}

/// A descriptor `nesca serve` inherited without close-on-exec (here a file opened by the shell
/// that started it; a PKCS#11 module's token file, in life) is closed in the plugin's process
/// before the plugin runs.
#[test]
fn a_plugin_inherits_no_descriptor_of_the_ca() {
    let demo = server_demo();
    with_plugins(&demo, &["snoop"]);
    let secret = demo.path("user-pin");
    let server = Server::serve_inheriting(&demo, &[("RUST_LOG", "warn")], &secret);
    let serve_has_it = fs::read_link(format!("/proc/{}/fd/7", server.pid()))
        .map(|target| target == secret)
        .unwrap_or(false);
    assert!(serve_has_it, "nesca serve did not inherit descriptor 7");
    let (ok, detail) = probe(&server, "/fd?7");
    assert!(!ok, "the plugin read descriptor 7");
    assert!(detail.contains("Bad file descriptor"), "{detail}");
}
