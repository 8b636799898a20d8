//! A running `nesca serve` or `nesca ocsp` as a child process of the test, and a tiny HTTP/1.1
//! client over `std::net::TcpStream` to talk to it.
//!
//! The server listens on 127.0.0.1 port 0; the test learns the real port from the one line the
//! server prints on stdout once it accepts connections. The [`Server`] guard kills the child
//! when the test panics, so no server outlives its test.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::support::*;

/// Longest a server may take to print its `listening on` line.
const START_LIMIT: Duration = Duration::from_secs(60);
/// Longest one HTTP exchange may take.
pub const HTTP_LIMIT: Duration = Duration::from_secs(30);
/// `server.shutdown_grace_seconds` of the demo configuration.
pub const GRACE: Duration = Duration::from_secs(10);

/// A demo CA (`init --demo --public-url LINT_URL`, so that pkilint has no internal-domain
/// finding) configured for tests: the public listener on port 0, and the OCSP responder
/// polling the store every 50 ms.
#[track_caller]
pub fn server_demo() -> Demo {
    let demo = Demo::init_with(&["--public-url", LINT_URL]);
    let path = demo.config();
    let text = fs::read_to_string(&path).expect("nesca.toml");
    let text = toml_replace(&text, "server", "listen", "127.0.0.1:0");
    let text = toml_replace(&text, "ocsp", "listen", "127.0.0.1:0");
    let text = toml_replace_raw(&text, "ocsp", "poll_interval_ms", "50");
    fs::write(&path, text).expect("write nesca.toml");
    demo
}

/// A `nesca serve` / `nesca ocsp` child process. Dropping it kills the child.
pub struct Server {
    child: Child,
    what: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stdout_lines: Arc<Mutex<Vec<String>>>,
    stdout_thread: Option<JoinHandle<()>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<JoinHandle<()>>,
    pin: Option<String>,
    exited: Option<ExitStatus>,
}

impl Server {
    /// `nesca serve --config DEMO/nesca.toml`, once it listens.
    #[track_caller]
    pub fn serve(demo: &Demo) -> Server {
        let config = demo.config();
        Server::start(
            demo,
            &["serve", "--config", s(&config)],
            "nesca serve: listening on http://",
        )
    }

    /// `nesca ocsp --config DEMO/nesca.toml --listen 127.0.0.1:0`, once it listens.
    #[track_caller]
    pub fn ocsp(demo: &Demo) -> Server {
        let config = demo.config();
        Server::start(
            demo,
            &["ocsp", "--config", s(&config), "--listen", "127.0.0.1:0"],
            "nesca ocsp: listening on http://",
        )
    }

