//! Role and secure-communication certificates for KEC devices and partner ESHS systems
//! (docs/STANDARDS.md "Other profiles"): issued only to registered licensed ESHS operators, for TLS
//! client (role) or client and server (secure communication) authentication.
//!
//! Relying parties — nesca's own mTLS listener among them — check revocation, so the
//! certificates carry cRLDistributionPoints and authorityInfoAccess as NES do. They are not
//! qualified certificates: no qcStatements, no certificatePolicies.

use const_oid::ObjectIdentifier;
use der::asn1::{Any, SetOfVec};
use der::Tag;
use serde::{Deserialize, Serialize};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RelativeDistinguishedName};

use super::{CertificateProfile, Findings, IssuerContext};
use crate::error::{CaError, Result};
use crate::name::{attribute_values, organization_name, MAX_NAME_CHARS};
use crate::oids;
use crate::partner::{
    is_printable_string_char, PartnerRecord, MAX_LICENSE_NO_CHARS, MAX_PARTNER_NAME_CHARS,
};

/// id-kp-serverAuth (RFC 5280 §4.2.1.12).
pub const KP_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
/// id-kp-clientAuth (RFC 5280 §4.2.1.12).
pub const KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");

/// No configuration can allow a partner certificate longer than this (the CA/Browser
/// Forum's historic ceiling for TLS certificates; these keys live in devices, not QSCDs).
pub const PARTNER_VALIDITY_CEILING_DAYS: u32 = 825;

fn default_validity_days() -> u32 {
    365
}
fn default_max_validity_days() -> u32 {
    PARTNER_VALIDITY_CEILING_DAYS
}

/// `[profile.partner]` in nesca.toml, as written; [`PartnerCertProfile::from_config`] checks it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PartnerProfileConfig {
    /// Validity when a request names none, in days.
    #[serde(default = "default_validity_days")]
    pub validity_days: u32,
    /// The longest validity a request may ask for, in days (at most 825).
    #[serde(default = "default_max_validity_days")]
    pub max_validity_days: u32,
}

impl Default for PartnerProfileConfig {
    fn default() -> Self {
        PartnerProfileConfig {
            validity_days: default_validity_days(),
            max_validity_days: default_max_validity_days(),
        }
    }
}

/// Which of the two partner certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerCertKind {
    /// Role certificate: authenticates the device or system as a TLS client and signs its
    /// KDBOs (id-kp-clientAuth).
    Role,
    /// Secure-communication certificate: both ends of the channel (id-kp-clientAuth and
    /// id-kp-serverAuth).
    SecureComm,
}

impl PartnerCertKind {
    /// The command-line spelling (`role`, `secure-comm`).
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerCertKind::Role => "role",
            PartnerCertKind::SecureComm => "secure-comm",
        }
    }

    /// Parses the command-line spelling.
    pub fn parse(s: &str) -> Result<PartnerCertKind> {
        match s {
            "role" => Ok(PartnerCertKind::Role),
            "secure-comm" => Ok(PartnerCertKind::SecureComm),
            other => Err(CaError::invalid(
                "kind",
                format!("\"{other}\" must be role or secure-comm"),
            )),
        }
    }

    /// The extKeyUsage purposes, exactly.
    pub fn key_purposes(self) -> Vec<ObjectIdentifier> {
        match self {
            PartnerCertKind::Role => vec![KP_CLIENT_AUTH],
            PartnerCertKind::SecureComm => vec![KP_CLIENT_AUTH, KP_SERVER_AUTH],
        }
    }
}

/// The checked profile of one kind of partner certificate.
#[derive(Debug, Clone)]
pub struct PartnerCertProfile {
    kind: PartnerCertKind,
    validity_days: u32,
    max_validity_days: u32,
}

fn config_err(field: &str, rule: impl Into<String>) -> CaError {
    CaError::Config {
        field: format!("profile.partner.{field}"),
        rule: rule.into(),
    }
}

impl PartnerCertProfile {
    /// Checks the configuration against the hard ceiling.
    pub fn from_config(kind: PartnerCertKind, c: &PartnerProfileConfig) -> Result<Self> {
        super::check_configured_validity(
            c.validity_days,
            c.max_validity_days,
            PARTNER_VALIDITY_CEILING_DAYS,
        )
        .map_err(|(field, rule)| config_err(field, rule))?;
        Ok(PartnerCertProfile {
            kind,
            validity_days: c.validity_days,
            max_validity_days: c.max_validity_days,
        })
    }

    pub fn kind(&self) -> PartnerCertKind {
        self.kind
    }

