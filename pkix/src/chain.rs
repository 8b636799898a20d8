//! Certification path validation (RFC 5280 §6) with rustls-webpki.
//!
//! webpki builds the path from the leaf through the intermediates to an anchor, checks each
//! signature, validity, basicConstraints, keyUsage of CAs, name constraints and the leaf's
//! extendedKeyUsage. It does not check the anchor's own validity (an anchor is a name and a
//! key to it); this module adds that, since the brief of nesca's channels is "every
//! certificate within validity". Revocation is checked only where a caller hands in the
//! issuer's CRL ([`verify_against_crl`]).

use der::oid::ObjectIdentifier;
use der::Encode;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter};

use crate::limits::{check_len, MAX_CERTIFICATE_LEN};
use crate::PkixError;

/// id-kp-clientAuth (RFC 5280 §4.2.1.12).
pub const ID_KP_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// Validates `leaf_der` up to one of `anchors_der` (trust-anchor CA certificates, DER) through
/// `intermediates_der`, at `at_unix` (every certificate of the path within validity), with
/// rustls-webpki. `eku`: if Some(oid dotted string), an extendedKeyUsage extension in the leaf, when
/// present, must contain it (webpki `KeyUsage::required_if_present`); None: any EKU accepted.
pub fn verify_path(
    leaf_der: &[u8],
    intermediates_der: &[Vec<u8>],
    anchors_der: &[Vec<u8>],
    at_unix: i64,
    eku: Option<&str>,
) -> Result<(), PkixError> {
    verify(leaf_der, intermediates_der, anchors_der, at_unix, eku, None)
}

/// Whether `leaf_der`, issued by `issuer_der`, is revoked at `at_unix` according to `crl_der`,
/// a CRL of that issuer (RFC 5280 §6.3): webpki checks that the leaf names the issuer and its
/// signature verifies under the issuer's key, that the CRL names the same issuer and is signed
/// with the same key, that the CRL's nextUpdate has not passed (`CrlOutOfDate`), and looks the
/// leaf's serial up (`Revoked`). Delta and indirect CRLs are refused. Any other error means the
/// CRL gave no answer. The issuer is taken as given, as an anchor: webpki checks neither its
/// keyUsage nor its own status, and its validity is only what its certificate says.
pub fn verify_against_crl(
    leaf_der: &[u8],
    issuer_der: &[u8],
    crl_der: &[u8],
    at_unix: i64,
) -> Result<(), PkixError> {
    check_len("CRL", crl_der, MAX_CRL_LEN)?;
    let crl: webpki::CertRevocationList<'_> = webpki::BorrowedCertRevocationList::from_der(crl_der)
        .map_err(|e| PkixError::Malformed {
            field: "CertificateList",
            detail: e.to_string(),
        })?
        .into();
    let crls = [&crl];
    let revocation = webpki::RevocationOptionsBuilder::new(&crls)
        .map_err(|_| PkixError::invalid("CertificateList", "a CRL is required"))?
        .with_depth(webpki::RevocationCheckDepth::EndEntity)
        .with_status_policy(webpki::UnknownStatusPolicy::Deny)
        .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
        .build();
    verify(
        leaf_der,
        &[],
        &[issuer_der.to_vec()],
        at_unix,
        None,
        Some(revocation),
    )
}

/// The largest CRL accepted, in bytes: an ESHS's CRL of a million entries is about 40 MB.
pub const MAX_CRL_LEN: usize = 64 << 20;

