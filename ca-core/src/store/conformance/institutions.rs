//! List import as the store writes it: a list's rows in the status the write says (invited
//! with their outbox messages, or held until `confirm_list`), the rows the write says are
//! already open recorded as such, one open pre-application per person enforced by the store
//! itself (a row refused by it is answered as already open), the same file again answering
//! its first outcome in full, and a confirmation refused as a conflict when the list is no
//! longer awaiting it. Who may import and which rows are held are `ra::list_import`'s rules.

use super::{audit_records, T0};
use crate::institution::{InstitutionId, ListImport, ListRow, ListSignature};
use crate::store::{
    HeldListEnd, HeldListEnding, ImportStatus, InstitutionChange, ListConfirmation, ListConfirmed,
    ListImportWrite, ListSignatureKind, PreApplicationStatus, Store,
};
use crate::testkit::{institution_record, list_row};
use crate::UnixTime;

/// Registers the test institution; returns its id.
fn registered(store: &dyn Store) -> InstitutionId {
    let inst = institution_record();
    let id = inst.id.clone();
    store
        .add_institution(
            inst,
            &crate::Principal::HostOperator,
            UnixTime::from_secs(T0),
        )
        .unwrap();
    id
}

/// A write of the list with digest `sha`×32 and these rows, in `status`, the RA having found
/// `already_open` open.
fn write(
    id: &InstitutionId,
    sha: &str,
    status: ImportStatus,
    rows: Vec<ListRow>,
    already_open: Vec<(u32, String)>,
) -> ListImportWrite {
    let signature = match status {
        ImportStatus::Accepted => ListSignature::Cms(vec![0x30, 0x00]),
        _ => ListSignature::Wet(vec![0x01]),
    };
    ListImportWrite {
        import: ListImport {
            institution: id.clone(),
            file_sha256: sha.repeat(32),
            file_name: "list.csv".into(),
            signature,
            rows,
            invalid_rows: 0,
            actor: crate::Principal::HostOperator,
            at: UnixTime::from_secs(T0),
        },
        status,
        already_open,
        held_limit: None,
    }
}

/// Registers the test institution and imports the accepted list "ab"×32 of one person
/// (10000000146, row 2): returns the institution and the invited pre-application's id.
fn one_invited(store: &dyn Store) -> (InstitutionId, String) {
    let id = registered(store);
    let o = store
        .import_list(write(
            &id,
            "ab",
            ImportStatus::Accepted,
            vec![list_row(2, "10000000146", "AYŞE")],
            vec![],
        ))
        .unwrap();
    assert_eq!(
        (o.replayed, o.created.len(), o.status),
        (false, 1, ImportStatus::Accepted)
    );
    let first = o.created[0].1.clone();
    (id, first)
}

fn confirmation(id: &InstitutionId, sha: &str, at: i64) -> ListConfirmation {
    ListConfirmation {
        institution: id.clone(),
        file_sha256: sha.repeat(32),
        from: ImportStatus::AwaitingConfirmation,
        signature_cms: None,
        actor: crate::Principal::HostOperator,
        at: UnixTime::from_secs(at),
    }
}

/// A wet-signed list "cd" of `id` whose one row (MEHMET, row 2) is held.
fn held_mehmet(store: &dyn Store, id: &InstitutionId) -> crate::institution::ImportOutcome {
    store
        .import_list(write(
            id,
            "cd",
            ImportStatus::AwaitingConfirmation,
            vec![list_row(2, "10000000078", "MEHMET")],
            vec![],
        ))
        .unwrap()
}

fn status_of(store: &dyn Store, id: &str) -> PreApplicationStatus {
    store.pre_application(id).unwrap().unwrap().status
}

