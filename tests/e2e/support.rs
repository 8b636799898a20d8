//! Helpers of the end-to-end tests: running `nesca` and `openssl` under a time limit, a demo CA
//! in a temporary directory of its own (and so a SoftHSM token of its own), CSRs made with
//! `openssl req`, and the assertions every refusal must satisfy.
//!
//! Nothing here changes the environment or the working directory of the test process: every
//! setting travels on the `Command` it is meant for, so the tests run in parallel safely.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// A valid T.C. Kimlik No (STANDARDS.md).
pub const TCKN: &str = "10000000146";
pub const GIVEN: &str = "AYŞE";
pub const SURNAME: &str = "YILMAZ";
/// The public URL `init --demo` uses when none is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// A public-looking base URL: pkilint reports 127.0.0.1 as an internal domain name.
pub const LINT_URL: &str = "http://pki.nesca-demo.com.tr";
/// The profile's `max_validity_days` in the demo configuration.
pub const MAX_VALIDITY_DAYS: u32 = 1826;

/// Longest any external command may run before the test fails (and the command is killed).
const TIME_LIMIT: Duration = Duration::from_secs(180);

/// What a finished command left behind.
pub struct Output {
    pub what: String,
    pub status: ExitStatus,
    pub stdout_bytes: Vec<u8>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The command, its exit status and its output, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.status,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }

    /// Panics with the whole output unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert!(self.success(), "command failed: {}", self.describe());
        self
    }
}

/// Runs `cmd` (stdin closed, stdout and stderr captured) and kills it after [`TIME_LIMIT`].
#[track_caller]
pub fn run(mut cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Read both pipes on their own threads so that a chatty child never blocks on a full pipe.
    let mut out_pipe = child.stdout.take().expect("stdout is piped");
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > TIME_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {TIME_LIMIT:?}: killed");
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    let stdout_bytes = out_reader.join().expect("stdout reader");
    let stderr_bytes = err_reader.join().expect("stderr reader");
    Output {
        what,
        status,
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr: String::from_utf8_lossy(&stderr_bytes).into_owned(),
    }
}

/// A `Command` for the `nesca` binary Cargo built for this test run, with a clean environment
/// for the things nesca must not depend on: the demo config names its own `softhsm2.conf`, so
/// nesca sets `SOFTHSM2_CONF` itself; and refusals are checked at the default verbosity.
pub fn nesca_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nesca"));
    cmd.env_remove("SOFTHSM2_CONF")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("NESCA_LOG");
    cmd
}

/// Runs `openssl ARGS` and panics unless it succeeds.
#[track_caller]
pub fn openssl(args: &[&str]) -> Output {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    run(cmd).ok()
}

/// Runs `openssl ARGS`, whatever its outcome.
#[track_caller]
pub fn openssl_may_fail(args: &[&str]) -> Output {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    run(cmd)
}

/// A path as `&str` (temporary directories have ASCII names).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// The key of a CSR.
#[derive(Clone, Copy, Debug)]
pub enum Key {
    P256,
    P384,
    Secp256k1,
    Rsa1024,
    Rsa2048,
}

impl Key {
    fn req_args(self) -> &'static [&'static str] {
        match self {
            Key::P256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Key::P384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            Key::Secp256k1 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
            Key::Rsa1024 => &["-newkey", "rsa:1024"],
            Key::Rsa2048 => &["-newkey", "rsa:2048"],
        }
    }
}

/// Makes `DIR/NAME.csr` (PEM, or DER when `der`) with a new key in `DIR/NAME.key`. The subject
/// is deliberately not the holder's: nesca takes the subject from its flags.
#[track_caller]
pub fn make_csr(dir: &Path, name: &str, key: Key, der: bool) -> PathBuf {
    let csr = dir.join(format!("{name}.csr"));
    let keyfile = dir.join(format!("{name}.key"));
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(key.req_args());
    args.extend_from_slice(&[
        "-nodes",
        "-keyout",
        s(&keyfile),
        "-subj",
        "/CN=ignored",
        "-out",
        s(&csr),
    ]);
    if der {
        args.extend_from_slice(&["-outform", "DER"]);
    }
    openssl(&args);
    csr
}

