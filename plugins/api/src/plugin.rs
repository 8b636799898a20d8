//! The plugin side: the safe API a plugin author implements ([`Plugin`]) and calls ([`Host`]),
//! and [`export_plugin!`](crate::export_plugin), which turns a `Plugin` into the C entry point.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::abi::{self, HostTable};
use crate::host_api::{
    ApplicantAnswer, ApplicantCall, ApplicationInfo, CertificateInfo, CommitmentAccepted,
    ImportList, Issued, LifecycleCall, LifecycleOutcome, ListImported, LookupApplication,
    LookupCertificate, SubmitApplication, SubmitCommitment, APPLICANT, IMPORT_LIST, LIFECYCLE,
    LOOKUP_APPLICATION, LOOKUP_CERTIFICATE, SUBMIT_APPLICATION, SUBMIT_COMMITMENT,
};
use crate::host_error::HostError;
use crate::loader::{leak_host_table, HostApi};
use crate::payload::{HttpRequest, HttpResponse, LogLevel};

/// Why a plugin's [`Plugin::init`] refused to start: any error type of the plugin's own (its
/// `Display` becomes the host's `PluginError::Init` reason, one line, so it must not hold a
/// secret). `?` converts a plugin's typed error into it and keeps the error's sources.
pub type InitError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A front-channel plugin. Export it with [`export_plugin!`](crate::export_plugin).
///
/// Every method may be called from several threads at once. A panic in any of them is caught at
/// the boundary and reported to the host as an error for that call (status 2); the plugin stays
/// loaded and later calls go on. Build plugins with `panic = "unwind"` (the default).
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's name, `[a-z0-9-]{1,32}` (checked at compile time by `export_plugin!`): the
    /// host serves the plugin under `/channels/{NAME}/…`.
    const NAME: &'static str;
    /// The plugin's version, shown by `nesca plugins list`.
    const VERSION: &'static str;

    /// Builds the plugin from its configuration section (as JSON). Called once per process; an
    /// `Err` stops the host's start-up with its message (do not put secrets in it).
    fn init(config: serde_json::Value, host: Host) -> Result<Self, InitError>
    where
        Self: Sized;

    /// Answers one HTTP request under `/channels/{NAME}/…`.
    fn handle_http(&self, request: HttpRequest) -> HttpResponse;

    /// Called once when the host stops. Does nothing unless overridden.
    fn shutdown(&self) {}
}

/// The host, as a plugin sees it: the narrow host API and logging. Cheap to copy, usable from any
/// thread, valid for the life of the plugin.
#[derive(Clone, Copy)]
pub struct Host {
    // Invariant: a table built by a host (`leak_host_table`, here or in the host binary), never
    // freed. Only this crate constructs a Host.
    table: &'static HostTable,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

impl Host {
    /// A `Host` that serves calls in this process through `api`, as the real host does, for
    /// testing a plugin without loading it. Leaks a small allocation per call.
    pub fn with_api(plugin_name: &str, api: Arc<dyn HostApi>) -> Host {
        Host::from_table(leak_host_table(plugin_name, api))
    }

    /// `table` must be a host's table (the invariant of `table`).
    pub(crate) fn from_table(table: &'static HostTable) -> Host {
        Host { table }
    }

    /// Submits an issuance application.
    pub fn submit_application(&self, application: &SubmitApplication) -> Result<Issued, HostError> {
        self.request(SUBMIT_APPLICATION, application)
    }

    /// Suspends, unsuspends or revokes a certificate on its holder's behalf.
    pub fn lifecycle(&self, call: &LifecycleCall) -> Result<LifecycleOutcome, HostError> {
        self.request(LIFECYCLE, call)
    }

    /// Looks a certificate up by serial (hex).
    pub fn lookup_certificate(&self, serial: &str) -> Result<CertificateInfo, HostError> {
        self.request(
            LOOKUP_CERTIFICATE,
            &LookupCertificate {
                serial: serial.to_owned(),
            },
        )
    }

    /// An application this channel submitted, by its `channel_ref`.
    pub fn lookup_application(&self, channel_ref: &str) -> Result<ApplicationInfo, HostError> {
        self.request(
            LOOKUP_APPLICATION,
            &LookupApplication {
                channel_ref: channel_ref.to_owned(),
            },
        )
    }

    /// Hands the applicant's signed commitment for `serial` to the host, which verifies it,
    /// keeps it as evidence and releases the certificate.
    pub fn submit_commitment(
        &self,
        serial: &str,
        signed_commitment_der: Vec<u8>,
    ) -> Result<CommitmentAccepted, HostError> {
        self.request(
            SUBMIT_COMMITMENT,
            &SubmitCommitment {
                serial: serial.to_owned(),
                signed_commitment_der,
            },
        )
    }

    /// Imports an institution's FRM.01.03 list through the host.
    pub fn import_list(&self, list: &ImportList) -> Result<ListImported, HostError> {
        self.request(IMPORT_LIST, list)
    }

