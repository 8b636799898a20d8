//! The one error type of the registration authority.

/// Why the registration authority refused or failed a request. Every refusal names the field
/// and the rule; a failure underneath keeps its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaError {
    /// Input refused by policy: the field and the rule it broke.
    #[error("{field}: {rule}")]
    Invalid { field: &'static str, rule: String },
    /// The thing the request names does not exist (or is not visible to this principal).
    #[error("{field}: {rule}")]
    NotFound { field: &'static str, rule: String },
    /// The request is valid but its subject is not at a point where it applies (an
    /// application still being processed).
    #[error("{field}: {rule}")]
    Conflict { field: &'static str, rule: String },
    /// Who asks could not be authenticated (a wrong password or code, an expired session).
    /// The rule never says which part was wrong.
    #[error("{field}: {rule}")]
    Unauthenticated { field: &'static str, rule: String },
    /// Too many failed attempts: refused until `until` (`until_text` is it as RFC 3339).
    #[error("{field}: too many failed attempts; try again after {until_text}")]
    Locked {
        field: &'static str,
        until: ca_core::UnixTime,
        until_text: String,
    },
    /// Well-formed, and refused by policy (another person's certificate, one that is no longer
    /// live).
    #[error("{field}: {rule}")]
    Refused { field: &'static str, rule: String },
    /// The same application was refused before; a replay gets the same refusal, as recorded.
    #[error("{refusal}")]
    RefusedBefore { refusal: crate::refusal::Refusal },
    /// The HSM could not generate or wrap a card key (the token's fault, not the request's).
    #[error("hsm_key: {0}")]
    CardKey(#[source] hsm::HsmError),
    /// This process offers no issuance (it was started without a signing CA).
    #[error("{operation}: issuance is not available here")]
    Unavailable { operation: &'static str },
    /// A file could not be written (which directory).
    #[error("{}: {source}", .dir.display())]
    Write {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A message relay (an SMTP server, the SMS program) refused or failed: which relay, and
    /// what it said (one line, never the message).
    #[error("{relay}: {reason}")]
    Relay { relay: String, reason: String },
    /// The revocation status of an officer certificate another ESHS issued could not be had
    /// (its issuer's CRL unreachable, out of date or not verifiable): the list is refused until
    /// it can.
    #[error(
        "signature: the officer's certificate status cannot be checked: {source}; try again later"
    )]
    OfficerStatusUnknown {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The CA, its profiles or its store failed or refused (invalid input and a conflict
    /// become their own variants instead; see `From<CaError>`).
    #[error(transparent)]
    Ca(ca_core::CaError),
    /// The HSM failed.
    #[error(transparent)]
    Hsm(#[from] hsm::HsmError),
}

impl RaError {
    pub(crate) fn invalid(field: &'static str, rule: impl Into<String>) -> RaError {
        RaError::Invalid {
            field,
            rule: rule.into(),
        }
    }
}

/// The store and the profiles refuse with the same kinds of refusal as the registration
/// authority (the store's: a row that changed since the registration authority read it); those
/// become the registration authority's variants with the same field and rule, so a transport
/// maps one set of refusals. Everything else keeps its source.
impl From<ca_core::CaError> for RaError {
    fn from(e: ca_core::CaError) -> Self {
        use ca_core::CaError;
        match e {
            CaError::Invalid { field, rule } => RaError::Invalid { field, rule },
            CaError::Conflict { field, rule } => RaError::Conflict { field, rule },
            other => RaError::Ca(other),
        }
    }
}

/// A refused identity value (a T.C. Kimlik No, a name) is refused input like any other.
impl From<ca_core::IdentityError> for RaError {
    fn from(e: ca_core::IdentityError) -> Self {
        RaError::Invalid {
            field: e.field(),
            rule: e.rule().to_owned(),
        }
    }
}

/// A refused shared value (a serial, an issuer id, an operator's name or role) is refused
/// input, as ca-core reads it.
impl From<ca_core::CaTypesError> for RaError {
    fn from(e: ca_core::CaTypesError) -> Self {
        ca_core::CaError::from(e).into()
    }
}

/// A refused T.C. Kimlik No names its field.
impl From<ca_core::TcknError> for RaError {
    fn from(e: ca_core::TcknError) -> Self {
        RaError::invalid("tckn", e.to_string())
    }
}

/// Shorthand for the registration authority's results.
pub type Result<T, E = RaError> = std::result::Result<T, E>;
