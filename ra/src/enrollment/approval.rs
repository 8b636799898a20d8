//! What an approval keeps, read back: the e-Onay record (one type, written and read), the
//! SHA-256 digests it and the application carry, and the serial of the certificate that signed
//! a kept CMS approval.

use std::fmt;

use der::Decode as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use x509_cert::Certificate;

use ca_core::{Serial, UnixTime};

/// A SHA-256 digest; written as 64 lower-case hex digits, as the store and the evidence
/// records hold it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(Sha256::digest(bytes).into())
    }

    /// Reads 64 hex digits; `None` for anything else.
    pub fn parse_hex(s: &str) -> Option<Sha256Digest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Sha256Digest(out))
    }

    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Sha256Digest::parse_hex(&s).ok_or_else(|| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Str(&s),
                &"a SHA-256 digest (64 hex digits)",
            )
        })
    }
}

/// The only method an e-Onay record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum EOnayMethod {
    #[serde(rename = "e-onay")]
    EOnay,
}

/// The evidence an e-Onay approval keeps (JSON): the consent it relied on, the text approved
/// and when. The fields are in the order of their names, so the bytes are those the records
/// written before this type had (`serde_json`'s sorted map): the same record has the same
/// SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EOnayRecord {
    pub approval_text_sha256: Sha256Digest,
    #[serde(with = "unix_secs")]
    pub approved_at: UnixTime,
    pub consent_evidence_sha256: Sha256Digest,
    #[serde(with = "unix_secs")]
    pub consent_given_at: UnixTime,
    pub consent_reference: String,
    pub method: EOnayMethod,
}

