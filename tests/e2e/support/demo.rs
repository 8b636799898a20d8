//! The demo CA of a test ([`Demo`]): `nesca init --demo` in a temporary directory of its own
//! (and so a SoftHSM token and a store of its own), and the `nesca` commands run against it.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use super::openssl::{make_csr, Key};
use super::refusal::assert_refusal;
use super::run::{nesca_command, run, s, Output};
use super::template;

/// A valid T.C. Kimlik No: 11 digits, the first not 0, both check digits right
/// ([`crate::support::idcard::is_valid_tckn`]).
pub(crate) const TCKN: &str = "10000000146";

pub(crate) const GIVEN: &str = "AYŞE";

pub(crate) const SURNAME: &str = "YILMAZ";

/// The public URL `init --demo` uses when none is given.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// A public-looking base URL: pkilint reports 127.0.0.1 as an internal domain name.
pub(crate) const LINT_URL: &str = "http://pki.nesca-demo.com.tr";

/// The profile's `max_validity_days` in the demo configuration.
pub(crate) const MAX_VALIDITY_DAYS: u32 = 1826;

/// A demo CA made by `nesca init --demo` in a temporary directory of its own: the CA in
/// `TMP/ca`, the test's CSRs and certificates in `TMP/work`.
pub(crate) struct Demo {
    pub tmp: TempDir,
    /// The `--dir` of `init --demo`.
    pub dir: PathBuf,
    /// Scratch space for CSRs, keys and issued certificates.
    pub work: PathBuf,
}

impl Demo {
    /// A fresh temporary directory, no CA yet.
    pub(crate) fn empty() -> Demo {
        Demo::empty_in(&std::env::temp_dir(), "nesca-e2e-")
    }

    /// A fresh temporary directory `PARENT/PREFIX…`, no CA yet.
    pub(super) fn empty_in(parent: &Path, prefix: &str) -> Demo {
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .expect("temporary directory");
        let dir = tmp.path().join("ca");
        let work = tmp.path().join("work");
        fs::create_dir(&work).expect("work directory");
        Demo { tmp, dir, work }
    }

    /// The demo `nesca init --demo --dir TMP/ca` makes with the default options: a copy of the
    /// test process's prepared one (template.rs), with a token and a store of its own.
    #[track_caller]
    pub(crate) fn init() -> Demo {
        Demo::init_with(&[])
    }

    /// The demo `nesca init --demo --dir TMP/ca EXTRA…` makes: a copy of the test process's
    /// prepared one for these flags (template.rs), with a token and a store of its own. `init`
    /// runs once per distinct EXTRA per process; panics unless it succeeds.
    #[track_caller]
    pub(crate) fn init_with(extra: &[&str]) -> Demo {
        let demo = Demo::empty();
        template::copy_prepared(extra, &demo.dir);
        demo
    }

    /// `nesca init --demo --dir TMP/ca EXTRA…` run now for this demo alone, for the tests of
    /// `init` itself; panics unless it succeeds.
    #[track_caller]
    pub(crate) fn init_fresh(extra: &[&str]) -> Demo {
        Demo::init_fresh_in(&std::env::temp_dir(), "nesca-e2e-", extra)
    }

    /// [`Demo::init_fresh`] in a temporary directory `PARENT/PREFIX…`.
    #[track_caller]
    pub(super) fn init_fresh_in(parent: &Path, prefix: &str, extra: &[&str]) -> Demo {
        let demo = Demo::empty_in(parent, prefix);
        let out = demo.init_again(extra);
        assert!(
            out.success(),
            "nesca init --demo failed: {}",
            out.describe()
        );
        // Tests run servers side by side: the admin API and the portal on ports of their own (a test that
        // uses it reads the port from the server's banner).
        let path = demo.config();
        let text = std::fs::read_to_string(&path).expect("nesca.toml");
        if text.contains("\nlisten = \"127.0.0.1:8443\"") {
            let text = super::toml::toml_replace(&text, "admin", "listen", "127.0.0.1:0");
            let text = super::toml::toml_replace(&text, "portal", "listen", "127.0.0.1:0");
            std::fs::write(&path, text).expect("write nesca.toml");
        }
        demo
    }

    /// Runs `nesca init --demo --dir TMP/ca EXTRA…` (again), whatever its outcome.
    #[track_caller]
    pub(crate) fn init_again(&self, extra: &[&str]) -> Output {
        let mut args = vec!["init", "--demo", "--dir", s(&self.dir)];
        args.extend_from_slice(extra);
        self.nesca(&args)
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.dir.join("nesca.toml")
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
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
    pub(crate) fn nesca(&self, args: &[&str]) -> Output {
        let mut cmd = nesca_command();
        cmd.args(args).current_dir(&self.work);
        let out = run(cmd);
        self.assert_no_pin(&out);
        out
    }

    /// A CSR in the work directory.
    #[track_caller]
    pub(crate) fn csr(&self, name: &str, key: Key) -> PathBuf {
        make_csr(&self.work, name, key, false)
    }

    /// `nesca issue --config … --csr CSR` with the given holder and extra flags, whatever the
    /// outcome.
    #[track_caller]
    pub(crate) fn issue_as(
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
    pub(crate) fn issue(&self, csr: &Path, extra: &[&str]) -> Output {
        self.issue_as(csr, TCKN, GIVEN, SURNAME, extra)
    }

    /// Issues a certificate for AYŞE YILMAZ to `work/OUT` and returns its path and the serial
    /// nesca printed; panics unless it succeeds and prints exactly one lowercase-hex line.
    #[track_caller]
    pub(crate) fn issue_ok(&self, csr: &Path, out_name: &str, extra: &[&str]) -> (PathBuf, String) {
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
    pub(crate) fn cert_list_lines(&self) -> Vec<String> {
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
    pub(crate) fn cert_list(&self) -> Vec<Value> {
        self.cert_list_lines()
            .iter()
            .map(|l| serde_json::from_str(l).expect("checked JSON"))
            .collect()
    }

    /// `nesca cert show --serial SERIAL`, parsed; panics unless it succeeds.
    #[track_caller]
    pub(crate) fn cert_show(&self, serial: &str) -> Value {
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
    pub(crate) fn assert_refused_unchanged(
        &self,
        phrases: &[&str],
        refuse: impl FnOnce() -> Output,
    ) {
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
pub(crate) fn single_serial_line(out: &Output) -> String {
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
