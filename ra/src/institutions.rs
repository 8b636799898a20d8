//! Institutions that get NES for their staff through the institutional channel: who may be
//! registered (with its one e-İmza officer), and an operator's confirmation of a wet-signed list.

use std::sync::Arc;

use ca_core::institution::{InstitutionId, InstitutionRecord, Payer, TaxNo};
use ca_core::store::{ImportStatus, ListConfirmation, ListImportRecord, Store};
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
        // A certificate that names a person must name the officer (a NES writes
        // PNOTR-<T.C. Kimlik No>).
        if let Ok(Some(serial_number)) =
            nesca_pkix::subject::subject_attribute(&officer_cert_der, "2.5.4.5")
        {
            let digits: String = serial_number.chars().filter(char::is_ascii_digit).collect();
            if digits.len() == 11 && digits != officer.as_str() {
                return Err(RaError::invalid(
                    "officer-cert",
                    "its subject serialNumber names another person than --officer-tckn",
                ));
            }
        }
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

    /// An operator saw the paper of a wet-signed list: its held rows are invited now. Returns
    /// how many people were invited. `file_sha256` is the list's SHA-256 in hex.
    pub fn confirm_list(
        &self,
        by: &Principal,
        institution: &InstitutionId,
        file_sha256: &str,
        now: UnixTime,
    ) -> Result<u64> {
        let sha = file_sha256.to_ascii_lowercase();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RaError::invalid("file-sha256", "must be 64 hex digits"));
        }
        let list = self.store.list_import(institution, &sha)?;
        let from = awaiting_confirmation(list.as_ref(), institution, &sha)?;
        Ok(self.store.confirm_list(ListConfirmation {
            institution: institution.clone(),
            file_sha256: sha,
            from,
            actor: by.clone(),
            at: now,
        })?)
    }
}

/// Only a wet-signed list awaiting confirmation is confirmed: the status it moves from.
pub fn awaiting_confirmation(
    list: Option<&ListImportRecord>,
    institution: &InstitutionId,
    file_sha256: &str,
) -> Result<ImportStatus> {
    match list.map(|l| l.status) {
        Some(ImportStatus::AwaitingConfirmation) => Ok(ImportStatus::AwaitingConfirmation),
        _ => Err(RaError::invalid(
            "file-sha256",
            format!("no wet-signed list {file_sha256} of \"{institution}\" awaits confirmation"),
        )),
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

    #[test]
    fn only_a_list_awaiting_confirmation_is_confirmed() {
        let id = InstitutionId::parse("acme").unwrap();
        let sha = "ab".repeat(32);
        let record = |status| ListImportRecord {
            institution: id.clone(),
            file_sha256: sha.clone(),
            file_name: "liste.xlsx".into(),
            signature: ca_core::store::ListSignatureKind::Wet,
            status,
            created: vec![],
            already_open: vec![],
            created_at: UnixTime::EPOCH,
        };
        assert_eq!(
            awaiting_confirmation(Some(&record(ImportStatus::AwaitingConfirmation)), &id, &sha)
                .unwrap(),
            ImportStatus::AwaitingConfirmation
        );
        for list in [Some(record(ImportStatus::Accepted)), None] {
            let e = awaiting_confirmation(list.as_ref(), &id, &sha).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("file-sha256: no wet-signed list {sha} of \"acme\" awaits confirmation")
            );
        }
    }
}
