//! Applications that front channels submit, by the channel's own reference: a reference seen
//! before issues nothing new (a replayed KDBO, a retried request).

use super::ApplicationIssued;
use crate::error::Result;
use crate::serial::Serial;
use crate::{ChannelName, UnixTime};

column_enum! {
    /// Where a front channel's application stands.
    pub enum ApplicationStatus in "status" as "application status" {
        /// Recorded; issuance under way (or cut off by a crash).
        Pending = "pending",
        /// Issued: the serial is recorded.
        Issued = "issued",
        /// Refused: the reason is recorded.
        Refused = "refused",
    }
}

/// How a pending application ended, as [`ApplicationStore::finish_application`] records it.
#[derive(Debug, Clone)]
pub enum ApplicationOutcome {
    /// Issued: the serial (and the card key wrapped for it), with the commitment it awaits.
    Issued(ApplicationIssued),
    /// Refused: the refusal as recorded, which a replay of the reference answers with
    /// ([`ChannelApplication::error`]).
    Refused(String),
}

/// An application a front channel submitted, by the channel's own reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelApplication {
    /// The channel (plugin) that submitted it.
    pub channel: ChannelName,
    /// The channel's own reference of the application.
    pub channel_ref: String,
    /// Where it stands.
    pub status: ApplicationStatus,
    /// The serial issued, once issued.
    pub serial: Option<Serial>,
    /// Why it was refused, once refused.
    pub error: Option<String>,
    /// When it was first recorded.
    pub created_at: UnixTime,
    /// The HSM-generated key wrapped for the card, as recorded (the host's JSON).
    pub wrapped_key: Option<crate::card_key::WrappedCardKey>,
}

/// Front channels' applications, recorded once per channel reference.
pub trait ApplicationStore: Send + Sync {
    /// Records a channel's application as pending, unless its reference was seen before: then
    /// nothing is written and the earlier application is returned.
    fn begin_application(
        &self,
        channel: &ChannelName,
        channel_ref: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<Option<ChannelApplication>>;
    /// The outcome of a pending application: what was issued (with the commitment it now
    /// awaits, in the same transaction), or why it was refused.
    fn finish_application(
        &self,
        channel: &ChannelName,
        channel_ref: &str,
        outcome: ApplicationOutcome,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// Refuses every application still pending, with `reason`: called at start, when no
    /// issuance can be under way, so that an application a crash cut off answers its replay
    /// with a refusal instead of "still being processed" for ever. Returns how many.
    fn abandon_pending_applications(
        &self,
        reason: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<u64>;
    /// Forgets a pending application, so that its reference can be applied for again: for a
    /// failure that was not the request's fault (the HSM or the store down), whose retry
    /// should issue rather than replay the failure. Returns false, and changes nothing, when
    /// the application is not pending (finished, or unknown).
    fn release_pending_application(
        &self,
        channel: &ChannelName,
        channel_ref: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<bool>;
    /// A channel's application by its reference.
    fn application(
        &self,
        channel: &ChannelName,
        channel_ref: &str,
    ) -> Result<Option<ChannelApplication>>;
}
