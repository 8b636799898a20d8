//! Commitments (taahhütname): a certificate waits suspended for its holder's signed
//! commitment; acceptance releases it and supersedes the certificate it overwrites; an
//! overdue commitment revokes it (cessationOfOperation). What is in time, what is live and
//! what is overdue is `ra::commitment`'s to decide; the store writes what it is told, and only
//! while the rows are still as the decision read them.

use super::{audit_records, issue, issuer, reservation, t0, T0};
use crate::lifecycle::{LifecycleAction, RevocationReason};
use crate::serial::{IssuerId, Serial};
use crate::store::{
    ApplicationIssued, CertStatus, CommitmentAcceptance, CommitmentExpiry, CommitmentStatus,
    Completion, ExpectedCertificate, FinishedApplication, NewCommitment, Reserved, Store,
};
use crate::UnixTime;

const DEADLINE: UnixTime = UnixTime::from_secs(T0 + 30 * 86_400);

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
                    channel: super::channel("kdhs"),
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

/// A certificate issued to wait for its commitment is stored and suspended in one transaction:
/// a reader (the OCSP responder, the CRL, `cert show`) polling its serial while it is
/// completed sees it reserved (unknown to OCSP) and then suspended, never active in between.
/// The history's `active → suspended` transition at issuance is written in that same
/// transaction.
pub fn a_held_certificate_is_never_seen_active(store: &dyn Store) {
    let nes = issuer();
    let op = crate::Principal::HostOperator;
    let serial = Serial::random();
    assert_eq!(
        store
            .reserve(reservation(&nes, serial, "CN=AYŞE YILMAZ"))
            .unwrap(),
        Reserved::Ok
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    let seen = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut seen = Vec::new();
            // Bounded: until well after the writer is done, at most a million reads.
            let mut after = 0;
            for _ in 0..1_000_000 {
                let status = store.get(Some(&nes), &serial).unwrap().unwrap().status;
                if seen.last() != Some(&status) {
                    seen.push(status);
                }
                if done.load(std::sync::atomic::Ordering::Acquire) {
                    after += 1;
                    if after > 50 {
                        break;
                    }
                }
            }
            seen
        });
        store
            .complete(
                &nes,
                &serial,
                vec![0x30, 0x01, 0x00],
                Completion {
                    hold: true,
                    application: None,
                },
                &op,
                t0(0),
            )
            .unwrap();
        done.store(true, std::sync::atomic::Ordering::Release);
        reader.join().unwrap()
    });
    assert!(
        !seen.contains(&CertStatus::Active),
        "a reader saw the held certificate active: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&CertStatus::Suspended), "{seen:?}");
    let history = store.transitions(&nes, &serial).unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (history[0].from, history[0].to, history[0].at),
        (CertStatus::Active, CertStatus::Suspended, t0(0))
    );
}

fn status(store: &dyn Store, nes: &IssuerId, serial: &Serial) -> CertStatus {
    store.get(Some(nes), serial).unwrap().unwrap().status
}

/// An acceptance of `serial`'s pending commitment, releasing it from suspended, superseding
/// `supersede` (with the status it is expected to have).
fn acceptance(
    nes: &IssuerId,
    serial: &Serial,
    evidence: &[u8],
    supersede: Option<(Serial, CertStatus)>,
    at: UnixTime,
) -> CommitmentAcceptance {
    CommitmentAcceptance {
        issuer: nes.clone(),
        serial: *serial,
        evidence: evidence.to_vec(),
        from: CommitmentStatus::Pending,
        certificate_from: CertStatus::Suspended,
        supersede: supersede.map(|(serial, status)| ExpectedCertificate { serial, status }),
        actor: crate::Principal::HostOperator,
        at,
    }
}

/// An expiry of `serial`'s pending commitment, revoking it from `revoke_from`.
fn expiry(
    nes: &IssuerId,
    serial: &Serial,
    revoke_from: Option<CertStatus>,
    at: UnixTime,
) -> CommitmentExpiry {
    CommitmentExpiry {
        issuer: nes.clone(),
        serial: *serial,
        from: CommitmentStatus::Pending,
        revoke_from,
        actor: crate::Principal::System(crate::SystemTask::CommitmentDeadline),
        at,
    }
}

fn is_conflict(r: crate::error::Result<()>) -> bool {
    matches!(r, Err(crate::error::CaError::Conflict { .. }))
}

/// The certificate is suspended while its commitment is pending (that a request may not
/// release it is `ra::lifecycle`'s rule, not the store's); an acceptance keeps the evidence, releases the certificate and
/// revokes the overwritten one (superseded) in one write; accepting again from `pending` is
/// refused as a conflict with nothing written.
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
    assert_eq!(c.created_at, UnixTime::from_secs(T0));
    assert_eq!(status(store, &nes, &serial), CertStatus::Suspended);

    store
        .accept_commitment(acceptance(
            &nes,
            &serial,
            b"evidence",
            Some((old, CertStatus::Active)),
            DEADLINE,
        ))
        .unwrap();
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

    // No longer pending: another acceptance is a conflict, nothing written.
    let before = audit_records(store);
    assert!(is_conflict(store.accept_commitment(acceptance(
        &nes, &serial, b"other", None, DEADLINE
    ))));
    assert_eq!(audit_records(store), before);
    assert_eq!(
        store
            .commitment(&serial)
            .unwrap()
            .unwrap()
            .evidence
            .as_deref(),
        Some(&b"evidence"[..])
    );

    // A certificate awaiting nothing has no commitment to accept.
    let plain = issue(store, &nes);
    let at = UnixTime::from_secs(T0);
    let before = audit_records(store);
    assert!(store
        .accept_commitment(acceptance(&nes, &plain, b"evidence", None, at))
        .is_err());
    assert_eq!(audit_records(store), before);
}

