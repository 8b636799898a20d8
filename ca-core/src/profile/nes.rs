//! The NES profile: a qualified certificate for electronic signatures of a natural person,
//! key on a QSCD (ETSI EN 319 411-2 QCP-n-qscd; EN 319 412-1/-2/-5; docs/STANDARDS.md "NES
//! certificate for a natural person").

use const_oid::ObjectIdentifier;
use der::asn1::{Any, Ia5String, PrintableString, Utf8StringRef};
use der::{Decode, Tag, Tagged};
use serde::{Deserialize, Serialize};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::certpolicy::{
    DisplayText, PolicyInformation, PolicyQualifierInfo, UserNotice,
};
use x509_cert::ext::pkix::{BasicConstraints, CertificatePolicies, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;

use super::lint::{decode_one, extensions_with, only_extensions};
use super::{CertificateProfile, Findings, IssuerContext};
use crate::error::{CaError, Result};
use crate::ext::{
    self, MonetaryValue, PdsLocation, QcStatement, QcStatements, SemanticsInformation,
};
use crate::name::{attribute_values, MAX_NAME_CHARS};
use crate::oids;
use crate::verify::key_identifier;
use crate::Tckn;

/// No configuration can allow a NES longer than five years (Turkish NES are 3 or 5 years).
pub const NES_VALIDITY_CEILING_DAYS: u32 = 1826;

/// The BTK statement text Turkish NES carry (Law 5070).
pub(super) const DEFAULT_BTK_NOTICE: &str =
    "Bu sertifika, 5070 sayılı Elektronik İmza Kanununa göre nitelikli elektronik sertifikadır.";

fn default_btk_notice() -> String {
    DEFAULT_BTK_NOTICE.to_string()
}
fn default_validity_days() -> u32 {
    1095
}
fn default_max_validity_days() -> u32 {
    NES_VALIDITY_CEILING_DAYS
}
fn default_retention_years() -> u32 {
    20
}

/// One PDS location (ETSI EN 319 412-5 §4.3.4).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PdsConfig {
    /// https URL of the PKI disclosure statement in this language.
    pub url: String,
    /// ISO 639-1 language code, two lower-case letters (`tr`, `en`).
    pub language: String,
}

/// `[profile.nes]` in nesca.toml, as written; [`NesProfile::from_config`] checks it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NesProfileConfig {
    /// The ESHS's NES certificate policy OID (Kamu SM's is 2.16.792.1.2.1.1.5.7.1.1).
    pub policy_oid: String,
    /// https URL of the certification practice statement (CPS qualifier).
    pub cps_uri: String,
    /// Optional user notice text, encoded as UTF8String.
    #[serde(default)]
    pub user_notice: Option<String>,
    /// PKI disclosure statements, at least one, one of them in English.
    pub pds: Vec<PdsConfig>,
    /// Years the registration records are kept after expiry (QcRetentionPeriod), > 0.
    #[serde(default = "default_retention_years")]
    pub retention_years: u32,
    /// Text of the BTK NES statement.
    #[serde(default = "default_btk_notice")]
    pub btk_notice: String,
    /// Validity when a request names none, in days.
    #[serde(default = "default_validity_days")]
    pub validity_days: u32,
    /// The longest validity a request may ask for, in days (at most 1826).
    #[serde(default = "default_max_validity_days")]
    pub max_validity_days: u32,
    /// Write the bare 11 digits in subject serialNumber instead of `PNOTR-…`.
    #[serde(default)]
    pub legacy_serial_number: bool,
    /// Optional transaction limit (QcLimitValue) in Turkish lira, whole units.
    #[serde(default)]
    pub limit_value_try: Option<u64>,
}

/// The checked NES profile.
#[derive(Debug, Clone)]
pub struct NesProfile {
    policy_oid: ObjectIdentifier,
    cps_uri: String,
    user_notice: Option<String>,
    pds: Vec<PdsConfig>,
    retention_years: u32,
    btk_notice: String,
    validity_days: u32,
    max_validity_days: u32,
    legacy_serial_number: bool,
    limit_value_try: Option<u64>,
}

fn config_err(field: &str, rule: impl Into<String>) -> CaError {
    CaError::Config {
        field: format!("profile.nes.{field}"),
        rule: rule.into(),
    }
}

