//! The institutional channel's records: institutions and their e-İmza officers, imported
//! FRM.01.03 lists and the pre-applications made from their rows.

use crate::error::Result;
use crate::institution::{ImportOutcome, InstitutionId, InstitutionRecord, ListImport};

/// A person's pre-application, made from one row of an institution's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreApplication {
    /// The pre-application's id (`pa-…`).
    pub id: String,
    /// The institution whose list named the person.
    pub institution: String,
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
    /// `held` (wet-signed list awaiting confirmation), `invited`, `closed`.
    pub status: String,
    /// The access password's argon2 hash (PHC string), once one was sent.
    pub password_hash: Option<String>,
    /// When it was created, unix seconds.
    pub created_at: i64,
}

/// Institutions, their lists and the pre-applications made from them.
pub trait InstitutionStore: Send + Sync {
    /// Registers an institution and its e-İmza officer; refuses an id or tax number that
    /// exists. One transaction with its audit record.
    fn add_institution(
        &self,
        institution: InstitutionRecord,
        actor: &crate::Principal,
        at: i64,
    ) -> Result<()>;
    /// An institution by id.
    fn institution(&self, id: &InstitutionId) -> Result<Option<InstitutionRecord>>;
    /// Every institution.
    fn institutions(&self) -> Result<Vec<InstitutionRecord>>;
    /// Imports a list in one transaction: the list's record (its digest: the same file again
    /// writes nothing and answers `replayed`), a pre-application per row whose person has no
    /// open application, an outbox message per invited person, one audit record.
    fn import_list(&self, import: ListImport) -> Result<ImportOutcome>;
    /// Confirms a wet-signed list after an operator saw the paper: its held rows are invited
    /// (one access-password message each), in one transaction. Returns how many.
    fn confirm_list(
        &self,
        institution: &InstitutionId,
        file_sha256: &str,
        actor: &crate::Principal,
        at: i64,
    ) -> Result<u64>;
    /// The pre-applications of an institution, oldest list first, in row order.
    fn pre_applications(&self, institution: &InstitutionId) -> Result<Vec<PreApplication>>;
    /// A pre-application by id.
    fn pre_application(&self, id: &str) -> Result<Option<PreApplication>>;
}
