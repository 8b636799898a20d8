//! The institutional channel's second half through `nesca serve` and the batch-import plugin
//! (an ESHS portal forwarding over mTLS): invited people sign in with the e-mailed access
//! password, fill the form, confirm the SMS code and approve by e-Onay, by a signature with
//! their NES (openssl cms), or by a wet signature an operator receives; production with card
//! keys generated in the HSM and wrapped for the card personalisation system (a SoftHSM token
//! of the test unwraps them); the billing report; the public lookup leaving "do not publish"
//! certificates out; and a renewal held until two months before the current certificate's
//! expiry, produced when the (injected) clock reaches that day.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::Digest as _;

use cryptoki::object::ObjectHandle;

use crate::support::http::HttpResponse;
use crate::support::idcard::{
    cert_key_verifies, register_transport_key, transport_key_cmd, Card, ChannelClient, Options,
    World,
};
use crate::support::institution::{
    applicant_list, import_signed_rows, institution, json as stdout_json, sign,
};
use crate::support::ocsp::ocsp_good;
use crate::support::outbox::{access_password_in, code_after, is_code, messages_to};
use crate::support::server::{server_demo, Server};
use crate::support::*;

const APPLICANTS: &str = "/channels/batch-import/v1/applicants";
const INSTITUTION: &str = "ankara-bb";
const TAX_NO: &str = "0680049583";
/// How long the test waits for `nesca serve`'s background work (outbox, production).
const WAIT: Duration = Duration::from_secs(90);

/// One invited person of the tests' lists.
#[derive(Clone, Copy)]
struct Person {
    tckn: &'static str,
    given: &'static str,
    surname: &'static str,
    email: &'static str,
    mobile: &'static str,
}

const CAGRI: Person = Person {
    tckn: "10000000078",
    given: "Çağrı",
    surname: "Öztürk",
    email: "cagri@ankara.bel.tr",
    mobile: "+905331112233",
};
const IPEK: Person = Person {
    tckn: "10000000214",
    given: "İpek",
    surname: "Şahin",
    email: "ipek@ankara.bel.tr",
    mobile: "+905051112233",
};
const SUKRU: Person = Person {
    tckn: "10000000382",
    given: "Şükrü",
    surname: "Güneş",
    email: "sukru@ankara.bel.tr",
    mobile: "+905445556677",
};

/// A demo CA serving the channels, producing with HSM keys wrapped for `card`'s transport
/// key (registered with `nesca transport-key add`) every second, the outbox sending every
/// second; an institution with its officer. The card's unwrapping key and the transport key's
/// id.
fn setup(card: &Card) -> (Demo, World, (ObjectHandle, String)) {
    let (transport_key, transport_spki) = card.transport_key();
    let mut id = String::new();
    let (demo, world) = setup_with(|demo| {
        id = register_transport_key(demo, "personalisation-1", &transport_spki, 365);
        format!("key_source = \"hsm\"\ntransport_key = \"{id}\"\n")
    });
    (demo, world, (transport_key, id))
}

/// [`setup`] with the `[production]` keys `production` writes (interval: one second).
fn setup_with(production: impl FnOnce(&Demo) -> String) -> (Demo, World) {
    let demo = server_demo();
    let world = World::new(&demo, Options::default());
    let config = demo.config();
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[outbox]\ninterval_seconds = 1\n\n[production]\n{}interval_seconds = 1\n",
        production(&demo)
    ));
    fs::write(&config, text).unwrap();
    institution(&demo, INSTITUTION, TAX_NO);
    (demo, world)
}

/// Writes and imports (signed by the officer) a csv list of `people`.
fn import_list(demo: &Demo, name: &str, people: &[Person]) {
    let rows: Vec<String> = people
        .iter()
        .map(|p| {
            format!(
                "{};{};{};{};{};Bilgi İşlem",
                p.tckn, p.given, p.surname, p.email, p.mobile
            )
        })
        .collect();
    let officer = demo.work.join(format!("officer-{INSTITUTION}"));
    let (cert, key) = (officer.with_extension("pem"), officer.with_extension("key"));
    import_signed_rows(demo, INSTITUTION, (&cert, &key), name, &rows);
}

/// Waits (bounded) until `f` gives a value.
#[track_caller]
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_within(what, WAIT, f)
}

/// The access password e-mailed to `p` (by `nesca serve`'s outbox).
fn access_password(demo: &Demo, p: Person) -> String {
    nth_access_password(demo, p, 1)
}

/// The newest access password e-mailed to `p`, once `count` e-mails went to them.
fn nth_access_password(demo: &Demo, p: Person, count: usize) -> String {
    let mail = wait_for("the access password e-mail", || {
        let all = messages_to(&demo.dir.join("outbox/email"), p.email);
        (all.len() >= count).then(|| all.last().cloned()).flatten()
    });
    access_password_in(&mail).expect("a password line")
}

