//! Certificates and their lifecycle: a serial reserved before signing (unique per issuer,
//! RFC 5280 §4.1.2.2), the signed certificate stored or the failure recorded, and the
//! suspensions, releases and revocations recorded once per request id.

use std::str::FromStr;

use super::Completion;
use crate::error::{CaError, Result};
use crate::lifecycle::{LifecycleAction, RequestId, RevocationReason};
use crate::serial::{IssuerId, Serial};
use crate::UnixTime;

column_enum! {
    /// Where a certificate stands in the store.
    #[non_exhaustive]
    pub enum CertStatus in "status" as "certificate status" {
        /// The serial and the linted TBS are recorded; signing has not been confirmed. A row
        /// left in this state by a crash may have been signed: the serial is never reused.
        Reserved = "reserved",
        /// Signed, checked and stored.
        Active = "active",
        /// Signing failed after the reservation; the serial is recorded and never reused.
        Failed = "failed",
        /// Issued and on hold (revoked with reason certificateHold until released).
        Suspended = "suspended",
        /// Issued and revoked for good.
        Revoked = "revoked",
    }
}

/// A status the store does not know is [`CaError::Invalid`] for the field `status`.
impl FromStr for CertStatus {
    type Err = CaError;
    fn from_str(s: &str) -> Result<Self> {
        CertStatus::parse(s)
    }
}

/// Who the certificate is for, as the store indexes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectRecord {
    /// RFC 4514 rendering of the subject, for display.
    pub subject: String,
    /// The holder's T.C. Kimlik No (serialNumber of the subject), when the profile has one.
    pub tckn: Option<crate::Tckn>,
    /// The holder's givenName, when the profile has one.
    pub given_name: Option<String>,
    /// The holder's surname, when the profile has one.
    pub surname: Option<String>,
}

/// A serial about to be signed: written durably before the HSM is asked.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// The issuing CA.
    pub issuer: IssuerId,
    /// The serial to reserve (unique per issuer, RFC 5280 §4.1.2.2).
    pub serial: Serial,
    /// The profile the TBS was built from.
    pub profile: crate::profile::ProfileName,
    /// Who the certificate is for.
    pub subject: SubjectRecord,
    /// notBefore (RFC 5280 §4.1.2.5).
    pub not_before: UnixTime,
    /// notAfter (RFC 5280 §4.1.2.5).
    pub not_after: UnixTime,
    /// The linted TBSCertificate, so a crash between signing and storing still leaves
    /// everything but the signature on record.
    pub tbs_der: Vec<u8>,
    /// Who asked, for the audit record.
    pub actor: crate::Principal,
    /// When.
    pub at: UnixTime,
}

/// The outcome of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// The serial is recorded as reserved.
    Ok,
    /// The serial exists already for this issuer (the unique constraint held).
    SerialTaken,
}

/// A certificate row.
#[derive(Debug, Clone)]
pub struct CertRecord {
    /// The issuing CA.
    pub issuer: IssuerId,
    /// The serial (unique per issuer).
    pub serial: Serial,
    /// The profile the certificate was built from.
    pub profile: crate::profile::ProfileName,
    /// Where it stands.
    pub status: CertStatus,
    /// Who the certificate is for.
    pub subject: SubjectRecord,
    /// notBefore (RFC 5280 §4.1.2.5).
    pub not_before: UnixTime,
    /// notAfter (RFC 5280 §4.1.2.5).
    pub not_after: UnixTime,
    /// When the serial was reserved.
    pub reserved_at: UnixTime,
    /// When the signed certificate was stored.
    pub issued_at: Option<UnixTime>,
    /// The signed certificate, DER, once stored.
    pub cert_der: Option<Vec<u8>>,
    /// Suspended or revoked: since when, and why.
    pub revocation: Option<Revocation>,
}

/// The revocation (or hold) of a certificate as CRLs and OCSP publish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// revocationDate (RFC 5280 §5.1.2.6).
    pub at: UnixTime,
    /// `None`: unspecified, no reasonCode written.
    pub reason: Option<RevocationReason>,
    /// invalidityDate (RFC 5280 §5.3.2), keyCompromise only.
    pub invalidity_date: Option<UnixTime>,
}

