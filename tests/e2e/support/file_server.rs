//! A plain-HTTP server on 127.0.0.1 for a test's other parties: the files another party
//! publishes (a foreign CA's certificate and CRL: [`FileServer::start`], `GET /NAME` answers
//! the file `DIR/NAME` as it is at that moment, 404 otherwise), or any page a handler makes
//! ([`FileServer::serve`]). Each connection is answered on a thread of its own (a browser opens
//! some it never uses), then closed. It stops when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A handler's answer: the status (`200 OK`), extra header lines, the body.
pub(crate) type Answer = (&'static str, Vec<String>, Vec<u8>);

pub(crate) struct FileServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Serves `dir`.
    pub(crate) fn start(dir: &Path) -> FileServer {
        let dir = dir.to_owned();
        FileServer::serve(move |target| {
            let name = target
                .strip_prefix('/')
                .filter(|n| !n.is_empty() && !n.contains('/') && !n.contains(".."))
                .unwrap_or("");
            match std::fs::read(dir.join(name)) {
                Ok(body) if !name.is_empty() => ("200 OK", Vec::new(), body),
                _ => ("404 Not Found", Vec::new(), Vec::new()),
            }
        })
    }

    /// Answers each request with what `handler` makes of its target (path and query).
    pub(crate) fn serve(handler: impl Fn(&str) -> Answer + Send + Sync + 'static) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let (handler, stopping) = (Arc::new(handler), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    let handler = handler.clone();
                    std::thread::spawn(move || answer(conn, &*handler));
                }
            }
        });
        FileServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

/// Reads one request's head (5 s at most, 16 KiB) and writes the handler's answer.
fn answer(mut conn: TcpStream, handler: &dyn Fn(&str) -> Answer) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 << 10 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let (status, headers, body) = handler(text.split_whitespace().nth(1).unwrap_or(""));
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(&h);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let _ = conn
        .write_all(head.as_bytes())
        .and_then(|()| conn.write_all(&body));
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
