//! The counters the store keeps atomically in its rows (`n = n + 1` inside the write's
//! transaction): outbox delivery attempts, failed sign-ins, SMS codes sent and wrong codes.
//! What a count means (a lock, a void code, a quota reached) is the registration authority's
//! to decide (`ra::enrollment::limits`).

use super::enrollments::{applicant, at, form, sign_in};
use super::{audit_records, t0, T0};
use crate::institution::{ListImport, ListSignature};
use crate::store::{
    EnrollmentOutcome, EnrollmentStage, EnrollmentWrite, ImportStatus, ListImportWrite,
    OutboxAttempt, OutboxKind, OutboxStatus, SignInSource, Store,
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
        held_limit: None,
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

/// The two sources of the sign-in tests: an applicant's address and a guesser's.
fn home() -> SignInSource {
    SignInSource::address("192.0.2.7".parse().unwrap())
}

fn guesser() -> SignInSource {
    SignInSource::address("2001:db8:1:2::66".parse().unwrap())
}

/// Sign-in attempts are counted per person and source, atomically: the store returns each
/// count (the source's and every source's) and decides nothing; a lock written by the
/// registration authority holds for its source only, is recorded with its time and starts
/// that source's count again; a sign-in resets its source's count and lock and the count from
/// every source, leaves another source's live lock, and starts a session, applied only while
/// its source's lock is what the sign-in read.
pub fn sign_in_failures_are_counted_and_compared(store: &dyn Store) {
    let pre = invited(store);
    let attempt = |source: SignInSource, n| {
        store.enrollment_write(EnrollmentWrite::SignInAttempt {
            id: pre.clone(),
            source,
            actor: applicant(&pre),
            at: at(n),
        })
    };
    let counts: Vec<EnrollmentOutcome> = (1..=6).map(|i| attempt(guesser(), i).unwrap()).collect();
    assert_eq!(
        counts,
        (1..=6)
            .map(|count| EnrollmentOutcome::AttemptCounted {
                count,
                locked_until: None,
                person_count: count,
            })
            .collect::<Vec<_>>(),
        "the store counts past any limit: the limit is not its to know"
    );
    assert_eq!(store.enrollment(&pre).unwrap().unwrap().locked_until, None);
    let records = audit_records(store);
    let lock = || {
        store.enrollment_write(EnrollmentWrite::LockSignIn {
            id: pre.clone(),
            source: guesser(),
            until: at(6 + 1800),
            actor: applicant(&pre),
            at: at(6),
        })
    };
    lock().unwrap();
    // Locking again (a second failure that saw the limit) is harmless.
    lock().unwrap();
    assert_eq!(audit_records(store), records + 2);
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!(
        (e.sign_in_attempts, e.locked_until),
        (6, Some(at(6 + 1800))),
        "the lock is the source's; the count from every source goes on"
    );
    // While the lock lasts an attempt from the locked source is not counted, and sees the
    // lock; from its end on, attempts count again from zero.
    let lock_seen = EnrollmentOutcome::AttemptCounted {
        count: 0,
        locked_until: Some(at(6 + 1800)),
        person_count: 6,
    };
    assert_eq!(attempt(guesser(), 7).unwrap(), lock_seen);
    assert_eq!(attempt(guesser(), 6 + 1799).unwrap(), lock_seen);
    // Another source is not locked: its attempt counts from one.
    assert_eq!(
        attempt(home(), 7).unwrap(),
        EnrollmentOutcome::AttemptCounted {
            count: 1,
            locked_until: None,
            person_count: 7,
        }
    );
    let signed_in = |source, expect_locked_until, token: &str| EnrollmentWrite::SignedIn {
        id: pre.clone(),
        source,
        expect_locked_until,
        token_sha256: token.repeat(32),
        expires_at: at(3600),
        actor: applicant(&pre),
        at: at(8),
    };
    // A sign-in that read no lock, when one was set since: refused, so a correct password
    // racing the lock never signs in.
    let records = audit_records(store);
    match store.enrollment_write(signed_in(guesser(), None, "cd")) {
        Err(crate::CaError::Conflict { field, .. }) => assert_eq!(field, "sign_in"),
        other => panic!("a sign-in that missed the lock must be a conflict, got {other:?}"),
    }
    assert_eq!(
        audit_records(store),
        records,
        "a refused sign-in writes no audit record"
    );
    assert_eq!(store.applicant_session(&"cd".repeat(32)).unwrap(), None);
    // The person signs in from home while the guesser's lock lasts: the lock stays.
    store
        .enrollment_write(signed_in(home(), None, "cd"))
        .unwrap();
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!(
        (e.sign_in_attempts, e.locked_until),
        (0, Some(at(6 + 1800)))
    );
    assert_eq!(
        store.applicant_session(&"cd".repeat(32)).unwrap(),
        Some((pre.clone(), at(3600)))
    );
    assert_eq!(
        attempt(guesser(), 9).unwrap(),
        EnrollmentOutcome::AttemptCounted {
            count: 0,
            locked_until: Some(at(6 + 1800)),
            person_count: 0,
        }
    );
    // After the lock's end the guesser counts again; its sign-in clears its lock.
    assert_eq!(
        attempt(guesser(), 6 + 1800).unwrap(),
        EnrollmentOutcome::AttemptCounted {
            count: 1,
            locked_until: Some(at(6 + 1800)),
            person_count: 1,
        }
    );
    store
        .enrollment_write(signed_in(guesser(), Some(at(6 + 1800)), "ef"))
        .unwrap();
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!((e.sign_in_attempts, e.locked_until), (0, None));
    // An ended lock is no lock: a sign-in that read it (or read none, its row deleted by
    // another sign-in meanwhile) lands.
    store
        .enrollment_write(EnrollmentWrite::LockSignIn {
            id: pre.clone(),
            source: home(),
            until: at(20),
            actor: applicant(&pre),
            at: at(10),
        })
        .unwrap();
    store
        .enrollment_write(EnrollmentWrite::SignedIn {
            id: pre.clone(),
            source: home(),
            expect_locked_until: None,
            token_sha256: "ab".repeat(32),
            expires_at: at(3600),
            actor: applicant(&pre),
            at: at(21),
        })
        .unwrap();
    assert!(store
        .enrollment_write(EnrollmentWrite::SignInAttempt {
            id: "pa-unknown".into(),
            source: home(),
            actor: applicant("pa-unknown"),
            at: at(0),
        })
        .is_err());
}

/// Attempts from one source, whoever they name, are counted in windows: a window that ended
/// starts a new count; a sign-in gives its source's attempt back; sources are counted apart.
pub fn source_attempts_are_counted_in_windows(store: &dyn Store) {
    let pre = invited(store);
    let attempt = |source: SignInSource, n| match store
        .enrollment_write(EnrollmentWrite::SourceAttempt {
            source,
            window_seconds: 100,
            at: at(n),
        })
        .unwrap()
    {
        EnrollmentOutcome::Counted { count } => count,
        other => panic!("expected a count, got {other:?}"),
    };
    let records = audit_records(store);
    assert_eq!(
        [attempt(home(), 0), attempt(home(), 50), attempt(home(), 99)],
        [1, 2, 3]
    );
    assert_eq!(attempt(guesser(), 99), 1, "another source counts apart");
    assert_eq!(
        audit_records(store),
        records,
        "a rate count decides nothing about a person"
    );
    store
        .enrollment_write(sign_in(&pre, home(), at(99)))
        .unwrap();
    assert_eq!(attempt(home(), 99), 3, "the sign-in gave its attempt back");
    assert_eq!(
        attempt(home(), 100),
        1,
        "the window that began at 0 ended at 100"
    );
    assert_eq!(attempt(guesser(), 150), 2);
    assert_eq!(
        attempt(guesser(), 199),
        1,
        "the guesser's window began at 99"
    );
}

/// Failures counted at the same time each get their own count: no two see the same number,
/// so exactly one sees any threshold the registration authority applies.
pub fn failure_counters_are_atomic(store: &dyn Store) {
    const THREADS: u32 = 8;
    let pre = invited(store);
    let counted = |w: &(dyn Fn(i64) -> EnrollmentWrite + Sync)| {
        let mut counts: Vec<u32> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|i| s.spawn(move || store.enrollment_write(w(i64::from(i))).unwrap()))
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join().unwrap() {
                    EnrollmentOutcome::Counted { count }
                    | EnrollmentOutcome::AttemptCounted { count, .. } => count,
                    other => panic!("expected a count, got {other:?}"),
                })
                .collect()
        });
        counts.sort_unstable();
        counts
    };
    let all: Vec<u32> = (1..=THREADS).collect();
    assert_eq!(
        counted(&|n| EnrollmentWrite::SignInAttempt {
            id: pre.clone(),
            source: home(),
            actor: applicant(&pre),
            at: at(n),
        }),
        all
    );
    store
        .enrollment_write(form(&pre, EnrollmentStage::Invited, 0, false, at(10)))
        .unwrap();
    assert_eq!(
        counted(&|n| EnrollmentWrite::CodeAttempt {
            id: pre.clone(),
            from: EnrollmentStage::Form,
            actor: applicant(&pre),
            at: at(20 + n),
        }),
        all
    );
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!((e.sign_in_attempts, e.sms_code_tries), (THREADS, THREADS));
}

