//! Full and delta CRLs for nesca (RFC 5280 §5; docs/STANDARDS.md "CRLs").
//!
//! - [`generate`] streams revoked entries from the store into a TBSCertList v2, lints it,
//!   has the CA key sign it, verifies the signature and writes the CertificateList.
//!   A million entries stay a single buffer of encoded bytes, never a million structs.
//! - [`Publisher`] puts the result in place atomically for the HTTP server, never replacing
//!   a published CRL with one of a lower number.
//! - [`CrlSchedule`] says when a full or a delta CRL is due and how long each is valid.
//! - [`CrlIssuer`] ties them to the store, which it reaches through [`source::CrlSource`].
//!
//! Modules: `tlv` hand-written DER for what is written per entry, `entry` the
//! revokedCertificates entries, `header` the rest of the TBSCertList with `der`, `lint` the
//! checks before signing, `generate` the assembly, `publish` and `schedule`.
#![forbid(unsafe_code)]

mod entry;
mod error;
mod generate;
mod header;
mod lint;
mod publish;
mod schedule;
mod service;
pub mod source;
mod tlv;

#[cfg(test)]
mod testkit;

pub use entry::CrlEntry;
pub use error::CrlError;
pub use generate::{generate, CrlSummary};
pub use header::{CrlHeader, CrlKind, CrlType};
pub use publish::{delta_file_name, file_name, full_file_name, PublishOutcome, Publisher};
pub use schedule::{CrlKindDue, CrlSchedule};
pub use service::{CrlIssuer, Published};
pub use source::{CrlSource, SourceError};
