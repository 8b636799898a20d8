//! Commitments (taahhütname): a certificate issued through an identity-card channel stays
//! suspended until its holder's signed commitment arrives, and is revoked
//! (cessationOfOperation) if it does not arrive by the deadline. These are the records the
//! store keeps of that; the checks of the signature are in [`crate::commitment`].

use super::CertStatus;
use crate::error::Result;
use crate::serial::{IssuerId, Serial};
use crate::UnixTime;

/// Where a commitment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitmentStatus {
    /// Awaited until the deadline; the certificate is suspended.
    Pending,
    /// The signed commitment arrived, verified and kept as evidence; the certificate was
    /// released.
    Accepted,
    /// The deadline passed; the certificate was revoked (cessationOfOperation).
    Expired,
}

impl CommitmentStatus {
    /// The status as the store writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitmentStatus::Pending => "pending",
            CommitmentStatus::Accepted => "accepted",
            CommitmentStatus::Expired => "expired",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<CommitmentStatus> {
        match s {
            "pending" => Some(CommitmentStatus::Pending),
            "accepted" => Some(CommitmentStatus::Accepted),
            "expired" => Some(CommitmentStatus::Expired),
            _ => None,
        }
    }
}

/// A commitment to await, recorded with the application's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCommitment {
    /// The text the holder signs (UTF-8).
    pub text: String,
    /// SHA-256 of `text`, lower-case hex.
    pub sha256_hex: String,
    /// Accepted up to and including this second.
    pub deadline: UnixTime,
    /// The holder's certificate that the new one overwrites on the card: revoked as
    /// superseded when the commitment is accepted.
    pub overwrite: Option<Serial>,
}

/// A commitment as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentRecord {
    pub issuer: IssuerId,
    pub serial: Serial,
    /// The channel (plugin) that submitted the application.
    pub channel: crate::ChannelName,
    pub channel_ref: String,
    pub text: String,
    pub sha256_hex: String,
    /// Accepted up to and including this second.
    pub deadline: UnixTime,
    pub overwrite: Option<Serial>,
    pub status: CommitmentStatus,
    /// The signed commitment (CMS SignedData, DER), once accepted.
    pub evidence: Option<Vec<u8>>,
    pub accepted_at: Option<UnixTime>,
    pub created_at: UnixTime,
}

impl CommitmentRecord {
    /// SHA-256 of the evidence (the signed commitment), lower-case hex, once accepted.
    pub fn evidence_sha256(&self) -> Option<String> {
        use sha2::Digest as _;
        self.evidence
            .as_deref()
            .map(|e| hex::encode(sha2::Sha256::digest(e)))
    }
}

/// What an issued channel application leaves besides its serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationIssued {
    pub serial: Serial,
    /// The HSM-generated key wrapped for the card (the host's JSON), so that a replay can
    /// answer with it: the HSM copy no longer exists.
    pub wrapped_key: Option<crate::card_key::WrappedCardKey>,
    /// The commitment the certificate now waits for.
    pub commitment: Option<NewCommitment>,
}

impl ApplicationIssued {
    /// An issued application with nothing else to record.
    pub fn plain(serial: Serial) -> ApplicationIssued {
        ApplicationIssued {
            serial,
            wrapped_key: None,
            commitment: None,
        }
    }
}

/// A channel application's outcome, written in the transaction that stores its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedApplication {
    pub channel: crate::ChannelName,
    pub channel_ref: String,
    pub issued: ApplicationIssued,
    /// An institutional enrollment this certificate produces (and its invoice line).
    pub production: Option<super::ProducedEnrollment>,
}

/// What is written in the same transaction as a signed certificate, so that no crash can
/// leave the certificate active before its commitment, or issued without its application's
/// outcome (and the commitment it awaits) on record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// Suspend the certificate at once (under [`crate::store::commitment_hold_request_id`]).
    pub hold: bool,
    /// Record this pending application as issued.
    pub application: Option<FinishedApplication>,
}

/// A certificate status the registration authority read and decided on: the write that
/// carries it is refused ([`crate::CaError::Conflict`], nothing written) unless the
/// certificate still has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedCertificate {
    pub serial: Serial,
    /// The status it had when read.
    pub status: CertStatus,
}

/// An accepted commitment's write, as `ra::commitment` decided it: the evidence, the release
/// of the suspended certificate and, when the overwritten certificate was live, its
/// revocation as superseded. Every expectation is checked before anything is written: a row
/// that moved meanwhile refuses the whole write with [`crate::CaError::Conflict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentAcceptance {
    pub issuer: IssuerId,
    pub serial: Serial,
    /// The verified signed commitment, DER.
    pub evidence: Vec<u8>,
    /// The commitment's status when read (pending): it becomes accepted from that.
    pub from: CommitmentStatus,
    /// The certificate's status when read (suspended): it is released from that.
    pub certificate_from: CertStatus,
    /// The overwritten certificate to revoke as superseded, with its status when read.
    pub supersede: Option<ExpectedCertificate>,
    pub actor: crate::Principal,
    pub at: UnixTime,
}

/// What accepting a commitment led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentOutcome {
    /// The overwritten certificate revoked as superseded now (or at the first acceptance).
    pub superseded: Option<Serial>,
    /// The same evidence had been accepted before: nothing changed.
    pub replayed: bool,
}

/// An overdue commitment's write, as `ra::commitment` decided it: the commitment is marked
/// expired and, when its certificate is still suspended awaiting it, the certificate is
/// revoked (cessationOfOperation) through the lifecycle's transition. Refused with
/// [`crate::CaError::Conflict`], nothing written, when a row moved since it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentExpiry {
    pub issuer: IssuerId,
    pub serial: Serial,
    /// The commitment's status when read (pending): it becomes expired from that.
    pub from: CommitmentStatus,
    /// Revoke the certificate from this status (suspended); `None`: it is revoked or past
    /// its notAfter already, only the commitment is marked.
    pub revoke_from: Option<CertStatus>,
    pub actor: crate::Principal,
    pub at: UnixTime,
}

/// The commitments certificates await, and the lifecycle changes their acceptance or
/// expiry makes. The rules (in time? which certificate to supersede? overdue?) are
/// `ra::commitment`'s; the writes only check that the rows are still as the RA read them.
pub trait CommitmentStore: Send + Sync {
    /// The commitment a certificate awaits or received.
    fn commitment(&self, serial: &Serial) -> Result<Option<CommitmentRecord>>;
    /// The commitments still pending whose deadline is before `at`, earliest deadline first,
    /// at most `limit`.
    fn pending_commitments_due(&self, at: UnixTime, limit: usize) -> Result<Vec<CommitmentRecord>>;
    /// Writes an accepted commitment in one transaction: the evidence and its audit record,
    /// the release of the suspension, the revocation (superseded) of the overwritten
    /// certificate if the acceptance names it. `Conflict` when an expectation no longer holds.
    fn accept_commitment(&self, a: CommitmentAcceptance) -> Result<()>;
    /// Writes an overdue commitment in one transaction: marked expired with its audit record,
    /// and the certificate revoked if the expiry says so. `Conflict` when an expectation no
    /// longer holds.
    fn expire_commitment(&self, e: CommitmentExpiry) -> Result<()>;
}