/// SMS codes sent are counted by the writes that queue them, each expecting the count it saw
/// (the form's and every resend); wrong codes are counted, and a code is void once the
/// registration authority says so — only the code it saw, and voiding one that is already
/// void or replaced changes nothing.
pub fn sms_code_counters(store: &dyn Store) {
    use EnrollmentStage as S;
    let pre = invited(store);
    store
        .enrollment_write(sign_in(&pre, home(), at(0)))
        .unwrap();
    store
        .enrollment_write(form(&pre, S::Invited, 0, false, at(1)))
        .unwrap();
    let resend = |expect, n| {
        store.enrollment_write(EnrollmentWrite::ResendCode {
            id: pre.clone(),
            from: S::Form,
            expect_codes_sent: expect,
            mobile: "+905321234567".into(),
            actor: applicant(&pre),
            at: at(n),
        })
    };
    resend(1, 2).unwrap();
    resend(2, 3).unwrap();
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!((e.stage, e.sms_codes_sent), (S::Form, 3));
    let codes = store
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|(m, _)| m.kind == OutboxKind::SmsCode && m.subject_ref == pre)
        .count();
    assert_eq!(codes, 3);

    let issue = |hash: &str, n| {
        store.enrollment_write(EnrollmentWrite::CodeIssued {
            id: pre.clone(),
            from: S::Form,
            code_hash: hash.into(),
            expires_at: at(n + 600),
            actor: crate::Principal::System(crate::SystemTask::Outbox),
            at: at(n),
        })
    };
    issue("$argon2id$code", 5).unwrap();
    let wrong = |n| {
        store.enrollment_write(EnrollmentWrite::CodeAttempt {
            id: pre.clone(),
            from: S::Form,
            actor: applicant(&pre),
            at: at(n),
        })
    };
    assert_eq!(wrong(6).unwrap(), EnrollmentOutcome::Counted { count: 1 });
    assert_eq!(wrong(7).unwrap(), EnrollmentOutcome::Counted { count: 2 });
    let void = |hash: &str| {
        store.enrollment_write(EnrollmentWrite::VoidCode {
            id: pre.clone(),
            code_hash: hash.into(),
            actor: applicant(&pre),
            at: at(8),
        })
    };
    // Another code than the one stored: nothing is voided, nothing recorded.
    let records = audit_records(store);
    void("$argon2id$other").unwrap();
    assert_eq!(audit_records(store), records);
    assert!(store
        .enrollment(&pre)
        .unwrap()
        .unwrap()
        .sms_code_hash
        .is_some());
    void("$argon2id$code").unwrap();
    void("$argon2id$code").unwrap();
    assert_eq!(audit_records(store), records + 1);
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!(
        (e.sms_code_tries, e.sms_code_hash, e.sms_code_expires),
        (2, None, None)
    );
    // A new code starts its count again.
    resend(3, 9).unwrap();
    issue("$argon2id$code2", 10).unwrap();
    let e = store.enrollment(&pre).unwrap().unwrap();
    assert_eq!(
        (
            e.sms_codes_sent,
            e.sms_code_tries,
            e.sms_code_hash.as_deref()
        ),
        (4, 0, Some("$argon2id$code2"))
    );
    // A confirmation that checked a code replaced (or voided) meanwhile: refused, nothing
    // written.
    let confirm = |code: &str| {
        store.enrollment_write(EnrollmentWrite::CodeConfirmed {
            id: pre.clone(),
            from: S::Form,
            code_hash: code.into(),
            actor: applicant(&pre),
            at: at(11),
        })
    };
    let records = audit_records(store);
    match confirm("$argon2id$code") {
        Err(crate::CaError::Conflict { field, .. }) => assert_eq!(field, "sms_code"),
        other => panic!("a stale confirmation must be a conflict, got {other:?}"),
    }
    assert_eq!(audit_records(store), records);
    assert_eq!(store.enrollment(&pre).unwrap().unwrap().stage, S::Form);
    confirm("$argon2id$code2").unwrap();
    assert!(wrong(12).is_err(), "no code awaits confirmation");
    assert_eq!(store.enrollment(&pre).unwrap().unwrap().stage, S::Confirmed);
}
