//! The transport keys nesca may wrap a subscriber's card key for: only
//! the RSA keys of certificates an operator registered — of the card-personalisation system or
//! of a KEC device — never a key a request brings. A registered key is used while it is not
//! withdrawn and its certificate is within its validity; the operator's withdrawal is the
//! revocation check (nesca cannot reach the issuer's CRL or OCSP from here).
//!
//! The id of a key is the lower-case hex SHA-256 of its certificate's SubjectPublicKeyInfo
//! ([`TransportKeyId::of_spki`]).

use std::sync::Arc;

use ca_core::profile::unix_time;
use ca_core::store::Store;
use ca_core::transport_key::{TransportKeyId, TransportKeyRecord};
use ca_core::{Principal, UnixTime};
use der::{Decode, Encode};

use crate::error::{RaError, Result};

/// The request field a transport key is named in, in refusals.
pub const FIELD: &str = "hsm_key.transport_key";

/// Longest operator name of a transport key.
const MAX_NAME: usize = 128;

/// A transport key the registration authority decided may be wrapped for now. Only
/// [`TransportKeys::usable`] (and [`decide`]) make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedTransportKey {
    id: TransportKeyId,
    spki_der: Vec<u8>,
}

impl TrustedTransportKey {
    /// The key's id, recorded with every card key wrapped for it.
    pub fn id(&self) -> &TransportKeyId {
        &self.id
    }

    /// The key, SubjectPublicKeyInfo DER: what the HSM wraps for.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}

/// The registry of trusted transport keys.
pub struct TransportKeys {
    store: Arc<dyn Store>,
}

/// Whether the registered key `record` (looked up by `id`) may be wrapped for at `now`:
/// registered, not withdrawn, its certificate within its validity. `field` names where the
/// id came from (the request's `hsm_key.transport_key`, the configuration's
/// `production.transport_key`).
pub fn decide(
    field: &'static str,
    id: &TransportKeyId,
    record: Option<TransportKeyRecord>,
    now: UnixTime,
) -> Result<TrustedTransportKey> {
    let refuse = |rule: String| RaError::Refused { field, rule };
    let Some(record) = record else {
        return Err(refuse(format!(
            "transport key {id} is not registered; card keys are wrapped only for transport keys an operator registered (nesca transport-key add)"
        )));
    };
    if record.withdrawn_at.is_some() {
        return Err(refuse(format!(
            "transport key {id} ({}) was withdrawn by an operator; card keys are never wrapped for it again",
            record.name
        )));
    }
    if now < record.not_before {
        return Err(refuse(format!(
            "the certificate of transport key {id} ({}) is not valid before {}",
            record.name,
            ca_core::rfc3339(record.not_before)
        )));
    }
    if now > record.not_after {
        return Err(refuse(format!(
            "the certificate of transport key {id} ({}) expired at {}",
            record.name,
            ca_core::rfc3339(record.not_after)
        )));
    }
    Ok(TrustedTransportKey {
        id: record.id,
        spki_der: record.spki_der,
    })
}

/// Reads a transport certificate (DER) into the record to register: an X.509 certificate
/// whose key is RSA of 2048 bits or more. Its id is the SHA-256 of its SubjectPublicKeyInfo.
pub fn read_certificate(name: &str, cert_der: &[u8], now: UnixTime) -> Result<TransportKeyRecord> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(RaError::invalid(
            "name",
            format!("must be 1 to {MAX_NAME} characters without control characters"),
        ));
    }
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| RaError::invalid("cert", format!("not a DER X.509 certificate: {e}")))?;
    let tbs = &cert.tbs_certificate;
    let spki_der = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| RaError::invalid("cert", format!("its SubjectPublicKeyInfo: {e}")))?;
    hsm::check_transport_key(&spki_der).map_err(|e| match e {
        hsm::HsmError::TransportKey { field, reason } => RaError::invalid(
            "cert",
            format!("its key is refused as a transport key: {field}: {reason}"),
        ),
        other => RaError::Hsm(other),
    })?;
    let not_before = unix_time(&tbs.validity.not_before);
    let not_after = unix_time(&tbs.validity.not_after);
    if not_after < now {
        return Err(RaError::invalid(
            "cert",
            format!("expired at {}", ca_core::rfc3339(not_after)),
        ));
    }
    Ok(TransportKeyRecord {
        id: TransportKeyId::of_spki(&spki_der),
        name: name.to_owned(),
        cert_der: cert_der.to_vec(),
        spki_der,
        not_before,
        not_after,
        registered_at: now,
        withdrawn_at: None,
    })
}

impl TransportKeys {
    /// The registry over a store.
    pub fn new(store: Arc<dyn Store>) -> TransportKeys {
        TransportKeys { store }
    }

    /// Registers a transport certificate (DER) under the operator's `name`; see
    /// [`read_certificate`]. A key registered before — withdrawn or not — is refused.
    pub fn register(
        &self,
        by: &Principal,
        name: &str,
        cert_der: &[u8],
        now: UnixTime,
    ) -> Result<TransportKeyRecord> {
        let record = read_certificate(name, cert_der, now)?;
        self.store.add_transport_key(record.clone(), by, now)?;
        Ok(record)
    }

