//! List import beyond "import once": a deactivated institution is refused; a CMS-signed
//! list invites its rows, a wet-signed one holds them until `confirm_list`; a person with an
//! open pre-application is skipped as `already_open`; the same file again answers its first
//! outcome.

use super::{audit_records, T0};
use crate::institution::{ListImport, ListSignature};
use crate::store::Store;
use crate::testkit::{institution_record, list_row};

fn import(
    id: &crate::institution::InstitutionId,
    sha: &str,
    signature: ListSignature,
    rows: Vec<crate::institution::ListRow>,
) -> ListImport {
    ListImport {
        institution: id.clone(),
        file_sha256: sha.repeat(32),
        file_name: "list.csv".into(),
        signature,
        rows,
        invalid_rows: 0,
        actor: crate::Principal::HostOperator,
        at: T0,
    }
}

/// A deactivated institution's list is refused with nothing written.
pub fn deactivated_institution_list_refused(store: &dyn Store) {
    let mut inst = institution_record();
    inst.active = false;
    let id = inst.id.clone();
    store
        .add_institution(inst, &crate::Principal::HostOperator, T0)
        .unwrap();
    let before = audit_records(store);
    assert!(store
        .import_list(import(
            &id,
            "ab",
            ListSignature::Cms(vec![0x30, 0x00]),
            vec![list_row(2, "10000000146", "AYŞE")],
        ))
        .is_err());
    assert_eq!(audit_records(store), before);
    assert!(store.pre_applications(&id).unwrap().is_empty());
    assert!(store.outbox().unwrap().is_empty());
}

/// CMS-signed rows are invited at once; wet-signed rows are held until the list is
/// confirmed; a person already open is skipped; a replay answers the first outcome.
pub fn list_import_invites_holds_and_skips(store: &dyn Store) {
    let inst = institution_record();
    let id = inst.id.clone();
    store
        .add_institution(inst, &crate::Principal::HostOperator, T0)
        .unwrap();
    let cms = store
        .import_list(import(
            &id,
            "ab",
            ListSignature::Cms(vec![0x30, 0x00]),
            vec![list_row(2, "10000000146", "AYŞE")],
        ))
        .unwrap();
    assert_eq!((cms.replayed, cms.created.len()), (false, 1));
    let first = cms.created[0].1.clone();
    assert_eq!(
        store.pre_application(&first).unwrap().unwrap().status,
        "invited"
    );
    assert_eq!(store.outbox().unwrap().len(), 1);

    let wet_list = || {
        import(
            &id,
            "cd",
            ListSignature::Wet(vec![0x01]),
            vec![
                list_row(2, "10000000146", "AYŞE"),
                list_row(3, "10000000078", "MEHMET"),
            ],
        )
    };
    let wet = store.import_list(wet_list()).unwrap();
    assert!(!wet.replayed);
    assert_eq!(wet.already_open, vec![(2, first.clone())]);
    assert_eq!(wet.created.len(), 1);
    assert_eq!(wet.status, "awaiting_confirmation");
    let held = wet.created[0].1.clone();
    assert_eq!(
        store.pre_application(&held).unwrap().unwrap().status,
        "held"
    );
    assert_eq!(
        store.outbox().unwrap().len(),
        1,
        "held rows are not invited"
    );

    let before = audit_records(store);
    let again = store.import_list(wet_list()).unwrap();
    assert!(again.replayed);
    // The replay answers the rows the first import created and its status (the rows it
    // skipped as already open are not recorded, so not repeated).
    assert_eq!(
        (again.created, again.status),
        (wet.created.clone(), wet.status.clone())
    );
    assert_eq!(audit_records(store), before);

    assert_eq!(
        store
            .confirm_list(
                &id,
                &"cd".repeat(32),
                &crate::Principal::HostOperator,
                T0 + 1
            )
            .unwrap(),
        1
    );
    assert_eq!(
        store.pre_application(&held).unwrap().unwrap().status,
        "invited"
    );
    assert_eq!(store.outbox().unwrap().len(), 2);
    assert_eq!(store.pre_applications(&id).unwrap().len(), 2);
}
