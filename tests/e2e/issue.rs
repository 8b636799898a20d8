//! `nesca issue`, `nesca cert show` and `nesca cert list` on successful issuance.

use std::collections::HashSet;
use std::fs;

use crate::support::*;

const DAY: i64 = 86_400;

/// The subject attributes with their ASN.1 string types, sorted (order is not prescribed).
fn typed_attributes(subject: &str) -> Vec<String> {
    let mut v: Vec<String> = subject.split(',').map(|a| a.trim().to_string()).collect();
    v.sort();
    v
}

#[test]
fn issued_certificate_verifies_and_has_the_nes_subject() {
    let demo = Demo::init();
    let csr = demo.csr("req", Key::P256);
    let (cert, serial) = demo.issue_ok(&csr, "cert.pem", &[]);

    assert_verifies(&demo.dir, &cert);
    let strict = verify_cert(&demo.dir, &cert, true);
    assert!(
        strict.success(),
        "openssl verify -x509_strict rejects the certificate: {}",
        strict.describe()
    );

    assert_eq!(
        norm_serial(&cert_serial(&cert)),
        norm_serial(&serial),
        "the printed serial is not the certificate's"
    );
    assert_eq!(
        cert_public_key(&cert),
        csr_public_key(&csr, false),
        "the certificate does not certify the CSR's key"
    );

    let mut expected = vec![
        "C=PRINTABLESTRING:TR".to_string(),
        format!("GN=UTF8STRING:{GIVEN}"),
        format!("SN=UTF8STRING:{SURNAME}"),
        format!("CN=UTF8STRING:{GIVEN} {SURNAME}"),
        format!("serialNumber=PRINTABLESTRING:PNOTR-{TCKN}"),
    ];
    expected.sort();
    let subject = cert_subject_typed(&cert);
    assert_eq!(
        typed_attributes(&subject),
        expected,
        "subject (with string types) is {subject}"
    );
    assert!(
        !subject.contains("ignored"),
        "the subject must come from the flags, not the CSR: {subject}"
    );
    assert_eq!(
        cert_issuer(&cert),
        cert_subject(&demo.path("issuing-ca.pem")),
        "the certificate must be issued by the issuing CA"
    );
    let text = cert_text(&cert);
    assert!(
        text.contains("Version: 3 (0x2)"),
        "not a v3 certificate:\n{text}"
    );
}

