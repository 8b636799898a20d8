//! What is recorded about a certificate's holder besides the certificate: the mobile number
//! and e-mail address they are reached at (the portal's sign-in codes, notices and reminders)
//! and the security word they chose (the portal's first factor, and what an operator asks on
//! the phone). `nesca issue` and the channels give them with a new certificate; the
//! institutional channel's come from the list and the application form instead.

use std::sync::Arc;

use secrecy::SecretString;

use crate::error::Result;
use ca_core::clock::Clock;
use ca_core::store::{HolderContact, Store};
use ca_core::{Email, IssuerId, Principal, Serial, TrMobile};

/// A holder's details, checked: each optional.
pub struct HolderDetails {
    pub mobile: Option<TrMobile>,
    pub email: Option<Email>,
    pub security_word: Option<SecretString>,
}

impl HolderDetails {
    /// Checks what a caller gave, each in its field (`mobile`, `email`, `security_word`):
    /// before anything is issued, so that a bad value refuses the whole request.
    pub fn parse(
        mobile: Option<&str>,
        email: Option<&str>,
        security_word: Option<SecretString>,
    ) -> Result<HolderDetails> {
        let mobile = mobile.map(|m| TrMobile::parse("mobile", m)).transpose()?;
        let email = email.map(|e| Email::parse("email", e)).transpose()?;
        if let Some(word) = &security_word {
            crate::enrollment::check_security_word(word)?;
        }
        Ok(HolderDetails {
            mobile,
            email,
            security_word,
        })
    }

    /// Whether there is nothing to record.
    pub fn is_empty(&self) -> bool {
        self.mobile.is_none() && self.email.is_none() && self.security_word.is_none()
    }

    /// Records them with the certificate `serial`, filling in only what is not on record yet:
    /// a request repeated (a channel's retry) completes a record its first attempt did not,
    /// and never changes one (an unsigned field of a replay cannot move a holder's codes to
    /// another number).
    pub fn record(
        &self,
        (store, clock): (&Arc<dyn Store>, &Arc<dyn Clock>),
        issuer: &IssuerId,
        serial: &Serial,
        by: &Principal,
    ) -> Result<()> {
        let now = clock.now_unix();
        if self.mobile.is_some() || self.email.is_some() {
            // The store records a contact once: a second one (a racing replay) is dropped.
            let contact = HolderContact {
                mobile: self.mobile.as_ref().map(|m| m.as_str().to_owned()),
                email: self.email.as_ref().map(|e| e.as_str().to_owned()),
            };
            store.set_holder_contact(issuer, serial, &contact, by, now)?;
        }
        if let Some(word) = &self.security_word {
            if store.holder_security_word(issuer, serial)?.is_none() {
                let hash = crate::outbox::hash_password(word)?;
                match store.set_security_word(issuer, serial, &hash, by, now) {
                    // A racing request recorded one first: that one stays.
                    Ok(()) | Err(ca_core::CaError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ca_core::store::prelude::*;
    use ca_core::testkit::fixture;

    #[test]
    fn each_value_is_checked_in_its_field() {
        let field = |r: Result<HolderDetails>| match r {
            Err(crate::RaError::Invalid { field, .. }) => field,
            other => panic!("{:?}", other.map(|_| ())),
        };
        assert_eq!(
            field(HolderDetails::parse(Some("12345"), None, None)),
            "mobile"
        );
        assert_eq!(
            field(HolderDetails::parse(None, Some("a b"), None)),
            "email"
        );
        assert_eq!(
            field(HolderDetails::parse(
                None,
                None,
                Some(SecretString::from("a b"))
            )),
            "security_word"
        );
        let ok = HolderDetails::parse(Some("0532 123 45 67"), None, None).unwrap();
        assert_eq!(ok.mobile.unwrap().as_str(), "+905321234567");
    }

    #[test]
    fn a_repeated_request_fills_in_and_never_changes_a_record() {
        let f = fixture();
        let store: Arc<dyn Store> = f.store.clone();
        let clock: Arc<dyn Clock> = f.clock.clone();
        let serial = crate::testkit::issue_nes(&f);
        let id = f.ca.context.id.clone();
        let first = HolderDetails::parse(Some("05321234567"), None, None).unwrap();
        first
            .record((&store, &clock), &id, &serial, &Principal::HostOperator)
            .unwrap();
        let second = HolderDetails::parse(
            Some("05559998877"),
            Some("x@example.com"),
            Some(SecretString::from("gizli1234")),
        )
        .unwrap();
        second
            .record((&store, &clock), &id, &serial, &Principal::HostOperator)
            .unwrap();
        let contact = f.store.holder_contact(&id, &serial).unwrap().unwrap();
        assert_eq!(contact.mobile.as_deref(), Some("+905321234567"));
        assert_eq!(contact.email, None);
        // The word was not on record: filled in.
        assert!(f
            .store
            .holder_security_word(&id, &serial)
            .unwrap()
            .is_some());
    }
}
