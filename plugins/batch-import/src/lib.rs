//! nesca front channel `batch-import`: an institution's e-İmza officer uploads its FRM.01.03
//! application list through an ESHS portal, which forwards it over nesca's mTLS channel
//! listener. The officer's detached CMS signature over the file is what authorises the import
//! (nesca checks it against the officer registered with `nesca institution add`); a list
//! signed on paper is sent with its scan and held until an operator confirms it. The invited
//! people then complete their applications through the same portal (the applicant
//! endpoints). Reading, checking, deciding and storing happen in the host (`import_list`,
//! `applicant`); this plugin is the protocol: `docs/channels/batch-import.md`.
//!
//! `deny`, not `forbid`: the entry point made by `export_plugin!` carries an
//! `#[allow(unsafe_code)]` for its `#[no_mangle]`, which `forbid` would reject. This crate itself
//! contains no unsafe code.
#![deny(unsafe_code)]

mod applicant;
mod protocol;

use nesca_plugin_api::host_api::{ApplicantAnswer, ApplicantCall, ImportList, ListImported};
use nesca_plugin_api::{
    export_plugin, Host, HostError, HttpRequest, HttpResponse, InitError, LogLevel, Plugin,
};
use serde_json::Value;

pub use protocol::{route, ListUpload, Route, UploadError};

/// The plugin: no configuration of its own.
pub struct BatchImport {
    host: Host,
}

/// Why the plugin's configuration is refused at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The section has a key; batch-import takes none.
    #[error("config: unknown key \"{key}\" (batch-import takes no settings)")]
    UnknownKey { key: String },
    /// The section is not a table.
    #[error("config: must be a table")]
    NotATable,
}

/// What the plugin needs of the host: two calls (a trait, so that the protocol is tested
/// with a fake). A refusal is the host's typed [`HostError`].
pub trait ImportHost {
    /// Imports an institution's list ([`Host::import_list`]).
    fn import_list(&self, list: &ImportList) -> Result<ListImported, HostError>;
    /// One step of an invited person's application ([`Host::applicant`]).
    fn applicant(&self, call: &ApplicantCall) -> Result<ApplicantAnswer, HostError>;
}

impl ImportHost for Host {
    fn import_list(&self, list: &ImportList) -> Result<ListImported, HostError> {
        Host::import_list(self, list)
    }
    fn applicant(&self, call: &ApplicantCall) -> Result<ApplicantAnswer, HostError> {
        Host::applicant(self, call)
    }
}

impl Plugin for BatchImport {
    const NAME: &'static str = "batch-import";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn init(config: Value, host: Host) -> Result<Self, InitError> {
        match &config {
            Value::Object(m) if m.is_empty() => Ok(BatchImport { host }),
            Value::Null => Ok(BatchImport { host }),
            Value::Object(m) => Err(ConfigError::UnknownKey {
                key: m.keys().next().cloned().unwrap_or_default(),
            }
            .into()),
            _ => Err(ConfigError::NotATable.into()),
        }
    }

    fn handle_http(&self, request: HttpRequest) -> HttpResponse {
        let response = protocol::handle(&self.host, &request);
        if response.status >= 400 {
            // The endpoint and the code only: a reason can quote what the list held.
            self.host.log(
                LogLevel::Info,
                &format!(
                    "{} {} refused with HTTP {}",
                    request.method, request.path, response.status
                ),
            );
        }
        response
    }
}

export_plugin!(BatchImport);
