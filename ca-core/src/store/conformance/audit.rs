//! The audit record in the same transaction as its change: a refused write leaves none, and
//! the chain holds after a series of writes.

use super::{add_issuing_ca, audit_records, change, channel, issue, issuer, reservation, t0};
use crate::lifecycle::LifecycleAction;
use crate::partner::{PartnerId, PartnerRecord};
use crate::serial::Serial;
use crate::store::{
    ApplicationIssued, CaRecord, CaRole, Completion, CrlKind, CrlReservation, Store,
};

/// Every refused write leaves the audit log as it was: no record without its change.
pub fn refused_writes_leave_no_audit_record(store: &dyn Store) {
    let nes = issuer();
    add_issuing_ca(store, &nes);
    let serial = issue(store, &nes);
    let before = audit_records(store);
    let unreserved = Serial::random();
    let refusals = [
        (
            "complete an unreserved serial",
            store
                .complete(
                    &nes,
                    &unreserved,
                    vec![0x30, 0x00],
                    Completion::default(),
                    &crate::Principal::HostOperator,
                    t0(0),
                )
                .is_err(),
        ),
        (
            "add a CA that exists",
            store
                .add_ca(
                    CaRecord {
                        id: nes.clone(),
                        role: CaRole::Root,
                        key_label: "other".into(),
                        cert_der: vec![0x30, 0x00],
                        ocsp_key_label: None,
                        ocsp_cert_der: None,
                        supersedes: None,
                    },
                    &crate::Principal::HostOperator,
                    t0(0),
                )
                .is_err(),
        ),
        (
            "release an active certificate",
            change(
                store,
                (&nes, &serial),
                "rel-1",
                LifecycleAction::Release,
                t0(0),
            )
            .is_err(),
        ),
        (
            "change an unknown serial",
            change(
                store,
                (&nes, &unreserved),
                "sus-1",
                LifecycleAction::Suspend,
                t0(0),
            )
            .is_err(),
        ),
        (
            "publish an unreserved CRL number",
            store
                .publish_crl(&nes, 99, 0, 0, &crate::Principal::HostOperator, t0(0))
                .is_err(),
        ),
        (
            "a delta CRL without a full one",
            store
                .reserve_crl(CrlReservation {
                    issuer: nes.clone(),
                    kind: CrlKind::Delta,
                    this_update: t0(0),
                    next_update: t0(3600),
                    actor: crate::Principal::HostOperator,
                    at: t0(0),
                })
                .is_err(),
        ),
        (
            "finish an application never begun",
            store
                .finish_application(
                    &channel("kdhs"),
                    "never-begun",
                    crate::store::ApplicationOutcome::Issued(ApplicationIssued::plain(serial)),
                    &crate::Principal::HostOperator,
                    t0(0),
                )
                .is_err(),
        ),
        (
            "deactivate an unknown partner",
            store
                .deactivate_partner(
                    &PartnerId::parse("no-such").unwrap(),
                    &crate::Principal::HostOperator,
                    t0(0),
                )
                .is_err(),
        ),
        (
            "access password of an unknown pre-application",
            store
                .set_access_password(
                    "pa-none",
                    "$argon2id$x",
                    &crate::Principal::HostOperator,
                    t0(0),
                )
                .is_err(),
        ),
    ];
    for (what, refused) in refusals {
        assert!(refused, "{what} must be refused");
        assert_eq!(audit_records(store), before, "{what} left an audit record");
    }
    assert!(store.get(None, &unreserved).unwrap().is_none());
}

/// Each accepted write appends exactly its audit record, and the chain verifies after all
/// of them.
pub fn audit_chain_holds_after_writes(store: &dyn Store) {
    assert_eq!(audit_records(store), 0);
    let nes = issuer();
    let mut expected = 0;
    let mut step = |what: &str, store: &dyn Store| {
        expected += 1;
        assert_eq!(audit_records(store), expected, "after {what}");
    };
    add_issuing_ca(store, &nes);
    step("add_ca", store);
    let serial = Serial::random();
    store
        .reserve(reservation(&nes, serial, "CN=AYŞE YILMAZ"))
        .unwrap();
    step("reserve", store);
    store
        .complete(
            &nes,
            &serial,
            vec![0x30, 0x00],
            Completion::default(),
            &crate::Principal::HostOperator,
            t0(0),
        )
        .unwrap();
    step("complete", store);
    change(
        store,
        (&nes, &serial),
        "s-1",
        LifecycleAction::Suspend,
        t0(1),
    )
    .unwrap();
    step("transition", store);
    let plan = store
        .reserve_crl(CrlReservation {
            issuer: nes.clone(),
            kind: CrlKind::Full,
            this_update: t0(2),
            next_update: t0(3600),
            actor: crate::Principal::HostOperator,
            at: t0(2),
        })
        .unwrap();
    step("reserve_crl", store);
    store
        .publish_crl(
            &nes,
            plan.number,
            4,
            1,
            &crate::Principal::HostOperator,
            t0(2),
        )
        .unwrap();
    step("publish_crl", store);
    assert_eq!(
        store
            .begin_application(
                &channel("kdhs"),
                "ref-1",
                &crate::Principal::HostOperator,
                t0(3)
            )
            .unwrap(),
        None
    );
    step("begin_application", store);
    store
        .add_partner(
            PartnerRecord {
                id: PartnerId::parse("eshs-a").unwrap(),
                name: "Örnek ESHS A.Ş.".into(),
                license_no: "BTK-2024-17".into(),
                created_at: t0(0),
                active: true,
            },
            &crate::Principal::HostOperator,
            t0(4),
        )
        .unwrap();
    step("add_partner", store);
    let report = store.verify_audit().unwrap();
    assert_eq!((report.records, report.first_break), (expected, None));
}
