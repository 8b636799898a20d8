//! Importing an FRM.01.03 list, as the `nesca import` command and the batch-import channel's
//! host API both do it: read and check every row (`nesca-frm-list`), have the registration
//! authority (`ra::list_import`) verify the officer's signature and store the valid rows in one
//! transaction, and put together the
//! per-row report (the reader's problems and the people who already have an open application).

use std::sync::Arc;

use ca_core::institution::{ImportOutcome, InstitutionId, ListImport, ListRow, ListSignature};
use ca_core::store::Store;
use ca_core::CaError;
use nesca_frm_list::{read_list, report_csv, ListFormat, ListReport, RowProblem};
use nesca_ra::list_import::ListImports;
use serde_json::json;

/// One import's result.
pub(crate) struct Imported {
    pub outcome: ImportOutcome,
    /// The reader's report, with the already-open rows added as problems, in row order.
    pub report: ListReport,
    /// Valid rows the reader found (before the store's already-open check).
    pub valid: usize,
}

impl Imported {
    /// Rows with no problem: valid, and their person had no open application. Every data
    /// row of the list is counted once, here or in [`Imported::invalid_rows`].
    pub(crate) fn valid_rows(&self) -> usize {
        self.valid.saturating_sub(self.outcome.already_open.len())
    }

    /// Rows with a problem: those the reader refused, and those whose person already has an
    /// open application (`already_open`, also among the problems).
    pub(crate) fn invalid_rows(&self) -> usize {
        self.report.counts.invalid + self.outcome.already_open.len()
    }

    /// The report as nesca prints it (`nesca import`, the channel's answer).
    pub(crate) fn summary(&self, institution: &InstitutionId) -> serde_json::Value {
        let problems: Vec<serde_json::Value> = self
            .report
            .invalid
            .iter()
            .map(|p| json!({ "row": p.row, "field": p.field, "reason": p.reason }))
            .collect();
        json!({
            "institution": institution.as_str(),
            "file_sha256": self.report.file_sha256,
            "status": self.outcome.status.as_str(),
            "replayed": self.outcome.replayed,
            "rows": {
                "valid": self.valid_rows(),
                "invalid": self.invalid_rows(),
                "created": self.outcome.created.len(),
                "already_open": self.outcome.already_open.len(),
            },
            "problems": problems,
            "warnings": self.report.warnings,
        })
    }

    /// The per-row report as csv (`row,field,reason`).
    pub(crate) fn csv(&self) -> String {
        report_csv(&self.report)
    }
}

/// Why an import did not happen.
pub(crate) enum ImportError {
    /// The file is not a readable list (`file: …`).
    List(String),
    Ra(nesca_ra::RaError),
}

impl From<CaError> for ImportError {
    fn from(e: CaError) -> Self {
        ImportError::Ra(e.into())
    }
}

impl From<nesca_ra::RaError> for ImportError {
    fn from(e: nesca_ra::RaError) -> Self {
        ImportError::Ra(e)
    }
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::List(rule) => write!(f, "file: {rule}"),
            ImportError::Ra(e) => e.fmt(f),
        }
    }
}

/// Reads, checks and imports `file`; `progress` hears each step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn import_file(
    store: Arc<dyn Store>,
    institution: &InstitutionId,
    file_name: &str,
    format: ListFormat,
    file: &[u8],
    signature: ListSignature,
    actor: &ca_core::Principal,
    progress: &dyn Fn(String),
) -> Result<Imported, ImportError> {
    let mut report = read_list(file, format).map_err(|e| ImportError::List(e.to_string()))?;
    let valid = report.valid.len();
    progress(format!(
        "checked {} rows: {} valid, {} invalid",
        valid + report.counts.invalid,
        valid,
        report.counts.invalid
    ));
    // Moved, not copied: a list may hold a hundred thousand rows.
    let rows: Vec<ListRow> = std::mem::take(&mut report.valid)
        .into_iter()
        .map(|r| ListRow {
            row: r.row,
            tckn: r.tckn,
            given_name: r.given_name,
            surname: r.surname,
            email: r.email,
            mobile: r.mobile,
            unit: r.unit,
            title: r.title,
        })
        .collect();
    progress(format!(
        "storing {} pre-applications in one transaction",
        rows.len()
    ));
    let crls = std::sync::Arc::new(crate::officer_crl::HttpCrls);
    let imports = ListImports::new(store, crate::wiring::clock(), crls);
    let outcome = imports.import(
        file,
        ListImport {
            institution: institution.clone(),
            file_sha256: report.file_sha256.clone(),
            file_name: file_name.to_owned(),
            signature,
            rows,
            invalid_rows: report.counts.invalid as u64,
            actor: actor.clone(),
            at: ca_core::UnixTime::EPOCH,
        },
    )?;
    progress(format!(
        "done: {} created, {} already open elsewhere{}",
        outcome.created.len(),
        outcome.already_open.len(),
        if outcome.replayed {
            " (this file was imported before: nothing new)"
        } else {
            ""
        }
    ));
    let named = imports.name_open(institution, &outcome.already_open)?;
    report
        .invalid
        .extend(named.into_iter().map(|(row, own)| RowProblem {
            row,
            field: "tckn",
            reason: already_open_reason(own),
        }));
    report.invalid.sort_by_key(|p| p.row);
    Ok(Imported {
        outcome,
        report,
        valid,
    })
}

/// The report's reason for a person who already has an open application: its id when it is
/// the importing institution's own (`own`), none when another institution's list invited them.
fn already_open_reason(own: Option<String>) -> String {
    match own {
        Some(id) => {
            format!(
                "already has an open application ({id}) from an earlier list of this institution"
            )
        }
        None => "already has an open application through another institution's list".to_owned(),
    }
}
