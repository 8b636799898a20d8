//! GET hot-path throughput against nginx serving the same bytes as a static file, with
//! `wrk` on loopback. Ignored by default (needs a release build, nginx and wrk):
//! `cargo test --release -p ocsp-responder -- --ignored --nocapture get_throughput`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::Sha1;

use crate::testkit::{request, serial, FakeSource, Pki};
use crate::{CertState, Outcome, Responder, ResponderConfig};

const WRK: &str = "/usr/bin/wrk";
const NGINX: &str = "/usr/sbin/nginx";

/// Requests per second that wrk reports for `url`.
fn wrk(url: &str, seconds: u32) -> f64 {
    let out = Command::new(WRK)
        .args(["-t2", "-c64", &format!("-d{seconds}s"), "--latency", url])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(!text.contains("Non-2xx"), "errors from {url}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("wrk Requests/sec")
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master then stops its workers (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nginx(dir: &std::path::Path, body: &[u8]) -> (Nginx, u16) {
    std::fs::write(dir.join("resp.der"), body).unwrap();
    let port = free_port();
    let d = dir.display();
    // A tuned static-file nginx: one worker per core, file descriptors cached, long
    // keep-alive (wrk would otherwise reconnect every 1000 requests).
    let conf = format!(
        "worker_processes auto;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  open_file_cache max=16 inactive=60s;
  server {{
    listen 127.0.0.1:{port};
    root {d};
    location / {{
      default_type application/ocsp-response;
      try_files /resp.der =404;
      expires 1h;
    }}
  }}
}}
"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(NGINX)
        .args([
            "-p",
            &d.to_string(),
            "-c",
            &format!("{d}/nginx.conf"),
            "-g",
            "daemon off;",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let guard = Nginx(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (guard, port);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nginx did not listen");
}

#[test]
#[ignore]
fn get_throughput_against_nginx() {
    if !std::path::Path::new(WRK).exists() || !std::path::Path::new(NGINX).exists() {
        eprintln!("skipped: wrk or nginx not found");
        return;
    }
    let pki = Pki::new();
    let source = Arc::new(FakeSource::default());
    source.set("nes-ca", serial(0x51), CertState::Good);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let r = Responder::new(
        vec![pki.served("nes-ca")],
        source,
        ResponderConfig::default(),
        Arc::new(nesca_ca_types::SystemClock),
    )
    .unwrap();
    let req = request(vec![pki.cert_id::<Sha1>(&serial(0x51))], None);
    let body = r.answer(&req).der.to_vec();
    assert_eq!(r.answer(&req).outcome, Outcome::Cached);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = r.router();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    // The ceiling: axum answering the same bytes from a constant, no OCSP work at all.
    let bare = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let bare_port = bare.local_addr().unwrap().port();
    let bytes = bytes::Bytes::from(body.clone());
    let bare_app = axum::Router::new().route(
        "/ocsp/{*request}",
        axum::routing::get(move || {
            let b = bytes.clone();
            async move { ([("content-type", "application/ocsp-response")], b) }
        }),
    );
    rt.spawn(async move {
        let _ = axum::serve(bare, bare_app).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let (_nginx, nginx_port) = nginx(dir.path(), &body);
    let path = format!("/ocsp/{}", STANDARD.encode(&req));
    let seconds = std::env::var("NESCA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // Warm up both, then alternate and keep each side's best run.
    wrk(&format!("http://127.0.0.1:{port}{path}"), 1);
    wrk(&format!("http://127.0.0.1:{nginx_port}{path}"), 1);
    let (mut ours, mut theirs, mut ceiling) = (0f64, 0f64, 0f64);
    for _ in 0..2 {
        ours = ours.max(wrk(&format!("http://127.0.0.1:{port}{path}"), seconds));
        theirs = theirs.max(wrk(
            &format!("http://127.0.0.1:{nginx_port}{path}"),
            seconds,
        ));
        ceiling = ceiling.max(wrk(&format!("http://127.0.0.1:{bare_port}{path}"), seconds));
    }
    let ratio = ours / theirs;
    eprintln!(
        "GET /ocsp: {ours:.0} req/s; nginx static: {theirs:.0} req/s; ratio {ratio:.2}; \
         bare axum constant: {ceiling:.0} req/s"
    );
    let mut metrics = String::new();
    r.metrics().render_prometheus(&mut metrics);
    eprintln!("{metrics}");
    assert!(ratio >= 0.8, "ratio {ratio:.2} below 0.8");
}

/// Cost of the protocol core on the cached path, without HTTP.
#[test]
#[ignore]
fn cached_answer_cost() {
    let pki = Pki::new();
    let source = Arc::new(FakeSource::default());
    source.set("nes-ca", serial(0x51), CertState::Good);
    let r = Responder::new(
        vec![pki.served("nes-ca")],
        source,
        ResponderConfig::default(),
        Arc::new(nesca_ca_types::SystemClock),
    )
    .unwrap();
    let req = request(vec![pki.cert_id::<Sha1>(&serial(0x51))], None);
    r.answer(&req);
    let b64 = STANDARD.encode(&req);
    const N: u32 = 200_000;
    let t = std::time::Instant::now();
    for _ in 0..N {
        std::hint::black_box(crate::request::decode_get_path(&b64, 8192).unwrap());
    }
    eprintln!("decode_get_path: {:?}", t.elapsed() / N);
    let t = std::time::Instant::now();
    for _ in 0..N {
        std::hint::black_box(crate::request::parse(&req).unwrap());
    }
    eprintln!("parse: {:?}", t.elapsed() / N);
    let t = std::time::Instant::now();
    for _ in 0..N {
        assert_eq!(
            std::hint::black_box(r.answer(&req)).outcome,
            Outcome::Cached
        );
    }
    eprintln!("answer (cached): {:?}", t.elapsed() / N);
    let headers = axum::http::HeaderMap::new();
    let t = std::time::Instant::now();
    for _ in 0..N {
        let a = r.answer(&req);
        std::hint::black_box(crate::http::get_response(&r, a, &headers));
    }
    eprintln!("answer + GET response headers: {:?}", t.elapsed() / N);
    let key = r.answer(&req).cache_key.unwrap();
    r.paths.insert(&b64, key);
    let t = std::time::Instant::now();
    for _ in 0..N {
        let a = r.answer_known_path(&b64).unwrap();
        std::hint::black_box(crate::http::get_response(&r, a, &headers));
    }
    eprintln!("known GET path + response headers: {:?}", t.elapsed() / N);
    let t = std::time::Instant::now();
    for _ in 0..N {
        r.metrics.observe(
            Outcome::Cached,
            std::hint::black_box(std::time::Duration::from_nanos(1234)),
        );
    }
    eprintln!("metrics observe: {:?}", t.elapsed() / N);
    let t = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..N {
                    assert_eq!(
                        std::hint::black_box(r.answer(&req)).outcome,
                        Outcome::Cached
                    );
                }
            });
        }
    });
    eprintln!(
        "answer (cached), 2 threads, one entry: {:?} per call per thread",
        t.elapsed() / N
    );
}
