//! Wet-signed lists, held until an operator has seen the paper: confirmed (their rows
//! invited), rejected, or expired after [`HELD_LIST_DAYS`].
//!
//! A held list is a claim nobody has checked yet: anyone with the channel's certificate can
//! upload one with any scan. So its rows are not applications: they block no one (a signed
//! list for the same people invites them), and a confirmation invites only those who are not
//! invited meanwhile. Held lists end: an operator rejects them, or they expire.

use std::sync::Arc;

use ca_core::clock::Clock;
use ca_core::institution::InstitutionId;
use ca_core::store::{
    HeldListEnd, HeldListEnding, ImportStatus, ListConfirmation, ListConfirmed, ListImportRecord,
    Store,
};
use ca_core::{Principal, SystemTask, UnixTime};

use crate::error::{RaError, Result};

/// How long a wet-signed list waits for an operator's confirmation.
pub const HELD_LIST_DAYS: i64 = 30;

const HELD_LIST_SECONDS: i64 = HELD_LIST_DAYS * 86_400;

/// Lists expired per store read in one sweep pass.
const EXPIRY_BATCH: u32 = 100;

/// Whether a list held since `created_at` has expired at `now`.
pub fn expired(created_at: UnixTime, now: UnixTime) -> bool {
    now > created_at.plus_secs(HELD_LIST_SECONDS)
}

/// Only a wet-signed list awaiting confirmation is confirmed or rejected: the status it
/// moves from.
pub fn awaiting_confirmation(
    list: Option<&ListImportRecord>,
    institution: &InstitutionId,
    file_sha256: &str,
) -> Result<ImportStatus> {
    match list.map(|l| l.status) {
        Some(ImportStatus::AwaitingConfirmation) => Ok(ImportStatus::AwaitingConfirmation),
        _ => Err(RaError::invalid(
            "file-sha256",
            format!("no wet-signed list {file_sha256} of \"{institution}\" awaits confirmation"),
        )),
    }
}

/// Checks a list digest as an operator types it: 64 hex digits, compared in lower case.
fn digest(file_sha256: &str) -> Result<String> {
    let sha = file_sha256.to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RaError::invalid("file-sha256", "must be 64 hex digits"));
    }
    Ok(sha)
}

/// The held lists' service.
pub struct HeldLists {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl HeldLists {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> HeldLists {
        HeldLists { store, clock }
    }

    /// The list awaiting confirmation (the status it moves from), or the refusal: unknown,
    /// not awaiting, or expired — an expired list is ended as such on the way.
    fn awaiting(&self, institution: &InstitutionId, sha: &str) -> Result<ImportStatus> {
        let list = self.store.list_import(institution, sha)?;
        let from = awaiting_confirmation(list.as_ref(), institution, sha)?;
        let now = self.clock.now_unix();
        if let Some(l) = list.filter(|l| expired(l.created_at, now)) {
            self.end(institution, sha, HeldListEnding::Expired, &expiry(), now)?;
            return Err(RaError::Conflict {
                field: "file-sha256",
                rule: format!(
                    "list {sha} of \"{institution}\" was held since {} and expired after {HELD_LIST_DAYS} days; import it again",
                    ca_core::rfc3339(l.created_at.to_system())
                ),
            });
        }
        Ok(from)
    }

    /// An operator saw the paper of a wet-signed list: its held rows are invited, except
    /// those whose person was invited meanwhile through another list.
    pub fn confirm(
        &self,
        by: &Principal,
        institution: &InstitutionId,
        file_sha256: &str,
    ) -> Result<ListConfirmed> {
        let sha = digest(file_sha256)?;
        let from = self.awaiting(institution, &sha)?;
        Ok(self.store.confirm_list(ListConfirmation {
            institution: institution.clone(),
            file_sha256: sha,
            from,
            signature_cms: None,
            actor: by.clone(),
            at: self.clock.now_unix(),
        })?)
    }

    /// The officer's verified CMS signature `cms` over the very file of held list `sha`
    /// confirms it, as an operator's confirmation would (an expired list is ended instead and
    /// refused). The caller has checked the signature and that the file is read as it was.
    pub fn confirm_signed(
        &self,
        by: &Principal,
        institution: &InstitutionId,
        sha: &str,
        cms: Vec<u8>,
    ) -> Result<ListConfirmed> {
        let from = self.awaiting(institution, sha)?;
        Ok(self.store.confirm_list(ListConfirmation {
            institution: institution.clone(),
            file_sha256: sha.to_owned(),
            from,
            signature_cms: Some(cms),
            actor: by.clone(),
            at: self.clock.now_unix(),
        })?)
    }

    /// An operator refuses a wet-signed list (the paper never came, or is not the
    /// officer's): its held rows are closed. Returns how many.
    pub fn reject(
        &self,
        by: &Principal,
        institution: &InstitutionId,
        file_sha256: &str,
    ) -> Result<u64> {
        let sha = digest(file_sha256)?;
        self.awaiting(institution, &sha)?;
        self.end(
            institution,
            &sha,
            HeldListEnding::Rejected,
            by,
            self.clock.now_unix(),
        )
    }

    /// Ends every list held longer than [`HELD_LIST_DAYS`] as expired; returns how many. A
    /// list confirmed or rejected meanwhile is left as it is.
    pub fn expire_due(&self) -> Result<u64> {
        let now = self.clock.now_unix();
        let before = now.plus_secs(-HELD_LIST_SECONDS - 1);
        let mut ended = 0;
        loop {
            let due = self.store.held_lists_before(before, EXPIRY_BATCH)?;
            let last_batch = due.len() < EXPIRY_BATCH as usize;
            for (institution, sha) in due {
                match self.end(&institution, &sha, HeldListEnding::Expired, &expiry(), now) {
                    Ok(_) => ended += 1,
                    Err(RaError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if last_batch {
                return Ok(ended);
            }
        }
    }

    fn end(
        &self,
        institution: &InstitutionId,
        sha: &str,
        to: HeldListEnding,
        by: &Principal,
        at: UnixTime,
    ) -> Result<u64> {
        let closed = self.store.end_held_list(HeldListEnd {
            institution: institution.clone(),
            file_sha256: sha.to_owned(),
            from: ImportStatus::AwaitingConfirmation,
            to,
            actor: by.clone(),
            at,
        })?;
        tracing::info!(%institution, file_sha256 = sha, status = to.status().as_str(), closed, "held list ended");
        Ok(closed)
    }
}

/// Who expires held lists.
fn expiry() -> Principal {
    Principal::System(SystemTask::HeldListExpiry)
}

#[cfg(test)]
mod tests;