/// A lifecycle change to record, already checked for the holder by the registration authority
/// (`ra::lifecycle::Lifecycle`).
/// The store checks the state machine inside its write transaction.
#[derive(Debug, Clone)]
pub struct TransitionWrite {
    /// The request's id: the same id again answers with the first outcome.
    pub request_id: RequestId,
    /// The issuing CA.
    pub issuer: IssuerId,
    /// The certificate's serial.
    pub serial: Serial,
    /// Suspend, release or revoke.
    pub action: LifecycleAction,
    /// On whose request the change is made.
    pub requested_by: RequestedBy,
    /// Who asked, for the audit record.
    pub actor: crate::Principal,
    /// When: the revocationDate of a suspension or revocation.
    pub at: UnixTime,
}

/// On whose request a lifecycle change is made (the `holder` column of a transition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestedBy {
    /// The certificate's holder, who must be its subject (Law 5070: only the holder may
    /// have a NES revoked).
    Holder(crate::Tckn),
    /// The CA's operator, for certificates without a T.C. Kimlik No holder (partner
    /// certificates).
    Operator,
    /// The commitment process: the hold while the holder's signed commitment is awaited, its
    /// release, and the revocation of a missed deadline or an overwritten certificate.
    Commitment,
    /// The holder, whose request an operator took in through `channel` (the admin API).
    HolderThrough(crate::Tckn, HolderChannel),
    /// The provider, without the holder's request, on the grounds the law allows (the admin
    /// API, under dual control).
    Provider(RevocationGrounds),
}

column_enum! {
    /// How a holder's request reached the provider's operator.
    pub enum HolderChannel in "channel" as "holder channel" {
        /// A signed letter.
        Written = "written",
        /// A telephone call, proven with the holder's security word.
        Phone = "phone",
        /// The holder in person, with their identity card.
        InPerson = "in_person",
    }
}

column_enum! {
    /// Why the provider revokes a certificate its holder did not ask to revoke (Law 5070
    /// art. 9: death, legal incapacity, a court decision, information found false, the
    /// provider ceasing operation).
    pub enum RevocationGrounds in "grounds" as "revocation grounds" {
        Death = "death",
        Incapacity = "incapacity",
        CourtDecision = "court_decision",
        FalseInformation = "false_information",
        Cessation = "cessation",
    }
}

impl RequestedBy {
    /// The recorded text: the T.C. Kimlik No, `operator` or `commitment`.
    pub fn to_record(self) -> String {
        match self {
            RequestedBy::Holder(tckn) => tckn.to_string(),
            RequestedBy::Operator => "operator".into(),
            RequestedBy::Commitment => "commitment".into(),
            RequestedBy::HolderThrough(tckn, channel) => format!("{tckn} via {channel}"),
            RequestedBy::Provider(grounds) => format!("provider:{grounds}"),
        }
    }
}

/// What a lifecycle request led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionOutcome {
    /// The issuing CA.
    pub issuer: IssuerId,
    /// The certificate's serial.
    pub serial: Serial,
    /// The status after the change.
    pub status: CertStatus,
    /// The reason recorded, `None` when active again or unspecified.
    pub reason: Option<RevocationReason>,
    /// When the change was recorded.
    pub at: UnixTime,
    /// The request id had been seen: this is the first outcome, nothing was applied again.
    pub replayed: bool,
}

column_enum! {
    /// The verb of a recorded lifecycle change (the `action` column of a transition).
    pub enum TransitionKind in "action" as "lifecycle action" {
        /// Put on hold (certificateHold).
        Suspend = "suspend",
        /// Released from a hold.
        Release = "release",
        /// Revoked for good.
        Revoke = "revoke",
    }
}

