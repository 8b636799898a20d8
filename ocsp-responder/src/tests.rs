//! Behaviour of the protocol core, the cache and the refresher, through the public API.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use const_oid::db::rfc6960::{ID_PKIX_OCSP_EXTENDED_REVOKE, ID_PKIX_OCSP_NONCE};
use der::asn1::{Null, OctetString};
use der::{Decode, Encode};
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha384};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponseStatus, ResponderId,
    SingleResponse,
};

use nesca_ca_types::RevocationReason;
use nesca_ca_types::{Clock, Serial, TbsSigner as _, UnixTime};

use crate::cache::CacheKey;
use crate::cert_id::CertIdForm;
use crate::testkit::{decode, request, responder, serial, FakeSource, Pki};
use crate::{CertState, OcspError, Outcome, Responder, ResponderConfig};

fn setup() -> (
    Pki,
    Arc<FakeSource>,
    Arc<Responder>,
    Arc<nesca_ca_types::FixedClock>,
) {
    setup_with(ResponderConfig::default())
}

fn setup_with(
    config: ResponderConfig,
) -> (
    Pki,
    Arc<FakeSource>,
    Arc<Responder>,
    Arc<nesca_ca_types::FixedClock>,
) {
    let pki = Pki::new();
    let source = Arc::new(FakeSource::default());
    let (r, clock) = responder(&pki, source.clone(), config);
    (pki, source, r, clock)
}

fn one(basic: &BasicOcspResponse) -> &SingleResponse {
    assert_eq!(basic.tbs_response_data.responses.len(), 1);
    &basic.tbs_response_data.responses[0]
}

fn ask(r: &Responder, der: &[u8]) -> (Outcome, OcspResponseStatus, Option<BasicOcspResponse>) {
    let a = r.answer(der);
    let (status, basic) = decode(&a.der);
    (a.outcome, status, basic)
}

fn revoked_info(s: &SingleResponse) -> (std::time::SystemTime, Option<CrlReason>) {
    match s.cert_status {
        CertStatus::Revoked(info) => (
            info.revocation_time.0.to_system_time(),
            info.revocation_reason,
        ),
        other => panic!("expected revoked, got {other:?}"),
    }
}

#[test]
fn good_response_has_every_field_rfc_6960_asks() {
    let (pki, source, r, clock) = setup();
    let s = serial(0x1234);
    source.set("nes-ca", s, CertState::Good);
    let cert_id = pki.cert_id::<Sha1>(&s);
    let (outcome, status, basic) = ask(&r, &request(vec![cert_id.clone()], None));
    assert_eq!(outcome, Outcome::Signed);
    assert_eq!(status, OcspResponseStatus::Successful);
    let basic = basic.unwrap();
    let data = &basic.tbs_response_data;
    let key_hash = Sha1::digest(
        pki.signer_cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes(),
    );
    assert_eq!(
        data.responder_id,
        ResponderId::ByKey(OctetString::new(key_hash.to_vec()).unwrap())
    );
    let now = clock.now();
    assert_eq!(data.produced_at.0.to_system_time(), now);
    assert!(data.response_extensions.is_none());
    let single = one(&basic);
    assert_eq!(single.cert_id, cert_id);
    assert_eq!(single.cert_status, CertStatus::good());
    assert_eq!(single.this_update.0.to_system_time(), now);
    assert_eq!(
        single.next_update.unwrap().0.to_system_time(),
        now + Duration::from_secs(86400)
    );
    assert_eq!(basic.certs.as_deref(), Some(&[pki.signer_cert.clone()][..]));
    assert_eq!(
        basic.signature_algorithm.oid,
        pki.signer_cert.signature_algorithm.oid
    );
    // GeneralizedTime, Zulu, no fractions: 15 octets "YYYYMMDDHHMMSSZ".
    let t = data.produced_at.to_der().unwrap();
    assert_eq!(&t[..2], &[0x18, 15]);
    assert_eq!(t[16], b'Z');
}

#[test]
fn revoked_with_reason_and_without() {
    let (pki, source, r, _) = setup();
    let at = UnixTime::from_secs(1_700_000_000);
    let (a, b) = (serial(1), serial(2));
    source.set(
        "nes-ca",
        a,
        CertState::Revoked {
            time: at,
            reason: Some(RevocationReason::KeyCompromise),
        },
    );
    source.set(
        "nes-ca",
        b,
        CertState::Revoked {
            time: at,
            reason: None,
        },
    );
    let (_, _, basic) = ask(&r, &request(vec![pki.cert_id::<Sha1>(&a)], None));
    let (time, reason) = revoked_info(one(&basic.unwrap()));
    assert_eq!(time, at.to_system());
    assert_eq!(reason, Some(CrlReason::KeyCompromise));
    let (_, _, basic) = ask(&r, &request(vec![pki.cert_id::<Sha1>(&b)], None));
    assert_eq!(revoked_info(one(&basic.unwrap())).1, None);
}

