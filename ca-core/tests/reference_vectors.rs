//! DER test vectors: real certificates read by nesca's decoder and judged by its lint.

use ca_core::profile::{self, IssuerContext, NesProfile, NesProfileConfig, PdsConfig};
use ca_core::IssuerId;
use der::Decode;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::Certificate;

fn nes_profile() -> NesProfile {
    NesProfile::from_config(&NesProfileConfig {
        policy_oid: "2.16.792.1.2.1.1.5.7.1.1".into(),
        cps_uri: "https://pki.example.com.tr/cps".into(),
        user_notice: None,
        pds: vec![PdsConfig {
            url: "https://pki.example.com.tr/pds/en".into(),
            language: "en".into(),
        }],
        retention_years: 20,
        btk_notice: "x".into(),
        validity_days: 1095,
        max_validity_days: 1826,
        legacy_serial_number: true,
        limit_value_try: None,
    })
    .unwrap()
}

#[test]
fn the_2012_kamu_sm_certificate_fails_the_nes_lint_for_the_known_reasons() {
    let der = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kamusm-nes-test-2012.der"
    ))
    .unwrap();
    let cert = Certificate::from_der(&der).expect("the reference certificate decodes");
    let tbs = &cert.tbs_certificate;
    let aki = tbs
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ca_core::oids::CE_AUTHORITY_KEY_IDENTIFIER)
        .map(|e| AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes()).unwrap())
        .unwrap();
    // The issuer as the certificate names it, so that only the profile's own rules speak.
    let issuer = IssuerContext {
        id: IssuerId::parse("kamusm").unwrap(),
        name: tbs.issuer.clone(),
        key_id: aki.key_identifier.unwrap().as_bytes().to_vec(),
        signature_algorithm: tbs.signature.clone(),
        urls: None,
        not_after: None,
    };
    let err = profile::lint(&nes_profile(), tbs, &issuer)
        .unwrap_err()
        .to_string();
    for expected in [
        "subject must hold exactly one givenName",
        "subject must hold exactly one surname",
        "keyUsage must be nonRepudiation only",
        "certificatePolicies must contain QCP-n-qscd",
        "user notice explicitText must be UTF8String",
        "QcLimitValue currency must be TRY",
        "qcStatements must contain QcType esign",
    ] {
        assert!(
            err.contains(expected),
            "expected \"{expected}\" among the findings: {err}"
        );
    }
}
