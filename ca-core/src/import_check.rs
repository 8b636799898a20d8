//! What an offline root's certificates and CRLs must be before nesca uses them: an issuing-CA
//! certificate before nesca puts it into service (`nesca ca import-cert`,
//! [`check_issuing_import`]), and the root's CRL before nesca publishes it (`nesca ca
//! import-crl`, [`check_root_crl`]: signed by the root, current, full). The certificate: the root self-signed and a CA; the issuing certificate
//! signed by that root, for the key nesca holds on its token, under the name nesca was
//! configured with, a CA that may sign certificates and CRLs (RFC 5280 §4.2.1.3, §4.2.1.9),
//! valid now and not beyond the root.

use der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::Certificate;

use crate::error::{CaError, Result};
use crate::UnixTime;

/// Both certificates, checked.
pub struct ImportedChain {
    pub root: Certificate,
    pub issuing: Certificate,
}

fn refuse(field: &'static str, rule: impl Into<String>) -> CaError {
    CaError::Invalid {
        field,
        rule: rule.into(),
    }
}

fn decode(field: &'static str, der: &[u8]) -> Result<Certificate> {
    Certificate::from_der(der).map_err(|e| refuse(field, format!("not an X.509 certificate: {e}")))
}

/// Whether `cert`'s signature verifies under `issuer`'s key.
fn signed_by(field: &'static str, cert: &Certificate, issuer: &Certificate) -> Result<()> {
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(CaError::der("TBSCertificate"))?;
    let signature = cert
        .signature
        .as_bytes()
        .ok_or_else(|| refuse(field, "the signature has unused bits"))?;
    crate::verify::verify(
        &issuer.tbs_certificate.subject_public_key_info,
        &cert.signature_algorithm,
        &tbs,
        signature,
    )
    .map_err(|e| {
        refuse(
            field,
            format!("the signature does not verify under the root's key: {e}"),
        )
    })
}

fn extension<T: for<'a> Decode<'a>>(
    cert: &Certificate,
    oid: der::asn1::ObjectIdentifier,
) -> Option<T> {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == oid)
        .and_then(|e| T::from_der(e.extn_value.as_bytes()).ok())
}

fn is_ca(cert: &Certificate) -> bool {
    extension::<BasicConstraints>(cert, const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .is_some_and(|b| b.ca)
}

/// A critical extension a validator of this chain must understand and nesca does not
/// expect in a CA certificate: validators refuse every certificate under it.
fn unknown_critical(cert: &Certificate) -> Option<String> {
    use const_oid::db::rfc5280 as ids;
    let known = [
        ids::ID_CE_BASIC_CONSTRAINTS,
        ids::ID_CE_KEY_USAGE,
        ids::ID_CE_CERTIFICATE_POLICIES,
        ids::ID_CE_NAME_CONSTRAINTS,
        ids::ID_CE_POLICY_CONSTRAINTS,
        ids::ID_CE_INHIBIT_ANY_POLICY,
    ];
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.critical && !known.contains(&e.extn_id))
        .map(|e| e.extn_id.to_string())
}

