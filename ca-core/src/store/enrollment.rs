//! The records of an invited person's completion of their application (the institutional channel,
//! docs/STANDARDS.md "The Turkish channels", Institutional batch): sign-in, the form, the SMS
//! confirmation, the approval, production and the invoice line. The rules are in
//! the registration authority (`ra::enrollment`); these are what the store keeps and the writes it
//! accepts.

use crate::error::Result;
use crate::serial::{IssuerId, Serial};

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
        [
            EnrollmentStage::Invited,
            EnrollmentStage::Form,
            EnrollmentStage::Confirmed,
            EnrollmentStage::AwaitingWet,
            EnrollmentStage::Approved,
            EnrollmentStage::Produced,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
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
    /// Wrong access passwords since the last good one.
    pub failed_sign_ins: u32,
    /// Unix seconds until which sign-in is refused.
    pub locked_until: Option<i64>,
    /// The security word's argon2id hash (PHC string).
    pub security_word_hash: Option<String>,
    /// "Do not publish my certificate": left out of the public certificate lookup.
    pub do_not_publish: bool,
    pub delivery_address: Option<String>,
    /// The SMS code's argon2id hash, once one was sent.
    pub sms_code_hash: Option<String>,
    pub sms_code_expires: Option<i64>,
    /// Wrong codes since the last code was sent.
    pub sms_code_failures: u32,
    /// Codes queued so far (the first and every resend).
    pub sms_codes_sent: u32,
    pub confirmed_at: Option<i64>,
    pub approval_method: Option<ApprovalMethod>,
    /// SHA-256 (hex) of the approval text the applicant approved.
    pub approval_text_sha256: Option<String>,
    pub approved_at: Option<i64>,
    /// Not produced before this (a renewal held until its window), Unix seconds.
    pub produce_after: Option<i64>,
    /// The card bureau's CSR (DER), when production waits for one.
    pub card_csr: Option<Vec<u8>>,
    /// Failed production attempts (each is a channel application of its own).
    pub production_attempts: u32,
    pub last_error: Option<String>,
    pub serial: Option<Serial>,
    pub produced_at: Option<i64>,
    /// The card personalisation package was written out.
    pub package_written: bool,
    pub updated_at: i64,
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
    /// When the person gave it, Unix seconds.
    pub given_at: i64,
    pub recorded_by: crate::Principal,
    pub recorded_at: i64,
}

/// Who pays for a produced certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePayer {
    /// `institution` or `person`.
    pub kind: String,
    pub name: String,
    /// The institution's tax number, or the person's T.C. Kimlik No.
    pub id: String,
}

/// What a production writes in the transaction that stores its certificate: the
/// enrollment becomes produced, its pre-application closes, and the invoice line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedEnrollment {
    pub pre_application: String,
    pub institution: String,
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
    pub produced_at: i64,
}

/// A certificate as the public lookup shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedCertificate {
    pub serial: Serial,
    pub subject: String,
    pub status: String,
    pub not_before: i64,
    pub not_after: i64,
    pub cert_der: Vec<u8>,
}

/// A change to an enrollment (one store transaction each, with its audit record where it
/// matters). Each is refused, with nothing written, when the enrollment is not at the stage
/// it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentWrite {
    /// A wrong access password: counted; at `max_failures` sign-in locks for `lock_seconds`.
    SignInFailed {
        id: String,
        max_failures: u32,
        lock_seconds: i64,
        at: i64,
    },
    /// A good access password: the failures reset and a session starts.
    SignedIn {
        id: String,
        token_sha256: String,
        expires_at: i64,
        at: i64,
    },
    /// The form (again, while unconfirmed): stored, and an SMS code queued to `mobile`.
    Form {
        id: String,
        security_word_hash: String,
        do_not_publish: bool,
        delivery_address: String,
        mobile: String,
        max_codes: u32,
        at: i64,
    },
    /// Another SMS code queued, up to `max_codes` in all.
    ResendCode {
        id: String,
        mobile: String,
        max_codes: u32,
        at: i64,
    },
    /// The hash of the code about to be sent (by the outbox).
    CodeIssued {
        id: String,
        code_hash: String,
        expires_at: i64,
        at: i64,
    },
    /// A wrong code; at `max_failures` the code is void.
    CodeFailed {
        id: String,
        max_failures: u32,
        at: i64,
    },
    CodeConfirmed {
        id: String,
        at: i64,
    },
    /// Approved: `evidence` is the e-Onay record, the CMS signature or the wet scan.
    Approve {
        id: String,
        method: ApprovalMethod,
        text_sha256: String,
        evidence: Vec<u8>,
        produce_after: Option<i64>,
        actor: crate::Principal,
        at: i64,
    },
    /// Approval by wet signature chosen: the printed form is awaited.
    AwaitWet {
        id: String,
        text_sha256: String,
        at: i64,
    },
    /// The card bureau's CSR for an approved enrollment.
    CardCsr {
        id: String,
        csr_der: Vec<u8>,
        actor: crate::Principal,
        at: i64,
    },
    /// A production attempt failed; the next one uses a new channel reference.
    ProductionFailed {
        id: String,
        error: String,
        at: i64,
    },
    /// The card personalisation package is out.
    PackageWritten {
        id: String,
        at: i64,
    },
    RecordConsent {
        consent: EOnayConsent,
    },
}

/// What an enrollment write led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentOutcome {
    Done,
    /// Failures counted so far (sign-in or code), and whether that locked it.
    Failures {
        count: u32,
        locked: bool,
    },
}

/// An invited person's completion: the enrollment's writes and reads, applicant sessions,
/// e-Onay consents, invoice lines and the public certificate lookup.
pub trait EnrollmentStore: Send + Sync {
    /// Applies one step of an invited person's completion (see [`EnrollmentWrite`]).
    fn enrollment_write(&self, w: EnrollmentWrite) -> Result<EnrollmentOutcome>;
    /// The id of the person's open (not closed) pre-application.
    fn open_pre_application(&self, tckn: &crate::Tckn) -> Result<Option<String>>;
    /// An enrollment by its pre-application id.
    fn enrollment(&self, pre_application: &str) -> Result<Option<EnrollmentRecord>>;
    /// Approved enrollments due for production at `at`, and produced ones whose card
    /// package is not written yet.
    fn enrollments_due(&self, at: i64, limit: u32) -> Result<Vec<EnrollmentRecord>>;
    /// An applicant session by the SHA-256 of its token: the pre-application and expiry.
    fn applicant_session(&self, token_sha256: &str) -> Result<Option<(String, i64)>>;
    /// The person's recorded e-Onay consent.
    fn eonay_consent(&self, tckn: &crate::Tckn) -> Result<Option<EOnayConsent>>;
    /// The invoice lines of an institution's lists for a month (`YYYY-MM`).
    fn invoice_lines(&self, institution: &str, month: &str) -> Result<Vec<InvoiceLine>>;
    /// The latest expiry of the person's certificates in use after `at`.
    fn current_not_after(&self, tckn: &crate::Tckn, at: i64) -> Result<Option<i64>>;
    /// Issued certificates the public lookup may show: by serial, or by holder.
    fn published_certificates(
        &self,
        serial: Option<&Serial>,
        tckn: Option<&crate::Tckn>,
    ) -> Result<Vec<PublishedCertificate>>;
}
