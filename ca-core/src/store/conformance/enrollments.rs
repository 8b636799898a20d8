//! The enrollment's writes: each carries the stage it saw (`from`) and, when it queues an SMS
//! code, the codes sent it saw; the store applies it only while the enrollment is still so,
//! and refuses it as a conflict with nothing written (no audit record either) otherwise. Which
//! step may follow which is the registration authority's stage machine
//! (`ra::enrollment::stage`), not the store's. Also: renewals held by `produce_after`,
//! production with its invoice line, and the public lookup's candidates with their holders'
//! "do not publish" choice.

use super::counters::invited;
use super::{audit_records, issuer, reservation, T0};
use crate::institution::Payer;
use crate::serial::Serial;
use crate::store::{
    ApplicationIssued, ApprovalMethod, CertStatus, Completion, EnrollmentRecord, EnrollmentStage,
    EnrollmentWrite, FinishedApplication, InvoicePayer, LookupKey, ProducedEnrollment, Reserved,
    Store,
};
use crate::{Principal, UnixTime};

/// `n` seconds after [`T0`].
pub(super) fn at(n: i64) -> UnixTime {
    UnixTime::from_secs(T0 + n)
}

/// The applicant of `id`.
pub(super) fn applicant(id: &str) -> Principal {
    Principal::Applicant {
        pre_application: id.into(),
    }
}

/// The form, from `from` with `expect_codes_sent` codes sent so far.
pub(super) fn form(
    id: &str,
    from: EnrollmentStage,
    expect_codes_sent: u32,
    do_not_publish: bool,
    when: UnixTime,
) -> EnrollmentWrite {
    EnrollmentWrite::Form {
        id: id.into(),
        from,
        expect_codes_sent,
        security_word_hash: "$argon2id$word".into(),
        do_not_publish,
        delivery_address: "Ankara".into(),
        mobile: "+905551112233".into(),
        actor: applicant(id),
        at: when,
    }
}

/// The confirmation of the code [`issue_code`] stores, with no wrong try counted.
fn confirm(id: &str, from: EnrollmentStage, when: UnixTime) -> EnrollmentWrite {
    EnrollmentWrite::CodeConfirmed {
        id: id.into(),
        from,
        code_hash: "$argon2id$code".into(),
        actor: applicant(id),
        at: when,
    }
}

/// Stores the hash of the code the outbox is about to send (the enrollment is at Form).
fn issue_code(store: &dyn Store, id: &str, when: UnixTime) {
    store
        .enrollment_write(EnrollmentWrite::CodeIssued {
            id: id.into(),
            from: EnrollmentStage::Form,
            code_hash: "$argon2id$code".into(),
            expires_at: when.plus_secs(600),
            actor: Principal::System(crate::SystemTask::Outbox),
            at: when,
        })
        .unwrap();
}

fn approve(
    id: &str,
    from: EnrollmentStage,
    method: ApprovalMethod,
    produce_after: Option<UnixTime>,
    when: UnixTime,
) -> EnrollmentWrite {
    EnrollmentWrite::Approve {
        id: id.into(),
        from,
        // What `await_wet` printed, when the approval follows it.
        expect_printed_sha256: (from == EnrollmentStage::AwaitingWet).then(|| "11".repeat(32)),
        method,
        text_sha256: "11".repeat(32),
        evidence: vec![0x30, 0x00],
        produce_after,
        actor: Principal::HostOperator,
        at: when,
    }
}

fn await_wet(id: &str, from: EnrollmentStage, when: UnixTime) -> EnrollmentWrite {
    EnrollmentWrite::AwaitWet {
        id: id.into(),
        from,
        text_sha256: "11".repeat(32),
        actor: applicant(id),
        at: when,
    }
}

/// A sign-in of `pre` from `source` at `when`, that read no lock (session token `cd…`).
pub(super) fn sign_in(
    pre: &str,
    source: crate::store::SignInSource,
    when: UnixTime,
) -> EnrollmentWrite {
    EnrollmentWrite::SignedIn {
        id: pre.to_owned(),
        source,
        expect_locked_until: None,
        token_sha256: "cd".repeat(32),
        expires_at: at(3600),
        actor: applicant(pre),
        at: when,
    }
}

/// The invited person signs in: the enrollment starts at Invited.
pub(super) fn signed_in(store: &dyn Store) -> String {
    let pre = invited(store);
    store
        .enrollment_write(sign_in(&pre, crate::store::SignInSource::unnamed(), at(0)))
        .unwrap();
    pre
}

fn enrollment(store: &dyn Store, id: &str) -> EnrollmentRecord {
    store.enrollment(id).unwrap().unwrap()
}

