//! Card keys generated in the CA token and wrapped for a card's transport key (KDHS channel).
//! A second SoftHSM token in the same token directory plays the card: it holds the RSA
//! transport key pair, unwraps the AES key and then the private key, and signs with it. The
//! private key layer is also unwrapped in software, per RFC 5649 (RustCrypto `aes-kw`, not the
//! module), into a PKCS#8 that a strict DER parser loads.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use der::asn1::OctetString;
use der::{Decode, Encode};
use hsm::{Hsm, HsmError, KeyAlgorithm, WrapPolicy, WrapScheme, WrappedCardKey};
use rsa::pkcs8::EncodePublicKey;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use signature::hazmat::PrehashVerifier;

mod common;
use common::{pin, token, LABEL, MODULE};

const CARD: &str = "card-token";

/// SoftHSM 2.6.1 refuses RSA-OAEP with SHA-256 in `C_WrapKey`, and its CKM_AES_KEY_WRAP_PAD
/// zero-pads the key before wrapping: these tests allow SHA-1 and the repair, as a
/// configuration must say explicitly (`[hsm] allow_rsa_oaep_sha1_wrap`,
/// `[hsm] aes_key_wrap_repair`).
const SHA1_ALLOWED: WrapPolicy = WrapPolicy {
    allow_rsa_oaep_sha1: true,
    aes_key_wrap_repair: true,
};

/// The tests count the CA token's objects: one at a time.
fn alone() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A second handle on the module this process initialised already (through `common::token`).
fn outside() -> Pkcs11 {
    let ctx = Pkcs11::new(MODULE).unwrap();
    // Already initialised by the `Hsm`: CKR_CRYPTOKI_ALREADY_INITIALIZED is expected.
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    ctx
}

fn session_on(ctx: &Pkcs11, label: &str) -> Session {
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == label)
        .unwrap_or_else(|| panic!("no token {label}"));
    let session = ctx.open_rw_session(slot).unwrap();
    match session.login(UserType::User, Some(&pin())) {
        Ok(()) => {}
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login on {label}: {e}"),
    }
    session
}

/// The card token, made once per process in the CA token's SoftHSM directory.
fn card(ctx: &Pkcs11) -> Session {
    static MADE: Mutex<bool> = Mutex::new(false);
    token();
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if !*made {
        Hsm::init_token(
            Path::new(MODULE),
            None,
            CARD,
            &SecretString::from("card-so-pin-5678".to_string()),
            &pin(),
        )
        .unwrap();
        *made = true;
    }
    session_on(ctx, CARD)
}

/// An RSA transport key pair on the card (session objects): the private key may only unwrap.
fn transport_key(card: &Session, bits: u64) -> (ObjectHandle, Vec<u8>) {
    let (public, private) = card
        .generate_key_pair(
            &Mechanism::RsaPkcsKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::Wrap(true),
                Attribute::ModulusBits(bits.into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ],
            &[
                Attribute::Token(false),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Unwrap(true),
            ],
        )
        .unwrap();
    let attrs = card
        .get_attributes(
            public,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .unwrap();
    let (mut n, mut e) = (Vec::new(), Vec::new());
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = v,
            Attribute::PublicExponent(v) => e = v,
            _ => {}
        }
    }
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .unwrap();
    let spki = key.to_public_key_der().unwrap().as_bytes().to_vec();
    (private, spki)
}

/// Every object the CA token shows this application (token and session objects).
fn ca_objects(ctx: &Pkcs11) -> Vec<ObjectHandle> {
    session_on(ctx, LABEL).find_objects(&[]).unwrap()
}

