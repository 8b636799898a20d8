//! A SoftHSM token for one test process (SoftHSM reads SOFTHSM2_CONF once, at C_Initialize),
//! created through PKCS#11 in a temporary directory, and signature checks in software.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use hsm::{Hsm, HsmConfig, KeyAlgorithm};
use secrecy::SecretString;
use sha2::{Digest, Sha256, Sha384};
use signature::hazmat::PrehashVerifier;

pub(crate) const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub(crate) const LABEL: &str = "hsm-test";

struct Token {
    _dir: tempfile::TempDir,
    hsm: Hsm,
}

pub(crate) fn pin() -> SecretString {
    SecretString::from("test-user-pin-1234".to_string())
}

/// A SoftHSM token store in `dir` with one token `label`, initialised with these PINs;
/// returns its `softhsm2.conf`.
pub(crate) fn new_token(
    dir: &Path,
    label: &str,
    so_pin: &str,
    user_pin: &SecretString,
) -> std::path::PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    Hsm::init_token(
        Path::new(MODULE),
        Some(&conf),
        label,
        &SecretString::from(so_pin.to_string()),
        user_pin,
    )
    .unwrap();
    conf
}

pub(crate) fn token() -> &'static Hsm {
    static TOKEN: OnceLock<Token> = OnceLock::new();
    &TOKEN
        .get_or_init(|| {
            assert!(
                Path::new(MODULE).is_file(),
                "SoftHSM is not installed: apt-get install -y softhsm2"
            );
            let dir = tempfile::tempdir().unwrap();
            let conf = new_token(dir.path(), LABEL, "so-pin-5678", &pin());
            let hsm = Hsm::open(HsmConfig {
                module: MODULE.into(),
                token_label: LABEL.into(),
                pin: pin(),
                pool_size: 2,
                ocsp_pool_size: 0,
                softhsm_conf: Some(conf),
            })
            .unwrap();
            Token { _dir: dir, hsm }
        })
        .hsm
}

pub(crate) fn verify(signer: &hsm::KeySigner, msg: &[u8], sig: &[u8]) {
    let spki = signer.public_key().spki();
    let point = spki.subject_public_key.raw_bytes();
    match signer.algorithm() {
        KeyAlgorithm::EcdsaP256 => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            vk.verify_prehash(
                &Sha256::digest(msg),
                &p256::ecdsa::Signature::from_der(sig).unwrap(),
            )
            .unwrap();
        }
        KeyAlgorithm::EcdsaP384 => {
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            vk.verify_prehash(
                &Sha384::digest(msg),
                &p384::ecdsa::Signature::from_der(sig).unwrap(),
            )
            .unwrap();
        }
        _ => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            let key = rsa::RsaPublicKey::from_pkcs1_der(point).unwrap();
            key.verify(
                rsa::Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(msg),
                sig,
            )
            .unwrap();
        }
    }
}
