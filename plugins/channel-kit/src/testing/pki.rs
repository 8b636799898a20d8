//! A small PKI for tests, built in Rust (x509-cert's builder, P-256): the identity-card CA, a
//! KDHS's CA, nesca's own root and issuing CA, and the certificates the channels meet. Keys are
//! derived from the serial, so a run is reproducible without any file.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use der::asn1::{Any, GeneralizedTime, ObjectIdentifier, SetOfVec};
use der::{Encode as _, Tag};
use p256::ecdsa::{DerSignature, SigningKey};
use sha2::{Digest, Sha256};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder as _, CertificateBuilder, Profile};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::client::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH, OID_SERIAL_NUMBER};

/// The tests' "now": 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;
/// The applicant's T.C. Kimlik No.
pub const TCKN: &str = "10000000146";
/// Another person's T.C. Kimlik No.
pub const OTHER_TCKN: &str = "17291716060";
/// The licence number in the KDHS's secure-communication certificate.
pub const KDHS_LICENCE: &str = "KDHS-LIC-2025-001";
/// Another KDHS's licence number, under the same trust anchor.
pub const OTHER_KDHS_LICENCE: &str = "KDHS-LIC-2025-002";
/// The registration number of the licensed operator of the KEC device.
pub const KEC_OPERATOR: &str = "KEC-ESHS-0042";
/// Another operator's registration number.
pub const OTHER_KEC_OPERATOR: &str = "KEC-ESHS-0099";

const OID_COUNTRY: &str = "2.5.4.6";
const OID_COMMON_NAME: &str = "2.5.4.3";
const OID_GIVEN_NAME: &str = "2.5.4.42";
const OID_SURNAME: &str = "2.5.4.4";
const OID_ORGANIZATION: &str = "2.5.4.10";

const YEAR: i64 = 365 * 24 * 3600;

/// Serials handed out to certificates whose spec leaves it to us (0), unique in the process.
static NEXT_SERIAL: AtomicU32 = AtomicU32::new(0x2000);

/// A certificate and its key.
pub struct TestCert {
    /// DER.
    pub cert: Vec<u8>,
    pub key: SigningKey,
    /// The serial as nesca spells it (lower-case hex, no leading zero octet).
    pub serial_hex: String,
}

/// A CA: its certificate, key and name.
pub struct TestCa {
    pub name: Name,
    pub key: SigningKey,
    /// DER.
    pub cert: Vec<u8>,
}

/// What an end-entity certificate holds.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// 0: the next free serial.
    pub serial: u32,
    /// Subject attributes in order: (dotted OID, value).
    pub subject: Vec<(&'static str, String)>,
    /// extendedKeyUsage purposes (dotted); empty: no extension.
    pub ekus: Vec<&'static str>,
    pub not_before: i64,
    pub not_after: i64,
    /// `Some`: exactly this keyUsage (and no other extension but the EKUs); `None`: the
    /// usual leaf's (digitalSignature, nonRepudiation, with key identifiers).
    pub key_usage: Option<x509_cert::ext::pkix::KeyUsage>,
}

impl LeafSpec {
    fn base(subject: Vec<(&'static str, String)>, ekus: Vec<&'static str>) -> LeafSpec {
        LeafSpec {
            serial: 0,
            subject,
            ekus,
            not_before: NOW - YEAR,
            not_after: NOW + 2 * YEAR,
            key_usage: None,
        }
    }

    /// An ID-card authentication certificate: C=TR, serialNumber, givenName, surname, CN;
    /// clientAuth.
    pub fn person(serial_number: &str, given_name: &str, surname: &str) -> LeafSpec {
        LeafSpec::base(
            vec![
                (OID_COUNTRY, "TR".into()),
                (OID_SERIAL_NUMBER, serial_number.into()),
                (OID_GIVEN_NAME, given_name.into()),
                (OID_SURNAME, surname.into()),
                (OID_COMMON_NAME, format!("{given_name} {surname}")),
            ],
            vec![ID_KP_CLIENT_AUTH],
        )
    }

    /// A secure-communication certificate (serverAuth and clientAuth) for `serial_number`.
    pub fn secure_communication(serial_number: &str) -> LeafSpec {
        LeafSpec::base(
            vec![
                (OID_COUNTRY, "TR".into()),
                (OID_ORGANIZATION, "Test Partner A.Ş.".into()),
                (OID_SERIAL_NUMBER, serial_number.into()),
                (
                    OID_COMMON_NAME,
                    format!("{serial_number} secure communication"),
                ),
            ],
            vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH],
        )
    }

