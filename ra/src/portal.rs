//! The holders' portal (docs/portal.md): a holder signs in with their T.C. Kimlik No and the
//! security word on record for their newest live certificate that has one, then with a
//! single-use code sent by SMS to the mobile number on record for that same certificate;
//! signed in, they list their certificates, suspend, release or revoke one, and change their
//! security word.
//!
//! Every refused sign-in answers the same ([`SIGN_IN_REFUSED`]): an unknown number, a wrong
//! word, a holder with no word or mobile number on record and a locked identity or source are
//! not told apart, and each costs exactly one argon2 verification. Attempts are counted per
//! identity (per window and per day) and per source in one statement each, before any word
//! is checked; the codes sent to an identity are counted too, and never given back. A holder's
//! action goes through [`Lifecycle::apply`] as an operator's does, with the holder as the
//! principal; a suspension someone else made (the holder by phone, an operator) is released
//! only where it was made.

use std::sync::Arc;

use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};

use crate::enrollment::{dummy_hash, new_token, sha256_hex};
use crate::error::{RaError, Result};
use crate::lifecycle::Lifecycle;
use crate::outbox::{hash_password, password_matches, spend_a_check};
use ca_core::clock::Clock;
use ca_core::lifecycle::{is_live, LifecycleAction, LifecycleRequest, RequestId, RevocationReason};
use ca_core::store::{
    CertRecord, CertStatus, CertificateQuery, HolderSessionStage, NewHolderSession, SignInSource,
    Store, TransitionOutcome,
};
use ca_core::{HolderProof, Principal, Serial, Tckn, UnixTime};

/// Failed attempts (words and codes) per identity in a window, past which the identity is
/// refused. Each attempt is counted before it is checked and given back when it succeeds.
pub const IDENTITY_ATTEMPTS: u32 = 5;
/// Failed attempts per identity in a day: the phone's security-word checks allow 5 a day per
/// certificate; the portal a few more, spread over the day.
pub const IDENTITY_ATTEMPTS_PER_DAY: u32 = 10;
/// Failed attempts per source address in a window, whoever they name.
pub const SOURCE_ATTEMPTS: u32 = 20;
/// The window of the attempt limits, from its first attempt.
pub const ATTEMPT_WINDOW_SECONDS: i64 = 1_800;
const DAY_SECONDS: i64 = 86_400;
/// SMS codes sent to one identity in a window (sign-ins whose word matched): never given
/// back, so that a known word sends the holder's phone at most [`CODES_PER_DAY`] a day.
pub const CODES_PER_WINDOW: u32 = 5;
/// SMS codes sent to one identity in a day.
pub const CODES_PER_DAY: u32 = 10;
/// Changes (suspend, release, revoke) one holder makes through the portal in a day: each
/// sends notices by SMS and e-mail, so a signed-in session cannot fill the outbox.
pub const ACTIONS_PER_DAY: u32 = 20;
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

/// The reasons a holder gives for revoking their own certificate (RFC 5280 §5.3.1; `None`:
/// unspecified). privilegeWithdrawn is the provider's, not the holder's.
pub const HOLDER_REVOCATION_REASONS: [Option<RevocationReason>; 5] = [
    None,
    Some(RevocationReason::KeyCompromise),
    Some(RevocationReason::AffiliationChanged),
    Some(RevocationReason::Superseded),
    Some(RevocationReason::CessationOfOperation),
];

/// The one rule for a revocation a holder asks for, through any channel (the portal, a KEC):
/// its reason is one of [`HOLDER_REVOCATION_REASONS`].
pub fn check_holder_reason(action: &LifecycleAction) -> Result<()> {
    match action {
        LifecycleAction::Revoke { reason, .. } if !HOLDER_REVOCATION_REASONS.contains(reason) => {
            Err(RaError::invalid(
                "reason",
                "is not a reason a holder gives (unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation)",
            ))
        }
        _ => Ok(()),
    }
}

/// What every refused sign-in answers.
pub const SIGN_IN_REFUSED: &str = "the T.C. Kimlik No or the security word is wrong, no security word and mobile number are on record, or sign-in is paused after repeated attempts";
/// What every refused code answers.
pub const CODE_REFUSED: &str =
    "the code is wrong or expired, or too many codes were tried: sign in again";

