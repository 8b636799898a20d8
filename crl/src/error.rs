//! The one error type of the crate. Every variant says where it failed: which field of the
//! header, which entry (by its position in the source), which step of signing or publication.

use std::path::PathBuf;

use nesca_ca_types::CaTypesError;

use crate::source::SourceError;

/// Why a CRL was not generated, not published, or a schedule refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// The entry source (the store) failed while yielding entry `index` (0-based).
    #[error("entry source: at entry {index}: {reason}")]
    Source { index: u64, reason: String },

    /// Entry `index` (0-based, in source order) cannot be encoded or breaks a rule of
    /// RFC 5280 §5.1.2.6 / §5.3; nothing was signed.
    #[error("encode revokedCertificates entry {index} (serial {serial}): {rule}")]
    Entry {
        index: u64,
        serial: String,
        rule: String,
    },

    /// A time X.509 cannot carry here (RFC 5280 §4.1.2.5: 1970 through 9999-12-31T23:59:59Z):
    /// which field (thisUpdate, revocationDate, ...), the time, and the bound it is beyond.
    #[error("CRL {field}: {unix} is {rule} and cannot be encoded")]
    Time {
        field: &'static str,
        unix: i64,
        rule: &'static str,
    },

    /// A header field cannot be built (a time out of range, a URL that is not IA5, the
    /// issuer certificate's extensions).
    #[error("CRL header {field}: {rule}")]
    Header { field: &'static str, rule: String },

    /// The TBSCertList breaks RFC 5280 §5 / docs/STANDARDS.md "CRLs"; nothing was signed.
    /// Each finding names its field.
    #[error("CRL lint failed before signing: {}", findings.join("; "))]
    Lint { findings: Vec<String> },

    /// Encoding or re-decoding DER failed (which structure).
    #[error("DER {what}: {reason}")]
    Der { what: &'static str, reason: String },

    /// The CRL would exceed the largest DER length nesca writes (and the `der` crate reads).
    #[error("CRL too large: {what} of {bytes} bytes exceeds the {max}-byte DER limit")]
    TooLarge {
        what: &'static str,
        bytes: u64,
        max: u64,
    },

    /// Another process (node) kept publishing the issuer's CRLs for as long as this one
    /// waited for its turn; nothing was generated.
    #[error("another process is publishing the CRLs of {issuer}; try again")]
    Busy { issuer: String },

    /// The CRL source (the store) failed: reserving a CRL number, reading entries, recording
    /// publication.
    #[error("store: {0}")]
    Store(#[source] SourceError),

    /// The signer (the HSM) failed.
    #[error("sign: {0}")]
    Sign(#[source] CaTypesError),

    /// The signature returned by the signer does not verify under the issuer certificate's
    /// key; nothing was written.
    #[error("signature check after signing: {0}")]
    Verify(#[source] CaTypesError),

    /// Writing the finished CertificateList to the output failed.
    #[error("write CRL output: {0}")]
    Output(#[source] std::io::Error),

    /// A step of atomic publication failed (`step` names it: "create temporary file",
    /// "fsync temporary file", "lock directory", "read the published CRL", "rename",
    /// "fsync directory", ...).
    #[error("publish {step} {}: {source}", path.display())]
    Publish {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file name given to the publisher is not a plain file name.
    #[error("publish: file name {name:?}: {rule}")]
    FileName { name: String, rule: &'static str },

    /// A schedule setting is not acceptable (which field, which rule).
    #[error("CRL schedule {field}: {rule}")]
    Schedule { field: &'static str, rule: String },
}

impl CrlError {
    pub(crate) fn der(what: &'static str) -> impl FnOnce(der::Error) -> CrlError {
        move |e| CrlError::Der {
            what,
            reason: e.to_string(),
        }
    }

    pub(crate) fn header(field: &'static str, rule: impl Into<String>) -> CrlError {
        CrlError::Header {
            field,
            rule: rule.into(),
        }
    }
}
