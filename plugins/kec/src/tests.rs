//! The KEC channel end to end in process: its configuration, its own checks (4 and 10), holder
//! lifecycle requests, and the shared flow through it, against a fake host at a fixed time.

use std::path::Path;
use std::sync::Arc;

use nesca_channel_kit::testing::{
    b64, body_json, certificate_info, kdb, post, write_pem, FakeHost, Fixture, LeafSpec, Pki,
    TestCert, FIRMWARE, KEC_OPERATOR, NOW, TCKN,
};
use nesca_channel_kit::{Channel, FixedClock};
use nesca_plugin_api::Plugin;
use serde_json::{json, Value};

use super::*;

fn config(dir: &Path) -> Value {
    let pki = Pki::get();
    json!({
        "device_ca": write_pem(dir, "device.pem", std::slice::from_ref(&pki.nesca_issuing.cert)),
        "idcard_ca": write_pem(dir, "idcard.pem", std::slice::from_ref(&pki.idcard_root.cert)),
        "firmware_sha256": [FIRMWARE],
        "kdb_max_age_minutes": 10,
    })
}

/// The channel on a fake host that knows the KEC role certificate as active.
fn kec(dir: &Path) -> (Channel, Arc<FakeHost>) {
    let host = Arc::new(FakeHost::new());
    let role = &Pki::get().kec_role;
    host.state().certificates.insert(
        role.serial_hex.clone(),
        certificate_info(&role.serial_hex, None, "active"),
    );
    let channel = channel(config(dir), host.clone(), Arc::new(FixedClock(NOW)))
        .expect("a good configuration");
    (channel, host)
}

/// A good KEC application body: the KDBO signed by the role certificate, slots with room.
fn body(f: &Fixture) -> Value {
    let mut body = f.application_body_with(&f.kec_kdbo(&kdb("application")));
    body["slots"] = json!({"total": 3, "used": 1});
    body
}

/// `kdb` signed by `signer` with nesca's issuing CA.
fn signed_by(signer: &TestCert, kdb: &Value) -> Vec<u8> {
    signer.sign_attached(
        kdb.to_string().as_bytes(),
        &[Pki::get().nesca_issuing.cert.clone()],
    )
}

fn apply(channel: &Channel, body: &Value) -> (u16, Value) {
    let f = Fixture::new();
    let r = channel.handle(&post("/v1/applications", body, f.kec_client()));
    (r.status, body_json(&r))
}

fn assert_signer_refused(channel: &Channel, body: &Value, message: &str) {
    let (status, answer) = apply(channel, body);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("kdbo_signer")),
        "{answer}"
    );
    let got = answer["error"]["message"].as_str().unwrap();
    assert!(got.starts_with(message), "{got} / {message}");
}

#[test]
fn an_application_from_a_kec_is_issued() {
    let dir = tempfile::tempdir().unwrap();
    let (channel, host) = kec(dir.path());
    let f = Fixture::new();
    let (status, answer) = apply(&channel, &body(&f));
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        answer["commitment"]["path"],
        "/channels/kec/v1/certificates/7a3f0c11/commitment"
    );
    let s = host.state();
    assert_eq!(s.submitted.len(), 1);
    assert_eq!(s.lookups, vec![Pki::get().kec_role.serial_hex.clone()]);
}

#[test]
fn configuration_refusals_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut licences = config(dir.path());
    licences["kdhs_licences"] = json!(["x"]);
    let e = channel(
        licences,
        Arc::new(FakeHost::new()),
        Arc::new(FixedClock(NOW)),
    )
    .err()
    .unwrap();
    assert!(e.to_string().starts_with("kdhs_licences: is not a configuration key of this channel (known: device_ca, idcard_ca"), "{e}");
    let mut missing = config(dir.path());
    missing.as_object_mut().unwrap().remove("device_ca");
    let e = channel(
        missing,
        Arc::new(FakeHost::new()),
        Arc::new(FixedClock(NOW)),
    )
    .err()
    .unwrap();
    assert_eq!(e.to_string(), "device_ca: is required");
}