    #[track_caller]
    fn start(demo: &Demo, args: &[&str], banner: &str) -> Server {
        let mut cmd = nesca_command();
        // -v: the server's log goes to stderr, shown when an assertion fails.
        cmd.arg("-v")
            .args(args)
            .current_dir(&demo.work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = format!("{cmd:?}");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_thread = {
            let stderr = stderr.clone();
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match stderr_pipe.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => stderr.lock().unwrap().extend_from_slice(&chunk[..n]),
                    }
                }
            })
        };
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout_thread = {
            let lines = stdout_lines.clone();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            })
        };
        let pin = fs::read_to_string(demo.dir.join("user-pin"))
            .ok()
            .map(|p| p.trim().to_string())
            .filter(|p| p.len() >= 8);
        // The guard exists from here on: a panic below kills the child.
        let mut server = Server {
            child,
            what,
            addr: String::new(),
            stdout_lines,
            stdout_thread: Some(stdout_thread),
            stderr,
            stderr_thread: Some(stderr_thread),
            pin,
            exited: None,
        };
        let deadline = Instant::now() + START_LIMIT;
        let line = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!(
                "no `{banner}…` line within {START_LIMIT:?}: {}",
                server.describe()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                // stdout closed: the server exited (or is about to).
                server.wait_exit(Duration::from_secs(10));
                panic!(
                    "the server closed stdout before listening: {}",
                    server.describe()
                );
            }
        };
        let Some(addr) = line.strip_prefix(banner) else {
            panic!(
                "the server's first stdout line is not `{banner}ADDR`: {line:?}\n{}",
                server.describe()
            );
        };
        let addr = addr.trim().trim_end_matches('/').to_string();
        let parsed: SocketAddr = addr.parse().unwrap_or_else(|e| {
            panic!(
                "the listening line names no socket address ({e}): {line:?}\n{}",
                server.describe()
            )
        });
        assert!(
            parsed.ip().is_loopback() && parsed.port() != 0,
            "the server must listen on a real loopback port, it says {line:?}"
        );
        server.addr = addr;
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The command, its state and its output so far, for assertion messages.
    pub fn describe(&self) -> String {
        let stdout = self.stdout_lines.lock().unwrap().join("\n");
        let mut stderr = self.stderr();
        // Keep messages readable: the end of the log is what matters.
        if stderr.len() > 20_000 {
            let mut cut = stderr.len() - 20_000;
            while !stderr.is_char_boundary(cut) {
                cut += 1;
            }
            stderr = format!("…{}", &stderr[cut..]);
        }
        if self.pin.as_deref().is_some_and(|p| stderr.contains(p)) {
            stderr = "(not shown: it holds the user PIN)".into();
        }
        format!(
            "`{}` ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            self.what,
            match self.exited {
                Some(st) => format!("exited with {st}"),
                None => "running".into(),
            },
            stderr.trim_end()
        )
    }

    /// Waits up to `limit` for the child to exit; its status if it did.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    self.exited = Some(st);
                    return Some(st);
                }
                Ok(None) if start.elapsed() >= limit => return None,
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for {}: {e}", self.what),
            }
        }
    }

    /// Asserts the server is still running (it did not crash under what the test sent).
    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            self.exited = Some(st);
            panic!("the server exited unexpectedly: {}", self.describe());
        }
    }

    /// Sends SIGTERM (`kill -TERM PID`) and waits up to `limit` for the server to exit; panics
    /// (killing it) if it does not. Returns the exit status and how long the exit took, after
    /// checking that stdout held only the listening line and that the PIN never appeared.
    #[track_caller]
    pub fn terminate(mut self, limit: Duration) -> (ExitStatus, Duration) {
        self.assert_running();
        let start = Instant::now();
        self.send_sigterm();
        self.wait_terminated(start, limit)
    }

    /// `kill -TERM PID`.
    #[track_caller]
    pub fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill -TERM");
        assert!(kill.success(), "kill -TERM {pid} failed: {kill}");
    }

    /// After [`Server::send_sigterm`] at `start`: what [`Server::terminate`] returns.
    #[track_caller]
    pub fn wait_terminated(mut self, start: Instant, limit: Duration) -> (ExitStatus, Duration) {
        let Some(status) = self.wait_exit(limit) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "the server did not exit within {limit:?} of SIGTERM: {}",
                self.describe()
            );
        };
        let took = start.elapsed();
        // The pipes close with the process: collect everything it wrote.
        for t in [self.stdout_thread.take(), self.stderr_thread.take()]
            .into_iter()
            .flatten()
        {
            let _ = t.join();
        }
        let lines = self.stdout_lines.lock().unwrap().clone();
        // The listening line, and a second one for the channels' mTLS listener when configured.
        let expected = 1 + usize::from(lines.iter().any(|l| l.contains("channels (mTLS) on")));
        assert_eq!(
            lines.len(),
            expected,
            "the server must print only its listening line(s): {}",
            self.describe()
        );
        if let Some(pin) = &self.pin {
            assert!(
                !self.stderr().contains(pin.as_str()) && !lines.join("\n").contains(pin.as_str()),
                "the user PIN appears in the output of `{}` (output not shown)",
                self.what
            );
        }
        (status, took)
    }

    /// `GET PATH`.
    #[track_caller]
    pub fn get(&self, path: &str) -> HttpResponse {
        http(&self.addr, "GET", path, &[], None)
    }

    /// `POST PATH` with a body of `content_type`.
    #[track_caller]
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> HttpResponse {
        http(
            &self.addr,
            "POST",
            path,
            &[("Content-Type", content_type)],
            Some(body),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

/// An HTTP response as read off the wire.
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The request line, for messages.
    pub request: String,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status, headers and (the start of) the body, for assertion messages.
    pub fn describe(&self) -> String {
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

/// Lower-case hex of `bytes`, space separated.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One HTTP/1.1 exchange (`Connection: close`) with `addr`. The body is written on a thread of
/// its own while the response is read, so that a server answering before it has read the whole
/// body (an oversized request) is seen answering, not as a write error.
#[track_caller]
pub fn http(
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
pub fn request_head(
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
pub fn read_response(stream: &mut impl Read, request: &str) -> Result<HttpResponse, String> {
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

/// Standard base64 (with `+`, `/` and `=` padding) of `der`, on one line.
pub fn base64_std(der: &[u8]) -> String {
    pem_bodies(&pem_encode("X", der), "X")
        .pop()
        .expect("one PEM block")
}

/// URL-safe base64 without padding (RFC 4648 §5) of `der`.
pub fn base64_url(der: &[u8]) -> String {
    base64_std(der)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Standard base64 of `der`, percent-encoded as RFC 5019 clients put it in a URL path.
pub fn base64_percent(der: &[u8]) -> String {
    base64_std(der)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}
