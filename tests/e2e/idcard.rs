//! The world around the CA for the identity-card channels (`kdhs`, `kec`; their tests are in
//! channels.rs): a test identity-card CA and its holders' authentication certificates, a KDHS
//! with a trust anchor and signing key of its own, KDBs signed into KDBOs with `openssl cms`,
//! the partners nesca registers (a licensed KDHS, an unlicensed one, a KEC operator and its
//! devices' role certificates, another operator), the `[channels]` and `[[plugins]]`
//! configuration, an mTLS client (rustls) for the channel listener, and a second SoftHSM token
//! that plays the applicant's ID card when the CA's HSM generates the key and wraps it.
//!
//! Everything outside nesca is made with the `openssl` command line where that is enough
//! (`openssl ca` for the certificates, because it can back-date one to make it expired);
//! only the card needs PKCS#11 in the test process (`cryptoki`) and a CMS SignedData built
//! here, because its key never leaves the token.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct};
use rustls::{RootCertStore, SignatureScheme, StreamOwned};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::partner::{add_partner_with, issue_cert};
use crate::plugins::built_plugin;
use crate::server::{read_response, request_head, HttpResponse, HTTP_LIMIT};
use crate::support::*;

// ---------------------------------------------------------------------------------------------
// People and time
// ---------------------------------------------------------------------------------------------

/// A holder of a T.C. identity card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Person {
    pub tckn: &'static str,
    pub given: &'static str,
    pub surname: &'static str,
}

/// AYŞE YILMAZ, the holder of the other e2e tests.
pub const AYSE: Person = Person {
    tckn: TCKN,
    given: GIVEN,
    surname: SURNAME,
};

/// A second person (10000000078 passes the check digits: see [`is_valid_tckn`]).
pub const CAGRI: Person = Person {
    tckn: "10000000078",
    given: "ÇAĞRI",
    surname: "ÖZTÜRK",
};

