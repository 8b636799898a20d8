//! What `nesca issue` refuses: each refusal exits non-zero with one `error: ` line on stderr
//! naming the field and the rule, and leaves the store as it was.

use std::fs;

use crate::support::*;

#[test]
fn refuses_invalid_tckns() {
    let demo = Demo::init();
    let csr = demo.csr("req", Key::P256);
    for (tckn, phrases) in [
        ("17291716050", &["tckn", "checksum"][..]), // digit 10 wrong
        ("17291716061", &["tckn", "checksum"][..]), // digit 11 wrong
        ("01234567890", &["tckn"][..]),             // first digit 0
        ("1234", &["tckn", "11 digits"][..]),
        ("100000001466", &["tckn", "11 digits"][..]),
        ("1000000014a", &["tckn"][..]),
    ] {
        demo.assert_refused_unchanged(phrases, || demo.issue_as(&csr, tckn, GIVEN, SURNAME, &[]));
    }
    // The same request with a valid TCKN goes through: the CSR was never the problem.
    let cert = demo.work.join("cert.pem");
    demo.issue_as(&csr, "17291716060", GIVEN, SURNAME, &["--out", s(&cert)])
        .ok();
    assert_verifies(&demo.dir, &cert);
}

#[test]
fn refuses_a_csr_whose_signature_does_not_verify() {
    let demo = Demo::init();
    let csr = demo.csr("req", Key::P256);
    let der_path = demo.work.join("req.der");
    openssl(&[
        "req",
        "-in",
        s(&csr),
        "-outform",
        "DER",
        "-out",
        s(&der_path),
    ]);
    let mut der = fs::read(&der_path).unwrap();
    // The last octet is the last octet of the signature value (s of ECDSA's r, s).
    *der.last_mut().unwrap() ^= 0x01;
    let bad = demo.work.join("bad.csr");
    fs::write(&bad, pem_encode("CERTIFICATE REQUEST", &der)).unwrap();
    // Precondition: the tampered CSR still parses but its signature no longer verifies.
    let check = openssl_may_fail(&["req", "-in", s(&bad), "-noout", "-verify"]);
    assert!(
        !check.success() || !check.stdout.contains("verify OK"),
        "the tampered CSR still verifies: {}",
        check.describe()
    );
    let parses = openssl_may_fail(&["req", "-in", s(&bad), "-noout", "-subject"]);
    assert!(
        parses.success(),
        "the tampered CSR no longer parses: {}",
        parses.describe()
    );

    demo.assert_refused_unchanged(&["csr", "signature"], || demo.issue(&bad, &[]));
}

#[test]
fn refuses_weak_and_unsupported_keys() {
    let demo = Demo::init();
    let rsa1024 = demo.csr("rsa1024", Key::Rsa1024);
    demo.assert_refused_unchanged(&["2048"], || demo.issue(&rsa1024, &[]));
    let k1 = demo.csr("secp256k1", Key::Secp256k1);
    demo.assert_refused_unchanged(&["curve"], || demo.issue(&k1, &[]));
}

#[test]
fn refuses_bad_names() {
    let demo = Demo::init();
    let csr = demo.csr("req", Key::P256);
    demo.assert_refused_unchanged(&["given"], || demo.issue_as(&csr, TCKN, "", SURNAME, &[]));
    let long_ascii = "Y".repeat(65);
    demo.assert_refused_unchanged(&["surname", "64"], || {
        demo.issue_as(&csr, TCKN, GIVEN, &long_ascii, &[])
    });
    let long_turkish = "Ş".repeat(65);
    demo.assert_refused_unchanged(&["surname", "64"], || {
        demo.issue_as(&csr, TCKN, GIVEN, &long_turkish, &[])
    });
}

#[test]
fn refuses_validity_above_the_profile_maximum() {
    let demo = Demo::init();
    let csr = demo.csr("req", Key::P256);
    for days in ["5000", "1827"] {
        demo.assert_refused_unchanged(&["validity", "maximum"], || {
            demo.issue(&csr, &["--validity-days", days])
        });
    }
}

/// An --out file that cannot be written is found out before anything is signed or stored:
/// otherwise the store holds an active certificate that nobody received.
#[test]
fn refuses_an_unwritable_out_file_before_issuing() {
    let demo = Demo::init();
    let csr = demo.csr("req", Key::P256);
    let target = demo.work.join("missing-dir").join("cert.pem");
    let before = demo.cert_list_lines();
    let out = demo.issue(&csr, &["--out", s(&target)]);
    assert!(
        !out.success(),
        "issued to an unwritable --out: {}",
        out.describe()
    );
    let after = demo.cert_list_lines();
    assert_eq!(
        before.len(),
        after.len(),
        "a failed issuance left a certificate in the store that nobody received ({} before, \
         {} after): {}",
        before.len(),
        after.len(),
        out.describe()
    );
    assert_refusal(&out, &["out"]);
    assert!(!target.exists());
}

/// A configuration mistake names the file, the line and what is wrong, in one line.
#[test]
fn refuses_a_broken_configuration_naming_the_line() {
    let demo = Demo::init();
    let text = std::fs::read_to_string(demo.config()).expect("nesca.toml");
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.starts_with(needle))
            .expect(needle)
            + 1
    };

    let unknown = demo.work.join("unknown-key.toml");
    std::fs::write(
        &unknown,
        text.replacen("sessions = 2", "sessions = 2\ncolour = \"blue\"", 1),
    )
    .unwrap();
    let out = demo.nesca(&["cert", "list", "--config", s(&unknown)]);
    let line = format!("line {}", line_of("sessions = 2") + 1);
    assert_refusal(&out, &["unknown-key.toml", &line, "unknown field `colour`"]);

    let wrong_type = demo.work.join("wrong-type.toml");
    std::fs::write(
        &wrong_type,
        text.replacen("sessions = 2", "sessions = \"two\"", 1),
    )
    .unwrap();
    let out = demo.nesca(&["cert", "list", "--config", s(&wrong_type)]);
    let line = format!("line {}", line_of("sessions = 2"));
    assert_refusal(&out, &["wrong-type.toml", &line, "invalid type"]);
}
