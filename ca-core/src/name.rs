//! Subject names: the distinguished names built from checked person names (RFC 5280
//! §4.1.2.6, ETSI EN 319 412-2 §4.2.4). The names themselves are checked by
//! [`nesca_identity::PersonName`].

use const_oid::ObjectIdentifier;
use der::asn1::{Any, SetOfVec};
use der::{Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::error::{CaError, Result};
use crate::oids;
use crate::Tckn;

// The checked person name lives in `nesca-identity` so that the channel plugins check names
// with the same code; re-exported here so that `ca_core::name::{PersonName, MAX_NAME_CHARS}`
// keep naming it.
pub use nesca_identity::{PersonName, MAX_NAME_CHARS};

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
