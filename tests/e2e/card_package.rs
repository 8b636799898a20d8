//! The card package as a card bureau receives it (docs/channels/card-package.md): a KDHS
//! application with `key.hsm` to the real `nesca serve`, for an RSA transport key whose private
//! key the test holds in a file, and the answer's `wrapped_key` unwrapped by implementations
//! that are not nesca's nor its token's: Python `cryptography` (RSA-OAEP, then
//! `aes_key_unwrap_with_padding`, RFC 5649) and the OpenSSL commands the document gives. The
//! PKCS#8 must be exactly that — a strict DER parser loads it, nothing follows it — and its
//! public key the issued certificate's.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::idcard::*;
use crate::support::pyhanko::pyhanko_python;
use crate::support::server::{server_demo, Server};
use crate::support::*;

const KDHS_APPLY: &str = "/channels/kdhs/v1/applications";

/// Unwraps a card package's `wrapped_key` object (argv[2], JSON) with the transport private key
/// (argv[1], PEM), writes the PKCS#8 to argv[4] and prints what it found as JSON: whether the key
/// is the certificate's (argv[3], DER).
const UNWRAP: &str = r#"
import base64, json, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

transport_pem, wrapped_json, cert_der, out = sys.argv[1:5]
w = json.load(open(wrapped_json))
digest = {"rsa-oaep-sha256+aes-kwp": hashes.SHA256, "rsa-oaep-sha1+aes-kwp": hashes.SHA1}[w["scheme"]]
transport = serialization.load_pem_private_key(open(transport_pem, "rb").read(), password=None)
aes = transport.decrypt(
    base64.b64decode(w["wrapped_key"], validate=True),
    padding.OAEP(mgf=padding.MGF1(algorithm=digest()), algorithm=digest(), label=None),
)
pkcs8 = aes_key_unwrap_with_padding(aes, base64.b64decode(w["wrapped_private_key"], validate=True))
key = serialization.load_der_private_key(pkcs8, password=None)
cert = x509.load_der_x509_certificate(open(cert_der, "rb").read())
spki = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
open(out, "wb").write(pkcs8)
print(json.dumps({
    "aes_key_bytes": len(aes),
    "pkcs8_bytes": len(pkcs8),
    "key_type": type(key).__name__,
    "matches_certificate": spki(key.public_key()) == spki(cert.public_key()),
}))
"#;

/// An application body (protocol v1) asking the HSM for a key of `algorithm` wrapped for the
/// registered transport key `transport_id`.
fn hsm_application(world: &World, who: Person, algorithm: &str, transport_id: &str) -> Value {
    let kdbo = world.kdbo(&world.kdhs, &world.kdb("application", who, None));
    json!({
        "v": 1,
        "kdbo": b64(&kdbo),
        "firmware_sha256": world.firmware,
        "auth_certificate": b64(&world.auth_cert(who)),
        "key": {"hsm": {"algorithm": algorithm, "transport_key": transport_id}},
    })
}

/// The answer's JSON, after checking its status.
#[track_caller]
fn answer(r: &crate::support::http::HttpResponse, status: u16, server: &Server) -> Value {
    assert_eq!(r.status, status, "{}\n{}", r.describe(), server.describe());
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {}", r.describe()))
}

/// `wrapped_key` unwrapped by Python `cryptography`: the PKCS#8 (also written to `DIR/NAME.p8`),
/// after checking that the key loads and is the certificate's.
#[track_caller]
fn unwrap_with_python(
    dir: &Path,
    name: &str,
    transport_key: &Path,
    wrapped: &Value,
    cert_der: &[u8],
) -> Vec<u8> {
    let (script, wrapped_json, cert, out) = (
        dir.join("unwrap_card_package.py"),
        dir.join(format!("{name}.wrapped.json")),
        dir.join(format!("{name}.cert.der")),
        dir.join(format!("{name}.p8")),
    );
    fs::write(&script, UNWRAP).unwrap();
    fs::write(&wrapped_json, wrapped.to_string()).unwrap();
    fs::write(&cert, cert_der).unwrap();
    let mut cmd = Command::new(pyhanko_python());
    cmd.arg(&script)
        .args([transport_key, &wrapped_json, &cert, &out])
        .current_dir(dir);
    let output = run(cmd);
    assert!(
        output.success(),
        "Python cryptography did not unwrap the card package (RFC 5649 unwrap, or the strict PKCS#8 load, failed): {}",
        output.describe()
    );
    let found: Value = serde_json::from_str(output.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the script prints one JSON line ({e}): {}",
            output.describe()
        )
    });
    assert_eq!(found["aes_key_bytes"], 32, "an AES-256 key: {found}");
    assert_eq!(
        found["matches_certificate"], true,
        "the unwrapped key is not the certificate's: {found}"
    );
    let pkcs8 = fs::read(&out).unwrap();
    assert_eq!(found["pkcs8_bytes"], pkcs8.len(), "{found}");
    pkcs8
}

