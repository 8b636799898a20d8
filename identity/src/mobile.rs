//! A Turkish mobile telephone number for the institutional channel.
//!
//! Turkish numbers are 10 digits after the trunk prefix 0 or the country code +90 (ITU-T
//! E.164, country code 90); mobile numbers are the ones in the 5xx range. People write them
//! in several ways, so several are accepted; one form, E.164 `+905321234567`, is stored so
//! that one subscriber is one value.

use std::fmt;

use crate::error::IdentityError;

/// How a number may be written, for the refusal messages.
const FORMS: &str = "05321234567, 5321234567, +905321234567 or 905321234567";

/// A checked Turkish mobile number, held in E.164 form: `+90` and 10 digits, the first 5.
///
/// Accepted: `05321234567`, `5321234567`, `+905321234567` and `905321234567`, with spaces,
/// dashes, dots or parentheses anywhere between the digits (`0 (532) 123-45-67`). A `+` may
/// only come first and must be followed by the country code 90.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TrMobile(String);

impl TrMobile {
    /// Checks a number for the form or API field `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<TrMobile, IdentityError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(IdentityError::invalid(field, "must not be empty"));
        }
        let (plus, rest) = match s.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let mut digits = String::with_capacity(12);
        for c in rest.chars() {
            match c {
                // ASCII only: char::is_numeric would let full-width and Arabic-Indic digits in.
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(IdentityError::invalid(
                        field,
                        format!(
                            "character {c:?} is not allowed (digits, spaces, '-', '.', '(' and \
                             ')' only, and '+' first)"
                        ),
                    ))
                }
            }
        }
        let national = match (plus, digits.len()) {
            (true, _) if !digits.starts_with("90") => {
                return Err(IdentityError::invalid(
                    field,
                    "must be a Turkish number: '+' must be followed by the country code 90",
                ))
            }
            (true, 12) => &digits[2..],
            (false, 12) if digits.starts_with("90") => &digits[2..],
            (false, 11) if digits.starts_with('0') => &digits[1..],
            (false, 10) => &digits[..],
            (_, n) => {
                return Err(IdentityError::invalid(
                    field,
                    format!("must be written as {FORMS} (got {n} digits)"),
                ))
            }
        };
        // Geographic numbers begin with 2, 3 or 4, special services with 8 or 9; only the
        // 5xx range reaches a mobile telephone (an SMS).
        if !national.starts_with('5') {
            return Err(IdentityError::invalid(
                field,
                format!(
                    "must be a mobile number: the 10-digit national number must begin with 5 \
                     (got {national})"
                ),
            ));
        }
        Ok(TrMobile(format!("+90{national}")))
    }

    /// The number in E.164 form, `+905321234567`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 10-digit national number, `5321234567`.
    pub fn national(&self) -> &str {
        &self.0[3..]
    }
}

impl fmt::Display for TrMobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TrMobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrMobile({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> String {
        let e = TrMobile::parse("mobile", s).unwrap_err();
        assert_eq!(e.field(), "mobile", "{s:?}");
        e.rule().to_string()
    }

    #[test]
    fn every_accepted_form_is_one_value() {
        for s in [
            "05321234567",
            "5321234567",
            "+905321234567",
            "905321234567",
            " 0532 123 45 67 ",
            "0 (532) 123-45-67",
            "(0532) 123.45.67",
            "+90 (532) 123 45 67",
            "+90-532-123-4567",
            "90 532 1234567",
        ] {
            let m = TrMobile::parse("mobile", s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(m.as_str(), "+905321234567", "{s:?}");
            assert_eq!(m.to_string(), "+905321234567");
            assert_eq!(m.national(), "5321234567");
        }
        assert_eq!(
            format!("{:?}", TrMobile::parse("mobile", "05321234567").unwrap()),
            "TrMobile(+905321234567)"
        );
    }

    #[test]
    fn refuses_numbers_that_are_not_turkish_mobiles() {
        assert_eq!(rule(""), "must not be empty");
        // A landline (Ankara 312) in each form.
        for landline in ["03121234567", "3121234567", "+903121234567", "903121234567"] {
            assert!(rule(landline).contains("must begin with 5"), "{landline}");
        }
        assert!(rule("+15551234567").contains("country code 90"));
        assert!(rule("+05321234567").contains("country code 90"));
        assert!(rule("+9005321234567").contains("got 13 digits"));
        // Wrong digit counts, including an 11-digit number without the trunk 0.
        for (s, n) in [("532123456", 9), ("53212345678", 11), ("05321234", 8)] {
            assert!(rule(s).contains(&format!("got {n} digits")), "{s}");
        }
        // Twelve digits that do not start with the country code.
        assert!(rule("915321234567").contains("got 12 digits"));
    }

    #[test]
    fn refuses_other_characters() {
        assert!(rule("0532 123 45 6x").contains("'x'"));
        assert!(rule("0532+1234567").contains("'+'"));
        assert!(rule("0532/123/45/67").contains("'/'"));
        // Full-width digits look like digits but are not ASCII.
        assert!(rule("０５３２１２３４５６７").contains("not allowed"));
    }
}
