//! The registry: CAs and partners are registered once and never overwritten.

use super::{add_issuing_ca, audit_records, issuer, t0};
use crate::error::CaError;
use crate::partner::{PartnerId, PartnerRecord};
use crate::store::{CaRecord, CaRole, OcspSignerRecord, Store};
use crate::UnixTime;

fn partner(id: &str) -> PartnerRecord {
    PartnerRecord {
        id: PartnerId::parse(id).unwrap(),
        name: "Örnek ESHS A.Ş.".into(),
        license_no: format!("BTK-2024-{id}"),
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
                supersedes: None,
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
    // Another id with the same licence number: refused too (the channels know a partner's
    // certificates by that number).
    let same_licence = PartnerRecord {
        id: PartnerId::parse("eshs-a2").unwrap(),
        ..partner("eshs-a")
    };
    let e = store
        .add_partner(
            same_licence,
            &crate::Principal::HostOperator,
            UnixTime::from_secs(1_700_000_001),
        )
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
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

fn transport_key(spki: &[u8], name: &str, at: i64) -> crate::transport_key::TransportKeyRecord {
    crate::transport_key::TransportKeyRecord {
        id: crate::transport_key::TransportKeyId::of_spki(spki),
        name: name.into(),
        cert_der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
        spki_der: spki.to_vec(),
        not_before: t0(-86_400),
        not_after: t0(86_400 * 365),
        registered_at: t0(at),
        withdrawn_at: None,
    }
}

/// Transport keys are registered once (a withdrawn one too: never registered again), read
/// back as registered, listed in registration order and withdrawn once, for good; each change
/// leaves its audit record and a refused one none.
pub fn transport_keys_are_registered_once_and_withdrawn_for_good(store: &dyn Store) {
    use crate::transport_key::TransportKeyId;
    let by = crate::Principal::HostOperator;
    let personalisation = transport_key(b"spki of the personalisation line", "perso-1", 1);
    let kec = transport_key(b"spki of a KEC device", "kec-device-7", 2);
    assert_eq!(store.transport_key(&personalisation.id).unwrap(), None);
    assert!(store.transport_keys().unwrap().is_empty());

    store
        .add_transport_key(personalisation.clone(), &by, t0(1))
        .unwrap();
    store.add_transport_key(kec.clone(), &by, t0(2)).unwrap();
    assert_eq!(
        store.transport_key(&personalisation.id).unwrap(),
        Some(personalisation.clone())
    );
    let ids: Vec<TransportKeyId> = store
        .transport_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, vec![personalisation.id.clone(), kec.id.clone()]);
    assert_eq!(audit_records(store), 2);

    // The same key again (another name, another certificate) is refused; the first is kept.
    let mut again = personalisation.clone();
    again.name = "someone else".into();
    let e = store.add_transport_key(again, &by, t0(3)).unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
    assert_eq!(
        store
            .transport_key(&personalisation.id)
            .unwrap()
            .unwrap()
            .name,
        "perso-1"
    );
    assert_eq!(audit_records(store), 2);

    // Withdrawn once, at the instant given; a second withdrawal is a conflict.
    store
        .withdraw_transport_key(&kec.id, &crate::Principal::HostOperator, t0(10))
        .unwrap();
    let withdrawn = store.transport_key(&kec.id).unwrap().unwrap();
    assert_eq!(withdrawn.withdrawn_at, Some(t0(10)));
    assert_eq!(audit_records(store), 3);
    let e = store
        .withdraw_transport_key(&kec.id, &by, t0(11))
        .unwrap_err();
    assert!(matches!(e, CaError::Conflict { field: "id", .. }), "{e}");
    assert_eq!(
        store.transport_key(&kec.id).unwrap().unwrap().withdrawn_at,
        Some(t0(10))
    );
    // A withdrawn key is not registered again.
    let e = store
        .add_transport_key(kec.clone(), &by, t0(12))
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
    assert_eq!(
        store.transport_key(&kec.id).unwrap().unwrap().withdrawn_at,
        Some(t0(10))
    );
    // An unknown key is refused by its field.
    let unknown = TransportKeyId::of_spki(b"never registered");
    let e = store
        .withdraw_transport_key(&unknown, &by, t0(13))
        .unwrap_err();
    assert!(matches!(e, CaError::Invalid { field: "id", .. }), "{e}");
    assert_eq!(store.transport_key(&unknown).unwrap(), None);
    // The other key is untouched.
    assert_eq!(
        store
            .transport_key(&personalisation.id)
            .unwrap()
            .unwrap()
            .withdrawn_at,
        None
    );
    assert_eq!(audit_records(store), 3);
}

/// A renewed OCSP signer becomes current only while the one the renewal read is: of two
/// renewals that read the same signer exactly one lands, the other is a conflict that writes
/// nothing. Every signer is kept in the CA's history; a root or unknown CA has none.
pub fn ocsp_signers_are_replaced_once_and_kept(store: &dyn Store) {
    let nes = issuer();
    add_issuing_ca(store, &nes);
    let op = crate::Principal::HostOperator;
    let signer = |label: &str, at: i64| OcspSignerRecord {
        key_label: label.into(),
        cert_der: vec![0x30, 0x03, 0x02, 0x01, at as u8],
        since: t0(at),
    };
    assert_eq!(store.ocsp_signers(&nes).unwrap(), vec![]);
    store
        .replace_ocsp_signer(&nes, None, signer("ocsp-1", 1), &op)
        .unwrap();
    let records = audit_records(store);
    // Two renewals read ocsp-1: the first lands, the second is refused.
    store
        .replace_ocsp_signer(&nes, Some("ocsp-1"), signer("ocsp-2", 2), &op)
        .unwrap();
    let e = store
        .replace_ocsp_signer(&nes, Some("ocsp-1"), signer("ocsp-3", 2), &op)
        .unwrap_err();
    assert!(
        matches!(
            e,
            CaError::Conflict {
                field: "ocsp_signer",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        audit_records(store),
        records + 1,
        "one audit record, the winner's"
    );
    let ca = store.ca(&nes).unwrap().unwrap();
    assert_eq!(
        (ca.ocsp_key_label.as_deref(), ca.ocsp_cert_der),
        (Some("ocsp-2"), Some(signer("ocsp-2", 2).cert_der))
    );
    assert_eq!(
        store.ocsp_signers(&nes).unwrap(),
        vec![signer("ocsp-1", 1), signer("ocsp-2", 2)]
    );
    // A root has no delegated signer; an unknown CA is refused.
    let root = crate::IssuerId::parse("root-ca").unwrap();
    store
        .add_ca(
            CaRecord {
                id: root.clone(),
                role: CaRole::Root,
                key_label: "root-ca".into(),
                cert_der: vec![0x30, 0x00],
                ocsp_key_label: None,
                ocsp_cert_der: None,
                supersedes: None,
            },
            &op,
            t0(3),
        )
        .unwrap();
    for ca in [root, crate::IssuerId::parse("nobody").unwrap()] {
        let e = store
            .replace_ocsp_signer(&ca, None, signer("x", 4), &op)
            .unwrap_err();
        assert!(matches!(e, CaError::Invalid { field: "ca", .. }), "{e}");
    }
}

/// A key rollover adds a generation that supersedes an issuing CA: at most one per CA (two
/// rollovers at once make one), only of an issuing CA, and `generations` follows the chain
/// oldest first.
pub fn issuing_ca_generations_form_one_chain(store: &dyn Store) {
    let nes = issuer();
    add_issuing_ca(store, &nes);
    let op = crate::Principal::HostOperator;
    let generation = |id: &str, supersedes: &crate::IssuerId| CaRecord {
        id: crate::IssuerId::parse(id).unwrap(),
        role: CaRole::Issuing,
        key_label: id.into(),
        cert_der: vec![0x30, 0x00],
        ocsp_key_label: None,
        ocsp_cert_der: None,
        supersedes: Some(supersedes.clone()),
    };
    store
        .add_ca(generation("nes-ca-g2", &nes), &op, t0(1))
        .unwrap();
    let records = audit_records(store);
    let e = store
        .add_ca(generation("nes-ca-other", &nes), &op, t0(2))
        .unwrap_err();
    assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
    assert_eq!(
        audit_records(store),
        records,
        "a refused generation writes nothing"
    );
    let g2 = crate::IssuerId::parse("nes-ca-g2").unwrap();
    store
        .add_ca(generation("nes-ca-g3", &g2), &op, t0(3))
        .unwrap();
    let ids: Vec<String> = crate::store::generations(store, &nes)
        .unwrap()
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(ids, ["nes-ca", "nes-ca-g2", "nes-ca-g3"]);
    assert_eq!(
        store.ca(&g2).unwrap().unwrap().supersedes.as_ref(),
        Some(&nes)
    );
    assert!(
        crate::store::generations(store, &crate::IssuerId::parse("nobody").unwrap())
            .unwrap()
            .is_empty()
    );
    // Nothing supersedes an unknown CA.
    let e = store
        .add_ca(
            generation("orphan", &crate::IssuerId::parse("nobody").unwrap()),
            &op,
            t0(4),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            CaError::Invalid {
                field: "supersedes",
                ..
            }
        ),
        "{e}"
    );
}

/// An offline root's revocation of an issuing CA is recorded once (the first time stays),
/// with its audit record; an unknown CA is refused.
pub fn ca_revocations_are_recorded_once(store: &dyn Store) {
    let nes = issuer();
    add_issuing_ca(store, &nes);
    let op = crate::Principal::HostOperator;
    assert_eq!(store.ca_revoked_at(&nes).unwrap(), None);
    let records = audit_records(store);
    store.record_ca_revoked(&nes, &op, t0(5)).unwrap();
    store.record_ca_revoked(&nes, &op, t0(9)).unwrap();
    assert_eq!(store.ca_revoked_at(&nes).unwrap(), Some(t0(5)));
    assert_eq!(audit_records(store), records + 1);
    let e = store
        .record_ca_revoked(&crate::IssuerId::parse("nobody").unwrap(), &op, t0(9))
        .unwrap_err();
    assert!(matches!(e, CaError::Invalid { field: "ca", .. }), "{e}");
}
