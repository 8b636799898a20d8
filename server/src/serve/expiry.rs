//! How long the CA's own certificates and CRLs have left — every CA certificate, each issuing
//! CA's current delegated OCSP signer, each CA's latest full and delta CRL — as `/metrics`
//! gauges and as warnings in the log when one comes close (`[server]
//! warn_certificate_expiry_days`, `warn_crl_next_update_seconds`), before it hurts.

use std::fmt::Write as _;

use ca_core::store::{CaRole, CrlKind, Store};
use ca_core::UnixTime;

use crate::ocsp_signer::validity;

/// One certificate's time left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CertificateLeft {
    pub ca: String,
    /// `ca` or `ocsp-signer`.
    pub certificate: &'static str,
    /// notAfter − now (negative: expired).
    pub seconds: i64,
}

/// Every CA certificate and current OCSP signer in the store, with its time left at `now`.
pub(super) fn certificates_left(
    store: &dyn Store,
    now: UnixTime,
) -> Result<Vec<CertificateLeft>, ca_core::CaError> {
    let mut out = Vec::new();
    for ca in store.cas()? {
        let mut push = |certificate, der: &[u8]| {
            if let Some((_, not_after)) = validity(der) {
                out.push(CertificateLeft {
                    ca: ca.id.to_string(),
                    certificate,
                    seconds: not_after.secs() - now.secs(),
                });
            }
        };
        push("ca", &ca.cert_der);
        if ca.role == CaRole::Issuing {
            if let Some(signer) = &ca.ocsp_cert_der {
                push("ocsp-signer", signer);
            }
        }
    }
    Ok(out)
}

/// `nesca_crl_next_update_seconds{ca,kind}`: the latest CRL of each CA and kind the store
/// records (published by `serve` or `nesca crl`, by any process), until its nextUpdate.
pub(super) fn render_crls(
    store: &dyn Store,
    now: UnixTime,
    out: &mut String,
) -> Result<(), ca_core::CaError> {
    out.push_str("# HELP nesca_crl_next_update_seconds Seconds until nextUpdate of the latest published CRL (negative: past it).\n# TYPE nesca_crl_next_update_seconds gauge\n");
    for ca in store.cas()? {
        for kind in [CrlKind::Full, CrlKind::Delta] {
            if let Some(crl) = store.latest_crl(&ca.id, kind)? {
                let _ = writeln!(
                    out,
                    "nesca_crl_next_update_seconds{{ca=\"{}\",kind=\"{}\"}} {}",
                    ca.id,
                    kind.as_str(),
                    crl.next_update.secs() - now.secs()
                );
            }
        }
    }
    Ok(())
}

/// `nesca_certificate_expiry_seconds{ca,certificate}`.
pub(super) fn render(left: &[CertificateLeft], out: &mut String) {
    out.push_str("# HELP nesca_certificate_expiry_seconds Seconds until notAfter of a CA certificate or a current delegated OCSP signer (negative: expired).\n# TYPE nesca_certificate_expiry_seconds gauge\n");
    for c in left {
        let _ = writeln!(
            out,
            "nesca_certificate_expiry_seconds{{ca=\"{}\",certificate=\"{}\"}} {}",
            c.ca, c.certificate, c.seconds
        );
    }
}

/// Logs a warning for each certificate expiring within `certificate_seconds` and each CA
/// whose latest published CRL reaches its nextUpdate within `crl_seconds`.
pub(super) fn warn_close(
    store: &dyn Store,
    now: UnixTime,
    certificate_seconds: i64,
    crl_seconds: i64,
) -> Result<(), ca_core::CaError> {
    // An older generation past its end has been replaced: nothing to warn about any more.
    let superseded: Vec<String> = store
        .cas()?
        .into_iter()
        .filter_map(|c| c.supersedes.map(|s| s.to_string()))
        .collect();
    for c in certificates_left(store, now)? {
        if c.seconds < 0 && superseded.contains(&c.ca) {
            continue;
        }
        if c.seconds < certificate_seconds {
            tracing::warn!(
                ca = c.ca,
                certificate = c.certificate,
                seconds_left = c.seconds,
                "a CA certificate expires soon (or has expired)"
            );
        }
    }
    for ca in store.cas()? {
        for kind in [CrlKind::Full, CrlKind::Delta] {
            if let Some(crl) = store.latest_crl(&ca.id, kind)? {
                let left = crl.next_update.secs() - now.secs();
                if left < crl_seconds {
                    tracing::warn!(
                        ca = %ca.id,
                        kind = kind.as_str(),
                        seconds_left = left,
                        "the latest CRL reaches its nextUpdate soon (or has): is its successor late?"
                    );
                }
            }
        }
    }
    Ok(())
}
