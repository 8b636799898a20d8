//! The records of an invited person's completion of their application (the institutional channel,
//! docs/STANDARDS.md "The Turkish channels", Institutional batch): sign-in, the form, the SMS
//! confirmation, the approval, production and the invoice line. The rules are in
//! the registration authority (`ra::enrollment`); these are what the store keeps and the writes it
//! accepts.

use std::fmt;
use std::net::IpAddr;

use crate::error::Result;
use crate::institution::Payer;
use crate::serial::{IssuerId, Serial};
use crate::store::CertStatus;
use crate::{Principal, UnixTime};

/// Where a sign-in attempt comes from, as far as nesca can tell: the applicant's address as
/// the portal reported it — an IPv4 address, or an IPv6 address's /64 (one subscriber's
/// network; an attacker holds every address in it) — or, when the portal reported none, the
/// portal itself. Sign-in failures are counted per person and source, so a lock that others
/// caused does not stop the person's own sign-in from elsewhere (`ra::enrollment::limits`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignInSource(String);

impl SignInSource {
    /// The source of an attempt whose portal named no address.
    pub fn unnamed() -> SignInSource {
        SignInSource("portal".into())
    }

    /// The source of an attempt from `ip`: an IPv4 address; an IPv6 address by its /64. An
    /// IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:0:0/96`, the NAT64 prefix
    /// `64:ff9b::/96`, the old IPv4-compatible `::/96`) is that IPv4 address: otherwise every
    /// client of a NAT64 gateway would be one source.
    pub fn address(ip: IpAddr) -> SignInSource {
        match ip {
            IpAddr::V4(v4) => SignInSource(format!("ip:{v4}")),
            IpAddr::V6(v6) => match embedded_ipv4(&v6) {
                Some(v4) => SignInSource(format!("ip:{v4}")),
                None => {
                    let s = v6.segments();
                    let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                    SignInSource(format!("ip:{net}/64"))
                }
            },
        }
    }

    /// A source as the store keeps it (`portal`, `ip:192.0.2.7`, `ip:2001:db8::/64`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the attempt named its address (the unnamed source is every applicant of a
    /// portal that names none, so no per-address limit applies to it).
    pub fn is_address(&self) -> bool {
        self.0.starts_with("ip:")
    }
}

/// The IPv4 address an IPv6 address carries in its last 32 bits, for the prefixes that mean
/// one (see [`SignInSource::address`]); `::` and `::1` carry none.
fn embedded_ipv4(v6: &std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let low = std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, _, _] if s[6] != 0 => Some(low),
        _ => None,
    }
}

impl fmt::Display for SignInSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an invited person's application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentStage {
    /// Invited; the form is not filled yet.
    Invited,
    /// The form is filled; the SMS code awaits confirmation.
    Form,
    /// The mobile number is confirmed; the approval is awaited.
    Confirmed,
    /// Approval by wet signature chosen: the printed form awaits an operator's receipt.
    AwaitingWet,
    /// Approved: produced when due (a renewal waits for its window).
    Approved,
    /// The certificate is issued.
    Produced,
}

impl EnrollmentStage {
    /// Every stage, in the order an application passes them.
    pub const ALL: [EnrollmentStage; 6] = [
        EnrollmentStage::Invited,
        EnrollmentStage::Form,
        EnrollmentStage::Confirmed,
        EnrollmentStage::AwaitingWet,
        EnrollmentStage::Approved,
        EnrollmentStage::Produced,
    ];