/// The newest SMS code sent to `p`, once there are `count` SMS for them.
fn sms_code(demo: &Demo, p: Person, count: usize) -> String {
    let sms = wait_for("the SMS code", || {
        let all = messages_to(&demo.dir.join("outbox/sms"), p.mobile);
        (all.len() >= count).then(|| all.last().cloned()).flatten()
    });
    let code = code_after(&sms, "kodunuz: ").expect("a code");
    assert!(is_code(&code), "{sms}");
    code
}

fn body(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| {
        panic!(
            "{}: not JSON: {}",
            r.request,
            String::from_utf8_lossy(&r.body)
        )
    })
}

#[track_caller]
fn expect(r: &HttpResponse, status: u16) -> Value {
    assert_eq!(
        r.status,
        status,
        "{}: {}",
        r.request,
        String::from_utf8_lossy(&r.body)
    );
    body(r)
}

/// Signs `p` in with the e-mailed access password: the answer (the session token and the
/// application).
fn signed_in(demo: &Demo, portal: &ChannelClient, p: Person) -> Value {
    let password = access_password(demo, p);
    expect(
        &portal.call(
            "POST",
            &format!("{APPLICANTS}/sign-in"),
            None,
            Some(&json!({ "v": 1, "tckn": p.tckn, "password": password })),
        ),
        200,
    )
}

/// Signs `p` in and sends the form (to be published): the session token and the SMS code that
/// came for it.
fn awaiting_code(demo: &Demo, portal: &ChannelClient, p: Person) -> (String, String) {
    let v = signed_in(demo, portal, p);
    let token = v["token"].as_str().unwrap().to_owned();
    send_form(portal, &token, false);
    let code = sms_code(demo, p, 1);
    (token, code)
}

/// Signs in, fills the form and confirms the SMS code; returns the session token and the
/// application id.
fn confirmed(
    demo: &Demo,
    portal: &ChannelClient,
    p: Person,
    do_not_publish: bool,
) -> (String, String) {
    let v = signed_in(demo, portal, p);
    let token = v["token"].as_str().expect("a token").to_owned();
    let id = v["application"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["application"]["stage"], "invited", "{v}");
    assert!(
        v["application"]["mobile"].as_str().unwrap().contains('*'),
        "the mobile number is masked: {v}"
    );
    send_form(portal, &token, do_not_publish);
    let code = sms_code(demo, p, 1);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = portal.call(
        "POST",
        &format!("{APPLICANTS}/me/sms-code"),
        Some(&token),
        Some(&json!({ "v": 1, "code": wrong })),
    );
    // A mistyped code is not a dead session: its own code, with the tries left.
    let e = expect(&r, 422);
    assert_eq!(
        e["error"],
        json!({"code": "sms_code", "message": "sms_code: the code is wrong (tries left: 2)"})
    );
    let v = expect(
        &portal.call(
            "POST",
            &format!("{APPLICANTS}/me/sms-code"),
            Some(&token),
            Some(&json!({ "v": 1, "code": code })),
        ),
        200,
    );
    assert_eq!(v["application"]["stage"], "confirmed", "{v}");
    (token, id)
}

/// Sends the application form (a new SMS code goes out).
fn send_form(portal: &ChannelClient, token: &str, do_not_publish: bool) {
    let form = json!({
        "v": 1,
        "security_word": "Kırmızı7",
        "do_not_publish": do_not_publish,
        "delivery_address": "Atatürk Bulvarı No: 1, Çankaya / ANKARA",
    });
    let v = expect(
        &portal.call(
            "POST",
            &format!("{APPLICANTS}/me/form"),
            Some(token),
            Some(&form),
        ),
        202,
    );
    assert_eq!(v["application"]["stage"], "form", "{v}");
}

fn approve(portal: &ChannelClient, token: &str, approval: Value) -> HttpResponse {
    portal.call(
        "POST",
        &format!("{APPLICANTS}/me/approval"),
        Some(token),
        Some(&approval),
    )
}

fn applicant(demo: &Demo, id: &str) -> Value {
    crate::support::institution::applicant_show(demo, id)
}

/// `openssl cms -sign` of the approval text with a certificate and key, detached, DER.
fn sign_text(demo: &Demo, text: &str, cert: &Path, key: &Path, name: &str) -> Vec<u8> {
    let file = demo.work.join(format!("{name}.txt"));
    fs::write(&file, text).unwrap();
    fs::read(sign(&demo.work, &file, cert, key, &format!("{name}.p7s"))).unwrap()
}

