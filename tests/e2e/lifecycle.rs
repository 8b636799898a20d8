//! Suspension, release and revocation (`nesca suspend|unsuspend|revoke`), seen through
//! `cert show`, a running `nesca serve` (OCSP, /crl/) and the CRLs `nesca crl` publishes.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::crl::*;
use crate::support::ocsp::*;
use crate::support::server::*;
use crate::support::*;

/// A valid T.C. Kimlik No that is not the holder's ([`TCKN`]).
const OTHER_TCKN: &str = "17291716060";

/// `nesca VERB --config … --serial SERIAL --holder-tckn TCKN EXTRA…`, whatever the outcome.
fn lifecycle(demo: &Demo, verb: &str, serial: &str, tckn: &str, extra: &[&str]) -> Output {
    let config = demo.config();
    let mut args = vec![
        verb,
        "--config",
        s(&config),
        "--serial",
        serial,
        "--holder-tckn",
        tckn,
    ];
    args.extend_from_slice(extra);
    demo.nesca(&args)
}

/// The one line a lifecycle command prints on success; checks its shape
/// `STATUS serial=SERIAL at=RFC3339[ reason=R]…` and returns it with the `at` value.
#[track_caller]
fn outcome_line(out: &Output, status: &str, serial: &str) -> (String, String) {
    assert!(out.success(), "command failed: {}", out.describe());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line: {}", out.describe());
    let line = lines[0].trim_end().to_string();
    let mut tokens = line.split(' ');
    assert_eq!(tokens.next(), Some(status), "{}", out.describe());
    let shown = tokens
        .next()
        .and_then(|t| t.strip_prefix("serial="))
        .unwrap_or_else(|| panic!("no serial= in {line:?}"));
    assert_eq!(norm_serial(shown), norm_serial(serial), "{line}");
    let at = tokens
        .next()
        .and_then(|t| t.strip_prefix("at="))
        .unwrap_or_else(|| panic!("no at= in {line:?}"))
        .to_string();
    assert!(parse_time(&at).is_some(), "at= is not RFC 3339: {line}");
    (line, at)
}

/// `cert show` of `serial`, and its history list.
#[track_caller]
fn show_summary(demo: &Demo, serial: &str) -> (Value, Vec<Value>) {
    let v = demo.cert_show(serial);
    let history = v["history"]
        .as_array()
        .unwrap_or_else(|| panic!("cert show has no history list: {v:#}"))
        .clone();
    (v, history)
}

