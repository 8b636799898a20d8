//! The institutional channel's parties: institutions that get NES for their staff, and the
//! e-İmza officer who alone submits each institution's FRM.01.03 lists (docs/STANDARDS.md
//! "The Turkish channels", Institutional batch).

use crate::error::{CaError, Result};

crate::short_id::short_id!(
    /// An institution's id in nesca (`nesca institution add --id`).
    InstitutionId,
    "institution"
);

/// A Turkish tax number (vergi kimlik numarası): 10 digits. Its check digit is not verified
/// here: the algorithm is not part of nesca's standards, and refusing a real institution's
/// number would be worse than accepting a typo the operator sees in `institution list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxNo(String);

impl TaxNo {
    pub fn parse(s: &str) -> Result<TaxNo> {
        if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CaError::invalid("tax-no", "must be exactly 10 digits"));
        }
        Ok(TaxNo(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who pays for an institution's certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer {
    /// The institution: each certificate is an invoice line to it.
    Institution,
    /// Each person pays for their own certificate.
    Person,
}

impl Payer {
    pub fn as_str(self) -> &'static str {
        match self {
            Payer::Institution => "institution",
            Payer::Person => "person",
        }
    }

    pub fn parse(s: &str) -> Result<Payer> {
        match s {
            "institution" => Ok(Payer::Institution),
            "person" => Ok(Payer::Person),
            other => Err(CaError::invalid(
                "payer",
                format!("\"{other}\" must be institution or person"),
            )),
        }
    }
}

/// A registered institution and its e-İmza officer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstitutionRecord {
    pub id: InstitutionId,
    pub name: String,
    pub tax_no: TaxNo,
    pub payer: Payer,
    /// The officer's T.C. Kimlik No.
    pub officer_tckn: crate::Tckn,
    /// The officer's certificate (their NES, or a client certificate nesca issued), DER: the
    /// only signer whose lists this institution accepts.
    pub officer_cert_der: Vec<u8>,
    pub created_at: crate::UnixTime,
    pub active: bool,
}

/// How an uploaded list is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSignature {
    /// A detached CMS signature of the officer over the file, verified before the import.
    Cms(Vec<u8>),
    /// Signed on paper: the scan is kept, and the list's rows wait until an operator confirms
    /// the paper.
    Wet(Vec<u8>),
}

impl ListSignature {
    /// How the list is signed, as the store records it.
    pub fn kind(&self) -> crate::store::ListSignatureKind {
        match self {
            ListSignature::Cms(_) => crate::store::ListSignatureKind::Cms,
            ListSignature::Wet(_) => crate::store::ListSignatureKind::Wet,
        }
    }
}

/// One valid row of a list, typed: becomes a pre-application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    /// The row number in the file (header is row 1).
    pub row: u32,
    pub tckn: crate::Tckn,
    pub given_name: crate::PersonName,
    pub surname: crate::PersonName,
    pub email: crate::Email,
    pub mobile: crate::TrMobile,
    pub unit: String,
    pub title: Option<String>,
}

/// A list to import: one store transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListImport {
    pub institution: InstitutionId,
    /// SHA-256 of the file, lower-case hex: the same file again imports nothing new.
    pub file_sha256: String,
    pub file_name: String,
    pub signature: ListSignature,
    pub rows: Vec<ListRow>,
    /// Rows the list reader found invalid (they are in the report, not in `rows`).
    pub invalid_rows: u64,
    pub actor: crate::Principal,
    pub at: crate::UnixTime,
}

/// What importing a list did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The same file was imported before: nothing was written.
    pub replayed: bool,
    /// Pre-applications created (row, id).
    pub created: Vec<(u32, String)>,
    /// Valid rows whose person already has an open application (row, its id): not imported.
    pub already_open: Vec<(u32, String)>,
    /// Accepted, or awaiting confirmation for a wet-signed list.
    pub status: crate::store::ImportStatus,
}