/// The card package of a produced application, its certificate (DER) checked: chains to
/// nesca's CA (openssl verify) and its key is the one wrapped for the card.
fn check_package(
    demo: &Demo,
    world: &World,
    (card, (transport, transport_id)): (&Card, &(ObjectHandle, String)),
    id: &str,
    at: Option<i64>,
) -> (String, Vec<u8>) {
    let package: Value = serde_json::from_str(
        &fs::read_to_string(demo.dir.join(format!("production/packages/{id}.json")))
            .expect("the card package"),
    )
    .unwrap();
    let serial = package["serial"].as_str().unwrap().to_owned();
    let pem = package["certificate_pem"].as_str().unwrap();
    let cert_path = demo.work.join(format!("{id}.pem"));
    fs::write(&cert_path, pem).unwrap();
    let attime = at.map(|t| t.to_string());
    let mut args = vec!["verify", "-CAfile", s(&world.ca_chain)];
    if let Some(t) = &attime {
        args.extend_from_slice(&["-attime", t]);
    }
    args.push(s(&cert_path));
    let verify = openssl(&args);
    assert!(verify.stdout.contains(": OK"), "{}", verify.describe());
    let der = openssl(&["x509", "-in", s(&cert_path), "-outform", "DER"]).stdout_bytes;
    let w = &package["wrapped_key"];
    // The package names the registered key the card key was wrapped for.
    assert_eq!(
        w["transport_key"].as_str(),
        Some(transport_id.as_str()),
        "{package}"
    );
    let private = card.unwrap_ec_key(
        *transport,
        w["scheme"].as_str().unwrap(),
        &unb64(w["wrapped_key"].as_str().unwrap(), "wrapped_key"),
        &unb64(
            w["wrapped_private_key"].as_str().unwrap(),
            "wrapped_private_key",
        ),
    );
    let digest = sha2::Sha256::digest(b"nesca e2e: the produced card key");
    let sig = card.sign_digest(private, &digest);
    cert_key_verifies(&der, &digest, &sig).expect("the wrapped key is the certificate's");
    assert_eq!(
        package["delivery_address"],
        "Atatürk Bulvarı No: 1, Çankaya / ANKARA"
    );
    (serial, der)
}

fn month_now() -> String {
    // Turkey's time (UTC+3).
    let t = time::OffsetDateTime::now_utc() + time::Duration::hours(3);
    format!("{:04}-{:02}", t.year(), t.month() as u8)
}