/// The same package unwrapped with the OpenSSL commands of docs/channels/card-package.md
/// (`pkeyutl` RSA-OAEP, `enc -d -id-aes256-wrap-pad`); the PKCS#8 they give.
#[track_caller]
fn unwrap_with_openssl(dir: &Path, name: &str, transport_key: &Path, wrapped: &Value) -> Vec<u8> {
    let md = match wrapped["scheme"].as_str() {
        Some("rsa-oaep-sha256+aes-kwp") => "sha256",
        Some("rsa-oaep-sha1+aes-kwp") => "sha1",
        other => panic!("unknown scheme {other:?}"),
    };
    let (aes_wrapped, aes_key, key_wrapped, pkcs8) = (
        dir.join(format!("{name}.aes.wrapped")),
        dir.join(format!("{name}.aes.key")),
        dir.join(format!("{name}.key.wrapped")),
        dir.join(format!("{name}.openssl.p8")),
    );
    let field = |f: &str| unb64(wrapped[f].as_str().unwrap_or(""), f);
    fs::write(&aes_wrapped, field("wrapped_key")).unwrap();
    fs::write(&key_wrapped, field("wrapped_private_key")).unwrap();
    let (oaep_md, mgf1_md) = (format!("rsa_oaep_md:{md}"), format!("rsa_mgf1_md:{md}"));
    openssl(&[
        "pkeyutl",
        "-decrypt",
        "-inkey",
        s(transport_key),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        &oaep_md,
        "-pkeyopt",
        &mgf1_md,
        "-in",
        s(&aes_wrapped),
        "-out",
        s(&aes_key),
    ]);
    let key_hex = ::hex::encode(fs::read(&aes_key).unwrap());
    openssl(&[
        "enc",
        "-d",
        "-id-aes256-wrap-pad",
        "-K",
        &key_hex,
        "-iv",
        "A65959A6",
        "-in",
        s(&key_wrapped),
        "-out",
        s(&pkcs8),
    ]);
    fs::read(&pkcs8).unwrap()
}

/// The outer DER SEQUENCE's length (header and contents) at the start of `der`.
fn der_sequence_len(der: &[u8]) -> usize {
    use ::der::{Decode, Reader};
    let mut reader = ::der::SliceReader::new(der).unwrap();
    let header = ::der::Header::decode(&mut reader).expect("a DER header");
    assert_eq!(header.tag, ::der::Tag::Sequence, "PKCS#8 is a SEQUENCE");
    usize::try_from((reader.position() + header.length).unwrap()).unwrap()
}

