//! nesca front channel `kdhs`: certificate applications forwarded by a KDHS (kimlik doğrulama
//! hizmet sağlayıcı, identity-verification provider) that verified the applicant with the T.C.
//! identity card. Served under `/channels/kdhs/v1/…` on nesca's mTLS channel listener; the
//! protocol is `docs/channels/kdhs.md`.
//!
//! Everything the KDHS and KEC channels share is in `nesca-channel-kit`; this crate holds what is
//! the KDHS's own ([`KdhsPolicy`]): only configured licensees connect, and KDBOs are signed
//! under the configured KDHS trust anchors. Errors are the kit's `ChannelError`: this crate adds
//! no refusal of another kind.
//!
//! `deny`, not `forbid`: the entry point made by `export_plugin!` carries an
//! `#[allow(unsafe_code)]` for its `#[no_mangle]`, which `forbid` would reject. This crate itself
//! contains no unsafe code.
#![deny(unsafe_code)]

mod policy;

use std::sync::Arc;

use nesca_channel_kit::{Channel, ChannelError, Clock, HostCalls};
use serde_json::Value;

pub use policy::{KdhsPolicy, KDHS_KEYS};

/// The KDHS channel from its configuration (`kdhs_licences`, `kdhs_trust_anchors`, `idcard_ca`,
/// `firmware_sha256`, `kdb_max_age_minutes`), calling `host` and reading the time from `clock`.
pub fn channel(
    config: Value,
    host: Arc<dyn HostCalls>,
    clock: Arc<dyn Clock>,
) -> Result<Channel, ChannelError> {
    Channel::from_config(config, KDHS_KEYS, KdhsPolicy::read, host, clock)
}

nesca_channel_kit::channel_plugin!(
    /// The `kdhs` plugin.
    Kdhs,
    "kdhs",
    channel
);

#[cfg(test)]
mod tests;
