//! `nesca init --demo`: the directory it makes, its CA chain, and what it refuses.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::*;

#[test]
fn init_demo_creates_the_layout_and_a_valid_ca_chain() {
    let demo = Demo::init_fresh(&[]);

    for f in [
        "softhsm2.conf",
        "user-pin",
        "nesca.db",
        "nesca.toml",
        "root-ca.pem",
        "issuing-ca.pem",
        "ocsp-signer.pem",
        "ca-chain.pem",
    ] {
        assert!(demo.path(f).is_file(), "init --demo did not create {f}");
    }
    assert!(
        demo.path("tokens").is_dir(),
        "init --demo did not create the token directory tokens/"
    );

    // The PIN: private to its owner, and only in its own file.
    let pin_meta = fs::metadata(demo.path("user-pin")).expect("user-pin");
    assert_eq!(
        pin_meta.permissions().mode() & 0o777,
        0o600,
        "user-pin must be mode 0600, is {:o}",
        pin_meta.permissions().mode() & 0o777
    );
    let pin = fs::read_to_string(demo.path("user-pin")).expect("user-pin");
    let pin = pin.trim();
    assert!(
        pin.len() >= 4,
        "user-pin holds no usable PIN (length {})",
        pin.len()
    );
    let toml = fs::read_to_string(demo.config()).expect("nesca.toml");
    assert!(
        !toml.contains(pin),
        "nesca.toml contains the user PIN (contents not shown)"
    );
    assert_eq!(
        toml_value(&toml, "hsm", "pin_file").as_deref(),
        Some("user-pin"),
        "nesca.toml [hsm] pin_file:\n{toml}"
    );
    for (section, key) in [
        ("hsm", "module"),
        ("hsm", "token_label"),
        ("hsm", "softhsm_conf"),
        ("store", "sqlite"),
        ("profile.nes", "max_validity_days"),
    ] {
        assert!(
            toml_value(&toml, section, key).is_some(),
            "nesca.toml has no `{key}` in [{section}]:\n{toml}"
        );
    }

    // The token lives in the demo directory: SoftHSM finds it through the demo's
    // softhsm2.conf even from another working directory.
    let label = toml_value(&toml, "hsm", "token_label").expect("token_label");
    let mut cmd = Command::new("softhsm2-util");
    cmd.arg("--show-slots")
        .env("SOFTHSM2_CONF", demo.path("softhsm2.conf"))
        .current_dir(&demo.work);
    let slots = run(cmd).ok();
    assert!(
        slots.stdout.contains(&label),
        "softhsm2-util with the demo's softhsm2.conf does not list token {label:?}: {}",
        slots.describe()
    );

    // The chain: root self-signed, issuing CA under the root, ca-chain.pem = issuing + root.
    let root = demo.path("root-ca.pem");
    let issuing = demo.path("issuing-ca.pem");
    let out = openssl_may_fail(&["verify", "-CAfile", s(&root), s(&root)]);
    assert!(
        out.success(),
        "the root is not self-signed: {}",
        out.describe()
    );
    let out = openssl_may_fail(&["verify", "-x509_strict", "-CAfile", s(&root), s(&issuing)]);
    assert!(
        out.success(),
        "the issuing CA does not verify under the root: {}",
        out.describe()
    );
    for (name, cert) in [("root", &root), ("issuing", &issuing)] {
        let text = cert_text(cert);
        let (critical, body) = extension(&text, "X509v3 Basic Constraints")
            .unwrap_or_else(|| panic!("the {name} CA has no basicConstraints:\n{text}"));
        assert!(
            critical && body.starts_with("CA:TRUE"),
            "the {name} CA's basicConstraints must be critical CA:TRUE:\n{text}"
        );
    }
    let chain = fs::read_to_string(demo.path("ca-chain.pem")).expect("ca-chain.pem");
    let chain_blocks = pem_bodies(&chain, "CERTIFICATE");
    let issuing_block = pem_bodies(&fs::read_to_string(&issuing).unwrap(), "CERTIFICATE");
    let root_block = pem_bodies(&fs::read_to_string(&root).unwrap(), "CERTIFICATE");
    assert_eq!(
        issuing_block.len(),
        1,
        "issuing-ca.pem must hold one certificate"
    );
    assert_eq!(root_block.len(), 1, "root-ca.pem must hold one certificate");
    assert_eq!(
        chain_blocks,
        vec![issuing_block[0].clone(), root_block[0].clone()],
        "ca-chain.pem must be issuing-ca.pem then root-ca.pem"
    );

    // The OCSP signer: issued directly by the issuing CA it answers for, OCSPSigning, nocheck.
    let ocsp = demo.path("ocsp-signer.pem");
    assert_verifies(&demo.dir, &ocsp);
    assert_eq!(
        cert_issuer(&ocsp),
        cert_subject(&issuing),
        "the OCSP signer must be issued by the issuing CA"
    );
    let text = cert_text(&ocsp);
    let (_, eku) = extension(&text, "X509v3 Extended Key Usage")
        .unwrap_or_else(|| panic!("the OCSP signer has no extendedKeyUsage:\n{text}"));
    assert!(eku.contains("OCSP Signing"), "OCSP signer EKU: {eku}");
    assert!(
        extension(&text, "OCSP No Check").is_some(),
        "the OCSP signer has no id-pkix-ocsp-nocheck:\n{text}"
    );
}

