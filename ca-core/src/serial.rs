//! Certificate serial numbers and issuer identifiers: they live in `nesca-ca-types`
//! (`ca-types/src/serial.rs`), which `crl` and `ocsp-responder` share; this is their path in
//! ca-core.

pub use nesca_ca_types::{IssuerId, Serial};
