use std::time::Duration;

use super::*;
use ca_core::institution::{ListImport, ListRow, ListSignature};
use ca_core::store::prelude::*;
use ca_core::store::PreApplicationStatus;
use ca_core::testkit::{demo_institution, fixture, list_row as row, Fixture};

const OPERATOR: Principal = Principal::HostOperator;

/// Imports `rows` as a wet-signed list (file bytes `file`) of the demo institution: held.
fn held(f: &Fixture, file: &[u8], rows: Vec<ListRow>) -> (InstitutionId, String) {
    let id = match f.store.institutions().unwrap().first() {
        Some(i) => i.id.clone(),
        None => demo_institution(f),
    };
    let imports = crate::testkit::list_imports(f);
    let outcome = imports
        .import(
            file,
            ListImport {
                institution: id.clone(),
                file_sha256: String::new(),
                file_name: "liste.csv".into(),
                // Anyone can attach "a scan": one byte will do.
                signature: ListSignature::Wet(vec![0x25]),
                rows,
                invalid_rows: 0,
                actor: OPERATOR,
                at: UnixTime::EPOCH,
            },
        )
        .unwrap();
    assert_eq!(outcome.status, ImportStatus::AwaitingConfirmation);
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(file))
    };
    (id, sha)
}

fn statuses(f: &Fixture, id: &InstitutionId, sha: &str) -> Vec<PreApplicationStatus> {
    f.store
        .pre_applications(id)
        .unwrap()
        .into_iter()
        .filter(|p| p.file_sha256 == sha)
        .map(|p| p.status)
        .collect()
}

fn list_status(f: &Fixture, id: &InstitutionId, sha: &str) -> ImportStatus {
    f.store.list_import(id, sha).unwrap().unwrap().status
}

#[test]
fn a_held_list_blocks_no_one_and_its_confirmation_skips_people_invited_meanwhile() {
    let f = fixture();
    let (id, fake) = held(&f, b"fake", vec![row(2, "10000000146", "Çağrı")]);
    // Another held list names the same person: both are held, neither is "already open".
    let (_, other) = held(
        &f,
        b"other",
        vec![
            row(2, "10000000146", "Çağrı"),
            row(3, "10000000078", "İpek"),
        ],
    );
    assert_eq!(statuses(&f, &id, &other).len(), 2);
    assert!(f
        .store
        .open_pre_applications(&[ca_core::Tckn::parse("10000000146").unwrap()])
        .unwrap()
        .is_empty());
    let lists = HeldLists::new(f.store.clone(), f.clock.clone());
    assert_eq!(
        lists.confirm(&OPERATOR, &id, &other).unwrap(),
        ListConfirmed {
            invited: 2,
            already_open: 0
        }
    );
    // The first held list's person is invited now: its confirmation invites no one.
    assert_eq!(
        lists.confirm(&OPERATOR, &id, &fake).unwrap(),
        ListConfirmed {
            invited: 0,
            already_open: 1
        }
    );
    assert_eq!(statuses(&f, &id, &fake), [PreApplicationStatus::Closed]);
    assert_eq!(f.store.outbox().unwrap().len(), 2);
}

#[test]
fn an_operator_rejects_a_held_list_once() {
    let f = fixture();
    let (id, sha) = held(&f, b"fake", vec![row(2, "10000000146", "Çağrı")]);
    let lists = HeldLists::new(f.store.clone(), f.clock.clone());
    let audit = f.store.verify_audit().unwrap().records;
    assert_eq!(
        lists.reject(&OPERATOR, &id, &sha.to_uppercase()).unwrap(),
        1
    );
    assert_eq!(list_status(&f, &id, &sha), ImportStatus::Rejected);
    assert_eq!(statuses(&f, &id, &sha), [PreApplicationStatus::Closed]);
    assert_eq!(f.store.verify_audit().unwrap().records, audit + 1);
    for e in [
        lists.reject(&OPERATOR, &id, &sha).unwrap_err(),
        lists.confirm(&OPERATOR, &id, &sha).unwrap_err(),
    ] {
        assert!(e.to_string().contains("awaits confirmation"), "{e}");
    }
    let e = lists.reject(&OPERATOR, &id, "abc").unwrap_err();
    assert_eq!(e.to_string(), "file-sha256: must be 64 hex digits");
    assert_eq!(f.store.verify_audit().unwrap().records, audit + 1);
}