fn is_https_url(s: &str) -> bool {
    s.strip_prefix("https://")
        .is_some_and(|r| !r.is_empty() && s.is_ascii() && !s.contains(char::is_whitespace))
}

impl NesProfile {
    /// Checks the configuration against the standards and the hard ceilings.
    pub fn from_config(c: &NesProfileConfig) -> Result<NesProfile> {
        let policy_oid = ObjectIdentifier::new(&c.policy_oid)
            .map_err(|_| config_err("policy_oid", format!("\"{}\" is not an OID", c.policy_oid)))?;
        if !is_https_url(&c.cps_uri) {
            return Err(config_err("cps_uri", "must be an https:// URL"));
        }
        if c.pds.is_empty() {
            return Err(config_err("pds", "at least one PDS location is required"));
        }
        for p in &c.pds {
            if !is_https_url(&p.url) {
                return Err(config_err(
                    "pds.url",
                    format!("\"{}\" must be an https:// URL", p.url),
                ));
            }
            if p.language.len() != 2 || !p.language.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(config_err(
                    "pds.language",
                    format!("\"{}\" must be a two-letter ISO 639-1 code", p.language),
                ));
            }
        }
        if !c.pds.iter().any(|p| p.language == "en") {
            return Err(config_err(
                "pds",
                "one PDS location must be in English (language = \"en\")",
            ));
        }
        if c.retention_years == 0 || c.retention_years > 100 {
            return Err(config_err("retention_years", "must be between 1 and 100"));
        }
        for (field, text) in [
            ("btk_notice", Some(&c.btk_notice)),
            ("user_notice", c.user_notice.as_ref()),
        ] {
            if let Some(t) = text {
                if t.trim().is_empty() || t.chars().count() > 200 {
                    return Err(config_err(field, "must be 1 to 200 characters"));
                }
            }
        }
        super::check_configured_validity(
            c.validity_days,
            c.max_validity_days,
            NES_VALIDITY_CEILING_DAYS,
        )
        .map_err(|(field, rule)| config_err(field, rule))?;
        Ok(NesProfile {
            policy_oid,
            cps_uri: c.cps_uri.clone(),
            user_notice: c.user_notice.clone(),
            pds: c.pds.clone(),
            retention_years: c.retention_years,
            btk_notice: c.btk_notice.clone(),
            validity_days: c.validity_days,
            max_validity_days: c.max_validity_days,
            legacy_serial_number: c.legacy_serial_number,
            limit_value_try: c.limit_value_try,
        })
    }

    /// The validity used when a request names none.
    pub fn default_validity_days(&self) -> u32 {
        self.validity_days
    }

    /// Whether subject serialNumber carries the bare digits.
    pub fn legacy_serial_number(&self) -> bool {
        self.legacy_serial_number
    }

    fn certificate_policies(&self) -> Result<CertificatePolicies> {
        let mut qualifiers = vec![PolicyQualifierInfo {
            policy_qualifier_id: oids::QT_CPS,
            qualifier: Some(Any::from(
                &Ia5String::new(&self.cps_uri).map_err(CaError::der("CPS URI"))?,
            )),
        }];
        if let Some(text) = &self.user_notice {
            let notice = UserNotice {
                notice_ref: None,
                explicit_text: Some(DisplayText::Utf8String(text.clone())),
            };
            qualifiers.push(PolicyQualifierInfo {
                policy_qualifier_id: oids::QT_UNOTICE,
                qualifier: Some(Any::encode_from(&notice).map_err(CaError::der("UserNotice"))?),
            });
        }
        Ok(CertificatePolicies(vec![
            PolicyInformation {
                policy_identifier: self.policy_oid,
                policy_qualifiers: Some(qualifiers),
            },
            PolicyInformation {
                policy_identifier: oids::QCP_N_QSCD,
                policy_qualifiers: None,
            },
        ]))
    }

    fn qc_statements(&self) -> Result<QcStatements> {
        let none: Option<&Any> = None;
        let pds = self
            .pds
            .iter()
            .map(|p| {
                Ok(PdsLocation {
                    url: Ia5String::new(&p.url).map_err(CaError::der("PdsLocation.url"))?,
                    language: PrintableString::new(&p.language)
                        .map_err(CaError::der("PdsLocation.language"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut statements = vec![
            ext::qc_statement(
                oids::QCS_PKIX_QC_SYNTAX_V2,
                Some(&SemanticsInformation {
                    semantics_identifier: Some(oids::SEMANTICS_ID_NATURAL),
                }),
            )?,
            ext::qc_statement(oids::QCS_QC_COMPLIANCE, none)?,
            ext::qc_statement(
                oids::QCS_QC_CC_LEGISLATION,
                Some(&vec![
                    PrintableString::new("TR").map_err(CaError::der("CountryName"))?
                ]),
            )?,
            ext::qc_statement(oids::QCS_QC_SSCD, none)?,
            ext::qc_statement(oids::QCS_QC_TYPE, Some(&vec![oids::QCT_ESIGN]))?,
            ext::qc_statement(
                oids::QCS_QC_RETENTION_PERIOD,
                Some(&u64::from(self.retention_years)),
            )?,
            ext::qc_statement(oids::QCS_QC_PDS, Some(&pds))?,
        ];
        if let Some(amount) = self.limit_value_try {
            let value = MonetaryValue {
                currency: PrintableString::new("TRY").map_err(CaError::der("currency"))?,
                amount: i64::try_from(amount)
                    .map_err(|_| config_err("limit_value_try", "too large"))?,
                exponent: 0,
            };
            statements.push(ext::qc_statement(oids::QCS_QC_LIMIT_VALUE, Some(&value))?);
        }
        statements.push(ext::qc_statement(
            oids::BTK_NES_STATEMENT,
            Some(&ext::utf8(&self.btk_notice)?),
        )?);
        Ok(statements)
    }
}

impl CertificateProfile for NesProfile {
    fn name(&self) -> super::ProfileName {
        super::ProfileName::Nes
    }

    fn max_validity_days(&self) -> u32 {
        self.max_validity_days
    }

    fn extensions(
        &self,
        subject_key: &SubjectPublicKeyInfoOwned,
        issuer: &IssuerContext,
    ) -> Result<Vec<Extension>> {
        let urls = issuer.require_urls()?;
        Ok(vec![
            ext::authority_key_identifier(&issuer.key_id)?,
            ext::subject_key_identifier(&key_identifier(subject_key))?,
            ext::known(true, &KeyUsage(KeyUsages::NonRepudiation.into()))?,
            ext::known(false, &self.certificate_policies()?)?,
            ext::crl_distribution_points(&urls.crl)?,
            ext::authority_info_access(Some(&urls.ocsp), &urls.ca_issuers)?,
            ext::extension(oids::PE_QC_STATEMENTS, false, &self.qc_statements()?)?,
        ])
    }

    fn lint_profile(&self, tbs: &TbsCertificate, issuer: &IssuerContext, f: &mut Findings) {
        lint_subject(tbs, self.legacy_serial_number, f);
        only_extensions(
            tbs,
            &[
                oids::CE_AUTHORITY_KEY_IDENTIFIER,
                oids::CE_SUBJECT_KEY_IDENTIFIER,
                oids::CE_KEY_USAGE,
                oids::CE_CERTIFICATE_POLICIES,
                oids::CE_CRL_DISTRIBUTION_POINTS,
                oids::PE_AUTHORITY_INFO_ACCESS,
                oids::PE_QC_STATEMENTS,
                oids::CE_BASIC_CONSTRAINTS,
            ],
            f,
        );
        if let Some(bc) = extensions_with(tbs, oids::CE_BASIC_CONSTRAINTS).first() {
            let ok = BasicConstraints::from_der(bc.extn_value.as_bytes()).is_ok_and(|b| !b.ca);
            f.check(ok, || {
                "basicConstraints, if present, must be CA:FALSE".into()
            });
        }
        if let Some(ku) = decode_one::<KeyUsage>(tbs, oids::CE_KEY_USAGE, "keyUsage", true, f) {
            f.check(
                ku.0 == flagset::FlagSet::from(KeyUsages::NonRepudiation),
                || "keyUsage must be nonRepudiation only".into(),
            );
        }
        if let Some(cp) = decode_one::<CertificatePolicies>(
            tbs,
            oids::CE_CERTIFICATE_POLICIES,
            "certificatePolicies",
            false,
            f,
        ) {
            lint_policies(&cp, self.policy_oid, f);
        }
        super::lint::lint_status_urls(tbs, issuer, f);
        if let Some(qcs) =
            decode_one::<QcStatements>(tbs, oids::PE_QC_STATEMENTS, "qcStatements", false, f)
        {
            lint_qc_statements(&qcs, f);
        }
    }
}

/// Subject: exactly C=TR, serialNumber, givenName, surname, commonName = "GIVEN SURNAME".
fn lint_subject(tbs: &TbsCertificate, legacy: bool, f: &mut Findings) {
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
    let given = one(oids::AT_GIVEN_NAME, "givenName", f);
    let surname = one(oids::AT_SURNAME, "surname", f);
    let cn = one(oids::AT_COMMON_NAME, "commonName", f);
    for (name, v) in [
        ("givenName", &given),
        ("surname", &surname),
        ("commonName", &cn),
    ] {
        if let Some((tag, s)) = v {
            f.check(*tag == Tag::Utf8String, || {
                format!("subject {name} must be UTF8String")
            });
            let n = s.chars().count();
            f.check((1..=MAX_NAME_CHARS).contains(&n), || {
                format!("subject {name} must be 1 to {MAX_NAME_CHARS} characters")
            });
        }
    }
    if let (Some((_, g)), Some((_, s)), Some((_, c))) = (&given, &surname, &cn) {
        f.check(*c == format!("{g} {s}"), || {
            "subject commonName must be \"givenName surname\"".into()
        });
    }
    if let Some((tag, sn)) = one(oids::AT_SERIAL_NUMBER, "serialNumber", f) {
        f.check(tag == Tag::PrintableString, || {
            "subject serialNumber must be PrintableString".into()
        });
        let digits = if legacy {
            Some(sn.as_str())
        } else {
            sn.strip_prefix("PNOTR-")
        };
        f.check(digits.is_some_and(|d| Tckn::parse(d).is_ok()), || {
            if legacy {
                "subject serialNumber must be a valid T.C. Kimlik No".into()
            } else {
                "subject serialNumber must be PNOTR- and a valid T.C. Kimlik No".into()
            }
        });
    }
    let known = [
        oids::AT_COUNTRY_NAME,
        oids::AT_GIVEN_NAME,
        oids::AT_SURNAME,
        oids::AT_COMMON_NAME,
        oids::AT_SERIAL_NUMBER,
    ];
    for atv in subject.0.iter().flat_map(|r| r.0.iter()) {
        f.check(known.contains(&atv.oid), || {
            format!("subject attribute {} is not allowed in a NES", atv.oid)
        });
    }
}

fn lint_policies(cp: &CertificatePolicies, policy_oid: ObjectIdentifier, f: &mut Findings) {
    let ids: Vec<_> = cp.0.iter().map(|p| p.policy_identifier).collect();
    f.check(ids.contains(&policy_oid), || {
        format!("certificatePolicies must contain the NES policy {policy_oid}")
    });
    f.check(ids.contains(&oids::QCP_N_QSCD), || {
        "certificatePolicies must contain QCP-n-qscd 0.4.0.194112.1.2".into()
    });
    let mut has_cps = false;
    for q in
        cp.0.iter()
            .flat_map(|p| p.policy_qualifiers.iter().flatten())
    {
        if q.policy_qualifier_id == oids::QT_CPS {
            has_cps |= q
                .qualifier
                .as_ref()
                .is_some_and(|a| a.tag() == Tag::Ia5String && a.value().starts_with(b"https://"));
        } else if let Some(a) = &q.qualifier {
            let notice = UserNotice::from_der(&der::Encode::to_der(a).unwrap_or_default());
            let utf8 = notice
                .as_ref()
                .is_ok_and(|n| matches!(n.explicit_text, None | Some(DisplayText::Utf8String(_))));
            f.check(utf8, || {
                "user notice explicitText must be UTF8String".into()
            });
        }
    }
    f.check(has_cps, || {
        "certificatePolicies must carry an https CPS qualifier".into()
    });
}

fn lint_qc_statements(qcs: &QcStatements, f: &mut Findings) {
    let find = |id: ObjectIdentifier| -> Option<&QcStatement> {
        qcs.iter().find(|q| q.statement_id == id)
    };
    let info_is = |id: ObjectIdentifier, check: &dyn Fn(&Any) -> bool| {
        find(id)
            .and_then(|q| q.statement_info.as_ref())
            .is_some_and(check)
    };
    for (id, name) in [
        (oids::QCS_QC_COMPLIANCE, "QcCompliance"),
        (oids::QCS_QC_SSCD, "QcSSCD"),
    ] {
        f.check(find(id).is_some_and(|q| q.statement_info.is_none()), || {
            format!("qcStatements must contain {name} without info")
        });
    }
    f.check(
        info_is(oids::QCS_QC_TYPE, &|a| {
            a.decode_as::<Vec<ObjectIdentifier>>()
                .is_ok_and(|v| v == vec![oids::QCT_ESIGN])
        }),
        || "qcStatements must contain QcType esign".into(),
    );
    f.check(
        info_is(oids::QCS_QC_CC_LEGISLATION, &|a| {
            a.decode_as::<Vec<PrintableString>>()
                .is_ok_and(|v| v.len() == 1 && v[0].as_str() == "TR")
        }),
        || "qcStatements must contain QcCClegislation TR".into(),
    );
    f.check(
        info_is(oids::QCS_QC_RETENTION_PERIOD, &|a| {
            a.decode_as::<u64>().is_ok_and(|y| y > 0)
        }),
        || "qcStatements must contain QcRetentionPeriod > 0".into(),
    );
    f.check(
        info_is(oids::QCS_QC_PDS, &|a| {
            a.decode_as::<Vec<PdsLocation>>().is_ok_and(|v| {
                !v.is_empty()
                    && v.iter().all(|p| p.url.as_str().starts_with("https://"))
                    && v.iter().any(|p| p.language.as_str() == "en")
            })
        }),
        || "qcStatements must contain QcPDS with https URLs, one in English".into(),
    );
    f.check(
        info_is(oids::QCS_PKIX_QC_SYNTAX_V2, &|a| {
            a.decode_as::<SemanticsInformation>()
                .is_ok_and(|s| s.semantics_identifier == Some(oids::SEMANTICS_ID_NATURAL))
        }),
        || "qcStatements must contain pkixQCSyntax-v2 with semanticsId-Natural".into(),
    );
    f.check(
        info_is(oids::BTK_NES_STATEMENT, &|a| {
            a.tag() == Tag::Utf8String && Utf8StringRef::try_from(a).is_ok()
        }),
        || "qcStatements must contain the BTK NES statement as UTF8String".into(),
    );
    if let Some(q) = find(oids::QCS_QC_LIMIT_VALUE) {
        let ok = q
            .statement_info
            .as_ref()
            .and_then(|a| a.decode_as::<MonetaryValue>().ok())
            .is_some_and(|m| m.currency.as_str() == "TRY");
        f.check(ok, || "QcLimitValue currency must be TRY".into());
    }
}

/// A complete demo configuration (tests).
#[cfg(any(test, feature = "testkit"))]
pub(crate) fn demo_config() -> NesProfileConfig {
    NesProfileConfig {
        policy_oid: "2.16.792.1.2.1.1.5.7.1.1".into(),
        cps_uri: "https://pki.nesca-demo.com.tr/cps".into(),
        user_notice: None,
        pds: vec![
            PdsConfig {
                url: "https://pki.nesca-demo.com.tr/pds/tr".into(),
                language: "tr".into(),
            },
            PdsConfig {
                url: "https://pki.nesca-demo.com.tr/pds/en".into(),
                language: "en".into(),
            },
        ],
        retention_years: 20,
        btk_notice: DEFAULT_BTK_NOTICE.into(),
        validity_days: 1095,
        max_validity_days: 1826,
        legacy_serial_number: false,
        limit_value_try: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_ceilings_hold() {
        let mut c = demo_config();
        assert!(NesProfile::from_config(&c).is_ok());
        c.max_validity_days = 4000;
        let e = NesProfile::from_config(&c).unwrap_err().to_string();
        assert!(e.contains("profile.nes.max_validity_days"), "{e}");
        let mut c = demo_config();
        c.cps_uri = "http://x".into();
        assert!(NesProfile::from_config(&c)
            .unwrap_err()
            .to_string()
            .contains("cps_uri"));
        let mut c = demo_config();
        c.pds.retain(|p| p.language != "en");
        assert!(NesProfile::from_config(&c)
            .unwrap_err()
            .to_string()
            .contains("English"));
        let mut c = demo_config();
        c.retention_years = 0;
        assert!(NesProfile::from_config(&c).is_err());
        let mut c = demo_config();
        c.policy_oid = "not.an.oid".into();
        assert!(NesProfile::from_config(&c).is_err());
    }
}
