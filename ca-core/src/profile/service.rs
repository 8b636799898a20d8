//! Certificates for nesca's own services and people: an operator's client certificate for
//! the admin API, and a TLS server certificate for one of nesca's listeners (the admin API's)
//! naming the addresses it is reached at in subjectAltName (RFC 6125: clients match the
//! subjectAltName, never the commonName).
//!
//! Neither is a qualified certificate: no qcStatements, no certificatePolicies. Both carry
//! cRLDistributionPoints and authorityInfoAccess so that a relying party can check them.

use std::net::IpAddr;

use der::asn1::{Ia5String, OctetString};
use der::Tag;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;

use super::lint::decode_one;
use super::partner::{KP_CLIENT_AUTH, KP_SERVER_AUTH};
use super::{CertificateProfile, Findings, IssuerContext, ProfileName};
use crate::error::{CaError, Result};
use crate::name::{attribute_values, organization_name, MAX_NAME_CHARS};
use crate::oids;
use crate::verify::key_identifier;

/// No configuration can make an operator's or a listener's certificate longer than this.
pub const SERVICE_VALIDITY_CEILING_DAYS: u32 = 825;

/// An operator's client certificate (id-kp-clientAuth), subject `C, O = the ESHS, CN = the
/// operator's name`.
#[derive(Debug, Clone)]
pub struct OperatorProfile {
    max_validity_days: u32,
}

impl OperatorProfile {
    /// The profile with a longest validity of `max_validity_days` (at most 825).
    pub fn new(max_validity_days: u32) -> Result<OperatorProfile> {
        check_ceiling("admin.operator_validity_days", max_validity_days)?;
        Ok(OperatorProfile { max_validity_days })
    }
}

/// One name a TLS server is reached by: a DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerName {
    Dns(String),
    Ip(IpAddr),
}

impl ServerName {
    /// A DNS name (LDH labels, 1 to 253 characters) or an IP address.
    pub fn parse(s: &str) -> Result<ServerName> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(ServerName::Ip(ip));
        }
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if s.is_empty() || s.len() > 253 || !s.split('.').all(label_ok) {
            return Err(CaError::invalid(
                "name",
                format!(
                    "\"{s}\" is neither an IP address nor a DNS name of letters, digits and '-'"
                ),
            ));
        }
        Ok(ServerName::Dns(s.to_ascii_lowercase()))
    }

    fn general_name(&self) -> Result<GeneralName> {
        Ok(match self {
            ServerName::Dns(d) => {
                GeneralName::DnsName(Ia5String::new(d).map_err(CaError::der("dNSName"))?)
            }
            ServerName::Ip(ip) => {
                let bytes = match ip {
                    IpAddr::V4(v4) => v4.octets().to_vec(),
                    IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                GeneralName::IpAddress(OctetString::new(bytes).map_err(CaError::der("iPAddress"))?)
            }
        })
    }
}

impl std::fmt::Display for ServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerName::Dns(d) => f.write_str(d),
            ServerName::Ip(ip) => ip.fmt(f),
        }
    }
}

/// A TLS server certificate (id-kp-serverAuth) for the names given, subject `C, O = the ESHS,
/// CN = the first name`.
#[derive(Debug, Clone)]
pub struct TlsServerProfile {
    names: Vec<ServerName>,
    max_validity_days: u32,
}

impl TlsServerProfile {
    /// The profile for these names (1 to 16) with a longest validity of `max_validity_days`.
    pub fn new(names: Vec<ServerName>, max_validity_days: u32) -> Result<TlsServerProfile> {
        check_ceiling("validity-days", max_validity_days)?;
        if names.is_empty() || names.len() > 16 {
            return Err(CaError::invalid("name", "give 1 to 16 names"));
        }
        Ok(TlsServerProfile {
            names,
            max_validity_days,
        })
    }

    pub fn names(&self) -> &[ServerName] {
        &self.names
    }

    /// The subject: `C, O = organization, CN = the first name`.
    pub fn subject(&self, country: &str, organization: &str) -> Result<Name> {
        organization_name(country, organization, &self.names[0].to_string())
    }

    fn subject_alt_name(&self) -> Result<SubjectAltName> {
        Ok(SubjectAltName(
            self.names
                .iter()
                .map(ServerName::general_name)
                .collect::<Result<_>>()?,
        ))
    }
}

fn check_ceiling(field: &'static str, days: u32) -> Result<()> {
    if days == 0 || days > SERVICE_VALIDITY_CEILING_DAYS {
        return Err(CaError::invalid(
            field,
            format!("must be between 1 and {SERVICE_VALIDITY_CEILING_DAYS} days"),
        ));
    }
    Ok(())
}

