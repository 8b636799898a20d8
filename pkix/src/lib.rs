//! PKIX verification for nesca, without keys and without I/O.
//!
//! - [`cms`]: verification of a CMS SignedData (RFC 5652 §5) with one signer;
//! - [`chain`]: certification path validation (RFC 5280 §6) through rustls-webpki, and a
//!   certificate's status in its issuer's CRL;
//! - [`subject`]: reading certificate fields (subject attributes, serial, EKU, validity, the
//!   issuer's caIssuers and CRL URLs).
//!
//! Inputs are untrusted: sizes are capped ([`MAX_CMS_LEN`], [`MAX_CERTIFICATE_LEN`]) before
//! parsing and every failure is a [`PkixError`] naming the field and the rule.
#![forbid(unsafe_code)]

mod cert;
pub mod chain;
pub mod cms;
mod digest;
mod error;
mod limits;
mod oids;
mod pubkey;
pub mod subject;
#[cfg(test)]
mod test_support;
mod unique;

pub use error::PkixError;
pub use limits::{MAX_CERTIFICATE_LEN, MAX_CMS_LEN};
