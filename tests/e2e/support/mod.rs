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

pub(crate) mod admin;
pub(crate) mod crl;
pub(crate) mod doc_example;
pub(crate) mod file_server;
pub(crate) mod http;
pub(crate) mod idcard;
pub(crate) mod institution;
pub(crate) mod mtls;
pub(crate) mod ocsp;
pub(crate) mod outbox;
pub(crate) mod partner;
pub(crate) mod plugins;
pub(crate) mod postgres;
pub(crate) mod pyhanko;
pub(crate) mod server;
pub(crate) mod webdriver;

pub(crate) use demo::*;
pub(crate) use der::*;
pub(crate) use encoding::*;
pub(crate) use net::*;
pub(crate) use openssl::*;
pub(crate) use pkilint::*;
pub(crate) use refusal::*;
pub(crate) use run::*;
pub(crate) use time::*;
pub(crate) use toml::*;