#[test]
fn invited_people_complete_approve_three_ways_and_are_produced_billed_and_published() {
    let card = Card::new("personalisation-1");
    let (demo, world, transport) = setup(&card);
    // İpek has a NES of nesca already (30 days left: not a renewal to hold).
    let ipek_csr = demo.csr("ipek-nes", Key::P256);
    let ipek_cert = demo.work.join("ipek-nes.pem");
    demo.issue_as(
        &ipek_csr,
        IPEK.tckn,
        "İPEK",
        "ŞAHİN",
        &["--out", s(&ipek_cert), "--validity-days", "30"],
    )
    .ok();
    import_list(&demo, "liste", &[CAGRI, IPEK, SUKRU]);
    let mut server = Server::serve(&demo);
    let portal = world.client(Some(&world.kdhs_client));

    // A wrong password: 401, the same answer as for an unknown number.
    let wrong = json!({ "v": 1, "tckn": CAGRI.tckn, "password": "not-the-password" });
    let r = portal.call("POST", &format!("{APPLICANTS}/sign-in"), None, Some(&wrong));
    assert_eq!(expect(&r, 401)["error"]["code"], "unauthenticated");
    // No session: 401 before the host is asked; no client certificate: refused.
    let r = portal.call("GET", &format!("{APPLICANTS}/me"), None, None);
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    let anonymous = world.client(None);
    assert!(anonymous
        .post(&format!("{APPLICANTS}/sign-in"), &wrong)
        .map(|r| r.status >= 400)
        .unwrap_or(true));

    // Çağrı: e-Onay, refused until their prior consent is on record; "do not publish".
    let (cagri_token, cagri_id) = confirmed(&demo, &portal, CAGRI, true);
    let r = approve(&portal, &cagri_token, json!({ "v": 1, "method": "e-onay" }));
    assert_eq!(expect(&r, 409)["error"]["code"], "conflict");
    consent(&demo, CAGRI, "EDV-2026-000123");
    let v = expect(
        &approve(&portal, &cagri_token, json!({ "v": 1, "method": "e-onay" })),
        200,
    );
    assert_eq!(
        (
            v["application"]["stage"].as_str(),
            v["application"]["approval_method"].as_str()
        ),
        (Some("approved"), Some("e-onay")),
        "{v}"
    );

    // İpek: a CMS signature over the approval text with her NES; the officer's NES (another
    // person's) is refused.
    let (ipek_token, ipek_id) = confirmed(&demo, &portal, IPEK, false);
    let v = expect(
        &portal.call(
            "GET",
            &format!("{APPLICANTS}/me/approval-text"),
            Some(&ipek_token),
            None,
        ),
        200,
    );
    let text = v["approval_text"].as_str().unwrap().to_owned();
    assert!(text.contains("İpek") && text.contains(IPEK.tckn), "{text}");
    assert_eq!(
        v["approval_text_sha256"],
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    );
    let officer = demo.work.join(format!("officer-{INSTITUTION}"));
    let forged = sign_text(
        &demo,
        &text,
        &officer.with_extension("pem"),
        &officer.with_extension("key"),
        "forged-approval",
    );
    let r = approve(
        &portal,
        &ipek_token,
        json!({ "v": 1, "method": "signature", "signature": b64(&forged) }),
    );
    let e = expect(&r, 422);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another person"),
        "{e}"
    );
    let signed = sign_text(
        &demo,
        &text,
        &ipek_cert,
        &demo.work.join("ipek-nes.key"),
        "ipek-approval",
    );
    let v = expect(
        &approve(
            &portal,
            &ipek_token,
            json!({ "v": 1, "method": "signature", "signature": b64(&signed) }),
        ),
        200,
    );
    assert_eq!(v["application"]["approval_method"], "signature", "{v}");

    // Şükrü: the form as a PDF to sign on paper; approved when an operator records the scan.
    let (sukru_token, sukru_id) = confirmed(&demo, &portal, SUKRU, false);
    let v = expect(
        &approve(&portal, &sukru_token, json!({ "v": 1, "method": "wet" })),
        202,
    );
    let pdf = unb64(v["form_pdf"].as_str().unwrap(), "form_pdf");
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    assert_eq!(v["application"]["stage"], "awaiting_wet");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        applicant(&demo, &sukru_id)["stage"],
        "awaiting_wet",
        "not produced before the paper arrives"
    );
    let scan = demo.work.join("sukru-signed.pdf");
    fs::write(&scan, &pdf).unwrap();
    let v = stdout_json(
        &demo
            .nesca(&[
                "applicant",
                "receive-wet",
                "--config",
                s(&demo.config()),
                "--id",
                &sukru_id,
                "--scan",
                s(&scan),
            ])
            .ok(),
    );
    assert_eq!(v["approval_method"], "wet", "{v}");

    // Production by `nesca serve`: all three, each with its card package.
    for id in [&cagri_id, &ipek_id, &sukru_id] {
        wait_for("production", || {
            let v = applicant(&demo, id);
            (v["stage"] == "produced" && v["package_written"] == true).then_some(())
        });
    }
    let (cagri_serial, _) = check_package(&demo, &world, (&card, &transport), &cagri_id, None);
    let (ipek_serial, ipek_der) = check_package(&demo, &world, (&card, &transport), &ipek_id, None);
    let (sukru_serial, _) = check_package(&demo, &world, (&card, &transport), &sukru_id, None);
    let shown = stdout_json(
        &demo
            .nesca(&[
                "cert",
                "show",
                "--config",
                s(&demo.config()),
                "--serial",
                &cagri_serial,
            ])
            .ok(),
    );
    assert_eq!(shown["tckn"], CAGRI.tckn, "{shown}");
    ocsp_good(
        &demo,
        &server.url(),
        &demo.work.join(format!("{cagri_id}.pem")),
        "cagri-good.der",
    );
    // The application is closed: the access password no longer signs in.
    let r = portal.call(
        "POST",
        &format!("{APPLICANTS}/sign-in"),
        None,
        Some(&json!({ "v": 1, "tckn": CAGRI.tckn, "password": access_password(&demo, CAGRI) })),
    );
    assert_eq!(r.status, 401);

    // The billing report: one line per produced certificate, paid by the institution.
    let out = billing(&demo, &month_now()).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.describe());
    // The header README.md and docs/channels/batch-import.md give, word for word.
    assert_eq!(
        lines[0],
        "produced_at,serial,holder_tckn,holder_name,item,payer,payer_name,payer_id,application"
    );
    for doc in ["../README.md", "../docs/channels/batch-import.md"] {
        let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap();
        assert!(text.contains(&format!("`{}`", lines[0])), "{doc}");
    }
    for serial in [&cagri_serial, &ipek_serial, &sukru_serial] {
        let line = lines
            .iter()
            .find(|l| l.contains(serial.as_str()))
            .unwrap_or_else(|| panic!("{serial}: {}", out.stdout));
        assert!(
            line.contains(&format!(
                "institution,Ankara Büyükşehir Belediyesi,{TAX_NO}"
            )),
            "{line}"
        );
    }
    let bad = billing(&demo, "2026-13");
    assert!(
        !bad.success() && bad.stderr.contains("month"),
        "{}",
        bad.describe()
    );

    // The public lookup shows what holders agreed to: Çağrı chose "do not publish"; İpek
    // agreed for the certificate of her application, not for the NES an operator issued her.
    let r = server.get(&format!("/certificates/{cagri_serial}"));
    assert_eq!(r.status, 404);
    let r = server.get(&format!("/certificates?tckn={}", CAGRI.tckn));
    assert_eq!(body(&r)["certificates"], json!([]));
    let r = server.get(&format!("/certificates/{ipek_serial}"));
    assert_eq!((r.status, r.body == ipek_der), (200, true));
    let r = server.get(&format!("/certificates?tckn={}", IPEK.tckn));
    let list = body(&r);
    assert_eq!(
        list["certificates"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    assert_eq!(server.get("/certificates?tckn=12345678901").status, 400);
    server.assert_running();
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&demo.config())])
        .ok();
    assert!(
        audit.stdout.starts_with("audit log intact"),
        "{}",
        audit.describe()
    );
}

