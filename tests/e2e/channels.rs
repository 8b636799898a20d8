//! The identity-card front channels end to end: `nesca serve` with the `kdhs` and `kec`
//! plugins loaded behind the mTLS channel listener, driven as a KDHS and a KEC would drive
//! them (protocol v1), checked with `openssl` (OCSP, verify, cms) and `nesca cert show|list`.
//! The world around the CA (ID-card CA, KDHS, partners, the card token) is in support/idcard/.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::Digest as _;

use crate::support::http::HttpResponse;
use crate::support::idcard::*;
use crate::support::ocsp::{ocsp_good, ocsp_revoked};
use crate::support::outbox::{addressed_to, code_after, is_code};
use crate::support::partner::withdraw_partner_cert;
use crate::support::server::{server_demo, Server};
use crate::support::*;

const KDHS_APPLY: &str = "/channels/kdhs/v1/applications";
const KEC_APPLY: &str = "/channels/kec/v1/applications";
const KEC_LIFECYCLE: &str = "/channels/kec/v1/lifecycle";

/// A demo CA for the server tests (`server_demo`) in the world of [`World::new`]: partners,
/// `[channels]` and both plugins configured, not yet serving.
#[track_caller]
fn channel_demo(options: Options) -> (Demo, World) {
    let demo = server_demo();
    let world = World::new(&demo, options);
    (demo, world)
}

/// An application body (protocol v1) with the approved firmware.
fn application(world: &World, kdbo: &[u8], auth: &[u8], key: Value) -> Value {
    json!({
        "v": 1,
        "kdbo": b64(kdbo),
        "firmware_sha256": world.firmware,
        "auth_certificate": b64(auth),
        "key": key,
    })
}

/// `{"csr": …}` for a card CSR.
fn csr_key(csr: &CardCsr) -> Value {
    json!({ "csr": b64(&csr.der) })
}

/// A KDHS application of `who` with a fresh KDBO signed by the KDHS and a new card CSR.
fn kdhs_application(world: &World, who: Person, auth: &[u8]) -> (Value, CardCsr) {
    let csr = world.card_csr();
    let kdbo = world.kdbo(&world.kdhs, &world.kdb("application", who, None));
    (application(world, &kdbo, auth, csr_key(&csr)), csr)
}

/// The answer's JSON; panics (showing the answer and the server) unless it is a JSON object
/// with `"v": 1`.
#[track_caller]
fn answer_json(r: &HttpResponse, server: &Server) -> Value {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "the answer is not JSON ({e}): {}\n{}",
            r.describe(),
            server.describe()
        )
    });
    assert_eq!(v["v"], 1, "the answer has no \"v\":1: {}", r.describe());
    v
}

/// The answer's JSON (see [`answer_json`]) after checking its status; panics with `what`,
/// the answer and the server otherwise.
#[track_caller]
fn expect_answer(r: &HttpResponse, status: u16, what: &str, server: &Server) -> Value {
    assert_eq!(
        r.status,
        status,
        "{what}: {}\n{}",
        r.describe(),
        server.describe()
    );
    answer_json(r, server)
}

/// Whether `s` is non-empty lower-case hex.
fn is_lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// An issued application as the channel answered it.
struct Issued {
    answer: Value,
    serial: String,
    cert_der: Vec<u8>,
    /// The certificate as PEM in the world directory.
    cert: PathBuf,
    commitment_text: String,
    commitment_path: String,
}

/// Checks a 201 answer to an application on `channel` (`kdhs`/`kec`) field by field, and
/// saves the certificate as `WORLD/NAME.pem`.
#[track_caller]
fn expect_issued(
    r: &HttpResponse,
    channel: &str,
    world: &World,
    name: &str,
    server: &Server,
) -> Issued {
    let v = expect_answer(r, 201, "the application was not issued", server);
    let d = r.describe();
    let application = v["application"].as_str().unwrap_or("");
    assert!(
        application.strip_prefix("kdb-").is_some_and(is_lower_hex),
        "application must be kdb-<hex>: {d}"
    );
    let serial = v["serial"].as_str().unwrap_or("").to_string();
    assert!(is_lower_hex(&serial), "serial must be lower-case hex: {d}");
    assert_eq!(
        v["status"], "suspended",
        "a new certificate waits suspended: {d}"
    );
    assert_eq!(v["replayed"], false, "{d}");
    let cert_der = unb64(v["certificate"].as_str().unwrap_or(""), "certificate");
    let chain = v["chain"].as_array().cloned().unwrap_or_default();
    assert!(!chain.is_empty(), "no chain: {d}");
    for (i, c) in chain.iter().enumerate() {
        let der = unb64(c.as_str().unwrap_or(""), "chain entry");
        assert_eq!(
            der.first(),
            Some(&0x30),
            "chain[{i}] is not a DER certificate: {d}"
        );
    }
    let issuing = crate::support::cert_der(&world.ca_chain.with_file_name("issuing-ca.pem"));
    assert_eq!(
        chain[0].as_str().map(|c| unb64(c, "chain[0]")),
        Some(issuing),
        "chain[0] must be nesca's issuing CA: {d}"
    );
    let cert = write_cert_pem(&world.dir.join(format!("{name}.pem")), &cert_der);
    assert_eq!(
        norm_serial(&cert_serial(&cert)),
        norm_serial(&serial),
        "the answer's serial is not the certificate's: {d}"
    );
    let c = &v["commitment"];
    let text = c["text"].as_str().unwrap_or("").to_string();
    assert!(!text.trim().is_empty(), "no commitment text: {d}");
    assert_eq!(
        c["sha256"].as_str(),
        Some(sha256_hex(text.as_bytes()).as_str()),
        "commitment.sha256 is not the SHA-256 of its text: {d}"
    );
    assert!(
        text.contains(&serial) || text.to_lowercase().contains(&norm_serial(&serial)),
        "the commitment text does not name the certificate {serial}: {text}"
    );
    let deadline = c["deadline"].as_i64().unwrap_or(0);
    assert!(
        deadline > now() - 60,
        "commitment.deadline must lie ahead: {d}"
    );
    let path = c["path"].as_str().unwrap_or("").to_string();
    assert_eq!(
        path,
        format!("/channels/{channel}/v1/certificates/{serial}/commitment"),
        "{d}"
    );
    Issued {
        serial,
        cert_der,
        cert,
        commitment_text: text,
        commitment_path: path,
        answer: v,
    }
}

/// Checks an error answer: `status`, `{"v":1,"error":{"code":CODE,"message":"field: rule"}}`.
/// Returns the message.
#[track_caller]
fn expect_error(r: &HttpResponse, status: u16, code: &str, server: &Server) -> String {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "expected a {status} {code} refusal, the answer is not JSON ({e}): {}\n{}",
            r.describe(),
            server.describe()
        )
    });
    assert!(
        r.status == status && v["v"] == 1 && v["error"]["code"] == code,
        "expected {status} with error code {code:?}: {}\n{}",
        r.describe(),
        server.describe()
    );
    let message = v["error"]["message"].as_str().unwrap_or("").to_string();
    assert!(
        message
            .split_once(": ")
            .is_some_and(|(f, r)| !f.is_empty() && !r.is_empty()),
        "the message must read \"field: rule\": {}",
        r.describe()
    );
    assert!(
        !message.contains("BEGIN") && message.len() < 1000,
        "the message must not carry the request: {}",
        r.describe()
    );
    message
}

/// Sends what `send` sends, expects the refusal (status, code), and that the store's listing
/// is the same before and after: nothing issued, nothing reserved. Returns the message.
#[track_caller]
fn refused(
    demo: &Demo,
    server: &Server,
    what: &str,
    status: u16,
    code: &str,
    send: impl FnOnce() -> Result<HttpResponse, String>,
) -> String {
    let before = demo.cert_list_lines();
    let r = send().unwrap_or_else(|e| panic!("{what}: no HTTP answer: {e}\n{}", server.describe()));
    eprintln!("{what}: {} {}", r.status, r.text());
    let message = expect_error(&r, status, code, server);
    assert_eq!(
        demo.cert_list_lines(),
        before,
        "{what}: the refusal changed the store: {}",
        r.describe()
    );
    message
}

