//! The CA: certificate profiles and their pre-issuance lint, the issuance engine, the
//! lifecycle's states and transitions, serials, the store (role traits, SQLite, the
//! conformance suite) and the audit log.
//!
//! Data flows one way (docs/ARCHITECTURE.md "The layers", "One issuance, end to end"): the
//! registration authority (`ra`) decides what to issue, with typed values ([`Tckn`],
//! [`PersonName`], a [`VerifiedCsr`]); the engine builds the TBSCertificate from a profile,
//! lints it, reserves the serial durably, has the HSM sign, checks what came back, stores the
//! certificate and answers. It refuses anything its profile forbids, and decides nothing else.
#![forbid(unsafe_code)]

pub mod audit_check;
pub mod bootstrap;
pub mod card_key;
pub mod clock;
pub mod csr;
pub mod engine;
mod error;
pub mod ext;
pub mod import_check;
pub mod institution;
pub mod lifecycle;
pub mod name;
pub mod oids;
pub mod partner;
pub mod profile;
mod serial;
mod short_id;
pub mod store;
pub mod transport_key;
pub mod verify;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use clock::{Clock, FixedClock, SystemClock};
pub use csr::{SubjectKey, VerifiedCsr};
pub use error::{CaError, Result};
pub use name::PersonName;
// The identity values live in `nesca-identity`, which the channel plugins link too; these
// paths are the ones ca-core's users have always named. `IdentityError` is here so that a
// caller can convert it (into its own error type) without depending on the crate.
pub use nesca_ca_types::principal;
pub use nesca_ca_types::{
    CaTypesError, ChannelName, HolderProof, OperatorActor, OperatorName, OperatorRole, Principal,
    SystemTask, UnixTime,
};
pub use nesca_identity::{Email, IdentityError, Tckn, TcknError, TrMobile};
pub use partner::{PartnerId, PartnerRecord};
pub use serial::{IssuerId, Serial};

/// RFC 3339 in UTC, whole seconds, of an instant (a [`UnixTime`] or a `SystemTime`).
pub fn rfc3339(t: impl Into<UnixTime>) -> String {
    let secs = t.into().secs();
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}