    /// A role certificate (clientAuth only) for `serial_number`.
    pub fn role(serial_number: &str) -> LeafSpec {
        LeafSpec {
            ekus: vec![ID_KP_CLIENT_AUTH],
            ..LeafSpec::secure_communication(serial_number)
        }
    }

    /// A signing certificate without extendedKeyUsage (a KDHS's KDBO signer) of the KDHS
    /// licensed as `licence` (subject serialNumber).
    pub fn signer(common_name: &str, licence: &str) -> LeafSpec {
        LeafSpec::base(
            vec![
                (OID_COUNTRY, "TR".into()),
                (OID_SERIAL_NUMBER, licence.into()),
                (OID_COMMON_NAME, common_name.into()),
            ],
            Vec::new(),
        )
    }
}

/// The key of the certificate with `serial`: a P-256 scalar derived from it.
fn key_for(serial: u32) -> SigningKey {
    let mut counter = 0u32;
    loop {
        let seed = Sha256::new()
            .chain_update(b"nesca channel-kit test key")
            .chain_update(serial.to_be_bytes())
            .chain_update(counter.to_be_bytes())
            .finalize();
        // A digest is a valid scalar except with negligible probability; try the next if not.
        if let Ok(key) = SigningKey::from_slice(&seed) {
            return key;
        }
        counter += 1;
    }
}

/// A Name from (OID, value) pairs, one attribute per RDN: PrintableString for country and
/// serialNumber, UTF8String for the rest (Turkish letters).
pub fn name(attributes: &[(&str, &str)]) -> Name {
    let rdns = attributes
        .iter()
        .map(|(oid, value)| {
            let oid = ObjectIdentifier::new_unwrap(oid);
            let printable = [OID_COUNTRY, OID_SERIAL_NUMBER].contains(&oid.to_string().as_str());
            let tag = if printable {
                Tag::PrintableString
            } else {
                Tag::Utf8String
            };
            let atv = AttributeTypeAndValue {
                oid,
                value: Any::new(tag, value.as_bytes()).expect("attribute value"),
            };
            RelativeDistinguishedName::from(SetOfVec::try_from(vec![atv]).expect("one attribute"))
        })
        .collect();
    RdnSequence(rdns)
}

fn time(unix: i64) -> Time {
    let secs = u64::try_from(unix).expect("a time after 1970");
    Time::GeneralTime(
        GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
            .expect("a representable time"),
    )
}

fn spki(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).expect("P-256 SPKI")
}

fn serial_hex(serial: u32) -> String {
    let bytes = serial.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(3);
    hex::encode(&bytes[first..])
}

impl TestCa {
    /// A self-signed root CA named `common_name`, valid ten years either side of [`NOW`].
    pub fn root(common_name: &str) -> TestCa {
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        let key = key_for(serial);
        let name = name(&[(OID_COUNTRY, "TR"), (OID_COMMON_NAME, common_name)]);
        let cert = build(
            Profile::Root,
            serial,
            NOW - 10 * YEAR,
            NOW + 10 * YEAR,
            name.clone(),
            (&key, &key),
            &[],
            None,
        );
        TestCa { name, key, cert }
    }

    /// An intermediate CA under this one.
    pub fn sub_ca(&self, common_name: &str) -> TestCa {
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
        let key = key_for(serial);
        let name = name(&[(OID_COUNTRY, "TR"), (OID_COMMON_NAME, common_name)]);
        let profile = Profile::SubCA {
            issuer: self.name.clone(),
            path_len_constraint: None,
        };
        let cert = build(
            profile,
            serial,
            NOW - 9 * YEAR,
            NOW + 9 * YEAR,
            name.clone(),
            (&key, &self.key),
            &[],
            None,
        );
        TestCa { name, key, cert }
    }

