//! Carrying out approved dual-control requests ([`nesca_ra::dual_control::Execute`]): each
//! action through the registration-authority service that does it from the command line,
//! as the operator whose approval completed the request, under ids derived from the request's
//! (a repeat after a stop records nothing twice).

use ca_core::lifecycle::{RequestId, RevocationReason};
use ca_core::store::RevocationGrounds;
use ca_core::{IssuerId, OperatorName, OperatorRole, Principal, Serial, VerifiedCsr};
use nesca_ra::dual_control::{AdminAction, Execute};
use nesca_ra::lifecycle::ProviderRevocation;
use nesca_ra::RaError;
use serde_json::{json, Value};

use super::AdminApi;
use crate::config::Loaded;
use crate::error::Result;

/// What carrying out needs beyond the API's services.
pub(crate) struct Executor {
    pub(super) renewal: crate::ocsp_signer::Renewal,
}

impl Executor {
    pub(crate) fn new(cfg: &Loaded) -> Result<Executor> {
        Ok(Executor {
            renewal: crate::ocsp_signer::Renewal::of(cfg)?,
        })
    }
}

/// The executor bound to the API it runs in.
pub(crate) struct Bound<'a> {
    pub(crate) api: &'a AdminApi,
}

/// The id of the lifecycle change request `id` makes (a bulk revocation adds each serial).
fn change_id(id: &str) -> Result<RequestId, RaError> {
    Ok(RequestId::new(&format!("admin-{id}"))?)
}

fn reason(r: &Option<String>) -> Result<Option<RevocationReason>, RaError> {
    r.as_deref()
        .map(|r| {
            r.parse::<RevocationReason>()
                .map_err(ca_core::CaError::from)
                .map_err(RaError::from)
        })
        .transpose()
}

impl Execute for Bound<'_> {
    fn execute(&self, id: &str, action: &AdminAction, by: &Principal) -> Result<Value, RaError> {
        let api = self.api;
        match action {
            AdminAction::RevokeCertificate {
                issuer,
                serial,
                reason: r,
                grounds,
                ..
            } => {
                let outcome = api.lifecycle.revoke_by_provider(ProviderRevocation {
                    issuer: IssuerId::parse(issuer)?,
                    serial: Serial::parse_hex(serial)?,
                    reason: reason(r)?,
                    grounds: RevocationGrounds::parse(grounds)?,
                    request_id: change_id(id)?,
                    actor: by.clone(),
                })?;
                Ok(json!({
                    "serial": outcome.serial.to_hex(),
                    "status": outcome.status.as_str(),
                }))
            }
            AdminAction::RevokePartnerCertificates { partner } => {
                let partner = ca_core::PartnerId::parse(partner)?;
                let revoked = nesca_ra::partners::Partners::new(api.store.clone())
                    .revoke_certificates(&api.lifecycle, &partner, &format!("admin-{id}"), by)?;
                let revoked: Vec<String> = revoked.iter().map(|s| s.to_hex()).collect();
                Ok(json!({ "partner": partner.as_str(), "revoked": revoked }))
            }
            AdminAction::RenewOcspSigner { ca } => {
                let ca = IssuerId::parse(ca)?;
                let renewed = self
                    .api
                    .exec
                    .renewal
                    .renew(&api.store, &api.hsm, &ca, by)
                    .map_err(|e| RaError::Conflict {
                        field: "ca",
                        rule: e.to_string(),
                    })?;
                Ok(json!({ "ca": ca.as_str(), "key_label": renewed.key_label }))
            }
            AdminAction::RolloverCa { ca, new_id } => {
                let ca = IssuerId::parse(ca)?;
                let new_id = new_id.as_deref().map(IssuerId::parse).transpose()?;
                let mut line =
                    crate::commands::ca::roll_over(&api.cfg, &api.store, &api.hsm, &ca, new_id, by)
                        .map_err(|e| RaError::Conflict {
                            field: "ca",
                            rule: e.to_string(),
                        })?;
                // This server keeps issuing with the generation it started with.
                line["takes_effect"] = json!("when nesca serve starts again");
                Ok(line)
            }
            AdminAction::AddOperator {
                name,
                role,
                csr_pem,
                validity_days,
            } => {
                let issuing = api.issuing.as_ref().ok_or(RaError::Unavailable {
                    operation: "add-operator",
                })?;
                let profile = ca_core::profile::OperatorProfile::new(
                    api.cfg.raw.admin.operator_validity_days,
                )?;
                let approved = api.operators.approve(
                    OperatorName::parse(name)?,
                    OperatorRole::parse(role)?,
                    VerifiedCsr::parse(csr_pem.as_bytes())?,
                    &profile,
                    (&api.cfg.raw.ca.country, &api.cfg.raw.ca.organization),
                    // Today's ceiling, if it was lowered since the request.
                    (*validity_days).min(api.cfg.raw.admin.operator_validity_days),
                )?;
                let (record, issued) =
                    api.operators
                        .register(by, &issuing.engine, &issuing.ca, approved)?;
                Ok(json!({
                    "operator": crate::commands::operator::to_json(&record),
                    "certificate": crate::commands::cert_pem(&issued.cert_der),
                }))
            }
            AdminAction::DisableOperator { name } => {
                let name = OperatorName::parse(name)?;
                // Checked again: others may have been disabled since the request.
                api.operators
                    .check_disable(&name, api.dual.policy().approvals_required)?;
                let record = api.operators.disable(by, &name)?;
                Ok(json!({ "operator": crate::commands::operator::to_json(&record) }))
            }
            other => Err(RaError::Invalid {
                field: "action",
                rule: format!("{} is not carried out here", other.name()),
            }),
        }
    }
}
