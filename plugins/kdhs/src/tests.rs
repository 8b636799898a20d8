//! The KDHS channel end to end in process: its configuration, its own checks (1 and 4), and the
//! shared flow through it, against a fake host at a fixed time.

use std::path::Path;
use std::sync::Arc;

use nesca_channel_kit::testing::{
    body_json, config_refusal, kdb, write_pem, Fixture, KeyUsage, KeyUsages, LeafSpec, Pki,
    FIRMWARE, KDHS_LICENCE, OTHER_KDHS_LICENCE,
};
use nesca_plugin_api::{HttpRequest, Plugin};
use serde_json::{json, Value};

use super::*;

/// A complete configuration whose PEM files are written into `dir`.
fn config(dir: &Path) -> Value {
    let pki = Pki::get();
    json!({
        "kdhs_licences": ["KDHS-LIC-2020-007", KDHS_LICENCE],
        "kdhs_trust_anchors": write_pem(dir, "kdhs.pem", std::slice::from_ref(&pki.kdhs_root.cert)),
        "idcard_ca": write_pem(dir, "idcard.pem", std::slice::from_ref(&pki.idcard_root.cert)),
        "firmware_sha256": [FIRMWARE],
    })
}

/// The channel on a fake host at the tests' `NOW`.
fn kdhs(config: Value) -> Fixture {
    Fixture::from_config(channel, config).expect("a good configuration")
}

fn refusal(config: Value) -> String {
    config_refusal(channel, config)
}

fn apply(f: &Fixture, body: &Value, client: Vec<Vec<u8>>) -> (u16, Value) {
    f.call("/v1/applications", body, client)
}

#[test]
fn an_application_from_a_licensed_kdhs_is_issued() {
    let dir = tempfile::tempdir().unwrap();
    let f = kdhs(config(dir.path()));
    let (status, answer) = apply(&f, &f.application_body(), f.kdhs_client());
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "suspended");
    assert_eq!(
        answer["commitment"]["path"],
        "/channels/kdhs/v1/certificates/7a3f0c11/commitment"
    );
    assert_eq!(f.host.state().submitted.len(), 1);
    assert!(f.host.state().submitted[0].commitment);
}

#[test]
fn configuration_refusals_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = config(dir.path());
    let mut unknown = good.clone();
    unknown["device_ca"] = json!("x.pem");
    assert!(refusal(unknown).starts_with("device_ca: is not a configuration key of this channel (known: kdhs_licences, kdhs_trust_anchors, idcard_ca"));
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("kdhs_licences");
    assert_eq!(refusal(missing), "kdhs_licences: is required");
    let mut empty = good.clone();
    empty["kdhs_licences"] = json!([]);
    assert_eq!(
        refusal(empty),
        "kdhs_licences: must list at least one entry"
    );
    let mut no_file = good.clone();
    no_file["kdhs_trust_anchors"] = json!(dir.path().join("absent.pem"));
    let text = refusal(no_file);
    assert!(
        text.starts_with("kdhs_trust_anchors: cannot read ") && text.contains("absent.pem"),
        "{text}"
    );
    let mut too_old = good;
    too_old["kdb_max_age_minutes"] = json!(2000);
    assert_eq!(
        refusal(too_old),
        "kdb_max_age_minutes: must be a whole number from 1 to 1440"
    );
}

#[test]
fn check_1_only_configured_licences_connect() {
    let dir = tempfile::tempdir().unwrap();
    let f = kdhs(config(dir.path()));
    let pki = Pki::get();
    let unlicensed = pki
        .nesca_issuing
        .issue(&LeafSpec::secure_communication("KDHS-LIC-1999-666"));
    let (status, answer) = apply(&f, &f.application_body(), vec![unlicensed.cert]);
    assert_eq!(status, 401);
    assert_eq!(
        answer["error"],
        json!({"code":"client_certificate",
               "message":"client_certificate: subject serialNumber \"KDHS-LIC-1999-666\" is not a KDHS licence this nesca accepts (kdhs_licences)"})
    );
    let mut nameless_spec = LeafSpec::secure_communication("x");
    nameless_spec.subject.retain(|(oid, _)| *oid != "2.5.4.5");
    let nameless = pki.nesca_issuing.issue(&nameless_spec);
    let (status, answer) = apply(&f, &f.application_body(), vec![nameless.cert]);
    assert_eq!(status, 401);
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("has no subject serialNumber"));
    // The KEC operator's secure-communication certificate is not a KDHS licence either.
    let (status, _) = apply(&f, &f.application_body(), f.kec_client());
    assert_eq!(status, 401);
    assert!(f.host.state().submitted.is_empty());
}

#[test]
fn check_4_the_kdbo_must_be_signed_under_a_kdhs_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let f = kdhs(config(dir.path()));
    // A KEC role certificate is nesca's, not a KDHS's.
    let kec_signed = f.application_body_with(&f.kec_kdbo(&kdb("application")));
    let (status, answer) = apply(&f, &kec_signed, f.kdhs_client());
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("kdbo_signer"))
    );
    assert!(answer["error"]["message"].as_str().unwrap().starts_with(
        "kdbo: the signer certificate does not chain to a KDHS trust anchor (kdhs_trust_anchors): "
    ));
    assert!(f.host.state().submitted.is_empty());
}

