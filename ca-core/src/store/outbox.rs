//! The notification outbox: messages queued in the transaction that makes them due, delivered
//! later, each attempt counted.

use crate::error::Result;

/// A message waiting in (or sent from) the notification outbox. The message's text is made
/// when it is sent: the outbox holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The message's id (increasing).
    pub id: i64,
    /// `access-password`: the access password of the pre-application `subject_ref`.
    pub kind: String,
    /// What the message is about (the pre-application's id).
    pub subject_ref: String,
    /// E-mail address or mobile number.
    pub recipient: String,
    /// Delivery attempts so far.
    pub attempts: i64,
}

/// The outbox's messages and their delivery attempts.
pub trait OutboxStore: Send + Sync {
    /// Outbox messages due at `at`, oldest first, at most `limit`.
    fn outbox_due(&self, at: i64, limit: u32) -> Result<Vec<OutboxMessage>>;
    /// Every outbox message with its status (`pending`, `sent`).
    fn outbox(&self) -> Result<Vec<(OutboxMessage, String)>>;
    /// Records the hash of the access password about to be sent to an invited person.
    fn set_access_password(&self, id: &str, hash: &str, actor: &str, at: i64) -> Result<()>;
    /// Records one delivery attempt: sent, or failed with the error and when to try again.
    fn outbox_attempt(
        &self,
        id: i64,
        result: std::result::Result<(), (String, i64)>,
        at: i64,
    ) -> Result<()>;
}
