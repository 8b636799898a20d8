//! Whether an issuing CA may still act: its root revoked it either through a root on this
//! token (`nesca ca revoke`: the CA certificate's status) or through an offline root's CRL that
//! listed it (`nesca ca import-crl`: the store's record of it). Nothing is issued under a
//! revoked CA, and the partner certificates it issued authenticate no more — checked at every
//! issuance and every channel request, so a running server needs no restart.

use ca_core::store::{CaRecord, CaRole, CertStatus, Store};
use ca_core::IssuerId;

use crate::error::{RaError, Result};

/// Whether the root revoked `ca`.
pub fn is_revoked(store: &dyn Store, ca: &CaRecord) -> Result<bool> {
    if ca.role != CaRole::Issuing {
        return Ok(false);
    }
    if store.ca_revoked_at(&ca.id)?.is_some() {
        return Ok(true);
    }
    let Some(serial) = crate::certificate_serial(&ca.cert_der) else {
        return Ok(false);
    };
    Ok(store.get(None, &serial)?.is_some_and(|r| {
        r.status == CertStatus::Revoked && r.cert_der.as_deref() == Some(ca.cert_der.as_slice())
    }))
}

/// Whether the CA `id` in the store was revoked by its root (an unknown id is not).
pub fn is_revoked_id(store: &dyn Store, id: &IssuerId) -> Result<bool> {
    match store.ca(id)? {
        Some(ca) => is_revoked(store, &ca),
        None => Ok(false),
    }
}

/// Refuses to act under a revoked CA (`field` names what the refusal is about).
pub fn ensure_not_revoked(store: &dyn Store, id: &IssuerId) -> Result<()> {
    if is_revoked_id(store, id)? {
        return Err(RaError::Conflict {
            field: "ca",
            rule: format!(
                "the issuing CA \"{id}\" is revoked: nothing is issued under it (roll over to a new generation)"
            ),
        });
    }
    Ok(())
}
