//! AES key wrap with padding, exactly as RFC 5649 (NIST SP 800-38F KWP) says: the layer that
//! wraps a card's private key (PKCS#8) under the ephemeral AES-256 key.
//!
//! PKCS#11 names two mechanisms for it. `CKM_AES_KEY_WRAP_KWP` (v3.0, Current Mechanisms
//! §2.14.4) is RFC 5649 by definition; `CKM_AES_KEY_WRAP_PAD` (v2.40 §2.14.3) is what modules
//! have offered longer, and not every module's is RFC 5649: SoftHSM 2.6.1 zero-pads the key to a
//! multiple of 8 bytes *before* wrapping, so its message length indicator (MLI) counts the zeros
//! and a standard unwrap returns the PKCS#8 followed by up to 7 zero bytes, which a strict DER
//! parser refuses. nesca therefore
//!
//! 1. prefers `CKM_AES_KEY_WRAP_KWP` when the module offers it for wrapping
//!    (`C_GetMechanismInfo`, `CKF_WRAP`), else `CKM_AES_KEY_WRAP_PAD`;
//! 2. checks once per module ([`AesKeyWrapCheck`], cached in [`crate::Hsm`]) that the mechanism
//!    is RFC 5649: it wraps a 20-byte secret of its own under an AES key whose value it chose,
//!    and compares the output byte for byte with RFC 5649 computed in software (the RustCrypto
//!    `aes-kw` crate; RFC 5649 is deterministic);
//! 3. refuses to wrap card keys on a module that fails the check
//!    ([`crate::HsmError::AesKeyWrapNotRfc5649`]) unless the configuration asks for the repair
//!    ([`crate::WrapPolicy::aes_key_wrap_repair`]): then nesca chooses the AES key's value,
//!    lets the module wrap the card key, unwraps it in software, strips exactly the zero
//!    padding ([`strip_zero_padding`]) and wraps it again per RFC 5649 under the same key
//!    (`wrap.rs`). The card's private key passes through nesca's memory in that mode
//!    (zeroized after use; docs/security.md "Transport keys").

use std::os::raw::c_ulong;

use aes_kw::KekAes256;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::Session;
use der::{Decode, Reader};
use zeroize::{Zeroize, Zeroizing};

use crate::{ErrorClass, HsmError};

/// `CKM_AES_KEY_WRAP_KWP` (PKCS#11 v3.0 `pkcs11t.h`): AES key wrap with padding per RFC 5649.
const CKM_AES_KEY_WRAP_KWP: c_ulong = 0x0000_210B;

/// The length of the secret the check wraps: not a multiple of 8, so that padding shows.
const PROBE_SECRET_BYTES: usize = 20;

/// The AES-256 key length, in bytes.
pub(crate) const AES_256_BYTES: usize = 32;

/// The PKCS#11 mechanism that wraps the card's private key under the AES key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AesKeyWrapMechanism {
    /// `CKM_AES_KEY_WRAP_KWP` (PKCS#11 v3.0): RFC 5649 by definition.
    Kwp,
    /// `CKM_AES_KEY_WRAP_PAD` (PKCS#11 v2.40): RFC 5649 in most modules, not in all.
    Pad,
}

impl AesKeyWrapMechanism {
    /// The mechanism's PKCS#11 name, e.g. `CKM_AES_KEY_WRAP_PAD`.
    pub fn name(self) -> &'static str {
        match self {
            AesKeyWrapMechanism::Kwp => "CKM_AES_KEY_WRAP_KWP",
            AesKeyWrapMechanism::Pad => "CKM_AES_KEY_WRAP_PAD",
        }
    }

    pub(crate) fn mechanism_type(self) -> MechanismType {
        match self {
            AesKeyWrapMechanism::Kwp => kwp_mechanism_type(),
            AesKeyWrapMechanism::Pad => MechanismType::AES_KEY_WRAP_PAD,
        }
    }

    pub(crate) fn mechanism(self) -> Mechanism<'static> {
        match self {
            AesKeyWrapMechanism::Kwp => Mechanism::VendorDefined(
                VendorDefinedMechanism::new::<()>(kwp_mechanism_type(), None),
            ),
            AesKeyWrapMechanism::Pad => Mechanism::AesKeyWrapPad,
        }
    }
}

