//! The one error type of `ca-core`.

/// Errors of the issuance engine, its profiles and its store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// Input refused by policy: the field and the rule it broke.
    #[error("{field}: {rule}")]
    Invalid { field: &'static str, rule: String },
    /// The built TBSCertificate does not satisfy its profile; nothing was signed.
    #[error("pre-issuance lint failed for profile {profile}: {findings}")]
    Lint {
        profile: &'static str,
        findings: String,
    },
    /// The signed certificate's TBS differs from the linted one, or its signature does not
    /// verify under the issuer's key; the certificate was not stored as issued.
    #[error("post-signing check failed for serial {serial}: {reason}")]
    SignedMismatch { serial: String, reason: String },
    /// Something the configuration says is not acceptable.
    #[error("configuration {field}: {rule}")]
    Config { field: String, rule: String },
    /// No such certificate.
    #[error("certificate {serial} not found")]
    NotFound { serial: String },
    /// A CA exists already where one was to be created.
    #[error("{what} already exists; refusing to overwrite it")]
    AlreadyExists { what: String },
    /// The store failed (which operation, and the database's word).
    #[error("store: {operation}: {reason}")]
    Store {
        operation: &'static str,
        reason: String,
    },
    /// Encoding or decoding DER failed (which structure).
    #[error("DER {what}: {reason}")]
    Der { what: &'static str, reason: String },
    /// The HSM failed.
    #[error(transparent)]
    Hsm(#[from] hsm::HsmError),
}

impl CaError {
    pub(crate) fn invalid(field: &'static str, rule: impl Into<String>) -> Self {
        CaError::Invalid {
            field,
            rule: rule.into(),
        }
    }

    pub(crate) fn der(what: &'static str) -> impl FnOnce(der::Error) -> CaError {
        move |e| CaError::Der {
            what,
            reason: e.to_string(),
        }
    }

    pub(crate) fn store(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> CaError {
        move |e| CaError::Store {
            operation,
            reason: e.to_string(),
        }
    }
}

pub type Result<T, E = CaError> = std::result::Result<T, E>;
