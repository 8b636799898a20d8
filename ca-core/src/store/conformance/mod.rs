//! The store contract: what any [`Store`] must do, written once against the role traits and
//! run for every implementation ([`crate::store_conformance_tests!`]): SQLite here, PostgreSQL
//! next. Each case takes a fresh, empty store and panics when the store breaks the contract.
//!
//! The cases cover serial uniqueness (RFC 5280 §4.1.2.2), reserve-before-sign, idempotent
//! lifecycle transitions, the audit record in the same transaction as its change, CRL
//! numbering (RFC 5280 §5.2.3), the attempt counters the store keeps, channel
//! applications once per reference, commitments (acceptance, supersession, expiry), the
//! enrollment's compare-and-set writes with production and its invoice line, the public
//! lookup's candidates, list import (held wet-signed lists, one open pre-application per
//! person, replay, confirmation), the trusted transport keys (registered once, withdrawn for
//! good), the admin API's operators (registered once, disabled for good), dual-control
//! requests (approved once per operator, decided once), security-word checks counted in a
//! window and the certificate search, the portal's contacts, attempts, sessions and notices;
//! and that a write whose expectation went stale is a
//! conflict.

mod admin;
mod applications;
mod audit;
mod certificates;
mod commitments;
mod counters;
mod crl;
mod enrollments;
mod institutions;
mod leases;
mod portal;
mod registry;

pub use admin::{
    admin_requests_are_approved_once_per_operator_and_decided_once,
    find_certificates_filters_by_holder_and_status,
    operators_are_registered_once_and_disabled_for_good,
    security_word_checks_are_counted_in_a_window,
};
pub use applications::{
    channel_applications_begin_once, pending_applications_are_released_for_a_retry,
};
pub use audit::{audit_chain_holds_after_writes, refused_writes_leave_no_audit_record};
pub use certificates::{
    complete_needs_a_reservation, fail_keeps_the_serial, lifecycle_follows_the_state_machine,
    replayed_transition_answers_its_first_outcome, serial_is_unique_per_issuer,
    stale_reservations_are_failed_once,
};
pub use commitments::{
    a_held_certificate_is_never_seen_active, commitment_acceptance_releases_and_supersedes,
    overdue_commitments_expire, stale_commitment_acceptance_is_a_conflict,
};
pub use counters::{
    failure_counters_are_atomic, outbox_attempts_are_counted,
    sign_in_failures_are_counted_and_compared, sms_code_counters,
    source_attempts_are_counted_in_windows,
};
pub use crl::{crl_entries_follow_the_lifecycle, crl_numbers_strictly_increase};
pub use enrollments::{
    current_not_after_selects_live_certificates, enrollment_writes_compare_the_stage,
    production_writes_its_invoice_line, stale_enrollment_writes_are_conflicts,
    wet_approval_and_held_renewal,
};
pub use institutions::{
    held_lists_block_no_one_and_end, institutions_change_and_passwords_are_resent,
    list_import_invites_holds_and_replays, list_import_rechecks_already_open,
    one_open_pre_application_per_person, stale_list_confirmation_is_a_conflict,
};
pub use leases::leases_have_one_holder_until_they_run_out;
pub use portal::{
    holder_contacts_are_kept_per_certificate, holder_sessions_spend_their_code_once,
    notices_follow_status_changes_and_reminders_go_once, portal_attempts_are_counted_in_windows,
    security_word_changes_are_announced_once_per_recipient,
};
pub use registry::{
    ca_revocations_are_recorded_once, cas_are_never_overwritten,
    issuing_ca_generations_form_one_chain, ocsp_signers_are_replaced_once_and_kept,
    partners_are_added_read_and_never_overwritten,
    transport_keys_are_registered_once_and_withdrawn_for_good,
};

use crate::lifecycle::{LifecycleAction, RequestId};
use crate::serial::{IssuerId, Serial};
use crate::store::{
    CaRecord, CaRole, Completion, Reservation, Reserved, Store, SubjectRecord, TransitionOutcome,
    TransitionWrite,
};

/// Unix seconds the cases write at: 2026-11-22T00:00:00Z.
const T0: i64 = 1_795_305_600;

/// The instant `secs` seconds after [`T0`].
fn t0(secs: i64) -> crate::UnixTime {
    crate::UnixTime::from_secs(T0 + secs)
}

/// A channel's name (the cases name `kdhs`, `kec`, `institution`).
fn channel(name: &str) -> crate::ChannelName {
    crate::ChannelName::parse(name).expect("channel name")
}

/// The issuing CA the cases issue under.
fn issuer() -> IssuerId {
    IssuerId::parse("nes-ca").expect("issuer id")
}

/// A reservation of `serial` under `issuer`, valid for a year from [`T0`].
fn reservation(issuer: &IssuerId, serial: Serial, subject: &str) -> Reservation {
    Reservation {
        issuer: issuer.clone(),
        serial,
        profile: crate::profile::ProfileName::Nes,
        subject: SubjectRecord {
            subject: subject.into(),
            tckn: Some(crate::Tckn::parse("10000000146").unwrap()),
            given_name: Some("AYŞE".into()),
            surname: Some("YILMAZ".into()),
        },
        not_before: t0(0),
        not_after: t0(365 * 86_400),
        tbs_der: vec![0x30, 0x00],
        actor: crate::Principal::HostOperator,
        at: t0(0),
    }
}

