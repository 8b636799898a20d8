//! Certificate profiles: what each kind of certificate nesca issues must contain.
//!
//! A profile is built from configuration into a typed value with hard ceilings, builds the
//! extensions for a subject key, and lints a finished TBSCertificate against itself before
//! anything is signed. The lint decodes the TBS again rather than trusting the builder, so a
//! builder bug stops issuance instead of reaching the HSM.

mod ca;
mod lint;
mod name;
mod nes;
mod ocsp_signer;
mod partner;
mod service;

use std::time::Duration;

use der::asn1::{GeneralizedTime, UtcTime};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

pub use ca::{CaKind, CaProfile};
pub use lint::Findings;
pub use name::ProfileName;
#[cfg(any(test, feature = "testkit"))]
pub(crate) use nes::demo_config as nes_demo_config;
pub use nes::{NesProfile, NesProfileConfig, PdsConfig, NES_VALIDITY_CEILING_DAYS};
pub use ocsp_signer::OcspSignerProfile;
pub use partner::{
    parse_common_name, partner_subject, PartnerCertKind, PartnerCertProfile, PartnerProfileConfig,
    KP_CLIENT_AUTH, KP_SERVER_AUTH, PARTNER_VALIDITY_CEILING_DAYS,
};
pub use service::{OperatorProfile, ServerName, TlsServerProfile, SERVICE_VALIDITY_CEILING_DAYS};

use crate::error::{CaError, Result};
use crate::serial::{IssuerId, Serial};
use crate::UnixTime;

const DAY: u64 = 86_400;

/// The URLs a relying party needs, found from any certificate the CA issues:
/// cRLDistributionPoints (RFC 5280 §4.2.1.13), authorityInfoAccess (§4.2.2.1) and the full
/// CRL's freshestCRL (§5.2.6), all plain http (docs/STANDARDS.md "NES certificate for a natural
/// person", "CRLs").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaUrls {
    /// `{public}/crl/{ca}.crl`, in cRLDistributionPoints.
    pub crl: String,
    /// `{public}/ocsp`, in authorityInfoAccess.
    pub ocsp: String,
    /// `{public}/ca/{ca}.crt`, the caIssuers entry of authorityInfoAccess.
    pub ca_issuers: String,
    /// `{public}/crl/{ca}-delta.crl`, in the full CRL's freshestCRL.
    pub delta_crl: String,
}

impl CaUrls {
    /// Derives the URLs from the public base URL (`http://host[:port][/prefix]`).
    pub fn new(public_url: &str, ca: &IssuerId) -> Result<CaUrls> {
        let base = public_url.trim_end_matches('/');
        let ok = base.strip_prefix("http://").is_some_and(|rest| {
            !rest.is_empty() && rest.is_ascii() && !rest.contains(char::is_whitespace)
        });
        if !ok {
            return Err(CaError::Config {
                field: "ca.public_url".into(),
                rule: format!("\"{public_url}\" must be an http:// URL (relying parties fetch CRLs and OCSP over plain http)"),
            });
        }
        Ok(CaUrls {
            crl: format!("{base}/crl/{ca}.crl"),
            ocsp: format!("{base}/ocsp"),
            ca_issuers: format!("{base}/ca/{ca}.crt"),
            delta_crl: format!("{base}/crl/{ca}-delta.crl"),
        })
    }
}

/// What a profile needs to know of the CA that will sign.
#[derive(Debug, Clone)]
pub struct IssuerContext {
    pub id: IssuerId,
    pub name: Name,
    /// The issuer's subjectKeyIdentifier, repeated in authorityKeyIdentifier.
    pub key_id: Vec<u8>,
    /// The algorithm the issuer's key signs with.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// Where the issuer publishes status and its certificate; `None` for a root signing itself.
    pub urls: Option<CaUrls>,
    /// The issuer's own notAfter: nothing it signs may outlive it. `None` for a root
    /// signing itself.
    pub not_after: Option<UnixTime>,
}

impl IssuerContext {
    /// The issuer's URLs, which every certificate it issues names (a root signing itself has
    /// none, and issues nothing that needs them).
    pub fn require_urls(&self) -> Result<&CaUrls> {
        self.urls.as_ref().ok_or_else(|| CaError::Config {
            field: "ca.public_url".into(),
            rule: "the issuing CA has no public URL".into(),
        })
    }
}

/// A kind of certificate nesca issues.
pub trait CertificateProfile: Send + Sync {
    /// The profile's name, for errors, the store and the audit log.
    fn name(&self) -> ProfileName;

