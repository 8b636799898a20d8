//! The notification outbox: messages queued in the transaction that makes them due, delivered
//! later, each attempt counted.

use crate::error::Result;
use crate::UnixTime;

column_enum! {
    /// What an outbox message carries (the `kind` column).
    pub enum OutboxKind in "kind" as "outbox message kind" {
        /// The access password of the pre-application `subject_ref`, by e-mail.
        AccessPassword = "access-password",
        /// The SMS code of the enrollment `subject_ref`, by SMS.
        SmsCode = "sms-code",
        /// The sign-in SMS code of the holder session `subject_ref` (the portal), by SMS.
        HolderSmsCode = "holder-sms-code",
        /// A status change of a holder's certificate, `subject_ref` being
        /// `ISSUER/SERIAL/SEQ/STATUS` (the audit sequence number of the change and the status
        /// it led to), by e-mail or SMS (the recipient says which).
        StatusNotice = "status-notice",
        /// An expiry reminder, `subject_ref` being `ISSUER/SERIAL/DAYS`, by e-mail or SMS.
        ExpiryReminder = "expiry-reminder",
        /// The holder's security word was changed, `subject_ref` being `TCKN/UNIX-TIME`, by
        /// e-mail or SMS.
        SecurityWordNotice = "security-word-notice",
    }
}

column_enum! {
    /// Where an outbox message stands (the `status` column).
    pub enum OutboxStatus in "status" as "outbox message status" {
        /// Not delivered yet: due at its next attempt.
        Pending = "pending",
        /// Delivered.
        Sent = "sent",
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
    /// Outbox messages due at `at`, at most `limit`: codes and passwords before notices and
    /// reminders, each oldest first.
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
