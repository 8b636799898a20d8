//! Institutions that get NES for their staff through the institutional channel: who may be
//! registered (with its one e-İmza officer). Wet-signed lists are `crate::held_lists`'.

use std::sync::Arc;

use ca_core::institution::{InstitutionId, InstitutionRecord, Payer, TaxNo};
use ca_core::store::{InstitutionChange, Store};
use ca_core::{Principal, Tckn, UnixTime};

use crate::error::{RaError, Result};

/// The longest institution name.
pub const MAX_NAME_CHARS: usize = 256;

/// An institution as an operator asks to register it, checked: the name's rule, and an
/// officer certificate that, where it names a person, names the officer. Checking needs no
/// store, so a transport refuses a bad registration before it opens anything.
pub struct InstitutionRegistration {
    record: InstitutionRecord,
}

impl InstitutionRegistration {
    /// Checks a registration. `officer_cert_der` must already be a parsed X.509 certificate.
    pub fn new(
        id: InstitutionId,
        name: &str,
        tax_no: TaxNo,
        payer: Payer,
        officer: Tckn,
        officer_cert_der: Vec<u8>,
    ) -> Result<InstitutionRegistration> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(RaError::invalid(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters, no control characters"),
            ));
        }
        check_officer(&officer, &officer_cert_der)?;
        Ok(InstitutionRegistration {
            record: InstitutionRecord {
                id,
                name: name.to_owned(),
                tax_no,
                payer,
                officer_tckn: officer,
                officer_cert_der,
                created_at: UnixTime::EPOCH,
                active: true,
            },
        })
    }
}

/// A certificate that names a person must name the officer (a NES writes
/// PNOTR-<T.C. Kimlik No>). `officer_cert_der` must already be a parsed X.509 certificate.
fn check_officer(officer: &Tckn, officer_cert_der: &[u8]) -> Result<()> {
    if let Ok(Some(serial_number)) =
        nesca_pkix::subject::subject_attribute(officer_cert_der, "2.5.4.5")
    {
        let digits: String = serial_number.chars().filter(char::is_ascii_digit).collect();
        if digits.len() == 11 && digits != officer.as_str() {
            return Err(RaError::invalid(
                "officer-cert",
                "its subject serialNumber names another person than --officer-tckn",
            ));
        }
    }
    Ok(())
}

/// The registry of institutions.
pub struct Institutions {
    store: Arc<dyn Store>,
}

impl Institutions {
    /// The registry over a store.
    pub fn new(store: Arc<dyn Store>) -> Institutions {
        Institutions { store }
    }

    /// Registers a checked institution, active from `now`.
    pub fn register(
        &self,
        by: &Principal,
        registration: InstitutionRegistration,
        now: UnixTime,
    ) -> Result<InstitutionRecord> {
        let record = InstitutionRecord {
            created_at: now,
            ..registration.record
        };
        self.store.add_institution(record.clone(), by, now)?;
        Ok(record)
    }

    /// Every registered institution.
    pub fn list(&self) -> Result<Vec<InstitutionRecord>> {
        Ok(self.store.institutions()?)
    }

    /// A new e-İmza officer for institution `id` (the old one's lists are refused from now):
    /// the certificate must name the officer, as at registration.
    pub fn change_officer(
        &self,
        by: &Principal,
        id: &InstitutionId,
        officer: Tckn,
        officer_cert_der: Vec<u8>,
        now: UnixTime,
    ) -> Result<InstitutionRecord> {
        check_officer(&officer, &officer_cert_der)?;
        let change = InstitutionChange::Officer {
            officer_tckn: officer,
            officer_cert_der,
        };
        self.change(by, id, change, now)
    }

    /// Activates or deactivates institution `id`: a deactivated institution's lists (and
    /// its portal's uploads) are refused; its people already invited keep their applications.
    pub fn set_active(
        &self,
        by: &Principal,
        id: &InstitutionId,
        active: bool,
        now: UnixTime,
    ) -> Result<InstitutionRecord> {
        self.change(by, id, InstitutionChange::Active(active), now)
    }

    fn change(
        &self,
        by: &Principal,
        id: &InstitutionId,
        change: InstitutionChange,
        now: UnixTime,
    ) -> Result<InstitutionRecord> {
        self.store.change_institution(id, change, by, now)?;
        self.store.institution(id)?.ok_or_else(|| {
            RaError::invalid("institution", format!("no registered institution \"{id}\""))
        })
    }

    /// Sends invited application `id` a new access password (drawn when the outbox sends it;
    /// the old one stops working then) and lifts every sign-in lock on it: what an operator
    /// does for a person who lost the e-mail or was locked out by guesses from an address
    /// they share.
    pub fn resend_access_password(&self, by: &Principal, id: &str, now: UnixTime) -> Result<()> {
        self.store.resend_access_password(id, by, now)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(name: &str) -> Result<InstitutionRegistration> {
        InstitutionRegistration::new(
            InstitutionId::parse("acme").unwrap(),
            name,
            TaxNo::parse("1234567890").unwrap(),
            Payer::Institution,
            Tckn::parse("10000000146").unwrap(),
            b"not a certificate".to_vec(),
        )
    }

    #[test]
    fn the_name_rule_is_checked_before_anything_is_opened() {
        assert_eq!(
            registration("  ACME A.Ş. ").unwrap().record.name,
            "ACME A.Ş."
        );
        for bad in ["", "   ", "a\nb", &"x".repeat(MAX_NAME_CHARS + 1)] {
            let e = registration(bad).err().unwrap();
            assert!(e.to_string().starts_with("name: must be 1 to 256"), "{e}");
        }
    }
}
