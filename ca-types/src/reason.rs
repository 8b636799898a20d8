//! CRLReason (RFC 5280 §5.3.1), restricted to the codes nesca writes.

use std::fmt;
use std::str::FromStr;

use crate::error::CaTypesError;

/// `CRLReason ::= ENUMERATED` of RFC 5280 §5.3.1, the values nesca uses.
///
/// `unspecified (0)` has no variant: RFC 5280 says to omit reasonCode rather than write it, so
/// an unspecified revocation is `None` wherever a reason is optional. `7` is unused by the RFC;
/// `cACompromise` is for a CA's own certificate (revoked by its root), never a holder's;
/// `aACompromise` is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationReason {
    KeyCompromise,
    /// A CA's key is compromised: only for CA certificates (the root's CRL).
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    /// Suspension (RFC 5280 §5.3.1): the only reason that is not final.
    CertificateHold,
    /// Only in delta CRLs: the entry leaves the CRL (hold released).
    RemoveFromCrl,
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// Every variant, in code order.
    pub const ALL: [RevocationReason; 8] = [
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// The reasons a holder may give for a (final) revocation.
    pub const FOR_REVOCATION: [RevocationReason; 5] = [
        RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// The reasons a root gives for revoking a CA certificate it issued (RFC 5280 §5.3.1).
    pub const FOR_CA_REVOCATION: [RevocationReason; 4] = [
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
    ];

    /// The ENUMERATED value.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::RemoveFromCrl => 8,
            RevocationReason::PrivilegeWithdrawn => 9,
        }
    }

    /// The value for an ENUMERATED code; `None` for unspecified (0) and codes nesca never writes.
    pub fn from_code(code: u8) -> Option<RevocationReason> {
        RevocationReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The RFC 5280 name, exactly as the command line and APIs spell it.
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::RemoveFromCrl => "removeFromCRL",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RevocationReason {
    type Err = CaTypesError;
    /// Exact RFC 5280 names only: a misspelt reason is refused, never guessed
    /// ([`CaTypesError::Invalid`] for the field `reason`).
    fn from_str(s: &str) -> Result<Self, CaTypesError> {
        RevocationReason::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = RevocationReason::ALL.iter().map(|r| r.name()).collect();
                CaTypesError::invalid(
                    "reason",
                    format!("unknown reason \"{s}\"; one of {}", names.join(", ")),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for r in RevocationReason::ALL {
            assert_eq!(r.name().parse::<RevocationReason>().unwrap(), r);
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
        }
        assert_eq!(RevocationReason::from_code(0), None);
        assert_eq!(RevocationReason::from_code(7), None);
        assert!("KeyCompromise".parse::<RevocationReason>().is_err());
        let e = "unspecified".parse::<RevocationReason>().unwrap_err();
        assert_eq!(e.field(), "reason");
        assert!(
            e.to_string()
                .starts_with("reason: unknown reason \"unspecified\"; one of keyCompromise"),
            "{e}"
        );
    }
}
