//! `nesca import`: an institution's FRM.01.03 list (xlsx or csv), signed by its e-İmza officer
//! (detached CMS) or marked wet-signed (the scan kept, the rows held until an operator confirms
//! the paper). Every row is checked; the valid ones become pre-applications in one store
//! transaction, and the per-row report says why the others did not.

use std::io::Write as _;
use std::path::PathBuf;

use ca_core::institution::{InstitutionId, ListSignature};
use ca_core::Principal;
use clap::Args;
use nesca_frm_list::ListFormat;
use serde_json::json;

use super::{emit, pem_or_der, read_limited, OutFile};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::list_import::{import_file, ImportError};
use crate::wiring;
use nesca_ra::held_lists::HeldLists;

/// The largest list file read (the list reader refuses more rows than it can take anyway).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Args)]
#[command(group(clap::ArgGroup::new("signed").required(true).args(["signature", "wet_scan"])))]
pub(crate) struct ImportArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The institution's id (`nesca institution list`)
    #[arg(long)]
    institution: String,
    /// The list: .xlsx or .csv
    #[arg(long)]
    file: PathBuf,
    /// The officer's detached CMS signature over the file (DER or PEM)
    #[arg(long)]
    signature: Option<PathBuf>,
    /// The scan of the list signed on paper: the rows wait for an operator's confirmation
    #[arg(long)]
    wet_scan: Option<PathBuf>,
    /// Also write the per-row report as csv (row,field,reason) here
    #[arg(long)]
    report_csv: Option<PathBuf>,
    /// Show progress on stderr (always shown when stderr is a terminal)
    #[arg(long)]
    progress: bool,
}

pub(crate) fn run(a: ImportArgs) -> Result<()> {
    use std::io::IsTerminal as _;
    let show = a.progress || std::io::stderr().is_terminal();
    let progress = |line: String| {
        if show {
            let _ = writeln!(std::io::stderr(), "nesca import: {line}");
        }
    };
    // Parse at the edge, then read: nothing is written before everything is checked.
    let institution = InstitutionId::parse(&a.institution)?;
    let format =
        ListFormat::from_file_name(&a.file.to_string_lossy()).map_err(|e| CliError::Argument {
            field: "file",
            rule: e.to_string(),
        })?;
    let signature = match (&a.signature, &a.wet_scan) {
        (Some(p), None) => ListSignature::Cms(pem_or_der(
            "signature",
            read_limited("signature", p, MAX_FILE_BYTES)?,
            &["CMS", "PKCS7"],
        )?),
        (None, Some(p)) => ListSignature::Wet(read_limited("wet-scan", p, MAX_FILE_BYTES)?),
        _ => {
            return Err(CliError::Argument {
                field: "signature",
                rule: "give exactly one of --signature and --wet-scan".into(),
            })
        }
    };
    let report_out = match &a.report_csv {
        Some(p) => Some(OutFile::claim("report-csv", p)?),
        None => None,
    };
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;

    let file = read_limited("file", &a.file, MAX_FILE_BYTES)?;
    progress(format!("read {} bytes of {}", file.len(), a.file.display()));
    let file_name = a
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let imported = import_file(
        store,
        &institution,
        &file_name,
        format,
        &file,
        signature,
        &ca_core::Principal::HostOperator,
        &progress,
    )
    .map_err(|e| match e {
        ImportError::List(rule) => CliError::Argument {
            field: "file",
            rule,
        },
        ImportError::Ra(e) => CliError::Ra(e),
    })?;
    if let Some(out) = report_out {
        out.commit(imported.csv().as_bytes())?;
    }
    emit(&format!("{}\n", imported.summary(&institution)))
}

/// `confirm-list` and `reject-list`: which held list.
#[derive(Args)]
pub(crate) struct HeldListArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The institution's id
    #[arg(long)]
    institution: String,
    /// The wet-signed list's SHA-256 (as `nesca import` printed it)
    #[arg(long)]
    file_sha256: String,
}

/// Runs `act` on the held list `a` names with the configuration's store, and prints its
/// institution and digest with the fields `act` answered.
fn on_held_list(
    a: HeldListArgs,
    act: impl FnOnce(&HeldLists, &Principal, &InstitutionId, &str) -> Result<serde_json::Value>,
) -> Result<()> {
    let institution = InstitutionId::parse(&a.institution)?;
    let cfg = Loaded::read(&a.config)?;
    let lists = HeldLists::new(wiring::open_existing_store(&cfg)?, wiring::clock());
    let outcome = act(
        &lists,
        &Principal::HostOperator,
        &institution,
        &a.file_sha256,
    )?;
    let mut answer = json!({
        "institution": institution.as_str(),
        "file_sha256": a.file_sha256.to_ascii_lowercase(),
    });
    if let (Some(all), serde_json::Value::Object(more)) = (answer.as_object_mut(), outcome) {
        all.extend(more);
    }
    emit(&format!("{answer}\n"))
}

/// An operator saw the paper of a wet-signed list: its held rows are invited now, except
/// people invited meanwhile through another list.
pub(crate) fn confirm(a: HeldListArgs) -> Result<()> {
    on_held_list(a, |lists, by, institution, sha| {
        let done = lists.confirm(by, institution, sha)?;
        Ok(
            json!({ "status": "accepted", "invited": done.invited, "already_open": done.already_open }),
        )
    })
}

/// An operator refuses a wet-signed list: its held rows are closed, nobody is invited.
pub(crate) fn reject(a: HeldListArgs) -> Result<()> {
    on_held_list(a, |lists, by, institution, sha| {
        let closed = lists.reject(by, institution, sha)?;
        Ok(json!({ "status": "rejected", "closed": closed }))
    })
}
