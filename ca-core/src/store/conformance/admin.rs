//! The admin API's records: operators registered once (by name and by certificate) and
//! disabled for good, dual-control requests approved once per operator and decided once,
//! security-word checks counted per certificate in a window, and the certificate search.

use super::{audit_records, change, issue, issuer, reservation, t0};
use crate::error::CaError;
use crate::lifecycle::LifecycleAction;
use crate::serial::{IssuerId, Serial};
use crate::store::{
    AdminRequestStatus, CertStatus, CertificateQuery, NewAdminRequest, OperatorRecord, Reserved,
    Store, SubjectRecord,
};
use crate::{OperatorName, OperatorRole, Principal, Tckn, UnixTime};

fn name(s: &str) -> OperatorName {
    OperatorName::parse(s).expect("operator name")
}

/// The sequence number of the newest audit record; 0 when there is none.
fn head_seq(store: &dyn Store) -> i64 {
    store
        .audit_head()
        .expect("audit head")
        .map_or(0, |(seq, _)| seq)
}

fn operator(n: &str, role: OperatorRole, serial: Serial, created_at: UnixTime) -> OperatorRecord {
    OperatorRecord {
        name: name(n),
        role,
        issuer: issuer(),
        serial,
        created_at,
        disabled_at: None,
    }
}

/// An operator is registered once by name and once by certificate, read back by either,
/// listed in registration order and disabled once, for good; each write leaves exactly one
/// audit record and a refused one none.
pub fn operators_are_registered_once_and_disabled_for_good(store: &dyn Store) {
    let by = Principal::HostOperator;
    let nes = issuer();
    let ayse = name("Ayşe Yılmaz");
    let (serial_a, serial_b, serial_c) = (Serial::random(), Serial::random(), Serial::random());
    assert_eq!(store.operator(&ayse).unwrap(), None);
    assert_eq!(
        store.operator_by_certificate(&nes, &serial_a).unwrap(),
        None
    );
    assert!(store.operators().unwrap().is_empty());

    let first = operator("Ayşe Yılmaz", OperatorRole::RaOfficer, serial_a, t0(10));
    let seq = head_seq(store);
    store.add_operator(first.clone(), &by, t0(10)).unwrap();
    assert_eq!(
        head_seq(store),
        seq + 1,
        "a registration is one audit record"
    );
    assert_eq!(store.operator(&ayse).unwrap(), Some(first.clone()));
    assert_eq!(
        store.operator_by_certificate(&nes, &serial_a).unwrap(),
        Some(first.clone())
    );
    // The same serial under another issuer is another certificate.
    let other_ca = IssuerId::parse("other-ca").unwrap();
    assert_eq!(
        store.operator_by_certificate(&other_ca, &serial_a).unwrap(),
        None
    );

    // The same name, another role and certificate: refused, the first kept.
    let seq = head_seq(store);
    let e = store
        .add_operator(
            operator("Ayşe Yılmaz", OperatorRole::CaOperator, serial_b, t0(11)),
            &by,
            t0(11),
        )
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
    // Another name, the same certificate: refused.
    let e = store
        .add_operator(
            operator("Mehmet Kaya", OperatorRole::Auditor, serial_a, t0(12)),
            &by,
            t0(12),
        )
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
    assert_eq!(head_seq(store), seq, "refused registrations write nothing");
    assert_eq!(store.operator(&ayse).unwrap(), Some(first.clone()));
    assert_eq!(store.operator(&name("Mehmet Kaya")).unwrap(), None);
    assert_eq!(
        store.operator_by_certificate(&nes, &serial_b).unwrap(),
        None
    );

    // Registered in order (the later one first, by name, to show the order is the time's).
    let zeynep = operator("Zeynep Demir", OperatorRole::Auditor, serial_c, t0(5));
    let can = operator("Can Öztürk", OperatorRole::CaOperator, serial_b, t0(20));
    store.add_operator(can.clone(), &by, t0(20)).unwrap();
    store.add_operator(zeynep.clone(), &by, t0(20)).unwrap();
    assert_eq!(head_seq(store), seq + 2);
    let names: Vec<String> = store
        .operators()
        .unwrap()
        .into_iter()
        .map(|o| o.name.to_string())
        .collect();
    assert_eq!(names, ["Zeynep Demir", "Ayşe Yılmaz", "Can Öztürk"]);

    // Disabled once, for good.
    let seq = head_seq(store);
    let disabled = store.disable_operator(&ayse, &by, t0(30)).unwrap();
    assert_eq!(
        disabled,
        OperatorRecord {
            disabled_at: Some(t0(30)),
            ..first.clone()
        }
    );
    assert_eq!(head_seq(store), seq + 1, "disabling is one audit record");
    assert_eq!(store.operator(&ayse).unwrap(), Some(disabled.clone()));
    assert_eq!(
        store.operator_by_certificate(&nes, &serial_a).unwrap(),
        Some(disabled.clone())
    );
    let e = store.disable_operator(&ayse, &by, t0(31)).unwrap_err();
    assert!(matches!(e, CaError::Invalid { .. }), "{e}");
    let e = store
        .disable_operator(&name("Nobody"), &by, t0(31))
        .unwrap_err();
    assert!(matches!(e, CaError::Invalid { .. }), "{e}");
    assert_eq!(head_seq(store), seq + 1, "refused disables write nothing");
    assert_eq!(
        store.operator(&ayse).unwrap().unwrap().disabled_at,
        Some(t0(30)),
        "the first disable is kept"
    );
    // A disabled operator's name and certificate stay taken.
    let e = store
        .add_operator(
            operator(
                "Ayşe Yılmaz",
                OperatorRole::RaOfficer,
                Serial::random(),
                t0(40),
            ),
            &by,
            t0(40),
        )
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
    let e = store
        .add_operator(
            operator("Elif Şahin", OperatorRole::RaOfficer, serial_a, t0(40)),
            &by,
            t0(40),
        )
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
    assert_eq!(head_seq(store), seq + 1);
    assert_eq!(audit_records(store), 4);
}