#[test]
fn suspended_is_certificate_hold() {
    let (pki, source, r, _) = setup();
    let s = serial(3);
    source.set(
        "nes-ca",
        s,
        CertState::Revoked {
            time: UnixTime::from_secs(1_750_000_000),
            reason: Some(RevocationReason::CertificateHold),
        },
    );
    let (_, _, basic) = ask(&r, &request(vec![pki.cert_id::<Sha1>(&s)], None));
    let basic = basic.unwrap();
    assert_eq!(
        revoked_info(one(&basic)).1,
        Some(CrlReason::CertificateHold)
    );
    assert!(basic.tbs_response_data.response_extensions.is_none());
}

fn extended_revoke(basic: &BasicOcspResponse) -> Option<&Extension> {
    basic
        .tbs_response_data
        .response_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_PKIX_OCSP_EXTENDED_REVOKE)
}

#[test]
fn never_issued_is_revoked_hold_at_epoch_with_extended_revoke() {
    let (pki, _source, r, _) = setup();
    let (_, status, basic) = ask(
        &r,
        &request(vec![pki.cert_id::<Sha1>(&serial(0xdead))], None),
    );
    assert_eq!(status, OcspResponseStatus::Successful);
    let basic = basic.unwrap();
    let (time, reason) = revoked_info(one(&basic));
    assert_eq!(time, UNIX_EPOCH);
    assert_eq!(reason, Some(CrlReason::CertificateHold));
    let ext = extended_revoke(&basic).expect("extended-revoke");
    assert!(!ext.critical);
    assert_eq!(ext.extn_value.as_bytes(), Null.to_der().unwrap());
}

#[test]
fn serials_nesca_never_issues_are_not_issued() {
    let (pki, source, r, _) = setup();
    let calls = source.status_calls.load(Ordering::Relaxed);
    // 21 octets and negative: valid DER INTEGERs, but never nesca serials.
    for bytes in [&[0x01; 21][..], &[0xff, 0x01][..]] {
        let mut id = pki.cert_id::<Sha1>(&serial(1));
        id.serial_number = x509_cert::serial_number::SerialNumber::from_der(
            &der::asn1::Int::new(bytes).unwrap().to_der().unwrap(),
        )
        .unwrap();
        let (outcome, status, basic) = ask(&r, &request(vec![id.clone()], None));
        assert_eq!(
            (outcome, status),
            (Outcome::Signed, OcspResponseStatus::Successful)
        );
        let basic = basic.unwrap();
        assert_eq!(one(&basic).cert_id, id);
        assert_eq!(
            revoked_info(one(&basic)),
            (UNIX_EPOCH, Some(CrlReason::CertificateHold))
        );
    }
    assert_eq!(source.status_calls.load(Ordering::Relaxed), calls);
}

#[test]
fn unknown_issuer_and_unknown_hash_are_unauthorized() {
    let (_pki, _source, r, _) = setup();
    let other = Pki::named(9, "CN=Someone Else CA,C=TR");
    let a = r.answer(&request(vec![other.cert_id::<Sha1>(&serial(1))], None));
    assert_eq!(a.outcome, Outcome::Unauthorized);
    assert_eq!(&a.der[..], &[0x30, 0x03, 0x0a, 0x01, 0x06]);
    let pki = Pki::new();
    let a = r.answer(&request(vec![pki.cert_id::<Sha384>(&serial(1))], None));
    assert_eq!(a.outcome, Outcome::Unauthorized);
}

#[test]
fn sha256_cert_ids_are_answered_and_then_cached() {
    let (pki, source, r, _) = setup();
    let s = serial(0x42);
    source.set("nes-ca", s, CertState::Good);
    let id = pki.cert_id::<Sha256>(&s);
    let req = request(vec![id.clone()], None);
    let (outcome, _, basic) = ask(&r, &req);
    assert_eq!(outcome, Outcome::Signed);
    assert_eq!(one(&basic.unwrap()).cert_id, id);
    let first = r.answer(&req);
    assert_eq!(first.outcome, Outcome::Cached);
    assert_eq!(r.answer(&req).der, first.der);
}

#[test]
fn cert_id_parameters_are_echoed_as_sent() {
    let (pki, source, r, _) = setup();
    let s = serial(0x43);
    source.set("nes-ca", s, CertState::Good);
    let mut id = pki.cert_id::<Sha1>(&s);
    id.hash_algorithm.parameters = None;
    let (_, _, basic) = ask(&r, &request(vec![id.clone()], None));
    assert_eq!(one(&basic.unwrap()).cert_id, id);
    // The NULL spelling is a different cache entry, with its own CertID.
    let with_null = pki.cert_id::<Sha1>(&s);
    let (_, _, basic) = ask(&r, &request(vec![with_null.clone()], None));
    assert_eq!(one(&basic.unwrap()).cert_id, with_null);
    let (_, _, basic) = ask(&r, &request(vec![id.clone()], None));
    assert_eq!(one(&basic.unwrap()).cert_id, id);
}

