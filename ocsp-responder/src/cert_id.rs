//! CertID matching (RFC 6960 §4.1.1): which served issuer a CertID names, and the CertID of a
//! pre-produced response.

use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256};
use der::asn1::OctetString;
use der::{Any, Encode};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use spki::AlgorithmIdentifierOwned;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;
use x509_ocsp::CertId;

use nesca_ca_types::Serial;

/// The hash algorithms nesca answers CertIDs in: SHA-1 (RFC 5019 §2.1.1; `openssl ocsp` and
/// most clients) and SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum HashAlg {
    Sha1,
    Sha256,
}

/// A CertID hashAlgorithm exactly as a client wrote it: the algorithm and whether its
/// parameters are NULL or absent. Both spellings are in use, and some clients compare the
/// response's CertID with their own octet for octet, so the response echoes the client's
/// spelling and the cache keeps the spellings apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct CertIdForm {
    pub alg: HashAlg,
    pub null_params: bool,
}

impl CertIdForm {
    /// SHA-1 with NULL parameters: what `openssl ocsp`, Go and Java send; pre-produced for
    /// every serial.
    pub(crate) const SHA1: CertIdForm = CertIdForm {
        alg: HashAlg::Sha1,
        null_params: true,
    };

    /// Every form a client may use.
    pub(crate) const ALL: [CertIdForm; 4] = [
        CertIdForm::SHA1,
        CertIdForm {
            alg: HashAlg::Sha1,
            null_params: false,
        },
        CertIdForm {
            alg: HashAlg::Sha256,
            null_params: true,
        },
        CertIdForm {
            alg: HashAlg::Sha256,
            null_params: false,
        },
    ];

    /// The form of a CertID's hashAlgorithm; `None` for algorithms nesca does not answer in
    /// (or parameters other than NULL).
    pub(crate) fn of(alg: &AlgorithmIdentifierOwned) -> Option<CertIdForm> {
        let hash = match alg.oid {
            o if o == ID_SHA_1 => HashAlg::Sha1,
            o if o == ID_SHA_256 => HashAlg::Sha256,
            _ => return None,
        };
        let null_params = match &alg.parameters {
            None => false,
            Some(p) if p.is_null() => true,
            Some(_) => return None,
        };
        Some(CertIdForm {
            alg: hash,
            null_params,
        })
    }

    /// The AlgorithmIdentifier of this form.
    pub(crate) fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: match self.alg {
                HashAlg::Sha1 => ID_SHA_1,
                HashAlg::Sha256 => ID_SHA_256,
            },
            parameters: self.null_params.then(Any::null),
        }
    }
}

/// issuerNameHash and issuerKeyHash of one CA in both algorithms, computed once: the hash of
/// the DER of the issuer's subject Name and the hash of its subjectPublicKey BIT STRING value
/// (without tag, length and unused-bits octet), RFC 6960 §4.1.1.
#[derive(Clone, Debug)]
pub(crate) struct IssuerHashes {
    sha1_name: [u8; 20],
    sha1_key: [u8; 20],
    sha256_name: [u8; 32],
    sha256_key: [u8; 32],
}

impl IssuerHashes {
    pub(crate) fn new(ca: &Certificate) -> Result<IssuerHashes, der::Error> {
        let name = ca.tbs_certificate.subject.to_der()?;
        let key = ca
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        Ok(IssuerHashes {
            sha1_name: Sha1::digest(&name).into(),
            sha1_key: Sha1::digest(key).into(),
            sha256_name: Sha256::digest(&name).into(),
            sha256_key: Sha256::digest(key).into(),
        })
    }

    /// Whether a CertID's two hashes name this issuer.
    pub(crate) fn matches(&self, alg: HashAlg, name_hash: &[u8], key_hash: &[u8]) -> bool {
        match alg {
            HashAlg::Sha1 => name_hash == self.sha1_name && key_hash == self.sha1_key,
            HashAlg::Sha256 => name_hash == self.sha256_name && key_hash == self.sha256_key,
        }
    }

    /// Whether two issuers cannot be told apart by CertID.
    pub(crate) fn same_as(&self, other: &IssuerHashes) -> bool {
        self.sha1_name == other.sha1_name && self.sha1_key == other.sha1_key
    }

