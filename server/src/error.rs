//! The one error type of the command line: every failure becomes one line on stderr.

use std::path::Path;

/// Errors of the `nesca` binary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// A configuration value is missing or wrong (field path and rule).
    #[error("{field}: {rule}")]
    Config { field: String, rule: String },
    /// A command-line argument is wrong.
    #[error("{field}: {rule}")]
    Argument { field: &'static str, rule: String },
    /// A file could not be read or written.
    #[error("{op} {path}: {reason}")]
    Io {
        op: &'static str,
        path: String,
        reason: String,
    },
    /// Something exists that the command refuses to overwrite.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(String),
    /// `init` found files of an earlier CA in its directory.
    #[error(
        "{found} already exists: {dir} holds a CA from an earlier init; refusing to overwrite it"
    )]
    AlreadyInitialised { dir: String, found: String },
    /// A tool the command needs is not installed.
    #[error("{what} is not installed ({detail}); install it with: {install}")]
    Missing {
        what: &'static str,
        detail: String,
        install: &'static str,
    },
    /// A plugin-host process (`nesca plugin-host`) could not set itself up.
    #[error("plugin host: {step}: {source}")]
    PluginHost {
        step: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Ca(#[from] ca_core::CaError),
    #[error(transparent)]
    Ra(#[from] nesca_ra::RaError),
    #[error(transparent)]
    Hsm(#[from] hsm::HsmError),
    #[error(transparent)]
    Crl(#[from] crl::CrlError),
    #[error(transparent)]
    Ocsp(#[from] ocsp_responder::OcspError),
}

impl CliError {
    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> CliError + 'a {
        move |e| CliError::Io {
            op,
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn config(field: &str, rule: impl Into<String>) -> CliError {
        CliError::Config {
            field: field.to_string(),
            rule: rule.into(),
        }
    }
}

pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;

/// A name or T.C. Kimlik No refused at the edge reads exactly as ca-core's refusals do.
impl From<ca_core::IdentityError> for CliError {
    fn from(e: ca_core::IdentityError) -> Self {
        CliError::Ca(e.into())
    }
}
