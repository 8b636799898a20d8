//! Front channels' applications: once per (channel, reference).

use super::{channel, t0};
use crate::serial::Serial;
use crate::store::{ApplicationIssued, ApplicationOutcome, ApplicationStatus, Store};

/// A channel reference is recorded once: the second begin returns the first application,
/// and its outcome once finished; a finished application cannot be finished again. An
/// application a crash cut off is refused at the next start; finished ones keep their
/// outcome.
pub fn channel_applications_begin_once(store: &dyn Store) {
    assert_eq!(
        store
            .begin_application(
                &channel("kdhs"),
                "ref-1",
                &crate::Principal::HostOperator,
                t0(10)
            )
            .unwrap(),
        None
    );
    let seen = store
        .begin_application(
            &channel("kdhs"),
            "ref-1",
            &crate::Principal::HostOperator,
            t0(11),
        )
        .unwrap()
        .unwrap();
    assert_eq!(seen.status, ApplicationStatus::Pending);
    // Another channel's reference of the same text is another application.
    assert_eq!(
        store
            .begin_application(
                &channel("kec"),
                "ref-1",
                &crate::Principal::HostOperator,
                t0(12)
            )
            .unwrap(),
        None
    );
    let serial = Serial::random();
    store
        .finish_application(
            &channel("kdhs"),
            "ref-1",
            ApplicationOutcome::Issued(ApplicationIssued::plain(serial)),
            &crate::Principal::HostOperator,
            t0(13),
        )
        .unwrap();
    let done = store
        .begin_application(
            &channel("kdhs"),
            "ref-1",
            &crate::Principal::HostOperator,
            t0(14),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        (done.status, done.serial, done.created_at),
        (ApplicationStatus::Issued, Some(serial), t0(10))
    );
    assert!(store
        .finish_application(
            &channel("kdhs"),
            "ref-1",
            ApplicationOutcome::Refused("x".into()),
            &crate::Principal::HostOperator,
            t0(15)
        )
        .is_err());
    store
        .finish_application(
            &channel("kec"),
            "ref-1",
            ApplicationOutcome::Refused("tckn: bad".into()),
            &crate::Principal::HostOperator,
            t0(16),
        )
        .unwrap();
    let refused = store
        .application(&channel("kec"), "ref-1")
        .unwrap()
        .unwrap();
    assert_eq!(refused.status, ApplicationStatus::Refused);
    assert_eq!(refused.error.as_deref(), Some("tckn: bad"));
    assert_eq!(store.verify_audit().unwrap().first_break, None);

    // Cut off by a crash: abandoned at the next start, answered as refused from then on;
    // finished applications keep their outcome.
    assert_eq!(
        store
            .begin_application(
                &channel("kdhs"),
                "ref-2",
                &crate::Principal::HostOperator,
                t0(17)
            )
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .abandon_pending_applications("interrupted", &crate::Principal::HostOperator, t0(18))
            .unwrap(),
        1
    );
    let cut = store
        .begin_application(
            &channel("kdhs"),
            "ref-2",
            &crate::Principal::HostOperator,
            t0(19),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        (cut.status, cut.error.as_deref()),
        (ApplicationStatus::Refused, Some("interrupted"))
    );
    let done = store
        .application(&channel("kdhs"), "ref-1")
        .unwrap()
        .unwrap();
    assert_eq!(done.status, ApplicationStatus::Issued);
    assert_eq!(
        store
            .abandon_pending_applications("interrupted", &crate::Principal::HostOperator, t0(20))
            .unwrap(),
        0
    );
    assert_eq!(store.verify_audit().unwrap().first_break, None);
}

/// A pending application released after a failure that was not its fault is forgotten (with
/// an audit record): the same reference begins anew. A finished one is never released.
pub fn pending_applications_are_released_for_a_retry(store: &dyn Store) {
    let by = crate::Principal::HostOperator;
    let audit_before = store.verify_audit().unwrap().records;
    assert_eq!(
        store
            .begin_application(&channel("kdhs"), "ref-r", &by, t0(10))
            .unwrap(),
        None
    );
    assert!(store
        .release_pending_application(&channel("kdhs"), "ref-r", &by, t0(11))
        .unwrap());
    assert_eq!(store.application(&channel("kdhs"), "ref-r").unwrap(), None);
    assert_eq!(store.verify_audit().unwrap().records, audit_before + 2);
    // Begun again: a fresh pending application.
    assert_eq!(
        store
            .begin_application(&channel("kdhs"), "ref-r", &by, t0(12))
            .unwrap(),
        None
    );
    store
        .finish_application(
            &channel("kdhs"),
            "ref-r",
            ApplicationOutcome::Refused("tckn: bad".into()),
            &by,
            t0(13),
        )
        .unwrap();
    // Finished: not released, nothing written.
    assert!(!store
        .release_pending_application(&channel("kdhs"), "ref-r", &by, t0(14))
        .unwrap());
    assert_eq!(
        store
            .application(&channel("kdhs"), "ref-r")
            .unwrap()
            .unwrap()
            .status,
        ApplicationStatus::Refused
    );
    assert!(!store
        .release_pending_application(&channel("kdhs"), "never-seen", &by, t0(15))
        .unwrap());
    assert_eq!(store.verify_audit().unwrap().records, audit_before + 4);
}
