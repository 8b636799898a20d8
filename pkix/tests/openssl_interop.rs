//! Interop: SignedData and certificates made by the OpenSSL command line
//! (`data/make-openssl-vectors.sh`, run once; the files are committed and no test runs openssl).

use nesca_pkix::chain::{verify_path, ID_KP_CLIENT_AUTH};
use nesca_pkix::cms::{verify_signed_data, Signer};
use nesca_pkix::subject::{extended_key_usages, person_identity, serial_hex, PersonIdentity};
use nesca_pkix::PkixError;

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// When the vectors were made: the certificates are valid for years after it.
fn generated_at() -> i64 {
    String::from_utf8(data("generated-at.txt"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn content() -> Vec<u8> {
    data("openssl-content.txt")
}

#[test]
fn ecdsa_sha256_attached() {
    let v = verify_signed_data(
        &data("openssl-ec-sha256-attached.p7s"),
        None,
        Signer::Embedded,
    )
    .unwrap();
    assert_eq!(v.content, content());
    assert_eq!(v.signer_certificate, data("openssl-ec-leaf.der"));
    assert_eq!(v.digest_algorithm, "sha256");
    // OpenSSL sets signingTime to when it signed.
    let t = v.signing_time.unwrap();
    assert!((generated_at() - 3600..=generated_at()).contains(&t), "{t}");
    // -certfile put the root next to the signer's certificate.
    assert!(v.certificates.contains(&data("openssl-root.der")));
    assert!(v.certificates.contains(&data("openssl-ec-leaf.der")));
}

#[test]
fn ecdsa_sha512_attached() {
    let leaf = data("openssl-ec-leaf.der");
    let v = verify_signed_data(
        &data("openssl-ec-sha512-attached.p7s"),
        Some(&content()),
        Signer::Exactly(&leaf),
    )
    .unwrap();
    assert_eq!(v.digest_algorithm, "sha512");
    assert_eq!(v.message_digest.len(), 64);
}

#[test]
fn rsa_sha256_detached() {
    let leaf = data("openssl-rsa-leaf.der");
    let cms = data("openssl-rsa-sha256-detached.p7s");
    let v = verify_signed_data(&cms, Some(&content()), Signer::Exactly(&leaf)).unwrap();
    assert_eq!(v.content, content());
    assert_eq!(v.signer_certificate, leaf);

    let e = verify_signed_data(&cms, None, Signer::Embedded).unwrap_err();
    assert_eq!(
        e.to_string(),
        "encapContentInfo.eContent: absent, and no detached content was given"
    );
    let mut other = content();
    other.push(b'.');
    let e = verify_signed_data(&cms, Some(&other), Signer::Embedded).unwrap_err();
    assert_eq!(
        e.to_string(),
        "signedAttrs.messageDigest: does not match the sha256 digest of the content"
    );
    // The EC leaf shares subject and issuer but not the serial: the sid does not name it.
    let ec_leaf = data("openssl-ec-leaf.der");
    let e = verify_signed_data(&cms, Some(&content()), Signer::Exactly(&ec_leaf)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "SignerInfo.sid: does not identify the expected signer certificate"
    );
}

#[test]
fn rsa_pss_sha256_detached() {
    let v = verify_signed_data(
        &data("openssl-rsa-pss-sha256-detached.p7s"),
        Some(&content()),
        Signer::Embedded,
    )
    .unwrap();
    assert_eq!(v.signer_certificate, data("openssl-rsa-leaf.der"));
}

#[test]
fn flipped_signature_octet_fails() {
    let mut cms = data("openssl-ec-sha256-attached.p7s");
    // The SignerInfo's signature is the last OCTET STRING: flip its last octet.
    let last = cms.len() - 1;
    cms[last] ^= 0x01;
    let e = verify_signed_data(&cms, None, Signer::Embedded).unwrap_err();
    assert!(matches!(e, PkixError::BadSignature { .. }), "{e}");
}

#[test]
fn openssl_certificates_chain_and_read() {
    let root = data("openssl-root.der");
    let at = generated_at() + 86_400;
    for leaf in ["openssl-ec-leaf.der", "openssl-rsa-leaf.der"] {
        verify_path(
            &data(leaf),
            &[],
            std::slice::from_ref(&root),
            at,
            Some(ID_KP_CLIENT_AUTH),
        )
        .unwrap();
    }
    let leaf = data("openssl-ec-leaf.der");
    assert_eq!(
        person_identity(&leaf).unwrap(),
        PersonIdentity {
            serial_number: "10000000146".into(),
            given_name: "Ayşe".into(),
            surname: "Yılmaz".into(),
        }
    );
    assert_eq!(serial_hex(&leaf).unwrap(), "ec1eaf");
    assert_eq!(
        extended_key_usages(&leaf).unwrap(),
        vec![ID_KP_CLIENT_AUTH.to_string()]
    );
    // Before the vectors were made, the leaf was not yet valid.
    assert!(matches!(
        verify_path(&leaf, &[], &[root], generated_at() - 86_400, None),
        Err(PkixError::NotYetValid { .. })
    ));
}
