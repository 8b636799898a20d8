//! A KDBO (CMS SignedData over the KDB) from a KDHS or a KEC device, and any CMS signature nesca
//! verifies (an officer's list signature, a commitment): any bytes must verify or be refused,
//! never panic.
#![no_main]

use nesca_pkix::cms::{verify_signed_data, Signer};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = nesca_channel_kit::kdbo::Kdbo::verify(data);
    // Detached: the content is the first half, the signature the rest.
    let (content, cms) = data.split_at(data.len() / 2);
    let _ = verify_signed_data(cms, Some(content), Signer::Embedded);
});
