//! The holders' portal: contacts per certificate, attempts counted per key in a window
//! (parallel ones each counted), a session's SMS code spent once, notices queued with a
//! status change and reminders once per band.

use super::{change, issue, issuer, t0};
use crate::lifecycle::LifecycleAction;
use crate::store::{HolderContact, HolderSessionStage, NewHolderSession, OutboxKind, Store};
use crate::Principal;

fn contact() -> HolderContact {
    HolderContact {
        mobile: Some("+905321234567".into()),
        email: Some("ayse@example.com".into()),
    }
}

fn session(id: &str) -> NewHolderSession {
    NewHolderSession {
        id: id.into(),
        token_sha256: format!("sha-{id}"),
        tckn: crate::Tckn::parse("10000000146").unwrap(),
        mobile: "+905321234567".into(),
        expires_at: t0(3_600),
    }
}

pub fn holder_contacts_are_kept_per_certificate(store: &dyn Store) {
    let serial = issue(store, &issuer());
    assert_eq!(store.holder_contact(&issuer(), &serial).unwrap(), None);
    store
        .set_holder_contact(
            &issuer(),
            &serial,
            &contact(),
            &Principal::HostOperator,
            t0(1),
        )
        .unwrap();
    assert_eq!(
        store.holder_contact(&issuer(), &serial).unwrap(),
        Some(contact())
    );
    // Recorded once: a second record (a replayed request) changes nothing.
    let other = HolderContact {
        mobile: Some("+905551112233".into()),
        email: None,
    };
    store
        .set_holder_contact(&issuer(), &serial, &other, &Principal::HostOperator, t0(2))
        .unwrap();
    assert_eq!(
        store.holder_contact(&issuer(), &serial).unwrap(),
        Some(contact())
    );
    // A certificate nesca does not have takes none.
    assert!(store
        .set_holder_contact(
            &issuer(),
            &crate::Serial::random(),
            &contact(),
            &Principal::HostOperator,
            t0(3)
        )
        .is_err());
}

pub fn portal_attempts_are_counted_in_windows(store: &dyn Store) {
    let n = |at| store.count_portal_attempt("holder:1", 100, t0(at)).unwrap();
    assert_eq!((n(0), n(10), n(99)), (1, 2, 3));
    store.forgive_portal_attempt("holder:1").unwrap();
    assert_eq!(n(99), 3);
    // The window from the first attempt is over: counting starts again.
    assert_eq!((n(100), n(101)), (1, 2));
    assert_eq!(
        store
            .count_portal_attempt("source:x", 100, t0(101))
            .unwrap(),
        1
    );
    // Never below zero.
    for _ in 0..5 {
        store.forgive_portal_attempt("source:x").unwrap();
    }
    assert_eq!(
        store
            .count_portal_attempt("source:x", 100, t0(102))
            .unwrap(),
        1
    );
    // A counter goes once its own window is over; a longer window's counter stays.
    let count =
        |key: &str, window: i64, at: i64| store.count_portal_attempt(key, window, t0(at)).unwrap();
    assert_eq!(count("holder-day:1", 1_000, 100), 1);
    assert_eq!(store.sweep_portal(t0(199), t0(0)).unwrap(), 0);
    assert_eq!(store.sweep_portal(t0(200), t0(0)).unwrap(), 1);
    assert_eq!(count("holder:1", 100, 202), 1);
    assert_eq!(count("source:x", 100, 150), 2);
    assert_eq!(count("holder-day:1", 1_000, 300), 2);
    // Parallel attempts are each counted.
    let counts: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| store.count_portal_attempt("holder:2", 100, t0(0)).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=8).collect::<Vec<_>>(), "{counts:?}");
}

