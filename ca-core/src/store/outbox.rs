//! The notification outbox: messages queued in the transaction that makes them due, delivered
//! later, each attempt counted.

use std::fmt;

use crate::error::{CaError, Result};
use crate::UnixTime;

/// What an outbox message carries (the `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    /// `access-password`: the access password of the pre-application `subject_ref`, by e-mail.
    AccessPassword,
    /// `sms-code`: the SMS code of the enrollment `subject_ref`, by SMS.
    SmsCode,
}

impl OutboxKind {
    /// The kind as the store writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::AccessPassword => "access-password",
            OutboxKind::SmsCode => "sms-code",
        }
    }

    /// The kind of a stored message; unknown text is [`CaError::Invalid`] for `kind`.
    pub fn parse(s: &str) -> Result<OutboxKind> {
        match s {
            "access-password" => Ok(OutboxKind::AccessPassword),
            "sms-code" => Ok(OutboxKind::SmsCode),
            other => Err(CaError::invalid(
                "kind",
                format!("unknown outbox message kind \"{other}\""),
            )),
        }
    }
}

impl fmt::Display for OutboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an outbox message stands (the `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Not delivered yet: due at its next attempt.
    Pending,
    /// Delivered.
    Sent,
}

impl OutboxStatus {
    /// The status as the store writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
        }
    }

    /// The status of a stored message; unknown text is [`CaError::Invalid`] for `status`.
    pub fn parse(s: &str) -> Result<OutboxStatus> {
        match s {
            "pending" => Ok(OutboxStatus::Pending),
            "sent" => Ok(OutboxStatus::Sent),
            other => Err(CaError::invalid(
                "status",
                format!("unknown outbox message status \"{other}\""),
            )),
        }
    }
}

impl fmt::Display for OutboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message waiting in (or sent from) the notification outbox. The message's text is made
/// when it is sent: the outbox holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The message's id (increasing).
    pub id: i64,
    /// What it carries.
    pub kind: OutboxKind,
    /// What the message is about (the pre-application's id).
    pub subject_ref: String,
    /// E-mail address or mobile number.
    pub recipient: String,
    /// Delivery attempts so far.
    pub attempts: i64,
}

/// The outcome of one delivery attempt, as [`OutboxStore::outbox_attempt`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxAttempt {
    /// Delivered: the message is sent.
    Sent,
    /// Not delivered: the error (no secret in it) and when to try again.
    Failed {
        /// Why, for the operator.
        error: String,
        /// The next attempt is due then.
        retry_at: UnixTime,
    },
}

/// The outbox's messages and their delivery attempts.
pub trait OutboxStore: Send + Sync {
    /// Outbox messages due at `at`, oldest first, at most `limit`.
    fn outbox_due(&self, at: UnixTime, limit: u32) -> Result<Vec<OutboxMessage>>;
    /// Every outbox message with its status.
    fn outbox(&self) -> Result<Vec<(OutboxMessage, OutboxStatus)>>;
    /// Records the hash of the access password about to be sent to an invited person.
    fn set_access_password(
        &self,
        id: &str,
        hash: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// Records one delivery attempt of a pending message (sent, or failed with the error and
    /// when to try again), with its audit record.
    fn outbox_attempt(
        &self,
        id: i64,
        attempt: OutboxAttempt,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
}
