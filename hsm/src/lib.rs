//! PKCS#11 access for nesca: the only crate that talks to an HSM.
//!
//! One [`Hsm`] per process: it loads the module, calls `C_Initialize` once with OS locking
//! (SoftHSM corrupts its heap under concurrent sessions without it), logs the user in once
//! through a session kept open for the life of the process, and signs on a bounded set of
//! worker threads that each own one session (PKCS#11 sessions are not `Sync`, and a mutex
//! around one session halves throughput).
//!
//! A token that goes away (removed, its device or store unreachable, the module reset) is
//! reconnected to by the signing path itself: `C_Finalize`, `C_Initialize`, the token found
//! again by label, a new login, at most once per pause (250 ms, doubling to 1 s). Meanwhile
//! signing fails at once with [`HsmError::TokenLost`] (transient: callers answer "try later"),
//! and once the token is back it signs again without a restart (`module.rs`, `reconnect`).
//!
//! Keys are generated inside the token as sensitive and non-extractable; [`KeySigner`] signs
//! with them and plugs into the RustCrypto `x509-cert` / `x509-ocsp` builders directly.
//! The one exception is a card key for the KDHS channel ([`Hsm::generate_wrapped_card_key`]):
//! generated as session objects, leaving the HSM only wrapped for the card, and destroyed.
//! Its AES key wrap is exactly RFC 5649 ([`Hsm::aes_key_wrap_check`]; `kwp.rs`).
#![deny(unsafe_code)]

mod error;
mod key;
mod kwp;
mod module;
mod signer;
mod softhsm_guard;
mod store_lock;
mod workers;
mod wrap;

pub use error::{ErrorClass, HsmError};
pub use key::{KeyAlgorithm, KeyProtection};
pub use kwp::{AesKeyWrapCheck, AesKeyWrapMechanism};
pub use module::{Hsm, HsmConfig};
pub use signer::{HsmSignature, KeySigner, PublicKey};
pub use wrap::{check_transport_key, WrapPolicy, WrapScheme, WrappedCardKey};
