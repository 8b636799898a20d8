//! Commitments (taahhütname): a certificate waits suspended for its holder's signed
//! commitment; acceptance releases it and supersedes the certificate it overwrites; an
//! overdue commitment revokes it (cessationOfOperation).

use super::{audit_records, issue, issuer, reservation, T0};
use crate::lifecycle::{LifecycleAction, RevocationReason};
use crate::serial::{IssuerId, Serial};
use crate::store::{
    ApplicationIssued, CertStatus, CommitmentAcceptance, CommitmentStatus, Completion,
    FinishedApplication, NewCommitment, Reserved, Store,
};

const DEADLINE: i64 = T0 + 30 * 86_400;

/// Issues a certificate through channel application `channel_ref`, held until its commitment
/// (deadline [`DEADLINE`]) arrives; `overwrite` is the certificate it replaces on the card.
fn issue_awaiting(
    store: &dyn Store,
    nes: &IssuerId,
    channel_ref: &str,
    overwrite: Option<Serial>,
) -> Serial {
    let op = crate::Principal::HostOperator;
    assert_eq!(
        store
            .begin_application(&super::channel("kdhs"), channel_ref, &op, super::t0(0))
            .unwrap(),
        None
    );
    let serial = Serial::random();
    assert_eq!(
        store
            .reserve(reservation(nes, serial, "CN=AYŞE YILMAZ"))
            .unwrap(),
        Reserved::Ok
    );
    store
        .complete(
            nes,
            &serial,
            vec![0x30, 0x01, 0x00],
            Completion {
                hold: true,
                application: Some(FinishedApplication {
                    channel: "kdhs".into(),
                    channel_ref: channel_ref.into(),
                    issued: ApplicationIssued {
                        serial,
                        wrapped_key: None,
                        commitment: Some(NewCommitment {
                            text: "taahhüt".into(),
                            sha256_hex: "00".repeat(32),
                            deadline: DEADLINE,
                            overwrite,
                        }),
                    },
                    production: None,
                }),
            },
            &op,
            super::t0(0),
        )
        .unwrap();
    serial
}

fn status(store: &dyn Store, nes: &IssuerId, serial: &Serial) -> CertStatus {
    store.get(Some(nes), serial).unwrap().unwrap().status
}

fn accept(
    store: &dyn Store,
    nes: &IssuerId,
    serial: &Serial,
    evidence: &[u8],
    at: i64,
) -> crate::error::Result<crate::store::CommitmentOutcome> {
    store.accept_commitment(CommitmentAcceptance {
        issuer: nes.clone(),
        serial: *serial,
        evidence: evidence.to_vec(),
        actor: crate::Principal::HostOperator,
        at,
    })
}

/// The certificate is suspended while its commitment is pending and cannot be released by a
/// plain lifecycle change; a late commitment is refused and leaves nothing behind; an
/// accepted one releases the certificate and revokes the overwritten one (superseded); the
/// same evidence again answers `replayed`, other evidence is refused.
pub fn commitment_acceptance_releases_and_supersedes(store: &dyn Store) {
    let nes = issuer();
    let old = issue(store, &nes);
    let serial = issue_awaiting(store, &nes, "ref-1", Some(old));
    assert_eq!(status(store, &nes, &serial), CertStatus::Suspended);
    let c = store.commitment(&serial).unwrap().unwrap();
    assert_eq!(
        (c.status, c.deadline, c.overwrite, c.evidence.as_deref()),
        (CommitmentStatus::Pending, DEADLINE, Some(old), None)
    );
    // Pending: the certificate stays suspended.
    assert!(super::change(
        store,
        (&nes, &serial),
        "release-early",
        LifecycleAction::Release,
        super::t0(1)
    )
    .is_err());
    assert_eq!(status(store, &nes, &serial), CertStatus::Suspended);

    // Late: refused, nothing written.
    let before = audit_records(store);
    assert!(accept(store, &nes, &serial, b"evidence", DEADLINE + 1).is_err());
    assert_eq!(audit_records(store), before);
    let c = store.commitment(&serial).unwrap().unwrap();
    assert_eq!((c.status, c.evidence), (CommitmentStatus::Pending, None));
    assert_eq!(status(store, &nes, &serial), CertStatus::Suspended);
    assert_eq!(status(store, &nes, &old), CertStatus::Active);

    // On the deadline second: accepted.
    let out = accept(store, &nes, &serial, b"evidence", DEADLINE).unwrap();
    assert_eq!((out.superseded, out.replayed), (Some(old), false));
    assert_eq!(status(store, &nes, &serial), CertStatus::Active);
    assert_eq!(status(store, &nes, &old), CertStatus::Revoked);
    let revoked = store.status(&nes, &old).unwrap().unwrap();
    assert_eq!(
        revoked.revocation.and_then(|r| r.reason),
        Some(RevocationReason::Superseded)
    );
    let c = store.commitment(&serial).unwrap().unwrap();
    assert_eq!(
        (c.status, c.evidence.as_deref(), c.accepted_at),
        (
            CommitmentStatus::Accepted,
            Some(&b"evidence"[..]),
            Some(DEADLINE)
        )
    );

    // Replay: same evidence answers replayed, nothing written; other evidence refused.
    let before = audit_records(store);
    let again = accept(store, &nes, &serial, b"evidence", DEADLINE + 5).unwrap();
    assert_eq!((again.superseded, again.replayed), (Some(old), true));
    assert!(accept(store, &nes, &serial, b"other", DEADLINE).is_err());
    assert_eq!(audit_records(store), before);

    // A certificate awaiting nothing has no commitment to accept.
    let plain = issue(store, &nes);
    assert!(accept(store, &nes, &plain, b"evidence", T0).is_err());
}