#[test]
fn several_requests_get_one_response_with_one_single_each() {
    let (pki, source, r, _) = setup();
    let (g, v) = (serial(10), serial(11));
    source.set("nes-ca", g, CertState::Good);
    source.set(
        "nes-ca",
        v,
        CertState::Revoked {
            time: UnixTime::from_secs(1_700_000_000),
            reason: Some(RevocationReason::Superseded),
        },
    );
    let ids = vec![
        pki.cert_id::<Sha1>(&g),
        pki.cert_id::<Sha256>(&v),
        pki.cert_id::<Sha1>(&serial(12)),
    ];
    let (outcome, _, basic) = ask(&r, &request(ids.clone(), None));
    assert_eq!(outcome, Outcome::Signed);
    let basic = basic.unwrap();
    let singles = &basic.tbs_response_data.responses;
    assert_eq!(singles.len(), 3);
    for (s, id) in singles.iter().zip(&ids) {
        assert_eq!(&s.cert_id, id);
    }
    assert_eq!(singles[0].cert_status, CertStatus::good());
    assert_eq!(revoked_info(&singles[1]).1, Some(CrlReason::Superseded));
    assert_eq!(revoked_info(&singles[2]).0, UNIX_EPOCH);
    assert!(extended_revoke(&basic).is_some());
    // Not cached: the same message is signed again.
    assert_eq!(r.answer(&request(ids, None)).outcome, Outcome::Signed);
}

#[test]
fn one_message_for_two_issuers_is_unauthorized() {
    let a = Pki::new();
    let b = Pki::named(5, "CN=Nesca Test Role CA,O=Nesca Test,C=TR");
    let source = Arc::new(FakeSource::default());
    let clock = Arc::new(nesca_ca_types::FixedClock::new(a.now));
    let r = Responder::new(
        vec![a.served("nes-ca"), b.served("role-ca")],
        source.clone(),
        ResponderConfig::default(),
        clock,
    )
    .unwrap();
    source.set("role-ca", serial(1), CertState::Good);
    let (_, status, basic) = ask(&r, &request(vec![b.cert_id::<Sha1>(&serial(1))], None));
    assert_eq!(status, OcspResponseStatus::Successful);
    // Signed by role-ca's own delegated signer.
    assert_eq!(basic.unwrap().certs.unwrap()[0], b.signer_cert);
    let mixed = request(
        vec![a.cert_id::<Sha1>(&serial(1)), b.cert_id::<Sha1>(&serial(1))],
        None,
    );
    assert_eq!(r.answer(&mixed).outcome, Outcome::Unauthorized);
}

fn nonce_of(basic: &BasicOcspResponse) -> Option<Vec<u8>> {
    basic.nonce().map(|n| n.0.as_bytes().to_vec())
}

#[test]
fn nonce_is_echoed_and_signed_live_every_time() {
    let (pki, source, r, _) = setup();
    let s = serial(7);
    source.set("nes-ca", s, CertState::Good);
    let plain = request(vec![pki.cert_id::<Sha1>(&s)], None);
    r.answer(&plain);
    assert_eq!(r.answer(&plain).outcome, Outcome::Cached);
    for nonce in [&[0x5a][..], &[0xa5; 32][..], &[0x11; 128][..]] {
        let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&s)], Some(nonce)));
        assert_eq!(a.outcome, Outcome::Signed);
        assert!(a.cacheable.is_none());
        let (_, basic) = decode(&a.der);
        let basic = basic.unwrap();
        assert_eq!(nonce_of(&basic).as_deref(), Some(nonce));
        let ext = basic
            .tbs_response_data
            .response_extensions
            .as_ref()
            .unwrap();
        assert!(ext.iter().all(|e| !e.critical));
    }
}

/// Past the live-signing budget a nonce is not signed for: the pre-produced response of the
/// serial answers without the nonce (RFC 5019), a serial with none gets tryLater; the refresher's
/// pre-production does not use the budget, and the budget comes back with time.
#[test]
fn past_the_live_budget_nonces_get_the_cached_answer_or_try_later() {
    let (pki, source, r, _) = setup_with(ResponderConfig {
        live_per_second: 2,
        ..ResponderConfig::default()
    });
    let (known, unseen) = (serial(7), serial(8));
    source.set("nes-ca", known, CertState::Good);
    source.set("nes-ca", unseen, CertState::Good);
    // Pre-produced by the refresher: not counted.
    let issuer = r
        .issuer_index(&nesca_ca_types::IssuerId::parse("nes-ca").unwrap())
        .unwrap();
    let key = CacheKey {
        issuer,
        serial: known,
        form: CertIdForm::of(&pki.cert_id::<Sha1>(&known).hash_algorithm).unwrap(),
    };
    r.produce(key).unwrap();
    for nonce in [0x5a, 0x5b] {
        let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&known)], Some(&[nonce])));
        assert_eq!(a.outcome, Outcome::Signed);
    }
    // The budget of 2 a second is spent: a nonce gets the pre-produced response, without
    // the nonce.
    let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&known)], Some(&[0x5b])));
    assert_eq!(a.outcome, Outcome::Cached);
    let (status, basic) = decode(&a.der);
    assert_eq!(status, OcspResponseStatus::Successful);
    assert_eq!(nonce_of(&basic.unwrap()), None);
    let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&unseen)], Some(&[0x5c])));
    assert_eq!(a.outcome, Outcome::TryLater);
    assert!(r.metrics().over_budget_requests() >= 2);
    std::thread::sleep(Duration::from_millis(1100));
    let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&unseen)], Some(&[0x5d])));
    assert_eq!(a.outcome, Outcome::Signed);
}

