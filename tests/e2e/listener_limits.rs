//! Every listener's timeouts and connection limits (`[server]`): a client that never finishes
//! its request headers, a keep-alive connection left idle, more connections from one address
//! than allowed, and a slow client on the channels' mTLS listener are all closed by the
//! server, which keeps answering everybody else. Only 127.0.0.1; every wait is bounded.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::http::{read_response, request_head};
use crate::support::mtls::{get_over_mtls, over_mtls, MtlsListener};
use crate::support::ocsp::ocsp_good;
use crate::support::server::{server_demo, Server};
use crate::support::*;

/// Generous: the server closes after 2 s; anything within this passes.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);

/// The demo's configuration with these `[server]` keys set.
fn set_server_keys(demo: &Demo, keys: &[(&str, &str)]) {
    let path = demo.config();
    let mut text = fs::read_to_string(&path).expect("nesca.toml");
    for (key, value) in keys {
        text = toml_set_raw(&text, "server", key, value);
    }
    fs::write(&path, text).expect("write nesca.toml");
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_write_timeout(Some(CLOSE_LIMIT)).expect("timeout");
    s
}

/// Waits up to `limit` for the server to close `s`: how long it took and what came before the
/// end, or `Err` with what was seen when it stayed open. Bytes that arrive are collected, not
/// taken for a close.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Result<(Duration, Vec<u8>), String> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!(
                "still open after {limit:?}; received {:?}",
                String::from_utf8_lossy(&got)
            ));
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut chunk) {
            Ok(0) => return Ok((start.elapsed(), got)),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Reset or aborted: closed by the server too.
            Err(_) => return Ok((start.elapsed(), got)),
        }
    }
}

/// One keep-alive GET on `s` (no `Connection: close`): the status, the connection left open.
fn get_keep_alive(s: &mut TcpStream, path: &str) -> Result<u16, String> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(CLOSE_LIMIT)).expect("timeout");
    read_response(s, &format!("GET {path}")).map(|r| r.status)
}

/// One GET on a new connection (`Connection: close`), `Err` instead of a panic when the
/// server does not answer: for polling.
fn try_get(addr: &str, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(CLOSE_LIMIT)).expect("timeout");
    s.write_all(request_head("GET", path, addr, &[], None).as_bytes())
        .map_err(|e| e.to_string())?;
    read_response(&mut s, &format!("GET {path}")).map(|r| r.status)
}

#[test]
fn a_client_that_never_finishes_its_headers_is_closed_and_ocsp_still_answers() {
    let demo = server_demo();
    set_server_keys(&demo, &[("header_read_timeout_seconds", "2")]);
    let csr = demo.csr("nes", Key::P256);
    let (cert, _) = demo.issue_ok(&csr, "nes.pem", &[]);
    let mut server = Server::serve(&demo);

    // Slow-loris: a request line and one header, then nothing.
    let mut loris = connect(&server.addr);
    loris
        .write_all(b"GET /ocsp/MEIwQDA-MDwwOjAJBgUrDgMCGgUA HTTP/1.1\r\nHost: x\r\n")
        .expect("send the partial head");
    let (took, got) = closed_within(&mut loris, CLOSE_LIMIT)
        .unwrap_or_else(|e| panic!("slow-loris not closed: {e}\n{}", server.describe()));
    assert!(
        took >= Duration::from_secs(1),
        "closed after {took:?}: before the 2 s header timeout, so not by it"
    );
    // No answer is owed to a request that never arrived; at most hyper's 408.
    let text = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected bytes to a slow-loris: {text:?}"
    );

    // The server still answers: health, and a real OCSP request.
    server.assert_running();
    assert_eq!(server.get("/healthz").status, 200, "{}", server.describe());
    let r = ocsp_good(&demo, &server.url(), &cert, "after-loris.der");
    assert!(r.verified(), "OCSP after a slow-loris: {}", r.describe());
}

