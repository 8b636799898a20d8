//! Leases: one holder at a time, renewed by it, taken over once run out, given up.

use super::t0;
use crate::store::Store;

pub fn leases_have_one_holder_until_they_run_out(store: &dyn Store) {
    let name = "crl:nes-ca";
    assert!(store.acquire_lease(name, "node-a", t0(0), t0(30)).unwrap());
    // Another holder is refused while it runs; the holder renews it.
    assert!(!store.acquire_lease(name, "node-b", t0(10), t0(40)).unwrap());
    assert!(store.acquire_lease(name, "node-a", t0(20), t0(50)).unwrap());
    assert!(!store.acquire_lease(name, "node-b", t0(49), t0(79)).unwrap());
    // Run out: taken over.
    assert!(store.acquire_lease(name, "node-b", t0(50), t0(80)).unwrap());
    assert!(!store.acquire_lease(name, "node-a", t0(60), t0(90)).unwrap());
    // Given up by someone else: nothing happens; by its holder: free at once.
    store.release_lease(name, "node-a").unwrap();
    assert!(!store.acquire_lease(name, "node-c", t0(61), t0(91)).unwrap());
    store.release_lease(name, "node-b").unwrap();
    assert!(store.acquire_lease(name, "node-c", t0(61), t0(91)).unwrap());
    // Who holds it; a gone holder's lease is taken over, a live one's only from its holder.
    assert_eq!(
        store.lease_holder(name).unwrap(),
        Some(("node-c".to_owned(), t0(91)))
    );
    assert!(!store
        .take_over_lease(name, "node-a", "node-d", t0(99))
        .unwrap());
    assert!(store
        .take_over_lease(name, "node-c", "node-d", t0(99))
        .unwrap());
    assert!(!store.acquire_lease(name, "node-c", t0(62), t0(92)).unwrap());
    assert_eq!(store.lease_holder("never-taken").unwrap(), None);
    // Leases of other tasks are their own.
    assert!(store
        .acquire_lease("outbox", "node-a", t0(61), t0(91))
        .unwrap());
}
