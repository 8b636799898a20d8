//! The store: every certificate from the moment its serial is reserved, the CAs, and the
//! hash-chained audit log. One trait, so PostgreSQL can join SQLite without touching the
//! engine.

mod audit;
mod commitment;
pub mod enrollment;
mod sqlite;

use std::fmt;
use std::str::FromStr;

pub use audit::{AuditEntry, AuditReport};
pub use commitment::{
    ApplicationIssued, CommitmentAcceptance, CommitmentOutcome, CommitmentRecord, CommitmentStatus,
    Completion, FinishedApplication, NewCommitment,
};
pub use enrollment::{
    ApprovalMethod, EOnayConsent, EnrollmentOutcome, EnrollmentRecord, EnrollmentStage,
    EnrollmentWrite, InvoiceLine, InvoicePayer, ProducedEnrollment, PublishedCertificate,
};
/// The lifecycle request id under which a certificate is suspended at issuance to await its
/// commitment (derived from the serial, so a retried write is the same request).
pub use sqlite::hold_request_id as commitment_hold_request_id;
pub use sqlite::SqliteStore;

use crate::error::Result;
use crate::lifecycle::{LifecycleAction, RequestId, RevocationReason};
use crate::partner::{PartnerId, PartnerRecord};
use crate::serial::{IssuerId, Serial};

/// Where a certificate stands in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertStatus {
    /// The serial and the linted TBS are recorded; signing has not been confirmed. A row left
    /// in this state by a crash may have been signed: the serial is never reused.
    Reserved,
    /// Signed, checked and stored.
    Active,
    /// Signing failed after the reservation; the serial is recorded and never reused.
    Failed,
    /// Issued and on hold (revoked with reason certificateHold until released).
    Suspended,
    /// Issued and revoked for good.
    Revoked,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Reserved => "reserved",
            CertStatus::Active => "active",
            CertStatus::Failed => "failed",
            CertStatus::Suspended => "suspended",
            CertStatus::Revoked => "revoked",
        }
    }
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CertStatus {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "reserved" => Ok(CertStatus::Reserved),
            "active" => Ok(CertStatus::Active),
            "failed" => Ok(CertStatus::Failed),
            "suspended" => Ok(CertStatus::Suspended),
            "revoked" => Ok(CertStatus::Revoked),
            other => Err(format!("unknown certificate status \"{other}\"")),
        }
    }
}

/// Who the certificate is for, as the store indexes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectRecord {
    /// RFC 4514 rendering of the subject, for display.
    pub subject: String,
    pub tckn: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
}

/// A serial about to be signed: written durably before the HSM is asked.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub issuer: IssuerId,
    pub serial: Serial,
    pub profile: &'static str,
    pub subject: SubjectRecord,
    pub not_before: i64,
    pub not_after: i64,
    /// The linted TBSCertificate, so a crash between signing and storing still leaves
    /// everything but the signature on record.
    pub tbs_der: Vec<u8>,
    pub actor: String,
    pub at: i64,
}

/// The outcome of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    Ok,
    /// The serial exists already for this issuer (the unique constraint held).
    SerialTaken,
}

/// A certificate row.
#[derive(Debug, Clone)]
pub struct CertRecord {
    pub issuer: IssuerId,
    pub serial: Serial,
    pub profile: String,
    pub status: CertStatus,
    pub subject: SubjectRecord,
    pub not_before: i64,
    pub not_after: i64,
    pub reserved_at: i64,
    pub issued_at: Option<i64>,
    pub cert_der: Option<Vec<u8>>,
    /// Suspended or revoked: since when, and why.
    pub revocation: Option<Revocation>,
}

/// The revocation (or hold) of a certificate as CRLs and OCSP publish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// revocationDate (RFC 5280 §5.1.2.6), unix seconds.
    pub at: i64,
    /// `None`: unspecified, no reasonCode written.
    pub reason: Option<RevocationReason>,
    /// invalidityDate (RFC 5280 §5.3.2), keyCompromise only.
    pub invalidity_date: Option<i64>,
}

/// A lifecycle change to record, already checked for the holder by [`crate::lifecycle::Lifecycle`].
/// The store checks the state machine inside its write transaction.
#[derive(Debug, Clone)]
pub struct TransitionWrite {
    pub request_id: RequestId,
    pub issuer: IssuerId,
    pub serial: Serial,
    pub action: LifecycleAction,
    /// The holder's T.C. Kimlik No, as the request named it.
    pub holder: String,
    pub actor: String,
    pub at: i64,
}

