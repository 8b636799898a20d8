//! Test helpers: a software P-256 signer, a small PKI (CA, delegated OCSP signer, leaves)
//! built with x509-cert, an in-memory status source, and request/response helpers.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_KEY_IDENTIFIER, ID_KP_OCSP_SIGNING,
};
use const_oid::db::rfc6960::{ID_PKIX_OCSP_NOCHECK, ID_PKIX_OCSP_NONCE};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, Null, OctetString};
use der::{Decode, Encode};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePublicKey;
use sha1::{Digest, Sha1};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertId, OcspRequest, OcspResponse, OcspResponseStatus, Request, TbsRequest,
};

use nesca_ca_types::TbsSigner;
use nesca_ca_types::{FixedClock, IssuerId, Serial};

use crate::source::{CertState, SourceError, StatusSource};
use crate::{Responder, ResponderConfig, ServedIssuer};

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// A P-256 key in memory, able to fail or lie on demand.
pub(crate) struct SoftSigner {
    key: SigningKey,
    /// `sign` returns an error.
    pub fail: AtomicBool,
    /// `sign` returns a well-formed signature that does not verify.
    pub lie: AtomicBool,
    pub calls: AtomicUsize,
}

impl SoftSigner {
    pub(crate) fn from_seed(seed: u8) -> SoftSigner {
        SoftSigner {
            key: SigningKey::from_slice(&[seed; 32]).expect("scalar"),
            fail: AtomicBool::new(false),
            lie: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
        }
    }
}

impl TbsSigner for SoftSigner {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA256,
            parameters: None,
        }
    }
    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        spki_of(&self.key)
    }
    fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, nesca_ca_types::CaTypesError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.fail.load(Ordering::Relaxed) {
            return Err(nesca_ca_types::CaTypesError::Signer {
                rule: "told to fail".into(),
            });
        }
        let message: &[u8] = if self.lie.load(Ordering::Relaxed) {
            b"something else"
        } else {
            tbs_der
        };
        let sig: p256::ecdsa::Signature = self.key.sign(message);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

fn spki_of(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    let der = key.verifying_key().to_public_key_der().expect("SPKI");
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).expect("SPKI")
}

fn ext<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().expect("ext")).expect("ext"),
    }
}

fn key_id(spki: &SubjectPublicKeyInfoOwned) -> OctetString {
    OctetString::new(Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()).expect("kid")
}

/// Builds and signs a certificate.
#[allow(clippy::too_many_arguments)]
fn certificate(
    serial: &[u8],
    subject: &str,
    issuer: &Name,
    spki: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
    not_before: SystemTime,
    not_after: SystemTime,
    signer: &SigningKey,
) -> Certificate {
    let alg = AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA256,
        parameters: None,
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(serial).expect("serial"),
        signature: alg.clone(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: Time::try_from(not_before).expect("time"),
            not_after: Time::try_from(not_after).expect("time"),
        },
        subject: Name::from_str(subject).expect("name"),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let sig: p256::ecdsa::Signature = signer.sign(&tbs.to_der().expect("tbs"));
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(sig.to_der().as_bytes()).expect("sig"),
    }
}

/// A CA with a delegated OCSP signer.
pub(crate) struct Pki {
    pub ca_key: SigningKey,
    pub ca_cert: Certificate,
    pub signer: Arc<SoftSigner>,
    pub signer_cert: Certificate,
    pub now: SystemTime,
}

impl Pki {
    /// A CA valid around the real current time (so that `openssl` accepts it too).
    pub(crate) fn new() -> Pki {
        Pki::named(1, "CN=Nesca Test NES CA,O=Nesca Test,C=TR")
    }

