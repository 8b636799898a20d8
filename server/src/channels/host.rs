//! The host API a channel plugin gets: submit an issuance application, a lifecycle request on
//! the holder's behalf, a certificate lookup, and logging. Nothing else: no key, no HSM, no
//! SQL, no file system. Every input is parsed into ca-core's typed values here, at the edge.

use std::sync::Arc;

use ca_core::engine::{Engine, NesApplication, SigningCa};
use ca_core::lifecycle::{Lifecycle, LifecycleAction, LifecycleRequest, RequestId};
use ca_core::profile::NesProfile;
use ca_core::store::{ApplicationStatus, ChannelApplication, Store};
use ca_core::{CaError, PersonName, Serial, Tckn, VerifiedCsr};
use nesca_plugin_api::host_api::{
    self, ApplicationInfo, CertificateInfo, Issued, LifecycleCall, LifecycleOutcome,
    LookupApplication, LookupCertificate, SubmitApplication,
};
use nesca_plugin_api::{HostApi, LogLevel};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// What the host needs to answer plugins.
pub struct ChannelHost {
    pub store: Arc<dyn Store>,
    pub lifecycle: Lifecycle,
    /// `None` in `nesca plugins list`, which loads plugins without issuing anything.
    pub issuance: Option<Issuing>,
}

/// Issuance as channels reach it: the engine, the issuing CA and the NES profile.
pub struct Issuing {
    pub engine: Engine,
    pub ca: SigningCa,
    pub nes: NesProfile,
    /// The chain handed back with each certificate: issuing CA, then root (DER).
    pub chain_der: Vec<Vec<u8>>,
}

/// A channel's reference: 1–128 of `A-Z a-z 0-9 . _ : -` (a digest in hex or base64url fits).
fn check_channel_ref(r: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if r.is_empty() || r.len() > 128 || !r.chars().all(ok_char) {
        return Err(
            "channel_ref: must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'".into(),
        );
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(method: &str, json: &[u8]) -> Result<T, String> {
    serde_json::from_slice(json).map_err(|e| format!("{method}: request does not parse: {e}"))
}

fn answer<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("response does not encode: {e}"))
}

fn invalid(field: &'static str) -> impl FnOnce(String) -> String {
    move |rule| format!("{field}: {rule}")
}

impl ChannelHost {
    /// Issues for a channel's application, once per `channel_ref`: the inputs are checked
    /// first (a refused input uses up nothing), then the reference is recorded as pending
    /// before anything is signed, so a replay or a retry gets the first result and never a
    /// second certificate.
    fn submit(&self, plugin: &str, a: SubmitApplication) -> Result<Issued, String> {
        let Some(iss) = &self.issuance else {
            return Err("submit_application: issuance is not available here".into());
        };
        check_channel_ref(&a.channel_ref)?;
        let tckn = Tckn::parse(&a.tckn).map_err(|e| format!("tckn: {e}"))?;
        let given_name =
            PersonName::parse("given_name", &a.given_name).map_err(|e| e.to_string())?;
        let surname = PersonName::parse("surname", &a.surname).map_err(|e| e.to_string())?;
        let csr = VerifiedCsr::parse(&a.csr_der).map_err(|e| e.to_string())?;
        if let Some(days) = a.validity_days {
            ca_core::profile::check_validity_days(&iss.nes, days).map_err(|e| e.to_string())?;
        }
        let actor = format!("plugin:{plugin}");
        let now = ca_core::clock::unix_seconds(std::time::SystemTime::now());
        if let Some(seen) = self
            .store
            .begin_application(plugin, &a.channel_ref, &actor, now)
            .map_err(|e| e.to_string())?
        {
            return self.first_result(iss, seen);
        }
        let issued = iss.engine.issue_nes(
            &iss.ca,
            &iss.nes,
            NesApplication {
                csr,
                tckn,
                given_name,
                surname,
                validity_days: a.validity_days,
            },
            &actor,
        );
        let outcome = issued.as_ref().map(|i| i.serial).map_err(|e| e.to_string());
        self.store
            .finish_application(plugin, &a.channel_ref, outcome, &actor, now)
            .map_err(|e| e.to_string())?;
        let issued = issued.map_err(|e| e.to_string())?;
        tracing::info!(plugin, serial = %issued.serial, channel_ref = %a.channel_ref, "issued through a channel");
        Ok(Issued {
            serial: issued.serial.to_hex(),
            certificate_der: issued.cert_der,
            chain_der: iss.chain_der.clone(),
        })
    }