/// `openssl req -x509` with a new P-256 key (unencrypted, to `key`): a self-signed certificate
/// (PEM, to `cert`) for `subject`, valid for `days` days, with the `extra` options (extensions,
/// a configuration).
#[track_caller]
pub fn self_signed_p256(key: &Path, cert: &Path, subject: &str, days: u32, extra: &[&str]) {
    let days = days.to_string();
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(Key::P256.req_args());
    args.extend_from_slice(&[
        "-nodes",
        "-keyout",
        s(key),
        "-out",
        s(cert),
        "-subj",
        subject,
        "-days",
        &days,
    ]);
    args.extend_from_slice(extra);
    openssl(&args);
}

/// The public key of a CSR, as PEM.
#[track_caller]
pub fn csr_public_key(csr: &Path, der: bool) -> String {
    let mut args = vec!["req", "-in", s(csr), "-noout", "-pubkey"];
    if der {
        args.extend_from_slice(&["-inform", "DER"]);
    }
    openssl(&args).stdout
}

/// The public key of a certificate, as PEM.
#[track_caller]
pub fn cert_public_key(cert: &Path) -> String {
    openssl(&["x509", "-in", s(cert), "-noout", "-pubkey"]).stdout
}

/// `openssl x509 -text` of a certificate, names printed in UTF-8.
#[track_caller]
pub fn cert_text(cert: &Path) -> String {
    openssl(&[
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-text",
        "-nameopt",
        "RFC2253,-esc_msb",
    ])
    .stdout
}

/// The DER encoding of a PEM certificate.
#[track_caller]
pub fn cert_der(cert: &Path) -> Vec<u8> {
    openssl(&["x509", "-in", s(cert), "-outform", "DER"]).stdout_bytes
}

/// The subject of a certificate with each attribute's ASN.1 string type, for example
/// `C=PRINTABLESTRING:TR,GN=UTF8STRING:AYŞE,…` in encoding order.
#[track_caller]
pub fn cert_subject_typed(cert: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-subject",
        "-nameopt",
        "utf8,sep_comma_plus,show_type",
    ]);
    out.stdout
        .trim()
        .strip_prefix("subject=")
        .unwrap_or(out.stdout.trim())
        .to_string()
}

/// The subject of a certificate in OpenSSL's one-line UTF-8 form, encoding order
/// (`C=TR, GN=AYŞE, …`).
#[track_caller]
pub fn cert_subject(cert: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-subject",
        "-nameopt",
        "utf8,sep_comma_plus",
    ]);
    out.stdout
        .trim()
        .strip_prefix("subject=")
        .unwrap_or(out.stdout.trim())
        .to_string()
}

/// The issuer of a certificate, same form as [`cert_subject`].
#[track_caller]
pub fn cert_issuer(cert: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-issuer",
        "-nameopt",
        "utf8,sep_comma_plus",
    ]);
    out.stdout
        .trim()
        .strip_prefix("issuer=")
        .unwrap_or(out.stdout.trim())
        .to_string()
}

/// The serial of a certificate as OpenSSL prints it (upper-case hex).
#[track_caller]
pub fn cert_serial(cert: &Path) -> String {
    let out = openssl(&["x509", "-in", s(cert), "-noout", "-serial"]);
    out.stdout
        .trim()
        .strip_prefix("serial=")
        .unwrap_or_else(|| panic!("unexpected `openssl x509 -serial` output: {}", out.stdout))
        .to_string()
}

/// notBefore and notAfter of a certificate, in Unix seconds.
#[track_caller]
pub fn cert_validity(cert: &Path) -> (i64, i64) {
    let out = openssl(&[
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-dateopt",
        "iso_8601",
        "-startdate",
        "-enddate",
    ]);
    let mut nb = None;
    let mut na = None;
    for line in out.stdout.lines() {
        if let Some(v) = line.strip_prefix("notBefore=") {
            nb = parse_time(v);
        } else if let Some(v) = line.strip_prefix("notAfter=") {
            na = parse_time(v);
        }
    }
    match (nb, na) {
        (Some(nb), Some(na)) => (nb, na),
        _ => panic!(
            "cannot read the validity of {}: {}",
            cert.display(),
            out.stdout
        ),
    }
}