fn request(id: &str, by: &str, created_at: UnixTime) -> NewAdminRequest {
    NewAdminRequest {
        trace: "t-0".into(),
        id: id.into(),
        action: "revoke-certificate".into(),
        payload: "{}".into(),
        approver_role: OperatorRole::RaOfficer,
        requested_by: name(by),
        created_at,
        expires_at: created_at.plus_secs(100),
    }
}

fn is_conflict(r: crate::error::Result<crate::store::AdminRequestRecord>) -> bool {
    matches!(r, Err(CaError::Conflict { .. }))
}

/// A request is recorded pending; another operator approves it once (not the requester, not
/// after it expired, not once it is decided); it moves from one status to the next once, so
/// that exactly one caller carries it out; the list filters by status, newest first.
pub fn admin_requests_are_approved_once_per_operator_and_decided_once(store: &dyn Store) {
    use AdminRequestStatus::{Approved, Executed, Pending};
    let by = Principal::HostOperator;
    let id = "0123456789abcdef0123456789abcdef";
    assert_eq!(store.admin_request(id).unwrap(), None);
    assert!(store.admin_requests(None, 10).unwrap().is_empty());

    let seq = head_seq(store);
    store
        .add_admin_request(request(id, "Ayşe Yılmaz", t0(0)), &by)
        .unwrap();
    assert_eq!(head_seq(store), seq + 1);
    let pending = store.admin_request(id).unwrap().unwrap();
    assert_eq!(
        pending,
        crate::store::AdminRequestRecord {
            id: id.into(),
            action: "revoke-certificate".into(),
            payload: "{}".into(),
            approver_role: OperatorRole::RaOfficer,
            requested_by: name("Ayşe Yılmaz"),
            created_at: t0(0),
            expires_at: t0(100),
            status: Pending,
            approvals: vec![],
            decided_at: None,
            result: None,
        }
    );
    // The same id again: refused.
    let e = store
        .add_admin_request(request(id, "Mehmet Kaya", t0(1)), &by)
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
    assert_eq!(store.admin_request(id).unwrap(), Some(pending.clone()));

    let seq = head_seq(store);
    // The requester cannot approve their own request.
    assert!(is_conflict(store.approve_admin_request(
        id,
        &name("Ayşe Yılmaz"),
        &by,
        t0(10),
        "t-1"
    )));
    let approved = store
        .approve_admin_request(id, &name("B"), &by, t0(10), "t-1")
        .unwrap();
    assert_eq!(approved.approvals, vec![(name("B"), t0(10))]);
    assert_eq!(approved.status, Pending, "approving does not decide");
    assert_eq!(head_seq(store), seq + 1);
    // Once per operator.
    assert!(is_conflict(store.approve_admin_request(
        id,
        &name("B"),
        &by,
        t0(11),
        "t-1"
    )));
    // Not at or after its expiry.
    assert!(is_conflict(store.approve_admin_request(
        id,
        &name("C"),
        &by,
        t0(100),
        "t-1"
    )));
    assert!(is_conflict(store.approve_admin_request(
        id,
        &name("C"),
        &by,
        t0(150),
        "t-1"
    )));
    assert_eq!(head_seq(store), seq + 1, "refused approvals write nothing");
    assert_eq!(
        store.admin_request(id).unwrap().unwrap().approvals,
        vec![(name("B"), t0(10))]
    );
    // An unknown request.
    let e = store
        .approve_admin_request("ff".repeat(16).as_str(), &name("B"), &by, t0(10), "t-1")
        .unwrap_err();
    assert!(matches!(e, CaError::Invalid { .. }), "{e}");

    // Decided once.
    let decided = store
        .decide_admin_request(id, Pending, Approved, "approved by B", &by, t0(20), "t-1")
        .unwrap();
    assert_eq!(
        (
            decided.status,
            decided.decided_at,
            decided.result.as_deref()
        ),
        (Approved, Some(t0(20)), Some("approved by B"))
    );
    assert_eq!(decided.approvals, vec![(name("B"), t0(10))]);
    assert_eq!(head_seq(store), seq + 2);
    assert!(is_conflict(store.decide_admin_request(
        id,
        Pending,
        Approved,
        "approved by B",
        &by,
        t0(21),
        "t-1"
    )));
    // A request no longer pending is not approved any more.
    assert!(is_conflict(store.approve_admin_request(
        id,
        &name("C"),
        &by,
        t0(22),
        "t-1"
    )));
    assert_eq!(head_seq(store), seq + 2);
    let executed = store
        .decide_admin_request(id, Approved, Executed, "revoked 1a2b", &by, t0(30), "t-1")
        .unwrap();
    assert_eq!(
        (
            executed.status,
            executed.decided_at,
            executed.result.as_deref()
        ),
        (Executed, Some(t0(30)), Some("revoked 1a2b"))
    );
    assert_eq!(store.admin_request(id).unwrap(), Some(executed.clone()));
    assert!(is_conflict(store.decide_admin_request(
        id,
        Approved,
        Executed,
        "revoked 1a2b",
        &by,
        t0(31),
        "t-1"
    )));
    assert_eq!(head_seq(store), seq + 3);

    // Two more, pending: the list is newest first, filtered by status.
    let later = "1123456789abcdef0123456789abcdef";
    let latest = "2123456789abcdef0123456789abcdef";
    store
        .add_admin_request(request(later, "Mehmet Kaya", t0(40)), &by)
        .unwrap();
    store
        .add_admin_request(request(latest, "Mehmet Kaya", t0(50)), &by)
        .unwrap();
    let ids = |s: Option<AdminRequestStatus>, limit: u32| -> Vec<String> {
        store
            .admin_requests(s, limit)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(Some(Pending), 10), [latest, later]);
    assert_eq!(ids(None, 10), [latest, later, id]);
    assert_eq!(ids(None, 2), [latest, later]);
    assert_eq!(ids(Some(Executed), 10), [id]);
    assert!(ids(Some(Approved), 10).is_empty());
    // The list carries the approvals.
    let listed = store.admin_requests(Some(Executed), 10).unwrap();
    assert_eq!(listed, vec![executed]);
    assert_eq!(audit_records(store), 6);
}

