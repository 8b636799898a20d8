//! CMS SignedData verification (RFC 5652 §5): one signer, id-data content, signed attributes
//! required.
//!
//! The checks, in order: size; ContentInfo contentType; SignedData structure; exactly one
//! SignerInfo; eContentType; content present; digestAlgorithm; signedAttrs with contentType and
//! messageDigest; the signer's certificate; the signature over signedAttrs. What the
//! certificate is worth (its path, its revocation) is the caller's question: see
//! [`crate::chain`].

mod attributes;
mod raw;
mod signer;

use der::{Decode, Tagged};
use x509_cert::Certificate;

use crate::digest::DigestAlgorithm;
use crate::limits::{check_len, MAX_CERTIFICATE_LEN, MAX_CMS_LEN};
use crate::pubkey::{self, Scheme};
use crate::{cert, oids, PkixError};

/// Which certificate must have signed.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// The signer's certificate is taken from the SignedData's `certificates`, found by the
    /// SignerInfo's sid (issuerAndSerialNumber or subjectKeyIdentifier).
    Embedded,
    /// The signer must be exactly this certificate (DER): the sid must identify it; it need not
    /// be in `certificates`.
    Exactly(&'a [u8]),
}

/// A SignedData (RFC 5652 §5) whose one signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignedData {
    /// The signed content: the encapsulated eContent, or the detached content given.
    pub content: Vec<u8>,
    /// The signer's certificate, DER.
    pub signer_certificate: Vec<u8>,
    /// Every certificate in the SignedData's `certificates`, DER, in order (for path building).
    pub certificates: Vec<Vec<u8>>,
    /// The digest algorithm's name: "sha256", "sha384" or "sha512".
    pub digest_algorithm: &'static str,
    /// The messageDigest signed attribute (the digest of `content`).
    pub message_digest: Vec<u8>,
    /// The signingTime signed attribute, Unix seconds, when present.
    pub signing_time: Option<i64>,
}

/// The certificates a SignedData carries, DER and decoded.
fn carried_certificates<'d>(
    certificates: &[&'d [u8]],
) -> Result<Vec<(&'d [u8], Certificate)>, PkixError> {
    certificates
        .iter()
        .enumerate()
        .map(|(i, der)| {
            check_len("SignedData.certificates", der, MAX_CERTIFICATE_LEN)?;
            Certificate::from_der(der)
                .map(|c| (*der, c))
                .map_err(|e| PkixError::Malformed {
                    field: "SignedData.certificates",
                    detail: format!("certificate {i}: {e}"),
                })
        })
        .collect()
}

/// The checks every reading of a CMS starts with, in order: size, ContentInfo contentType,
/// SignedData structure, exactly one SignerInfo.
fn one_signer(cms_der: &[u8]) -> Result<(raw::SignedData<'_>, raw::SignerInfo<'_>), PkixError> {
    check_len("ContentInfo", cms_der, MAX_CMS_LEN)?;
    let content_info = raw::content_info(cms_der)?;
    if content_info.content_type != oids::ID_SIGNED_DATA {
        return Err(PkixError::invalid(
            "ContentInfo.contentType",
            format!(
                "must be id-signedData ({}), found {}",
                oids::ID_SIGNED_DATA,
                content_info.content_type
            ),
        ));
    }
    let signed_data = raw::signed_data(content_info.content)?;
    let signer_info = match signed_data.signer_infos.as_slice() {
        [one] => raw::signer_info(one)?,
        more => {
            return Err(PkixError::invalid(
                "signerInfos",
                format!("exactly one SignerInfo is accepted (found {})", more.len()),
            ))
        }
    };
    Ok((signed_data, signer_info))
}

/// The certificate (DER) that the one SignerInfo of a DER ContentInfo holding a SignedData
/// names by its sid, among the certificates the SignedData carries, **without verifying
/// anything**: for evidence kept after it was verified (who signed a kept approval), never to
/// decide whether a signature is good.
pub fn carried_signer_certificate(cms_der: &[u8]) -> Result<Vec<u8>, PkixError> {
    let (signed_data, signer_info) = one_signer(cms_der)?;
    let certificates = carried_certificates(&signed_data.certificates)?;
    let (der, _) = signer::find(&signer_info.sid, &certificates)?;
    Ok(der.to_vec())
}

