//! Certificate serial numbers (RFC 5280 §4.1.2.2) and issuer identifiers.

use std::fmt;

use rand::RngCore;

use crate::error::CaTypesError;

/// A certificate serial number as nesca issues it: 20 octets from the OS CSPRNG, the first
/// octet in 0x01..=0x7f so the INTEGER is positive and always exactly 20 octets long
/// (159 bits of entropy at least, well over the 64 bits the rules ask).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial([u8; Serial::LEN]);

impl Serial {
    /// Octets of every serial nesca issues.
    pub const LEN: usize = 20;

    /// A fresh random serial from the operating system's CSPRNG.
    pub fn random() -> Serial {
        let mut b = [0u8; Self::LEN];
        loop {
            rand::rngs::OsRng.fill_bytes(&mut b);
            b[0] &= 0x7f;
            if b[0] != 0 {
                return Serial(b);
            }
        }
    }

    /// Parses the hexadecimal form (case-insensitive, `:` separators allowed, leading zeros
    /// optional as OpenSSL prints them). A refusal is [`CaTypesError::Invalid`] for the field
    /// `serial`.
    pub fn parse_hex(s: &str) -> Result<Serial, CaTypesError> {
        let refuse = |rule: String| CaTypesError::invalid("serial", rule);
        // The store's own form (40 hex digits) decodes without the general path's copies:
        // a million-entry CRL reads a million of them.
        let mut out = [0u8; Self::LEN];
        if s.len() == Self::LEN * 2 && hex::decode_to_slice(s, &mut out).is_ok() {
            return Serial::positive(out);
        }
        let clean: String = s.trim().chars().filter(|c| *c != ':').collect();
        let clean = clean.strip_prefix("0x").unwrap_or(&clean);
        if clean.is_empty() || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(refuse("must be hexadecimal".into()));
        }
        let trimmed = clean.trim_start_matches('0');
        if trimmed.len() > Self::LEN * 2 {
            return Err(refuse(format!("longer than {} octets", Self::LEN)));
        }
        let padded = format!("{trimmed:0>40}");
        let mut out = [0u8; Self::LEN];
        hex::decode_to_slice(&padded, &mut out).map_err(|e| refuse(e.to_string()))?;
        Serial::positive(out)
    }

    /// Only serials that encode as a positive INTEGER of at most 20 octets (RFC 5280
    /// §4.1.2.2): one with the top bit set would need a 21st octet.
    fn positive(octets: [u8; Self::LEN]) -> Result<Serial, CaTypesError> {
        if octets[0] & 0x80 != 0 {
            return Err(CaTypesError::invalid(
                "serial",
                format!("longer than {} octets as a positive integer", Self::LEN),
            ));
        }
        Ok(Serial(octets))
    }

    /// From the INTEGER octets of a certificate (leading 0x00 sign octet allowed).
    pub fn from_der_bytes(bytes: &[u8]) -> Option<Serial> {
        // A leading 0x00 is the sign octet of a positive value whose top bit is set; without
        // it, a set top bit means a negative INTEGER.
        let (bytes, signed) = match bytes {
            [0, rest @ ..] => (rest, true),
            b => (b, false),
        };
        let top_bit = bytes.first().is_some_and(|b| b & 0x80 != 0);
        if bytes.len() > Self::LEN || (top_bit && !signed) || (top_bit && bytes.len() == Self::LEN)
        {
            return None;
        }
        let mut out = [0u8; Self::LEN];
        out[Self::LEN - bytes.len()..].copy_from_slice(bytes);
        Some(Serial(out))
    }

    /// The INTEGER content octets (minimal, positive).
    pub fn to_der_bytes(&self) -> Vec<u8> {
        let first = self.0.iter().position(|b| *b != 0).unwrap_or(Self::LEN - 1);
        let mut v = Vec::with_capacity(Self::LEN + 1);
        if self.0[first] & 0x80 != 0 {
            v.push(0);
        }
        v.extend_from_slice(&self.0[first..]);
        v
    }

    /// Lower-case hex, 40 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