/// The check digits of STANDARDS.md "T.C. Kimlik No", to prove the fixtures' numbers valid.
pub fn is_valid_tckn(s: &str) -> bool {
    let d: Vec<i64> = s.bytes().map(|b| i64::from(b) - i64::from(b'0')).collect();
    if d.len() != 11 || d.iter().any(|x| !(0..=9).contains(x)) || d[0] == 0 {
        return false;
    }
    let odd = d[0] + d[2] + d[4] + d[6] + d[8];
    let even = d[1] + d[3] + d[5] + d[7];
    d[9] == (7 * odd - even).rem_euclid(10) && d[10] == d[..10].iter().sum::<i64>().rem_euclid(10)
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// `YYYYMMDDHHMMSSZ`, the time format of `openssl ca -startdate/-enddate`.
fn openssl_time(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    // Civil date of a day count (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Standard base64, as the channel protocol carries bytes.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The bytes of a standard base64 string; panics with `what` when it is not one.
#[track_caller]
pub fn unb64(text: &str, what: &str) -> Vec<u8> {
    B64.decode(text)
        .unwrap_or_else(|e| panic!("{what} is not standard base64 ({e}): {text:?}"))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes a DER certificate as PEM to `path` and returns the path.
#[track_caller]
pub fn write_cert_pem(path: &Path, der: &[u8]) -> PathBuf {
    fs::write(path, pem_encode("CERTIFICATE", der))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path.to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// Certification authorities outside nesca (`openssl ca`)
// ---------------------------------------------------------------------------------------------

/// A self-signed test CA (P-256) that issues with `openssl ca` from its own directory.
pub struct TestCa {
    pub dir: PathBuf,
    /// The CA certificate, PEM.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Extensions of a person's ID-card authentication certificate.
pub const AUTH_EXT: &str = "basicConstraints = critical,CA:FALSE\n\
     keyUsage = critical,digitalSignature\n\
     extendedKeyUsage = clientAuth\n\
     subjectKeyIdentifier = hash\n\
     authorityKeyIdentifier = keyid\n";

/// Extensions of a KDHS's KDBO signing certificate (no extendedKeyUsage: any purpose).
pub const SIGNER_EXT: &str = "basicConstraints = critical,CA:FALSE\n\
     keyUsage = critical,digitalSignature,nonRepudiation\n\
     subjectKeyIdentifier = hash\n\
     authorityKeyIdentifier = keyid\n";

impl TestCa {
    /// A new CA in `parent/name`, subject `subject` (`/C=TR/O=…/CN=…`, UTF-8).
    #[track_caller]
    pub fn new(parent: &Path, name: &str, subject: &str) -> TestCa {
        let dir = parent.join(name);
        fs::create_dir_all(dir.join("newcerts")).expect("CA directory");
        fs::write(dir.join("index.txt"), "").expect("index.txt");
        // -rand_serial picks the serials; openssl ca wants the file named all the same.
        fs::write(dir.join("serial"), "01\n").expect("serial");
        let ca = TestCa {
            cert: dir.join("ca.pem"),
            key: dir.join("ca.key"),
            dir,
        };
        fs::write(ca.config(), ca_config(&ca.dir)).expect("openssl.cnf");
        self_signed_p256(
            &ca.key,
            &ca.cert,
            subject,
            3650,
            &["-config", s(&ca.config()), "-extensions", "v3_ca", "-utf8"],
        );
        ca
    }

    fn config(&self) -> PathBuf {
        self.dir.join("openssl.cnf")
    }

    /// Issues a certificate for a new P-256 key (in `CADIR/NAME.key`) with `subject` and the
    /// extensions `ext` (lines of an OpenSSL extension section), valid from `not_before` to
    /// `not_after` (Unix seconds). Returns the certificate (PEM path) and the key.
    #[track_caller]
    pub fn issue(
        &self,
        name: &str,
        subject: &str,
        ext: &str,
        not_before: i64,
        not_after: i64,
    ) -> Signer {
        let csr = make_csr(&self.dir, name, Key::P256, false);
        let ext_file = self.dir.join(format!("{name}.ext"));
        fs::write(&ext_file, format!("[ext]\n{ext}")).expect("extension file");
        let cert = self.dir.join(format!("{name}.pem"));
        openssl(&[
            "ca",
            "-batch",
            "-config",
            s(&self.config()),
            "-rand_serial",
            "-notext",
            "-utf8",
            "-preserveDN",
            "-in",
            s(&csr),
            "-out",
            s(&cert),
            "-subj",
            subject,
            "-startdate",
            &openssl_time(not_before),
            "-enddate",
            &openssl_time(not_after),
            "-extfile",
            s(&ext_file),
            "-extensions",
            "ext",
        ]);
        Signer {
            cert,
            key: self.dir.join(format!("{name}.key")),
        }
    }

    /// An ID-card authentication certificate for `who` (DER), valid `not_before..not_after`.
    #[track_caller]
    pub fn auth_cert(&self, name: &str, who: Person, not_before: i64, not_after: i64) -> Vec<u8> {
        let subject = format!(
            "/C=TR/serialNumber={}/GN={}/SN={}/CN={} {}",
            who.tckn, who.given, who.surname, who.given, who.surname
        );
        let issued = self.issue(name, &subject, AUTH_EXT, not_before, not_after);
        cert_der(&issued.cert)
    }
}

/// An `openssl ca` / `openssl req` configuration for a test CA in `dir`: names in UTF8String,
/// every subject attribute the fixtures use kept in the order given.
fn ca_config(dir: &Path) -> String {
    format!(
        "[ca]\n\
         default_ca = test_ca\n\
         [test_ca]\n\
         dir = {dir}\n\
         database = $dir/index.txt\n\
         new_certs_dir = $dir/newcerts\n\
         certificate = $dir/ca.pem\n\
         private_key = $dir/ca.key\n\
         serial = $dir/serial\n\
         default_md = sha256\n\
         policy = policy_any\n\
         unique_subject = no\n\
         copy_extensions = none\n\
         email_in_dn = no\n\
         [policy_any]\n\
         countryName = optional\n\
         organizationName = optional\n\
         serialNumber = optional\n\
         givenName = optional\n\
         surname = optional\n\
         commonName = supplied\n\
         [req]\n\
         distinguished_name = req_dn\n\
         string_mask = utf8only\n\
         utf8 = yes\n\
         [req_dn]\n\
         [v3_ca]\n\
         basicConstraints = critical,CA:TRUE\n\
         keyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\n",
        dir = dir.display()
    )
}

// ---------------------------------------------------------------------------------------------
// KDB and KDBO
// ---------------------------------------------------------------------------------------------

/// A certificate with its private key, PEM files: a KDBO signer or a TLS client.
#[derive(Clone, Debug)]
pub struct Signer {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CSR of the applicant's key: DER file, its bytes, and the private key (PEM).
pub struct CardCsr {
    pub path: PathBuf,
    pub der: Vec<u8>,
    pub key: PathBuf,
}

/// A KDB (identity verification notice), v1.
#[derive(Clone, Debug)]
pub struct Kdb {
    pub kdb_id: String,
    /// application, revoke, suspend or unsuspend.
    pub purpose: &'static str,
    pub tckn: String,
    pub verified_at: i64,
    /// The certificate concerned (revoke, suspend, unsuspend).
    pub serial: Option<String>,
}

impl Kdb {
    /// The KDB's JSON, the content of a KDBO.
    pub fn json(&self) -> String {
        let mut v = json!({
            "v": 1,
            "kdb_id": self.kdb_id,
            "purpose": self.purpose,
            "tckn": self.tckn,
            "verified_at": self.verified_at,
            "method": "id-card-pin",
        });
        if let Some(serial) = &self.serial {
            v["serial"] = json!(serial);
        }
        v.to_string()
    }
}

/// Where a CMS SignedData keeps the content it signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Inside (`-nodetach`): a KDBO carries its KDB.
    Attached,
    /// Outside: a signed commitment, whose text the CA has already.
    Detached,
}

/// `openssl cms -sign -binary -md sha256` of `content` by `cert` (PEM) and its `key`: the DER
/// of a CMS SignedData, with the content inside or not as `encap` says. A KDBO, or the signed
/// commitment for a software key (the card-CSR case). Files go to `dir/NAME.*`.
#[track_caller]
pub fn cms_sign(
    dir: &Path,
    name: &str,
    cert: &Path,
    key: &Path,
    content: &[u8],
    encap: Content,
) -> Vec<u8> {
    let input = dir.join(format!("{name}.content"));
    let out = dir.join(format!("{name}.p7s"));
    fs::write(&input, content).expect("CMS content");
    let mut args = vec!["cms", "-sign", "-binary"];
    if encap == Content::Attached {
        args.push("-nodetach");
    }
    args.extend([
        "-md",
        "sha256",
        "-signer",
        s(cert),
        "-inkey",
        s(key),
        "-in",
        s(&input),
        "-outform",
        "DER",
        "-out",
        s(&out),
    ]);
    openssl(&args);
    fs::read(&out).expect("CMS output")
}

/// `openssl cms -verify` of a DER SignedData (`detached`: the content when it is not inside)
/// under the trust anchors in `ca_file`, whatever the outcome.
#[track_caller]
pub fn cms_verify(
    dir: &Path,
    name: &str,
    cms: &[u8],
    detached: Option<&[u8]>,
    ca_file: &Path,
) -> Output {
    let input = dir.join(format!("{name}.verify.der"));
    let out = dir.join(format!("{name}.verified"));
    fs::write(&input, cms).expect("CMS to verify");
    let content = dir.join(format!("{name}.verify.content"));
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        s(&input),
        "-CAfile",
        s(ca_file),
        "-purpose",
        "any",
        "-out",
        s(&out),
    ];
    if let Some(d) = detached {
        fs::write(&content, d).expect("detached content");
        args.extend_from_slice(&["-content", s(&content)]);
    }
    openssl_may_fail(&args)
}

// ---------------------------------------------------------------------------------------------
// The world: outside CAs, the KDHS, partners registered with nesca, the channel configuration
// ---------------------------------------------------------------------------------------------

/// The licensed KDHS: the only licence in the kdhs plugin's `kdhs_licences`.
pub const KDHS_LICENCE: &str = "KDHS-2024-01";
/// A registered partner that is not a licensed KDHS.
pub const UNLICENSED_LICENCE: &str = "KDHS-2024-99";
/// The KEC operator whose devices apply directly.
pub const KEC_LICENCE: &str = "BTK-KEC-07";
/// Another KEC operator.
pub const OTHER_KEC_LICENCE: &str = "BTK-KEC-08";

/// What the world's server configuration may change.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `[channels] commitment_deadline_seconds` (nesca's default when `None`).
    pub commitment_deadline_seconds: Option<u64>,
    /// `[channels] commitment_sweep_seconds`.
    pub commitment_sweep_seconds: Option<u64>,
}

/// Everything around one demo CA that the channel tests use; [`World::new`] also writes the
/// demo's `[channels]` and `[[plugins]]` configuration.
pub struct World {
    /// `DEMO/work/world`: the outside parties' files.
    pub dir: PathBuf,
    /// nesca's `ca-chain.pem` (issuing CA and root).
    pub ca_chain: PathBuf,
    /// "T.C. Kimlik Kartı Test SM": issues the ID cards' authentication certificates.
    pub idcard_ca: TestCa,
    /// A CA nobody configured.
    pub foreign_ca: TestCa,
    /// The KDHS's trust anchor (`kdhs_trust_anchors`).
    pub kdhs_ca: TestCa,
    /// The KDHS's KDBO signing certificate and key.
    pub kdhs: Signer,
    /// A look-alike KDHS signer issued by the foreign CA.
    pub rogue_kdhs: Signer,
    /// The approved KEC firmware digest (`firmware_sha256`).
    pub firmware: String,
    /// The channels' mTLS port on 127.0.0.1.
    pub port: u16,
    /// The licensed KDHS's secure-communication certificate (mTLS client).
    pub kdhs_client: Signer,
    /// A registered partner's secure-communication certificate, licence not in kdhs_licences.
    pub unlicensed_client: Signer,
    /// The KEC operator's secure-communication certificate (mTLS client).
    pub kec_client: Signer,
    /// A KEC device's role certificate (KDBO signer) of that operator.
    pub kec_device: Signer,
    /// A second device of that operator, and its serial (for revocation tests).
    pub kec_device_2: Signer,
    pub kec_device_2_serial: String,
    /// A device of another operator.
    pub other_device: Signer,
    next: AtomicU32,
}

/// `nesca partner issue-cert` (partner::issue_cert): the certificate, its key, its serial.
#[track_caller]
pub fn partner_cert(demo: &Demo, partner: &str, kind: &str, cn: &str) -> (Signer, String) {
    let (out, cert) = issue_cert(demo, partner, kind, cn, &format!("{kind}-{cn}.pem"));
    let serial = single_serial_line(&out.ok());
    let key = demo.work.join(format!("{kind}-{cn}.key"));
    (Signer { cert, key }, serial)
}

impl World {
    /// Makes the outside parties, registers the partners with the demo CA, issues their
    /// certificates, and configures `[channels]` (mTLS on a free port) and both plugins.
    #[track_caller]
    pub fn new(demo: &Demo, options: Options) -> World {
        let dir = demo.work.join("world");
        fs::create_dir_all(&dir).expect("world directory");
        let t = now();
        let idcard_ca = TestCa::new(
            &dir,
            "idcard-ca",
            "/C=TR/O=T.C. İçişleri Bakanlığı/CN=T.C. Kimlik Kartı Test SM",
        );
        let foreign_ca = TestCa::new(
            &dir,
            "foreign-ca",
            "/C=TR/O=Yabancı Kuruluş/CN=Yabancı Test SM",
        );
        let kdhs_ca = TestCa::new(
            &dir,
            "kdhs-ca",
            "/C=TR/O=Test KDHS A.Ş./CN=Test KDHS Kök SM",
        );
        let kdhs_subject = "/C=TR/O=Test KDHS A.Ş./CN=Test KDHS KDBO İmza";
        let kdhs = kdhs_ca.issue(
            "kdhs-signer",
            kdhs_subject,
            SIGNER_EXT,
            t - 300,
            t + 365 * 86400,
        );
        let rogue_kdhs = foreign_ca.issue(
            "rogue-signer",
            kdhs_subject,
            SIGNER_EXT,
            t - 300,
            t + 365 * 86400,
        );

        for (id, name, licence) in [
            ("eshs-gw", "nesca Demo ESHS Ağ Geçidi", "ESHS-GW-01"),
            ("kdhs-a", "Test KDHS A.Ş.", KDHS_LICENCE),
            ("kdhs-x", "Lisanssız KDHS Ltd.", UNLICENSED_LICENCE),
            ("kec-op", "Örnek KEC Operatörü A.Ş.", KEC_LICENCE),
            ("kec-other", "Başka KEC Operatörü A.Ş.", OTHER_KEC_LICENCE),
        ] {
            add_partner_with(demo, id, name, licence).ok();
        }
        let (gateway, _) = partner_cert(demo, "eshs-gw", "secure-comm", "127.0.0.1");
        let (kdhs_client, _) = partner_cert(demo, "kdhs-a", "secure-comm", "kdhs-gw");
        let (unlicensed_client, _) = partner_cert(demo, "kdhs-x", "secure-comm", "kdhs-x-gw");
        let (kec_client, _) = partner_cert(demo, "kec-op", "secure-comm", "kec-gw");
        let (kec_device, _) = partner_cert(demo, "kec-op", "role", "KEC-0001");
        let (kec_device_2, kec_device_2_serial) = partner_cert(demo, "kec-op", "role", "KEC-0002");
        let (other_device, _) = partner_cert(demo, "kec-other", "role", "KEC-9001");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&gateway.key, fs::Permissions::from_mode(0o600))
                .expect("chmod the TLS key");
        }
        let server_chain = dir.join("gateway-chain.pem");
        let chain = format!(
            "{}{}",
            fs::read_to_string(&gateway.cert).expect("gateway certificate"),
            fs::read_to_string(demo.path("issuing-ca.pem")).expect("issuing CA")
        );
        fs::write(&server_chain, chain).expect("gateway chain");

        let firmware = sha256_hex(b"nesca test KEC firmware 1.0.0");
        let port = free_port();
        let mut channels = format!(
            "\n[channels]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            s(&server_chain),
            s(&gateway.key)
        );
        if let Some(v) = options.commitment_deadline_seconds {
            channels.push_str(&format!("commitment_deadline_seconds = {v}\n"));
        }
        if let Some(v) = options.commitment_sweep_seconds {
            channels.push_str(&format!("commitment_sweep_seconds = {v}\n"));
        }
        let plugins = format!(
            "\n[[plugins]]\npath = \"{kdhs_so}\"\n[plugins.config]\n\
             kdhs_licences = [\"{KDHS_LICENCE}\"]\n\
             kdhs_trust_anchors = \"{anchors}\"\n\
             idcard_ca = \"{idcard}\"\n\
             firmware_sha256 = [\"{firmware}\"]\n\
             kdb_max_age_minutes = 15\n\
             \n[[plugins]]\npath = \"{kec_so}\"\n[plugins.config]\n\
             device_ca = \"{device_ca}\"\n\
             idcard_ca = \"{idcard}\"\n\
             firmware_sha256 = [\"{firmware}\"]\n\
             kdb_max_age_minutes = 15\n\
             \n[[plugins]]\npath = \"{batch_so}\"\n",
            kdhs_so = s(&built_plugin("nesca_plugin_kdhs")),
            batch_so = s(&built_plugin("nesca_plugin_batch_import")),
            anchors = s(&kdhs_ca.cert),
            idcard = s(&idcard_ca.cert),
            kec_so = s(&built_plugin("nesca_plugin_kec")),
            device_ca = s(&demo.path("issuing-ca.pem")),
        );
        let path = demo.config();
        let mut text = fs::read_to_string(&path).expect("nesca.toml");
        assert!(
            !text.contains("\n[channels]"),
            "the demo configuration has a [channels] section already:\n{text}"
        );
        text.push_str(&channels);
        text.push_str(&plugins);
        fs::write(&path, text).expect("write nesca.toml");

        World {
            dir,
            ca_chain: demo.path("ca-chain.pem"),
            idcard_ca,
            foreign_ca,
            kdhs_ca,
            kdhs,
            rogue_kdhs,
            firmware,
            port,
            kdhs_client,
            unlicensed_client,
            kec_client,
            kec_device,
            kec_device_2,
            kec_device_2_serial,
            other_device,
            next: AtomicU32::new(1),
        }
    }

    /// A fresh name for the world's files and KDB ids.
    pub fn fresh(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// `who`'s authentication certificate from the ID-card CA, valid from 5 minutes ago for a
    /// year (DER).
    #[track_caller]
    pub fn auth_cert(&self, who: Person) -> Vec<u8> {
        let t = now();
        let name = self.fresh("auth");
        self.idcard_ca
            .auth_cert(&name, who, t - 300, t + 365 * 86400)
    }

    /// A KDB of `purpose` for `who`, verified now, with a fresh kdb_id.
    pub fn kdb(&self, purpose: &'static str, who: Person, serial: Option<&str>) -> Kdb {
        Kdb {
            kdb_id: format!("kdb:{}", self.fresh("id")),
            purpose,
            tckn: who.tckn.to_string(),
            verified_at: now(),
            serial: serial.map(str::to_string),
        }
    }

    /// The KDBO of `kdb`, signed by `signer` with `openssl cms`.
    #[track_caller]
    pub fn kdbo(&self, signer: &Signer, kdb: &Kdb) -> Vec<u8> {
        let name = self.fresh("kdbo");
        cms_sign(
            &self.dir,
            &name,
            &signer.cert,
            &signer.key,
            kdb.json().as_bytes(),
            Content::Attached,
        )
    }

    /// A CSR for a new P-256 key made in software (the card-CSR case).
    #[track_caller]
    pub fn card_csr(&self) -> CardCsr {
        let name = self.fresh("card");
        let path = make_csr(&self.dir, &name, Key::P256, true);
        CardCsr {
            der: fs::read(&path).expect("CSR"),
            path,
            key: self.dir.join(format!("{name}.key")),
        }
    }

    /// An mTLS client of the channel listener presenting `client` (none when `None`).
    pub fn client(&self, client: Option<&Signer>) -> ChannelClient {
        ChannelClient::new(self.port, &self.ca_chain, client)
    }
}

// ---------------------------------------------------------------------------------------------
// An mTLS client (rustls) for the channel listener
// ---------------------------------------------------------------------------------------------

/// Verifies the listener's chain under nesca's CA certificates. nesca's secure-communication
/// certificates carry no subjectAltName, so the name check alone is waived: what the tests
/// check is the client side of the handshake.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// HTTP/1.1 over mTLS to the channel listener, one connection per request.
pub struct ChannelClient {
    addr: SocketAddr,
    config: Arc<ClientConfig>,
}

impl ChannelClient {
    #[track_caller]
    fn new(port: u16, ca_chain: &Path, client: Option<&Signer>) -> ChannelClient {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_chain).expect("ca-chain.pem") {
            roots
                .add(cert.expect("a PEM certificate"))
                .expect("a CA certificate");
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .expect("server verifier");
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)));
        let config = match client {
            Some(c) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&c.cert)
                    .expect("client certificate")
                    .map(|c| c.expect("a PEM certificate"))
                    .collect();
                let key = PrivateKeyDer::from_pem_file(&c.key).expect("client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client certificate and key")
            }
            None => builder.with_no_client_auth(),
        };
        ChannelClient {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            config: Arc::new(config),
        }
    }

    /// `POST PATH` with a JSON body. `Err` when no HTTP response came back (the handshake or
    /// the connection was refused), with what happened.
    pub fn post(&self, path: &str, body: &Value) -> Result<HttpResponse, String> {
        self.request("POST", path, Some(body.to_string().as_bytes()))
    }

    /// `POST PATH`; panics (with what happened) when no HTTP response came back.
    #[track_caller]
    pub fn post_ok(&self, path: &str, body: &Value) -> HttpResponse {
        self.post(path, body)
            .unwrap_or_else(|e| panic!("POST {path}: no HTTP response: {e}"))
    }

    /// `METHOD PATH` with `Authorization: Bearer TOKEN` when given, and a JSON body when
    /// given; panics (with what happened) when no HTTP response came back.
    #[track_caller]
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> HttpResponse {
        let auth = token.map(|t| format!("Bearer {t}"));
        let body = body.map(|b| b.to_string().into_bytes());
        self.request_with(method, path, body.as_deref(), auth.as_deref())
            .unwrap_or_else(|e| panic!("{method} {path}: no HTTP response: {e}"))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, String> {
        self.request_with(method, path, body, None)
    }

    fn request_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        authorization: Option<&str>,
    ) -> Result<HttpResponse, String> {
        let request = format!("{method} {path}");
        let sock = TcpStream::connect_timeout(&self.addr, HTTP_LIMIT)
            .map_err(|e| format!("{request}: cannot connect to {}: {e}", self.addr))?;
        sock.set_read_timeout(Some(HTTP_LIMIT)).expect("timeout");
        sock.set_write_timeout(Some(HTTP_LIMIT)).expect("timeout");
        let name = ServerName::IpAddress(self.addr.ip().into());
        let conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| format!("{request}: TLS client: {e}"))?;
        let mut tls = StreamOwned::new(conn, sock);
        let mut headers = vec![("Accept", "application/json")];
        if let Some(a) = authorization {
            headers.push(("Authorization", a));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let head = request_head(method, path, "127.0.0.1", &headers, body.map(<[u8]>::len));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        tls.write_all(&bytes)
            .and_then(|_| tls.flush())
            .map_err(|e| format!("{request}: sending: {e}"))?;
        let response = read_response(&mut tls, &request);
        let _ = tls.sock.shutdown(std::net::Shutdown::Both);
        response
    }
}