/// `{"v":1,"signed_commitment":…}`.
fn commitment_body(signed: &[u8]) -> Value {
    json!({ "v": 1, "signed_commitment": b64(signed) })
}

/// Checks a 200 answer to a signed commitment for `serial`.
#[track_caller]
fn expect_committed(
    r: &HttpResponse,
    serial: &str,
    signed: &[u8],
    superseded: Option<&str>,
    replayed: bool,
    server: &Server,
) {
    let v = expect_answer(r, 200, "the signed commitment was not accepted", server);
    let d = r.describe();
    assert_eq!(
        v["serial"].as_str().map(norm_serial),
        Some(norm_serial(serial)),
        "{d}"
    );
    assert_eq!(v["status"], "active", "{d}");
    assert_eq!(v["replayed"], replayed, "{d}");
    assert_eq!(
        unb64(
            v["signed_commitment"].as_str().unwrap_or(""),
            "signed_commitment"
        ),
        signed,
        "the answer must return the signed commitment it keeps: {d}"
    );
    match superseded {
        Some(old) => assert_eq!(
            v["superseded"].as_str().map(norm_serial),
            Some(norm_serial(old)),
            "superseded must name the overwritten certificate: {d}"
        ),
        None => assert!(v["superseded"].is_null(), "{d}"),
    }
}

/// The commitment of `issued` signed with the software key of its CSR (`openssl cms`).
fn openssl_commitment(world: &World, issued: &Issued, csr: &CardCsr) -> Vec<u8> {
    let name = world.fresh("commitment");
    cms_sign(
        &world.dir,
        &name,
        &issued.cert,
        &csr.key,
        issued.commitment_text.as_bytes(),
        Content::Detached,
    )
}

/// `nesca cert show`'s status and revocation reason of `serial`.
fn status_of(demo: &Demo, serial: &str) -> (String, Option<String>) {
    let v = demo.cert_show(serial);
    (
        v["status"].as_str().unwrap_or("").to_string(),
        v["revocation"]["reason"].as_str().map(str::to_string),
    )
}

/// The `subject` of a certificate, attribute by attribute with its string type, sorted.
fn subject_attributes(cert: &std::path::Path) -> Vec<String> {
    let mut attrs: Vec<String> = cert_subject_typed(cert)
        .split(',')
        .map(|a| a.trim().to_string())
        .collect();
    attrs.sort();
    attrs
}

/// The fixtures on their own, before any channel: the TCKNs are valid; a KDBO verifies under
/// the KDHS's anchor and carries the KDB, the look-alike's does not; the authentication
/// certificates verify (or not) under the ID-card CA as intended; a commitment signed in
/// software and one built and signed on the card token both verify with `openssl cms`.
#[test]
fn the_identity_card_fixtures_verify_with_openssl() {
    for who in [AYSE, CAGRI] {
        assert!(is_valid_tckn(who.tckn), "{who:?}");
    }
    assert!(!is_valid_tckn("17291716050") && !is_valid_tckn("01234567890"));

    let (_demo, world) = channel_demo(Options::default());

    // A KDBO: attached KDB, signed by the KDHS, verifies under kdhs_trust_anchors only.
    let kdb = world.kdb("application", AYSE, None);
    let kdbo = world.kdbo(&world.kdhs, &kdb);
    let ok = cms_verify(&world.dir, "kdbo-check", &kdbo, None, &world.kdhs_ca.cert);
    assert!(
        ok.success() && ok.stderr.contains("Verification successful"),
        "{}",
        ok.describe()
    );
    let content = std::fs::read_to_string(world.dir.join("kdbo-check.verified")).expect("content");
    assert_eq!(content, kdb.json());
    let kdb_value: Value = serde_json::from_str(&content).expect("the KDB is JSON");
    assert_eq!(kdb_value["tckn"], AYSE.tckn);
    assert_eq!(kdb_value["purpose"], "application");
    let rogue = world.kdbo(&world.rogue_kdhs, &world.kdb("application", AYSE, None));
    let no = cms_verify(&world.dir, "rogue-check", &rogue, None, &world.kdhs_ca.cert);
    assert!(
        !no.success(),
        "the look-alike KDBO verified: {}",
        no.describe()
    );

    // Authentication certificates: C=TR, serialNumber, givenName, surname in UTF-8.
    let auth = write_cert_pem(&world.dir.join("auth-check.pem"), &world.auth_cert(AYSE));
    let attrs = subject_attributes(&auth);
    for want in [
        "C=PRINTABLESTRING:TR".to_string(),
        format!("serialNumber=PRINTABLESTRING:{}", AYSE.tckn),
        format!("GN=UTF8STRING:{}", AYSE.given),
        format!("SN=UTF8STRING:{}", AYSE.surname),
        format!("CN=UTF8STRING:{} {}", AYSE.given, AYSE.surname),
    ] {
        assert!(attrs.contains(&want), "{want} not in {attrs:?}");
    }
    let verify = |cert: &std::path::Path| {
        openssl_may_fail(&[
            "verify",
            "-CAfile",
            s(&world.idcard_ca.cert),
            "-purpose",
            "sslclient",
            s(cert),
        ])
    };
    let out = verify(&auth);
    assert!(out.success(), "{}", out.describe());
    let t = now();
    let expired =
        world
            .idcard_ca
            .auth_cert("auth-expired-check", AYSE, t - 400 * 86400, t - 30 * 86400);
    let expired = write_cert_pem(&world.dir.join("auth-expired-check.pem"), &expired);
    let out = verify(&expired);
    assert!(
        !out.success() && format!("{}{}", out.stdout, out.stderr).contains("expired"),
        "{}",
        out.describe()
    );
    let foreign = world
        .foreign_ca
        .auth_cert("auth-foreign-check", AYSE, t - 300, t + 86400);
    let foreign = write_cert_pem(&world.dir.join("auth-foreign-check.pem"), &foreign);
    assert!(!verify(&foreign).success());

    // A software-key commitment (detached) verifies against its content.
    let soft = world.idcard_ca.issue(
        "soft-signer",
        "/C=TR/CN=soft signer",
        SIGNER_EXT,
        t - 300,
        t + 86400,
    );
    let text = "TAAHHÜTNAME\nçalışma metni\n";
    let signed = cms_sign(
        &world.dir,
        "soft",
        &soft.cert,
        &soft.key,
        text.as_bytes(),
        Content::Detached,
    );
    let out = cms_verify(
        &world.dir,
        "soft",
        &signed,
        Some(text.as_bytes()),
        &world.idcard_ca.cert,
    );
    assert!(out.success(), "{}", out.describe());

    // The card: a key made on the token, certified (openssl x509 -force_pubkey), signs a
    // detached SignedData built in Rust that openssl verifies; a changed text does not.
    let card = Card::new("fixture-card");
    let (key, public_pem) = card.generate_p256();
    let public = world.dir.join("card-public.pem");
    std::fs::write(&public, public_pem).expect("card public key");
    let any_csr = make_csr(&world.dir, "card-any", Key::P256, false);
    let ext = world.dir.join("card.ext");
    std::fs::write(&ext, format!("[ext]\n{SIGNER_EXT}")).expect("ext");
    let card_cert = world.dir.join("card-cert.pem");
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&any_csr),
        "-CA",
        s(&world.idcard_ca.cert),
        "-CAkey",
        s(&world.idcard_ca.key),
        "-set_serial",
        "0x1c0ffee",
        "-force_pubkey",
        s(&public),
        "-days",
        "1",
        "-extfile",
        s(&ext),
        "-extensions",
        "ext",
        "-out",
        s(&card_cert),
    ]);
    let card_der = cert_der(&card_cert);
    let on_card = card.sign_detached_cms(key, &card_der, text.as_bytes());
    let out = cms_verify(
        &world.dir,
        "card",
        &on_card,
        Some(text.as_bytes()),
        &world.idcard_ca.cert,
    );
    assert!(
        out.success() && out.stderr.contains("Verification successful"),
        "the SignedData made on the card does not verify: {}",
        out.describe()
    );
    let out = cms_verify(
        &world.dir,
        "card-other",
        &on_card,
        Some(b"another text"),
        &world.idcard_ca.cert,
    );
    assert!(!out.success(), "{}", out.describe());
    let digest = sha2::Sha256::digest(b"probe");
    let sig = card.sign_digest(key, &digest);
    cert_key_verifies(&card_der, &digest, &sig).expect("the card key is the certificate's");
}