#[test]
fn bad_nonces_are_malformed() {
    let (pki, source, r, _) = setup();
    let s = serial(7);
    source.set("nes-ca", s, CertState::Good);
    for nonce in [&[][..], &[0x11; 129][..]] {
        let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&s)], Some(nonce)));
        assert_eq!(a.outcome, Outcome::Malformed, "nonce of {}", nonce.len());
        assert_eq!(&a.der[..], &[0x30, 0x03, 0x0a, 0x01, 0x01]);
    }
}

#[test]
fn a_nonce_written_without_its_octet_string_is_echoed_as_sent() {
    let (pki, source, r, _) = setup();
    let s = serial(7);
    source.set("nes-ca", s, CertState::Good);
    let mut req =
        OcspRequest::from_der(&request(vec![pki.cert_id::<Sha1>(&s)], Some(&[1]))).unwrap();
    let raw = OctetString::new(vec![0xc3; 16]).unwrap();
    req.tbs_request.request_extensions.as_mut().unwrap()[0].extn_value = raw.clone();
    let a = r.answer(&req.to_der().unwrap());
    let (_, basic) = decode(&a.der);
    let basic = basic.unwrap();
    let echoed = basic
        .tbs_response_data
        .response_extensions
        .as_ref()
        .unwrap();
    assert_eq!(echoed[0].extn_id, ID_PKIX_OCSP_NONCE);
    assert_eq!(echoed[0].extn_value, raw);
}

#[test]
fn garbage_is_malformed_and_never_panics() {
    let (pki, source, r, _) = setup();
    let s = serial(0x99);
    source.set("nes-ca", s, CertState::Good);
    let good = request(vec![pki.cert_id::<Sha1>(&s)], None);
    let malformed = |der: &[u8]| {
        let a = r.answer(der);
        assert_eq!(a.outcome, Outcome::Malformed, "{der:02x?}");
        assert_eq!(&a.der[..], &[0x30, 0x03, 0x0a, 0x01, 0x01]);
    };
    malformed(&[]);
    malformed(b"hello, world");
    malformed(&[0x30, 0x82, 0xff, 0xff]);
    malformed(&vec![0x30; 9000]);
    let mut trailing = good.clone();
    trailing.push(0);
    malformed(&trailing);
    // Zero requests.
    let mut empty = OcspRequest::from_der(&good).unwrap();
    empty.tbs_request.request_list.clear();
    malformed(&empty.to_der().unwrap());
    // Every truncation.
    for n in 0..good.len() {
        malformed(&good[..n]);
    }
    // A byte changed anywhere: any status but never a panic, and never a bad signature.
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x41;
        let a = r.answer(&bad);
        let _ = decode(&a.der);
    }
}

#[test]
fn requests_over_max_body_are_malformed() {
    let (pki, source, r, _) = setup_with(ResponderConfig {
        max_body: 100,
        ..ResponderConfig::default()
    });
    let s = serial(1);
    source.set("nes-ca", s, CertState::Good);
    assert_eq!(
        r.answer(&request(vec![pki.cert_id::<Sha1>(&s)], None))
            .outcome,
        Outcome::Signed
    );
    let big = request(vec![pki.cert_id::<Sha1>(&s)], Some(&[7; 64]));
    assert!(big.len() > 100);
    assert_eq!(r.answer(&big).outcome, Outcome::Malformed);
}

#[test]
fn unrecognised_critical_extensions_are_malformed() {
    let (pki, _source, r, _) = setup();
    let mut req =
        OcspRequest::from_der(&request(vec![pki.cert_id::<Sha1>(&serial(1))], None)).unwrap();
    req.tbs_request.request_extensions = Some(vec![Extension {
        extn_id: const_oid::ObjectIdentifier::new_unwrap("1.2.3.4"),
        critical: true,
        extn_value: OctetString::new(Null.to_der().unwrap()).unwrap(),
    }]);
    assert_eq!(r.answer(&req.to_der().unwrap()).outcome, Outcome::Malformed);
    req.tbs_request.request_extensions.as_mut().unwrap()[0].critical = false;
    assert_eq!(r.answer(&req.to_der().unwrap()).outcome, Outcome::Signed);
}