/// Each check of a certificate's security word is counted up to the limit; the count covers
/// the checks since the window's start (older ones are forgotten), a check past the limit is
/// refused uncounted with the window's oldest check, the count restarts once cleared, and it
/// is kept per certificate.
pub fn security_word_checks_are_counted_in_a_window(store: &dyn Store) {
    let nes = issuer();
    let other_ca = IssuerId::parse("other-ca").unwrap();
    let (serial, other) = (Serial::random(), Serial::random());
    let count = |issuer: &IssuerId, serial: &Serial, since: i64, at: i64| {
        store
            .count_security_word_check(issuer, serial, (t0(since), t0(at)), 4)
            .unwrap()
    };
    assert_eq!(count(&nes, &serial, 0, 0), Ok(1));
    assert_eq!(count(&nes, &serial, 0, 0), Ok(2));
    assert_eq!(count(&nes, &serial, 0, 0), Ok(3));
    // Per (issuer, serial): another serial, and the same serial under another issuer.
    assert_eq!(count(&nes, &other, 0, 0), Ok(1));
    assert_eq!(count(&other_ca, &serial, 0, 0), Ok(1));
    // A check at the window's start counts.
    assert_eq!(count(&nes, &serial, 0, 5), Ok(4));
    // The limit reached: refused, not counted, with the oldest check in the window.
    assert_eq!(count(&nes, &serial, 0, 6), Err(t0(0)));
    assert_eq!(count(&nes, &serial, 0, 7), Err(t0(0)));
    // A window starting after the checks at 0: those are forgotten, the one at 5 is kept.
    assert_eq!(count(&nes, &serial, 1, 10), Ok(2));
    // A window starting after all of them: the count restarts.
    assert_eq!(count(&nes, &serial, 11, 20), Ok(1));
    assert_eq!(count(&nes, &serial, 11, 21), Ok(2));
    // Cleared: the next check is the first.
    store.clear_security_word_checks(&nes, &serial).unwrap();
    assert_eq!(count(&nes, &serial, 0, 22), Ok(1));
    // The others were not cleared.
    assert_eq!(count(&nes, &other, 0, 22), Ok(2));
    assert_eq!(count(&other_ca, &serial, 0, 22), Ok(2));
    // Clearing a certificate never checked is no error.
    store
        .clear_security_word_checks(&nes, &Serial::random())
        .unwrap();
    // No enrollment gave a security word for these certificates.
    assert_eq!(store.holder_security_word(&nes, &serial).unwrap(), None);
}

