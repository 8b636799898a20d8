//! Splitting ContentInfo (RFC 5652 §3), SignedData (§5.1) and SignerInfo (§5.3) into their
//! fields as they were encoded.
//!
//! Why not decode the `cms` crate's structs: `der` sorts every SET OF it decodes, so a
//! re-encoded signedAttrs would differ from the signed bytes whenever the signer did not sort
//! them, and `certificates` would lose its order. Here the fields are sliced out of the input;
//! only the leaves are decoded with typed structs.

use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Encode, Header, Length, Reader, SliceReader, Tag, TagNumber, Tagged};
use spki::AlgorithmIdentifierOwned;

use crate::PkixError;

/// `[0]` constructed: ContentInfo.content, SignedData.certificates, SignerInfo.signedAttrs.
const CONTEXT_0: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber::N0,
};
/// `[1]` constructed: SignedData.crls, SignerInfo.unsignedAttrs.
const CONTEXT_1: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber::N1,
};

/// One element as encoded: its tag, its value octets and its whole TLV.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tlv<'a> {
    pub tag: Tag,
    pub value: &'a [u8],
    pub der: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Reads the one TLV that `bytes` must be, with tag `tag`.
    fn parse(field: &'static str, bytes: &'a [u8], tag: Tag) -> Result<Self, PkixError> {
        let any = AnyRef::from_der(bytes).map_err(PkixError::der(field))?;
        if any.tag() != tag {
            return Err(unexpected(field, tag, any.tag()));
        }
        Ok(Tlv {
            tag: any.tag(),
            value: any.value(),
            der: bytes,
        })
    }

    /// The elements of this constructed value, in order.
    fn elements(&self, field: &'static str) -> Result<Vec<Tlv<'a>>, PkixError> {
        let mut reader = SliceReader::new(self.value).map_err(PkixError::der(field))?;
        let mut out = Vec::new();
        while !reader.is_finished() {
            let der = reader.tlv_bytes().map_err(PkixError::der(field))?;
            let any = AnyRef::from_der(der).map_err(PkixError::der(field))?;
            out.push(Tlv {
                tag: any.tag(),
                value: any.value(),
                der,
            });
        }
        Ok(out)
    }

    /// A cursor over this SEQUENCE's fields.
    fn fields(&self, structure: &'static str) -> Result<Fields<'a>, PkixError> {
        Ok(Fields {
            structure,
            items: self.elements(structure)?.into_iter().peekable(),
        })
    }
}

fn unexpected(field: &'static str, expected: Tag, found: Tag) -> PkixError {
    PkixError::Malformed {
        field,
        detail: format!("expected {expected}, found {found}"),
    }
}

/// Reads a SEQUENCE's fields in order, as its ASN.1 definition lists them.
struct Fields<'a> {
    structure: &'static str,
    items: std::iter::Peekable<std::vec::IntoIter<Tlv<'a>>>,
}

impl<'a> Fields<'a> {
    /// The next field, whatever its tag (a CHOICE).
    fn any(&mut self, field: &'static str) -> Result<Tlv<'a>, PkixError> {
        self.items.next().ok_or(PkixError::Malformed {
            field,
            detail: "required, but absent".into(),
        })
    }

    /// The next field, which must have tag `tag`.
    fn required(&mut self, field: &'static str, tag: Tag) -> Result<Tlv<'a>, PkixError> {
        let tlv = self.any(field)?;
        if tlv.tag != tag {
            return Err(unexpected(field, tag, tlv.tag));
        }
        Ok(tlv)
    }

    /// The next field when it has tag `tag` (an OPTIONAL field).
    fn optional(&mut self, tag: Tag) -> Option<Tlv<'a>> {
        self.items.next_if(|t| t.tag == tag)
    }

    /// Nothing may follow the last field.
    fn end(mut self) -> Result<(), PkixError> {
        match self.items.next() {
            None => Ok(()),
            Some(t) => Err(PkixError::Malformed {
                field: self.structure,
                detail: format!("unexpected {} after the last field", t.tag),
            }),
        }
    }
}

/// ContentInfo (RFC 5652 §3): the content type and the content's TLV.
pub(super) struct ContentInfo<'a> {
    pub content_type: ObjectIdentifier,
    pub content: &'a [u8],
}

pub(super) fn content_info(bytes: &[u8]) -> Result<ContentInfo<'_>, PkixError> {
    let outer = Tlv::parse("ContentInfo", bytes, Tag::Sequence)?;
    let mut fields = outer.fields("ContentInfo")?;
    let content_type = fields.required("ContentInfo.contentType", Tag::ObjectIdentifier)?;
    let content_type = ObjectIdentifier::from_der(content_type.der)
        .map_err(PkixError::der("ContentInfo.contentType"))?;
    // content is [0] EXPLICIT: the tag wraps exactly one TLV.
    let content = fields.required("ContentInfo.content", CONTEXT_0)?;
    fields.end()?;
    Ok(ContentInfo {
        content_type,
        content: content.value,
    })
}

/// SignedData (RFC 5652 §5.1), the fields this verifier uses.
pub(super) struct SignedData<'a> {
    pub encap_content_info: EncapsulatedContentInfo,
    /// The `certificates` that are X.509 Certificates (CertificateChoices `certificate`), as
    /// encoded, in order; attribute certificates and `other` are not certificates to sign with.
    pub certificates: Vec<&'a [u8]>,
    pub signer_infos: Vec<&'a [u8]>,
}