/// The issue this answers: the package's `wrapped_private_key`, unwrapped with a standard
/// RFC 5649 implementation, gave the PKCS#8 followed by 5 zero bytes for a P-256 key (SoftHSM
/// 2.6.1 pads before wrapping), which a strict DER parser refuses. Now the message length
/// indicator is the PKCS#8's length: Python `cryptography` and OpenSSL both get exactly the
/// PKCS#8, it loads, and it is the certificate's key — P-256, P-384 and RSA. Then, without
/// `[hsm] aes_key_wrap_repair`, a token that is not RFC 5649 wraps nothing and nothing is issued.
#[test]
fn the_card_package_unwraps_with_an_independent_rfc5649_implementation() {
    let demo = server_demo();
    let world = World::new(&demo, Options::default());
    // The card bureau's RSA transport key: its private key in a file the test holds, its
    // certificate registered by the operator.
    let dir = demo.work.join("card-bureau");
    fs::create_dir_all(&dir).unwrap();
    let transport_key = dir.join("transport.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        s(&transport_key),
    ]);
    let spki = openssl(&[
        "pkey",
        "-in",
        s(&transport_key),
        "-pubout",
        "-outform",
        "DER",
    ])
    .stdout_bytes;
    let transport_id = register_transport_key(&demo, "card-bureau", &spki, 365);

    let mut server = Server::serve(&demo);
    let kdhs = world.client(Some(&world.kdhs_client));
    for (who, algorithm) in [
        (AYSE, "ecdsa-p256"),
        (CAGRI, "ecdsa-p384"),
        (AYSE, "rsa-2048"),
    ] {
        let r = kdhs.post_ok(
            KDHS_APPLY,
            &hsm_application(&world, who, algorithm, &transport_id),
        );
        let v = answer(&r, 201, &server);
        let wrapped = &v["wrapped_key"];
        assert_eq!(wrapped["transport_key"], json!(transport_id), "{v}");
        let cert_der = unb64(v["certificate"].as_str().unwrap_or(""), "certificate");
        let python = unwrap_with_python(&dir, algorithm, &transport_key, wrapped, &cert_der);
        // Exactly the PKCS#8: its outer SEQUENCE is all there is.
        assert_eq!(
            der_sequence_len(&python),
            python.len(),
            "{algorithm}: bytes follow the PKCS#8"
        );
        let openssl_pkcs8 = unwrap_with_openssl(&dir, algorithm, &transport_key, wrapped);
        assert_eq!(
            openssl_pkcs8, python,
            "{algorithm}: OpenSSL and Python disagree"
        );
        // OpenSSL reads it too, and its public key is the certificate's.
        let p8 = dir.join(format!("{algorithm}.p8"));
        let public = openssl(&["pkey", "-inform", "DER", "-in", s(&p8), "-pubout"]).stdout;
        let cert = write_cert_pem(&dir.join(format!("{algorithm}.pem")), &cert_der);
        assert_eq!(public, cert_public_key(&cert), "{algorithm}");
    }
    server.assert_running();
    drop(server);

    // Without the repair a token that is not RFC 5649 (SoftHSM 2.6.1) wraps nothing: the
    // application is refused naming the defect and the configuration key, and nothing is issued.
    let config = demo.config();
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        toml_replace_raw(&text, "hsm", "aes_key_wrap_repair", "false"),
    )
    .unwrap();
    let certificates = || {
        demo.nesca(&["cert", "list", "--config", s(&config)])
            .ok()
            .stdout
            .lines()
            .count()
    };
    let before = certificates();
    let mut server = Server::serve(&demo);
    let r = kdhs.post_ok(
        KDHS_APPLY,
        &hsm_application(&world, CAGRI, "ecdsa-p256", &transport_id),
    );
    if r.status == 201 {
        // A token whose CKM_AES_KEY_WRAP_PAD is RFC 5649 needs no repair.
        let v = answer(&r, 201, &server);
        let cert_der = unb64(v["certificate"].as_str().unwrap_or(""), "certificate");
        unwrap_with_python(
            &dir,
            "no-repair",
            &transport_key,
            &v["wrapped_key"],
            &cert_der,
        );
    } else {
        // The partner reads the general refusal with a request id (nesca hides what is wrong
        // inside it); the operator's log names the defect and the key under that id.
        let v = answer(&r, 422, &server);
        assert_eq!(v["error"]["code"], "refused", "{}", r.describe());
        let message = v["error"]["message"].as_str().unwrap_or("");
        let request_id = message
            .strip_prefix("hsm_key: temporarily unavailable; try again later; request id ")
            .unwrap_or_else(|| panic!("{}", r.describe()));
        server.wait_for_log_line(
            &[
                request_id,
                "C_WrapKey with CKM_AES_KEY_WRAP_PAD is not RFC 5649",
                "the message length indicator is 24 for a 20-byte key",
                "set [hsm] aes_key_wrap_repair = true",
            ],
            std::time::Duration::from_secs(10),
        );
        server.assert_running();
        drop(server);
        assert_eq!(
            certificates(),
            before,
            "a refused card key issued a certificate"
        );
    }
}
