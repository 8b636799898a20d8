//! `POST /v1/lifecycle`: the holder's own revocation, suspension or unsuspension, proven by a
//! fresh KDBO made for that action on that certificate. nesca accepts a revocation only when the
//! holder asks for it; the host refuses when the KDB's person is not the holder.

use nesca_plugin_api::host_api::LifecycleCall;
use nesca_plugin_api::{HttpRequest, HttpResponse, LogLevel};
use serde_json::json;

use crate::answer::json;
use crate::application_request::{parse_body, request_error};
use crate::error::ChannelError;
use crate::fields::Fields;
use crate::identifiers::{normalize_serial, same_serial};
use crate::kdb::Purpose;
use crate::Channel;

/// The RFC 5280 §5.3.1 reasons a holder may give for revoking their certificate through this
/// endpoint (none: unspecified), checked here so that the message lists exactly these; the host
/// applies the same rule (`nesca_ra::portal::HOLDER_REVOCATION_REASONS`). certificateHold and
/// removeFromCRL are the suspension's and its release's; privilegeWithdrawn and the CA
/// compromise reasons are the provider's, not a holder's.
pub(crate) const HOLDER_REVOCATION_REASONS: [&str; 4] = [
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
];

/// A lifecycle body, version 1.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LifecycleRequest {
    kdbo: Vec<u8>,
    action: Purpose,
    /// Lower-case hex.
    serial: String,
    /// RFC 5280 reason name, revoke only.
    reason: Option<String>,
}

impl LifecycleRequest {
    fn parse(body: &[u8]) -> Result<LifecycleRequest, ChannelError> {
        let value = parse_body(body)?;
        let f = Fields::versioned(&value, "", request_error)?;
        let kdbo = f.bytes("kdbo")?;
        let action = match Purpose::parse(f.str("action")?) {
            Some(p) if p != Purpose::Application => p,
            _ => return Err(f.fail("action", "must be one of revoke, suspend, unsuspend")),
        };
        let serial = normalize_serial(f.str("serial")?)
            .ok_or_else(|| f.fail("serial", "must be 1 to 40 hex digits"))?;
        let reason = f.opt_str("reason")?.map(str::to_owned);
        if reason.is_some() && action != Purpose::Revoke {
            return Err(f.fail("reason", "only for revoke"));
        }
        if let Some(r) = reason.as_deref() {
            if !HOLDER_REVOCATION_REASONS.contains(&r) {
                // The message lists exactly what is accepted, not every RFC 5280 name.
                return Err(f.fail(
                    "reason",
                    format!(
                        "must be one of {} (or absent: unspecified)",
                        HOLDER_REVOCATION_REASONS.join(", ")
                    ),
                ));
            }
        }
        Ok(LifecycleRequest {
            kdbo,
            action,
            serial,
            reason,
        })
    }
}

