//! Helpers of the end-to-end tests, one concern per module. The test files import from here
//! only: the general helpers through `use crate::support::*`, the ones of one subject (a
//! running server, OCSP, CRLs, partners, plugins, institutions, the identity-card world)
//! through their module, `crate::support::server::…`.
//!
//! Nothing here changes the environment or the working directory of the test process (but the
//! card module in [`idcard`], which owns the process's own SoftHSM configuration): every setting
//! travels on the `Command` it is meant for, so the tests run in parallel safely.

mod demo;
mod der;
mod encoding;
mod net;
mod openssl;
mod pkilint;
mod refusal;
mod run;
mod template;
mod time;
mod toml;

pub mod crl;
pub mod http;
pub mod idcard;
pub mod institution;
pub mod ocsp;
pub mod partner;
pub mod plugins;
pub mod server;

pub use demo::*;
pub use der::*;
pub use encoding::*;
pub use net::*;
pub use openssl::*;
pub use pkilint::*;
pub use refusal::*;
pub use run::*;
pub use time::*;
pub use toml::*;
