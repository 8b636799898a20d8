//! The one error type of the `hsm` crate.
//!
//! Every PKCS#11 failure keeps the function that failed and its CKR code, as cryptoki reports
//! them, so that an operator reads `C_Login failed: CKR_PIN_INCORRECT` and not "HSM error".

use cryptoki::error::{Error as CkError, RvError};

/// Whether retrying can help (docs/STANDARDS.md "HSM errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The session or device went away; re-opening sessions and retrying can succeed.
    Transient,
    /// Retrying the same call will fail the same way (wrong PIN, key missing, bad mechanism).
    Permanent,
}

/// Errors of the `hsm` crate.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// A PKCS#11 function returned a CKR code other than CKR_OK.
    #[error("{function} failed: {code}")]
    Pkcs11 {
        /// The PKCS#11 function, e.g. `C_Sign`.
        function: String,
        /// The CKR code name, e.g. `CKR_PIN_INCORRECT`.
        code: String,
        /// The code itself, for classification.
        rv: RvError,
    },
    /// The PKCS#11 module could not be loaded.
    #[error("cannot load PKCS#11 module {path}: {reason}")]
    ModuleLoad { path: String, reason: String },
    /// A file the module needs is missing (SoftHSM answers only CKR_GENERAL_ERROR for these).
    #[error("{what} not found: {path}")]
    MissingFile { what: &'static str, path: String },
    /// No slot holds a token with the configured label.
    #[error("no token labelled \"{label}\" in any slot of the PKCS#11 module (slots with a token: {available})")]
    TokenNotFound { label: String, available: String },
    /// No key with that label exists on the token.
    #[error("key \"{label}\" not found on the token")]
    KeyNotFound { label: String },
    /// A key with that label exists already (init refuses to overwrite keys).
    #[error("key \"{label}\" already exists on the token; refusing to overwrite it")]
    KeyExists { label: String },
    /// A token with that label exists already.
    #[error("a token labelled \"{label}\" already exists; refusing to initialise another")]
    TokenExists { label: String },
    /// A private key nesca would sign with is not protected as a CA key must be (PKCS#11
    /// §4.9): extractable, not sensitive, or once either.
    #[error("key \"{label}\" is not protected: {attribute} is {value}; it {rule}")]
    KeyNotProtected {
        label: String,
        /// The attribute, e.g. `CKA_EXTRACTABLE`.
        attribute: &'static str,
        /// `CK_TRUE`, `CK_FALSE` or `not reported`.
        value: &'static str,
        /// What it must be.
        rule: &'static str,
    },
    /// The key's attributes do not describe a key nesca can use.
    #[error("key \"{label}\": {reason}")]
    UnsupportedKey { label: String, reason: String },
    /// Encoding a public key or signature failed.
    #[error("encoding {what}: {reason}")]
    Encoding { what: &'static str, reason: String },
    /// A card's transport key that nesca will not wrap keys under (PKCS#11 v2.40 §2.1.8:
    /// RSA-OAEP wrapping needs an RSA public key; nesca asks for 2048 bits at least).
    #[error("card transport key refused: {field}: {reason}")]
    TransportKey {
        /// The SubjectPublicKeyInfo field at fault, e.g. `algorithm` or `subjectPublicKey.modulus`.
        field: &'static str,
        reason: String,
    },
    /// The token cannot wrap a card key with an RSA mechanism nesca's policy allows
    /// (`CKM_RSA_PKCS_OAEP` with SHA-256, or with SHA-1 where explicitly allowed).
    #[error("card key wrapping refused: {reason}")]
    WrapMechanism {
        /// What the token lacks or refused.
        reason: String,
    },
    /// The module's AES key wrap with padding is not exactly RFC 5649 (found once per module
    /// by [`crate::Hsm::aes_key_wrap_check`]), and the configuration does not ask for the
    /// repair ([`crate::WrapPolicy::aes_key_wrap_repair`]): a card unwrapping per RFC 5649 would
    /// get a key it cannot load, so nothing is wrapped.
    #[error("card key wrapping refused: C_WrapKey with {mechanism} is not RFC 5649 on this PKCS#11 module: {defect}; set [hsm] aes_key_wrap_repair = true to have nesca re-wrap card keys exactly per RFC 5649 (they then pass through nesca's memory), or use a module that wraps per RFC 5649")]
    AesKeyWrapNotRfc5649 {
        /// `CKM_AES_KEY_WRAP_PAD` or `CKM_AES_KEY_WRAP_KWP`.
        mechanism: &'static str,
        /// What the module's output is (lengths only).
        defect: String,
    },
    /// In repair mode, what the module wrapped is not a PKCS#8 key followed by zero padding
    /// only, so nesca will not re-wrap it.
    #[error("card key wrapping refused: C_WrapKey with {mechanism} gave output that nesca cannot repair to RFC 5649: {reason}")]
    AesKeyWrapRepair {
        /// `CKM_AES_KEY_WRAP_PAD` or `CKM_AES_KEY_WRAP_KWP`.
        mechanism: &'static str,
        /// Why (lengths only, never key bytes).
        reason: String,
    },
    /// A key algorithm name (configuration, command line) that is not one of
    /// [`crate::KeyAlgorithm::ALL`].
    #[error("unknown key algorithm \"{name}\" (expected one of: {expected})")]
    UnknownAlgorithm {
        /// The name as given.
        name: String,
        /// The names nesca knows, comma-separated.
        expected: String,
    },
    /// Any other cryptoki-level failure (library, conversion).
    #[error("PKCS#11 library error in {context}: {reason}")]
    Library {
        context: &'static str,
        reason: String,
    },
    /// SoftHSM's metadata file of a token (`<tokendir>/<token>/token.object`: its label, flags
    /// and the PIN-derived blobs that open its key objects) is damaged, and nesca cannot put
    /// its copy (`token.object.nesca-copy`) back: there is none, or it is damaged too, or
    /// writing it failed. SoftHSM cannot open that token until the file is restored.
    #[error("SoftHSM token metadata {path} is damaged ({damage}) and cannot be restored: {why}")]
    TokenMetadataDamaged {
        /// The `token.object` at fault.
        path: String,
        /// What is wrong with it, e.g. `empty (0 bytes)`.
        damage: String,
        /// Why nesca could not restore it.
        why: String,
    },
    /// The operation still failed after the bounded number of retries.
    #[error("HSM unavailable after {attempts} attempts, try again later: {last}")]
    Unavailable { attempts: u32, last: Box<HsmError> },
    /// A key this process found on the token before (a signer's key) is not found there any
    /// more: the token lost its objects (removed, its store gone) or this process's login.
    /// Transient: sessions, login and, if the token does not answer, the module are renewed.
    #[error("key \"{label}\" is no longer found on the token")]
    KeyVanished { label: String },
    /// The token does not answer (removed, its device or store gone, the module reset) and
    /// connecting to it again failed; nesca keeps trying, at most once per pause
    /// (docs/STANDARDS.md "HSM errors"), and answers this meanwhile without touching the HSM.
    #[error("HSM token \"{label}\" is lost ({failures} reconnection attempts failed), try again later: {last}")]
    TokenLost {
        /// The token's label.
        label: String,
        /// Reconnection attempts that failed since the token was lost.
        failures: u32,
        /// Why the last attempt failed (the PKCS#11 function and CKR code, or the token not
        /// being found).
        last: Box<HsmError>,
    },
}

/// What brings the token back after a transient error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remedy {
    /// New sessions and a new login, when the token still answers (a session closed, the
    /// login lost, a handle gone stale); reconnecting when it does not.
    Sessions,
    /// `C_Finalize`, `C_Initialize`, the token found again by label, a new login: the module
    /// lost its state, or the token or its device went away.
    Reconnect,
}