/// Checks `issuing_der` (signed by the offline root `root_der`) against what nesca holds: its
/// key `key` on the token and its configured `name`, at `now`. The refusal names the field
/// (`root`, `cert`) and the rule broken.
pub fn check_issuing_import(
    root_der: &[u8],
    issuing_der: &[u8],
    name: &Name,
    key: &spki::SubjectPublicKeyInfoOwned,
    now: UnixTime,
) -> Result<ImportedChain> {
    let root = decode("root", root_der)?;
    if root.tbs_certificate.issuer != root.tbs_certificate.subject {
        return Err(refuse(
            "root",
            "is not self-issued: give the root CA's own certificate",
        ));
    }
    signed_by("root", &root, &root)?;
    if !is_ca(&root) {
        return Err(refuse(
            "root",
            "is not a CA (basicConstraints cA is not true)",
        ));
    }
    // A root that allows no CA under it makes every certificate of the issuing CA invalid.
    let root_path_len =
        extension::<BasicConstraints>(&root, const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
            .and_then(|b| b.path_len_constraint);
    if root_path_len == Some(0) {
        return Err(refuse(
            "root",
            "has pathLenConstraint 0: it allows no CA under it",
        ));
    }
    if let Some(oid) = unknown_critical(&root) {
        return Err(refuse(
            "root",
            format!("has a critical extension {oid} validators must understand"),
        ));
    }
    let issuing = decode("cert", issuing_der)?;
    if issuing.tbs_certificate.issuer != root.tbs_certificate.subject {
        return Err(refuse(
            "cert",
            format!(
                "is issued by \"{}\", not by the root \"{}\"",
                issuing.tbs_certificate.issuer, root.tbs_certificate.subject
            ),
        ));
    }
    signed_by("cert", &issuing, &root)?;
    if &issuing.tbs_certificate.subject_public_key_info != key {
        return Err(refuse(
            "cert",
            "certifies another key than the issuing CA's key on this token (sign the CSR `init --external-root` wrote)",
        ));
    }
    if &issuing.tbs_certificate.subject != name {
        return Err(refuse(
            "cert",
            format!(
                "names \"{}\", but the configuration names the issuing CA \"{name}\"",
                issuing.tbs_certificate.subject
            ),
        ));
    }
    if !is_ca(&issuing) {
        return Err(refuse(
            "cert",
            "is not a CA certificate (basicConstraints cA is not true)",
        ));
    }
    if let Some(oid) = unknown_critical(&issuing) {
        return Err(refuse(
            "cert",
            format!("has a critical extension {oid} validators must understand"),
        ));
    }
    if issuing
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .any(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE)
    {
        return Err(refuse(
            "cert",
            "has an extendedKeyUsage: it would restrict every certificate under it",
        ));
    }
    let usage = extension::<KeyUsage>(&issuing, const_oid::db::rfc5280::ID_CE_KEY_USAGE)
        .ok_or_else(|| refuse("cert", "has no keyUsage"))?;
    if !(usage.0.contains(KeyUsages::KeyCertSign) && usage.0.contains(KeyUsages::CRLSign)) {
        return Err(refuse("cert", "keyUsage lacks keyCertSign or cRLSign"));
    }
    let validity = |c: &Certificate| {
        let v = &c.tbs_certificate.validity;
        (
            UnixTime::from_system(v.not_before.to_system_time()),
            UnixTime::from_system(v.not_after.to_system_time()),
        )
    };
    let (from, to) = validity(&issuing);
    if now < from || now > to {
        return Err(refuse("cert", "is not valid now"));
    }
    let (root_from, root_to) = validity(&root);
    if now < root_from || now > root_to {
        return Err(refuse("root", "is not valid now"));
    }
    if to > root_to {
        return Err(refuse("cert", "is valid beyond the root's notAfter"));
    }
    Ok(ImportedChain { root, issuing })
}

/// An offline root's CRL, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCrl {
    /// Its cRLNumber.
    pub number: u128,
    /// Whether it lists `issuing_serial`.
    pub lists_issuing: bool,
}