#[test]
fn issued_certificate_has_the_nes_extensions() {
    let demo = Demo::init();
    let csr = demo.csr("req", Key::P256);
    let (cert, _) = demo.issue_ok(&csr, "cert.pem", &[]);
    let text = cert_text(&cert);

    let (critical, ku) =
        extension(&text, "X509v3 Key Usage").unwrap_or_else(|| panic!("no keyUsage:\n{text}"));
    assert!(
        critical && ku == "Non Repudiation",
        "keyUsage must be critical and nonRepudiation only, is critical={critical} {ku:?}"
    );
    if let Some((_, bc)) = extension(&text, "X509v3 Basic Constraints") {
        assert_eq!(bc, "CA:FALSE", "basicConstraints of a NES certificate");
    }

    let (critical, policies) = extension(&text, "X509v3 Certificate Policies")
        .unwrap_or_else(|| panic!("no certificatePolicies:\n{text}"));
    assert!(!critical, "certificatePolicies must not be critical");
    assert!(
        policies.contains("Policy: 0.4.0.194112.1.2"),
        "certificatePolicies lacks QCP-n-qscd 0.4.0.194112.1.2:\n{policies}"
    );

    let (_, cdp) = extension(&text, "X509v3 CRL Distribution Points")
        .unwrap_or_else(|| panic!("no cRLDistributionPoints:\n{text}"));
    assert!(
        cdp.contains(&format!("URI:{DEFAULT_URL}/")),
        "the CDP must use the default public URL {DEFAULT_URL}:\n{cdp}"
    );
    let (_, aia) = extension(&text, "Authority Information Access")
        .unwrap_or_else(|| panic!("no authorityInfoAccess:\n{text}"));
    assert!(
        aia.contains(&format!("OCSP - URI:{DEFAULT_URL}/"))
            && aia.contains(&format!("CA Issuers - URI:{DEFAULT_URL}/")),
        "the AIA must give OCSP and caIssuers under {DEFAULT_URL}:\n{aia}"
    );

    // authorityKeyIdentifier = the issuing CA's subjectKeyIdentifier.
    let (_, akid) = extension(&text, "X509v3 Authority Key Identifier")
        .unwrap_or_else(|| panic!("no authorityKeyIdentifier:\n{text}"));
    assert!(
        extension(&text, "X509v3 Subject Key Identifier").is_some(),
        "no subjectKeyIdentifier:\n{text}"
    );
    let ca_text = cert_text(&demo.path("issuing-ca.pem"));
    let (_, ca_skid) = extension(&ca_text, "X509v3 Subject Key Identifier")
        .unwrap_or_else(|| panic!("the issuing CA has no subjectKeyIdentifier:\n{ca_text}"));
    let akid_id = akid
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("keyid:");
    assert_eq!(
        akid_id, ca_skid,
        "authorityKeyIdentifier is not the issuing CA's key id"
    );

    for forbidden in [
        "X509v3 Policy Mappings",
        "X509v3 Name Constraints",
        "X509v3 Policy Constraints",
        "X509v3 Inhibit Any Policy",
    ] {
        assert!(
            extension(&text, forbidden).is_none(),
            "{forbidden} is forbidden in a NES certificate"
        );
    }

    // qcStatements, non-critical, with every statement docs/STANDARDS.md "NES certificate for a
    // natural person" asks for.
    let qc = extension(&text, "qcStatements").or_else(|| extension(&text, "1.3.6.1.5.5.7.1.3"));
    let (critical, _) = qc.unwrap_or_else(|| panic!("no qcStatements extension:\n{text}"));
    assert!(!critical, "qcStatements must not be critical");
    let der = cert_der(&cert);
    for (name, oid) in [
        ("QcCompliance", "0.4.0.1862.1.1"),
        ("QcSSCD", "0.4.0.1862.1.4"),
        ("QcType", "0.4.0.1862.1.6"),
        ("QcType esign", "0.4.0.1862.1.6.1"),
        ("QcPDS", "0.4.0.1862.1.5"),
        ("QcRetentionPeriod", "0.4.0.1862.1.3"),
        ("QcCClegislation", "0.4.0.1862.1.7"),
        ("id-qcs-pkixQCSyntax-v2", "1.3.6.1.5.5.7.11.2"),
        ("semanticsId-Natural", "0.4.0.194121.1.1"),
        ("BTK NES statement", "2.16.792.1.61.0.1.5070.1.1"),
    ] {
        assert!(
            contains_bytes(&der, &oid_der(oid)),
            "the certificate lacks {name} ({oid})"
        );
    }
    assert!(
        !contains_bytes(&der, b"\x13\x03TRL") && !contains_bytes(&der, b"\x0c\x03TRL"),
        "the obsolete currency TRL appears in the certificate"
    );
}

