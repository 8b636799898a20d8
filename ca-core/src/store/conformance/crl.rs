//! CRL numbering (RFC 5280 §5.2.3) and the entries of full and delta CRLs (RFC 5280 §5.2.4).

use super::{add_issuing_ca, change, issue, issuer, t0};
use crate::lifecycle::LifecycleAction;
use crate::serial::IssuerId;
use crate::store::{CrlKind, CrlPlan, CrlReservation, DeltaEntry, RevokedEntry, Store};

fn reserve(store: &dyn Store, issuer: &IssuerId, kind: CrlKind) -> crate::error::Result<CrlPlan> {
    store.reserve_crl(CrlReservation {
        issuer: issuer.clone(),
        kind,
        this_update: t0(0),
        next_update: t0(86_400),
        actor: crate::Principal::HostOperator,
        at: t0(0),
    })
}

/// Full and delta CRLs share one sequence of numbers per issuer that only grows: a number
/// reserved and never published stays used, a delta needs a published full CRL as its base,
/// and only a CA in the store takes numbers — a root full CRL numbers only (its ARL has no
/// deltas).
pub fn crl_numbers_strictly_increase(store: &dyn Store) {
    let nes = issuer();
    assert!(
        reserve(store, &nes, CrlKind::Full).is_err(),
        "not a CA in the store"
    );
    add_issuing_ca(store, &nes);
    assert!(
        reserve(store, &nes, CrlKind::Delta).is_err(),
        "a delta needs a published full CRL"
    );
    let abandoned = reserve(store, &nes, CrlKind::Full).unwrap();
    assert_eq!(
        abandoned,
        CrlPlan {
            number: 1,
            base: None
        }
    );
    let full = reserve(store, &nes, CrlKind::Full).unwrap();
    assert_eq!(full.number, 2, "a reserved number is never reused");
    assert_eq!(store.latest_crl(&nes, CrlKind::Full).unwrap(), None);
    store
        .publish_crl(
            &nes,
            full.number,
            7,
            0,
            &crate::Principal::HostOperator,
            t0(0),
        )
        .unwrap();
    assert!(
        store
            .publish_crl(
                &nes,
                full.number,
                7,
                0,
                &crate::Principal::HostOperator,
                t0(0)
            )
            .is_err(),
        "a CRL is published once"
    );
    let latest_full = store.latest_crl(&nes, CrlKind::Full).unwrap().unwrap();
    assert_eq!(
        (
            latest_full.number,
            latest_full.watermark,
            latest_full.published
        ),
        (2, 7, true)
    );
    let delta = reserve(store, &nes, CrlKind::Delta).unwrap();
    assert_eq!(delta.number, 3);
    assert_eq!(delta.base.as_ref().map(|b| b.number), Some(2));
    store
        .publish_crl(
            &nes,
            delta.number,
            8,
            0,
            &crate::Principal::HostOperator,
            t0(0),
        )
        .unwrap();
    let latest_delta = store.latest_crl(&nes, CrlKind::Delta).unwrap().unwrap();
    assert_eq!(
        (latest_delta.number, latest_delta.base_number),
        (3, Some(2))
    );
    assert_eq!(reserve(store, &nes, CrlKind::Full).unwrap().number, 4);
    // Another issuer has a sequence of its own.
    let other = IssuerId::parse("other-ca").unwrap();
    add_issuing_ca(store, &other);
    assert_eq!(reserve(store, &other, CrlKind::Full).unwrap().number, 1);
    let root = IssuerId::parse("root-ca").unwrap();
    store
        .add_ca(
            crate::store::CaRecord {
                id: root.clone(),
                role: crate::store::CaRole::Root,
                key_label: "root-ca".into(),
                cert_der: vec![0x30, 0x00],
                ocsp_key_label: None,
                ocsp_cert_der: None,
                supersedes: None,
            },
            &crate::Principal::HostOperator,
            t0(0),
        )
        .unwrap();
    assert_eq!(reserve(store, &root, CrlKind::Full).unwrap().number, 1);
    match reserve(store, &root, CrlKind::Delta) {
        Err(crate::CaError::Invalid { field, .. } | crate::CaError::Conflict { field, .. }) => {
            assert_eq!(field, "delta")
        }
        other => panic!("a root's delta must be refused on `delta`, got {other:?}"),
    }
}

/// A full CRL lists what is suspended or revoked now; a delta since its watermark lists what
/// was suspended or revoked after it, and a released hold the base listed (removeFromCRL).
pub fn crl_entries_follow_the_lifecycle(store: &dyn Store) {
    let nes = issuer();
    add_issuing_ca(store, &nes);
    let held = issue(store, &nes);
    let kept = issue(store, &nes);
    let revoked = issue(store, &nes);
    change(
        store,
        (&nes, &held),
        "hold-1",
        LifecycleAction::Suspend,
        t0(1),
    )
    .unwrap();

    let mut listed = Vec::new();
    let base = store
        .scan_revoked(&nes, &mut |e: RevokedEntry| {
            listed.push(e);
            Ok(())
        })
        .unwrap();
    assert_eq!(listed.iter().map(|e| e.serial).collect::<Vec<_>>(), [held]);
    assert_eq!(listed[0].revocation.at, t0(1));

    let (nothing, same) = store.delta_since(&nes, base).unwrap();
    assert_eq!((nothing, same), (Vec::new(), base));

    change(
        store,
        (&nes, &held),
        "release-1",
        LifecycleAction::Release,
        t0(2),
    )
    .unwrap();
    change(
        store,
        (&nes, &revoked),
        "revoke-1",
        LifecycleAction::Revoke {
            reason: None,
            invalidity_date: None,
        },
        t0(3),
    )
    .unwrap();
    let (delta, watermark) = store.delta_since(&nes, base).unwrap();
    assert!(watermark > base);
    let mut expected = vec![
        DeltaEntry::Removed {
            serial: held,
            at: t0(2),
        },
        DeltaEntry::Listed(RevokedEntry {
            serial: revoked,
            revocation: crate::store::Revocation {
                at: t0(3),
                reason: None,
                invalidity_date: None,
            },
        }),
    ];
    let serial_of = |e: &DeltaEntry| match e {
        DeltaEntry::Listed(r) => r.serial,
        DeltaEntry::Removed { serial, .. } => *serial,
    };
    // Compared in any order: the order of a CRL's entries is not part of the contract.
    let mut delta = delta;
    delta.sort_by_key(|e| serial_of(e).to_hex());
    expected.sort_by_key(|e| serial_of(e).to_hex());
    assert_eq!(delta, expected);
    assert!(!delta.iter().any(|e| serial_of(e) == kept));
}
