//! The enrollment stage machine: Invited → Form → code confirmed → Approved (or AwaitWet →
//! Approved) → Produced; out-of-order steps are refused with nothing written; renewals held
//! by `produce_after`; production writes its invoice line; the "do not publish" filter.

use super::counters::invited;
use super::{audit_records, issuer, reservation, T0};
use crate::serial::Serial;
use crate::store::{
    ApplicationIssued, ApprovalMethod, Completion, EnrollmentRecord, EnrollmentStage,
    EnrollmentWrite, FinishedApplication, InvoicePayer, ProducedEnrollment, Reserved, Store,
};

fn form(id: &str, do_not_publish: bool, at: i64) -> EnrollmentWrite {
    EnrollmentWrite::Form {
        id: id.into(),
        security_word_hash: "$argon2id$word".into(),
        do_not_publish,
        delivery_address: "Ankara".into(),
        mobile: "+905551112233".into(),
        max_codes: 3,
        at,
    }
}

fn approve(
    id: &str,
    method: ApprovalMethod,
    produce_after: Option<i64>,
    at: i64,
) -> EnrollmentWrite {
    EnrollmentWrite::Approve {
        id: id.into(),
        method,
        text_sha256: "11".repeat(32),
        evidence: vec![0x30, 0x00],
        produce_after,
        actor: crate::Principal::HostOperator,
        at,
    }
}

/// The invited person signs in: the enrollment starts at Invited.
fn signed_in(store: &dyn Store) -> String {
    let pre = invited(store);
    store
        .enrollment_write(EnrollmentWrite::SignedIn {
            id: pre.clone(),
            token_sha256: "cd".repeat(32),
            expires_at: T0 + 3600,
            at: T0,
        })
        .unwrap();
    pre
}

fn enrollment(store: &dyn Store, id: &str) -> EnrollmentRecord {
    store.enrollment(id).unwrap().unwrap()
}

/// `w` is refused as a conflict (out of order) and leaves the enrollment and the audit log as they were.
fn refused(store: &dyn Store, id: &str, w: EnrollmentWrite) {
    let before = (store.enrollment(id).unwrap(), audit_records(store));
    match store.enrollment_write(w.clone()) {
        Err(crate::error::CaError::Conflict { .. }) => {}
        other => panic!("{w:?}: expected a conflict, got {other:?}"),
    }
    assert_eq!(
        (store.enrollment(id).unwrap(), audit_records(store)),
        before
    );
}

/// Invited → Form → Confirmed → Approved, each step only from the stage before it.
pub fn enrollment_stages_follow_their_order(store: &dyn Store) {
    let pre = signed_in(store);
    assert_eq!(enrollment(store, &pre).stage, EnrollmentStage::Invited);
    refused(
        store,
        &pre,
        EnrollmentWrite::CodeConfirmed {
            id: pre.clone(),
            at: T0 + 1,
        },
    );
    refused(
        store,
        &pre,
        approve(&pre, ApprovalMethod::EOnay, None, T0 + 1),
    );
    refused(
        store,
        &pre,
        EnrollmentWrite::AwaitWet {
            id: pre.clone(),
            text_sha256: "11".repeat(32),
            at: T0 + 1,
        },
    );

    store.enrollment_write(form(&pre, false, T0 + 2)).unwrap();
    // The form again, while unconfirmed, is accepted.
    store.enrollment_write(form(&pre, true, T0 + 3)).unwrap();
    let e = enrollment(store, &pre);
    assert_eq!((e.stage, e.do_not_publish), (EnrollmentStage::Form, true));
    refused(
        store,
        &pre,
        approve(&pre, ApprovalMethod::Signature, None, T0 + 4),
    );

    store
        .enrollment_write(EnrollmentWrite::CodeConfirmed {
            id: pre.clone(),
            at: T0 + 5,
        })
        .unwrap();
    let e = enrollment(store, &pre);
    assert_eq!(
        (e.stage, e.confirmed_at),
        (EnrollmentStage::Confirmed, Some(T0 + 5))
    );
    // Confirmed: the form is closed, a code is not confirmed twice, a wet approval needs
    // the wet form chosen first.
    refused(store, &pre, form(&pre, false, T0 + 6));
    refused(
        store,
        &pre,
        EnrollmentWrite::CodeConfirmed {
            id: pre.clone(),
            at: T0 + 6,
        },
    );
    refused(
        store,
        &pre,
        approve(&pre, ApprovalMethod::Wet, None, T0 + 6),
    );

    store
        .enrollment_write(approve(&pre, ApprovalMethod::Signature, None, T0 + 7))
        .unwrap();
    let e = enrollment(store, &pre);
    assert_eq!(
        (e.stage, e.approval_method, e.approved_at),
        (
            EnrollmentStage::Approved,
            Some(ApprovalMethod::Signature),
            Some(T0 + 7)
        )
    );
    refused(
        store,
        &pre,
        approve(&pre, ApprovalMethod::Signature, None, T0 + 8),
    );
    assert_eq!(
        store
            .enrollments_due(T0 + 8, 10)
            .unwrap()
            .iter()
            .map(|e| e.pre_application.clone())
            .collect::<Vec<_>>(),
        [pre]
    );
}