#[test]
fn a_wrapped_card_key_unwraps_and_signs_on_the_card_and_leaves_no_copy() {
    let _alone = alone();
    let hsm = token();
    let ctx = outside();
    let card = card(&ctx);
    let (unwrapping, spki) = transport_key(&card, 2048);

    let before = ca_objects(&ctx).len();
    // The count sees session objects of other sessions (as the crate's own would be).
    let probe = session_on(&ctx, LABEL);
    let data = probe
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(false),
            Attribute::Value(vec![1]),
        ])
        .unwrap();
    assert_eq!(ca_objects(&ctx).len(), before + 1);
    probe.destroy_object(data).unwrap();
    let wrapped = hsm
        .generate_wrapped_card_key(KeyAlgorithm::EcdsaP256, &spki, SHA1_ALLOWED)
        .unwrap();
    eprintln!("SoftHSM wrapped with {:?}", wrapped.mechanism);

    // The HSM copy is gone: as many objects as before, none with the card key's point.
    assert_eq!(ca_objects(&ctx).len(), before);
    let point = wrapped.public_key.spki().subject_public_key.raw_bytes();
    let ec_point = OctetString::new(point).unwrap().to_der().unwrap();
    let ca = session_on(&ctx, LABEL);
    assert!(ca
        .find_objects(&[Attribute::EcPoint(ec_point)])
        .unwrap()
        .is_empty());

    // On the card: the AES key with RSA-OAEP, then the private key with AES-KWP.
    let oaep = oaep_of(wrapped.mechanism);
    let aes = card
        .unwrap_key(
            &oaep,
            unwrapping,
            &wrapped.wrapped_key,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Sensitive(true),
                Attribute::Unwrap(true),
            ],
        )
        .unwrap();
    let private = card
        .unwrap_key(
            &Mechanism::AesKeyWrapPad,
            aes,
            &wrapped.wrapped_private_key,
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Token(false),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Sign(true),
            ],
        )
        .unwrap();

    // The card signs; the signature verifies against the returned public key.
    let digest = Sha256::digest(b"signed on the card");
    let raw = card.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
    vk.verify_prehash(&digest, &p256::ecdsa::Signature::from_slice(&raw).unwrap())
        .unwrap();
    // Two calls give two different keys.
    let again = hsm
        .generate_wrapped_card_key(KeyAlgorithm::EcdsaP256, &spki, SHA1_ALLOWED)
        .unwrap();
    assert_ne!(again.public_key, wrapped.public_key);
    assert_eq!(ca_objects(&ctx).len(), before);
}

#[test]
fn a_non_rsa_transport_key_is_refused_and_leaves_nothing() {
    let _alone = alone();
    let hsm = token();
    let ctx = outside();
    let ec = hsm
        .generate_key("not-a-transport-key", KeyAlgorithm::EcdsaP256)
        .unwrap();
    // The search by CKA_EC_POINT used above finds a key that is there.
    let point = ec.public_key().spki().subject_public_key.raw_bytes();
    let ec_point = OctetString::new(point).unwrap().to_der().unwrap();
    let found = session_on(&ctx, LABEL)
        .find_objects(&[Attribute::EcPoint(ec_point)])
        .unwrap();
    assert_eq!(found.len(), 1);
    let before = ca_objects(&ctx).len();
    let e = hsm
        .generate_wrapped_card_key(
            KeyAlgorithm::EcdsaP256,
            ec.public_key().spki_der(),
            SHA1_ALLOWED,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            HsmError::TransportKey {
                field: "algorithm",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().starts_with(
            "card transport key refused: algorithm: 1.2.840.10045.2.1 is not rsaEncryption"
        ),
        "{e}"
    );
    assert_eq!(ca_objects(&ctx).len(), before);
}

#[test]
fn a_1024_bit_transport_key_is_refused() {
    let _alone = alone();
    let hsm = token();
    let ctx = outside();
    let card = card(&ctx);
    let (_, spki) = transport_key(&card, 1024);
    let before = ca_objects(&ctx).len();
    let e = hsm
        .generate_wrapped_card_key(KeyAlgorithm::EcdsaP256, &spki, SHA1_ALLOWED)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "card transport key refused: subjectPublicKey.modulus: 1024 bits; at least 2048 are required"
    );
    assert_eq!(ca_objects(&ctx).len(), before);
}

#[test]
fn p384_and_rsa_card_keys_unwrap_and_sign_on_the_card() {
    let _alone = alone();
    let hsm = token();
    let ctx = outside();
    let card = card(&ctx);
    let (unwrapping, spki) = transport_key(&card, 3072);
    let before = ca_objects(&ctx).len();
    for alg in [KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048] {
        let wrapped = hsm
            .generate_wrapped_card_key(alg, &spki, SHA1_ALLOWED)
            .unwrap();
        assert_eq!(ca_objects(&ctx).len(), before, "{alg}");
        let oaep = oaep_of(wrapped.mechanism);
        let aes = card
            .unwrap_key(
                &oaep,
                unwrapping,
                &wrapped.wrapped_key,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Token(false),
                    Attribute::Unwrap(true),
                ],
            )
            .unwrap();
        let key_type = if alg == KeyAlgorithm::Rsa2048 {
            KeyType::RSA
        } else {
            KeyType::EC
        };
        let private = card
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                aes,
                &wrapped.wrapped_private_key,
                &[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(key_type),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Sign(true),
                ],
            )
            .unwrap();
        let msg = b"signed on the card";
        let point = wrapped.public_key.spki().subject_public_key.raw_bytes();
        if alg == KeyAlgorithm::Rsa2048 {
            use rsa::pkcs1::DecodeRsaPublicKey;
            let sig = card.sign(&Mechanism::Sha256RsaPkcs, private, msg).unwrap();
            rsa::RsaPublicKey::from_pkcs1_der(point)
                .unwrap()
                .verify(
                    rsa::Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(msg),
                    &sig,
                )
                .unwrap();
        } else {
            let digest = sha2::Sha384::digest(msg);
            let raw = card.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
            p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .unwrap()
                .verify_prehash(&digest, &p384::ecdsa::Signature::from_slice(&raw).unwrap())
                .unwrap();
        }
    }
}