/// Refusals of the lifecycle commands, each leaving `cert show` exactly as it was; request-id
/// replays; revocation is final; the history lists each step.
#[test]
fn lifecycle_commands_refuse_and_record_holder_requests() {
    let demo = Demo::init();
    let (_, serial) = demo.issue_ok(&demo.csr("a", Key::P256), "a.pem", &[]);
    let (_, other_serial) = demo.issue_ok(&demo.csr("b", Key::P256), "b.pem", &[]);

    let fresh = demo.cert_show(&serial);
    assert_eq!(fresh["status"], "active", "{fresh:#}");
    assert!(fresh["revocation"].is_null(), "{fresh:#}");
    assert_eq!(fresh["history"], Value::Array(vec![]), "{fresh:#}");

    // Someone else than the holder: refused with the exact message, nothing changes.
    for (verb, noun) in [("revoke", "revocation"), ("suspend", "suspension")] {
        let out = lifecycle(&demo, verb, &serial, OTHER_TCKN, &[]);
        assert_refusal(&out, &[]);
        assert_eq!(
            out.stderr.trim_end(),
            format!("error: holder_tckn: {noun} must be requested by the certificate holder"),
            "{}",
            out.describe()
        );
        assert_eq!(
            demo.cert_show(&serial),
            fresh,
            "`{verb}` by a non-holder changed the certificate"
        );
    }

    // What a holder cannot ask, or asks wrongly.
    let refusals: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        (
            "unsuspend",
            vec![],
            vec!["the certificate is not suspended"],
        ),
        (
            "revoke",
            vec!["--reason", "certificateHold"],
            vec!["reason: certificateHold is not a revocation reason"],
        ),
        ("revoke", vec!["--reason", "removeFromCRL"], vec!["reason:"]),
        (
            "revoke",
            vec!["--reason", "keycompromise"],
            vec!["reason: unknown reason"],
        ),
        (
            "revoke",
            vec!["--reason", "stolen"],
            vec!["reason: unknown reason"],
        ),
        ("suspend", vec!["--reason", "keyCompromise"], vec!["reason"]),
        (
            "revoke",
            vec![
                "--reason",
                "superseded",
                "--invalidity-date",
                "2020-01-01T00:00:00Z",
            ],
            vec!["invalidity_date"],
        ),
        (
            "revoke",
            vec![
                "--reason",
                "keyCompromise",
                "--invalidity-date",
                "2999-01-01T00:00:00Z",
            ],
            vec!["invalidity_date", "future"],
        ),
    ];
    for (verb, extra, phrases) in &refusals {
        let out = lifecycle(&demo, verb, &serial, TCKN, extra);
        assert_refusal(&out, phrases);
        assert_eq!(
            demo.cert_show(&serial),
            fresh,
            "a refused `{verb} {extra:?}` changed the certificate"
        );
    }
    for (bad, phrases) in [
        ("zz", &["serial:"][..]),
        ("0123456789abcdef01", &["certificate", "not found"][..]),
    ] {
        for verb in ["revoke", "suspend", "unsuspend"] {
            let out = lifecycle(&demo, verb, bad, TCKN, &[]);
            assert_refusal(&out, phrases);
        }
    }
    assert_eq!(demo.cert_show(&serial), fresh);

    // Suspend, with a request id; the same request again changes nothing.
    let suspend = |id: &str| lifecycle(&demo, "suspend", &serial, TCKN, &["--request-id", id]);
    let (first, suspended_at) = outcome_line(&suspend("req-1"), "suspended", &serial);
    assert!(first.contains("reason=certificateHold"), "{first}");
    let again = suspend("req-1").ok();
    assert_eq!(
        again.stdout.trim_end(),
        format!("{first} (request seen before; nothing changed)"),
        "a replayed request must answer the first outcome: {}",
        again.describe()
    );
    let (v, history) = show_summary(&demo, &serial);
    assert_eq!(v["status"], "suspended", "{v:#}");
    assert_eq!(v["revocation"]["reason"], "certificateHold", "{v:#}");
    assert_eq!(history.len(), 1, "a replay added a history entry: {v:#}");

    // Suspending twice (a new request) is refused.
    let out = lifecycle(&demo, "suspend", &serial, TCKN, &["--request-id", "req-1b"]);
    assert_refusal(&out, &["already suspended"]);

    // Release; the suspension's request id replayed afterwards still answers its first
    // outcome and changes nothing.
    outcome_line(
        &lifecycle(
            &demo,
            "unsuspend",
            &serial,
            TCKN,
            &["--request-id", "req-2"],
        ),
        "active",
        &serial,
    );
    let replay = suspend("req-1").ok();
    assert_eq!(
        replay.stdout.trim_end(),
        format!("{first} (request seen before; nothing changed)"),
        "{}",
        replay.describe()
    );
    let (v, history) = show_summary(&demo, &serial);
    assert_eq!(
        v["status"], "active",
        "a replay re-applied a suspension: {v:#}"
    );
    assert!(v["revocation"].is_null(), "{v:#}");
    assert_eq!(history.len(), 2, "{v:#}");

    // Revoke for keyCompromise since the suspension; final from then on.
    let (revoked, revoked_at) = outcome_line(
        &lifecycle(
            &demo,
            "revoke",
            &serial,
            TCKN,
            &[
                "--reason",
                "keyCompromise",
                "--invalidity-date",
                &suspended_at,
                "--request-id",
                "req-3",
            ],
        ),
        "revoked",
        &serial,
    );
    assert!(revoked.contains("reason=keyCompromise"), "{revoked}");
    let replay = lifecycle(
        &demo,
        "revoke",
        &serial,
        TCKN,
        &[
            "--reason",
            "keyCompromise",
            "--invalidity-date",
            &suspended_at,
            "--request-id",
            "req-3",
        ],
    )
    .ok();
    assert_eq!(
        replay.stdout.trim_end(),
        format!("{revoked} (request seen before; nothing changed)"),
        "{}",
        replay.describe()
    );
    // The same request id for another request is not a replay.
    let out = lifecycle(&demo, "revoke", &serial, TCKN, &["--request-id", "req-3"]);
    assert_refusal(&out, &["request_id", "req-3"]);
    for (verb, extra) in [
        ("revoke", &["--reason", "superseded"][..]),
        ("revoke", &[][..]),
        ("suspend", &[][..]),
        ("unsuspend", &[][..]),
    ] {
        let out = lifecycle(&demo, verb, &serial, TCKN, extra);
        assert_refusal(&out, &["revocation is final"]);
    }

    let (v, history) = show_summary(&demo, &serial);
    assert_eq!(v["status"], "revoked", "{v:#}");
    assert_eq!(v["revocation"]["reason"], "keyCompromise", "{v:#}");
    assert_eq!(v["revocation"]["at"], revoked_at.as_str(), "{v:#}");
    assert_eq!(
        parse_time(v["revocation"]["invalidity_date"].as_str().unwrap_or("")),
        parse_time(&suspended_at),
        "{v:#}"
    );
    let steps: Vec<(&str, &str, Value, Value)> = history
        .iter()
        .map(|h| {
            (
                h["from"].as_str().unwrap_or(""),
                h["to"].as_str().unwrap_or(""),
                h["reason"].clone(),
                h["request_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (
                "active",
                "suspended",
                "certificateHold".into(),
                "req-1".into()
            ),
            ("suspended", "active", Value::Null, "req-2".into()),
            ("active", "revoked", "keyCompromise".into(), "req-3".into()),
        ],
        "the history does not list the three steps: {v:#}"
    );
    for (i, h) in v["history"].as_array().expect("history").iter().enumerate() {
        assert!(
            h["action"].as_str().is_some_and(|a| !a.is_empty())
                && h["actor"].as_str().is_some_and(|a| !a.is_empty())
                && parse_time(h["at"].as_str().unwrap_or("")).is_some(),
            "history entry {i} lacks action, actor or at: {v:#}"
        );
    }

    // The other certificate was never touched.
    let b = demo.cert_show(&other_serial);
    assert_eq!(b["status"], "active", "{b:#}");
    assert_eq!(b["history"], Value::Array(vec![]), "{b:#}");

    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&demo.config())])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
}

