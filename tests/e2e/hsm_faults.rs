//! Faults between nesca and its HSM: each gives a one-line refusal that says what is wrong,
//! changes nothing in the store, and once the fault is repaired, issuance works again.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::support::*;

/// The store listing before the fault, with the HSM in order (so that `cert list` does not
/// depend on the HSM); then the refusal under the fault; then, repaired, the same listing and
/// a successful issuance.
#[track_caller]
fn check_fault(
    demo: &Demo,
    phrases: &[&str],
    break_it: impl FnOnce(),
    refuse: impl FnOnce(&std::path::Path) -> Output,
    repair: impl FnOnce(),
) {
    let csr = demo.csr("req", Key::P256);
    let before = demo.cert_list_lines();
    break_it();
    let out = refuse(&csr);
    repair();
    assert_refusal(&out, phrases);
    assert_eq!(
        demo.cert_list_lines(),
        before,
        "the refusal changed the store: {}",
        out.describe()
    );
    let (cert, _) = demo.issue_ok(&csr, "after-repair.pem", &[]);
    assert_verifies(&demo.dir, &cert);
}

#[test]
fn refuses_a_missing_or_readable_pin_file() {
    let demo = Demo::init();
    let pin = demo.path("user-pin");
    let away = demo.work.join("user-pin.away");
    check_fault(
        &demo,
        &["pin"],
        || fs::rename(&pin, &away).unwrap(),
        |csr| demo.issue(csr, &[]),
        || fs::rename(&away, &pin).unwrap(),
    );
    // A PIN file that others can read is refused too (the demo writes it 0600).
    check_fault(
        &demo,
        &["pin", "600"],
        || fs::set_permissions(&pin, fs::Permissions::from_mode(0o644)).unwrap(),
        |csr| demo.issue(csr, &[]),
        || fs::set_permissions(&pin, fs::Permissions::from_mode(0o600)).unwrap(),
    );
}

#[test]
fn refuses_a_wrong_pin() {
    let demo = Demo::init();
    let pin = demo.path("user-pin");
    let saved = fs::read(&pin).unwrap();
    check_fault(
        &demo,
        &["CKR_PIN_INCORRECT"],
        || fs::write(&pin, "9999999999\n").unwrap(),
        |csr| demo.issue(csr, &[]),
        || fs::write(&pin, &saved).unwrap(),
    );
}

#[test]
fn refuses_an_unknown_token_label() {
    let demo = Demo::init();
    // A copy of the config beside the original, so that its relative paths still resolve.
    let text = fs::read_to_string(demo.config()).unwrap();
    let nope = demo.path("nope.toml");
    fs::write(&nope, toml_replace(&text, "hsm", "token_label", "nope")).unwrap();
    check_fault(
        &demo,
        &["token", "nope"],
        || {},
        |csr| {
            let out = demo.work.join("never.pem");
            demo.nesca(&[
                "issue",
                "--config",
                s(&nope),
                "--csr",
                s(csr),
                "--tckn",
                TCKN,
                "--given-name",
                GIVEN,
                "--surname",
                SURNAME,
                "--out",
                s(&out),
            ])
        },
        || {},
    );
    assert!(
        !demo.work.join("never.pem").exists(),
        "a refused issuance wrote its --out file"
    );
}

#[test]
fn refuses_a_missing_token_directory_or_softhsm_conf() {
    let demo = Demo::init();
    let tokens = demo.path("tokens");
    let away = demo.work.join("tokens.away");
    check_fault(
        &demo,
        &["token directory"],
        || fs::rename(&tokens, &away).unwrap(),
        |csr| demo.issue(csr, &[]),
        || fs::rename(&away, &tokens).unwrap(),
    );
    // Likewise a missing softhsm2.conf: SoftHSM itself would only say CKR_GENERAL_ERROR.
    let conf = demo.path("softhsm2.conf");
    let conf_away = demo.work.join("softhsm2.conf.away");
    check_fault(
        &demo,
        &["softhsm2.conf"],
        || fs::rename(&conf, &conf_away).unwrap(),
        |csr| demo.issue(csr, &[]),
        || fs::rename(&conf_away, &conf).unwrap(),
    );
}