/// Wet approval: Confirmed → AwaitingWet → Approved (wet only); a renewal approved with
/// `produce_after` is not due before it.
pub fn wet_approval_and_held_renewal(store: &dyn Store) {
    let pre = signed_in(store);
    store.enrollment_write(form(&pre, false, T0 + 1)).unwrap();
    store
        .enrollment_write(EnrollmentWrite::CodeConfirmed {
            id: pre.clone(),
            at: T0 + 2,
        })
        .unwrap();
    store
        .enrollment_write(EnrollmentWrite::AwaitWet {
            id: pre.clone(),
            text_sha256: "11".repeat(32),
            at: T0 + 3,
        })
        .unwrap();
    assert_eq!(enrollment(store, &pre).stage, EnrollmentStage::AwaitingWet);
    refused(
        store,
        &pre,
        approve(&pre, ApprovalMethod::Signature, None, T0 + 4),
    );
    let window = T0 + 90 * 86_400;
    store
        .enrollment_write(approve(&pre, ApprovalMethod::Wet, Some(window), T0 + 4))
        .unwrap();
    let e = enrollment(store, &pre);
    assert_eq!(
        (e.stage, e.produce_after),
        (EnrollmentStage::Approved, Some(window))
    );
    assert!(store.enrollments_due(window - 1, 10).unwrap().is_empty());
    assert_eq!(store.enrollments_due(window, 10).unwrap().len(), 1);
}

/// Production: only an approved enrollment is produced; the certificate, the enrollment's
/// Produced stage and the invoice line (by month) are one transaction; "do not publish"
/// keeps the certificate out of the public lookup.
pub fn production_writes_its_invoice_line(store: &dyn Store) {
    let nes = issuer();
    let pre = signed_in(store);
    store.enrollment_write(form(&pre, true, T0 + 1)).unwrap();
    let op = crate::Principal::HostOperator;
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
                    channel: "institution".into(),
                    channel_ref: channel_ref.into(),
                    issued: ApplicationIssued::plain(serial),
                    production: Some(ProducedEnrollment {
                        pre_application: pre.clone(),
                        institution: "ankara-bb".into(),
                        payer: InvoicePayer {
                            kind: "institution".into(),
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
    // Not approved yet: refused, the certificate is not stored, no invoice line.
    let early = Serial::random();
    assert!(produce(early, &format!("{pre}.0")).is_err());
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

    store
        .enrollment_write(EnrollmentWrite::CodeConfirmed {
            id: pre.clone(),
            at: T0 + 2,
        })
        .unwrap();
    store
        .enrollment_write(approve(&pre, ApprovalMethod::Signature, None, T0 + 2))
        .unwrap();
    let serial = Serial::random();
    produce(serial, &format!("{pre}.1")).unwrap();
    let e = enrollment(store, &pre);
    assert_eq!(
        (e.stage, e.serial, e.package_written),
        (EnrollmentStage::Produced, Some(serial), false)
    );
    let lines = store.invoice_lines("ankara-bb", "2026-11").unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0].serial, lines[0].produced.pre_application.as_str()),
        (serial, pre.as_str())
    );
    assert!(store
        .invoice_lines("ankara-bb", "2026-12")
        .unwrap()
        .is_empty());
    // Produced but its package not written: still due (for the package).
    assert_eq!(store.enrollments_due(T0 + 4, 10).unwrap().len(), 1);
    store
        .enrollment_write(EnrollmentWrite::PackageWritten {
            id: pre.clone(),
            at: T0 + 5,
        })
        .unwrap();
    assert!(store.enrollments_due(T0 + 5, 10).unwrap().is_empty());

    // "Do not publish": left out of the lookup, by serial and by holder.
    assert!(store
        .published_certificates(Some(&serial), None)
        .unwrap()
        .is_empty());
    assert!(store
        .published_certificates(None, Some(&crate::Tckn::parse("10000000146").unwrap()))
        .unwrap()
        .iter()
        .all(|c| c.serial != serial));
    let other = super::issue(store, &nes);
    assert_eq!(
        store
            .published_certificates(Some(&other), None)
            .unwrap()
            .iter()
            .map(|c| c.serial)
            .collect::<Vec<_>>(),
        [other]
    );
}