/// 1, 4, 6: a complete KDHS application with a card CSR; its replay; a second application of
/// the same person overwriting the first.
#[test]
fn kdhs_application_with_a_card_csr_waits_suspended_for_its_commitment() {
    let (demo, world) = channel_demo(Options::default());
    let mut server = Server::serve(&demo);
    let url = server.url();
    let kdhs = world.client(Some(&world.kdhs_client));
    let auth = world.auth_cert(AYSE);

    // --- 1. Apply: 201, suspended, OCSP certificateHold. ---
    let (body, csr) = kdhs_application(&world, AYSE, &auth);
    let before = demo.cert_list().len();
    let r = kdhs.post_ok(KDHS_APPLY, &body);
    let first = expect_issued(&r, "kdhs", &world, "first", &server);
    assert!(first.answer["wrapped_key"].is_null(), "{}", r.describe());
    assert_eq!(demo.cert_list().len(), before + 1, "one certificate issued");
    assert_eq!(status_of(&demo, &first.serial).0, "suspended");
    ocsp_revoked(
        &demo,
        &url,
        &first.cert,
        "certificateHold",
        "first-hold.der",
    );

    // The certificate: the CSR's key, the subject from the authentication certificate,
    // nesca's chain.
    assert_eq!(
        cert_public_key(&first.cert),
        csr_public_key(&csr.path, true),
        "the certificate must certify the card's CSR key"
    );
    let attrs = subject_attributes(&first.cert);
    for want in [
        "C=PRINTABLESTRING:TR".to_string(),
        format!("serialNumber=PRINTABLESTRING:PNOTR-{}", AYSE.tckn),
        format!("GN=UTF8STRING:{}", AYSE.given),
        format!("SN=UTF8STRING:{}", AYSE.surname),
    ] {
        assert!(attrs.contains(&want), "{want} not in the subject {attrs:?}");
    }
    assert_verifies(&demo.dir, &first.cert);

    // --- 4. The same KDBO again: the first answer, replayed, no second certificate. ---
    let listed = demo.cert_list_lines();
    let again = kdhs.post_ok(KDHS_APPLY, &body);
    let v = expect_answer(&again, 200, "a replay answers 200", &server);
    assert_eq!(v["replayed"], true, "{}", again.describe());
    for field in ["serial", "application", "certificate"] {
        assert_eq!(
            v[field],
            first.answer[field],
            "{field}: {}",
            again.describe()
        );
    }
    assert_eq!(demo.cert_list_lines(), listed, "a replay changed the store");
    // The same KDB signed again by the KDHS (a fresh signature: other DER) is the same identity
    // check: replayed too, not a second certificate.
    let first_kdbo = unb64(body["kdbo"].as_str().unwrap(), "kdbo");
    let check = cms_verify(
        &world.dir,
        "resign-check",
        &first_kdbo,
        None,
        &world.kdhs_ca.cert,
    );
    assert!(check.success(), "{}", check.describe());
    let kdb = std::fs::read(world.dir.join("resign-check.verified")).expect("content");
    let resigned = cms_sign(
        &world.dir,
        "resigned",
        &world.kdhs.cert,
        &world.kdhs.key,
        &kdb,
        Content::Attached,
    );
    assert_ne!(resigned, first_kdbo);
    let mut resent = body.clone();
    resent["kdbo"] = Value::from(b64(&resigned));
    let r = kdhs.post_ok(KDHS_APPLY, &resent);
    let v = expect_answer(&r, 200, "a re-signed KDB answers 200", &server);
    assert_eq!(
        (v["replayed"].as_bool(), &v["serial"]),
        (Some(true), &first.answer["serial"]),
        "{}",
        r.describe()
    );
    assert_eq!(
        demo.cert_list_lines(),
        listed,
        "a re-signed KDB changed the store"
    );
    // The KDB written anew for the retry — the same kdb_id and person, another verified_at —
    // and signed again: the same verification, replayed, not a second certificate.
    let mut rewritten: Value = serde_json::from_slice(&kdb).expect("KDB JSON");
    rewritten["verified_at"] = json!(now() - 1);
    let rewritten = cms_sign(
        &world.dir,
        "rewritten",
        &world.kdhs.cert,
        &world.kdhs.key,
        rewritten.to_string().as_bytes(),
        Content::Attached,
    );
    let mut resent = body.clone();
    resent["kdbo"] = Value::from(b64(&rewritten));
    // Even with another key: the first answer stands.
    resent["key"] = csr_key(&world.card_csr());
    let r = kdhs.post_ok(KDHS_APPLY, &resent);
    let v = expect_answer(&r, 200, "a rewritten KDB answers 200", &server);
    assert_eq!(
        (v["replayed"].as_bool(), &v["serial"], &v["application"]),
        (
            Some(true),
            &first.answer["serial"],
            &first.answer["application"]
        ),
        "{}",
        r.describe()
    );
    assert_eq!(
        demo.cert_list_lines(),
        listed,
        "a rewritten KDB changed the store"
    );

    // A commitment over another text, with the right key: refused, still suspended.
    let wrong = cms_sign(
        &world.dir,
        "wrong-text",
        &first.cert,
        &csr.key,
        "başka bir metin".as_bytes(),
        Content::Detached,
    );
    let r = kdhs.post_ok(&first.commitment_path, &commitment_body(&wrong));
    expect_error(&r, 422, "commitment", &server);
    assert_eq!(status_of(&demo, &first.serial).0, "suspended");

    // --- The signed commitment: 200 active, OCSP good. ---
    let signed = openssl_commitment(&world, &first, &csr);
    let r = kdhs.post_ok(&first.commitment_path, &commitment_body(&signed));
    expect_committed(&r, &first.serial, &signed, None, false, &server);
    assert_eq!(
        status_of(&demo, &first.serial),
        ("active".to_string(), None)
    );
    ocsp_good(&demo, &url, &first.cert, "first-good.der");
    // The same commitment again: the first outcome.
    let r = kdhs.post_ok(&first.commitment_path, &commitment_body(&signed));
    expect_committed(&r, &first.serial, &signed, None, true, &server);

    // --- 6. Overwrite: the same person again, overwrite_serial = the first certificate. ---
    let (mut body, csr2) = kdhs_application(&world, AYSE, &auth);
    body["overwrite_serial"] = json!(first.serial);
    let r = kdhs.post_ok(KDHS_APPLY, &body);
    let second = expect_issued(&r, "kdhs", &world, "second", &server);
    assert_ne!(second.serial, first.serial);
    // Until the successor's commitment arrives, the first certificate stays as it is.
    assert_eq!(status_of(&demo, &first.serial).0, "active");
    let signed2 = openssl_commitment(&world, &second, &csr2);
    let r = kdhs.post_ok(&second.commitment_path, &commitment_body(&signed2));
    expect_committed(
        &r,
        &second.serial,
        &signed2,
        Some(&first.serial),
        false,
        &server,
    );
    assert_eq!(
        status_of(&demo, &first.serial),
        ("revoked".to_string(), Some("superseded".to_string()))
    );
    ocsp_revoked(
        &demo,
        &url,
        &first.cert,
        "superseded",
        "first-superseded.der",
    );
    ocsp_good(&demo, &url, &second.cert, "second-good.der");
    assert_verifies(&demo.dir, &second.cert);

    // --- A P-384 card: its CSR, and its commitment signed over SHA-384. ---
    let csr3 = world.card_csr_of(Key::P384);
    let kdbo = world.kdbo(&world.kdhs, &world.kdb("application", AYSE, None));
    let r = kdhs.post_ok(
        KDHS_APPLY,
        &application(&world, &kdbo, &auth, csr_key(&csr3)),
    );
    let third = expect_issued(&r, "kdhs", &world, "third", &server);
    let signed3 = cms_sign_with_digest(
        &world.dir,
        "p384-commitment",
        (&third.cert, &csr3.key),
        third.commitment_text.as_bytes(),
        Content::Detached,
        "sha384",
    );
    let r = kdhs.post_ok(&third.commitment_path, &commitment_body(&signed3));
    expect_committed(&r, &third.serial, &signed3, None, false, &server);
    ocsp_good(&demo, &url, &third.cert, "third-good.der");

    server.assert_running();
}

