//! Renewing an issuing CA's delegated OCSP signer (RFC 6960 §4.2.2.2): a new key generated in
//! the HSM, a new certificate from the CA, made current in the store by compare-and-set. The
//! old signer stays valid to its notAfter (the overlap); the responders take up the new one
//! (`serve::signer_watch`). `nesca serve`, `nesca ocsp` and `nesca ca renew-ocsp-signer`
//! renew through here.

use std::sync::Arc;

use ca_core::engine::{Engine, SigningCa};
use ca_core::store::{CaRecord, OcspSignerRecord, Store};
use ca_core::{IssuerId, Principal, UnixTime};
use der::Decode as _;
use hsm::{Hsm, KeySigner};
use x509_cert::Certificate;

use crate::config::Loaded;
use crate::error::{CliError, Result};

/// Where a CA's current signer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignerHealth {
    /// More than the renewal share of its validity is left.
    Current,
    /// Less than the renewal share is left: renew now, it still signs meanwhile.
    Due,
    /// Outside its validity (expired, or not yet valid): it never signs.
    Expired,
    /// The CA has none.
    Missing,
}

impl SignerHealth {
    pub(crate) fn needs_renewal(self) -> bool {
        self != SignerHealth::Current
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SignerHealth::Current => "current",
            SignerHealth::Due => "due",
            SignerHealth::Expired => "expired",
            SignerHealth::Missing => "missing",
        }
    }
}

/// notBefore and notAfter of a certificate (DER), Unix seconds.
pub(crate) fn validity(cert_der: &[u8]) -> Option<(UnixTime, UnixTime)> {
    let cert = Certificate::from_der(cert_der).ok()?;
    let v = &cert.tbs_certificate.validity;
    Some((
        UnixTime::from_system(v.not_before.to_system_time()),
        UnixTime::from_system(v.not_after.to_system_time()),
    ))
}

/// The health at `now` of the signer certificate `cert_der`, renewed when less than `share`
/// of its validity is left.
pub(crate) fn health(cert_der: Option<&[u8]>, now: UnixTime, share: f64) -> SignerHealth {
    match cert_der.and_then(validity) {
        None => SignerHealth::Missing,
        Some((not_before, not_after)) => health_within(not_before, not_after, now, share),
    }
}

fn health_within(
    not_before: UnixTime,
    not_after: UnixTime,
    now: UnixTime,
    share: f64,
) -> SignerHealth {
    if now < not_before || now > not_after {
        return SignerHealth::Expired;
    }
    let total = (not_after.secs() - not_before.secs()) as f64;
    let left = (not_after.secs() - now.secs()) as f64;
    if left < total * share {
        SignerHealth::Due
    } else {
        SignerHealth::Current
    }
}

/// A renewed signer, current in the store.
pub(crate) struct Renewed {
    pub key_label: String,
    pub cert_der: Vec<u8>,
    pub signer: KeySigner,
}

/// What renewing needs of the configuration (`[ca]`, `[ocsp]`), owned so that the signer
/// watch can keep it.
#[derive(Clone)]
pub(crate) struct Renewal {
    public_url: String,
    validity_days: u32,
    /// The signer's name when the CA has none to copy it from.
    configured_name: x509_cert::name::Name,
    /// `[ocsp] signer_renewal_share`.
    pub share: f64,
}

impl Renewal {
    pub(crate) fn of(cfg: &Loaded) -> Result<Renewal> {
        let c = &cfg.raw.ca;
        Ok(Renewal {
            public_url: c.public_url.clone(),
            validity_days: c.ocsp_validity_days,
            configured_name: ca_core::name::organization_name(
                &c.country,
                &c.organization,
                &c.ocsp_common_name,
            )?,
            share: cfg.raw.ocsp.signer_renewal_share,
        })
    }