#[test]
fn signing_failures_are_try_later_and_counted() {
    let (pki, source, r, _) = setup();
    let s = serial(5);
    source.set("nes-ca", s, CertState::Good);
    let req = request(vec![pki.cert_id::<Sha1>(&s)], None);
    pki.signer.fail.store(true, Ordering::Relaxed);
    let a = r.answer(&req);
    assert_eq!(a.outcome, Outcome::TryLater);
    assert_eq!(&a.der[..], &[0x30, 0x03, 0x0a, 0x01, 0x03]);
    pki.signer.fail.store(false, Ordering::Relaxed);
    // A signer that returns a signature that does not verify: nothing bad is served.
    pki.signer.lie.store(true, Ordering::Relaxed);
    assert_eq!(r.answer(&req).outcome, Outcome::TryLater);
    assert_eq!(r.metrics().signing_errors(), 2);
    pki.signer.lie.store(false, Ordering::Relaxed);
    assert_eq!(r.answer(&req).outcome, Outcome::Signed);
}

/// With the signer down (the HSM lost), a nonce for a serial with a fresh pre-produced
/// response gets that response without the nonce, as past the live budget; a serial with none
/// gets tryLater. Once the signer is back, the nonce is signed for again.
#[test]
fn signing_failures_fall_back_to_the_pre_produced_answer() {
    let (pki, source, r, _) = setup();
    let (known, unseen) = (serial(9), serial(10));
    source.set("nes-ca", known, CertState::Good);
    source.set("nes-ca", unseen, CertState::Good);
    let issuer = r
        .issuer_index(&nesca_ca_types::IssuerId::parse("nes-ca").unwrap())
        .unwrap();
    r.produce(CacheKey {
        issuer,
        serial: known,
        form: CertIdForm::of(&pki.cert_id::<Sha1>(&known).hash_algorithm).unwrap(),
    })
    .unwrap();
    pki.signer.fail.store(true, Ordering::Relaxed);
    let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&known)], Some(&[0x61])));
    assert_eq!(a.outcome, Outcome::Cached);
    let (status, basic) = decode(&a.der);
    assert_eq!(status, OcspResponseStatus::Successful);
    assert_eq!(nonce_of(&basic.unwrap()), None);
    let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&unseen)], Some(&[0x62])));
    assert_eq!(a.outcome, Outcome::TryLater);
    // Two serials at once are one response to sign: tryLater.
    let both = vec![pki.cert_id::<Sha1>(&known), pki.cert_id::<Sha1>(&unseen)];
    assert_eq!(
        r.answer(&request(both, Some(&[0x63]))).outcome,
        Outcome::TryLater
    );
    assert_eq!(r.metrics().signing_errors(), 3);
    pki.signer.fail.store(false, Ordering::Relaxed);
    let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&known)], Some(&[0x64])));
    assert_eq!(a.outcome, Outcome::Signed);
    assert!(nonce_of(&decode(&a.der).1.unwrap()).is_some());
}

#[test]
fn store_failures_are_try_later() {
    let (pki, source, r, _) = setup();
    source.fail.store(true, Ordering::Relaxed);
    let a = r.answer(&request(vec![pki.cert_id::<Sha1>(&serial(5))], None));
    assert_eq!(a.outcome, Outcome::TryLater);
    assert_eq!(r.metrics().source_errors(), 1);
}

#[test]
fn prefill_then_change_replaces_the_cached_response() {
    let (pki, source, r, _) = setup();
    let s = serial(0x77);
    source.set("nes-ca", s, CertState::Good);
    let cursor = source.latest_cursor_for_test();
    let page = r.prefill_page(0, None, 100).unwrap();
    assert_eq!((page.listed, page.failed), (1, 0));
    let req = request(vec![pki.cert_id::<Sha1>(&s)], None);
    let before = r.answer(&req);
    assert_eq!(before.outcome, Outcome::Cached);
    assert_eq!(
        one(&decode(&before.der).1.unwrap()).cert_status,
        CertStatus::good()
    );
    // A SHA-256 form asked for once is kept and re-signed with the SHA-1 one.
    let req256 = request(vec![pki.cert_id::<Sha256>(&s)], None);
    r.answer(&req256);
    source.set(
        "nes-ca",
        s,
        CertState::Revoked {
            time: UnixTime::from_secs(1_760_000_000),
            reason: Some(RevocationReason::KeyCompromise),
        },
    );
    let (n, next) = r.apply_changes(cursor, 100).unwrap();
    assert_eq!((n, next), (1, cursor + 1));
    for req in [&req, &req256] {
        let after = r.answer(req);
        assert_eq!(after.outcome, Outcome::Cached);
        let (_, reason) = revoked_info(one(&decode(&after.der).1.unwrap()));
        assert_eq!(reason, Some(CrlReason::KeyCompromise));
    }
    assert_ne!(r.answer(&req).der, before.der);
}

#[test]
fn a_change_that_cannot_be_re_signed_drops_the_old_response() {
    let (pki, source, r, _) = setup();
    let s = serial(0x78);
    source.set("nes-ca", s, CertState::Good);
    let cursor = source.latest_cursor_for_test();
    r.prefill_page(0, None, 100).unwrap();
    let req = request(vec![pki.cert_id::<Sha1>(&s)], None);
    assert_eq!(r.answer(&req).outcome, Outcome::Cached);
    source.set(
        "nes-ca",
        s,
        CertState::Revoked {
            time: UnixTime::from_secs(1),
            reason: None,
        },
    );
    pki.signer.fail.store(true, Ordering::Relaxed);
    r.apply_changes(cursor, 100).unwrap();
    // The good response is gone; a live attempt fails too: tryLater, never the old "good".
    assert_eq!(r.answer(&req).outcome, Outcome::TryLater);
    pki.signer.fail.store(false, Ordering::Relaxed);
    let (_, _, basic) = ask(&r, &req);
    revoked_info(one(&basic.unwrap()));
}

