//! 48 `nesca issue` processes started at the same instant against one demo CA.
//!
//! Each process opens SoftHSM, finds the token by label and logs in; every SoftHSM login
//! rewrites the token's metadata file (`token.object`: truncated, then written again after the
//! file lock is released), and a process reading the token store at that instant sees no token,
//! or one with a blank label. One of them used to fail with `no token labelled "nesca-demo"` in
//! about one run in five; nesca processes now take turns on the store (hsm/src/store_lock.rs)
//! and read it again after such an answer (docs/STANDARDS.md "SoftHSM's token store"). Every
//! one must exit 0, with a serial of its own. Run with `--nocapture` to see how many had to
//! read the store again, and what they had caught.

use std::collections::BTreeSet;
use std::sync::Barrier;

use crate::support::*;

const PROCESSES: usize = 48;

/// What a process logs (at `warn`) when it caught the token store mid-rewrite and tried again.
const RETRIED: &str = "token not readable yet";

#[test]
fn forty_eight_issue_processes_started_at_once_all_succeed() {
    let demo = Demo::init();
    let csr = demo.csr("req", Key::P256);
    let config = demo.config();
    let before = demo.cert_list_lines().len();
    let start = Barrier::new(PROCESSES);

    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..PROCESSES)
            .map(|i| {
                let (demo, csr, config, start) = (&demo, &csr, &config, &start);
                scope.spawn(move || {
                    let out = demo.work.join(format!("cert-{i}.pem"));
                    let mut cmd = nesca_command();
                    cmd.args([
                        "issue",
                        "--config",
                        s(config),
                        "--csr",
                        s(csr),
                        "--tckn",
                        TCKN,
                        "--given-name",
                        GIVEN,
                        "--surname",
                        SURNAME,
                        "--out",
                        s(&out),
                    ])
                    // Warnings on stderr: a retry is seen (and counted below), stdout stays
                    // the serial alone.
                    .env("RUST_LOG", "warn")
                    .current_dir(&demo.work);
                    start.wait();
                    run(cmd)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("issuing thread"))
            .collect()
    });

    let failed: Vec<String> = outputs
        .iter()
        .filter(|o| !o.success())
        .map(Output::describe)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {PROCESSES} concurrent `nesca issue` processes failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
    let retried = outputs
        .iter()
        .filter(|o| o.stderr.contains(RETRIED))
        .count();
    // What they caught, for whoever runs this with --nocapture: each distinct error, counted.
    let mut caught = std::collections::BTreeMap::<String, usize>::new();
    for line in outputs.iter().flat_map(|o| o.stderr.lines()) {
        if let Some((_, error)) = line.split_once(RETRIED) {
            let error = error.split_once("error=").map_or(error, |(_, e)| e);
            *caught.entry(error.trim().to_string()).or_default() += 1;
        }
    }
    eprintln!("{retried} of {PROCESSES} processes caught the token store mid-rewrite and retried");
    for (error, n) in &caught {
        eprintln!("  {n} × {error}");
    }

    let pin = std::fs::read_to_string(demo.path("user-pin")).expect("the demo's user PIN");
    assert!(
        outputs
            .iter()
            .all(|o| !o.stdout.contains(pin.trim()) && !o.stderr.contains(pin.trim())),
        "the user PIN appears in an output (not shown: it is a secret)"
    );

    let serials: BTreeSet<String> = outputs.iter().map(single_serial_line).collect();
    assert_eq!(serials.len(), PROCESSES, "serials must be distinct");
    assert_eq!(demo.cert_list_lines().len(), before + PROCESSES);
    for i in 0..PROCESSES {
        let cert = demo.work.join(format!("cert-{i}.pem"));
        assert!(cert.is_file(), "process {i} wrote no certificate");
    }
    for i in [0, PROCESSES - 1] {
        assert_verifies(&demo.dir, &demo.work.join(format!("cert-{i}.pem")));
    }
}