/// Reserves `serial` under `issuer` at `t0(at)` for the holder `tckn`, without completing it.
fn reserve(store: &dyn Store, issuer: &IssuerId, tckn: Option<&str>, at: i64) -> Serial {
    let serial = Serial::random();
    let r = crate::store::Reservation {
        subject: SubjectRecord {
            tckn: tckn.map(|t| Tckn::parse(t).expect("tckn")),
            ..reservation(issuer, serial, "CN=HOLDER").subject
        },
        at: t0(at),
        ..reservation(issuer, serial, "CN=HOLDER")
    };
    assert_eq!(store.reserve(r).unwrap(), Reserved::Ok);
    serial
}

/// Reserves and completes: an active certificate reserved at `t0(at)`.
fn issue_at(store: &dyn Store, issuer: &IssuerId, tckn: Option<&str>, at: i64) -> Serial {
    let serial = reserve(store, issuer, tckn, at);
    store
        .complete(
            issuer,
            &serial,
            vec![0x30, 0x01, 0x00],
            crate::store::Completion::default(),
            &Principal::HostOperator,
            t0(at),
        )
        .unwrap();
    serial
}

/// The certificate search matches the holder's T.C. Kimlik No and the status, newest first,
/// at most `limit`; a reserved serial and a failed one are never certificates.
pub fn find_certificates_filters_by_holder_and_status(store: &dyn Store) {
    const AYSE: &str = "10000000146";
    const MEHMET: &str = "10000000078";
    let nes = issuer();
    // Ayşe: an issued certificate (the `issue` helper: reserved at 0), a later one she
    // suspends, a reservation never completed and one that failed.
    let first = issue(store, &nes);
    let second = issue_at(store, &nes, Some(AYSE), 20);
    change(
        store,
        (&nes, &second),
        "s-1",
        LifecycleAction::Suspend,
        t0(25),
    )
    .unwrap();
    let reserved = reserve(store, &nes, Some(AYSE), 30);
    let failed = reserve(store, &nes, Some(AYSE), 40);
    store
        .fail(
            &nes,
            &failed,
            "HSM unavailable",
            &Principal::HostOperator,
            t0(40),
        )
        .unwrap();
    // Mehmet: one certificate; and one with no T.C. Kimlik No.
    let mehmet = issue_at(store, &nes, Some(MEHMET), 10);
    let anonymous = issue_at(store, &nes, None, 15);

    let find = |tckn: Option<&str>, status: Option<CertStatus>, limit: u32| -> Vec<Serial> {
        store
            .find_certificates(&CertificateQuery {
                tckn: tckn.map(|t| Tckn::parse(t).unwrap()),
                status,
                limit,
            })
            .unwrap()
            .into_iter()
            .map(|c| {
                assert!(
                    !matches!(c.status, CertStatus::Reserved | CertStatus::Failed),
                    "{c:?}"
                );
                c.serial
            })
            .collect()
    };
    assert_eq!(find(Some(AYSE), None, 10), [second, first]);
    assert_eq!(find(Some(AYSE), None, 1), [second]);
    assert_eq!(find(Some(AYSE), Some(CertStatus::Active), 10), [first]);
    assert_eq!(find(Some(AYSE), Some(CertStatus::Suspended), 10), [second]);
    assert!(find(Some(AYSE), Some(CertStatus::Revoked), 10).is_empty());
    assert!(find(Some(AYSE), Some(CertStatus::Reserved), 10).is_empty());
    assert!(find(Some(AYSE), Some(CertStatus::Failed), 10).is_empty());
    assert_eq!(find(Some(MEHMET), None, 10), [mehmet]);
    assert!(find(Some("10000000214"), None, 10).is_empty());
    // No holder given: every certificate, newest first.
    assert_eq!(find(None, None, 10), [second, anonymous, mehmet, first]);
    assert_eq!(find(None, None, 2), [second, anonymous]);
    assert_eq!(
        find(None, Some(CertStatus::Active), 10),
        [anonymous, mehmet, first]
    );
    assert!(find(None, Some(CertStatus::Reserved), 10).is_empty());
    assert!(find(None, Some(CertStatus::Failed), 10).is_empty());
    // The records are the certificates as stored.
    let found = store
        .find_certificates(&CertificateQuery {
            tckn: Some(Tckn::parse(MEHMET).unwrap()),
            status: None,
            limit: 10,
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (
            found[0].status,
            found[0]
                .subject
                .tckn
                .as_ref()
                .map(|t| t.as_str().to_owned()),
            found[0].cert_der.as_deref(),
            found[0].reserved_at
        ),
        (
            CertStatus::Active,
            Some(MEHMET.to_owned()),
            Some(&[0x30, 0x01, 0x00][..]),
            t0(10)
        )
    );
    // The reserved and the failed serial are still on record, just not found.
    assert_eq!(
        store.status(&nes, &reserved).unwrap().map(|s| s.status),
        Some(CertStatus::Reserved)
    );
    assert_eq!(
        store.status(&nes, &failed).unwrap().map(|s| s.status),
        Some(CertStatus::Failed)
    );
}