    /// The validity used when a request names none.
    pub fn default_validity_days(&self) -> u32 {
        self.validity_days
    }
}

/// Checks the common name given at issuance (a device or system name): trimmed, 1 to 64
/// characters (ub-common-name), no control characters.
pub fn parse_common_name(s: &str) -> Result<String> {
    let s = s.trim();
    let n = s.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(CaError::invalid(
            "common-name",
            format!("must be 1 to {MAX_NAME_CHARS} characters (got {n})"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(CaError::invalid(
            "common-name",
            "must not contain control characters",
        ));
    }
    Ok(s.to_string())
}

/// The subject of a partner certificate: `C=TR`, `O=` the partner's name, `serialNumber=` its
/// licence number (the holder's registered id), `CN=` the device or system name, in that DER
/// order.
pub fn partner_subject(partner: &PartnerRecord, common_name: &str) -> Result<Name> {
    let common_name = parse_common_name(common_name)?;
    let mut name = organization_name("TR", &partner.name, &common_name)?;
    let value = Any::new(Tag::PrintableString, partner.license_no.as_bytes())
        .map_err(CaError::der("AttributeValue"))?;
    let rdn = SetOfVec::try_from(vec![AttributeTypeAndValue {
        oid: oids::AT_SERIAL_NUMBER,
        value,
    }])
    .map_err(CaError::der("RelativeDistinguishedName"))?;
    // Before the CN, which conventionally comes last.
    name.0.insert(2, RelativeDistinguishedName(rdn));
    Ok(name)
}

impl CertificateProfile for PartnerCertProfile {
    fn name(&self) -> super::ProfileName {
        match self.kind {
            PartnerCertKind::Role => super::ProfileName::PartnerRole,
            PartnerCertKind::SecureComm => super::ProfileName::PartnerSecureComm,
        }
    }

    fn max_validity_days(&self) -> u32 {
        self.max_validity_days
    }

    fn extensions(
        &self,
        subject_key: &SubjectPublicKeyInfoOwned,
        issuer: &IssuerContext,
    ) -> Result<Vec<Extension>> {
        super::service::tls_leaf_extensions(subject_key, issuer, self.kind.key_purposes())
    }

    fn lint_profile(&self, tbs: &TbsCertificate, issuer: &IssuerContext, f: &mut Findings) {
        lint_subject(tbs, f);
        super::lint::lint_tls_leaf(tbs, issuer, &self.kind.key_purposes(), &[], f);
    }
}

/// Subject: exactly C=TR, O, serialNumber and CN, each once, with their string types.
fn lint_subject(tbs: &TbsCertificate, f: &mut Findings) {
    let subject = &tbs.subject;
    let one = |oid, name: &str, f: &mut Findings| -> Option<(Tag, String)> {
        let mut v = attribute_values(subject, oid);
        f.check(v.len() == 1, || {
            format!("subject must hold exactly one {name}")
        });
        v.pop()
    };
    if let Some((tag, c)) = one(oids::AT_COUNTRY_NAME, "countryName", f) {
        f.check(tag == Tag::PrintableString && c == "TR", || {
            "subject countryName must be PrintableString \"TR\"".into()
        });
    }
    for (oid, name, max) in [
        (
            oids::AT_ORGANIZATION_NAME,
            "organizationName",
            MAX_PARTNER_NAME_CHARS,
        ),
        (oids::AT_COMMON_NAME, "commonName", MAX_NAME_CHARS),
    ] {
        if let Some((tag, v)) = one(oid, name, f) {
            f.check(tag == Tag::Utf8String, || {
                format!("subject {name} must be UTF8String")
            });
            let n = v.chars().count();
            f.check((1..=max).contains(&n), || {
                format!("subject {name} must be 1 to {max} characters")
            });
        }
    }
    if let Some((tag, sn)) = one(oids::AT_SERIAL_NUMBER, "serialNumber", f) {
        let n = sn.chars().count();
        f.check(
            tag == Tag::PrintableString
                && (1..=MAX_LICENSE_NO_CHARS).contains(&n)
                && sn.chars().all(is_printable_string_char),
            || {
                format!("subject serialNumber must be the partner's licence number as a PrintableString of 1 to {MAX_LICENSE_NO_CHARS} characters")
            },
        );
    }
    let known = [
        oids::AT_COUNTRY_NAME,
        oids::AT_ORGANIZATION_NAME,
        oids::AT_SERIAL_NUMBER,
        oids::AT_COMMON_NAME,
    ];
    for atv in subject.0.iter().flat_map(|r| r.0.iter()) {
        f.check(known.contains(&atv.oid), || {
            format!(
                "subject attribute {} is not allowed in a partner certificate",
                atv.oid
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use der::{Decode, Encode};
    use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
    use x509_cert::TbsCertificate;

    use super::*;
    use crate::partner::PartnerId;
    use crate::profile::{build_tbs, lint, TbsInput};
    use crate::testkit::{fixture, p256_csr};
    use crate::{Serial, VerifiedCsr};

    fn partner() -> PartnerRecord {
        PartnerRecord {
            id: PartnerId::parse("eshs-a").unwrap(),
            name: "Örnek ESHS A.Ş.".into(),
            license_no: "BTK-2024-17".into(),
            created_at: crate::UnixTime::EPOCH,
            active: true,
        }
    }

    fn profile(kind: PartnerCertKind) -> PartnerCertProfile {
        PartnerCertProfile::from_config(kind, &PartnerProfileConfig::default()).unwrap()
    }

    fn tbs(p: &PartnerCertProfile, issuer: &IssuerContext) -> TbsCertificate {
        build_tbs(
            p,
            TbsInput {
                serial: Serial::random(),
                subject: partner_subject(&partner(), "KEC-0001").unwrap(),
                subject_key: VerifiedCsr::parse(&p256_csr()).unwrap().public_key,
                not_before: crate::UnixTime::from_system(crate::testkit::test_now()),
                validity_days: 365,
                issuer,
            },
        )
        .unwrap()
    }

    fn ext(tbs: &TbsCertificate, oid: ObjectIdentifier) -> &Extension {
        tbs.extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == oid)
            .unwrap_or_else(|| panic!("{oid} missing"))
    }

    /// Lints `tbs` after `edit`, returning the findings' text.
    fn findings_after(
        p: &PartnerCertProfile,
        issuer: &IssuerContext,
        edit: impl FnOnce(&mut TbsCertificate),
    ) -> String {
        let mut t = tbs(p, issuer);
        edit(&mut t);
        lint(p, &t, issuer).unwrap_err().to_string()
    }

    #[test]
    fn extensions_follow_the_kind() {
        let f = fixture();
        for (kind, purposes) in [
            (PartnerCertKind::Role, vec![KP_CLIENT_AUTH]),
            (
                PartnerCertKind::SecureComm,
                vec![KP_CLIENT_AUTH, KP_SERVER_AUTH],
            ),
        ] {
            let p = profile(kind);
            let t = tbs(&p, &f.ca.context);
            lint(&p, &t, &f.ca.context).unwrap();
            let eku = ext(&t, oids::CE_EXT_KEY_USAGE);
            assert!(!eku.critical);
            assert_eq!(
                ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
                    .unwrap()
                    .0,
                purposes
            );
            let ku = ext(&t, oids::CE_KEY_USAGE);
            assert!(ku.critical);
            assert_eq!(
                KeyUsage::from_der(ku.extn_value.as_bytes()).unwrap().0,
                flagset::FlagSet::from(KeyUsages::DigitalSignature)
            );
            let bc = ext(&t, oids::CE_BASIC_CONSTRAINTS);
            assert!(bc.critical);
            assert!(
                !BasicConstraints::from_der(bc.extn_value.as_bytes())
                    .unwrap()
                    .ca
            );
            ext(&t, oids::CE_CRL_DISTRIBUTION_POINTS);
            ext(&t, oids::PE_AUTHORITY_INFO_ACCESS);
            ext(&t, oids::CE_AUTHORITY_KEY_IDENTIFIER);
            ext(&t, oids::CE_SUBJECT_KEY_IDENTIFIER);
            for absent in [oids::PE_QC_STATEMENTS, oids::CE_CERTIFICATE_POLICIES] {
                assert!(t.extensions.iter().flatten().all(|e| e.extn_id != absent));
            }
        }
    }

    #[test]
    fn subject_holds_country_organization_licence_and_common_name() {
        let name = partner_subject(&partner(), " KEC-0001 ").unwrap();
        let oids_in_order: Vec<_> = name.0.iter().map(|rdn| rdn.0.as_slice()[0].oid).collect();
        assert_eq!(
            oids_in_order,
            [
                oids::AT_COUNTRY_NAME,
                oids::AT_ORGANIZATION_NAME,
                oids::AT_SERIAL_NUMBER,
                oids::AT_COMMON_NAME
            ]
        );
        assert_eq!(
            attribute_values(&name, oids::AT_ORGANIZATION_NAME),
            vec![(Tag::Utf8String, "Örnek ESHS A.Ş.".into())]
        );
        assert_eq!(
            attribute_values(&name, oids::AT_SERIAL_NUMBER),
            vec![(Tag::PrintableString, "BTK-2024-17".into())]
        );
        assert_eq!(
            attribute_values(&name, oids::AT_COMMON_NAME)[0].1,
            "KEC-0001"
        );
        assert!(name.to_der().is_ok());
        for bad in ["", "  ", &"x".repeat(65)] {
            let e = partner_subject(&partner(), bad).unwrap_err().to_string();
            assert!(e.starts_with("common-name: must be 1 to 64"), "{e}");
        }
    }

    #[test]
    fn lint_refuses_a_wrong_eku_ku_ca_flag_or_qc_statements() {
        let f = fixture();
        let issuer = &f.ca.context;
        let role = profile(PartnerCertKind::Role);
        let comm = profile(PartnerCertKind::SecureComm);
        let set = |t: &mut TbsCertificate, e: Extension| {
            let exts = t.extensions.as_mut().unwrap();
            let i = exts.iter().position(|x| x.extn_id == e.extn_id).unwrap();
            exts[i] = e;
        };

        // A secure-communication EKU in a role certificate, and the other way round.
        let e = findings_after(&role, issuer, |t| {
            set(
                t,
                crate::ext::known(
                    false,
                    &ExtendedKeyUsage(PartnerCertKind::SecureComm.key_purposes()),
                )
                .unwrap(),
            )
        });
        assert!(
            e.contains("extKeyUsage must be id-kp-clientAuth only"),
            "{e}"
        );
        let e = findings_after(&comm, issuer, |t| {
            set(
                t,
                crate::ext::known(false, &ExtendedKeyUsage(vec![KP_CLIENT_AUTH])).unwrap(),
            )
        });
        assert!(
            e.contains("extKeyUsage must be id-kp-clientAuth and id-kp-serverAuth only"),
            "{e}"
        );
        let e = findings_after(&role, issuer, |t| {
            t.extensions
                .as_mut()
                .unwrap()
                .retain(|x| x.extn_id != oids::CE_EXT_KEY_USAGE)
        });
        assert!(e.contains("extKeyUsage is missing"), "{e}");

        let e = findings_after(&role, issuer, |t| {
            set(
                t,
                crate::ext::known(
                    true,
                    &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment),
                )
                .unwrap(),
            )
        });
        assert!(e.contains("keyUsage must be digitalSignature only"), "{e}");
        let e = findings_after(&role, issuer, |t| {
            set(
                t,
                crate::ext::known(false, &KeyUsage(KeyUsages::DigitalSignature.into())).unwrap(),
            )
        });
        assert!(e.contains("keyUsage must be critical"), "{e}");

        let e = findings_after(&role, issuer, |t| {
            set(
                t,
                crate::ext::known(
                    true,
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: None,
                    },
                )
                .unwrap(),
            )
        });
        assert!(e.contains("basicConstraints must be CA:FALSE"), "{e}");

        let e = findings_after(&role, issuer, |t| {
            let qcs: crate::ext::QcStatements = vec![];
            t.extensions
                .as_mut()
                .unwrap()
                .push(crate::ext::extension(oids::PE_QC_STATEMENTS, false, &qcs).unwrap());
        });
        assert!(
            e.contains(&format!(
                "extension {} is not allowed",
                oids::PE_QC_STATEMENTS
            )),
            "{e}"
        );

        let e = findings_after(&role, issuer, |t| {
            t.extensions
                .as_mut()
                .unwrap()
                .retain(|x| x.extn_id != oids::CE_CRL_DISTRIBUTION_POINTS)
        });
        assert!(e.contains("cRLDistributionPoints is missing"), "{e}");

        let e = findings_after(&role, issuer, |t| {
            t.subject = organization_name("TR", "Org", "KEC-0001").unwrap()
        });
        assert!(e.contains("exactly one serialNumber"), "{e}");
    }

    #[test]
    fn configuration_ceiling_holds() {
        let c = PartnerProfileConfig {
            validity_days: 365,
            max_validity_days: 826,
        };
        let e = PartnerCertProfile::from_config(PartnerCertKind::Role, &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("profile.partner.max_validity_days"), "{e}");
        let c = PartnerProfileConfig {
            validity_days: 400,
            max_validity_days: 300,
        };
        assert!(PartnerCertProfile::from_config(PartnerCertKind::Role, &c).is_err());
        let p = profile(PartnerCertKind::SecureComm);
        assert_eq!(
            (p.default_validity_days(), p.max_validity_days()),
            (365, 825)
        );
        assert_eq!(PartnerCertKind::parse("secure-comm").unwrap(), p.kind());
        assert!(PartnerCertKind::parse("tls").is_err());
    }
}
