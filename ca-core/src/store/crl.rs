//! CRL state: the entries of full and delta CRLs (RFC 5280 §5, §5.2.4) read from one
//! snapshot each, and the issuer's one sequence of CRL numbers (RFC 5280 §5.2.3).

use super::Revocation;
use crate::error::Result;
use crate::serial::{IssuerId, Serial};
use crate::UnixTime;

/// An entry of a full CRL: a certificate that is suspended or revoked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The userCertificate serial (RFC 5280 §5.1.2.6).
    pub serial: Serial,
    /// Since when, and why.
    pub revocation: Revocation,
}

/// An entry of a delta CRL: a status change after the base CRL's watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaEntry {
    /// Suspended or revoked now.
    Listed(RevokedEntry),
    /// Released from a hold that the base CRL listed: removeFromCRL (RFC 5280 §5.3.1).
    Removed {
        /// The released certificate's serial.
        serial: Serial,
        /// When the hold was released.
        at: UnixTime,
    },
}

column_enum! {
    /// Full or delta CRL.
    pub enum CrlKind in "kind" as "CRL kind" {
        /// A complete CRL (RFC 5280 §5).
        Full = "full",
        /// A delta CRL (RFC 5280 §5.2.4).
        Delta = "delta",
    }
}

/// A CRL number taken from the issuer's one sequence (RFC 5280 §5.2.3), before signing.
#[derive(Debug, Clone)]
pub struct CrlReservation {
    /// The issuing CA.
    pub issuer: IssuerId,
    /// Full or delta.
    pub kind: CrlKind,
    /// thisUpdate (RFC 5280 §5.1.2.4).
    pub this_update: UnixTime,
    /// nextUpdate (RFC 5280 §5.1.2.5).
    pub next_update: UnixTime,
    /// Who asked, for the audit record.
    pub actor: crate::Principal,
    /// When.
    pub at: UnixTime,
}

/// A CRL the store knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRecord {
    /// The issuing CA.
    pub issuer: IssuerId,
    /// cRLNumber (RFC 5280 §5.2.3).
    pub number: u64,
    /// Full or delta.
    pub kind: CrlKind,
    /// For a delta: the full CRL it builds on.
    pub base_number: Option<u64>,
    /// Every status change up to this audit sequence number is in the CRL.
    pub watermark: i64,
    /// thisUpdate (RFC 5280 §5.1.2.4).
    pub this_update: UnixTime,
    /// nextUpdate (RFC 5280 §5.1.2.5).
    pub next_update: UnixTime,
    /// How many entries it lists.
    pub entries: u64,
    /// Signed and published (a reserved number may never be).
    pub published: bool,
}

/// The number and the base of a CRL about to be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlPlan {
    /// cRLNumber (RFC 5280 §5.2.3) to write.
    pub number: u64,
    /// For a delta: the latest published full CRL.
    pub base: Option<CrlRecord>,
}

/// What CRL generation reads and the CRL numbers it takes.
pub trait CrlStore: Send + Sync {
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
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// The latest published CRL of a kind.
    fn latest_crl(&self, issuer: &IssuerId, kind: CrlKind) -> Result<Option<CrlRecord>>;
}
