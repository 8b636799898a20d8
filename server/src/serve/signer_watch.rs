//! Keeps the responder's delegated OCSP signers current while `nesca serve` or `nesca ocsp`
//! runs: every `[ocsp] signer_check_seconds` it takes up a signer another process made
//! current (`nesca ca renew-ocsp-signer`, a second node), and renews one that is due or
//! expired (`crate::ocsp_signer`). The responder re-signs its pre-produced answers with the
//! new signer; the old one stays valid through the overlap.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use ca_core::store::Store;
use ca_core::{IssuerId, Principal, SystemTask};
use hsm::Hsm;
use ocsp_responder::Responder;

use crate::ocsp_signer::Renewal;
use crate::wiring::ServedCa;

/// When [`SignerWatch::check`] warns (`super::expiry::warn_close`).
pub(crate) struct Warnings {
    pub certificate_seconds: i64,
    pub crl_seconds: i64,
}

/// The watch over the signers of the served CAs.
pub(crate) struct SignerWatch {
    renewal: Renewal,
    store: Arc<dyn Store>,
    hsm: Hsm,
    responder: Arc<Responder>,
    /// The key label each served CA's responder signs with now.
    labels: HashMap<IssuerId, Option<String>>,
    warnings: Warnings,
}

impl SignerWatch {
    pub(crate) fn new(
        renewal: Renewal,
        store: Arc<dyn Store>,
        hsm: Hsm,
        responder: Arc<Responder>,
        cas: &[ServedCa],
        warnings: Warnings,
    ) -> SignerWatch {
        let labels = cas
            .iter()
            .map(|c| (c.record.id.clone(), c.record.ocsp_key_label.clone()))
            .collect();
        SignerWatch {
            renewal,
            store,
            hsm,
            responder,
            labels,
            warnings,
        }
    }

    /// Runs [`SignerWatch::check`] every `every` until `stop`, on a thread of its own (HSM
    /// and store calls block).
    pub(crate) fn spawn(
        mut self,
        every: Duration,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("nesca-ocsp-signers".into())
            .spawn(move || super::every_until(every, &stop, || self.check()))
    }

    /// One look at every served CA's signer; then a warning for whatever of the CA's own
    /// certificates and CRLs comes close to its end.
    pub(crate) fn check(&mut self) {
        let ids: Vec<IssuerId> = self.labels.keys().cloned().collect();
        for id in ids {
            if let Err(e) = self.check_one(&id) {
                tracing::error!(ca = %id, error = %e, "OCSP signer check failed; will retry");
            }
        }
        if let Err(e) = super::expiry::warn_close(
            self.store.as_ref(),
            crate::wiring::clock().now_unix(),
            self.warnings.certificate_seconds,
            self.warnings.crl_seconds,
        ) {
            tracing::warn!(error = %e, "CA certificates and CRLs not checked for expiry");
        }
    }

    fn check_one(&mut self, id: &IssuerId) -> crate::error::Result<()> {
        let Some(record) = self.store.ca(id)? else {
            return Ok(());
        };
        if record.ocsp_key_label != self.labels[id] {
            // Another process renewed it: sign with its signer from now on.
            if let (Some(label), Some(cert)) = (&record.ocsp_key_label, &record.ocsp_cert_der) {
                self.take_up(id, label, self.hsm.find_key(label)?, cert)?;
            }
            return Ok(());
        }
        let now = crate::wiring::clock().now_unix();
        let health = self.renewal.health_of(&record, now);
        // A CA at its end (or revoked, see `wiring::is_revoked`) gets no new signer.
        if !health.needs_renewal()
            || !self.renewal.ca_can_certify(&record, now)
            || crate::wiring::is_revoked(self.store.as_ref(), &record)?
        {
            return Ok(());
        }
        let actor = Principal::System(SystemTask::OcspSignerRenewal);
        match self.renewal.renew(&self.store, &self.hsm, id, &actor) {
            Ok(r) => {
                tracing::info!(ca = %id, was = health.as_str(), key_label = r.key_label, "OCSP signer renewed");
                self.take_up(id, &r.key_label, r.signer, &r.cert_der)
            }
            // Renewed by another process meanwhile: taken up at the next check.
            Err(crate::error::CliError::Ca(ca_core::CaError::Conflict { .. })) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn take_up(
        &mut self,
        id: &IssuerId,
        label: &str,
        key: hsm::KeySigner,
        cert_der: &[u8],
    ) -> crate::error::Result<()> {
        self.responder
            .replace_signer(id, Arc::new(key.on_ocsp_sessions()), cert_der)
            .map_err(|e| crate::error::CliError::config("ocsp", e.to_string()))?;
        self.labels.insert(id.clone(), Some(label.to_owned()));
        Ok(())
    }
}
