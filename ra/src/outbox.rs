//! The notification outbox's delivery: messages are rows in the store (written in the same
//! transaction as what they announce) and a sender delivers them, retried with backoff until
//! they go, so none is lost to a crash.
//!
//! An access-password message holds no password while it waits: the password is drawn when
//! the message is sent, its argon2 hash recorded first, then the e-mail delivered. A crash
//! between the two sends a new password at the retry; only the latest one works.

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::Argon2;
use secrecy::{ExposeSecret as _, SecretString};

use ca_core::{Principal, SystemTask};

use crate::error::{RaError, Result};
use ca_core::clock::Clock;
use ca_core::store::{OutboxAttempt, OutboxKind, OutboxMessage, Store};

/// Letters and digits that cannot be mistaken for one another when typed from an e-mail.
const PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// 14 characters of a 55-symbol alphabet: about 80 bits.
const PASSWORD_LEN: usize = 14;
/// The first retry waits this long; each further one twice as long, up to a day.
const FIRST_RETRY_SECONDS: i64 = 60;
const MAX_RETRY_SECONDS: i64 = 86_400;

/// An e-mail ready to go.
pub struct Email {
    pub to: String,
    pub subject: String,
    /// Plain text, UTF-8. May hold a secret: never log it.
    pub body: SecretString,
    /// The outbox row, for a stable Message-ID.
    pub outbox_id: i64,
}

/// Delivers e-mail.
pub trait EmailSender: Send + Sync {
    fn send(&self, email: &Email) -> Result<()>;
}

/// A text message (SMS) ready to go.
pub struct Sms {
    /// The mobile number, `+905xxxxxxxxx`.
    pub to: String,
    /// Plain text. May hold a secret (a confirmation code): never log it.
    pub body: SecretString,
    /// The outbox row, for a stable file name or gateway reference.
    pub outbox_id: i64,
}

/// Delivers SMS.
pub trait SmsSender: Send + Sync {
    fn send(&self, sms: &Sms) -> Result<()>;
}

/// The default SMS sender: each message becomes a file `<outbox id>.sms` in a directory
/// (`To: <number>`, an empty line, the text), written to a temporary name and renamed.
pub struct SmsDirectory {
    pub dir: PathBuf,
}

impl SmsSender for SmsDirectory {
    fn send(&self, sms: &Sms) -> Result<()> {
        let text = format!("To: {}\n\n{}\n", sms.to, sms.body.expose_secret());
        write_atomically(
            &self.dir,
            &format!("{:010}.sms", sms.outbox_id),
            text.as_bytes(),
        )
    }
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename, so that a reader never
/// sees half a message; the directory is made when missing.
///
/// The file is readable by its owner only (0600), and a directory made for it is the owner's
/// alone (0700): what goes through here holds secrets (access passwords, SMS codes, wrapped
/// card keys) and personal data (names, addresses, numbers). An existing directory keeps the
/// mode its operator gave it.
pub fn write_atomically(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
        // A fresh temporary file under an unguessable name, created exclusively: O_EXCL does
        // not follow a symbolic link, so another user who can write the directory cannot
        // plant one that sends the secret into a file they own.
        let (tmp, mut f) = {
            use rand::RngCore as _;
            let mut attempt = 0;
            loop {
                let mut nonce = [0u8; 8];
                rand::rngs::OsRng.fill_bytes(&mut nonce);
                let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(nonce)));
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                match options.open(&tmp) {
                    Ok(f) => break (tmp, f),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 3 => {
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let written = f
            .write_all(bytes)
            .and_then(|()| f.sync_all())
            .and_then(|()| fs::rename(&tmp, dir.join(name)));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    };
    write().map_err(|source| RaError::Write {
        dir: dir.to_owned(),
        source,
    })
}

/// The default sender: each message becomes an RFC 5322 `.eml` file in a directory (written
/// to a temporary name and renamed, so a reader never sees half a message).
pub struct EmlDirectory {
    pub dir: PathBuf,
    pub from: String,
}

impl EmailSender for EmlDirectory {
    fn send(&self, email: &Email) -> Result<()> {
        let text = rfc5322_message(&self.from, email);
        write_atomically(
            &self.dir,
            &format!("{:010}.eml", email.outbox_id),
            text.as_bytes(),
        )
    }
}

/// The whole message (headers and CRLF body) as an RFC 5322 text, 8-bit UTF-8 body.
pub fn rfc5322_message(from: &str, email: &Email) -> String {
    format!(
        "From: {}\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: <outbox-{}@nesca>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}",
        from,
        email.to,
        encode_header(&email.subject),
        email.outbox_id,
        email.body.expose_secret().replace('\n', "\r\n"),
    )
}

/// RFC 2047 encoded-word for a header with non-ASCII text.
fn encode_header(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    use base64::Engine as _;
    format!(
        "=?utf-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
    )
}

/// A fresh access password.
fn new_password() -> SecretString {
    use rand::Rng as _;
    let mut rng = rand::rngs::OsRng;
    let p: String = (0..PASSWORD_LEN)
        .map(|_| PASSWORD_ALPHABET[rng.gen_range(0..PASSWORD_ALPHABET.len())] as char)
        .collect();
    SecretString::from(p)
}

/// The argon2id hash (PHC string) of a password, with a random salt.
pub fn hash_password(password: &SecretString) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| RaError::invalid("password", format!("cannot hash: {e}")))
}

