//! Registered licensed ESHS operators ("partners"): the only holders of role and
//! secure-communication certificates (docs/STANDARDS.md "Other profiles"; "The Turkish
//! channels", KEC).

use crate::error::{CaError, Result};

/// Longest partner name nesca records (it becomes the subject organizationName).
pub const MAX_PARTNER_NAME_CHARS: usize = 128;
/// Longest licence number nesca records (it becomes the subject serialNumber, ub 64).
pub const MAX_LICENSE_NO_CHARS: usize = 64;

crate::short_id::short_id!(
    /// The id of a partner inside nesca (`nesca partner add --id`).
    PartnerId,
    "id"
);

/// A registered licensed ESHS operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRecord {
    pub id: PartnerId,
    /// The operator's legal name (subject organizationName), 1 to 128 characters.
    pub name: String,
    /// The operator's licence number: the holder's registered id (subject serialNumber).
    pub license_no: String,
    /// When it was registered.
    pub created_at: crate::UnixTime,
    /// Only active partners receive certificates.
    pub active: bool,
}

/// Checks a partner's legal name: trimmed, 1 to 128 characters, no control characters.
pub fn parse_partner_name(s: &str) -> Result<String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(CaError::invalid("name", "must not be empty"));
    }
    let n = s.chars().count();
    if n > MAX_PARTNER_NAME_CHARS {
        return Err(CaError::invalid(
            "name",
            format!("must be at most {MAX_PARTNER_NAME_CHARS} characters (got {n})"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(CaError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(s.to_string())
}

/// Checks a licence number: 1 to 64 characters of the PrintableString alphabet (it is
/// written as a PrintableString serialNumber, X.520).
pub fn parse_license_no(s: &str) -> Result<String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(CaError::invalid("license-no", "must not be empty"));
    }
    let n = s.chars().count();
    if n > MAX_LICENSE_NO_CHARS {
        return Err(CaError::invalid(
            "license-no",
            format!("must be at most {MAX_LICENSE_NO_CHARS} characters (got {n})"),
        ));
    }
    if let Some(bad) = s.chars().find(|c| !is_printable_string_char(*c)) {
        return Err(CaError::invalid(
            "license-no",
            format!(
                "character {bad:?} is not printable (letters, digits, space and '()+,-./:=? only)"
            ),
        ));
    }
    Ok(s.to_string())
}

/// The PrintableString alphabet (X.680 §41.4).
pub(crate) fn is_printable_string_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_ids_are_lower_case_and_short() {
        assert_eq!(PartnerId::parse("eshs-a1").unwrap().as_str(), "eshs-a1");
        for bad in ["", "ESHS", "a b", "a_b", "ş", &"a".repeat(33)] {
            let e = PartnerId::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("id: "), "{bad:?}: {e}");
        }
        assert!(PartnerId::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn names_and_licence_numbers_are_checked() {
        assert_eq!(parse_partner_name(" Org A.Ş. ").unwrap(), "Org A.Ş.");
        assert_eq!(
            parse_partner_name("").unwrap_err().to_string(),
            "name: must not be empty"
        );
        assert!(parse_partner_name(&"x".repeat(129))
            .unwrap_err()
            .to_string()
            .starts_with("name: must be at most 128"));
        assert!(parse_partner_name("a\nb").is_err());
        assert_eq!(parse_license_no("BTK-2024/17").unwrap(), "BTK-2024/17");
        assert_eq!(
            parse_license_no(" ").unwrap_err().to_string(),
            "license-no: must not be empty"
        );
        assert!(parse_license_no(&"1".repeat(65)).is_err());
        assert!(parse_license_no("a*b").is_err());
        assert!(parse_license_no("ş").is_err());
    }
}
