//! `POST /v1/certificates/{serial}/commitment`: the applicant's signed commitment (taahhütname)
//! for a certificate issued suspended. The host verifies the signature against the new
//! certificate and the commitment's digest, keeps it as evidence, releases the suspension and
//! revokes an overwritten certificate as superseded.

use nesca_plugin_api::{HttpRequest, HttpResponse, LogLevel};
use serde_json::json;

use crate::answer::{b64, json};
use crate::application_request::{parse_body, request_error};
use crate::error::ChannelError;
use crate::fields::Fields;
use crate::identifiers::normalize_serial;
use crate::Channel;

/// Check 1, the body, then the host; 200 with the certificate's new status.
pub(crate) fn handle(
    channel: &Channel,
    request: &HttpRequest,
    path_serial: &str,
) -> Result<HttpResponse, ChannelError> {
    channel.authenticate(request)?;
    let serial = normalize_serial(path_serial).ok_or_else(|| {
        ChannelError::request("serial", "the path's serial must be 1 to 40 hex digits")
    })?;
    let value = parse_body(&request.body)?;
    let signed_commitment =
        Fields::versioned(&value, "", request_error)?.bytes("signed_commitment")?;
    let accepted = channel
        .host
        .submit_commitment(&serial, signed_commitment)
        .map_err(|e| {
            ChannelError::from_host(e, "signed_commitment", |_, field, rule| {
                ChannelError::Commitment { field, rule }
            })
        })?;
    channel.host.log(
        LogLevel::Info,
        &format!("commitment for certificate {} accepted", accepted.serial),
    );
    Ok(json(
        200,
        &json!({
            "v": 1,
            "serial": accepted.serial,
            "status": accepted.status,
            "signed_commitment": b64(&accepted.signed_commitment_der),
            "superseded": accepted.superseded,
            "replayed": accepted.replayed,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::testing::{Fixture, ISSUED_SERIAL};

    fn commit(f: &Fixture, serial: &str, body: &Value, client: Vec<Vec<u8>>) -> (u16, Value) {
        f.call(
            &format!("/v1/certificates/{serial}/commitment"),
            body,
            client,
        )
    }

    #[test]
    fn a_signed_commitment_goes_to_the_host() {
        let f = Fixture::new();
        let body = json!({"v":1,"signed_commitment":"MIIBAA=="});
        let (status, answer) = commit(&f, "7A3F0C11", &body, f.kdhs_client());
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer,
            json!({"v":1,"serial":ISSUED_SERIAL,"status":"active","signed_commitment":"MAk=",
                   "superseded":"0a0a","replayed":false})
        );
        assert_eq!(
            f.host.state().commitments,
            vec![(ISSUED_SERIAL.to_string(), vec![0x30, 0x82, 0x01, 0x00])]
        );
    }

    #[test]
    fn host_refusal_is_commitment() {
        let f = Fixture::new();
        f.host.state().commitment = Err(nesca_plugin_api::HostError::invalid(
            "signed_commitment",
            "the deadline 1767229200 has passed",
        ));
        let (status, answer) = commit(
            &f,
            ISSUED_SERIAL,
            &json!({"v":1,"signed_commitment":"MAA="}),
            f.kdhs_client(),
        );
        assert_eq!(status, 422);
        assert_eq!(
            answer["error"],
            json!({"code":"commitment","message":"signed_commitment: the deadline 1767229200 has passed"})
        );
    }

    #[test]
    fn client_body_and_serial_are_checked_first() {
        let f = Fixture::new();
        let good = json!({"v":1,"signed_commitment":"MAA="});
        let (status, answer) = commit(&f, ISSUED_SERIAL, &good, vec![]);
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some("client_certificate"))
        );
        let (status, answer) = commit(&f, "xyz", &good, f.kdhs_client());
        assert_eq!(status, 400);
        assert_eq!(
            answer["error"]["message"],
            "serial: the path's serial must be 1 to 40 hex digits"
        );
        let (status, answer) = commit(&f, ISSUED_SERIAL, &json!({"v":1}), f.kdhs_client());
        assert_eq!(status, 400);
        assert_eq!(answer["error"]["message"], "signed_commitment: is required");
        let (status, _) = commit(
            &f,
            ISSUED_SERIAL,
            &json!({"v":2,"signed_commitment":"MAA="}),
            f.kdhs_client(),
        );
        assert_eq!(status, 400);
        assert!(f.host.state().commitments.is_empty());
    }
}