impl HsmError {
    /// Classifies the error for the retry policy.
    pub fn class(&self) -> ErrorClass {
        match self {
            HsmError::Pkcs11 { rv, .. } => classify(*rv),
            HsmError::Unavailable { .. }
            | HsmError::KeyVanished { .. }
            | HsmError::TokenLost { .. } => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }

    /// For a transient error: what to renew before the next attempt.
    pub(crate) fn remedy(&self) -> Remedy {
        match self {
            HsmError::Pkcs11 { rv, .. } if module_lost(*rv) => Remedy::Reconnect,
            HsmError::TokenLost { .. } => Remedy::Reconnect,
            HsmError::Unavailable { last, .. } => last.remedy(),
            _ => Remedy::Sessions,
        }
    }

    /// Whether the token refused the PIN itself: logging in again with the same PIN cannot
    /// succeed, and on a real HSM each try counts towards locking the PIN.
    pub(crate) fn pin_refused(&self) -> bool {
        matches!(
            self,
            HsmError::Pkcs11 {
                rv: RvError::PinIncorrect
                    | RvError::PinLocked
                    | RvError::PinExpired
                    | RvError::PinInvalid
                    | RvError::PinLenRange,
                ..
            }
        )
    }

    pub(crate) fn from_ck(context: &'static str, e: CkError) -> Self {
        match e {
            CkError::Pkcs11(rv, function) => HsmError::Pkcs11 {
                function: format!("C_{function:?}"),
                code: ckr_name(rv),
                rv,
            },
            CkError::LibraryLoading(err) => HsmError::ModuleLoad {
                path: context.to_string(),
                reason: err.to_string(),
            },
            other => HsmError::Library {
                context,
                reason: other.to_string(),
            },
        }
    }
}

/// CKR codes after which the module itself, not only a session, must be set up again: the
/// library lost its state, or the token or its device went away. Network HSM clients and
/// SoftHSM (whose token directory vanished) keep answering these until `C_Finalize` and
/// `C_Initialize` read the device or the store anew.
fn module_lost(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::CryptokiNotInitialized
            | RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SlotIdInvalid
            | RvError::GeneralError
    )
}