/// `w` is refused as a conflict on `field` and leaves the enrollment, the outbox and the
/// audit log as they were.
pub(super) fn refused(store: &dyn Store, id: &str, field: &str, w: EnrollmentWrite) {
    let before = (
        store.enrollment(id).unwrap(),
        store.outbox().unwrap().len(),
        audit_records(store),
    );
    match store.enrollment_write(w.clone()) {
        Err(crate::error::CaError::Conflict { field: f, .. }) if f == field => {}
        other => panic!("{w:?}: expected a conflict on {field}, got {other:?}"),
    }
    assert_eq!(
        (
            store.enrollment(id).unwrap(),
            store.outbox().unwrap().len(),
            audit_records(store)
        ),
        before
    );
}

/// Invited → Form → Confirmed → Approved as the registration authority drives it: each write
/// applies from the stage it names, and one that names a stage the enrollment is not at (it
/// moved meanwhile) is refused as a conflict. Which step may follow which is the RA's rule.
pub fn enrollment_writes_compare_the_stage(store: &dyn Store) {
    use EnrollmentStage as S;
    let pre = signed_in(store);
    assert_eq!(enrollment(store, &pre).stage, S::Invited);
    refused(store, &pre, "stage", confirm(&pre, S::Form, at(1)));
    refused(
        store,
        &pre,
        "stage",
        approve(&pre, S::Confirmed, ApprovalMethod::EOnay, None, at(1)),
    );
    refused(store, &pre, "stage", await_wet(&pre, S::Confirmed, at(1)));
    refused(store, &pre, "stage", form(&pre, S::Form, 0, false, at(1)));

    store
        .enrollment_write(form(&pre, S::Invited, 0, false, at(2)))
        .unwrap();
    // The form again, from Form.
    store
        .enrollment_write(form(&pre, S::Form, 1, true, at(3)))
        .unwrap();
    let e = enrollment(store, &pre);
    assert_eq!(
        (e.stage, e.do_not_publish, e.sms_codes_sent),
        (S::Form, true, 2)
    );

    issue_code(store, &pre, at(5));
    store
        .enrollment_write(confirm(&pre, S::Form, at(5)))
        .unwrap();
    let e = enrollment(store, &pre);
    assert_eq!((e.stage, e.confirmed_at), (S::Confirmed, Some(at(5))));
    refused(store, &pre, "stage", form(&pre, S::Form, 2, false, at(6)));
    refused(store, &pre, "stage", confirm(&pre, S::Form, at(6)));

    store
        .enrollment_write(approve(
            &pre,
            S::Confirmed,
            ApprovalMethod::Signature,
            None,
            at(7),
        ))
        .unwrap();
    let e = enrollment(store, &pre);
    assert_eq!(
        (e.stage, e.approval_method, e.approved_at),
        (S::Approved, Some(ApprovalMethod::Signature), Some(at(7)))
    );
    refused(
        store,
        &pre,
        "stage",
        approve(&pre, S::Confirmed, ApprovalMethod::Signature, None, at(8)),
    );
    assert_eq!(
        store
            .enrollments_due(at(8), 10)
            .unwrap()
            .iter()
            .map(|e| e.pre_application.clone())
            .collect::<Vec<_>>(),
        [pre]
    );
    // Writes to an enrollment that does not exist are conflicts too.
    match store.enrollment_write(confirm("pa-unknown", S::Form, at(9))) {
        Err(crate::error::CaError::Conflict { field: "stage", .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// Stale expectations: a write that saw a stage the enrollment has left, or a count of codes
/// sent that another code changed meanwhile, is a conflict; nothing is written, no audit
/// record, no SMS queued.
pub fn stale_enrollment_writes_are_conflicts(store: &dyn Store) {
    use EnrollmentStage as S;
    let pre = signed_in(store);
    store
        .enrollment_write(form(&pre, S::Invited, 0, false, at(1)))
        .unwrap();
    // Two resends that both saw one code sent: the first wins, the second is refused.
    let resend = |expect, when| EnrollmentWrite::ResendCode {
        id: pre.clone(),
        from: S::Form,
        expect_codes_sent: expect,
        mobile: "+905551112233".into(),
        actor: applicant(&pre),
        at: when,
    };
    store.enrollment_write(resend(1, at(2))).unwrap();
    refused(store, &pre, "sms_code", resend(1, at(3)));
    refused(store, &pre, "sms_code", form(&pre, S::Form, 1, true, at(3)));
    assert_eq!(enrollment(store, &pre).sms_codes_sent, 2);
    // A resend that saw the right count but a stage left meanwhile.
    issue_code(store, &pre, at(4));
    store
        .enrollment_write(confirm(&pre, S::Form, at(4)))
        .unwrap();
    refused(store, &pre, "stage", resend(2, at(5)));
    refused(
        store,
        &pre,
        "stage",
        EnrollmentWrite::CodeIssued {
            id: pre.clone(),
            from: S::Form,
            code_hash: "$argon2id$code".into(),
            expires_at: at(600),
            actor: Principal::System(crate::SystemTask::Outbox),
            at: at(5),
        },
    );
    refused(
        store,
        &pre,
        "stage",
        EnrollmentWrite::CodeAttempt {
            id: pre.clone(),
            from: S::Form,
            actor: applicant(&pre),
            at: at(5),
        },
    );
    refused(
        store,
        &pre,
        "stage",
        EnrollmentWrite::CardCsr {
            id: pre.clone(),
            from: S::Approved,
            csr_der: vec![0x30, 0x00],
            actor: Principal::HostOperator,
            at: at(5),
        },
    );
    refused(
        store,
        &pre,
        "stage",
        EnrollmentWrite::ProductionFailed {
            id: pre.clone(),
            from: S::Approved,
            error: "hsm".into(),
            actor: Principal::System(crate::SystemTask::Production),
            at: at(5),
        },
    );
    refused(
        store,
        &pre,
        "stage",
        EnrollmentWrite::PackageWritten {
            id: pre.clone(),
            from: S::Produced,
            actor: Principal::System(crate::SystemTask::Production),
            at: at(5),
        },
    );
}

/// Wet approval: Confirmed → AwaitingWet → Approved; a renewal approved with
/// `produce_after` is not due before it.
pub fn wet_approval_and_held_renewal(store: &dyn Store) {
    use EnrollmentStage as S;
    let pre = signed_in(store);
    store
        .enrollment_write(form(&pre, S::Invited, 0, false, at(1)))
        .unwrap();
    issue_code(store, &pre, at(2));
    store
        .enrollment_write(confirm(&pre, S::Form, at(2)))
        .unwrap();
    store
        .enrollment_write(await_wet(&pre, S::Confirmed, at(3)))
        .unwrap();
    let e = enrollment(store, &pre);
    assert_eq!(
        (e.stage, e.approval_method),
        (S::AwaitingWet, Some(ApprovalMethod::Wet))
    );
    assert_eq!(
        store.approval_evidence(&pre).unwrap(),
        None,
        "no evidence before the approval"
    );
    refused(
        store,
        &pre,
        "stage",
        approve(&pre, S::Confirmed, ApprovalMethod::Signature, None, at(4)),
    );
    // A form printed again since the approval read it (another text hash) is a conflict.
    let mut reprinted = approve(&pre, S::AwaitingWet, ApprovalMethod::Wet, None, at(4));
    if let EnrollmentWrite::Approve {
        expect_printed_sha256,
        ..
    } = &mut reprinted
    {
        *expect_printed_sha256 = Some("22".repeat(32));
    }
    refused(store, &pre, "approval_text", reprinted);
    let window = at(90 * 86_400);
    store
        .enrollment_write(approve(
            &pre,
            S::AwaitingWet,
            ApprovalMethod::Wet,
            Some(window),
            at(4),
        ))
        .unwrap();
    let e = enrollment(store, &pre);
    assert_eq!((e.stage, e.produce_after), (S::Approved, Some(window)));
    assert_eq!(
        store.approval_evidence(&pre).unwrap(),
        Some(vec![0x30, 0x00]),
        "the approval's evidence as written"
    );
    assert_eq!(store.approval_evidence("pa-none").unwrap(), None);
    assert!(store
        .enrollments_due(window.plus_secs(-1), 10)
        .unwrap()
        .is_empty());
    assert_eq!(store.enrollments_due(window, 10).unwrap().len(), 1);
}

/// Production: the certificate, the enrollment's Produced stage and the invoice line (by
/// month) are one transaction, applied only while the enrollment is at the stage the
/// production saw; the public lookup's candidates carry the holder's "do not publish".
pub fn production_writes_its_invoice_line(store: &dyn Store) {
    use EnrollmentStage as S;
    let nes = issuer();
    let pre = signed_in(store);
    store
        .enrollment_write(form(&pre, S::Invited, 0, true, at(1)))
        .unwrap();
    let op = Principal::HostOperator;
    let produce = |serial: Serial, channel_ref: &str| {
        store
            .begin_application(
                &super::channel("institution"),
                channel_ref,
                &op,
                super::t0(2),
            )
            .unwrap();
        assert_eq!(
            store
                .reserve(reservation(&nes, serial, "CN=AYŞE YILMAZ"))
                .unwrap(),
            Reserved::Ok
        );
        store.complete(
            &nes,
            &serial,
            vec![0x30, 0x01, 0x00],
            Completion {
                hold: false,
                application: Some(FinishedApplication {
                    channel: super::channel("institution"),
                    channel_ref: channel_ref.into(),
                    issued: ApplicationIssued::plain(serial),
                    production: Some(ProducedEnrollment {
                        pre_application: pre.clone(),
                        from: S::Approved,
                        institution: crate::institution::InstitutionId::parse("ankara-bb").unwrap(),
                        payer: InvoicePayer {
                            kind: Payer::Institution,
                            name: "Ankara BB".into(),
                            id: "1234567890".into(),
                        },
                        holder_tckn: crate::Tckn::parse("10000000146").unwrap(),
                        holder_name: "AYŞE YILMAZ".into(),
                        item: "NES 730 gün".into(),
                        month: "2026-11".into(),
                        attempt: 1,
                    }),
                }),
            },
            &op,
            super::t0(3),
        )
    };
    // Not at the stage the production saw (approved): a conflict, the certificate is not
    // stored, no invoice line.
    let early = Serial::random();
    match produce(early, &format!("{pre}.0")) {
        Err(crate::error::CaError::Conflict { field: "stage", .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(store
        .get(Some(&nes), &early)
        .unwrap()
        .unwrap()
        .cert_der
        .is_none());
    assert!(store
        .invoice_lines("ankara-bb", "2026-11")
        .unwrap()
        .is_empty());
    assert_eq!(enrollment(store, &pre).stage, S::Form);

    issue_code(store, &pre, at(2));
    store
        .enrollment_write(confirm(&pre, S::Form, at(2)))
        .unwrap();
    store
        .enrollment_write(approve(
            &pre,
            S::Confirmed,
            ApprovalMethod::Signature,
            None,
            at(2),
        ))
        .unwrap();
    let serial = Serial::random();
    produce(serial, &format!("{pre}.1")).unwrap();
    let e = enrollment(store, &pre);
    assert_eq!(
        (e.stage, e.serial, e.package_written, e.produced_at),
        (S::Produced, Some(serial), false, Some(at(3)))
    );
    let lines = store.invoice_lines("ankara-bb", "2026-11").unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (
            lines[0].serial,
            lines[0].produced.pre_application.as_str(),
            lines[0].produced.payer.kind,
            lines[0].produced_at
        ),
        (serial, pre.as_str(), Payer::Institution, at(3))
    );
    assert!(store
        .invoice_lines("ankara-bb", "2026-12")
        .unwrap()
        .is_empty());
    // Produced but its package not written: still due (for the package).
    assert_eq!(store.enrollments_due(at(4), 10).unwrap().len(), 1);
    store
        .enrollment_write(EnrollmentWrite::PackageWritten {
            id: pre.clone(),
            from: S::Produced,
            actor: Principal::System(crate::SystemTask::Production),
            at: at(5),
        })
        .unwrap();
    assert!(store.enrollments_due(at(5), 10).unwrap().is_empty());

    // The lookup's candidates: by serial and by holder, each with whether its holder agreed
    // (here they ticked "do not publish").
    let found = store.lookup_candidates(LookupKey::Serial(&serial)).unwrap();
    assert_eq!(
        found
            .iter()
            .map(|c| (c.serial, c.status, c.holder_agreed))
            .collect::<Vec<_>>(),
        [(serial, CertStatus::Active, false)]
    );
    assert!(store
        .lookup_candidates(LookupKey::Holder(
            &crate::Tckn::parse("10000000146").unwrap()
        ))
        .unwrap()
        .iter()
        .any(|c| c.serial == serial && !c.holder_agreed));
    let other = super::issue(store, &nes);
    assert_eq!(
        store
            .lookup_candidates(LookupKey::Serial(&other))
            .unwrap()
            .iter()
            .map(|c| (c.serial, c.holder_agreed))
            .collect::<Vec<_>>(),
        [(other, false)],
        "issued without an enrollment: nobody asked its holder"
    );
    // A serial whose signing failed has no certificate to show: no candidate.
    assert!(store
        .lookup_candidates(LookupKey::Serial(&early))
        .unwrap()
        .is_empty());
}

/// A person's live certificates for a renewal (`current_not_after`) are those
/// `lifecycle::is_live` calls live: active or suspended, `at` within notAfter inclusive.
pub fn current_not_after_selects_live_certificates(store: &dyn Store) {
    let nes = issuer();
    let person = crate::Tckn::parse("10000000146").unwrap();
    let end = super::t0(365 * 86_400);
    assert_eq!(
        store.current_not_after(&person, super::t0(0)).unwrap(),
        None
    );
    let serial = super::issue(store, &nes);
    assert_eq!(store.current_not_after(&person, end).unwrap(), Some(end));
    assert_eq!(
        store.current_not_after(&person, end.plus_secs(1)).unwrap(),
        None,
        "expired"
    );
    super::change(
        store,
        (&nes, &serial),
        "revoke-1",
        crate::lifecycle::LifecycleAction::Revoke {
            reason: None,
            invalidity_date: None,
        },
        super::t0(1),
    )
    .unwrap();
    assert_eq!(
        store.current_not_after(&person, super::t0(2)).unwrap(),
        None,
        "revoked"
    );
}
