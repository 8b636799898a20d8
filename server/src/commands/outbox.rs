//! `nesca outbox send|list`: the notification outbox (access passwords of invited people).

use std::sync::Arc;

use ca_core::store::prelude::*;
use nesca_ra::outbox::{EmailSender, EmlDirectory, Outbox, SmsDirectory, SmsSender};
use serde_json::json;

use super::emit;
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::senders::{SmsCommand, SmtpSender, SmtpSettings, SmtpTls};
use crate::{wiring, ConfigArg};

/// Messages one pass sends at most.
const PASS_LIMIT: u32 = 10_000;

/// The outbox as configured: e-mail to `.eml` files in `[outbox] email_dir` or through
/// `[outbox.smtp]`; SMS to `.sms` files in `sms_dir` or through `sms_command`.
pub(crate) fn configured(cfg: &Loaded, store: Arc<dyn Store>) -> Result<Outbox> {
    let o = &cfg.raw.outbox;
    let completion_url = completion_url(cfg);
    if completion_url.is_none() {
        tracing::warn!("neither [outbox] completion_url nor [portal] listen or public_url is set: access-password e-mails wait (and are retried) until one is, for they would name no page to complete the application on");
    }
    let email: Arc<dyn EmailSender> = match &o.smtp {
        None => Arc::new(EmlDirectory {
            dir: cfg.path(&o.email_dir),
            from: o.from.clone(),
        }),
        Some(smtp) => Arc::new(smtp_sender(cfg, smtp)?),
    };
    let sms: Arc<dyn SmsSender> = match &o.sms_command {
        None => Arc::new(SmsDirectory {
            dir: cfg.path(&o.sms_dir),
        }),
        Some(command) => Arc::new(SmsCommand {
            program: command[0].clone().into(),
            args: command[1..].to_vec(),
            timeout: std::time::Duration::from_secs(30),
        }),
    };
    let mut outbox = Outbox::configured(store, wiring::clock(), email, sms, completion_url);
    // Expiry reminders link to where holders renew: `[portal] renewal_url`, else the portal.
    outbox.renewal_url = cfg.raw.portal.renewal_link();
    Ok(outbox)
}

/// The page the access-password e-mail names: `[outbox] completion_url`, else the portal's
/// applicants' page (`{portal URL}basvuru`, where an invited person signs in with the
/// password) when the portal is served or has a public URL; `None` when neither is set.
pub(crate) fn completion_url(cfg: &Loaded) -> Option<String> {
    cfg.raw.outbox.completion_url.clone().or_else(|| {
        cfg.raw
            .portal
            .url()
            .map(|u| format!("{u}{APPLICANTS_PAGE}"))
    })
}

/// The portal's page where invited people sign in (`server/src/portal/applicant.rs`).
const APPLICANTS_PAGE: &str = "basvuru";

fn smtp_sender(cfg: &Loaded, smtp: &crate::config::SmtpSection) -> Result<SmtpSender> {
    let password = match &smtp.password_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(secrecy::SecretString::from(v)),
            _ => {
                return Err(CliError::config(
                    "outbox.smtp.password_env",
                    format!("environment variable {var} holding the SMTP password is not set"),
                ))
            }
        },
    };
    let ca_pem = match &smtp.ca_file {
        None => None,
        Some(f) => {
            let path = cfg.path(f);
            Some(std::fs::read(&path).map_err(CliError::io("cannot read", &path))?)
        }
    };
    SmtpSender::new(SmtpSettings {
        host: smtp.host.clone(),
        port: smtp.port,
        tls: match smtp.tls.as_str() {
            "none" => SmtpTls::None,
            "tls" => SmtpTls::Tls,
            _ => SmtpTls::StartTls,
        },
        username: smtp.username.clone(),
        password,
        ca_pem,
        from: cfg.raw.outbox.from.clone(),
        timeout: std::time::Duration::from_secs(smtp.timeout_seconds),
    })
    .map_err(|e| CliError::config("outbox.smtp", e.to_string()))
}

/// Delivers every due message once; prints how many went and how many wait for a retry.
pub(crate) fn send(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let report = configured(&cfg, store)?.deliver_due(PASS_LIMIT)?;
    emit(&format!(
        "{}\n",
        json!({ "sent": report.sent, "failed": report.failed })
    ))
}

/// One JSON object per message (never its text: it is made when sent and holds a secret).
pub(crate) fn list(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let mut text = String::new();
    for (m, status) in store.outbox()? {
        let line = json!({
            "id": m.id,
            "kind": m.kind.as_str(),
            "subject_ref": m.subject_ref,
            "recipient": m.recipient,
            "status": status.as_str(),
            "attempts": m.attempts,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    emit(&text)
}