pub fn holder_sessions_spend_their_code_once(store: &dyn Store) {
    let by = Principal::HostOperator;
    store
        .start_holder_session(&session("s1"), &by, t0(0))
        .unwrap();
    let queued: Vec<_> = store
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|(m, _)| m.kind == OutboxKind::HolderSmsCode && m.subject_ref == "s1")
        .collect();
    assert_eq!(
        queued.len(),
        1,
        "the code's message is queued with the session"
    );
    let s = store.holder_session("sha-s1").unwrap().unwrap();
    assert_eq!(
        (s.stage, s.code_hash.as_deref()),
        (HolderSessionStage::AwaitingCode, None)
    );
    assert_eq!(store.holder_session_by_id("s1").unwrap(), Some(s));
    assert!(store
        .holder_code_issued("s1", "h1", t0(300), &by, t0(1))
        .unwrap());
    // The wrong hash does not sign in; the right one once.
    assert!(!store
        .holder_signed_in("s1", "h0", "sha-s1b", &by, t0(2))
        .unwrap());
    assert!(store
        .holder_signed_in("s1", "h1", "sha-s1b", &by, t0(2))
        .unwrap());
    assert!(!store
        .holder_signed_in("s1", "h1", "sha-s1c", &by, t0(3))
        .unwrap());
    // Signed in under the new token; the old one names nothing.
    assert_eq!(store.holder_session("sha-s1").unwrap(), None);
    let s = store.holder_session("sha-s1b").unwrap().unwrap();
    assert_eq!((s.stage, s.code_hash), (HolderSessionStage::SignedIn, None));
    // The sweep leaves a live session alone.
    store.sweep_portal(t0(0), t0(3_600)).unwrap();
    assert!(store.holder_session("sha-s1b").unwrap().is_some());
    // A signed-in session takes no new code.
    assert!(!store
        .holder_code_issued("s1", "h2", t0(300), &by, t0(4))
        .unwrap());
    store.touch_holder_session("s1", t0(50)).unwrap();
    assert_eq!(
        store
            .holder_session("sha-s1b")
            .unwrap()
            .unwrap()
            .last_seen_at,
        t0(50)
    );
    store.end_holder_session("s1", &by, t0(60)).unwrap();
    assert_eq!(
        store.holder_session("sha-s1b").unwrap().unwrap().stage,
        HolderSessionStage::Ended
    );

    // Wrong codes: counted, and the last one ends the session.
    store
        .start_holder_session(&session("s2"), &by, t0(0))
        .unwrap();
    store
        .holder_code_issued("s2", "h1", t0(300), &by, t0(1))
        .unwrap();
    let records = super::audit_records(store);
    assert_eq!(
        store.holder_code_failed("s2", 3, &by, t0(2)).unwrap(),
        Some(1)
    );
    assert_eq!(
        store.holder_code_failed("s2", 3, &by, t0(2)).unwrap(),
        Some(2)
    );
    assert_eq!(
        store.holder_code_failed("s2", 3, &by, t0(2)).unwrap(),
        Some(3)
    );
    // Ended: a further wrong code counts nothing and records nothing.
    assert_eq!(store.holder_code_failed("s2", 3, &by, t0(2)).unwrap(), None);
    assert_eq!(super::audit_records(store), records + 3);
    let s = store.holder_session("sha-s2").unwrap().unwrap();
    assert_eq!((s.stage, s.code_hash), (HolderSessionStage::Ended, None));
    assert!(!store
        .holder_signed_in("s2", "h1", "sha-s2b", &by, t0(3))
        .unwrap());
    // An expired session takes no code.
    store
        .start_holder_session(&session("s3"), &by, t0(0))
        .unwrap();
    assert!(!store
        .holder_code_issued("s3", "h1", t0(4_000), &by, t0(3_600))
        .unwrap());
    assert_eq!(store.holder_session("sha-none").unwrap(), None);
    // Expired sessions are swept.
    assert_eq!(store.sweep_portal(t0(0), t0(3_601)).unwrap(), 3);
    assert_eq!(store.holder_session("sha-s3").unwrap(), None);
}

