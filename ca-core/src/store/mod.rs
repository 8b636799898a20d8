//! The store: every certificate from the moment its serial is reserved, the CAs, the RA's
//! records and the hash-chained audit log, behind narrow traits, one per concern, each small
//! enough to implement twice. [`Store`] is their union, so PostgreSQL can join SQLite
//! without touching the engine; `conformance` (with the `testkit` feature) is what every
//! implementation must pass.

mod application;
mod audit;
mod certificates;
mod commitment;
#[cfg(any(test, feature = "testkit"))]
pub mod conformance;
mod crl;
pub mod enrollment;
mod institution;
mod outbox;
mod registry;
mod sqlite;

pub use application::{
    ApplicationOutcome, ApplicationStatus, ApplicationStore, ChannelApplication,
};
pub use audit::{AuditEntry, AuditReport, AuditStore};
pub use certificates::{
    CertRecord, CertStatus, CertificateStore, RequestedBy, Reservation, Reserved, Revocation,
    StatusRecord, SubjectRecord, TransitionOutcome, TransitionRecord, TransitionWrite,
};
pub use commitment::{
    ApplicationIssued, CommitmentAcceptance, CommitmentExpiry, CommitmentOutcome, CommitmentRecord,
    CommitmentStatus, CommitmentStore, Completion, ExpectedCertificate, FinishedApplication,
    NewCommitment,
};
pub use crl::{CrlKind, CrlPlan, CrlRecord, CrlReservation, CrlStore, DeltaEntry, RevokedEntry};
pub use enrollment::{
    ApprovalMethod, EOnayConsent, EnrollmentOutcome, EnrollmentRecord, EnrollmentStage,
    EnrollmentStore, EnrollmentWrite, InvoiceLine, InvoicePayer, ProducedEnrollment,
    PublishedCertificate,
};
pub use institution::{
    ImportStatus, InstitutionStore, ListConfirmation, ListImportRecord, ListImportWrite,
    ListSignatureKind, PreApplication, PreApplicationStatus,
};
pub use outbox::{OutboxMessage, OutboxStore};
pub use registry::{CaRecord, CaRole, RegistryStore};
/// The lifecycle request id under which a certificate is suspended at issuance to await its
/// commitment (derived from the serial, so a retried write is the same request).
pub use sqlite::hold_request_id as commitment_hold_request_id;
pub use sqlite::SqliteStore;

/// Durable storage of everything nesca keeps: the union of the role traits.
///
/// Every write is committed durably before it returns and carries its audit record in the
/// same transaction: if the audit record cannot be written, the change does not happen.
/// Code that holds an `Arc<dyn Store>` (or is generic over `S: Store`) calls every role's
/// methods without importing the role traits; code that holds a concrete store imports
/// [`prelude`].
pub trait Store:
    CertificateStore
    + CrlStore
    + RegistryStore
    + AuditStore
    + ApplicationStore
    + CommitmentStore
    + InstitutionStore
    + OutboxStore
    + EnrollmentStore
{
}

impl<T> Store for T where
    T: CertificateStore
        + CrlStore
        + RegistryStore
        + AuditStore
        + ApplicationStore
        + CommitmentStore
        + InstitutionStore
        + OutboxStore
        + EnrollmentStore
{
}

/// Every store trait, to call their methods on a concrete store (`use
/// ca_core::store::prelude::*;`).
pub mod prelude {
    pub use super::{
        ApplicationStore, AuditStore, CertificateStore, CommitmentStore, CrlStore, EnrollmentStore,
        InstitutionStore, OutboxStore, RegistryStore, Store,
    };
}