/// Without the explicit allowance, a module that refuses RSA-OAEP with SHA-256 gets nothing
/// weaker: the wrapping is refused, naming why, and leaves no object; a module that accepts it
/// wraps with SHA-256.
#[test]
fn sha1_oaep_is_used_only_when_allowed() {
    let _alone = alone();
    let hsm = token();
    let ctx = outside();
    let card = card(&ctx);
    let (_, spki) = transport_key(&card, 2048);
    let before = ca_objects(&ctx).len();
    // The AES layer's repair is allowed: this test is about the RSA layer.
    let sha256_only = WrapPolicy {
        allow_rsa_oaep_sha1: false,
        aes_key_wrap_repair: true,
    };
    match hsm.generate_wrapped_card_key(KeyAlgorithm::EcdsaP256, &spki, sha256_only) {
        Ok(wrapped) => assert_eq!(wrapped.mechanism, WrapScheme::RsaOaepAesKwp),
        Err(e) => {
            assert!(matches!(e, HsmError::WrapMechanism { .. }), "{e}");
            assert!(
                e.to_string().starts_with(
                    "card key wrapping refused: the token refused RSA-OAEP with SHA-256"
                ),
                "{e}"
            );
        }
    }
    assert_eq!(ca_objects(&ctx).len(), before);
}

/// The RSA-OAEP mechanism of a card package's `scheme`, to unwrap its AES key on the card.
fn oaep_of(scheme: WrapScheme) -> Mechanism<'static> {
    let (hash, mgf) = match scheme {
        WrapScheme::RsaOaepAesKwp => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        WrapScheme::RsaOaepSha1AesKwp => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
        other => panic!("unexpected scheme {other:?}"),
    };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
}

