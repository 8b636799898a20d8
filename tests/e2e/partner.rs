//! `nesca partner add|list|issue-cert`: role and secure-communication certificates for
//! registered licensed ESHS partners.

use serde_json::Value;

use crate::support::partner::{add_partner, add_partner_with, issue_cert, LICENSE, PARTNER_NAME};
use crate::support::*;

const PARTNER: &str = "eshs-a";

/// `openssl verify -CAfile ca-chain.pem -purpose P CERT`.
fn verify_purpose(demo: &Demo, cert: &std::path::Path, purpose: &str) -> Output {
    let chain = demo.path("ca-chain.pem");
    openssl_may_fail(&["verify", "-CAfile", s(&chain), "-purpose", purpose, s(cert)])
}

#[test]
fn partner_certificates_verify_for_their_purposes_and_carry_the_profile() {
    let demo = Demo::init();
    let added = add_partner(&demo, PARTNER).ok();
    let line: Value = serde_json::from_str(added.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "partner add must print one JSON line ({e}): {}",
            added.describe()
        )
    });
    assert_eq!(added.stdout.trim().lines().count(), 1);
    assert_eq!(line["id"], PARTNER);
    assert_eq!(line["name"], PARTNER_NAME);
    assert_eq!(line["license_no"], LICENSE);
    assert_eq!(line["active"], true);

    let config = demo.config();
    let listed = demo
        .nesca(&["partner", "list", "--config", s(&config)])
        .ok();
    let rows: Vec<Value> = listed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("partner list prints JSON lines"))
        .collect();
    assert_eq!(rows.len(), 1, "{}", listed.describe());
    assert_eq!(rows[0]["id"], PARTNER);

    let (role_out, role) = issue_cert(&demo, PARTNER, "role", "KEC-0001", "role.pem");
    let role_serial = single_serial_line(&role_out.ok());
    let (comm_out, comm) = issue_cert(
        &demo,
        PARTNER,
        "secure-comm",
        "eshs-gw.example.com.tr",
        "comm.pem",
    );
    let comm_serial = single_serial_line(&comm_out.ok());
    assert_eq!(norm_serial(&cert_serial(&role)), norm_serial(&role_serial));
    assert_eq!(norm_serial(&cert_serial(&comm)), norm_serial(&comm_serial));

    for cert in [&role, &comm] {
        let out = verify_purpose(&demo, cert, "sslclient");
        assert!(out.success(), "sslclient: {}", out.describe());
    }
    let out = verify_purpose(&demo, &comm, "sslserver");
    assert!(
        out.success(),
        "sslserver for secure-comm: {}",
        out.describe()
    );
    let out = verify_purpose(&demo, &role, "sslserver");
    assert!(
        !out.success(),
        "a role certificate must not verify as sslserver: {}",
        out.describe()
    );

    for (cert, cn, ekus) in [
        (&role, "KEC-0001", "TLS Web Client Authentication"),
        (
            &comm,
            "eshs-gw.example.com.tr",
            "TLS Web Client Authentication, TLS Web Server Authentication",
        ),
    ] {
        let text = cert_text(cert);
        let (critical, eku) = extension(&text, "X509v3 Extended Key Usage")
            .unwrap_or_else(|| panic!("no extKeyUsage:\n{text}"));
        assert!(!critical, "extKeyUsage must be non-critical:\n{text}");
        let mut got: Vec<&str> = eku.split(',').map(str::trim).collect();
        got.sort();
        let mut want: Vec<&str> = ekus.split(',').map(str::trim).collect();
        want.sort();
        assert_eq!(got, want, "{text}");
        let (critical, ku) =
            extension(&text, "X509v3 Key Usage").unwrap_or_else(|| panic!("no keyUsage:\n{text}"));
        assert!(
            critical && ku == "Digital Signature",
            "keyUsage: {ku}\n{text}"
        );
        let (critical, bc) = extension(&text, "X509v3 Basic Constraints")
            .unwrap_or_else(|| panic!("no basicConstraints:\n{text}"));
        assert!(
            critical && bc == "CA:FALSE",
            "basicConstraints: {bc}\n{text}"
        );
        let (_, cdp) = extension(&text, "X509v3 CRL Distribution Points")
            .unwrap_or_else(|| panic!("no CDP:\n{text}"));
        assert!(cdp.contains("URI:http://") && cdp.contains(".crl"), "{cdp}");
        let (_, aia) = extension(&text, "Authority Information Access")
            .unwrap_or_else(|| panic!("no AIA:\n{text}"));
        assert!(aia.contains("OCSP - URI:http://"), "{aia}");
        assert!(aia.contains("CA Issuers - URI:http://"), "{aia}");
        assert!(extension(&text, "X509v3 Authority Key Identifier").is_some());
        assert!(extension(&text, "X509v3 Subject Key Identifier").is_some());
        assert!(
            !text.contains("qcStatements")
                && !text.contains("1.3.6.1.5.5.7.1.3")
                && extension(&text, "X509v3 Certificate Policies").is_none(),
            "no qcStatements and no certificatePolicies:\n{text}"
        );
        let subject = cert_subject_typed(cert);
        let mut attrs: Vec<String> = subject.split(',').map(|a| a.trim().to_string()).collect();
        attrs.sort();
        let mut want = vec![
            "C=PRINTABLESTRING:TR".to_string(),
            format!("O=UTF8STRING:{PARTNER_NAME}"),
            format!("CN=UTF8STRING:{cn}"),
            format!("serialNumber=PRINTABLESTRING:{LICENSE}"),
        ];
        want.sort();
        assert_eq!(attrs, want, "subject {subject}");
        let kind = if *cert == role { "role" } else { "secure-comm" };
        let csr = demo.work.join(format!("{kind}-{cn}.csr"));
        assert_eq!(
            cert_public_key(cert),
            csr_public_key(&csr, false),
            "the certificate must certify the CSR's key"
        );
    }

    // The store knows both, under their profiles.
    let profiles: Vec<String> = demo
        .cert_list()
        .iter()
        .filter_map(|c| c["profile"].as_str().map(String::from))
        .filter(|p| p.starts_with("partner-"))
        .collect();
    let mut profiles = profiles;
    profiles.sort();
    assert_eq!(profiles, ["partner-role", "partner-secure-comm"]);
}

