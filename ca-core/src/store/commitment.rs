//! Commitments (taahhütname): a certificate issued through an identity-card channel stays
//! suspended until its holder's signed commitment arrives, and is revoked
//! (cessationOfOperation) if it does not arrive by the deadline. These are the records the
//! store keeps of that; the checks of the signature are in [`crate::commitment`].

use crate::error::Result;
use crate::serial::{IssuerId, Serial};

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
    /// Unix seconds; accepted up to and including this second.
    pub deadline: i64,
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
    pub channel: String,
    pub channel_ref: String,
    pub text: String,
    pub sha256_hex: String,
    pub deadline: i64,
    pub overwrite: Option<Serial>,
    pub status: CommitmentStatus,
    /// The signed commitment (CMS SignedData, DER), once accepted.
    pub evidence: Option<Vec<u8>>,
    pub accepted_at: Option<i64>,
    pub created_at: i64,
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
    pub wrapped_key: Option<String>,
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
    pub channel: String,
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

/// An accepted commitment's write: the evidence, the release and the supersession.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentAcceptance {
    pub issuer: IssuerId,
    pub serial: Serial,
    /// The verified signed commitment, DER.
    pub evidence: Vec<u8>,
    pub actor: String,
    pub at: i64,
}

/// What accepting a commitment led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentOutcome {
    /// The overwritten certificate revoked as superseded now (or at the first acceptance).
    pub superseded: Option<Serial>,
    /// The same evidence had been accepted before: nothing changed.
    pub replayed: bool,
}

/// The commitments certificates await, and the lifecycle changes their acceptance or
/// expiry makes.
pub trait CommitmentStore: Send + Sync {
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
}