    /// The stage as the store writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentStage::Invited => "invited",
            EnrollmentStage::Form => "form",
            EnrollmentStage::Confirmed => "confirmed",
            EnrollmentStage::AwaitingWet => "awaiting_wet",
            EnrollmentStage::Approved => "approved",
            EnrollmentStage::Produced => "produced",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<EnrollmentStage> {
        EnrollmentStage::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for EnrollmentStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the applicant approved the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalMethod {
    /// e-Onay through e-Devlet, allowed when the person's prior consent is on record.
    EOnay,
    /// A CMS signature over the approval text with a valid NES that nesca issued.
    Signature,
    /// The printed form signed on paper, received by an operator.
    Wet,
}

impl ApprovalMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalMethod::EOnay => "e-onay",
            ApprovalMethod::Signature => "signature",
            ApprovalMethod::Wet => "wet",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalMethod> {
        [
            ApprovalMethod::EOnay,
            ApprovalMethod::Signature,
            ApprovalMethod::Wet,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// An invited person's completion as the store holds it (no secret: hashes only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentRecord {
    pub pre_application: String,
    pub stage: EnrollmentStage,
    /// Sign-in attempts from every source since the last sign-in (or the last new access
    /// password), each counted before its password was checked (column `failed_sign_ins`).
    pub sign_in_attempts: u32,
    /// The latest lock of sign-in from any source (table `sign_in_sources`): a live one may
    /// be a guesser's address, not the person's. One that ended stays until the person's next
    /// sign-in, a new access password, or the next attempt from a named address.
    pub locked_until: Option<UnixTime>,
    /// The security word's argon2id hash (PHC string).
    pub security_word_hash: Option<String>,
    /// "Do not publish my certificate": left out of the public certificate lookup.
    pub do_not_publish: bool,
    pub delivery_address: Option<String>,
    /// The SMS code's argon2id hash, once one was sent (none again once it is void).
    pub sms_code_hash: Option<String>,
    pub sms_code_expires: Option<UnixTime>,
    /// Tries of the current code, each counted before it was checked (column
    /// `sms_code_failures`).
    pub sms_code_tries: u32,
    /// Codes queued so far (the first and every resend).
    pub sms_codes_sent: u32,
    pub confirmed_at: Option<UnixTime>,
    pub approval_method: Option<ApprovalMethod>,
    /// SHA-256 (hex) of the approval text the applicant approved.
    pub approval_text_sha256: Option<String>,
    pub approved_at: Option<UnixTime>,
    /// Not produced before this (a renewal held until its window).
    pub produce_after: Option<UnixTime>,
    /// The card bureau's CSR (DER), when production waits for one.
    pub card_csr: Option<Vec<u8>>,
    /// Failed production attempts (each is a channel application of its own).
    pub production_attempts: u32,
    pub last_error: Option<String>,
    pub serial: Option<Serial>,
    pub produced_at: Option<UnixTime>,
    /// The card personalisation package was written out.
    pub package_written: bool,
    pub updated_at: UnixTime,
}

/// A person's e-Onay consent, recorded by an operator with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EOnayConsent {
    pub tckn: crate::Tckn,
    /// The e-Devlet reference of the consent.
    pub reference: String,
    /// The evidence as received (e.g. the e-Devlet consent document).
    pub evidence: Vec<u8>,
    pub evidence_sha256: String,
    /// When the person gave it.
    pub given_at: UnixTime,
    pub recorded_by: Principal,
    pub recorded_at: UnixTime,
}

/// Who pays for a produced certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePayer {
    /// The institution or the person, as the institution was registered.
    pub kind: Payer,
    pub name: String,
    /// The institution's tax number, or the person's T.C. Kimlik No.
    pub id: String,
}

/// What a production writes in the transaction that stores its certificate: the
/// enrollment becomes produced, its pre-application closes, and the invoice line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedEnrollment {
    pub pre_application: String,
    /// The stage the registration authority saw when it decided to produce (approved): the
    /// store refuses with a conflict, writing nothing, when the enrollment moved meanwhile.
    pub from: EnrollmentStage,
    pub institution: crate::institution::InstitutionId,
    pub payer: InvoicePayer,
    pub holder_tckn: crate::Tckn,
    pub holder_name: String,
    /// The invoiced item, e.g. "NES 730 gün".
    pub item: String,
    /// The billing month, `YYYY-MM` (Turkey's time).
    pub month: String,
    /// The production attempt that made it (its channel reference is
    /// `{pre_application}.{attempt}`), recorded so that the card package finds its wrapped key
    /// even when another attempt was counted meanwhile.
    pub attempt: u32,
}

/// One invoice line: one produced certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub id: i64,
    pub issuer: IssuerId,
    pub serial: Serial,
    pub produced: ProducedEnrollment,
    pub produced_at: UnixTime,
}

/// A certificate the public lookup may show, with what the registration authority decides
/// on: its status and its holder's "do not publish" choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupCandidate {
    pub serial: Serial,
    pub subject: String,
    pub status: CertStatus,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub cert_der: Vec<u8>,
    /// The holder agreed to its publication: it was produced from an enrollment whose form
    /// asked them, and they left "do not publish my certificate" unticked. A certificate
    /// issued through a channel that did not ask (or by an operator) has no such agreement.
    pub holder_agreed: bool,
}