/// One recorded lifecycle change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRecord {
    /// The audit sequence number of the change; orders changes.
    pub seq: i64,
    /// The request id it was made under.
    pub request_id: RequestId,
    /// Suspend, release or revoke.
    pub action: TransitionKind,
    /// The status before.
    pub from: CertStatus,
    /// The status after.
    pub to: CertStatus,
    /// The CRLReason (RFC 5280 §5.3.1), `None`: unspecified or none.
    pub reason: Option<RevocationReason>,
    /// invalidityDate (RFC 5280 §5.3.2).
    pub invalidity_date: Option<UnixTime>,
    /// When.
    pub at: UnixTime,
    /// Who asked.
    pub actor: crate::Principal,
}

/// What the OCSP responder needs to know of one serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRecord {
    /// Where it stands.
    pub status: CertStatus,
    /// Suspended or revoked: since when, and why.
    pub revocation: Option<Revocation>,
    /// notAfter (RFC 5280 §4.1.2.5): OCSP answers for it until then.
    pub not_after: UnixTime,
}

/// Certificates from the moment their serial is reserved, and their lifecycle.
///
/// Every write is committed durably before it returns and carries its audit record in the
/// same transaction: if the audit record cannot be written, the change does not happen.
pub trait CertificateStore: Send + Sync {
    /// Records a serial before signing (unique per issuer).
    fn reserve(&self, r: Reservation) -> Result<Reserved>;
    /// Stores the signed certificate of a reserved serial, and in the same transaction what
    /// `then` says: its suspension to await a commitment, its application's outcome.
    fn complete(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        cert_der: Vec<u8>,
        then: Completion,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// Marks a reserved serial as failed (signing did not happen or was not accepted).
    fn fail(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        reason: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// Resolves as `failed` every reservation made before `before` whose signing never
    /// completed (still `reserved`), each with its `fail` audit record naming `actor`, in one
    /// transaction; returns them, oldest first. A reservation completed or failed meanwhile is
    /// not touched. `nesca serve` and `nesca ocsp` run it at start (`nesca_ra::reservations`).
    fn fail_stale_reservations(
        &self,
        before: UnixTime,
        reason: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<Vec<(IssuerId, Serial)>>;
    /// One certificate; any issuer when `issuer` is `None`.
    fn get(&self, issuer: Option<&IssuerId>, serial: &Serial) -> Result<Option<CertRecord>>;
    /// Every certificate row, reservation order.
    fn list(&self, issuer: Option<&IssuerId>) -> Result<Vec<CertRecord>>;
    /// Applies a lifecycle change if the state machine allows it
    /// ([`crate::lifecycle::next_status`]); a request id seen before answers with its first
    /// outcome. One transaction with its audit record.
    fn transition(&self, t: TransitionWrite) -> Result<TransitionOutcome>;
    /// The lifecycle changes of one certificate, oldest first.
    fn transitions(&self, issuer: &IssuerId, serial: &Serial) -> Result<Vec<TransitionRecord>>;
    /// The status of one serial (light: no DER), `None` when the issuer never reserved it.
    fn status(&self, issuer: &IssuerId, serial: &Serial) -> Result<Option<StatusRecord>>;
    /// Serials whose status changed (issued, suspended, released, revoked) after `cursor`,
    /// oldest first, at most `limit`, with the cursor to ask from next.
    fn changes_since(&self, cursor: i64, limit: usize) -> Result<(Vec<(IssuerId, Serial)>, i64)>;
    /// The cursor of the latest status change (0 when there is none).
    fn latest_change(&self) -> Result<i64>;
    /// Returns when a change may have been committed since the last call (on any node that
    /// shares the store), or after `timeout` at the latest. The default waits out the
    /// timeout: its callers poll [`CertificateStore::changes_since`] after it either way.
    fn wait_for_change(&self, timeout: std::time::Duration) {
        std::thread::sleep(timeout);
    }
    /// Issued serials of an issuer after `after`, in serial order, at most `limit`.
    fn serials(
        &self,
        issuer: &IssuerId,
        after: Option<&Serial>,
        limit: usize,
    ) -> Result<Vec<Serial>>;
}
