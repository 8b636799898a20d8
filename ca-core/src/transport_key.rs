//! Trusted transport keys: the RSA keys of the card-personalisation system and of KEC devices
//! that an operator registered (by their X.509 certificate), and the only keys nesca wraps a
//! subscriber's card key for. Whether a key may be wrapped for now is the registration
//! authority's decision (`ra::transport_keys`); the store keeps the registrations.

use sha2::{Digest, Sha256};

use crate::error::{CaError, Result};
use crate::UnixTime;

/// A transport key's id: the lower-case hex SHA-256 of its certificate's
/// SubjectPublicKeyInfo (DER), 64 characters. It names the key, not one certificate of it:
/// the same key certified again has the same id, so a withdrawn key stays withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransportKeyId(String);

impl TransportKeyId {
    /// The id of a SubjectPublicKeyInfo (DER).
    pub fn of_spki(spki_der: &[u8]) -> TransportKeyId {
        TransportKeyId(hex::encode(Sha256::digest(spki_der)))
    }

    /// Parses an id: 64 lower-case hex digits. `field` names where it came from.
    pub fn parse(field: &'static str, text: &str) -> Result<TransportKeyId> {
        let ok = text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(CaError::invalid(
                field,
                "a transport key id is 64 lower-case hex digits (SHA-256 of the certificate's SubjectPublicKeyInfo)",
            ));
        }
        Ok(TransportKeyId(text.to_owned()))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TransportKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for TransportKeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for TransportKeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        TransportKeyId::parse("transport_key", &text).map_err(serde::de::Error::custom)
    }
}

/// A registered transport key: its certificate as the operator gave it, what nesca read from
/// it, and whether it was withdrawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportKeyRecord {
    /// SHA-256 of [`Self::spki_der`].
    pub id: TransportKeyId,
    /// The operator's name for it (the personalisation line, the KEC device).
    pub name: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its SubjectPublicKeyInfo, DER: the key wrapped for.
    pub spki_der: Vec<u8>,
    /// The certificate's validity.
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    /// When it was registered.
    pub registered_at: UnixTime,
    /// When an operator withdrew it; a withdrawn key is never wrapped for again.
    pub withdrawn_at: Option<UnixTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_spki_digest_and_parse_only_as_lower_hex() {
        let id = TransportKeyId::of_spki(b"abc");
        assert_eq!(
            id.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(TransportKeyId::parse("id", id.as_str()).unwrap(), id);
        for bad in [
            "",
            "ba78",
            &id.as_str().to_uppercase(),
            &format!("{id}0"),
            &"g".repeat(64),
        ] {
            let e = TransportKeyId::parse("id", bad).unwrap_err();
            assert!(
                e.to_string().starts_with("id: a transport key id is 64"),
                "{e}"
            );
        }
    }
}