/// What a lifecycle request led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionOutcome {
    pub issuer: IssuerId,
    pub serial: Serial,
    pub status: CertStatus,
    pub reason: Option<RevocationReason>,
    /// When the change was recorded.
    pub at: i64,
    /// The request id had been seen: this is the first outcome, nothing was applied again.
    pub replayed: bool,
}

/// One recorded lifecycle change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRecord {
    /// The audit sequence number of the change; orders changes.
    pub seq: i64,
    pub request_id: String,
    pub action: String,
    pub from: CertStatus,
    pub to: CertStatus,
    pub reason: Option<RevocationReason>,
    pub invalidity_date: Option<i64>,
    pub at: i64,
    pub actor: String,
}

/// An entry of a full CRL: a certificate that is suspended or revoked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedEntry {
    pub serial: Serial,
    pub revocation: Revocation,
}

/// An entry of a delta CRL: a status change after the base CRL's watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaEntry {
    /// Suspended or revoked now.
    Listed(RevokedEntry),
    /// Released from a hold that the base CRL listed: removeFromCRL (RFC 5280 §5.3.1).
    Removed { serial: Serial, at: i64 },
}

/// Full or delta CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlKind {
    Full,
    Delta,
}

impl CrlKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CrlKind::Full => "full",
            CrlKind::Delta => "delta",
        }
    }
}

/// A CRL number taken from the issuer's one sequence (RFC 5280 §5.2.3), before signing.
#[derive(Debug, Clone)]
pub struct CrlReservation {
    pub issuer: IssuerId,
    pub kind: CrlKind,
    pub this_update: i64,
    pub next_update: i64,
    pub actor: String,
    pub at: i64,
}

/// A CRL the store knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRecord {
    pub issuer: IssuerId,
    pub number: u64,
    pub kind: CrlKind,
    /// For a delta: the full CRL it builds on.
    pub base_number: Option<u64>,
    /// Every status change up to this audit sequence number is in the CRL.
    pub watermark: i64,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: u64,
    pub published: bool,
}

/// The number and the base of a CRL about to be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlPlan {
    pub number: u64,
    /// For a delta: the latest published full CRL.
    pub base: Option<CrlRecord>,
}

/// Where a front channel's application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationStatus {
    /// Recorded; issuance under way (or cut off by a crash).
    Pending,
    Issued,
    Refused,
}

impl ApplicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Pending => "pending",
            ApplicationStatus::Issued => "issued",
            ApplicationStatus::Refused => "refused",
        }
    }
}

/// An application a front channel submitted, by the channel's own reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelApplication {
    pub channel: String,
    pub channel_ref: String,
    pub status: ApplicationStatus,
    pub serial: Option<Serial>,
    pub error: Option<String>,
    pub created_at: i64,
    /// The HSM-generated key wrapped for the card, as recorded (the host's JSON).
    pub wrapped_key: Option<String>,
}

/// A person's pre-application, made from one row of an institution's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreApplication {
    pub id: String,
    pub institution: String,
    pub file_sha256: String,
    /// The row of the list it came from.
    pub row: u32,
    pub tckn: String,
    pub given_name: String,
    pub surname: String,
    pub email: String,
    pub mobile: String,
    pub unit: String,
    pub title: Option<String>,
    /// `held` (wet-signed list awaiting confirmation), `invited`, `closed`.
    pub status: String,
    /// The access password's argon2 hash (PHC string), once one was sent.
    pub password_hash: Option<String>,
    pub created_at: i64,
}

/// A message waiting in (or sent from) the notification outbox. The message's text is made
/// when it is sent: the outbox holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: i64,
    /// `access-password`: the access password of the pre-application `subject_ref`.
    pub kind: String,
    pub subject_ref: String,
    /// E-mail address or mobile number.
    pub recipient: String,
    pub attempts: i64,
}

/// What the OCSP responder needs to know of one serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRecord {
    pub status: CertStatus,
    pub revocation: Option<Revocation>,
    pub not_after: i64,
}

/// The role of a CA nesca runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    Root,
    Issuing,
}

impl CaRole {
    pub fn as_str(self) -> &'static str {
        match self {
            CaRole::Root => "root",
            CaRole::Issuing => "issuing",
        }
    }
}

/// A CA nesca runs: its certificate and the token label of its key.
#[derive(Debug, Clone)]
pub struct CaRecord {
    pub id: IssuerId,
    pub role: CaRole,
    pub key_label: String,
    pub cert_der: Vec<u8>,
    /// For an issuing CA: its delegated OCSP signer's key label and certificate.
    pub ocsp_key_label: Option<String>,
    pub ocsp_cert_der: Option<Vec<u8>>,
}