    /// One step of an invited person's completion of their application.
    pub fn applicant(&self, call: &ApplicantCall) -> Result<ApplicantAnswer, HostError> {
        self.request(APPLICANT, call)
    }

    /// Logs through the host's log (never log secrets).
    pub fn log(&self, level: LogLevel, message: &str) {
        abi::export::host_log(self.table, level, message);
    }

    /// Calls `method`. The host's refusals arrive as the [`HostError`] it built; a request that
    /// does not encode or an answer that does not decode (a host of another payload version)
    /// is an [`Internal`](crate::HostErrorCode::Internal) one.
    fn request<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Resp, HostError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| HostError::internal(format!("cannot encode the {method} request: {e}")))?;
        let answer = abi::export::host_call(self.table, method, &body)?;
        serde_json::from_slice(&answer)
            .map_err(|e| HostError::internal(format!("the host sent a bad {method} response: {e}")))
    }
}

/// Whether `name` is a valid plugin name: 1 to 32 bytes of `[a-z0-9-]`.
pub const fn is_valid_plugin_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 32 {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return false;
        }
        i += 1;
    }
    true
}

/// Longest plugin version accepted, in bytes.
pub(crate) const MAX_VERSION_LEN: usize = 64;

/// Whether `version` is a valid plugin version: 1 to 64 bytes of printable UTF-8.
pub fn is_valid_plugin_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= MAX_VERSION_LEN
        && !version.chars().any(char::is_control)
}

/// Used by `export_plugin!`; not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::mem::size_of;

    pub use std::sync::OnceLock;

    use crate::abi::{self, export, PluginTable, RStr, ABI_VERSION};
    use crate::Plugin;

    /// Where the plugin instance lives: one static per exported type, made by the macro (Rust has
    /// no generic statics).
    pub trait Export: Plugin + Sized {
        fn slot() -> &'static OnceLock<Self>;
    }

    /// The table of plugin `P`, for a `static` in the entry point.
    pub const fn table<P: Export>() -> PluginTable {
        PluginTable {
            abi_version: ABI_VERSION,
            table_size: size_of::<PluginTable>() as u32,
            name: RStr::from_static(P::NAME),
            version: RStr::from_static(P::VERSION),
            init: export::init::<P>,
            handle_http: export::handle_http::<P>,
            free_buf: abi::free_buf,
            shutdown: export::shutdown::<P>,
        }
    }
}

/// Exports a [`Plugin`] type as this cdylib's plugin: defines the C entry point
/// `nesca_plugin_entry` returning a static table whose functions decode the payload, call the
/// trait, encode the answer, and catch every panic (status 2) so that none unwinds into the host.
///
/// Use it once, at the crate root of a `cdylib`. The expansion contains no `unsafe` block; its one
/// item the `unsafe_code` lint flags is `#[no_mangle]` on the entry point, which carries its own
/// `#[allow(unsafe_code)]`. So a plugin crate can be `#![deny(unsafe_code)]` but not
/// `#![forbid(unsafe_code)]` (forbid would reject that allow).
///
/// ```ignore
/// struct Echo;
/// impl nesca_plugin_api::Plugin for Echo { /* … */ }
/// nesca_plugin_api::export_plugin!(Echo);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty) => {
        const _: () = {
            impl $crate::__private::Export for $ty {
                fn slot() -> &'static $crate::__private::OnceLock<Self> {
                    static SLOT: $crate::__private::OnceLock<$ty> =
                        $crate::__private::OnceLock::new();
                    &SLOT
                }
            }
            assert!(
                $crate::is_valid_plugin_name(<$ty as $crate::Plugin>::NAME),
                "Plugin::NAME must be 1 to 32 bytes of [a-z0-9-]"
            );
        };

        /// The nesca plugin entry point (ABI in `nesca_plugin_api`).
        // SAFETY: `#[no_mangle]` is what the `unsafe_code` lint flags here: an exported symbol can
        // clash with another of the same name. This one has a name reserved for nesca plugins, the
        // macro is used once per cdylib, and the host opens each plugin with RTLD_LOCAL, so two
        // plugins' entry points never clash. The function itself only returns a pointer to a
        // static, immutable table.
        #[allow(unsafe_code)]
        // `pub` for a cdylib's crate root; invoked in a private module (the ABI's own tests), it
        // is not reachable, and `#[no_mangle]` exports the symbol either way.
        #[allow(unreachable_pub)]
        #[no_mangle]
        pub extern "C" fn nesca_plugin_entry() -> *const $crate::PluginTable {
            static TABLE: $crate::PluginTable = $crate::__private::table::<$ty>();
            &TABLE
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names() {
        for ok in ["echo", "kdhs", "batch-import", "a", "0-9", &"a".repeat(32)] {
            assert!(is_valid_plugin_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Echo",
            "batch_import",
            "a b",
            "é",
            "kdhs/x",
            "../x",
            &"a".repeat(33),
        ] {
            assert!(!is_valid_plugin_name(bad), "{bad}");
        }
    }
}