/// `nesca applicant consent`: the person's e-Onay consent recorded with its evidence.
fn consent(demo: &Demo, p: Person, reference: &str) {
    let evidence = demo.work.join(format!("{}-eonay.pdf", p.tckn));
    fs::write(&evidence, b"%PDF-1.4 e-Devlet e-Onay muvafakat").unwrap();
    demo.nesca(&[
        "applicant",
        "consent",
        "--config",
        s(&demo.config()),
        "--tckn",
        p.tckn,
        "--reference",
        reference,
        "--evidence",
        s(&evidence),
    ])
    .ok();
}

/// `nesca billing report` of the test institution for `month`.
fn billing(demo: &Demo, month: &str) -> Output {
    demo.nesca(&[
        "billing",
        "report",
        "--config",
        s(&demo.config()),
        "--institution",
        INSTITUTION,
        "--month",
        month,
    ])
}

/// `nesca production run` with the test clock moved by `offset` seconds.
fn production_run_at(demo: &Demo, offset: i64) -> Value {
    let mut cmd = nesca_command();
    cmd.env("NESCA_TEST_CLOCK_OFFSET_SECONDS", offset.to_string())
        .args(["production", "run", "--config", s(&demo.config())])
        .current_dir(&demo.work);
    stdout_json(&run(cmd).ok())
}

fn unix_now() -> i64 {
    crate::support::now()
}

#[test]
#[cfg_attr(
    not(feature = "test-clock"),
    ignore = "needs the test clock: cargo test --features test-clock (scripts/test.sh sets it)"
)]
fn a_renewal_is_held_until_two_months_before_expiry_then_produced() {
    let card = Card::new("personalisation-2");
    let (demo, world, transport) = setup(&card);
    // Şükrü holds a NES valid for a year: a new application of his is a renewal.
    let csr = demo.csr("sukru-nes", Key::P256);
    demo.issue_as(
        &csr,
        SUKRU.tckn,
        "ŞÜKRÜ",
        "GÜNEŞ",
        &["--validity-days", "365"],
    )
    .ok();
    import_list(&demo, "yenileme", &[SUKRU, CAGRI]);
    let server = Server::serve(&demo);
    let portal = world.client(Some(&world.kdhs_client));

    // Five wrong passwords from a portal that names no address (one source) lock Çağrı's
    // sign-in; then even the right one is refused, with the answer any refusal gets.
    let password = access_password(&demo, CAGRI);
    let wrong = json!({ "v": 1, "tckn": CAGRI.tckn, "password": "wrong-password" });
    for _ in 0..5 {
        let r = portal.call("POST", &format!("{APPLICANTS}/sign-in"), None, Some(&wrong));
        assert_eq!(r.status, 401);
    }
    let right = json!({ "v": 1, "tckn": CAGRI.tckn, "password": password });
    let r = portal.call("POST", &format!("{APPLICANTS}/sign-in"), None, Some(&right));
    assert_eq!(expect(&r, 401)["error"]["code"], "unauthenticated");

    let (token, id) = confirmed(&demo, &portal, SUKRU, false);
    consent(&demo, SUKRU, "EDV-7");
    let v = expect(
        &approve(&portal, &token, json!({ "v": 1, "method": "e-onay" })),
        200,
    );
    let start = v["application"]["produce_after"]
        .as_i64()
        .expect("a renewal is held");
    let days = (start - unix_now()) / 86_400;
    assert!((290..=306).contains(&days), "held for {days} days: {v}");
    // Passes of the production line come and go; the renewal stays held.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(applicant(&demo, &id)["stage"], "approved");
    server.terminate(Duration::from_secs(30));

    // The day before the window: nothing. From its first day: produced.
    let before = production_run_at(&demo, start - unix_now() - 86_400);
    assert_eq!(before["produced"], 0, "{before}");
    let offset = start - unix_now() + 3_600;
    let after = production_run_at(&demo, offset);
    assert_eq!(
        (after["produced"].as_u64(), after["packages"].as_u64()),
        (Some(1), Some(1)),
        "{after}"
    );
    let v = applicant(&demo, &id);
    assert_eq!(v["stage"], "produced", "{v}");
    let serial = v["serial"].as_str().unwrap().to_owned();
    // Valid from the moved clock's day on (checked at that time).
    check_package(
        &demo,
        &world,
        (&card, &transport),
        &id,
        Some(unix_now() + offset + 60),
    );
    // Invoiced in the month it was produced (by the moved clock, Turkey's time).
    let t = time::OffsetDateTime::from_unix_timestamp(unix_now() + offset + 3 * 3_600).unwrap();
    let month = format!("{:04}-{:02}", t.year(), t.month() as u8);
    let out = billing(&demo, &month).ok();
    assert!(
        out.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains(&serial)),
        "{}",
        out.describe()
    );
    let none = billing(&demo, &month_now()).ok();
    assert_eq!(
        none.stdout.lines().count(),
        1,
        "nothing produced this month: {}",
        none.describe()
    );
}