/// 2: the HSM generates the key and wraps it for the card's RSA transport key; the card
/// unwraps it, its key is the certificate's, and it signs the commitment.
#[test]
fn kdhs_application_with_an_hsm_generated_key_is_unwrapped_and_committed_on_the_card() {
    let (demo, world) = channel_demo(Options::default());
    let mut server = Server::serve(&demo);
    let url = server.url();
    let kdhs = world.client(Some(&world.kdhs_client));
    let card = Card::new("kdhs-card");
    let (transport, transport_spki) = card.transport_key();
    // The card's transport key is one an operator registered (its certificate).
    let transport_id = register_transport_key(&demo, "kdhs-card-transport", &transport_spki, 365);

    let auth = world.auth_cert(AYSE);
    let kdbo = world.kdbo(&world.kdhs, &world.kdb("application", AYSE, None));
    let key = json!({ "hsm": {
        "algorithm": "ecdsa-p256",
        "transport_key": transport_id,
    }});
    let body = application(&world, &kdbo, &auth, key);
    let r = kdhs.post_ok(KDHS_APPLY, &body);
    let issued = expect_issued(&r, "kdhs", &world, "hsm", &server);
    ocsp_revoked(&demo, &url, &issued.cert, "certificateHold", "hsm-hold.der");
    // A retry while the commitment is awaited gets the same card package again.
    let again = kdhs.post_ok(KDHS_APPLY, &body);
    let v = expect_answer(&again, 200, "a replay answers 200", &server);
    assert_eq!(
        (v["replayed"].as_bool(), &v["wrapped_key"]),
        (Some(true), &issued.answer["wrapped_key"]),
        "{}",
        again.describe()
    );

    let w = &issued.answer["wrapped_key"];
    // The answer names the registered key the card key was wrapped for.
    assert_eq!(w["transport_key"], json!(transport_id), "{}", r.describe());
    let scheme = w["scheme"].as_str().unwrap_or("");
    assert!(
        ["rsa-oaep-sha1+aes-kwp", "rsa-oaep-sha256+aes-kwp"].contains(&scheme),
        "wrapped_key.scheme: {}",
        r.describe()
    );
    let private = card.unwrap_ec_key(
        transport,
        scheme,
        &unb64(w["wrapped_key"].as_str().unwrap_or(""), "wrapped_key"),
        &unb64(
            w["wrapped_private_key"].as_str().unwrap_or(""),
            "wrapped_private_key",
        ),
    );
    // The unwrapped key is the certificate's: what it signs verifies with the certificate.
    let digest = sha2::Sha256::digest(b"nesca e2e: the card's key");
    let sig = card.sign_digest(private, &digest);
    cert_key_verifies(&issued.cert_der, &digest, &sig)
        .unwrap_or_else(|e| panic!("the unwrapped key is not the certificate's: {e}"));

    // The commitment, signed on the card; openssl agrees before nesca is asked.
    let signed =
        card.sign_detached_cms(private, &issued.cert_der, issued.commitment_text.as_bytes());
    let out = cms_verify(
        &world.dir,
        "hsm-commitment",
        &signed,
        Some(issued.commitment_text.as_bytes()),
        &world.ca_chain,
    );
    assert!(out.success(), "openssl cms -verify: {}", out.describe());
    let r = kdhs.post_ok(&issued.commitment_path, &commitment_body(&signed));
    expect_committed(&r, &issued.serial, &signed, None, false, &server);
    ocsp_good(&demo, &url, &issued.cert, "hsm-good.der");
    assert_verifies(&demo.dir, &issued.cert);
    assert_eq!(status_of(&demo, &issued.serial).0, "active");

    // Once the card committed, the live certificate's private key is never handed out again:
    // not to the same KDB re-signed, nor to the verification written anew (same kdb_id).
    let kdb_text = {
        let check = cms_verify(&world.dir, "hsm-kdb", &kdbo, None, &world.kdhs_ca.cert);
        assert!(check.success(), "{}", check.describe());
        std::fs::read(world.dir.join("hsm-kdb.verified")).expect("KDB")
    };
    let mut rewritten: Value = serde_json::from_slice(&kdb_text).expect("KDB JSON");
    rewritten["verified_at"] = json!(now());
    let rewritten = cms_sign(
        &world.dir,
        "hsm-rewritten",
        &world.kdhs.cert,
        &world.kdhs.key,
        rewritten.to_string().as_bytes(),
        Content::Attached,
    );
    for (what, kdbo) in [
        ("the same KDBO", kdbo.clone()),
        ("a rewritten KDB", rewritten),
    ] {
        let mut retry = body.clone();
        retry["kdbo"] = json!(b64(&kdbo));
        let message = refused(&demo, &server, what, 422, "refused", || {
            kdhs.post(KDHS_APPLY, &retry)
        });
        assert!(
            message.starts_with("hsm_key: the card key of certificate ")
                && message.contains("only while the certificate awaits its commitment"),
            "{what}: {message}"
        );
    }
    server.assert_running();
}

/// Audit records in the store (`nesca audit verify`, which also checks the chain).
/// The audit log's length once the server's start-up work (due CRLs, the commitment sweep) has
/// written what it writes: the same count twice, a second apart.
fn settled_audit_records(demo: &Demo) -> u64 {
    let mut last = audit_records(demo);
    wait_for(
        "the audit log to settle after start-up",
        Duration::from_secs(15),
        Duration::from_secs(1),
        || {
            let now = audit_records(demo);
            let settled = now == last;
            last = now;
            if settled {
                Ok(now)
            } else {
                Err(format!("{now} records and growing"))
            }
        },
    )
}

