//! `nesca applicant list|show|receive-wet|consent`: operators' view of invited people
//! completing their applications, the receipt of a wet-signed form, and e-Onay consents.

use std::path::PathBuf;

use ca_core::institution::InstitutionId;
use ca_core::store::Store;
use ca_core::{Tckn, UnixTime};
use clap::Args;
use nesca_ra::enrollment::{ApplicantView, Enrollments};
use serde_json::json;

use super::{emit, read_limited};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::wiring;

/// The largest scan or evidence file read.
pub(crate) const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

#[derive(Args)]
pub(crate) struct ListArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The institution whose lists' people to show
    #[arg(long)]
    institution: String,
}

#[derive(Args)]
pub(crate) struct ShowArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The application (pre-application id, `pa-…`)
    #[arg(long)]
    id: String,
}

#[derive(Args)]
pub(crate) struct ReceiveWetArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The application (pre-application id, `pa-…`)
    #[arg(long)]
    id: String,
    /// The scan of the signed paper form, kept as evidence
    #[arg(long)]
    scan: PathBuf,
}

#[derive(Args)]
pub(crate) struct ConsentArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// The person's T.C. Kimlik No
    #[arg(long)]
    tckn: String,
    /// The e-Devlet reference of the consent
    #[arg(long)]
    reference: String,
    /// The consent's evidence as received (kept; its SHA-256 goes in the audit log)
    #[arg(long)]
    evidence: PathBuf,
    /// When the person gave it (RFC 3339); default now
    #[arg(long)]
    given_at: Option<String>,
}

fn open(config: &std::path::Path) -> Result<(Enrollments, std::sync::Arc<dyn Store>)> {
    let cfg = Loaded::read(config)?;
    let store: std::sync::Arc<dyn Store> = wiring::open_existing_store(&cfg)?;
    Ok((Enrollments::new(store.clone(), wiring::clock()), store))
}

/// An application as operators see it (hashes and codes never).
pub(crate) fn to_json(v: &ApplicantView) -> serde_json::Value {
    let e = &v.enrollment;
    json!({
        "id": v.pre.id,
        "institution": v.pre.institution.as_str(),
        "row": v.pre.row,
        "tckn": v.pre.tckn.as_str(),
        "given_name": v.pre.given_name,
        "surname": v.pre.surname,
        "email": v.pre.email,
        "mobile": v.pre.mobile,
        "list_status": v.pre.status.as_str(),
        "stage": e.stage.as_str(),
        "locked_until": e.locked_until.map(UnixTime::secs),
        "do_not_publish": e.do_not_publish,
        "delivery_address": e.delivery_address,
        "approval_method": e.approval_method.map(|m| m.as_str()),
        "approved_at": e.approved_at.map(UnixTime::secs),
        "produce_after": e.produce_after.map(UnixTime::secs),
        "card_csr": e.card_csr.is_some(),
        "production_attempts": e.production_attempts,
        "last_error": e.last_error,
        "serial": e.serial.map(|s| s.to_hex()),
        "produced_at": e.produced_at.map(UnixTime::secs),
        "package_written": e.package_written,
    })
}

pub(crate) fn list(a: ListArgs) -> Result<()> {
    let (enrollments, store) = open(&a.config)?;
    let id = InstitutionId::parse(&a.institution)?;
    let mut text = String::new();
    for pre in store.pre_applications(&id)? {
        if let Some(v) = enrollments.view(&pre.id)? {
            text.push_str(&to_json(&v).to_string());
            text.push('\n');
        }
    }
    emit(&text)
}

fn view(enrollments: &Enrollments, id: &str) -> Result<ApplicantView> {
    enrollments.view(id)?.ok_or_else(|| CliError::Argument {
        field: "id",
        rule: format!("no application {id}"),
    })
}

/// An application with what its approval recorded (`approval`: `null` before an approval
/// method is chosen; never the evidence itself, only its SHA-256 and what it names).
fn with_approval(enrollments: &Enrollments, v: &ApplicantView) -> Result<serde_json::Value> {
    let mut out = to_json(v);
    let approval = enrollments.approval_record(&v.pre.id)?.map(|r| {
        json!({
            "method": r.method.as_str(),
            "approval_text_sha256": r.approval_text_sha256.map(|d| d.to_hex()),
            "approved_at": r.approved_at.map(UnixTime::secs),
            "evidence_sha256": r.evidence_sha256.map(|d| d.to_hex()),
            "consent": r.consent.map(|c| json!({
                "reference": c.reference,
                "evidence_sha256": c.evidence_sha256.to_hex(),
                "given_at": c.given_at.secs(),
            })),
            "signer_serial": r.signer_serial.map(|s| s.to_hex()),
        })
    });
    out["approval"] = approval.unwrap_or(serde_json::Value::Null);
    Ok(out)
}

pub(crate) fn show(a: ShowArgs) -> Result<()> {
    let (enrollments, _) = open(&a.config)?;
    let v = view(&enrollments, &a.id)?;
    emit(&format!("{}\n", with_approval(&enrollments, &v)?))
}

/// A new access password for an invited person (lost e-mail, or locked out by guesses from an
/// address they share): queued for the outbox, every sign-in lock on them lifted.
pub(crate) fn resend_password(a: ShowArgs) -> Result<()> {
    let (enrollments, store) = open(&a.config)?;
    let institutions = nesca_ra::institutions::Institutions::new(store);
    let now = wiring::clock().now_unix();
    institutions.resend_access_password(&ca_core::Principal::HostOperator, &a.id, now)?;
    emit(&format!("{}\n", to_json(&view(&enrollments, &a.id)?)))
}

pub(crate) fn receive_wet(a: ReceiveWetArgs) -> Result<()> {
    let (enrollments, _) = open(&a.config)?;
    let scan = read_limited("scan", &a.scan, MAX_FILE_BYTES)?;
    enrollments.receive_wet(&a.id, scan, &ca_core::Principal::HostOperator)?;
    let v = view(&enrollments, &a.id)?;
    emit(&format!("{}\n", with_approval(&enrollments, &v)?))
}

pub(crate) fn consent(a: ConsentArgs) -> Result<()> {
    let (enrollments, _) = open(&a.config)?;
    let tckn = Tckn::parse(&a.tckn).map_err(|e| CliError::Argument {
        field: "tckn",
        rule: e.to_string(),
    })?;
    let evidence = read_limited("evidence", &a.evidence, MAX_FILE_BYTES)?;
    let given_at = match &a.given_at {
        None => wiring::clock().now_unix(),
        Some(t) => UnixTime::from_secs(
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|e| CliError::Argument {
                    field: "given-at",
                    rule: format!("\"{t}\" is not an RFC 3339 time: {e}"),
                })?
                .unix_timestamp(),
        ),
    };
    let c = enrollments.record_consent(
        &tckn,
        &a.reference,
        evidence,
        given_at,
        &ca_core::Principal::HostOperator,
    )?;
    emit(&format!(
        "{}\n",
        json!({
            "tckn": c.tckn.as_str(),
            "reference": c.reference,
            "evidence_sha256": c.evidence_sha256,
            "given_at": c.given_at.secs(),
            "recorded_at": c.recorded_at.secs(),
        })
    ))
}
