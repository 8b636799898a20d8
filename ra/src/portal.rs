//! The holders' portal (docs/portal.md): a holder signs in with their T.C. Kimlik No and the
//! security word on record for one of their certificates, then with a single-use code sent by
//! SMS to the mobile number on record; signed in, they list their certificates, suspend,
//! release or revoke one, and change their security word.
//!
//! Every refused sign-in answers the same ([`SIGN_IN_REFUSED`]): an unknown number, a wrong
//! word, a holder with no word or mobile number on record and a locked identity or source are
//! not told apart, and each costs one argon2 verification. Attempts are counted per identity
//! and per source in one statement each, before any word is checked. A holder's action goes
//! through [`Lifecycle::apply`] as an operator's does, with the holder as the principal.

use std::sync::Arc;

use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use crate::error::{RaError, Result};
use crate::lifecycle::Lifecycle;
use crate::outbox::{hash_password, password_matches, spend_a_check};
use ca_core::clock::Clock;
use ca_core::lifecycle::{is_live, LifecycleAction, LifecycleRequest, RequestId};
use ca_core::store::{
    CertRecord, CertificateQuery, HolderSessionStage, NewHolderSession, SignInSource, Store,
    TransitionOutcome,
};
use ca_core::{HolderProof, Principal, Serial, Tckn, UnixTime};

/// Failed attempts (words and codes) per identity in a window, past which the identity is
/// refused. Each attempt is counted before it is checked and given back when it succeeds.
pub const IDENTITY_ATTEMPTS: u32 = 5;
/// Failed attempts per source address in a window, whoever they name.
pub const SOURCE_ATTEMPTS: u32 = 20;
/// The window of the attempt limits, from its first attempt.
pub const ATTEMPT_WINDOW_SECONDS: i64 = 1_800;
/// How long an SMS code is good.
pub const CODE_SECONDS: i64 = 300;
/// Wrong codes after which the session ends.
pub const MAX_CODE_FAILURES: u32 = 3;
/// A signed-in session with no request for this long ends.
pub const IDLE_SECONDS: i64 = 900;
/// A session ends this long after the security word was accepted, whatever it does.
pub const SESSION_SECONDS: i64 = 3_600;
/// Certificates of one holder looked at, newest first.
const MAX_CERTIFICATES: u32 = 100;

/// What every refused sign-in answers.
pub const SIGN_IN_REFUSED: &str = "the T.C. Kimlik No or the security word is wrong, no security word and mobile number are on record, or sign-in is paused for 30 minutes after repeated attempts";
/// What every refused code answers.
pub const CODE_REFUSED: &str =
    "the code is wrong or expired, or too many codes were tried: sign in again";

/// A security word accepted: the session awaits its SMS code.
#[derive(Debug)]
pub struct Challenge {
    /// The session token, shown once (the portal's cookie).
    pub token: SecretString,
    pub expires_at: UnixTime,
}

/// A signed-in holder, as the session proves them.
#[derive(Debug, Clone)]
pub struct HolderSignedIn {
    pub session_id: String,
    pub tckn: Tckn,
}

impl HolderSignedIn {
    /// The principal of what the holder does.
    pub fn principal(&self) -> Principal {
        Principal::Holder {
            tckn: self.tckn,
            proof: HolderProof::SecurityWordSms,
        }
    }
}

/// The portal's services for holders.
pub struct HolderPortal {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    lifecycle: Lifecycle,
}