fn audit_records(demo: &Demo) -> u64 {
    let out = demo
        .nesca(&["audit", "verify", "--config", s(&demo.config())])
        .ok();
    out.stdout
        .lines()
        .next()
        .unwrap_or_default()
        .strip_prefix("audit log intact: ")
        .and_then(|t| t.strip_suffix(" records"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("audit verify: {}", out.describe()))
}

/// 2b: the HSM wraps a card key only for a transport key an operator
/// registered. A request naming an unregistered key (the portal's own), a withdrawn key or a
/// key whose certificate expired is refused with `transport_key` (422): no key generated, no
/// certificate, no audit record, and the same KDBO is not used up.
#[test]
fn card_keys_are_wrapped_only_for_registered_active_transport_keys() {
    let (demo, world) = channel_demo(Options::default());
    let card = Card::new("attacked-card");
    let (_, registered_spki) = card.transport_key();
    let (_, withdrawn_spki) = card.transport_key();
    let (_, expiring_spki) = card.transport_key();
    let (_, portal_spki) = card.transport_key();
    let registered = register_transport_key(&demo, "perso-line", &registered_spki, 365);
    let withdrawn = register_transport_key(&demo, "old-kec", &withdrawn_spki, 365);
    let expiring = register_transport_key(&demo, "expiring-kec", &expiring_spki, 1);
    let out = transport_key_cmd(&demo, &["revoke", "--id", &withdrawn]).ok();
    assert!(
        out.stdout.contains("\"active\":false"),
        "{}",
        out.describe()
    );
    // Withdrawn for good: neither withdrawn again nor registered again.
    let again = transport_key_cmd(&demo, &["revoke", "--id", &withdrawn]);
    assert!(
        !again.success() && again.stderr.contains("is withdrawn already"),
        "{}",
        again.describe()
    );
    let cert = transport_cert(&demo, "old-kec-again", &withdrawn_spki, 365);
    let again = transport_key_cmd(&demo, &["add", "--name", "again", "--cert", s(&cert)]);
    assert!(
        !again.success() && again.stderr.contains("already exists"),
        "{}",
        again.describe()
    );
    let list = transport_key_cmd(&demo, &["list"]).ok();
    assert_eq!(list.stdout.lines().count(), 3, "{}", list.describe());
    // A key shorter than 2048 bits or not RSA is never registered.
    let ec_cert = demo.work.join("ec-transport.pem");
    self_signed_p256(
        &demo.work.join("ec-transport.key"),
        &ec_cert,
        "/CN=ec",
        30,
        &[],
    );
    let ec = transport_key_cmd(&demo, &["add", "--name", "ec", "--cert", s(&ec_cert)]);
    assert!(
        !ec.success() && ec.stderr.contains("not rsaEncryption"),
        "{}",
        ec.describe()
    );

    // Two days on, the one-day certificate has expired.
    let mut server =
        Server::serve_with_env(&demo, &[("NESCA_TEST_CLOCK_OFFSET_SECONDS", "172800")]);
    let kdhs = world.client(Some(&world.kdhs_client));
    let auth = world.auth_cert(AYSE);
    let kdbo = world.kdbo(&world.kdhs, &world.kdb("application", AYSE, None));
    let hsm_key = |id: &str| json!({"hsm": {"algorithm": "ecdsa-p256", "transport_key": id}});
    let portal = hex::encode(sha2::Sha256::digest(&portal_spki));
    settled_audit_records(&demo);
    for (what, id, rule) in [
        ("the portal's own key", portal.as_str(), "is not registered"),
        (
            "a withdrawn key",
            withdrawn.as_str(),
            "was withdrawn by an operator",
        ),
        (
            "an expired transport certificate",
            expiring.as_str(),
            "expired at",
        ),
    ] {
        let records = audit_records(&demo);
        let message = refused(&demo, &server, what, 422, "transport_key", || {
            kdhs.post(KDHS_APPLY, &application(&world, &kdbo, &auth, hsm_key(id)))
        });
        assert!(
            message.starts_with("hsm_key.transport_key: ")
                && message.contains(&format!("transport key {id}"))
                && message.contains(rule),
            "{what}: {message}"
        );
        assert_eq!(
            audit_records(&demo),
            records,
            "{what}: an audit record was written"
        );
    }
    // A bare key in the request is not an id: refused as ill-formed.
    refused(&demo, &server, "a bare public key", 400, "request", || {
        let key = json!({"hsm": {"algorithm": "ecdsa-p256", "transport_key": b64(&portal_spki)}});
        kdhs.post(KDHS_APPLY, &application(&world, &kdbo, &auth, key))
    });
    // The same KDBO with the registered key: issued, wrapped for that key.
    let r = kdhs.post_ok(
        KDHS_APPLY,
        &application(&world, &kdbo, &auth, hsm_key(&registered)),
    );
    let issued = expect_issued(&r, "kdhs", &world, "registered", &server);
    assert_eq!(
        issued.answer["wrapped_key"]["transport_key"],
        json!(registered)
    );
    // Withdrawn afterwards (leaked, say): a replay of the same application no longer hands
    // the wrapped card key out — also when the replay names another, active key.
    let (_, other_spki) = card.transport_key();
    let other = register_transport_key(&demo, "perso-line-2", &other_spki, 365);
    transport_key_cmd(&demo, &["revoke", "--id", &registered]).ok();
    let message = refused(
        &demo,
        &server,
        "a replay after withdrawal",
        422,
        "transport_key",
        || {
            kdhs.post(
                KDHS_APPLY,
                &application(&world, &kdbo, &auth, hsm_key(&other)),
            )
        },
    );
    assert!(
        message.contains(&format!("transport key {registered}"))
            && message.contains("was withdrawn by an operator"),
        "{message}"
    );
    server.assert_running();
}

/// 3: every refusal of the KDHS channel with its status and code, and nothing issued.
#[test]
fn kdhs_refusals_carry_their_code_and_issue_nothing() {
    let (demo, world) = channel_demo(Options::default());
    // Another person's certificate, to be refused as an overwrite target.
    let other_csr = demo.csr("cagri", Key::P256);
    let other_pem = demo.work.join("cagri.pem");
    let out = demo
        .issue_as(
            &other_csr,
            CAGRI.tckn,
            CAGRI.given,
            CAGRI.surname,
            &["--out", s(&other_pem)],
        )
        .ok();
    let other_serial = single_serial_line(&out);
    let mut server = Server::serve(&demo);
    let kdhs = world.client(Some(&world.kdhs_client));
    let auth = world.auth_cert(AYSE);
    let good = || kdhs_application(&world, AYSE, &auth).0;
    let with_kdb = |kdb: &Kdb, signer: &Signer| {
        let csr = world.card_csr();
        application(&world, &world.kdbo(signer, kdb), &auth, csr_key(&csr))
    };

    // No client certificate: no handshake, or 401.
    let before = demo.cert_list_lines();
    match world.client(None).post(KDHS_APPLY, &good()) {
        Err(e) => eprintln!("no client certificate: refused at the handshake: {e}"),
        Ok(r) => {
            expect_error(&r, 401, "client_certificate", &server);
        }
    }
    assert_eq!(demo.cert_list_lines(), before);

    let unlicensed = world.client(Some(&world.unlicensed_client));
    refused(
        &demo,
        &server,
        "licence not in kdhs_licences",
        401,
        "client_certificate",
        || unlicensed.post(KDHS_APPLY, &good()),
    );
    // The KEC operator is a partner too, but no KDHS.
    let kec = world.client(Some(&world.kec_client));
    refused(
        &demo,
        &server,
        "a KEC operator on the KDHS channel",
        401,
        "client_certificate",
        || kec.post(KDHS_APPLY, &good()),
    );

    refused(&demo, &server, "malformed body", 400, "request", || {
        kdhs.post(
            KDHS_APPLY,
            &json!({"v": 1, "firmware_sha256": world.firmware}),
        )
    });
    refused(&demo, &server, "protocol version 2", 400, "request", || {
        let mut body = good();
        body["v"] = json!(2);
        kdhs.post(KDHS_APPLY, &body)
    });

    refused(
        &demo,
        &server,
        "KDBO of an untrusted signer",
        422,
        "kdbo_signer",
        || {
            kdhs.post(
                KDHS_APPLY,
                &with_kdb(&world.kdb("application", AYSE, None), &world.rogue_kdhs),
            )
        },
    );
    // Another partner's KDBO signer, under the same trust anchor, presented by the licensed
    // KDHS: its serialNumber names another licence (check 4's binding).
    let message = refused(
        &demo,
        &server,
        "KDBO of another partner's signer",
        422,
        "kdbo_signer",
        || {
            kdhs.post(
                KDHS_APPLY,
                &with_kdb(&world.kdb("application", AYSE, None), &world.other_kdhs),
            )
        },
    );
    assert_eq!(
        message,
        "kdbo: the KDBO signing certificate's subject serialNumber must be the TLS client certificate's (the same licensed partner)"
    );

    refused(
        &demo,
        &server,
        "tampered KDBO",
        422,
        "kdbo_signature",
        || {
            let kdb = world.kdb("application", AYSE, None);
            let mut kdbo = world.kdbo(&world.kdhs, &kdb);
            // One character of the signed KDB changed: the kdb_id stays well-formed.
            let id = kdb.kdb_id.as_bytes();
            let at = kdbo
                .windows(id.len())
                .position(|w| w == id)
                .expect("the KDB inside the KDBO");
            kdbo[at + 1] = b'x';
            let csr = world.card_csr();
            kdhs.post(
                KDHS_APPLY,
                &application(&world, &kdbo, &auth, csr_key(&csr)),
            )
        },
    );
    refused(&demo, &server, "not a KDBO", 422, "kdbo_signature", || {
        let csr = world.card_csr();
        kdhs.post(
            KDHS_APPLY,
            &application(&world, b"\x30\x03\x02\x01\x01", &auth, csr_key(&csr)),
        )
    });

    refused(
        &demo,
        &server,
        "a KDB for another purpose",
        422,
        "kdb",
        || {
            let mut kdb = world.kdb("revoke", AYSE, None);
            kdb.serial = Some(other_serial.clone());
            kdhs.post(KDHS_APPLY, &with_kdb(&kdb, &world.kdhs))
        },
    );
    refused(&demo, &server, "stale KDB", 422, "kdb_age", || {
        let mut kdb = world.kdb("application", AYSE, None);
        kdb.verified_at = now() - 2 * 3600;
        kdhs.post(KDHS_APPLY, &with_kdb(&kdb, &world.kdhs))
    });

    refused(
        &demo,
        &server,
        "TCKN mismatch",
        422,
        "tckn_mismatch",
        || {
            kdhs.post(
                KDHS_APPLY,
                &with_kdb(&world.kdb("application", CAGRI, None), &world.kdhs),
            )
        },
    );

    let t = now();
    let foreign = world
        .foreign_ca
        .auth_cert("auth-foreign", AYSE, t - 300, t + 86400);
    let expired = world
        .idcard_ca
        .auth_cert("auth-expired", AYSE, t - 400 * 86400, t - 30 * 86400);
    for (what, cert) in [
        ("auth certificate of a foreign CA", &foreign),
        ("expired auth certificate", &expired),
    ] {
        refused(&demo, &server, what, 422, "auth_certificate", || {
            let (mut body, _) = kdhs_application(&world, AYSE, &auth);
            body["auth_certificate"] = json!(b64(cert));
            kdhs.post(KDHS_APPLY, &body)
        });
    }

    refused(
        &demo,
        &server,
        "firmware not approved",
        422,
        "firmware",
        || {
            let mut body = good();
            body["firmware_sha256"] = json!(sha256_hex(b"nesca test KEC firmware 0.9.9"));
            kdhs.post(KDHS_APPLY, &body)
        },
    );

    refused(
        &demo,
        &server,
        "overwrite of another person's certificate",
        422,
        "overwrite",
        || {
            let mut body = good();
            body["overwrite_serial"] = json!(other_serial);
            kdhs.post(KDHS_APPLY, &body)
        },
    );
    refused(
        &demo,
        &server,
        "overwrite of an unknown certificate",
        422,
        "overwrite",
        || {
            let mut body = good();
            body["overwrite_serial"] = json!("0123456789abcdef01");
            kdhs.post(KDHS_APPLY, &body)
        },
    );
    assert_eq!(status_of(&demo, &other_serial).0, "active");

    // After all this, a good application still goes through.
    let (body, _) = kdhs_application(&world, AYSE, &auth);
    let r = kdhs.post_ok(KDHS_APPLY, &body);
    expect_issued(&r, "kdhs", &world, "after-refusals", &server);

    // A validity above the profile's maximum: checked last, so that a failure of this one
    // (the host's message must name the protocol's field validity_days) hides no other.
    let message = refused(
        &demo,
        &server,
        "validity above the profile",
        422,
        "validity",
        || {
            let mut body = good();
            body["validity_days"] = json!(MAX_VALIDITY_DAYS + 1);
            kdhs.post(KDHS_APPLY, &body)
        },
    );
    assert!(message.starts_with("validity_days:"), "{message}");
    server.assert_running();
}

/// 5: a certificate whose commitment missed its deadline is revoked (cessationOfOperation) by
/// the sweep, and the late commitment is refused.
#[test]
fn a_commitment_after_its_deadline_is_refused_and_the_certificate_revoked() {
    let (demo, world) = channel_demo(Options {
        commitment_deadline_seconds: Some(2),
        commitment_sweep_seconds: Some(1),
    });
    let mut server = Server::serve(&demo);
    let url = server.url();
    let kdhs = world.client(Some(&world.kdhs_client));
    let auth = world.auth_cert(AYSE);
    let (body, csr) = kdhs_application(&world, AYSE, &auth);
    let applied = now();
    let r = kdhs.post_ok(KDHS_APPLY, &body);
    let issued = expect_issued(&r, "kdhs", &world, "late", &server);
    let deadline = issued.answer["commitment"]["deadline"]
        .as_i64()
        .unwrap_or(0);
    assert!(
        (applied..=now() + 3).contains(&deadline),
        "the deadline must be about 2 seconds after the application: {}",
        r.describe()
    );

    wait_for(
        "revocation (cessationOfOperation) after the missed deadline",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || match status_of(&demo, &issued.serial) {
            (s, Some(r)) if s == "revoked" && r == "cessationOfOperation" => Ok(()),
            other => Err(format!("cert show: {other:?}\n{}", server.describe())),
        },
    );
    ocsp_revoked(
        &demo,
        &url,
        &issued.cert,
        "cessationOfOperation",
        "late-revoked.der",
    );

    let signed = openssl_commitment(&world, &issued, &csr);
    let r = kdhs.post_ok(&issued.commitment_path, &commitment_body(&signed));
    expect_error(&r, 422, "commitment", &server);
    assert_eq!(
        status_of(&demo, &issued.serial),
        (
            "revoked".to_string(),
            Some("cessationOfOperation".to_string())
        )
    );
    server.assert_running();
}

/// 7, 8: the KEC channel: slots, overwrite, the operator's role certificates (a revoked one
/// refused), and the holder's own lifecycle requests.
#[test]
fn kec_applications_slots_role_certificates_and_holder_requests() {
    let (demo, world) = channel_demo(Options::default());
    let mut server = Server::serve(&demo);
    let url = server.url();
    let kec = world.client(Some(&world.kec_client));
    let auth = world.auth_cert(AYSE);
    let kec_application = |device: &Signer, slots: Value| {
        let csr = world.card_csr();
        let kdbo = world.kdbo(device, &world.kdb("application", AYSE, None));
        let mut body = application(&world, &kdbo, &auth, csr_key(&csr));
        body["slots"] = slots;
        (body, csr)
    };

    // --- 7. A card with a free slot: issued; its commitment makes it active. ---
    let (body, csr) = kec_application(&world.kec_device, json!({"total": 3, "used": 2}));
    let r = kec.post_ok(KEC_APPLY, &body);
    let first = expect_issued(&r, "kec", &world, "kec-first", &server);
    ocsp_revoked(
        &demo,
        &url,
        &first.cert,
        "certificateHold",
        "kec-first-hold.der",
    );
    let signed = openssl_commitment(&world, &first, &csr);
    let r = kec.post_ok(&first.commitment_path, &commitment_body(&signed));
    expect_committed(&r, &first.serial, &signed, None, false, &server);
    ocsp_good(&demo, &url, &first.cert, "kec-first-good.der");

    // Slots full and no choice: refused. Slots that do not add up: refused.
    refused(
        &demo,
        &server,
        "slots full without overwrite_serial",
        422,
        "slots",
        || {
            kec.post(
                KEC_APPLY,
                &kec_application(&world.kec_device, json!({"total": 3, "used": 3})).0,
            )
        },
    );
    refused(
        &demo,
        &server,
        "more slots used than there are",
        422,
        "slots",
        || {
            kec.post(
                KEC_APPLY,
                &kec_application(&world.kec_device, json!({"total": 3, "used": 4})).0,
            )
        },
    );

    // Slots full, overwriting the first certificate: issued; the commitment supersedes it.
    let (mut body, csr) = kec_application(&world.kec_device, json!({"total": 3, "used": 3}));
    body["overwrite_serial"] = json!(first.serial);
    let r = kec.post_ok(KEC_APPLY, &body);
    let second = expect_issued(&r, "kec", &world, "kec-second", &server);
    let signed = openssl_commitment(&world, &second, &csr);
    let r = kec.post_ok(&second.commitment_path, &commitment_body(&signed));
    expect_committed(
        &r,
        &second.serial,
        &signed,
        Some(&first.serial),
        false,
        &server,
    );
    ocsp_revoked(
        &demo,
        &url,
        &first.cert,
        "superseded",
        "kec-first-superseded.der",
    );
    ocsp_good(&demo, &url, &second.cert, "kec-second-good.der");

    // Another device of the same operator signs a KDBO: accepted.
    let (body, _) = kec_application(&world.kec_device_2, json!({"total": 3, "used": 0}));
    let r = kec.post_ok(KEC_APPLY, &body);
    expect_issued(&r, "kec", &world, "kec-device-2", &server);

    // Once the operator revokes that device's role certificate, its KDBOs are refused.
    withdraw_partner_cert(&demo, &world.kec_device_2_serial);
    refused(
        &demo,
        &server,
        "KDBO of a revoked role certificate",
        422,
        "kdbo_signer",
        || {
            kec.post(
                KEC_APPLY,
                &kec_application(&world.kec_device_2, json!({"total": 3, "used": 0})).0,
            )
        },
    );
    // Not a role certificate of nesca's: the KDHS's signer.
    refused(
        &demo,
        &server,
        "KDBO of a signer that is no KEC device",
        422,
        "kdbo_signer",
        || {
            kec.post(
                KEC_APPLY,
                &kec_application(&world.kdhs, json!({"total": 3, "used": 0})).0,
            )
        },
    );
    // The role certificate and the TLS client must be the same licensed operator's: a
    // device of another operator behind this operator's connection, and this operator's
    // device behind the KDHS's connection, are refused.
    refused(
        &demo,
        &server,
        "another operator's device",
        422,
        "kdbo_signer",
        || {
            kec.post(
                KEC_APPLY,
                &kec_application(&world.other_device, json!({"total": 3, "used": 0})).0,
            )
        },
    );
    let kdhs_tls = world.client(Some(&world.kdhs_client));
    refused(
        &demo,
        &server,
        "a KEC device's KDBO over the KDHS's connection",
        422,
        "kdbo_signer",
        || {
            kdhs_tls.post(
                KEC_APPLY,
                &kec_application(&world.kec_device, json!({"total": 3, "used": 0})).0,
            )
        },
    );

    // --- 8. Holder requests through the KEC, on the second (active) certificate. ---
    let lifecycle = |who: Person, action: &'static str, reason: Option<&str>| {
        let kdbo = world.kdbo(
            &world.kec_device,
            &world.kdb(action, who, Some(&second.serial)),
        );
        let mut body =
            json!({"v": 1, "kdbo": b64(&kdbo), "action": action, "serial": second.serial});
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        body
    };
    // Someone else's KDBO: 403 holder, nothing changes.
    let shown = demo.cert_show(&second.serial);
    let r = kec.post_ok(
        KEC_LIFECYCLE,
        &lifecycle(CAGRI, "revoke", Some("keyCompromise")),
    );
    expect_error(&r, 403, "holder", &server);
    assert_eq!(
        demo.cert_show(&second.serial),
        shown,
        "a refused request changed the certificate"
    );
    ocsp_good(&demo, &url, &second.cert, "kec-second-still-good.der");

    // The holder suspends and releases.
    let holder = |body: &Value| {
        let r = kec.post_ok(KEC_LIFECYCLE, body);
        let v = expect_answer(&r, 200, "the holder's request was refused", &server);
        (v, r.describe())
    };
    let (v, d) = holder(&lifecycle(AYSE, "suspend", None));
    assert_eq!(v["status"], "suspended", "{d}");
    ocsp_revoked(
        &demo,
        &url,
        &second.cert,
        "certificateHold",
        "kec-second-hold.der",
    );
    let (v, d) = holder(&lifecycle(AYSE, "unsuspend", None));
    assert_eq!(v["status"], "active", "{d}");
    ocsp_good(&demo, &url, &second.cert, "kec-second-released.der");

    // The holder revokes: 200 revoked, OCSP keyCompromise; the same request again is a replay.
    let body = lifecycle(AYSE, "revoke", Some("keyCompromise"));
    let (v, d) = holder(&body);
    assert!(
        v["status"] == "revoked"
            && v["reason"] == "keyCompromise"
            && v["replayed"] == false
            && v["serial"].as_str().map(norm_serial) == Some(norm_serial(&second.serial))
            && !v["at"].is_null(),
        "{d}"
    );
    ocsp_revoked(
        &demo,
        &url,
        &second.cert,
        "keyCompromise",
        "kec-second-revoked.der",
    );
    let (v, d) = holder(&body);
    assert_eq!(v["replayed"], true, "{d}");
    assert_eq!(
        status_of(&demo, &second.serial),
        ("revoked".to_string(), Some("keyCompromise".to_string()))
    );
    server.assert_running();
}

