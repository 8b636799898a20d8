//! The revocation status of an officer certificate another ESHS issued, from that ESHS's own
//! publications: the issuer's certificate from the officer certificate's caIssuers URL, the
//! CRL from its cRLDistributionPoints, both fetched over plain HTTP (RFC 5280 §4.2.1.13,
//! §4.2.2.1: they are signed objects, published unencrypted), each bounded in size and time, and
//! verified by `nesca_pkix::chain::verify_against_crl`. The registration authority decides what
//! follows (`nesca_ra::list_import`).
//!
//! The URLs come from a certificate an operator registered, and are fetched only after the
//! list's signature verified under it: a stranger cannot make nesca fetch anything.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use nesca_pkix::chain::{verify_against_crl, MAX_CRL_LEN};
use nesca_pkix::subject::issuer_urls;
use nesca_pkix::{PkixError, MAX_CERTIFICATE_LEN};
use nesca_plugin_api::one_line;
use nesca_ra::list_import::{CrlStatus, ForeignOfficerStatus, StatusUnknown};

/// Longest the whole check (the issuer's certificate and the CRL, every URL tried) may take.
/// Under the channels' default plugin timeout (10 s), though an upload that also reads a large
/// list can still outlast it: the portal then gets 504, the import goes on, and the same upload
/// again answers its outcome.
const CHECK_LIMIT: Duration = Duration::from_secs(8);
/// The most URLs of each kind tried: a certificate naming a hundred cannot hold an import for
/// long (the deadline bounds it anyway).
const MAX_URLS: usize = 3;
/// The most response-header bytes read before the body.
const MAX_HEAD: usize = 16 << 10;

