//! Certificates: serial uniqueness, reserve-before-sign, failed serials kept, lifecycle
//! transitions once per request id.

use super::{audit_records, change, issue, issuer, reservation, t0};
use crate::lifecycle::{LifecycleAction, RevocationReason};
use crate::serial::{IssuerId, Serial};
use crate::store::{CertStatus, Completion, Reserved, Store};

/// A serial is reserved once per issuer (RFC 5280 §4.1.2.2): a second reservation is
/// refused and keeps the first; another issuer may hold the same serial.
pub fn serial_is_unique_per_issuer(store: &dyn Store) {
    let nes = issuer();
    let serial = Serial::random();
    assert_eq!(
        store
            .reserve(reservation(&nes, serial, "CN=FIRST"))
            .unwrap(),
        Reserved::Ok
    );
    assert_eq!(
        store
            .reserve(reservation(&nes, serial, "CN=SECOND"))
            .unwrap(),
        Reserved::SerialTaken
    );
    let kept = store.get(Some(&nes), &serial).unwrap().unwrap();
    assert_eq!(
        (kept.status, kept.subject.subject.as_str()),
        (CertStatus::Reserved, "CN=FIRST")
    );
    let other = IssuerId::parse("other-ca").unwrap();
    assert_eq!(
        store
            .reserve(reservation(&other, serial, "CN=OTHER"))
            .unwrap(),
        Reserved::Ok
    );
    assert_eq!(store.list(Some(&nes)).unwrap().len(), 1);
    assert_eq!(store.list(None).unwrap().len(), 2);
    // Three reservations asked for, one refused: two audit records.
    assert_eq!(audit_records(store), 2);
}

/// A certificate is stored only under a reserved serial: completing an unreserved serial
/// (or one completed already) is refused and writes nothing.
pub fn complete_needs_a_reservation(store: &dyn Store) {
    let nes = issuer();
    let serial = Serial::random();
    let complete = || {
        store.complete(
            &nes,
            &serial,
            vec![0x30, 0x00],
            Completion::default(),
            &crate::Principal::HostOperator,
            t0(0),
        )
    };
    assert!(complete().is_err());
    assert!(store.get(None, &serial).unwrap().is_none());
    assert_eq!(audit_records(store), 0);

    store
        .reserve(reservation(&nes, serial, "CN=AYŞE YILMAZ"))
        .unwrap();
    complete().unwrap();
    let issued = store.get(None, &serial).unwrap().unwrap();
    assert_eq!(issued.status, CertStatus::Active);
    assert_eq!(issued.cert_der.as_deref(), Some(&[0x30, 0x00][..]));
    assert_eq!(issued.issued_at, Some(t0(0)));
    assert!(complete().is_err(), "a serial is completed once");
    assert_eq!(audit_records(store), 2);
}

/// A reservation whose signing failed stays on record as failed: its serial is never
/// reserved again, and no certificate is stored under it.
pub fn fail_keeps_the_serial(store: &dyn Store) {
    let nes = issuer();
    let serial = Serial::random();
    store
        .reserve(reservation(&nes, serial, "CN=AYŞE YILMAZ"))
        .unwrap();
    store
        .fail(
            &nes,
            &serial,
            "HSM unavailable",
            &crate::Principal::HostOperator,
            t0(0),
        )
        .unwrap();
    assert_eq!(
        store.get(Some(&nes), &serial).unwrap().unwrap().status,
        CertStatus::Failed
    );
    assert_eq!(
        store
            .reserve(reservation(&nes, serial, "CN=AYŞE YILMAZ"))
            .unwrap(),
        Reserved::SerialTaken
    );
    assert!(store
        .complete(
            &nes,
            &serial,
            vec![0x30, 0x00],
            Completion::default(),
            &crate::Principal::HostOperator,
            t0(0)
        )
        .is_err());
    assert_eq!(
        store.status(&nes, &serial).unwrap().map(|s| s.status),
        Some(CertStatus::Failed)
    );
    // A failed serial is not an issued one.
    assert!(store.serials(&nes, None, 10).unwrap().is_empty());
}

/// A lifecycle request id seen before answers with its first outcome and changes nothing;
/// the same id for a different request is refused.
pub fn replayed_transition_answers_its_first_outcome(store: &dyn Store) {
    let nes = issuer();
    let serial = issue(store, &nes);
    let first = change(
        store,
        (&nes, &serial),
        "req-1",
        LifecycleAction::Suspend,
        t0(10),
    )
    .unwrap();
    assert_eq!(
        (first.status, first.replayed, first.at),
        (CertStatus::Suspended, false, t0(10))
    );
    let again = change(
        store,
        (&nes, &serial),
        "req-1",
        LifecycleAction::Suspend,
        t0(20),
    )
    .unwrap();
    assert_eq!(
        (again.status, again.replayed, again.at),
        (CertStatus::Suspended, true, t0(10))
    );
    let records = audit_records(store);
    let revoke = LifecycleAction::Revoke {
        reason: Some(RevocationReason::KeyCompromise),
        invalidity_date: None,
    };
    assert!(change(store, (&nes, &serial), "req-1", revoke, t0(30)).is_err());
    assert_eq!(
        audit_records(store),
        records,
        "a refused request writes nothing"
    );
    assert_eq!(store.transitions(&nes, &serial).unwrap().len(), 1);
    let status = store.status(&nes, &serial).unwrap().unwrap();
    assert_eq!(status.status, CertStatus::Suspended);
    assert_eq!(status.revocation.map(|r| r.at), Some(t0(10)));
}