/// `CKM_AES_KEY_WRAP_KWP` as cryptoki's [`MechanismType`]. cryptoki 0.12 has no constructor
/// for a standard mechanism it does not list (its `TryFrom` refuses the value,
/// `new_vendor_defined` refuses values below `CKM_VENDOR_DEFINED`, and `C_GetMechanismList`
/// drops what it does not know), so the value is put into the type directly.
#[allow(unsafe_code)]
fn kwp_mechanism_type() -> MechanismType {
    // SAFETY: cryptoki 0.12's `MechanismType` is `#[repr(transparent)]` over its only field,
    // a `CK_MECHANISM_TYPE` (`c_ulong`), which it documents so that a vector of either has the
    // same layout; `transmute` refuses to compile if the sizes ever differ. Every `c_ulong` is a
    // valid `CK_MECHANISM_TYPE`, and cryptoki handles values it does not know (vendor-defined
    // ones are made the same way by `new_vendor_defined`). The test
    // `kwp_mechanism_type_carries_its_value` checks the round trip.
    unsafe { std::mem::transmute::<c_ulong, MechanismType>(CKM_AES_KEY_WRAP_KWP) }
}

/// What [`crate::Hsm::aes_key_wrap_check`] found about the module's AES key wrap with padding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AesKeyWrapCheck {
    /// The mechanism nesca wraps card keys with on this module.
    pub mechanism: AesKeyWrapMechanism,
    /// `None` when the mechanism's output is exactly RFC 5649; else what differs (lengths and
    /// the kind of difference only, never key bytes).
    pub defect: Option<String>,
    /// `None` when the output was compared with RFC 5649 byte for byte. `Some(why)` when the
    /// token refused to import the check's keys in the clear (as tokens in a FIPS mode may) and
    /// the mechanism is `CKM_AES_KEY_WRAP_KWP`, which is RFC 5649 by definition and is trusted
    /// unchecked; `CKM_AES_KEY_WRAP_PAD` is never trusted unchecked.
    pub unchecked: Option<String>,
}

impl AesKeyWrapCheck {
    /// Whether the mechanism's output is exactly RFC 5649.
    pub fn conformant(&self) -> bool {
        self.defect.is_none()
    }
}

/// Wraps a 20-byte secret of nesca's choice with `mechanism` under an AES-256 key of nesca's
/// choice (both session objects, pushed to `objects` for destruction), and compares the output
/// with RFC 5649 computed in software. The values come from the module's `C_GenerateRandom`;
/// they protect nothing. A token that refuses to import them (a permanent CKR of
/// `C_CreateObject`) leaves `CKM_AES_KEY_WRAP_KWP` trusted by definition
/// ([`AesKeyWrapCheck::unchecked`]) and `CKM_AES_KEY_WRAP_PAD` refused
/// ([`HsmError::WrapMechanism`]).
pub(crate) fn check(
    session: &Session,
    objects: &mut Vec<cryptoki::object::ObjectHandle>,
    mechanism: AesKeyWrapMechanism,
) -> Result<AesKeyWrapCheck, HsmError> {
    match compare(session, objects, mechanism) {
        Err(Refused(e)) if e.class() == ErrorClass::Permanent => match mechanism {
            AesKeyWrapMechanism::Kwp => Ok(AesKeyWrapCheck {
                mechanism,
                defect: None,
                unchecked: Some(format!(
                    "the token refuses to import the check's keys ({e}); CKM_AES_KEY_WRAP_KWP is RFC 5649 by definition"
                )),
            }),
            AesKeyWrapMechanism::Pad => Err(HsmError::WrapMechanism {
                reason: format!(
                    "nesca cannot check that the token's CKM_AES_KEY_WRAP_PAD is RFC 5649: the token refuses to import the check's keys ({e}), and it does not offer CKM_AES_KEY_WRAP_KWP"
                ),
            }),
        },
        Err(Refused(e) | Failed(e)) => Err(e),
        Ok(defect) => Ok(AesKeyWrapCheck {
            mechanism,
            defect,
            unchecked: None,
        }),
    }
}

/// Why [`compare`] gave no answer: the token refused to import a key of the check
/// (`C_CreateObject`), or another step failed.
enum CheckFailure {
    Refused(HsmError),
    Failed(HsmError),
}
use CheckFailure::{Failed, Refused};