#[test]
fn cert_show_and_list_report_the_issued_certificate() {
    let demo = Demo::init();
    let before = demo.cert_list();
    let csr = demo.csr("req", Key::P256);
    let (cert, serial) = demo.issue_ok(&csr, "cert.pem", &[]);

    let after = demo.cert_list();
    assert_eq!(
        after.len(),
        before.len() + 1,
        "one issuance must add exactly one certificate to `cert list`: {after:?}"
    );
    let listed: Vec<_> = after
        .iter()
        .filter(|v| v["serial"].as_str().map(norm_serial) == Some(norm_serial(&serial)))
        .collect();
    assert_eq!(listed.len(), 1, "serial {serial} in `cert list`: {after:?}");
    assert_eq!(listed[0]["status"], "active", "{}", listed[0]);

    let shown = demo.cert_show(&serial);
    assert_eq!(
        shown["serial"].as_str().map(norm_serial),
        Some(norm_serial(&serial)),
        "{shown}"
    );
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["tckn"], TCKN, "{shown}");
    assert_eq!(shown["given_name"], GIVEN, "{shown}");
    assert_eq!(shown["surname"], SURNAME, "{shown}");
    let subject = shown["subject"].as_str().unwrap_or("");
    for part in [GIVEN, SURNAME, TCKN, "TR"] {
        assert!(
            subject.contains(part),
            "cert show subject {subject:?} lacks {part}"
        );
    }
    let issuer = shown["issuer"].as_str().unwrap_or("");
    assert!(
        !issuer.is_empty() && issuer != subject,
        "cert show issuer: {shown}"
    );
    let (nb, na) = cert_validity(&cert);
    for (field, want) in [("not_before", nb), ("not_after", na)] {
        let got = shown[field]
            .as_str()
            .and_then(parse_time)
            .unwrap_or_else(|| panic!("cert show {field} is not an RFC 3339 time: {shown}"));
        assert!(
            (got - want).abs() <= 1,
            "cert show {field} {} differs from the certificate's ({want} Unix seconds)",
            shown[field]
        );
    }

    let unknown = "7f".repeat(20);
    let config = demo.config();
    let out = demo.nesca(&["cert", "show", "--config", s(&config), "--serial", &unknown]);
    assert_refusal(&out, &["not found"]);
}

#[test]
fn issue_honours_validity_days_up_to_the_profile_maximum() {
    let demo = Demo::init();
    for days in [30u32, MAX_VALIDITY_DAYS] {
        let csr = demo.csr(&format!("req{days}"), Key::P256);
        let days_s = days.to_string();
        let (cert, _) = demo.issue_ok(
            &csr,
            &format!("cert{days}.pem"),
            &["--validity-days", &days_s],
        );
        assert_verifies(&demo.dir, &cert);
        let (nb, na) = cert_validity(&cert);
        let want = i64::from(days) * DAY;
        assert!(
            (want - 60..=want + DAY).contains(&(na - nb)),
            "--validity-days {days} gave a validity of {} s (want about {want} s)",
            na - nb
        );
        // Still valid a day before the end, expired a day after.
        let before_end = (i64::from(days) - 1) * DAY;
        let after_end = (i64::from(days) + 1) * DAY;
        let out = openssl_may_fail(&[
            "x509",
            "-in",
            s(&cert),
            "-noout",
            "-checkend",
            &before_end.to_string(),
        ]);
        assert!(out.success(), "expires too early: {}", out.describe());
        let out = openssl_may_fail(&[
            "x509",
            "-in",
            s(&cert),
            "-noout",
            "-checkend",
            &after_end.to_string(),
        ]);
        assert!(!out.success(), "expires too late: {}", out.describe());
    }
}

#[test]
fn issue_accepts_a_der_csr_and_prints_pem_then_serial_without_out() {
    let demo = Demo::init();
    let csr = make_csr(&demo.work, "req", Key::P256, true);
    assert_ne!(
        fs::read(&csr).unwrap().first(),
        Some(&b'-'),
        "the CSR should be DER"
    );
    // Relative --config and --csr from another working directory: the config's own paths
    // are relative to the config file, not to the working directory.
    let root = demo.tmp.path();
    let mut cmd = nesca_command();
    cmd.args([
        "issue",
        "--config",
        "ca/nesca.toml",
        "--csr",
        "work/req.csr",
        "--tckn",
        TCKN,
        "--given-name",
        GIVEN,
        "--surname",
        SURNAME,
    ])
    .current_dir(root);
    let out = run(cmd).ok();

    let blocks = pem_bodies(&out.stdout, "CERTIFICATE");
    assert_eq!(
        blocks.len(),
        1,
        "stdout must hold one PEM certificate: {}",
        out.describe()
    );
    let end = "-----END CERTIFICATE-----";
    let tail: Vec<&str> = out.stdout[out.stdout.find(end).unwrap() + end.len()..]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        tail.len(),
        1,
        "after the PEM, one serial line: {}",
        out.describe()
    );
    let serial = tail[0].trim();
    assert!(
        serial
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "the serial line is not lowercase hex: {serial:?}"
    );

    let cert = demo.work.join("cert.pem");
    let pem = &out.stdout[..out.stdout.find(end).unwrap() + end.len()];
    fs::write(&cert, format!("{}\n", pem.trim_start())).unwrap();
    assert_verifies(&demo.dir, &cert);
    assert_eq!(norm_serial(&cert_serial(&cert)), norm_serial(serial));
    assert_eq!(cert_public_key(&cert), csr_public_key(&csr, true));
}