/// GET `path` from the server: 200, `application/pkix-crl` with caching headers; the body.
#[track_caller]
fn fetch_crl(server: &Server, path: &str) -> Vec<u8> {
    let r = server.get(path);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        r.header("content-type"),
        Some("application/pkix-crl"),
        "{}",
        r.describe()
    );
    for h in ["cache-control", "expires", "last-modified"] {
        assert!(r.header(h).is_some(), "no {h} header: {}", r.describe());
    }
    r.body
}

/// A CRL's number, entries, linted and shape-checked; writes `der` to WORK/NAME first.
#[track_caller]
fn check_fetched_crl(demo: &Demo, der: &[u8], name: &str, delta: bool) -> (String, u128) {
    let path = demo.work.join(name);
    fs::write(&path, der).expect("save the CRL");
    let (text, _) = check_crl_shape(&path, delta);
    assert_crl_lints_clean(&path);
    let n = crl_number(&text);
    (text, n)
}

/// `openssl verify -crl_check -CAfile ca-chain.pem -CRLfile CRL.pem CERT`.
fn verify_with_crl(demo: &Demo, crl_der: &Path, cert: &Path) -> Output {
    let pem = crl_der.with_extension("pem");
    openssl(&["crl", "-inform", "DER", "-in", s(crl_der), "-out", s(&pem)]);
    let chain = demo.path("ca-chain.pem");
    openssl_may_fail(&[
        "verify",
        "-crl_check",
        "-CAfile",
        s(&chain),
        "-CRLfile",
        s(&pem),
        s(cert),
    ])
}