/// Normalises a hex serial for comparison: lower case, no `:`, no leading zeros.
pub fn norm_serial(hex: &str) -> String {
    let clean: String = hex
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let t = clean.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// `openssl verify -CAfile root -untrusted issuing CERT` for a demo directory.
#[track_caller]
pub fn verify_cert(ca_dir: &Path, cert: &Path, strict: bool) -> Output {
    let root = ca_dir.join("root-ca.pem");
    let issuing = ca_dir.join("issuing-ca.pem");
    let mut args = vec!["verify"];
    if strict {
        args.push("-x509_strict");
    }
    args.extend_from_slice(&["-CAfile", s(&root), "-untrusted", s(&issuing), s(cert)]);
    openssl_may_fail(&args)
}

/// Asserts that `openssl verify` accepts `cert` under the demo's root and issuing CA.
#[track_caller]
pub fn assert_verifies(ca_dir: &Path, cert: &Path) {
    let out = verify_cert(ca_dir, cert, false);
    assert!(
        out.success() && out.stdout.trim_end().ends_with(": OK"),
        "openssl verify rejects the certificate: {}",
        out.describe()
    );
}

/// Unix seconds of an RFC 3339 / ISO 8601 UTC time: `2026-01-02T03:04:05Z`,
/// `2026-01-02 03:04:05Z`, fractions and a `+00:00` / `-hh:mm` offset allowed.
pub fn parse_time(t: &str) -> Option<i64> {
    let t = t.trim();
    let b = t.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { t.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &t[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            let v = oh * 3600 + om * 60;
            if rest.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The DER encoding (tag, length, content) of a dotted object identifier.
pub fn oid_der(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().expect("numeric arc"))
        .collect();
    let mut content = Vec::new();
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        content.extend(tmp);
    };
    push(arcs[0] * 40 + arcs[1]);
    for &a in &arcs[2..] {
        push(a);
    }
    let mut out = vec![0x06, content.len() as u8];
    out.extend(content);
    out
}

/// DER tag-length-value with a short or long definite length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | len.len() as u8);
        out.extend(len);
    }
    out.extend_from_slice(content);
    out
}

/// The content of the DER element at the start of `der` (definite length).
pub fn der_content(der: &[u8]) -> &[u8] {
    let first = der[1] as usize;
    let (len, start) = if first < 0x80 {
        (first, 2)
    } else {
        let k = first & 0x7f;
        let len = der[2..2 + k]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + k)
    };
    &der[start..start + len]
}

/// Whether `haystack` contains `needle`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Standard base64 with padding, wrapped at 64 columns as PEM wants.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                b64.push(ALPHABET[((v >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The base64 bodies of the PEM blocks with `label` in `text`, whitespace removed.
pub fn pem_bodies(text: &str, label: &str) -> Vec<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&begin) {
        let after = &rest[i + begin.len()..];
        let Some(j) = after.find(&end) else { break };
        out.push(after[..j].split_whitespace().collect());
        rest = &after[j + end.len()..];
    }
    out
}

/// Asserts what every refusal of nesca must look like: a non-zero exit status and, on stderr,
/// exactly one line that starts with `error: ` and contains each phrase (case-insensitively).
#[track_caller]
pub fn assert_refusal(out: &Output, phrases: &[&str]) {
    assert!(
        !out.success(),
        "expected a refusal (non-zero exit) mentioning {phrases:?}, but it succeeded: {}",
        out.describe()
    );
    let body = out.stderr.strip_suffix('\n').unwrap_or(&out.stderr);
    let body = body.strip_suffix('\r').unwrap_or(body);
    assert!(
        !body.is_empty() && !body.contains('\n'),
        "a refusal must write exactly one line on stderr, got {} line(s): {}",
        out.stderr.lines().count(),
        out.describe()
    );
    assert!(
        body.starts_with("error: "),
        "a refusal's stderr line must start with `error: `: {}",
        out.describe()
    );
    let lower = body.to_lowercase();
    for p in phrases {
        assert!(
            lower.contains(&p.to_lowercase()),
            "the refusal does not mention {p:?} (expected all of {phrases:?}): {}",
            out.describe()
        );
    }
    assert!(
        !out.stdout.contains("BEGIN CERTIFICATE"),
        "a refusal must not write a certificate: {}",
        out.describe()
    );
}

/// Every file under `dir` with its bytes and permission bits, to prove that nothing changed.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                out.insert(path.clone(), (Vec::new(), meta.permissions().mode()));
                stack.push(path);
            } else {
                let bytes = fs::read(&path).unwrap_or_default();
                out.insert(path, (bytes, meta.permissions().mode()));
            }
        }
    }
    out
}

