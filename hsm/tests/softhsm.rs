//! The hsm crate against the real SoftHSM module: one token per test process (SoftHSM reads
//! SOFTHSM2_CONF once, at C_Initialize), created through PKCS#11 in a temporary directory.

use der::{Decode, Encode};
use hsm::{Hsm, HsmConfig, HsmError, KeyAlgorithm};

mod common;
use common::{pin, token, verify, LABEL, MODULE};

#[test]
fn generated_keys_sign_verifiably_and_never_leave_the_token() {
    let hsm = token();
    for (label, alg) in [
        ("k-p256", KeyAlgorithm::EcdsaP256),
        ("k-p384", KeyAlgorithm::EcdsaP384),
        ("k-rsa", KeyAlgorithm::Rsa2048),
    ] {
        let signer = hsm.generate_key(label, alg).unwrap();
        let sig = signer.sign(b"to be signed").unwrap();
        verify(&signer, b"to be signed", &sig);
        let p = hsm.key_protection(label).unwrap();
        assert!(
            p.sensitive && !p.extractable && p.always_sensitive && p.never_extractable,
            "{label}: {p:?}"
        );
        // Found again by label, with the same public key and algorithm.
        let found = hsm.find_key(label).unwrap();
        assert_eq!(found.public_key(), signer.public_key());
        assert_eq!(found.algorithm(), alg);
    }
}

#[test]
fn existing_and_missing_labels_are_clear_errors() {
    let hsm = token();
    hsm.generate_key("dup", KeyAlgorithm::EcdsaP256).unwrap();
    let e = hsm
        .generate_key("dup", KeyAlgorithm::EcdsaP256)
        .unwrap_err();
    assert!(matches!(e, HsmError::KeyExists { .. }), "{e}");
    // Keys are found by CKA_ID too (nesca sets the id to the label's bytes).
    assert_eq!(hsm.find_key_by_id(b"dup").unwrap().label(), "dup");
    let e = hsm.find_key_by_id(&[0xde, 0xad]).unwrap_err();
    assert_eq!(e.to_string(), "key \"id dead\" not found on the token");
    let e = hsm.find_key("no-such-key").unwrap_err();
    assert_eq!(e.to_string(), "key \"no-such-key\" not found on the token");
}

#[test]
fn a_token_that_is_not_there_is_named() {
    token();
    let e = Hsm::open(HsmConfig {
        module: MODULE.into(),
        token_label: "absent".into(),
        pin: pin(),
        pool_size: 1,
        ocsp_pool_size: 0,
        softhsm_conf: None,
    })
    .err()
    .unwrap();
    assert!(
        e.to_string().starts_with("no token labelled \"absent\""),
        "{e}"
    );
    let e = Hsm::open(HsmConfig {
        module: "/nonexistent/module.so".into(),
        token_label: LABEL.into(),
        pin: pin(),
        pool_size: 1,
        ocsp_pool_size: 0,
        softhsm_conf: None,
    })
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "PKCS#11 module not found: /nonexistent/module.so"
    );
}

#[test]
fn a_second_softhsm_configuration_in_one_process_is_refused() {
    token();
    let other = tempfile::tempdir().unwrap();
    let conf = other.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\n", other.path().display()),
    )
    .unwrap();
    let e = Hsm::open(HsmConfig {
        module: MODULE.into(),
        token_label: LABEL.into(),
        pin: pin(),
        pool_size: 1,
        ocsp_pool_size: 0,
        softhsm_conf: Some(conf),
    })
    .err()
    .unwrap();
    assert!(
        e.to_string()
            .contains("one SoftHSM configuration per process"),
        "{e}"
    );
}

#[test]
fn x509_cert_builder_accepts_the_hsm_signer() {
    use std::str::FromStr;
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    let hsm = token();
    let signer = hsm
        .generate_key("builder", KeyAlgorithm::EcdsaP256)
        .unwrap();
    let spki = signer.public_key().spki().clone();
    let name = x509_cert::name::Name::from_str("CN=builder test").unwrap();
    let serial = x509_cert::serial_number::SerialNumber::new(&[1, 2, 3]).unwrap();
    let validity =
        x509_cert::time::Validity::from_now(std::time::Duration::from_secs(3600)).unwrap();
    let builder =
        CertificateBuilder::new(Profile::Root, serial, validity, name, spki, &signer).unwrap();
    let cert = builder.build::<hsm::HsmSignature>().unwrap();
    let tbs = cert.tbs_certificate.to_der().unwrap();
    verify(&signer, &tbs, cert.signature.raw_bytes());
}

