//! Command-line and API strings: T.C. Kimlik No, names and serials. Whatever they hold, the
//! parsers answer with a value or an error; a value they accept must round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(t) = ca_core::Tckn::parse(s) {
        assert_eq!(t.as_str(), s);
    }
    if let Ok(n) = ca_core::PersonName::parse("given-name", s) {
        assert_eq!(ca_core::PersonName::parse("given-name", n.as_str()).map(|m| m.as_str().to_string()).ok(), Some(n.as_str().to_string()));
    }
    if let Ok(serial) = ca_core::Serial::parse_hex(s) {
        assert_eq!(ca_core::Serial::parse_hex(&serial.to_hex()).ok(), Some(serial));
    }
});
