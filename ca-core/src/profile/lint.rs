//! Pre-issuance lint: the RFC 5280 checks every profile shares, and helpers the profiles use
//! to read a TBSCertificate's extensions back.

use const_oid::ObjectIdentifier;
use der::Decode;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CrlDistributionPoints, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::time::Time;

use super::IssuerContext;
use crate::error::{CaError, Result};
use crate::oids;
use crate::verify::{key_identifier, KeyKind};

/// What the lint found wrong; empty means the TBS may be signed.
#[derive(Debug, Default)]
pub struct Findings(Vec<String>);

impl Findings {
    pub fn push(&mut self, finding: impl Into<String>) {
        self.0.push(finding.into());
    }

    pub fn check(&mut self, ok: bool, finding: impl FnOnce() -> String) {
        if !ok {
            self.0.push(finding());
        }
    }

    pub(crate) fn into_result(self, profile: &'static str) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CaError::Lint {
                profile,
                findings: self.0.join("; "),
            })
        }
    }
}

/// The extensions with this OID.
pub(crate) fn extensions_with(tbs: &TbsCertificate, oid: ObjectIdentifier) -> Vec<&Extension> {
    tbs.extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oid)
        .collect()
}

/// Decodes the one extension with `T::OID`-like `oid`, reporting absence, criticality and
/// decoding problems as findings.
pub(crate) fn decode_one<'a, T: Decode<'a>>(
    tbs: &'a TbsCertificate,
    oid: ObjectIdentifier,
    name: &str,
    critical: bool,
    findings: &mut Findings,
) -> Option<T> {
    let found = extensions_with(tbs, oid);
    let ext = match found.as_slice() {
        [] => {
            findings.push(format!("{name} is missing"));
            return None;
        }
        [one] => *one,
        _ => return None, // duplicates are reported once by the shared checks
    };
    findings.check(ext.critical == critical, || {
        format!(
            "{name} must be {}",
            if critical { "critical" } else { "non-critical" }
        )
    });
    match T::from_der(ext.extn_value.as_bytes()) {
        Ok(v) => Some(v),
        Err(e) => {
            findings.push(format!("{name} does not decode: {e}"));
            None
        }
    }
}

/// Reports every extension outside `allowed`.
pub(crate) fn only_extensions(
    tbs: &TbsCertificate,
    allowed: &[ObjectIdentifier],
    findings: &mut Findings,
) {
    for ext in tbs.extensions.iter().flatten() {
        findings.check(allowed.contains(&ext.extn_id), || {
            format!("extension {} is not allowed in this profile", ext.extn_id)
        });
    }
}

/// RFC 5280 §4.1 checks shared by every profile.
pub(super) fn rfc5280(
    tbs: &TbsCertificate,
    issuer: &IssuerContext,
    max_days: u32,
    f: &mut Findings,
) {
    f.check(tbs.version == Version::V3, || "version must be v3".into());

    // §4.1.2.2: positive, at most 20 octets, non-zero.
    let serial = tbs.serial_number.as_bytes();
    let positive = serial.first().is_some_and(|b| b & 0x80 == 0) || serial.first() == Some(&0);
    let magnitude = serial.iter().skip_while(|b| **b == 0).count();
    f.check(positive && magnitude > 0 && magnitude <= 20, || {
        "serialNumber must be a positive integer of at most 20 octets".into()
    });
    f.check(magnitude >= 9, || {
        "serialNumber must carry at least 64 bits of entropy".into()
    });

    f.check(tbs.signature == issuer.signature_algorithm, || {
        "signature algorithm differs from the issuer key's".into()
    });
    f.check(tbs.issuer == issuer.name, || {
        "issuer name differs from the issuing CA's subject".into()
    });

    // §4.1.2.5: order, length, and UTCTime through 2049.
    let nb = super::unix_time(&tbs.validity.not_before);
    let na = super::unix_time(&tbs.validity.not_after);
    f.check(na > nb, || "notAfter must be later than notBefore".into());
    let days = u64::try_from(na.secs_since(nb))
        .map(|s| s.div_ceil(86_400))
        .unwrap_or(0);
    f.check(days <= u64::from(max_days), || {
        format!("validity of {days} days exceeds the profile maximum of {max_days}")
    });
    for (which, t) in [
        ("notBefore", &tbs.validity.not_before),
        ("notAfter", &tbs.validity.not_after),
    ] {
        let year_2050 = crate::UnixTime::from_secs(2_524_608_000);
        let utc_expected = super::unix_time(t) < year_2050;
        let is_utc = matches!(t, Time::UtcTime(_));
        f.check(is_utc == utc_expected, || {
            format!("{which} must be UTCTime before 2050 and GeneralizedTime from 2050")
        });
    }
    if let Some(ca_end) = issuer.not_after {
        f.check(na <= ca_end, || {
            "notAfter is later than the issuer's notAfter".into()
        });
    }

    f.check(
        tbs.issuer_unique_id.is_none() && tbs.subject_unique_id.is_none(),
        || "unique identifiers must be absent".into(),
    );
    f.check(!tbs.subject.0.is_empty(), || {
        "subject must not be empty".into()
    });
    if let Err(rule) = KeyKind::of(&tbs.subject_public_key_info) {
        f.push(format!("subjectPublicKeyInfo: {rule}"));
    }

    // §4.2: each extension at most once.
    let exts: Vec<&Extension> = tbs.extensions.iter().flatten().collect();
    for (i, e) in exts.iter().enumerate() {
        f.check(!exts[..i].iter().any(|p| p.extn_id == e.extn_id), || {
            format!("extension {} appears more than once", e.extn_id)
        });
    }

    // §4.2.1.2 / §4.2.1.1: key identifiers.
    if let Some(ski) = decode_one::<SubjectKeyIdentifier>(
        tbs,
        oids::CE_SUBJECT_KEY_IDENTIFIER,
        "subjectKeyIdentifier",
        false,
        f,
    ) {
        f.check(
            ski.0.as_bytes() == key_identifier(&tbs.subject_public_key_info).as_slice(),
            || "subjectKeyIdentifier does not match the subject public key".into(),
        );
    }
    if let Some(aki) = decode_one::<AuthorityKeyIdentifier>(
        tbs,
        oids::CE_AUTHORITY_KEY_IDENTIFIER,
        "authorityKeyIdentifier",
        false,
        f,
    ) {
        f.check(
            aki.key_identifier.as_ref().map(|k| k.as_bytes()) == Some(issuer.key_id.as_slice()),
            || "authorityKeyIdentifier does not match the issuer's key identifier".into(),
        );
        f.check(
            aki.authority_cert_issuer.is_none() && aki.authority_cert_serial_number.is_none(),
            || "authorityKeyIdentifier must hold the key identifier only".into(),
        );
    }
}