#[test]
fn partner_refusals_change_nothing() {
    let demo = Demo::init();
    add_partner(&demo, PARTNER).ok();

    // Unknown partner: refused before the HSM, nothing stored, no file left behind.
    demo.assert_refused_unchanged(&["partner: no registered ESHS partner \"nobody\""], || {
        issue_cert(&demo, "nobody", "role", "KEC-0001", "x.pem").0
    });
    assert!(!demo.work.join("x.pem").exists());
    demo.assert_refused_unchanged(&["kind:", "role or secure-comm"], || {
        issue_cert(&demo, PARTNER, "tls", "KEC-0001", "y.pem").0
    });
    demo.assert_refused_unchanged(&["common-name:", "1 to 64"], || {
        issue_cert(&demo, PARTNER, "role", &"K".repeat(65), "z.pem").0
    });

    // Validity above the profile maximum, and a configuration above the hard ceiling.
    demo.assert_refused_unchanged(&["validity-days:", "maximum of 825 days"], || {
        let config = demo.config();
        let csr = demo.csr("long", Key::P256);
        let out = demo.work.join("long.pem");
        demo.nesca(&[
            "partner",
            "issue-cert",
            "--config",
            s(&config),
            "--partner",
            PARTNER,
            "--kind",
            "role",
            "--csr",
            s(&csr),
            "--common-name",
            "KEC-0001",
            "--validity-days",
            "826",
            "--out",
            s(&out),
        ])
    });
    let too_long = demo.path("partner-900.toml");
    let text = std::fs::read_to_string(demo.config()).expect("demo configuration");
    std::fs::write(
        &too_long,
        format!("{text}\n[profile.partner]\nmax_validity_days = 900\n"),
    )
    .expect("write configuration");
    assert_refusal(
        &demo.nesca(&["partner", "list", "--config", s(&too_long)]),
        &["profile.partner.max_validity_days", "825"],
    );

    // Duplicate id, bad id, bad name, bad licence number.
    assert_refusal(
        &add_partner(&demo, PARTNER),
        &["partner \"eshs-a\" already exists"],
    );
    assert_refusal(&add_partner(&demo, "ESHS A"), &["error: id:"]);
    let add = |name: &str, license: &str| add_partner_with(&demo, "eshs-b", name, license);
    assert_refusal(&add("", LICENSE), &["error: name: must not be empty"]);
    assert_refusal(
        &add(&"x".repeat(129), LICENSE),
        &["error: name: must be at most 128"],
    );
    assert_refusal(
        &add(PARTNER_NAME, ""),
        &["error: license-no: must not be empty"],
    );
    assert_refusal(
        &add(PARTNER_NAME, &"1".repeat(65)),
        &["error: license-no: must be at most 64"],
    );

    let config = demo.config();
    let listed = demo
        .nesca(&["partner", "list", "--config", s(&config)])
        .ok();
    assert_eq!(listed.stdout.lines().count(), 1, "{}", listed.describe());
}

