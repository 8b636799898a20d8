//! Recovery after the token dropped every session of this process (and with them the
//! login). Its own test binary: logging the process out would disturb any test running
//! beside it on the same token.

mod common;
use common::{token, verify};
use hsm::KeyAlgorithm;

#[test]
fn signing_recovers_after_every_session_was_closed() {
    let hsm = token();
    let signer = hsm
        .generate_key("recover", KeyAlgorithm::EcdsaP256)
        .unwrap();
    signer.sign(b"before").unwrap();
    hsm.close_all_sessions();
    let sig = signer.sign(b"after").unwrap();
    verify(&signer, b"after", &sig);
}