/// Whether `password` matches a PHC hash made by [`hash_password`].
pub fn password_matches(password: &str, hash: &str) -> bool {
    #[cfg(test)]
    checks::count();
    verify(password, hash)
}

/// Spends what one password check costs, against a hash no password matches: a refusal
/// that checked nothing (an unknown number, a locked sign-in) takes as long as one that did.
/// Not counted as a check.
pub fn spend_a_check(password: &str, dummy_hash: &str) {
    let _ = verify(password, dummy_hash);
}

fn verify(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// How many argon2 checks this thread made (tests: the attempt limits bound them).
#[cfg(test)]
pub(crate) mod checks {
    use std::cell::Cell;

    thread_local! {
        static CHECKS: Cell<usize> = const { Cell::new(0) };
    }

    pub(super) fn count() {
        CHECKS.with(|c| c.set(c.get() + 1));
    }

    /// The checks made on this thread so far.
    pub(crate) fn made() -> usize {
        CHECKS.with(Cell::get)
    }
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u64,
    pub failed: u64,
}

/// Delivers due outbox messages.
pub struct Outbox {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    email: Arc<dyn EmailSender>,
    sms: Arc<dyn SmsSender>,
    /// The URL where invited people complete their application, for the e-mail's text. An
    /// access password is not sent while it is `None` (each attempt fails, naming
    /// `outbox.completion_url`, and is retried): an e-mail naming no page, or one that does not
    /// answer, would spend the password.
    pub completion_url: Option<String>,
    /// Where a holder renews, the link of the expiry reminders (`[portal] renewal_url`, else
    /// the portal's home page); the completion URL when neither is configured.
    pub renewal_url: Option<String>,
}

impl Outbox {
    fn renewal_url(&self) -> Option<&str> {
        self.renewal_url
            .as_deref()
            .or(self.completion_url.as_deref())
    }

    /// An outbox whose access-password e-mails name `completion_url`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        email: Arc<dyn EmailSender>,
        sms: Arc<dyn SmsSender>,
        completion_url: String,
    ) -> Outbox {
        Outbox::configured(store, clock, email, sms, Some(completion_url))
    }

    /// An outbox as configured: without a completion URL, access passwords wait (see
    /// [`Outbox::completion_url`]).
    pub fn configured(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        email: Arc<dyn EmailSender>,
        sms: Arc<dyn SmsSender>,
        completion_url: Option<String>,
    ) -> Outbox {
        Outbox {
            store,
            clock,
            email,
            sms,
            completion_url,
            renewal_url: None,
        }
    }

    /// Queues the expiry reminders due now, each band of [`crate::notices::REMINDER_BANDS`]
    /// once per certificate and recipient; answers how many were queued.
    pub fn queue_expiry_reminders(&self) -> Result<u64> {
        let now = self.clock.now_unix();
        let day = |d: u32| now.plus_secs(i64::from(d) * 86_400);
        let mut queued = 0;
        for (days, after) in crate::notices::REMINDER_BANDS {
            // A certificate within a day of the next band waits for it: first seen at 30 days
            // and a few minutes, it is not reminded of 60 days and then, an hour later, of 30.
            let from = match after {
                0 => now,
                _ => day(after + 1),
            };
            queued += self
                .store
                .queue_expiry_reminders(days, (from, day(days)), now)?;
        }
        Ok(queued)
    }

    /// Forgets what the portal no longer needs: attempt counters whose own window is over (the
    /// next attempt starts a new one) and sessions that expired a day ago or more.
    pub fn sweep_portal(&self) -> Result<u64> {
        let now = self.clock.now_unix();
        Ok(self.store.sweep_portal(now, now.plus_secs(-86_400))?)
    }

    /// Sends what is due, at most `limit` messages; a failure is recorded with its retry time
    /// and does not stop the others.
    pub fn deliver_due(&self, limit: u32) -> Result<DeliveryReport> {
        let now = self.clock.now_unix();
        let by = Principal::System(SystemTask::Outbox);
        let mut report = DeliveryReport::default();
        for m in self.store.outbox_due(now, limit)? {
            let result = self.deliver(&m);
            let at = self.clock.now_unix();
            match &result {
                Ok(()) => report.sent += 1,
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(outbox = m.id, attempts = m.attempts + 1, error = %e, "message not delivered; will retry");
                }
            }
            let delay = (FIRST_RETRY_SECONDS << m.attempts.clamp(0, 20)).min(MAX_RETRY_SECONDS);
            let attempt = match result {
                Ok(()) => OutboxAttempt::Sent,
                Err(e) => OutboxAttempt::Failed {
                    error: e.to_string(),
                    retry_at: at.plus_secs(delay),
                },
            };
            self.store.outbox_attempt(m.id, attempt, &by, at)?;
        }
        Ok(report)
    }

    fn deliver(&self, m: &OutboxMessage) -> Result<()> {
        match m.kind {
            OutboxKind::AccessPassword => self.access_password(m),
            OutboxKind::SmsCode => self.sms_code(m),
            OutboxKind::HolderSmsCode => self.holder_sms_code(m),
            OutboxKind::StatusNotice
            | OutboxKind::ExpiryReminder
            | OutboxKind::SecurityWordNotice => self.notice(m),
        }
    }

    /// Draws a holder's sign-in code, records its hash and expiry, then sends it; a session
    /// that no longer awaits one (signed in, ended, expired) drops the message.
    fn holder_sms_code(&self, m: &OutboxMessage) -> Result<()> {
        let code = crate::enrollment::new_sms_code();
        let hash = hash_password(&code)?;
        let now = self.clock.now_unix();
        let Some(session) = self.store.holder_session_by_id(&m.subject_ref)? else {
            return Ok(());
        };
        let actor = crate::portal::holder_principal(session.tckn);
        let expires_at = now.plus_secs(crate::portal::CODE_SECONDS);
        if !self
            .store
            .holder_code_issued(&m.subject_ref, &hash, expires_at, &actor, now)?
        {
            tracing::info!(
                outbox = m.id,
                "holder sign-in code no longer awaited; dropped"
            );
            return Ok(());
        }
        let body = format!(
            "nesca NES sertifika islemleri giris kodunuz: {}\nKod {} dakika gecerlidir. Kimseyle paylasmayiniz.",
            code.expose_secret(),
            crate::portal::CODE_SECONDS / 60
        );
        self.sms.send(&Sms {
            to: m.recipient.clone(),
            body: SecretString::from(body),
            outbox_id: m.id,
        })
    }

    /// A notice or a reminder (`crate::notices`), by e-mail or SMS as the recipient is.
    fn notice(&self, m: &OutboxMessage) -> Result<()> {
        let url = match (m.kind, self.renewal_url()) {
            (_, Some(url)) => url,
            // Only a reminder names a page; without one it waits, as an access password does.
            (OutboxKind::ExpiryReminder, None) => {
                return Err(RaError::invalid(
                    "portal.renewal_url",
                    "not set, and neither the portal nor [outbox] completion_url names a page: set it to where holders renew",
                ))
            }
            (_, None) => "",
        };
        let text = crate::notices::text(m.kind, &m.subject_ref, url)?;
        if m.recipient.contains('@') {
            self.email.send(&Email {
                to: m.recipient.clone(),
                subject: text.subject,
                body: SecretString::from(text.body),
                outbox_id: m.id,
            })
        } else {
            self.sms.send(&Sms {
                to: m.recipient.clone(),
                body: SecretString::from(text.sms),
                outbox_id: m.id,
            })
        }
    }

    /// Draws the SMS code, records its hash and expiry, then sends it. A code queued before
    /// the applicant moved on (confirmed, or asked for another) is dropped, not retried.
    fn sms_code(&self, m: &OutboxMessage) -> Result<()> {
        let code = crate::enrollment::new_sms_code();
        let hash = hash_password(&code)?;
        let now = self.clock.now_unix();
        let stage = self.store.enrollment(&m.subject_ref)?.map(|e| e.stage);
        let issued = crate::enrollment::stage::Step::IssueCode
            .check(&m.subject_ref, stage)
            .and_then(|t| {
                Ok(self
                    .store
                    .enrollment_write(ca_core::store::EnrollmentWrite::CodeIssued {
                        id: m.subject_ref.clone(),
                        from: t.from,
                        code_hash: hash,
                        expires_at: now.plus_secs(crate::enrollment::SMS_CODE_SECONDS),
                        actor: Principal::System(SystemTask::Outbox),
                        at: now,
                    })?)
            });
        match issued {
            Ok(_) => {}
            Err(RaError::Conflict { .. } | RaError::Invalid { .. }) => {
                tracing::info!(outbox = m.id, "SMS code no longer awaited; dropped");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let body = format!(
            "nesca NES basvurusu dogrulama kodunuz: {}\nKod {} dakika gecerlidir. Kimseyle paylasmayiniz.",
            code.expose_secret(),
            crate::enrollment::SMS_CODE_SECONDS / 60
        );
        self.sms.send(&Sms {
            to: m.recipient.clone(),
            body: SecretString::from(body),
            outbox_id: m.id,
        })
    }

    fn access_password(&self, m: &OutboxMessage) -> Result<()> {
        // Before a password is drawn: without the page the e-mail names, nothing is spent.
        let completion_url = self.completion_url.as_deref().ok_or_else(|| {
            RaError::invalid(
                "outbox.completion_url",
                "not set, and no portal ([portal] listen or public_url) serves the applicants' page: set it to the page where invited people complete their application",
            )
        })?;
        let pre = self
            .store
            .pre_application(&m.subject_ref)?
            .ok_or_else(|| RaError::NotFound {
                field: "application",
                rule: format!("pre-application {} is gone", m.subject_ref),
            })?;
        let password = new_password();
        let hash = hash_password(&password)?;
        let now = self.clock.now_unix();
        self.store.set_access_password(
            &pre.id,
            &hash,
            &Principal::System(SystemTask::Outbox),
            now,
        )?;
        let body = format!(
            "Sayın {} {},\n\nKurumunuz adınıza nitelikli elektronik sertifika başvurusu ön kaydı yaptı.\n\
             Başvurunuzu tamamlamak için {} adresinde T.C. Kimlik Numaranız ve aşağıdaki erişim\n\
             parolası ile giriş yapınız.\n\nErişim parolası: {}\n\nBu parolayı kimseyle paylaşmayınız.\n",
            pre.given_name,
            pre.surname,
            completion_url,
            password.expose_secret()
        );
        self.email.send(&Email {
            to: m.recipient.clone(),
            subject: "Nitelikli elektronik sertifika başvurunuz".into(),
            body: SecretString::from(body),
            outbox_id: m.id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::testkit::Captured;
    use ca_core::institution::{InstitutionId, ListImport, ListSignature};
    use ca_core::store::prelude::*;
    use ca_core::store::{HolderContact, ImportStatus, ListImportWrite, OutboxStatus};
    use ca_core::testkit::{demo_institution, fixture, list_row, Fixture};

    /// Çağrı, listed on an accepted list of the demo institution: her access password is due.
    /// An outbox with no page to link (no portal, no `completion_url`) that sends through
    /// `Captured`.
    fn linkless_outbox(f: &Fixture) -> (Arc<Captured>, Outbox) {
        let mail = Arc::new(Captured::default());
        let outbox = Outbox::configured(
            f.store.clone(),
            f.clock.clone(),
            mail.clone(),
            mail.clone(),
            None,
        );
        (mail, outbox)
    }

    fn invite_cagri(f: &Fixture) -> InstitutionId {
        let id = demo_institution(f);
        f.store
            .import_list(ListImportWrite {
                import: ListImport {
                    institution: id.clone(),
                    file_sha256: "ef".repeat(32),
                    file_name: "liste.csv".into(),
                    signature: ListSignature::Cms(vec![1]),
                    rows: vec![list_row(2, "10000000146", "Çağrı")],
                    invalid_rows: 0,
                    actor: Principal::HostOperator,
                    at: ca_core::UnixTime::EPOCH,
                },
                status: ImportStatus::Accepted,
                already_open: vec![],
                held_limit: None,
            })
            .unwrap();
        id
    }

    /// Without a page to name (no `[outbox] completion_url`, no portal), an access password
    /// is not drawn: the message fails, is retried later, and no password hash is stored;
    /// with one, the e-mail names it above the password line.
    #[test]
    fn no_access_password_goes_out_without_a_page_to_complete_on() {
        let f = fixture();
        let id = invite_cagri(&f);
        let (mail, mut outbox) = linkless_outbox(&f);
        let r = outbox.deliver_due(10).unwrap();
        assert_eq!((r.sent, r.failed), (0, 1));
        assert!(mail.emails().is_empty());
        let pre = &f.store.pre_applications(&id).unwrap()[0];
        assert_eq!(pre.password_hash, None, "no password was drawn");
        outbox.completion_url = Some("https://portal.example/basvuru".into());
        f.clock.advance(Duration::from_secs(61));
        assert_eq!(outbox.deliver_due(10).unwrap().sent, 1);
        let (_, body) = mail.emails().pop().unwrap();
        let lines: Vec<&str> = body.lines().collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("https://portal.example/basvuru adresinde")),
            "{body}"
        );
        let password = lines
            .iter()
            .find_map(|l| l.strip_prefix("Erişim parolası: "))
            .unwrap();
        assert_eq!(password.len(), 14, "{body}");
    }

    /// With no page to link (no portal URL, no `[portal] renewal_url`, no `[outbox]
    /// completion_url`), an expiry reminder waits: each attempt fails naming
    /// `portal.renewal_url` and is retried later; once a link is set it goes, naming it.
    #[test]
    fn expiry_reminders_wait_for_a_renewal_link() {
        let f = fixture();
        let nes = crate::testkit::issue_nes_for_days(&f, Some(365));
        let contact = HolderContact {
            mobile: None,
            email: Some("ayse@example.com".into()),
        };
        f.store
            .set_holder_contact(
                &f.ca.context.id,
                &nes.serial,
                &contact,
                &Principal::HostOperator,
                f.clock.now_unix(),
            )
            .unwrap();
        // 45 days before the expiry: the 60-day reminder is due.
        f.clock.advance(Duration::from_secs(320 * 86_400));
        let (mail, mut outbox) = linkless_outbox(&f);
        assert_eq!(outbox.queue_expiry_reminders().unwrap(), 1);
        let due = f.store.outbox_due(f.clock.now_unix(), 10).unwrap();
        assert_eq!(
            due.iter().map(|m| m.kind).collect::<Vec<_>>(),
            [OutboxKind::ExpiryReminder]
        );
        match outbox.deliver(&due[0]).unwrap_err() {
            RaError::Invalid { field, rule } => {
                assert_eq!(field, "portal.renewal_url");
                assert!(rule.contains("completion_url"), "{rule}");
            }
            other => panic!("{other:?}"),
        }
        let r = outbox.deliver_due(10).unwrap();
        assert_eq!((r.sent, r.failed), (0, 1));
        assert!(mail.emails().is_empty() && mail.sms().is_empty());
        // It waits, pending, for its retry (a minute after the failure).
        let (waiting, status) = f.store.outbox().unwrap().pop().unwrap();
        assert_eq!(
            (waiting.kind, waiting.attempts, status),
            (OutboxKind::ExpiryReminder, 1, OutboxStatus::Pending)
        );
        assert!(f
            .store
            .outbox_due(f.clock.now_unix(), 10)
            .unwrap()
            .is_empty());
        f.clock.advance(Duration::from_secs(61));
        let r = outbox.deliver_due(10).unwrap();
        assert_eq!((r.sent, r.failed), (0, 1), "retried, and waiting still");
        // `[portal] renewal_url` set: the retry goes, naming it.
        outbox.renewal_url = Some("https://eshs.example/yenileme".into());
        f.clock.advance(Duration::from_secs(121));
        assert_eq!(outbox.deliver_due(10).unwrap().sent, 1);
        let (to, body) = mail.emails().pop().unwrap();
        assert_eq!(to, "ayse@example.com");
        assert!(body.contains("https://eshs.example/yenileme"), "{body}");
    }

    #[cfg(unix)]
    #[test]
    fn files_with_secrets_are_written_for_their_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let top = tempfile::tempdir().unwrap();
        // The directories it makes (all of them) are the owner's alone.
        let dir = top.path().join("outbox").join("email");
        write_atomically(&dir, "0000000001.eml", b"Parola: x").unwrap();
        for d in [top.path().join("outbox"), dir.clone()] {
            let mode = fs::metadata(&d).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", d.display());
        }
        let mode = fs::metadata(dir.join("0000000001.eml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Written again (a retry), it stays so, with the new text.
        write_atomically(&dir, "0000000001.eml", b"Parola: y").unwrap();
        assert_eq!(fs::read(dir.join("0000000001.eml")).unwrap(), b"Parola: y");
    }

    /// Another user who can write a shared outbox directory plants symbolic links at the
    /// temporary names a message could use: the secret never reaches the file they point to,
    /// and no temporary file is left behind.
    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_never_receives_a_secret() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("spool");
        fs::create_dir(&dir).unwrap();
        let theirs = top.path().join("attacker-owned.txt");
        fs::write(&theirs, b"").unwrap();
        // The name the writer used before, and a final name that is itself a link.
        std::os::unix::fs::symlink(&theirs, dir.join(".0000000002.eml.tmp")).unwrap();
        std::os::unix::fs::symlink(&theirs, dir.join("0000000002.eml")).unwrap();
        write_atomically(&dir, "0000000002.eml", b"Parola: secret").unwrap();
        assert_eq!(
            fs::read(&theirs).unwrap(),
            b"",
            "the secret went through a link"
        );
        let written = dir.join("0000000002.eml");
        assert!(!fs::symlink_metadata(&written).unwrap().is_symlink());
        assert_eq!(fs::read(&written).unwrap(), b"Parola: secret");
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp") && n != ".0000000002.eml.tmp")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
