//! The KEC channel end to end in process: its configuration, its own checks (4 and 10), holder
//! lifecycle requests, and the shared flow through it, against a fake host at a fixed time.

use std::path::Path;

use nesca_channel_kit::testing::{
    b64, certificate_info, config_refusal, kdb, write_pem, Fixture, LeafSpec, Pki, TestCert,
    FIRMWARE, KEC_OPERATOR, NOW, TCKN,
};
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

/// The channel on a fake host (at [`NOW`]) that knows the KEC role certificate as active.
fn kec(dir: &Path) -> Fixture {
    let f = Fixture::from_config(channel, config(dir)).expect("a good configuration");
    let role = &Pki::get().kec_role;
    f.host.state().certificates.insert(
        role.serial_hex.clone(),
        certificate_info(&role.serial_hex, None, "active"),
    );
    f
}

/// A KEC application body around `kdbo`, with slots with room.
fn body_with(f: &Fixture, kdbo: &[u8]) -> Value {
    let mut body = f.application_body_with(kdbo);
    body["slots"] = json!({"total": 3, "used": 1});
    body
}

/// A good KEC application body: the KDBO signed by the role certificate, slots with room.
fn body(f: &Fixture) -> Value {
    body_with(f, &f.kec_kdbo(&kdb("application")))
}

/// `kdb` signed by `signer` with nesca's issuing CA.
fn signed_by(signer: &TestCert, kdb: &Value) -> Vec<u8> {
    signer.sign_attached(
        kdb.to_string().as_bytes(),
        &[Pki::get().nesca_issuing.cert.clone()],
    )
}

fn apply(f: &Fixture, body: &Value) -> (u16, Value) {
    f.call("/v1/applications", body, f.kec_client())
}

fn assert_signer_refused(f: &Fixture, body: &Value, message: &str) {
    let (status, answer) = apply(f, body);
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
    let f = kec(dir.path());
    let (status, answer) = apply(&f, &body(&f));
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        answer["commitment"]["path"],
        "/channels/kec/v1/certificates/7a3f0c11/commitment"
    );
    let s = f.host.state();
    assert_eq!(s.submitted.len(), 1);
    assert_eq!(s.lookups, vec![Pki::get().kec_role.serial_hex.clone()]);
}

#[test]
fn configuration_refusals_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut licences = config(dir.path());
    licences["kdhs_licences"] = json!(["x"]);
    let e = config_refusal(channel, licences);
    assert!(e.starts_with("kdhs_licences: is not a configuration key of this channel (known: device_ca, operator_firmware, device_firmware, idcard_ca"), "{e}");
    let mut missing = config(dir.path());
    missing.as_object_mut().unwrap().remove("device_ca");
    assert_eq!(config_refusal(channel, missing), "device_ca: is required");
    for (table, message) in [
        (
            json!(["x"]),
            "operator_firmware: must be a table of lists of strings",
        ),
        (
            json!({ KEC_OPERATOR: [] }),
            &format!("operator_firmware.{KEC_OPERATOR}: must list at least one entry"),
        ),
        (
            json!({ KEC_OPERATOR: ["abc"] }),
            &format!(
                "operator_firmware.{KEC_OPERATOR}[0]: must be a SHA-256 digest: 64 hex digits"
            ),
        ),
    ] {
        let mut bad = config(dir.path());
        bad["operator_firmware"] = table;
        assert_eq!(config_refusal(channel, bad), message);
    }
}

/// Check 9 per operator: an operator listed in `operator_firmware` runs only its own firmware,
/// not the shared list's; the others keep the shared list.
#[test]
fn check_9_an_operator_runs_only_its_own_firmware() {
    let dir = tempfile::tempdir().unwrap();
    let own = "0f".repeat(32);
    let mut configured = config(dir.path());
    configured["operator_firmware"] = json!({ KEC_OPERATOR: [own.to_uppercase()] });
    let f = Fixture::from_config(channel, configured).expect("a good configuration");
    let role = &Pki::get().kec_role;
    f.host.state().certificates.insert(
        role.serial_hex.clone(),
        certificate_info(&role.serial_hex, None, "active"),
    );
    // The shared digest is not this operator's.
    let (status, answer) = apply(&f, &body(&f));
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["error"],
        json!({"code":"firmware","message":"firmware_sha256: is not the digest of an approved KEC firmware"})
    );
    assert!(f.host.state().submitted.is_empty());
    // Its own is.
    let mut mine = body(&f);
    mine["firmware_sha256"] = json!(own);
    let (status, answer) = apply(&f, &mine);
    assert_eq!(status, 201, "{answer}");
}

