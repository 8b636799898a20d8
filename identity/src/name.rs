//! Checked person names: the given name and surname of a NES subject (ETSI EN 319 412-2
//! §4.2.4; docs/STANDARDS.md "NES certificate for a natural person"). Building the X.509 name
//! from them stays in `ca_core::name`.

use std::fmt;

use crate::error::IdentityError;

/// ub-common-name (RFC 5280 Appendix A.1); nesca holds given names and surnames to it too.
pub const MAX_NAME_CHARS: usize = 64;

/// A given name or surname: trimmed, 1 to 64 characters, letters (Turkish letters included)
/// with inner spaces, hyphens, apostrophes and periods. Kept exactly as given otherwise.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Checks a name for the command-line or API field `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<PersonName, IdentityError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(IdentityError::invalid(field, "must not be empty"));
        }
        let n = s.chars().count();
        if n > MAX_NAME_CHARS {
            return Err(IdentityError::invalid(
                field,
                format!("must be at most {MAX_NAME_CHARS} characters (got {n})"),
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '.')))
        {
            return Err(IdentityError::invalid(
                field,
                format!(
                    "character {bad:?} is not allowed (letters, spaces, '-', '\\'' and '.' only)"
                ),
            ));
        }
        if s.contains("  ") {
            return Err(IdentityError::invalid(
                field,
                "must not contain two spaces in a row",
            ));
        }
        Ok(PersonName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turkish_letters_are_kept_exactly() {
        let n = PersonName::parse("given-name", " İLKNUR ŞÜKRÜ ÇAĞLA ÖZĞÜR ı ").unwrap();
        assert_eq!(n.as_str(), "İLKNUR ŞÜKRÜ ÇAĞLA ÖZĞÜR ı");
        assert_eq!(n.to_string(), "İLKNUR ŞÜKRÜ ÇAĞLA ÖZĞÜR ı");
        assert_eq!(
            format!("{n:?}"),
            "PersonName(\"İLKNUR ŞÜKRÜ ÇAĞLA ÖZĞÜR ı\")"
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let e = PersonName::parse("given-name", "").unwrap_err().to_string();
        assert_eq!(e, "given-name: must not be empty");
        let e = PersonName::parse("surname", &"A".repeat(65))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("surname: must be at most 64 characters"),
            "{e}"
        );
        let e = PersonName::parse("surname", "A1").unwrap_err().to_string();
        assert!(e.contains("'1'"), "{e}");
        let e = PersonName::parse("surname", "AY  YILDIZ").unwrap_err();
        assert_eq!(e.field(), "surname");
        assert_eq!(e.rule(), "must not contain two spaces in a row");
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 64 two-byte letters: 128 bytes, but within ub-common-name.
        assert!(PersonName::parse("surname", &"Ş".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(PersonName::parse("surname", &"Ş".repeat(MAX_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn inner_punctuation_is_allowed() {
        for ok in ["O'NEIL", "AYŞE-NUR", "J. R."] {
            assert_eq!(PersonName::parse("given-name", ok).unwrap().as_str(), ok);
        }
    }
}