/// Why an issuer's CRL or certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("the officer's certificate names no http {what} URL")]
    NoUrl { what: &'static str },
    #[error("{url}: not an http://HOST[:PORT]/PATH URL")]
    BadUrl { url: String },
    #[error("{url}: {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: answered {status}")]
    Status { url: String, status: String },
    #[error("{url}: more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: a malformed response: {rule}")]
    Response { url: String, rule: &'static str },
    #[error(transparent)]
    Pkix(#[from] PkixError),
}

/// Fetches and checks issuers' CRLs over HTTP.
pub(crate) struct HttpCrls;

impl ForeignOfficerStatus for HttpCrls {
    fn crl_status(
        &self,
        cert_der: &[u8],
        now: ca_core::UnixTime,
    ) -> Result<CrlStatus, StatusUnknown> {
        crl_status(cert_der, now.secs()).map_err(|e| StatusUnknown {
            lasting: e.is_lasting(),
            source: Box::new(e),
        })
    }
}

impl FetchError {
    /// Whether asking again cannot help: the certificate names no usable URL, or what its
    /// issuer publishes does not verify. No answer in time, another status than 200, an
    /// unreadable answer or a CRL out of date may be better next time.
    fn is_lasting(&self) -> bool {
        match self {
            FetchError::NoUrl { .. } | FetchError::BadUrl { .. } => true,
            FetchError::Pkix(PkixError::CrlOutOfDate { .. }) => false,
            FetchError::Pkix(_) => true,
            FetchError::Io { .. }
            | FetchError::Status { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Response { .. } => false,
        }
    }
}

fn crl_status(cert_der: &[u8], now: i64) -> Result<CrlStatus, FetchError> {
    let urls = issuer_urls(cert_der)?;
    let deadline = Instant::now() + CHECK_LIMIT;
    let issuer = first_that(&urls.ca_issuers, "caIssuers", |url| {
        fetch(url, "CERTIFICATE", MAX_CERTIFICATE_LEN, deadline)
    })?;
    // The first CRL that verifies answers: a stale or wrong copy at one URL does not hide a
    // good one at the next.
    first_that(&urls.crls, "CRL distribution point", |url| {
        let crl = fetch(url, "X509 CRL", MAX_CRL_LEN, deadline)?;
        match verify_against_crl(cert_der, &issuer, &crl, now) {
            Ok(()) => Ok(CrlStatus::NotRevoked),
            Err(PkixError::Revoked) => Ok(CrlStatus::Revoked),
            Err(e) => Err(e.into()),
        }
    })
}

/// The first of `urls` (at most [`MAX_URLS`]) for which `try_url` succeeds; the last failure
/// when none does.
fn first_that<T>(
    urls: &[String],
    what: &'static str,
    try_url: impl Fn(&str) -> Result<T, FetchError>,
) -> Result<T, FetchError> {
    let mut last = FetchError::NoUrl { what };
    for url in urls.iter().take(MAX_URLS) {
        match try_url(url) {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The body at `url`, as DER (given so, or as PEM labelled `label`).
fn fetch(url: &str, label: &str, limit: usize, deadline: Instant) -> Result<Vec<u8>, FetchError> {
    let body = http_get(url, limit, deadline)?;
    der_or_pem(body, label).ok_or_else(|| FetchError::Response {
        url: shown(url),
        rule: "neither DER nor PEM of the expected kind",
    })
}

/// A URL from a certificate as messages show it: one bounded line.
fn shown(url: &str) -> String {
    one_line(url.as_bytes())
}

/// DER as it came, or the first PEM block labelled `label`.
fn der_or_pem(body: Vec<u8>, label: &str) -> Option<Vec<u8>> {
    if body.first() == Some(&0x30) {
        return Some(body);
    }
    use base64::Engine as _;
    let text = std::str::from_utf8(&body).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// `GET url` over HTTP/1.0 (no chunked answers), at most `limit` body bytes, before
/// `deadline`; the body of a 200 answer.
fn http_get(url: &str, limit: usize, deadline: Instant) -> Result<Vec<u8>, FetchError> {
    let bad = || FetchError::BadUrl { url: shown(url) };
    let io = |source| FetchError::Io {
        url: shown(url),
        source,
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    if authority.is_empty()
        || authority.contains('@')
        || !path.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(bad());
    }
    let with_port = if authority
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let timed_out = || io(std::io::ErrorKind::TimedOut.into());
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    };
    let addr = resolve(with_port, left().ok_or_else(timed_out)?)
        .map_err(io)?
        .ok_or_else(bad)?;
    let mut stream =
        TcpStream::connect_timeout(&addr, left().ok_or_else(timed_out)?).map_err(io)?;
    stream
        .set_write_timeout(Some(left().ok_or_else(timed_out)?))
        .map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: nesca\r\nAccept: */*\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;

    let mut response = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        stream
            .set_read_timeout(Some(left().ok_or_else(timed_out)?))
            .map_err(io)?;
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        if response.len() > limit + MAX_HEAD {
            return Err(FetchError::TooLarge {
                url: shown(url),
                limit,
            });
        }
    }
    let malformed = |rule| FetchError::Response {
        url: shown(url),
        rule,
    };
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .filter(|p| *p <= MAX_HEAD)
        .ok_or_else(|| malformed("no end of the header within 16 KiB"))?;
    let head = std::str::from_utf8(&response[..head_end])
        .map_err(|_| malformed("a header that is not UTF-8"))?
        .to_owned();
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        // Only the code: the rest of a status line is the server's text, not for our log.
        let code = status.split_whitespace().nth(1).unwrap_or("no status");
        return Err(FetchError::Status {
            url: shown(url),
            status: one_line(code.as_bytes()),
        });
    }
    // In place: a CRL of many MiB is moved down, not copied into a second buffer.
    response.drain(..head_end + 4);
    let body = response;
    if body.len() > limit {
        return Err(FetchError::TooLarge {
            url: shown(url),
            limit,
        });
    }
    let declared = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    if declared.is_some_and(|n| n != body.len()) {
        return Err(malformed(
            "a body shorter or longer than its Content-Length",
        ));
    }
    Ok(body)
}

/// The first address `host_port` resolves to, waiting at most `limit` (the system's resolver
/// has no deadline of its own: it runs on a thread of its own, left to finish if it is late).
fn resolve(host_port: String, limit: Duration) -> std::io::Result<Option<std::net::SocketAddr>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("nesca-resolve".into())
        .spawn(move || {
            let _ = tx.send(host_port.to_socket_addrs().map(|mut a| a.next()));
        })?;
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    /// A server that accepts and never answers is given up at the deadline.
    #[test]
    fn a_silent_server_is_given_up_at_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ca.crl", listener.local_addr().unwrap());
        let e = http_get(&url, 8, Instant::now() + Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, FetchError::Io { .. }), "{e}");
        drop(listener);
    }

    /// Serves one canned answer on 127.0.0.1 and returns its URL.
    fn serve_once(answer: &'static [u8]) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer);
            }
        });
        format!("http://127.0.0.1:{port}/ca.crl")
    }

    #[test]
    fn a_200_answer_gives_its_body() {
        let url = serve_once(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n\x30\x01\x00");
        assert_eq!(http_get(&url, 1024, soon()).unwrap(), vec![0x30, 1, 0]);
    }

    #[test]
    fn other_answers_are_errors_naming_the_url() {
        for (answer, expected) in [
            (&b"HTTP/1.0 404 Not Found\r\n\r\n"[..], "answered 404"),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nabc",
                "Content-Length",
            ),
            (
                b"HTTP/1.0 200 OK\r\n\r\n0123456789abcdef",
                "more than 8 bytes",
            ),
            (b"garbage", "no end of the header"),
        ] {
            let url = serve_once(answer);
            let e = http_get(&url, 8, soon()).unwrap_err().to_string();
            assert!(e.starts_with(&url) && e.contains(expected), "{e}");
        }
        for url in [
            "https://x/ca.crl",
            "http:///ca.crl",
            "http://u@host/x",
            "ftp://x/y",
        ] {
            assert!(
                matches!(http_get(url, 8, soon()), Err(FetchError::BadUrl { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn certificates_and_crls_come_as_der_or_pem() {
        assert_eq!(der_or_pem(vec![0x30, 0], "X509 CRL"), Some(vec![0x30, 0]));
        let pem = b"-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n".to_vec();
        assert_eq!(der_or_pem(pem, "X509 CRL"), Some(vec![0x30, 0]));
        assert_eq!(der_or_pem(b"<html>".to_vec(), "X509 CRL"), None);
    }
}