pub(super) fn signed_data(bytes: &[u8]) -> Result<SignedData<'_>, PkixError> {
    let outer = Tlv::parse("SignedData", bytes, Tag::Sequence)?;
    let mut fields = outer.fields("SignedData")?;
    // The version follows from the contents (RFC 5652 §5.1); nothing here depends on it.
    fields.required("SignedData.version", Tag::Integer)?;
    // Each SignerInfo names its own digestAlgorithm; this set is only a hint for one-pass
    // processing.
    fields.required("SignedData.digestAlgorithms", Tag::Set)?;
    let eci = fields.required("SignedData.encapContentInfo", Tag::Sequence)?;
    let encap_content_info = EncapsulatedContentInfo::from_der(eci.der)
        .map_err(PkixError::der("SignedData.encapContentInfo"))?;
    let certificates = match fields.optional(CONTEXT_0) {
        None => Vec::new(),
        Some(set) => set
            .elements("SignedData.certificates")?
            .into_iter()
            .filter(|c| c.tag == Tag::Sequence)
            .map(|c| c.der)
            .collect(),
    };
    // Revocation is the caller's business (it has the CRLs / OCSP it trusts).
    fields.optional(CONTEXT_1);
    let signer_infos = fields
        .required("signerInfos", Tag::Set)?
        .elements("signerInfos")?
        .into_iter()
        .map(|s| s.der)
        .collect();
    fields.end()?;
    Ok(SignedData {
        encap_content_info,
        certificates,
        signer_infos,
    })
}

/// SignerInfo (RFC 5652 §5.3), the fields this verifier uses.
pub(super) struct SignerInfo<'a> {
    pub sid: SignerIdentifier,
    pub digest_algorithm: AlgorithmIdentifierOwned,
    /// signedAttrs as RFC 5652 §5.4 has them signed: the original content octets under the
    /// EXPLICIT SET OF tag (0x31) instead of the `[0] IMPLICIT` tag they travel under.
    pub signed_attrs: Option<Vec<u8>>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: &'a [u8],
}

pub(super) fn signer_info(bytes: &[u8]) -> Result<SignerInfo<'_>, PkixError> {
    let outer = Tlv::parse("SignerInfo", bytes, Tag::Sequence)?;
    let mut fields = outer.fields("SignerInfo")?;
    // 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier; the sid itself says which.
    fields.required("SignerInfo.version", Tag::Integer)?;
    let sid = fields.any("SignerInfo.sid")?;
    let sid = SignerIdentifier::from_der(sid.der).map_err(PkixError::der("SignerInfo.sid"))?;
    let digest_algorithm = fields.required("SignerInfo.digestAlgorithm", Tag::Sequence)?;
    let digest_algorithm = AlgorithmIdentifierOwned::from_der(digest_algorithm.der)
        .map_err(PkixError::der("SignerInfo.digestAlgorithm"))?;
    let signed_attrs = fields
        .optional(CONTEXT_0)
        .map(|attrs| as_set_of(attrs.value))
        .transpose()?;
    let signature_algorithm = fields.required("SignerInfo.signatureAlgorithm", Tag::Sequence)?;
    let signature_algorithm = AlgorithmIdentifierOwned::from_der(signature_algorithm.der)
        .map_err(PkixError::der("SignerInfo.signatureAlgorithm"))?;
    let signature = fields.required("SignerInfo.signature", Tag::OctetString)?;
    // Unsigned attributes (e.g. a timestamp) are not covered by the signature.
    fields.optional(CONTEXT_1);
    fields.end()?;
    Ok(SignerInfo {
        sid,
        digest_algorithm,
        signed_attrs,
        signature_algorithm,
        signature: signature.value,
    })
}

/// `value` under a SET header. DER lengths have one encoding, so only the tag octet differs
/// from the input.
fn as_set_of(value: &[u8]) -> Result<Vec<u8>, PkixError> {
    let field = "SignerInfo.signedAttrs";
    let length = Length::try_from(value.len()).map_err(PkixError::der(field))?;
    let header = Header::new(Tag::Set, length).map_err(PkixError::der(field))?;
    let mut out = Vec::with_capacity(value.len() + 8);
    header
        .encode_to_vec(&mut out)
        .map_err(PkixError::der(field))?;
    out.extend_from_slice(value);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_info_splits_type_and_content() {
        // SEQUENCE { OID 1.2.840.113549.1.7.1, [0] { OCTET STRING "hi" } }
        let der = [
            0x30, 0x11, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0,
            0x04, 0x04, 0x02, b'h', b'i',
        ];
        let ci = content_info(&der).unwrap();
        assert_eq!(ci.content_type, crate::oids::ID_DATA);
        assert_eq!(ci.content, &[0x04, 0x02, b'h', b'i']);
    }

    #[test]
    fn trailing_field_is_refused() {
        let der = [
            0x30, 0x13, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0,
            0x04, 0x04, 0x02, b'h', b'i', 0x05, 0x00,
        ];
        let e = content_info(&der).err().unwrap();
        assert_eq!(
            e.to_string(),
            "ContentInfo: malformed DER: unexpected NULL after the last field"
        );
    }

    #[test]
    fn missing_field_is_named() {
        let der = [
            0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
        ];
        let e = content_info(&der).err().unwrap();
        assert_eq!(
            e.to_string(),
            "ContentInfo.content: malformed DER: required, but absent"
        );
    }

    #[test]
    fn set_of_retagging_keeps_the_content_octets() {
        let long = vec![0xab; 300];
        let out = as_set_of(&long).unwrap();
        assert_eq!(&out[..4], &[0x31, 0x82, 0x01, 0x2c]);
        assert_eq!(&out[4..], &long[..]);
        assert_eq!(as_set_of(&[]).unwrap(), vec![0x31, 0x00]);
    }
}