/// Check 4's binding: every licensed KDHS shares the trust anchors, so a KDBO is accepted only
/// from the KDHS whose licence its signer carries.
#[test]
fn check_4_the_kdbo_signer_is_the_connecting_kdhss_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut both = config(dir.path());
    both["kdhs_licences"] = json!([KDHS_LICENCE, OTHER_KDHS_LICENCE]);
    let f = kdhs(both);
    let pki = Pki::get();
    let sign = |signer: &nesca_channel_kit::testing::TestCert| {
        f.application_body_with(&signer.sign_attached(
            kdb("application").to_string().as_bytes(),
            std::slice::from_ref(&pki.kdhs_sub.cert),
        ))
    };
    let other_client = || {
        vec![
            pki.nesca_issuing
                .issue(&LeafSpec::secure_communication(OTHER_KDHS_LICENCE))
                .cert,
            pki.nesca_issuing.cert.clone(),
        ]
    };

    // The other KDHS's signer, presented by this KDHS: refused, though both are licensed
    // and the signer chains to the shared anchor.
    let (status, answer) = apply(&f, &sign(&pki.other_kdhs_signer), f.kdhs_client());
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["error"],
        json!({"code":"kdbo_signer",
               "message":"kdbo: the KDBO signing certificate's subject serialNumber must be the TLS client certificate's (the same licensed partner)"})
    );
    // And this KDHS's signer presented by the other.
    let (status, answer) = apply(&f, &sign(&pki.kdhs_signer), other_client());
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("kdbo_signer"))
    );
    assert!(f.host.state().submitted.is_empty());

    // A signer that names no licence at all.
    let mut anonymous = LeafSpec::signer("Anonymous KDBO signer", "x");
    anonymous.subject.retain(|(oid, _)| *oid != "2.5.4.5");
    let anonymous = pki.kdhs_sub.issue(&anonymous);
    let (status, answer) = apply(&f, &sign(&anonymous), f.kdhs_client());
    assert_eq!(status, 422);
    assert_eq!(
        answer["error"]["message"],
        "kdbo: the KDBO signing certificate must carry the partner's licence number in its subject serialNumber"
    );
    assert!(f.host.state().submitted.is_empty());

    // A signer whose keyUsage is for key agreement only.
    let mut agreement = LeafSpec::signer("Key agreement only", KDHS_LICENCE);
    agreement.key_usage = Some(KeyUsage(KeyUsages::KeyAgreement.into()));
    let agreement = pki.kdhs_sub.issue(&agreement);
    let (status, answer) = apply(&f, &sign(&agreement), f.kdhs_client());
    assert_eq!(status, 422);
    assert_eq!(
        answer["error"]["message"],
        "kdbo: the KDBO signing certificate's keyUsage must allow digitalSignature or nonRepudiation"
    );
    assert!(f.host.state().submitted.is_empty());

    // Each KDHS with its own signer is accepted.
    let (status, answer) = apply(&f, &sign(&pki.other_kdhs_signer), other_client());
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = apply(&f, &sign(&pki.kdhs_signer), f.kdhs_client());
    assert_eq!(status, 201, "{answer}");
    // Two KDHSs' verifications with the same kdb_id are two requests, not a replay.
    let refs: Vec<String> = f
        .host
        .state()
        .submitted
        .iter()
        .map(|a| a.channel_ref.clone())
        .collect();
    assert_eq!(refs.len(), 2);
    assert_ne!(refs[0], refs[1]);
}

#[test]
fn the_kdhs_channel_serves_no_lifecycle_requests() {
    let dir = tempfile::tempdir().unwrap();
    let f = kdhs(config(dir.path()));
    let (status, answer) = f.call("/v1/lifecycle", &json!({"v":1}), f.kdhs_client());
    assert_eq!(status, 404);
    assert_eq!(answer["error"]["code"], "not_found");
}

#[test]
fn the_plugin_initialises_through_the_abi_types() {
    use nesca_plugin_api::{Host, HostApi, HostError, LogLevel};

    struct NoHost;
    impl HostApi for NoHost {
        fn call(&self, _: &str, method: &str, _: &[u8]) -> Result<Vec<u8>, HostError> {
            Err(HostError::internal(format!("{method}: not in this test")))
        }
        fn log(&self, _: &str, _: LogLevel, _: &str) {}
    }

    assert_eq!(Kdhs::NAME, "kdhs");
    let host = Host::with_api("kdhs", Arc::new(NoHost));
    let refused = Kdhs::init(json!({"kdhs_licences": ["x"]}), host)
        .err()
        .unwrap();
    assert_eq!(refused.to_string(), "kdhs_trust_anchors: is required");
    // The plugin's own typed error, not its text.
    assert_eq!(
        refused.downcast_ref::<nesca_channel_kit::ChannelError>(),
        Some(&nesca_channel_kit::ChannelError::config(
            "kdhs_trust_anchors",
            "is required"
        ))
    );

    let dir = tempfile::tempdir().unwrap();
    let plugin = Kdhs::init(config(dir.path()), host).unwrap();
    let r = plugin.handle_http(HttpRequest {
        method: "POST".into(),
        path: "/v1/applications".into(),
        query: None,
        headers: vec![],
        body: b"{}".to_vec(),
        client_cert_chain: vec![],
    });
    assert_eq!(r.status, 401);
    assert_eq!(body_json(&r)["error"]["code"], "client_certificate");
}