#[test]
fn x509_ocsp_builder_accepts_the_hsm_signer() {
    use std::str::FromStr;
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    use x509_ocsp::builder::OcspResponseBuilder;
    use x509_ocsp::{
        BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, ResponderId, SingleResponse,
    };
    let hsm = token();
    let mut signer = hsm
        .generate_key("ocsp-builder", KeyAlgorithm::EcdsaP256)
        .unwrap();
    let name = x509_cert::name::Name::from_str("CN=ocsp builder test").unwrap();
    let validity =
        x509_cert::time::Validity::from_now(std::time::Duration::from_secs(3600)).unwrap();
    let serial = x509_cert::serial_number::SerialNumber::new(&[7]).unwrap();
    let spki = signer.public_key().spki().clone();
    let ca = CertificateBuilder::new(Profile::Root, serial, validity, name.clone(), spki, &signer)
        .unwrap()
        .build::<hsm::HsmSignature>()
        .unwrap();
    let now = OcspGeneralizedTime::try_from(std::time::SystemTime::now()).unwrap();
    let cert_id = CertId::from_cert::<sha2::Sha256>(&ca, &ca).unwrap();
    let response = OcspResponseBuilder::new(ResponderId::ByName(name))
        .with_single_response(SingleResponse::new(cert_id, CertStatus::good(), now))
        .sign::<_, hsm::HsmSignature>(&mut signer, None, now)
        .unwrap();
    let bytes = response
        .response_bytes
        .expect("a successful response carries bytes");
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    verify(
        &signer,
        &basic.tbs_response_data.to_der().unwrap(),
        basic.signature.raw_bytes(),
    );
}

#[test]
fn concurrent_workers_each_with_a_session() {
    let hsm = token();
    let signer = hsm
        .generate_key("concurrent", KeyAlgorithm::EcdsaP256)
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let signer = &signer;
            s.spawn(move || {
                for i in 0..100 {
                    let msg = format!("{t}-{i}");
                    verify(
                        signer,
                        msg.as_bytes(),
                        &signer.sign(msg.as_bytes()).unwrap(),
                    );
                }
            });
        }
    });
}

#[test]
fn der_of_public_key_round_trips() {
    let hsm = token();
    let signer = hsm.generate_key("spki", KeyAlgorithm::Rsa2048).unwrap();
    let der = signer.public_key().spki_der().to_vec();
    let back = spki::SubjectPublicKeyInfoOwned::from_der(&der).unwrap();
    assert_eq!(&back, signer.public_key().spki());
    assert_eq!(back.to_der().unwrap(), der);
}

/// Key generation from several threads at once: each key is created, findable and signs.
/// (SoftHSM's file store once answered concurrent C_GenerateKeyPair with CKR_GENERAL_ERROR.)
#[test]
fn keys_generated_from_several_threads_at_once() {
    let hsm = token();
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for k in 0..4 {
                    let label = format!("concurrent-{t}-{k}");
                    let signer = hsm.generate_key(&label, KeyAlgorithm::EcdsaP256).unwrap();
                    let sig = signer.sign(b"concurrent").unwrap();
                    verify(&signer, b"concurrent", &sig);
                    assert!(hsm.has_key(&label).unwrap());
                }
            });
        }
    });
}

/// Key pairs made on the token outside nesca (as another tool would), P-256, with the private
/// key's sensitivity and extractability as given.
fn foreign_key(label: &str, sensitive: bool, extractable: bool) {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::Attribute;
    use cryptoki::session::UserType;
    // The module is initialised already (by `token()`): a second context shares its state.
    let outside = cryptoki::context::Pkcs11::new(MODULE).unwrap();
    let slot = outside
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| {
            outside
                .get_token_info(*s)
                .is_ok_and(|t| t.label().trim_end() == LABEL)
        })
        .expect("the test token");
    let session = outside.open_rw_session(slot).unwrap();
    // The process is logged in already through nesca's sessions (login is per application).
    match session.login(UserType::User, Some(&pin())) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => panic!("login: {e}"),
    }
    // prime256v1 (1.2.840.10045.3.1.7), DER.
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let public = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::EcParams(p256),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(sensitive),
        Attribute::Extractable(extractable),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap();
}

/// A CA or OCSP signing key is checked when it is loaded by label: an extractable or
/// non-sensitive private key is refused with an error naming the label and the attribute
///; a key nesca generated loads.
#[test]
fn unprotected_keys_are_refused_when_loaded() {
    let hsm = token();
    foreign_key("weak-extractable", true, true);
    foreign_key("weak-not-sensitive", false, false);
    foreign_key("foreign-protected", true, false);

    let e = hsm.find_key("weak-extractable").expect_err("refused");
    assert!(
        matches!(&e, HsmError::KeyNotProtected { label, attribute: "CKA_EXTRACTABLE", .. } if label == "weak-extractable"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "key \"weak-extractable\" is not protected: CKA_EXTRACTABLE is CK_TRUE; it must be CK_FALSE"
    );
    let e = hsm.find_key("weak-not-sensitive").expect_err("refused");
    assert!(
        matches!(
            &e,
            HsmError::KeyNotProtected {
                attribute: "CKA_SENSITIVE",
                ..
            }
        ),
        "{e:?}"
    );
    // By CKA_ID too (find_key_by_id ends in find_key): the weak key has no id, so by label.
    assert!(hsm.key_protection("weak-extractable").unwrap().extractable);

    // Generated on the token sensitive and non-extractable by another tool: loads.
    hsm.find_key("foreign-protected").unwrap();
    hsm.generate_key("strong", KeyAlgorithm::EcdsaP256).unwrap();
    hsm.find_key("strong").unwrap();
}