fn http_uri(name: &GeneralName) -> Option<&str> {
    match name {
        GeneralName::UniformResourceIdentifier(u) if u.as_str().starts_with("http://") => {
            Some(u.as_str())
        }
        _ => None,
    }
}

/// cRLDistributionPoints and authorityInfoAccess (OCSP and caIssuers) point at this CA
/// (every end-entity profile that relying parties check revocation for).
pub(crate) fn lint_status_urls(tbs: &TbsCertificate, issuer: &IssuerContext, f: &mut Findings) {
    let urls = issuer.urls.as_ref();
    if let Some(cdp) = decode_one::<CrlDistributionPoints>(
        tbs,
        oids::CE_CRL_DISTRIBUTION_POINTS,
        "cRLDistributionPoints",
        false,
        f,
    ) {
        let has_crl = cdp
            .0
            .iter()
            .filter_map(|dp| match &dp.distribution_point {
                Some(DistributionPointName::FullName(names)) => Some(names),
                _ => None,
            })
            .flatten()
            .filter_map(http_uri)
            .any(|u| urls.is_some_and(|want| want.crl == u));
        f.check(has_crl, || {
            "cRLDistributionPoints must hold the CA's http CRL URL".into()
        });
    }
    if let Some(aia) = decode_one::<AuthorityInfoAccessSyntax>(
        tbs,
        oids::PE_AUTHORITY_INFO_ACCESS,
        "authorityInfoAccess",
        false,
        f,
    ) {
        let has = |method: ObjectIdentifier, want: Option<&str>| {
            aia.0.iter().any(|a| {
                a.access_method == method && want.is_some() && http_uri(&a.access_location) == want
            })
        };
        f.check(has(oids::AD_OCSP, urls.map(|u| u.ocsp.as_str())), || {
            "authorityInfoAccess must hold the http OCSP URL".into()
        });
        f.check(
            has(oids::AD_CA_ISSUERS, urls.map(|u| u.ca_issuers.as_str())),
            || "authorityInfoAccess must hold the http caIssuers URL".into(),
        );
    }
}

/// The extensions of a TLS end-entity certificate (a partner's, an operator's, a listener's):
/// only the usual ones and `extra`, CA:FALSE (critical), digitalSignature only (critical),
/// exactly `purposes` as extKeyUsage, and the issuer's status URLs. Anything else —
/// qcStatements and certificatePolicies in particular — is refused.
pub(super) fn lint_tls_leaf(
    tbs: &TbsCertificate,
    issuer: &IssuerContext,
    purposes: &[ObjectIdentifier],
    extra: &[ObjectIdentifier],
    f: &mut Findings,
) {
    use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
    let mut allowed = vec![
        oids::CE_BASIC_CONSTRAINTS,
        oids::CE_AUTHORITY_KEY_IDENTIFIER,
        oids::CE_SUBJECT_KEY_IDENTIFIER,
        oids::CE_KEY_USAGE,
        oids::CE_EXT_KEY_USAGE,
        oids::CE_CRL_DISTRIBUTION_POINTS,
        oids::PE_AUTHORITY_INFO_ACCESS,
    ];
    allowed.extend_from_slice(extra);
    only_extensions(tbs, &allowed, f);
    if let Some(bc) =
        decode_one::<BasicConstraints>(tbs, oids::CE_BASIC_CONSTRAINTS, "basicConstraints", true, f)
    {
        f.check(!bc.ca && bc.path_len_constraint.is_none(), || {
            "basicConstraints must be CA:FALSE".into()
        });
    }
    if let Some(ku) = decode_one::<KeyUsage>(tbs, oids::CE_KEY_USAGE, "keyUsage", true, f) {
        f.check(
            ku.0 == flagset::FlagSet::from(KeyUsages::DigitalSignature),
            || "keyUsage must be digitalSignature only".into(),
        );
    }
    if let Some(eku) =
        decode_one::<ExtendedKeyUsage>(tbs, oids::CE_EXT_KEY_USAGE, "extKeyUsage", false, f)
    {
        f.check(eku.0 == purposes, || {
            let names: Vec<String> = purposes
                .iter()
                .map(|p| match *p {
                    super::KP_CLIENT_AUTH => "id-kp-clientAuth".to_owned(),
                    super::KP_SERVER_AUTH => "id-kp-serverAuth".to_owned(),
                    other => other.to_string(),
                })
                .collect();
            format!("extKeyUsage must be {} only", names.join(" and "))
        });
    }
    lint_status_urls(tbs, issuer, f);
}
