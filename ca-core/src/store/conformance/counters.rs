//! The counters the store keeps atomically in its rows (`n = n + 1` inside the write's
//! transaction): outbox delivery attempts, failed sign-ins, SMS codes sent and wrong codes.

use super::{audit_records, t0, T0};
use crate::institution::{ListImport, ListSignature};
use crate::store::{
    EnrollmentOutcome, EnrollmentStage, EnrollmentWrite, ImportStatus, ListImportWrite,
    OutboxAttempt, OutboxKind, OutboxStatus, Store,
};
use crate::testkit::{institution_record, list_row};

/// Registers the test institution and imports a signed list of one person: returns the
/// invited pre-application's id.
pub(super) fn invited(store: &dyn Store) -> String {
    let institution = institution_record();
    let id = institution.id.clone();
    store
        .add_institution(
            institution,
            &crate::Principal::HostOperator,
            crate::UnixTime::from_secs(T0),
        )
        .unwrap();
    let import = || ListImportWrite {
        import: ListImport {
            institution: id.clone(),
            file_sha256: "ab".repeat(32),
            file_name: "list.csv".into(),
            signature: ListSignature::Cms(vec![0x30, 0x00]),
            rows: vec![list_row(2, "10000000146", "AYŞE")],
            invalid_rows: 0,
            actor: crate::Principal::HostOperator,
            at: crate::UnixTime::from_secs(T0),
        },
        status: ImportStatus::Accepted,
        already_open: Vec::new(),
    };
    let outcome = store.import_list(import()).unwrap();
    assert!(!outcome.replayed);
    assert_eq!(outcome.created.len(), 1);
    // The same file again writes nothing.
    let again = store.import_list(import()).unwrap();
    assert!(again.replayed);
    assert_eq!(again.created, outcome.created);
    outcome.created[0].1.clone()
}

/// Each delivery attempt is counted, with its audit record naming its actor; a failed one
/// is due again at the time it names, a sent one never again (and is not counted again, nor
/// audited).
pub fn outbox_attempts_are_counted(store: &dyn Store) {
    let pre = invited(store);
    let due = store.outbox_due(t0(0), 10).unwrap();
    assert_eq!(due.len(), 1, "one access password to send");
    let m = &due[0];
    assert_eq!(
        (m.kind, m.subject_ref.as_str(), m.attempts),
        (OutboxKind::AccessPassword, pre.as_str(), 0)
    );
    let by = crate::Principal::System(crate::SystemTask::Outbox);
    let failed = |retry_at| OutboxAttempt::Failed {
        error: "connection refused".into(),
        retry_at,
    };
    let audited = audit_records(store);
    store
        .outbox_attempt(m.id, failed(t0(60)), &by, t0(0))
        .unwrap();
    assert!(store.outbox_due(t0(59), 10).unwrap().is_empty());
    let retry = store.outbox_due(t0(60), 10).unwrap();
    assert_eq!(retry.iter().map(|m| m.attempts).collect::<Vec<_>>(), [1]);
    store
        .outbox_attempt(m.id, failed(t0(180)), &by, t0(60))
        .unwrap();
    store
        .outbox_attempt(m.id, OutboxAttempt::Sent, &by, t0(180))
        .unwrap();
    assert!(store
        .outbox_due(crate::UnixTime::from_secs(i64::MAX), 10)
        .unwrap()
        .is_empty());
    assert_eq!(audit_records(store), audited + 3);
    store
        .outbox_attempt(m.id, OutboxAttempt::Sent, &by, t0(240))
        .unwrap();
    assert_eq!(
        audit_records(store),
        audited + 3,
        "a sent message is left alone"
    );
    let all = store.outbox().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].0.attempts, all[0].1), (3, OutboxStatus::Sent));
}

