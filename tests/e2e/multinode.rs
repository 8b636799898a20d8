//! Two `nesca serve` nodes on one PostgreSQL database and one token: issuance through both
//! configurations at once (no duplicate serial, one intact audit chain, no request failing),
//! a revocation through one node in the other node's OCSP answers without waiting for its
//! poll (LISTEN/NOTIFY), CRLs published through both with strictly increasing numbers, and a
//! standalone `nesca ocsp` (a third host's responder) answering from the same database.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::ocsp::{ocsp_good, ocsp_query, ocsp_revoked};
use crate::support::postgres::PgDemo;
use crate::support::server::Server;
use crate::support::*;

/// The OCSP responders' poll interval in this test: far longer than the wait for a change
/// allowed below, so that an answer in time proves the change was heard of, not polled.
const SLOW_POLL_MS: &str = "8000";

/// Sets the OCSP poll interval of the configuration at `path`.
fn slow_poll(path: &Path) {
    let text = std::fs::read_to_string(path).expect("configuration");
    let text = toml_replace_raw(&text, "ocsp", "poll_interval_ms", SLOW_POLL_MS);
    std::fs::write(path, text).expect("write configuration");
}

/// `nesca issue --config CONFIG` for AYŞE YILMAZ to `work/OUT`, whatever the outcome.
fn issue_through(pg: &PgDemo, config: &Path, csr: &Path, out: &str) -> Output {
    let out = pg.demo.work.join(out);
    pg.nesca_with(
        config,
        &[
            "issue",
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
        ],
    )
}

/// The CRL number of a DER CRL file, as OpenSSL reads it.
fn crl_number(path: &Path) -> u64 {
    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        s(path),
        "-noout",
        "-crlnumber",
    ]);
    let hex = out
        .stdout
        .trim()
        .strip_prefix("crlNumber=0x")
        .or_else(|| out.stdout.trim().strip_prefix("crlNumber="))
        .unwrap_or_else(|| panic!("no crlNumber: {}", out.describe()));
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("crlNumber {hex:?}: {e}"))
}