    /// Another CA, with keys from `seed` and `seed + 1`.
    pub(crate) fn named(seed: u8, subject: &str) -> Pki {
        let now = nesca_ca_types::clock::truncate(SystemTime::now());
        let ca_key = SigningKey::from_slice(&[seed; 32]).expect("scalar");
        let ca_spki = spki_of(&ca_key);
        let ca_name = Name::from_str(subject).expect("name");
        let ca_cert = certificate(
            &[seed, 0x01],
            subject,
            &ca_name,
            ca_spki.clone(),
            vec![
                ext(
                    ID_CE_BASIC_CONSTRAINTS,
                    true,
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: None,
                    },
                ),
                ext(
                    ID_CE_KEY_USAGE,
                    true,
                    &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
                ),
                ext(
                    ID_CE_SUBJECT_KEY_IDENTIFIER,
                    false,
                    &SubjectKeyIdentifier(key_id(&ca_spki)),
                ),
            ],
            now - Duration::from_secs(3600),
            now + Duration::from_secs(3650 * 86400),
            &ca_key,
        );
        let signer = Arc::new(SoftSigner::from_seed(seed + 1));
        let signer_cert = Pki::signer_cert_for(&ca_key, &ca_cert, &signer.public_key(), true, now);
        Pki {
            ca_key,
            ca_cert,
            signer,
            signer_cert,
            now,
        }
    }

    /// A delegated signer certificate (RFC 6960 §4.2.2.2) for `spki`, with or without the
    /// id-kp-OCSPSigning EKU.
    pub(crate) fn signer_cert_for(
        ca_key: &SigningKey,
        ca_cert: &Certificate,
        spki: &SubjectPublicKeyInfoOwned,
        ocsp_signing: bool,
        now: SystemTime,
    ) -> Certificate {
        let ca_spki = &ca_cert.tbs_certificate.subject_public_key_info;
        let mut exts = vec![
            ext(
                ID_CE_AUTHORITY_KEY_IDENTIFIER,
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(key_id(ca_spki)),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            ),
            ext(
                ID_CE_SUBJECT_KEY_IDENTIFIER,
                false,
                &SubjectKeyIdentifier(key_id(spki)),
            ),
            ext(
                ID_CE_KEY_USAGE,
                true,
                &KeyUsage(KeyUsages::DigitalSignature.into()),
            ),
            ext(ID_PKIX_OCSP_NOCHECK, false, &Null),
        ];
        if ocsp_signing {
            exts.push(ext(
                ID_CE_EXT_KEY_USAGE,
                false,
                &ExtendedKeyUsage(vec![ID_KP_OCSP_SIGNING]),
            ));
        }
        certificate(
            &[0x0c, 0x5f],
            "CN=Nesca Test OCSP,O=Nesca Test,C=TR",
            &ca_cert.tbs_certificate.subject,
            spki.clone(),
            exts,
            now - Duration::from_secs(3600),
            now + Duration::from_secs(90 * 86400),
            ca_key,
        )
    }

    pub(crate) fn served(&self, id: &str) -> ServedIssuer {
        ServedIssuer {
            id: IssuerId::parse(id).expect("id"),
            ca_cert: self.ca_cert.clone(),
            signer: self.signer.clone(),
            signer_cert_der: self.signer_cert.to_der().expect("DER"),
        }
    }

    /// An end-entity certificate with this serial.
    pub(crate) fn leaf(&self, serial: &Serial) -> Certificate {
        let key = SigningKey::from_slice(&[0x77; 32]).expect("scalar");
        let ca_spki = &self.ca_cert.tbs_certificate.subject_public_key_info;
        certificate(
            &serial.to_der_bytes(),
            "CN=AYSE YILMAZ,C=TR",
            &self.ca_cert.tbs_certificate.subject,
            spki_of(&key),
            vec![
                ext(
                    ID_CE_AUTHORITY_KEY_IDENTIFIER,
                    false,
                    &AuthorityKeyIdentifier {
                        key_identifier: Some(key_id(ca_spki)),
                        authority_cert_issuer: None,
                        authority_cert_serial_number: None,
                    },
                ),
                ext(
                    ID_CE_KEY_USAGE,
                    true,
                    &KeyUsage(KeyUsages::NonRepudiation.into()),
                ),
            ],
            self.now - Duration::from_secs(3600),
            self.now + Duration::from_secs(365 * 86400),
            &self.ca_key,
        )
    }

    /// The CertID of `serial` hashed with `D` (x509-ocsp's own construction: NULL params).
    pub(crate) fn cert_id<D: Digest + const_oid::AssociatedOid>(&self, serial: &Serial) -> CertId {
        CertId::from_issuer::<D>(
            &self.ca_cert,
            SerialNumber::new(&serial.to_der_bytes()).expect("serial"),
        )
        .expect("CertID")
    }
}

/// An in-memory store: statuses, a change log with cursors, serials in order.
#[derive(Default)]
pub(crate) struct FakeSource {
    inner: Mutex<FakeState>,
    pub fail: AtomicBool,
    pub status_calls: AtomicUsize,
}