impl EOnayRecord {
    /// The record as kept.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Reads a kept record; the error says which field does not read.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<EOnayRecord, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// A [`UnixTime`] as whole seconds (a JSON number).
mod unix_secs {
    use ca_core::UnixTime;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &UnixTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UnixTime, D::Error> {
        i64::deserialize(d).map(UnixTime::from_secs)
    }
}

/// The serial of the certificate that signed a kept CMS approval (a DER ContentInfo holding a
/// SignedData with one SignerInfo): the certificate of the SignedData's `certificates` that
/// the SignerInfo's sid names (`nesca_pkix::cms::carried_signer_certificate`). Nothing is
/// verified here: the signature, and that the certificate is the person's NES, were verified
/// when the approval was taken, over the text approved then.
pub(crate) fn signer_serial(cms: &[u8]) -> Result<Serial, String> {
    let der = nesca_pkix::cms::carried_signer_certificate(cms).map_err(|e| e.to_string())?;
    let cert = Certificate::from_der(&der).map_err(|e| format!("signer certificate: {e}"))?;
    Serial::from_der_bytes(cert.tbs_certificate.serial_number.as_bytes())
        .ok_or_else(|| "the signer's serial number is not one nesca issues".into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use der::asn1::ObjectIdentifier;
    use der::oid::AssociatedOid as _;
    use der::Encode as _;
    use x509_cert::ext::pkix::SubjectKeyIdentifier;

    /// The certificate's subjectKeyIdentifier, when it has one.
    fn subject_key_id(c: &Certificate) -> Option<Vec<u8>> {
        let ext = c
            .tbs_certificate
            .extensions
            .as_deref()?
            .iter()
            .find(|e| e.extn_id == SubjectKeyIdentifier::OID)?;
        SubjectKeyIdentifier::from_der(ext.extn_value.as_bytes())
            .ok()
            .map(|ski| ski.0.as_bytes().to_vec())
    }

    /// A DER TLV of `tag` holding `parts` one after the other.
    fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let body = parts.concat();
        let mut out = vec![tag];
        match body.len() {
            n @ 0..=0x7f => out.push(n as u8),
            n @ 0x80..=0xff => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend(body);
        out
    }

    /// How a CMS names its signer.
    pub(crate) enum Sid {
        IssuerAndSerial,
        KeyId,
    }

    /// A ContentInfo holding a SignedData whose one SignerInfo names `signer` (by `sid`),
    /// carrying `certificates`. The signature is not one: the reader never verifies.
    pub(crate) fn unsigned_cms(signer: &[u8], certificates: &[&[u8]], sid: Sid) -> Vec<u8> {
        let cert = Certificate::from_der(signer).unwrap();
        let tbs = &cert.tbs_certificate;
        let sid = match sid {
            Sid::IssuerAndSerial => tlv(
                0x30,
                &[
                    &tbs.issuer.to_der().unwrap(),
                    &tbs.serial_number.to_der().unwrap(),
                ],
            ),
            Sid::KeyId => tlv(0x80, &[&subject_key_id(&cert).expect("a key identifier")]),
        };
        let oid = |s: &str| ObjectIdentifier::new_unwrap(s).to_der().unwrap();
        let algorithm = |s: &str| tlv(0x30, &[&oid(s)]);
        let signer_info = tlv(
            0x30,
            &[
                &[0x02, 0x01, 0x01],
                &sid,
                &algorithm("2.16.840.1.101.3.4.2.1"),
                &algorithm("1.2.840.10045.4.3.2"),
                &tlv(0x04, &[b"not a signature"]),
            ],
        );
        let certificates = certificates.concat();
        let signed_data = tlv(
            0x30,
            &[
                &[0x02, 0x01, 0x01],
                &tlv(0x31, &[&algorithm("2.16.840.1.101.3.4.2.1")]),
                &tlv(0x30, &[&oid("1.2.840.113549.1.7.1")]),
                &tlv(0xa0, &[&certificates]),
                &tlv(0x31, &[&signer_info]),
            ],
        );
        tlv(
            0x30,
            &[&oid("1.2.840.113549.1.7.2"), &tlv(0xa0, &[&signed_data])],
        )
    }

    #[test]
    fn digests_read_and_write_as_hex() {
        let d = Sha256Digest::of(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256Digest::parse_hex(&d.to_hex()), Some(d));
        assert_eq!(Sha256Digest::parse_hex("ba78"), None);
        assert_eq!(Sha256Digest::parse_hex(&"zz".repeat(32)), None);
    }

    /// A record written before this type (`json!`) reads; this type writes the same bytes.
    #[test]
    fn e_onay_records_keep_their_shape() {
        let old = serde_json::json!({
            "method": "e-onay",
            "consent_reference": "EDV-2026-000123",
            "consent_evidence_sha256": Sha256Digest::of(b"consent").to_hex(),
            "consent_given_at": 1_700_000_000,
            "approval_text_sha256": Sha256Digest::of(b"text").to_hex(),
            "approved_at": 1_700_086_400,
        })
        .to_string()
        .into_bytes();
        let record = EOnayRecord::from_bytes(&old).unwrap();
        assert_eq!(
            record,
            EOnayRecord {
                approval_text_sha256: Sha256Digest::of(b"text"),
                approved_at: UnixTime::from_secs(1_700_086_400),
                consent_evidence_sha256: Sha256Digest::of(b"consent"),
                consent_given_at: UnixTime::from_secs(1_700_000_000),
                consent_reference: "EDV-2026-000123".into(),
                method: EOnayMethod::EOnay,
            }
        );
        assert_eq!(record.to_bytes().unwrap(), old);
    }

    #[test]
    fn a_record_that_does_not_read_names_its_field() {
        let text = Sha256Digest::of(b"text").to_hex();
        let err = |json: serde_json::Value| {
            EOnayRecord::from_bytes(json.to_string().as_bytes())
                .unwrap_err()
                .to_string()
        };
        let missing = err(serde_json::json!({
            "method": "e-onay", "consent_reference": "x", "consent_evidence_sha256": text,
            "approval_text_sha256": text, "approved_at": 1,
        }));
        assert!(missing.contains("consent_given_at"), "{missing}");
        let bad_digest = err(serde_json::json!({
            "method": "e-onay", "consent_reference": "x", "consent_evidence_sha256": "ab",
            "consent_given_at": 1, "approval_text_sha256": text, "approved_at": 1,
        }));
        assert!(bad_digest.contains("64 hex digits"), "{bad_digest}");
        let other_method = err(serde_json::json!({
            "method": "wet", "consent_reference": "x", "consent_evidence_sha256": text,
            "consent_given_at": 1, "approval_text_sha256": text, "approved_at": 1,
        }));
        assert!(other_method.contains("e-onay"), "{other_method}");
    }

    #[test]
    fn the_signer_is_the_certificate_the_sid_names() {
        let f = ca_core::testkit::fixture();
        let issue = || crate::testkit::issue_nes_for_days(&f, Some(365));
        let (signer, other) = (issue(), issue());
        let both: [&[u8]; 2] = [&other.cert_der, &signer.cert_der];
        for sid in [Sid::IssuerAndSerial, Sid::KeyId] {
            let cms = unsigned_cms(&signer.cert_der, &both, sid);
            assert_eq!(signer_serial(&cms), Ok(signer.serial));
        }
        // The certificate named is not carried.
        let lost = unsigned_cms(&signer.cert_der, &[&other.cert_der], Sid::IssuerAndSerial);
        let err = signer_serial(&lost).unwrap_err();
        assert!(
            err.contains("no certificate in SignedData.certificates matches"),
            "{err}"
        );
        let err = signer_serial(b"not a CMS").unwrap_err();
        assert!(err.contains("ContentInfo"), "{err}");
    }
}