/// The whole lifecycle of a certificate with a running `nesca serve`: OCSP answers follow
/// each change, delta and full CRLs list it with the right reason, and numbers go upwards.
#[test]
fn suspension_release_and_revocation_reach_ocsp_and_crls() {
    let demo = server_demo();
    let server = Server::serve(&demo);
    let url = server.url();

    // At start the server publishes a full CRL, then a delta on it.
    wait_for(
        "the full CRL nesca serve publishes at start",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let r = server.get("/crl/nes-ca.crl");
            if r.status == 200 {
                Ok(())
            } else {
                Err(r.describe())
            }
        },
    );
    wait_for(
        "the delta CRL nesca serve publishes at start",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let r = server.get("/crl/nes-ca-delta.crl");
            if r.status == 200 {
                Ok(())
            } else {
                Err(r.describe())
            }
        },
    );
    let initial_full = fetch_crl(&server, "/crl/nes-ca.crl");
    let initial_delta = fetch_crl(&server, "/crl/nes-ca-delta.crl");
    let (_, n_full0) = check_fetched_crl(&demo, &initial_full, "initial-full.der", false);
    let (dtext, n_delta0) = check_fetched_crl(&demo, &initial_delta, "initial-delta.der", true);
    assert!(
        n_delta0 > n_full0,
        "initial full {n_full0}, delta {n_delta0}"
    );
    assert_eq!(
        check_crl_shape(&demo.work.join("initial-delta.der"), true).1,
        Some(n_full0),
        "the initial delta's base is not the initial full CRL:\n{dtext}"
    );
    let mut numbers = vec![("initial full", n_full0), ("initial delta", n_delta0)];

    // Issue A and B while the server runs: both good.
    let (a, serial_a) = demo.issue_ok(&demo.csr("a", Key::P256), "a.pem", &[]);
    let (b, serial_b) = demo.issue_ok(&demo.csr("b", Key::P256), "b.pem", &[]);
    let r = ocsp_good(&demo, &url, &a, "a-good.der");
    assert!(r.verified(), "{}", r.describe());
    assert_ocsp_lints_clean(&r.respout);

    // Suspend A: OCSP revoked/certificateHold; the next delta lists the hold.
    let out = lifecycle(&demo, "suspend", &serial_a, TCKN, &[]).ok();
    assert!(out.stdout.starts_with("suspended "), "{}", out.describe());
    let r = ocsp_revoked(&demo, &url, &a, "certificateHold", "a-hold.der");
    assert_ocsp_lints_clean(&r.respout);

    let d1 = nesca_crl(&demo, true, "d1.der");
    let (t, base) = check_crl_shape(&d1.path, true);
    assert_eq!(base, Some(n_full0), "d1's base:\n{t}");
    assert_eq!(crl_number(&t), d1.number);
    assert_eq!(
        crl_reason_of(&t, &serial_a),
        Some(Some("Certificate Hold".into())),
        "the delta after the suspension does not list A on hold:\n{t}"
    );
    assert_eq!(crl_reason_of(&t, &serial_b), None, "{t}");
    assert_crl_lints_clean(&d1.path);
    assert_eq!(
        fetch_crl(&server, "/crl/nes-ca-delta.crl"),
        d1.der,
        "/crl/nes-ca-delta.crl does not serve the delta just published"
    );
    numbers.push(("d1 (hold)", d1.number));

    // A full CRL now lists the hold; /crl/ serves exactly it.
    let f1 = nesca_crl(&demo, false, "f1.der");
    let (t, _) = check_crl_shape(&f1.path, false);
    assert_eq!(crl_number(&t), f1.number);
    assert_eq!(
        crl_reason_of(&t, &serial_a),
        Some(Some("Certificate Hold".into())),
        "the full CRL does not list A on hold:\n{t}"
    );
    assert_eq!(crl_reason_of(&t, &serial_b), None, "{t}");
    assert_crl_lints_clean(&f1.path);
    assert_eq!(
        fetch_crl(&server, "/crl/nes-ca.crl"),
        f1.der,
        "/crl/nes-ca.crl does not serve the full CRL just published"
    );
    numbers.push(("f1 (hold)", f1.number));

    // Release A: good again; the next delta (on f1, which listed the hold) says removeFromCRL.
    let out = lifecycle(&demo, "unsuspend", &serial_a, TCKN, &[]).ok();
    assert!(out.stdout.starts_with("active "), "{}", out.describe());
    let r = ocsp_good(&demo, &url, &a, "a-released.der");
    assert_ocsp_lints_clean(&r.respout);
    let d2 = nesca_crl(&demo, true, "d2.der");
    let (t, base) = check_crl_shape(&d2.path, true);
    assert_eq!(base, Some(f1.number), "d2's base:\n{t}");
    assert_eq!(
        crl_reason_of(&t, &serial_a),
        Some(Some("Remove From CRL".into())),
        "the delta after the release does not list A with removeFromCRL:\n{t}"
    );
    assert_crl_lints_clean(&d2.path);
    numbers.push(("d2 (removeFromCRL)", d2.number));

    // Revoke A for keyCompromise: OCSP, the next delta and the next full CRL say so.
    let out = lifecycle(
        &demo,
        "revoke",
        &serial_a,
        TCKN,
        &["--reason", "keyCompromise"],
    )
    .ok();
    assert!(out.stdout.starts_with("revoked "), "{}", out.describe());
    let r = ocsp_revoked(&demo, &url, &a, "keyCompromise", "a-revoked.der");
    assert_ocsp_lints_clean(&r.respout);
    let d3 = nesca_crl(&demo, true, "d3.der");
    let (t, base) = check_crl_shape(&d3.path, true);
    assert_eq!(base, Some(f1.number), "d3's base:\n{t}");
    assert_eq!(
        crl_reason_of(&t, &serial_a),
        Some(Some("Key Compromise".into())),
        "the delta after the revocation does not list A with keyCompromise:\n{t}"
    );
    assert_crl_lints_clean(&d3.path);
    numbers.push(("d3 (keyCompromise)", d3.number));

    let f2 = nesca_crl(&demo, false, "f2.der");
    let (t, _) = check_crl_shape(&f2.path, false);
    assert_eq!(
        crl_reason_of(&t, &serial_a),
        Some(Some("Key Compromise".into())),
        "the full CRL after the revocation does not list A with keyCompromise:\n{t}"
    );
    assert_eq!(crl_reason_of(&t, &serial_b), None, "{t}");
    assert_eq!(f2.entries, 1, "{}", f2.line);
    assert_crl_lints_clean(&f2.path);
    assert_eq!(fetch_crl(&server, "/crl/nes-ca.crl"), f2.der);
    numbers.push(("f2 (keyCompromise)", f2.number));

    // Relying parties with the full CRL reject A and accept B.
    let va = verify_with_crl(&demo, &f2.path, &a);
    assert!(
        !va.success() && format!("{}{}", va.stdout, va.stderr).contains("certificate revoked"),
        "openssl verify -crl_check accepts the revoked certificate: {}",
        va.describe()
    );
    let vb = verify_with_crl(&demo, &f2.path, &b);
    assert!(
        vb.success() && vb.stdout.contains(": OK"),
        "openssl verify -crl_check rejects B: {}",
        vb.describe()
    );
    let r = ocsp_good(&demo, &url, &b, "b-good.der");
    assert_ocsp_lints_clean(&r.respout);

    // One increasing sequence of CRL numbers, full and delta alike.
    for w in numbers.windows(2) {
        assert!(w[1].1 > w[0].1, "CRL numbers must increase: {numbers:?}");
    }

    let (status, took) = server.terminate(GRACE + Duration::from_secs(5));
    assert!(
        status.success(),
        "nesca serve did not exit 0 on SIGTERM ({status}, after {took:?})"
    );
}
