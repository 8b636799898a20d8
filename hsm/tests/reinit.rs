//! Recovery after the PKCS#11 module lost its state: `C_Finalize` is called from outside
//! nesca's own context (through a second handle on the same library, as a crashed network
//! HSM client or a reset would leave things). The next signature must re-initialise the
//! module, find the token again, log in and succeed. Its own test binary: it finalises the
//! module for the whole process.

mod common;
use common::{token, verify, MODULE};
use hsm::KeyAlgorithm;

#[test]
fn signing_recovers_after_the_module_was_finalised() {
    let hsm = token();
    let signer = hsm.generate_key("reinit", KeyAlgorithm::EcdsaP256).unwrap();
    signer.sign(b"before").unwrap();

    let outside = cryptoki::context::Pkcs11::new(MODULE).unwrap();
    outside.finalize().unwrap();

    let sig = signer.sign(b"after").unwrap();
    verify(&signer, b"after", &sig);
    // And keeps working.
    for i in 0..20 {
        let msg = format!("again {i}");
        verify(
            &signer,
            msg.as_bytes(),
            &signer.sign(msg.as_bytes()).unwrap(),
        );
    }
}
