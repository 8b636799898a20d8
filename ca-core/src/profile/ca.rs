//! Root and issuing CA certificates (RFC 5280 §4.2.1.9, §4.2.1.3).

use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;

use super::lint::{decode_one, only_extensions};
use super::{CertificateProfile, Findings, IssuerContext};
use crate::error::Result;
use crate::ext;
use crate::oids;
use crate::verify::key_identifier;

/// Which CA certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaKind {
    /// Self-signed, no path length limit beyond one issuing level.
    Root,
    /// Signed by the root; issues end-entity certificates only (pathLenConstraint 0).
    Issuing,
}

/// The CA certificate profile.
#[derive(Debug, Clone)]
pub struct CaProfile {
    pub kind: CaKind,
    /// The longest validity, in days (root: 25 years, issuing: 12 years at most).
    pub max_validity_days: u32,
}

impl CaProfile {
    pub fn root() -> Self {
        CaProfile {
            kind: CaKind::Root,
            max_validity_days: 25 * 366,
        }
    }
    pub fn issuing() -> Self {
        CaProfile {
            kind: CaKind::Issuing,
            max_validity_days: 12 * 366,
        }
    }
    fn path_len(&self) -> Option<u8> {
        match self.kind {
            CaKind::Root => Some(1),
            CaKind::Issuing => Some(0),
        }
    }
}

impl CertificateProfile for CaProfile {
    fn name(&self) -> super::ProfileName {
        match self.kind {
            CaKind::Root => super::ProfileName::RootCa,
            CaKind::Issuing => super::ProfileName::IssuingCa,
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
        let mut exts = vec![
            ext::subject_key_identifier(&key_identifier(subject_key))?,
            ext::authority_key_identifier(&issuer.key_id)?,
            ext::known(
                true,
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: self.path_len(),
                },
            )?,
            ext::known(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
        ];
        if let Some(urls) = &issuer.urls {
            exts.push(ext::crl_distribution_points(&urls.crl)?);
            exts.push(ext::authority_info_access(None, &urls.ca_issuers)?);
        }
        Ok(exts)
    }

    fn lint_profile(&self, tbs: &TbsCertificate, _issuer: &IssuerContext, f: &mut Findings) {
        only_extensions(
            tbs,
            &[
                oids::CE_SUBJECT_KEY_IDENTIFIER,
                oids::CE_AUTHORITY_KEY_IDENTIFIER,
                oids::CE_BASIC_CONSTRAINTS,
                oids::CE_KEY_USAGE,
                oids::CE_CRL_DISTRIBUTION_POINTS,
                oids::PE_AUTHORITY_INFO_ACCESS,
            ],
            f,
        );
        if let Some(bc) = decode_one::<BasicConstraints>(
            tbs,
            oids::CE_BASIC_CONSTRAINTS,
            "basicConstraints",
            true,
            f,
        ) {
            f.check(bc.ca && bc.path_len_constraint == self.path_len(), || {
                "basicConstraints must be CA:TRUE with the profile's path length".into()
            });
        }
        if let Some(ku) = decode_one::<KeyUsage>(tbs, oids::CE_KEY_USAGE, "keyUsage", true, f) {
            f.check(
                ku.0 == (KeyUsages::KeyCertSign | KeyUsages::CRLSign),
                || "keyUsage must be keyCertSign and cRLSign".into(),
            );
        }
        if self.kind == CaKind::Root {
            f.check(tbs.issuer == tbs.subject, || {
                "a root CA certificate must be self-issued".into()
            });
        }
    }
}
