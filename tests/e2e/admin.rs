//! The admin API over real mutual TLS, with `curl` as the operator's client: who gets in
//! (only active operators' certificates), the role of every endpoint, holder requests proven
//! by the security word, dual control (a provider revocation waits for a second officer and
//! reaches OCSP once approved; an unapproved request expires), operators added and disabled
//! under dual control, and the audit records naming each operator.

use std::fs;

use serde_json::{json, Value};

use crate::support::admin::{add_operator, try_add_operator, Admin, Operator};
use crate::support::ocsp::{ocsp_good, ocsp_revoked};
use crate::support::server::{server_demo, Server};
use crate::support::*;

/// A NES for AYŞE YILMAZ (10000000146) with the security word `Kirmizi7` on record.
fn holder_certificate(demo: &Demo, name: &str) -> (std::path::PathBuf, String) {
    let word = demo.work.join(format!("{name}.word"));
    fs::write(&word, "Kirmizi7\n").unwrap();
    // The word is a secret: nesca refuses a file others can read.
    fs::set_permissions(&word, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let csr = demo.csr(name, Key::P256);
    demo.issue_ok(
        &csr,
        &format!("{name}.pem"),
        &["--security-word-file", s(&word)],
    )
}

fn status_of(demo: &Demo, serial: &str) -> String {
    demo.cert_show(serial)["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn only_active_operators_get_in_and_every_answer_has_a_request_id() {
    let demo = server_demo();
    let admin = Admin::configure(&demo);
    let officer = add_operator(&demo, "Ayşe Officer", "ra-officer");
    let leaving = add_operator(&demo, "Ali Leaving", "auditor");
    let revoked = add_operator(&demo, "Veli Revoked", "auditor");
    let nes_csr = demo.csr("nes", Key::P256);
    let (nes_cert, _) = demo.issue_ok(&nes_csr, "nes.pem", &[]);
    let holder = Operator {
        cert: nes_cert,
        key: demo.work.join("nes.key"),
        serial: String::new(),
    };
    let server = Server::serve(&demo);

    // curl verifies the listener against ca-chain.pem (its certificate names 127.0.0.1).
    let ok = admin.get(&officer, "health");
    assert_eq!(ok.expect(200)["status"], "ok", "{}", server.describe());
    assert!(
        ok.headers.to_lowercase().contains("x-request-id: "),
        "{}",
        ok.headers
    );

    // No certificate, and a NES holder's certificate: refused in the handshake.
    let none = admin.call(None, "GET", "health", None);
    assert!(
        none.refused_in_handshake(),
        "no client certificate: {} {}",
        none.status,
        none.headers
    );
    let nes = admin.get(&holder, "health");
    assert!(
        nes.refused_in_handshake(),
        "a NES certificate: {} {}",
        nes.status,
        nes.headers
    );

    // Disabled and revoked operators: refused from then on, without a restart.
    assert_eq!(admin.get(&leaving, "health").status, 200);
    demo.nesca(&[
        "operator",
        "disable",
        "--config",
        s(&demo.config()),
        "--name",
        "Ali Leaving",
    ])
    .ok();
    let r = admin.get(&leaving, "health");
    assert!(
        r.refused_in_handshake(),
        "a disabled operator: {} {}",
        r.status,
        r.headers
    );

    assert_eq!(admin.get(&revoked, "health").status, 200);
    demo.nesca(&[
        "revoke",
        "--config",
        s(&demo.config()),
        "--serial",
        &revoked.serial,
        "--reason",
        "privilegeWithdrawn",
    ])
    .ok();
    let r = admin.get(&revoked, "health");
    assert!(
        r.refused_in_handshake(),
        "a revoked operator: {} {}",
        r.status,
        r.headers
    );

    // An unknown path and a malformed serial: JSON errors with the request id.
    let r = admin.get(&officer, "nothing-here");
    assert_eq!(r.expect(404)["error"]["code"], "not_found");
    assert_eq!(r.body["error"]["request_id"].as_str().unwrap().len(), 32);
    // A request a web page made, and a change with a query string: refused whoever sends it.
    let r = admin.call_with_headers(
        Some(&officer),
        "POST",
        "crl",
        None,
        &["Origin: https://evil.example"],
    );
    assert_eq!(r.expect(403)["error"]["code"], "cross_site");
    let r = admin.call(Some(&officer), "POST", "crl?delta=true", None);
    assert_eq!(r.expect(422)["error"]["field"], "query");
    let r = admin.get(&officer, "certificates/not-hex");
    assert_eq!(r.expect(422)["error"]["field"], "serial");
    drop(server);
}

#[test]
fn every_endpoint_allows_only_its_roles() {
    let demo = server_demo();
    let admin = Admin::configure(&demo);
    let ops: Vec<(&str, Operator)> = [
        ("ra-officer", "Rıza Officer"),
        ("ca-operator", "Can Operator"),
        ("auditor", "Ayla Auditor"),
        ("security-officer", "Selim Security"),
    ]
    .into_iter()
    .map(|(role, name)| (role, add_operator(&demo, name, role)))
    .collect();
    let server = Server::serve(&demo);
    let unknown_request = "00000000000000000000000000000000";
    let serial = "0123456789abcdef";
    let everyone: &[&str] = &["ra-officer", "ca-operator", "auditor", "security-officer"];
    let matrix: Vec<(&str, String, Option<Value>, &[&str])> = vec![
        ("GET", "openapi.json".into(), None, everyone),
        ("GET", "health".into(), None, everyone),
        (
            "GET",
            "certificates?tckn=10000000146".into(),
            None,
            &["ra-officer", "auditor"],
        ),
        (
            "GET",
            format!("certificates/{serial}"),
            None,
            &["ra-officer", "auditor"],
        ),
        (
            "POST",
            format!("certificates/{serial}/suspend"),
            Some(json!({})),
            &["ra-officer"],
        ),
        (
            "POST",
            format!("certificates/{serial}/unsuspend"),
            Some(json!({})),
            &["ra-officer"],
        ),
        (
            "POST",
            format!("certificates/{serial}/revoke"),
            Some(json!({})),
            &["ra-officer"],
        ),
        ("GET", "requests".into(), None, everyone),
        ("GET", format!("requests/{unknown_request}"), None, everyone),
        (
            "POST",
            format!("requests/{unknown_request}/approve"),
            None,
            &["ra-officer", "ca-operator", "security-officer"],
        ),
        (
            "POST",
            format!("requests/{unknown_request}/reject"),
            None,
            &["ra-officer", "ca-operator", "security-officer"],
        ),
        ("GET", "audit".into(), None, &["auditor"]),
        ("GET", "audit/verify".into(), None, &["auditor"]),
        (
            "GET",
            "operators".into(),
            None,
            &["security-officer", "auditor"],
        ),
        (
            "POST",
            "operators".into(),
            Some(json!({})),
            &["security-officer"],
        ),
        (
            "POST",
            "operators/Nobody/disable".into(),
            None,
            &["security-officer"],
        ),
        ("GET", "partners".into(), None, &["ca-operator", "auditor"]),
        (
            "POST",
            "partners/nobody/revoke-certificates".into(),
            None,
            &["ca-operator"],
        ),
        (
            "POST",
            "crl".into(),
            Some(json!({"delta": true})),
            &["ca-operator"],
        ),
        (
            "POST",
            "ocsp-signer/renew".into(),
            Some(json!({"ca": "no-such-ca"})),
            &["ca-operator"],
        ),
        (
            "POST",
            "ca/rollover".into(),
            Some(json!({"ca": "no-such-ca"})),
            &["ca-operator"],
        ),
        ("GET", "plugins".into(), None, &["ca-operator", "auditor"]),
        (
            "GET",
            "institutions".into(),
            None,
            &["ra-officer", "auditor"],
        ),
        (
            "GET",
            "institutions/nobody/applications".into(),
            None,
            &["ra-officer", "auditor"],
        ),
        (
            "POST",
            format!("institutions/nobody/lists/{unknown_request}/confirm"),
            None,
            &["ra-officer"],
        ),
        (
            "POST",
            format!("institutions/nobody/lists/{unknown_request}/reject"),
            None,
            &["ra-officer"],
        ),
    ];
    for (method, path, body, allowed) in &matrix {
        for (role, op) in &ops {
            let r = admin.call(Some(op), method, path, body.as_ref());
            if allowed.contains(role) {
                assert!(
                    r.status != 403 && r.status != 0 && r.status < 500,
                    "{role} was refused {method} {path}: {} {}\n{}",
                    r.status,
                    r.body,
                    server.describe()
                );
            } else {
                assert_eq!(r.status, 403, "{role} reached {method} {path}: {}", r.body);
                assert_eq!(r.code(), "forbidden", "{role} {method} {path}: {}", r.body);
            }
        }
    }
}

#[test]
fn a_phone_request_needs_the_holders_security_word() {
    let demo = server_demo();
    let admin = Admin::configure(&demo);
    let officer = add_operator(&demo, "Ayşe Officer", "ra-officer");
    let (cert, serial) = holder_certificate(&demo, "holder");
    let csr = demo.csr("wordless", Key::P256);
    let (_, wordless) = demo.issue_ok(&csr, "wordless.pem", &[]);
    let server = Server::serve(&demo);
    let url = server.url();
    let suspend = format!("certificates/{serial}/suspend");
    let phone = |word: &str| json!({"holder_request": {"tckn": "10000000146", "channel": "phone", "security_word": word}});

    // A change that cannot happen is refused before the word is checked (no free oracle).
    let r = admin.post(
        &officer,
        &format!("certificates/{serial}/unsuspend"),
        &phone("Yanlis99"),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = admin.post(&officer, &suspend, &phone("Yanlis99"));
    assert_eq!(
        r.expect(403)["error"]["code"],
        "holder_not_proven",
        "{}",
        r.body
    );
    assert!(
        !r.body.to_string().contains("Yanlis99"),
        "the word came back: {}",
        r.body
    );
    assert_eq!(status_of(&demo, &serial), "active");

    // Another person's number, a word where none is asked, none where one is.
    let other = json!({"holder_request": {"tckn": "10000000078", "channel": "phone", "security_word": "Kirmizi7"}});
    assert_eq!(
        admin.post(&officer, &suspend, &other).expect(403)["error"]["field"],
        "holder_request.tckn"
    );
    let written = json!({"holder_request": {"tckn": "10000000146", "channel": "written", "security_word": "Kirmizi7"}});
    assert_eq!(
        admin.post(&officer, &suspend, &written).expect(422)["error"]["field"],
        "holder_request.security_word"
    );
    let bare = json!({"holder_request": {"tckn": "10000000146", "channel": "phone"}});
    assert_eq!(
        admin.post(&officer, &suspend, &bare).expect(422)["error"]["field"],
        "holder_request.security_word"
    );
    let r = admin.post(
        &officer,
        &format!("certificates/{wordless}/suspend"),
        &phone("Kirmizi7"),
    );
    assert_eq!(r.expect(403)["error"]["code"], "refused", "{}", r.body);
    assert_eq!(status_of(&demo, &serial), "active");

    // The right word: suspended now, and OCSP says so.
    let v = admin
        .post(&officer, &suspend, &phone("Kirmizi7"))
        .expect(200)
        .clone();
    assert_eq!(v["certificate"]["status"], "suspended", "{v}");
    ocsp_revoked(&demo, &url, &cert, "certificateHold", "held.der");
    let history = demo.cert_show(&serial)["history"].clone();
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert!(
        last["actor"]
            .as_str()
            .unwrap()
            .starts_with("operator:ra-officer:")
            && last["actor"].as_str().unwrap().ends_with(":Ayşe Officer"),
        "{last}"
    );

    // Released in person.
    let in_person = json!({"holder_request": {"tckn": "10000000146", "channel": "in_person"}});
    admin
        .post(
            &officer,
            &format!("certificates/{serial}/unsuspend"),
            &in_person,
        )
        .expect(200);
    ocsp_good(&demo, &url, &cert, "good.der");

    // Wrong words are counted: after five checks a day, even the right one waits.
    for _ in 0..5 {
        admin.post(&officer, &suspend, &phone("Yanlis99"));
    }
    let r = admin.post(&officer, &suspend, &phone("Kirmizi7"));
    assert_eq!(r.expect(429)["error"]["code"], "locked", "{}", r.body);
    // Until the oldest of those checks is a day old.
    let retry: u64 = r
        .headers
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("retry-after: ")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header");
    assert!((86_000..=86_400).contains(&retry), "{retry}");
    assert_eq!(status_of(&demo, &serial), "active");
}

#[test]
fn a_provider_revocation_waits_for_a_second_officer() {
    let demo = server_demo();
    let admin = Admin::configure(&demo);
    let first = add_operator(&demo, "Ayşe Birinci", "ra-officer");
    let second = add_operator(&demo, "Mehmet İkinci", "ra-officer");
    let auditor = add_operator(&demo, "Ayla Auditor", "auditor");
    let ca_op = add_operator(&demo, "Can Operator", "ca-operator");
    let (cert, serial) = holder_certificate(&demo, "holder");
    let server = Server::serve(&demo);
    let url = server.url();

    let body = json!({"reason": "cessationOfOperation", "grounds": "court_decision", "note": "Ankara 3. Asliye Hukuk 2026/77"});
    let asked = admin.post(&first, &format!("certificates/{serial}/revoke"), &body);
    let v = asked.expect(202).clone();
    assert_eq!(v["request"]["status"], "pending", "{v}");
    let id = v["request"]["id"].as_str().unwrap().to_owned();
    let approve = format!("requests/{id}/approve");

    // Not the requester, not another role; nothing happens meanwhile.
    assert_eq!(
        admin.post(&first, &approve, &json!({})).expect(409)["error"]["code"],
        "conflict"
    );
    assert_eq!(
        admin.post(&auditor, &approve, &json!({})).expect(403)["error"]["code"],
        "forbidden"
    );
    assert_eq!(
        admin.post(&ca_op, &approve, &json!({})).expect(403)["error"]["field"],
        "role"
    );
    assert_eq!(status_of(&demo, &serial), "active");
    ocsp_good(&demo, &url, &cert, "before.der");
    let pending = admin.get(&auditor, "requests?status=pending");
    assert_eq!(pending.expect(200)["requests"][0]["id"], id.as_str());

    // The second officer's approval carries it out.
    let approved = admin.post(&second, &approve, &json!({}));
    let v = approved.expect(200).clone();
    assert_eq!(v["request"]["status"], "executed", "{v}");
    assert_eq!(v["request"]["approvals"][0]["operator"], "Mehmet İkinci");
    ocsp_revoked(&demo, &url, &cert, "cessationOfOperation", "after.der");
    assert_eq!(
        admin.post(&second, &approve, &json!({})).expect(409)["error"]["code"],
        "conflict"
    );

    // Every step is in the audit log under the operator who took it; the log verifies.
    let records = admin.get(&auditor, "audit?limit=1000").expect(200)["records"].clone();
    let steps: Vec<(String, String)> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["actor"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(a, _)| {
            [
                "request",
                "approve-request",
                "request-approved",
                "revoke",
                "request-executed",
            ]
            .contains(&a.as_str())
        })
        .collect();
    let names: Vec<&str> = steps.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "request",
            "approve-request",
            "request-approved",
            "revoke",
            "request-executed"
        ],
        "{steps:?}"
    );
    assert!(
        steps[0].1.ends_with(":Ayşe Birinci") && steps[3].1.ends_with(":Mehmet İkinci"),
        "{steps:?}"
    );
    // Each step's record carries the id of the call that made it (x-request-id).
    let detail_of = |action: &str| {
        records
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == action)
            .unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(detail_of("request").contains(&format!("http_request_id={}", asked.request_id())));
    assert!(detail_of("approve-request")
        .contains(&format!("http_request_id={}", approved.request_id())));
    let revoke = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "revoke")
        .unwrap();
    assert!(
        revoke["detail"]
            .as_str()
            .unwrap()
            .contains("requested_by=provider:court_decision"),
        "{revoke}"
    );
    let verdict = admin.get(&auditor, "audit/verify").expect(200).clone();
    assert_eq!(verdict["intact"], true, "{verdict}");
}

