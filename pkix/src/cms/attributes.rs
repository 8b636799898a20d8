//! The signed attributes a SignerInfo must carry (RFC 5652 §5.3, §11): contentType and
//! messageDigest, and the optional signingTime.

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use x509_cert::attr::{AttributeValue, Attributes};
use x509_cert::time::Time;

use crate::oids;
use crate::unique::at_most_one;
use crate::PkixError;

/// The signed attributes this verifier reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SignedAttributes {
    pub content_type: ObjectIdentifier,
    pub message_digest: Vec<u8>,
    /// Unix seconds.
    pub signing_time: Option<i64>,
}

/// Reads the attributes from signedAttrs encoded as a SET OF Attribute.
pub(super) fn read(set_of: &[u8]) -> Result<SignedAttributes, PkixError> {
    let attrs = Attributes::from_der(set_of).map_err(PkixError::der("SignerInfo.signedAttrs"))?;

    let content_type = single_value(&attrs, oids::ID_CONTENT_TYPE, "contentType")?
        .ok_or_else(|| required("contentType"))?;
    let content_type = content_type
        .decode_as::<ObjectIdentifier>()
        .map_err(PkixError::der("signedAttrs.contentType"))?;

    let message_digest = single_value(&attrs, oids::ID_MESSAGE_DIGEST, "messageDigest")?
        .ok_or_else(|| required("messageDigest"))?;
    let message_digest = message_digest
        .decode_as::<OctetString>()
        .map_err(PkixError::der("signedAttrs.messageDigest"))?
        .into_bytes();

    let signing_time = single_value(&attrs, oids::ID_SIGNING_TIME, "signingTime")?
        .map(signing_time)
        .transpose()?;

    Ok(SignedAttributes {
        content_type,
        message_digest,
        signing_time,
    })
}

fn required(name: &str) -> PkixError {
    PkixError::invalid(
        "SignerInfo.signedAttrs",
        format!("the {name} attribute is required (RFC 5652 §5.3), but absent"),
    )
}

/// The value of attribute `oid`, which must appear at most once and hold exactly one value
/// (RFC 5652 §11.1-11.3: "MUST NOT include multiple instances", "MUST have a single value").
fn single_value<'a>(
    attrs: &'a Attributes,
    oid: ObjectIdentifier,
    name: &str,
) -> Result<Option<&'a AttributeValue>, PkixError> {
    let found = at_most_one(attrs.iter().filter(|a| a.oid == oid)).map_err(|n| {
        PkixError::invalid(
            "SignerInfo.signedAttrs",
            format!("exactly one {name} attribute is accepted (found {n})"),
        )
    })?;
    let Some(attr) = found else {
        return Ok(None);
    };
    let mut values = attr.values.iter();
    match (values.next(), values.len()) {
        (Some(value), 0) => Ok(Some(value)),
        _ => Err(PkixError::invalid(
            "SignerInfo.signedAttrs",
            format!(
                "the {name} attribute must have exactly one value (found {})",
                attr.values.len()
            ),
        )),
    }
}

/// SigningTime ::= Time (UTCTime or GeneralizedTime), as Unix seconds.
fn signing_time(value: &AttributeValue) -> Result<i64, PkixError> {
    let field = "signedAttrs.signingTime";
    let time = value
        .to_der()
        .and_then(|der| Time::from_der(&der))
        .map_err(PkixError::der(field))?;
    i64::try_from(time.to_unix_duration().as_secs())
        .map_err(|_| PkixError::invalid(field, "out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::SetOfVec;
    use x509_cert::attr::Attribute;

    fn attr(oid: ObjectIdentifier, values: Vec<AttributeValue>) -> Attribute {
        Attribute {
            oid,
            values: SetOfVec::try_from(values).unwrap(),
        }
    }

    fn encode(attrs: Vec<Attribute>) -> Vec<u8> {
        Attributes::try_from(attrs).unwrap().to_der().unwrap()
    }

    fn content_type(oid: ObjectIdentifier) -> Attribute {
        attr(
            oids::ID_CONTENT_TYPE,
            vec![AttributeValue::encode_from(&oid).unwrap()],
        )
    }

    fn digest(d: &[u8]) -> Attribute {
        attr(
            oids::ID_MESSAGE_DIGEST,
            vec![AttributeValue::encode_from(&OctetString::new(d).unwrap()).unwrap()],
        )
    }

    /// signingTime holding `time` (a UTCTime or a GeneralizedTime).
    fn signing_time_attr(time: &(impl der::EncodeValue + der::Tagged)) -> Attribute {
        attr(
            oids::ID_SIGNING_TIME,
            vec![AttributeValue::encode_from(time).unwrap()],
        )
    }

    /// Why the set of `attrs` is refused.
    fn refusal(attrs: Vec<Attribute>) -> String {
        read(&encode(attrs)).unwrap_err().to_string()
    }

    #[test]
    fn reads_all_three() {
        let utc =
            der::asn1::UtcTime::from_unix_duration(std::time::Duration::from_secs(1_750_000_000))
                .unwrap();
        let set = encode(vec![
            content_type(oids::ID_DATA),
            digest(&[1, 2, 3]),
            signing_time_attr(&utc),
        ]);
        assert_eq!(
            read(&set).unwrap(),
            SignedAttributes {
                content_type: oids::ID_DATA,
                message_digest: vec![1, 2, 3],
                signing_time: Some(1_750_000_000),
            }
        );
    }

    #[test]
    fn generalized_time_is_read_too() {
        let gt = der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
            4_102_444_800, // 2100-01-01: GeneralizedTime per RFC 5652 §11.3
        ))
        .unwrap();
        let set = encode(vec![
            content_type(oids::ID_DATA),
            digest(&[9]),
            signing_time_attr(&gt),
        ]);
        assert_eq!(read(&set).unwrap().signing_time, Some(4_102_444_800));
    }

    #[test]
    fn missing_message_digest_is_named() {
        assert_eq!(
            refusal(vec![content_type(oids::ID_DATA)]),
            "SignerInfo.signedAttrs: the messageDigest attribute is required (RFC 5652 §5.3), but absent"
        );
    }

    #[test]
    fn two_content_type_attributes_are_refused() {
        assert_eq!(
            refusal(vec![
                content_type(oids::ID_DATA),
                content_type(oids::ID_SIGNED_DATA),
                digest(&[1]),
            ]),
            "SignerInfo.signedAttrs: exactly one contentType attribute is accepted (found 2)"
        );
    }

    #[test]
    fn two_message_digest_values_are_refused() {
        let two_values = vec![
            AttributeValue::encode_from(&OctetString::new([1u8]).unwrap()).unwrap(),
            AttributeValue::encode_from(&OctetString::new([2u8]).unwrap()).unwrap(),
        ];
        assert_eq!(
            refusal(vec![
                content_type(oids::ID_DATA),
                attr(oids::ID_MESSAGE_DIGEST, two_values),
            ]),
            "SignerInfo.signedAttrs: the messageDigest attribute must have exactly one value (found 2)"
        );
    }
}
