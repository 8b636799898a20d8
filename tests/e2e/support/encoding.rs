//! Text encodings of bytes: standard, URL-safe and percent-encoded base64, hex, SHA-256 hex.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::der::{pem_bodies, pem_encode};

/// Standard base64, as the channel protocol carries bytes.
pub(crate) fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The bytes of a standard base64 string; panics with `what` when it is not one.
#[track_caller]
pub(crate) fn unb64(text: &str, what: &str) -> Vec<u8> {
    B64.decode(text)
        .unwrap_or_else(|e| panic!("{what} is not standard base64 ({e}): {text:?}"))
}

/// Lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Standard base64 (with `+`, `/` and `=` padding) of `der`, on one line.
pub(crate) fn base64_std(der: &[u8]) -> String {
    pem_bodies(&pem_encode("X", der), "X")
        .pop()
        .expect("one PEM block")
}

/// URL-safe base64 without padding (RFC 4648 §5) of `der`.
pub(crate) fn base64_url(der: &[u8]) -> String {
    base64_std(der)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Standard base64 of `der`, percent-encoded as RFC 5019 clients put it in a URL path.
pub(crate) fn base64_percent(der: &[u8]) -> String {
    base64_std(der)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// Lower-case hex of `bytes`, space separated.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
