//! Several `nesca issue` processes at once against one demo CA: one SQLite file, one SoftHSM
//! token. Each must succeed (SoftHSM's file store is read while others update it; the store's
//! writers queue on SQLite's lock), with distinct serials and an intact audit chain.

use std::collections::BTreeSet;

use crate::support::*;

#[test]
fn concurrent_issue_processes_all_succeed() {
    const PROCESSES: usize = 12;
    let demo = Demo::init();
    let csr = demo.csr("req", Key::P256);
    let before = demo.cert_list_lines().len();

    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..PROCESSES)
            .map(|i| {
                let (demo, csr) = (&demo, &csr);
                scope.spawn(move || {
                    let out = demo.work.join(format!("cert-{i}.pem"));
                    demo.issue(csr, &["--out", s(&out)])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("issuing thread"))
            .collect()
    });

    let mut serials = BTreeSet::new();
    for out in &outputs {
        assert!(
            out.success(),
            "a concurrent issuance failed: {}",
            out.describe()
        );
        serials.insert(single_serial_line(out));
    }
    assert_eq!(serials.len(), PROCESSES, "serials must be distinct");
    assert_eq!(demo.cert_list_lines().len(), before + PROCESSES);
    for i in [0, PROCESSES - 1] {
        assert_verifies(&demo.dir, &demo.work.join(format!("cert-{i}.pem")));
    }
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&demo.config())])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
}