/// Verifies a DER ContentInfo holding a SignedData. `detached`: the content when the
/// SignedData has no eContent; if both are present they must be equal byte for byte.
///
/// Only DER is accepted (not BER with indefinite lengths): the signed attributes must be
/// hashed exactly as encoded, and a DER decoder guarantees one encoding.
pub fn verify_signed_data(
    cms_der: &[u8],
    detached: Option<&[u8]>,
    signer: Signer<'_>,
) -> Result<VerifiedSignedData, PkixError> {
    let (signed_data, signer_info) = one_signer(cms_der)?;

    let eci = &signed_data.encap_content_info;
    if eci.econtent_type != oids::ID_DATA {
        return Err(PkixError::invalid(
            "encapContentInfo.eContentType",
            format!(
                "must be id-data ({}), found {}",
                oids::ID_DATA,
                eci.econtent_type
            ),
        ));
    }
    let content = signed_content(eci.econtent.as_ref(), detached)?;

    let digest_algorithm = DigestAlgorithm::from_identifier(
        "SignerInfo.digestAlgorithm",
        &signer_info.digest_algorithm,
    )?;

    // RFC 5652 §5.3 lets signedAttrs be absent, but then the signature is over the content
    // alone and binds neither the content type nor (for the channels) a signing time.
    let signed_attrs_der = signer_info.signed_attrs.as_deref().ok_or_else(|| {
        PkixError::invalid(
            "SignerInfo.signedAttrs",
            "required, but absent (a signature over the content alone is not accepted)",
        )
    })?;
    let attrs = attributes::read(signed_attrs_der)?;
    if attrs.content_type != eci.econtent_type {
        return Err(PkixError::invalid(
            "signedAttrs.contentType",
            format!(
                "{} does not match eContentType {}",
                attrs.content_type, eci.econtent_type
            ),
        ));
    }
    if attrs.message_digest != digest_algorithm.digest(content) {
        return Err(PkixError::invalid(
            "signedAttrs.messageDigest",
            format!(
                "does not match the {} digest of the content",
                digest_algorithm.name()
            ),
        ));
    }

    let certificates = carried_certificates(&signed_data.certificates)?;
    let (signer_der, signer_cert) = match signer {
        Signer::Embedded => {
            let (der, cert) = signer::find(&signer_info.sid, &certificates)?;
            (*der, cert.clone())
        }
        Signer::Exactly(der) => {
            let cert = cert::parse("signer certificate", der)?;
            if !signer::identifies(&signer_info.sid, &cert) {
                return Err(PkixError::invalid(
                    "SignerInfo.sid",
                    "does not identify the expected signer certificate",
                ));
            }
            (der, cert)
        }
    };

    let scheme = Scheme::from_identifier(&signer_info.signature_algorithm, digest_algorithm)?;
    pubkey::verify(
        &signer_cert.tbs_certificate.subject_public_key_info,
        scheme,
        signed_attrs_der,
        signer_info.signature,
    )?;

    Ok(VerifiedSignedData {
        content: content.to_vec(),
        signer_certificate: signer_der.to_vec(),
        certificates: certificates.iter().map(|(der, _)| der.to_vec()).collect(),
        digest_algorithm: digest_algorithm.name(),
        message_digest: attrs.message_digest,
        signing_time: attrs.signing_time,
    })
}

