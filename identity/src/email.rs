//! A contact e-mail address for the institutional channel.
//!
//! Deliberately not a full RFC 5321/5322 parser: the address is checked for the mistakes a
//! person or a spreadsheet makes (no `@`, two of them, a missing domain, stray spaces) and
//! otherwise kept as given, so that nesca never rewrites what the institution sent. Only the
//! domain is lower-cased: domains are case-insensitive (RFC 4343), local parts need not be
//! (RFC 5321 §2.4), so two spellings of one mailbox compare equal only through the domain.

use std::fmt;

use crate::error::IdentityError;

/// The longest address that fits a forward-path (RFC 5321 §4.5.3.1.3, RFC 3696 erratum 1690).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A checked e-mail address: one `@`, a non-empty local part, a domain of at least two
/// non-empty dot-separated labels, no whitespace or control characters, at most
/// [`MAX_EMAIL_CHARS`] characters. Surrounding whitespace is trimmed; the domain is stored in
/// lower case, the local part as given.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email {
    address: String,
    /// Byte offset of the `@` in `address`.
    at: usize,
}

impl Email {
    /// Checks an address for the form or API field `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<Email, IdentityError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(IdentityError::invalid(field, "must not be empty"));
        }
        if let Some(bad) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(IdentityError::invalid(
                field,
                format!("character {bad:?} is not allowed (no spaces or control characters)"),
            ));
        }
        let (local, domain) = match s.split_once('@') {
            Some((_, rest)) if rest.contains('@') => {
                return Err(IdentityError::invalid(
                    field,
                    "must contain exactly one '@'",
                ))
            }
            Some(parts) => parts,
            None => return Err(IdentityError::invalid(field, "must contain an '@'")),
        };
        if local.is_empty() {
            return Err(IdentityError::invalid(
                field,
                "must have a local part before the '@'",
            ));
        }
        // "a domain with a dot": at least two labels, none empty, so `x@.`, `x@tr.` and
        // `x@a..tr` are refused as well as `x@localhost`.
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return Err(IdentityError::invalid(
                field,
                format!("domain {domain:?} must be a name with a dot, such as example.com.tr"),
            ));
        }
        // Checked on the stored form: lower-casing can lengthen a non-ASCII domain.
        let address = format!("{local}@{}", domain.to_lowercase());
        let n = address.chars().count();
        if n > MAX_EMAIL_CHARS {
            return Err(IdentityError::invalid(
                field,
                format!("must be at most {MAX_EMAIL_CHARS} characters (got {n})"),
            ));
        }
        Ok(Email {
            at: local.len(),
            address,
        })
    }

    /// The whole address, domain in lower case.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The part before the `@`, as given.
    pub fn local_part(&self) -> &str {
        &self.address[..self.at]
    }

    /// The part after the `@`, in lower case.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({:?})", self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> String {
        let e = Email::parse("email", s).unwrap_err();
        assert_eq!(e.field(), "email", "{s:?}");
        e.rule().to_string()
    }

    #[test]
    fn keeps_the_local_part_and_lower_cases_the_domain() {
        let e = Email::parse("email", " Ayse.Yilmaz+NES@Kurum.GOV.TR ").unwrap();
        assert_eq!(e.as_str(), "Ayse.Yilmaz+NES@kurum.gov.tr");
        assert_eq!(e.to_string(), "Ayse.Yilmaz+NES@kurum.gov.tr");
        assert_eq!(e.local_part(), "Ayse.Yilmaz+NES");
        assert_eq!(e.domain(), "kurum.gov.tr");
        assert_eq!(format!("{e:?}"), "Email(\"Ayse.Yilmaz+NES@kurum.gov.tr\")");
        // One mailbox, two spellings of its domain: equal.
        assert_eq!(
            e,
            Email::parse("email", "Ayse.Yilmaz+NES@kurum.gov.tr").unwrap()
        );
        // The local part may be case-sensitive: not equal.
        assert_ne!(
            e,
            Email::parse("email", "ayse.yilmaz+nes@kurum.gov.tr").unwrap()
        );
    }

    #[test]
    fn non_ascii_domain_is_lower_cased_too() {
        let e = Email::parse("email", "ali@ÖRNEK.com.tr").unwrap();
        assert_eq!(e.domain(), "örnek.com.tr");
    }

    #[test]
    fn refuses_each_rule_naming_the_field() {
        assert_eq!(rule(""), "must not be empty");
        assert_eq!(rule("   "), "must not be empty");
        assert_eq!(rule("ayse.kurum.gov.tr"), "must contain an '@'");
        assert_eq!(rule("a@b@kurum.gov.tr"), "must contain exactly one '@'");
        assert_eq!(
            rule("@kurum.gov.tr"),
            "must have a local part before the '@'"
        );
        for bad_domain in ["a@", "a@localhost", "a@.tr", "a@kurum.", "a@kurum..tr"] {
            assert!(rule(bad_domain).starts_with("domain "), "{bad_domain}");
        }
        assert!(rule("ay se@kurum.gov.tr").contains("' '"));
        assert!(rule("ayse@kurum.gov.tr\u{0}").contains("'\\0'"));
        assert!(rule("ayse\u{a0}@kurum.gov.tr").contains("no spaces"));
        assert!(rule("ay\nse@kurum.gov.tr").contains("no spaces"));
    }

    #[test]
    fn at_most_254_characters() {
        let domain = "@kurum.gov.tr";
        let fits = format!("{}{domain}", "a".repeat(MAX_EMAIL_CHARS - domain.len()));
        assert_eq!(Email::parse("email", &fits).unwrap().as_str(), fits);
        let long = format!("a{fits}");
        assert_eq!(
            rule(&long),
            format!(
                "must be at most 254 characters (got {})",
                MAX_EMAIL_CHARS + 1
            )
        );
        // Characters, not bytes: 254 two-byte letters are still 254 characters.
        let wide = format!("{}{domain}", "ş".repeat(MAX_EMAIL_CHARS - domain.len()));
        assert!(Email::parse("email", &wide).is_ok());
    }
}
