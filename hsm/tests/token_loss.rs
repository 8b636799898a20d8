//! The token lost under load and back: SoftHSM's token directory moved out of its token store
//! while threads sign, then moved back, as a token pulled and plugged in again or a network
//! HSM that went away and returned. SoftHSM then answers `CKR_OBJECT_HANDLE_INVALID` to
//! `C_SignInit`, finds no object, and `CKR_GENERAL_ERROR` to `C_GetTokenInfo` — and keeps doing
//! so after the directory is back, until the module is finalised and initialised again. Its own
//! test binary: reconnecting finalises the module for the whole process.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{token, verify};
use hsm::{ErrorClass, HsmError, KeyAlgorithm};
use secrecy::ExposeSecret;

/// The target: signing resumes within this of the token's return.
const TARGET: Duration = Duration::from_secs(5);

/// The one token's directory in the store `SOFTHSM2_CONF` names (the module set it).
fn token_dir() -> PathBuf {
    let conf = std::env::var("SOFTHSM2_CONF").expect("SOFTHSM2_CONF set by the module");
    let text = std::fs::read_to_string(conf).unwrap();
    let store = text
        .lines()
        .find_map(|l| l.strip_prefix("directories.tokendir"))
        .map(|v| v.trim_start().trim_start_matches('=').trim().to_string())
        .expect("directories.tokendir");
    let dirs: Vec<PathBuf> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "one token: {dirs:?}");
    dirs.into_iter().next().unwrap()
}

#[track_caller]
fn assert_lost(e: &HsmError) {
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    assert!(
        matches!(e, HsmError::TokenLost { .. } | HsmError::Unavailable { .. }),
        "not a lost token: {e:?}"
    );
    let pin = common::pin();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(pin.expose_secret()), "the PIN in an error");
}

#[test]
fn signing_resumes_after_the_token_returns_without_reopening() {
    let hsm = token();
    // Two keys: after a reconnection the token numbers its objects anew, and a handle kept
    // from before could name the other key.
    let a = Arc::new(hsm.generate_key("loss-a", KeyAlgorithm::EcdsaP256).unwrap());
    let b = Arc::new(hsm.generate_key("loss-b", KeyAlgorithm::EcdsaP256).unwrap());
    for s in [&a, &b] {
        verify(s, b"before", &s.sign(b"before").unwrap());
    }

    // Load: threads signing all along, through the loss and the return.
    let stop = Arc::new(AtomicBool::new(false));
    let (signed, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let load: Vec<_> = (0..6)
        .map(|i| {
            let signer = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (stop, signed, failed) = (stop.clone(), signed.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let msg = format!("load {i}");
                    match signer.sign(msg.as_bytes()) {
                        Ok(sig) => {
                            verify(&signer, msg.as_bytes(), &sig);
                            signed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            assert_eq!(e.class(), ErrorClass::Transient, "{e}");
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    // Lost: the token's directory leaves the store.
    let dir = token_dir();
    let away = dir.parent().unwrap().parent().unwrap().join("token-away");
    std::fs::rename(&dir, &away).unwrap();
    let started = Instant::now();
    let e = a.sign(b"lost").unwrap_err();
    let first = started.elapsed();
    assert_lost(&e);
    assert!(
        first < Duration::from_secs(3),
        "first refusal took {first:?}"
    );
    // While lost, refusals come at once: reconnection is tried once a second at most.
    let started = Instant::now();
    for _ in 0..50 {
        assert_lost(&b.sign(b"still lost").unwrap_err());
    }
    let fifty = started.elapsed();
    assert!(fifty < Duration::from_secs(3), "50 refusals took {fifty:?}");
    std::thread::sleep(Duration::from_millis(1500));

    // Back: signing resumes by itself.
    std::fs::rename(&away, &dir).unwrap();
    let back = Instant::now();
    let recovered = loop {
        match a.sign(b"back") {
            Ok(sig) => {
                verify(&a, b"back", &sig);
                break back.elapsed();
            }
            Err(e) => {
                assert_eq!(e.class(), ErrorClass::Transient, "{e}");
                assert!(back.elapsed() < Duration::from_secs(30), "never back: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    println!(
        "first refusal {first:?}; 50 refusals while lost {fifty:?}; signing again {recovered:?} after the token returned"
    );
    assert!(
        recovered < TARGET,
        "signing resumed only after {recovered:?}"
    );
    for i in 0..20 {
        for s in [&a, &b] {
            let msg = format!("after {i}");
            verify(s, msg.as_bytes(), &s.sign(msg.as_bytes()).unwrap());
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().expect("a load thread panicked");
    }
    assert!(
        failed.load(Ordering::Relaxed) > 0,
        "the load never saw the loss"
    );
    assert!(signed.load(Ordering::Relaxed) > 0);
    // Keys are found again by label, and every key operation works.
    assert!(hsm.has_key("loss-a").unwrap());
    let c = hsm.find_key("loss-b").unwrap();
    verify(&c, b"found", &c.sign(b"found").unwrap());
}
