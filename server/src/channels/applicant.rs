//! The host side of the `applicant` method: an invited person completes their application
//! through a channel plugin (the batch-import channel's applicant endpoints). The call is
//! parsed into typed values here; the rules are the registration authority's ([`Enrollments`]).
//! A refused step is a [`HostError`] whose code the plugin turns into an HTTP status.

use std::net::IpAddr;

use ca_core::store::SignInSource;
use ca_core::Tckn;
use nesca_plugin_api::host_api::{ApplicantAnswer, ApplicantCall, ApplicantState, SecretText};
use nesca_plugin_api::{HostError, HostErrorCode};
use nesca_ra::enrollment::{ApplicantForm, ApplicantView, Approval, ApprovalOutcome, Enrollments};
use nesca_ra::RaError;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

/// Answers one call, or refuses it.
pub(super) fn answer(
    enrollments: &Enrollments,
    call: ApplicantCall,
) -> Result<ApplicantAnswer, HostError> {
    step(enrollments, call).map_err(refusal)
}

fn empty() -> ApplicantAnswer {
    ApplicantAnswer {
        token: None,
        expires_at: None,
        application: None,
        approval_text: None,
        approval_text_sha256: None,
        form_pdf: None,
    }
}

fn required<T>(field: &'static str, v: Option<T>) -> Result<T, RaError> {
    v.ok_or_else(|| RaError::Invalid {
        field,
        rule: "is required for this action".into(),
    })
}

fn secret(field: &'static str, v: Option<SecretText>) -> Result<SecretString, RaError> {
    required(field, v).map(|s| SecretString::from(s.0))
}

fn step(e: &Enrollments, call: ApplicantCall) -> Result<ApplicantAnswer, RaError> {
    if call.action == "sign_in" {
        let tckn = Tckn::parse(&required("tckn", call.tckn)?).map_err(|e| RaError::Invalid {
            field: "tckn",
            rule: e.to_string(),
        })?;
        let password = secret("password", call.password)?;
        let source = sign_in_source(call.client_address.as_deref())?;
        let grant = e.sign_in(&tckn, &password, &source)?;
        let token = grant.token.expose_secret().to_owned();
        let view = e
            .view(&grant.pre_application)?
            .ok_or_else(|| RaError::Unauthenticated {
                field: "sign_in",
                rule: "the application is gone".into(),
            })?;
        return Ok(ApplicantAnswer {
            token: Some(SecretText(token)),
            expires_at: Some(grant.expires_at.secs()),
            application: Some(state(&view)),
            ..empty()
        });
    }
    let token = secret("token", call.token)?;
    let token = token.expose_secret();
    match call.action.as_str() {
        "status" => {}
        "form" => {
            let form = ApplicantForm::parse(
                secret("security_word", call.security_word)?,
                required("do_not_publish", call.do_not_publish)?,
                &required("delivery_address", call.delivery_address)?,
            )?;
            e.submit_form(token, form)?;
        }
        "resend_code" => e.resend_code(token)?,
        "wet_form" => {
            let form_pdf = e.wet_form(token)?;
            return Ok(ApplicantAnswer {
                form_pdf: Some(form_pdf),
                application: Some(state(&e.session(token)?)),
                ..empty()
            });
        }
        "confirm_code" => e.confirm_code(token, &secret("code", call.code)?)?,
        "approval_text" => {
            let view = e.session(token)?;
            let text = e.approval_text(&view)?;
            return Ok(ApplicantAnswer {
                approval_text_sha256: Some(hex::encode(Sha256::digest(text.as_bytes()))),
                approval_text: Some(text),
                application: Some(state(&view)),
                ..empty()
            });
        }
        "approve" => {
            let approval = match required("method", call.method)?.as_str() {
                "e-onay" => Approval::EOnay,
                "signature" => Approval::Signature(required("signature_der", call.signature_der)?),
                "wet" => Approval::Wet,
                other => {
                    return Err(RaError::Invalid {
                        field: "method",
                        rule: format!("\"{other}\" must be e-onay, signature or wet"),
                    })
                }
            };
            let form_pdf = match e.approve(token, approval)? {
                ApprovalOutcome::AwaitingWet { form_pdf } => Some(form_pdf),
                ApprovalOutcome::Approved { .. } => None,
            };
            return Ok(ApplicantAnswer {
                form_pdf,
                application: Some(state(&e.session(token)?)),
                ..empty()
            });
        }
        other => {
            return Err(RaError::Invalid {
                field: "action",
                rule: format!(
                    "\"{other}\" must be sign_in, status, form, resend_code, confirm_code, approval_text, approve or wet_form"
                ),
            })
        }
    }
    Ok(ApplicantAnswer {
        application: Some(state(&e.session(token)?)),
        ..empty()
    })
}

