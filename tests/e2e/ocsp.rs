//! The OCSP responder over real HTTP on 127.0.0.1, in `nesca serve` and alone (`nesca ocsp`),
//! checked with `openssl ocsp` and pkilint's `lint_ocsp_response` (docs/STANDARDS.md "OCSP").

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::http::*;
use crate::support::ocsp::*;
use crate::support::server::*;
use crate::support::*;

/// id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8).
const EXTENDED_REVOKE: &str = "1.3.6.1.5.5.7.48.1.9";

/// Reads a saved response for `cert` with `openssl ocsp -respin`: its status line, verified.
#[track_caller]
fn respin_status(demo: &Demo, resp: &Path, cert: &Path) -> OcspRun {
    let issuing = demo.path("issuing-ca.pem");
    let chain = demo.path("ca-chain.pem");
    let out = openssl_may_fail(&[
        "ocsp",
        "-respin",
        s(resp),
        "-issuer",
        s(&issuing),
        "-cert",
        s(cert),
        "-no_nonce",
        "-CAfile",
        s(&chain),
        "-resp_text",
    ]);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    OcspRun {
        out,
        text,
        respout: resp.to_path_buf(),
    }
}

/// HTTP 200, `application/ocsp-response`, body exactly `want`.
#[track_caller]
fn assert_ocsp_error(r: &HttpResponse, want: &[u8], what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.describe());
    assert_eq!(
        r.header("content-type"),
        Some("application/ocsp-response"),
        "{what}: {}",
        r.describe()
    );
    assert_eq!(
        r.body,
        want,
        "{what}: expected the unsigned OCSPResponse {} but got {}\n{}",
        hex(want),
        hex(&r.body),
        r.describe()
    );
}

/// Pseudo-random bytes (xorshift), not starting like a DER SEQUENCE.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.push((seed >> 24) as u8);
    }
    v[0] = 0xff;
    v
}

/// A throwaway CA (not nesca's) and a leaf it issued, made with openssl.
#[track_caller]
fn foreign_ca_and_leaf(dir: &Path) -> (PathBuf, PathBuf) {
    let ca_key = dir.join("foreign-ca.key");
    let ca = dir.join("foreign-ca.pem");
    let leaf_key = dir.join("foreign-leaf.key");
    let leaf_csr = dir.join("foreign-leaf.csr");
    let leaf = dir.join("foreign-leaf.pem");
    self_signed_p256(
        &ca_key,
        &ca,
        "/C=TR/O=Throwaway/CN=Throwaway CA",
        2,
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&leaf_key),
        "-subj",
        "/CN=foreign leaf",
        "-out",
        s(&leaf_csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&leaf_csr),
        "-CA",
        s(&ca),
        "-CAkey",
        s(&ca_key),
        "-set_serial",
        "4660",
        "-days",
        "1",
        "-out",
        s(&leaf),
    ]);
    (ca, leaf)
}

/// `plain` (an OCSPRequest without extensions, as `openssl ocsp -no_nonce` makes it) with a
/// nonce extension (RFC 8954) of value `nonce` added.
fn add_nonce(plain: &[u8], nonce: &[u8]) -> Vec<u8> {
    let tbs = der_content(der_content(plain));
    let extension = tlv(
        0x30,
        &[
            oid_der("1.3.6.1.5.5.7.48.1.2"),
            tlv(0x04, &tlv(0x04, nonce)),
        ]
        .concat(),
    );
    let extensions = tlv(0xa2, &tlv(0x30, &extension));
    tlv(0x30, &tlv(0x30, &[tbs, &extensions[..]].concat()))
}

