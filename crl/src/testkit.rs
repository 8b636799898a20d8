//! Test helpers: a software P-256 key standing in for the HSM, a self-signed issuer
//! certificate, and runners for openssl and pkilint.

use std::path::{Path, PathBuf};
use std::process::Command;

use const_oid::db::rfc4519::{COMMON_NAME, COUNTRY_NAME, ORGANIZATION_NAME};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Any, BitString, OctetString, SetOfVec};
use der::{Encode, Tag};
use nesca_ca_types::TbsSigner;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::Certificate;

/// 2026-11-22T00:00:00Z.
pub(crate) const NOW: UnixTime = UnixTime::from_secs(1_795_305_600);

pub(crate) use nesca_ca_types::testkit::SoftSigner;
use nesca_ca_types::UnixTime;

/// A CA: key and self-signed certificate.
pub(crate) struct Issuer {
    pub signer: SoftSigner,
    pub cert: Certificate,
}

/// How the issuer certificate identifies its key.
pub(crate) enum Ski {
    /// No subjectKeyIdentifier extension.
    Absent,
    /// This value, to see that the CRL copies it rather than recomputes it.
    Value(Vec<u8>),
}

impl Issuer {
    pub(crate) fn new() -> Issuer {
        Issuer::with(Ski::Value(vec![0x5a; 20]), true)
    }

    /// `crl_sign`: whether keyUsage asserts cRLSign.
    pub(crate) fn with(ski: Ski, crl_sign: bool) -> Issuer {
        let signer = SoftSigner::random();
        let name = name(&[
            (COUNTRY_NAME, Tag::PrintableString, "TR"),
            (ORGANIZATION_NAME, Tag::Utf8String, "Test ESHS"),
            (COMMON_NAME, Tag::Utf8String, "Test NES CA"),
        ]);
        let usage = if crl_sign {
            KeyUsages::KeyCertSign | KeyUsages::CRLSign
        } else {
            KeyUsages::KeyCertSign.into()
        };
        let mut extensions = vec![
            extension(
                true,
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                },
            ),
            extension(true, &KeyUsage(usage)),
        ];
        if let Ski::Value(v) = &ski {
            extensions.push(extension(
                false,
                &SubjectKeyIdentifier(OctetString::new(v.as_slice()).unwrap()),
            ));
        }
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&[1]).unwrap(),
            signature: signer.signature_algorithm(),
            issuer: name.clone(),
            validity: Validity {
                not_before: crate::tlv::time("notBefore", NOW.plus_secs(-86_400)).unwrap(),
                not_after: crate::tlv::time("notAfter", NOW.plus_secs(10 * 365 * 86_400)).unwrap(),
            },
            subject: name,
            subject_public_key_info: signer.public_key(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        let sig = signer.sign(&tbs.to_der().unwrap()).unwrap();
        let cert = Certificate {
            tbs_certificate: tbs,
            signature_algorithm: signer.signature_algorithm(),
            signature: BitString::from_bytes(&sig).unwrap(),
        };
        Issuer { signer, cert }
    }

    pub(crate) fn pem(&self) -> String {
        use der::EncodePem;
        self.cert.to_pem(der::pem::LineEnding::LF).unwrap()
    }
}

/// A Name of one attribute per RDN, in the order given (DER order), with the string type
/// given: countryName is a PrintableString (RFC 5280 Appendix A).
fn name(attrs: &[(ObjectIdentifier, Tag, &str)]) -> Name {
    let rdns = attrs
        .iter()
        .map(|(oid, tag, value)| {
            let value = Any::new(*tag, value.as_bytes()).unwrap();
            RelativeDistinguishedName(
                SetOfVec::try_from(vec![AttributeTypeAndValue { oid: *oid, value }]).unwrap(),
            )
        })
        .collect();
    RdnSequence(rdns)
}

/// A certificate extension of a known type.
fn extension<T: Encode + AssociatedOid>(critical: bool, value: &T) -> Extension {
    Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
    }
}

/// Output of a command.
pub(crate) struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub(crate) fn run(program: &Path, args: &[&str]) -> Run {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) const OPENSSL: &str = "/usr/bin/openssl";
pub(crate) const LINT_CRL: &str = "/root/.cache/nesca-tools/pkilint-venv/bin/lint_crl";

/// pkilint's CRL linter if installed.
pub(crate) fn lint_crl() -> Option<PathBuf> {
    let p = PathBuf::from(LINT_CRL);
    p.exists().then_some(p)
}