/// Reserves and completes a fresh serial under the conformance issuer (for a backend's own
/// tests that need a write).
#[cfg(test)]
pub(crate) fn issue_one(store: &dyn Store) -> Serial {
    issue(store, &issuer())
}

/// Reserves and completes a fresh serial under `issuer`: an active certificate.
fn issue(store: &dyn Store, issuer: &IssuerId) -> Serial {
    let serial = Serial::random();
    assert_eq!(
        store
            .reserve(reservation(issuer, serial, "CN=AYŞE YILMAZ"))
            .expect("reserve"),
        Reserved::Ok
    );
    store
        .complete(
            issuer,
            &serial,
            vec![0x30, 0x01, 0x00],
            Completion::default(),
            &crate::Principal::HostOperator,
            t0(0),
        )
        .expect("complete");
    serial
}

/// Registers `id` as an issuing CA (CRL numbers are taken for issuing CAs only).
fn add_issuing_ca(store: &dyn Store, id: &IssuerId) {
    store
        .add_ca(
            CaRecord {
                id: id.clone(),
                role: CaRole::Issuing,
                key_label: id.to_string(),
                cert_der: vec![0x30, 0x00],
                ocsp_key_label: None,
                ocsp_cert_der: None,
                supersedes: None,
            },
            &crate::Principal::HostOperator,
            t0(0),
        )
        .expect("add CA");
}

/// Applies `action` to `serial` under the request id `request_id` at `at`.
fn change(
    store: &dyn Store,
    (issuer, serial): (&IssuerId, &Serial),
    request_id: &str,
    action: LifecycleAction,
    at: crate::UnixTime,
) -> crate::error::Result<TransitionOutcome> {
    store.transition(TransitionWrite {
        request_id: RequestId::new(request_id).expect("request id"),
        issuer: issuer.clone(),
        serial: *serial,
        action,
        requested_by: crate::store::RequestedBy::Holder(crate::Tckn::parse("10000000146").unwrap()),
        actor: crate::Principal::HostOperator,
        at,
    })
}

/// How many audit records the store holds, checking that the chain is intact.
fn audit_records(store: &dyn Store) -> u64 {
    let report = store.verify_audit().expect("verify audit");
    assert_eq!(report.first_break, None, "the audit chain is broken");
    report.records
}

/// Generates one `#[test]` per conformance case for a store. `$fresh` is an expression
/// callable with no argument that returns `(store, guard)`: a fresh, empty store and
/// whatever must live as long as it (a temporary directory, a database's drop guard).
///
/// ```text
/// ca_core::store_conformance_tests!(|| {
///     let dir = ca_core::testkit::private_tempdir();
///     (SqliteStore::open(&dir.path().join("t.db")).unwrap(), dir)
/// });
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($fresh:expr) => {
        $crate::store_conformance_tests!(@cases $fresh;
            serial_is_unique_per_issuer,
            complete_needs_a_reservation,
            fail_keeps_the_serial,
            stale_reservations_are_failed_once,
            replayed_transition_answers_its_first_outcome,
            lifecycle_follows_the_state_machine,
            refused_writes_leave_no_audit_record,
            audit_chain_holds_after_writes,
            crl_numbers_strictly_increase,
            crl_entries_follow_the_lifecycle,
            cas_are_never_overwritten,
            ca_revocations_are_recorded_once,
            issuing_ca_generations_form_one_chain,
            ocsp_signers_are_replaced_once_and_kept,
            partners_are_added_read_and_never_overwritten,
            transport_keys_are_registered_once_and_withdrawn_for_good,
            channel_applications_begin_once,
            pending_applications_are_released_for_a_retry,
            outbox_attempts_are_counted,
            sign_in_failures_are_counted_and_compared,
            source_attempts_are_counted_in_windows,
            sms_code_counters,
            failure_counters_are_atomic,
            commitment_acceptance_releases_and_supersedes,
            stale_commitment_acceptance_is_a_conflict,
            overdue_commitments_expire,
            a_held_certificate_is_never_seen_active,
            enrollment_writes_compare_the_stage,
            wet_approval_and_held_renewal,
            production_writes_its_invoice_line,
            current_not_after_selects_live_certificates,
            list_import_invites_holds_and_replays,
            one_open_pre_application_per_person,
            list_import_rechecks_already_open,
            held_lists_block_no_one_and_end,
            institutions_change_and_passwords_are_resent,
            stale_list_confirmation_is_a_conflict,
            stale_enrollment_writes_are_conflicts,
            operators_are_registered_once_and_disabled_for_good,
            admin_requests_are_approved_once_per_operator_and_decided_once,
            security_word_checks_are_counted_in_a_window,
            find_certificates_filters_by_holder_and_status,
            leases_have_one_holder_until_they_run_out,
            holder_contacts_are_kept_per_certificate,
            portal_attempts_are_counted_in_windows,
            holder_sessions_spend_their_code_once,
            notices_follow_status_changes_and_reminders_go_once,
            security_word_changes_are_announced_once_per_recipient
        );
    };
    (@cases $fresh:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let (store, _guard) = ($fresh)();
                $crate::store::conformance::$case(&store);
            }
        )+
    };
}