/// The comparison of [`check`]: `None` when the output is RFC 5649 byte for byte, else what
/// differs.
fn compare(
    session: &Session,
    objects: &mut Vec<cryptoki::object::ObjectHandle>,
    mechanism: AesKeyWrapMechanism,
) -> Result<Option<String>, CheckFailure> {
    let kek = random(session, AES_256_BYTES).map_err(Failed)?;
    let secret = random(session, PROBE_SECRET_BYTES).map_err(Failed)?;
    let wrapping = import_aes_key(session, &kek).map_err(Refused)?;
    objects.push(wrapping);
    let mut attributes = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Value(secret.to_vec()),
    ];
    let created = session.create_object(&attributes);
    zeroize_values(&mut attributes);
    let probe = created.map_err(|e| Refused(HsmError::from_ck("C_CreateObject", e)))?;
    objects.push(probe);
    let wrapped = session
        .wrap_key(&mechanism.mechanism(), wrapping, probe)
        .map_err(|e| Failed(HsmError::from_ck("C_WrapKey", e)))?;
    let kek = kek_of(&kek).map_err(Failed)?;
    let expected = wrap(&kek, &secret).map_err(Failed)?;
    Ok(if wrapped == expected {
        None
    } else {
        Some(describe_difference(&kek, &wrapped, &secret))
    })
}

/// What a module's output is, when it is not the RFC 5649 wrapping of `secret`.
fn describe_difference(kek: &KekAes256, wrapped: &[u8], secret: &[u8]) -> String {
    let n = secret.len();
    match unwrap(kek, wrapped) {
        Err(_) => format!(
            "its output ({} bytes) for a {n}-byte key does not unwrap as RFC 5649 (the integrity check fails)",
            wrapped.len()
        ),
        Ok(plain) if plain.len() > n && plain[..n] == *secret && plain[n..].iter().all(|b| *b == 0) => format!(
            "it zero-pads the key before wrapping: the message length indicator is {} for a {n}-byte key",
            plain.len()
        ),
        Ok(plain) => format!(
            "its output unwraps as RFC 5649 to {} bytes that are not the {n}-byte key wrapped",
            plain.len()
        ),
    }
}

/// `n` bytes from the module's `C_GenerateRandom`, zeroized when dropped.
pub(crate) fn random(session: &Session, n: usize) -> Result<Zeroizing<Vec<u8>>, HsmError> {
    let len = u32::try_from(n).map_err(|_| HsmError::Library {
        context: "C_GenerateRandom",
        reason: format!("{n} bytes asked"),
    })?;
    session
        .generate_random_vec(len)
        .map(Zeroizing::new)
        .map_err(|e| HsmError::from_ck("C_GenerateRandom", e))
}

/// Imports `value` as an AES session key that may wrap (and, RSA-wrapped, be handed to the
/// card: extractable, sensitive). The attribute's copy of the value is zeroized.
pub(crate) fn import_aes_key(
    session: &Session,
    value: &[u8],
) -> Result<cryptoki::object::ObjectHandle, HsmError> {
    let mut attributes = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::Wrap(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Value(value.to_vec()),
    ];
    let created = session.create_object(&attributes);
    zeroize_values(&mut attributes);
    created.map_err(|e| HsmError::from_ck("C_CreateObject", e))
}

fn zeroize_values(attributes: &mut [Attribute]) {
    for a in attributes {
        if let Attribute::Value(v) = a {
            v.zeroize();
        }
    }
}

/// The AES-256 key-encryption key `value` (32 bytes) for the software RFC 5649.
pub(crate) fn kek_of(value: &[u8]) -> Result<KekAes256, HsmError> {
    KekAes256::try_from(value).map_err(|e| HsmError::Library {
        context: "AES key wrap",
        reason: e.to_string(),
    })
}

/// RFC 5649 wrapping in software.
pub(crate) fn wrap(kek: &KekAes256, data: &[u8]) -> Result<Vec<u8>, HsmError> {
    kek.wrap_with_padding_vec(data)
        .map_err(|e| HsmError::Library {
            context: "AES key wrap",
            reason: e.to_string(),
        })
}

/// RFC 5649 unwrapping in software: the plaintext, exactly as long as the message length
/// indicator says, zeroized when dropped.
pub(crate) fn unwrap(kek: &KekAes256, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let len = wrapped
        .len()
        .checked_sub(8)
        .ok_or_else(|| format!("{} bytes are too short for RFC 5649", wrapped.len()))?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    let mli = kek
        .unwrap_with_padding(wrapped, &mut out)
        .map_err(|e| format!("not RFC 5649: {e}"))?
        .len();
    out.truncate(mli);
    Ok(out)
}