    /// The health of the CA's current signer now. A signer that already runs to the CA's
    /// own end is current however little is left: a new one could not run longer (it never
    /// outlives its CA), so renewing it would only make keys.
    pub(crate) fn health_of(&self, ca: &CaRecord, now: UnixTime) -> SignerHealth {
        let h = health(ca.ocsp_cert_der.as_deref(), now, self.share);
        let signer_end = ca.ocsp_cert_der.as_deref().and_then(validity).map(|v| v.1);
        let ca_end = validity(&ca.cert_der).map(|v| v.1);
        match (h, signer_end, ca_end) {
            (SignerHealth::Due, Some(s), Some(c)) if s.secs() + 86_400 >= c.secs() => {
                SignerHealth::Current
            }
            _ => h,
        }
    }

    /// Whether the CA itself can still certify a signer at `now`: within its validity, with at
    /// least a day left (an expired CA's certificates have expired too: nothing to answer).
    pub(crate) fn ca_can_certify(&self, ca: &CaRecord, now: UnixTime) -> bool {
        validity(&ca.cert_der)
            .is_some_and(|(from, to)| from <= now && to.secs() - now.secs() >= 86_400)
    }

    /// Renews the delegated OCSP signer of the issuing CA `id`, as the store holds it now.
    /// Of renewals racing (two processes, or twice in one second) exactly one becomes
    /// current: the others are refused by the store's compare-and-set, destroy the key they
    /// made and answer [`ca_core::CaError::Conflict`] on `ocsp_signer`.
    pub(crate) fn renew(
        &self,
        store: &Arc<dyn Store>,
        hsm: &Hsm,
        id: &IssuerId,
        actor: &Principal,
    ) -> Result<Renewed> {
        let record = issuing_ca(store.as_ref(), id)?;
        let clock = crate::wiring::clock();
        let now = clock.now_unix();
        let ca_key = hsm.find_key(&record.key_label)?;
        // The new key is made like the old one (or like the CA's, when there is none); its
        // label is unique: the CA, the time, and random bits (two processes in one second).
        let algorithm = match &record.ocsp_key_label {
            Some(old) => hsm.find_key(old).map(|k| k.algorithm()).ok(),
            None => None,
        }
        .unwrap_or(ca_key.algorithm());
        let name = self.signer_name(&record);
        // Never beyond the CA's own notAfter (the engine refuses a certificate that would
        // outlive its issuer): near the CA's end the signer runs to it, no further.
        let days_left = validity(&record.cert_der)
            .map(|(_, to)| (to.secs() - now.secs()) / 86_400)
            .unwrap_or(0);
        let validity_days = u32::try_from(days_left.clamp(0, i64::from(self.validity_days)))
            .unwrap_or(self.validity_days);
        if validity_days == 0 {
            return Err(CliError::config(
                "ca",
                format!(
                    "CA \"{id}\" has less than a day left: no signer can be certified under it"
                ),
            ));
        }
        let label = format!("{id}-ocsp-{}-{:08x}", now.secs(), rand::random::<u32>());
        let key = hsm.generate_key(&label, algorithm)?;
        let made = SigningCa::new(
            id.clone(),
            record.cert_der.clone(),
            Arc::new(ca_key),
            Some(ca_core::profile::CaUrls::new(&self.public_url, id)?),
        )
        .and_then(|ca| {
            ca_core::bootstrap::issue_ocsp_signer(
                &Engine::new(store.clone(), clock),
                &ca,
                &name,
                ca_core::engine::TbsSigner::public_key(&key),
                validity_days,
                actor,
            )
        })
        .and_then(|issued| {
            store
                .replace_ocsp_signer(
                    id,
                    record.ocsp_key_label.as_deref(),
                    OcspSignerRecord {
                        key_label: label.clone(),
                        cert_der: issued.cert_der.clone(),
                        since: now,
                    },
                    actor,
                )
                .map(|()| issued.cert_der)
        });
        match made {
            Ok(cert_der) => Ok(Renewed {
                key_label: label,
                cert_der,
                signer: key,
            }),
            Err(e) => {
                // The key signs nothing: it goes (a certificate issued for it stays in the
                // store, as every issued certificate does, and is never used).
                if let Err(d) = hsm.destroy_key(&label) {
                    tracing::warn!(error = %d, label, "a renewal's unused key could not be destroyed");
                }
                Err(e.into())
            }
        }
    }

