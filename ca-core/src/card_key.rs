//! The subscriber key generated in the HSM for a card, as nesca keeps it: wrapped for the card's
//! transport key, in one typed record with one encoding, whichever path produced it (an
//! identity-card channel or institutional production). The store keeps it with the
//! application that asked for it, so a replay or a card package can hand it over: the HSM's
//! copies no longer exist.

use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::{CaError, Result};
use crate::transport_key::TransportKeyId;

/// How the two layers of a [`WrappedCardKey`] were wrapped (the names partners and card
/// personalisation systems see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WrapSchemeName {
    /// RSA-OAEP with SHA-256 and MGF1-SHA-256 for the AES key; AES-KWP (RFC 5649) for the key.
    #[serde(rename = "rsa-oaep-sha256+aes-kwp")]
    RsaOaepSha256AesKwp,
    /// RSA-OAEP with SHA-1 and MGF1-SHA-1 for the AES key; AES-KWP for the key.
    #[serde(rename = "rsa-oaep-sha1+aes-kwp")]
    RsaOaepSha1AesKwp,
}

impl WrapSchemeName {
    /// The scheme's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WrapSchemeName::RsaOaepSha256AesKwp => "rsa-oaep-sha256+aes-kwp",
            WrapSchemeName::RsaOaepSha1AesKwp => "rsa-oaep-sha1+aes-kwp",
        }
    }
}

impl From<hsm::WrapScheme> for WrapSchemeName {
    fn from(s: hsm::WrapScheme) -> Self {
        match s {
            hsm::WrapScheme::RsaOaepSha1AesKwp => WrapSchemeName::RsaOaepSha1AesKwp,
            _ => WrapSchemeName::RsaOaepSha256AesKwp,
        }
    }
}

/// A card key wrapped for its card: the AES-256 key under RSA-OAEP with the card's transport
/// key, and the PKCS#8 private key under AES-KWP with that AES key. The HSM's copies no longer
/// exist, so this record is what a replay or a card package hands over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedCardKey {
    /// How it was wrapped.
    pub scheme: WrapSchemeName,
    /// The AES-256 key under RSA-OAEP (base64 in the record).
    #[serde(with = "b64")]
    pub wrapped_key: Vec<u8>,
    /// The PKCS#8 private key under AES-KWP (base64 in the record).
    #[serde(with = "b64")]
    pub wrapped_private_key: Vec<u8>,
    /// The registered transport key it was wrapped for (`ra::transport_keys`). Absent only in
    /// records written before transport keys were registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_key: Option<TransportKeyId>,
}

impl WrappedCardKey {
    /// The record of a key the HSM generated and wrapped for the registered transport key
    /// `transport_key`.
    pub fn from_hsm(card: &hsm::WrappedCardKey, transport_key: TransportKeyId) -> WrappedCardKey {
        WrappedCardKey {
            scheme: card.mechanism.into(),
            wrapped_key: card.wrapped_key.clone(),
            wrapped_private_key: card.wrapped_private_key.clone(),
            transport_key: Some(transport_key),
        }
    }

    /// The record's one stored encoding (JSON: `scheme`, and the two keys in standard base64).
    pub fn to_record(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings always encodes")
    }

    /// Reads a stored record back.
    pub fn from_record(text: &str) -> Result<WrappedCardKey> {
        serde_json::from_str(text).map_err(|e| {
            CaError::invalid(
                "wrapped_key",
                format!("the recorded wrapped key does not decode: {e}"),
            )
        })
    }
}

mod b64 {
    use super::STANDARD;
    use base64::Engine as _;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| D::Error::custom(format_args!("invalid base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_reads_what_both_paths_wrote_before() {
        let key = WrappedCardKey {
            scheme: WrapSchemeName::RsaOaepSha1AesKwp,
            wrapped_key: vec![1, 2, 3],
            wrapped_private_key: vec![4, 5, 6, 7],
            transport_key: None,
        };
        let text = key.to_record();
        assert_eq!(
            text,
            r#"{"scheme":"rsa-oaep-sha1+aes-kwp","wrapped_key":"AQID","wrapped_private_key":"BAUGBw=="}"#
        );
        assert_eq!(WrappedCardKey::from_record(&text).unwrap(), key);
        // What the channel host (serde of the plugin API's WrappedKey) and production
        // (json! with base64) recorded before: the same shape, in either key order.
        let production = r#"{"wrapped_key":"AQID","scheme":"rsa-oaep-sha1+aes-kwp","wrapped_private_key":"BAUGBw=="}"#;
        assert_eq!(WrappedCardKey::from_record(production).unwrap(), key);

        // Now every record names the transport key it was wrapped for.
        let id = TransportKeyId::of_spki(b"spki");
        let named = WrappedCardKey {
            transport_key: Some(id.clone()),
            ..key
        };
        let text = named.to_record();
        assert!(
            text.ends_with(&format!(r#","transport_key":"{id}"}}"#)),
            "{text}"
        );
        assert_eq!(WrappedCardKey::from_record(&text).unwrap(), named);
    }

    #[test]
    fn a_damaged_record_is_refused_by_field() {
        for bad in [
            "",
            "{}",
            r#"{"scheme":"rot13","wrapped_key":"AQID","wrapped_private_key":"AQID"}"#,
            r#"{"scheme":"rsa-oaep-sha1+aes-kwp","wrapped_key":"%%","wrapped_private_key":"AQID"}"#,
            r#"{"scheme":"rsa-oaep-sha1+aes-kwp","wrapped_key":"AQID","wrapped_private_key":"AQID","transport_key":"AB"}"#,
        ] {
            let e = WrappedCardKey::from_record(bad).unwrap_err();
            assert!(e.to_string().starts_with("wrapped_key: "), "{e}");
        }
    }
}
