//! `POST /v1/applications`: checks 1 to 11 in the protocol's order, then the application to the
//! host (step 12) and the answer.

use nesca_plugin_api::host_api::{Issued, SubmitApplication};
use nesca_plugin_api::{HostErrorCode, HttpRequest, HttpResponse, LogLevel};
use serde_json::{json, Value};

use crate::answer::{b64, json};
use crate::applicant::Applicant;
use crate::application_request::{ApplicationRequest, KeySource};
use crate::error::ChannelError;
use crate::kdb::Purpose;
use crate::overwrite::check_overwrite;
use crate::Channel;

/// Runs the checks and submits; 201 with the issued certificate, 200 when the KDBO was seen
/// before and this is the first result again.
pub(crate) fn handle(
    channel: &Channel,
    request: &HttpRequest,
) -> Result<HttpResponse, ChannelError> {
    let now = channel.clock.now_unix();
    let client = channel.authenticate(request)?; // 1
    let body = ApplicationRequest::parse(&request.body)?; // 2
    let (kdbo, kdb) = channel.verify_kdbo(&body.kdbo, &client, Purpose::Application, now)?; // 3–6

    // Replays are keyed on the verification, not on the KDBO's bytes (see `Kdb::reference`).
    let reference = kdb.reference(&channel.policy.replay_namespace(&client, &kdbo));
    let applicant = Applicant::verify(
        &body.auth_certificate,
        &body.auth_chain,
        &channel.common.idcard_ca,
        now,
    )?; // 7
    applicant.check_tckn(&kdb.tckn)?; // 8
    channel.policy.check_firmware(
        &channel.common.firmware,
        (&client, &kdbo),
        &body.firmware_sha256,
    )?; // 9
    channel
        .policy
        .check_slots(body.slots, body.overwrite_serial.as_deref())?; // 10
    if let Some(serial) = &body.overwrite_serial {
        check_overwrite(&*channel.host, serial, &kdb.tckn)?; // 11
    }

    let (csr_der, hsm_key) = match body.key {
        KeySource::Csr(der) => (der, None),
        KeySource::Hsm(request) => (Vec::new(), Some(request)),
    };
    let application = SubmitApplication {
        csr_der,
        tckn: kdb.tckn,
        // The NES subject is the authentication certificate's, not anything the partner typed.
        given_name: applicant.given_name,
        surname: applicant.surname,
        validity_days: body.validity_days,
        channel_ref: reference,
        hsm_key,
        commitment: true,
        overwrite_serial: body.overwrite_serial,
        mobile: body.mobile,
        email: body.email,
        security_word: body.security_word,
    };
    let issued = channel.host.submit_application(&application).map_err(|e| {
        ChannelError::from_host(e, "application", |e, field, rule| {
            // The protocol's `validity` is the host's refusal of the requested validity.
            match (e.code, e.field.as_deref()) {
                (HostErrorCode::Invalid, Some("validity_days")) => {
                    ChannelError::Validity { field, rule }
                }
                // The transport key is not one nesca may wrap for (not registered, withdrawn,
                // its certificate not valid now).
                // Only a refusal of the key is: the store or the HSM being down keeps the
                // channel's general refusal, even when it names the field.
                (
                    HostErrorCode::Invalid | HostErrorCode::Refused | HostErrorCode::NotFound,
                    Some("hsm_key.transport_key"),
                ) => ChannelError::TransportKey { field, rule },
                _ => ChannelError::Refused { field, rule },
            }
        })
    })?; // 12
    channel.host.log(
        LogLevel::Info,
        &format!(
            "application {} {} certificate {} (KDBO signed by certificate {})",
            application.channel_ref,
            if issued.replayed {
                "replayed:"
            } else {
                "issued"
            },
            issued.serial,
            kdbo.signer_serial()
        ),
    );
    let status = if issued.replayed { 200 } else { 201 };
    Ok(json(
        status,
        &answer(channel.name(), &application.channel_ref, &issued),
    ))
}