fn classify(rv: RvError) -> ErrorClass {
    if module_lost(rv) {
        return ErrorClass::Transient;
    }
    match rv {
        RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::UserNotLoggedIn
        | RvError::SessionCount
        | RvError::FunctionFailed
        // Handles go stale when the token forgot our login; the key is found again by label.
        | RvError::KeyHandleInvalid
        | RvError::ObjectHandleInvalid => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

/// `PinIncorrect` → `CKR_PIN_INCORRECT`: the spelling operators find in vendor manuals.
fn ckr_name(rv: RvError) -> String {
    let camel = format!("{rv:?}");
    let mut out = String::from("CKR");
    for ch in camel.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    #[test]
    fn names_function_and_code() {
        let e = HsmError::from_ck(
            "login",
            CkError::Pkcs11(RvError::PinIncorrect, Function::Login),
        );
        assert_eq!(e.to_string(), "C_Login failed: CKR_PIN_INCORRECT");
        assert_eq!(e.class(), ErrorClass::Permanent);
    }

    #[test]
    fn lost_session_is_transient() {
        let e = HsmError::from_ck(
            "sign",
            CkError::Pkcs11(RvError::SessionHandleInvalid, Function::Sign),
        );
        assert_eq!(e.to_string(), "C_Sign failed: CKR_SESSION_HANDLE_INVALID");
        assert_eq!(e.class(), ErrorClass::Transient);
    }

    fn ck(rv: RvError, function: Function) -> HsmError {
        HsmError::from_ck("test", CkError::Pkcs11(rv, function))
    }

    /// What a token that went away answers (a device removed, a network HSM unreachable,
    /// SoftHSM's token directory gone) is retried after reconnecting; what a lost session or
    /// login answers, after new sessions; what a wrong key or PIN answers, never.
    #[test]
    fn each_lost_token_error_gets_its_remedy() {
        for (rv, function) in [
            (RvError::TokenNotPresent, Function::Sign),
            (RvError::DeviceRemoved, Function::SignInit),
            (RvError::DeviceError, Function::Sign),
            (RvError::GeneralError, Function::GetTokenInfo),
            (RvError::CryptokiNotInitialized, Function::Sign),
            (RvError::SlotIdInvalid, Function::OpenSession),
        ] {
            let e = ck(rv, function);
            assert_eq!(e.class(), ErrorClass::Transient, "{e}");
            assert_eq!(e.remedy(), Remedy::Reconnect, "{e}");
        }
        for (rv, function) in [
            (RvError::SessionHandleInvalid, Function::Sign),
            (RvError::SessionClosed, Function::SignInit),
            (RvError::UserNotLoggedIn, Function::SignInit),
            (RvError::ObjectHandleInvalid, Function::SignInit),
            (RvError::KeyHandleInvalid, Function::SignInit),
        ] {
            let e = ck(rv, function);
            assert_eq!(e.class(), ErrorClass::Transient, "{e}");
            assert_eq!(e.remedy(), Remedy::Sessions, "{e}");
        }
        for (rv, function) in [
            (RvError::PinIncorrect, Function::Login),
            (RvError::MechanismInvalid, Function::SignInit),
            (RvError::KeyTypeInconsistent, Function::SignInit),
        ] {
            assert_eq!(ck(rv, function).class(), ErrorClass::Permanent);
        }
        let vanished = HsmError::KeyVanished {
            label: "nes-ca-ocsp".into(),
        };
        assert_eq!(vanished.class(), ErrorClass::Transient);
        assert_eq!(vanished.remedy(), Remedy::Sessions);
        let lost = HsmError::TokenLost {
            label: "nesca-demo".into(),
            failures: 3,
            last: Box::new(ck(RvError::GeneralError, Function::GetTokenInfo)),
        };
        assert_eq!(lost.class(), ErrorClass::Transient);
        assert_eq!(lost.remedy(), Remedy::Reconnect);
        assert_eq!(
            lost.to_string(),
            "HSM token \"nesca-demo\" is lost (3 reconnection attempts failed), try again later: C_GetTokenInfo failed: CKR_GENERAL_ERROR"
        );
        let unavailable = HsmError::Unavailable {
            attempts: 4,
            last: Box::new(ck(RvError::DeviceRemoved, Function::Sign)),
        };
        assert_eq!(unavailable.remedy(), Remedy::Reconnect);
    }

    #[test]
    fn a_refused_pin_is_never_tried_again() {
        for rv in [
            RvError::PinIncorrect,
            RvError::PinLocked,
            RvError::PinExpired,
        ] {
            assert!(ck(rv, Function::Login).pin_refused(), "{rv:?}");
        }
        assert!(!ck(RvError::GeneralError, Function::Login).pin_refused());
        assert!(!ck(RvError::UserPinNotInitialized, Function::Login).pin_refused());
    }
}