    /// An end-entity certificate as `spec` says.
    pub fn issue(&self, spec: &LeafSpec) -> TestCert {
        let serial = if spec.serial == 0 {
            NEXT_SERIAL.fetch_add(1, Ordering::Relaxed)
        } else {
            spec.serial
        };
        let key = key_for(serial);
        let attributes: Vec<(&str, &str)> =
            spec.subject.iter().map(|(o, v)| (*o, v.as_str())).collect();
        let profile = Profile::Leaf {
            issuer: self.name.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        };
        let cert = build(
            profile,
            serial,
            spec.not_before,
            spec.not_after,
            name(&attributes),
            (&key, &self.key),
            &spec.ekus,
            spec.key_usage,
        );
        TestCert {
            cert,
            key,
            serial_hex: serial_hex(serial),
        }
    }
}

#[allow(clippy::too_many_arguments)] // one private helper; a struct would only rename them
fn build(
    profile: Profile,
    serial: u32,
    not_before: i64,
    not_after: i64,
    subject: Name,
    (subject_key, issuer_key): (&SigningKey, &SigningKey),
    ekus: &[&str],
    key_usage: Option<x509_cert::ext::pkix::KeyUsage>,
) -> Vec<u8> {
    let validity = Validity {
        not_before: time(not_before),
        not_after: time(not_after),
    };
    let mut builder = CertificateBuilder::new(
        profile,
        SerialNumber::from(serial),
        validity,
        subject,
        spki(subject_key),
        issuer_key,
    )
    .expect("certificate builder");
    if !ekus.is_empty() {
        let purposes = ekus
            .iter()
            .map(|o| ObjectIdentifier::new_unwrap(o))
            .collect();
        builder
            .add_extension(&ExtendedKeyUsage(purposes))
            .expect("extendedKeyUsage");
    }
    let cert = builder.build::<DerSignature>().expect("signed certificate");
    match key_usage {
        None => cert.to_der().expect("certificate DER"),
        Some(usage) => with_key_usage(cert, usage, issuer_key),
    }
}

/// `cert` with its keyUsage extension's value replaced by `usage`, signed again by
/// `issuer_key`: the builder's leaf profile always asserts digitalSignature and nonRepudiation.
fn with_key_usage(
    mut cert: x509_cert::Certificate,
    usage: x509_cert::ext::pkix::KeyUsage,
    issuer_key: &SigningKey,
) -> Vec<u8> {
    use p256::ecdsa::signature::Signer as _;
    const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
    let extension = cert
        .tbs_certificate
        .extensions
        .iter_mut()
        .flatten()
        .find(|e| e.extn_id == KEY_USAGE)
        .expect("the leaf profile's keyUsage");
    extension.extn_value =
        der::asn1::OctetString::new(usage.to_der().expect("keyUsage DER")).expect("keyUsage");
    let tbs = cert.tbs_certificate.to_der().expect("TBS DER");
    let signature: DerSignature = issuer_key.sign(&tbs);
    cert.signature =
        der::asn1::BitString::from_bytes(signature.as_bytes()).expect("signature bits");
    cert.to_der().expect("certificate DER")
}