/// What the public lookup looks for: one certificate by serial, or one person's certificates.
/// There is no "everything": the lookup never lists certificates it was not asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKey<'a> {
    Serial(&'a Serial),
    Holder(&'a crate::Tckn),
}

/// At most this many candidates are read for one lookup, newest first: a hard ceiling on the
/// work one public request causes. The registration authority shows at most
/// `ra::enrollment::lookup::MAX_SHOWN` of them, after filtering.
pub const MAX_LOOKUP_CANDIDATES: u32 = 1000;

/// A change to an enrollment (one store transaction each, with its audit record where it
/// matters). The registration authority decides whether a step may happen (its stage
/// machine, limits and quota); a write carries what it saw — the stage (`from`), the codes
/// sent (`expect_codes_sent`) — and the store refuses it with [`crate::CaError::Conflict`],
/// writing nothing, when the enrollment is no longer so. `actor` is who acts, recorded in the
/// audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentWrite {
    /// A sign-in attempt from `source`, counted atomically before its password is checked
    /// ([`EnrollmentOutcome::AttemptCounted`]: the attempts from this source since the
    /// person's last sign-in from any source, the source's last lock or a new access
    /// password; the source's lock read with the count; and the attempts from every source
    /// since the last sign-in or new access password). An attempt while its source is locked at `at` is not
    /// counted, so a lock's end starts a fresh count. Counting first bounds the password
    /// checks that parallel guesses get: the registration authority checks only attempts
    /// within its limit and not locked, and locks the source at the limit.
    SignInAttempt {
        id: String,
        source: SignInSource,
        actor: Principal,
        at: UnixTime,
    },
    /// Sign-in from `source` refused until `until`; its failures count starts again.
    LockSignIn {
        id: String,
        source: SignInSource,
        until: UnixTime,
        actor: Principal,
        at: UnixTime,
    },
    /// A good access password from `source`: its attempts and lock, every other source's count
    /// and ended lock, and the count from every source reset (another source's live lock
    /// stays), a session starts, and the source's [`EnrollmentWrite::SourceAttempt`] is given
    /// back. Refused with a conflict when the source's live lock is no longer the one in
    /// `expect_locked_until` (a lock set since the registration authority read it), so a
    /// correct guess racing the lock never signs in; an ended lock counts as none.
    SignedIn {
        id: String,
        source: SignInSource,
        expect_locked_until: Option<UnixTime>,
        token_sha256: String,
        expires_at: UnixTime,
        actor: Principal,
        at: UnixTime,
    },
    /// A sign-in attempt from `source`, whoever it names, counted before anything is looked
    /// up ([`EnrollmentOutcome::Counted`]: the attempts in the source's current window of
    /// `window_seconds`, this one included; a window that ended starts a new one). A sign-in
    /// gives its attempt back. No audit record: it decides nothing about a person.
    SourceAttempt {
        source: SignInSource,
        window_seconds: i64,
        at: UnixTime,
    },
    /// The form (`from` invited, or form again while unconfirmed): stored, the stage becomes
    /// form, and an SMS code is queued to `mobile` (the codes sent become
    /// `expect_codes_sent + 1`).
    Form {
        id: String,
        from: EnrollmentStage,
        expect_codes_sent: u32,
        security_word_hash: String,
        do_not_publish: bool,
        delivery_address: String,
        mobile: String,
        actor: Principal,
        at: UnixTime,
    },
    /// Another SMS code queued (the codes sent become `expect_codes_sent + 1`); the previous
    /// code is void.
    ResendCode {
        id: String,
        from: EnrollmentStage,
        expect_codes_sent: u32,
        mobile: String,
        actor: Principal,
        at: UnixTime,
    },
    /// The hash of the code about to be sent (by the outbox).
    CodeIssued {
        id: String,
        from: EnrollmentStage,
        code_hash: String,
        expires_at: UnixTime,
        actor: Principal,
        at: UnixTime,
    },
    /// A try of the code, counted atomically before the code is checked
    /// ([`EnrollmentOutcome::Counted`]: the tries of the current code); the registration
    /// authority checks only tries within its limit and voids the code at the limit.
    CodeAttempt {
        id: String,
        from: EnrollmentStage,
        actor: Principal,
        at: UnixTime,
    },
    /// The code whose hash is `code_hash` is void (a new one must be asked for). Voiding a
    /// code that is already void or replaced changes nothing and is not refused.
    VoidCode {
        id: String,
        code_hash: String,
        actor: Principal,
        at: UnixTime,
    },
    /// The mobile number is confirmed. Refused with a conflict when the code is no longer
    /// `code_hash` (voided or replaced since the registration authority read it), so a void
    /// code is never accepted.
    CodeConfirmed {
        id: String,
        from: EnrollmentStage,
        code_hash: String,
        actor: Principal,
        at: UnixTime,
    },
    /// Approved: `evidence` is the e-Onay record, the CMS signature or the wet scan.
    Approve {
        id: String,
        from: EnrollmentStage,
        /// The printed form's text hash as the registration authority read it (`None`: none
        /// printed): a form printed again meanwhile is a conflict.
        expect_printed_sha256: Option<String>,
        method: ApprovalMethod,
        text_sha256: String,
        evidence: Vec<u8>,
        produce_after: Option<UnixTime>,
        actor: Principal,
        at: UnixTime,
    },
    /// Approval by wet signature chosen: the printed form is awaited.
    AwaitWet {
        id: String,
        from: EnrollmentStage,
        text_sha256: String,
        actor: Principal,
        at: UnixTime,
    },
    /// The card bureau's CSR for an approved enrollment.
    CardCsr {
        id: String,
        from: EnrollmentStage,
        csr_der: Vec<u8>,
        actor: Principal,
        at: UnixTime,
    },
    /// A production attempt failed; the next one uses a new channel reference.
    ProductionFailed {
        id: String,
        from: EnrollmentStage,
        error: String,
        actor: Principal,
        at: UnixTime,
    },
    /// The card personalisation package is out.
    PackageWritten {
        id: String,
        from: EnrollmentStage,
        actor: Principal,
        at: UnixTime,
    },
    /// A person's e-Onay consent (replacing an earlier one); `actor` is recorded as who
    /// recorded it, `at` as when.
    RecordConsent {
        tckn: crate::Tckn,
        reference: String,
        evidence: Vec<u8>,
        evidence_sha256: String,
        given_at: UnixTime,
        actor: Principal,
        at: UnixTime,
    },
}

