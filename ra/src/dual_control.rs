//! Dual control: an action no holder asked for — the provider revoking a holder's
//! certificate, revoking a partner's certificates in bulk, renewing an OCSP signer by hand,
//! adding or disabling an operator — is first a request. It takes effect only when enough
//! *other* operators of the role it belongs to approve it (the requester counts as one); the
//! requester cannot approve; it expires unapproved. Every step is an audit record.
//!
//! Carrying an approved action out needs what the transport holds (the signing CA, the
//! HSM): the transport implements [`Execute`], and exactly one approver carries each request
//! out (the store moves it from pending to approved once).

use std::sync::Arc;
use std::time::Duration;

use ca_core::clock::Clock;
use ca_core::store::{AdminRequestRecord, AdminRequestStatus, NewAdminRequest, Store};
use ca_core::{OperatorActor, OperatorRole, Principal};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{RaError, Result};

/// An action under dual control, as its request records it (JSON, `action` names it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AdminAction {
    /// The provider revokes a holder's certificate on legal grounds.
    RevokeCertificate {
        issuer: String,
        serial: String,
        /// The CRLReason, `None`: unspecified.
        reason: Option<String>,
        grounds: String,
        note: String,
    },
    /// Revoke every active or suspended certificate of a partner.
    RevokePartnerCertificates { partner: String },
    /// Renew a CA's delegated OCSP signer now.
    RenewOcspSigner { ca: String },
    /// Register an operator and issue their certificate from their CSR.
    AddOperator {
        name: String,
        role: String,
        csr_pem: String,
        validity_days: u32,
    },
    /// Disable an operator.
    DisableOperator { name: String },
}

impl AdminAction {
    /// The action's name (`revoke-certificate`, …).
    pub fn name(&self) -> &'static str {
        match self {
            AdminAction::RevokeCertificate { .. } => "revoke-certificate",
            AdminAction::RevokePartnerCertificates { .. } => "revoke-partner-certificates",
            AdminAction::RenewOcspSigner { .. } => "renew-ocsp-signer",
            AdminAction::AddOperator { .. } => "add-operator",
            AdminAction::DisableOperator { .. } => "disable-operator",
        }
    }

    /// The role whose operators request and approve it.
    pub fn role(&self) -> OperatorRole {
        match self {
            AdminAction::RevokeCertificate { .. } => OperatorRole::RaOfficer,
            AdminAction::RevokePartnerCertificates { .. } | AdminAction::RenewOcspSigner { .. } => {
                OperatorRole::CaOperator
            }
            AdminAction::AddOperator { .. } | AdminAction::DisableOperator { .. } => {
                OperatorRole::SecurityOfficer
            }
        }
    }
}

/// Carries an approved action out; the transport implements it with what it holds.
pub trait Execute: Send + Sync {
    /// Does `action` as `by` (the approver whose approval completed it) under the request's
    /// `id`; returns what it did, as JSON for the request's result.
    fn execute(&self, id: &str, action: &AdminAction, by: &Principal) -> Result<serde_json::Value>;
}

/// How many operators a request needs and how long it waits.
#[derive(Debug, Clone, Copy)]
pub struct DualControlPolicy {
    /// Operators in all, the requester counting as one: 2 to 5.
    pub approvals_required: u32,
    /// How long a request waits for its approvals.
    pub expiry: Duration,
}

impl Default for DualControlPolicy {
    fn default() -> Self {
        DualControlPolicy {
            approvals_required: 2,
            expiry: Duration::from_secs(86_400),
        }
    }
}

/// Requests under dual control.
pub struct DualControl {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policy: DualControlPolicy,
}