#[test]
fn held_lists_expire_after_their_days() {
    let f = fixture();
    let (id, old) = held(&f, b"old", vec![row(2, "10000000146", "Çağrı")]);
    let lists = HeldLists::new(f.store.clone(), f.clock.clone());
    f.clock
        .advance(Duration::from_secs(HELD_LIST_DAYS as u64 * 86_400));
    let (_, young) = held(&f, b"young", vec![row(2, "10000000078", "İpek")]);
    // On its last day the old list still waits.
    assert_eq!(lists.expire_due().unwrap(), 0);
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(lists.expire_due().unwrap(), 1);
    assert_eq!(list_status(&f, &id, &old), ImportStatus::Expired);
    assert_eq!(statuses(&f, &id, &old), [PreApplicationStatus::Closed]);
    assert_eq!(
        list_status(&f, &id, &young),
        ImportStatus::AwaitingConfirmation
    );
    assert_eq!(lists.expire_due().unwrap(), 0);
    // A confirmation past the days finds the list expired (and ends it, if no sweep did).
    f.clock
        .advance(Duration::from_secs(HELD_LIST_DAYS as u64 * 86_400));
    let e = lists.confirm(&OPERATOR, &id, &young).unwrap_err();
    assert!(e.to_string().contains("expired after 30 days"), "{e}");
    assert_eq!(list_status(&f, &id, &young), ImportStatus::Expired);
    assert!(f.store.outbox().unwrap().is_empty());
}

#[test]
fn only_a_list_awaiting_confirmation_is_confirmed() {
    let id = InstitutionId::parse("acme").unwrap();
    let sha = "ab".repeat(32);
    let record = |status| ListImportRecord {
        institution: id.clone(),
        file_sha256: sha.clone(),
        file_name: "liste.xlsx".into(),
        signature: ca_core::store::ListSignatureKind::Wet,
        status,
        created: vec![],
        already_open: vec![],
        created_at: UnixTime::EPOCH,
    };
    assert_eq!(
        awaiting_confirmation(Some(&record(ImportStatus::AwaitingConfirmation)), &id, &sha)
            .unwrap(),
        ImportStatus::AwaitingConfirmation
    );
    for list in [
        Some(record(ImportStatus::Accepted)),
        Some(record(ImportStatus::Rejected)),
        Some(record(ImportStatus::Expired)),
        None,
    ] {
        let e = awaiting_confirmation(list.as_ref(), &id, &sha).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("file-sha256: no wet-signed list {sha} of \"acme\" awaits confirmation")
        );
    }
}

/// One-byte "scans" cannot fill the store: an institution has at most MAX_HELD_LISTS lists
/// waiting; the next is refused, nothing written, until one is confirmed or rejected.
#[test]
fn an_institution_holds_a_bounded_number_of_lists() {
    use crate::list_import::MAX_HELD_LISTS;
    let f = fixture();
    let mut held_lists = Vec::new();
    for i in 0..MAX_HELD_LISTS {
        held_lists.push(held(&f, format!("fake-{i}").as_bytes(), vec![]));
    }
    let (id, first) = held_lists[0].clone();
    assert_eq!(f.store.held_list_count(&id).unwrap(), MAX_HELD_LISTS);
    let imports = crate::testkit::list_imports(&f);
    let audit = f.store.verify_audit().unwrap().records;
    let e = imports
        .import(
            b"one more",
            ListImport {
                institution: id.clone(),
                file_sha256: String::new(),
                file_name: "liste.csv".into(),
                signature: ListSignature::Wet(vec![0x25]),
                rows: vec![],
                invalid_rows: 0,
                actor: OPERATOR,
                at: UnixTime::EPOCH,
            },
        )
        .unwrap_err();
    assert!(e.to_string().starts_with("wet-scan: "), "{e}");
    assert_eq!(f.store.verify_audit().unwrap().records, audit);
    HeldLists::new(f.store.clone(), f.clock.clone())
        .reject(&OPERATOR, &id, &first)
        .unwrap();
    held(&f, b"one more", vec![]);
}
