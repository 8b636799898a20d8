//! Dual control: an action no holder asked for — the provider revoking a holder's
//! certificate, revoking a partner's certificates in bulk, renewing an OCSP signer by hand,
//! adding or disabling an operator — is first a request. It takes effect only when enough
//! *other* operators of the role it belongs to approve it (the requester counts as one); the
//! requester cannot approve; it expires unapproved. Every step is an audit record.
//!
//! Carrying an approved action out needs what the transport holds (the signing CA, the
//! HSM): the transport implements [`Execute`]. The store moves a request from pending to
//! approved once, so one approval completes it; within a process, requests are carried out
//! one at a time; a request a stop left approved is carried out when the API starts again
//! ([`DualControl::resume_approved`], before it serves).

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
    /// Roll an issuing CA over to a new key (a new generation; `new_id` default the next).
    RolloverCa { ca: String, new_id: Option<String> },
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
            AdminAction::RolloverCa { .. } => "rollover-ca",
            AdminAction::AddOperator { .. } => "add-operator",
            AdminAction::DisableOperator { .. } => "disable-operator",
        }
    }

    /// The role whose operators request and approve it.
    pub fn role(&self) -> OperatorRole {
        match self {
            AdminAction::RevokeCertificate { .. } => OperatorRole::RaOfficer,
            AdminAction::RevokePartnerCertificates { .. }
            | AdminAction::RenewOcspSigner { .. }
            | AdminAction::RolloverCa { .. } => OperatorRole::CaOperator,
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
    /// Held while a request is carried out: one at a time in this process (a rule checked
    /// before an action, such as "the security officers dual control needs stay", holds
    /// while it runs).
    carrying_out: std::sync::Mutex<()>,
    /// The same across the nodes sharing the store: a request is carried out by one node,
    /// once.
    lease: crate::leases::Lease,
}

/// How long a node waits for another node's carrying out before it leaves an approved
/// request to be carried out later (at a start, `resume_approved`).
const CARRY_OUT_WAIT: Duration = Duration::from_secs(60);

/// Who acts in a step of a request: the operator, and the id of the admin API call
/// (`x-request-id`) that the step's audit record carries.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub by: &'a OperatorActor,
    pub trace: &'a str,
}

