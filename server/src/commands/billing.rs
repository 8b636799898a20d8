//! `nesca billing report`: the invoice lines of an institution's produced certificates for
//! one month (Turkey's time), as csv.

use std::path::PathBuf;

use ca_core::institution::InstitutionId;
use clap::Args;
use nesca_frm_list::csv_field;

use super::emit;
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::wiring;

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The institution
    #[arg(long)]
    institution: String,
    /// The month, YYYY-MM
    #[arg(long)]
    month: String,
}

/// The report's header row, as README.md and docs/channels/batch-import.md document it (a
/// test holds them to it).
pub(crate) const INVOICE_CSV_HEADER: &str =
    "produced_at,serial,holder_tckn,holder_name,item,payer,payer_name,payer_id,application";

fn check_month(m: &str) -> Result<()> {
    let ok = m.len() == 7
        && m.as_bytes()[4] == b'-'
        && m[..4].bytes().all(|b| b.is_ascii_digit())
        && m[5..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n));
    if ok {
        Ok(())
    } else {
        Err(CliError::Argument {
            field: "month",
            rule: format!("\"{m}\" must be YYYY-MM"),
        })
    }
}

pub(crate) fn report(a: ReportArgs) -> Result<()> {
    check_month(&a.month)?;
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let id = InstitutionId::parse(&a.institution)?;
    if store.institution(&id)?.is_none() {
        return Err(CliError::Argument {
            field: "institution",
            rule: format!("no registered institution \"{id}\""),
        });
    }
    let mut csv = format!("{INVOICE_CSV_HEADER}\r\n");
    for l in store.invoice_lines(id.as_str(), &a.month)? {
        let p = &l.produced;
        let row = [
            ca_core::rfc3339(l.produced_at.to_system()),
            l.serial.to_hex(),
            p.holder_tckn.to_string(),
            p.holder_name.clone(),
            p.item.clone(),
            p.payer.kind.as_str().to_owned(),
            p.payer.name.clone(),
            p.payer.id.clone(),
            p.pre_application.clone(),
        ];
        csv.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        csv.push_str("\r\n");
    }
    emit(&csv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_checked_and_fields_quoted() {
        assert!(check_month("2026-11").is_ok());
        for bad in ["2026-13", "2026-1", "26-11-01", "2026/11", "abcd-11"] {
            assert!(check_month(bad).is_err(), "{bad}");
        }
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd"), "'=cmd");
    }

    /// The header the report prints is the one the documents give, word for word.
    #[test]
    fn the_documents_give_the_header_the_report_prints() {
        for (doc, text) in [
            ("README.md", include_str!("../../../README.md")),
            (
                "docs/channels/batch-import.md",
                include_str!("../../../docs/channels/batch-import.md"),
            ),
        ] {
            assert!(
                text.contains(&format!("`{INVOICE_CSV_HEADER}`")),
                "{doc} does not give the header {INVOICE_CSV_HEADER}"
            );
        }
    }
}
