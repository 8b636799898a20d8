//! `nesca init --config`: the production path, on a token that already exists (made here with
//! `softhsm2-util`, as an operator would with a vendor's tool), with the PIN in an environment
//! variable instead of a file.

use std::fs;
use std::path::Path;

use crate::support::*;

const PIN_VAR: &str = "NESCA_E2E_HSM_PIN";
/// Test-only PINs for a throw-away token.
const USER_PIN: &str = "e2e-user-pin-7391";
const SO_PIN: &str = "e2e-so-pin-2046";

/// A token labelled `prod-token` in `dir/tokens`, and a nesca.toml that names it.
fn existing_token(dir: &Path) {
    fs::create_dir_all(dir.join("tokens")).unwrap();
    // The store goes here: the operator's directory is theirs alone, as nesca requires.
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let conf = dir.join("softhsm2.conf");
    fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new("softhsm2-util");
    cmd.args([
        "--init-token",
        "--free",
        "--label",
        "prod-token",
        "--so-pin",
        SO_PIN,
        "--pin",
        USER_PIN,
    ])
    .env("SOFTHSM2_CONF", &conf);
    run(cmd).ok();
    fs::write(
        dir.join("nesca.toml"),
        format!(
            r#"[ca]
id = "prod-nes"
root_id = "prod-root"
public_url = "{LINT_URL}"
organization = "Örnek ESHS A.Ş."
root_common_name = "Örnek Kök SM"
issuing_common_name = "Örnek NES SM"
ocsp_common_name = "Örnek NES SM OCSP"
key_algorithm = "ecdsa-p384"

[hsm]
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "prod-token"
pin_env = "{PIN_VAR}"
softhsm_conf = "softhsm2.conf"

[store]
sqlite = "prod.db"

[profile.nes]
policy_oid = "2.16.792.1.2.1.1.5.7.1.1"
cps_uri = "https://pki.nesca-demo.com.tr/cps"
pds = [{{ url = "https://pki.nesca-demo.com.tr/pds/en", language = "en" }}]
validity_days = 730
"#
        ),
    )
    .unwrap();
}

fn nesca_with_pin(pin: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = nesca_command();
    cmd.args(args);
    if let Some(pin) = pin {
        cmd.env(PIN_VAR, pin);
    }
    let out = run(cmd);
    assert!(
        !out.stdout.contains(USER_PIN) && !out.stderr.contains(USER_PIN),
        "the PIN leaked: {}",
        out.describe()
    );
    out
}

#[test]
fn init_on_an_existing_token_then_issue() {
    let demo = Demo::empty();
    existing_token(&demo.dir);
    let config = demo.dir.join("nesca.toml");

    let out = nesca_with_pin(None, &["init", "--config", s(&config)]);
    assert_refusal(&out, &["hsm.pin_env", PIN_VAR]);

    nesca_with_pin(Some(USER_PIN), &["init", "--config", s(&config)]).ok();
    for f in [
        "root-ca.pem",
        "issuing-ca.pem",
        "ocsp-signer.pem",
        "ca-chain.pem",
        "prod.db",
    ] {
        assert!(
            demo.dir.join(f).is_file(),
            "init --config did not create {f}"
        );
    }
    let issuing = cert_text(&demo.dir.join("issuing-ca.pem"));
    assert!(
        issuing.contains("NIST CURVE: P-384"),
        "the configured key algorithm was not used:\n{issuing}"
    );
    assert!(issuing.contains("ecdsa-with-SHA384"), "{issuing}");

    // Twice: refused, nothing changed.
    let before = snapshot(&demo.dir);
    let out = nesca_with_pin(Some(USER_PIN), &["init", "--config", s(&config)]);
    assert_refusal(&out, &["already exists"]);
    assert_eq!(snapshot(&demo.dir), before, "a refused init changed files");

    let csr = make_csr(&demo.work, "req", Key::P256, false);
    let cert = demo.work.join("cert.pem");
    let out = nesca_with_pin(
        Some(USER_PIN),
        &[
            "issue",
            "--config",
            s(&config),
            "--csr",
            s(&csr),
            "--tckn",
            TCKN,
            "--given-name",
            GIVEN,
            "--surname",
            SURNAME,
            "--out",
            s(&cert),
        ],
    )
    .ok();
    single_serial_line(&out);
    assert_verifies(&demo.dir, &cert);
    let (not_before, not_after) = cert_validity(&cert);
    assert_eq!(
        (not_after - not_before) / 86_400,
        730,
        "validity_days from the configuration"
    );
    let (findings, lint) = pkilint(&cert);
    assert!(
        findings.is_empty(),
        "pkilint findings: {findings:?}\n{}",
        lint.describe()
    );
}
