//! A small test PKI: deterministic software keys, certificates made with x509-cert's builder
//! and SignedData made with the cms builder. Test-only.

use std::str::FromStr;
use std::time::Duration;

use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::asn1::{Ia5StringRef, PrintableStringRef, SetOfVec, UtcTime, Utf8StringRef};
use der::{Any, Decode, Encode, Tag};
use sha2::Digest;
use signature::{Keypair, Signer};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};
use x509_cert::attr::{Attribute, AttributeTypeAndValue, AttributeValue};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use crate::oids;

pub(crate) use p256::ecdsa::{DerSignature as P256Signature, SigningKey as P256Key};

/// 2020-01-01T00:00:00Z.
pub(crate) const Y2020: i64 = 1_577_836_800;
/// 2021-01-01T00:00:00Z.
pub(crate) const Y2021: i64 = 1_609_459_200;
/// 2024-01-01T00:00:00Z.
pub(crate) const Y2024: i64 = 1_704_067_200;
/// 2025-06-01T00:00:00Z: "now" in the tests.
pub(crate) const NOW: i64 = 1_748_736_000;
/// 2034-01-01T00:00:00Z.
pub(crate) const Y2034: i64 = 2_019_686_400;
/// 2040-01-01T00:00:00Z.
pub(crate) const Y2040: i64 = 2_208_988_800;

pub(crate) const COMMITMENT: &[u8] =
    "Nitelikli elektronik sertifikamı kabul ettiğimi taahhüt ederim.".as_bytes();

/// A P-256 key from a fixed seed (any seed byte 1..=200 is a valid scalar).
pub(crate) fn p256_key(seed: u8) -> P256Key {
    P256Key::from_slice(&[seed; 32]).unwrap()
}

/// The RSA 2048 test key (generated once by tests/data/make-openssl-vectors.sh).
pub(crate) fn rsa_key() -> rsa::RsaPrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_der(include_bytes!("../tests/data/test-rsa2048-key.der"))
        .unwrap()
}

/// How a subject attribute value is encoded.
#[derive(Clone, Copy)]
pub(crate) enum Str {
    Printable,
    Utf8,
    Ia5,
    Bmp,
}

/// A Name of one attribute per RDN, in the order given.
pub(crate) fn name(attrs: &[(&str, Str, &str)]) -> Name {
    let rdns = attrs
        .iter()
        .map(|(oid, kind, text)| {
            let value = match kind {
                Str::Printable => Any::encode_from(&PrintableStringRef::new(text).unwrap()),
                Str::Utf8 => Any::encode_from(&Utf8StringRef::new(text).unwrap()),
                Str::Ia5 => Any::encode_from(&Ia5StringRef::new(text).unwrap()),
                Str::Bmp => {
                    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
                    Any::new(Tag::BmpString, utf16)
                }
            }
            .unwrap();
            let atv = AttributeTypeAndValue {
                oid: oid.parse().unwrap(),
                value,
            };
            RelativeDistinguishedName(SetOfVec::try_from(vec![atv]).unwrap())
        })
        .collect();
    RdnSequence(rdns)
}

/// The applicant of the brief: C=TR, serialNumber, givenName, surname, CN.
pub(crate) fn ayse() -> Name {
    name(&[
        ("2.5.4.6", Str::Printable, "TR"),
        ("2.5.4.5", Str::Printable, "10000000146"),
        ("2.5.4.42", Str::Utf8, "Ayşe"),
        ("2.5.4.4", Str::Utf8, "Yılmaz"),
        ("2.5.4.3", Str::Utf8, "AYŞE YILMAZ"),
    ])
}

pub(crate) fn ca_name(cn: &str) -> Name {
    Name::from_str(&format!("CN={cn},O=nesca test,C=TR")).unwrap()
}

pub(crate) fn validity(not_before: i64, not_after: i64) -> Validity {
    let t =
        |s: i64| Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(s as u64)).unwrap());
    Validity {
        not_before: t(not_before),
        not_after: t(not_after),
    }
}

