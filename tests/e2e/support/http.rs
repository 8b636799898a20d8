//! A tiny HTTP/1.1 client over `std::net::TcpStream`: one exchange per connection
//! (`Connection: close`), the response read until complete under a time limit.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::encoding::hex;

/// Longest one HTTP exchange may take.
pub(crate) const HTTP_LIMIT: Duration = Duration::from_secs(30);

/// An HTTP response as read off the wire.
pub(crate) struct HttpResponse {
    pub status: u16,
    /// Header names in lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The request line, for messages.
    pub request: String,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status, headers and (the start of) the body, for assertion messages.
    pub(crate) fn describe(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let body = if self.body.iter().all(|b| b.is_ascii() && *b != 0) {
            String::from_utf8_lossy(&self.body[..self.body.len().min(2000)]).into_owned()
        } else {
            hex(&self.body[..self.body.len().min(64)])
        };
        format!(
            "{} → {}\n{}\n({} body bytes) {body}",
            self.request,
            self.status,
            headers.join("\n"),
            self.body.len()
        )
    }
}

/// One HTTP/1.1 exchange (`Connection: close`) with `addr`. The body is written on a thread of
/// its own while the response is read, so that a server answering before it has read the whole
/// body (an oversized request) is seen answering, not as a write error.
#[track_caller]
pub(crate) fn http(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let request = format!("{method} {target}");
    let sock: SocketAddr = addr.parse().expect("socket address");
    let mut stream = TcpStream::connect_timeout(&sock, HTTP_LIMIT)
        .unwrap_or_else(|e| panic!("{request}: cannot connect to {addr}: {e}"));
    stream.set_read_timeout(Some(HTTP_LIMIT)).expect("timeout");
    stream.set_write_timeout(Some(HTTP_LIMIT)).expect("timeout");
    let head = request_head(method, target, addr, headers, body.map(<[u8]>::len));
    stream
        .write_all(head.as_bytes())
        .unwrap_or_else(|e| panic!("{request}: cannot send the request head: {e}"));
    let writer = body.map(|b| {
        let mut w = stream.try_clone().expect("clone the stream");
        let b = b.to_vec();
        thread::spawn(move || {
            let _ = w.write_all(&b).and_then(|_| w.flush());
        })
    });
    let response = read_response(&mut stream, &request);
    // Unblocks the body writer if the server stopped reading.
    let _ = stream.shutdown(Shutdown::Both);
    if let Some(w) = writer {
        let _ = w.join();
    }
    response.unwrap_or_else(|e| panic!("{e} (from {addr})"))
}

/// The head of an HTTP/1.1 request to `host` (`Connection: close`) with `headers`, and a
/// Content-Length when a body of `body_len` bytes follows.
pub(crate) fn request_head(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body_len: Option<usize>,
) -> String {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(n) = body_len {
        head.push_str(&format!("Content-Length: {n}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Reads the response to `request` (`METHOD TARGET`, for messages) off `stream` until it is
/// complete, the stream ends or fails, or [`HTTP_LIMIT`] passes. `Err` says what came instead.
pub(crate) fn read_response(stream: &mut impl Read, request: &str) -> Result<HttpResponse, String> {
    let start = Instant::now();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16384];
    let mut read_error = None;
    let mut parsed = None;
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
        if let Some(r) = parse_response(&raw, false) {
            parsed = Some(r);
            break;
        }
        if start.elapsed() > HTTP_LIMIT {
            break;
        }
    }
    match parsed.or_else(|| parse_response(&raw, true)) {
        Some((status, headers, body)) => Ok(HttpResponse {
            status,
            headers,
            body,
            request: request.to_string(),
        }),
        None => Err(format!(
            "{request}: no complete HTTP response (read error: {read_error:?}); got {} bytes: {:?}",
            raw.len(),
            String::from_utf8_lossy(&raw[..raw.len().min(500)])
        )),
    }
}

type Parsed = (u16, Vec<(String, String)>, Vec<u8>);

/// A complete response in `raw`: status, headers, body (Content-Length or chunked; with
/// neither, the rest of the stream once `eof`).
fn parse_response(raw: &[u8], eof: bool) -> Option<Parsed> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if status == 204 || status == 304 {
        return Some((status, headers.clone(), Vec::new()));
    }
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        let body = dechunk(rest)?;
        return Some((status, headers.clone(), body));
    }
    if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < len {
            return None;
        }
        return Some((status, headers.clone(), rest[..len].to_vec()));
    }
    eof.then(|| (status, headers.clone(), rest.to_vec()))
}

/// The body of a complete chunked transfer coding, `None` while incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(body);
        }
        if data.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