/// A demo CA made by `nesca init --demo` in a temporary directory of its own: the CA in
/// `TMP/ca`, the test's CSRs and certificates in `TMP/work`.
pub struct Demo {
    pub tmp: TempDir,
    /// The `--dir` of `init --demo`.
    pub dir: PathBuf,
    /// Scratch space for CSRs, keys and issued certificates.
    pub work: PathBuf,
}

impl Demo {
    /// A fresh temporary directory, no CA yet.
    pub fn empty() -> Demo {
        let tmp = tempfile::Builder::new()
            .prefix("nesca-e2e-")
            .tempdir()
            .expect("temporary directory");
        let dir = tmp.path().join("ca");
        let work = tmp.path().join("work");
        fs::create_dir(&work).expect("work directory");
        Demo { tmp, dir, work }
    }

    /// `nesca init --demo --dir TMP/ca` with the default options; panics unless it succeeds.
    #[track_caller]
    pub fn init() -> Demo {
        Demo::init_with(&[])
    }

    /// `nesca init --demo --dir TMP/ca EXTRA…`; panics unless it succeeds.
    #[track_caller]
    pub fn init_with(extra: &[&str]) -> Demo {
        let demo = Demo::empty();
        let out = demo.init_again(extra);
        assert!(
            out.success(),
            "nesca init --demo failed: {}",
            out.describe()
        );
        demo
    }

    /// Runs `nesca init --demo --dir TMP/ca EXTRA…` (again), whatever its outcome.
    #[track_caller]
    pub fn init_again(&self, extra: &[&str]) -> Output {
        let mut args = vec!["init", "--demo", "--dir", s(&self.dir)];
        args.extend_from_slice(extra);
        self.nesca(&args)
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("nesca.toml")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The user PIN if the file is there (never print it).
    fn pin(&self) -> Option<String> {
        fs::read_to_string(self.dir.join("user-pin"))
            .ok()
            .map(|p| p.trim().to_string())
            .filter(|p| p.len() >= 8) // shorter strings could match by chance
    }

    /// Panics (without showing it) if the user PIN appears in a command's output.
    #[track_caller]
    fn assert_no_pin(&self, out: &Output) {
        if let Some(pin) = self.pin() {
            assert!(
                !out.stdout.contains(&pin) && !out.stderr.contains(&pin),
                "the user PIN appears in the output of `{}` (output not shown: it holds a secret)",
                out.what
            );
        }
    }

    /// Runs `nesca ARGS` in the work directory and checks that the PIN does not leak.
    #[track_caller]
    pub fn nesca(&self, args: &[&str]) -> Output {
        let mut cmd = nesca_command();
        cmd.args(args).current_dir(&self.work);
        let out = run(cmd);
        self.assert_no_pin(&out);
        out
    }

    /// A CSR in the work directory.
    #[track_caller]
    pub fn csr(&self, name: &str, key: Key) -> PathBuf {
        make_csr(&self.work, name, key, false)
    }

    /// `nesca issue --config … --csr CSR` with the given holder and extra flags, whatever the
    /// outcome.
    #[track_caller]
    pub fn issue_as(
        &self,
        csr: &Path,
        tckn: &str,
        given: &str,
        surname: &str,
        extra: &[&str],
    ) -> Output {
        let config = self.config();
        let mut args = vec![
            "issue",
            "--config",
            s(&config),
            "--csr",
            s(csr),
            "--tckn",
            tckn,
            "--given-name",
            given,
            "--surname",
            surname,
        ];
        args.extend_from_slice(extra);
        self.nesca(&args)
    }

    /// `nesca issue` for AYŞE YILMAZ, whatever the outcome.
    #[track_caller]
    pub fn issue(&self, csr: &Path, extra: &[&str]) -> Output {
        self.issue_as(csr, TCKN, GIVEN, SURNAME, extra)
    }

    /// Issues a certificate for AYŞE YILMAZ to `work/OUT` and returns its path and the serial
    /// nesca printed; panics unless it succeeds and prints exactly one lowercase-hex line.
    #[track_caller]
    pub fn issue_ok(&self, csr: &Path, out_name: &str, extra: &[&str]) -> (PathBuf, String) {
        let out_path = self.work.join(out_name);
        let mut args = vec!["--out", s(&out_path)];
        args.extend_from_slice(extra);
        let out = self.issue(csr, &args).ok();
        let serial = single_serial_line(&out);
        assert!(
            out_path.is_file(),
            "nesca issue --out {} wrote no file: {}",
            out_path.display(),
            out.describe()
        );
        (out_path, serial)
    }

    /// `nesca cert list`: one JSON object per stored certificate (reserved serials included),
    /// sorted by their text so that two listings compare regardless of order.
    #[track_caller]
    pub fn cert_list_lines(&self) -> Vec<String> {
        let config = self.config();
        let out = self.nesca(&["cert", "list", "--config", s(&config)]).ok();
        let mut lines: Vec<String> = out
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.to_string())
            .collect();
        for l in &lines {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("`nesca cert list` printed a line that is not JSON ({e}): {l}")
            });
            assert!(
                v.get("serial").is_some() && v.get("status").is_some(),
                "`nesca cert list` line without serial or status: {l}"
            );
        }
        lines.sort();
        lines
    }

    /// `nesca cert list`, parsed.
    #[track_caller]
    pub fn cert_list(&self) -> Vec<Value> {
        self.cert_list_lines()
            .iter()
            .map(|l| serde_json::from_str(l).expect("checked JSON"))
            .collect()
    }

    /// `nesca cert show --serial SERIAL`, parsed; panics unless it succeeds.
    #[track_caller]
    pub fn cert_show(&self, serial: &str) -> Value {
        let config = self.config();
        let out = self
            .nesca(&["cert", "show", "--config", s(&config), "--serial", serial])
            .ok();
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`nesca cert show` did not print one JSON object ({e}): {}",
                out.describe()
            )
        })
    }

    /// Runs `refuse` and asserts that it was a refusal mentioning `phrases` and that the
    /// store's listing is the same before and after.
    #[track_caller]
    pub fn assert_refused_unchanged(&self, phrases: &[&str], refuse: impl FnOnce() -> Output) {
        let before = self.cert_list_lines();
        let out = refuse();
        assert_refusal(&out, phrases);
        let after = self.cert_list_lines();
        assert_eq!(
            before.len(),
            after.len(),
            "the refusal changed the number of stored certificates ({} before, {} after): {}",
            before.len(),
            after.len(),
            out.describe()
        );
        assert_eq!(
            before,
            after,
            "the refusal changed the store: {}",
            out.describe()
        );
    }
}