#[test]
fn an_idle_keep_alive_connection_is_closed_on_the_standalone_responder() {
    let demo = server_demo();
    // The header timer would close an idle keep-alive too (hyper starts it while the
    // connection waits for its next request): set it high, so that the idle timeout is what
    // closes this one.
    set_server_keys(
        &demo,
        &[
            ("idle_timeout_seconds", "2"),
            ("header_read_timeout_seconds", "30"),
        ],
    );
    let mut server = Server::ocsp(&demo);
    let mut s = connect(&server.addr);
    let status = get_keep_alive(&mut s, "/healthz")
        .unwrap_or_else(|e| panic!("first request: {e}\n{}", server.describe()));
    assert_eq!(status, 200);
    let (took, got) = closed_within(&mut s, CLOSE_LIMIT)
        .unwrap_or_else(|e| panic!("idle keep-alive not closed: {e}\n{}", server.describe()));
    assert!(got.is_empty(), "bytes after the answer: {got:?}");
    assert!(
        took >= Duration::from_secs(1),
        "closed after {took:?}: before the 2 s idle timeout, so not by it"
    );
    server.assert_running();
    assert_eq!(try_get(&server.addr, "/healthz"), Ok(200));
}

#[test]
fn a_fourth_connection_from_one_address_is_closed_at_once() {
    let demo = server_demo();
    set_server_keys(
        &demo,
        &[
            ("max_connections_per_ip", "3"),
            // Long enough that the three kept connections stay open through the test.
            ("header_read_timeout_seconds", "30"),
            ("idle_timeout_seconds", "75"),
        ],
    );
    let mut server = Server::serve(&demo);
    // Three connections, each answered once: admitted and held open (keep-alive).
    let mut kept: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut s = connect(&server.addr);
            let status = get_keep_alive(&mut s, "/healthz")
                .unwrap_or_else(|e| panic!("connection {i}: {e}\n{}", server.describe()));
            assert_eq!(status, 200, "connection {i}");
            s
        })
        .collect();

    // The fourth: accepted by the kernel, closed by nesca before it reads a byte.
    let mut fourth = connect(&server.addr);
    let _ = fourth.write_all(request_head("GET", "/healthz", &server.addr, &[], None).as_bytes());
    let (took, got) = closed_within(&mut fourth, CLOSE_LIMIT)
        .unwrap_or_else(|e| panic!("the fourth connection was kept: {e}\n{}", server.describe()));
    assert!(
        got.is_empty(),
        "the fourth connection was answered: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
    server.wait_for_log_line(&["server.max_connections_per_ip"], CLOSE_LIMIT);

    // The three were kept: each still answers on its own connection.
    for (i, s) in kept.iter_mut().enumerate() {
        assert_eq!(
            get_keep_alive(s, "/healthz"),
            Ok(200),
            "kept connection {i}"
        );
    }

    // Once they are closed, a new connection is served again.
    drop(kept);
    let status = wait_for(
        "a request once the three connections are closed",
        CLOSE_LIMIT,
        Duration::from_millis(100),
        || try_get(&server.addr, "/healthz"),
    );
    assert_eq!(status, 200);
    server.assert_running();
}

#[test]
fn the_mtls_channel_listener_closes_a_client_that_never_finishes_its_headers() {
    let demo = server_demo();
    let listener = MtlsListener::configure(&demo);
    set_server_keys(&demo, &[("header_read_timeout_seconds", "2")]);
    let mut server = Server::serve(&demo);

    // After a complete handshake, a partial request head and then nothing: s_client keeps its
    // stdin open, so it ends only when the server closes the connection (or after 20 s).
    let (out, took) = over_mtls(
        listener.port,
        "GET /channels/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n",
        listener.client(),
        &listener.ca,
    );
    assert!(
        took < Duration::from_secs(15),
        "the mTLS slow-loris was kept {took:?}:\n{out}\n{}",
        server.describe()
    );
    // A refused handshake ends at once; this one waited for the header timeout.
    assert!(
        took >= Duration::from_secs(1),
        "closed after {took:?}, before the 2 s header timeout:\n{out}"
    );
    assert!(!out.contains("HTTP/1.1 200"), "{out}");

    // The same partner with a complete request is served.
    let ok = get_over_mtls(
        listener.port,
        "/channels/echo/x",
        listener.client(),
        &listener.ca,
    );
    assert!(
        ok.contains("HTTP/1.1 200"),
        "a complete request after the slow-loris:\n{ok}\n{}",
        server.describe()
    );
    server.assert_running();
}

#[test]
fn a_listener_limit_out_of_range_stops_the_server_naming_the_key() {
    let demo = server_demo();
    set_server_keys(&demo, &[("idle_timeout_seconds", "76")]);
    let config = demo.config();
    let o = demo.nesca(&["serve", "--config", s(&config)]);
    assert!(!o.success(), "nesca serve started: {}", o.describe());
    assert!(
        o.stderr.contains("server.idle_timeout_seconds") && o.stderr.contains("between 1 and 75"),
        "{}",
        o.describe()
    );
}
