//! An OCSP request from anyone on the network (RFC 6960 §4.1.1), POSTed as DER or carried in a
//! GET path: any bytes must parse or be refused as malformed, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ocsp_responder::fuzzing::parse_request(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ocsp_responder::fuzzing::parse_get_path(text, 65_536);
    }
});
