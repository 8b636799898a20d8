//! Signature verification in software. Verification lives in `nesca-ca-types`
//! (`ca-types/src/verify.rs`), shared with `crl` and `ocsp-responder`; the key identifier,
//! which only certificate profiles compute, stays here.

use spki::SubjectPublicKeyInfoOwned;

pub use nesca_ca_types::verify::{verify, verify_with, KeyKind};

/// SHA-1 of the subjectPublicKey bits: the key identifier of RFC 5280 §4.2.1.2 method (1).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    use sha1::{Digest, Sha1};
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}