/// Checks 1 to 6 (the KDB made for this action on this certificate), then the host.
pub(crate) fn handle(
    channel: &Channel,
    request: &HttpRequest,
) -> Result<HttpResponse, ChannelError> {
    let now = channel.clock.now_unix();
    let client = channel.authenticate(request)?;
    let body = LifecycleRequest::parse(&request.body)?;
    let (kdbo, kdb) = channel.verify_kdbo(&body.kdbo, &client, body.action, now)?;
    let reference = kdb.reference(&channel.policy.replay_namespace(&client, &kdbo));
    // A KDB proves the holder's wish for one certificate only.
    if !kdb
        .serial
        .as_deref()
        .is_some_and(|s| same_serial(s, &body.serial))
    {
        return Err(ChannelError::kdb(
            "kdb.serial",
            "must be the certificate the request names (serial)",
        ));
    }
    let call = LifecycleCall {
        request_id: reference,
        serial: body.serial.clone(),
        holder_tckn: kdb.tckn,
        action: body.action.as_str().to_owned(),
        reason: body.reason,
        invalidity_date: None,
    };
    let outcome = channel.host.lifecycle(&call).map_err(|e| {
        ChannelError::from_host(e, "lifecycle", |e, field, rule| {
            // The host refuses a KDB person who is not the certificate's holder on its field.
            if e.field.as_deref() == Some("holder_tckn") {
                ChannelError::Holder { field, rule }
            } else {
                ChannelError::Refused { field, rule }
            }
        })
    })?;
    channel.host.log(
        LogLevel::Info,
        &format!(
            "lifecycle {} {} of certificate {}: {} (KDBO signed by certificate {})",
            call.request_id,
            call.action,
            call.serial,
            outcome.status,
            kdbo.signer_serial()
        ),
    );
    Ok(json(
        200,
        &json!({
            "v": 1,
            "serial": call.serial,
            "status": outcome.status,
            "at": outcome.at,
            "reason": outcome.reason,
            "replayed": outcome.replayed,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::answer::b64;
    use crate::testing::{kdb, Fixture, NOW, TCKN};

    fn revoke_kdb(serial: &str) -> Value {
        let mut k = kdb("revoke");
        k["serial"] = json!(serial);
        k
    }

    fn send(f: &Fixture, body: &Value) -> (u16, Value) {
        f.call("/v1/lifecycle", body, f.kdhs_client())
    }

    fn body(kdbo: &[u8], action: &str, serial: &str) -> Value {
        json!({"v":1,"kdbo":b64(kdbo),"action":action,"serial":serial})
    }

    #[test]
    fn the_holders_revocation_reaches_the_host() {
        let f = Fixture::new();
        let kdbo = f.kdhs_kdbo(&revoke_kdb("0a0a"));
        let mut request = body(&kdbo, "revoke", "0A0A");
        request["reason"] = json!("keyCompromise");
        let (status, answer) = send(&f, &request);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer,
            json!({"v":1,"serial":"0a0a","status":"revoked","at":NOW,"reason":"keyCompromise","replayed":false})
        );
        let calls = f.host.state().lifecycle_calls.clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].holder_tckn, TCKN);
        assert_eq!(calls[0].action, "revoke");
        assert_eq!(calls[0].serial, "0a0a");
        assert_eq!(calls[0].reason.as_deref(), Some("keyCompromise"));
        assert!(calls[0].request_id.starts_with("kdb-"));
        assert_eq!(calls[0].invalidity_date, None);
    }

    #[test]
    fn the_kdb_must_be_for_this_action_and_certificate() {
        let f = Fixture::new();
        let kdbo = f.kdhs_kdbo(&revoke_kdb("0a0a"));
        let mut old = revoke_kdb("0a0a");
        old["verified_at"] = json!(NOW - 20 * 60);
        let cases = [
            (
                body(&kdbo, "suspend", "0a0a"),
                "kdb",
                Some("kdb.purpose: must be \"suspend\" here, not \"revoke\""),
            ),
            (
                body(&kdbo, "revoke", "0b0b"),
                "kdb",
                Some("kdb.serial: must be the certificate the request names (serial)"),
            ),
            (body(&f.kdhs_kdbo(&old), "revoke", "0a0a"), "kdb_age", None),
        ];
        for (request, code, message) in cases {
            let (status, answer) = send(&f, &request);
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (422, Some(code))
            );
            if let Some(message) = message {
                assert_eq!(answer["error"]["message"], message);
            }
        }
        assert!(f.host.state().lifecycle_calls.is_empty());
    }

    #[test]
    fn another_persons_kdb_is_403_holder() {
        let f = Fixture::new();
        f.host.state().lifecycle = Err(nesca_plugin_api::HostError::invalid(
            "holder_tckn",
            "the certificate 0a0a is not this person's",
        ));
        let kdbo = f.kdhs_kdbo(&revoke_kdb("0a0a"));
        let (status, answer) = send(&f, &body(&kdbo, "revoke", "0a0a"));
        assert_eq!(status, 403);
        assert_eq!(
            answer["error"],
            json!({"code":"holder","message":"holder_tckn: the certificate 0a0a is not this person's"})
        );
        f.host.state().lifecycle = Err(nesca_plugin_api::HostError::invalid(
            "reason",
            "superseded is not a holder's reason",
        ));
        let (status, answer) = send(&f, &body(&kdbo, "revoke", "0a0a"));
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("refused"))
        );
    }

    #[test]
    fn ill_formed_bodies_are_400() {
        let f = Fixture::new();
        let kdbo = f.kdhs_kdbo(&revoke_kdb("0a0a"));
        let cases = [
            (
                body(&kdbo, "application", "0a0a"),
                "action: must be one of revoke, suspend, unsuspend",
            ),
            (
                body(&kdbo, "revoke", "zz"),
                "serial: must be 1 to 40 hex digits",
            ),
            (
                json!({"v":1,"action":"revoke","serial":"0a0a"}),
                "kdbo: is required",
            ),
        ];
        for (request, message) in cases {
            let (status, answer) = send(&f, &request);
            assert_eq!(
                (status, answer["error"]["message"].as_str()),
                (400, Some(message))
            );
        }
        // A reason that is not a holder's, an RFC 5280 name or not: the message names exactly
        // the reasons accepted, and nothing reaches the host.
        for reason in [
            "privilegeWithdrawn",
            "certificateHold",
            "removeFromCRL",
            "cACompromise",
            "unspecified",
            "",
            "KeyCompromise",
        ] {
            let mut revoke = body(&kdbo, "revoke", "0a0a");
            revoke["reason"] = json!(reason);
            let (status, answer) = send(&f, &revoke);
            assert_eq!(
                (status, answer["error"]["message"].as_str()),
                (400, Some("reason: must be one of keyCompromise, affiliationChanged, superseded, cessationOfOperation (or absent: unspecified)")),
                "{reason}"
            );
        }
        assert!(f.host.state().lifecycle_calls.is_empty());
        let mut suspend = body(&kdbo, "suspend", "0a0a");
        suspend["reason"] = json!("keyCompromise");
        let (status, answer) = send(&f, &suspend);
        assert_eq!(
            (status, answer["error"]["message"].as_str()),
            (400, Some("reason: only for revoke"))
        );
    }
}