/// The principal of a holder proven by the portal's sign-in.
pub fn holder_principal(tckn: Tckn) -> Principal {
    Principal::Holder {
        tckn,
        proof: HolderProof::SecurityWordSms,
    }
}

/// A security word accepted: the session awaits its SMS code.
#[derive(Debug)]
pub struct Challenge {
    /// The session token of the code step, shown once (the portal's cookie).
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
        holder_principal(self.tckn)
    }
}

/// The code matched: the holder is signed in, under a new token (the code step's token no
/// longer opens the session).
#[derive(Debug)]
pub struct SignedIn {
    pub holder: HolderSignedIn,
    pub token: SecretString,
}

/// Where a certificate stands, as the holder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderCertificateState {
    Valid,
    Suspended,
    Revoked,
    /// Past notAfter (whatever its status was): nothing more can be done with it.
    Expired,
}

/// One of the holder's certificates, with what the holder may do with it now.
#[derive(Debug, Clone)]
pub struct HolderCertificate {
    pub record: CertRecord,
    pub state: HolderCertificateState,
    pub may_suspend: bool,
    pub may_release: bool,
    pub may_revoke: bool,
}

/// The portal's services for holders.
pub struct HolderPortal {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    lifecycle: Lifecycle,
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

/// The attempt counters of an identity (per window, per day) and a source.
fn attempt_keys(tckn: &Tckn, source: &SignInSource) -> [(String, i64, u32); 3] {
    [
        (
            format!("holder:{tckn}"),
            ATTEMPT_WINDOW_SECONDS,
            IDENTITY_ATTEMPTS,
        ),
        (
            format!("holder-day:{tckn}"),
            DAY_SECONDS,
            IDENTITY_ATTEMPTS_PER_DAY,
        ),
        (source_key(source), ATTEMPT_WINDOW_SECONDS, SOURCE_ATTEMPTS),
    ]
}

/// The attempt counter of a source.
fn source_key(source: &SignInSource) -> String {
    format!("source:{source}")
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

    /// Counts an attempt on every counter of the identity and the source before anything is
    /// checked; false when any is past its limit. All are counted whatever the first says, so
    /// a guesser cannot spare one; parallel guesses are each counted, so at most the limit
    /// are checked.
    fn count_attempt_within_limits(&self, tckn: &Tckn, source: &SignInSource) -> Result<bool> {
        let now = self.now();
        let mut within = true;
        for (key, window, limit) in attempt_keys(tckn, source) {
            within &= self.store.count_portal_attempt(&key, window, now)? <= limit;
        }
        Ok(within)
    }

    /// Gives back the attempts of a step that succeeded: the limits count failures. The step
    /// is done already, so a failure here is logged, not answered (the attempt then stays
    /// counted, which errs on the safe side).
    fn forgive_attempts(&self, tckn: &Tckn, source: &SignInSource) {
        for (key, _, _) in attempt_keys(tckn, source) {
            if let Err(e) = self.store.forgive_portal_attempt(&key) {
                tracing::warn!(error = %e, "a portal attempt could not be given back");
            }
        }
    }

    /// Refuses a sign-in whose T.C. Kimlik No does not parse: counted against the source
    /// (there is no identity to count), and costing one check, as any refusal.
    pub fn refuse_unparsed(&self, secret: &SecretString, source: &SignInSource) -> Result<()> {
        self.store
            .count_portal_attempt(&source_key(source), ATTEMPT_WINDOW_SECONDS, self.now())?;
        spend_a_check(secret.expose_secret(), dummy_hash());
        Ok(())
    }

    /// The holder's live NES certificates, newest first.
    fn live_certificates(&self, tckn: &Tckn) -> Result<Vec<CertRecord>> {
        let now = self.now();
        Ok(self
            .store_certificates(tckn)?
            .into_iter()
            .filter(|c| is_live(c.status, c.not_after, now))
            .collect())
    }

    /// The certificate whose security word signs the holder in: the newest live one with a
    /// word on record, and that word's hash.
    fn word_certificate(&self, tckn: &Tckn) -> Result<Option<(CertRecord, String)>> {
        for c in self.live_certificates(tckn)? {
            if let Some(hash) = self.store.holder_security_word(&c.issuer, &c.serial)? {
                return Ok(Some((c, hash)));
            }
        }
        Ok(None)
    }

    /// Whether `word` is the holder's word: exactly one argon2 verification, against the
    /// word of [`Self::word_certificate`] or, when there is none, a dummy.
    fn check_word(&self, tckn: &Tckn, word: &SecretString) -> Result<Option<CertRecord>> {
        match self.word_certificate(tckn)? {
            Some((cert, hash)) => Ok(password_matches(word.expose_secret(), &hash).then_some(cert)),
            None => {
                spend_a_check(word.expose_secret(), dummy_hash());
                Ok(None)
            }
        }
    }

    /// Checks the T.C. Kimlik No and security word; on a match starts a session awaiting the
    /// SMS code, which the outbox sends to the mobile number on record for the certificate
    /// whose word matched.
    pub fn sign_in(
        &self,
        tckn: &Tckn,
        word: &SecretString,
        source: &SignInSource,
    ) -> Result<Challenge> {
        if !self.count_attempt_within_limits(tckn, source)? {
            spend_a_check(word.expose_secret(), dummy_hash());
            return Err(refused());
        }
        let Some(cert) = self.check_word(tckn, word)? else {
            return Err(refused());
        };
        let Some(mobile) = self
            .store
            .holder_contact(&cert.issuer, &cert.serial)?
            .and_then(|c| c.mobile)
        else {
            return Err(refused());
        };
        let now = self.now();
        // The codes an identity is sent: counted when the word matched, never given back;
        // the day's counter only those the window let through (codes sent, not refusals).
        for (key, window, limit) in [
            (
                format!("codes:{tckn}"),
                ATTEMPT_WINDOW_SECONDS,
                CODES_PER_WINDOW,
            ),
            (format!("codes-day:{tckn}"), DAY_SECONDS, CODES_PER_DAY),
        ] {
            if self.store.count_portal_attempt(&key, window, now)? > limit {
                return Err(refused());
            }
        }
        let token = new_token();
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
        self.store
            .start_holder_session(&session, &holder_principal(*tckn), now)?;
        self.forgive_attempts(tckn, source);
        Ok(Challenge { token, expires_at })
    }

    /// Checks the SMS code of a session awaiting it: the code is spent once, expires, and
    /// three wrong ones end the session. Signed in, the session has a new token.
    pub fn confirm_code(
        &self,
        token: &str,
        code: &SecretString,
        source: &SignInSource,
    ) -> Result<SignedIn> {
        let now = self.now();
        let session = self
            .store
            .holder_session(&sha256_hex(token.as_bytes()))?
            .filter(|s| s.stage == HolderSessionStage::AwaitingCode && s.expires_at > now)
            .ok_or_else(code_refused)?;
        if !self.count_attempt_within_limits(&session.tckn, source)? {
            return Err(code_refused());
        }
        let actor = holder_principal(session.tckn);
        let live_code = session
            .code_hash
            .as_deref()
            .filter(|_| session.code_expires_at.is_some_and(|e| e > now));
        let matched = match live_code {
            Some(hash) => password_matches(code.expose_secret(), hash).then_some(hash),
            None => {
                spend_a_check(code.expose_secret(), dummy_hash());
                None
            }
        };
        let new_token = new_token();
        let new_sha256 = sha256_hex(new_token.expose_secret().as_bytes());
        match matched {
            Some(hash)
                if self
                    .store
                    .holder_signed_in(&session.id, hash, &new_sha256, &actor, now)? =>
            {
                self.forgive_attempts(&session.tckn, source);
                Ok(SignedIn {
                    holder: HolderSignedIn {
                        session_id: session.id,
                        tckn: session.tckn,
                    },
                    token: new_token,
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
        if session.expires_at <= now || session.last_seen_at.plus_secs(IDLE_SECONDS) <= now {
            self.store
                .end_holder_session(&session.id, &holder_principal(session.tckn), now)?;
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
            self.store
                .end_holder_session(&s.id, &holder_principal(s.tckn), self.now())?;
        }
        Ok(())
    }

    /// The NES certificates of a holder, newest first (reservations and failures left out).
    fn store_certificates(&self, tckn: &Tckn) -> Result<Vec<CertRecord>> {
        Ok(self.store.find_certificates(&CertificateQuery {
            tckn: Some(*tckn),
            status: None,
            limit: MAX_CERTIFICATES,
        })?)
    }

    /// The holder's certificates, newest first, each with what the holder may do with it.
    pub fn certificates(&self, holder: &HolderSignedIn) -> Result<Vec<HolderCertificate>> {
        let now = self.now();
        self.store_certificates(&holder.tckn)?
            .into_iter()
            .map(|record| self.view(holder, record, now))
            .collect()
    }

    /// One of the holder's certificates as they see it at `now`, with what they may do.
    fn view(
        &self,
        holder: &HolderSignedIn,
        record: CertRecord,
        now: UnixTime,
    ) -> Result<HolderCertificate> {
        let live = is_live(record.status, record.not_after, now);
        let state = match record.status {
            _ if now > record.not_after => HolderCertificateState::Expired,
            CertStatus::Suspended => HolderCertificateState::Suspended,
            CertStatus::Revoked => HolderCertificateState::Revoked,
            _ => HolderCertificateState::Valid,
        };
        let suspended = state == HolderCertificateState::Suspended;
        let may_release = live && suspended && self.suspended_by(holder, &record)?;
        Ok(HolderCertificate {
            may_suspend: live && state == HolderCertificateState::Valid,
            may_release,
            may_revoke: live,
            state,
            record,
        })
    }

    /// Whether the latest suspension of `record` was the holder's own through the portal:
    /// a suspension by phone (a lost phone) or by an operator is released where it was made,
    /// never by whoever has the phone and the word.
    fn suspended_by(&self, holder: &HolderSignedIn, record: &CertRecord) -> Result<bool> {
        let last_hold = self
            .store
            .transitions(&record.issuer, &record.serial)?
            .into_iter()
            .filter(|t| t.to == CertStatus::Suspended)
            .max_by_key(|t| t.seq);
        Ok(last_hold.is_some_and(|t| t.actor == holder.principal()))
    }

    /// Suspends, releases or revokes one of the holder's certificates, as any holder request
    /// is: the rules are [`Lifecycle::apply`]'s, the holder the principal; a release only of
    /// the holder's own portal suspension, a revocation only with a holder's reason.
    pub fn act(
        &self,
        holder: &HolderSignedIn,
        serial: &Serial,
        action: LifecycleAction,
    ) -> Result<TransitionOutcome> {
        // Only the holder's own certificates are found: another's serial is not found.
        let record = self
            .store_certificates(&holder.tckn)?
            .into_iter()
            .find(|c| c.serial == *serial)
            .ok_or_else(|| RaError::NotFound {
                field: "serial",
                rule: format!("no certificate {serial} of yours"),
            })?;
        let now = self.now();
        // Counted before anything changes, never given back.
        let actions = self.store.count_portal_attempt(
            &format!("actions:{}", holder.tckn),
            DAY_SECONDS,
            now,
        )?;
        if actions > ACTIONS_PER_DAY {
            let until = now.plus_secs(DAY_SECONDS);
            return Err(RaError::Locked {
                field: "action",
                until,
                until_text: ca_core::rfc3339(until),
            });
        }
        let cert = self.view(holder, record, now)?;
        match action {
            LifecycleAction::Release if cert.state == HolderCertificateState::Suspended && !cert.may_release => {
                return Err(RaError::Refused {
                    field: "serial",
                    rule: "this suspension was not made through the portal: it is released where it was made (the registration office, by phone with the security word)".into(),
                })
            }
            _ => check_holder_reason(&action)?,
        }
        self.lifecycle.apply(LifecycleRequest {
            request_id: RequestId::new(&format!("portal-{}", RequestId::random()))?,
            issuer: Some(cert.record.issuer),
            serial: *serial,
            holder: Some(holder.tckn),
            action,
            actor: holder.principal(),
        })
    }

    /// Replaces the security word of every live certificate of the holder, once the current
    /// word matched (counted as a sign-in attempt); the holder is told on every contact on
    /// record.
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
        crate::enrollment::check_security_word(new).map_err(|e| match e {
            RaError::Invalid { rule, .. } => RaError::Invalid {
                field: "new_security_word",
                rule,
            },
            other => other,
        })?;
        if !self.count_attempt_within_limits(&holder.tckn, source)? {
            spend_a_check(current.expose_secret(), dummy_hash());
            return Err(wrong());
        }
        if self.check_word(&holder.tckn, current)?.is_none() {
            return Err(wrong());
        }
        let hash = hash_password(new)?;
        let which: Vec<_> = self
            .live_certificates(&holder.tckn)?
            .into_iter()
            .map(|c| (c.issuer, c.serial))
            .collect();
        self.store.replace_security_words(
            &holder.tckn,
            &which,
            &hash,
            &holder.principal(),
            self.now(),
        )?;
        self.forgive_attempts(&holder.tckn, source);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holder_details::HolderDetails;
    use crate::testkit::Captured;
    use ca_core::store::prelude::*;
    use ca_core::store::OutboxKind;
    use ca_core::testkit::{fixture, Fixture};
    use std::time::Duration;

    const HOLDER: &str = "10000000146";
    const WORD: &str = "gizli1234";

    fn tckn() -> Tckn {
        Tckn::parse(HOLDER).unwrap()
    }

    fn source(n: u8) -> SignInSource {
        SignInSource::address(std::net::IpAddr::from([192, 0, 2, n]))
    }

    fn word(w: &str) -> SecretString {
        SecretString::from(w)
    }

    struct Setup {
        f: Fixture,
        portal: HolderPortal,
        captured: Arc<Captured>,
        outbox: crate::outbox::Outbox,
    }

    fn setup() -> Setup {
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
        Setup {
            f,
            portal,
            captured,
            outbox,
        }
    }

    impl Setup {
        /// A NES of the holder with `word` and `mobile` on record.
        fn issue(&self, word: &str, mobile: Option<&str>) -> Serial {
            let f = &self.f;
            let serial = crate::testkit::issue_nes(f);
            let store: Arc<dyn Store> = f.store.clone();
            let clock: Arc<dyn Clock> = f.clock.clone();
            HolderDetails::parse(mobile, None, Some(SecretString::from(word)))
                .unwrap()
                .record(
                    (&store, &clock),
                    &f.ca.context.id,
                    &serial,
                    &Principal::HostOperator,
                )
                .unwrap();
            serial
        }

        /// The code of the latest sign-in SMS delivered (notices go after codes).
        fn last_code(&self) -> SecretString {
            self.outbox.deliver_due(100).unwrap();
            let code = self
                .captured
                .sms()
                .iter()
                .rev()
                .find_map(|(_, text)| text.split("kodunuz: ").nth(1).map(|c| c[..6].to_owned()))
                .expect("a sign-in SMS");
            SecretString::from(code)
        }

        /// The code step's token after a sign-in with `w`.
        fn challenge(&self, w: &str) -> String {
            self.portal
                .sign_in(&tckn(), &word(w), &source(1))
                .unwrap()
                .token
                .expose_secret()
                .to_owned()
        }

        /// A signed-in holder and their session token.
        fn signed_in(&self, w: &str) -> (HolderSignedIn, String) {
            let token = self.challenge(w);
            let code = self.last_code();
            let s = self.portal.confirm_code(&token, &code, &source(1)).unwrap();
            (s.holder, s.token.expose_secret().to_owned())
        }

        fn advance(&self, secs: i64) {
            self.f.clock.advance(Duration::from_secs(secs as u64));
        }
    }

    #[test]
    fn the_word_then_the_sms_code_sign_a_holder_in_once_under_a_new_token() {
        let t = setup();
        t.issue(WORD, Some("05321234567"));
        let token = t.challenge(WORD);
        assert!(
            t.portal.session(&token).is_err(),
            "signed in before the code"
        );
        let code = t.last_code();
        assert_eq!(t.captured.sms().last().unwrap().0, "+905321234567");
        let signed_in = t.portal.confirm_code(&token, &code, &source(1)).unwrap();
        assert_eq!(signed_in.holder.tckn, tckn());
        let new_token = signed_in.token.expose_secret().to_owned();
        assert_ne!(new_token, token);
        assert!(
            t.portal.session(&token).is_err(),
            "the code step's token opens nothing"
        );
        assert_eq!(t.portal.session(&new_token).unwrap().tckn, tckn());
        // Spent: the same code does not sign in twice.
        assert!(t.portal.confirm_code(&token, &code, &source(1)).is_err());
        t.portal.sign_out(&new_token).unwrap();
        assert!(t.portal.session(&new_token).is_err());
    }

    #[test]
    fn sessions_end_when_idle_and_at_their_absolute_expiry() {
        let t = setup();
        t.issue(WORD, Some("05321234567"));
        let (_, token) = t.signed_in(WORD);
        t.advance(IDLE_SECONDS - 1);
        t.portal.session(&token).unwrap();
        t.advance(IDLE_SECONDS);
        assert!(t.portal.session(&token).is_err(), "idle");
        // Kept busy, it still ends at the absolute expiry.
        let (_, token) = t.signed_in(WORD);
        for _ in 0..(SESSION_SECONDS / (IDLE_SECONDS / 2)) {
            t.advance(IDLE_SECONDS / 2);
            let _ = t.portal.session(&token);
        }
        assert!(
            t.portal.session(&token).is_err(),
            "past the absolute expiry"
        );
    }

    #[test]
    fn every_refusal_is_the_same_and_attempts_are_limited() {
        let t = setup();
        t.issue(WORD, Some("05321234567"));
        let refusal = |r: Result<Challenge>| match r.unwrap_err() {
            RaError::Unauthenticated { rule, .. } => rule,
            other => panic!("{other:?}"),
        };
        let unknown = Tckn::parse("10000000078").unwrap();
        let a = refusal(t.portal.sign_in(&unknown, &word(WORD), &source(1)));
        let b = refusal(t.portal.sign_in(&tckn(), &word("yanlis99"), &source(2)));
        assert_eq!(a, b);
        for _ in 0..IDENTITY_ATTEMPTS - 1 {
            let _ = t.portal.sign_in(&tckn(), &word("yanlis99"), &source(3));
        }
        // Past the identity's limit: the right word is refused the same way, from anywhere.
        let c = refusal(t.portal.sign_in(&tckn(), &word(WORD), &source(4)));
        assert_eq!(a, c);
        // The window over, it signs in again.
        t.advance(ATTEMPT_WINDOW_SECONDS + 1);
        t.portal.sign_in(&tckn(), &word(WORD), &source(4)).unwrap();
        // The day's limit holds across windows.
        for _ in 0..IDENTITY_ATTEMPTS_PER_DAY - IDENTITY_ATTEMPTS {
            let _ = t.portal.sign_in(&tckn(), &word("yanlis99"), &source(5));
        }
        t.advance(ATTEMPT_WINDOW_SECONDS + 1);
        assert_eq!(
            a,
            refusal(t.portal.sign_in(&tckn(), &word(WORD), &source(6)))
        );
    }

    #[test]
    fn a_known_word_cannot_flood_the_phone() {
        let t = setup();
        t.issue(WORD, Some("05321234567"));
        let refused = |t: &Setup| {
            matches!(
                t.portal.sign_in(&tckn(), &word(WORD), &source(1)),
                Err(RaError::Unauthenticated { .. })
            )
        };
        for _ in 0..CODES_PER_DAY / CODES_PER_WINDOW {
            for _ in 0..CODES_PER_WINDOW {
                t.challenge(WORD);
            }
            assert!(refused(&t), "past the window's codes");
            t.advance(ATTEMPT_WINDOW_SECONDS + 1);
        }
        assert!(refused(&t), "past the day's codes");
        t.advance(DAY_SECONDS);
        t.challenge(WORD);
    }

    /// The hourly sweep forgets the half-hour counters whose window is over, never the day's:
    /// five failures an hour still meet the day's limit.
    #[test]
    fn the_days_limit_outlives_the_hourly_sweep() {
        let t = setup();
        t.issue(WORD, Some("05321234567"));
        for _ in 0..IDENTITY_ATTEMPTS_PER_DAY / IDENTITY_ATTEMPTS {
            for _ in 0..IDENTITY_ATTEMPTS {
                let _ = t.portal.sign_in(&tckn(), &word("yanlis99"), &source(1));
            }
            t.advance(ATTEMPT_WINDOW_SECONDS + 1);
            t.outbox.sweep_portal().unwrap();
        }
        assert!(t.portal.sign_in(&tckn(), &word(WORD), &source(2)).is_err());
    }

    #[test]
    fn an_unparsed_number_counts_against_its_source() {
        let t = setup();
        t.issue(WORD, Some("05321234567"));
        for _ in 0..SOURCE_ATTEMPTS {
            t.portal.refuse_unparsed(&word("x"), &source(9)).unwrap();
        }
        assert!(t.portal.sign_in(&tckn(), &word(WORD), &source(9)).is_err());
        t.portal.sign_in(&tckn(), &word(WORD), &source(8)).unwrap();
    }

    #[test]
    fn three_wrong_codes_end_the_session_and_codes_expire() {
        let t = setup();
        t.issue(WORD, Some("05321234567"));
        let token = t.challenge(WORD);
        let code = t.last_code();
        for _ in 0..MAX_CODE_FAILURES {
            assert!(t
                .portal
                .confirm_code(&token, &word("000000x"), &source(1))
                .is_err());
        }
        assert!(!t.portal.awaiting_code(&token).unwrap());
        assert!(t.portal.confirm_code(&token, &code, &source(1)).is_err());
        // An expired code is refused too.
        t.advance(ATTEMPT_WINDOW_SECONDS + 1);
        let token = t.challenge(WORD);
        let code = t.last_code();
        t.advance(CODE_SECONDS + 1);
        assert!(t.portal.confirm_code(&token, &code, &source(1)).is_err());
    }

    #[test]
    fn the_newest_word_signs_in_and_its_certificates_mobile_gets_the_code() {
        let t = setup();
        t.issue("eskisi11", Some("05321234567"));
        t.advance(60);
        t.issue("yenisi22", Some("05559998877"));
        assert!(t
            .portal
            .sign_in(&tckn(), &word("eskisi11"), &source(1))
            .is_err());
        t.challenge("yenisi22");
        t.outbox.deliver_due(100).unwrap();
        assert_eq!(t.captured.sms().last().unwrap().0, "+905559998877");
    }

    #[test]
    fn a_holder_acts_on_their_own_certificates_only_and_is_notified() {
        let t = setup();
        let serial = t.issue(WORD, Some("05321234567"));
        let (me, _) = t.signed_in(WORD);
        let out = t
            .portal
            .act(&me, &serial, LifecycleAction::Suspend)
            .unwrap();
        assert_eq!(out.status, CertStatus::Suspended);
        let (head, _) = t.f.store.audit_head().unwrap().unwrap();
        let audit = t.f.store.audit_records(1, head).unwrap();
        assert!(audit
            .iter()
            .any(|r| r.entry.actor == "holder:security-word-sms:10000000146"
                && r.entry.action == "suspend"));
        // The status change reached the holder.
        t.outbox.deliver_due(100).unwrap();
        assert!(t.captured.sms().last().unwrap().1.contains("Askida"));
        // Their own suspension, they release.
        let certs = t.portal.certificates(&me).unwrap();
        assert!(certs[0].may_release && !certs[0].may_suspend && certs[0].may_revoke);
        t.portal
            .act(&me, &serial, LifecycleAction::Release)
            .unwrap();
        // Another holder's session cannot touch it.
        let other = HolderSignedIn {
            session_id: "x".into(),
            tckn: Tckn::parse("10000000078").unwrap(),
        };
        assert!(matches!(
            t.portal.act(&other, &serial, LifecycleAction::Suspend),
            Err(RaError::NotFound { .. })
        ));
        // privilegeWithdrawn is the provider's reason.
        assert!(matches!(
            t.portal.act(
                &me,
                &serial,
                LifecycleAction::Revoke {
                    reason: Some(RevocationReason::PrivilegeWithdrawn),
                    invalidity_date: None
                }
            ),
            Err(RaError::Invalid { .. })
        ));
    }

    #[test]
    fn a_holder_makes_a_bounded_number_of_changes_a_day() {
        let t = setup();
        let serial = t.issue(WORD, Some("05321234567"));
        let (me, _) = t.signed_in(WORD);
        for i in 0..ACTIONS_PER_DAY {
            let action = match i % 2 {
                0 => LifecycleAction::Suspend,
                _ => LifecycleAction::Release,
            };
            t.portal.act(&me, &serial, action).unwrap();
        }
        assert!(matches!(
            t.portal.act(&me, &serial, LifecycleAction::Suspend),
            Err(RaError::Locked { .. })
        ));
        t.advance(DAY_SECONDS);
        t.portal
            .act(&me, &serial, LifecycleAction::Suspend)
            .unwrap();
    }

    #[test]
    fn a_suspension_made_elsewhere_is_not_released_through_the_portal() {
        let t = setup();
        let serial = t.issue(WORD, Some("05321234567"));
        // The holder lost their phone and had the certificate suspended by phone.
        Lifecycle::new(t.f.store.clone(), t.f.clock.clone())
            .apply(LifecycleRequest {
                request_id: RequestId::new("phone-1").unwrap(),
                issuer: None,
                serial,
                holder: Some(tckn()),
                action: LifecycleAction::Suspend,
                actor: Principal::HostOperator,
            })
            .unwrap();
        let (me, _) = t.signed_in(WORD);
        let certs = t.portal.certificates(&me).unwrap();
        assert_eq!(certs[0].state, HolderCertificateState::Suspended);
        assert!(!certs[0].may_release);
        assert!(matches!(
            t.portal.act(&me, &serial, LifecycleAction::Release),
            Err(RaError::Refused { .. })
        ));
        assert_eq!(
            t.f.store.get(None, &serial).unwrap().unwrap().status,
            CertStatus::Suspended
        );
    }

    #[test]
    fn the_new_security_word_replaces_the_old_one_and_the_holder_is_told() {
        let t = setup();
        t.issue(WORD, Some("05321234567"));
        let (me, _) = t.signed_in(WORD);
        assert!(matches!(
            t.portal
                .change_security_word(&me, &word("yanlis99"), &word("yeni5678"), &source(1)),
            Err(RaError::Unauthenticated { .. })
        ));
        assert!(matches!(
            t.portal
                .change_security_word(&me, &word(WORD), &word("a b"), &source(1)),
            Err(RaError::Invalid { .. })
        ));
        t.portal
            .change_security_word(&me, &word(WORD), &word("yeni5678"), &source(1))
            .unwrap();
        assert!(t.portal.sign_in(&tckn(), &word(WORD), &source(2)).is_err());
        t.portal
            .sign_in(&tckn(), &word("yeni5678"), &source(2))
            .unwrap();
        assert!(t.f.store.outbox().unwrap().iter().any(|(m, _)| m.kind
            == OutboxKind::SecurityWordNotice
            && m.recipient == "+905321234567"));
    }

    #[test]
    fn a_holder_without_a_mobile_number_on_record_cannot_sign_in() {
        let t = setup();
        t.issue(WORD, None);
        assert!(matches!(
            t.portal.sign_in(&tckn(), &word(WORD), &source(1)),
            Err(RaError::Unauthenticated { .. })
        ));
    }

    #[test]
    fn an_expired_certificate_is_shown_expired_and_offers_nothing() {
        let t = setup();
        t.issue(WORD, Some("05321234567"));
        let (me, _) = t.signed_in(WORD);
        t.advance(4 * 365 * 86_400);
        let certs = t.portal.certificates(&me).unwrap();
        assert_eq!(certs[0].state, HolderCertificateState::Expired);
        assert!(!certs[0].may_suspend && !certs[0].may_release && !certs[0].may_revoke);
    }
}