/// The content that was signed: eContent's octets, or the detached content.
fn signed_content<'a>(
    econtent: Option<&'a der::Any>,
    detached: Option<&'a [u8]>,
) -> Result<&'a [u8], PkixError> {
    let field = "encapContentInfo.eContent";
    let attached = match econtent {
        None => None,
        Some(any) if any.tag() == der::Tag::OctetString => Some(any.value()),
        Some(any) => {
            return Err(PkixError::Malformed {
                field,
                detail: format!("expected OCTET STRING, found {}", any.tag()),
            })
        }
    };
    match (attached, detached) {
        (Some(a), Some(d)) if a != d => Err(PkixError::invalid(
            field,
            "differs from the detached content given (both present, they must be equal byte for byte)",
        )),
        (Some(a), _) => Ok(a),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(PkixError::invalid(
            field,
            "absent, and no detached content was given",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use cms::signed_data::SignerIdentifier;
    use der::asn1::OctetString;
    use der::Encode;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::ecdsa::signature::Signer as _;
    use spki::AlgorithmIdentifierOwned;
    use x509_cert::attr::Attribute;

    /// A SignedData over [`COMMITMENT`] by Ayşe's P-256 key, carrying `certificates`.
    fn signed_by_leaf(pki: &Pki, attached: bool, certificates: &[&Certificate]) -> Vec<u8> {
        signed_data::<_, P256Signature>(
            COMMITMENT,
            attached,
            None,
            &[SignerSpec::new(&pki.leaf_key, &pki.leaf)],
            certificates,
        )
    }

    /// A good attached SignedData by Ayşe's P-256 key, with her certificate and the root.
    fn good_attached(pki: &Pki) -> Vec<u8> {
        signed_by_leaf(pki, true, &[&pki.leaf, &pki.root])
    }

    fn good_detached(pki: &Pki) -> Vec<u8> {
        signed_by_leaf(pki, false, &[&pki.leaf])
    }

    /// A good attached SignedData by Ayşe's RSA key (PKCS#1 v1.5, SHA-256), with her RSA leaf.
    fn good_rsa(pki: &Pki) -> Vec<u8> {
        let key = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa_key());
        signed_data::<_, rsa::pkcs1v15::Signature>(
            COMMITMENT,
            true,
            None,
            &[SignerSpec::new(&key, &pki.rsa_leaf)],
            &[&pki.rsa_leaf],
        )
    }

    /// A certificate with the issuer and serial of Ayşe's, but another key.
    fn same_name_other_key(pki: &Pki) -> Certificate {
        issue(
            leaf_spec(&pki.root, spki_of(pki.other_key.verifying_key())),
            &pki.root_key,
        )
    }

    /// `cms` with its signed attribute `oid` replaced by `replacement` (the signature unchanged).
    fn replace_signed_attribute(
        cms: &[u8],
        oid: der::oid::ObjectIdentifier,
        replacement: Attribute,
    ) -> Vec<u8> {
        mutate_signer(cms, |si| {
            let attrs: Vec<_> = si
                .signed_attrs
                .take()
                .unwrap()
                .into_vec()
                .into_iter()
                .map(|a| if a.oid == oid { replacement.clone() } else { a })
                .collect();
            si.signed_attrs = Some(attrs.try_into().unwrap());
        })
    }

    fn err(result: Result<VerifiedSignedData, PkixError>) -> String {
        result.unwrap_err().to_string()
    }

    /// Why `cms`, attached, is refused with the signer taken from its certificates.
    fn refusal(cms: &[u8]) -> String {
        err(verify_signed_data(cms, None, Signer::Embedded))
    }

    fn is_bad_signature(result: Result<VerifiedSignedData, PkixError>) -> bool {
        matches!(result, Err(PkixError::BadSignature { .. }))
    }

    #[test]
    fn good_attached_ecdsa_verifies_and_reports_what_was_signed() {
        let pki = Pki::new();
        let v = verify_signed_data(&good_attached(&pki), None, Signer::Embedded).unwrap();
        assert_eq!(v.content, COMMITMENT);
        assert_eq!(v.signer_certificate, der_of(&pki.leaf));
        assert_eq!(v.certificates.len(), 2);
        assert!(v.certificates.contains(&der_of(&pki.leaf)));
        assert!(v.certificates.contains(&der_of(&pki.root)));
        assert_eq!(v.digest_algorithm, "sha256");
        assert_eq!(v.message_digest, sha256(COMMITMENT));
        assert_eq!(v.signing_time, Some(NOW));
    }

    #[test]
    fn the_carried_signer_certificate_is_found_without_verifying() {
        let pki = Pki::new();
        assert_eq!(
            carried_signer_certificate(&good_attached(&pki)).unwrap(),
            der_of(&pki.leaf)
        );
        // Nothing is verified: a signature over other content still names its signer.
        let tampered = mutate(&good_attached(&pki), |sd| {
            sd.encap_content_info.econtent =
                Some(der::Any::new(der::Tag::OctetString, b"another text".to_vec()).unwrap());
        });
        assert_eq!(
            carried_signer_certificate(&tampered).unwrap(),
            der_of(&pki.leaf)
        );
        // Without the signer's certificate there is none to name.
        let bare = signed_by_leaf(&pki, true, &[&pki.root]);
        assert!(carried_signer_certificate(&bare).is_err());
        assert!(carried_signer_certificate(b"not a CMS").is_err());
    }

    #[test]
    fn good_detached_verifies_with_the_content_given() {
        let pki = Pki::new();
        let v =
            verify_signed_data(&good_detached(&pki), Some(COMMITMENT), Signer::Embedded).unwrap();
        assert_eq!(v.content, COMMITMENT);
        assert_eq!(v.certificates, vec![der_of(&pki.leaf)]);
    }

    #[test]
    fn attached_with_equal_detached_content_verifies() {
        let pki = Pki::new();
        let v = verify_signed_data(&good_attached(&pki), Some(COMMITMENT), Signer::Embedded);
        assert_eq!(v.unwrap().content, COMMITMENT);
    }

    #[test]
    fn good_signed_data_with_content_or_signer_that_do_not_fit_is_refused() {
        let pki = Pki::new();
        let (attached, detached) = (good_attached(&pki), good_detached(&pki));
        let other = der_of(&pki.other_leaf);
        // What the case is, the SignedData, the detached content, the signer, the refusal.
        type Case<'a> = (&'a str, &'a [u8], Option<&'a [u8]>, Signer<'a>, &'a str);
        let cases: [Case<'_>; 4] = [
            (
                "attached and detached content that differ",
                &attached,
                Some(b"other"),
                Signer::Embedded,
                "encapContentInfo.eContent: differs from the detached content given \
                 (both present, they must be equal byte for byte)",
            ),
            (
                "detached signature over other content",
                &detached,
                Some(b"other text"),
                Signer::Embedded,
                "signedAttrs.messageDigest: does not match the sha256 digest of the content",
            ),
            (
                "detached without content",
                &detached,
                None,
                Signer::Embedded,
                "encapContentInfo.eContent: absent, and no detached content was given",
            ),
            (
                "exactly another certificate",
                &attached,
                None,
                Signer::Exactly(&other),
                "SignerInfo.sid: does not identify the expected signer certificate",
            ),
        ];
        for (what, cms, content, signer, expected) in cases {
            assert_eq!(
                err(verify_signed_data(cms, content, signer)),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn altered_signed_data_is_refused_naming_the_field() {
        let pki = Pki::new();
        let good = good_attached(&pki);
        let cases = [
            (
                "tampered eContent",
                mutate(&good, |sd| {
                    sd.encap_content_info.econtent = Some(
                        der::Any::new(der::Tag::OctetString, b"Nitelikli... reddederim.".to_vec())
                            .unwrap(),
                    );
                }),
                "signedAttrs.messageDigest: does not match the sha256 digest of the content",
            ),
            (
                "missing signed attributes",
                mutate_signer(&good, |si| si.signed_attrs = None),
                "SignerInfo.signedAttrs: required, but absent \
                 (a signature over the content alone is not accepted)",
            ),
            (
                "contentType attribute other than eContentType",
                replace_signed_attribute(
                    &good,
                    oids::ID_CONTENT_TYPE,
                    cms::builder::create_content_type_attribute(oids::ID_SIGNED_DATA).unwrap(),
                ),
                "signedAttrs.contentType: 1.2.840.113549.1.7.2 does not match eContentType 1.2.840.113549.1.7.1",
            ),
            (
                "zero SignerInfos",
                mutate(&good, |sd| sd.signer_infos = Vec::new().try_into().unwrap()),
                "signerInfos: exactly one SignerInfo is accepted (found 0)",
            ),
            (
                // id-ct-TSTInfo (RFC 3161)
                "another eContentType",
                mutate(&good, |sd| {
                    sd.encap_content_info.econtent_type =
                        "1.2.840.113549.1.9.16.1.4".parse().unwrap();
                }),
                "encapContentInfo.eContentType: must be id-data (1.2.840.113549.1.7.1), \
                 found 1.2.840.113549.1.9.16.1.4",
            ),
            (
                "SHA-1 digestAlgorithm",
                mutate_signer(&good, |si| {
                    si.digest_alg = sha_id("1.3.14.3.2.26".parse().unwrap());
                }),
                "SignerInfo.digestAlgorithm: only sha256, sha384 and sha512 are accepted (found 1.3.14.3.2.26)",
            ),
        ];
        for (what, cms, expected) in cases {
            assert_eq!(refusal(&cms), expected, "{what}");
        }
    }

    #[test]
    fn tampered_signature_is_refused() {
        let pki = Pki::new();
        let cms = mutate_signer(&good_attached(&pki), |si| {
            let mut sig = si.signature.as_bytes().to_vec();
            // Flip a bit of s, the last INTEGER: the value stays a DER ECDSA-Sig-Value.
            *sig.last_mut().unwrap() ^= 0x01;
            si.signature = OctetString::new(sig).unwrap();
        });
        assert_eq!(
            verify_signed_data(&cms, None, Signer::Embedded),
            Err(PkixError::BadSignature {
                algorithm: "ecdsa-with-SHA256 over P-256".into()
            })
        );
        assert_eq!(
            refusal(&cms),
            "SignerInfo.signature: does not verify with the signer certificate's public key \
             (ecdsa-with-SHA256 over P-256)"
        );
    }

    #[test]
    fn tampered_signed_attribute_is_refused() {
        let pki = Pki::new();
        // Move the signing time by a second: the signature no longer covers the attributes.
        let cms = replace_signed_attribute(
            &good_attached(&pki),
            oids::ID_SIGNING_TIME,
            signing_time_attribute(NOW + 1),
        );
        assert!(is_bad_signature(verify_signed_data(
            &cms,
            None,
            Signer::Embedded
        )));
    }

    #[test]
    fn exactly_the_signer_verifies_even_without_embedded_certificates() {
        let pki = Pki::new();
        let cms = signed_by_leaf(&pki, true, &[]);
        let leaf = der_of(&pki.leaf);
        let v = verify_signed_data(&cms, None, Signer::Exactly(&leaf)).unwrap();
        assert_eq!(v.signer_certificate, leaf);
        assert!(v.certificates.is_empty());
        // Embedded has nothing to find.
        assert_eq!(
            refusal(&cms),
            "SignerInfo.sid: no certificate in SignedData.certificates matches the signer identifier"
        );
    }

    #[test]
    fn exactly_a_certificate_of_the_same_name_but_another_key_fails_on_the_signature() {
        // The sid names issuer and serial only: a certificate sharing them but holding another
        // key is identified, and the signature check is what refuses it.
        let pki = Pki::new();
        let impostor = der_of(&same_name_other_key(&pki));
        assert!(is_bad_signature(verify_signed_data(
            &good_attached(&pki),
            None,
            Signer::Exactly(&impostor)
        )));
    }

    #[test]
    fn a_sid_matching_two_different_embedded_certificates_is_refused() {
        let pki = Pki::new();
        // Same issuer and serial as Ayşe's certificate, another key: which one signed would
        // be left to chance.
        let twin = same_name_other_key(&pki);
        let cms = signed_by_leaf(&pki, true, &[&pki.leaf, &twin]);
        assert_eq!(
            refusal(&cms),
            "SignerInfo.sid: matches more than one different certificate in SignedData.certificates"
        );
        // Exactly names the certificate itself: the twin in the set does not matter.
        let leaf = der_of(&pki.leaf);
        assert!(verify_signed_data(&cms, None, Signer::Exactly(&leaf)).is_ok());
    }

    #[test]
    fn subject_key_identifier_sid_finds_the_certificate() {
        let pki = Pki::new();
        let ski = cert::extension(&pki.leaf, oids::ID_CE_SUBJECT_KEY_IDENTIFIER, "test")
            .unwrap()
            .map(|e| {
                x509_cert::ext::pkix::SubjectKeyIdentifier::from_der(e.extn_value.as_bytes())
                    .unwrap()
            })
            .unwrap();
        let mut spec = SignerSpec::new(&pki.leaf_key, &pki.leaf);
        spec.sid = SignerIdentifier::SubjectKeyIdentifier(ski);
        let cms = signed_data::<_, P256Signature>(
            COMMITMENT,
            true,
            None,
            &[spec],
            &[&pki.root, &pki.leaf],
        );
        let v = verify_signed_data(&cms, None, Signer::Embedded).unwrap();
        assert_eq!(v.signer_certificate, der_of(&pki.leaf));
        let leaf = der_of(&pki.leaf);
        assert!(verify_signed_data(&cms, None, Signer::Exactly(&leaf)).is_ok());
    }

    #[test]
    fn wrong_message_digest_with_a_valid_signature_is_refused() {
        let pki = Pki::new();
        // The signer signed attributes that state the digest of another text.
        let cms = signed_data::<_, P256Signature>(
            COMMITMENT,
            false,
            Some(sha256(b"another text")),
            &[SignerSpec::new(&pki.leaf_key, &pki.leaf)],
            &[&pki.leaf],
        );
        assert_eq!(
            err(verify_signed_data(&cms, Some(COMMITMENT), Signer::Embedded)),
            "signedAttrs.messageDigest: does not match the sha256 digest of the content"
        );
        // ...and it verifies for that other text.
        assert!(verify_signed_data(&cms, Some(b"another text"), Signer::Embedded).is_ok());
    }

    #[test]
    fn two_signer_infos_are_refused() {
        let pki = Pki::new();
        let cms = signed_data::<_, P256Signature>(
            COMMITMENT,
            true,
            None,
            &[
                SignerSpec::new(&pki.leaf_key, &pki.leaf),
                SignerSpec::new(&pki.other_key, &pki.other_leaf),
            ],
            &[&pki.leaf, &pki.other_leaf],
        );
        assert_eq!(
            refusal(&cms),
            "signerInfos: exactly one SignerInfo is accepted (found 2)"
        );
    }

    #[test]
    fn a_content_info_that_is_not_signed_data_is_refused() {
        let ci = cms::content_info::ContentInfo {
            content_type: oids::ID_DATA,
            content: der::Any::new(der::Tag::OctetString, COMMITMENT).unwrap(),
        };
        assert_eq!(
            refusal(&ci.to_der().unwrap()),
            "ContentInfo.contentType: must be id-signedData (1.2.840.113549.1.7.2), \
             found 1.2.840.113549.1.7.1"
        );
    }

    #[test]
    fn garbage_is_refused_as_malformed() {
        for garbage in [&b""[..], b"\x30", b"hello world", &[0x30, 0x80, 0x00, 0x00]] {
            let e = verify_signed_data(garbage, None, Signer::Embedded).unwrap_err();
            assert!(
                matches!(
                    e,
                    PkixError::Malformed {
                        field: "ContentInfo",
                        ..
                    }
                ),
                "{garbage:?}: {e}"
            );
        }
    }

    #[test]
    fn truncated_input_is_refused_as_malformed() {
        let pki = Pki::new();
        let cms = good_attached(&pki);
        for len in [1, 10, cms.len() / 2, cms.len() - 1] {
            let e = verify_signed_data(&cms[..len], None, Signer::Embedded).unwrap_err();
            assert!(matches!(e, PkixError::Malformed { .. }), "{len}: {e}");
        }
    }

    #[test]
    fn oversize_input_is_refused_before_parsing() {
        let big = vec![0u8; MAX_CMS_LEN + 1];
        assert_eq!(
            refusal(&big),
            "ContentInfo: 1048577 bytes is over the limit of 1048576 bytes"
        );
        let pki = Pki::new();
        let huge_cert = vec![0x30; crate::MAX_CERTIFICATE_LEN + 1];
        assert!(matches!(
            verify_signed_data(&good_attached(&pki), None, Signer::Exactly(&huge_cert)),
            Err(PkixError::TooLarge {
                what: "signer certificate",
                ..
            })
        ));
    }

    #[test]
    fn rsa_pkcs1_sha256_verifies() {
        let pki = Pki::new();
        let cms = good_rsa(&pki);
        let v = verify_signed_data(&cms, None, Signer::Embedded).unwrap();
        assert_eq!(v.signer_certificate, der_of(&pki.rsa_leaf));

        // The bare rsaEncryption OID means PKCS#1 v1.5 with the digestAlgorithm (sha256).
        let bare = mutate_signer(&cms, |si| {
            si.signature_algorithm = AlgorithmIdentifierOwned {
                oid: oids::RSA_ENCRYPTION,
                parameters: Some(der::asn1::Null.into()),
            };
        });
        assert!(verify_signed_data(&bare, None, Signer::Embedded).is_ok());

        // An RSA signature claimed as ECDSA is refused for the key type.
        let claimed_ec = mutate_signer(&cms, |si| {
            si.signature_algorithm = sha_id(oids::ECDSA_WITH_SHA256);
        });
        assert!(refusal(&claimed_ec).starts_with(
            "signer certificate subjectPublicKeyInfo: ecdsa-with-SHA256 needs an id-ecPublicKey key"
        ));
    }

    #[test]
    fn rsa_pkcs1_sha512_with_sha512_digest_verifies() {
        let pki = Pki::new();
        let key = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(rsa_key());
        let mut spec = SignerSpec::new(&key, &pki.rsa_leaf);
        spec.digest = sha_id(oids::ID_SHA512);
        let cms = signed_data::<_, rsa::pkcs1v15::Signature>(
            COMMITMENT,
            false,
            None,
            &[spec],
            &[&pki.rsa_leaf],
        );
        let v = verify_signed_data(&cms, Some(COMMITMENT), Signer::Embedded).unwrap();
        assert_eq!(v.digest_algorithm, "sha512");
        assert_eq!(v.message_digest.len(), 64);
    }

    #[test]
    fn tampered_rsa_signature_is_refused() {
        let pki = Pki::new();
        let cms = mutate_signer(&good_rsa(&pki), |si| {
            let mut sig = si.signature.as_bytes().to_vec();
            sig[10] ^= 0x40;
            si.signature = OctetString::new(sig).unwrap();
        });
        assert_eq!(
            refusal(&cms),
            "SignerInfo.signature: does not verify with the signer certificate's public key \
             (sha256WithRSAEncryption with a 2048-bit RSA key)"
        );
    }

    #[test]
    fn ecdsa_p384_with_sha384_verifies() {
        let pki = Pki::new();
        let key = p384::ecdsa::SigningKey::from_slice(&[7; 48]).unwrap();
        let cert = issue(
            leaf_spec(&pki.root, spki_of(key.verifying_key())),
            &pki.root_key,
        );
        let mut spec = SignerSpec::new(&key, &cert);
        spec.digest = sha_id(oids::ID_SHA384);
        let cms =
            signed_data::<_, p384::ecdsa::DerSignature>(COMMITMENT, true, None, &[spec], &[&cert]);
        let v = verify_signed_data(&cms, None, Signer::Embedded).unwrap();
        assert_eq!(v.digest_algorithm, "sha384");
    }

    /// Re-signs the (only) SignerInfo of `cms` with `sign` over its signedAttrs as a SET OF,
    /// under `algorithm`.
    fn resign(
        cms: &[u8],
        algorithm: der::oid::ObjectIdentifier,
        sign: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Vec<u8> {
        mutate_signer(cms, |si| {
            let set = si.signed_attrs.as_ref().unwrap().to_der().unwrap();
            si.signature = OctetString::new(sign(&set)).unwrap();
            si.signature_algorithm = sha_id(algorithm);
        })
    }

    #[test]
    fn ecdsa_with_sha512_on_p256_verifies() {
        let pki = Pki::new();
        let cms = resign(&good_attached(&pki), oids::ECDSA_WITH_SHA512, |set| {
            let digest = crate::digest::DigestAlgorithm::Sha512.digest(set);
            let sig: p256::ecdsa::Signature = pki.leaf_key.sign_prehash(&digest).unwrap();
            sig.to_der().as_bytes().to_vec()
        });
        assert!(verify_signed_data(&cms, None, Signer::Embedded).is_ok());
        // The same signature under ecdsa-with-SHA256 hashes differently and fails.
        let wrong = mutate_signer(&cms, |si| {
            si.signature_algorithm = sha_id(oids::ECDSA_WITH_SHA256);
        });
        assert!(is_bad_signature(verify_signed_data(
            &wrong,
            None,
            Signer::Embedded
        )));
    }

    #[test]
    fn a_signature_over_the_implicit_0_tag_is_refused() {
        // RFC 5652 §5.4: the signature covers the EXPLICIT SET OF encoding, not the [0] that
        // travels in the SignerInfo. A signer that got this wrong must not pass.
        let pki = Pki::new();
        let cms = resign(&good_attached(&pki), oids::ECDSA_WITH_SHA256, |set| {
            let mut implicit = set.to_vec();
            implicit[0] = 0xa0;
            let sig: p256::ecdsa::DerSignature = pki.leaf_key.sign(&implicit);
            sig.as_bytes().to_vec()
        });
        assert!(is_bad_signature(verify_signed_data(
            &cms,
            None,
            Signer::Embedded
        )));
    }

    /// DER TLV with a one-octet tag.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        der::Length::try_from(content.len())
            .unwrap()
            .encode_to_vec(&mut out)
            .unwrap();
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn unsorted_signed_attributes_verify_as_encoded() {
        // Signers that do not sort the SET OF signedAttrs (DER requires it, some do not) sign
        // the bytes as they sent them; the verifier must hash those bytes, not a re-encoding.
        let pki = Pki::new();
        let attrs = [
            signing_time_attribute(NOW),
            cms::builder::create_message_digest_attribute(&sha256(COMMITMENT)).unwrap(),
            cms::builder::create_content_type_attribute(oids::ID_DATA).unwrap(),
        ];
        let mut unsorted: Vec<u8> = Vec::new();
        for a in &attrs {
            unsorted.extend(a.to_der().unwrap());
        }
        let sorted: Vec<u8> = x509_cert::attr::Attributes::try_from(attrs.to_vec())
            .unwrap()
            .to_der()
            .unwrap();
        assert_ne!(
            tlv(0x31, &unsorted),
            sorted,
            "the test needs an unsorted order"
        );
        let sig: p256::ecdsa::DerSignature = pki.leaf_key.sign(&tlv(0x31, &unsorted));

        let signer_info = tlv(
            0x30,
            &[
                1u8.to_der().unwrap(),
                issuer_and_serial(&pki.leaf).to_der().unwrap(),
                sha_id(oids::ID_SHA256).to_der().unwrap(),
                tlv(0xa0, &unsorted),
                sha_id(oids::ECDSA_WITH_SHA256).to_der().unwrap(),
                tlv(0x04, sig.as_bytes()),
            ]
            .concat(),
        );
        let signed_data = tlv(
            0x30,
            &[
                1u8.to_der().unwrap(),
                tlv(0x31, &sha_id(oids::ID_SHA256).to_der().unwrap()),
                tlv(
                    0x30,
                    &[
                        oids::ID_DATA.to_der().unwrap(),
                        tlv(0xa0, &tlv(0x04, COMMITMENT)),
                    ]
                    .concat(),
                ),
                tlv(0xa0, &[der_of(&pki.root), der_of(&pki.leaf)].concat()),
                tlv(0x31, &signer_info),
            ]
            .concat(),
        );
        let content_info = tlv(
            0x30,
            &[
                oids::ID_SIGNED_DATA.to_der().unwrap(),
                tlv(0xa0, &signed_data),
            ]
            .concat(),
        );
        let v = verify_signed_data(&content_info, None, Signer::Embedded).unwrap();
        assert_eq!(v.signing_time, Some(NOW));
        // certificates come back in the order encoded (root first here), not sorted.
        assert_eq!(v.certificates, vec![der_of(&pki.root), der_of(&pki.leaf)]);
    }
}