pub(crate) fn spki_of<K: EncodePublicKey>(key: &K) -> SubjectPublicKeyInfoOwned {
    let der = key.to_public_key_der().unwrap();
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).unwrap()
}

/// A certificate to issue: what varies between the tests' certificates.
pub(crate) struct CertSpec {
    pub profile: Profile,
    pub serial: Vec<u8>,
    pub validity: Validity,
    pub subject: Name,
    pub spki: SubjectPublicKeyInfoOwned,
    pub eku: Option<Vec<&'static str>>,
}

/// Issues `spec` with `issuer_key` (P-256, ecdsa-with-SHA256).
pub(crate) fn issue(spec: CertSpec, issuer_key: &P256Key) -> Certificate {
    let mut builder = CertificateBuilder::new(
        spec.profile,
        SerialNumber::new(&spec.serial).unwrap(),
        spec.validity,
        spec.subject,
        spec.spki,
        issuer_key,
    )
    .unwrap();
    if let Some(eku) = spec.eku {
        let eku = ExtendedKeyUsage(eku.iter().map(|o| o.parse().unwrap()).collect());
        builder.add_extension(&eku).unwrap();
    }
    builder.build::<P256Signature>().unwrap()
}

/// A root CA named `cn`, keyed by `key`, valid 2020..2040.
pub(crate) fn root(cn: &str, key: &P256Key) -> Certificate {
    issue(
        CertSpec {
            profile: Profile::Root,
            serial: vec![1],
            validity: validity(Y2020, Y2040),
            subject: ca_name(cn),
            spki: spki_of(key.verifying_key()),
            eku: None,
        },
        key,
    )
}

/// A leaf for Ayşe issued by `issuer`, valid 2024..2034, with id-kp-clientAuth.
pub(crate) fn leaf_spec(issuer: &Certificate, spki: SubjectPublicKeyInfoOwned) -> CertSpec {
    CertSpec {
        profile: Profile::Leaf {
            issuer: issuer.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        },
        serial: vec![0x1a, 0x2b],
        validity: validity(Y2024, Y2034),
        subject: ayse(),
        spki,
        eku: Some(vec![crate::chain::ID_KP_CLIENT_AUTH]),
    }
}

/// The usual test PKI: a root, Ayşe's P-256 leaf and her RSA leaf, and another CA's leaf.
pub(crate) struct Pki {
    pub root_key: P256Key,
    pub root: Certificate,
    pub leaf_key: P256Key,
    pub leaf: Certificate,
    pub rsa_leaf: Certificate,
    pub other_key: P256Key,
    pub other_leaf: Certificate,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let root_key = p256_key(1);
        let root = root("nesca Test Identity Card Root", &root_key);
        let leaf_key = p256_key(2);
        let leaf = issue(
            leaf_spec(&root, spki_of(leaf_key.verifying_key())),
            &root_key,
        );
        let rsa_public = rsa_key().to_public_key();
        let rsa_leaf = issue(leaf_spec(&root, spki_of(&rsa_public)), &root_key);
        let other_root_key = p256_key(3);
        let other_root = crate::test_support::root("Another Root", &other_root_key);
        let other_key = p256_key(4);
        let other_leaf = issue(
            leaf_spec(&other_root, spki_of(other_key.verifying_key())),
            &other_root_key,
        );
        Pki {
            root_key,
            root,
            leaf_key,
            leaf,
            rsa_leaf,
            other_key,
            other_leaf,
        }
    }
}

pub(crate) fn der_of(cert: &Certificate) -> Vec<u8> {
    cert.to_der().unwrap()
}

pub(crate) fn sha_id(oid: der::oid::ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

pub(crate) fn issuer_and_serial(cert: &Certificate) -> SignerIdentifier {
    SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    })
}