#[test]
fn issue_accepts_rsa_2048_and_p384_csrs() {
    let demo = Demo::init();
    for (name, key, marker) in [
        ("rsa", Key::Rsa2048, "Public-Key: (2048 bit)"),
        ("p384", Key::P384, "NIST CURVE: P-384"),
    ] {
        let csr = demo.csr(name, key);
        let (cert, serial) = demo.issue_ok(&csr, &format!("{name}.pem"), &[]);
        assert_verifies(&demo.dir, &cert);
        assert_eq!(norm_serial(&cert_serial(&cert)), norm_serial(&serial));
        assert_eq!(
            cert_public_key(&cert),
            csr_public_key(&csr, false),
            "{name}"
        );
        let text = cert_text(&cert);
        assert!(
            text.contains(marker),
            "{name}: expected {marker:?} in\n{text}"
        );
    }
}

#[test]
fn serials_are_unique_positive_and_at_most_20_octets() {
    let demo = Demo::init();
    let mut seen = HashSet::new();
    for i in 0..3 {
        let csr = demo.csr(&format!("req{i}"), Key::P256);
        let (cert, serial) = demo.issue_ok(&csr, &format!("cert{i}.pem"), &[]);
        let n = norm_serial(&serial);
        assert!(
            n.len() <= 40 && (n.len() < 40 || n.as_bytes()[0] < b'8'),
            "serial {serial} is not a positive INTEGER of at most 20 octets"
        );
        assert!(
            n.len() >= 16,
            "serial {serial} is too short to hold 64 random bits"
        );
        assert_eq!(norm_serial(&cert_serial(&cert)), n);
        assert!(seen.insert(n), "serial {serial} issued twice");
    }
    let listed: HashSet<String> = demo
        .cert_list()
        .iter()
        .filter(|v| v["status"] == "active")
        .filter_map(|v| v["serial"].as_str().map(norm_serial))
        .collect();
    assert!(
        seen.is_subset(&listed),
        "`cert list` does not show all three as active: {listed:?}"
    );
}

#[test]
fn turkish_letters_round_trip() {
    let demo = Demo::init();
    let given = "Çiğdem İlkay";
    let surname = "Işıkçıoğlu-Üstündağ Şahinöz Göçmüşoğlu";
    let cn = format!("{given} {surname}");
    // More than 64 bytes but at most 64 characters: lengths are counted in characters.
    assert!(cn.len() > 64 && cn.chars().count() <= 64);
    let csr = demo.csr("req", Key::P256);
    let cert = demo.work.join("cert.pem");
    let out = demo
        .issue_as(&csr, TCKN, given, surname, &["--out", s(&cert)])
        .ok();
    let serial = single_serial_line(&out);
    assert_verifies(&demo.dir, &cert);

    let subject = cert_subject_typed(&cert);
    let attrs = typed_attributes(&subject);
    for want in [
        format!("GN=UTF8STRING:{given}"),
        format!("SN=UTF8STRING:{surname}"),
        format!("CN=UTF8STRING:{cn}"),
    ] {
        assert!(attrs.contains(&want), "subject {subject} lacks {want}");
    }
    let shown = demo.cert_show(&serial);
    assert_eq!(shown["given_name"], given, "{shown}");
    assert_eq!(shown["surname"], surname, "{shown}");
    let shown_subject = shown["subject"].as_str().unwrap_or("");
    assert!(
        shown_subject.contains(given) && shown_subject.contains(surname),
        "cert show subject {shown_subject:?} does not round-trip the Turkish letters"
    );
}