/// Where a sign-in comes from: the applicant's address as the portal reported it (an IPv4
/// or IPv6 address, nothing else), or the portal itself when it reported none.
fn sign_in_source(client_address: Option<&str>) -> Result<SignInSource, RaError> {
    let Some(text) = client_address else {
        return Ok(SignInSource::unnamed());
    };
    let refused = || {
        RaError::Invalid {
        field: "client_address",
        rule: "must be the applicant's IPv4 or IPv6 address as the portal's listener saw it (such as 192.0.2.7 or 2001:db8::7; not unspecified or multicast)"
            .into(),
    }
    };
    let ip: IpAddr = text.parse().map_err(|_| refused())?;
    // No client connects from these: a portal sending one sends no address at all.
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(refused());
    }
    Ok(SignInSource::address(ip))
}

/// What the applicant may see of their application (no hash, the mobile number masked).
fn state(v: &ApplicantView) -> ApplicantState {
    let e = &v.enrollment;
    ApplicantState {
        id: v.pre.id.clone(),
        stage: e.stage.as_str().to_owned(),
        institution: v.pre.institution.to_string(),
        given_name: v.pre.given_name.clone(),
        surname: v.pre.surname.clone(),
        email: v.pre.email.clone(),
        mobile: mask_mobile(&v.pre.mobile),
        do_not_publish: e.do_not_publish,
        delivery_address: e.delivery_address.clone(),
        approval_method: e.approval_method.map(|m| m.as_str().to_owned()),
        produce_after: e.produce_after.map(ca_core::UnixTime::secs),
        serial: e.serial.map(|s| s.to_hex()),
    }
}

/// `+905321234567` → `+90532*****67`.
fn mask_mobile(m: &str) -> String {
    let chars: Vec<char> = m.chars().collect();
    if chars.len() < 9 {
        return "*".repeat(chars.len());
    }
    let (head, tail) = (6, chars.len() - 2);
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= tail { *c } else { '*' })
        .collect()
}

/// A refused step as the applicant may learn it: a refusal of what they sent keeps its code,
/// field and rule; any other failure (the store, a bug) is logged here and answered only as
/// `unavailable`, so nothing of the CA's inside reaches the applicant.
fn refusal(e: RaError) -> HostError {
    match e {
        e @ (RaError::Invalid { .. }
        | RaError::Unauthenticated { .. }
        | RaError::Conflict { .. }
        | RaError::Locked { .. }) => super::refusal::ra(e),
        other => {
            tracing::warn!(error = %other, "applicant step failed");
            HostError::new(
                HostErrorCode::Unavailable,
                "service",
                "the CA cannot answer now; try again later",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_source_is_an_address_or_the_portal() {
        assert_eq!(sign_in_source(None).unwrap(), SignInSource::unnamed());
        assert_eq!(
            sign_in_source(Some("192.0.2.7")).unwrap().as_str(),
            "ip:192.0.2.7"
        );
        // IPv6 by its /64; an IPv4-mapped address is its IPv4 address.
        assert_eq!(
            sign_in_source(Some("2001:db8:1:2:aaaa::7"))
                .unwrap()
                .as_str(),
            "ip:2001:db8:1:2::/64"
        );
        assert_eq!(
            sign_in_source(Some("::ffff:192.0.2.7")).unwrap().as_str(),
            "ip:192.0.2.7"
        );
        // An IPv6 address carrying an IPv4 one (NAT64, IPv4-compatible) is that address;
        // loopback is not one.
        for (carrier, v4) in [
            ("64:ff9b::c000:207", "ip:192.0.2.7"),
            ("::192.0.2.8", "ip:192.0.2.8"),
            ("::1", "ip:::/64"),
        ] {
            assert_eq!(
                sign_in_source(Some(carrier)).unwrap().as_str(),
                v4,
                "{carrier}"
            );
        }
        for bad in [
            "",
            "portal",
            "192.0.2.7:443",
            "ip:192.0.2.7",
            "10.0.0.0/8",
            " 192.0.2.7",
            "[2001:db8::1]",
            "fe80::1%eth0",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "ff02::1",
        ] {
            let e = sign_in_source(Some(bad)).unwrap_err();
            assert!(
                e.to_string().starts_with("client_address: must be"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn mobile_numbers_are_masked() {
        assert_eq!(mask_mobile("+905321234567"), "+90532*****67");
        assert_eq!(mask_mobile("123"), "***");
    }

    #[test]
    fn refusals_carry_code_field_and_rule() {
        let r = refusal(RaError::Conflict {
            field: "stage",
            rule: "x is form".into(),
        });
        assert_eq!(
            (r.code, r.field.as_deref(), r.rule.as_str()),
            (HostErrorCode::Conflict, Some("stage"), "x is form")
        );
        let r = refusal(RaError::Locked {
            field: "sign_in",
            until: ca_core::UnixTime::from_secs(5),
            until_text: "1970-01-01T00:00:05Z".into(),
        });
        assert_eq!(r.code, HostErrorCode::Locked);
        assert!(r.rule.starts_with("too many failed attempts"), "{}", r.rule);
        let r = refusal(RaError::from(ca_core::CaError::Store {
            operation: "read",
            reason: "disk I/O error".into(),
            source: None,
        }));
        assert_eq!(r.code, HostErrorCode::Unavailable);
        assert_eq!(r.field.as_deref(), Some("service"));
        assert!(!r.rule.contains("disk"));
    }
}