fn verify(
    leaf_der: &[u8],
    intermediates_der: &[Vec<u8>],
    anchors_der: &[Vec<u8>],
    at_unix: i64,
    eku: Option<&str>,
    revocation: Option<webpki::RevocationOptions<'_>>,
) -> Result<(), PkixError> {
    check_len("leaf certificate", leaf_der, MAX_CERTIFICATE_LEN)?;
    for der in intermediates_der {
        check_len("intermediate certificate", der, MAX_CERTIFICATE_LEN)?;
    }
    for der in anchors_der {
        check_len("trust anchor certificate", der, MAX_CERTIFICATE_LEN)?;
    }
    let at = u64::try_from(at_unix)
        .map_err(|_| PkixError::invalid("validation time", "must not be before 1970"))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at));
    let usage = RequiredIfPresent::new(eku)?;

    let leaf = CertificateDer::from(leaf_der);
    let leaf = EndEntityCert::try_from(&leaf).map_err(|e| PkixError::Malformed {
        field: "leaf certificate",
        detail: e.to_string(),
    })?;
    let anchor_ders: Vec<CertificateDer<'_>> = anchors_der
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let anchors = anchor_ders
        .iter()
        .enumerate()
        .map(|(i, der)| {
            webpki::anchor_from_trusted_cert(der).map_err(|e| PkixError::Malformed {
                field: "trust anchor certificate",
                detail: format!("anchor {i}: {e}"),
            })
        })
        .collect::<Result<Vec<TrustAnchor<'_>>, _>>()?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates_der
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();

    // Rejecting a path whose anchor certificate is outside its validity makes webpki try
    // the next candidate (e.g. a renewed root with the same name and key).
    let anchor_in_validity =
        |path: &webpki::VerifiedPath<'_>| anchor_validity(path.anchor(), anchors_der, at_unix);
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        time,
        usage,
        revocation,
        Some(&anchor_in_validity),
    )
    .map(|_| ())
    .map_err(|e| map_error(e, eku))
}

/// `Ok` when some anchor certificate with this anchor's subject and key is valid at `at`.
fn anchor_validity(
    anchor: &TrustAnchor<'_>,
    anchors_der: &[Vec<u8>],
    at: i64,
) -> Result<(), webpki::Error> {
    let mut nearest_expiry = None;
    for der in anchors_der {
        let Ok(cert) = crate::cert::parse("trust anchor certificate", der) else {
            continue;
        };
        let tbs = &cert.tbs_certificate;
        // webpki's anchor holds the subject and SPKI *contents* (without the outer tag).
        let same_subject = contents_of(&tbs.subject).as_deref() == Some(anchor.subject.as_ref());
        let same_key = contents_of(&tbs.subject_public_key_info).as_deref()
            == Some(anchor.subject_public_key_info.as_ref());
        if !(same_subject && same_key) {
            continue;
        }
        let (Ok(not_before), Ok(not_after)) = (
            crate::subject::unix("validity.notBefore", tbs.validity.not_before),
            crate::subject::unix("validity.notAfter", tbs.validity.not_after),
        ) else {
            continue;
        };
        if not_before <= at && at <= not_after {
            return Ok(());
        }
        nearest_expiry = Some((not_before, not_after));
    }
    let secs = |s: i64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s.max(0) as u64));
    match nearest_expiry {
        Some((not_before, _)) if at < not_before => Err(webpki::Error::CertNotValidYet {
            time: secs(at),
            not_before: secs(not_before),
        }),
        Some((_, not_after)) => Err(webpki::Error::CertExpired {
            time: secs(at),
            not_after: secs(not_after),
        }),
        None => Err(webpki::Error::UnknownIssuer),
    }
}

/// The content octets of `value`'s DER encoding (what follows its tag and length).
fn contents_of(value: &impl Encode) -> Option<Vec<u8>> {
    let der = value.to_der().ok()?;
    der::asn1::AnyRef::try_from(der.as_slice())
        .ok()
        .map(|any| any.value().to_vec())
}

/// webpki `KeyUsage::required_if_present` for an OID known only at run time (webpki's own
/// constructor wants a `&'static` encoding).
struct RequiredIfPresent {
    /// The OID's content octets; None accepts any extendedKeyUsage.
    oid: Option<Vec<u8>>,
}

