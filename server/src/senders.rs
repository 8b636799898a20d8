//! The configurable outbox senders (the defaults, files in a directory, are in `ra::outbox`): e-mail
//! through an SMTP relay (lettre: STARTTLS, implicit TLS or plain on a local relay, optional
//! AUTH), and SMS through a program the operator names (a gateway's client), which gets the
//! number as its last argument and the text on its standard input.
//!
//! Errors name the step and the relay or program, never a password or a message's text (an
//! access password or a code travels in it).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use nesca_ra::outbox::{Email, EmailSender, Sms, SmsSender};
use nesca_ra::RaError;
use secrecy::{ExposeSecret as _, SecretString};

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SmtpTls {
    /// Plain SMTP (a relay on the same host).
    None,
    /// STARTTLS, required.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// An SMTP relay's settings.
pub(crate) struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// Extra trust anchor (PEM) for a relay with a private CA; the web PKI roots otherwise.
    pub ca_pem: Option<Vec<u8>>,
    pub from: String,
    pub timeout: Duration,
}

/// Sends e-mail through an SMTP relay.
pub(crate) struct SmtpSender {
    transport: SmtpTransport,
    from: lettre::message::Mailbox,
    relay: String,
}

/// A relay's refusal: which relay, and its one-line reason.
fn relay_error(relay: &str, reason: String) -> RaError {
    RaError::Relay {
        relay: relay.to_owned(),
        reason,
    }
}