#[test]
fn two_nodes_on_one_database_share_one_truth() {
    let pg = PgDemo::init();
    let node_a = pg.demo.config();
    slow_poll(&node_a);
    let node_b = pg.node_config("node-b");
    let a = Server::serve_config(&pg.demo, &node_a);
    let b = Server::serve_config(&pg.demo, &node_b);
    let csr = pg.demo.csr("req", Key::P256);

    // Issuance through both nodes' configurations at once.
    const EACH: usize = 12;
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2 * EACH)
            .map(|i| {
                let (pg, csr) = (&pg, &csr);
                let config = if i % 2 == 0 { &node_a } else { &node_b };
                scope.spawn(move || issue_through(pg, config, csr, &format!("cert-{i}.pem")))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("issuing thread"))
            .collect()
    });
    let mut serials = BTreeSet::new();
    for out in &outputs {
        assert!(out.success(), "an issuance failed: {}", out.describe());
        serials.insert(single_serial_line(out));
    }
    assert_eq!(serials.len(), 2 * EACH, "serials must be distinct");
    let audit = pg.nesca_with(&node_b, &["audit", "verify"]).ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
    // Every certificate has exactly one issuance record in the one chain.
    let listed = pg.demo.cert_list();
    for serial in &serials {
        assert_eq!(
            listed
                .iter()
                .filter(|c| c["serial"].as_str() == Some(serial.as_str()))
                .count(),
            1,
            "serial {serial} listed once"
        );
    }

    // Both nodes answer for what either issued.
    let cert = pg.demo.work.join("cert-1.pem");
    ocsp_good(&pg.demo, &a.url(), &cert, "a-good.der");
    ocsp_good(&pg.demo, &b.url(), &cert, "b-good.der");
    // A revocation through node B's configuration reaches node A's answers long before A's
    // next poll: A heard of the commit.
    let serial = serials.iter().nth(1).expect("a serial").clone();
    let serial_of_cert = {
        let out = openssl(&["x509", "-in", s(&cert), "-noout", "-serial"]);
        out.stdout
            .trim()
            .trim_start_matches("serial=")
            .to_ascii_lowercase()
    };
    let revoked_at = Instant::now();
    pg.nesca_with(
        &node_b,
        &[
            "revoke",
            "--serial",
            &serial_of_cert,
            "--holder-tckn",
            TCKN,
            "--reason",
            "keyCompromise",
        ],
    )
    .ok();
    ocsp_revoked(&pg.demo, &a.url(), &cert, "keyCompromise", "a-revoked.der");
    let seen_after = revoked_at.elapsed();
    eprintln!("revocation through node B seen in node A's OCSP after {seen_after:?}");
    assert!(
        seen_after < Duration::from_millis(6000),
        "node A answered the revocation after {seen_after:?}: it waited for its {SLOW_POLL_MS} ms poll"
    );
    let _ = serial;

    // CRLs through both nodes at once: every number distinct and increasing, each --out the
    // CRL its command made.
    let runs: Vec<(Output, std::path::PathBuf)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let pg = &pg;
                let config = if i % 2 == 0 {
                    node_a.clone()
                } else {
                    node_b.clone()
                };
                scope.spawn(move || {
                    let out = pg.demo.work.join(format!("crl-{i}.der"));
                    (pg.nesca_with(&config, &["crl", "--out", s(&out)]), out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut numbers = BTreeSet::new();
    for (out, file) in &runs {
        assert!(out.success(), "a CRL run failed: {}", out.describe());
        let number = crl_number(file);
        assert!(
            out.stdout.contains(&format!("number={number} ")),
            "--out holds the CRL its command made: {}",
            out.describe()
        );
        assert!(numbers.insert(number), "CRL number {number} twice");
    }
    let published = crl_number(&pg.demo.path("crl/nes-ca.crl"));
    assert_eq!(
        Some(&published),
        numbers.iter().next_back(),
        "the newest CRL is published"
    );

    // A standalone responder (a third host's) answers from the same database.
    let ocsp = Server::ocsp(&pg.demo);
    let r = ocsp_query(&pg.demo, &ocsp.url(), &[&cert], &[], "standalone.der");
    assert!(r.verified(), "{}", r.describe());
    assert_eq!(
        r.status_of(&cert).as_deref(),
        Some("revoked"),
        "{}",
        r.describe()
    );
    drop((a, b, ocsp));
}

/// `[store]`'s PostgreSQL options through the binary: the password from a file (0600 only) or
/// a variable, never echoed; TLS with the server's name and certificate checked; a URL with a
/// password, a pool out of bounds: one line naming the option, exit 1.
#[test]
fn postgres_store_options_are_checked_through_the_binary() {
    const PASSWORD: &str = "S3cr3t-DB-pass";
    /// The local server's own certificate (Debian's postgresql package: `CN=localhost`).
    const SERVER_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    let pg = PgDemo::init();
    let original = std::fs::read_to_string(pg.demo.config()).expect("nesca.toml");
    let url = toml_value(&original, "store", "postgres_url").expect("postgres_url");
    let config = pg.demo.config();
    let with_store = |keys: &[(&str, String)]| {
        let mut text = original.clone();
        for (key, value) in keys {
            text = toml_set_raw(&text, "store", key, value);
        }
        std::fs::write(&config, text).expect("write nesca.toml");
    };
    let cert_list = |env: &[(&str, &str)]| {
        let mut cmd = nesca_command();
        cmd.envs(env.iter().copied())
            .args(["cert", "list", "--config", s(&config)]);
        run(cmd)
    };
    let assert_refused = |out: &Output, field: &str| {
        assert!(!out.success(), "{}", out.describe());
        assert_eq!(out.status.code(), Some(1), "{}", out.describe());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", out.describe());
        assert!(
            lines[0].starts_with(&format!("error: {field}: "))
                && lines[0].matches(field).count() == 1,
            "{}",
            out.describe()
        );
        assert!(!out.stderr.contains(PASSWORD) && !out.stdout.contains(PASSWORD));
    };

    // The password file: refused while others can read it, used once it is the owner's.
    let file = pg.demo.dir.join("pg-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    with_store(&[("postgres_password_file", "\"pg-password\"".into())]);
    assert_refused(&cert_list(&[]), "store.postgres_password_file");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let listed = cert_list(&[]).ok();
    assert!(!listed.stdout.contains(PASSWORD) && !listed.stderr.contains(PASSWORD));

    // The password variable: its absence names the option, its value is never shown.
    with_store(&[("postgres_password_env", "\"NESCA_E2E_PG_PASSWORD\"".into())]);
    assert_refused(&cert_list(&[]), "store.postgres_password_env");
    let listed = cert_list(&[("NESCA_E2E_PG_PASSWORD", PASSWORD)]).ok();
    assert!(!listed.stdout.contains(PASSWORD) && !listed.stderr.contains(PASSWORD));

    // TLS, verified: by the name in the server's certificate it connects; by an address
    // the certificate does not name it is refused (one line, the store named).
    let by_name = url.replace("127.0.0.1", "localhost");
    with_store(&[
        ("postgres_url", format!("\"{by_name}\"")),
        ("postgres_tls", "\"verify-full\"".into()),
        ("postgres_ca_file", format!("\"{SERVER_CERT}\"")),
    ]);
    cert_list(&[]).ok();
    with_store(&[
        ("postgres_tls", "\"verify-full\"".into()),
        ("postgres_ca_file", format!("\"{SERVER_CERT}\"")),
    ]);
    let mismatch = cert_list(&[]);
    assert!(!mismatch.success(), "{}", mismatch.describe());
    assert_eq!(
        mismatch.stderr.lines().count(),
        1,
        "{}",
        mismatch.describe()
    );
    assert!(
        mismatch.stderr.starts_with("error: store: "),
        "{}",
        mismatch.describe()
    );

    // A password in the URL; a pool out of bounds; TLS asked for in the URL.
    let with_password = url.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    with_store(&[("postgres_url", format!("\"{with_password}\""))]);
    assert_refused(&cert_list(&[]), "store.postgres_url");
    with_store(&[("postgres_pool", "0".into())]);
    assert_refused(&cert_list(&[]), "store.postgres_pool");
    with_store(&[("postgres_url", format!("\"{url}?sslmode=require\""))]);
    assert_refused(&cert_list(&[]), "store.postgres_url");
    std::fs::write(&config, &original).unwrap();
    cert_list(&[]).ok();
}