/// The AES key of a wrapped card key, unwrapped on the card with the transport key as an
/// extractable, non-sensitive session object and read back, so that the private key layer can
/// be unwrapped in software.
fn aes_key_in_clear(card: &Session, unwrapping: ObjectHandle, wrapped: &WrappedCardKey) -> Vec<u8> {
    let oaep = oaep_of(wrapped.mechanism);
    let aes = card
        .unwrap_key(
            &oaep,
            unwrapping,
            &wrapped.wrapped_key,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let value = card
        .get_attributes(aes, &[AttributeType::Value])
        .unwrap()
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
        .expect("CKA_VALUE of the unwrapped AES key");
    card.destroy_object(aes).unwrap();
    value
}

/// RFC 5649 in software: the plaintext, exactly as long as the message length indicator says.
fn rfc5649_unwrap(kek: &[u8], wrapped: &[u8]) -> Vec<u8> {
    let kek = aes_kw::KekAes256::try_from(kek).unwrap();
    let mut out = vec![0u8; wrapped.len() - 8];
    let plain = kek
        .unwrap_with_padding(wrapped, &mut out)
        .expect("the private key layer unwraps per RFC 5649");
    plain.to_vec()
}

/// The issue this answers: a card bureau unwrapping `wrapped_private_key` with a standard RFC 5649
/// implementation got the PKCS#8 followed by zero bytes, which a strict DER parser refuses. Now
/// the message length indicator is the PKCS#8's length, the key parses as DER with nothing
/// after it, and it is the key whose public half the HSM returned — for both curves and RSA.
#[test]
fn card_keys_unwrap_per_rfc5649_into_exactly_the_pkcs8_of_the_returned_key() {
    let _alone = alone();
    let hsm = token();
    let ctx = outside();
    let card = card(&ctx);
    let (unwrapping, spki) = transport_key(&card, 2048);
    let check = hsm.aes_key_wrap_check().unwrap();
    eprintln!("AES key wrap check: {check:?}");
    let before = ca_objects(&ctx).len();
    for alg in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048,
    ] {
        let wrapped = hsm
            .generate_wrapped_card_key(alg, &spki, SHA1_ALLOWED)
            .unwrap();
        assert_eq!(ca_objects(&ctx).len(), before, "{alg}");
        // Repaired exactly when the module is not RFC 5649.
        assert_eq!(wrapped.repaired, !check.conformant(), "{alg}");
        let kek = aes_key_in_clear(&card, unwrapping, &wrapped);
        assert_eq!(kek.len(), 32, "{alg}: an AES-256 key");
        let pkcs8 = rfc5649_unwrap(&kek, &wrapped.wrapped_private_key);
        // Strict DER: `from_der` refuses anything after the PrivateKeyInfo.
        let info = rsa::pkcs8::PrivateKeyInfo::from_der(&pkcs8).unwrap_or_else(|e| {
            panic!("{alg}: {} bytes are not exactly a PKCS#8: {e}", pkcs8.len())
        });
        assert_eq!(
            info.encoded_len().unwrap(),
            der::Length::try_from(pkcs8.len()).unwrap()
        );
        let public = wrapped.public_key.spki().subject_public_key.raw_bytes();
        match alg {
            KeyAlgorithm::EcdsaP256 => {
                use p256::pkcs8::DecodePrivateKey;
                let key = p256::SecretKey::from_pkcs8_der(&pkcs8).unwrap();
                assert_eq!(key.public_key().to_sec1_bytes().as_ref(), public, "{alg}");
            }
            KeyAlgorithm::EcdsaP384 => {
                use p384::pkcs8::DecodePrivateKey;
                let key = p384::SecretKey::from_pkcs8_der(&pkcs8).unwrap();
                assert_eq!(key.public_key().to_sec1_bytes().as_ref(), public, "{alg}");
            }
            _ => {
                use rsa::pkcs1::EncodeRsaPublicKey;
                use rsa::pkcs8::DecodePrivateKey;
                let key = rsa::RsaPrivateKey::from_pkcs8_der(&pkcs8).unwrap();
                let der = key.to_public_key().to_pkcs1_der().unwrap();
                assert_eq!(der.as_bytes(), public, "{alg}");
            }
        }
    }
}

/// A module whose AES key wrap with padding is not RFC 5649 (SoftHSM 2.6.1 zero-pads the key
/// first) wraps no card key without `[hsm] aes_key_wrap_repair`: refused before any key is
/// generated, naming the mechanism, the defect and the configuration key, and leaving no
/// object. A conformant module wraps without the repair.
#[test]
fn a_module_that_is_not_rfc5649_wraps_nothing_without_the_repair() {
    let _alone = alone();
    let hsm = token();
    let ctx = outside();
    let card = card(&ctx);
    let (_, spki) = transport_key(&card, 2048);
    let check = hsm.aes_key_wrap_check().unwrap();
    // Asked again: the same answer, from the cache. SoftHSM imports the check's keys: the
    // output was compared, not trusted.
    assert_eq!(hsm.aes_key_wrap_check().unwrap(), check);
    assert_eq!(check.unchecked, None);
    let before = ca_objects(&ctx).len();
    let no_repair = WrapPolicy {
        allow_rsa_oaep_sha1: true,
        aes_key_wrap_repair: false,
    };
    let outcome = hsm.generate_wrapped_card_key(KeyAlgorithm::EcdsaP256, &spki, no_repair);
    match &check.defect {
        None => assert!(!outcome.unwrap().repaired),
        Some(defect) => {
            let e = outcome.unwrap_err();
            assert!(matches!(e, HsmError::AesKeyWrapNotRfc5649 { .. }), "{e}");
            let message = e.to_string();
            assert!(
                message.starts_with(&format!(
                    "card key wrapping refused: C_WrapKey with {} is not RFC 5649 on this PKCS#11 module: {defect}; set [hsm] aes_key_wrap_repair = true",
                    check.mechanism.name()
                )),
                "{message}"
            );
            // SoftHSM 2.6.1: CKM_AES_KEY_WRAP_PAD, the 20-byte secret's MLI is 24.
            if check.mechanism == hsm::AesKeyWrapMechanism::Pad {
                assert_eq!(
                    defect,
                    "it zero-pads the key before wrapping: the message length indicator is 24 for a 20-byte key"
                );
            }
        }
    }
    assert_eq!(ca_objects(&ctx).len(), before);
}