/// The sum of the samples of `metric{label…}` whose labels contain `labels`.
fn metric_sum(text: &str, metric: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(name, _)| {
            name.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') && rest.contains(labels))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

#[test]
fn ocsp_over_http_answers_every_kind_of_request() {
    let demo = server_demo();
    let (a, _) = demo.issue_ok(&demo.csr("a", Key::P256), "a.pem", &[]);
    let (b, _) = demo.issue_ok(&demo.csr("b", Key::P256), "b.pem", &[]);
    let mut server = Server::serve(&demo);
    let url = server.url();

    // A good answer to begin with (nonce included by openssl by default).
    let first = ocsp_good(&demo, &url, &a, "first.der");
    assert_ocsp_lints_clean(&first.respout);

    // --- Malformed requests: unsigned malformedRequest, HTTP 200, never a 500 or a reset. ---
    let ct = "application/ocsp-request";
    assert_ocsp_error(
        &server.post("/ocsp", ct, b""),
        MALFORMED,
        "an empty POST body",
    );
    assert_ocsp_error(
        &server.post("/ocsp", ct, &noise(300, 0x9e37_79b9_7f4a_7c15)),
        MALFORMED,
        "random bytes",
    );
    let valid = make_request(&demo, &a, true, "valid.req");
    assert_ocsp_error(
        &server.post("/ocsp", ct, &valid[..valid.len() / 2]),
        MALFORMED,
        "a request cut in half",
    );
    assert_ocsp_error(
        &server.post("/ocsp", ct, &vec![0x30; 1 << 20]),
        MALFORMED,
        "a 1 MiB body",
    );
    for path in ["/ocsp/%%%%", "/ocsp/!!!", "/ocsp/"] {
        assert_ocsp_error(&server.get(path), MALFORMED, &format!("GET {path}"));
    }
    server.assert_running();

    // --- An issuer nesca does not serve: unauthorized. ---
    let (foreign_ca, foreign_leaf) = foreign_ca_and_leaf(&demo.work);
    let foreign_req = demo.work.join("foreign.req");
    openssl(&[
        "ocsp",
        "-issuer",
        s(&foreign_ca),
        "-cert",
        s(&foreign_leaf),
        "-reqout",
        s(&foreign_req),
    ]);
    let foreign = fs::read(&foreign_req).expect("foreign request");
    assert_ocsp_error(
        &server.post("/ocsp", ct, &foreign),
        UNAUTHORIZED,
        "a request about another CA's certificate",
    );

    // --- A serial nesca never issued: revoked, certificateHold, 1970, extended-revoke. ---
    let never = ocsp_serial(&demo, &url, "0123456789", "never.der");
    let never_der = never.respout.clone();
    assert!(
        answered_never_issued(&never, "0123456789"),
        "a never-issued serial must be revoked (certificateHold, 1970-01-01): {}",
        never.describe()
    );
    let never_bytes = fs::read(&never_der).expect("the never-issued response");
    assert!(
        contains_bytes(&never_bytes, &oid_der(EXTENDED_REVOKE)),
        "no extended-revoke extension ({EXTENDED_REVOKE}) in the response: {}",
        never.describe()
    );
    let response_extensions = never
        .text
        .split("Response Extensions:")
        .nth(1)
        .unwrap_or("");
    // OpenSSL 3.0 knows 1.3.6.1.5.5.7.48.1.9 by its old short name `valid`
    // (id-pkix-OCSP-valid); other versions may print the dotted OID or a longer name.
    assert!(
        response_extensions.contains(EXTENDED_REVOKE)
            || response_extensions.contains("valid:")
            || response_extensions.to_lowercase().contains("extended"),
        "openssl shows no extended-revoke among the response extensions: {}",
        never.describe()
    );
    assert_ocsp_lints_clean(&never_der);

    // --- GET with the base64 request in the path: cacheable, good. ---
    let plain = make_request(&demo, &a, false, "plain.req");
    let spellings = [
        ("standard base64", base64_std(&plain)),
        ("URL-safe base64", base64_url(&plain)),
        ("percent-encoded base64", base64_percent(&plain)),
    ];
    for (i, (how, encoded)) in spellings.iter().enumerate() {
        let r = server.get(&format!("/ocsp/{encoded}"));
        assert_eq!(r.status, 200, "GET ({how}): {}", r.describe());
        assert_eq!(
            r.header("content-type"),
            Some("application/ocsp-response"),
            "GET ({how}): {}",
            r.describe()
        );
        let cache = r.header("cache-control").unwrap_or("").to_ascii_lowercase();
        for part in ["max-age=", "public", "no-transform", "must-revalidate"] {
            assert!(
                cache.contains(part),
                "GET ({how}): Cache-Control lacks {part}: {}",
                r.describe()
            );
        }
        for h in ["expires", "last-modified", "etag"] {
            assert!(
                r.header(h).is_some_and(|v| !v.is_empty()),
                "GET ({how}): no {h} header: {}",
                r.describe()
            );
        }
        let saved = demo.work.join(format!("get-{i}.der"));
        fs::write(&saved, &r.body).expect("save the GET response");
        let checked = respin_status(&demo, &saved, &a);
        assert!(
            checked.text.contains("Response verify OK")
                && checked.status_of(&a).as_deref() == Some("good"),
            "GET ({how}) did not answer good: {}",
            checked.describe()
        );
        if i == 0 {
            assert_ocsp_lints_clean(&saved);
        }
    }

    // --- The nonce is echoed (openssl adds one by default; -no_nonce takes it out). ---
    let with_nonce = ocsp_query(&demo, &url, &[&a], &[], "nonce.der");
    assert!(
        with_nonce.verified()
            && with_nonce.status_of(&a).as_deref() == Some("good")
            && with_nonce.text.contains("OCSP Nonce"),
        "the nonce is not echoed: {}",
        with_nonce.describe()
    );
    let without = ocsp_query(&demo, &url, &[&a], &["-no_nonce"], "no-nonce.der");
    assert!(
        without.text.contains("Response verify OK")
            && without.status_of(&a).as_deref() == Some("good"),
        "a request without a nonce is not answered good: {}",
        without.describe()
    );
    assert_ocsp_lints_clean(&without.respout);

    // Nonces of 1 to 128 octets are echoed; a longer one makes the request malformed.
    let plain_b = make_request(&demo, &b, false, "plain-b.req");
    for len in [1usize, 32, 128] {
        let nonce: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(7) ^ 0x5a).collect();
        let r = server.post("/ocsp", ct, &add_nonce(&plain_b, &nonce));
        assert!(
            r.status == 200
                && r.body.len() > 5
                && der_content(&r.body).starts_with(&[0x0a, 0x01, 0x00])
                && contains_bytes(&r.body, &tlv(0x04, &nonce)),
            "a {len}-octet nonce is not answered successfully with the nonce echoed: {}",
            r.describe()
        );
    }
    assert_ocsp_error(
        &server.post("/ocsp", ct, &add_nonce(&plain_b, &[0x42; 129])),
        MALFORMED,
        "a 129-octet nonce",
    );

    // --- A SHA-256 CertID. ---
    let sha256 = ocsp_query(&demo, &url, &[&a], &["-sha256"], "sha256.der");
    assert!(
        sha256.verified()
            && sha256.status_of(&a).as_deref() == Some("good")
            && sha256.text.contains("Hash Algorithm: sha256"),
        "a SHA-256 CertID is not answered good: {}",
        sha256.describe()
    );

    // --- Two requests in one message: two answers. ---
    let both = ocsp_query(&demo, &url, &[&a, &b], &[], "both.der");
    assert!(
        both.verified()
            && both.status_of(&a).as_deref() == Some("good")
            && both.status_of(&b).as_deref() == Some("good"),
        "two CertIDs in one request are not both answered: {}",
        both.describe()
    );
    assert_eq!(
        both.text.matches("Cert Status: good").count(),
        2,
        "expected two SingleResponses: {}",
        both.describe()
    );

    // --- Health, metrics, CA certificates. ---
    let h = server.get("/healthz");
    assert!(
        h.status == 200 && h.text().trim() == "ok",
        "/healthz: {}",
        h.describe()
    );
    let m = server.get("/metrics");
    assert_eq!(m.status, 200, "/metrics: {}", m.describe());
    let metrics = m.text();
    let ocsp_requests = metric_sum(&metrics, "nesca_http_requests_total", "route=\"ocsp\"");
    assert!(
        ocsp_requests > 0.0,
        "nesca_http_requests_total{{route=\"ocsp\",…}} is not above 0:\n{metrics}"
    );
    for name in [
        "nesca_http_request_duration_seconds_bucket",
        "nesca_crl_signing_errors_total",
        "nesca_crl_age_seconds",
        "nesca_ocsp_",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    for (path, pem) in [
        ("/ca/nes-ca.crt", "issuing-ca.pem"),
        ("/ca/root-ca.crt", "root-ca.pem"),
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.describe());
        assert_eq!(
            r.header("content-type"),
            Some("application/pkix-cert"),
            "{path}: {}",
            r.describe()
        );
        assert!(
            r.body == cert_der(&demo.path(pem)),
            "{path} is not the DER of {pem}: {}",
            r.describe()
        );
    }

    // --- Still serving after all this, and a clean exit on SIGTERM. ---
    server.assert_running();
    let last = ocsp_query(&demo, &url, &[&b], &[], "last.der");
    assert!(
        last.verified() && last.status_of(&b).as_deref() == Some("good"),
        "the server no longer answers a good request: {}\n{}",
        last.describe(),
        server.describe()
    );

    // SIGTERM while a request is in flight (its body half sent): the request is still
    // answered, then the server exits 0 within the grace period.
    let inflight = make_request(&demo, &b, false, "inflight.req");
    let half = inflight.len() / 2;
    let mut stream = TcpStream::connect(&server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST /ocsp HTTP/1.1\r\nHost: {}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        inflight.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream
        .write_all(&inflight[..half])
        .expect("send half the body");
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    server.send_sigterm();
    std::thread::sleep(Duration::from_millis(500));
    let rest = stream.write_all(&inflight[half..]);
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    let raw_text = String::from_utf8_lossy(&raw).into_owned();
    let (status, took) = server.wait_terminated(signalled, GRACE + Duration::from_secs(5));
    assert!(
        rest.is_ok() && raw_text.starts_with("HTTP/1.1 200"),
        "a request in flight at SIGTERM was not answered (write: {rest:?}, read: {read:?}): \
         {raw_text:?}"
    );
    let body_at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(raw.len());
    let saved = demo.work.join("inflight.der");
    fs::write(&saved, &raw[body_at..]).expect("save");
    let checked = respin_status(&demo, &saved, &b);
    assert!(
        checked.text.contains("Response verify OK")
            && checked.status_of(&b).as_deref() == Some("good"),
        "the in-flight request got no good answer: {}",
        checked.describe()
    );
    assert!(
        status.success(),
        "nesca serve did not exit 0 on SIGTERM ({status}, after {took:?})"
    );
}

/// `nesca ocsp` alone reads status from the store: a revocation made with the command line
/// while it runs reaches its answers.
#[test]
fn standalone_ocsp_responder_sees_a_revocation_made_while_it_runs() {
    let demo = server_demo();
    let (a, serial) = demo.issue_ok(&demo.csr("a", Key::P256), "a.pem", &[]);
    let server = Server::ocsp(&demo);
    let url = server.url();

    let good = ocsp_good(&demo, &url, &a, "good.der");
    assert_ocsp_lints_clean(&good.respout);
    let h = server.get("/healthz");
    assert!(
        h.status == 200 && h.text().trim() == "ok",
        "/healthz: {}",
        h.describe()
    );

    let config = demo.config();
    let revoked_at = Instant::now();
    let out = demo
        .nesca(&[
            "revoke",
            "--config",
            s(&config),
            "--serial",
            &serial,
            "--holder-tckn",
            TCKN,
            "--reason",
            "keyCompromise",
        ])
        .ok();
    assert!(
        out.stdout.starts_with("revoked serial="),
        "{}",
        out.describe()
    );
    let revoked = ocsp_revoked(&demo, &url, &a, "keyCompromise", "revoked.der");
    eprintln!(
        "standalone responder: revocation visible after {:?}",
        revoked_at.elapsed()
    );
    assert_ocsp_lints_clean(&revoked.respout);

    let m = server.get("/metrics");
    assert!(
        m.status == 200 && m.text().contains("nesca_ocsp_"),
        "/metrics: {}",
        m.describe()
    );
    let (status, took) = server.terminate(GRACE + Duration::from_secs(5));
    assert!(
        status.success(),
        "nesca ocsp did not exit 0 on SIGTERM ({status}, after {took:?})"
    );
}