/// An accepted list's rows are invited at once; an awaiting one's are held until the list is
/// confirmed; the rows the write names as already open are skipped; the same file again
/// answers its first outcome — created and already-open rows — with nothing written.
pub fn list_import_invites_holds_and_replays(store: &dyn Store) {
    let (id, first) = one_invited(store);
    assert_eq!(status_of(store, &first), PreApplicationStatus::Invited);
    let pre = store.pre_application(&first).unwrap().unwrap();
    assert_eq!(
        (&pre.institution, pre.created_at),
        (&id, UnixTime::from_secs(T0))
    );
    assert_eq!(store.outbox().unwrap().len(), 1);
    assert_eq!(
        store
            .open_pre_applications(&[
                crate::Tckn::parse("10000000146").unwrap(),
                crate::Tckn::parse("10000000078").unwrap()
            ])
            .unwrap(),
        vec![(crate::Tckn::parse("10000000146").unwrap(), first.clone())]
    );

    let wet_list = || {
        write(
            &id,
            "cd",
            ImportStatus::AwaitingConfirmation,
            vec![list_row(3, "10000000078", "MEHMET")],
            vec![(2, first.clone())],
        )
    };
    let wet = store.import_list(wet_list()).unwrap();
    assert!(!wet.replayed);
    assert_eq!(wet.already_open, vec![(2, first.clone())]);
    assert_eq!(wet.created.len(), 1);
    assert_eq!(wet.status, ImportStatus::AwaitingConfirmation);
    let held = wet.created[0].1.clone();
    assert_eq!(status_of(store, &held), PreApplicationStatus::Held);
    assert_eq!(
        store.outbox().unwrap().len(),
        1,
        "held rows are not invited"
    );
    let record = store.list_import(&id, &"cd".repeat(32)).unwrap().unwrap();
    assert_eq!(
        (record.signature, record.status, record.created_at),
        (
            ListSignatureKind::Wet,
            ImportStatus::AwaitingConfirmation,
            UnixTime::from_secs(T0)
        )
    );
    assert!(store.list_import(&id, &"ef".repeat(32)).unwrap().is_none());

    // The same file again: its first outcome, the already-open row too, nothing written.
    let before = audit_records(store);
    let again = store
        .import_list(write(
            &id,
            "cd",
            ImportStatus::AwaitingConfirmation,
            vec![],
            vec![],
        ))
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.created, again.already_open, again.status),
        (wet.created.clone(), wet.already_open.clone(), wet.status)
    );
    assert_eq!(audit_records(store), before);

    assert_eq!(
        store.confirm_list(confirmation(&id, "cd", T0 + 1)).unwrap(),
        ListConfirmed {
            invited: 1,
            already_open: 0
        }
    );
    assert_eq!(status_of(store, &held), PreApplicationStatus::Invited);
    assert_eq!(
        store
            .list_import(&id, &"cd".repeat(32))
            .unwrap()
            .unwrap()
            .status,
        ImportStatus::Accepted
    );
    assert_eq!(store.outbox().unwrap().len(), 2);
    assert_eq!(store.pre_applications(&id).unwrap().len(), 2);
}

/// A person has one open pre-application: a row the write did not know to be open (a list
/// imported meanwhile, or the same person listed twice) is refused by the store and answered
/// as already open, with the open pre-application's id; the replay answers it too.
pub fn one_open_pre_application_per_person(store: &dyn Store) {
    let (id, first) = one_invited(store);
    let racing = || {
        write(
            &id,
            "cd",
            ImportStatus::Accepted,
            vec![
                list_row(2, "10000000146", "AYŞE"),
                list_row(3, "10000000078", "MEHMET"),
                list_row(4, "10000000078", "MEHMET"),
            ],
            vec![],
        )
    };
    let o = store.import_list(racing()).unwrap();
    assert_eq!(o.created.len(), 1);
    let second = o.created[0].1.clone();
    assert_eq!(o.created[0].0, 3);
    assert_eq!(o.already_open, vec![(2, first), (4, second)]);
    assert_eq!(store.pre_applications(&id).unwrap().len(), 2);
    assert_eq!(
        store.outbox().unwrap().len(),
        2,
        "one message per created row"
    );
    let again = store.import_list(racing()).unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.created, again.already_open),
        (o.created, o.already_open)
    );
}