/// The attempt counters of an identity and a source.
fn attempt_keys(tckn: &Tckn, source: &SignInSource) -> [String; 2] {
    [format!("holder:{tckn}"), format!("source:{source}")]
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn refused() -> RaError {
    RaError::Unauthenticated {
        field: "sign_in",
        rule: SIGN_IN_REFUSED.into(),
    }
}

fn code_refused() -> RaError {
    RaError::Unauthenticated {
        field: "code",
        rule: CODE_REFUSED.into(),
    }
}

fn signed_out() -> RaError {
    RaError::Unauthenticated {
        field: "session",
        rule: "no such session, or it expired: sign in again".into(),
    }
}

impl HolderPortal {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> HolderPortal {
        HolderPortal {
            lifecycle: Lifecycle::new(store.clone(), clock.clone()),
            store,
            clock,
        }
    }

    fn now(&self) -> UnixTime {
        self.clock.now_unix()
    }

    /// Counts an attempt for the identity and the source before anything is checked; false
    /// when either is past its limit. Both are counted whatever the first says, so a guesser
    /// cannot spare one; parallel guesses are each counted, so at most the limit are checked.
    fn within_limits(&self, tckn: &Tckn, source: &SignInSource) -> Result<bool> {
        let now = self.now();
        let [identity, from] = attempt_keys(tckn, source);
        let identity = self
            .store
            .count_portal_attempt(&identity, ATTEMPT_WINDOW_SECONDS, now)?;
        let from = self
            .store
            .count_portal_attempt(&from, ATTEMPT_WINDOW_SECONDS, now)?;
        Ok(identity <= IDENTITY_ATTEMPTS && from <= SOURCE_ATTEMPTS)
    }

    /// Gives back the attempts of a step that succeeded: the limits count failures.
    fn succeeded(&self, tckn: &Tckn, source: &SignInSource) -> Result<()> {
        for key in attempt_keys(tckn, source) {
            self.store.forgive_portal_attempt(&key)?;
        }
        Ok(())
    }

    /// The holder's certificates that a security word may be on record for: live NES.
    fn live_certificates(&self, tckn: &Tckn) -> Result<Vec<CertRecord>> {
        let now = self.now();
        Ok(self
            .certificates(tckn)?
            .into_iter()
            .filter(|c| is_live(c.status, c.not_after, now))
            .collect())
    }

    /// Whether `word` is the security word on record for one of `certs`. Each distinct hash
    /// is verified once; none on record still costs one verification.
    fn word_matches(&self, certs: &[CertRecord], word: &SecretString) -> Result<bool> {
        let mut hashes: Vec<String> = Vec::new();
        for c in certs {
            if let Some(h) = self.store.holder_security_word(&c.issuer, &c.serial)? {
                if !hashes.contains(&h) {
                    hashes.push(h);
                }
            }
        }
        if hashes.is_empty() {
            spend_a_check(word.expose_secret(), crate::enrollment::dummy_hash());
            return Ok(false);
        }
        Ok(hashes
            .iter()
            .any(|h| password_matches(word.expose_secret(), h)))
    }

    /// Checks the T.C. Kimlik No and security word; on a match starts a session awaiting the
    /// SMS code, which the outbox sends to the mobile number on record.
    pub fn sign_in(
        &self,
        tckn: &Tckn,
        word: &SecretString,
        source: &SignInSource,
    ) -> Result<Challenge> {
        if !self.within_limits(tckn, source)? {
            spend_a_check(word.expose_secret(), crate::enrollment::dummy_hash());
            return Err(refused());
        }
        let certs = self.live_certificates(tckn)?;
        if !self.word_matches(&certs, word)? {
            return Err(refused());
        }
        let mut mobile = None;
        for c in &certs {
            if let Some(m) = self
                .store
                .holder_contact(&c.issuer, &c.serial)?
                .and_then(|c| c.mobile)
            {
                mobile = Some(m);
                break;
            }
        }
        let Some(mobile) = mobile else {
            return Err(refused());
        };
        let token = crate::enrollment::new_token();
        let now = self.now();
        let expires_at = now.plus_secs(SESSION_SECONDS);
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let session = NewHolderSession {
            id: hex::encode(id),
            token_sha256: sha256_hex(token.expose_secret().as_bytes()),
            tckn: *tckn,
            mobile,
            expires_at,
        };
        let actor = Principal::Holder {
            tckn: *tckn,
            proof: HolderProof::SecurityWordSms,
        };
        self.store.start_holder_session(&session, &actor, now)?;
        self.succeeded(tckn, source)?;
        Ok(Challenge { token, expires_at })
    }

    /// Checks the SMS code of a session awaiting it: the code is spent once, expires, and
    /// three wrong ones end the session.
    pub fn confirm_code(
        &self,
        token: &str,
        code: &SecretString,
        source: &SignInSource,
    ) -> Result<HolderSignedIn> {
        let now = self.now();
        let session = self
            .store
            .holder_session(&sha256_hex(token.as_bytes()))?
            .filter(|s| s.stage == HolderSessionStage::AwaitingCode && s.expires_at > now)
            .ok_or_else(code_refused)?;
        if !self.within_limits(&session.tckn, source)? {
            return Err(code_refused());
        }
        let actor = Principal::Holder {
            tckn: session.tckn,
            proof: HolderProof::SecurityWordSms,
        };
        let live_code = session
            .code_hash
            .as_deref()
            .filter(|_| session.code_expires_at.is_some_and(|e| e > now));
        let matched = match live_code {
            Some(hash) => password_matches(code.expose_secret(), hash).then_some(hash),
            None => {
                spend_a_check(code.expose_secret(), crate::enrollment::dummy_hash());
                None
            }
        };
        match matched {
            Some(hash)
                if self
                    .store
                    .holder_signed_in(&session.id, hash, &actor, now)? =>
            {
                self.succeeded(&session.tckn, source)?;
                Ok(HolderSignedIn {
                    session_id: session.id,
                    tckn: session.tckn,
                })
            }
            _ => {
                self.store
                    .holder_code_failed(&session.id, MAX_CODE_FAILURES, &actor, now)?;
                Err(code_refused())
            }
        }
    }

    /// The signed-in holder of a session token; an idle or expired session ends here.
    pub fn session(&self, token: &str) -> Result<HolderSignedIn> {
        let now = self.now();
        let session = self
            .store
            .holder_session(&sha256_hex(token.as_bytes()))?
            .filter(|s| s.stage == HolderSessionStage::SignedIn)
            .ok_or_else(signed_out)?;
        let actor = Principal::Holder {
            tckn: session.tckn,
            proof: HolderProof::SecurityWordSms,
        };
        if session.expires_at <= now || session.last_seen_at.plus_secs(IDLE_SECONDS) <= now {
            self.store.end_holder_session(&session.id, &actor, now)?;
            return Err(signed_out());
        }
        self.store.touch_holder_session(&session.id, now)?;
        Ok(HolderSignedIn {
            session_id: session.id,
            tckn: session.tckn,
        })
    }

    /// Whether `token` names a session that awaits its SMS code (the code page shows).
    pub fn awaiting_code(&self, token: &str) -> Result<bool> {
        let now = self.now();
        Ok(self
            .store
            .holder_session(&sha256_hex(token.as_bytes()))?
            .is_some_and(|s| s.stage == HolderSessionStage::AwaitingCode && s.expires_at > now))
    }

    /// Signs out (a session token that names nothing is already signed out).
    pub fn sign_out(&self, token: &str) -> Result<()> {
        if let Some(s) = self.store.holder_session(&sha256_hex(token.as_bytes()))? {
            let actor = Principal::Holder {
                tckn: s.tckn,
                proof: HolderProof::SecurityWordSms,
            };
            self.store.end_holder_session(&s.id, &actor, self.now())?;
        }
        Ok(())
    }

    /// Records where the holder of a certificate is reached: the mobile number their sign-in
    /// codes and notices go to, and an e-mail address for notices.
    pub fn record_contact(
        &self,
        issuer: &ca_core::IssuerId,
        serial: &Serial,
        mobile: Option<&ca_core::TrMobile>,
        email: Option<&ca_core::Email>,
        by: &Principal,
    ) -> Result<()> {
        let contact = ca_core::store::HolderContact {
            mobile: mobile.map(|m| m.as_str().to_owned()),
            email: email.map(|e| e.as_str().to_owned()),
        };
        self.store
            .set_holder_contact(issuer, serial, &contact, by, self.now())?;
        Ok(())
    }

    /// The NES certificates of a holder, newest first (reservations and failures left out).
    pub fn certificates(&self, tckn: &Tckn) -> Result<Vec<CertRecord>> {
        Ok(self.store.find_certificates(&CertificateQuery {
            tckn: Some(*tckn),
            status: None,
            limit: MAX_CERTIFICATES,
        })?)
    }

    /// Suspends, releases or revokes one of the holder's certificates, as any holder request
    /// is: the rules are [`Lifecycle::apply`]'s, the holder the principal.
    pub fn act(
        &self,
        holder: &HolderSignedIn,
        serial: &Serial,
        action: LifecycleAction,
    ) -> Result<TransitionOutcome> {
        // Only the holder's own certificates are found: another's serial is not found.
        let record = self
            .certificates(&holder.tckn)?
            .into_iter()
            .find(|c| c.serial == *serial)
            .ok_or_else(|| RaError::NotFound {
                field: "serial",
                rule: format!("no certificate {serial} of yours"),
            })?;
        self.lifecycle.apply(LifecycleRequest {
            request_id: RequestId::new(&format!("portal-{}", RequestId::random()))?,
            issuer: Some(record.issuer),
            serial: *serial,
            holder: Some(holder.tckn),
            action,
            actor: holder.principal(),
        })
    }

    /// Replaces the security word of every live certificate of the holder, once the current
    /// word matched one of them (counted as a sign-in attempt).
    pub fn change_security_word(
        &self,
        holder: &HolderSignedIn,
        current: &SecretString,
        new: &SecretString,
        source: &SignInSource,
    ) -> Result<()> {
        let wrong = || RaError::Unauthenticated {
            field: "current_security_word",
            rule: "is not the security word on record".into(),
        };
        crate::enrollment::check_security_word(new).map_err(|_| RaError::Invalid {
            field: "new_security_word",
            rule: "must be 4 to 64 letters or digits".into(),
        })?;
        if !self.within_limits(&holder.tckn, source)? {
            return Err(wrong());
        }
        let certs = self.live_certificates(&holder.tckn)?;
        if !self.word_matches(&certs, current)? {
            return Err(wrong());
        }
        let hash = hash_password(new)?;
        let which: Vec<_> = certs.into_iter().map(|c| (c.issuer, c.serial)).collect();
        self.store
            .replace_security_words(&which, &hash, &holder.principal(), self.now())?;
        self.succeeded(&holder.tckn, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Captured;
    use ca_core::store::prelude::*;
    use ca_core::store::{CertStatus, OutboxKind};
    use ca_core::testkit::{fixture, Fixture};

    const HOLDER: &str = "10000000146";
    const WORD: &str = "gizli1234";

    fn tckn() -> Tckn {
        Tckn::parse(HOLDER).unwrap()
    }

    fn source(n: u8) -> SignInSource {
        SignInSource::address(std::net::IpAddr::from([192, 0, 2, n]))
    }

    /// A holder's NES with the security word and mobile number on record.
    fn holder(f: &Fixture, portal: &HolderPortal) -> Serial {
        let serial = f
            .engine
            .issue_nes(
                &f.ca,
                &f.nes,
                ca_core::testkit::nes_application(None, false),
                &Principal::HostOperator,
            )
            .unwrap()
            .serial;
        Lifecycle::new(f.store.clone(), f.clock.clone())
            .record_security_word(
                &f.ca.context.id,
                &serial,
                &SecretString::from(WORD),
                &Principal::HostOperator,
            )
            .unwrap();
        let mobile = ca_core::TrMobile::parse("mobile", "05321234567").unwrap();
        portal
            .record_contact(
                &f.ca.context.id,
                &serial,
                Some(&mobile),
                None,
                &Principal::HostOperator,
            )
            .unwrap();
        serial
    }

    fn setup() -> (Fixture, HolderPortal, Arc<Captured>, crate::outbox::Outbox) {
        let f = fixture();
        let portal = HolderPortal::new(f.store.clone(), f.clock.clone());
        let captured = Arc::new(Captured::default());
        let outbox = crate::outbox::Outbox::new(
            f.store.clone(),
            f.clock.clone(),
            captured.clone(),
            captured.clone(),
            "https://portal.example/basvuru".into(),
        );
        (f, portal, captured, outbox)
    }

    /// The code of the latest SMS delivered.
    fn last_code(outbox: &crate::outbox::Outbox, captured: &Captured) -> SecretString {
        outbox.deliver_due(100).unwrap();
        let (_, text) = captured.sms().last().cloned().expect("an SMS");
        let code = text.split("kodunuz: ").nth(1).unwrap()[..6].to_owned();
        SecretString::from(code)
    }

    #[test]
    fn the_word_then_the_sms_code_sign_a_holder_in_once() {
        let (f, portal, captured, outbox) = setup();
        holder(&f, &portal);
        let challenge = portal
            .sign_in(&tckn(), &SecretString::from(WORD), &source(1))
            .unwrap();
        let token = challenge.token.expose_secret().to_owned();
        assert!(portal.session(&token).is_err(), "signed in before the code");
        let code = last_code(&outbox, &captured);
        assert_eq!(captured.sms().last().unwrap().0, "+905321234567");
        let signed_in = portal.confirm_code(&token, &code, &source(1)).unwrap();
        assert_eq!(signed_in.tckn, tckn());
        assert_eq!(portal.session(&token).unwrap().tckn, tckn());
        // Spent: the same code does not sign in twice.
        assert!(portal.confirm_code(&token, &code, &source(1)).is_err());
        portal.sign_out(&token).unwrap();
        assert!(portal.session(&token).is_err());
    }

    #[test]
    fn every_refusal_is_the_same_and_attempts_are_limited() {
        let (f, portal, _captured, _outbox) = setup();
        holder(&f, &portal);
        let refusal = |r: Result<Challenge>| match r.unwrap_err() {
            RaError::Unauthenticated { rule, .. } => rule,
            other => panic!("{other:?}"),
        };
        let unknown = Tckn::parse("10000000078").unwrap();
        let a = refusal(portal.sign_in(&unknown, &SecretString::from(WORD), &source(1)));
        let b = refusal(portal.sign_in(&tckn(), &SecretString::from("yanlis99"), &source(2)));
        assert_eq!(a, b);
        for _ in 0..IDENTITY_ATTEMPTS - 1 {
            let _ = portal.sign_in(&tckn(), &SecretString::from("yanlis99"), &source(3));
        }
        // Past the identity's limit: the right word is refused the same way, from anywhere.
        let c = refusal(portal.sign_in(&tckn(), &SecretString::from(WORD), &source(4)));
        assert_eq!(a, c);
        // The window over, it signs in again.
        f.clock.advance(std::time::Duration::from_secs(
            ATTEMPT_WINDOW_SECONDS as u64 + 1,
        ));
        portal
            .sign_in(&tckn(), &SecretString::from(WORD), &source(4))
            .unwrap();
    }

    #[test]
    fn three_wrong_codes_end_the_session_and_codes_expire() {
        let (f, portal, captured, outbox) = setup();
        holder(&f, &portal);
        let token = portal
            .sign_in(&tckn(), &SecretString::from(WORD), &source(1))
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
        let code = last_code(&outbox, &captured);
        for _ in 0..MAX_CODE_FAILURES {
            assert!(portal
                .confirm_code(&token, &SecretString::from("000000x"), &source(1))
                .is_err());
        }
        assert!(!portal.awaiting_code(&token).unwrap());
        assert!(portal.confirm_code(&token, &code, &source(1)).is_err());
        // An expired code is refused too.
        f.clock.advance(std::time::Duration::from_secs(
            ATTEMPT_WINDOW_SECONDS as u64 + 1,
        ));
        let token = portal
            .sign_in(&tckn(), &SecretString::from(WORD), &source(1))
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
        let code = last_code(&outbox, &captured);
        f.clock
            .advance(std::time::Duration::from_secs(CODE_SECONDS as u64 + 1));
        assert!(portal.confirm_code(&token, &code, &source(1)).is_err());
    }

    #[test]
    fn a_holder_acts_on_their_own_certificates_only_and_is_notified() {
        let (f, portal, captured, outbox) = setup();
        let serial = holder(&f, &portal);
        let token = portal
            .sign_in(&tckn(), &SecretString::from(WORD), &source(1))
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
        let code = last_code(&outbox, &captured);
        let me = portal.confirm_code(&token, &code, &source(1)).unwrap();
        let out = portal.act(&me, &serial, LifecycleAction::Suspend).unwrap();
        assert_eq!(out.status, CertStatus::Suspended);
        let (head, _) = f.store.audit_head().unwrap().unwrap();
        let audit = f.store.audit_records(1, head).unwrap();
        assert!(audit
            .iter()
            .any(|r| r.entry.actor == "holder:security-word-sms:10000000146"
                && r.entry.action == "suspend"));
        // The status change reached the holder.
        outbox.deliver_due(100).unwrap();
        assert!(captured.sms().last().unwrap().1.contains("Askida"));
        // Another holder's session cannot touch it.
        let other = HolderSignedIn {
            session_id: "x".into(),
            tckn: Tckn::parse("10000000078").unwrap(),
        };
        assert!(matches!(
            portal.act(&other, &serial, LifecycleAction::Release),
            Err(RaError::NotFound { .. })
        ));
        assert!(f
            .store
            .outbox()
            .unwrap()
            .iter()
            .any(|(m, _)| m.kind == OutboxKind::StatusNotice));
    }

    #[test]
    fn the_new_security_word_replaces_the_old_one() {
        let (f, portal, captured, outbox) = setup();
        holder(&f, &portal);
        let token = portal
            .sign_in(&tckn(), &SecretString::from(WORD), &source(1))
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
        let code = last_code(&outbox, &captured);
        let me = portal.confirm_code(&token, &code, &source(1)).unwrap();
        assert!(matches!(
            portal.change_security_word(
                &me,
                &SecretString::from("yanlis99"),
                &SecretString::from("yeni5678"),
                &source(1)
            ),
            Err(RaError::Unauthenticated { .. })
        ));
        assert!(matches!(
            portal.change_security_word(
                &me,
                &SecretString::from(WORD),
                &SecretString::from("a b"),
                &source(1)
            ),
            Err(RaError::Invalid { .. })
        ));
        portal
            .change_security_word(
                &me,
                &SecretString::from(WORD),
                &SecretString::from("yeni5678"),
                &source(1),
            )
            .unwrap();
        assert!(portal
            .sign_in(&tckn(), &SecretString::from(WORD), &source(2))
            .is_err());
        portal
            .sign_in(&tckn(), &SecretString::from("yeni5678"), &source(2))
            .unwrap();
    }

    #[test]
    fn a_holder_without_a_mobile_number_on_record_cannot_sign_in() {
        let (f, portal, _captured, _outbox) = setup();
        let serial = holder(&f, &portal);
        portal
            .record_contact(
                &f.ca.context.id,
                &serial,
                None,
                None,
                &Principal::HostOperator,
            )
            .unwrap();
        assert!(matches!(
            portal.sign_in(&tckn(), &SecretString::from(WORD), &source(1)),
            Err(RaError::Unauthenticated { .. })
        ));
    }
}
