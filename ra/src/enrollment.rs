//! An invited person completes their application (docs/STANDARDS.md "The Turkish channels",
//! Institutional batch): signs in with T.C. Kimlik No and the e-mailed access password (failures
//! counted per address, then that address locked out), fills the form (security word hashed, "do not publish", delivery
//! address), confirms the mobile number with an SMS code, and approves by e-Onay (when their prior
//! consent is on record), by a CMS signature with a valid NES that nesca issued, or by a wet
//! signature on the printed form (held until an operator records its receipt). Every step is one
//! store transaction; no secret is stored except as an argon2id hash (session tokens as SHA-256,
//! being 256 random bits).
//!
//! An approved application whose person holds a certificate expiring more than two months
//! later is a renewal: it is held, and produced from the first day (Turkey's time) the
//! expiry is two months away or less.

use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use crate::error::{RaError, Result};
use crate::outbox::{hash_password, password_matches, spend_a_check};
use ca_core::clock::Clock;
use ca_core::institution::Payer;
use ca_core::store::{
    ApprovalMethod, CertStatus, EOnayConsent, EnrollmentOutcome, EnrollmentRecord, EnrollmentStage,
    EnrollmentWrite, PreApplication, SignInSource, Store,
};
use ca_core::{Principal, Serial, Tckn, UnixTime};
use stage::Step;

mod approval;
pub mod limits;
pub mod lookup;
pub mod stage;

pub use approval::Sha256Digest;
use approval::{EOnayMethod, EOnayRecord};

/// How long an SMS code stays good.
pub const SMS_CODE_SECONDS: i64 = 600;
/// Wrong access passwords from one source before sign-in from it locks.
pub const MAX_SIGN_IN_FAILURES: u32 = 5;
/// Attempts from all sources since the last sign-in past which each source gets one try.
pub const ONE_TRY_AFTER_FAILURES: u32 = 25;
/// Sign-in attempts from one address in a window of [`SOURCE_WINDOW_SECONDS`] from its first,
/// whoever they name, past which the address gets one try per person for the rest of the
/// window (sign-ins give theirs back).
pub const SOURCE_ATTEMPTS_PER_WINDOW: u32 = 50;
/// The window of [`SOURCE_ATTEMPTS_PER_WINDOW`].
pub const SOURCE_WINDOW_SECONDS: i64 = 1_800;

/// What every refused sign-in answers: an unknown number, a wrong password and a locked
/// sign-in are not told apart.
pub const SIGN_IN_REFUSED: &str = "the T.C. Kimlik No or the access password is wrong, or sign-in from this address is paused for 30 minutes after repeated wrong passwords";
/// How long a lock lasts.
pub const LOCK_SECONDS: i64 = 1_800;
/// How long a session lasts after sign-in.
pub const SESSION_SECONDS: i64 = 1_800;
/// Wrong codes before the code is void (a new one must be asked for).
pub const MAX_CODE_FAILURES: u32 = 3;
/// SMS codes per application, the first one included.
pub const MAX_CODES: u32 = 5;
/// Turkey's time (UTC+3 all year since 2016): renewal days and billing months follow it.
pub const TURKEY_OFFSET_SECONDS: i64 = 3 * 3_600;
/// The largest security word, delivery address, scan and e-Onay evidence accepted.
/// The shortest security word.
pub const MIN_SECURITY_WORD_CHARS: usize = 4;
/// The longest security word.
pub const MAX_SECURITY_WORD_CHARS: usize = 64;
const MAX_ADDRESS_CHARS: usize = 500;
const MAX_EVIDENCE_BYTES: usize = 20 * 1024 * 1024;

