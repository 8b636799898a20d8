//! The delegated OCSP signer certificate (RFC 6960 §4.2.2.2): issued directly by the CA it
//! answers for, id-kp-OCSPSigning, id-pkix-ocsp-nocheck, short validity, no AIA/CDP.

use der::asn1::Null;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;

use super::lint::{decode_one, extensions_with, only_extensions};
use super::{CertificateProfile, Findings, IssuerContext};
use crate::error::Result;
use crate::ext;
use crate::oids;
use crate::verify::key_identifier;

/// The OCSP signer profile.
#[derive(Debug, Clone)]
pub struct OcspSignerProfile {
    /// The longest validity, in days (at most a year: nocheck certificates must be short-lived).
    pub max_validity_days: u32,
}

impl Default for OcspSignerProfile {
    fn default() -> Self {
        OcspSignerProfile {
            max_validity_days: 366,
        }
    }
}

impl CertificateProfile for OcspSignerProfile {
    fn name(&self) -> super::ProfileName {
        super::ProfileName::OcspSigner
    }

    fn max_validity_days(&self) -> u32 {
        self.max_validity_days
    }

    fn extensions(
        &self,
        subject_key: &SubjectPublicKeyInfoOwned,
        issuer: &IssuerContext,
    ) -> Result<Vec<Extension>> {
        Ok(vec![
            ext::authority_key_identifier(&issuer.key_id)?,
            ext::subject_key_identifier(&key_identifier(subject_key))?,
            ext::known(true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
            ext::known(false, &ExtendedKeyUsage(vec![oids::KP_OCSP_SIGNING]))?,
            ext::extension(oids::PKIX_OCSP_NOCHECK, false, &Null)?,
        ])
    }

    fn lint_profile(&self, tbs: &TbsCertificate, _issuer: &IssuerContext, f: &mut Findings) {
        only_extensions(
            tbs,
            &[
                oids::CE_AUTHORITY_KEY_IDENTIFIER,
                oids::CE_SUBJECT_KEY_IDENTIFIER,
                oids::CE_KEY_USAGE,
                oids::CE_EXT_KEY_USAGE,
                oids::PKIX_OCSP_NOCHECK,
            ],
            f,
        );
        if let Some(eku) =
            decode_one::<ExtendedKeyUsage>(tbs, oids::CE_EXT_KEY_USAGE, "extKeyUsage", false, f)
        {
            f.check(eku.0 == vec![oids::KP_OCSP_SIGNING], || {
                "extKeyUsage must be id-kp-OCSPSigning only".into()
            });
        }
        if let Some(ku) = decode_one::<KeyUsage>(tbs, oids::CE_KEY_USAGE, "keyUsage", true, f) {
            f.check(
                ku.0 == flagset::FlagSet::from(KeyUsages::DigitalSignature),
                || "keyUsage must be digitalSignature only".into(),
            );
        }
        f.check(
            extensions_with(tbs, oids::PKIX_OCSP_NOCHECK).len() == 1,
            || "id-pkix-ocsp-nocheck is missing".into(),
        );
    }
}
