//! Test plugin "snoop": a plugin gone bad. Each route tries something a plugin-host process must
//! not be able to do and answers what happened, as JSON `{"ok": bool, "detail": "…"}`:
//!
//! - `/read?PATH`: read a file (the CA's database, its PIN file, its configuration);
//! - `/write?PATH`: create a file;
//! - `/connect?ADDR`: open a TCP connection (the CA's own listener);
//! - `/exec?PROGRAM,ARG…`: run a program (through the dynamic loader, say);
//! - `/udp?ADDR`: send a UDP datagram; `/unix?PATH`: connect to a UNIX socket;
//! - `/thread`: start a thread (which a plugin may);
//! - `/env`: the names of its environment variables (`detail`, comma-separated);
//! - `/pid`: its process id and its parent's (`{"pid": N, "ppid": N}`);
//! - `/later`: in half a second, from a thread of its own while no request is handled, look a
//!   certificate up through the host; `/later-result` answers the host's answer (`detail`);
//! - `/forge?answer` or `/forge?huge`: write a frame of its own on the socket to the CA (an
//!   answer to a call that is not open; a frame announcing 2 GiB);
//! - `/stderr`: write two lines to stderr;
//! - `/fd?N`: read from descriptor N (one its process would have inherited);
//! - `/prlimit?PID`: set process PID's open-files limit to 5; `/renice-group`: lower the
//!   priority of its whole process group (the CA's, were it in it).
//!
//! `deny`, not `forbid`: see the echo test plugin.
#![deny(unsafe_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Duration;

use nesca_plugin_api::{export_plugin, Host, HttpRequest, HttpResponse, InitError, Plugin};
use serde_json::{json, Value};

pub struct Snoop {
    host: Host,
}

/// What the host answered the call `/later` made.
static LATER: Mutex<Option<String>> = Mutex::new(None);

/// A frame as the plugin-host wire has it (server/src/plugin_host/frame.rs): length, kind, call
/// id, head length, no head, `body`.
fn frame(kind: u8, id: u64, body: &[u8]) -> Vec<u8> {
    let mut out = ((1 + 8 + 2 + body.len()) as u32).to_be_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Writes `bytes` on the process's socket to the CA (its stdin).
fn forge(bytes: &[u8]) -> std::io::Result<()> {
    let socket = UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    (&socket).write_all(bytes)
}

fn outcome<T>(r: std::io::Result<T>) -> HttpResponse {
    match r {
        Ok(_) => HttpResponse::json(200, &json!({"ok": true, "detail": ""})),
        Err(e) => HttpResponse::json(200, &json!({"ok": false, "detail": e.to_string()})),
    }
}

impl Plugin for Snoop {
    const NAME: &'static str = "snoop";
    const VERSION: &'static str = "1.0.0";

    fn init(_config: Value, host: Host) -> Result<Self, InitError> {
        Ok(Snoop { host })
    }

    fn handle_http(&self, request: HttpRequest) -> HttpResponse {
        let arg = request.query.clone().unwrap_or_default();
        match request.path.as_str() {
            "/read" => outcome(std::fs::read(&arg)),
            "/write" => outcome(std::fs::write(&arg, b"snoop was here")),
            "/connect" => match arg.parse::<SocketAddr>() {
                Ok(addr) => outcome(TcpStream::connect_timeout(&addr, Duration::from_secs(2))),
                Err(e) => HttpResponse::text(400, e.to_string()),
            },
            "/exec" => {
                let mut words = arg.split(',');
                let program = words.next().unwrap_or("/bin/true");
                outcome(std::process::Command::new(program).args(words).status())
            }
            "/udp" => outcome(
                std::net::UdpSocket::bind("127.0.0.1:0").and_then(|u| u.send_to(b"snoop", &arg)),
            ),
            "/unix" => outcome(UnixStream::connect(&arg)),
            "/thread" => outcome(
                std::thread::spawn(|| 7)
                    .join()
                    .map_err(|_| std::io::Error::other("the thread panicked")),
            ),
            "/later" => {
                let host = self.host;
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(500));
                    let answer = match host.lookup_certificate("01") {
                        Ok(_) => "answered".to_owned(),
                        Err(e) => format!("{}: {e}", e.code),
                    };
                    *LATER.lock().unwrap() = Some(answer);
                });
                HttpResponse::json(200, &json!({"ok": true, "detail": ""}))
            }
            "/later-result" => {
                let answer = LATER.lock().unwrap().clone().unwrap_or_default();
                HttpResponse::json(200, &json!({"ok": !answer.is_empty(), "detail": answer}))
            }
            "/forge" => {
                let bytes = match arg.as_str() {
                    "answer" => frame(
                        5,
                        999_999,
                        br#"{"v":1,"status":200,"headers":[],"body":""}"#,
                    ),
                    _ => vec![0x7f, 0xff, 0xff, 0xff, 5],
                };
                outcome(forge(&bytes))
            }
            "/fd" => outcome(arg.parse().map_err(std::io::Error::other).and_then(read_fd)),
            "/prlimit" => outcome(
                arg.parse()
                    .map_err(std::io::Error::other)
                    .and_then(limit_files),
            ),
            "/renice-group" => outcome(renice_group()),
            "/stderr" => {
                eprintln!("snoop on stderr\nits second line");
                HttpResponse::json(200, &json!({"ok": true, "detail": ""}))
            }
            "/env" => {
                let names: Vec<String> = std::env::vars_os()
                    .map(|(k, _)| k.to_string_lossy().into_owned())
                    .collect();
                HttpResponse::json(200, &json!({"ok": true, "detail": names.join(",")}))
            }
            "/pid" => HttpResponse::json(
                200,
                &json!({"pid": std::process::id(), "ppid": std::os::unix::process::parent_id()}),
            ),
            _ => HttpResponse::text(404, "no such route"),
        }
    }
}

/// Reads a byte from descriptor `fd`, without taking it over (it is not this code's).
#[allow(unsafe_code)]
fn read_fd(fd: i32) -> std::io::Result<()> {
    let mut byte = 0u8;
    // SAFETY: `byte` is a valid one-byte buffer; a closed `fd` makes read fail with EBADF.
    let r = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
    if r >= 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `prlimit(pid, RLIMIT_NOFILE, {5, 5})`: what a plugin must not do to the CA.
#[allow(unsafe_code)]
fn limit_files(pid: i32) -> std::io::Result<()> {
    let new = libc::rlimit64 {
        rlim_cur: 5,
        rlim_max: 5,
    };
    // SAFETY: `new` is a valid rlimit64 for the call; the old-limit pointer is null, which
    // prlimit64 accepts.
    let r = unsafe { libc::prlimit64(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `setpriority(PRIO_PGRP, 0, 19)`: every process of its group at the lowest priority.
#[allow(unsafe_code)]
fn renice_group() -> std::io::Result<()> {
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::setpriority(libc::PRIO_PGRP, 0, 19) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

export_plugin!(Snoop);