/// A fresh six-digit SMS code, from the OS CSPRNG.
pub fn new_sms_code() -> SecretString {
    use rand::Rng as _;
    SecretString::from(format!(
        "{:06}",
        rand::rngs::OsRng.gen_range(0..1_000_000u32)
    ))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks a security word: 4 to 64 letters or digits (no spaces, so that a holder can read
/// it out on the phone).
pub fn check_security_word(security_word: &SecretString) -> Result<()> {
    let word = security_word.expose_secret();
    let n = word.chars().count();
    if !(MIN_SECURITY_WORD_CHARS..=MAX_SECURITY_WORD_CHARS).contains(&n)
        || !word.chars().all(char::is_alphanumeric)
    {
        return Err(RaError::invalid(
            "security_word",
            format!(
                "must be {MIN_SECURITY_WORD_CHARS} to {MAX_SECURITY_WORD_CHARS} letters or digits"
            ),
        ));
    }
    Ok(())
}

/// The applicant's form, checked.
pub struct ApplicantForm {
    pub security_word: SecretString,
    pub do_not_publish: bool,
    pub delivery_address: String,
}

impl ApplicantForm {
    /// Checks the fields: a security word of 4 to 64 letters or digits (no spaces, so that a
    /// caller can read it out on the phone), a delivery address of 10 to 500 characters
    /// without control characters except line breaks.
    pub fn parse(
        security_word: SecretString,
        do_not_publish: bool,
        delivery_address: &str,
    ) -> Result<ApplicantForm> {
        check_security_word(&security_word)?;
        let address = delivery_address.trim();
        let n = address.chars().count();
        if !(10..=MAX_ADDRESS_CHARS).contains(&n)
            || address.chars().any(|c| c.is_control() && c != '\n')
        {
            return Err(RaError::invalid(
                "delivery_address",
                format!("must be 10 to {MAX_ADDRESS_CHARS} characters, no control characters"),
            ));
        }
        Ok(ApplicantForm {
            security_word,
            do_not_publish,
            delivery_address: address.to_owned(),
        })
    }
}

/// A started session: the token is shown once; the store keeps its SHA-256.
#[derive(Debug)]
pub struct SessionGrant {
    pub token: SecretString,
    pub expires_at: UnixTime,
    pub pre_application: String,
}

/// What a session sees of its application.
#[derive(Debug, Clone)]
pub struct ApplicantView {
    pub pre: PreApplication,
    pub enrollment: EnrollmentRecord,
}

/// How the applicant approves.
pub enum Approval {
    EOnay,
    /// A CMS SignedData (DER) over the approval text, attached or detached.
    Signature(Vec<u8>),
    Wet,
}

/// What an approval led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// Approved: produced at once, or (a renewal) from `produce_after`.
    Approved { produce_after: Option<UnixTime> },
    /// The form to print and sign (PDF); the application waits for an operator's receipt.
    AwaitingWet { form_pdf: Vec<u8> },
}

/// What an application's approval recorded, as operators and auditors read it back (`nesca
/// applicant show`): never the evidence itself, its SHA-256 and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub method: ApprovalMethod,
    /// The SHA-256 of the approval text approved (for a wet signature: the text the printed
    /// form carries, recorded when it was chosen).
    pub approval_text_sha256: Option<Sha256Digest>,
    /// When it was approved; `None` while a wet-signed form is awaited.
    pub approved_at: Option<UnixTime>,
    /// The SHA-256 of the evidence kept: the e-Onay record (JSON), the CMS signature (DER) or
    /// the scan of the wet-signed form; `None` before the approval.
    pub evidence_sha256: Option<Sha256Digest>,
    /// e-Onay: the consent the approval relied on, as its record names it.
    pub consent: Option<ConsentReference>,
    /// Signature: the serial of the NES that signed the approval text, the certificate the
    /// kept CMS names as its signer (the signature and the certificate were verified when the
    /// approval was taken).
    pub signer_serial: Option<Serial>,
}

/// The e-Onay consent an approval names (`nesca applicant consent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentReference {
    pub reference: String,
    /// The SHA-256 of the consent's evidence.
    pub evidence_sha256: Sha256Digest,
    pub given_at: UnixTime,
}

/// The completion service.
pub struct Enrollments {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Enrollments {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Enrollments {
        Enrollments { store, clock }
    }

    fn now(&self) -> UnixTime {
        self.clock.now_unix()
    }

    fn write(&self, w: EnrollmentWrite) -> Result<EnrollmentOutcome> {
        Ok(self.store.enrollment_write(w)?)
    }

