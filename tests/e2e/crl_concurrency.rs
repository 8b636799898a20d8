//! Several `nesca crl` processes at once, through two configurations naming the same store and
//! the same publication directory (one by a relative path, one by an absolute one): each
//! `--out` holds the CRL its command made and reported, and the published file ends with the
//! highest number (a slower publisher never puts an older CRL back).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::support::crl::parse_crl_number;
use crate::support::*;

const PROCESSES: usize = 6;

/// What one `nesca crl` printed: `full|delta CRL number=N entries=M bytes=B published=PATH`,
/// with ` superseded=P` when the published file kept a CRL numbered P instead of this one.
struct Line {
    number: u128,
    bytes: u64,
    published: PathBuf,
    superseded: Option<u128>,
}

#[track_caller]
fn parse_line(out: &Output, delta: bool) -> Line {
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {}", out.describe());
    let kind = if delta { "delta CRL " } else { "full CRL " };
    let rest = lines[0]
        .trim()
        .strip_prefix(kind)
        .unwrap_or_else(|| panic!("the line does not start with {kind:?}: {}", out.describe()));
    let (mut number, mut bytes, mut published, mut superseded) = (None, None, None, None);
    for token in rest.split(' ') {
        match token.split_once('=') {
            Some(("number", v)) => number = parse_crl_number(v),
            Some(("entries", _)) => {}
            Some(("bytes", v)) => bytes = v.parse().ok(),
            Some(("published", v)) => published = Some(PathBuf::from(v)),
            Some(("superseded", v)) => superseded = parse_crl_number(v),
            _ => panic!("unexpected token {token:?}: {}", out.describe()),
        }
    }
    Line {
        number: number.unwrap_or_else(|| panic!("no number=: {}", out.describe())),
        bytes: bytes.unwrap_or_else(|| panic!("no bytes=: {}", out.describe())),
        published: published.unwrap_or_else(|| panic!("no published=: {}", out.describe())),
        superseded,
    }
}

/// `openssl crl -inform DER -noout -crlnumber`.
#[track_caller]
fn crl_number_of(der: &Path) -> u128 {
    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        s(der),
        "-noout",
        "-crlnumber",
    ]);
    let value = out
        .stdout
        .trim()
        .strip_prefix("crlNumber=")
        .unwrap_or_else(|| panic!("no crlNumber: {}", out.describe()));
    parse_crl_number(value).unwrap_or_else(|| panic!("unreadable crlNumber: {}", out.describe()))
}

/// Starts `PROCESSES` `nesca crl [--delta] --out WORK/PREFIX-i.der` at once, alternating the
/// two configurations, and checks what they made and what stays published. Returns the
/// highest number.
#[track_caller]
fn race(demo: &Demo, configs: &[PathBuf; 2], delta: bool, prefix: &str) -> u128 {
    let outs: Vec<PathBuf> = (0..PROCESSES)
        .map(|i| demo.work.join(format!("{prefix}-{i}.der")))
        .collect();
    let barrier = std::sync::Barrier::new(PROCESSES);
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = outs
            .iter()
            .enumerate()
            .map(|(i, out)| {
                let (config, barrier) = (&configs[i % 2], &barrier);
                scope.spawn(move || {
                    let mut args = vec!["crl", "--config", s(config)];
                    if delta {
                        args.push("--delta");
                    }
                    args.extend_from_slice(&["--out", s(out)]);
                    barrier.wait();
                    demo.nesca(&args)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("nesca crl thread"))
            .collect()
    });

    let mut numbers = BTreeSet::new();
    let mut published_files = BTreeSet::new();
    let mut lines = Vec::new();
    for (out, path) in outputs.iter().zip(&outs) {
        assert!(
            out.success(),
            "a concurrent nesca crl failed: {}",
            out.describe()
        );
        let line = parse_line(out, delta);
        assert!(
            numbers.insert(line.number),
            "CRL number {} reported twice",
            line.number
        );
        // --out holds the CRL this command made, not the published file read back.
        let der = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(der.len() as u64, line.bytes, "{}", out.describe());
        assert_eq!(
            crl_number_of(path),
            line.number,
            "--out does not hold the CRL the command reported: {}",
            out.describe()
        );
        if let Some(kept) = line.superseded {
            assert!(
                kept > line.number,
                "superseded= names a number not above the command's own: {}",
                out.describe()
            );
        }
        published_files.insert(fs::canonicalize(&line.published).expect("published path"));
        lines.push((line, der));
    }
    assert_eq!(
        published_files.len(),
        1,
        "both configurations publish to one file: {published_files:?}"
    );
    let published = published_files.into_iter().next().expect("one file");
    let highest = *numbers.last().expect("numbers");
    assert_eq!(
        crl_number_of(&published),
        highest,
        "the published CRL is not the newest one"
    );
    let (newest, newest_der) = lines
        .iter()
        .find(|(l, _)| l.number == highest)
        .expect("the highest");
    assert_eq!(newest.superseded, None, "the newest CRL was not published");
    assert_eq!(
        &fs::read(&published).expect("published CRL"),
        newest_der,
        "the published file is not the newest command's CRL"
    );
    highest
}

#[test]
fn concurrent_crl_commands_keep_their_own_crl_and_the_newest_published() {
    let demo = Demo::init();
    let config = demo.config();
    // The same store and publication directory, the directory named by its absolute path.
    let text = fs::read_to_string(&config).expect("nesca.toml");
    let crl_dir = demo
        .dir
        .join(toml_value(&text, "crl", "dir").expect("[crl] dir"));
    let other = demo.path("nesca-other.toml");
    fs::write(&other, toml_replace(&text, "crl", "dir", s(&crl_dir))).expect("second config");
    let configs = [config, other];

    let full = race(&demo, &configs, false, "full");
    // Deltas need a published full CRL: there is one now.
    let delta = race(&demo, &configs, true, "delta");
    assert!(
        delta > full,
        "full and delta CRLs share one number sequence"
    );
    // Each file still holds the newest CRL of its kind.
    assert_eq!(crl_number_of(&crl_dir.join("nes-ca.crl")), full);
    assert_eq!(crl_number_of(&crl_dir.join("nes-ca-delta.crl")), delta);
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&configs[0])])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
}