// ---------------------------------------------------------------------------------------------
// The applicant's ID card: a SoftHSM token of the test process
// ---------------------------------------------------------------------------------------------

const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The card's PINs: test values of a throwaway token, never printed all the same.
const CARD_SO_PIN: &str = "card-so-pin-8642";
const CARD_PIN: &str = "card-user-pin-9753";

/// The SoftHSM module as this test process uses it, for the cards.
struct CardModule {
    ctx: Pkcs11,
    /// Held for the life of the process (a static is never dropped: the directory, a few
    /// kilobytes, stays behind in target/tmp).
    _dir: tempfile::TempDir,
}

/// Initialises SoftHSM once for the test process with a configuration of its own.
///
/// SoftHSM reads `SOFTHSM2_CONF` once, at `C_Initialize`, so the variable is set here, once,
/// before the first `C_Initialize` of this process. It cannot leak into the CA's runs:
/// `nesca_command()` removes `SOFTHSM2_CONF` from every `nesca` child, and the demo
/// configuration names the CA's own softhsm2.conf.
fn card_module() -> &'static CardModule {
    static MODULE: OnceLock<CardModule> = OnceLock::new();
    MODULE.get_or_init(|| {
        assert!(
            Path::new(SOFTHSM_MODULE).is_file(),
            "SoftHSM is not installed ({SOFTHSM_MODULE}): run scripts/test.sh"
        );
        // In Cargo's scratch directory for integration tests (target/tmp): the directory
        // outlives the process (see `_dir`), and `cargo clean` removes it.
        let dir = tempfile::Builder::new()
            .prefix("nesca-e2e-cards-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("card token directory");
        let tokens = dir.path().join("tokens");
        fs::create_dir(&tokens).expect("tokens directory");
        let conf = dir.path().join("softhsm2.conf");
        fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("softhsm2.conf");
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let ctx = Pkcs11::new(SOFTHSM_MODULE).expect("load SoftHSM");
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("C_Initialize");
        CardModule { ctx, _dir: dir }
    })
}

