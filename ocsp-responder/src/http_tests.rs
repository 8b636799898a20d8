//! The HTTP face, the refresher on a runtime, and interoperability with `openssl ocsp`.
//! Servers bind 127.0.0.1:0; every wait is bounded.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use der::{pem::LineEnding, EncodePem};
use sha1::Sha1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_ocsp::{CertStatus, OcspResponseStatus};

use nesca_ca_types::Clock;
use nesca_ca_types::{RevocationReason, UnixTime};

use crate::http::http_date;
use crate::testkit::{decode, request, responder, serial, FakeSource, Pki};
use crate::{CertState, Outcome, Responder, ResponderConfig};

async fn serve(r: &Arc<Responder>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = r.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 exchange over a fresh connection (`Connection: close`), within 10 s.
async fn http(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut msg = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n");
        if !body.is_empty() {
            msg.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        msg.push_str("\r\n");
        s.write_all(msg.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("HTTP exchange in time");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

async fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    http(
        addr,
        &format!("POST {path} HTTP/1.1\r\nContent-Type: application/ocsp-request"),
        body,
    )
    .await
}

async fn get(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    let head = if extra.is_empty() {
        format!("GET {path} HTTP/1.1")
    } else {
        format!("GET {path} HTTP/1.1\r\n{extra}")
    };
    http(addr, &head, &[]).await
}

fn status_of(reply: &Reply) -> OcspResponseStatus {
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/ocsp-response")
    );
    decode(&reply.body).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_and_get_with_caching_headers() {
    let pki = Pki::new();
    let source = Arc::new(FakeSource::default());
    let (r, clock) = responder(&pki, source.clone(), ResponderConfig::default());
    let addr = serve(&r).await;
    let s = serial(0x2a);
    source.set("nes-ca", s, CertState::Good);
    let req = request(vec![pki.cert_id::<Sha1>(&s)], None);

    let reply = post(addr, "/ocsp", &req).await;
    assert_eq!(status_of(&reply), OcspResponseStatus::Successful);
    assert_eq!(reply.header("cache-control"), None);
    let (_, basic) = decode(&reply.body);
    assert_eq!(
        basic.unwrap().tbs_response_data.responses[0].cert_status,
        CertStatus::good()
    );

    // GET in standard base64, percent-encoded as RFC 6960 Appendix A.1 says.
    let b64 = STANDARD.encode(&req);
    let pct = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let reply = get(addr, &format!("/ocsp/{pct}"), "").await;
    assert_eq!(status_of(&reply), OcspResponseStatus::Successful);
    let entry = r.answer(&req).cacheable.unwrap();
    assert_eq!(reply.body, entry.der().to_vec());
    let max_age = (entry
        .next_update()
        .duration_since(clock.now())
        .unwrap()
        .as_secs())
    .min(3600);
    assert_eq!(
        reply.header("cache-control").unwrap(),
        format!("max-age={max_age}, public, no-transform, must-revalidate")
    );
    assert_eq!(
        reply.header("expires").unwrap(),
        http_date(entry.next_update())
    );
    assert_eq!(
        reply.header("last-modified").unwrap(),
        http_date(entry.this_update())
    );
    assert_eq!(reply.header("etag").unwrap(), entry.etag());

    // Unencoded standard base64 and base64url without padding: the same bytes.
    for path in [
        format!("/ocsp/{b64}"),
        format!("/ocsp/{}", URL_SAFE_NO_PAD.encode(&req)),
    ] {
        let reply = get(addr, &path, "").await;
        assert_eq!(reply.body, entry.der().to_vec(), "{path}");
    }

    // Each spelling is remembered (the next GET of it skips decoding); a never-issued
    // serial's is not.
    assert_eq!(r.paths.len(), 3);
    let never = request(vec![pki.cert_id::<Sha1>(&serial(0x2b))], None);
    for _ in 0..2 {
        let reply = get(addr, &format!("/ocsp/{}", STANDARD.encode(&never)), "").await;
        assert_eq!(status_of(&reply), OcspResponseStatus::Successful);
    }
    assert_eq!(r.paths.len(), 3);

    // Conditional GET.
    let reply = get(
        addr,
        &format!("/ocsp/{pct}"),
        &format!("If-None-Match: {}", entry.etag()),
    )
    .await;
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("etag").unwrap(), entry.etag());

    // With a nonce over GET: signed for that request, not to be stored.
    let with_nonce = request(vec![pki.cert_id::<Sha1>(&s)], Some(&[9; 16]));
    let reply = get(
        addr,
        &format!("/ocsp/{}", URL_SAFE_NO_PAD.encode(&with_nonce)),
        "",
    )
    .await;
    assert_eq!(status_of(&reply), OcspResponseStatus::Successful);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.header("etag").is_none());

    // POST at /ocsp/ is tolerated.
    assert_eq!(
        status_of(&post(addr, "/ocsp/", &req).await),
        OcspResponseStatus::Successful
    );

    let mut text = String::new();
    r.metrics().render_prometheus(&mut text);
    assert!(
        text.contains("nesca_ocsp_requests_total{outcome=\"cached\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("nesca_ocsp_requests_total{outcome=\"not_modified\"} 1"),
        "{text}"
    );
    assert!(text.contains("nesca_ocsp_cached_responses 2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_malformed_with_200_and_other_methods_405() {
    let pki = Pki::new();
    let source = Arc::new(FakeSource::default());
    let (r, _) = responder(&pki, source.clone(), ResponderConfig::default());
    let addr = serve(&r).await;
    let malformed = [0x30, 0x03, 0x0a, 0x01, 0x01];
    for path in [
        "/ocsp/",
        "/ocsp/!!!!",
        "/ocsp/%zz",
        "/ocsp/MAA=",
        "/ocsp/QUJD%0A",
        "/ocsp/a/b/c",
        "/ocsp//AB//CD",
    ] {
        let reply = get(addr, path, "").await;
        assert_eq!(
            status_of(&reply),
            OcspResponseStatus::MalformedRequest,
            "{path}"
        );
        assert_eq!(reply.body, malformed);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    let long = format!("/ocsp/{}", "A".repeat(20_000));
    assert_eq!(
        status_of(&get(addr, &long, "").await),
        OcspResponseStatus::MalformedRequest
    );
    for body in [
        &b""[..],
        &b"\x30\x00"[..],
        &[0x30; 9000][..],
        &b"garbage"[..],
    ] {
        let reply = post(addr, "/ocsp", body).await;
        assert_eq!(status_of(&reply), OcspResponseStatus::MalformedRequest);
    }
    // A chunked body over max_body, without Content-Length.
    let chunk = vec![b'A'; 9000];
    let mut chunked = format!("{:x}\r\n", chunk.len()).into_bytes();
    chunked.extend_from_slice(&chunk);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let reply = http(
        addr,
        "POST /ocsp HTTP/1.1\r\nTransfer-Encoding: chunked",
        &chunked,
    )
    .await;
    assert_eq!(status_of(&reply), OcspResponseStatus::MalformedRequest);
    // Unknown issuer.
    let other = Pki::named(9, "CN=Elsewhere CA,C=TR");
    let reply = post(
        addr,
        "/ocsp",
        &request(vec![other.cert_id::<Sha1>(&serial(1))], None),
    )
    .await;
    assert_eq!(status_of(&reply), OcspResponseStatus::Unauthorized);

    assert_eq!(http(addr, "PUT /ocsp HTTP/1.1", b"x").await.status, 405);
    assert_eq!(get(addr, "/ocsp", "").await.status, 405);
    assert_eq!(
        http(addr, "DELETE /ocsp/MAA= HTTP/1.1", &[]).await.status,
        405
    );
    assert_eq!(get(addr, "/elsewhere", "").await.status, 404);
    assert_eq!(r.metrics().requests(Outcome::Malformed), 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresher_pre_produces_follows_changes_and_stops() {
    let pki = Pki::new();
    let source = Arc::new(FakeSource::default());
    for n in 1..=5u64 {
        source.set("nes-ca", serial(n), CertState::Good);
    }
    let config = ResponderConfig {
        poll_interval: Duration::from_millis(20),
        ..ResponderConfig::default()
    };
    let (r, _) = responder(&pki, source.clone(), config);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(r.clone().run_refresher(stopped));
    let req = request(vec![pki.cert_id::<Sha1>(&serial(3))], None);
    until("pre-produced", || r.metrics().cached_responses() == 5).await;
    assert_eq!(r.answer(&req).outcome, Outcome::Cached);
    // A revocation and a newly issued serial show up without any request.
    source.set(
        "nes-ca",
        serial(3),
        CertState::Revoked {
            time: UnixTime::from_secs(1_760_000_000),
            reason: Some(RevocationReason::Superseded),
        },
    );
    source.set("nes-ca", serial(6), CertState::Good);
    until("re-signed", || {
        let a = r.answer(&req);
        let (_, basic) = decode(&a.der);
        a.outcome == Outcome::Cached
            && matches!(
                basic.unwrap().tbs_response_data.responses[0].cert_status,
                CertStatus::Revoked(_)
            )
    })
    .await;
    until("new serial", || r.metrics().cached_responses() == 6).await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("refresher stops")
        .unwrap();
}

/// Polls `cond` every 10 ms for at most 10 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct OpensslRun {
    ok: bool,
    out: String,
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> OpensslRun {
    let out = Command::new("/usr/bin/openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    OpensslRun {
        ok: out.status.success(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_ocsp_verifies_post_and_get_answers() {
    if !std::path::Path::new("/usr/bin/openssl").exists() {
        eprintln!("skipped: /usr/bin/openssl not found");
        return;
    }
    let pki = Pki::new();
    let source = Arc::new(FakeSource::default());
    // The real clock: openssl checks thisUpdate/nextUpdate against its own.
    let r = Responder::new(
        vec![pki.served("nes-ca")],
        source.clone(),
        ResponderConfig::default(),
        Arc::new(nesca_ca_types::SystemClock),
    )
    .unwrap();
    let addr = serve(&r).await;
    let dir = tempfile::tempdir().unwrap();
    let (good, revoked, never) = (serial(0x0101), serial(0x0202), serial(0x0303));
    source.set("nes-ca", good, CertState::Good);
    source.set(
        "nes-ca",
        revoked,
        CertState::Revoked {
            time: UnixTime::from_secs(1_760_000_000),
            reason: Some(RevocationReason::KeyCompromise),
        },
    );
    let pem = |c: &x509_cert::Certificate| c.to_pem(LineEnding::LF).unwrap();
    std::fs::write(dir.path().join("ca.pem"), pem(&pki.ca_cert)).unwrap();
    for (name, s) in [("good", good), ("revoked", revoked), ("never", never)] {
        std::fs::write(dir.path().join(format!("{name}.pem")), pem(&pki.leaf(&s))).unwrap();
    }
    let url = format!("http://{addr}/ocsp");
    let path = dir.path().to_path_buf();
    let check = move |name: &str, expect: &[&str]| {
        let cert = format!("{name}.pem");
        // POST, with the nonce openssl adds by default.
        let run = openssl(
            &path,
            &[
                "ocsp",
                "-issuer",
                "ca.pem",
                "-cert",
                &cert,
                "-url",
                &url,
                "-CAfile",
                "ca.pem",
                "-resp_text",
                "-timeout",
                "10",
            ],
        );
        assert!(run.ok, "{}", run.out);
        assert!(run.out.contains("Response verify OK"), "{}", run.out);
        assert!(!run.out.contains("WARNING"), "{}", run.out);
        for e in expect {
            assert!(run.out.contains(e), "POST {name}: no {e:?} in\n{}", run.out);
        }
        // GET of an openssl-made request without nonce.
        let req = format!("{name}-req.der");
        let run = openssl(
            &path,
            &[
                "ocsp",
                "-issuer",
                "ca.pem",
                "-cert",
                &cert,
                "-no_nonce",
                "-reqout",
                &req,
            ],
        );
        assert!(run.ok, "{}", run.out);
        std::fs::read(path.join(&req)).unwrap()
    };
    let cases: [(&str, &[&str]); 3] = [
        ("good", &["good.pem: good"]),
        (
            "revoked",
            &["revoked.pem: revoked", "Reason: keyCompromise"],
        ),
        (
            "never",
            &[
                "never.pem: revoked",
                "Reason: certificateHold",
                "Jan  1 00:00:00 1970 GMT",
            ],
        ),
    ];
    for (name, expect) in cases {
        let c = check.clone();
        let expect_owned: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
        let name_owned = name.to_string();
        let req_der = tokio::task::spawn_blocking(move || {
            let e: Vec<&str> = expect_owned.iter().map(|s| s.as_str()).collect();
            c(&name_owned, &e)
        })
        .await
        .unwrap();
        let path = format!("/ocsp/{}", STANDARD.encode(&req_der));
        let reply = get(addr, &path, "").await;
        assert_eq!(status_of(&reply), OcspResponseStatus::Successful);
        // Asked again: the same bytes, from the response kept after the first answer.
        assert_eq!(get(addr, &path, "").await.body, reply.body);
        assert!(reply
            .header("cache-control")
            .unwrap()
            .starts_with("max-age="));
        let resp = format!("{name}-resp.der");
        std::fs::write(dir.path().join(&resp), &reply.body).unwrap();
        let cert = format!("{name}.pem");
        let path = dir.path().to_path_buf();
        let run = tokio::task::spawn_blocking(move || {
            openssl(
                &path,
                &[
                    "ocsp",
                    "-respin",
                    &resp,
                    "-issuer",
                    "ca.pem",
                    "-cert",
                    &cert,
                    "-CAfile",
                    "ca.pem",
                    "-no_nonce",
                    "-resp_text",
                ],
            )
        })
        .await
        .unwrap();
        assert!(run.ok, "{}", run.out);
        assert!(run.out.contains("Response verify OK"), "{}", run.out);
        for e in expect {
            assert!(run.out.contains(e), "GET {name}: no {e:?} in\n{}", run.out);
        }
    }
    assert_eq!(r.metrics().requests(Outcome::Cached), 3);
}

#[test]
fn pkilint_finds_nothing_in_good_revoked_and_not_issued_responses() {
    let lint = std::path::Path::new("/root/.cache/nesca-tools/pkilint-venv/bin/lint_ocsp_response");
    if !lint.exists() {
        eprintln!("skipped: {} not found", lint.display());
        return;
    }
    let pki = Pki::new();
    let source = Arc::new(FakeSource::default());
    let (r, _) = responder(&pki, source.clone(), ResponderConfig::default());
    source.set("nes-ca", serial(1), CertState::Good);
    source.set(
        "nes-ca",
        serial(2),
        CertState::Revoked {
            time: UnixTime::from_secs(1_760_000_000),
            reason: Some(RevocationReason::KeyCompromise),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    for (name, n, nonce) in [
        ("good", 1, None),
        ("revoked", 2, None),
        ("never", 3, None),
        ("nonce", 1, Some(&[7u8; 32][..])),
    ] {
        let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&serial(n))], nonce));
        assert_eq!(decode(&a.der).0, OcspResponseStatus::Successful);
        let file = dir.path().join(format!("{name}.der"));
        std::fs::write(&file, &a.der).unwrap();
        let out = Command::new(lint).arg("lint").arg(&file).output().unwrap();
        eprintln!(
            "pkilint {name}: exit {:?} {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
        );
        if let Ok(keep) = std::env::var("NESCA_OCSP_KEEP_DIR") {
            std::fs::copy(
                &file,
                std::path::Path::new(&keep).join(format!("{name}.der")),
            )
            .unwrap();
        }
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
