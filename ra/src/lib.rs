//! The registration authority: every decision about applications, production, commitments,
//! partners, institutions, billing and holder requests, as typed services that take the
//! [`Principal`] who acts.
//!
//! A transport (the command line, the channel host, the production line; later the admin
//! API and the portal) parses its input into typed values and names the principal; a service
//! here decides, then calls ca-core, which builds, lints, signs and stores. The aim is that
//! ca-core and the store hold no policy beyond the constraints that keep records consistent;
//! the rules the SQLite store still applies itself are listed in `docs/ARCHITECTURE.md` ("Not
//! there yet"), which also draws the layers.
#![forbid(unsafe_code)]

pub mod ca_status;
pub mod commitment;
pub mod dual_control;
pub mod enrollment;
mod error;
pub mod form_pdf;
pub mod held_lists;
pub mod holder_details;
pub mod institutions;
pub mod leases;
pub mod lifecycle;
pub mod list_import;
pub mod nes;
pub mod notices;
pub mod operators;
pub mod outbox;
pub mod partners;
pub mod portal;
pub mod production;
pub mod refusal;
pub mod reservations;
pub mod transport_keys;
mod turkish;

#[cfg(test)]
mod testkit;

pub use ca_core::card_key;
pub use ca_core::{ChannelName, HolderProof, Principal, SystemTask};
pub use error::{RaError, Result};

/// The serial of a certificate (DER) as nesca stores serials; `None` when it does not parse
/// or is not one nesca could have issued. The rules look a presented certificate up by it.
pub fn certificate_serial(cert_der: &[u8]) -> Option<ca_core::Serial> {
    let hex = nesca_pkix::subject::serial_hex(cert_der).ok()?;
    ca_core::Serial::parse_hex(&hex).ok()
}