/// The overwritten certificate is revoked as superseded only if it is still live: one
/// already revoked keeps its own reason and is not reported.
pub fn commitment_supersedes_only_a_live_certificate(store: &dyn Store) {
    let nes = issuer();
    let old = issue(store, &nes);
    super::change(
        store,
        (&nes, &old),
        "lost",
        LifecycleAction::Revoke {
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        },
        super::t0(1),
    )
    .unwrap();
    let serial = issue_awaiting(store, &nes, "ref-1", Some(old));
    let out = accept(store, &nes, &serial, b"evidence", T0 + 2).unwrap();
    assert_eq!((out.superseded, out.replayed), (None, false));
    assert_eq!(status(store, &nes, &serial), CertStatus::Active);
    let kept = store.status(&nes, &old).unwrap().unwrap();
    assert_eq!(
        kept.revocation.and_then(|r| r.reason),
        Some(RevocationReason::KeyCompromise)
    );
}

/// Past its deadline a pending commitment expires: the certificate is revoked
/// (cessationOfOperation) and a late acceptance is refused; accepted and not-yet-due
/// commitments are untouched; expiring again revokes nothing more.
pub fn overdue_commitments_expire(store: &dyn Store) {
    let nes = issuer();
    let op = crate::Principal::HostOperator;
    let overdue = issue_awaiting(store, &nes, "ref-1", None);
    let accepted = issue_awaiting(store, &nes, "ref-2", None);
    accept(store, &nes, &accepted, b"evidence", T0 + 1).unwrap();

    // On the deadline second nothing is due yet.
    assert_eq!(store.expire_commitments(&op, DEADLINE).unwrap(), vec![]);
    assert_eq!(status(store, &nes, &overdue), CertStatus::Suspended);

    assert_eq!(
        store.expire_commitments(&op, DEADLINE + 1).unwrap(),
        vec![overdue]
    );
    assert_eq!(status(store, &nes, &overdue), CertStatus::Revoked);
    let st = store.status(&nes, &overdue).unwrap().unwrap();
    assert_eq!(
        st.revocation.and_then(|r| r.reason),
        Some(RevocationReason::CessationOfOperation)
    );
    assert_eq!(
        store.commitment(&overdue).unwrap().unwrap().status,
        CommitmentStatus::Expired
    );
    assert_eq!(status(store, &nes, &accepted), CertStatus::Active);
    assert_eq!(
        store.commitment(&accepted).unwrap().unwrap().status,
        CommitmentStatus::Accepted
    );

    let before = audit_records(store);
    assert!(accept(store, &nes, &overdue, b"evidence", DEADLINE).is_err());
    assert_eq!(store.expire_commitments(&op, DEADLINE + 2).unwrap(), vec![]);
    assert_eq!(audit_records(store), before);
}
