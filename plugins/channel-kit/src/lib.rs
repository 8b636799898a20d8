//! What the identity-card channels (kdhs, kec) share: the application message and its checks,
//! the commitment step, holder lifecycle requests, and the plugin configuration they have in
//! common. The protocol is documented in `docs/channels/kdhs.md` and `docs/channels/kec.md`.
//!
//! A channel plugin builds a [`Channel`] from its own [`ChannelPolicy`] (who may connect, who may
//! sign a KDBO, whether the card's slots matter), the [`CommonConfig`], a [`HostCalls`] (the real
//! [`Host`](nesca_plugin_api::Host), or a fake in tests) and a [`Clock`], and hands every request to
//! [`Channel::handle`].
//!
//! Modules, in the order a request meets them: [`client`] (check 1), [`application_request`]
//! (check 2), [`kdbo`] (3, 4), [`kdb`] (5, 6), [`applicant`] (7, 8), [`config`] (9, and the
//! configuration), [`policy`] (10), [`overwrite`] (11), then `application`, `commitment` and
//! `lifecycle` for the endpoints.
#![forbid(unsafe_code)]

mod answer;
pub mod applicant;
mod application;
pub mod application_request;
mod channel;
pub mod client;
pub mod clock;
mod commitment;
pub mod config;
pub mod error;
mod fields;
pub mod host;
pub mod identifiers;
pub mod kdb;
pub mod kdbo;
mod lifecycle;
pub mod overwrite;
pub mod pem;
mod plugin;
pub mod policy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use answer::error_response;
pub use application_request::Slots;
pub use channel::Channel;
pub use client::ClientCertificate;
pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{CommonConfig, ConfigReader, COMMON_KEYS};
pub use error::ChannelError;
pub use fields::PROTOCOL_VERSION;
pub use host::HostCalls;
pub use kdbo::Kdbo;
#[doc(hidden)]
pub use plugin::__private;
pub use policy::ChannelPolicy;
