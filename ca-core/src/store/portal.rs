//! The holders' portal records: the contact details recorded with a certificate (where a
//! holder's SMS codes and notices go), the sign-in attempts counted per identity and per
//! source, and the holders' sessions with their single-use SMS codes. The store keeps them
//! consistent (a code is spent once, a session changes stage once); the limits and who may
//! sign in are the registration authority's (`ra::portal`).

use crate::error::Result;
use crate::serial::{IssuerId, Serial};
use crate::{Principal, Tckn, UnixTime};

column_enum! {
    /// Where a holder's session stands (the `stage` column of `holder_sessions`).
    pub enum HolderSessionStage in "stage" as "holder session stage" {
        /// The security word matched; the SMS code is awaited.
        AwaitingCode = "awaiting-code",
        /// The SMS code matched: the holder is signed in.
        SignedIn = "signed-in",
        /// Signed out, or the code failed too often.
        Ended = "ended",
    }
}

/// Where a holder's messages go, as recorded with one of their certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HolderContact {
    /// `+905xxxxxxxxx`.
    pub mobile: Option<String>,
    pub email: Option<String>,
}

/// A holder's portal session. The token itself is never stored: its SHA-256 is the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderSession {
    /// The session's public id: what the SMS code's outbox message names.
    pub id: String,
    pub tckn: Tckn,
    pub stage: HolderSessionStage,
    /// The argon2id hash of the SMS code, once the outbox drew and sent it.
    pub code_hash: Option<String>,
    pub code_expires_at: Option<UnixTime>,
    /// Wrong codes so far.
    pub code_failures: u32,
    pub created_at: UnixTime,
    /// The last request the session made (its idle expiry counts from here).
    pub last_seen_at: UnixTime,
    /// The absolute expiry.
    pub expires_at: UnixTime,
}

/// A session to start once the holder's security word matched: its row and the outbox
/// message that will carry its SMS code, in one transaction.
#[derive(Debug, Clone)]
pub struct NewHolderSession {
    pub id: String,
    pub token_sha256: String,
    pub tckn: Tckn,
    /// Where the code goes.
    pub mobile: String,
    pub expires_at: UnixTime,
}

/// The portal's records.
pub trait PortalStore: Send + Sync {
    /// Records where a certificate's holder is reached (`nesca issue --mobile`, a channel),
    /// once: a contact already recorded for the certificate stays as it is.
    fn set_holder_contact(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        contact: &HolderContact,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// Where the holder of a certificate is reached: what was recorded with it, else what the
    /// institutional application that produced it named.
    fn holder_contact(&self, issuer: &IssuerId, serial: &Serial) -> Result<Option<HolderContact>>;
    /// Counts one attempt under `key` (an identity or a source) and answers the count in the
    /// window of `window_seconds` that started with the first attempt in it: one statement,
    /// so parallel attempts are each counted.
    fn count_portal_attempt(&self, key: &str, window_seconds: i64, at: UnixTime) -> Result<u32>;
    /// Gives an attempt back (one that succeeded), never below zero.
    fn forgive_portal_attempt(&self, key: &str) -> Result<()>;
    /// Starts a session awaiting its SMS code and queues the code's message.
    fn start_holder_session(
        &self,
        session: &NewHolderSession,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// The session whose token has this SHA-256.
    fn holder_session(&self, token_sha256: &str) -> Result<Option<HolderSession>>;
    /// The session with this public id (the outbox's delivery of its code).
    fn holder_session_by_id(&self, id: &str) -> Result<Option<HolderSession>>;
    /// Records the hash of the code about to be sent; false when the session no longer awaits
    /// a code (the message is then dropped).
    fn holder_code_issued(
        &self,
        id: &str,
        code_hash: &str,
        expires_at: UnixTime,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<bool>;
    /// Counts a wrong code of a session awaiting one; at `max_failures` the session ends.
    /// Answers the failures so far, `None` when the session no longer awaits a code.
    fn holder_code_failed(
        &self,
        id: &str,
        max_failures: u32,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<Option<u32>>;
    /// Spends the code whose hash is `code_hash`: the session is signed in, under a new token
    /// (its SHA-256 `new_token_sha256`; the token of the sign-in step no longer opens it). False
    /// when another request spent the code first (or the session moved on).
    fn holder_signed_in(
        &self,
        id: &str,
        code_hash: &str,
        new_token_sha256: &str,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<bool>;
    /// Notes a request of a signed-in session (its idle expiry starts again).
    fn touch_holder_session(&self, id: &str, at: UnixTime) -> Result<()>;
    /// Ends a session (sign-out, or idle or absolute expiry seen).
    fn end_holder_session(&self, id: &str, actor: &Principal, at: UnixTime) -> Result<()>;
    /// Forgets what no rule needs any more: attempt counters whose own window is over at `at`
    /// (the next attempt would start a new one), and sessions that expired before
    /// `sessions_before`. Answers how many rows went.
    fn sweep_portal(&self, at: UnixTime, sessions_before: UnixTime) -> Result<u64>;
    /// Queues a reminder (`subject_ref` `ISSUER/SERIAL/DAYS`) to each recipient of every
    /// active certificate with a T.C. Kimlik No holder whose notAfter lies in `expiring`
    /// (after the first, up to the second), each once per certificate, `days` and recipient;
    /// answers how many were queued. Which bands there are is the caller's rule.
    fn queue_expiry_reminders(
        &self,
        days: u32,
        expiring: (UnixTime, UnixTime),
        at: UnixTime,
    ) -> Result<u64>;
    /// Replaces the security word of each certificate given with `hash`, and queues a notice
    /// of the change (`subject_ref` `TCKN/UNIX-TIME`) to each of their recipients, in one
    /// transaction.
    fn replace_security_words(
        &self,
        holder: &crate::Tckn,
        certificates: &[(IssuerId, Serial)],
        hash: &str,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<()>;
}
