//! Transport keys registered with nesca (`nesca transport-key add`): a certificate for a card's
//! RSA transport key, issued with `openssl x509 -new -force_pubkey` by a throwaway P-256 CA
//! that plays the card-personalisation system's or the KEC maker's CA.

use std::fs;

use serde_json::Value;

use crate::support::{openssl, s, self_signed_p256, Demo, Output};

/// `nesca transport-key ARGS --config <the demo's>`, whatever its outcome.
#[track_caller]
pub(crate) fn transport_key_cmd(demo: &Demo, args: &[&str]) -> Output {
    let config = demo.config();
    let mut all = vec!["transport-key"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", s(&config)]);
    demo.nesca(&all)
}

/// A certificate (PEM path) for the transport key `spki` (DER SubjectPublicKeyInfo), valid for
/// `days` days from now.
#[track_caller]
pub(crate) fn transport_cert(
    demo: &Demo,
    name: &str,
    spki: &[u8],
    days: u32,
) -> std::path::PathBuf {
    let spki_der = demo.work.join(format!("{name}.spki.der"));
    fs::write(&spki_der, spki).unwrap();
    let spki_pem = demo.work.join(format!("{name}.spki.pem"));
    openssl(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        s(&spki_der),
        "-out",
        s(&spki_pem),
    ]);
    let (ca_key, ca_cert) = (
        demo.work.join(format!("{name}-ca.key")),
        demo.work.join(format!("{name}-ca.pem")),
    );
    self_signed_p256(&ca_key, &ca_cert, &format!("/CN={name} CA"), 3650, &[]);
    let cert = demo.work.join(format!("{name}.transport.pem"));
    let days = days.to_string();
    openssl(&[
        "x509",
        "-new",
        "-force_pubkey",
        s(&spki_pem),
        "-subj",
        &format!("/CN={name}"),
        "-CA",
        s(&ca_cert),
        "-CAkey",
        s(&ca_key),
        "-days",
        &days,
        "-out",
        s(&cert),
    ]);
    cert
}

/// Registers the transport key `spki` under `name` (certificate valid `days` days); its id.
#[track_caller]
pub(crate) fn register_transport_key(demo: &Demo, name: &str, spki: &[u8], days: u32) -> String {
    let cert = transport_cert(demo, name, spki, days);
    let out = transport_key_cmd(demo, &["add", "--name", name, "--cert", s(&cert)]).ok();
    let line: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "transport-key add prints one JSON line: {e}: {}",
            out.describe()
        )
    });
    let id = line["id"].as_str().unwrap_or_default().to_owned();
    // The id is the SHA-256 of the certificate's SubjectPublicKeyInfo: the key's own.
    use sha2::Digest as _;
    assert_eq!(id, hex::encode(sha2::Sha256::digest(spki)), "{line}");
    assert_eq!(
        (line["name"].as_str(), line["active"].as_bool()),
        (Some(name), Some(true))
    );
    id
}