/// Durable storage of certificates, CAs and the audit log.
///
/// Every write is committed durably before it returns and carries its audit record in the
/// same transaction: if the audit record cannot be written, the change does not happen.
pub trait Store: Send + Sync {
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
        actor: &str,
        at: i64,
    ) -> Result<()>;
    /// Marks a reserved serial as failed (signing did not happen or was not accepted).
    fn fail(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        reason: &str,
        actor: &str,
        at: i64,
    ) -> Result<()>;
    /// One certificate; any issuer when `issuer` is `None`.
    fn get(&self, issuer: Option<&IssuerId>, serial: &Serial) -> Result<Option<CertRecord>>;
    /// Every certificate row, reservation order.
    fn list(&self, issuer: Option<&IssuerId>) -> Result<Vec<CertRecord>>;
    /// Registers a CA; refuses an id that exists.
    fn add_ca(&self, ca: CaRecord, actor: &str, at: i64) -> Result<()>;
    /// A CA by id.
    fn ca(&self, id: &IssuerId) -> Result<Option<CaRecord>>;
    /// Walks the audit chain and reports the first break.
    fn verify_audit(&self) -> Result<AuditReport>;

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
    /// Issued serials of an issuer after `after`, in serial order, at most `limit`.
    fn serials(
        &self,
        issuer: &IssuerId,
        after: Option<&Serial>,
        limit: usize,
    ) -> Result<Vec<Serial>>;
    /// Streams every suspended or revoked certificate of an issuer to `sink`, from one
    /// consistent snapshot, without holding them all; returns the snapshot's watermark (the
    /// last audit sequence number it includes).
    fn scan_revoked(
        &self,
        issuer: &IssuerId,
        sink: &mut dyn FnMut(RevokedEntry) -> Result<()>,
    ) -> Result<i64>;
    /// The delta since a base watermark, from one snapshot, with that snapshot's watermark.
    fn delta_since(&self, issuer: &IssuerId, base_watermark: i64)
        -> Result<(Vec<DeltaEntry>, i64)>;
    /// Takes the next CRL number of the issuer (shared by full and delta CRLs). A delta needs
    /// a published full CRL as its base.
    fn reserve_crl(&self, r: CrlReservation) -> Result<CrlPlan>;
    /// Records a reserved CRL as published, with what it covers.
    fn publish_crl(
        &self,
        issuer: &IssuerId,
        number: u64,
        watermark: i64,
        entries: u64,
        actor: &str,
        at: i64,
    ) -> Result<()>;
    /// The latest published CRL of a kind.
    fn latest_crl(&self, issuer: &IssuerId, kind: CrlKind) -> Result<Option<CrlRecord>>;
    /// The CAs nesca runs.
    fn cas(&self) -> Result<Vec<CaRecord>>;
    /// Records a channel's application as pending, unless its reference was seen before: then
    /// nothing is written and the earlier application is returned.
    fn begin_application(
        &self,
        channel: &str,
        channel_ref: &str,
        actor: &str,
        at: i64,
    ) -> Result<Option<ChannelApplication>>;
    /// The outcome of a pending application: what was issued (with the commitment it now
    /// awaits, in the same transaction), or why it was refused.
    fn finish_application(
        &self,
        channel: &str,
        channel_ref: &str,
        outcome: std::result::Result<ApplicationIssued, String>,
        actor: &str,
        at: i64,
    ) -> Result<()>;

    /// Refuses every application still pending, with `reason`: called at start, when no
    /// issuance can be under way, so that an application a crash cut off answers its replay
    /// with a refusal instead of "still being processed" for ever. Returns how many.
    fn abandon_pending_applications(&self, reason: &str, actor: &str, at: i64) -> Result<u64>;

    /// Registers an institution and its e-İmza officer; refuses an id or tax number that
    /// exists. One transaction with its audit record.
    fn add_institution(
        &self,
        institution: crate::institution::InstitutionRecord,
        actor: &str,
        at: i64,
    ) -> Result<()>;
    /// An institution by id.
    fn institution(
        &self,
        id: &crate::institution::InstitutionId,
    ) -> Result<Option<crate::institution::InstitutionRecord>>;
    /// Every institution.
    fn institutions(&self) -> Result<Vec<crate::institution::InstitutionRecord>>;
    /// Imports a list in one transaction: the list's record (its digest: the same file again
    /// writes nothing and answers `replayed`), a pre-application per row whose person has no
    /// open application, an outbox message per invited person, one audit record.
    fn import_list(
        &self,
        import: crate::institution::ListImport,
    ) -> Result<crate::institution::ImportOutcome>;
    /// Confirms a wet-signed list after an operator saw the paper: its held rows are invited
    /// (one access-password message each), in one transaction. Returns how many.
    fn confirm_list(
        &self,
        institution: &crate::institution::InstitutionId,
        file_sha256: &str,
        actor: &str,
        at: i64,
    ) -> Result<u64>;
    /// The pre-applications of an institution, oldest list first, in row order.
    fn pre_applications(
        &self,
        institution: &crate::institution::InstitutionId,
    ) -> Result<Vec<PreApplication>>;
    /// A pre-application by id.
    fn pre_application(&self, id: &str) -> Result<Option<PreApplication>>;
    /// Outbox messages due at `at`, oldest first, at most `limit`.
    fn outbox_due(&self, at: i64, limit: u32) -> Result<Vec<OutboxMessage>>;
    /// Every outbox message with its status (`pending`, `sent`).
    fn outbox(&self) -> Result<Vec<(OutboxMessage, String)>>;
    /// Records the hash of the access password about to be sent to an invited person.
    fn set_access_password(&self, id: &str, hash: &str, actor: &str, at: i64) -> Result<()>;
    /// Records one delivery attempt: sent, or failed with the error and when to try again.
    fn outbox_attempt(
        &self,
        id: i64,
        result: std::result::Result<(), (String, i64)>,
        at: i64,
    ) -> Result<()>;

    /// The commitment a certificate awaits or received.
    fn commitment(&self, serial: &Serial) -> Result<Option<CommitmentRecord>>;
    /// Accepts a verified signed commitment, in one transaction: the evidence and its audit
    /// record, the release of the suspension, and the revocation (superseded) of the
    /// certificate it overwrites. Refused after the deadline or when not pending (the same
    /// evidence again answers `replayed`).
    fn accept_commitment(&self, a: CommitmentAcceptance) -> Result<CommitmentOutcome>;
    /// Revokes (cessationOfOperation) every certificate whose commitment is pending past its
    /// deadline at `at`, each in one transaction with its commitment marked expired. Returns
    /// the serials revoked.
    fn expire_commitments(&self, actor: &str, at: i64) -> Result<Vec<Serial>>;
    /// A channel's application by its reference.
    fn application(&self, channel: &str, channel_ref: &str) -> Result<Option<ChannelApplication>>;

    /// Registers a licensed ESHS partner; refuses an id that exists
    /// ([`crate::CaError::AlreadyExists`]). One transaction with its audit record.
    fn add_partner(&self, partner: PartnerRecord, actor: &str, at: i64) -> Result<()>;
    /// Deactivates a partner: no new certificate is issued to it. Its certificates stay as
    /// they are (revoke them one by one). Refuses an unknown or already inactive partner.
    fn deactivate_partner(&self, id: &PartnerId, actor: &str, at: i64) -> Result<()>;
    /// A partner by id.
    fn partner(&self, id: &PartnerId) -> Result<Option<PartnerRecord>>;
    /// Every registered partner, registration order.
    fn partners(&self) -> Result<Vec<PartnerRecord>>;

    /// Applies one step of an invited person's completion (see [`EnrollmentWrite`]).
    fn enrollment_write(&self, w: EnrollmentWrite) -> Result<EnrollmentOutcome>;
    /// The id of the person's open (not closed) pre-application.
    fn open_pre_application(&self, tckn: &str) -> Result<Option<String>>;
    /// An enrollment by its pre-application id.
    fn enrollment(&self, pre_application: &str) -> Result<Option<EnrollmentRecord>>;
    /// Approved enrollments due for production at `at`, and produced ones whose card
    /// package is not written yet.
    fn enrollments_due(&self, at: i64, limit: u32) -> Result<Vec<EnrollmentRecord>>;
    /// An applicant session by the SHA-256 of its token: the pre-application and expiry.
    fn applicant_session(&self, token_sha256: &str) -> Result<Option<(String, i64)>>;
    /// The person's recorded e-Onay consent.
    fn eonay_consent(&self, tckn: &str) -> Result<Option<EOnayConsent>>;
    /// The invoice lines of an institution's lists for a month (`YYYY-MM`).
    fn invoice_lines(&self, institution: &str, month: &str) -> Result<Vec<InvoiceLine>>;
    /// The latest expiry of the person's certificates in use after `at`.
    fn current_not_after(&self, tckn: &str, at: i64) -> Result<Option<i64>>;
    /// Issued certificates the public lookup may show: by serial, or by holder.
    fn published_certificates(
        &self,
        serial: Option<&Serial>,
        tckn: Option<&str>,
    ) -> Result<Vec<PublishedCertificate>>;
}
