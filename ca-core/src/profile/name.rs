//! The names of the certificate profiles nesca issues, as one enum: the store records a
//! certificate's profile by this name, and policy that depends on the kind of certificate
//! (which certificates may authenticate a partner, which have a holder) matches on it instead
//! of comparing strings.

use std::fmt;

/// A certificate profile's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProfileName {
    /// The self-signed root CA (`ca.rs`).
    RootCa,
    /// An issuing CA under the root (`ca.rs`).
    IssuingCa,
    /// A NES for a natural person (`nes.rs`).
    Nes,
    /// A CA's delegated OCSP signer (`ocsp_signer.rs`).
    OcspSigner,
    /// A partner's role certificate: clientAuth (`partner.rs`).
    PartnerRole,
    /// A partner's secure-communication certificate: clientAuth and serverAuth (`partner.rs`).
    PartnerSecureComm,
    /// A PKI operator's client certificate for the admin API (`service.rs`).
    Operator,
    /// A TLS server certificate of one of nesca's listeners (`service.rs`).
    TlsServer,
}

impl ProfileName {
    /// Every profile.
    pub const ALL: [ProfileName; 8] = [
        ProfileName::RootCa,
        ProfileName::IssuingCa,
        ProfileName::Nes,
        ProfileName::OcspSigner,
        ProfileName::PartnerRole,
        ProfileName::PartnerSecureComm,
        ProfileName::Operator,
        ProfileName::TlsServer,
    ];

    /// The name as recorded in the store and printed by `nesca cert show`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileName::RootCa => "root-ca",
            ProfileName::IssuingCa => "issuing-ca",
            ProfileName::Nes => "nes",
            ProfileName::OcspSigner => "ocsp-signer",
            ProfileName::PartnerRole => "partner-role",
            ProfileName::PartnerSecureComm => "partner-secure-comm",
            ProfileName::Operator => "operator",
            ProfileName::TlsServer => "tls-server",
        }
    }

    /// Reads a recorded name; `None` for a name nesca does not issue.
    pub fn parse(s: &str) -> Option<ProfileName> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// A registered partner's certificate (role or secure communication): the certificates
    /// that authenticate partners' systems to the channels.
    pub fn is_partner(self) -> bool {
        matches!(
            self,
            ProfileName::PartnerRole | ProfileName::PartnerSecureComm
        )
    }
}

impl ProfileName {
    /// A certificate without a T.C. Kimlik No holder that the CA's operators suspend and
    /// revoke themselves: a partner's, an operator's, a listener's.
    pub fn is_operated(self) -> bool {
        self.is_partner() || matches!(self, ProfileName::Operator | ProfileName::TlsServer)
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{CertificateProfile, PartnerCertKind};

    #[test]
    fn every_name_reads_back_and_unknown_names_do_not() {
        for p in ProfileName::ALL {
            assert_eq!(ProfileName::parse(p.as_str()), Some(p));
        }
        assert_eq!(ProfileName::parse("partner"), None);
        assert_eq!(ProfileName::parse(""), None);
    }

    #[test]
    fn the_profiles_record_these_names() {
        let nes =
            crate::profile::NesProfile::from_config(&crate::profile::nes_demo_config()).unwrap();
        assert_eq!(nes.name(), ProfileName::Nes);
        for (kind, name) in [
            (PartnerCertKind::Role, ProfileName::PartnerRole),
            (PartnerCertKind::SecureComm, ProfileName::PartnerSecureComm),
        ] {
            let p = crate::profile::PartnerCertProfile::from_config(
                kind,
                &crate::profile::PartnerProfileConfig::default(),
            )
            .unwrap();
            assert_eq!(p.name(), name);
            assert!(name.is_partner());
        }
        assert!(!ProfileName::Nes.is_partner());
    }
}