/// An ID card: a token of its own on the test process's SoftHSM, logged in as the user.
pub struct Card {
    session: Session,
}

impl Card {
    /// A new token labelled `label`. It is initialised through PKCS#11 in this process
    /// (`C_InitToken` on the free slot, then `C_InitPIN`) rather than with `softhsm2-util`:
    /// SoftHSM lists only the tokens it found at `C_Initialize` and those it initialised
    /// itself, so a token another process made after that stays invisible to this one.
    #[track_caller]
    pub fn new(label: &str) -> Card {
        // Two tests must not both take the one free slot.
        static MAKING: Mutex<()> = Mutex::new(());
        let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        let ctx = &card_module().ctx;
        let so_pin = AuthPin::from(CARD_SO_PIN.to_string());
        let pin = AuthPin::from(CARD_PIN.to_string());
        let free = ctx
            .get_slots_with_token()
            .expect("C_GetSlotList")
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .map(|i| !i.token_initialized())
                    .unwrap_or(false)
            })
            .expect("SoftHSM always offers a slot with an uninitialised token");
        ctx.init_token(free, &so_pin, label).expect("C_InitToken");
        let session = ctx.open_rw_session(free).expect("C_OpenSession");
        session
            .login(UserType::So, Some(&so_pin))
            .expect("C_Login SO");
        session.init_pin(&pin).expect("C_InitPIN");
        session.logout().expect("C_Logout");
        session
            .login(UserType::User, Some(&pin))
            .expect("C_Login user");
        let info = ctx.get_token_info(free).expect("token info");
        assert_eq!(info.label().trim_end(), label, "the card token's label");
        Card { session }
    }

    /// An RSA-2048 transport key pair (session objects): the private key may only unwrap.
    /// Returns the private key and the public key's SubjectPublicKeyInfo (DER).
    #[track_caller]
    pub fn transport_key(&self) -> (ObjectHandle, Vec<u8>) {
        let (public, private) = self
            .session
            .generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[
                    Attribute::Token(false),
                    Attribute::Wrap(true),
                    Attribute::Encrypt(true),
                    Attribute::ModulusBits(2048u64.into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ],
                &[
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Unwrap(true),
                ],
            )
            .expect("RSA transport key pair on the card");
        let attrs = self
            .session
            .get_attributes(
                public,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .expect("the transport key's modulus and exponent");
        let (mut n, mut e) = (Vec::new(), Vec::new());
        for a in attrs {
            match a {
                Attribute::Modulus(v) => n = v,
                Attribute::PublicExponent(v) => e = v,
                _ => {}
            }
        }
        assert!(
            n.len() >= 256 && !e.is_empty(),
            "the card's transport public key is incomplete"
        );
        // SubjectPublicKeyInfo { rsaEncryption NULL, BIT STRING { RSAPublicKey { n, e } } }.
        let rsa_public = tlv(0x30, &[der_uint(&n), der_uint(&e)].concat());
        let algorithm = tlv(
            0x30,
            &[oid_der("1.2.840.113549.1.1.1"), vec![0x05, 0x00]].concat(),
        );
        let bits = tlv(0x03, &[&[0u8][..], &rsa_public].concat());
        (private, tlv(0x30, &[algorithm, bits].concat()))
    }

    /// Unwraps a card key the CA's HSM wrapped for the transport key: the AES key with
    /// RSA-OAEP (SHA-1 or SHA-256 by `scheme`), then the EC private key with
    /// CKM_AES_KEY_WRAP_PAD, into a sensitive signing key on the card.
    #[track_caller]
    pub fn unwrap_ec_key(
        &self,
        transport: ObjectHandle,
        scheme: &str,
        wrapped_key: &[u8],
        wrapped_private_key: &[u8],
    ) -> ObjectHandle {
        let (hash, mgf) = match scheme {
            "rsa-oaep-sha1+aes-kwp" => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
            "rsa-oaep-sha256+aes-kwp" => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            other => panic!("unknown wrapping scheme {other:?}"),
        };
        let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()));
        let aes = self
            .session
            .unwrap_key(
                &oaep,
                transport,
                wrapped_key,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Token(false),
                    Attribute::Sensitive(true),
                    Attribute::Unwrap(true),
                ],
            )
            .unwrap_or_else(|e| panic!("unwrapping the AES key with RSA-OAEP ({scheme}): {e}"));
        self.session
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                aes,
                wrapped_private_key,
                &[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Sign(true),
                ],
            )
            .unwrap_or_else(|e| panic!("unwrapping the private key with AES-KWP: {e}"))
    }

    /// A P-256 key pair made on the card (for the fixtures' own check): the private key and
    /// the public key's SubjectPublicKeyInfo as PEM.
    #[track_caller]
    pub fn generate_p256(&self) -> (ObjectHandle, String) {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        let (public, private) = self
            .session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(false),
                    Attribute::Verify(true),
                    Attribute::EcParams(oid_der("1.2.840.10045.3.1.7")),
                ],
                &[
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Sign(true),
                ],
            )
            .expect("P-256 key pair on the card");
        let point = match self
            .session
            .get_attributes(public, &[AttributeType::EcPoint])
            .expect("CKA_EC_POINT")
            .pop()
        {
            Some(Attribute::EcPoint(p)) => p,
            other => panic!("no CKA_EC_POINT: {other:?}"),
        };
        // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point.
        let raw = der_content(&point);
        let key = p256::PublicKey::from_sec1_bytes(raw).expect("a P-256 point");
        (
            private,
            key.to_public_key_pem(LineEnding::LF).expect("SPKI PEM"),
        )
    }

    /// CKM_ECDSA over a SHA-256 digest on the card, as DER ECDSA-Sig-Value.
    #[track_caller]
    pub fn sign_digest(&self, key: ObjectHandle, digest: &[u8]) -> Vec<u8> {
        let raw = self
            .session
            .sign(&Mechanism::Ecdsa, key, digest)
            .expect("CKM_ECDSA on the card");
        // CKM_ECDSA returns r‖s: X.509 and CMS want SEQUENCE { INTEGER r, INTEGER s }.
        let sig = p256::ecdsa::Signature::from_slice(&raw).expect("a P-256 r‖s");
        sig.to_der().as_bytes().to_vec()
    }

    /// The signed commitment made on the card: a CMS SignedData (RFC 5652) over `content`,
    /// detached, by `cert_der` (the new certificate, whose key is `key` on the card):
    /// SignedData v1, digestAlgorithms {sha256}, encapContentInfo id-data without eContent,
    /// certificates {cert}, one SignerInfo (issuerAndSerialNumber, signedAttrs contentType and
    /// messageDigest, ecdsa-with-SHA256 over the DER of signedAttrs as a SET OF).
    #[track_caller]
    pub fn sign_detached_cms(&self, key: ObjectHandle, cert_der: &[u8], content: &[u8]) -> Vec<u8> {
        use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
        use cms::content_info::{CmsVersion, ContentInfo};
        use cms::signed_data::{
            CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo,
            SignerInfos,
        };
        use const_oid::db::rfc5911::{ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA};
        use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_SHA_256};
        use der::asn1::{OctetString, SetOfVec};
        use der::{Any, Decode, Encode};
        use x509_cert::attr::Attribute as X509Attribute;
        use x509_cert::spki::AlgorithmIdentifierOwned;
        use x509_cert::Certificate;

        let build = || -> der::Result<Vec<u8>> {
            let cert = Certificate::from_der(cert_der)?;
            let sha256 = AlgorithmIdentifierOwned {
                oid: ID_SHA_256,
                parameters: None,
            };
            let digest = Sha256::digest(content);
            let signed_attrs = SetOfVec::try_from(vec![
                X509Attribute {
                    oid: ID_CONTENT_TYPE,
                    values: SetOfVec::try_from(vec![Any::encode_from(&ID_DATA)?])?,
                },
                X509Attribute {
                    oid: ID_MESSAGE_DIGEST,
                    values: SetOfVec::try_from(vec![Any::encode_from(&OctetString::new(
                        digest.to_vec(),
                    )?)?])?,
                },
            ])?;
            // The signature covers the DER of the attributes with the SET OF tag (RFC 5652
            // §5.4), not the [0] IMPLICIT tag they carry inside SignerInfo.
            let to_sign = signed_attrs.to_der()?;
            let signature = self.sign_digest(key, &Sha256::digest(&to_sign));
            let signer = SignerInfo {
                version: CmsVersion::V1,
                sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                    issuer: cert.tbs_certificate.issuer.clone(),
                    serial_number: cert.tbs_certificate.serial_number.clone(),
                }),
                digest_alg: sha256.clone(),
                signed_attrs: Some(signed_attrs),
                signature_algorithm: AlgorithmIdentifierOwned {
                    oid: ECDSA_WITH_SHA_256,
                    parameters: None,
                },
                signature: OctetString::new(signature)?,
                unsigned_attrs: None,
            };
            let signed_data = SignedData {
                version: CmsVersion::V1,
                digest_algorithms: SetOfVec::try_from(vec![sha256])?,
                encap_content_info: EncapsulatedContentInfo {
                    econtent_type: ID_DATA,
                    econtent: None,
                },
                certificates: Some(CertificateSet::try_from(vec![
                    CertificateChoices::Certificate(cert),
                ])?),
                crls: None,
                signer_infos: SignerInfos::try_from(vec![signer])?,
            };
            ContentInfo {
                content_type: ID_SIGNED_DATA,
                content: Any::encode_from(&signed_data)?,
            }
            .to_der()
        };
        build().unwrap_or_else(|e| panic!("encoding the commitment's SignedData: {e}"))
    }
}

/// Whether the P-256 public key in `cert_der`'s SubjectPublicKeyInfo verifies `signature_der`
/// (ECDSA over `digest`).
pub fn cert_key_verifies(
    cert_der: &[u8],
    digest: &[u8],
    signature_der: &[u8],
) -> Result<(), String> {
    use der::Decode;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let cert =
        x509_cert::Certificate::from_der(cert_der).map_err(|e| format!("certificate: {e}"))?;
    let point = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|e| format!("the certificate's key is not P-256: {e}"))?;
    let sig =
        p256::ecdsa::Signature::from_der(signature_der).map_err(|e| format!("signature: {e}"))?;
    key.verify_prehash(digest, &sig)
        .map_err(|e| format!("does not verify: {e}"))
}

/// A DER INTEGER of the unsigned big-endian `bytes`.
fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if v.is_empty() || v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}