/// The serial nesca printed: stdout must be exactly one line of lowercase hex.
#[track_caller]
pub fn single_serial_line(out: &Output) -> String {
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "with --out, nesca issue must print exactly one line (the serial): {}",
        out.describe()
    );
    let serial = lines[0].trim();
    assert!(
        !serial.is_empty()
            && serial
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "the serial line is not lowercase hex: {:?}",
        serial
    );
    serial.to_string()
}

/// Finds `lint_etsi_cert`: in `$NESCA_PKILINT_DIR`, else on `PATH`. Panics with a clear message
/// when it is missing: the lint tests never pass without linting.
pub fn lint_etsi_cert() -> PathBuf {
    const HOW: &str = "install it with `python3 -m venv V && V/bin/pip install pkilint` and set \
                       NESCA_PKILINT_DIR=V/bin, or run scripts/test.sh, which does both";
    if let Some(dir) = std::env::var_os("NESCA_PKILINT_DIR") {
        let p = Path::new(&dir).join("lint_etsi_cert");
        assert!(
            p.is_file(),
            "NESCA_PKILINT_DIR={} holds no lint_etsi_cert (pkilint): {HOW}",
            Path::new(&dir).display()
        );
        return p;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("lint_etsi_cert");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("lint_etsi_cert (pkilint) is neither in NESCA_PKILINT_DIR nor on PATH: {HOW}");
}

/// The findings of `lint_etsi_cert lint -t QCP-N-QSCD-NON-EIDAS-FINAL-CERTIFICATE -s WARNING
/// -f JSON CERT`, as (severity, code, message), with the raw output for messages.
#[track_caller]
pub fn pkilint(cert: &Path) -> (Vec<(String, String, String)>, Output) {
    let mut cmd = Command::new(lint_etsi_cert());
    cmd.args([
        "lint",
        "-t",
        "QCP-N-QSCD-NON-EIDAS-FINAL-CERTIFICATE",
        "-s",
        "WARNING",
        "-f",
        "JSON",
        s(cert),
    ]);
    let out = run(cmd);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "lint_etsi_cert did not print JSON ({e}): {}",
            out.describe()
        )
    });
    let mut findings = Vec::new();
    for r in v["results"].as_array().into_iter().flatten() {
        let node = r["node_path"].as_str().unwrap_or("").to_string();
        for f in r["finding_descriptions"].as_array().into_iter().flatten() {
            findings.push((
                f["severity"].as_str().unwrap_or("").to_string(),
                f["code"].as_str().unwrap_or("").to_string(),
                format!("{node}: {}", f["message"].as_str().unwrap_or("")),
            ));
        }
    }
    (findings, out)
}

