//! nesca front channel `kec`: certificate applications and holder lifecycle requests sent
//! directly by a KEC (kart erişim cihazı, card access device) of a licensed operator, over a
//! channel authenticated with nesca-issued secure-communication and role certificates. Served
//! under `/channels/kec/v1/…` on nesca's mTLS channel listener; the protocol is
//! `docs/channels/kec.md`.
//!
//! Everything the KDHS and KEC channels share is in `nesca-channel-kit`; this crate holds what is
//! the KEC's own ([`KecPolicy`]): KDBOs signed by an active KEC role certificate of the same
//! operator, the card's slots, and holder lifecycle requests. Errors are the kit's
//! `ChannelError`: this crate adds no refusal of another kind.
//!
//! `deny`, not `forbid`: the entry point made by `export_plugin!` carries an
//! `#[allow(unsafe_code)]` for its `#[no_mangle]`, which `forbid` would reject. This crate itself
//! contains no unsafe code.
#![deny(unsafe_code)]

mod policy;
mod slots;

use std::sync::Arc;

use nesca_channel_kit::{Channel, ChannelError, Clock, HostCalls};
use serde_json::Value;

pub use policy::{KecPolicy, KEC_KEYS};

/// The KEC channel from its configuration (`device_ca`, `idcard_ca`, `firmware_sha256`,
/// `kdb_max_age_minutes`), calling `host` and reading the time from `clock`.
pub fn channel(
    config: Value,
    host: Arc<dyn HostCalls>,
    clock: Arc<dyn Clock>,
) -> Result<Channel, ChannelError> {
    Channel::from_config(config, KEC_KEYS, KecPolicy::read, host, clock)
}

nesca_channel_kit::channel_plugin!(
    /// The `kec` plugin.
    Kec,
    "kec",
    channel
);

#[cfg(test)]
mod tests;