/// An issuing CA revoked while `nesca serve` runs (`nesca ca revoke`, no restart): the
/// partner certificates it issued no longer reach the channels — refused at the handshake or
/// per request — and nothing more is issued.
#[test]
fn a_ca_revoked_while_serving_refuses_its_partners_at_once() {
    let (demo, world) = channel_demo(Options::default());
    let mut server = Server::serve(&demo);
    let kdhs = world.client(Some(&world.kdhs_client));
    let auth = world.auth_cert(AYSE);
    let (body, _) = kdhs_application(&world, AYSE, &auth);
    expect_issued(
        &kdhs.post_ok(KDHS_APPLY, &body),
        "kdhs",
        &world,
        "before",
        &server,
    );
    demo.nesca(&[
        "ca",
        "revoke",
        "--config",
        s(&demo.config()),
        "--ca",
        "nes-ca",
        "--reason",
        "cACompromise",
    ])
    .ok();
    let before = demo.cert_list_lines();
    let (again, _) = kdhs_application(&world, AYSE, &auth);
    match kdhs.post(KDHS_APPLY, &again) {
        Err(e) => eprintln!("refused at the handshake: {e}"),
        Ok(r) => assert!(
            r.status == 401 || r.status == 403,
            "a partner of a revoked CA must be refused: {}",
            r.describe()
        ),
    }
    assert_eq!(demo.cert_list_lines(), before, "nothing issued");
    server.assert_running();
}