#[test]
fn a_request_is_rejected_or_withdrawn_and_each_operator_is_rate_limited() {
    let demo = server_demo();
    let admin = Admin::configure_with(&demo, &[("requests_per_minute", "6")]);
    let first = add_operator(&demo, "Ayşe Birinci", "ra-officer");
    let second = add_operator(&demo, "Mehmet İkinci", "ra-officer");
    let (_, serial) = holder_certificate(&demo, "holder");
    let _server = Server::serve(&demo);
    let revoke = format!("certificates/{serial}/revoke");
    let body = json!({"grounds": "false_information", "note": "Başvuru belgesi sahte"});

    // Rejected by another officer: never carried out, approved no more.
    let id = admin.post(&first, &revoke, &body).expect(202)["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = admin
        .post(&second, &format!("requests/{id}/reject"), &json!({}))
        .expect(200)
        .clone();
    assert_eq!(v["request"]["status"], "rejected", "{v}");
    assert_eq!(
        v["request"]["result"]["rejected_by"], "Mehmet İkinci",
        "{v}"
    );
    // Withdrawn by its requester.
    let id = admin.post(&first, &revoke, &body).expect(202)["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        admin
            .post(&first, &format!("requests/{id}/reject"), &json!({}))
            .expect(200)["request"]["status"],
        "rejected"
    );
    assert_eq!(
        admin
            .post(&second, &format!("requests/{id}/approve"), &json!({}))
            .expect(409)["error"]["code"],
        "conflict"
    );
    assert_eq!(status_of(&demo, &serial), "active");

    // Six requests a minute per operator certificate: the seventh waits, the other officer not.
    let mut r = admin.get(&first, "health");
    for _ in 0..3 {
        r = admin.get(&first, "health");
    }
    assert_eq!(r.status, 429, "{} {}", r.status, r.body);
    assert_eq!(r.code(), "rate_limited");
    assert!(
        r.headers.to_lowercase().contains("retry-after: "),
        "{}",
        r.headers
    );
    assert_eq!(admin.get(&second, "health").status, 200);
}

#[test]
fn an_unapproved_request_expires() {
    let demo = server_demo();
    let admin = Admin::configure(&demo);
    let first = add_operator(&demo, "Ayşe Birinci", "ra-officer");
    let second = add_operator(&demo, "Mehmet İkinci", "ra-officer");
    let (_, serial) = holder_certificate(&demo, "holder");
    let server = Server::serve(&demo);
    let body = json!({"grounds": "death", "note": "Nüfus kaydı"});
    let v = admin
        .post(&first, &format!("certificates/{serial}/revoke"), &body)
        .expect(202)
        .clone();
    let id = v["request"]["id"].as_str().unwrap().to_owned();
    server.terminate(crate::support::server::GRACE + std::time::Duration::from_secs(10));

    // A day and a bit later (the server's clock moved on): the request has expired.
    let server = Server::serve_with_env(&demo, &[("NESCA_TEST_CLOCK_OFFSET_SECONDS", "90000")]);
    let r = admin.post(&second, &format!("requests/{id}/approve"), &json!({}));
    assert_eq!(r.expect(409)["error"]["code"], "conflict", "{}", r.body);
    assert_eq!(
        admin.get(&second, &format!("requests/{id}")).expect(200)["request"]["status"],
        "expired"
    );
    assert_eq!(status_of(&demo, &serial), "active");
    drop(server);
}

#[test]
fn operators_are_added_and_disabled_under_dual_control() {
    let demo = server_demo();
    let admin = Admin::configure(&demo);
    let so1 = add_operator(&demo, "Selim Birinci", "security-officer");
    let so2 = add_operator(&demo, "Sema İkinci", "security-officer");
    let _server = Server::serve(&demo);

    // One person, one role: the command line refuses a second role for a name.
    let (o, _) = try_add_operator(&demo, "Selim Birinci", "auditor");
    assert!(
        !o.success()
            && o.stderr
                .contains("name: \"Selim Birinci\" is registered already"),
        "{}",
        o.describe()
    );
    let (o, _) = try_add_operator(&demo, "Someone", "root");
    assert!(
        !o.success() && o.stderr.contains("role: must be one of"),
        "{}",
        o.describe()
    );

    // With two security officers, neither may be disabled: dual control needs both.
    let r = admin.post(&so2, "operators/Selim%20Birinci/disable", &json!({}));
    assert_eq!(r.expect(409)["error"]["field"], "name", "{}", r.body);

    // A new auditor, requested by one security officer, approved by the other.
    let csr_path = demo.csr("new-auditor", Key::P256);
    let csr = fs::read_to_string(&csr_path).unwrap();
    let v = admin
        .post(
            &so1,
            "operators",
            &json!({"name": "Ayla Yeni", "role": "auditor", "csr": csr}),
        )
        .expect(202)
        .clone();
    let id = v["request"]["id"].as_str().unwrap().to_owned();
    let v = admin
        .post(&so2, &format!("requests/{id}/approve"), &json!({}))
        .expect(200)
        .clone();
    assert_eq!(v["request"]["status"], "executed", "{v}");
    let pem = v["request"]["result"]["certificate"].as_str().unwrap();
    let cert = demo.work.join("new-auditor.pem");
    fs::write(&cert, pem).unwrap();
    let newcomer = Operator {
        cert,
        key: demo.work.join("new-auditor.key"),
        serial: v["request"]["result"]["operator"]["serial"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    assert_eq!(admin.get(&newcomer, "health").status, 200);

    // Disabled the same way: the approval takes effect at the newcomer's next request.
    let v = admin
        .post(&so2, "operators/Ayla%20Yeni/disable", &json!({}))
        .expect(202)
        .clone();
    let id = v["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        admin.get(&newcomer, "health").status,
        200,
        "disabled before the approval"
    );
    admin
        .post(&so1, &format!("requests/{id}/approve"), &json!({}))
        .expect(200);
    let r = admin.get(&newcomer, "health");
    assert!(
        matches!(r.status, 0 | 403),
        "a disabled operator got in: {} {}",
        r.status,
        r.body
    );
    let list = demo
        .nesca(&["operator", "list", "--config", s(&demo.config())])
        .ok();
    assert!(
        list.stdout.contains("\"name\":\"Ayla Yeni\"") && list.stdout.contains("\"active\":false"),
        "{}",
        list.stdout
    );
}

/// The schemathesis binary: `$NESCA_SCHEMATHESIS_DIR/schemathesis` (scripts/test.sh installs
/// it there), else on PATH.
fn schemathesis() -> std::path::PathBuf {
    match std::env::var_os("NESCA_SCHEMATHESIS_DIR") {
        Some(dir) => std::path::Path::new(&dir).join("schemathesis"),
        None => "schemathesis".into(),
    }
}

/// A property-based fuzzer (schemathesis) drives every operation of docs/openapi.yaml, as
/// served at /admin/v1/openapi.json, with each role's certificate: no answer is a 5xx, and
/// every answer (status, content type, body, headers) is one the document describes.
#[test]
fn the_api_answers_a_fuzzer_as_its_openapi_document_says() {
    let demo = server_demo();
    // The fuzzer sends thousands of requests a minute; the rate limit is not what is tested.
    let admin = Admin::configure_with(&demo, &[("requests_per_minute", "100000")]);
    let ops: Vec<(&str, Operator)> = [
        ("ra-officer", "Rıza Officer"),
        ("ca-operator", "Can Operator"),
        ("auditor", "Ayla Auditor"),
        ("security-officer", "Selim Security"),
    ]
    .into_iter()
    .map(|(role, name)| (role, add_operator(&demo, name, role)))
    .collect();
    holder_certificate(&demo, "holder");
    let server = Server::serve(&demo);
    let schema = format!("https://127.0.0.1:{}/admin/v1/openapi.json", admin.port);
    for (role, op) in &ops {
        let mut cmd = std::process::Command::new(schemathesis());
        cmd.args(["--no-color", "run", &schema])
            .args(["--tls-verify", s(&admin.ca)])
            .args(["--request-cert", s(&op.cert), "--request-cert-key", s(&op.key)])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
                "--max-examples",
                "20",
                "--seed",
                "14",
                "--phases",
                "examples,coverage,fuzzing",
                "--request-timeout",
                "20",
                // A connection the server closed while idle is opened again, not reported.
                "--request-retries",
                "2",
            ])
            .current_dir(&demo.work);
        let out = run(cmd);
        assert!(
            out.success(),
            "schemathesis as {role} found answers the document does not describe:\n{}\n{}",
            out.describe(),
            server.describe()
        );
    }
}

#[test]
fn an_issuing_ca_is_rolled_over_and_an_ocsp_signer_renewed_under_dual_control() {
    let demo = server_demo();
    let admin = Admin::configure(&demo);
    let first = add_operator(&demo, "Can Birinci", "ca-operator");
    let second = add_operator(&demo, "Cem İkinci", "ca-operator");
    let _server = Server::serve(&demo);

    let v = admin
        .post(&first, "ca/rollover", &json!({}))
        .expect(202)
        .clone();
    let id = v["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["request"]["parameters"]["ca"], "nes-ca", "{v}");
    let v = admin
        .post(&second, &format!("requests/{id}/approve"), &json!({}))
        .expect(200)
        .clone();
    assert_eq!(v["request"]["status"], "executed", "{v}");
    assert_eq!(v["request"]["result"]["ca"], "nes-ca-g2", "{v}");
    assert_eq!(v["request"]["result"]["supersedes"], "nes-ca", "{v}");
    let list = demo
        .nesca(&["ca", "list", "--config", s(&demo.config())])
        .ok();
    assert!(
        list.stdout.contains("\"id\":\"nes-ca-g2\""),
        "{}",
        list.stdout
    );
    // A second rollover of the same generation is refused when carried out.
    let v = admin
        .post(&first, "ca/rollover", &json!({"ca": "nes-ca"}))
        .expect(202)
        .clone();
    let id = v["request"]["id"].as_str().unwrap().to_owned();
    let v = admin
        .post(&second, &format!("requests/{id}/approve"), &json!({}))
        .expect(200)
        .clone();
    assert_eq!(v["request"]["status"], "failed", "{v}");
    assert!(
        v["request"]["result"]["error"]
            .as_str()
            .unwrap()
            .contains("rolled over already"),
        "{v}"
    );

    // A generation id whose certificate file would replace one beside the configuration.
    let r = admin.post(
        &first,
        "ca/rollover",
        &json!({"ca": "nes-ca-g2", "new_id": "admin-tls"}),
    );
    assert_eq!(r.expect(409)["error"]["field"], "new_id", "{}", r.body);
    let tls = fs::read(demo.path("admin-tls.pem")).unwrap();
    assert!(String::from_utf8_lossy(&tls).contains("BEGIN CERTIFICATE"));

    // The OCSP signer, the same way.
    let v = admin
        .post(&first, "ocsp-signer/renew", &json!({}))
        .expect(202)
        .clone();
    let id = v["request"]["id"].as_str().unwrap().to_owned();
    let v = admin
        .post(&second, &format!("requests/{id}/approve"), &json!({}))
        .expect(200)
        .clone();
    assert_eq!(v["request"]["status"], "executed", "{v}");
    assert!(
        v["request"]["result"]["key_label"]
            .as_str()
            .unwrap()
            .contains("-ocsp-"),
        "{v}"
    );
}

#[test]
fn an_ra_officer_sees_institutions_and_decides_held_lists() {
    use crate::support::institution::{import, institution, json as out_json};
    let demo = server_demo();
    let admin = Admin::configure(&demo);
    let officer = add_operator(&demo, "Rıza Officer", "ra-officer");
    let auditor = add_operator(&demo, "Ayla Auditor", "auditor");
    institution(&demo, "ankara-bb", "1234567890");
    let scan = demo.work.join("scan.pdf");
    fs::write(&scan, b"%PDF-1.7 signed on paper").unwrap();
    let held = |name: &str, tckn: &str| {
        let list = demo.work.join(name);
        fs::write(&list, format!("T.C. Kimlik No,Adı,Soyadı,E-posta,Cep Telefonu,Birim\n{tckn},AYŞE,YILMAZ,a@x.tr,05321234567,Bilgi İşlem\n")).unwrap();
        let v = out_json(&import(&demo, "ankara-bb", &list, ("--wet-scan", &scan), &[]).ok());
        assert_eq!(v["status"], "awaiting_confirmation", "{v}");
        v["file_sha256"].as_str().unwrap().to_owned()
    };
    let first = held("bir.csv", "10000000146");
    let second = held("iki.csv", "10000000078");
    let _server = Server::serve(&demo);

    let v = admin.get(&auditor, "institutions").expect(200).clone();
    assert_eq!(v["institutions"][0]["id"], "ankara-bb", "{v}");
    let lists = "institutions/ankara-bb/lists";
    // The auditor reads, the officer decides.
    assert_eq!(
        admin
            .post(&auditor, &format!("{lists}/{first}/confirm"), &json!({}))
            .expect(403)["error"]["code"],
        "forbidden"
    );
    let v = admin
        .post(&officer, &format!("{lists}/{first}/confirm"), &json!({}))
        .expect(200)
        .clone();
    assert_eq!(
        (v["status"].clone(), v["invited"].clone()),
        (json!("accepted"), json!(1)),
        "{v}"
    );
    let v = admin
        .post(&officer, &format!("{lists}/{second}/reject"), &json!({}))
        .expect(200)
        .clone();
    assert_eq!(
        (v["status"].clone(), v["closed"].clone()),
        (json!("rejected"), json!(1)),
        "{v}"
    );
    // Decided once.
    let r = admin.post(&officer, &format!("{lists}/{first}/confirm"), &json!({}));
    assert!(
        matches!(r.status, 404 | 409 | 422),
        "{} {}",
        r.status,
        r.body
    );

    let v = admin
        .get(&officer, "institutions/ankara-bb/applications")
        .expect(200)
        .clone();
    let apps = v["applications"].as_array().unwrap();
    let of = |tckn: &str| apps.iter().find(|a| a["tckn"] == tckn).unwrap()["list_status"].clone();
    assert_eq!(of("10000000146"), "invited", "{v}");
    assert_eq!(of("10000000078"), "closed", "{v}");
    let records = admin.get(&auditor, "audit?limit=1000").expect(200)["records"].clone();
    assert!(
        records.as_array().unwrap().iter().any(|r| r["actor"]
            .as_str()
            .unwrap()
            .ends_with(":Rıza Officer")
            && r["action"].as_str().unwrap().contains("list")),
        "no list decision recorded under the officer"
    );
}