/// The extensions of every TLS end-entity certificate (a partner's, an operator's, a
/// listener's), with exactly `purposes` as extKeyUsage; [`super::lint::lint_tls_leaf`] checks
/// them.
pub(super) fn tls_leaf_extensions(
    subject_key: &SubjectPublicKeyInfoOwned,
    issuer: &IssuerContext,
    purposes: Vec<const_oid::ObjectIdentifier>,
) -> Result<Vec<Extension>> {
    let urls = issuer.require_urls()?;
    Ok(vec![
        crate::ext::known(
            true,
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
        )?,
        crate::ext::authority_key_identifier(&issuer.key_id)?,
        crate::ext::subject_key_identifier(&key_identifier(subject_key))?,
        crate::ext::known(true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
        crate::ext::known(false, &ExtendedKeyUsage(purposes))?,
        crate::ext::crl_distribution_points(&urls.crl)?,
        crate::ext::authority_info_access(Some(&urls.ocsp), &urls.ca_issuers)?,
    ])
}

/// The checks both profiles share: subject C, O, CN each once (UTF8String O and CN), and
/// those of every TLS end-entity certificate with exactly `purpose`.
fn lint_shared(
    tbs: &TbsCertificate,
    issuer: &IssuerContext,
    purpose: const_oid::ObjectIdentifier,
    extra: &[const_oid::ObjectIdentifier],
    f: &mut Findings,
) {
    for (oid, name) in [
        (oids::AT_COUNTRY_NAME, "countryName"),
        (oids::AT_ORGANIZATION_NAME, "organizationName"),
        (oids::AT_COMMON_NAME, "commonName"),
    ] {
        let values = attribute_values(&tbs.subject, oid);
        f.check(values.len() == 1, || {
            format!("subject must hold exactly one {name}")
        });
        if oid != oids::AT_COUNTRY_NAME {
            for (tag, v) in values {
                f.check(
                    tag == Tag::Utf8String && (1..=MAX_NAME_CHARS).contains(&v.chars().count()),
                    || format!("subject {name} must be a UTF8String of 1 to {MAX_NAME_CHARS} characters"),
                );
            }
        }
    }
    let subject_attrs = tbs.subject.0.iter().flat_map(|r| r.0.iter()).count();
    f.check(subject_attrs == 3, || {
        "subject must hold countryName, organizationName and commonName only".into()
    });
    super::lint::lint_tls_leaf(tbs, issuer, &[purpose], extra, f);
}

impl CertificateProfile for OperatorProfile {
    fn name(&self) -> ProfileName {
        ProfileName::Operator
    }

    fn max_validity_days(&self) -> u32 {
        self.max_validity_days
    }

    fn extensions(
        &self,
        subject_key: &SubjectPublicKeyInfoOwned,
        issuer: &IssuerContext,
    ) -> Result<Vec<Extension>> {
        tls_leaf_extensions(subject_key, issuer, vec![KP_CLIENT_AUTH])
    }

    fn lint_profile(&self, tbs: &TbsCertificate, issuer: &IssuerContext, f: &mut Findings) {
        lint_shared(tbs, issuer, KP_CLIENT_AUTH, &[], f);
    }
}

impl CertificateProfile for TlsServerProfile {
    fn name(&self) -> ProfileName {
        ProfileName::TlsServer
    }

    fn max_validity_days(&self) -> u32 {
        self.max_validity_days
    }

    fn extensions(
        &self,
        subject_key: &SubjectPublicKeyInfoOwned,
        issuer: &IssuerContext,
    ) -> Result<Vec<Extension>> {
        let mut exts = tls_leaf_extensions(subject_key, issuer, vec![KP_SERVER_AUTH])?;
        exts.push(crate::ext::known(false, &self.subject_alt_name()?)?);
        Ok(exts)
    }

    fn lint_profile(&self, tbs: &TbsCertificate, issuer: &IssuerContext, f: &mut Findings) {
        lint_shared(tbs, issuer, KP_SERVER_AUTH, &[oids::CE_SUBJECT_ALT_NAME], f);
        if let Some(san) =
            decode_one::<SubjectAltName>(tbs, oids::CE_SUBJECT_ALT_NAME, "subjectAltName", false, f)
        {
            let expected = self.subject_alt_name().map(|s| s.0).unwrap_or_default();
            f.check(san.0 == expected, || {
                "subjectAltName must name exactly the listener's names".into()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_ip_addresses_or_dns_names() {
        assert_eq!(
            ServerName::parse("127.0.0.1").unwrap(),
            ServerName::Ip("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            ServerName::parse("::1").unwrap(),
            ServerName::Ip("::1".parse().unwrap())
        );
        assert_eq!(
            ServerName::parse("Admin.Example.TR").unwrap(),
            ServerName::Dns("admin.example.tr".into())
        );
        for bad in ["", "a..b", "-a.b", "a b", "a_b.tr", "*.example.tr", "[::1]"] {
            assert!(ServerName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validity_and_names_have_ceilings() {
        assert!(OperatorProfile::new(0).is_err());
        assert!(OperatorProfile::new(826).is_err());
        assert!(OperatorProfile::new(825).is_ok());
        assert!(TlsServerProfile::new(vec![], 365).is_err());
        let many = vec![ServerName::parse("a.tr").unwrap(); 17];
        assert!(TlsServerProfile::new(many, 365).is_err());
    }
}