impl DualControl {
    /// The policy: how many operators a request needs, how long it waits.
    pub fn policy(&self) -> DualControlPolicy {
        self.policy
    }

    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, policy: DualControlPolicy) -> Self {
        DualControl {
            store,
            clock,
            policy,
        }
    }

    /// Records `action` as a pending request of `by`, who must hold its role.
    pub fn request(&self, by: &OperatorActor, action: &AdminAction) -> Result<AdminRequestRecord> {
        if by.role != action.role() {
            return Err(RaError::Refused {
                field: "role",
                rule: format!(
                    "{} is requested by a {} operator",
                    action.name(),
                    action.role()
                ),
            });
        }
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let id = hex::encode(id);
        let now = self.clock.now_unix();
        let payload = serde_json::to_string(action)
            .map_err(|e| RaError::invalid("request", e.to_string()))?;
        self.store.add_admin_request(
            NewAdminRequest {
                id: id.clone(),
                action: action.name().into(),
                payload,
                approver_role: action.role(),
                requested_by: by.name.clone(),
                created_at: now,
                expires_at: now.plus(self.policy.expiry),
            },
            &Principal::Operator(by.clone()),
        )?;
        tracing::info!(request = %id, action = action.name(), operator = %by.name, "dual-control request");
        self.get(&id)
    }

    /// A request by id.
    pub fn get(&self, id: &str) -> Result<AdminRequestRecord> {
        self.store
            .admin_request(id)?
            .ok_or_else(|| RaError::NotFound {
                field: "id",
                rule: format!("no request {id}"),
            })
    }

    /// Requests, newest first (expired ones are marked first).
    pub fn list(
        &self,
        status: Option<AdminRequestStatus>,
        limit: u32,
    ) -> Result<Vec<AdminRequestRecord>> {
        self.expire_due()?;
        Ok(self.store.admin_requests(status, limit)?)
    }

    /// `by` approves request `id`. The approval that completes it carries the action out
    /// (through `exec`) and records the outcome: executed, or failed with the refusal.
    pub fn approve(
        &self,
        by: &OperatorActor,
        id: &str,
        exec: &dyn Execute,
    ) -> Result<AdminRequestRecord> {
        let request = self.get(id)?;
        if by.role != request.approver_role {
            return Err(RaError::Refused {
                field: "role",
                rule: format!(
                    "request {id} is approved by {} operators",
                    request.approver_role
                ),
            });
        }
        // Nobody approves their own disabling.
        if let Ok(AdminAction::DisableOperator { name }) =
            serde_json::from_str::<AdminAction>(&request.payload)
        {
            if name == by.name.as_str() {
                return Err(RaError::Refused {
                    field: "request",
                    rule: format!("request {id} disables you: another operator approves it"),
                });
            }
        }
        let actor = Principal::Operator(by.clone());
        let now = self.clock.now_unix();
        let request = self
            .store
            .approve_admin_request(id, &by.name, &actor, now)?;
        // The requester counts as one.
        if request.approvals.len() as u32 + 1 < self.policy.approvals_required {
            return Ok(request);
        }
        match self.store.decide_admin_request(
            id,
            AdminRequestStatus::Pending,
            AdminRequestStatus::Approved,
            "approved",
            &actor,
            now,
        ) {
            Ok(_) => {}
            // Another approval completed it at the same moment: that one carries it out.
            Err(ca_core::CaError::Conflict { .. }) => return self.get(id),
            Err(e) => return Err(e.into()),
        }
        self.carry_out(id, &request, exec, &actor)
    }

    /// Carries an approved request out and records how it went.
    fn carry_out(
        &self,
        id: &str,
        request: &AdminRequestRecord,
        exec: &dyn Execute,
        actor: &Principal,
    ) -> Result<AdminRequestRecord> {
        let outcome = serde_json::from_str::<AdminAction>(&request.payload)
            .map_err(|e| RaError::invalid("request", format!("stored payload does not read: {e}")))
            .and_then(|action| exec.execute(id, &action, actor));
        let (to, result) = match outcome {
            Ok(v) => (AdminRequestStatus::Executed, v.to_string()),
            Err(e) => {
                tracing::warn!(request = %id, error = %e, "approved request failed");
                (
                    AdminRequestStatus::Failed,
                    serde_json::json!({ "error": e.to_string() }).to_string(),
                )
            }
        };
        Ok(self.store.decide_admin_request(
            id,
            AdminRequestStatus::Approved,
            to,
            &result,
            actor,
            self.clock.now_unix(),
        )?)
    }

    /// `by` rejects a pending request: an operator of its role, or its requester withdrawing it.
    pub fn reject(&self, by: &OperatorActor, id: &str) -> Result<AdminRequestRecord> {
        let request = self.get(id)?;
        if by.role != request.approver_role {
            return Err(RaError::Refused {
                field: "role",
                rule: format!(
                    "request {id} is decided by {} operators",
                    request.approver_role
                ),
            });
        }
        let now = self.clock.now_unix();
        if request.status == AdminRequestStatus::Pending && request.expires_at <= now {
            self.expire_due()?;
            return Err(RaError::Conflict {
                field: "request",
                rule: format!("request {id} has expired"),
            });
        }
        Ok(self.store.decide_admin_request(
            id,
            AdminRequestStatus::Pending,
            AdminRequestStatus::Rejected,
            &serde_json::json!({ "rejected_by": by.name.as_str() }).to_string(),
            &Principal::Operator(by.clone()),
            now,
        )?)
    }

    /// Marks every pending request past its expiry as expired; returns how many.
    pub fn expire_due(&self) -> Result<usize> {
        let now = self.clock.now_unix();
        let mut n = 0;
        for r in self
            .store
            .admin_requests(Some(AdminRequestStatus::Pending), 1000)?
        {
            if r.expires_at > now {
                continue;
            }
            match self.store.decide_admin_request(
                &r.id,
                AdminRequestStatus::Pending,
                AdminRequestStatus::Expired,
                "expired",
                &Principal::System(ca_core::SystemTask::AdminRequests),
                now,
            ) {
                Ok(_) => n += 1,
                Err(ca_core::CaError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Carries out requests left approved by a stop between their approval and their
    /// execution (every action is safe to repeat: a revocation under the request's id is
    /// recorded once).
    pub fn resume_approved(&self, exec: &dyn Execute) -> Result<usize> {
        let actor = Principal::System(ca_core::SystemTask::AdminRequests);
        let mut n = 0;
        for r in self
            .store
            .admin_requests(Some(AdminRequestStatus::Approved), 1000)?
        {
            self.carry_out(&r.id, &r, exec, &actor)?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ca_core::testkit::fixture;
    use ca_core::{OperatorName, Serial};

    use super::*;

    /// Records what it was asked to carry out.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, AdminAction)>>);

    impl Execute for Recorder {
        fn execute(
            &self,
            id: &str,
            action: &AdminAction,
            _by: &Principal,
        ) -> Result<serde_json::Value> {
            self.0.lock().unwrap().push((id.to_owned(), action.clone()));
            Ok(serde_json::json!({ "done": true }))
        }
    }

    fn operator(name: &str, role: OperatorRole) -> OperatorActor {
        OperatorActor {
            name: OperatorName::parse(name).unwrap(),
            role,
            serial: Serial::random(),
        }
    }

    #[test]
    fn a_request_waits_for_another_operator_of_its_role_then_is_carried_out_once() {
        let f = fixture();
        let dual = DualControl::new(
            f.store.clone(),
            f.clock.clone(),
            DualControlPolicy::default(),
        );
        let exec = Recorder::default();
        let (a, b) = (
            operator("A", OperatorRole::SecurityOfficer),
            operator("B", OperatorRole::SecurityOfficer),
        );
        let auditor = operator("C", OperatorRole::Auditor);
        let action = AdminAction::DisableOperator { name: "D".into() };

        // Only its role requests it.
        assert!(matches!(
            dual.request(&auditor, &action),
            Err(RaError::Refused { field: "role", .. })
        ));
        let r = dual.request(&a, &action).unwrap();
        assert_eq!(r.status, AdminRequestStatus::Pending);

        // Not the requester, not another role.
        assert!(matches!(
            dual.approve(&a, &r.id, &exec),
            Err(RaError::Conflict { .. })
        ));
        assert!(matches!(
            dual.approve(&auditor, &r.id, &exec),
            Err(RaError::Refused { field: "role", .. })
        ));
        assert!(exec.0.lock().unwrap().is_empty());

        // The second operator's approval completes it: carried out once, recorded.
        let done = dual.approve(&b, &r.id, &exec).unwrap();
        assert_eq!(done.status, AdminRequestStatus::Executed);
        assert_eq!(done.result.as_deref(), Some(r#"{"done":true}"#));
        assert_eq!(*exec.0.lock().unwrap(), vec![(r.id.clone(), action)]);
        assert!(dual.approve(&b, &r.id, &exec).is_err());
        assert_eq!(exec.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn nobody_approves_their_own_disabling() {
        let f = fixture();
        let dual = DualControl::new(
            f.store.clone(),
            f.clock.clone(),
            DualControlPolicy::default(),
        );
        let (a, b) = (
            operator("A", OperatorRole::SecurityOfficer),
            operator("B", OperatorRole::SecurityOfficer),
        );
        let r = dual
            .request(&a, &AdminAction::DisableOperator { name: "B".into() })
            .unwrap();
        let err = dual.approve(&b, &r.id, &Recorder::default()).unwrap_err();
        assert!(err.to_string().contains("disables you"), "{err}");
    }

    #[test]
    fn an_unapproved_request_expires_and_is_approved_no_more() {
        let f = fixture();
        let policy = DualControlPolicy {
            approvals_required: 3,
            expiry: std::time::Duration::from_secs(60),
        };
        let dual = DualControl::new(f.store.clone(), f.clock.clone(), policy);
        let exec = Recorder::default();
        let (a, b, c) = (
            operator("A", OperatorRole::RaOfficer),
            operator("B", OperatorRole::RaOfficer),
            operator("C", OperatorRole::RaOfficer),
        );
        let action = AdminAction::RevokePartnerCertificates {
            partner: "p".into(),
        };
        // Ra officers do not request a CA operator's action.
        assert!(dual.request(&a, &action).is_err());
        let action = AdminAction::RevokeCertificate {
            issuer: "nes-ca".into(),
            serial: "01".into(),
            reason: None,
            grounds: "death".into(),
            note: "n".into(),
        };
        let r = dual.request(&a, &action).unwrap();
        // Three in all: B's approval is not enough.
        assert_eq!(
            dual.approve(&b, &r.id, &exec).unwrap().status,
            AdminRequestStatus::Pending
        );
        f.clock.advance(std::time::Duration::from_secs(61));
        assert!(matches!(
            dual.approve(&c, &r.id, &exec),
            Err(RaError::Conflict { .. })
        ));
        assert_eq!(dual.expire_due().unwrap(), 1);
        assert_eq!(dual.get(&r.id).unwrap().status, AdminRequestStatus::Expired);
        assert!(exec.0.lock().unwrap().is_empty());
    }
}