/// Check 9 per device: a device named in `device_firmware` (LICENCE/CN of its role
/// certificate) runs only its own firmware, not its operator's or the shared list's.
#[test]
fn check_9_a_device_runs_only_its_own_firmware() {
    let dir = tempfile::tempdir().unwrap();
    let role = &Pki::get().kec_role;
    let cn = nesca_pkix::subject::subject_attribute(&role.cert, "2.5.4.3")
        .unwrap()
        .unwrap();
    let (device_own, operator_own) = ("0d".repeat(32), "0f".repeat(32));
    let mut configured = config(dir.path());
    configured["operator_firmware"] = json!({ KEC_OPERATOR: [operator_own] });
    configured["device_firmware"] = json!({ format!("{KEC_OPERATOR}/{cn}"): [device_own] });
    let f = Fixture::from_config(channel, configured).expect("a good configuration");
    f.host.state().certificates.insert(
        role.serial_hex.clone(),
        certificate_info(&role.serial_hex, None, "active"),
    );
    for (digest, status) in [
        (FIRMWARE, 422),
        (operator_own.as_str(), 422),
        (device_own.as_str(), 201),
    ] {
        let mut request = body(&f);
        request["firmware_sha256"] = json!(digest);
        let (got, answer) = apply(&f, &request);
        assert_eq!(got, status, "{digest}: {answer}");
    }
    assert_eq!(f.host.state().submitted.len(), 1);

    // A name that is not LICENCE/DEVICE is refused at start.
    for bad in ["KEC-0001", "/KEC-0001", "BTK-KEC-07/"] {
        let mut wrong = config(dir.path());
        wrong["device_firmware"] = json!({ bad: [FIRMWARE] });
        assert!(
            config_refusal(channel, wrong).starts_with(&format!(
                "device_firmware.{bad}: must name a device as LICENCE/DEVICE"
            )),
            "{bad}"
        );
    }
}

#[test]
fn check_4_only_an_active_role_certificate_of_the_same_operator_signs() {
    let dir = tempfile::tempdir().unwrap();
    let f = kec(dir.path());
    let pki = Pki::get();
    let application = kdb("application");

    for (kdbo, message) in [
        // Signed by a KDHS: not under the device CA.
        (
            f.kdhs_kdbo(&application),
            "kdbo: the signer certificate does not chain to nesca's device CA (device_ca): ",
        ),
        // Signed with the operator's secure-communication certificate: not a role certificate.
        (
            signed_by(&pki.kec_tls, &application),
            "kdbo: the signer must be a KEC role certificate: extendedKeyUsage exactly clientAuth",
        ),
        // Another operator's device.
        (
            signed_by(&pki.other_kec_role, &application),
            "kdbo: the role certificate's subject serialNumber must be the TLS client certificate's (the same licensed partner)",
        ),
    ] {
        assert_signer_refused(&f, &body_with(&f, &kdbo), message);
    }

    // A role certificate that nesca does not know, then one that is revoked or suspended.
    let unknown = pki.nesca_issuing.issue(&LeafSpec::role(KEC_OPERATOR));
    let unknown_body = body_with(&f, &signed_by(&unknown, &application));
    assert_signer_refused(
        &f,
        &unknown_body,
        &format!(
            "kdbo: the role certificate {} is not known to nesca: ",
            unknown.serial_hex
        ),
    );
    for status in ["revoked", "suspended"] {
        f.host.state().certificates.insert(
            unknown.serial_hex.clone(),
            certificate_info(&unknown.serial_hex, None, status),
        );
        assert_signer_refused(
            &f,
            &unknown_body,
            &format!(
                "kdbo: the role certificate {} is {status}; only an active role certificate may sign",
                unknown.serial_hex
            ),
        );
    }
    assert!(f.host.state().submitted.is_empty());
}