#[derive(Default)]
struct FakeState {
    status: BTreeMap<(IssuerId, Serial), CertState>,
    log: Vec<(i64, IssuerId, Serial)>,
}

impl FakeSource {
    /// Sets a status and records the change.
    pub(crate) fn set(&self, issuer: &str, serial: Serial, state: CertState) {
        let id = IssuerId::parse(issuer).expect("id");
        let mut s = self.inner.lock().expect("lock");
        s.status.insert((id.clone(), serial), state);
        let c = s.log.len() as i64 + 1;
        s.log.push((c, id, serial));
    }

    fn check(&self) -> Result<(), SourceError> {
        if self.fail.load(Ordering::Relaxed) {
            Err(SourceError::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "database is down",
            )))
        } else {
            Ok(())
        }
    }
}

impl StatusSource for FakeSource {
    fn status(&self, issuer: &IssuerId, serial: &Serial) -> Result<CertState, SourceError> {
        self.check()?;
        self.status_calls.fetch_add(1, Ordering::Relaxed);
        let s = self.inner.lock().expect("lock");
        Ok(s.status
            .get(&(issuer.clone(), *serial))
            .copied()
            .unwrap_or(CertState::NotIssued))
    }

    fn changes_since(
        &self,
        cursor: i64,
        limit: usize,
    ) -> Result<(Vec<(IssuerId, Serial)>, i64), SourceError> {
        self.check()?;
        let s = self.inner.lock().expect("lock");
        let page: Vec<_> = s.log.iter().filter(|c| c.0 > cursor).take(limit).collect();
        let next = page.last().map(|c| c.0).unwrap_or(cursor);
        Ok((page.iter().map(|c| (c.1.clone(), c.2)).collect(), next))
    }

    fn serials(
        &self,
        issuer: &IssuerId,
        after: Option<&Serial>,
        limit: usize,
    ) -> Result<Vec<Serial>, SourceError> {
        self.check()?;
        let s = self.inner.lock().expect("lock");
        Ok(s.status
            .keys()
            .filter(|(i, serial)| i == issuer && after.is_none_or(|a| serial > a))
            .map(|(_, serial)| *serial)
            .take(limit)
            .collect())
    }
}

/// The serial with this value.
pub(crate) fn serial(n: u64) -> Serial {
    let mut b = vec![0u8];
    b.extend_from_slice(&n.to_be_bytes());
    Serial::from_der_bytes(&b).expect("serial")
}

/// A DER OCSPRequest for `cert_ids`, with a nonce of these octets if given.
pub(crate) fn request(cert_ids: Vec<CertId>, nonce: Option<&[u8]>) -> Vec<u8> {
    let request_extensions = nonce.map(|n| {
        vec![Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(
                OctetString::new(n).expect("nonce").to_der().expect("nonce"),
            )
            .expect("nonce"),
        }]
    });
    OcspRequest {
        tbs_request: TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: cert_ids.into_iter().map(Request::new).collect(),
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()
    .expect("request")
}

/// Decodes an OCSPResponse: its status and, if successful, the BasicOCSPResponse, whose
/// signature is checked under the certificate it carries.
pub(crate) fn decode(der: &[u8]) -> (OcspResponseStatus, Option<BasicOcspResponse>) {
    let resp = OcspResponse::from_der(der).expect("OCSPResponse decodes");
    let Some(bytes) = resp.response_bytes else {
        return (resp.response_status, None);
    };
    assert_eq!(
        bytes.response_type,
        const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC
    );
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("basic decodes");
    let signer = &basic.certs.as_ref().expect("certs")[0];
    nesca_ca_types::verify::verify(
        &signer.tbs_certificate.subject_public_key_info,
        &basic.signature_algorithm,
        &basic.tbs_response_data.to_der().expect("tbs"),
        basic.signature.raw_bytes(),
    )
    .expect("response signature verifies");
    (resp.response_status, Some(basic))
}

/// A responder for `pki` as issuer `nes-ca` on a fixed clock at `pki.now`.
pub(crate) fn responder(
    pki: &Pki,
    source: Arc<FakeSource>,
    config: ResponderConfig,
) -> (Arc<Responder>, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(pki.now));
    let r = Responder::new(vec![pki.served("nes-ca")], source, config, clock.clone())
        .expect("responder");
    (r, clock)
}
