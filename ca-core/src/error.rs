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
    /// The store failed or refused (which operation, and why); `source` is the database's
    /// error when there is one.
    #[error("store: {operation}: {reason}")]
    Store {
        operation: &'static str,
        reason: String,
        #[source]
        source: Option<StoreSource>,
    },
    /// A file or directory that holds secrets or personal data (the database, its WAL, the
    /// directory they are in) is open to group or others, or its mode cannot be read or set:
    /// the store is not opened. `fix` says what to run.
    #[error("{path} {problem}; {fix}")]
    Exposed {
        path: String,
        problem: String,
        fix: &'static str,
        #[source]
        source: Option<std::io::Error>,
    },
    /// Encoding or decoding DER failed (which structure); `source` is the der crate's error
    /// when there is one.
    #[error("DER {what}: {reason}")]
    Der {
        what: &'static str,
        reason: String,
        #[source]
        source: Option<der::Error>,
    },
    /// The request is valid but the record is not at a point where it applies (an
    /// application at another stage): HTTP 409.
    #[error("{field}: {rule}")]
    Conflict { field: &'static str, rule: String },
    /// The HSM failed.
    #[error(transparent)]
    Hsm(#[from] hsm::HsmError),
    /// A signer that is not an HSM key failed, or a key or signature check of
    /// `nesca-ca-types` refused (its message unchanged).
    #[error(transparent)]
    Types(nesca_ca_types::CaTypesError),
}

impl CaError {
    pub(crate) fn invalid(field: &'static str, rule: impl Into<String>) -> Self {
        CaError::Invalid {
            field,
            rule: rule.into(),
        }
    }

    /// A DER failure of `what`, keeping the der crate's error as the source.
    pub fn der(what: &'static str) -> impl FnOnce(der::Error) -> CaError {
        move |e| CaError::Der {
            what,
            reason: e.to_string(),
            source: Some(e),
        }
    }

    /// A failure of the store's `operation`, keeping the database's error as the source.
    pub(crate) fn store<E: Into<StoreSource>>(
        operation: &'static str,
    ) -> impl FnOnce(E) -> CaError {
        move |e| {
            let e = e.into();
            CaError::Store {
                operation,
                reason: e.to_string(),
                source: Some(e),
            }
        }
    }

    /// Whether this is the store being unreachable (the database server down or restarting,
    /// its connection lost), which a caller may answer with "try later" (HTTP 503, OCSP
    /// tryLater) rather than as a failure of the request.
    pub fn is_store_unavailable(&self) -> bool {
        matches!(self, CaError::Store { source: Some(s), .. } if s.is_unavailable())
    }
}

/// The database error under a [`CaError::Store`]: SQLite's or PostgreSQL's, kept as it came.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreSource {
    /// SQLite (`rusqlite`).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL: the server's error, the connection's, or a column nesca cannot read.
    #[error(transparent)]
    Postgres(#[from] crate::store::PgError),
    /// The failure of the writer's batch this write was part of (every write of the batch
    /// shares it).
    #[error(transparent)]
    Batch(std::sync::Arc<CaError>),
}

impl StoreSource {
    /// The server cannot be reached or the connection was lost (not a refusal of the SQL).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreSource::Sqlite(_) => false,
            StoreSource::Postgres(e) => e.is_unavailable(),
            StoreSource::Batch(e) => e.is_store_unavailable(),
        }
    }
}

pub type Result<T, E = CaError> = std::result::Result<T, E>;

/// A refused identity value (a person name, a contact detail) is refused input like any
/// other: it becomes [`CaError::Invalid`] with the same field and rule, so `?` works on
/// `nesca_identity` parsers and the message is the one `CaError` always gave.
impl From<nesca_identity::IdentityError> for CaError {
    fn from(e: nesca_identity::IdentityError) -> Self {
        CaError::Invalid {
            field: e.field(),
            rule: e.rule().to_owned(),
        }
    }
}

/// A value of `nesca-ca-types` refused as input is [`CaError::Invalid`] with the same field
/// and rule, and an HSM failure while signing is [`CaError::Hsm`], as they were before those
/// types left ca-core; anything else keeps its own variant in [`CaError::Types`].
impl From<nesca_ca_types::CaTypesError> for CaError {
    fn from(e: nesca_ca_types::CaTypesError) -> Self {
        use nesca_ca_types::CaTypesError as T;
        match e {
            T::Invalid { field, rule } => CaError::Invalid { field, rule },
            T::Hsm(e) => CaError::Hsm(e),
            other => CaError::Types(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_der_failures_keep_their_source() {
        use std::error::Error as _;
        let e = CaError::store("read")(rusqlite::Error::InvalidQuery);
        assert_eq!(
            e.to_string(),
            format!("store: read: {}", rusqlite::Error::InvalidQuery)
        );
        assert!(e
            .source()
            .and_then(|s| s.downcast_ref::<StoreSource>())
            .is_some_and(|s| matches!(s, StoreSource::Sqlite(_))));
        let der = <x509_cert::Certificate as der::Decode>::from_der(b"\x30").unwrap_err();
        let e = CaError::der("Certificate")(der);
        assert!(e.to_string().starts_with("DER Certificate: "), "{e}");
        assert!(e.source().is_some_and(|s| s.is::<der::Error>()));
    }

    #[test]
    fn identity_errors_become_invalid_with_the_same_message() {
        let id = crate::PersonName::parse("given-name", "").unwrap_err();
        let ca = CaError::from(id.clone());
        assert_eq!(ca.to_string(), id.to_string());
        assert_eq!(ca.to_string(), "given-name: must not be empty");
        assert!(matches!(
            ca,
            CaError::Invalid {
                field: "given-name",
                ..
            }
        ));
        // And through `?`, as ca-core's own callers use it.
        fn parse() -> Result<crate::PersonName> {
            Ok(crate::PersonName::parse("surname", "A1")?)
        }
        assert!(matches!(
            parse(),
            Err(CaError::Invalid {
                field: "surname",
                ..
            })
        ));
    }

    #[test]
    fn shared_type_errors_keep_their_variant_and_message() {
        let e = CaError::from(
            "keycompromise"
                .parse::<crate::lifecycle::RevocationReason>()
                .unwrap_err(),
        );
        assert!(
            matches!(
                e,
                CaError::Invalid {
                    field: "reason",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().starts_with("reason: unknown reason"), "{e}");
        let e = CaError::from(nesca_ca_types::CaTypesError::Signer {
            rule: "token went away".into(),
        });
        assert!(matches!(e, CaError::Types(_)), "{e}");
        assert_eq!(e.to_string(), "token went away");
    }
}