/// The name of a CA inside nesca: used in URLs (`/crl/{id}.crl`) and as the issuer key in
/// the store. Lower-case ASCII letters, digits and `-`, 1 to 32 characters, not ending in
/// `-delta` (the CA `x` publishes its delta CRL as `x-delta.crl`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssuerId(String);

impl IssuerId {
    /// Checks the rules above. A refusal is [`CaTypesError::Invalid`] for the field `issuer`.
    pub fn parse(s: &str) -> Result<IssuerId, CaTypesError> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        if !ok {
            return Err(CaTypesError::invalid(
                "issuer",
                format!(
                    "\"{s}\" must be 1 to 32 lower-case letters, digits or '-', not starting with '-'"
                ),
            ));
        }
        if s.ends_with("-delta") {
            return Err(CaTypesError::invalid(
                "issuer",
                format!(
                    "\"{s}\" must not end in -delta (its CRL file would be another CA's delta CRL)"
                ),
            ));
        }
        Ok(IssuerId(s.to_string()))
    }

    /// The id as written in URLs and the store.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IssuerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IssuerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuerId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_and_full_length() {
        for _ in 0..1000 {
            let s = Serial::random();
            let der = s.to_der_bytes();
            assert_eq!(der.len(), 20);
            assert!(der[0] >= 1 && der[0] <= 0x7f);
        }
        assert_ne!(Serial::random(), Serial::random());
    }

    #[test]
    fn hex_round_trips_in_openssl_spellings() {
        let s = Serial::random();
        assert_eq!(Serial::parse_hex(&s.to_hex()).unwrap(), s);
        assert_eq!(Serial::parse_hex(&s.to_hex().to_uppercase()).unwrap(), s);
        let short = Serial::parse_hex("0A:bc").unwrap();
        assert_eq!(short.to_der_bytes(), vec![0x0a, 0xbc]);
        assert_eq!(Serial::from_der_bytes(&[0x0a, 0xbc]).unwrap(), short);
        // 128 is 00 80 in DER: the sign octet makes it positive.
        assert_eq!(
            Serial::from_der_bytes(&[0x00, 0x80])
                .unwrap()
                .to_der_bytes(),
            vec![0x00, 0x80]
        );
        assert_eq!(Serial::from_der_bytes(&[0x80]), None); // negative
        let mut big = vec![0x00, 0x80];
        big.extend([0u8; 19]);
        assert_eq!(Serial::from_der_bytes(&big), None); // 20 octets of value with the top bit set
        assert!(Serial::parse_hex(&"ff".repeat(20)).is_err());
        assert!(Serial::parse_hex(&format!("7f{}", "ff".repeat(19))).is_ok());
        assert!(Serial::parse_hex("xyz").is_err());
        assert!(Serial::parse_hex(&"1".repeat(41)).is_err());
    }

    #[test]
    fn refusals_name_the_field_and_keep_the_rule() {
        let e = Serial::parse_hex("xyz").unwrap_err();
        assert_eq!(e.to_string(), "serial: must be hexadecimal");
        assert_eq!(e.rule(), "must be hexadecimal");
        let e = Serial::parse_hex(&"ff".repeat(20)).unwrap_err();
        assert_eq!(e.rule(), "longer than 20 octets as a positive integer");
        let e = IssuerId::parse("x-delta").unwrap_err();
        assert_eq!(e.field(), "issuer");
        assert!(e.rule().contains("must not end in -delta"), "{e}");
    }

    #[test]
    fn issuer_ids_are_url_safe() {
        assert!(IssuerId::parse("nes-ca").is_ok());
        assert!(IssuerId::parse("NES").is_err());
        assert!(IssuerId::parse("a/b").is_err());
        assert!(IssuerId::parse("").is_err());
    }
}
