//! The institutional channel's records: institutions and their e-İmza officers, imported
//! FRM.01.03 lists and the pre-applications made from their rows. Who may import, which rows
//! are held and who is already open are `ra::list_import`'s decisions; the store writes them,
//! with one constraint of its own: one invited pre-application per person, whichever list
//! named them (a second is refused by the database and reported as already open). Held rows
//! (a wet-signed list nobody confirmed yet) are not applications and block no one.

use crate::error::Result;
use crate::institution::{ImportOutcome, InstitutionId, InstitutionRecord, ListImport};
use crate::UnixTime;

/// Where a pre-application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreApplicationStatus {
    /// From a wet-signed list that awaits an operator's confirmation: not invited yet.
    Held,
    /// Invited: an access password is (or will be) e-mailed.
    Invited,
    /// Finished (produced, or abandoned): the person may be listed again.
    Closed,
}

impl PreApplicationStatus {
    /// The status as the store writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            PreApplicationStatus::Held => "held",
            PreApplicationStatus::Invited => "invited",
            PreApplicationStatus::Closed => "closed",
        }
    }

    /// The status written as `s`; `None` for text the store never writes.
    pub fn parse(s: &str) -> Option<PreApplicationStatus> {
        [
            PreApplicationStatus::Held,
            PreApplicationStatus::Invited,
            PreApplicationStatus::Closed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// Where an imported list stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStatus {
    /// Its rows are invited (a CMS-signed list, or a wet-signed one once confirmed).
    Accepted,
    /// Wet-signed: its rows are held until an operator confirms the paper.
    AwaitingConfirmation,
    /// Wet-signed and refused by an operator: its held rows are closed.
    Rejected,
    /// Wet-signed and not confirmed in time: its held rows are closed.
    Expired,
}

impl ImportStatus {
    /// The status as the store writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Accepted => "accepted",
            ImportStatus::AwaitingConfirmation => "awaiting_confirmation",
            ImportStatus::Rejected => "rejected",
            ImportStatus::Expired => "expired",
        }
    }

    /// The status written as `s`; `None` for text the store never writes.
    pub fn parse(s: &str) -> Option<ImportStatus> {
        [
            ImportStatus::Accepted,
            ImportStatus::AwaitingConfirmation,
            ImportStatus::Rejected,
            ImportStatus::Expired,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// The status of the pre-applications a list in this status creates.
    pub fn rows_status(self) -> PreApplicationStatus {
        match self {
            ImportStatus::Accepted => PreApplicationStatus::Invited,
            ImportStatus::AwaitingConfirmation => PreApplicationStatus::Held,
            ImportStatus::Rejected | ImportStatus::Expired => PreApplicationStatus::Closed,
        }
    }
}

/// How an imported list was signed, as the store records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSignatureKind {
    /// A detached CMS signature of the officer.
    Cms,
    /// Signed on paper; the scan is kept.
    Wet,
}

impl ListSignatureKind {
    /// The kind as the store writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ListSignatureKind::Cms => "cms",
            ListSignatureKind::Wet => "wet",
        }
    }

    /// The kind written as `s`; `None` for text the store never writes.
    pub fn parse(s: &str) -> Option<ListSignatureKind> {
        [ListSignatureKind::Cms, ListSignatureKind::Wet]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A person's pre-application, made from one row of an institution's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreApplication {
    /// The pre-application's id (`pa-…`).
    pub id: String,
    /// The institution whose list named the person.
    pub institution: InstitutionId,
    /// SHA-256 of the list file, lower-case hex.
    pub file_sha256: String,
    /// The row of the list it came from.
    pub row: u32,
    /// The person's T.C. Kimlik No.
    pub tckn: crate::Tckn,
    /// The person's given name, as listed.
    pub given_name: String,
    /// The person's surname, as listed.
    pub surname: String,
    /// Where the access password is e-mailed.
    pub email: String,
    /// The mobile number SMS codes go to.
    pub mobile: String,
    /// The person's unit in the institution.
    pub unit: String,
    /// The person's title, when listed.
    pub title: Option<String>,
    /// Held, invited or closed.
    pub status: PreApplicationStatus,
    /// The access password's argon2 hash (PHC string), once one was sent.
    pub password_hash: Option<String>,
    /// When it was created.
    pub created_at: UnixTime,
}

/// A list to import as `ra::list_import` decided it: `import.rows` are the rows to create
/// (the people it found open already are in `already_open`), in the status `status` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListImportWrite {
    pub import: ListImport,
    /// Accepted (rows invited) or awaiting confirmation (rows held).
    pub status: ImportStatus,
    /// Rows skipped because their person has an open pre-application (row, its id).
    pub already_open: Vec<(u32, String)>,
    /// For a held list: the most lists of the institution that may await confirmation, the
    /// RA's bound, counted again in the write's transaction (two uploads at once must not
    /// both pass it); at the bound the write is refused with a conflict, nothing written.
    pub held_limit: Option<u32>,
}

/// An imported list as the store holds it, with what its import answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListImportRecord {
    pub institution: InstitutionId,
    /// SHA-256 of the file, lower-case hex.
    pub file_sha256: String,
    pub file_name: String,
    pub signature: ListSignatureKind,
    pub status: ImportStatus,
    /// The pre-applications it created (row, id), in row order.
    pub created: Vec<(u32, String)>,
    /// The rows it skipped as already open (row, the open pre-application), in row order.
    /// Empty for lists imported before the store recorded them (schema version 8).
    pub already_open: Vec<(u32, String)>,
    pub created_at: UnixTime,
}