/// The text of a holder's sign-in SMS before its six-digit code (docs/portal.md).
const PORTAL_CODE_MARK: &str = "giris kodunuz: ";
/// What every refused holder sign-in starts with.
const PORTAL_SIGN_IN_REFUSED: &str = "T.C. Kimlik No veya güvenlik sözcüğü hatalı";

/// A browser-less session with the portal: `curl` with a cookie jar of its own, the portal's
/// certificate verified against the demo's chain, redirects not followed.
struct PortalSession {
    base: String,
    ca: PathBuf,
    jar: PathBuf,
    body: PathBuf,
}

impl PortalSession {
    fn new(demo: &Demo, server: &Server, name: &str) -> PortalSession {
        let jar = demo.work.join(format!("{name}.cookies"));
        std::fs::write(&jar, "").expect("cookie jar");
        PortalSession {
            base: format!("https://{}", server.tls_listener_addr("portal")),
            ca: demo.path("ca-chain.pem"),
            jar,
            body: demo.work.join(format!("{name}.html")),
        }
    }

    /// `GET PATH` (no form) or `POST PATH` with `form` (URL-encoded): the status, the
    /// `Location` it redirects to (empty if none) and the body.
    #[track_caller]
    fn call(&self, path: &str, form: Option<&[(&str, &str)]>) -> (u16, String, String) {
        let _ = std::fs::remove_file(&self.body);
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "--cacert", s(&self.ca)])
            .args(["-c", s(&self.jar), "-b", s(&self.jar)])
            .args(["-o", s(&self.body), "-w", "%{http_code} %{redirect_url}"]);
        for (k, v) in form.unwrap_or_default() {
            cmd.args(["--data-urlencode", &format!("{k}={v}")]);
        }
        cmd.arg(format!("{}{path}", self.base));
        let out = run(cmd).ok();
        let (status, location) = out
            .stdout
            .trim()
            .split_once(' ')
            .unwrap_or((&out.stdout, ""));
        let status = status
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl printed no status: {}", out.describe()));
        let body = std::fs::read_to_string(&self.body).unwrap_or_default();
        (status, location.trim().to_string(), body)
    }

    /// The value of the cookie `name` in the jar, if the portal set it.
    fn cookie(&self, name: &str) -> Option<String> {
        let jar = std::fs::read_to_string(&self.jar).expect("cookie jar");
        jar.lines()
            .map(|l| l.strip_prefix("#HttpOnly_").unwrap_or(l))
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .find(|f| f.len() == 7 && f[5] == name)
            .map(|f| f[6].to_string())
    }

    /// The CSRF token the portal set (`__Host-nesca_csrf`).
    #[track_caller]
    fn csrf(&self) -> String {
        self.cookie("__Host-nesca_csrf")
            .unwrap_or_else(|| panic!("no __Host-nesca_csrf cookie in {}", self.jar.display()))
    }
}

/// The SMS files (`NNNNNNNNNN.sms`) in the demo's outbox, by name (the outbox's order).
fn sms_files(demo: &Demo) -> Vec<PathBuf> {
    let mut files = crate::support::outbox::outbox_files(&demo.dir.join("outbox").join("sms"));
    files.retain(|p| p.extension().is_some_and(|e| e == "sms"));
    files
}

