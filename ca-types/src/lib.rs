//! The values nesca's CA, CRL and OCSP crates share, and nothing else.
//!
//! - [`Serial`] and [`IssuerId`]: a certificate's serial number (RFC 5280 §4.1.2.2) and the
//!   name of a CA inside nesca.
//! - [`RevocationReason`]: CRLReason (RFC 5280 §5.3.1), as the store, CRLs and OCSP write it.
//! - [`Principal`]: who acts, recorded with every change (the audit, a CRL's publication).
//! - [`Clock`]: injected time ([`SystemClock`], [`FixedClock`] for tests); [`UnixTime`], an
//!   instant as the store keeps it.
//! - [`TbsSigner`]: the signer seam, a CA key that signs TBS bytes (an HSM key with the
//!   feature `hsm`; `testkit::SoftSigner` with the feature `testkit`).
//! - [`verify`]: signature verification in software and the [`KeyKind`] checks.
//!
//! Why a crate of its own: `crl` and `ocsp-responder` depend on these and on nothing else of
//! `ca-core`, so the responder links no SQLite, password hashing or PDF writer, and the
//! status-publishing crates cannot reach the store or the registration authority's types.
//! `ca-core` re-exports every item here at the path it always had.
#![forbid(unsafe_code)]

pub mod clock;
mod error;
mod oids;
pub mod operator;
pub mod principal;
mod reason;
mod serial;
mod signer;
mod time;
pub mod verify;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::CaTypesError;
pub use operator::{OperatorActor, OperatorName, OperatorRole};
pub use principal::{ChannelName, HolderProof, Principal, SystemTask};
pub use reason::RevocationReason;
pub use serial::{IssuerId, Serial};
pub use signer::TbsSigner;
pub use time::UnixTime;
pub use verify::KeyKind;

#[cfg(test)]
mod tests {
    /// The rule this crate exists for: it, `crl` and `ocsp-responder` name neither ca-core
    /// nor the store's and the registration authority's libraries, in any dependency table.
    #[test]
    fn crl_and_ocsp_depend_on_no_store_or_ra_crate() {
        let manifests = [
            ("ca-types", include_str!("../Cargo.toml")),
            ("crl", include_str!("../../crl/Cargo.toml")),
            (
                "ocsp-responder",
                include_str!("../../ocsp-responder/Cargo.toml"),
            ),
        ];
        for (krate, manifest) in manifests {
            for line in manifest.lines().map(str::trim_start) {
                for banned in ["ca-core", "rusqlite", "argon2", "rust_xlsxwriter"] {
                    assert!(
                        !line.starts_with(banned),
                        "{krate}/Cargo.toml depends on {banned}: {line}"
                    );
                }
            }
        }
    }
}
