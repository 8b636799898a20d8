//! The one error type of the responder. Client input never becomes an `OcspError`: a request
//! that is wrong is answered with an OCSP error status. These are failures of configuration,
//! of the store and of the signer, each naming where it happened.

use nesca_ca_types::IssuerId;

use crate::source::SourceError;

/// Where the responder failed.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum OcspError {
    /// The responder configuration is not usable (which setting, and the rule it breaks).
    #[error("OCSP responder configuration {field}: {rule}")]
    Config { field: &'static str, rule: String },
    /// A served issuer's CA or signer certificate is not usable.
    #[error("OCSP issuer {issuer}: {what}: {reason}")]
    Issuer {
        issuer: IssuerId,
        what: &'static str,
        reason: String,
    },
    /// The status source (the store) failed, or the task that asked it did.
    #[error("OCSP status source: {operation}: {source}")]
    Source {
        operation: &'static str,
        #[source]
        source: SourceError,
    },
    /// The signer failed, or what it returned does not verify under its public key (the
    /// response was not served).
    #[error("OCSP signing for issuer {issuer}: {reason}")]
    Signing { issuer: IssuerId, reason: String },
    /// Encoding a response failed (which structure).
    #[error("OCSP DER encoding of {what}: {reason}")]
    Encoding { what: &'static str, reason: String },
}

impl OcspError {
    pub(crate) fn encoding(what: &'static str) -> impl FnOnce(der::Error) -> OcspError {
        move |e| OcspError::Encoding {
            what,
            reason: e.to_string(),
        }
    }

    pub(crate) fn source(operation: &'static str) -> impl FnOnce(SourceError) -> OcspError {
        move |source| OcspError::Source { operation, source }
    }
}