/// The answer body for an issued certificate.
fn answer(channel_name: &str, reference: &str, issued: &Issued) -> Value {
    let wrapped_key = issued.wrapped_key.as_ref().map(|w| {
        json!({"scheme": w.scheme, "wrapped_key": b64(&w.wrapped_key),
               "wrapped_private_key": b64(&w.wrapped_private_key),
               "transport_key": w.transport_key})
    });
    let commitment = issued.commitment.as_ref().map(|c| {
        json!({"text": c.text, "sha256": c.sha256, "deadline": c.deadline,
               "path": format!("/channels/{channel_name}/v1/certificates/{}/commitment", issued.serial)})
    });
    json!({
        "v": 1,
        "application": reference,
        "serial": issued.serial,
        // A host that predates commitments issues active certificates and leaves status out.
        "status": issued.status.as_deref().unwrap_or("active"),
        "certificate": b64(&issued.certificate_der),
        "chain": issued.chain_der.iter().map(|c| b64(c)).collect::<Vec<_>>(),
        "wrapped_key": wrapped_key,
        "commitment": commitment,
        "replayed": issued.replayed,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::answer::b64;
    use crate::testing::{
        issued, kdb, wrapped_key, Fixture, LeafSpec, Pki, ISSUED_SERIAL, NOW, OTHER_TCKN, TCKN,
        TRANSPORT_KEY,
    };

    const PATH: &str = "/v1/applications";

    /// Posts `body` with the KDHS's client chain; the answer's status and JSON.
    fn apply(f: &Fixture, body: &Value) -> (u16, Value) {
        f.call(PATH, body, f.kdhs_client())
    }

    fn assert_refused(f: &Fixture, body: &Value, status: u16, code: &str, message_start: &str) {
        let (got_status, answer) = apply(f, body);
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            (got_status, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{message}"
        );
        assert!(
            message.starts_with(message_start),
            "{message} / {message_start}"
        );
        assert!(
            f.host.state().submitted.is_empty(),
            "a refused application reached the host"
        );
    }

    #[test]
    fn a_good_application_is_submitted_and_answered() {
        let f = Fixture::new();
        let body = f.application_body();
        // The reference's formula is `kdb`'s to test; here it must reach the answer.
        let reference = crate::kdb::Kdb::parse(kdb("application").to_string().as_bytes())
            .unwrap()
            .reference(crate::testing::pki::KDHS_LICENCE);
        let (status, answer) = apply(&f, &body);
        assert_eq!(status, 201, "{answer}");
        assert_eq!(
            answer,
            json!({"v":1,"application":reference,"serial":ISSUED_SERIAL,"status":"suspended",
                   "certificate":b64(&issued().certificate_der),
                   "chain":[b64(&[0x30, 0x01]), b64(&[0x30, 0x02])],
                   "wrapped_key":null,
                   "commitment":{"text":"Taahhütname: …","sha256":"ab".repeat(32),"deadline":NOW + 3600,
                                 "path":format!("/channels/test/v1/certificates/{ISSUED_SERIAL}/commitment")},
                   "replayed":false})
        );
        let submitted = f.host.state().submitted.clone();
        assert_eq!(
            submitted,
            vec![SubmitApplication {
                csr_der: vec![0x30, 0x82, 0x01, 0x0a],
                tckn: TCKN.into(),
                given_name: "Ayşe".into(),
                surname: "Yılmaz".into(),
                validity_days: Some(730),
                channel_ref: reference,
                hsm_key: None,
                commitment: true,
                overwrite_serial: None,
                mobile: None,
                email: None,
                security_word: None,
            }]
        );
        // Nothing personal in the log.
        let logs = f.host.state().logs.clone();
        assert!(
            logs.iter().all(|(_, line)| !line.contains(TCKN)),
            "{logs:?}"
        );
    }

    #[test]
    fn an_hsm_key_and_an_overwrite_travel_to_the_host_and_back() {
        let f = Fixture::new();
        f.host.state().submit = Ok(Issued {
            wrapped_key: Some(wrapped_key()),
            ..issued()
        });
        let mut body = f.application_body();
        body["key"] = json!({"hsm":{"algorithm":"ecdsa-p256","transport_key":TRANSPORT_KEY}});
        body["overwrite_serial"] = json!("0A0A");
        let (status, answer) = apply(&f, &body);
        assert_eq!(status, 201, "{answer}");
        assert_eq!(
            answer["wrapped_key"],
            json!({"scheme":"rsa-oaep-sha1+aes-kwp","wrapped_key":"AQID","wrapped_private_key":"BAUG",
                   "transport_key":TRANSPORT_KEY})
        );
        let s = f.host.state();
        let sent = &s.submitted[0];
        assert!(sent.csr_der.is_empty());
        assert_eq!(
            sent.hsm_key.as_ref().map(|k| k.algorithm.as_str()),
            Some("ecdsa-p256")
        );
        assert_eq!(
            sent.hsm_key.as_ref().map(|k| k.transport_key.as_str()),
            Some(TRANSPORT_KEY)
        );
        assert_eq!(sent.overwrite_serial.as_deref(), Some("0a0a"));
        assert_eq!(s.lookups, vec!["0a0a".to_string()]);
    }

    #[test]
    fn a_replayed_kdbo_answers_200_with_the_first_result() {
        let f = Fixture::new();
        f.host.state().submit = Ok(Issued {
            replayed: true,
            ..issued()
        });
        let (status, answer) = apply(&f, &f.application_body());
        assert_eq!(status, 200);
        assert_eq!(answer["replayed"], true);
    }

    #[test]
    fn host_refusals_are_validity_or_refused() {
        let f = Fixture::new();
        f.host.state().submit = Err(nesca_plugin_api::HostError::invalid(
            "validity_days",
            "4000 is more than the profile's maximum 1095",
        ));
        let (status, answer) = apply(&f, &f.application_body());
        assert_eq!(status, 422);
        assert_eq!(
            answer["error"],
            json!({"code":"validity","message":"validity_days: 4000 is more than the profile's maximum 1095"})
        );
        f.host.state().submit = Err(nesca_plugin_api::HostError::invalid(
            "csr",
            "the signature does not verify",
        ));
        let (status, answer) = apply(&f, &f.application_body());
        assert_eq!(status, 422);
        assert_eq!(
            answer["error"],
            json!({"code":"refused","message":"csr: the signature does not verify"})
        );
    }

    #[test]
    fn a_refused_transport_key_is_its_own_code() {
        let f = Fixture::new();
        let rule = format!("transport key {TRANSPORT_KEY} was withdrawn by an operator");
        f.host.state().submit = Err(nesca_plugin_api::HostError::new(
            nesca_plugin_api::HostErrorCode::Refused,
            "hsm_key.transport_key",
            rule.clone(),
        ));
        let mut body = f.application_body();
        body["key"] = json!({"hsm":{"algorithm":"ecdsa-p256","transport_key":TRANSPORT_KEY}});
        let (status, answer) = apply(&f, &body);
        assert_eq!(status, 422);
        assert_eq!(
            answer["error"],
            json!({"code":"transport_key","message":format!("hsm_key.transport_key: {rule}")})
        );
        // The store or HSM down while the key was looked at is not the key's fault: the
        // general refusal, whatever field it names.
        f.host.state().submit = Err(nesca_plugin_api::HostError::new(
            nesca_plugin_api::HostErrorCode::Unavailable,
            "hsm_key.transport_key",
            "temporarily unavailable",
        ));
        let (status, answer) = apply(&f, &body);
        assert_eq!(
            (status, &answer["error"]["code"]),
            (422, &json!("refused")),
            "{answer}"
        );
    }

    #[test]
    fn check_1_no_client_certificate() {
        let f = Fixture::new();
        let (status, answer) = f.call(PATH, &f.application_body(), vec![]);
        assert_eq!(status, 401);
        assert_eq!(answer["error"]["code"], "client_certificate");
    }

    #[test]
    fn check_2_ill_formed_body() {
        let f = Fixture::new();
        let mut body = f.application_body();
        body["key"] =
            json!({"csr":"MAM=","hsm":{"algorithm":"ecdsa-p256","transport_key":TRANSPORT_KEY}});
        assert_refused(&f, &body, 400, "request", "key: exactly one of csr or hsm");
    }

    #[test]
    fn check_3_bad_signature() {
        let f = Fixture::new();
        let pki = Pki::get();
        let tampered = pki.kdhs_signer.sign_with_wrong_digest(
            kdb("application").to_string().as_bytes(),
            std::slice::from_ref(&pki.kdhs_sub.cert),
        );
        assert_refused(
            &f,
            &f.application_body_with(&tampered),
            422,
            "kdbo_signature",
            "kdbo: ",
        );
    }

    #[test]
    fn check_4_untrusted_signer() {
        let f = Fixture::new();
        let kdbo = f.kec_kdbo(&kdb("application"));
        assert_refused(
            &f,
            &f.application_body_with(&kdbo),
            422,
            "kdbo_signer",
            "kdbo: the signer certificate does not chain to a test anchor",
        );
    }

    #[test]
    fn check_5_not_a_kdb_or_wrong_purpose() {
        let f = Fixture::new();
        let not_kdb = f.kdhs_kdbo(&json!({"v":1,"hello":"world"}));
        assert_refused(
            &f,
            &f.application_body_with(&not_kdb),
            422,
            "kdb",
            "kdb.kdb_id: is required",
        );
        let mut revoke = kdb("revoke");
        revoke["serial"] = json!("0a0a");
        let wrong = f.kdhs_kdbo(&revoke);
        assert_refused(
            &f,
            &f.application_body_with(&wrong),
            422,
            "kdb",
            "kdb.purpose: must be \"application\" here, not \"revoke\"",
        );
    }

    #[test]
    fn check_6_old_kdb() {
        let f = Fixture::new();
        let mut old = kdb("application");
        old["verified_at"] = json!(NOW - 125 * 60);
        assert_refused(
            &f,
            &f.application_body_with(&f.kdhs_kdbo(&old)),
            422,
            "kdb_age",
            "kdb.verified_at: the identity was verified 125 minutes ago; at most 15 minutes are accepted",
        );
    }

    #[test]
    fn check_7_authentication_certificate_of_another_ca() {
        let f = Fixture::new();
        let mut body = f.application_body();
        body["auth_certificate"] = json!(b64(&Pki::get().kdhs_tls.cert));
        assert_refused(
            &f,
            &body,
            422,
            "auth_certificate",
            "auth_certificate: does not verify",
        );
    }

    #[test]
    fn check_8_kdb_for_another_person() {
        let f = Fixture::new();
        let mut other = kdb("application");
        other["tckn"] = json!(OTHER_TCKN);
        assert_refused(
            &f,
            &f.application_body_with(&f.kdhs_kdbo(&other)),
            422,
            "tckn_mismatch",
            "kdb.tckn: differs from the T.C. Kimlik No of auth_certificate",
        );
    }

    #[test]
    fn check_9_unknown_firmware() {
        let f = Fixture::new();
        let mut body = f.application_body();
        body["firmware_sha256"] = json!("00".repeat(32));
        assert_refused(
            &f,
            &body,
            422,
            "firmware",
            "firmware_sha256: is not the digest of an approved KEC firmware",
        );
        // Case does not matter for an approved one.
        let mut upper = f.application_body();
        upper["firmware_sha256"] = json!(crate::testing::FIRMWARE.to_uppercase());
        assert_eq!(apply(&f, &upper).0, 201);
    }

    #[test]
    fn check_11_overwrite_of_anothers_certificate() {
        let f = Fixture::new();
        f.host.state().certificates.insert(
            "0b0b".into(),
            crate::testing::certificate_info("0b0b", Some(OTHER_TCKN), "active"),
        );
        let mut body = f.application_body();
        body["overwrite_serial"] = json!("0b0b");
        assert_refused(
            &f,
            &body,
            422,
            "overwrite",
            "overwrite_serial: certificate 0b0b belongs to another person",
        );
    }

    #[test]
    fn checks_run_in_the_protocols_order() {
        // An old KDB for another person with bad firmware: the age (6) is reported, not 8 or 9.
        let f = Fixture::new();
        let mut bad = kdb("application");
        bad["verified_at"] = json!(NOW - 3600);
        bad["tckn"] = json!(OTHER_TCKN);
        let mut body = f.application_body_with(&f.kdhs_kdbo(&bad));
        body["firmware_sha256"] = json!("00".repeat(32));
        assert_refused(&f, &body, 422, "kdb_age", "kdb.verified_at");
        // Expired authentication certificate for the right person with bad firmware: 7 first.
        let expired = Pki::get().idcard_sub.issue(&LeafSpec {
            not_after: NOW - 10,
            ..LeafSpec::person(TCKN, "Ayşe", "Yılmaz")
        });
        let mut body = f.application_body();
        body["auth_certificate"] = json!(b64(&expired.cert));
        body["firmware_sha256"] = json!("00".repeat(32));
        assert_refused(&f, &body, 422, "auth_certificate", "auth_certificate");
    }
}
