//! The store: every certificate from the moment its serial is reserved, the CAs, and the
//! hash-chained audit log. One trait, so PostgreSQL can join SQLite without touching the
//! engine.

mod audit;
mod sqlite;

use std::fmt;
use std::str::FromStr;

pub use audit::{AuditEntry, AuditReport};
pub use sqlite::SqliteStore;

use crate::error::Result;
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
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Reserved => "reserved",
            CertStatus::Active => "active",
            CertStatus::Failed => "failed",
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
    /// Stores the signed certificate of a reserved serial.
    fn complete(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        cert_der: Vec<u8>,
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
}
