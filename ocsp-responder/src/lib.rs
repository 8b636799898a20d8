//! The nesca OCSP responder (RFC 6960, profiled by RFC 5019 / RFC 9919).
//!
//! - [`Responder::answer`] is the protocol core: DER OCSPRequest in, DER OCSPResponse out.
//! - Responses without a nonce are pre-produced (RFC 5019 §2.1.2) and kept in a cache that
//!   [`Responder::run_refresher`] keeps current: every serial at start, re-signed when the
//!   store reports a status change, and before nextUpdate comes near.
//! - [`Responder::router`] serves it over HTTP: `POST /ocsp`, `GET /ocsp/{base64}`.
//! - Each served CA answers through its delegated OCSP signer (RFC 6960 §4.2.2.2), whose
//!   certificate travels in every response.
#![forbid(unsafe_code)]

mod budget;
mod cache;
mod cert_id;
mod config;
mod error;
mod http;
mod issuer;
mod metrics;
mod refresher;
mod request;
mod responder;
mod response;
mod source;

#[cfg(test)]
mod bench_tests;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

/// The request parsers as the responder runs them, for the fuzz targets in `fuzz/`: whether
/// `der` is a well-formed OCSPRequest nesca would answer, and whether `encoded` (a GET path
/// segment) decodes to one of at most `max_len` octets. Never panics on any input.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses `der` as an OCSPRequest (RFC 6960 §4.1.1).
    pub fn parse_request(der: &[u8]) -> bool {
        crate::request::parse(der).is_ok()
    }

    /// Decodes a GET path segment, then parses what it carries.
    pub fn parse_get_path(encoded: &str, max_len: usize) -> bool {
        crate::request::decode_get_path(encoded, max_len).is_ok_and(|der| parse_request(&der))
    }
}

pub use config::ResponderConfig;
pub use error::OcspError;
pub use issuer::ServedIssuer;
pub use metrics::{OcspMetrics, Outcome};
pub use request::MAX_NONCE_LEN;
pub use responder::{OcspAnswer, Responder};
pub use response::SignedResponse;
pub use source::{CertState, SourceError, StatusSource};