/// A row the write skips as already open must still be open when the write lands: a
/// pre-application closed (or never there) meanwhile is a conflict, and nothing is written.
pub fn list_import_rechecks_already_open(store: &dyn Store) {
    let (id, first) = one_invited(store);
    let audit = audit_records(store);
    let outbox = store.outbox().unwrap().len();
    let stale = write(
        &id,
        "cd",
        ImportStatus::Accepted,
        vec![list_row(3, "10000000078", "MEHMET")],
        vec![(2, first), (4, "no-such-pre-application".into())],
    );
    let err = store.import_list(stale).unwrap_err();
    assert!(
        matches!(
            err,
            crate::CaError::Conflict {
                field: "already_open",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.list_import(&id, &"cd".repeat(32)).unwrap(), None);
    assert_eq!(store.pre_applications(&id).unwrap().len(), 1);
    assert_eq!(
        (audit_records(store), store.outbox().unwrap().len()),
        (audit, outbox)
    );
}

/// Held rows block no one: a signed list invites a person whose row in a held list waits;
/// the held list's confirmation then closes that row (the person is already open) and
/// invites the rest. A held list ends rejected or expired, its held rows closed, once; the
/// lists held since a time are listed oldest first.
pub fn held_lists_block_no_one_and_end(store: &dyn Store) {
    let (id, _) = one_invited(store);
    let mehmet = crate::Tckn::parse("10000000078").unwrap();
    let held = store
        .import_list(write(
            &id,
            "cd",
            ImportStatus::AwaitingConfirmation,
            vec![
                list_row(2, "10000000078", "MEHMET"),
                list_row(3, "10000000214", "İPEK"),
            ],
            vec![],
        ))
        .unwrap();
    assert_eq!(held.created.len(), 2);
    assert_eq!(store.open_pre_applications(&[mehmet]).unwrap(), vec![]);
    let signed = store
        .import_list(write(
            &id,
            "ef",
            ImportStatus::Accepted,
            vec![list_row(2, "10000000078", "MEHMET")],
            vec![],
        ))
        .unwrap();
    assert_eq!((signed.created.len(), signed.already_open.len()), (1, 0));
    let invited = signed.created[0].1.clone();
    assert_eq!(
        store.open_pre_applications(&[mehmet]).unwrap(),
        vec![(mehmet, invited)]
    );
    let outbox = store.outbox().unwrap().len();
    assert_eq!(
        store.confirm_list(confirmation(&id, "cd", T0 + 1)).unwrap(),
        ListConfirmed {
            invited: 1,
            already_open: 1
        }
    );
    assert_eq!(
        status_of(store, &held.created[0].1),
        PreApplicationStatus::Closed
    );
    assert_eq!(
        status_of(store, &held.created[1].1),
        PreApplicationStatus::Invited
    );
    assert_eq!(store.outbox().unwrap().len(), outbox + 1);

    let end = |sha: &str, to| HeldListEnd {
        institution: id.clone(),
        file_sha256: sha.repeat(32),
        from: ImportStatus::AwaitingConfirmation,
        to,
        actor: crate::Principal::HostOperator,
        at: UnixTime::from_secs(T0 + 2),
    };
    let rejected = store
        .import_list(write(
            &id,
            "12",
            ImportStatus::AwaitingConfirmation,
            vec![list_row(2, "10000000382", "ŞÜKRÜ")],
            vec![],
        ))
        .unwrap();
    assert_eq!(
        store
            .held_lists_before(UnixTime::from_secs(T0), 10)
            .unwrap(),
        vec![(id.clone(), "12".repeat(32))]
    );
    assert_eq!(store.held_list_count(&id).unwrap(), 1);
    // The RA's bound is counted again in the write: at it, a held list is a conflict.
    let bounded = |sha: &str, limit| ListImportWrite {
        held_limit: Some(limit),
        ..write(
            &id,
            sha,
            ImportStatus::AwaitingConfirmation,
            vec![list_row(2, "10000000450", "HAKAN")],
            vec![],
        )
    };
    let records = audit_records(store);
    assert!(matches!(
        store.import_list(bounded("34", 1)),
        Err(crate::CaError::Conflict {
            field: "wet-scan",
            ..
        })
    ));
    assert_eq!(
        (audit_records(store), store.held_list_count(&id).unwrap()),
        (records, 1)
    );
    assert!(store.list_import(&id, &"34".repeat(32)).unwrap().is_none());
    store.import_list(bounded("34", 2)).unwrap();
    store
        .end_held_list(end("34", HeldListEnding::Rejected))
        .unwrap();
    assert!(store
        .held_lists_before(UnixTime::from_secs(T0 - 1), 10)
        .unwrap()
        .is_empty());
    let records = audit_records(store);
    assert_eq!(
        store
            .end_held_list(end("12", HeldListEnding::Rejected))
            .unwrap(),
        1
    );
    assert_eq!(audit_records(store), records + 1);
    assert_eq!(
        status_of(store, &rejected.created[0].1),
        PreApplicationStatus::Closed
    );
    let list = store.list_import(&id, &"12".repeat(32)).unwrap().unwrap();
    assert_eq!(list.status, ImportStatus::Rejected);
    assert_eq!(store.held_list_count(&id).unwrap(), 0);
    for again in [HeldListEnding::Expired, HeldListEnding::Rejected] {
        assert!(matches!(
            store.end_held_list(end("12", again)),
            Err(crate::CaError::Conflict { .. })
        ));
    }
    assert!(matches!(
        store.confirm_list(confirmation(&id, "12", T0 + 3)),
        Err(crate::CaError::Conflict { .. })
    ));
    assert_eq!(audit_records(store), records + 1);
    assert!(store
        .held_lists_before(UnixTime::from_secs(T0 + 10), 10)
        .unwrap()
        .is_empty());
}

/// An operator changes an institution's officer and its activity, each with its audit
/// record (an unknown institution refused, nothing written); a new access password is queued
/// for an invited pre-application only, and clears every source's sign-in lock.
pub fn institutions_change_and_passwords_are_resent(store: &dyn Store) {
    let (id, invited) = one_invited(store);
    let op = crate::Principal::HostOperator;
    let at = UnixTime::from_secs(T0 + 1);
    let officer = crate::Tckn::parse("10000000078").unwrap();
    let records = audit_records(store);
    store
        .change_institution(
            &id,
            InstitutionChange::Officer {
                officer_tckn: officer,
                officer_cert_der: vec![0x30, 0x01, 0x00],
            },
            &op,
            at,
        )
        .unwrap();
    store
        .change_institution(&id, InstitutionChange::Active(false), &op, at)
        .unwrap();
    let record = store.institution(&id).unwrap().unwrap();
    assert_eq!(
        (record.officer_tckn, record.officer_cert_der, record.active),
        (officer, vec![0x30, 0x01, 0x00], false)
    );
    store
        .change_institution(&id, InstitutionChange::Active(true), &op, at)
        .unwrap();
    assert!(store.institution(&id).unwrap().unwrap().active);
    assert_eq!(audit_records(store), records + 3);
    let nobody = InstitutionId::parse("nobody").unwrap();
    assert!(store
        .change_institution(&nobody, InstitutionChange::Active(false), &op, at)
        .is_err());
    assert_eq!(audit_records(store), records + 3);

    // A locked-out invited person: a new password, the lock cleared.
    store
        .enrollment_write(crate::store::EnrollmentWrite::LockSignIn {
            id: invited.clone(),
            source: crate::store::SignInSource::unnamed(),
            until: UnixTime::from_secs(T0 + 1800),
            actor: op.clone(),
            at,
        })
        .unwrap();
    let outbox = store.outbox().unwrap().len();
    store.resend_access_password(&invited, &op, at).unwrap();
    assert_eq!(store.outbox().unwrap().len(), outbox + 1);
    let e = store.enrollment(&invited).unwrap().unwrap();
    assert_eq!((e.sign_in_attempts, e.locked_until), (0, None));
    let held = held_mehmet(store, &id).created[0].1.clone();
    let records = audit_records(store);
    for not_invited in [held.as_str(), "no-such-application"] {
        assert!(matches!(
            store.resend_access_password(not_invited, &op, at),
            Err(crate::CaError::Conflict { .. })
        ));
    }
    assert_eq!(
        (audit_records(store), store.outbox().unwrap().len()),
        (records, outbox + 1)
    );
}

/// A confirmation that expects the list to await it, when it does not (confirmed already,
/// signed with CMS, or unknown), is a conflict: nothing written, no audit record.
pub fn stale_list_confirmation_is_a_conflict(store: &dyn Store) {
    let (id, _) = one_invited(store);
    let wet = held_mehmet(store, &id);
    assert_eq!(
        store.confirm_list(confirmation(&id, "cd", T0 + 1)).unwrap(),
        ListConfirmed {
            invited: 1,
            already_open: 0
        }
    );
    let before = (audit_records(store), store.outbox().unwrap().len());
    for sha in ["cd", "ab", "ef"] {
        let e = store
            .confirm_list(confirmation(&id, sha, T0 + 2))
            .unwrap_err();
        assert!(
            matches!(
                e,
                crate::error::CaError::Conflict {
                    field: "file-sha256",
                    ..
                }
            ),
            "{e}"
        );
    }
    assert_eq!(
        (audit_records(store), store.outbox().unwrap().len()),
        before
    );
    assert_eq!(
        status_of(store, &wet.created[0].1),
        PreApplicationStatus::Invited
    );
}