/// The sign-in code of the newest SMS to `mobile` (`05…`, written `+905…`) that is not one of
/// `seen`, waiting up to 30 s for `nesca serve`'s outbox to write it.
#[track_caller]
fn portal_code(demo: &Demo, server: &Server, mobile: &str, seen: &[PathBuf]) -> String {
    wait_for(
        "the sign-in SMS in outbox/sms",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let files = sms_files(demo);
            files
                .iter()
                .rev()
                .filter(|p| !seen.contains(p))
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .filter(|m| addressed_to(m, mobile))
                .find_map(|m| code_after(&m, PORTAL_CODE_MARK))
                .ok_or_else(|| format!("SMS files: {files:?}\n{}", server.describe()))
        },
    )
}

/// Whether `needle` occurs in `haystack`.
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The files under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The holder's mobile number, e-mail address and security word passed by the KDHS: a
/// malformed one refuses the application and issues nothing; with good ones the certificate is
/// issued (suspended, awaiting its commitment), and the holder signs in to the portal with the
/// word and the SMS code and sees it `Askıda`. The word is kept nowhere in plain text.
#[test]
fn a_channel_passes_the_holders_mobile_and_security_word_for_the_portal() {
    const MOBILE: &str = "05321234567";
    const EMAIL: &str = "ayse.yilmaz@example.com.tr";
    const WORD: &str = "Kestane42Yaprak";

    let (demo, world) = channel_demo(Options::default());
    let config = demo.config();
    let mut text = std::fs::read_to_string(&config).expect("nesca.toml");
    assert_eq!(
        toml_value(&text, "portal", "listen").as_deref(),
        Some("127.0.0.1:0"),
        "the demo's portal listens on a port of its own:\n{text}"
    );
    assert!(!text.contains("\n[outbox]"), "{text}");
    text.push_str("\n[outbox]\ninterval_seconds = 1\n");
    std::fs::write(&config, text).expect("write nesca.toml");

    let mut server = Server::serve(&demo);
    let kdhs = world.client(Some(&world.kdhs_client));
    let auth = world.auth_cert(AYSE);
    // One application (one KDBO, one CSR) throughout: a refused one does not use it up.
    let (body, _csr) = kdhs_application(&world, AYSE, &auth);
    let with = |fields: &[(&str, &str)]| {
        let mut b = body.clone();
        for (k, v) in fields {
            b[*k] = json!(v);
        }
        b
    };

    for (what, fields, field) in [
        (
            "a malformed mobile number",
            vec![("mobile", "12345"), ("security_word", WORD)],
            "mobile",
        ),
        (
            "a malformed e-mail address",
            vec![("mobile", MOBILE), ("email", "not an address")],
            "email",
        ),
        (
            "a security word with a space",
            vec![
                ("mobile", MOBILE),
                ("email", EMAIL),
                ("security_word", "a b"),
            ],
            "security_word",
        ),
    ] {
        let message = refused(&demo, &server, what, 422, "refused", || {
            kdhs.post(KDHS_APPLY, &with(&fields))
        });
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{what}: the message must name {field}: {message}"
        );
        assert!(
            !message.contains(WORD),
            "{what}: the message carries the word"
        );
    }

    // The same application with good fields: issued, suspended awaiting its commitment.
    let good = with(&[
        ("mobile", MOBILE),
        ("email", EMAIL),
        ("security_word", WORD),
    ]);
    let r = kdhs.post_ok(KDHS_APPLY, &good);
    let issued = expect_issued(&r, "kdhs", &world, "with-contact", &server);
    assert_eq!(status_of(&demo, &issued.serial).0, "suspended");

    // The portal, with curl: the sign-in page sets the CSRF cookie.
    let portal = PortalSession::new(&demo, &server, "portal");
    let (status, _, page) = portal.call("/sertifika", None);
    assert_eq!(status, 200, "{page}");
    let csrf = portal.csrf();

    // A wrong word: the sign-in page again, with the refusal, no session.
    let (status, _, page) = portal.call(
        "/sertifika/giris",
        Some(&[
            ("csrf", &csrf),
            ("tckn", AYSE.tckn),
            ("security_word", "Kestane42Yaprax"),
        ]),
    );
    assert!(
        status == 200 && page.contains(PORTAL_SIGN_IN_REFUSED),
        "a wrong word must be refused ({status}): {page}"
    );
    assert_eq!(portal.cookie("__Host-nesca_holder"), None);

    // The word the channel passed: on to the SMS code.
    let seen = sms_files(&demo);
    let (status, location, page) = portal.call(
        "/sertifika/giris",
        Some(&[
            ("csrf", &csrf),
            ("tckn", AYSE.tckn),
            ("security_word", WORD),
        ]),
    );
    assert_eq!(
        status,
        303,
        "the word the channel passed must sign in: {page}\n{}",
        server.describe()
    );
    assert!(
        portal.cookie("__Host-nesca_holder").is_some(),
        "no session cookie after the word (to {location})"
    );
    let code = portal_code(&demo, &server, MOBILE, &seen);
    assert!(is_code(&code), "{code:?}");
    let (status, _, page) =
        portal.call("/sertifika/kod", Some(&[("csrf", &csrf), ("code", &code)]));
    assert_eq!(status, 303, "the SMS code must sign in: {page}");

    // Signed in: the certificate the channel issued, awaiting its commitment.
    let (status, _, page) = portal.call("/sertifika", None);
    assert_eq!(status, 200, "{page}");
    let row = format!("<tr><td><code>{}</code></td><td>", issued.serial);
    let status_cell = page
        .split_once(&row)
        .and_then(|(_, rest)| rest.split_once("</td>"))
        .map(|(cell, _)| cell.to_string())
        .unwrap_or_else(|| panic!("no row for {} on the page:\n{page}", issued.serial));
    assert_eq!(status_cell, "Askıda", "{page}");

    // The word is kept nowhere as it was typed: not in the server's output, not in the store
    // (its argon2id hash is), not anywhere in the CA's directory.
    assert!(
        !server.stderr().contains(WORD) && !server.describe().contains(WORD),
        "the security word appears in the server's output"
    );
    let mut store = Vec::new();
    for f in files_under(&demo.dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !contains_bytes(&bytes, WORD.as_bytes()),
            "the security word is in {} as plain text",
            f.display()
        );
        if f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("nesca.db"))
        {
            store.extend_from_slice(&bytes);
        }
    }
    assert!(
        !store.is_empty() && contains_bytes(&store, b"$argon2id$"),
        "the store (nesca.db*) holds no argon2id hash"
    );

    // A partner replaying an old verification after the commitment must not plant a word and
    // a mobile number (the holder's portal access) on the live certificate: the replay
    // answers, and records nothing.
    let cagri_auth = world.auth_cert(CAGRI);
    let (bare, csr) = kdhs_application(&world, CAGRI, &cagri_auth);
    let r = kdhs.post_ok(KDHS_APPLY, &bare);
    let cagri = expect_issued(&r, "kdhs", &world, "cagri", &server);
    let signed = openssl_commitment(&world, &cagri, &csr);
    let r = kdhs.post_ok(&cagri.commitment_path, &commitment_body(&signed));
    expect_committed(&r, &cagri.serial, &signed, None, false, &server);
    let mut planted = bare.clone();
    planted["mobile"] = json!("05559998877");
    planted["security_word"] = json!("Planted42Word");
    let r = kdhs.post_ok(KDHS_APPLY, &planted);
    let v = expect_answer(&r, 200, "a late replay answers its first result", &server);
    assert_eq!(v["replayed"], true, "{}", r.describe());
    let late = PortalSession::new(&demo, &server, "portal-late");
    let (status, _, _) = late.call("/sertifika", None);
    assert_eq!(status, 200);
    let csrf = late.csrf();
    let (status, _, page) = late.call(
        "/sertifika/giris",
        Some(&[
            ("csrf", &csrf),
            ("tckn", CAGRI.tckn),
            ("security_word", "Planted42Word"),
        ]),
    );
    assert!(
        status == 200 && page.contains(PORTAL_SIGN_IN_REFUSED),
        "a word planted by a late replay signed in ({status}): {page}"
    );
    server.assert_running();
}