/// Every certificate the channel tests meet, built once per process.
pub struct Pki {
    /// The identity-card root CA (`idcard_ca`).
    pub idcard_root: TestCa,
    /// Its intermediate, which issues the authentication certificates (`auth_chain`).
    pub idcard_sub: TestCa,
    /// The applicant's authentication certificate: [`TCKN`], Ayşe Yılmaz.
    pub auth: TestCert,
    /// Another person's, with serialNumber `TCKN` + [`OTHER_TCKN`].
    pub other_auth: TestCert,
    /// A KDHS's root CA (`kdhs_trust_anchors`).
    pub kdhs_root: TestCa,
    /// Its intermediate.
    pub kdhs_sub: TestCa,
    /// The KDHS's KDBO signing certificate (no EKU), under `kdhs_sub`, serialNumber
    /// [`KDHS_LICENCE`].
    pub kdhs_signer: TestCert,
    /// Another KDHS's KDBO signing certificate under the same CA, serialNumber
    /// [`OTHER_KDHS_LICENCE`].
    pub other_kdhs_signer: TestCert,
    /// nesca's root CA.
    pub nesca_root: TestCa,
    /// nesca's issuing CA (`device_ca`), which issues secure-communication and role certificates.
    pub nesca_issuing: TestCa,
    /// The KDHS's secure-communication certificate, serialNumber [`KDHS_LICENCE`].
    pub kdhs_tls: TestCert,
    /// The KEC operator's secure-communication certificate, serialNumber [`KEC_OPERATOR`].
    pub kec_tls: TestCert,
    /// The KEC device's role certificate (clientAuth only), serialNumber [`KEC_OPERATOR`].
    pub kec_role: TestCert,
    /// Another operator's role certificate, serialNumber [`OTHER_KEC_OPERATOR`].
    pub other_kec_role: TestCert,
}

impl Pki {
    /// The PKI, built on first use.
    pub fn get() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(Pki::build)
    }

    fn build() -> Pki {
        let idcard_root = TestCa::root("Test Kimlik Kartı Kök SM");
        let idcard_sub = idcard_root.sub_ca("Test Kimlik Kartı Alt SM");
        let auth = idcard_sub.issue(&LeafSpec::person(TCKN, "Ayşe", "Yılmaz"));
        let other_auth = idcard_sub.issue(&LeafSpec::person(
            &format!("TCKN{OTHER_TCKN}"),
            "İsmail",
            "Çağlar",
        ));
        let kdhs_root = TestCa::root("Test KDHS Root");
        let kdhs_sub = kdhs_root.sub_ca("Test KDHS Signing CA");
        let kdhs_signer = kdhs_sub.issue(&LeafSpec::signer("Test KDHS KDBO signer", KDHS_LICENCE));
        let other_kdhs_signer = kdhs_sub.issue(&LeafSpec::signer(
            "Other KDHS KDBO signer",
            OTHER_KDHS_LICENCE,
        ));
        let nesca_root = TestCa::root("Test nesca Root");
        let nesca_issuing = nesca_root.sub_ca("Test nesca Issuing CA");
        let kdhs_tls = nesca_issuing.issue(&LeafSpec::secure_communication(KDHS_LICENCE));
        let kec_tls = nesca_issuing.issue(&LeafSpec::secure_communication(KEC_OPERATOR));
        let kec_role = nesca_issuing.issue(&LeafSpec::role(KEC_OPERATOR));
        let other_kec_role = nesca_issuing.issue(&LeafSpec::role(OTHER_KEC_OPERATOR));
        Pki {
            idcard_root,
            idcard_sub,
            auth,
            other_auth,
            kdhs_root,
            kdhs_sub,
            kdhs_signer,
            other_kdhs_signer,
            nesca_root,
            nesca_issuing,
            kdhs_tls,
            kec_tls,
            kec_role,
            other_kec_role,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_spelled_as_nesca_spells_them() {
        let pki = Pki::get();
        for cert in [&pki.auth, &pki.kec_role, &pki.kdhs_tls] {
            assert_eq!(
                nesca_pkix::subject::serial_hex(&cert.cert).unwrap(),
                cert.serial_hex
            );
        }
        assert_eq!(serial_hex(0x2a), "2a");
        assert_eq!(serial_hex(0x1_0203), "010203");
    }

    #[test]
    fn subjects_carry_the_identity() {
        let person = nesca_pkix::subject::person_identity(&Pki::get().auth.cert).unwrap();
        assert_eq!(
            (
                person.serial_number.as_str(),
                person.given_name.as_str(),
                person.surname.as_str()
            ),
            (TCKN, "Ayşe", "Yılmaz")
        );
        assert_eq!(
            nesca_pkix::subject::extended_key_usages(&Pki::get().kec_role.cert).unwrap(),
            vec![ID_KP_CLIENT_AUTH.to_string()]
        );
    }
}