#[test]
fn check_4_only_an_active_role_certificate_of_the_same_operator_signs() {
    let dir = tempfile::tempdir().unwrap();
    let (channel, host) = kec(dir.path());
    let f = Fixture::new();
    let pki = Pki::get();
    let application = kdb("application");

    // Signed by a KDHS: not under the device CA.
    let kdhs = f.application_body_with(&f.kdhs_kdbo(&application));
    let mut kdhs_body = kdhs;
    kdhs_body["slots"] = json!({"total": 3, "used": 1});
    assert_signer_refused(
        &channel,
        &kdhs_body,
        "kdbo: the signer certificate does not chain to nesca's device CA (device_ca): ",
    );

    // Signed with the operator's secure-communication certificate: not a role certificate.
    let mut tls_signed = body(&f);
    tls_signed["kdbo"] = json!(b64(&signed_by(&pki.kec_tls, &application)));
    assert_signer_refused(
        &channel,
        &tls_signed,
        "kdbo: the signer must be a KEC role certificate: extendedKeyUsage exactly clientAuth",
    );

    // Another operator's device.
    let mut other = body(&f);
    other["kdbo"] = json!(b64(&signed_by(&pki.other_kec_role, &application)));
    assert_signer_refused(
        &channel,
        &other,
        "kdbo: the role certificate's subject serialNumber must be the TLS client certificate's",
    );

    // A role certificate that nesca does not know, then one that is revoked or suspended.
    let unknown = pki.nesca_issuing.issue(&LeafSpec::role(KEC_OPERATOR));
    let mut unknown_body = body(&f);
    unknown_body["kdbo"] = json!(b64(&signed_by(&unknown, &application)));
    assert_signer_refused(
        &channel,
        &unknown_body,
        &format!(
            "kdbo: the role certificate {} is not known to nesca: ",
            unknown.serial_hex
        ),
    );
    for status in ["revoked", "suspended"] {
        host.state().certificates.insert(
            unknown.serial_hex.clone(),
            certificate_info(&unknown.serial_hex, None, status),
        );
        assert_signer_refused(
            &channel,
            &unknown_body,
            &format!(
                "kdbo: the role certificate {} is {status}; only an active role certificate may sign",
                unknown.serial_hex
            ),
        );
    }
    assert!(host.state().submitted.is_empty());
}

#[test]
fn check_10_slots_are_required_and_a_full_card_needs_a_choice() {
    let dir = tempfile::tempdir().unwrap();
    let (channel, host) = kec(dir.path());
    let f = Fixture::new();
    let mut no_slots = body(&f);
    no_slots.as_object_mut().unwrap().remove("slots");
    let (status, answer) = apply(&channel, &no_slots);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("slots"))
    );

    let mut full = body(&f);
    full["slots"] = json!({"total": 3, "used": 3});
    let (status, answer) = apply(&channel, &full);
    assert_eq!(status, 422);
    assert_eq!(
        answer["error"]["message"],
        "slots: the card's certificate slots are full (3 of 3): overwrite_serial is required"
    );
    assert!(host.state().submitted.is_empty());

    // With the applicant's choice ("0a0a", theirs and active on the fake host) it is issued.
    full["overwrite_serial"] = json!("0a0a");
    let (status, answer) = apply(&channel, &full);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        host.state().submitted[0].overwrite_serial.as_deref(),
        Some("0a0a")
    );
}

#[test]
fn the_holder_suspends_through_the_kec() {
    let dir = tempfile::tempdir().unwrap();
    let (channel, host) = kec(dir.path());
    let f = Fixture::new();
    host.state().lifecycle = Ok(nesca_plugin_api::host_api::LifecycleOutcome {
        status: "suspended".into(),
        at: NOW,
        reason: Some("certificateHold".into()),
        replayed: false,
    });
    let mut suspend = kdb("suspend");
    suspend["serial"] = json!("0a0a");
    let request =
        json!({"v":1,"kdbo":b64(&f.kec_kdbo(&suspend)),"action":"suspend","serial":"0a0a"});
    let r = channel.handle(&post("/v1/lifecycle", &request, f.kec_client()));
    assert_eq!(r.status, 200);
    assert_eq!(
        body_json(&r),
        json!({"v":1,"serial":"0a0a","status":"suspended","at":NOW,"reason":"certificateHold","replayed":false})
    );
    let calls = host.state().lifecycle_calls.clone();
    assert_eq!(
        (calls[0].holder_tckn.as_str(), calls[0].action.as_str()),
        (TCKN, "suspend")
    );

    // The host finds the KDB's person is not the holder.
    host.state().lifecycle = Err("holder_tckn: is not the holder of certificate 0a0a".into());
    let r = channel.handle(&post("/v1/lifecycle", &request, f.kec_client()));
    assert_eq!(r.status, 403);
    assert_eq!(body_json(&r)["error"]["code"], "holder");
}

#[test]
fn the_plugin_is_named_kec() {
    assert_eq!(Kec::NAME, "kec");
    assert_eq!(Kec::VERSION, env!("CARGO_PKG_VERSION"));
}