#[test]
fn check_10_slots_are_required_and_a_full_card_needs_a_choice() {
    let dir = tempfile::tempdir().unwrap();
    let f = kec(dir.path());
    let mut no_slots = body(&f);
    no_slots.as_object_mut().unwrap().remove("slots");
    let (status, answer) = apply(&f, &no_slots);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("slots"))
    );

    let mut full = body(&f);
    full["slots"] = json!({"total": 3, "used": 3});
    let (status, answer) = apply(&f, &full);
    assert_eq!(status, 422);
    assert_eq!(
        answer["error"]["message"],
        "slots: the card's certificate slots are full (3 of 3): overwrite_serial is required"
    );
    assert!(f.host.state().submitted.is_empty());

    // With the applicant's choice ("0a0a", theirs and active on the fake host) it is issued.
    full["overwrite_serial"] = json!("0a0a");
    let (status, answer) = apply(&f, &full);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        f.host.state().submitted[0].overwrite_serial.as_deref(),
        Some("0a0a")
    );
}

#[test]
fn the_holder_suspends_through_the_kec() {
    let dir = tempfile::tempdir().unwrap();
    let f = kec(dir.path());
    f.host.state().lifecycle = Ok(nesca_plugin_api::host_api::LifecycleOutcome {
        status: "suspended".into(),
        at: NOW,
        reason: Some("certificateHold".into()),
        replayed: false,
    });
    let mut suspend = kdb("suspend");
    suspend["serial"] = json!("0a0a");
    let request =
        json!({"v":1,"kdbo":b64(&f.kec_kdbo(&suspend)),"action":"suspend","serial":"0a0a"});
    let (status, answer) = f.call("/v1/lifecycle", &request, f.kec_client());
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"v":1,"serial":"0a0a","status":"suspended","at":NOW,"reason":"certificateHold","replayed":false})
    );
    let calls = f.host.state().lifecycle_calls.clone();
    assert_eq!(
        (calls[0].holder_tckn.as_str(), calls[0].action.as_str()),
        (TCKN, "suspend")
    );

    // The host finds the KDB's person is not the holder.
    f.host.state().lifecycle = Err(nesca_plugin_api::HostError::invalid(
        "holder_tckn",
        "is not the holder of certificate 0a0a",
    ));
    let (status, answer) = f.call("/v1/lifecycle", &request, f.kec_client());
    assert_eq!(status, 403);
    assert_eq!(answer["error"]["code"], "holder");
}

#[test]
fn the_plugin_is_named_kec() {
    assert_eq!(Kec::NAME, "kec");
    assert_eq!(Kec::VERSION, env!("CARGO_PKG_VERSION"));
}

/// Replays are a device's own: two devices of one operator that use the same `kdb_id` for
/// the same person make two requests, never one device receiving the other's answer; the
/// same device sending its KDB again is the same request.
#[test]
fn a_devices_kdb_id_is_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let f = kec(dir.path());
    let pki = Pki::get();
    let mut spec = LeafSpec::role(KEC_OPERATOR);
    for (oid, value) in spec.subject.iter_mut() {
        if *oid == "2.5.4.3" {
            *value = "KEC-0002".into();
        }
    }
    let other_device = pki.nesca_issuing.issue(&spec);
    f.host.state().certificates.insert(
        other_device.serial_hex.clone(),
        certificate_info(&other_device.serial_hex, None, "active"),
    );
    let kdb = kdb("application");
    for signer in [&pki.kec_role, &other_device, &pki.kec_role] {
        let (status, answer) = apply(&f, &body_with(&f, &signed_by(signer, &kdb)));
        assert_eq!(status, 201, "{answer}");
    }
    let refs: Vec<String> = f
        .host
        .state()
        .submitted
        .iter()
        .map(|a| a.channel_ref.clone())
        .collect();
    assert_ne!(refs[0], refs[1], "two devices, two requests");
    assert_eq!(refs[0], refs[2], "one device, one request");
}