/// The PKCS#8 PrivateKeyInfo at the start of `plain` without the zero padding a
/// non-conformant module wrapped after it: the key's length is its outer DER SEQUENCE's
/// (header and contents). Refused, naming lengths only: anything but a DER SEQUENCE, one longer
/// than `plain`, more than 7 bytes after it, or bytes after it that are not zero.
pub(crate) fn strip_zero_padding(plain: &[u8]) -> Result<&[u8], String> {
    let mut reader = der::SliceReader::new(plain).map_err(|e| format!("the unwrapped key: {e}"))?;
    let header = der::Header::decode(&mut reader)
        .map_err(|e| format!("the unwrapped key does not start with a DER header: {e}"))?;
    if header.tag != der::Tag::Sequence {
        return Err(format!(
            "the unwrapped key starts with {}, not a SEQUENCE (PKCS#8 PrivateKeyInfo)",
            header.tag
        ));
    }
    let total = (reader.position() + header.length)
        .map_err(|e| format!("the unwrapped key's length: {e}"))?;
    let total = usize::try_from(total).map_err(|e| format!("the unwrapped key's length: {e}"))?;
    if total > plain.len() {
        return Err(format!(
            "the PKCS#8 SEQUENCE claims {total} bytes, the unwrapped key has {}",
            plain.len()
        ));
    }
    let padding = &plain[total..];
    if padding.len() >= 8 {
        return Err(format!(
            "{} bytes follow the {total}-byte PKCS#8 SEQUENCE; zero padding is at most 7",
            padding.len()
        ));
    }
    if padding.iter().any(|b| *b != 0) {
        return Err(format!(
            "the {} bytes after the {total}-byte PKCS#8 SEQUENCE are not all zero",
            padding.len()
        ));
    }
    Ok(&plain[..total])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> KekAes256 {
        kek_of(&[7u8; 32]).unwrap()
    }

    #[test]
    fn kwp_mechanism_type_carries_its_value() {
        let t = kwp_mechanism_type();
        assert_eq!(*t, 0x210B);
        assert_eq!(AesKeyWrapMechanism::Kwp.mechanism().mechanism_type(), t);
        assert_eq!(
            AesKeyWrapMechanism::Pad.mechanism().mechanism_type(),
            MechanismType::AES_KEY_WRAP_PAD
        );
        assert_eq!(*MechanismType::AES_KEY_WRAP_PAD, 0x210A);
    }

    /// RFC 5649 §6, both examples (a 20-octet key, as the module check wraps, and a 7-octet
    /// one) under its 192-bit KEK: the software side nesca compares and repairs with is RFC 5649.
    #[test]
    fn software_rfc5649_matches_the_rfc_examples() {
        let kek = aes_kw::KekAes192::from([
            0x58, 0x40, 0xdf, 0x6e, 0x29, 0xb0, 0x2a, 0xf1, 0xab, 0x49, 0x3b, 0x70, 0x5b, 0xf1,
            0x6e, 0xa1, 0xae, 0x83, 0x38, 0xf4, 0xdc, 0xc1, 0x76, 0xa8,
        ]);
        let twenty = [
            0xc3, 0x7b, 0x7e, 0x64, 0x92, 0x58, 0x43, 0x40, 0xbe, 0xd1, 0x22, 0x07, 0x80, 0x89,
            0x41, 0x15, 0x50, 0x68, 0xf7, 0x38,
        ];
        assert_eq!(
            kek.wrap_with_padding_vec(&twenty).unwrap(),
            [
                0x13, 0x8b, 0xde, 0xaa, 0x9b, 0x8f, 0xa7, 0xfc, 0x61, 0xf9, 0x77, 0x42, 0xe7, 0x22,
                0x48, 0xee, 0x5a, 0xe6, 0xae, 0x53, 0x60, 0xd1, 0xae, 0x6a, 0x5f, 0x54, 0xf3, 0x73,
                0xfa, 0x54, 0x3b, 0x6a
            ]
        );
        assert_eq!(
            kek.wrap_with_padding_vec(&[0x46, 0x6f, 0x72, 0x50, 0x61, 0x73, 0x69])
                .unwrap(),
            [
                0xaf, 0xbe, 0xb0, 0xf0, 0x7d, 0xfb, 0xf5, 0x41, 0x92, 0x00, 0xf2, 0xcc, 0xb5, 0x0b,
                0xb2, 0x4f
            ]
        );
    }

    /// A PKCS#8-shaped SEQUENCE of `content_len` content bytes (short or long form length).
    fn sequence(content_len: usize) -> Vec<u8> {
        let mut v = vec![0x30];
        if content_len < 0x80 {
            v.push(content_len as u8);
        } else {
            v.extend([0x81, content_len as u8]);
        }
        v.extend((0..content_len).map(|i| (i % 251) as u8 + 1));
        v
    }

    #[test]
    fn zero_padding_after_the_sequence_is_stripped() {
        // A P-256 PKCS#8 from SoftHSM is 67 bytes: 5 zero bytes make it 72.
        let key = sequence(65);
        assert_eq!(key.len(), 67);
        let mut padded = key.clone();
        padded.extend([0; 5]);
        assert_eq!(strip_zero_padding(&padded).unwrap(), &key[..]);
        // Aligned already (P-384's 80 bytes of SoftHSM): nothing to strip.
        let aligned = sequence(78);
        assert_eq!(aligned.len(), 80);
        assert_eq!(strip_zero_padding(&aligned).unwrap(), &aligned[..]);
        // Long-form length (an RSA key is longer still).
        let long = sequence(200);
        let mut padded = long.clone();
        padded.extend([0; 3]);
        assert_eq!(strip_zero_padding(&padded).unwrap(), &long[..]);
    }

    #[test]
    fn nonzero_padding_is_refused() {
        let mut padded = sequence(65);
        padded.extend([0, 0, 1, 0, 0]);
        let e = strip_zero_padding(&padded).unwrap_err();
        assert_eq!(
            e,
            "the 5 bytes after the 67-byte PKCS#8 SEQUENCE are not all zero"
        );
    }

    #[test]
    fn bad_lengths_are_refused() {
        // The SEQUENCE claims more than there is.
        let mut short = sequence(65);
        short.truncate(60);
        assert_eq!(
            strip_zero_padding(&short).unwrap_err(),
            "the PKCS#8 SEQUENCE claims 67 bytes, the unwrapped key has 60"
        );
        // Eight or more bytes after it are not padding to a multiple of 8.
        let mut long = sequence(65);
        long.extend([0; 8]);
        assert_eq!(
            strip_zero_padding(&long).unwrap_err(),
            "8 bytes follow the 67-byte PKCS#8 SEQUENCE; zero padding is at most 7"
        );
        // Not a SEQUENCE at all.
        let e = strip_zero_padding(&[0x04, 0x02, 1, 2, 0, 0]).unwrap_err();
        assert!(e.contains("not a SEQUENCE"), "{e}");
        // A non-minimal (BER) length is no DER header.
        let mut ber = vec![0x30, 0x81, 0x05];
        ber.extend([1, 2, 3, 4, 5, 0, 0]);
        let e = strip_zero_padding(&ber).unwrap_err();
        assert!(
            e.starts_with("the unwrapped key does not start with a DER header"),
            "{e}"
        );
        // Indefinite length.
        let e = strip_zero_padding(&[0x30, 0x80, 0, 0]).unwrap_err();
        assert!(
            e.starts_with("the unwrapped key does not start with a DER header"),
            "{e}"
        );
        assert!(strip_zero_padding(&[]).is_err());
    }

    /// The repair's round trip: what a zero-padding module wraps, unwrapped in software,
    /// stripped and wrapped again, is exactly RFC 5649 of the key alone.
    #[test]
    fn a_zero_padded_wrap_is_repaired_to_rfc5649() {
        let kek = kek();
        let key = sequence(65);
        let mut padded = key.clone();
        padded.extend([0; 5]);
        // What SoftHSM 2.6.1 outputs: RFC 5649 of the padded key (MLI 72).
        let module = wrap(&kek, &padded).unwrap();
        let plain = unwrap(&kek, &module).unwrap();
        assert_eq!(plain.len(), 72);
        let repaired = wrap(&kek, strip_zero_padding(&plain).unwrap()).unwrap();
        assert_eq!(repaired, wrap(&kek, &key).unwrap());
        assert_eq!(&unwrap(&kek, &repaired).unwrap()[..], &key[..]);
        assert_eq!(
            describe_difference(&kek, &module, &key),
            "it zero-pads the key before wrapping: the message length indicator is 72 for a 67-byte key"
        );
        // Output that unwraps, but to another key.
        assert_eq!(
            describe_difference(&kek, &wrap(&kek, &[1u8; 20]).unwrap(), &key),
            "its output unwraps as RFC 5649 to 20 bytes that are not the 67-byte key wrapped"
        );
    }

    #[test]
    fn the_check_names_the_defect() {
        let kek = kek();
        let secret = [9u8; 20];
        let mut padded = secret.to_vec();
        padded.extend([0; 4]);
        assert_eq!(
            describe_difference(&kek, &wrap(&kek, &padded).unwrap(), &secret),
            "it zero-pads the key before wrapping: the message length indicator is 24 for a 20-byte key"
        );
        assert_eq!(
            describe_difference(&kek, &[0u8; 32], &secret),
            "its output (32 bytes) for a 20-byte key does not unwrap as RFC 5649 (the integrity check fails)"
        );
    }
}