#[test]
fn with_card_bureau_csrs_an_approved_application_waits_for_its_csr() {
    let (demo, world) = setup_with(|_| "key_source = \"card-bureau-csr\"\n".to_owned());
    import_list(&demo, "liste", &[IPEK]);
    let server = Server::serve(&demo);
    let portal = world.client(Some(&world.kdhs_client));
    let (token, id) = confirmed(&demo, &portal, IPEK, false);
    consent(&demo, IPEK, "EDV-9");
    expect(
        &approve(&portal, &token, json!({ "v": 1, "method": "e-onay" })),
        200,
    );
    // Production passes come and go: it waits for the card bureau.
    std::thread::sleep(Duration::from_secs(3));
    let v = applicant(&demo, &id);
    assert_eq!(
        (v["stage"].as_str(), v["card_csr"].as_bool()),
        (Some("approved"), Some(false)),
        "{v}"
    );

    let csr_args = |csr: &Path| {
        vec![
            "production".to_owned(),
            "csr".into(),
            "--config".into(),
            s(&demo.config()).into(),
            "--id".into(),
            id.clone(),
            "--csr".into(),
            s(csr).into(),
        ]
    };
    let garbage = demo.work.join("garbage.csr");
    fs::write(&garbage, b"not a CSR").unwrap();
    let args = csr_args(&garbage);
    let bad = demo.nesca(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        !bad.success() && bad.stderr.contains("csr"),
        "{}",
        bad.describe()
    );
    let csr = demo.csr("bureau", Key::P256);
    let args = csr_args(&csr);
    demo.nesca(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    wait_for("production from the CSR", || {
        let v = applicant(&demo, &id);
        (v["stage"] == "produced" && v["package_written"] == true).then_some(())
    });
    let package: Value = serde_json::from_str(
        &fs::read_to_string(demo.dir.join(format!("production/packages/{id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            package["card_key"].as_str(),
            package["wrapped_key"].is_null()
        ),
        (Some("card-bureau-csr"), true),
        "{package}"
    );
    let cert = demo.work.join("bureau-cert.pem");
    fs::write(&cert, package["certificate_pem"].as_str().unwrap()).unwrap();
    assert_eq!(
        cert_public_key(&cert),
        csr_public_key(&csr, false),
        "the certificate certifies the CSR's key"
    );
    // A CSR for an application already produced is refused.
    let again = demo.nesca(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        !again.success() && again.stderr.contains("produced"),
        "{}",
        again.describe()
    );
    drop(server);
}

/// Sends `request` to `path` from `n` threads at once; returns the statuses, sorted, and the
/// error messages of the refusals.
fn parallel(
    portal: &ChannelClient,
    path: &str,
    token: Option<&str>,
    request: &Value,
    n: usize,
) -> (Vec<u16>, Vec<String>) {
    let answers: Vec<HttpResponse> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| portal.call("POST", path, token, Some(request))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    let rules = answers
        .iter()
        .filter(|r| r.status != 200)
        .map(|r| {
            body(r)["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    (statuses, rules)
}

/// Lockout is no weapon: a guesser's wrong passwords, sent through the portal with the
/// guesser's address, lock that address out of the person's sign-in and nothing else — the
/// person's right password from their own address signs in, and the guesser's (had they
/// learnt it) stays refused. An address that is not one is refused, naming the field.
#[test]
fn a_guesser_locks_out_only_their_own_address() {
    let (demo, world) = setup_with(|_| "key_source = \"card-bureau-csr\"\n".to_owned());
    import_list(&demo, "liste", &[CAGRI]);
    let server = Server::serve(&demo);
    let portal = world.client(Some(&world.kdhs_client));
    let sign_in = format!("{APPLICANTS}/sign-in");
    let password = access_password(&demo, CAGRI);
    let from = |address: &str, password: &str| json!({ "v": 1, "tckn": CAGRI.tckn, "password": password, "client_address": address });
    for _ in 0..5 {
        let r = portal.call(
            "POST",
            &sign_in,
            None,
            Some(&from("2001:db8:1:2::66", "wrong")),
        );
        assert_eq!(r.status, 401, "{}", r.text());
    }
    // The guesser's /64 is locked out, even with the right password.
    let r = portal.call(
        "POST",
        &sign_in,
        None,
        Some(&from("2001:db8:1:2::77", &password)),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    // Çağrı, from home, signs in.
    let v = expect(
        &portal.call("POST", &sign_in, None, Some(&from("192.0.2.7", &password))),
        200,
    );
    assert!(v["token"].is_string(), "{v}");
    for bad in ["not-an-address", "192.0.2.7:443", ""] {
        let r = portal.call("POST", &sign_in, None, Some(&from(bad, &password)));
        assert_eq!(r.status, 422, "{bad}: {}", r.text());
        let e = &body(&r)["error"];
        assert_eq!(e["code"], "invalid", "{e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("client_address: must be"),
            "{e}"
        );
    }
    drop(server);
}

/// Guesses sent in parallel are counted before they are checked: of twelve wrong passwords
/// at once, at most four are checked and answered "wrong" (the fifth locks), the rest are
/// refused as locked, and the right password after them is locked out too. Of nine wrong SMS
/// codes at once, at most two are answered with tries left; the code is then void, and the
/// right code is refused.
#[test]
fn parallel_guesses_are_counted_before_they_are_checked() {
    let (demo, world) = setup_with(|_| "key_source = \"card-bureau-csr\"\n".to_owned());
    import_list(&demo, "liste", &[CAGRI, IPEK]);
    let server = Server::serve(&demo);
    let portal = world.client(Some(&world.kdhs_client));
    let sign_in = format!("{APPLICANTS}/sign-in");

    let password = access_password(&demo, CAGRI);
    let wrong = json!({ "v": 1, "tckn": CAGRI.tckn, "password": "wrong-password" });
    let (statuses, answers) = parallel(&portal, &sign_in, None, &wrong, 12);
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    // Locked now: the right password gets the answer an unknown number gets, word for word.
    let nobody = json!({ "v": 1, "tckn": "10000000146", "password": password });
    let unknown = body(&portal.call("POST", &sign_in, None, Some(&nobody)))["error"].clone();
    let right = json!({ "v": 1, "tckn": CAGRI.tckn, "password": password });
    let r = portal.call("POST", &sign_in, None, Some(&right));
    assert_eq!((r.status, &body(&r)["error"]), (401, &unknown));
    assert!(
        answers
            .iter()
            .all(|m| Some(m.as_str()) == unknown["message"].as_str()),
        "{answers:?} / {unknown}"
    );
    // The operator lifts the lock with a new access password; the new one signs in.
    let cagri = applicant_list(&demo, INSTITUTION)
        .into_iter()
        .find(|a| a["tckn"] == CAGRI.tckn)
        .expect("Çağrı's application");
    assert!(cagri["locked_until"].is_i64(), "{cagri}");
    demo.nesca(&[
        "applicant",
        "resend-password",
        "--config",
        s(&demo.config()),
        "--id",
        cagri["id"].as_str().unwrap(),
    ])
    .ok();
    let renewed = nth_access_password(&demo, CAGRI, 2);
    let r = portal.call(
        "POST",
        &sign_in,
        None,
        Some(&json!({ "v": 1, "tckn": CAGRI.tckn, "password": renewed })),
    );
    expect(&r, 200);

    // İpek signs in, fills the form and gets her code; nine wrong codes race.
    let (token, code) = awaiting_code(&demo, &portal, IPEK);
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    let sms = format!("{APPLICANTS}/me/sms-code");
    let (statuses, rules) = parallel(
        &portal,
        &sms,
        Some(&token),
        &json!({ "v": 1, "code": wrong_code }),
        9,
    );
    assert!(
        !statuses.contains(&200) && statuses.iter().all(|s| [422, 409].contains(s)),
        "{statuses:?}"
    );
    let with_tries_left = rules.iter().filter(|r| r.contains("tries left")).count();
    assert!(with_tries_left <= 2, "{rules:?}");
    let r = portal.call(
        "POST",
        &sms,
        Some(&token),
        Some(&json!({ "v": 1, "code": code })),
    );
    assert_ne!(r.status, 200, "a void code was accepted");
    assert_eq!(body(&r)["error"]["code"], "sms_code_void", "{}", r.text());
    assert!(
        body(&r)["error"]["message"]
            .as_str()
            .is_some_and(|t| t.contains("ask for a new one")),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let v = expect(
        &portal.call("GET", &format!("{APPLICANTS}/me"), Some(&token), None),
        200,
    );
    assert_eq!(v["application"]["stage"], "form", "{v}");
    server.terminate(Duration::from_secs(30));
}

/// `[production] transport_key` must name a registered, active transport key: production
/// refuses to run for an unregistered or withdrawn one, and the old
/// bare-key setting is refused by name.
#[test]
fn production_wraps_only_for_its_registered_transport_key() {
    let card = Card::new("personalisation-2");
    let (_, spki) = card.transport_key();
    let id = hex::encode(sha2::Sha256::digest(&spki));
    let production_id = id.clone();
    let (demo, _world) =
        setup_with(move |_| format!("key_source = \"hsm\"\ntransport_key = \"{production_id}\"\n"));
    let config = demo.config();
    let run = || demo.nesca(&["production", "run", "--config", s(&config)]);
    let out = run();
    assert!(
        !out.success()
            && out.stderr.contains(&format!(
                "production.transport_key: transport key {id} is not registered"
            )),
        "{}",
        out.describe()
    );
    assert_eq!(register_transport_key(&demo, "perso-2", &spki, 365), id);
    run().ok();
    transport_key_cmd(&demo, &["revoke", "--id", &id]).ok();
    let out = run();
    assert!(
        !out.success() && out.stderr.contains("was withdrawn by an operator"),
        "{}",
        out.describe()
    );

    // The bare public-key file of before is no longer a setting.
    let text = fs::read_to_string(&config).unwrap().replace(
        &format!("transport_key = \"{id}\""),
        "transport_public_key = \"t.der\"",
    );
    fs::write(&config, text).unwrap();
    let out = run();
    assert!(
        !out.success() && out.stderr.contains("transport_public_key"),
        "{}",
        out.describe()
    );
}

/// A wrong SMS code, a code made void by three wrong tries and a dead session are three
/// answers a portal tells apart: 422 `sms_code` (type it again, tries left), 409
/// `sms_code_void` (ask for a new one) and 401 `unauthenticated` (sign in again). The new
/// code's request takes an empty body or `{"v":1}`; another field is refused and sends
/// nothing. The wet form can be fetched again while it is awaited, and only then.
#[test]
fn sms_code_refusals_have_codes_of_their_own_and_the_wet_form_comes_again() {
    let (demo, world) = setup_with(|_| "key_source = \"card-bureau-csr\"\n".to_owned());
    import_list(&demo, "liste", &[IPEK]);
    let server = Server::serve(&demo);
    let portal = world.client(Some(&world.kdhs_client));
    let (token, code) = awaiting_code(&demo, &portal, IPEK);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let sms = format!("{APPLICANTS}/me/sms-code");
    let confirm = |code: &str| {
        portal.call(
            "POST",
            &sms,
            Some(&token),
            Some(&json!({ "v": 1, "code": code })),
        )
    };
    let error = |r: &HttpResponse| (r.status, body(r)["error"].clone());
    assert_eq!(
        error(&confirm(wrong)),
        (
            422,
            json!({"code": "sms_code", "message": "sms_code: the code is wrong (tries left: 2)"})
        )
    );
    assert_eq!(
        error(&confirm(wrong)),
        (
            422,
            json!({"code": "sms_code", "message": "sms_code: the code is wrong (tries left: 1)"})
        )
    );
    assert_eq!(
        error(&confirm(wrong)),
        (
            409,
            json!({"code": "sms_code_void", "message": "sms_code: the code is wrong; it is now void after 3 wrong tries: ask for a new one"})
        )
    );
    // The right code after three wrong ones: void, and the session is alive all along.
    let (status, e) = error(&confirm(&code));
    assert_eq!(
        (status, e["code"].as_str()),
        (409, Some("sms_code_void")),
        "{e}"
    );
    let v = expect(
        &portal.call("GET", &format!("{APPLICANTS}/me"), Some(&token), None),
        200,
    );
    assert_eq!(v["application"]["stage"], "form", "{v}");
    // A dead session is another answer.
    let r = portal.call(
        "POST",
        &sms,
        Some("no-such-token"),
        Some(&json!({ "v": 1, "code": code })),
    );
    assert_eq!(
        error(&r),
        (
            401,
            json!({"code": "unauthenticated", "message": "token: no such session, or it expired: sign in again"})
        )
    );

    // A new code: the body is empty or {"v":1}; another field is refused and sends nothing.
    let resend = format!("{APPLICANTS}/me/sms-code/resend");
    let messages_before = messages_to(&demo.dir.join("outbox/sms"), IPEK.mobile).len();
    let outbox_rows = || {
        demo.nesca(&["outbox", "list", "--config", s(&demo.config())])
            .ok()
            .stdout
            .lines()
            .count()
    };
    let rows_before = outbox_rows();
    let r = portal.call(
        "POST",
        &resend,
        Some(&token),
        Some(&json!({ "v": 1, "code": "123456" })),
    );
    let (status, e) = error(&r);
    assert_eq!((status, e["code"].as_str()), (400, Some("request")), "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("code: unknown field here")),
        "{e}"
    );
    assert_eq!(outbox_rows(), rows_before, "a refused resend queued a code");
    let v = expect(
        &portal.call("POST", &resend, Some(&token), Some(&json!({ "v": 1 }))),
        202,
    );
    assert_eq!(v["application"]["stage"], "form", "{v}");
    let code = sms_code(&demo, IPEK, messages_before + 1);
    let v = expect(&confirm(&code), 200);
    assert_eq!(v["application"]["stage"], "confirmed", "{v}");

    // The wet form: only while it is awaited, and the same PDF each time.
    let form_pdf = format!("{APPLICANTS}/me/form-pdf");
    let r = portal.call("GET", &form_pdf, Some(&token), None);
    let (status, e) = error(&r);
    assert_eq!((status, e["code"].as_str()), (409, Some("conflict")), "{e}");
    let v = expect(
        &approve(&portal, &token, json!({ "v": 1, "method": "wet" })),
        202,
    );
    let first = unb64(v["form_pdf"].as_str().unwrap(), "form_pdf");
    for _ in 0..2 {
        let v = expect(&portal.call("GET", &form_pdf, Some(&token), None), 200);
        assert_eq!(
            unb64(v["form_pdf"].as_str().unwrap(), "form_pdf"),
            first,
            "the same form again"
        );
        assert_eq!(v["application"]["stage"], "awaiting_wet", "{v}");
    }
    drop(server);
}
