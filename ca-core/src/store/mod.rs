//! The store: every certificate from the moment its serial is reserved, the CAs, the RA's
//! records and the hash-chained audit log, behind narrow traits, one per concern. [`Store`]
//! is their union; `conformance` (with the `testkit` feature) is what every implementation
//! must pass.
//!
//! Two implementations: [`SqliteStore`] (`sqlite/`, the embedded default) and [`PgStore`]
//! (`postgres/`, the store several nodes share). They share the role modules in `sql/` —
//! one module per trait, its SQL and its checks — which each backend compiles against its
//! own `db` module (the SQL driver: `rusqlite`, or a `postgres` client speaking the same
//! API) and its own `Backend` type. So a rule of the store is written once.

/// A status or kind the store keeps as text: the enum, `as_str` (the column's text), `parse`
/// (which refuses text it does not know as [`crate::CaError::Invalid`] for the column, so a
/// damaged row is refused where it is read) and `Display` (the text).
macro_rules! column_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident in $field:literal as $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The text the store writes.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value of stored text; unknown text is [`crate::CaError::Invalid`] for the
            /// column.
            pub fn parse(s: &str) -> $crate::Result<$name> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::CaError::invalid(
                        $field,
                        format!(concat!("unknown ", $what, " \"{}\""), other),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Declares the role modules of `sql/` in a backend's module (`sqlite/`, `postgres/`), which
/// compiles them against its own `db` (the SQL driver) and `Backend` (the store type they
/// implement the traits for): the store's SQL and checks are written once, for both. Inside
/// those files `super` is the backend that declares them. A backend provides:
///
/// - `db`: `Connection` (`prepare_cached`, `prepare`, `query_row`, `execute_batch`), its statements (`execute`, `query_row`, `query_map`, `exists`,
///   `query`), `Row::get`, `params!`, `params_from_iter`, `Params`, `OptionalExtension`,
///   `Error`/`Result`, and `conversion_error`, `text`, `is_null`, `begin_batch` (the writer's
///   transaction, holding whatever makes writes one at a time), `reopen`;
/// - `type Backend` with inherent `submit` (a write through the writer), `read` (a closure
///   that may run twice: `Fn`), `snapshot` (a connection in one read snapshot, with its
///   audit watermark) and `wait_for_change_signal`;
/// - the column readers of `sql/columns.rs` in scope (`use self::columns::…`).
///
/// SQL in `sql/` is written in what both engines accept, with SQLite's `?N` placeholders
/// (PostgreSQL's `db` turns them into `$N`); where PostgreSQL cannot infer a placeholder's
/// type (`?1 IS NULL`), it is cast (`CAST(?1 AS TEXT) IS NULL`).
macro_rules! sql_role_modules {
    () => {
        #[path = "../sql/admin.rs"]
        mod admin;
        #[path = "../sql/applications.rs"]
        mod applications;
        #[path = "../sql/audit.rs"]
        mod audit;
        #[path = "../sql/certificates.rs"]
        mod certificates;
        #[path = "../sql/columns.rs"]
        mod columns;
        #[path = "../sql/commitments.rs"]
        mod commitments;
        #[path = "../sql/crl.rs"]
        mod crl;
        #[path = "../sql/enrollments.rs"]
        mod enrollments;
        #[path = "../sql/institutions.rs"]
        mod institutions;
        #[path = "../sql/leases.rs"]
        mod leases;
        #[path = "../sql/outbox.rs"]
        mod outbox;
        #[path = "../sql/portal.rs"]
        mod portal;
        #[path = "../sql/registry.rs"]
        mod registry;
        #[path = "../sql/writer.rs"]
        mod writer;
    };
}

mod admin;
mod application;
mod audit;
mod certificates;
mod commitment;
#[cfg(any(test, feature = "testkit"))]
pub mod conformance;
mod crl;
pub mod enrollment;
mod institution;
mod lease;
mod outbox;
pub mod portal;
// Both backends compile the role modules of `sql/`, each against its own driver: the
// double load is the design, not an accident.
#[allow(clippy::duplicate_mod)]
mod postgres;
mod registry;
mod sqlite;

pub use admin::{
    AdminRequestRecord, AdminRequestStatus, AdminStore, CertificateQuery, NewAdminRequest,
    OperatorRecord,
};
pub use application::{
    ApplicationOutcome, ApplicationStatus, ApplicationStore, ChannelApplication,
};
pub use audit::{
    checkpoint_message, hashed_bytes, AuditCheckpoint, AuditEntry, AuditRecord, AuditReport,
    AuditStore, Unaudited,
};
pub use certificates::{
    CertRecord, CertStatus, CertificateStore, HolderChannel, RequestedBy, Reservation, Reserved,
    Revocation, RevocationGrounds, StatusRecord, SubjectRecord, TransitionKind, TransitionOutcome,
    TransitionRecord, TransitionWrite,
};
pub use commitment::{
    ApplicationIssued, CommitmentAcceptance, CommitmentExpiry, CommitmentOutcome, CommitmentRecord,
    CommitmentStatus, CommitmentStore, Completion, ExpectedCertificate, FinishedApplication,
    NewCommitment,
};
pub use crl::{CrlKind, CrlPlan, CrlRecord, CrlReservation, CrlStore, DeltaEntry, RevokedEntry};
pub use enrollment::{
    ApprovalMethod, EOnayConsent, EnrollmentOutcome, EnrollmentRecord, EnrollmentStage,
    EnrollmentStore, EnrollmentWrite, InvoiceLine, InvoicePayer, LookupCandidate, LookupKey,
    ProducedEnrollment, SignInSource, MAX_LOOKUP_CANDIDATES,
};
pub use institution::{
    HeldListEnd, HeldListEnding, ImportStatus, InstitutionChange, InstitutionStore,
    ListConfirmation, ListConfirmed, ListImportRecord, ListImportWrite, ListSignatureKind,
    PreApplication, PreApplicationStatus,
};
pub use lease::LeaseStore;
pub use outbox::{OutboxAttempt, OutboxKind, OutboxMessage, OutboxStatus, OutboxStore};
pub use portal::{HolderContact, HolderSession, HolderSessionStage, NewHolderSession, PortalStore};
pub use registry::{generations, CaRecord, CaRole, OcspSignerRecord, RegistryStore};
/// Benchmarks only: `count` revoked certificates with random serials, revoked over the day
/// before `at` with a rotation of reasons, in serial order (what `bench_fill_revoked` of
/// either store writes).
fn bench_revoked_rows(
    count: u64,
    at: crate::UnixTime,
) -> Vec<(
    crate::serial::Serial,
    crate::UnixTime,
    Option<crate::lifecycle::RevocationReason>,
)> {
    use crate::lifecycle::RevocationReason;
    let reasons = [
        None,
        Some(RevocationReason::KeyCompromise),
        Some(RevocationReason::Superseded),
        Some(RevocationReason::CessationOfOperation),
    ];
    let mut rows: Vec<_> = (0..count)
        .map(|i| {
            (
                crate::serial::Serial::random(),
                at.plus_secs(-((i % 86_400) as i64)),
                reasons[(i % 4) as usize],
            )
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    rows
}

/// The lifecycle request id under which a certificate is suspended at issuance to await its
/// commitment (derived from the serial, so a retried write is the same request).
pub fn commitment_hold_request_id(
    serial: &crate::serial::Serial,
) -> crate::Result<crate::lifecycle::RequestId> {
    crate::lifecycle::RequestId::new(&format!("commitment-hold-{}", serial.to_hex()))
}
pub use postgres::{database_url, PgError, PgOptions, PgStore, PgTls, ScratchDatabase};
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
    + AdminStore
    + LeaseStore
    + PortalStore
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
        + AdminStore
        + LeaseStore
        + PortalStore
{
}

/// Every store trait, to call their methods on a concrete store (`use
/// ca_core::store::prelude::*;`).
pub mod prelude {
    pub use super::{
        AdminStore, ApplicationStore, AuditStore, CertificateStore, CommitmentStore, CrlStore,
        EnrollmentStore, InstitutionStore, LeaseStore, OutboxStore, PortalStore, RegistryStore,
        Store,
    };
}