/// Transitions follow the state machine ([`crate::lifecycle::next_status`]): suspend,
/// release, revoke, and nothing after a revocation; each change moves the change cursor.
pub fn lifecycle_follows_the_state_machine(store: &dyn Store) {
    let nes = issuer();
    let serial = issue(store, &nes);
    let unknown = Serial::random();
    assert!(change(
        store,
        (&nes, &unknown),
        "u-1",
        LifecycleAction::Suspend,
        t0(0)
    )
    .is_err());

    let issued_at = store.latest_change().unwrap();
    assert!(issued_at > 0, "issuance is a status change");
    change(
        store,
        (&nes, &serial),
        "s-1",
        LifecycleAction::Suspend,
        t0(1),
    )
    .unwrap();
    let released = change(
        store,
        (&nes, &serial),
        "r-1",
        LifecycleAction::Release,
        t0(2),
    )
    .unwrap();
    assert_eq!(
        (released.status, released.reason),
        (CertStatus::Active, None)
    );
    let revoke = |id: &str, at| {
        change(
            store,
            (&nes, &serial),
            id,
            LifecycleAction::Revoke {
                reason: Some(RevocationReason::Superseded),
                invalidity_date: None,
            },
            at,
        )
    };
    let revoked = revoke("v-1", t0(3)).unwrap();
    assert_eq!(
        (revoked.status, revoked.reason),
        (CertStatus::Revoked, Some(RevocationReason::Superseded))
    );
    assert!(revoke("v-2", t0(4)).is_err(), "revocation is final");
    assert!(change(
        store,
        (&nes, &serial),
        "r-2",
        LifecycleAction::Release,
        t0(5)
    )
    .is_err());

    let history: Vec<(CertStatus, CertStatus)> = store
        .transitions(&nes, &serial)
        .unwrap()
        .into_iter()
        .map(|t| (t.from, t.to))
        .collect();
    assert_eq!(
        history,
        [
            (CertStatus::Active, CertStatus::Suspended),
            (CertStatus::Suspended, CertStatus::Active),
            (CertStatus::Active, CertStatus::Revoked),
        ]
    );
    let latest = store.latest_change().unwrap();
    assert!(latest > issued_at);
    let (changed, cursor) = store.changes_since(issued_at, 10).unwrap();
    assert_eq!((changed, cursor), (vec![(nes.clone(), serial)], latest));
    assert_eq!(store.serials(&nes, None, 10).unwrap(), [serial]);
}

/// Reservations older than the bound whose signing never completed are resolved as failed,
/// each with its audit record; a younger reservation, an issued certificate and a serial failed
/// already are left as they are, and a second pass finds nothing.
pub fn stale_reservations_are_failed_once(store: &dyn Store) {
    let nes = issuer();
    let reserve_at = |secs: i64| {
        let serial = Serial::random();
        let r = crate::store::Reservation {
            at: t0(secs),
            ..reservation(&nes, serial, "CN=AYŞE YILMAZ")
        };
        assert_eq!(store.reserve(r).unwrap(), Reserved::Ok);
        serial
    };
    let oldest = reserve_at(0);
    let old = reserve_at(10);
    let young = reserve_at(700);
    let issued = issue(store, &nes);
    let records = audit_records(store);
    let actor = crate::Principal::System(crate::SystemTask::Startup);

    let failed = store
        .fail_stale_reservations(t0(600), "never completed", &actor, t0(1_000))
        .unwrap();
    assert_eq!(failed, vec![(nes.clone(), oldest), (nes.clone(), old)]);
    for serial in [oldest, old] {
        assert_eq!(
            store.status(&nes, &serial).unwrap().map(|s| s.status),
            Some(CertStatus::Failed)
        );
    }
    assert_eq!(
        store.status(&nes, &young).unwrap().map(|s| s.status),
        Some(CertStatus::Reserved)
    );
    assert_eq!(
        store.status(&nes, &issued).unwrap().map(|s| s.status),
        Some(CertStatus::Active)
    );
    assert_eq!(audit_records(store), records + 2);

    let again = store
        .fail_stale_reservations(t0(600), "never completed", &actor, t0(1_001))
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(audit_records(store), records + 2);
}
