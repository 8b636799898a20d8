//! The admin API's records: the registered PKI operators, the dual-control requests that
//! wait for other operators' approval, and the count of security-word checks per
//! certificate. The store keeps them consistent (a name registers once, a certificate
//! authenticates one operator, a request changes state once, an operator approves a request
//! once); who may do what is the registration authority's (`ra::operators`,
//! `ra::dual_control`).

use crate::error::Result;
use crate::serial::{IssuerId, Serial};
use crate::store::CertRecord;
use crate::{OperatorName, OperatorRole, Principal, Tckn, UnixTime};

/// A registered operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    pub name: OperatorName,
    /// The one role the person holds.
    pub role: OperatorRole,
    /// The operator certificate's issuing CA and serial: the certificate that authenticates
    /// them to the admin API.
    pub issuer: IssuerId,
    pub serial: Serial,
    pub created_at: UnixTime,
    /// When the operator was disabled; `None`: active.
    pub disabled_at: Option<UnixTime>,
}

column_enum! {
    /// Where a dual-control request stands.
    pub enum AdminRequestStatus in "status" as "request status" {
        /// Waiting for approvals; expires at its `expires_at`.
        Pending = "pending",
        /// Approved by enough operators; being carried out.
        Approved = "approved",
        /// Carried out; `result` says what it did.
        Executed = "executed",
        /// Approved, but carrying it out was refused; `result` says why.
        Failed = "failed",
        /// Rejected by an operator.
        Rejected = "rejected",
        /// Not approved in time.
        Expired = "expired",
    }
}

/// A new dual-control request.
#[derive(Debug, Clone)]
pub struct NewAdminRequest {
    /// Random, unguessable (128 bits, hex).
    pub id: String,
    /// What is asked (`revoke-certificate`, `add-operator`, …).
    pub action: String,
    /// The action's parameters, JSON, as the registration authority wrote them.
    pub payload: String,
    /// The role whose operators may approve it.
    pub approver_role: OperatorRole,
    pub requested_by: OperatorName,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// The id of the admin API call that made it (`x-request-id`), for its audit record.
    pub trace: String,
}

/// A dual-control request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRequestRecord {
    pub id: String,
    pub action: String,
    pub payload: String,
    pub approver_role: OperatorRole,
    pub requested_by: OperatorName,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub status: AdminRequestStatus,
    /// The other operators who approved it, in order.
    pub approvals: Vec<(OperatorName, UnixTime)>,
    pub decided_at: Option<UnixTime>,
    /// What carrying it out did (executed), why it failed, or who rejected it.
    pub result: Option<String>,
}

/// A certificate search: every given criterion must match.
#[derive(Debug, Clone, Default)]
pub struct CertificateQuery {
    pub tckn: Option<Tckn>,
    pub status: Option<crate::store::CertStatus>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// The admin API's records.
pub trait AdminStore: Send + Sync {
    /// Registers an operator; refuses a name or a certificate already registered
    /// ([`crate::CaError::AlreadyExists`]).
    fn add_operator(&self, operator: OperatorRecord, actor: &Principal, at: UnixTime)
        -> Result<()>;
    fn operator(&self, name: &OperatorName) -> Result<Option<OperatorRecord>>;
    /// The operator a certificate authenticates, if any.
    fn operator_by_certificate(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
    ) -> Result<Option<OperatorRecord>>;
    fn operators(&self) -> Result<Vec<OperatorRecord>>;
    /// Disables an active operator; refuses one that is not registered or not active.
    fn disable_operator(
        &self,
        name: &OperatorName,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<OperatorRecord>;

    /// Records a new pending request.
    fn add_admin_request(&self, request: NewAdminRequest, actor: &Principal) -> Result<()>;
    fn admin_request(&self, id: &str) -> Result<Option<AdminRequestRecord>>;
    /// Requests, newest first; only those with `status` when given.
    fn admin_requests(
        &self,
        status: Option<AdminRequestStatus>,
        limit: u32,
    ) -> Result<Vec<AdminRequestRecord>>;
    /// `trace` (every write below): the id of the admin API call that asks for it
    /// (`x-request-id`, empty for nesca's own tasks), written into the audit record.
    ///
    /// Records `approver`'s approval of a pending request that has not expired at `at`;
    /// refuses the requester and a second approval by the same operator
    /// ([`crate::CaError::Conflict`]). Returns the request as it now stands.
    fn approve_admin_request(
        &self,
        id: &str,
        approver: &OperatorName,
        actor: &Principal,
        at: UnixTime,
        trace: &str,
    ) -> Result<AdminRequestRecord>;
    /// Moves a request from `from` to `to` with its result; refuses it
    /// ([`crate::CaError::Conflict`]) when the request is no longer at `from`, so that
    /// exactly one caller carries a request out.
    // The change (id, from, to, result) and its audit record's actor, time and trace.
    #[allow(clippy::too_many_arguments)]
    fn decide_admin_request(
        &self,
        id: &str,
        from: AdminRequestStatus,
        to: AdminRequestStatus,
        result: &str,
        actor: &Principal,
        at: UnixTime,
        trace: &str,
    ) -> Result<AdminRequestRecord>;

    /// Counts one security-word check of a certificate, unless `limit` checks were counted
    /// since `since` already (older ones are forgotten first): `Ok(n)`, this is the n-th
    /// check in the window; `Err(oldest)`, refused and not counted, the window's oldest
    /// check being at `oldest` (the next check is counted once it leaves the window).
    fn count_security_word_check(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        window: (UnixTime, UnixTime),
        limit: u32,
    ) -> Result<std::result::Result<u32, UnixTime>>;
    /// Forgets a certificate's counted checks (after the right word).
    fn clear_security_word_checks(&self, issuer: &IssuerId, serial: &Serial) -> Result<()>;
    /// Records the argon2id hash of the security word a holder gave when their certificate
    /// was issued outside the institutional channel (`nesca issue --security-word-file`);
    /// refuses a certificate that has one already ([`crate::CaError::AlreadyExists`]).
    fn set_security_word(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        hash: &str,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// The security word's argon2id hash of the certificate `serial`: the one recorded at its
    /// issuance, or the one the holder gave on the application form.
    /// (The application form's is found by serial: an enrollment names its certificate by
    /// serial alone.)
    fn holder_security_word(&self, issuer: &IssuerId, serial: &Serial) -> Result<Option<String>>;

    /// Certificates matching the query.
    fn find_certificates(&self, query: &CertificateQuery) -> Result<Vec<CertRecord>>;
}