pub(crate) fn signing_time_attribute(at: i64) -> Attribute {
    let utc = UtcTime::from_unix_duration(Duration::from_secs(at as u64)).unwrap();
    Attribute {
        oid: oids::ID_SIGNING_TIME,
        values: SetOfVec::try_from(vec![AttributeValue::encode_from(&utc).unwrap()]).unwrap(),
    }
}

/// One signer of a SignedData being built.
pub(crate) struct SignerSpec<'a, S> {
    pub key: &'a S,
    pub sid: SignerIdentifier,
    pub digest: AlgorithmIdentifierOwned,
}

impl<'a, S> SignerSpec<'a, S> {
    pub(crate) fn new(key: &'a S, cert: &Certificate) -> Self {
        SignerSpec {
            key,
            sid: issuer_and_serial(cert),
            digest: sha_id(oids::ID_SHA256),
        }
    }
}

/// The digest of `content` under the algorithm `digest` names.
pub(crate) fn digest_of(digest: &AlgorithmIdentifierOwned, content: &[u8]) -> Vec<u8> {
    crate::digest::DigestAlgorithm::from_oid(&digest.oid)
        .unwrap()
        .digest(content)
}

/// A DER ContentInfo/SignedData over `content` with one or two signers of the same key type,
/// carrying `certificates`. Detached: `message_digest` is what the signed attributes state
/// (normally the digest of `content`).
pub(crate) fn signed_data<S, Sig>(
    content: &[u8],
    attached: bool,
    message_digest: Option<Vec<u8>>,
    signers: &[SignerSpec<'_, S>],
    certificates: &[&Certificate],
) -> Vec<u8>
where
    S: Keypair + DynSignatureAlgorithmIdentifier + Signer<Sig>,
    Sig: SignatureBitStringEncoding,
{
    let eci = EncapsulatedContentInfo {
        econtent_type: oids::ID_DATA,
        econtent: attached.then(|| Any::new(Tag::OctetString, content).unwrap()),
    };
    let digests: Vec<Vec<u8>> = signers
        .iter()
        .map(|s| {
            message_digest
                .clone()
                .unwrap_or_else(|| digest_of(&s.digest, content))
        })
        .collect();
    let mut builder = SignedDataBuilder::new(&eci);
    for (signer, digest) in signers.iter().zip(&digests) {
        let mut si = SignerInfoBuilder::new(
            signer.key,
            signer.sid.clone(),
            signer.digest.clone(),
            &eci,
            (!attached).then_some(digest.as_slice()),
        )
        .unwrap();
        si.add_signed_attribute(signing_time_attribute(NOW))
            .unwrap();
        builder.add_digest_algorithm(signer.digest.clone()).unwrap();
        builder.add_signer_info::<S, Sig>(si).unwrap();
    }
    for cert in certificates {
        builder
            .add_certificate(CertificateChoices::Certificate((*cert).clone()))
            .unwrap();
    }
    builder.build().unwrap().to_der().unwrap()
}

/// Decodes a ContentInfo/SignedData made here, lets `f` change it, encodes it again. (The
/// `cms` structs sort SETs on decoding, harmless for what the builder made.)
pub(crate) fn mutate(cms_der: &[u8], f: impl FnOnce(&mut cms::signed_data::SignedData)) -> Vec<u8> {
    let mut ci = cms::content_info::ContentInfo::from_der(cms_der).unwrap();
    let mut sd: cms::signed_data::SignedData = ci.content.decode_as().unwrap();
    f(&mut sd);
    ci.content = Any::encode_from(&sd).unwrap();
    ci.to_der().unwrap()
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(data).to_vec()
}

/// [`mutate`] on the first SignerInfo.
pub(crate) fn mutate_signer(
    cms_der: &[u8],
    f: impl FnOnce(&mut cms::signed_data::SignerInfo),
) -> Vec<u8> {
    mutate(cms_der, |sd| {
        let mut infos = sd.signer_infos.0.clone().into_vec();
        f(infos.first_mut().unwrap());
        sd.signer_infos = cms::signed_data::SignerInfos::try_from(infos).unwrap();
    })
}