/// Checks `crl_der` is a current full CRL of `root_der` (issued under its name, signed with its
/// key, nextUpdate not passed at `now`, a cRLNumber) before nesca publishes it, and says
/// whether it lists the issuing CA's certificate (`issuing_serial`, its DER serial bytes).
pub fn check_root_crl(
    root_der: &[u8],
    crl_der: &[u8],
    issuing_serial: &[u8],
    now: UnixTime,
) -> Result<RootCrl> {
    use der::oid::AssociatedOid as _;
    let root = decode("root", root_der)?;
    let crl = x509_cert::crl::CertificateList::from_der(crl_der)
        .map_err(|e| refuse("crl", format!("not an X.509 CRL: {e}")))?;
    let tbs = &crl.tbs_cert_list;
    if tbs.issuer != root.tbs_certificate.subject {
        return Err(refuse(
            "crl",
            format!(
                "is issued by \"{}\", not by the root \"{}\"",
                tbs.issuer, root.tbs_certificate.subject
            ),
        ));
    }
    let tbs_der = tbs.to_der().map_err(CaError::der("TBSCertList"))?;
    let signature = crl
        .signature
        .as_bytes()
        .ok_or_else(|| refuse("crl", "the signature has unused bits"))?;
    crate::verify::verify(
        &root.tbs_certificate.subject_public_key_info,
        &crl.signature_algorithm,
        &tbs_der,
        signature,
    )
    .map_err(|e| {
        refuse(
            "crl",
            format!("the signature does not verify under the root's key: {e}"),
        )
    })?;
    let next_update = tbs
        .next_update
        .map(|t| UnixTime::from_system(t.to_system_time()))
        .ok_or_else(|| refuse("crl", "has no nextUpdate"))?;
    if next_update <= now {
        return Err(refuse("crl", "is out of date (its nextUpdate has passed)"));
    }
    let extensions = tbs.crl_extensions.iter().flatten();
    let mut number = None;
    for e in extensions {
        if e.extn_id == x509_cert::ext::pkix::crl::BaseCrlNumber::OID {
            return Err(refuse(
                "crl",
                "is a delta CRL: the root publishes full CRLs",
            ));
        }
        // A partial (or indirect) CRL covers only some certificates: the root's must cover
        // every CA certificate it issued.
        if e.extn_id == const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT {
            return Err(refuse(
                "crl",
                "has an issuingDistributionPoint: a partial or indirect CRL, not the root's full CRL",
            ));
        }
        if e.critical && e.extn_id != x509_cert::ext::pkix::crl::CrlNumber::OID {
            return Err(refuse(
                "crl",
                format!("has a critical extension {} nesca does not know", e.extn_id),
            ));
        }
        if e.extn_id == x509_cert::ext::pkix::crl::CrlNumber::OID {
            let n = x509_cert::ext::pkix::crl::CrlNumber::from_der(e.extn_value.as_bytes())
                .map_err(|e| refuse("crl", format!("cRLNumber does not decode: {e}")))?;
            let bytes = n.0.as_bytes();
            if bytes.len() > 16 {
                return Err(refuse(
                    "crl",
                    "cRLNumber is longer than the 16 octets nesca reads",
                ));
            }
            number = Some(
                bytes
                    .iter()
                    .fold(0u128, |acc, b| (acc << 8) | u128::from(*b)),
            );
        }
    }
    let number = number.ok_or_else(|| refuse("crl", "has no cRLNumber"))?;
    let lists_issuing = tbs
        .revoked_certificates
        .iter()
        .flatten()
        .any(|r| r.serial_number.as_bytes() == issuing_serial);
    Ok(RootCrl {
        number,
        lists_issuing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::organization_name;
    use crate::store::RegistryStore as _;
    use crate::testkit::{fixture_with, SoftSigner};
    use crate::Clock as _;
    use std::sync::Arc;

    /// A fixture hierarchy: the root's and the issuing CA's certificates, the issuing key's
    /// SPKI, the issuing name and now.
    fn chain() -> (
        Vec<u8>,
        Vec<u8>,
        spki::SubjectPublicKeyInfoOwned,
        Name,
        UnixTime,
    ) {
        let signer = Arc::new(SoftSigner::random());
        let f = fixture_with(signer.clone());
        let ca = |id: &str| {
            f.store
                .ca(&crate::IssuerId::parse(id).unwrap())
                .unwrap()
                .unwrap()
                .cert_der
        };
        let key = crate::engine::TbsSigner::public_key(signer.as_ref());
        let name = organization_name("TR", "Test ESHS", "Test NES CA").unwrap();
        (ca("root-ca"), ca("nes-ca"), key, name, f.clock.now_unix())
    }

    fn field_of(r: Result<ImportedChain>) -> (&'static str, String) {
        match r {
            Err(CaError::Invalid { field, rule }) => (field, rule),
            Err(other) => panic!("expected a refusal, got {other}"),
            Ok(_) => panic!("expected a refusal, got an accepted chain"),
        }
    }

    #[test]
    fn a_matching_issuing_certificate_is_accepted_and_anything_else_refused() {
        let (root, issuing, key, name, now) = chain();
        assert!(check_issuing_import(&root, &issuing, &name, &key, now).is_ok());
        // Another key than the token's.
        let other = crate::engine::TbsSigner::public_key(&SoftSigner::random());
        let (field, rule) = field_of(check_issuing_import(&root, &issuing, &name, &other, now));
        assert_eq!(field, "cert");
        assert!(rule.contains("another key"), "{rule}");
        // Another name than the configuration's.
        let wrong = organization_name("TR", "Test ESHS", "Someone Else").unwrap();
        let (field, rule) = field_of(check_issuing_import(&root, &issuing, &wrong, &key, now));
        assert_eq!(field, "cert");
        assert!(rule.contains("the configuration names"), "{rule}");
        // The issuing certificate given as the root: not self-issued.
        let (field, _) = field_of(check_issuing_import(&issuing, &issuing, &name, &key, now));
        assert_eq!(field, "root");
        // Another root: the signature does not verify under it.
        let (other_root, ..) = chain();
        let (field, rule) = field_of(check_issuing_import(
            &other_root,
            &issuing,
            &name,
            &key,
            now,
        ));
        assert_eq!(field, "cert");
        assert!(
            rule.contains("signature") || rule.contains("issued by"),
            "{rule}"
        );
        // The root given as the issuing certificate.
        let (field, _) = field_of(check_issuing_import(&root, &root, &name, &key, now));
        assert_eq!(field, "cert");
        // Garbage.
        let (field, _) = field_of(check_issuing_import(b"nope", &issuing, &name, &key, now));
        assert_eq!(field, "root");
        // Not valid then.
        let later = now.plus_secs(20 * 366 * 86_400);
        let (field, rule) = field_of(check_issuing_import(&root, &issuing, &name, &key, later));
        assert_eq!((field, rule.as_str()), ("cert", "is not valid now"));
    }
}

#[cfg(test)]
mod crl_tests {
    use super::*;
    use crate::store::RegistryStore as _;
    use crate::testkit::{fixture_with, SoftSigner};
    use crate::Clock as _;
    use std::sync::Arc;

    /// A CRL signed by `root_key` under `root_der`'s name (number 7, no entries; a delta of 6
    /// with `delta`), built with x509-cert directly (the `crl` crate is not a dependency).
    fn root_and_crl(
        root_key: &SoftSigner,
        root_der: &[u8],
        (this_update, next_update): (std::time::SystemTime, std::time::SystemTime),
        delta: bool,
    ) -> Vec<u8> {
        use der::asn1::{OctetString, UtcTime};
        use x509_cert::crl::{CertificateList, TbsCertList};
        use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber};
        use x509_cert::ext::Extension;
        use x509_cert::time::Time;
        let root = Certificate::from_der(root_der).unwrap();
        let t = |s| Time::UtcTime(UtcTime::from_system_time(s).unwrap());
        let ext = |oid, v: Vec<u8>| Extension {
            extn_id: oid,
            critical: false,
            extn_value: OctetString::new(v).unwrap(),
        };
        use der::oid::AssociatedOid as _;
        let mut exts = vec![ext(
            CrlNumber::OID,
            CrlNumber(der::asn1::Uint::new(&[7]).unwrap())
                .to_der()
                .unwrap(),
        )];
        if delta {
            exts.push(ext(
                BaseCrlNumber::OID,
                BaseCrlNumber(der::asn1::Uint::new(&[6]).unwrap())
                    .to_der()
                    .unwrap(),
            ));
        }
        let tbs = TbsCertList {
            version: x509_cert::Version::V2,
            signature: crate::engine::TbsSigner::signature_algorithm(root_key),
            issuer: root.tbs_certificate.subject.clone(),
            this_update: t(this_update),
            next_update: Some(t(next_update)),
            revoked_certificates: None,
            crl_extensions: Some(exts),
        };
        let sig = crate::engine::TbsSigner::sign(root_key, &tbs.to_der().unwrap()).unwrap();
        CertificateList {
            signature_algorithm: tbs.signature.clone(),
            tbs_cert_list: tbs,
            signature: der::asn1::BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn only_a_current_full_crl_signed_by_the_root_is_accepted() {
        // A root whose key the test holds: the fixture's root key is random and private, so
        // a root of the test's own is made self-signed through the fixture's engine instead.
        let root_key = Arc::new(SoftSigner::random());
        let f = fixture_with(Arc::new(SoftSigner::random()));
        let name = crate::name::organization_name("TR", "Test ESHS", "Own Root").unwrap();
        let own = crate::IssuerId::parse("own-root").unwrap();
        let root_der = crate::bootstrap::create_root(
            &f.engine,
            &own,
            &name,
            3650,
            "own-root".into(),
            root_key.clone(),
            &crate::Principal::HostOperator,
        )
        .unwrap();
        let now = f.clock.now_unix();
        let then = f.clock.now();
        let later = (then, then + std::time::Duration::from_secs(86_400));
        let good = root_and_crl(&root_key, &root_der, later, false);
        assert_eq!(
            check_root_crl(&root_der, &good, &[1], now).unwrap(),
            RootCrl {
                number: 7,
                lists_issuing: false
            }
        );
        let refused = |der: &[u8], root: &[u8]| match check_root_crl(root, der, &[1], now) {
            Err(CaError::Invalid { field, rule }) => format!("{field}: {rule}"),
            other => panic!("expected a refusal, got {other:?}"),
        };
        let delta = root_and_crl(&root_key, &root_der, later, true);
        assert!(refused(&delta, &root_der).contains("delta"));
        let past = (
            then - std::time::Duration::from_secs(120),
            then - std::time::Duration::from_secs(60),
        );
        let stale = root_and_crl(&root_key, &root_der, past, false);
        assert!(refused(&stale, &root_der).contains("out of date"));
        // Signed by another key under the same name.
        let forged = root_and_crl(&SoftSigner::random(), &root_der, later, false);
        assert!(refused(&forged, &root_der).contains("signature"));
        // Another root's certificate.
        let other_root = f
            .store
            .ca(&crate::IssuerId::parse("root-ca").unwrap())
            .unwrap()
            .unwrap()
            .cert_der;
        assert!(refused(&good, &other_root).contains("not by the root"));
        assert!(refused(b"garbage", &root_der).starts_with("crl: not an X.509 CRL"));
    }
}