impl SmtpSender {
    pub(crate) fn new(s: SmtpSettings) -> Result<SmtpSender, RaError> {
        let relay = format!("smtp {}:{}", s.host, s.port);
        let from = s.from.parse().map_err(|e| RaError::Invalid {
            field: "outbox.from",
            rule: format!("not a mailbox: {e}"),
        })?;
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls | SmtpTls::Tls => {
                let mut params = TlsParameters::builder(s.host.clone());
                if let Some(pem) = &s.ca_pem {
                    let cert = Certificate::from_pem(pem)
                        .map_err(|e| relay_error(&relay, format!("the CA certificate: {e}")))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .build_rustls()
                    .map_err(|e| relay_error(&relay, format!("TLS settings: {e}")))?;
                if s.tls == SmtpTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = SmtpTransport::builder_dangerous(&s.host)
            .port(s.port)
            .tls(tls)
            .timeout(Some(s.timeout));
        if let (Some(user), Some(password)) = (&s.username, &s.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(SmtpSender {
            transport: builder.build(),
            from,
            relay,
        })
    }
}

impl EmailSender for SmtpSender {
    fn send(&self, email: &Email) -> Result<(), RaError> {
        let to = email
            .to
            .parse()
            .map_err(|e| relay_error(&self.relay, format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<outbox-{}@nesca>", email.outbox_id)))
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.expose_secret().to_owned())
            .map_err(|e| relay_error(&self.relay, format!("message: {e}")))?;
        self.transport
            .send(&message)
            .map(|_| ())
            .map_err(|e| relay_error(&self.relay, first_line(&e.to_string()).to_owned()))
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// The only variables of nesca's environment the SMS program gets: it must not inherit the
/// HSM PIN (`hsm.pin_env`), the SMTP password (`outbox.smtp.password_env`) or anything else
/// nesca was started with.
pub(crate) const SMS_PROGRAM_ENV: [&str; 2] = ["PATH", "LANG"];

/// `PATH` when nesca has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The SMS program's whole environment: [`SMS_PROGRAM_ENV`] as nesca has them (`PATH`
/// defaulting to [`DEFAULT_PATH`]).
fn sms_program_env() -> Vec<(&'static str, std::ffi::OsString)> {
    SMS_PROGRAM_ENV
        .iter()
        .filter_map(|&name| {
            let value =
                std::env::var_os(name).or_else(|| (name == "PATH").then(|| DEFAULT_PATH.into()))?;
            Some((name, value))
        })
        .collect()
}

/// Sends SMS by running a program: `program args… NUMBER`, the text on its stdin, in an
/// environment of [`SMS_PROGRAM_ENV`] only.
pub(crate) struct SmsCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Longest the program may run before it is killed.
    pub timeout: Duration,
}

impl SmsSender for SmsCommand {
    fn send(&self, sms: &Sms) -> Result<(), RaError> {
        let what = self.program.display().to_string();
        let mut child = Command::new(&self.program)
            .env_clear()
            .envs(sms_program_env())
            .args(&self.args)
            .arg(&sms.to)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                relay_error(&format!("sms_command {what}"), format!("cannot start: {e}"))
            })?;
        // Its stderr is read on a thread of its own from the start: a program that leaves a
        // child holding the pipe cannot hold the outbox beyond the timeout.
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(pipe) = child.stderr.take() {
            std::thread::spawn(move || {
                use std::io::Read as _;
                let mut pipe = pipe.take(512);
                let mut chunk = [0u8; 512];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    if tx.send(chunk[..n].to_vec()).is_err() {
                        break;
                    }
                }
            });
        }
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input is its own business: the exit status
            // decides.
            let _ = stdin.write_all(sms.body.expose_secret().as_bytes());
        }
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() < self.timeout => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(relay_error(
                        &format!("sms_command {what}"),
                        format!("killed after {} s", self.timeout.as_secs()),
                    ));
                }
                Err(e) => return Err(relay_error(&format!("sms_command {what}"), e.to_string())),
            }
        };
        if status.success() {
            return Ok(());
        }
        // What it wrote by now, waiting a moment for the rest (not for a lingering child).
        let mut err = Vec::new();
        while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
            err.extend(chunk);
        }
        // A gateway that echoes the message must not put the code in our log.
        let body = sms.body.expose_secret();
        let mut err = String::from_utf8_lossy(&err).into_owned();
        for part in std::iter::once(body).chain(body.lines()) {
            if !part.trim().is_empty() {
                err = err.replace(part, "[message]");
            }
        }
        let err: String = err.trim().chars().take(200).collect();
        Err(relay_error(
            &format!("sms_command {what}"),
            format!("{status}: {err}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader};
    use std::net::TcpListener;

    use super::*;

    /// A one-message SMTP server on 127.0.0.1 that keeps the DATA it got; it stops by itself
    /// after one session or a few seconds.
    fn smtp_server() -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let start = Instant::now();
            let stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(_) if start.elapsed() < Duration::from_secs(10) => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => return String::new(),
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut say = |line: &str| out.write_all(format!("{line}\r\n").as_bytes()).unwrap();
            say("220 test ESMTP");
            let (mut data, mut in_data) = (String::new(), false);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        say("250 queued");
                    } else {
                        data.push_str(&line);
                    }
                } else {
                    let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    match verb.as_str() {
                        "EHLO" => say("250 test"),
                        "DATA" => {
                            in_data = true;
                            say("354 go on");
                        }
                        "QUIT" => {
                            say("221 bye");
                            break;
                        }
                        _ => say("250 ok"),
                    }
                }
                line.clear();
            }
            data
        });
        (port, handle)
    }

    fn settings(port: u16) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            ca_pem: None,
            from: "nesca@eshs.example".into(),
            timeout: Duration::from_secs(5),
        }
    }

    fn email(body: &str) -> Email {
        Email {
            to: "ayse@ankara.bel.tr".into(),
            subject: "Nitelikli elektronik sertifika başvurunuz".into(),
            body: SecretString::from(body.to_owned()),
            outbox_id: 7,
        }
    }

    #[test]
    fn an_email_goes_through_an_smtp_relay() {
        let (port, server) = smtp_server();
        let sender = SmtpSender::new(settings(port)).unwrap();
        sender.send(&email("Erişim parolası: şifre-123")).unwrap();
        let data = server.join().unwrap();
        assert!(data.contains("To: ayse@ankara.bel.tr"), "{data}");
        assert!(data.contains("Message-ID: <outbox-7@nesca>"), "{data}");
        // The subject as an RFC 2047 encoded word, the body quoted-printable UTF-8.
        assert!(
            data.contains("Subject: Nitelikli elektronik sertifika =?utf-8?b?YmHFn3Z1cnVudXo=?="),
            "{data}"
        );
        assert!(
            data.contains("Content-Type: text/plain; charset=utf-8"),
            "{data}"
        );
        assert!(
            data.contains("Eri=C5=9Fim parolas=C4=B1: =C5=9Fifre-123"),
            "{data}"
        );
    }

    #[test]
    fn a_refused_connection_says_where_and_not_what() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let sender = SmtpSender::new(settings(port)).unwrap();
        let e = sender
            .send(&email("Erişim parolası: gizli-parola"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("smtp 127.0.0.1:{port}")), "{e}");
        assert!(!e.contains("gizli-parola"), "{e}");
    }

    /// `/bin/sh -c SCRIPT FILE NUMBER`: the script sees the file as `$0`, the number as `$1`.
    fn shell_into(script: &str, file: &std::path::Path) -> SmsCommand {
        SmsCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into(), file.display().to_string()],
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn sms_through_a_program() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sent.txt");
        let sender = shell_into("{ echo \"$1\"; cat; } > \"$0\"", &out);
        let sms = Sms {
            to: "+905321234567".into(),
            body: SecretString::from("kodunuz: 123456".to_owned()),
            outbox_id: 1,
        };
        sender.send(&sms).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "+905321234567\nkodunuz: 123456"
        );
        let failing = SmsCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "echo gateway down >&2; exit 3".into()],
            timeout: Duration::from_secs(10),
        };
        let e = failing.send(&sms).unwrap_err().to_string();
        assert!(e.contains("gateway down") && !e.contains("123456"), "{e}");
        // A gateway echoing the message: the text is not repeated; one leaving a child on its
        // stderr does not hold the sender.
        let echoing = SmsCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "cat >&2; (sleep 5 &) ; exit 1".into()],
            timeout: Duration::from_secs(10),
        };
        let started = Instant::now();
        let e = echoing.send(&sms).unwrap_err().to_string();
        assert!(!e.contains("123456") && e.contains("[message]"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        // The program's environment is exactly what sms_program_env gives (PATH, LANG), plus
        // what the shell sets itself: nothing else nesca holds (a PIN variable, the SMTP
        // password's variable, this test's CARGO_* and HOME) reaches it.
        let env_file = dir.path().join("env.txt");
        shell_into("cat > /dev/null; env > \"$0\"", &env_file)
            .send(&sms)
            .unwrap();
        let got: std::collections::BTreeSet<String> = std::fs::read_to_string(&env_file)
            .unwrap()
            .lines()
            .filter_map(|l| Some(l.split_once('=')?.0.to_owned()))
            .filter(|n| !["PWD", "SHLVL", "_", "OLDPWD"].contains(&n.as_str()))
            .collect();
        let given: std::collections::BTreeSet<String> = sms_program_env()
            .into_iter()
            .map(|(n, _)| n.to_owned())
            .collect();
        assert!(
            given.contains("PATH") && given.iter().all(|n| SMS_PROGRAM_ENV.contains(&n.as_str()))
        );
        assert_eq!(got, given);
        let slow = SmsCommand {
            program: "/bin/sleep".into(),
            args: vec!["5".into()],
            timeout: Duration::from_millis(200),
        };
        assert!(slow.send(&sms).unwrap_err().to_string().contains("killed"));
    }
}