impl ListImportRecord {
    /// The answer to importing the same file again: the first outcome, replayed.
    pub fn replayed(self) -> ImportOutcome {
        ImportOutcome {
            replayed: true,
            created: self.created,
            already_open: self.already_open,
            status: self.status,
        }
    }
}

/// An operator's confirmation of a wet-signed list: the list moves from `from` (awaiting
/// confirmation, as read) to accepted, its held rows to invited. Refused with
/// [`crate::CaError::Conflict`], nothing written, when the list is no longer in `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListConfirmation {
    pub institution: InstitutionId,
    /// SHA-256 of the list file, lower-case hex.
    pub file_sha256: String,
    pub from: ImportStatus,
    /// The officer's CMS signature over the same file, when that is what confirms the list
    /// (it then replaces the scan as the list's evidence); `None`: an operator saw the paper.
    pub signature_cms: Option<Vec<u8>>,
    pub actor: crate::Principal,
    pub at: UnixTime,
}

/// What a confirmation did: the held rows invited, and those closed because their person was
/// invited meanwhile through another list (or listed twice in this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListConfirmed {
    pub invited: u64,
    pub already_open: u64,
}

/// How a held list ends without confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldListEnding {
    /// An operator refused it.
    Rejected,
    /// Nobody confirmed it in time.
    Expired,
}

impl HeldListEnding {
    /// The list's status from then on.
    pub fn status(self) -> ImportStatus {
        match self {
            HeldListEnding::Rejected => ImportStatus::Rejected,
            HeldListEnding::Expired => ImportStatus::Expired,
        }
    }

    /// The audit action that records it.
    pub fn action(self) -> &'static str {
        match self {
            HeldListEnding::Rejected => "reject-list",
            HeldListEnding::Expired => "expire-list",
        }
    }
}

/// The end of a held list without confirmation: the list moves from `from` (awaiting
/// confirmation, as read) to `to` (rejected or expired), its held rows are closed and its scan
/// is dropped, in one transaction with its audit record. Refused with [`crate::CaError::Conflict`], nothing
/// written, when the list is no longer in `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldListEnd {
    pub institution: InstitutionId,
    /// SHA-256 of the list file, lower-case hex.
    pub file_sha256: String,
    pub from: ImportStatus,
    pub to: HeldListEnding,
    pub actor: crate::Principal,
    pub at: UnixTime,
}

/// A change an operator makes to a registered institution, as the registration authority
/// checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstitutionChange {
    /// A new e-İmza officer: only lists signed with `officer_cert_der` are accepted from now.
    Officer {
        officer_tckn: crate::Tckn,
        officer_cert_der: Vec<u8>,
    },
    /// Active (imports lists) or deactivated (its lists and portal uploads are refused).
    Active(bool),
}

/// Institutions, their lists and the pre-applications made from them.
pub trait InstitutionStore: Send + Sync {
    /// Registers an institution and its e-İmza officer; refuses an id or tax number that
    /// exists. One transaction with its audit record.
    fn add_institution(
        &self,
        institution: InstitutionRecord,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// Applies `change` to institution `id`, with its audit record; refuses an unknown id.
    fn change_institution(
        &self,
        id: &InstitutionId,
        change: InstitutionChange,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// Queues a new access password for invited pre-application `id` (the outbox draws it at
    /// send time; it replaces the old one then) and clears every source's sign-in lock and
    /// count and the count from every source, in one
    /// transaction with its audit record. Refused with [`crate::CaError::Conflict`] unless the
    /// pre-application is invited.
    fn resend_access_password(
        &self,
        id: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// An institution by id.
    fn institution(&self, id: &InstitutionId) -> Result<Option<InstitutionRecord>>;
    /// Every institution.
    fn institutions(&self) -> Result<Vec<InstitutionRecord>>;
    /// The invited pre-applications of these people: (person, its id), in no particular
    /// order. One set-based read, however many people.
    fn open_pre_applications(&self, people: &[crate::Tckn]) -> Result<Vec<(crate::Tckn, String)>>;
    /// A list imported before, by its institution and digest.
    fn list_import(
        &self,
        institution: &InstitutionId,
        file_sha256: &str,
    ) -> Result<Option<ListImportRecord>>;
    /// Imports a list in one transaction: its record, a pre-application per row in the
    /// status the write says, an outbox message per invited person, the skipped rows, one
    /// audit record. A row whose person has an open pre-application meanwhile is refused by
    /// the one-open-per-person constraint and answered as already open. The same file
    /// (institution and digest) again writes nothing and answers its first outcome.
    fn import_list(&self, write: ListImportWrite) -> Result<ImportOutcome>;
    /// Confirms a wet-signed list (see [`ListConfirmation`]): its held rows are invited (one
    /// access-password message each), in one transaction; a row whose person was invited
    /// meanwhile is refused by the one-invited-per-person constraint and closed.
    fn confirm_list(&self, confirmation: ListConfirmation) -> Result<ListConfirmed>;
    /// Ends a held list unconfirmed (see [`HeldListEnd`]). Returns how many rows were closed.
    fn end_held_list(&self, end: HeldListEnd) -> Result<u64>;
    /// The lists awaiting confirmation that were imported at or before `at`, oldest first (at
    /// most `limit`): (institution, file digest).
    fn held_lists_before(&self, at: UnixTime, limit: u32) -> Result<Vec<(InstitutionId, String)>>;
    /// How many of the institution's lists await confirmation.
    fn held_list_count(&self, institution: &InstitutionId) -> Result<u32>;
    /// The pre-applications of an institution, oldest list first, in row order.
    fn pre_applications(&self, institution: &InstitutionId) -> Result<Vec<PreApplication>>;
    /// A pre-application by id.
    fn pre_application(&self, id: &str) -> Result<Option<PreApplication>>;
}