/// Wrong access passwords are counted up to the limit, which locks sign-in and starts the
/// count again; a good one resets the count and starts a session.
pub fn sign_in_failures_lock(store: &dyn Store) {
    let pre = invited(store);
    let failed = |at| {
        store.enrollment_write(EnrollmentWrite::SignInFailed {
            id: pre.clone(),
            max_failures: 3,
            lock_seconds: 1800,
            at,
        })
    };
    let outcomes: Vec<EnrollmentOutcome> = (1..=3).map(|i| failed(T0 + i).unwrap()).collect();
    assert_eq!(
        outcomes,
        [
            EnrollmentOutcome::Failures {
                count: 1,
                locked: false
            },
            EnrollmentOutcome::Failures {
                count: 2,
                locked: false
            },
            EnrollmentOutcome::Failures {
                count: 3,
                locked: true
            },
        ]
    );
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!(
        (e.failed_sign_ins, e.locked_until),
        (0, Some(T0 + 3 + 1800))
    );
    failed(T0 + 4).unwrap();
    store
        .enrollment_write(EnrollmentWrite::SignedIn {
            id: pre.clone(),
            token_sha256: "cd".repeat(32),
            expires_at: T0 + 3600,
            at: T0 + 5,
        })
        .unwrap();
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!((e.failed_sign_ins, e.locked_until), (0, None));
    assert_eq!(
        store.applicant_session(&"cd".repeat(32)).unwrap(),
        Some((pre.clone(), T0 + 3600))
    );
    assert!(store
        .enrollment_write(EnrollmentWrite::SignInFailed {
            id: "pa-unknown".into(),
            max_failures: 3,
            lock_seconds: 1800,
            at: T0,
        })
        .is_err());
}

/// SMS codes are counted up to the limit (the form's and every resend), after which one
/// more is refused with nothing written; wrong codes are counted up to theirs, which voids
/// the code.
pub fn sms_code_counters(store: &dyn Store) {
    let pre = invited(store);
    store
        .enrollment_write(EnrollmentWrite::SignedIn {
            id: pre.clone(),
            token_sha256: "cd".repeat(32),
            expires_at: T0 + 3600,
            at: T0,
        })
        .unwrap();
    store
        .enrollment_write(EnrollmentWrite::Form {
            id: pre.clone(),
            security_word_hash: "$argon2id$word".into(),
            do_not_publish: false,
            delivery_address: "Ankara".into(),
            mobile: "+905321234567".into(),
            max_codes: 3,
            at: T0 + 1,
        })
        .unwrap();
    let resend = |at| {
        store.enrollment_write(EnrollmentWrite::ResendCode {
            id: pre.clone(),
            mobile: "+905321234567".into(),
            max_codes: 3,
            at,
        })
    };
    resend(T0 + 2).unwrap();
    resend(T0 + 3).unwrap();
    let records = audit_records(store);
    assert!(resend(T0 + 4).is_err(), "three codes is the limit");
    assert_eq!(audit_records(store), records);
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!((e.stage, e.sms_codes_sent), (EnrollmentStage::Form, 3));
    let codes = store
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|(m, _)| m.kind == OutboxKind::SmsCode && m.subject_ref == pre)
        .count();
    assert_eq!(codes, 3);

    store
        .enrollment_write(EnrollmentWrite::CodeIssued {
            id: pre.clone(),
            code_hash: "$argon2id$code".into(),
            expires_at: T0 + 600,
            at: T0 + 5,
        })
        .unwrap();
    let wrong = |at| {
        store.enrollment_write(EnrollmentWrite::CodeFailed {
            id: pre.clone(),
            max_failures: 2,
            at,
        })
    };
    assert_eq!(
        wrong(T0 + 6).unwrap(),
        EnrollmentOutcome::Failures {
            count: 1,
            locked: false
        }
    );
    assert_eq!(
        wrong(T0 + 7).unwrap(),
        EnrollmentOutcome::Failures {
            count: 2,
            locked: true
        }
    );
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!(
        (e.sms_code_failures, e.sms_code_hash, e.sms_code_expires),
        (2, None, None)
    );
    store
        .enrollment_write(EnrollmentWrite::CodeConfirmed {
            id: pre.clone(),
            at: T0 + 8,
        })
        .unwrap();
    assert!(wrong(T0 + 9).is_err(), "no code awaits confirmation");
    assert_eq!(
        store.enrollment(&pre).unwrap().unwrap().stage,
        EnrollmentStage::Confirmed
    );
}
