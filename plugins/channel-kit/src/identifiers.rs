//! The identifiers the protocol carries as text: T.C. Kimlik No, certificate serials (hex), KDB
//! ids and SHA-256 digests (hex).

/// Whether `s` is a T.C. Kimlik No (docs/STANDARDS.md "T.C. Kimlik No"). The check is
/// [`nesca_identity::Tckn`]'s, the one the CA applies, so a channel never accepts a number that
/// the CA would then refuse, nor the reverse; the callers keep their own error codes.
pub fn is_valid_tckn(s: &str) -> bool {
    nesca_identity::Tckn::parse(s).is_ok()
}

/// A certificate serial as the protocol writes it: 1 to 40 hex digits (at most 20 octets),
/// returned in lower case. `None` when `s` is not one.
pub fn normalize_serial(s: &str) -> Option<String> {
    let ok = !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| s.to_ascii_lowercase())
}

/// Whether two serials in hex name the same number: case and leading zeros do not matter
/// (`"0A1B"` and `"a1b"` are one serial).
pub fn same_serial(a: &str, b: &str) -> bool {
    let key = |s: &str| s.trim_start_matches('0').to_ascii_lowercase();
    key(a) == key(b)
}

/// Whether `s` is a SHA-256 digest in hex: exactly 64 hex digits, either case.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `s` is a KDB id: 1 to 64 of `A-Z a-z 0-9 . _ : -`.
pub fn is_valid_kdb_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tckn_check_digits() {
        for ok in ["10000000146", "17291716060"] {
            assert!(is_valid_tckn(ok), "{ok}");
        }
        for bad in [
            "17291716050",
            "01234567890",
            "1000000014",
            "100000001460",
            "1000000014a",
            "",
        ] {
            assert!(!is_valid_tckn(bad), "{bad}");
        }
    }

    #[test]
    fn serials_are_hex_up_to_20_octets() {
        assert_eq!(normalize_serial("0A1b").as_deref(), Some("0a1b"));
        assert_eq!(
            normalize_serial(&"f".repeat(40)).as_deref(),
            Some(&*"f".repeat(40))
        );
        assert_eq!(normalize_serial(&"f".repeat(41)), None);
        assert_eq!(normalize_serial(""), None);
        assert_eq!(normalize_serial("0x1a"), None);
        assert!(same_serial("0A1B", "a1b"));
        assert!(!same_serial("a1b", "a1c"));
    }

    #[test]
    fn digests_and_kdb_ids() {
        assert!(is_sha256_hex(&"aB".repeat(32)));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
        assert!(is_valid_kdb_id("kdhs-01:2026.01_01"));
        assert!(!is_valid_kdb_id(""));
        assert!(!is_valid_kdb_id(&"a".repeat(65)));
        assert!(!is_valid_kdb_id("a b"));
    }
}