    /// Locks sign-in from `source` for [`LOCK_SECONDS`] from `now`. A refused lock (the
    /// pre-application closed meanwhile: nothing left to sign in to) is no error.
    fn lock_sign_in(
        &self,
        id: String,
        source: &SignInSource,
        actor: Principal,
        now: UnixTime,
    ) -> Result<()> {
        let locked = self.write(EnrollmentWrite::LockSignIn {
            id,
            source: source.clone(),
            until: now.plus_secs(LOCK_SECONDS),
            actor,
            at: now,
        });
        match locked {
            Err(e) if !is_refusal(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// Counts a sign-in attempt from an address, whoever it names, before anything is looked
    /// up; returns whether the address is past its budget ([`limits::source_slowed`]), which
    /// leaves it one try per person ([`limits::sign_in_allowance`]). Nothing is refused here,
    /// so the answer still depends on nothing but the password. The unnamed source (a portal
    /// that named no address: every one of its applicants) is not counted.
    fn count_source_attempt(&self, source: &SignInSource, now: UnixTime) -> Result<bool> {
        if !source.is_address() {
            return Ok(false);
        }
        let count = counted(self.write(EnrollmentWrite::SourceAttempt {
            source: source.clone(),
            window_seconds: SOURCE_WINDOW_SECONDS,
            at: now,
        })?);
        Ok(limits::source_slowed(count))
    }

    /// The enrollment's stage as the store holds it (`None`: not started), and whether `step`
    /// may follow it.
    fn transition(&self, id: &str, step: Step) -> Result<stage::Transition> {
        let stage = self.store.enrollment(id)?.map(|e| e.stage);
        step.check(id, stage)
    }

    /// Signs in with T.C. Kimlik No and access password, from `source` (where the applicant
    /// is, as the portal reported it). Wrong passwords are counted per person and source: the
    /// 5th in a row from one source locks sign-in from that source for 30 minutes, and the
    /// person's right password from another source still signs in, so nobody can lock a
    /// person out from elsewhere. A source gets one try per lock ([`limits::sign_in_allowance`])
    /// once 25 attempts came from all sources since the person's last sign-in (a guesser
    /// changing addresses gets one guess per address), and once the address made more than
    /// [`SOURCE_ATTEMPTS_PER_WINDOW`] attempts in its window whoever they named (a guesser
    /// spraying people from one address gets one guess each).
    ///
    /// Every refusal — an unknown number, a wrong password, a locked source — says the same
    /// and costs one argon2 verification, so neither the answer nor its time tells who has an
    /// invitation or who is locked (operators see the latest lock of any address in `nesca
    /// applicant show` and lift every lock with `resend-password`).
    ///
    /// The attempt is counted before the password is checked: parallel guesses each take
    /// their own number, and only those within the limit cost an argon2 check, so no more
    /// than five passwords are ever tried from one source between two sign-ins or locks.
    pub fn sign_in(
        &self,
        tckn: &Tckn,
        password: &SecretString,
        source: &SignInSource,
    ) -> Result<SessionGrant> {
        let wrong = || RaError::Unauthenticated {
            field: "sign_in",
            rule: SIGN_IN_REFUSED.into(),
        };
        let now = self.now();
        let address_slowed = self.count_source_attempt(source, now)?;
        // A refusal that checked no password costs one verification all the same.
        let unknown = || {
            spend_a_check(password.expose_secret(), dummy_hash());
            wrong()
        };
        let Some(id) = self.store.open_pre_application(tckn)? else {
            return Err(unknown());
        };
        let pre = self.store.pre_application(&id)?.ok_or_else(unknown)?;
        let Some(hash) = pre
            .password_hash
            .as_deref()
            .filter(|_| pre.status == ca_core::store::PreApplicationStatus::Invited)
        else {
            return Err(unknown());
        };
        let actor = applicant(&id);
        // The count and the source's lock come from one statement: an attempt counted after
        // a lock was written sees it, and is refused unchecked.
        // A refusal of the store's (the pre-application closed meanwhile) is answered as
        // every refusal is: it must not name the application, nor differ from the others.
        let counted = self
            .write(EnrollmentWrite::SignInAttempt {
                id: id.clone(),
                source: source.clone(),
                actor: actor.clone(),
                at: now,
            })
            .map_err(|e| if is_refusal(&e) { unknown() } else { e })?;
        let (attempt, locked_until, allowance) = match counted {
            EnrollmentOutcome::AttemptCounted {
                count,
                locked_until,
                person_count,
            } => (
                count,
                locked_until,
                limits::sign_in_allowance(person_count, address_slowed),
            ),
            // A store that did not count fails closed: past every limit.
            _ => (u32::MAX, None, 0),
        };
        if locked_until.is_some_and(|u| u > now) {
            return Err(unknown());
        }
        // Past the limit (parallel guesses, a crash between the last count and its lock):
        // refused unchecked, and the lock written. Locking twice is harmless; the lock resets
        // the source's count (not the count from every source), so it expires as any other
        // lock does.
        if limits::beyond_sign_in_limit(attempt) {
            self.lock_sign_in(id, source, actor, now)?;
            return Err(unknown());
        }
        if !password_matches(password.expose_secret(), hash) {
            if limits::sign_in_locks(attempt, allowance) {
                self.lock_sign_in(id, source, actor, now)?;
            }
            return Err(wrong());
        }
        let token = new_token();
        let expires_at = now.plus_secs(SESSION_SECONDS);
        self.write(EnrollmentWrite::SignedIn {
            id: id.clone(),
            source: source.clone(),
            expect_locked_until: locked_until,
            token_sha256: sha256_hex(token.expose_secret().as_bytes()),
            expires_at,
            actor,
            at: now,
        })
        // Locked meanwhile by a racing wrong guess: refused like any other refusal (the
        // password was checked already, so no second verification).
        .map_err(|e| if is_refusal(&e) { wrong() } else { e })?;
        Ok(SessionGrant {
            token,
            expires_at,
            pre_application: id,
        })
    }

    /// Refuses a sign-in whose T.C. Kimlik No does not parse: counted against the source (there
    /// is no person to count), and costing one password check, as any refusal.
    pub fn refuse_unparsed(&self, password: &SecretString, source: &SignInSource) -> Result<()> {
        self.count_source_attempt(source, self.now())?;
        spend_a_check(password.expose_secret(), dummy_hash());
        Ok(())
    }

    /// The application a session token belongs to.
    pub fn session(&self, token: &str) -> Result<ApplicantView> {
        let expired = || RaError::Unauthenticated {
            field: "token",
            rule: "no such session, or it expired: sign in again".into(),
        };
        let (id, expires_at) = self
            .store
            .applicant_session(&sha256_hex(token.as_bytes()))?
            .ok_or_else(expired)?;
        if expires_at < self.now() {
            return Err(expired());
        }
        self.view(&id)?.ok_or_else(expired)
    }

    /// Ends a session (sign-out); a token that opens nothing is already signed out.
    pub fn sign_out(&self, token: &str) -> Result<()> {
        Ok(self
            .store
            .end_applicant_session(&sha256_hex(token.as_bytes()))?)
    }

    /// An application by its pre-application id (operators).
    pub fn view(&self, id: &str) -> Result<Option<ApplicantView>> {
        let Some(pre) = self.store.pre_application(id)? else {
            return Ok(None);
        };
        let enrollment = self
            .store
            .enrollment(id)?
            .unwrap_or_else(|| EnrollmentRecord {
                pre_application: id.to_owned(),
                stage: EnrollmentStage::Invited,
                sign_in_attempts: 0,
                locked_until: None,
                security_word_hash: None,
                do_not_publish: false,
                delivery_address: None,
                sms_code_hash: None,
                sms_code_expires: None,
                sms_code_tries: 0,
                sms_codes_sent: 0,
                confirmed_at: None,
                approval_method: None,
                approval_text_sha256: None,
                approved_at: None,
                produce_after: None,
                card_csr: None,
                production_attempts: 0,
                last_error: None,
                serial: None,
                produced_at: None,
                package_written: false,
                updated_at: pre.created_at,
            });
        Ok(Some(ApplicantView { pre, enrollment }))
    }

    /// What application `id`'s approval recorded; `None` before an approval method was
    /// chosen. What the store keeps and does not read (an e-Onay record or a CMS that does
    /// not parse, a digest that is not one, an approval without its evidence) is an error
    /// naming the field of the record it was to give.
    pub fn approval_record(&self, id: &str) -> Result<Option<ApprovalRecord>> {
        let Some(v) = self.view(id)? else {
            return Ok(None);
        };
        let e = &v.enrollment;
        let Some(method) = e.approval_method else {
            return Ok(None);
        };
        let unreadable = |field: &str, detail: String| {
            kept_unreadable(
                "approval record",
                format!("application {id}: {field}: {detail}"),
            )
        };
        let approval_text_sha256 = e
            .approval_text_sha256
            .as_deref()
            .map(|hex| {
                Sha256Digest::parse_hex(hex).ok_or_else(|| {
                    unreadable(
                        "approval_text_sha256",
                        format!("\"{hex}\" is not a SHA-256 digest"),
                    )
                })
            })
            .transpose()?;
        let evidence = self.store.approval_evidence(id)?;
        let kept = |field: &str| {
            evidence.as_deref().ok_or_else(|| {
                unreadable(
                    field,
                    format!(
                        "approved by {method}, and no evidence is kept",
                        method = method.as_str()
                    ),
                )
            })
        };
        let (consent, signer_serial) = match method {
            ApprovalMethod::EOnay => {
                let record = EOnayRecord::from_bytes(kept("consent")?).map_err(|e| {
                    unreadable(
                        "consent",
                        format!("the e-Onay record kept does not read: {e}"),
                    )
                })?;
                let consent = ConsentReference {
                    reference: record.consent_reference,
                    evidence_sha256: record.consent_evidence_sha256,
                    given_at: record.consent_given_at,
                };
                (Some(consent), None)
            }
            ApprovalMethod::Signature => {
                let serial = approval::signer_serial(kept("signer_serial")?).map_err(|e| {
                    unreadable(
                        "signer_serial",
                        format!("the CMS signature kept does not read: {e}"),
                    )
                })?;
                (None, Some(serial))
            }
            ApprovalMethod::Wet => (None, None),
        };
        Ok(Some(ApprovalRecord {
            method,
            approval_text_sha256,
            approved_at: e.approved_at,
            evidence_sha256: evidence.as_deref().map(Sha256Digest::of),
            consent,
            signer_serial,
        }))
    }

    /// Stores the form and queues an SMS code to the listed mobile number.
    /// The stage first (what the applicant must hear), then the codes left: both before
    /// anything is written.
    pub fn submit_form(&self, token: &str, form: ApplicantForm) -> Result<()> {
        let v = self.session(token)?;
        let e = &v.enrollment;
        let t = Step::FillForm.check(&v.pre.id, Some(e.stage))?;
        limits::check_codes_left(e.sms_codes_sent)?;
        let hash = hash_password(&form.security_word)?;
        self.write(EnrollmentWrite::Form {
            actor: applicant(&v.pre.id),
            id: v.pre.id,
            from: t.from,
            expect_codes_sent: e.sms_codes_sent,
            security_word_hash: hash,
            do_not_publish: form.do_not_publish,
            delivery_address: form.delivery_address,
            mobile: v.pre.mobile,
            at: self.now(),
        })
        .map(|_| ())
    }

    /// Queues another SMS code (the last one sent is the one that works), up to
    /// [`MAX_CODES`] in all.
    pub fn resend_code(&self, token: &str) -> Result<()> {
        let v = self.session(token)?;
        let e = &v.enrollment;
        let t = Step::ResendCode.check(&v.pre.id, Some(e.stage))?;
        limits::check_codes_left(e.sms_codes_sent)?;
        self.write(EnrollmentWrite::ResendCode {
            actor: applicant(&v.pre.id),
            id: v.pre.id,
            from: t.from,
            expect_codes_sent: e.sms_codes_sent,
            mobile: v.pre.mobile,
            at: self.now(),
        })
        .map(|_| ())
    }

    /// Confirms the mobile number with the SMS code: within 10 minutes of sending, at most 3
    /// tries per code. Each try is counted before the code is checked, so parallel tries
    /// beyond the third are refused unchecked and void the code.
    ///
    /// The refusals tell the applicant what to do next, apart from a dead session (which
    /// [`Enrollments::session`] answers [`RaError::Unauthenticated`]): a wrong code that
    /// leaves tries is [`RaError::Invalid`] on `sms_code` ("the code is wrong (tries
    /// left: N)": type it again); a code that cannot be confirmed any more — void after its
    /// third wrong try (that try included), expired, or none sent yet — is
    /// [`RaError::Conflict`] on `sms_code` (ask for a new one).
    pub fn confirm_code(&self, token: &str, code: &SecretString) -> Result<()> {
        let v = self.session(token)?;
        let e = &v.enrollment;
        let now = self.now();
        let t = Step::ConfirmCode.check(&v.pre.id, Some(e.stage))?;
        let actor = applicant(&v.pre.id);
        // A code whose last try was counted is void even before the void is written.
        let Some(hash) = e
            .sms_code_hash
            .as_deref()
            .filter(|_| !limits::code_voided(e.sms_code_tries))
        else {
            return Err(code_void(
                "no code is awaiting confirmation (not sent yet, or void after 3 wrong tries): ask for a new one",
            ));
        };
        if e.sms_code_expires.is_some_and(|x| x < now) {
            return Err(code_void("the code expired: ask for a new one"));
        }
        let counting = Step::CountCodeAttempt.check(&v.pre.id, Some(e.stage))?;
        let attempt = counted(self.write(EnrollmentWrite::CodeAttempt {
            id: v.pre.id.clone(),
            from: counting.from,
            actor: actor.clone(),
            at: now,
        })?);
        let void = |rule: &str| -> Result<RaError> {
            self.write(EnrollmentWrite::VoidCode {
                id: v.pre.id.clone(),
                code_hash: hash.to_owned(),
                actor: actor.clone(),
                at: now,
            })?;
            Ok(code_void(rule))
        };
        if limits::beyond_code_limit(attempt) {
            return Err(void(
                "the code was tried too often; it is now void: ask for a new one",
            )?);
        }
        if !password_matches(code.expose_secret(), hash) {
            if limits::code_voided(attempt) {
                return Err(void(
                    "the code is wrong; it is now void after 3 wrong tries: ask for a new one",
                )?);
            }
            return Err(RaError::invalid(
                "sms_code",
                format!(
                    "the code is wrong (tries left: {})",
                    limits::code_tries_left(attempt)
                ),
            ));
        }
        self.write(EnrollmentWrite::CodeConfirmed {
            id: v.pre.id.clone(),
            from: t.from,
            code_hash: hash.to_owned(),
            actor,
            at: now,
        })
        .map(|_| ())
    }

    /// The text the applicant approves (signs, or prints and signs): everything the
    /// application says, made only of what the store holds, so it is the same on every call.
    pub fn approval_text(&self, v: &ApplicantView) -> Result<String> {
        let e = &v.enrollment;
        let (Some(address), Some(confirmed_at)) = (&e.delivery_address, e.confirmed_at) else {
            return Err(RaError::Conflict {
                field: "stage",
                rule: format!(
                    "application {} is {}; the approval text exists once the mobile number is confirmed",
                    v.pre.id,
                    e.stage.as_str()
                ),
            });
        };
        let inst = self.store.institution(&v.pre.institution)?;
        let (inst_name, payer) = inst
            .map(|i| (i.name, i.payer))
            .unwrap_or_else(|| (v.pre.institution.to_string(), Payer::Institution));
        let p = &v.pre;
        Ok(format!(
            "NİTELİKLİ ELEKTRONİK SERTİFİKA BAŞVURU FORMU VE ONAYI\n\
             Başvuru no: {}\n\
             Kurum: {} ({})\n\
             Birim: {}\n\
             Unvan: {}\n\
             Ad: {}\n\
             Soyad: {}\n\
             T.C. Kimlik No: {}\n\
             E-posta: {}\n\
             Cep telefonu: {} (SMS ile doğrulandı: {})\n\
             Teslimat adresi: {}\n\
             Sertifikamın yayımlanması: {}\n\
             Ücreti ödeyen: {}\n\
             \n\
             Yukarıdaki bilgilerin doğru olduğunu, nitelikli elektronik sertifikanın adıma üretilmesini\n\
             istediğimi, sertifika kullanım koşullarını ve taahhütnameyi okuyup kabul ettiğimi beyan ederim.\n",
            p.id,
            inst_name,
            p.institution,
            p.unit,
            p.title.as_deref().unwrap_or("-"),
            p.given_name,
            p.surname,
            p.tckn,
            p.email,
            p.mobile,
            ca_core::rfc3339(confirmed_at.to_system()),
            address.replace('\n', ", "),
            if e.do_not_publish { "İSTEMİYORUM" } else { "kabul ediyorum" },
            match payer {
                Payer::Person => "başvuru sahibi",
                Payer::Institution => "kurum",
            },
        ))
    }

    /// Approves the application (see the module doc).
    pub fn approve(&self, token: &str, approval: Approval) -> Result<ApprovalOutcome> {
        let v = self.session(token)?;
        let text = self.approval_text(&v)?;
        let text_sha256 = sha256_hex(text.as_bytes());
        let now = self.now();
        let actor = applicant(&v.pre.id);
        let (method, evidence) = match approval {
            Approval::Wet => {
                let t = Step::ChooseWet.check(&v.pre.id, Some(v.enrollment.stage))?;
                let form_pdf = wet_form_pdf(&text, &text_sha256);
                self.write(EnrollmentWrite::AwaitWet {
                    id: v.pre.id.clone(),
                    from: t.from,
                    text_sha256,
                    actor,
                    at: now,
                })?;
                return Ok(ApprovalOutcome::AwaitingWet { form_pdf });
            }
            // The stage first (what the applicant must hear), then the evidence.
            Approval::EOnay => {
                Step::Approve(ApprovalMethod::EOnay).check(&v.pre.id, Some(v.enrollment.stage))?;
                let consent = self.store.eonay_consent(&v.pre.tckn)?.ok_or_else(|| {
                    RaError::Conflict {
                        field: "approval",
                        rule: "e-Onay needs the person's prior e-Onay consent on record; approve with a signature or a wet signature".into(),
                    }
                })?;
                let record = EOnayRecord {
                    approval_text_sha256: Sha256Digest::of(text.as_bytes()),
                    approved_at: now,
                    consent_evidence_sha256: Sha256Digest::parse_hex(&consent.evidence_sha256)
                        .ok_or_else(|| {
                            kept_unreadable(
                                "e-onay consent",
                                format!(
                                    "the consent {}'s evidence_sha256 \"{}\" is not a SHA-256 digest",
                                    consent.reference, consent.evidence_sha256
                                ),
                            )
                        })?,
                    consent_given_at: consent.given_at,
                    consent_reference: consent.reference,
                    method: EOnayMethod::EOnay,
                };
                let record = record.to_bytes().map_err(|e| {
                    kept_unreadable(
                        "approve",
                        format!("the e-Onay record does not serialize: {e}"),
                    )
                })?;
                (ApprovalMethod::EOnay, record)
            }
            Approval::Signature(cms) => {
                Step::Approve(ApprovalMethod::Signature)
                    .check(&v.pre.id, Some(v.enrollment.stage))?;
                self.check_approval_signature(&v, text.as_bytes(), &cms, now)?;
                (ApprovalMethod::Signature, cms)
            }
        };
        let t = Step::Approve(method).check(&v.pre.id, Some(v.enrollment.stage))?;
        let produce_after = self.renewal_hold(&v.pre.tckn, now)?;
        self.write(EnrollmentWrite::Approve {
            id: v.pre.id,
            from: t.from,
            expect_printed_sha256: v.enrollment.approval_text_sha256,
            method,
            text_sha256,
            evidence,
            produce_after,
            actor,
            at: now,
        })?;
        Ok(ApprovalOutcome::Approved { produce_after })
    }

    /// The form to print and sign again, while the application awaits it: the same text the
    /// wet approval recorded (its SHA-256 is checked), so any copy is as good as the first.
    pub fn wet_form(&self, token: &str) -> Result<Vec<u8>> {
        let v = self.session(token)?;
        Step::PrintWetForm.check(&v.pre.id, Some(v.enrollment.stage))?;
        let text = self.approval_text(&v)?;
        let text_sha256 = sha256_hex(text.as_bytes());
        if v.enrollment.approval_text_sha256.as_deref() != Some(text_sha256.as_str()) {
            return Err(RaError::Conflict {
                field: "approval",
                rule: "the application's text changed since the form was printed; ask the registration office".into(),
            });
        }
        Ok(wet_form_pdf(&text, &text_sha256))
    }

    /// The card bureau's CSR for an approved application: its signature must verify (the key
    /// is the bureau's, proven), then it is kept and the next production pass issues with it.
    /// Only an approved application that is not produced yet takes one (the store refuses the
    /// write when it moved on meanwhile).
    pub fn receive_card_csr(&self, id: &str, csr_der: Vec<u8>, by: &Principal) -> Result<()> {
        ca_core::VerifiedCsr::parse(&csr_der)?;
        let t = self.transition(id, Step::ReceiveCardCsr)?;
        self.write(EnrollmentWrite::CardCsr {
            id: id.to_owned(),
            from: t.from,
            csr_der,
            actor: by.clone(),
            at: self.now(),
        })?;
        Ok(())
    }

    /// An operator records the receipt of the wet-signed form (its scan kept as evidence).
    pub fn receive_wet(&self, id: &str, scan: Vec<u8>, by: &Principal) -> Result<Option<UnixTime>> {
        if scan.is_empty() || scan.len() > MAX_EVIDENCE_BYTES {
            return Err(RaError::invalid(
                "scan",
                format!("the scan of the signed form must be 1 byte to {MAX_EVIDENCE_BYTES} bytes"),
            ));
        }
        let v = self
            .view(id)?
            .ok_or_else(|| RaError::invalid("application", format!("no application {id}")))?;
        let t = Step::Approve(ApprovalMethod::Wet).check(id, Some(v.enrollment.stage))?;
        let text_sha256 = sha256_hex(self.approval_text(&v)?.as_bytes());
        // The printed form carries the hash of the text chosen; the scan approves that text.
        if v.enrollment.approval_text_sha256.as_deref() != Some(text_sha256.as_str()) {
            return Err(RaError::Conflict {
                field: "approval_text",
                rule: format!(
                    "application {id}'s approval text is not the one printed for the wet signature"
                ),
            });
        }
        let now = self.now();
        let produce_after = self.renewal_hold(&v.pre.tckn, now)?;
        self.write(EnrollmentWrite::Approve {
            id: id.to_owned(),
            from: t.from,
            expect_printed_sha256: v.enrollment.approval_text_sha256,
            method: ApprovalMethod::Wet,
            text_sha256,
            evidence: scan,
            produce_after,
            actor: by.clone(),
            at: now,
        })?;
        Ok(produce_after)
    }

    /// Records a person's e-Onay consent (an operator, with the evidence received).
    pub fn record_consent(
        &self,
        tckn: &Tckn,
        reference: &str,
        evidence: Vec<u8>,
        given_at: UnixTime,
        by: &Principal,
    ) -> Result<EOnayConsent> {
        let reference = reference.trim();
        if reference.is_empty()
            || reference.chars().count() > 128
            || reference.chars().any(char::is_control)
        {
            return Err(RaError::invalid(
                "reference",
                "must be 1 to 128 characters, no control characters",
            ));
        }
        if evidence.is_empty() || evidence.len() > MAX_EVIDENCE_BYTES {
            return Err(RaError::invalid(
                "evidence",
                format!("must be 1 byte to {MAX_EVIDENCE_BYTES} bytes"),
            ));
        }
        let now = self.now();
        if given_at > now {
            return Err(RaError::invalid("given_at", "must not be in the future"));
        }
        let consent = EOnayConsent {
            tckn: *tckn,
            reference: reference.to_owned(),
            evidence_sha256: sha256_hex(&evidence),
            evidence,
            given_at,
            recorded_by: by.clone(),
            recorded_at: now,
        };
        self.write(EnrollmentWrite::RecordConsent {
            tckn: consent.tckn,
            reference: consent.reference.clone(),
            evidence: consent.evidence.clone(),
            evidence_sha256: consent.evidence_sha256.clone(),
            given_at,
            actor: by.clone(),
            at: now,
        })?;
        Ok(consent)
    }

    /// The signature approval: a CMS over the approval text, by a valid NES that nesca
    /// issued to this very person (the certificate in the CMS must be the one in the store,
    /// active, within its validity, with the person's T.C. Kimlik No).
    fn check_approval_signature(
        &self,
        v: &ApplicantView,
        text: &[u8],
        cms: &[u8],
        now: UnixTime,
    ) -> Result<()> {
        let bad = |rule: String| RaError::invalid("signature", rule);
        let verified =
            nesca_pkix::cms::verify_signed_data(cms, Some(text), nesca_pkix::cms::Signer::Embedded)
                .map_err(|e| {
                    bad(format!(
                        "not a valid signature over the approval text ({e})"
                    ))
                })?;
        let serial_hex = nesca_pkix::subject::serial_hex(&verified.signer_certificate)
            .map_err(|e| bad(e.to_string()))?;
        let serial = Serial::parse_hex(&serial_hex).map_err(|e| bad(e.rule()))?;
        let record = self
            .store
            .get(None, &serial)?
            .filter(|r| r.cert_der.as_deref() == Some(verified.signer_certificate.as_slice()))
            .ok_or_else(|| bad("the signing certificate is not a NES nesca issued".into()))?;
        if record.profile != ca_core::profile::ProfileName::Nes {
            return Err(bad("the signing certificate is not a NES".into()));
        }
        if record.subject.tckn.as_ref() != Some(&v.pre.tckn) {
            return Err(bad(
                "the signing certificate belongs to another person".into()
            ));
        }
        if record.status != CertStatus::Active || now < record.not_before || now > record.not_after
        {
            return Err(bad(format!(
                "the signing certificate is {} or outside its validity; it must be valid now",
                record.status
            )));
        }
        Ok(())
    }

    /// When a renewal may be produced: `None` when the person has no certificate in use
    /// that expires more than two months after `now`.
    fn renewal_hold(&self, tckn: &Tckn, now: UnixTime) -> Result<Option<UnixTime>> {
        Ok(self
            .store
            .current_not_after(tckn, now)?
            .map(renewal_window_start)
            .filter(|start| *start > now))
    }
}

/// An argon2id hash of a random password, made once: what an unknown number is checked
/// against.
pub(crate) fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

/// The printed form of a wet approval: the approval text, its SHA-256, and room to sign.
fn wet_form_pdf(text: &str, text_sha256: &str) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.extend([
        String::new(),
        format!("Metnin SHA-256 özeti: {text_sha256}"),
        String::new(),
        "Tarih: ....................      İmza: ....................".to_owned(),
    ]);
    crate::form_pdf::form_pdf("Nitelikli Elektronik Sertifika Başvurusu", &lines)
}

/// What the store keeps does not read (or an approval's record cannot be made of it): a
/// failure of the store's, not a refusal of the request.
fn kept_unreadable(operation: &'static str, reason: String) -> RaError {
    RaError::Ca(ca_core::CaError::Store {
        operation,
        reason,
        source: None,
    })
}

/// The SMS code cannot be confirmed any more (void, expired, none sent): a new one must be
/// asked for.
fn code_void(rule: &str) -> RaError {
    RaError::Conflict {
        field: "sms_code",
        rule: rule.to_owned(),
    }
}

/// Whether `e` refuses the request (as opposed to the store or HSM failing).
fn is_refusal(e: &RaError) -> bool {
    matches!(e, RaError::Invalid { .. } | RaError::Conflict { .. })
}

/// The count a counting write returned; any other outcome counts as past every limit, so a
/// store that did not count fails closed.
fn counted(outcome: EnrollmentOutcome) -> u32 {
    match outcome {
        EnrollmentOutcome::Counted { count } => count,
        _ => u32::MAX,
    }
}

/// The applicant of pre-application `id`, who acts in the steps they take.
fn applicant(id: &str) -> Principal {
    Principal::Applicant {
        pre_application: id.to_owned(),
    }
}

/// A session token: 256 bits from the OS CSPRNG, base64url.
pub(crate) fn new_token() -> SecretString {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The start (00:00, Turkey's time) of the day whose date is two calendar months before the
/// date of `not_after` (the day clamped to the month's length: 31 December → 31 October,
/// 30 April → 28 or 29 February): from that day on, the expiry is two months away or less.
pub fn renewal_window_start(not_after: UnixTime) -> UnixTime {
    let local = turkey_date(not_after);
    let (mut year, mut month) = (local.year(), local.month() as i32 - 2);
    if month < 1 {
        month += 12;
        year -= 1;
    }
    let month = time::Month::try_from(month as u8).unwrap_or(time::Month::January);
    let day = local.day().min(month.length(year));
    let date = time::Date::from_calendar_date(year, month, day).unwrap_or(local);
    UnixTime::from_secs(date.midnight().assume_utc().unix_timestamp() - TURKEY_OFFSET_SECONDS)
}

/// The calendar date in Turkey at `at`.
fn turkey_date(at: UnixTime) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(at.plus_secs(TURKEY_OFFSET_SECONDS).secs())
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN)
}

/// The billing month (`YYYY-MM`, Turkey's time) of `at`.
pub fn billing_month(at: UnixTime) -> String {
    let d = turkey_date(at);
    format!("{:04}-{:02}", d.year(), d.month() as u8)
}

#[cfg(test)]
mod tests;