#[test]
fn a_stale_answer_cannot_replace_a_newer_one() {
    let (pki, source, r, _) = setup();
    let s = serial(0x79);
    source.set("nes-ca", s, CertState::Good);
    let key = CacheKey {
        issuer: 0,
        serial: s,
        form: CertIdForm::SHA1,
    };
    let newer = r.produce(key).unwrap();
    // An answer whose status was read earlier (smaller sequence) arrives late.
    let stale = crate::response::sign(
        &r.issuers[0],
        vec![crate::response::Single {
            cert_id: pki.cert_id::<Sha1>(&s),
            state: CertState::Good,
        }],
        None,
        r.clock.now(),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(!r.cache.put(key, 0, Arc::new(stale)));
    assert!(Arc::ptr_eq(&r.cache.get(&key).unwrap(), &newer));
}

#[test]
fn entries_are_refreshed_before_next_update_and_never_served_after_it() {
    let (pki, source, r, clock) = setup();
    let s = serial(0x80);
    source.set("nes-ca", s, CertState::Good);
    r.prefill_page(0, None, 100).unwrap();
    let req = request(vec![pki.cert_id::<Sha1>(&s)], None);
    let first = r.answer(&req);
    let t0 = first.cacheable.as_ref().unwrap().this_update();
    // Not yet within refresh_before (12 h of a 24 h validity).
    clock.advance(Duration::from_secs(11 * 3600));
    assert_eq!(r.refresh_due(100).due, 0);
    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(r.refresh_due(100).due, 1);
    let second = r.answer(&req);
    assert_eq!(second.outcome, Outcome::Cached);
    let t1 = second.cacheable.as_ref().unwrap().this_update();
    assert_eq!(t1, t0 + Duration::from_secs(13 * 3600));
    let (_, basic) = decode(&second.der);
    assert_eq!(one(&basic.unwrap()).this_update.0.to_system_time(), t1);
    // Without a refresher, past nextUpdate the entry is not served: signed live instead.
    clock.advance(Duration::from_secs(24 * 3600));
    let third = r.answer(&req);
    assert_eq!(third.outcome, Outcome::Signed);
    assert_eq!(third.cacheable.unwrap().this_update(), clock.now());
    assert_eq!(r.answer(&req).outcome, Outcome::Cached);
}

#[test]
fn never_issued_responses_are_capped_and_age_out() {
    let (pki, _source, r, clock) = setup_with(ResponderConfig {
        max_not_issued_cached: 3,
        ..ResponderConfig::default()
    });
    for n in 0..10u64 {
        let a = r.answer(&request(
            vec![pki.cert_id::<Sha1>(&serial(0x1000 + n))],
            None,
        ));
        assert_eq!(a.outcome, Outcome::Signed);
    }
    assert_eq!(r.cache.not_issued_len(), 3);
    assert_eq!(r.cache.len(), 3);
    assert_eq!(r.metrics().cached_responses(), 3);
    // The first three are cached, the rest are signed each time.
    let cached = r.answer(&request(vec![pki.cert_id::<Sha1>(&serial(0x1000))], None));
    assert_eq!(cached.outcome, Outcome::Cached);
    let uncached = r.answer(&request(vec![pki.cert_id::<Sha1>(&serial(0x1009))], None));
    assert_eq!(uncached.outcome, Outcome::Signed);
    clock.advance(Duration::from_secs(13 * 3600));
    assert_eq!(r.refresh_due(100).due, 3);
    assert_eq!(r.cache.not_issued_len(), 0);
    assert_eq!(r.metrics().cached_responses(), 0);
}

#[test]
fn a_serial_issued_after_a_not_issued_answer_turns_good_on_the_change() {
    let (pki, source, r, _) = setup();
    let s = serial(0x81);
    let cursor = source.latest_cursor_for_test();
    let req = request(vec![pki.cert_id::<Sha1>(&s)], None);
    let (_, _, basic) = ask(&r, &req);
    assert_eq!(revoked_info(one(&basic.unwrap())).0, UNIX_EPOCH);
    assert_eq!(r.cache.not_issued_len(), 1);
    source.set("nes-ca", s, CertState::Good);
    r.apply_changes(cursor, 100).unwrap();
    let (outcome, _, basic) = ask(&r, &req);
    assert_eq!(outcome, Outcome::Cached);
    assert_eq!(one(&basic.unwrap()).cert_status, CertStatus::good());
    assert_eq!(r.cache.not_issued_len(), 0);
}

#[test]
fn misconfigured_issuers_are_refused() {
    let pki = Pki::new();
    let source = Arc::new(FakeSource::default());
    let clock = Arc::new(nesca_ca_types::FixedClock::new(pki.now));
    let new = |issuers, config| Responder::new(issuers, source.clone(), config, clock.clone());
    // Signer certificate for another key.
    let mut wrong_key = pki.served("nes-ca");
    wrong_key.signer = Arc::new(crate::testkit::SoftSigner::from_seed(40));
    assert!(matches!(
        new(vec![wrong_key], ResponderConfig::default()),
        Err(OcspError::Issuer { .. })
    ));
    // No id-kp-OCSPSigning.
    let mut no_eku = pki.served("nes-ca");
    no_eku.signer_cert_der = Pki::signer_cert_for(
        &pki.ca_key,
        &pki.ca_cert,
        &nesca_ca_types::TbsSigner::public_key(&*pki.signer),
        false,
        pki.now,
    )
    .to_der()
    .unwrap();
    let err = new(vec![no_eku], ResponderConfig::default()).err().unwrap();
    assert!(err.to_string().contains("OCSPSigning"), "{err}");
    // Issued by another CA.
    let other = Pki::named(9, "CN=Other CA,C=TR");
    let mut foreign = pki.served("nes-ca");
    foreign.signer_cert_der = other.signer_cert.to_der().unwrap();
    foreign.signer = other.signer.clone();
    assert!(new(vec![foreign], ResponderConfig::default()).is_err());
    // Served twice.
    assert!(new(
        vec![pki.served("nes-ca"), pki.served("nes-ca2")],
        ResponderConfig::default()
    )
    .is_err());
    // No issuers, bad durations.
    assert!(new(vec![], ResponderConfig::default()).is_err());
    let bad = ResponderConfig {
        refresh_before: Duration::from_secs(86400),
        ..ResponderConfig::default()
    };
    assert!(matches!(
        new(vec![pki.served("nes-ca")], bad),
        Err(OcspError::Config { .. })
    ));
}

#[test]
fn latest_cursor_default_pages_through_the_log() {
    let source = FakeSource::default();
    for n in 0..25_000u64 {
        source.set("nes-ca", serial(n + 1), CertState::Good);
    }
    assert_eq!(crate::StatusSource::latest_cursor(&source).unwrap(), 25_000);
}

impl FakeSource {
    fn latest_cursor_for_test(&self) -> i64 {
        crate::StatusSource::latest_cursor(self).unwrap()
    }
}

#[test]
fn serial_helper_is_minimal() {
    assert_eq!(serial(0x1234).to_der_bytes(), vec![0x12, 0x34]);
    assert_eq!(serial(0x80).to_der_bytes(), vec![0x00, 0x80]);
    let _: Serial = serial(1);
    let _: CertId = Pki::new().cert_id::<Sha1>(&serial(1));
}

#[test]
fn a_refresh_that_fails_keeps_the_entry_until_next_update_only() {
    let (pki, source, r, clock) = setup();
    let s = serial(0x82);
    source.set("nes-ca", s, CertState::Good);
    r.prefill_page(0, None, 100).unwrap();
    let req = request(vec![pki.cert_id::<Sha1>(&s)], None);
    pki.signer.fail.store(true, Ordering::Relaxed);
    clock.advance(Duration::from_secs(13 * 3600));
    let round = r.refresh_due(100);
    assert_eq!((round.due, round.failed), (1, 1));
    // Still valid: served as it is.
    assert_eq!(r.answer(&req).outcome, Outcome::Cached);
    clock.advance(Duration::from_secs(11 * 3600));
    assert_eq!(r.refresh_due(100).failed, 1);
    assert_eq!(r.cache.len(), 0);
    assert_eq!(r.answer(&req).outcome, Outcome::TryLater);
    assert!(r.metrics().signing_errors() >= 3);
}

#[test]
fn prefill_pages_through_serials_and_reports_failures() {
    let (pki, source, r, _) = setup();
    for n in 1..=25u64 {
        source.set("nes-ca", serial(n), CertState::Good);
    }
    let first = r.prefill_page(0, None, 10).unwrap();
    assert_eq!(
        (first.listed, first.last, first.failed),
        (10, Some(serial(10)), 0)
    );
    let second = r.prefill_page(0, first.last, 10).unwrap();
    assert_eq!(second.last, Some(serial(20)));
    pki.signer.fail.store(true, Ordering::Relaxed);
    let third = r.prefill_page(0, second.last, 10).unwrap();
    assert_eq!((third.listed, third.failed), (5, 5));
    assert_eq!(r.cache.len(), 20);
    pki.signer.fail.store(false, Ordering::Relaxed);
    // Already fresh entries are not signed again.
    let calls = pki.signer.calls.load(Ordering::Relaxed);
    r.prefill_page(0, None, 10).unwrap();
    assert_eq!(pki.signer.calls.load(Ordering::Relaxed), calls);
}

/// The SHA-1 key hash that a ResponderID byKey names (RFC 6960 §4.2.2.3).
fn responder_key_hash(basic: &BasicOcspResponse) -> Vec<u8> {
    match &basic.tbs_response_data.responder_id {
        ResponderId::ByKey(h) => h.as_bytes().to_vec(),
        other => panic!("expected byKey, got {other:?}"),
    }
}

/// A renewed delegated signer replaces the old one while the responder runs: live answers
/// are signed by it at once, responses the old one signed are re-signed by the refresher's
/// next round (however far their nextUpdate), and a replacement that the CA did not issue
/// as an OCSP signer is refused, leaving the current one.
#[test]
fn a_replaced_signer_signs_from_then_on_and_its_predecessors_responses_are_re_signed() {
    let (pki, source, r, _clock) = setup();
    let s = serial(0x81);
    source.set("nes-ca", s, CertState::Good);
    r.prefill_page(0, None, 100).unwrap();
    let req = request(vec![pki.cert_id::<Sha1>(&s)], None);
    let old_id = responder_key_hash(&decode(&r.answer(&req).der).1.unwrap());
    assert_eq!(r.refresh_due(100).due, 0, "fresh: nothing due");

    let next = Arc::new(crate::testkit::SoftSigner::from_seed(0x42));
    let next_cert =
        Pki::signer_cert_for(&pki.ca_key, &pki.ca_cert, &next.public_key(), true, pki.now);
    // Refused: a certificate without id-kp-OCSPSigning, or for another key.
    let no_eku = Pki::signer_cert_for(
        &pki.ca_key,
        &pki.ca_cert,
        &next.public_key(),
        false,
        pki.now,
    );
    let id = nesca_ca_types::IssuerId::parse("nes-ca").unwrap();
    for (signer, cert) in [(next.clone(), &no_eku), (pki.signer.clone(), &next_cert)] {
        assert!(r
            .replace_signer(&id, signer, &cert.to_der().unwrap())
            .is_err());
    }
    r.replace_signer(&id, next.clone(), &next_cert.to_der().unwrap())
        .unwrap();
    // The cached response (old signer) is due now, and re-signed by the new one.
    assert_eq!(r.refresh_due(100).due, 1);
    let (status, basic) = decode(&r.answer(&req).der);
    assert_eq!(status, OcspResponseStatus::Successful);
    let basic = basic.unwrap();
    let new_id = responder_key_hash(&basic);
    assert_ne!(new_id, old_id);
    assert_eq!(basic.certs.unwrap()[0], next_cert);
    assert_eq!(r.refresh_due(100).due, 0, "nothing left to re-sign");
}

/// A responder whose delegated signer expired still starts (so that it can be given a new
/// one) but never signs with it: it answers tryLater until a valid signer replaces it.
#[test]
fn an_expired_signer_never_signs_until_it_is_replaced() {
    let pki = Pki::new();
    let source = Arc::new(FakeSource::default());
    let s = serial(0x82);
    source.set("nes-ca", s, CertState::Good);
    let (r, clock) = responder(&pki, source, ResponderConfig::default());
    clock.advance(Duration::from_secs(91 * 86400));
    let req = request(vec![pki.cert_id::<Sha1>(&s)], None);
    let a = r.answer(&req);
    assert_eq!(decode(&a.der).0, OcspResponseStatus::TryLater);
    // A new responder started now, with the expired signer, starts all the same.
    let late = Responder::new(
        vec![pki.served("nes-ca")],
        Arc::new(FakeSource::default()),
        ResponderConfig::default(),
        clock.clone(),
    );
    assert!(
        late.is_ok(),
        "an expired signer does not stop the responder"
    );
    let next = Arc::new(crate::testkit::SoftSigner::from_seed(0x43));
    let next_cert = Pki::signer_cert_for(
        &pki.ca_key,
        &pki.ca_cert,
        &next.public_key(),
        true,
        clock.now(),
    );
    let id = nesca_ca_types::IssuerId::parse("nes-ca").unwrap();
    r.replace_signer(&id, next, &next_cert.to_der().unwrap())
        .unwrap();
    let (status, basic) = decode(&r.answer(&req).der);
    assert_eq!(status, OcspResponseStatus::Successful);
    assert_eq!(basic.unwrap().certs.unwrap()[0], next_cert);
}

/// A responder whose refresher has not read the store's changes for `stale_after` answers
/// tryLater, the pre-produced response included, until a read succeeds again.
#[test]
fn a_responder_cut_off_from_the_store_answers_try_later() {
    let (pki, source, r, _) = setup_with(ResponderConfig {
        stale_after: std::time::Duration::from_millis(500),
        ..ResponderConfig::default()
    });
    let s = serial(0x42);
    source.set("nes-ca", s, CertState::Good);
    r.prefill_page(0, None, 100).unwrap();
    let req = request(vec![pki.cert_id::<Sha1>(&s)], None);
    // No refresher yet: the bound does not apply.
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(r.answer(&req).outcome, Outcome::Cached);
    r.mark_synced();
    assert_eq!(r.answer(&req).outcome, Outcome::Cached);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(r.is_stale());
    assert_eq!(r.answer(&req).outcome, Outcome::TryLater);
    r.mark_synced();
    assert_eq!(r.answer(&req).outcome, Outcome::Cached);
}
