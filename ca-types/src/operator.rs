//! PKI operators: named people in trusted roles (ETSI EN 319 401 §7.2), who act through the
//! admin API with a certificate nesca issued them. One person holds one role (separation of
//! duties); the role decides which endpoints they reach and what they may approve.

use std::fmt;

use crate::error::CaTypesError;
use crate::Serial;

/// A trusted role. Every admin endpoint names the roles it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum OperatorRole {
    /// Registration officer: certificate search, holder-requested suspension, release and
    /// revocation, applications, institutions and lists.
    RaOfficer,
    /// CA operator: CRLs on demand, partners, plugins' status, OCSP-signer renewal.
    CaOperator,
    /// Auditor: reads everything, the audit log and its verification; changes nothing.
    Auditor,
    /// Security officer: operators and their roles.
    SecurityOfficer,
}

impl OperatorRole {
    /// Every role.
    pub const ALL: [OperatorRole; 4] = [
        OperatorRole::RaOfficer,
        OperatorRole::CaOperator,
        OperatorRole::Auditor,
        OperatorRole::SecurityOfficer,
    ];

    /// The role's name on the command line, in the API and in the audit text.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::RaOfficer => "ra-officer",
            OperatorRole::CaOperator => "ca-operator",
            OperatorRole::Auditor => "auditor",
            OperatorRole::SecurityOfficer => "security-officer",
        }
    }

    /// Reads a role's name.
    pub fn parse(s: &str) -> Result<OperatorRole, CaTypesError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                CaTypesError::invalid(
                    "role",
                    "must be one of ra-officer, ca-operator, auditor, security-officer",
                )
            })
    }
}

impl fmt::Display for OperatorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator's name: the person, as registered. 1 to 64 characters (ub-common-name, it is
/// the certificate's commonName), no control characters, no leading or trailing space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperatorName(String);

impl OperatorName {
    /// Longest name, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Checks a name.
    pub fn parse(s: &str) -> Result<OperatorName, CaTypesError> {
        let n = s.chars().count();
        if n == 0 || n > Self::MAX_CHARS {
            return Err(CaTypesError::invalid(
                "name",
                format!("must be 1 to {} characters (got {n})", Self::MAX_CHARS),
            ));
        }
        if s.chars().any(|c| c.is_control() || is_invisible(c)) || s.trim() != s {
            return Err(CaTypesError::invalid(
                "name",
                "must have no control or invisible characters and no leading or trailing space",
            ));
        }
        Ok(OperatorName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters that show nothing (Unicode format characters: zero-width spaces and joiners,
/// direction marks, the soft hyphen, the byte-order mark): a name with one would look like
/// another person's, and one person could register twice.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{E0000}'..='\u{E0FFF}')
}

/// An operator as the admin API authenticated them: who, in which role, with which of their
/// certificates. Recorded as `operator:{role}:{serial}:{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OperatorActor {
    pub name: OperatorName,
    pub role: OperatorRole,
    /// The serial of the certificate the request came with.
    pub serial: Serial,
}

impl fmt::Display for OperatorActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operator:{}:{}:{}", self.role, self.serial, self.name)
    }
}

impl OperatorActor {
    /// Reads the text after `operator:` (`{role}:{serial}:{name}`; the name may hold `:`).
    pub(crate) fn parse_audit_text(rest: &str) -> Option<OperatorActor> {
        let mut parts = rest.splitn(3, ':');
        let role = OperatorRole::parse(parts.next()?).ok()?;
        let serial = Serial::parse_hex(parts.next()?).ok()?;
        let name = OperatorName::parse(parts.next()?).ok()?;
        Some(OperatorActor { name, role, serial })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_back_and_unknown_roles_are_refused() {
        for r in OperatorRole::ALL {
            assert_eq!(OperatorRole::parse(r.as_str()).unwrap(), r);
        }
        for bad in ["", "admin", "RA-OFFICER", "ra_officer"] {
            let e = OperatorRole::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("role: must be one of"), "{e}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(
            OperatorName::parse("Ayşe Yılmaz").unwrap().as_str(),
            "Ayşe Yılmaz"
        );
        assert!(OperatorName::parse(&"ş".repeat(64)).is_ok());
        for bad in [
            "",
            " Ayşe",
            "Ayşe ",
            "a\nb",
            "a\u{7}b",
            "Ay\u{200B}şe",
            "Ayşe\u{FEFF}x",
        ] {
            assert!(OperatorName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(OperatorName::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn an_actor_reads_back_from_its_audit_text_even_with_colons_in_the_name() {
        let a = OperatorActor {
            name: OperatorName::parse("Dr. A: B").unwrap(),
            role: OperatorRole::SecurityOfficer,
            serial: Serial::random(),
        };
        let text = a.to_string();
        let rest = text.strip_prefix("operator:").unwrap();
        assert_eq!(OperatorActor::parse_audit_text(rest).unwrap(), a);
        assert!(OperatorActor::parse_audit_text("auditor:zz:x").is_none());
        assert!(OperatorActor::parse_audit_text("boss:01:x").is_none());
    }
}