/// What an enrollment write led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentOutcome {
    Done,
    /// The tries of the current code counted so far, this one included: what the count
    /// means is the registration authority's to decide.
    Counted {
        count: u32,
    },
    /// A sign-in attempt: the attempts from its source counted so far (this one included,
    /// unless the source was locked at the attempt's time, when it is not counted), the
    /// source's lock as it stood when the attempt was counted, read in the same statement, and
    /// the attempts from every source since the last sign-in (this one included when counted).
    AttemptCounted {
        count: u32,
        locked_until: Option<UnixTime>,
        person_count: u32,
    },
}

/// An invited person's completion: the enrollment's writes and reads, applicant sessions,
/// e-Onay consents, invoice lines and the public certificate lookup's candidates.
pub trait EnrollmentStore: Send + Sync {
    /// Applies one step of an invited person's completion (see [`EnrollmentWrite`]).
    fn enrollment_write(&self, w: EnrollmentWrite) -> Result<EnrollmentOutcome>;
    /// The id of the person's open (not closed) pre-application.
    fn open_pre_application(&self, tckn: &crate::Tckn) -> Result<Option<String>>;
    /// An enrollment by its pre-application id.
    fn enrollment(&self, pre_application: &str) -> Result<Option<EnrollmentRecord>>;
    /// The evidence the enrollment's approval recorded (the e-Onay record, the CMS signature
    /// or the wet-signed form's scan, as [`EnrollmentWrite::Approve`] wrote it); `None` before
    /// it is approved.
    fn approval_evidence(&self, pre_application: &str) -> Result<Option<Vec<u8>>>;
    /// Approved enrollments due for production at `at`, and produced ones whose card
    /// package is not written yet.
    fn enrollments_due(&self, at: UnixTime, limit: u32) -> Result<Vec<EnrollmentRecord>>;
    /// An applicant session by the SHA-256 of its token: the pre-application and expiry.
    fn applicant_session(&self, token_sha256: &str) -> Result<Option<(String, UnixTime)>>;
    /// Ends an applicant session (sign-out): its token opens nothing any more.
    fn end_applicant_session(&self, token_sha256: &str) -> Result<()>;
    /// The person's recorded e-Onay consent.
    fn eonay_consent(&self, tckn: &crate::Tckn) -> Result<Option<EOnayConsent>>;
    /// The invoice lines of an institution's lists for a month (`YYYY-MM`).
    fn invoice_lines(&self, institution: &str, month: &str) -> Result<Vec<InvoiceLine>>;
    /// The latest expiry of the person's certificates in use after `at`.
    fn current_not_after(&self, tckn: &crate::Tckn, at: UnixTime) -> Result<Option<UnixTime>>;
    /// The certificates the public lookup may show for `key`, newest first (at most
    /// [`MAX_LOOKUP_CANDIDATES`]): every stored certificate (one with its DER), whatever its
    /// status, with its holder's "do not publish" choice. Which of them are shown is the
    /// registration authority's decision (`ra::enrollment::lookup`).
    fn lookup_candidates(&self, key: LookupKey<'_>) -> Result<Vec<LookupCandidate>>;
}
