//! nesca's identity values, checked once for the CA and for the channel plugins that link
//! this crate: the T.C. Kimlik No ([`Tckn`]), person names ([`PersonName`]) and, for the
//! institutional channel, contact details ([`Email`], [`TrMobile`]).
//!
//! Each value is a type that can only hold a checked one (docs/STANDARDS.md "T.C. Kimlik No",
//! "NES certificate for a natural person"). The crate depends on nothing but `thiserror`, so
//! that a plugin links the same checks as the CA without linking the CA.
#![forbid(unsafe_code)]

mod email;
mod error;
mod mobile;
mod name;
mod tckn;

pub use email::{Email, MAX_EMAIL_CHARS};
pub use error::IdentityError;
pub use mobile::TrMobile;
pub use name::{PersonName, MAX_NAME_CHARS};
pub use tckn::{Tckn, TcknError};