/// An extension in `openssl x509 -text` output: whether it is marked critical, and its body
/// (the more-indented lines after its header, trimmed, joined by `\n`).
pub fn extension(text: &str, name: &str) -> Option<(bool, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let i = lines.iter().position(|l| {
        let t = l.trim_start();
        t.strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    })?;
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let indent = indent_of(lines[i]);
    let critical = lines[i].trim_end().ends_with("critical");
    let mut body = Vec::new();
    for l in &lines[i + 1..] {
        if l.trim().is_empty() || indent_of(l) <= indent {
            break;
        }
        body.push(l.trim());
    }
    Some((critical, body.join("\n")))
}

/// The value of `key = "value"` in a TOML section, read line by line (enough for nesca.toml).
pub fn toml_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == format!("[{section}]");
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            if k.trim() == key {
                return Some(v.trim().trim_matches('"').to_string());
            }
        }
    }
    None
}

/// `text` with the value of `key` in `[section]` replaced by the string `value`; panics if the
/// key is not there.
#[track_caller]
pub fn toml_replace(text: &str, section: &str, key: &str, value: &str) -> String {
    toml_replace_raw(text, section, key, &format!("\"{value}\""))
}

/// `text` with `key = …` in `[section]` replaced by the bare TOML `value` (an integer, a
/// boolean: written without quotes); panics if the key is not there.
#[track_caller]
pub fn toml_replace_raw(text: &str, section: &str, key: &str, value: &str) -> String {
    let mut in_section = false;
    let mut found = false;
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == format!("[{section}]");
        } else if in_section && t.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            out.push_str(&format!("{key} = {value}\n"));
            found = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(found, "nesca.toml has no `{key}` in [{section}]:\n{text}");
    out
}

/// Finds the pkilint program `name` (`lint_crl`, `lint_ocsp_response`, …) the way
/// [`lint_etsi_cert`] does: in `$NESCA_PKILINT_DIR`, else on `PATH`; panics when it is missing.
pub fn pkilint_tool(name: &str) -> PathBuf {
    const HOW: &str = "install it with `python3 -m venv V && V/bin/pip install pkilint` and set \
                       NESCA_PKILINT_DIR=V/bin, or run scripts/test.sh, which does both";
    if let Some(dir) = std::env::var_os("NESCA_PKILINT_DIR") {
        let p = Path::new(&dir).join(name);
        assert!(
            p.is_file(),
            "NESCA_PKILINT_DIR={} holds no {name} (pkilint): {HOW}",
            Path::new(&dir).display()
        );
        return p;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("{name} (pkilint) is neither in NESCA_PKILINT_DIR nor on PATH: {HOW}");
}

/// Runs the pkilint program `tool` with `ARGS FILE` and panics, showing its output, unless it
/// reports no finding (its exit code is the number of findings).
#[track_caller]
pub fn assert_pkilint_clean(tool: &str, args: &[&str], file: &Path) {
    let mut cmd = Command::new(pkilint_tool(tool));
    cmd.args(args).arg(file);
    let out = run(cmd);
    assert!(
        out.status.code() == Some(0),
        "{tool} reports findings for {}: {}",
        file.display(),
        out.describe()
    );
}

/// Polls `probe` every `every` until it returns `Some`, for at most `limit`; panics with
/// `what` and the last probe's description when it never does.
#[track_caller]
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= limit => {
                panic!("{what}: not seen within {limit:?}; last attempt:\n{last}")
            }
            Err(_) => thread::sleep(every),
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