#[test]
fn init_twice_refuses_and_changes_nothing() {
    let demo = Demo::init_fresh(&[]);
    let before = snapshot(&demo.dir);
    let out = demo.init_again(&[]);
    assert_refusal(&out, &["already exists"]);
    let after = snapshot(&demo.dir);
    let before_names: Vec<_> = before.keys().collect();
    let after_names: Vec<_> = after.keys().collect();
    assert_eq!(
        before_names, after_names,
        "a second init changed the set of files"
    );
    for (path, (bytes, mode)) in &before {
        let (bytes2, mode2) = &after[path];
        assert!(
            bytes == bytes2 && mode == mode2,
            "a second init changed {}",
            path.display()
        );
    }
    // The first CA still works.
    let csr = demo.csr("req", Key::P256);
    let (cert, _) = demo.issue_ok(&csr, "cert.pem", &[]);
    assert_verifies(&demo.dir, &cert);
}

#[test]
fn init_refuses_an_unknown_algorithm_and_leaves_nothing() {
    let demo = Demo::empty();
    let out = demo.init_again(&["--algorithm", "dsa-1024"]);
    assert!(
        !out.success(),
        "init --algorithm dsa-1024 succeeded: {}",
        out.describe()
    );
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.to_lowercase().contains("algorithm"),
        "the refusal must start with `error: ` and name the algorithm: {}",
        out.describe()
    );
    assert!(
        !demo.config().exists(),
        "a refused init left {} behind",
        demo.config().display()
    );
}

#[test]
fn init_with_rsa_2048_issues_a_verifiable_certificate() {
    let demo = Demo::init_fresh(&["--algorithm", "rsa-2048"]);
    for name in ["root-ca.pem", "issuing-ca.pem"] {
        let text = cert_text(&demo.path(name));
        assert!(
            text.contains("rsaEncryption") && text.contains("Public-Key: (2048 bit)"),
            "{name} of an rsa-2048 demo does not hold an RSA-2048 key:\n{text}"
        );
    }
    let csr = demo.csr("req", Key::P256);
    let (cert, serial) = demo.issue_ok(&csr, "cert.pem", &[]);
    assert_verifies(&demo.dir, &cert);
    let text = cert_text(&cert);
    assert!(
        text.contains("sha256WithRSAEncryption")
            || text.contains("sha384WithRSAEncryption")
            || text.contains("sha512WithRSAEncryption")
            || text.contains("rsassaPss"),
        "an rsa-2048 CA must sign with RSA and SHA-256 or stronger:\n{text}"
    );
    assert_eq!(norm_serial(&cert_serial(&cert)), norm_serial(&serial));
    assert_eq!(cert_public_key(&cert), csr_public_key(&csr, false));
}
