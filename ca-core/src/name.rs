//! Subject names: checked person names and the distinguished names built from them
//! (RFC 5280 §4.1.2.6, ETSI EN 319 412-2 §4.2.4).

use std::fmt;

use const_oid::ObjectIdentifier;
use der::asn1::{Any, SetOfVec};
use der::{Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::error::{CaError, Result};
use crate::oids;
use crate::Tckn;

/// ub-common-name (RFC 5280 Appendix A.1); nesca holds given names and surnames to it too.
pub const MAX_NAME_CHARS: usize = 64;

/// A given name or surname: trimmed, 1 to 64 characters, letters (Turkish letters included)
/// with inner spaces, hyphens, apostrophes and periods. Kept exactly as given otherwise.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Checks a name for the command-line or API field `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<PersonName> {
        let s = s.trim();
        if s.is_empty() {
            return Err(CaError::invalid(field, "must not be empty"));
        }
        let n = s.chars().count();
        if n > MAX_NAME_CHARS {
            return Err(CaError::invalid(
                field,
                format!("must be at most {MAX_NAME_CHARS} characters (got {n})"),
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '.')))
        {
            return Err(CaError::invalid(
                field,
                format!(
                    "character {bad:?} is not allowed (letters, spaces, '-', '\\'' and '.' only)"
                ),
            ));
        }
        if s.contains("  ") {
            return Err(CaError::invalid(
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

/// The subject of a NES for a natural person: C=TR, serialNumber, givenName, surname, CN.
///
/// serialNumber is `PNOTR-<T.C. Kimlik No>` (ETSI EN 319 412-1 §5.1.3) or, with
/// `legacy_serial_number`, the bare 11 digits as older Turkish certificates carry.
pub fn nes_subject(
    tckn: &Tckn,
    given: &PersonName,
    surname: &PersonName,
    legacy_serial_number: bool,
) -> Result<Name> {
    let common = format!("{} {}", given.as_str(), surname.as_str());
    let n = common.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(CaError::invalid(
            "given-name and surname",
            format!("together make a commonName of {n} characters; at most {MAX_NAME_CHARS} are allowed"),
        ));
    }
    let serial = if legacy_serial_number {
        tckn.as_str().to_string()
    } else {
        format!("PNOTR-{tckn}")
    };
    build_name(&[
        (oids::AT_COUNTRY_NAME, Tag::PrintableString, "TR"),
        (oids::AT_SERIAL_NUMBER, Tag::PrintableString, &serial),
        (oids::AT_GIVEN_NAME, Tag::Utf8String, given.as_str()),
        (oids::AT_SURNAME, Tag::Utf8String, surname.as_str()),
        (oids::AT_COMMON_NAME, Tag::Utf8String, &common),
    ])
}

/// An organisational name (CA, OCSP signer): C, O, CN.
pub fn organization_name(country: &str, organization: &str, common_name: &str) -> Result<Name> {
    build_name(&[
        (oids::AT_COUNTRY_NAME, Tag::PrintableString, country),
        (oids::AT_ORGANIZATION_NAME, Tag::Utf8String, organization),
        (oids::AT_COMMON_NAME, Tag::Utf8String, common_name),
    ])
}

/// One attribute per RDN, in the order given (the DER order, not RFC 4514's reversed one).
fn build_name(attrs: &[(ObjectIdentifier, Tag, &str)]) -> Result<Name> {
    let mut rdns = Vec::with_capacity(attrs.len());
    for (oid, tag, value) in attrs {
        let value = Any::new(*tag, value.as_bytes()).map_err(CaError::der("AttributeValue"))?;
        let set = SetOfVec::try_from(vec![AttributeTypeAndValue { oid: *oid, value }])
            .map_err(CaError::der("RelativeDistinguishedName"))?;
        rdns.push(RelativeDistinguishedName(set));
    }
    Ok(RdnSequence(rdns))
}

/// The string value of each attribute of `name` with type `oid`.
pub fn attribute_values(name: &Name, oid: ObjectIdentifier) -> Vec<(Tag, String)> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == oid)
        .map(|atv| {
            (
                atv.value.tag(),
                String::from_utf8_lossy(atv.value.value()).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turkish_letters_are_kept_exactly() {
        let n = PersonName::parse("given-name", " İLKNUR ŞÜKRÜ ÇAĞLA ÖZĞÜR ı ").unwrap();
        assert_eq!(n.as_str(), "İLKNUR ŞÜKRÜ ÇAĞLA ÖZĞÜR ı");
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
    }

    #[test]
    fn nes_subject_holds_the_five_attributes() {
        let t = Tckn::parse("10000000146").unwrap();
        let g = PersonName::parse("given-name", "AYŞE").unwrap();
        let s = PersonName::parse("surname", "YILMAZ").unwrap();
        let name = nes_subject(&t, &g, &s, false).unwrap();
        assert_eq!(
            attribute_values(&name, oids::AT_SERIAL_NUMBER),
            vec![(Tag::PrintableString, "PNOTR-10000000146".into())]
        );
        assert_eq!(
            attribute_values(&name, oids::AT_COMMON_NAME),
            vec![(Tag::Utf8String, "AYŞE YILMAZ".into())]
        );
        let legacy = nes_subject(&t, &g, &s, true).unwrap();
        assert_eq!(
            attribute_values(&legacy, oids::AT_SERIAL_NUMBER)[0].1,
            "10000000146"
        );
        let long = PersonName::parse("surname", &"B".repeat(60)).unwrap();
        assert!(nes_subject(&t, &g, &long, false)
            .unwrap_err()
            .to_string()
            .contains("commonName"));
    }
}