    /// The CertID of `serial` in `form`: what a client asking in that form sends.
    pub(crate) fn cert_id(&self, form: CertIdForm, serial: &Serial) -> Result<CertId, der::Error> {
        let (name, key): (&[u8], &[u8]) = match form.alg {
            HashAlg::Sha1 => (&self.sha1_name, &self.sha1_key),
            HashAlg::Sha256 => (&self.sha256_name, &self.sha256_key),
        };
        Ok(CertId {
            hash_algorithm: form.algorithm_identifier(),
            issuer_name_hash: OctetString::new(name)?,
            issuer_key_hash: OctetString::new(key)?,
            serial_number: SerialNumber::new(&serial.to_der_bytes())?,
        })
    }
}

/// The serial a CertID's serialNumber INTEGER (content octets) names, if nesca could have
/// issued it: positive and at most 20 octets as an INTEGER. `None` means never issued.
pub(crate) fn serial_of(int_octets: &[u8]) -> Option<Serial> {
    if int_octets.first().is_some_and(|b| b & 0x80 != 0) {
        return None; // negative
    }
    let first = int_octets.iter().position(|b| *b != 0);
    let value = first.map_or(&[][..], |i| &int_octets[i..]);
    if value.len() > Serial::LEN {
        return None;
    }
    if value.first().is_some_and(|b| b & 0x80 != 0) {
        // `Serial::from_der_bytes` refuses a value whose top bit is set after its 0x00 sign
        // octet (e.g. 00 80); the hex form takes it.
        return Serial::parse_hex(&crate::response::hex(value)).ok();
    }
    Serial::from_der_bytes(if value.is_empty() { &[0] } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Pki;
    use der::Decode;

    #[test]
    fn hashes_agree_with_x509_ocsp() {
        let pki = Pki::new();
        let h = IssuerHashes::new(&pki.ca_cert).unwrap();
        let serial = Serial::from_der_bytes(&[0x42]).unwrap();
        let theirs =
            CertId::from_issuer::<Sha1>(&pki.ca_cert, SerialNumber::new(&[0x42]).unwrap()).unwrap();
        assert_eq!(h.cert_id(CertIdForm::SHA1, &serial).unwrap(), theirs);
        let theirs256 =
            CertId::from_issuer::<Sha256>(&pki.ca_cert, SerialNumber::new(&[0x42]).unwrap())
                .unwrap();
        let form = CertIdForm::of(&theirs256.hash_algorithm).unwrap();
        assert_eq!(form.alg, HashAlg::Sha256);
        assert_eq!(h.cert_id(form, &serial).unwrap(), theirs256);
    }

    #[test]
    fn serials_from_integer_octets() {
        let s = |b: &[u8]| serial_of(b).map(|s| s.to_der_bytes());
        assert_eq!(s(&[0x01]), Some(vec![0x01]));
        assert_eq!(s(&[0x00, 0x80]), Some(vec![0x00, 0x80]));
        assert_eq!(s(&[0x00]), Some(vec![0x00]));
        assert_eq!(s(&[0x80]), None);
        assert_eq!(s(&[0xff, 0x01]), None);
        assert_eq!(s(&[0x7f; 20]), Some(vec![0x7f; 20]));
        assert_eq!(s(&[0x7f; 21]), None);
        let mut high = vec![0x00, 0x40];
        high.extend_from_slice(&[0x80; 19]);
        assert_eq!(s(&high), Some(high[1..].to_vec()));
        // 20 value octets with the top bit set need 21 as an INTEGER: not a nesca serial.
        let mut long = vec![0x00];
        long.extend_from_slice(&[0x80; 20]);
        assert_eq!(s(&long), None);
    }

    #[test]
    fn forms_keep_the_parameters_spelling() {
        let absent = AlgorithmIdentifierOwned {
            oid: ID_SHA_256,
            parameters: None,
        };
        let form = CertIdForm::of(&absent).unwrap();
        assert!(!form.null_params);
        assert_eq!(form.algorithm_identifier(), absent);
        let odd = AlgorithmIdentifierOwned {
            oid: ID_SHA_1,
            parameters: Some(Any::from_der(&[0x04, 0x00]).unwrap()),
        };
        assert_eq!(CertIdForm::of(&odd), None);
        let md5 = AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_MD_5,
            parameters: None,
        };
        assert_eq!(CertIdForm::of(&md5), None);
    }
}