/// The operator suspends, releases and revokes a partner's certificate without a holder
/// T.C. Kimlik No (it has none); the revocation reaches the CRL. A NES still needs its holder.
#[test]
fn the_operator_revokes_a_partner_certificate_and_the_crl_lists_it() {
    let demo = Demo::init();
    add_partner(&demo, "acme").ok();
    let (o, cert) = issue_cert(&demo, "acme", "role", "kec-device-7", "role.pem");
    let o = o.ok();
    let serial = single_serial_line(&o);
    let config = demo.config();
    let change = |verb: &str, extra: &[&str]| {
        let mut args = vec![verb, "--config", s(&config), "--serial", serial.as_str()];
        args.extend_from_slice(extra);
        demo.nesca(&args)
    };
    // A T.C. Kimlik No is refused for a certificate that has none.
    let with_holder = change("suspend", &["--holder-tckn", TCKN]);
    assert_refusal(&with_holder, &["holder_tckn", "no T.C. Kimlik No holder"]);
    assert!(change("suspend", &[]).ok().stdout.starts_with("suspended "));
    assert!(change("unsuspend", &[]).ok().stdout.starts_with("active "));
    let revoked = change("revoke", &["--reason", "cessationOfOperation"]).ok();
    assert!(
        revoked.stdout.starts_with("revoked "),
        "{}",
        revoked.describe()
    );
    assert_eq!(demo.cert_show(&serial)["status"], "revoked");

    let crl = demo.work.join("full.crl");
    demo.nesca(&["crl", "--config", s(&config), "--out", s(&crl)])
        .ok();
    let text = openssl(&["crl", "-inform", "DER", "-in", s(&crl), "-noout", "-text"]).stdout;
    assert!(
        text.contains(&serial.to_uppercase()) && text.contains("Cessation Of Operation"),
        "{text}"
    );
    let chain = demo.path("ca-chain.pem");
    let crl_pem = demo.work.join("full.pem");
    openssl(&["crl", "-inform", "DER", "-in", s(&crl), "-out", s(&crl_pem)]);
    let v = openssl_may_fail(&[
        "verify",
        "-crl_check",
        "-CAfile",
        s(&chain),
        "-CRLfile",
        s(&crl_pem),
        s(&cert),
    ]);
    let said = format!("{}{}", v.stdout, v.stderr);
    assert!(
        !v.success() && said.contains("certificate revoked"),
        "{}",
        v.describe()
    );

    // A NES without its holder is refused, as before.
    let csr = demo.csr("nes", Key::P256);
    let (_, nes_serial) = demo.issue_ok(&csr, "nes.pem", &[]);
    let refused = demo.nesca(&["revoke", "--config", s(&config), "--serial", &nes_serial]);
    assert_refusal(
        &refused,
        &["holder_tckn: revocation must be requested by the certificate holder"],
    );
    assert_eq!(demo.cert_show(&nes_serial)["status"], "active");
}

/// A deactivated partner gets no new certificate; deactivating twice or an unknown partner is
/// refused; the change is in `partner list`.
#[test]
fn a_deactivated_partner_gets_no_new_certificate() {
    let demo = Demo::init();
    add_partner(&demo, "acme").ok();
    let config = demo.config();
    let out = demo
        .nesca(&[
            "partner",
            "deactivate",
            "--config",
            s(&config),
            "--id",
            "acme",
        ])
        .ok();
    assert!(
        out.stdout.contains("\"active\":false"),
        "{}",
        out.describe()
    );
    let before = demo.cert_list_lines();
    let (refused, cert) = issue_cert(&demo, "acme", "role", "kec-9", "late.pem");
    assert_refusal(&refused, &["partner: no registered ESHS partner \"acme\""]);
    assert!(!cert.exists());
    assert_eq!(
        demo.cert_list_lines(),
        before,
        "a refused issuance changed the store"
    );
    let again = demo.nesca(&[
        "partner",
        "deactivate",
        "--config",
        s(&config),
        "--id",
        "acme",
    ]);
    assert_refusal(
        &again,
        &["partner: no active registered ESHS partner \"acme\""],
    );
    let unknown = demo.nesca(&[
        "partner",
        "deactivate",
        "--config",
        s(&config),
        "--id",
        "nobody",
    ]);
    assert_refusal(
        &unknown,
        &["partner: no active registered ESHS partner \"nobody\""],
    );
    let list = demo
        .nesca(&["partner", "list", "--config", s(&config)])
        .ok();
    assert!(
        list.stdout.contains("\"active\":false"),
        "{}",
        list.describe()
    );
    demo.nesca(&["audit", "verify", "--config", s(&config)])
        .ok();
}
