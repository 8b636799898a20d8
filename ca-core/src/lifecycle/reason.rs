//! CRLReason (RFC 5280 §5.3.1): the type lives in `nesca-ca-types`
//! (`ca-types/src/reason.rs`), shared with `crl` and `ocsp-responder`.

pub use nesca_ca_types::RevocationReason;
