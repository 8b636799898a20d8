//! Certification authorities outside nesca: a self-signed P-256 CA that issues with
//! `openssl ca` (which can back-date a certificate to make it expired).

use std::fs;
use std::path::{Path, PathBuf};

use super::kdbo::Signer;
use super::person::Person;
use crate::support::openssl::{cert_der, make_csr, self_signed_p256, Key};
use crate::support::run::{openssl, s};
use crate::support::time::openssl_time;

/// A self-signed test CA (P-256) that issues with `openssl ca` from its own directory.
pub(crate) struct TestCa {
    pub dir: PathBuf,
    /// The CA certificate, PEM.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Extensions of a person's ID-card authentication certificate.
pub(crate) const AUTH_EXT: &str = "basicConstraints = critical,CA:FALSE\n\
     keyUsage = critical,digitalSignature\n\
     extendedKeyUsage = clientAuth\n\
     subjectKeyIdentifier = hash\n\
     authorityKeyIdentifier = keyid\n";

/// Extensions of a KDHS's KDBO signing certificate (no extendedKeyUsage: any purpose).
pub(crate) const SIGNER_EXT: &str = "basicConstraints = critical,CA:FALSE\n\
     keyUsage = critical,digitalSignature,nonRepudiation\n\
     subjectKeyIdentifier = hash\n\
     authorityKeyIdentifier = keyid\n";

impl TestCa {
    /// A new CA in `parent/name`, subject `subject` (`/C=TR/O=…/CN=…`, UTF-8).
    #[track_caller]
    pub(crate) fn new(parent: &Path, name: &str, subject: &str) -> TestCa {
        let dir = parent.join(name);
        fs::create_dir_all(dir.join("newcerts")).expect("CA directory");
        fs::write(dir.join("index.txt"), "").expect("index.txt");
        // -rand_serial picks the serials; openssl ca wants the file named all the same.
        fs::write(dir.join("serial"), "01\n").expect("serial");
        fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
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
    pub(crate) fn issue(
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

    /// Revokes `cert` (PEM) with `reason` (an RFC 5280 reason name, e.g. `keyCompromise`).
    #[track_caller]
    pub(crate) fn revoke(&self, cert: &Path, reason: &str) {
        openssl(&[
            "ca",
            "-batch",
            "-config",
            s(&self.config()),
            "-revoke",
            s(cert),
            "-crl_reason",
            reason,
        ]);
    }

    /// A CRL of this CA now (v2, with cRLNumber and authorityKeyIdentifier; nextUpdate a day
    /// ahead), DER.
    #[track_caller]
    pub(crate) fn crl_der(&self) -> Vec<u8> {
        self.crl_der_with(&[])
    }

    /// A CRL of this CA whose thisUpdate and nextUpdate are `this_update` and `next_update`
    /// (Unix seconds): one out of date already, say.
    #[track_caller]
    pub(crate) fn crl_der_between(&self, this_update: i64, next_update: i64) -> Vec<u8> {
        self.crl_der_with(&[
            "-crl_lastupdate",
            &openssl_time(this_update),
            "-crl_nextupdate",
            &openssl_time(next_update),
        ])
    }

    #[track_caller]
    fn crl_der_with(&self, extra: &[&str]) -> Vec<u8> {
        let pem = self.dir.join("crl.pem");
        let config = self.config();
        let mut args = vec![
            "ca",
            "-batch",
            "-config",
            s(&config),
            "-gencrl",
            "-out",
            s(&pem),
        ];
        args.extend_from_slice(extra);
        openssl(&args);
        openssl(&["crl", "-in", s(&pem), "-outform", "DER"]).stdout_bytes
    }

    /// An ID-card authentication certificate for `who` (DER), valid `not_before..not_after`.
    #[track_caller]
    pub(crate) fn auth_cert(
        &self,
        name: &str,
        who: Person,
        not_before: i64,
        not_after: i64,
    ) -> Vec<u8> {
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
         crlnumber = $dir/crlnumber\n\
         crl_extensions = crl_ext\n\
         default_crl_days = 1\n\
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
         [crl_ext]\n\
         authorityKeyIdentifier = keyid:always\n\
         [v3_ca]\n\
         basicConstraints = critical,CA:TRUE\n\
         keyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\n",
        dir = dir.display()
    )
}
