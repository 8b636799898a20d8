//! The T.C. Kimlik No (Turkish national identity number), as a type that can only hold a
//! valid one (docs/STANDARDS.md "T.C. Kimlik No").

use std::fmt;
use std::str::FromStr;

/// A checked T.C. Kimlik No: 11 ASCII digits, the first not 0, digits 10 and 11 matching
/// the checksum rules.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tckn([u8; 11]);

/// Why a string is not a T.C. Kimlik No.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcknError {
    #[error("must be exactly 11 digits (got {0} characters)")]
    Length(usize),
    #[error("must contain digits only")]
    NotDigits,
    #[error("must not begin with 0")]
    LeadingZero,
    #[error("checksum digit 10 is wrong (not a valid T.C. Kimlik No)")]
    Digit10,
    #[error("checksum digit 11 is wrong (not a valid T.C. Kimlik No)")]
    Digit11,
}

impl Tckn {
    /// Parses and checks a T.C. Kimlik No.
    pub fn parse(s: &str) -> Result<Tckn, TcknError> {
        let bytes = s.as_bytes();
        if bytes.len() != 11 {
            return Err(TcknError::Length(s.chars().count()));
        }
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(TcknError::NotDigits);
        }
        let mut d = [0u8; 11];
        for (i, b) in bytes.iter().enumerate() {
            d[i] = b - b'0';
        }
        if d[0] == 0 {
            return Err(TcknError::LeadingZero);
        }
        let odd: i32 = [0, 2, 4, 6, 8].iter().map(|&i| i32::from(d[i])).sum();
        let even: i32 = [1, 3, 5, 7].iter().map(|&i| i32::from(d[i])).sum();
        // The difference can be negative: rem_euclid keeps the result in 0..10.
        if (7 * odd - even).rem_euclid(10) != i32::from(d[9]) {
            return Err(TcknError::Digit10);
        }
        let sum: u32 = d[..10].iter().map(|&x| u32::from(x)).sum();
        if sum % 10 != u32::from(d[10]) {
            return Err(TcknError::Digit11);
        }
        let mut out = [0u8; 11];
        out.copy_from_slice(bytes);
        Ok(Tckn(out))
    }

    /// The 11 digits.
    pub fn as_str(&self) -> &str {
        // Invariant: only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl FromStr for Tckn {
    type Err = TcknError;
    fn from_str(s: &str) -> Result<Self, TcknError> {
        Tckn::parse(s)
    }
}

impl fmt::Display for Tckn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Tckn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tckn({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_valid_numbers() {
        for s in ["10000000146", "17291716060"] {
            assert_eq!(Tckn::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn refuses_each_rule() {
        assert_eq!(Tckn::parse("17291716050"), Err(TcknError::Digit10));
        assert_eq!(Tckn::parse("01234567890"), Err(TcknError::LeadingZero));
        assert_eq!(Tckn::parse("1234"), Err(TcknError::Length(4)));
        assert_eq!(Tckn::parse("1000000014a"), Err(TcknError::NotDigits));
        assert_eq!(Tckn::parse("10000000147"), Err(TcknError::Digit11));
        // A full-width digit is 11 characters but not 11 ASCII digits.
        assert_eq!(Tckn::parse("１0000000146"), Err(TcknError::Length(11)));
    }

    #[test]
    fn negative_difference_uses_euclidean_remainder() {
        // d1..d9 = 1,9,0,9,0,9,0,9,0: 7*1 - 36 = -29 → rem_euclid 1 (a plain % gives -9).
        let base = [1u8, 9, 0, 9, 0, 9, 0, 9, 0];
        let d10 = (7 - 36i32).rem_euclid(10) as u8; // 7·d1 − (9+9+9+9)
        let d11 = (base.iter().map(|&x| x as u32).sum::<u32>() + d10 as u32) % 10;
        let s: String = base
            .iter()
            .chain([d10, d11 as u8].iter())
            .map(|d| (b'0' + d) as char)
            .collect();
        assert!(Tckn::parse(&s).is_ok(), "{s}");
    }
}