    /// The new signer's name: the current signer's subject, else the configured one.
    fn signer_name(&self, record: &CaRecord) -> x509_cert::name::Name {
        record
            .ocsp_cert_der
            .as_deref()
            .and_then(|d| Certificate::from_der(d).ok())
            .map(|c| c.tbs_certificate.subject)
            .unwrap_or_else(|| self.configured_name.clone())
    }
}

/// At start (`nesca serve`, `nesca ocsp`): renews every issuing CA's signer that is due,
/// expired or missing, before the responder is built. A failed renewal does not stop the
/// start while the CA has a signer (an expired one never signs: the responder answers
/// tryLater for that CA, and the signer watch tries again); a CA with no signer at all does.
pub(crate) fn renew_due_at_start(
    renewal: &Renewal,
    store: &Arc<dyn Store>,
    hsm: &Hsm,
) -> Result<()> {
    let now = crate::wiring::clock().now_unix();
    let actor = Principal::System(ca_core::SystemTask::Startup);
    for ca in store.cas()? {
        if ca.role != ca_core::store::CaRole::Issuing {
            continue;
        }
        // A signer whose key is gone from the token (restored from an older backup, say) is
        // as good as none.
        let key_gone = match &ca.ocsp_key_label {
            Some(label) => !hsm.has_key(label)?,
            None => false,
        };
        let health = if key_gone {
            SignerHealth::Missing
        } else {
            renewal.health_of(&ca, now)
        };
        if !health.needs_renewal()
            || !renewal.ca_can_certify(&ca, now)
            || crate::wiring::is_revoked(store.as_ref(), &ca)?
        {
            continue;
        }
        match renewal.renew(store, hsm, &ca.id, &actor) {
            Ok(r) => tracing::info!(
                ca = %ca.id,
                was = health.as_str(),
                key_label = r.key_label,
                "OCSP signer renewed"
            ),
            // Another process (a second node, `nesca ocsp` starting beside `serve`) renewed it
            // first: its signer is the one loaded next.
            Err(CliError::Ca(ca_core::CaError::Conflict { .. })) => {
                tracing::info!(ca = %ca.id, "OCSP signer renewed by another process")
            }
            Err(e) if health != SignerHealth::Missing => {
                tracing::error!(ca = %ca.id, was = health.as_str(), error = %e, "OCSP signer not renewed; will retry")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The issuing CA `id` as the store holds it.
pub(crate) fn issuing_ca(store: &dyn Store, id: &IssuerId) -> Result<CaRecord> {
    let record = store
        .ca(id)?
        .ok_or_else(|| CliError::config("ca", format!("no CA \"{id}\" in the store")))?;
    if record.role != ca_core::store::CaRole::Issuing {
        return Err(CliError::config(
            "ca",
            format!("\"{id}\" is a root CA; only an issuing CA has a delegated OCSP signer"),
        ));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    #[test]
    fn a_signer_is_due_in_the_last_share_of_its_validity_and_expired_outside_it() {
        let share = 1.0 / 3.0;
        // 90 days: due from day 60 on, expired after day 90 and before day 0.
        let (from, to) = (at(0), at(90 * 86_400));
        let day = |d: i64| at(d * 86_400);
        assert_eq!(
            health_within(from, to, day(0), share),
            SignerHealth::Current
        );
        assert_eq!(
            health_within(from, to, day(60), share),
            SignerHealth::Current
        );
        assert_eq!(
            health_within(from, to, day(60).plus_secs(1), share),
            SignerHealth::Due
        );
        assert_eq!(health_within(from, to, day(90), share), SignerHealth::Due);
        assert_eq!(
            health_within(from, to, day(90).plus_secs(1), share),
            SignerHealth::Expired
        );
        assert_eq!(
            health_within(day(1), to, day(0), share),
            SignerHealth::Expired
        );
        assert_eq!(health(None, day(0), share), SignerHealth::Missing);
        assert_eq!(
            health(Some(&[0x30, 0x00]), day(0), share),
            SignerHealth::Missing
        );
        assert!(!SignerHealth::Current.needs_renewal());
        for h in [
            SignerHealth::Due,
            SignerHealth::Expired,
            SignerHealth::Missing,
        ] {
            assert!(h.needs_renewal(), "{}", h.as_str());
        }
    }
}
