//! CMS SignedData (RFC 5652 §5) for tests: content attached (id-data), signed attributes
//! contentType and messageDigest, SHA-256 with ECDSA P-256, signer identified by issuer and
//! serial — the shape a KDBO or a signed commitment has.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode as _, Encode as _, Tag};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::DerSignature;
use sha2::{Digest, Sha256};
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use super::pki::TestCert;

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

impl TestCert {
    /// A SignedData over `content`, attached, carrying this certificate and `extra_certs`.
    pub fn sign_attached(&self, content: &[u8], extra_certs: &[Vec<u8>]) -> Vec<u8> {
        signed_data(self, content, content, extra_certs)
    }

    /// As [`TestCert::sign_attached`], but the signed messageDigest is of other bytes: the
    /// signature itself is good, the content does not match it.
    pub fn sign_with_wrong_digest(&self, content: &[u8], extra_certs: &[Vec<u8>]) -> Vec<u8> {
        signed_data(self, content, b"something else", extra_certs)
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Attribute {
    Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).expect("one value"),
    }
}

fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

fn signed_data(
    signer: &TestCert,
    content: &[u8],
    digested: &[u8],
    extra_certs: &[Vec<u8>],
) -> Vec<u8> {
    let cert = Certificate::from_der(&signer.cert).expect("signer certificate");
    let digest = Sha256::digest(digested);
    let signed_attrs = SetOfVec::try_from(vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA).expect("OID")),
        attribute(
            ID_MESSAGE_DIGEST,
            Any::new(Tag::OctetString, &digest[..]).expect("digest"),
        ),
    ])
    .expect("signed attributes");
    // RFC 5652 §5.4: the signature is over the DER of the attributes as a SET OF.
    let to_sign = signed_attrs.to_der().expect("attributes DER");
    let signature: DerSignature = signer.key.sign(&to_sign);

    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: algorithm(ID_SHA256),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: algorithm(ECDSA_WITH_SHA256),
        signature: OctetString::new(signature.as_bytes()).expect("signature"),
        unsigned_attrs: None,
    };
    let mut certificates = vec![CertificateChoices::Certificate(cert)];
    for der in extra_certs {
        certificates.push(CertificateChoices::Certificate(
            Certificate::from_der(der).expect("extra certificate"),
        ));
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![algorithm(ID_SHA256)])
            .expect("digest algorithms"),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: Some(Any::new(Tag::OctetString, content).expect("content")),
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(certificates).expect("certificates"),
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).expect("signer infos")),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).expect("SignedData"),
    }
    .to_der()
    .expect("ContentInfo DER")
}