impl RequiredIfPresent {
    fn new(eku: Option<&str>) -> Result<Self, PkixError> {
        let oid = eku
            .map(|dotted| {
                ObjectIdentifier::new(dotted)
                    .map(|o| o.as_bytes().to_vec())
                    .map_err(|_| {
                        PkixError::invalid("eku", format!("{dotted:?} is not a dotted OID"))
                    })
            })
            .transpose()?;
        Ok(RequiredIfPresent { oid })
    }
}

impl ExtendedKeyUsageValidator for RequiredIfPresent {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let Some(required) = &self.oid else {
            return Ok(());
        };
        let required = KeyPurposeId::new(required);
        let mut present = false;
        for id in iter {
            present = true;
            if id? == required {
                return Ok(());
            }
        }
        if present {
            #[allow(deprecated)] // the context variant needs webpki-internal constructors
            return Err(webpki::Error::RequiredEkuNotFound);
        }
        Ok(())
    }
}

fn unix_secs(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// webpki's verdict in nesca's words.
fn map_error(e: webpki::Error, eku: Option<&str>) -> PkixError {
    use webpki::Error as W;
    let path = |reason: &str| PkixError::Path {
        reason: reason.to_string(),
    };
    #[allow(deprecated)]
    match e {
        W::CertExpired { time, not_after } => PkixError::Expired {
            not_after: unix_secs(not_after),
            at: unix_secs(time),
        },
        W::CertNotValidYet { time, not_before } => PkixError::NotYetValid {
            not_before: unix_secs(not_before),
            at: unix_secs(time),
        },
        W::UnknownIssuer => PkixError::UnknownIssuer,
        W::CertRevoked => PkixError::Revoked,
        W::CrlExpired { time, next_update } => PkixError::CrlOutOfDate {
            next_update: unix_secs(next_update),
            at: unix_secs(time),
        },
        W::InvalidCrlSignatureForPublicKey => {
            path("the CRL's signature does not verify with the issuer's public key")
        }
        W::IssuerNotCrlSigner => path("the issuer's keyUsage does not allow cRLSign"),
        W::UnknownRevocationStatus => {
            path("the CRL is not the issuer's: it says nothing about this certificate")
        }
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => PkixError::EkuMissing {
            required: eku.unwrap_or_default().to_string(),
        },
        W::InvalidSignatureForPublicKey => {
            path("a certificate's signature does not verify with its issuer's public key")
        }
        W::CaUsedAsEndEntity => path("the leaf is a CA certificate (basicConstraints cA is TRUE)"),
        W::EndEntityUsedAsCa => {
            path("an issuer in the path is not a CA certificate (basicConstraints cA is not TRUE)")
        }
        W::PathLenConstraintViolated => path("basicConstraints pathLenConstraint is exceeded"),
        W::NameConstraintViolation => {
            path("a name in the path violates an issuer's nameConstraints")
        }
        W::UnsupportedCriticalExtension => {
            path("a certificate in the path has a critical extension that is not supported")
        }
        W::UnsupportedCertVersion => path("a certificate in the path is not X.509 v3"),
        W::InvalidCertValidity => path("a certificate's notBefore is after its notAfter"),
        W::SignatureAlgorithmMismatch => path(
            "a certificate's signatureAlgorithm differs from its TBSCertificate signature field",
        ),
        W::UnsupportedSignatureAlgorithm
        | W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKey
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => path(
            "a certificate in the path is signed with an algorithm that is not accepted \
             (ECDSA P-256/P-384, RSA PKCS#1 v1.5 or PSS 2048-8192 bits, Ed25519)",
        ),
        W::BadDer | W::BadDerTime | W::TrailingData(_) => PkixError::Malformed {
            field: "certification path",
            detail: format!("a certificate is not valid DER ({e})"),
        },
        other => PkixError::Path {
            reason: format!("{other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use x509_cert::builder::Profile;

    const EMAIL_PROTECTION: &str = "1.3.6.1.5.5.7.3.4";

    fn verify(
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        anchors: &[Vec<u8>],
        at: i64,
    ) -> Result<(), PkixError> {
        verify_path(leaf, intermediates, anchors, at, Some(ID_KP_CLIENT_AUTH))
    }

    #[test]
    fn good_leaf_chains_to_its_root() {
        let pki = Pki::new();
        let anchors = [der_of(&pki.root)];
        assert_eq!(verify(&der_of(&pki.leaf), &[], &anchors, NOW), Ok(()));
        assert_eq!(verify(&der_of(&pki.rsa_leaf), &[], &anchors, NOW), Ok(()));
        assert_eq!(
            verify_path(&der_of(&pki.leaf), &[], &anchors, NOW, None),
            Ok(())
        );
    }

    #[test]
    fn the_right_anchor_is_found_among_several() {
        let pki = Pki::new();
        let other_root = root("Another Root", &p256_key(3));
        let anchors = [der_of(&other_root), der_of(&pki.root)];
        assert_eq!(verify(&der_of(&pki.leaf), &[], &anchors, NOW), Ok(()));
    }

    #[test]
    fn leaf_of_another_ca_is_an_unknown_issuer() {
        let pki = Pki::new();
        let e = verify(&der_of(&pki.other_leaf), &[], &[der_of(&pki.root)], NOW).unwrap_err();
        assert_eq!(e, PkixError::UnknownIssuer);
        assert_eq!(
            e.to_string(),
            "certification path: unknown issuer: does not chain to a configured trust anchor"
        );
    }

    #[test]
    fn expired_leaf_is_refused() {
        let pki = Pki::new();
        let mut spec = leaf_spec(&pki.root, spki_of(pki.leaf_key.verifying_key()));
        spec.validity = validity(Y2020, Y2021);
        let expired = issue(spec, &pki.root_key);
        let e = verify(&der_of(&expired), &[], &[der_of(&pki.root)], NOW).unwrap_err();
        assert_eq!(
            e,
            PkixError::Expired {
                not_after: Y2021,
                at: NOW
            }
        );
        assert!(e
            .to_string()
            .starts_with("certification path: certificate expired"));
    }

    #[test]
    fn leaf_before_its_validity_is_refused() {
        let pki = Pki::new();
        let e = verify(&der_of(&pki.leaf), &[], &[der_of(&pki.root)], Y2021).unwrap_err();
        assert_eq!(
            e,
            PkixError::NotYetValid {
                not_before: Y2024,
                at: Y2021
            }
        );
    }

    #[test]
    fn expired_anchor_certificate_is_refused() {
        // webpki treats an anchor as a name and a key; the anchor's own validity is checked here.
        let key = p256_key(9);
        let mut spec = leaf_spec(&root("Short Root", &key), spki_of(key.verifying_key()));
        spec.profile = Profile::Root;
        spec.subject = ca_name("Short Root");
        spec.validity = validity(Y2020, Y2024);
        spec.eku = None;
        let short_root = issue(spec, &key);
        let leaf_key = p256_key(10);
        let leaf = issue(
            leaf_spec(&short_root, spki_of(leaf_key.verifying_key())),
            &key,
        );
        let e = verify(&der_of(&leaf), &[], &[der_of(&short_root)], NOW).unwrap_err();
        assert_eq!(
            e,
            PkixError::Expired {
                not_after: Y2024,
                at: NOW
            }
        );
    }

    #[test]
    fn intermediates_are_used_to_build_the_path() {
        let pki = Pki::new();
        let sub_key = p256_key(11);
        let sub = issue(
            CertSpec {
                profile: Profile::SubCA {
                    issuer: pki.root.tbs_certificate.subject.clone(),
                    path_len_constraint: Some(0),
                },
                serial: vec![2],
                validity: validity(Y2020, Y2040),
                subject: ca_name("nesca Test Sub CA"),
                spki: spki_of(sub_key.verifying_key()),
                eku: None,
            },
            &pki.root_key,
        );
        let leaf = issue(
            leaf_spec(&sub, spki_of(pki.leaf_key.verifying_key())),
            &sub_key,
        );
        let anchors = [der_of(&pki.root)];
        assert_eq!(
            verify(&der_of(&leaf), &[der_of(&sub)], &anchors, NOW),
            Ok(())
        );
        assert_eq!(
            verify(&der_of(&leaf), &[], &anchors, NOW),
            Err(PkixError::UnknownIssuer)
        );
    }

    #[test]
    fn eku_is_required_only_when_the_extension_is_present() {
        let pki = Pki::new();
        let anchors = [der_of(&pki.root)];
        let with_eku = |eku: Option<Vec<&'static str>>| {
            let mut spec = leaf_spec(&pki.root, spki_of(pki.leaf_key.verifying_key()));
            spec.eku = eku;
            der_of(&issue(spec, &pki.root_key))
        };
        // No extendedKeyUsage at all: any purpose.
        assert_eq!(verify(&with_eku(None), &[], &anchors, NOW), Ok(()));
        // Present without clientAuth: refused when clientAuth is asked for, fine otherwise.
        let email = with_eku(Some(vec![EMAIL_PROTECTION]));
        let e = verify(&email, &[], &anchors, NOW).unwrap_err();
        assert_eq!(
            e.to_string(),
            "certification path: extendedKeyUsage lacks 1.3.6.1.5.5.7.3.2"
        );
        assert_eq!(verify_path(&email, &[], &anchors, NOW, None), Ok(()));
        assert_eq!(
            verify_path(&email, &[], &anchors, NOW, Some(EMAIL_PROTECTION)),
            Ok(())
        );
        // Present with it among others.
        let both = with_eku(Some(vec![EMAIL_PROTECTION, ID_KP_CLIENT_AUTH]));
        assert_eq!(verify(&both, &[], &anchors, NOW), Ok(()));
    }

    #[test]
    fn ca_certificate_as_leaf_is_refused() {
        let pki = Pki::new();
        let e = verify(&der_of(&pki.root), &[], &[der_of(&pki.root)], NOW).unwrap_err();
        assert_eq!(
            e.to_string(),
            "certification path: the leaf is a CA certificate (basicConstraints cA is TRUE)"
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let pki = Pki::new();
        let anchors = [der_of(&pki.root)];
        let e = verify(b"garbage", &[], &anchors, NOW).unwrap_err();
        assert!(
            matches!(
                e,
                PkixError::Malformed {
                    field: "leaf certificate",
                    ..
                }
            ),
            "{e}"
        );
        let e = verify(&der_of(&pki.leaf), &[], &[b"garbage".to_vec()], NOW).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("trust anchor certificate: malformed DER: anchor 0"),
            "{e}"
        );
        let big = vec![0x30; crate::MAX_CERTIFICATE_LEN + 1];
        assert!(matches!(
            verify(&big, &[], &anchors, NOW),
            Err(PkixError::TooLarge {
                what: "leaf certificate",
                ..
            })
        ));
        assert_eq!(
            verify(&der_of(&pki.leaf), &[], &anchors, -1)
                .unwrap_err()
                .to_string(),
            "validation time: must not be before 1970"
        );
        assert_eq!(
            verify_path(&der_of(&pki.leaf), &[], &anchors, NOW, Some("client auth"))
                .unwrap_err()
                .to_string(),
            "eku: \"client auth\" is not a dotted OID"
        );
    }

    #[test]
    fn tampered_leaf_signature_is_refused() {
        let pki = Pki::new();
        let mut leaf = der_of(&pki.leaf);
        let last = leaf.len() - 1;
        leaf[last] ^= 0x01;
        let e = verify(&leaf, &[], &[der_of(&pki.root)], NOW).unwrap_err();
        assert_eq!(
            e.to_string(),
            "certification path: a certificate's signature does not verify with its issuer's public key"
        );
    }
}