    /// The answer to a `channel_ref` seen before: the same certificate, or the same refusal.
    fn first_result(&self, iss: &Issuing, seen: ChannelApplication) -> Result<Issued, String> {
        match (seen.status, seen.serial) {
            (ApplicationStatus::Issued, Some(serial)) => {
                let record = self
                    .store
                    .get(Some(&iss.ca.context.id), &serial)
                    .map_err(|e| e.to_string())?
                    .and_then(|r| r.cert_der)
                    .ok_or_else(|| {
                        format!("certificate {serial} of a replayed application is missing")
                    })?;
                Ok(Issued {
                    serial: serial.to_hex(),
                    certificate_der: record,
                    chain_der: iss.chain_der.clone(),
                })
            }
            (ApplicationStatus::Refused, _) => Err(seen.error.unwrap_or_default()),
            _ => Err(format!(
                "channel_ref: application {} is still being processed",
                seen.channel_ref
            )),
        }
    }

    fn lookup_application(
        &self,
        plugin: &str,
        l: LookupApplication,
    ) -> Result<ApplicationInfo, String> {
        let a = self
            .store
            .application(plugin, &l.channel_ref)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("channel_ref: no application {}", l.channel_ref))?;
        Ok(ApplicationInfo {
            channel_ref: a.channel_ref,
            status: a.status.as_str().to_string(),
            serial: a.serial.map(|s| s.to_hex()),
            error: a.error,
            submitted_at: a.created_at,
        })
    }

    fn lifecycle(&self, plugin: &str, c: LifecycleCall) -> Result<LifecycleOutcome, String> {
        let serial = Serial::from_hex(&c.serial).map_err(invalid("serial"))?;
        let holder = Tckn::parse(&c.holder_tckn).map_err(|e| format!("holder_tckn: {e}"))?;
        let action = LifecycleAction::parse(&c.action, c.reason.as_deref(), c.invalidity_date)
            .map_err(|e| e.to_string())?;
        let request_id = RequestId::new(&c.request_id).map_err(|e| e.to_string())?;
        let o = self
            .lifecycle
            .apply(LifecycleRequest {
                request_id,
                issuer: None,
                serial,
                holder: Some(holder),
                action,
                actor: format!("plugin:{plugin}"),
            })
            .map_err(|e| e.to_string())?;
        Ok(LifecycleOutcome {
            status: o.status.as_str().to_string(),
            at: o.at,
            reason: o.reason.map(|r| r.name().to_string()),
            replayed: o.replayed,
        })
    }

    fn lookup(&self, l: LookupCertificate) -> Result<CertificateInfo, String> {
        let serial = Serial::from_hex(&l.serial).map_err(invalid("serial"))?;
        let r = self
            .store
            .get(None, &serial)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                CaError::NotFound {
                    serial: serial.to_hex(),
                }
                .to_string()
            })?;
        Ok(CertificateInfo {
            serial: r.serial.to_hex(),
            status: r.status.as_str().to_string(),
            subject: r.subject.subject,
            tckn: r.subject.tckn,
            not_before: r.not_before,
            not_after: r.not_after,
            certificate_der: r.cert_der,
        })
    }
}

impl HostApi for ChannelHost {
    fn call(&self, plugin: &str, method: &str, request_json: &[u8]) -> Result<Vec<u8>, String> {
        match method {
            host_api::SUBMIT_APPLICATION => {
                answer(&self.submit(plugin, parse(method, request_json)?)?)
            }
            host_api::LIFECYCLE => answer(&self.lifecycle(plugin, parse(method, request_json)?)?),
            host_api::LOOKUP_CERTIFICATE => answer(&self.lookup(parse(method, request_json)?)?),
            host_api::LOOKUP_APPLICATION => {
                answer(&self.lookup_application(plugin, parse(method, request_json)?)?)
            }
            other => Err(format!("unknown host method \"{other}\"")),
        }
    }

    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        match level {
            LogLevel::Error => tracing::error!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            _ => tracing::debug!(plugin, "{message}"),
        }
    }
}