    /// Withdraws a transport key for good: no card key is wrapped for it again.
    pub fn withdraw(
        &self,
        by: &Principal,
        id: &TransportKeyId,
        now: UnixTime,
    ) -> Result<TransportKeyRecord> {
        self.store.withdraw_transport_key(id, by, now)?;
        self.store
            .transport_key(id)?
            .ok_or_else(|| RaError::invalid("id", format!("transport key {id} disappeared")))
    }

    /// Every registered transport key, withdrawn ones included.
    pub fn list(&self) -> Result<Vec<TransportKeyRecord>> {
        Ok(self.store.transport_keys()?)
    }

    /// The key `id` if a card key may be wrapped for it now (see [`decide`]).
    pub fn usable(
        &self,
        field: &'static str,
        id: &TransportKeyId,
        now: UnixTime,
    ) -> Result<TrustedTransportKey> {
        decide(field, id, self.store.transport_key(id)?, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ca_core::store::prelude::*;

    fn record(withdrawn_at: Option<i64>) -> TransportKeyRecord {
        TransportKeyRecord {
            id: TransportKeyId::of_spki(b"spki"),
            name: "perso-1".into(),
            cert_der: vec![0x30, 0x00],
            spki_der: b"spki".to_vec(),
            not_before: UnixTime::from_secs(1_000),
            not_after: UnixTime::from_secs(2_000),
            registered_at: UnixTime::from_secs(1_000),
            withdrawn_at: withdrawn_at.map(UnixTime::from_secs),
        }
    }

    fn refused(r: Result<TrustedTransportKey>) -> String {
        match r {
            Err(RaError::Refused { field, rule }) => format!("{field}: {rule}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_registered_active_key_within_its_validity_is_usable() {
        let id = TransportKeyId::of_spki(b"spki");
        for now in [1_000, 1_500, 2_000] {
            let key = decide(FIELD, &id, Some(record(None)), UnixTime::from_secs(now)).unwrap();
            assert_eq!((key.id(), key.spki_der()), (&id, &b"spki"[..]));
        }
    }

    #[test]
    fn an_unregistered_key_is_refused_naming_the_field() {
        let id = TransportKeyId::of_spki(b"the request's own key");
        let e = refused(decide(FIELD, &id, None, UnixTime::from_secs(1_500)));
        assert!(
            e.starts_with(&format!(
                "hsm_key.transport_key: transport key {id} is not registered"
            )),
            "{e}"
        );
    }

    #[test]
    fn a_withdrawn_key_is_refused_even_within_its_validity() {
        let id = TransportKeyId::of_spki(b"spki");
        let e = refused(decide(
            "production.transport_key",
            &id,
            Some(record(Some(1_200))),
            UnixTime::from_secs(1_500),
        ));
        assert!(
            e.starts_with("production.transport_key: transport key ")
                && e.contains("was withdrawn by an operator"),
            "{e}"
        );
    }

    #[test]
    fn a_certificate_outside_its_validity_is_refused() {
        let id = TransportKeyId::of_spki(b"spki");
        let e = refused(decide(
            FIELD,
            &id,
            Some(record(None)),
            UnixTime::from_secs(2_001),
        ));
        assert!(e.contains("expired at 1970-01-01T00:33:20Z"), "{e}");
        let e = refused(decide(
            FIELD,
            &id,
            Some(record(None)),
            UnixTime::from_secs(999),
        ));
        assert!(
            e.contains("is not valid before 1970-01-01T00:16:40Z"),
            "{e}"
        );
    }

    /// Through the store: registered and usable, then withdrawn by the operator and refused
    /// from then on (and withdrawing again is a conflict).
    #[test]
    fn a_key_withdrawn_in_the_registry_is_refused_from_then_on() {
        let f = ca_core::testkit::fixture();
        let keys = TransportKeys::new(f.store.clone());
        let by = Principal::HostOperator;
        let key = record(None);
        f.store
            .add_transport_key(key.clone(), &by, UnixTime::from_secs(1_000))
            .unwrap();
        let now = UnixTime::from_secs(1_500);
        assert_eq!(keys.usable(FIELD, &key.id, now).unwrap().id(), &key.id);
        let withdrawn = keys.withdraw(&by, &key.id, now).unwrap();
        assert_eq!(withdrawn.withdrawn_at, Some(now));
        let e = refused(keys.usable(FIELD, &key.id, now));
        assert!(e.contains("was withdrawn by an operator"), "{e}");
        let e = keys.withdraw(&by, &key.id, now).unwrap_err();
        assert!(matches!(e, RaError::Conflict { field: "id", .. }), "{e}");
        assert_eq!(keys.list().unwrap(), vec![withdrawn]);
    }

    #[test]
    fn garbage_and_bad_names_are_refused_as_certificates() {
        let now = UnixTime::from_secs(1_500);
        let e = read_certificate("perso", &[0x30, 0x03, 0x01], now).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cert: not a DER X.509 certificate"),
            "{e}"
        );
        for bad in ["", "  ", "a\nb", &"x".repeat(129)] {
            let e = read_certificate(bad, &[0x30, 0x00], now).unwrap_err();
            assert!(e.to_string().starts_with("name: must be 1 to 128"), "{e}");
        }
    }
}
