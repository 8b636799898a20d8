//! The world around the CA for the identity-card channels (`kdhs`, `kec`; their tests are in
//! channels.rs and enrollment.rs): a test identity-card CA and its holders' authentication
//! certificates, a KDHS with a trust anchor and signing key of its own, KDBs signed into KDBOs
//! with `openssl cms`, the partners nesca registers, the `[channels]` and `[[plugins]]`
//! configuration, an mTLS client (rustls) for the channel listener, and a second SoftHSM token
//! that plays the applicant's ID card when the CA's HSM generates the key and wraps it.
//!
//! Everything outside nesca is made with the `openssl` command line where that is enough; only
//! the card needs PKCS#11 in the test process (`cryptoki`) and a CMS SignedData built here,
//! because its key never leaves the token.

mod card;
mod channel_client;
mod kdbo;
mod person;
mod test_ca;
mod transport;
mod world;

pub(crate) use card::*;
pub(crate) use channel_client::*;
pub(crate) use kdbo::*;
pub(crate) use person::*;
pub(crate) use test_ca::*;
pub(crate) use transport::*;
pub(crate) use world::*;
