//! `nesca revoke|suspend|unsuspend`: lifecycle changes on the holder's behalf.

use std::path::PathBuf;

use ca_core::lifecycle::{LifecycleAction, LifecycleRequest, RequestId};
use ca_core::{rfc3339, CaError, Serial, Tckn, UnixTime};
use clap::Args;
use nesca_ra::lifecycle::Lifecycle;

use super::emit;
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::wiring;

#[derive(Args)]
pub(crate) struct LifecycleArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// Serial number of the certificate, hexadecimal
    #[arg(long)]
    serial: String,
    /// The T.C. Kimlik No of the holder asking (must be the certificate's subject). Required
    /// for a NES; left out for a partner's role or secure-communication certificate, which the
    /// operator suspends and revokes
    #[arg(long)]
    holder_tckn: Option<String>,
    /// RFC 5280 reason: keyCompromise, affiliationChanged, superseded, cessationOfOperation,
    /// privilegeWithdrawn (revoke; omitted = unspecified); certificateHold (suspend)
    #[arg(long)]
    reason: Option<String>,
    /// keyCompromise only: since when the key is known or suspected to be compromised
    /// (RFC 3339, e.g. 2026-11-20T10:00:00Z; not in the future)
    #[arg(long)]
    invalidity_date: Option<String>,
    /// The caller's id for this request: the same id again answers with the first outcome
    /// instead of applying twice (default: a fresh random id)
    #[arg(long)]
    request_id: Option<String>,
}

fn parse_time(field: &'static str, s: &str) -> Result<UnixTime> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| CliError::Argument {
            field,
            rule: "must be an RFC 3339 time such as 2026-11-20T10:00:00Z".into(),
        })?;
    Ok(UnixTime::from_secs(t.unix_timestamp()))
}

/// Runs `verb` (suspend, unsuspend, revoke) and prints the new status.
pub(crate) fn run(verb: &str, a: LifecycleArgs) -> Result<()> {
    let serial = Serial::parse_hex(&a.serial).map_err(|e| CliError::Argument {
        field: "serial",
        rule: e.rule(),
    })?;
    let holder = a
        .holder_tckn
        .as_deref()
        .map(|t| {
            Tckn::parse(t).map_err(|e| CaError::Invalid {
                field: "holder_tckn",
                rule: e.to_string(),
            })
        })
        .transpose()?;
    let invalidity_date = a
        .invalidity_date
        .as_deref()
        .map(|s| parse_time("invalidity_date", s))
        .transpose()?;
    let action = LifecycleAction::parse(verb, a.reason.as_deref(), invalidity_date)?;
    let request_id = match a.request_id.as_deref() {
        Some(id) => RequestId::new(id)?,
        None => RequestId::random(),
    };
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let lifecycle = Lifecycle::new(store, crate::wiring::clock());
    let outcome = lifecycle.apply(LifecycleRequest {
        request_id,
        issuer: None,
        serial,
        holder,
        action,
        actor: ca_core::Principal::HostOperator,
    })?;
    let at = rfc3339(outcome.at);
    let mut line = format!("{} serial={} at={at}", outcome.status, outcome.serial);
    if let Some(r) = outcome.reason {
        line.push_str(&format!(" reason={r}"));
    }
    if outcome.replayed {
        line.push_str(" (request seen before; nothing changed)");
    }
    line.push('\n');
    emit(&line)
}