/// An acceptance whose expectations went stale — the overwritten certificate or the
/// certificate itself changed status since it was read — is refused as a conflict: nothing
/// written (the commitment stays pending, no certificate changes), no audit record.
pub fn stale_commitment_acceptance_is_a_conflict(store: &dyn Store) {
    let nes = issuer();
    let old = issue(store, &nes);
    let serial = issue_awaiting(store, &nes, "ref-1", Some(old));
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
    let at = UnixTime::from_secs(T0 + 2);
    let before = audit_records(store);
    // Read while the overwritten certificate was active; it has been revoked since.
    assert!(is_conflict(store.accept_commitment(acceptance(
        &nes,
        &serial,
        b"evidence",
        Some((old, CertStatus::Active)),
        at
    ))));
    // The certificate itself was read suspended; expected active it is a conflict too.
    assert!(is_conflict(store.accept_commitment(CommitmentAcceptance {
        certificate_from: CertStatus::Active,
        ..acceptance(&nes, &serial, b"evidence", None, at)
    })));
    assert_eq!(audit_records(store), before);
    let c = store.commitment(&serial).unwrap().unwrap();
    assert_eq!((c.status, c.evidence), (CommitmentStatus::Pending, None));
    assert_eq!(status(store, &nes, &serial), CertStatus::Suspended);
    let kept = store.status(&nes, &old).unwrap().unwrap();
    assert_eq!(
        kept.revocation.and_then(|r| r.reason),
        Some(RevocationReason::KeyCompromise)
    );

    // As read now: accepted, and the revoked certificate is left as it is.
    store
        .accept_commitment(acceptance(&nes, &serial, b"evidence", None, at))
        .unwrap();
    assert_eq!(status(store, &nes, &serial), CertStatus::Active);
}

/// Pending commitments past their deadline are listed (not those on the deadline second,
/// nor accepted ones); an expiry marks one expired and revokes its certificate
/// (cessationOfOperation), after which it is no longer listed; a stale expiry (the
/// commitment or the certificate moved since) is a conflict with nothing written.
pub fn overdue_commitments_expire(store: &dyn Store) {
    let nes = issuer();
    let overdue = issue_awaiting(store, &nes, "ref-1", None);
    let accepted = issue_awaiting(store, &nes, "ref-2", None);
    let revoked_meanwhile = issue_awaiting(store, &nes, "ref-3", None);
    let at = UnixTime::from_secs(T0 + 1);
    store
        .accept_commitment(acceptance(&nes, &accepted, b"evidence", None, at))
        .unwrap();

    let due = |at: UnixTime| -> Vec<Serial> {
        let mut v: Vec<Serial> = store
            .pending_commitments_due(at, 10)
            .unwrap()
            .into_iter()
            .map(|c| c.serial)
            .collect();
        v.sort_by_key(|s| s.to_hex());
        v
    };
    assert_eq!(due(DEADLINE), vec![]);
    let mut both = vec![overdue, revoked_meanwhile];
    both.sort_by_key(|s| s.to_hex());
    let late = DEADLINE.plus_secs(1);
    assert_eq!(due(late), both);
    assert_eq!(store.pending_commitments_due(late, 1).unwrap().len(), 1);

    store
        .expire_commitment(expiry(&nes, &overdue, Some(CertStatus::Suspended), late))
        .unwrap();
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
    assert_eq!(due(late), vec![revoked_meanwhile]);
    assert_eq!(status(store, &nes, &accepted), CertStatus::Active);
    assert_eq!(
        store.commitment(&accepted).unwrap().unwrap().status,
        CommitmentStatus::Accepted
    );

    // Stale: expired already; or its certificate was revoked since it was read suspended.
    super::change(
        store,
        (&nes, &revoked_meanwhile),
        "lost",
        LifecycleAction::Revoke {
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        },
        t0(2),
    )
    .unwrap();
    let before = audit_records(store);
    assert!(is_conflict(store.expire_commitment(expiry(
        &nes,
        &overdue,
        Some(CertStatus::Suspended),
        late
    ))));
    assert!(is_conflict(store.expire_commitment(expiry(
        &nes,
        &revoked_meanwhile,
        Some(CertStatus::Suspended),
        late
    ))));
    assert_eq!(audit_records(store), before);
    assert_eq!(due(late), vec![revoked_meanwhile]);

    // As read now: only the commitment expires; the certificate keeps its own reason.
    store
        .expire_commitment(expiry(&nes, &revoked_meanwhile, None, late))
        .unwrap();
    assert_eq!(audit_records(store), before + 1);
    assert_eq!(due(late), vec![]);
    let kept = store.status(&nes, &revoked_meanwhile).unwrap().unwrap();
    assert_eq!(
        kept.revocation.and_then(|r| r.reason),
        Some(RevocationReason::KeyCompromise)
    );
}