impl DualControl {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, policy: DualControlPolicy) -> Self {
        DualControl {
            lease: crate::leases::Lease::new(
                store.clone(),
                clock.clone(),
                "admin-requests".into(),
                Duration::from_secs(300),
            ),
            store,
            clock,
            policy,
            carrying_out: std::sync::Mutex::new(()),
        }
    }

    /// The policy: how many operators a request needs, how long it waits.
    pub fn policy(&self) -> DualControlPolicy {
        self.policy
    }

    /// Records `action` as a pending request of the step's operator, who must hold its role.
    pub fn request(&self, step: Step<'_>, action: &AdminAction) -> Result<AdminRequestRecord> {
        let by = step.by;
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
                trace: step.trace.to_owned(),
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

    /// Refuses `by` unless they hold the request's role.
    fn check_role(by: &OperatorActor, request: &AdminRequestRecord, verb: &str) -> Result<()> {
        if by.role == request.approver_role {
            return Ok(());
        }
        Err(RaError::Refused {
            field: "role",
            rule: format!(
                "request {} is {verb} by {} operators",
                request.id, request.approver_role
            ),
        })
    }

    /// Whether the operator `name` can act now: registered, not disabled, with an active
    /// operator certificate ([`crate::operators::can_act`]).
    fn active(&self, name: &ca_core::OperatorName) -> Result<bool> {
        match self.store.operator(name)? {
            Some(o) => crate::operators::can_act(self.store.as_ref(), self.clock.now_unix(), &o),
            None => Ok(false),
        }
    }

    /// The operator a request disables, if it is such a request.
    fn disables(request: &AdminRequestRecord) -> Option<String> {
        match serde_json::from_str::<AdminAction>(&request.payload) {
            Ok(AdminAction::DisableOperator { name }) => Some(name),
            _ => None,
        }
    }

    /// The step's operator approves request `id`. The approval that completes it — the
    /// requester and the approvers still active, `approvals_required` in all — carries it
    /// out (through `exec`) and records the outcome: executed, or failed with the refusal.
    pub fn approve(
        &self,
        step: Step<'_>,
        id: &str,
        exec: &dyn Execute,
    ) -> Result<AdminRequestRecord> {
        let by = step.by;
        let request = self.get(id)?;
        Self::check_role(by, &request, "approved")?;
        if request.requested_by == by.name {
            return Err(RaError::Conflict {
                field: "request",
                rule: "the requester cannot approve their own request".into(),
            });
        }
        // Nobody approves their own disabling.
        if Self::disables(&request).as_deref() == Some(by.name.as_str()) {
            return Err(RaError::Refused {
                field: "request",
                rule: format!("request {id} disables you: another operator approves it"),
            });
        }
        // A request whose requester was disabled since is approved no more (it may have been
        // made by the very person the disabling stopped).
        if !self.active(&request.requested_by)? {
            return Err(RaError::Conflict {
                field: "request",
                rule: format!(
                    "request {id}'s requester {} is disabled: make the request again",
                    request.requested_by
                ),
            });
        }
        let actor = Principal::Operator(by.clone());
        let now = self.clock.now_unix();
        let request = self
            .store
            .approve_admin_request(id, &by.name, &actor, now, step.trace)?;
        // The requester counts as one; an approver disabled since counts no more.
        let mut counted = 1;
        for (name, _) in &request.approvals {
            if self.active(name)? {
                counted += 1;
            }
        }
        if counted < self.policy.approvals_required {
            return Ok(request);
        }
        let _one_at_a_time = self.carrying_out.lock().unwrap_or_else(|p| p.into_inner());
        match self.store.decide_admin_request(
            id,
            AdminRequestStatus::Pending,
            AdminRequestStatus::Approved,
            "approved",
            &actor,
            now,
            step.trace,
        ) {
            Ok(_) => {}
            // Another approval completed it at the same moment: that one carries it out.
            Err(ca_core::CaError::Conflict { .. }) => return self.get(id),
            Err(e) => return Err(e.into()),
        }
        if !self.lease.hold_within(CARRY_OUT_WAIT)? {
            tracing::warn!(request = %id, "approved request left to be carried out later: another node kept carrying out requests");
            return self.get(id);
        }
        // Another node may have carried it out meanwhile (its start resumes approved ones).
        let outcome = match self.get(id) {
            Ok(now) if now.status == AdminRequestStatus::Approved => {
                self.carry_out(&now, exec, &actor, step.trace)
            }
            other => other,
        };
        self.release_lease();
        outcome
    }

    /// Gives the carrying-out lease up; a failure only delays another node (the lease runs
    /// out).
    fn release_lease(&self) {
        if let Err(e) = self.lease.release() {
            tracing::warn!(error = %e, "admin-request lease not given up; it runs out by itself");
        }
    }

    /// Carries an approved request out and records how it went (the caller holds
    /// `carrying_out`).
    fn carry_out(
        &self,
        request: &AdminRequestRecord,
        exec: &dyn Execute,
        actor: &Principal,
        trace: &str,
    ) -> Result<AdminRequestRecord> {
        let id = request.id.as_str();
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
            trace,
        )?)
    }

    /// The step's operator rejects a pending request: an operator of its role (its requester
    /// withdrawing it, or another).
    pub fn reject(&self, step: Step<'_>, id: &str) -> Result<AdminRequestRecord> {
        let by = step.by;
        let request = self.get(id)?;
        Self::check_role(by, &request, "decided")?;
        // Nobody vetoes their own disabling (its requester may still withdraw it).
        if Self::disables(&request).as_deref() == Some(by.name.as_str()) {
            return Err(RaError::Refused {
                field: "request",
                rule: format!("request {id} disables you: another operator decides it"),
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
            step.trace,
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
                "",
            ) {
                Ok(_) => n += 1,
                Err(ca_core::CaError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Carries out requests a stop left approved (between their approval and their
    /// execution). Called when the admin API starts, before it serves, so no approval of
    /// this process is carrying the same request out. Repeating an action is safe where it
    /// can be: a revocation under the request's id is recorded once; an operator registered
    /// already is refused, and the request recorded failed with that refusal.
    pub fn resume_approved(&self, exec: &dyn Execute) -> Result<usize> {
        let actor = Principal::System(ca_core::SystemTask::AdminRequests);
        let _one_at_a_time = self.carrying_out.lock().unwrap_or_else(|p| p.into_inner());
        if !self.lease.hold_within(CARRY_OUT_WAIT)? {
            return Ok(0);
        }
        let mut carried = Ok(0);
        let approved = self
            .store
            .admin_requests(Some(AdminRequestStatus::Approved), 1000);
        match approved {
            Ok(requests) => {
                for r in requests {
                    if let Err(e) = self.carry_out(&r, exec, &actor, "") {
                        carried = Err(e);
                        break;
                    }
                    carried = carried.map(|n| n + 1);
                }
            }
            Err(e) => carried = Err(e.into()),
        }
        self.release_lease();
        carried
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ca_core::store::prelude::*;

    use ca_core::testkit::fixture;
    use ca_core::OperatorName;

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

    fn step(by: &OperatorActor) -> Step<'_> {
        Step { by, trace: "t" }
    }

    /// An operator registered in the store, as the admin API authenticates them.
    fn operator(f: &ca_core::testkit::Fixture, name: &str, role: OperatorRole) -> OperatorActor {
        // Any active certificate of the CA stands for the operator's: what counts is that it
        // is active and valid.
        let cert = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                ca_core::testkit::nes_application(None, false),
                &Principal::HostOperator,
            )
            .unwrap();
        let actor = OperatorActor {
            name: OperatorName::parse(name).unwrap(),
            role,
            serial: cert.serial,
        };
        f.store
            .add_operator(
                ca_core::store::OperatorRecord {
                    name: actor.name.clone(),
                    role,
                    issuer: f.ca.context.id.clone(),
                    serial: actor.serial,
                    created_at: f.clock.now_unix(),
                    disabled_at: None,
                },
                &Principal::HostOperator,
                f.clock.now_unix(),
            )
            .unwrap();
        actor
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
            operator(&f, "A", OperatorRole::SecurityOfficer),
            operator(&f, "B", OperatorRole::SecurityOfficer),
        );
        let auditor = operator(&f, "C", OperatorRole::Auditor);
        let action = AdminAction::DisableOperator { name: "D".into() };

        // Only its role requests it.
        assert!(matches!(
            dual.request(step(&auditor), &action),
            Err(RaError::Refused { field: "role", .. })
        ));
        let r = dual.request(step(&a), &action).unwrap();
        assert_eq!(r.status, AdminRequestStatus::Pending);

        // Not the requester, not another role.
        assert!(matches!(
            dual.approve(step(&a), &r.id, &exec),
            Err(RaError::Conflict { .. })
        ));
        assert!(matches!(
            dual.approve(step(&auditor), &r.id, &exec),
            Err(RaError::Refused { field: "role", .. })
        ));
        assert!(exec.0.lock().unwrap().is_empty());

        // The second operator's approval completes it: carried out once, recorded.
        let done = dual.approve(step(&b), &r.id, &exec).unwrap();
        assert_eq!(done.status, AdminRequestStatus::Executed);
        assert_eq!(done.result.as_deref(), Some(r#"{"done":true}"#));
        assert_eq!(*exec.0.lock().unwrap(), vec![(r.id.clone(), action)]);
        assert!(dual.approve(step(&b), &r.id, &exec).is_err());
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
            operator(&f, "A", OperatorRole::SecurityOfficer),
            operator(&f, "B", OperatorRole::SecurityOfficer),
        );
        let r = dual
            .request(step(&a), &AdminAction::DisableOperator { name: "B".into() })
            .unwrap();
        let err = dual
            .approve(step(&b), &r.id, &Recorder::default())
            .unwrap_err();
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
            operator(&f, "A", OperatorRole::RaOfficer),
            operator(&f, "B", OperatorRole::RaOfficer),
            operator(&f, "C", OperatorRole::RaOfficer),
        );
        let action = AdminAction::RevokePartnerCertificates {
            partner: "p".into(),
        };
        // Ra officers do not request a CA operator's action.
        assert!(dual.request(step(&a), &action).is_err());
        let action = AdminAction::RevokeCertificate {
            issuer: "nes-ca".into(),
            serial: "01".into(),
            reason: None,
            grounds: "death".into(),
            note: "n".into(),
        };
        let r = dual.request(step(&a), &action).unwrap();
        // Three in all: B's approval is not enough.
        assert_eq!(
            dual.approve(step(&b), &r.id, &exec).unwrap().status,
            AdminRequestStatus::Pending
        );
        f.clock.advance(std::time::Duration::from_secs(61));
        assert!(matches!(
            dual.approve(step(&c), &r.id, &exec),
            Err(RaError::Conflict { .. })
        ));
        assert_eq!(dual.expire_due().unwrap(), 1);
        assert_eq!(dual.get(&r.id).unwrap().status, AdminRequestStatus::Expired);
        assert!(exec.0.lock().unwrap().is_empty());
    }

    #[test]
    fn a_disabled_requesters_request_is_approved_no_more() {
        let f = fixture();
        let dual = DualControl::new(
            f.store.clone(),
            f.clock.clone(),
            DualControlPolicy::default(),
        );
        let (a, b) = (
            operator(&f, "A", OperatorRole::CaOperator),
            operator(&f, "B", OperatorRole::CaOperator),
        );
        let r = dual
            .request(
                step(&a),
                &AdminAction::RenewOcspSigner {
                    ca: "nes-ca".into(),
                },
            )
            .unwrap();
        f.store
            .disable_operator(&a.name, &Principal::HostOperator, f.clock.now_unix())
            .unwrap();
        let err = dual
            .approve(step(&b), &r.id, &Recorder::default())
            .unwrap_err();
        assert!(err.to_string().contains("is disabled"), "{err}");
        assert_eq!(dual.get(&r.id).unwrap().status, AdminRequestStatus::Pending);
    }
}
