//! A PKCS#10 request from an applicant or a channel: any bytes must parse to a verified
//! request or an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ca_core::VerifiedCsr::parse(data);
});