pub fn notices_follow_status_changes_and_reminders_go_once(store: &dyn Store) {
    let by = Principal::HostOperator;
    let serial = issue(store, &issuer());
    let notices = |kind| {
        store
            .outbox()
            .unwrap()
            .into_iter()
            .filter(|(m, _)| m.kind == kind)
            .map(|(m, _)| (m.subject_ref, m.recipient))
            .collect::<Vec<_>>()
    };
    // No contact on record: a change queues nothing.
    change(
        store,
        (&issuer(), &serial),
        "r1",
        LifecycleAction::Suspend,
        t0(10),
    )
    .unwrap();
    assert!(notices(OutboxKind::StatusNotice).is_empty());
    store
        .set_holder_contact(&issuer(), &serial, &contact(), &by, t0(11))
        .unwrap();
    change(
        store,
        (&issuer(), &serial),
        "r2",
        LifecycleAction::Release,
        t0(12),
    )
    .unwrap();
    let sent = notices(OutboxKind::StatusNotice);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(
        |(s, _)| s.starts_with(&format!("nes-ca/{}/", serial.to_hex())) && s.ends_with("/active")
    ));
    // A code queued after the notices goes before them: someone is waiting for it.
    store
        .start_holder_session(&session("after-notices"), &by, t0(20))
        .unwrap();
    let due = store.outbox_due(t0(30), 10).unwrap();
    assert_eq!(due.len(), 3, "{due:?}");
    assert_eq!(
        (due[0].kind, due[0].subject_ref.as_str()),
        (OutboxKind::HolderSmsCode, "after-notices")
    );
    // A replayed request changes nothing and announces nothing.
    change(
        store,
        (&issuer(), &serial),
        "r2",
        LifecycleAction::Release,
        t0(13),
    )
    .unwrap();
    assert_eq!(notices(OutboxKind::StatusNotice).len(), 2);

    // The certificate expires at t0(365 days): the band of 60 days (after 30) is due from 60
    // days before, once; the 30-day band from 30 days before.
    let day = 86_400;
    let band = |days: i64, after: i64, now: i64| {
        store
            .queue_expiry_reminders(
                days as u32,
                (t0(now + after * day), t0(now + days * day)),
                t0(now),
            )
            .unwrap()
    };
    assert_eq!(band(60, 30, 0), 0);
    assert_eq!(band(60, 30, (365 - 59) * day), 2);
    assert_eq!(band(60, 30, (365 - 58) * day), 0, "queued once");
    assert_eq!(band(30, 7, (365 - 58) * day), 0, "not due yet");
    assert_eq!(band(30, 7, (365 - 29) * day), 2);
    assert_eq!(band(7, 0, (365 - 6) * day), 2);
    let mut bands: Vec<String> = notices(OutboxKind::ExpiryReminder)
        .into_iter()
        .map(|(s, _)| s.rsplit('/').next().unwrap().to_owned())
        .collect();
    bands.sort();
    bands.dedup();
    assert_eq!(bands, ["30", "60", "7"]);
    // Past notAfter: no reminder.
    assert_eq!(band(7, 0, 366 * day), 0);
    // Suspended: none either.
    let other = issue(store, &issuer());
    store
        .set_holder_contact(&issuer(), &other, &contact(), &by, t0(14))
        .unwrap();
    change(
        store,
        (&issuer(), &other),
        "r3",
        LifecycleAction::Suspend,
        t0(15),
    )
    .unwrap();
    assert_eq!(band(7, 0, (365 - 5) * day), 0);
}

pub fn security_word_changes_are_announced_once_per_recipient(store: &dyn Store) {
    let by = Principal::HostOperator;
    let (a, b) = (issue(store, &issuer()), issue(store, &issuer()));
    for serial in [&a, &b] {
        store
            .set_holder_contact(&issuer(), serial, &contact(), &by, t0(1))
            .unwrap();
    }
    let holder = crate::Tckn::parse("10000000146").unwrap();
    store
        .replace_security_words(
            &holder,
            &[(issuer(), a), (issuer(), b)],
            "$argon2id$x",
            &by,
            t0(2),
        )
        .unwrap();
    let notices: Vec<_> = store
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|(m, _)| m.kind == OutboxKind::SecurityWordNotice)
        .map(|(m, _)| (m.subject_ref, m.recipient))
        .collect();
    assert_eq!(notices.len(), 2, "one per recipient: {notices:?}");
    assert!(notices
        .iter()
        .all(|(s, _)| s == &format!("10000000146/{}", t0(2).secs())));
    for serial in [&a, &b] {
        assert_eq!(
            store
                .holder_security_word(&issuer(), serial)
                .unwrap()
                .as_deref(),
            Some("$argon2id$x")
        );
    }
}