    /// The longest validity this profile allows, in days.
    fn max_validity_days(&self) -> u32;

    /// The extensions of a certificate for `subject_key` under `issuer`.
    fn extensions(
        &self,
        subject_key: &SubjectPublicKeyInfoOwned,
        issuer: &IssuerContext,
    ) -> Result<Vec<Extension>>;

    /// Profile-specific checks of a finished TBSCertificate (the shared RFC 5280 checks run
    /// before these, in [`lint`]).
    fn lint_profile(&self, tbs: &TbsCertificate, issuer: &IssuerContext, findings: &mut Findings);
}

/// What varies between two certificates of one profile.
pub struct TbsInput<'a> {
    pub serial: Serial,
    pub subject: Name,
    pub subject_key: SubjectPublicKeyInfoOwned,
    pub not_before: UnixTime,
    pub validity_days: u32,
    pub issuer: &'a IssuerContext,
}

/// Builds the TBSCertificate (RFC 5280 §4.1.2) of `input` under `profile`.
pub fn build_tbs(profile: &dyn CertificateProfile, input: TbsInput<'_>) -> Result<TbsCertificate> {
    check_validity_days(profile, input.validity_days)?;
    let not_after = input
        .not_before
        .plus(Duration::from_secs(u64::from(input.validity_days) * DAY));
    if let Some(ca_end) = input.issuer.not_after {
        if not_after > ca_end {
            return Err(CaError::invalid(
                "validity-days",
                format!(
                    "the certificate would outlive its issuing CA (which expires {})",
                    crate::rfc3339(ca_end)
                ),
            ));
        }
    }
    let extensions = profile.extensions(&input.subject_key, input.issuer)?;
    Ok(TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&input.serial.to_der_bytes())
            .map_err(CaError::der("serialNumber"))?,
        signature: input.issuer.signature_algorithm.clone(),
        issuer: input.issuer.name.clone(),
        validity: Validity {
            not_before: x509_time(input.not_before)?,
            not_after: x509_time(not_after)?,
        },
        subject: input.subject,
        subject_public_key_info: input.subject_key,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

/// Checks a profile's configured default and maximum validity against its hard ceiling;
/// the error names the field (`validity_days` or `max_validity_days`) and the rule.
pub(crate) fn check_configured_validity(
    validity_days: u32,
    max_validity_days: u32,
    ceiling: u32,
) -> std::result::Result<(), (&'static str, String)> {
    if max_validity_days == 0 || max_validity_days > ceiling {
        return Err((
            "max_validity_days",
            format!("must be between 1 and {ceiling}"),
        ));
    }
    if validity_days == 0 || validity_days > max_validity_days {
        return Err((
            "validity_days",
            "must be between 1 and max_validity_days".into(),
        ));
    }
    Ok(())
}

/// Refuses a validity of 0 days or above the profile's maximum.
pub fn check_validity_days(profile: &dyn CertificateProfile, days: u32) -> Result<()> {
    if days == 0 {
        return Err(CaError::invalid("validity-days", "must be at least 1"));
    }
    if days > profile.max_validity_days() {
        return Err(CaError::invalid(
            "validity-days",
            format!(
                "{days} days exceeds the {} profile maximum of {} days",
                profile.name(),
                profile.max_validity_days()
            ),
        ));
    }
    Ok(())
}

/// Runs the shared RFC 5280 checks and the profile's own; any finding refuses the TBS.
pub fn lint(
    profile: &dyn CertificateProfile,
    tbs: &TbsCertificate,
    issuer: &IssuerContext,
) -> Result<()> {
    let mut findings = Findings::default();
    lint::rfc5280(tbs, issuer, profile.max_validity_days(), &mut findings);
    profile.lint_profile(tbs, issuer, &mut findings);
    findings.into_result(profile.name().as_str())
}

/// An instant as an X.509 `Time` (RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime
/// from 2050); the one way from [`UnixTime`] to a certificate's time.
pub fn x509_time(t: UnixTime) -> Result<Time> {
    let t = t.to_system();
    match UtcTime::from_system_time(t) {
        Ok(utc) => Ok(Time::UtcTime(utc)),
        Err(_) => Ok(Time::GeneralTime(
            GeneralizedTime::from_system_time(t).map_err(CaError::der("GeneralizedTime"))?,
        )),
    }
}

/// An X.509 `Time` as an instant (whole seconds, as DER carries them); the one way from a
/// certificate's time to [`UnixTime`].
pub fn unix_time(t: &Time) -> UnixTime {
    UnixTime::from_system(t.to_system_time())
}
