//! The registry: CAs and partners are registered once and never overwritten.

use super::{add_issuing_ca, audit_records, issuer, t0};
use crate::error::CaError;
use crate::partner::{PartnerId, PartnerRecord};
use crate::store::{CaRecord, CaRole, Store};
use crate::UnixTime;

fn partner(id: &str) -> PartnerRecord {
    PartnerRecord {
        id: PartnerId::parse(id).unwrap(),
        name: "Örnek ESHS A.Ş.".into(),
        license_no: "BTK-2024-17".into(),
        created_at: UnixTime::from_secs(1_700_000_000),
        active: true,
    }
}

/// A CA id is registered once: a second registration is refused and the first is kept.
pub fn cas_are_never_overwritten(store: &dyn Store) {
    let nes = issuer();
    assert!(store.ca(&nes).unwrap().is_none());
    add_issuing_ca(store, &nes);
    let e = store
        .add_ca(
            CaRecord {
                id: nes.clone(),
                role: CaRole::Root,
                key_label: "another-key".into(),
                cert_der: vec![0x30, 0x00],
                ocsp_key_label: None,
                ocsp_cert_der: None,
            },
            &crate::Principal::HostOperator,
            t0(1),
        )
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
    let kept = store.ca(&nes).unwrap().unwrap();
    assert_eq!(
        (kept.role, kept.key_label.as_str()),
        (CaRole::Issuing, "nes-ca")
    );
    assert_eq!(store.cas().unwrap().len(), 1);
    assert_eq!(audit_records(store), 1);
}

/// Partners are registered once, read back as registered, listed in registration order,
/// and deactivated once; each change leaves its audit record.
pub fn partners_are_added_read_and_never_overwritten(store: &dyn Store) {
    let id = PartnerId::parse("eshs-a").unwrap();
    assert_eq!(store.partner(&id).unwrap(), None);
    store
        .add_partner(
            partner("eshs-a"),
            &crate::Principal::HostOperator,
            UnixTime::from_secs(1_700_000_000),
        )
        .unwrap();
    assert_eq!(store.partner(&id).unwrap(), Some(partner("eshs-a")));
    let mut other = partner("eshs-a");
    other.name = "Someone Else".into();
    let e = store
        .add_partner(
            other,
            &crate::Principal::HostOperator,
            UnixTime::from_secs(1_700_000_001),
        )
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
    assert_eq!(store.partner(&id).unwrap(), Some(partner("eshs-a")));
    store
        .add_partner(
            partner("eshs-b"),
            &crate::Principal::HostOperator,
            UnixTime::from_secs(1_700_000_002),
        )
        .unwrap();
    let ids: Vec<String> = store
        .partners()
        .unwrap()
        .into_iter()
        .map(|p| p.id.to_string())
        .collect();
    assert_eq!(ids, ["eshs-a", "eshs-b"]);
    // Each registration left its audit record, and the chain holds.
    let report = store.verify_audit().unwrap();
    assert_eq!((report.records, report.first_break), (2, None));
    store
        .deactivate_partner(
            &id,
            &crate::Principal::HostOperator,
            UnixTime::from_secs(1_700_000_003),
        )
        .unwrap();
    assert!(!store.partner(&id).unwrap().unwrap().active);
    assert!(store
        .deactivate_partner(
            &id,
            &crate::Principal::HostOperator,
            UnixTime::from_secs(1_700_000_004)
        )
        .is_err());
    assert_eq!(audit_records(store), 3);
}
