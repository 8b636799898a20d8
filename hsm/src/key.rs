//! Key pairs inside the token: generation (sensitive, non-extractable) and lookup by label.

use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::asn1::{BitString, OctetString, UintRef};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::signer::{KeySigner, PublicKey};
use crate::{Hsm, HsmError};

/// id-ecPublicKey (RFC 5480 §2.1.1).
pub(crate) const ID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 / prime256v1 (RFC 5480 §2.1.1.1).
pub(crate) const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 (RFC 5480 §2.1.1.1).
pub(crate) const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// rsaEncryption (RFC 8017 Appendix C).
pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The key algorithms nesca generates and signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256, signing with SHA-256.
    EcdsaP256,
    /// ECDSA on NIST P-384, signing with SHA-384.
    EcdsaP384,
    /// RSA 2048-bit, PKCS#1 v1.5 with SHA-256.
    Rsa2048,
    /// RSA 3072-bit, PKCS#1 v1.5 with SHA-256.
    Rsa3072,
    /// RSA 4096-bit, PKCS#1 v1.5 with SHA-256.
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every supported algorithm, in the order `--help` lists them.
    pub const ALL: [KeyAlgorithm; 5] = [
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
    ];

    /// The configuration / command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
        }
    }

    pub(crate) fn rsa_bits(self) -> Option<u64> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    pub(crate) fn curve(self) -> Option<ObjectIdentifier> {
        match self {
            Self::EcdsaP256 => Some(SECP256R1),
            Self::EcdsaP384 => Some(SECP384R1),
            _ => None,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = HsmError;
    fn from_str(s: &str) -> Result<Self, HsmError> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = KeyAlgorithm::ALL.iter().map(|a| a.name()).collect();
                HsmError::UnknownAlgorithm {
                    name: s.to_string(),
                    expected: names.join(", "),
                }
            })
    }
}

/// How a private key is protected on the token (PKCS#11 §4.9 attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyProtection {
    pub sensitive: bool,
    pub extractable: bool,
    pub always_sensitive: bool,
    pub never_extractable: bool,
}

/// RSAPublicKey (RFC 8017 §A.1.1).
#[derive(Sequence)]
pub(crate) struct RsaPublicKey<'a> {
    pub(crate) modulus: UintRef<'a>,
    pub(crate) public_exponent: UintRef<'a>,
}

impl Hsm {
    /// Generates a key pair inside the token. The private key is sensitive and never
    /// extractable; a label that exists already is refused.
    pub fn generate_key(
        &self,
        label: &str,
        algorithm: KeyAlgorithm,
    ) -> Result<KeySigner, HsmError> {
        let _alone = self.objects_write();
        let session = self.session()?;
        if find_private(&session, label)?.is_some() {
            return Err(HsmError::KeyExists {
                label: label.to_string(),
            });
        }
        let id = label.as_bytes().to_vec();
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id),
        ];
        let mechanism = key_pair_generation(algorithm, &mut public)?;
        let (pub_handle, priv_handle) = session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(|e| HsmError::from_ck("C_GenerateKeyPair", e))?;
        let spki = read_spki(&session, pub_handle, label)?;
        drop(session);
        Ok(KeySigner::new(
            self.clone(),
            label.to_string(),
            algorithm,
            priv_handle,
            PublicKey::new(spki)?,
        ))
    }

    /// Finds a key pair by label and reads its algorithm and public key from the token.
    ///
    /// The private key's protection is checked first ([`check_protection`]): a key that is not
    /// sensitive, is extractable, or ever was either is refused with
    /// [`HsmError::KeyNotProtected`], naming the label and the attribute. Every key nesca signs
    /// with (CA keys, OCSP signers) is found here.
    pub fn find_key(&self, label: &str) -> Result<KeySigner, HsmError> {
        let _reading = self.objects_read();
        let session = self.session()?;
        let private = find_private(&session, label)?.ok_or_else(|| HsmError::KeyNotFound {
            label: label.to_string(),
        })?;
        check_protection(label, &read_protection(&session, private)?)?;
        let public = find_one(&session, ObjectClass::PUBLIC_KEY, label)?.ok_or_else(|| {
            HsmError::UnsupportedKey {
                label: label.to_string(),
                reason: "no public key object beside the private key".into(),
            }
        })?;
        let spki = read_spki(&session, public, label)?;
        let algorithm = algorithm_of(&spki, label)?;
        drop(session);
        Ok(KeySigner::new(
            self.clone(),
            label.to_string(),
            algorithm,
            private,
            PublicKey::new(spki)?,
        ))
    }

    /// Finds a key pair by its CKA_ID (as vendor tools often name keys), then by the label
    /// that private key carries.
    pub fn find_key_by_id(&self, id: &[u8]) -> Result<KeySigner, HsmError> {
        let shown = id.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let label = {
            let _reading = self.objects_read();
            let session = self.session()?;
            let found = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Id(id.to_vec()),
                ])
                .map_err(|e| HsmError::from_ck("C_FindObjects", e))?;
            let handle = match found.as_slice() {
                [one] => *one,
                [] => {
                    return Err(HsmError::KeyNotFound {
                        label: format!("id {shown}"),
                    })
                }
                more => {
                    return Err(HsmError::UnsupportedKey {
                        label: format!("id {shown}"),
                        reason: format!("{} private keys share this id", more.len()),
                    })
                }
            };
            let attrs = session
                .get_attributes(handle, &[AttributeType::Label])
                .map_err(|e| HsmError::from_ck("C_GetAttributeValue", e))?;
            attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::Label(l) if !l.is_empty() => String::from_utf8(l).ok(),
                    _ => None,
                })
                .ok_or_else(|| HsmError::UnsupportedKey {
                    label: format!("id {shown}"),
                    reason: "the key has no UTF-8 label".into(),
                })?
        };
        self.find_key(&label)
    }

    /// Destroys the key pair under `label` (private and public objects), as when a renewal
    /// lost its race and the key it made signs nothing. A label with no key is no error.
    pub fn destroy_key(&self, label: &str) -> Result<(), HsmError> {
        let _alone = self.objects_write();
        let session = self.session()?;
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            if let Some(handle) = find_one(&session, class, label)? {
                session
                    .destroy_object(handle)
                    .map_err(|e| HsmError::from_ck("C_DestroyObject", e))?;
            }
        }
        Ok(())
    }

    /// Writes a private data object (CKO_DATA, CKA_PRIVATE: read and written only by a
    /// logged-in session) under `label`, replacing the one there: a small record nesca keeps
    /// where only the PIN's holder reaches it (the audit log's latest checkpoint).
    pub fn put_private_data(&self, label: &str, value: &[u8]) -> Result<(), HsmError> {
        let _alone = self.objects_write();
        let session = self.session()?;
        let template = vec![
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Modifiable(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Value(value.to_vec()),
        ];
        // Created before the old one goes: a crash in between leaves two, and the reader
        // takes the newest value of them (`private_data`).
        let old = find_all(&session, ObjectClass::DATA, label)?;
        session
            .create_object(&template)
            .map_err(|e| HsmError::from_ck("C_CreateObject", e))?;
        for handle in old {
            session
                .destroy_object(handle)
                .map_err(|e| HsmError::from_ck("C_DestroyObject", e))?;
        }
        Ok(())
    }

    /// The values of the private data objects under `label` (none, one, or two after a crash
    /// between writing the new and destroying the old).
    pub fn private_data(&self, label: &str) -> Result<Vec<Vec<u8>>, HsmError> {
        let _reading = self.objects_read();
        let session = self.session()?;
        let mut out = Vec::new();
        for handle in find_all(&session, ObjectClass::DATA, label)? {
            let attrs = session
                .get_attributes(handle, &[AttributeType::Value])
                .map_err(|e| HsmError::from_ck("C_GetAttributeValue", e))?;
            for a in attrs {
                if let Attribute::Value(v) = a {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// Whether a private key with this label exists.
    pub fn has_key(&self, label: &str) -> Result<bool, HsmError> {
        let _reading = self.objects_read();
        let session = self.session()?;
        Ok(find_private(&session, label)?.is_some())
    }

    /// Reads how the private key under `label` is protected.
    pub fn key_protection(&self, label: &str) -> Result<KeyProtection, HsmError> {
        let _reading = self.objects_read();
        let session = self.session()?;
        let handle = private_handle(&session, label)?;
        let p = read_protection(&session, handle)?;
        Ok(KeyProtection {
            sensitive: p.sensitive == Some(true),
            extractable: p.extractable != Some(false),
            always_sensitive: p.always_sensitive == Some(true),
            never_extractable: p.never_extractable == Some(true),
        })
    }
}

/// The protection attributes of a private key as the token reports them; `None`: the token
/// did not give that attribute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ReadProtection {
    sensitive: Option<bool>,
    extractable: Option<bool>,
    always_sensitive: Option<bool>,
    never_extractable: Option<bool>,
}

fn read_protection(session: &Session, handle: ObjectHandle) -> Result<ReadProtection, HsmError> {
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
            ],
        )
        .map_err(|e| HsmError::from_ck("C_GetAttributeValue", e))?;
    let mut p = ReadProtection::default();
    for a in attrs {
        match a {
            Attribute::Sensitive(v) => p.sensitive = Some(v),
            Attribute::Extractable(v) => p.extractable = Some(v),
            Attribute::AlwaysSensitive(v) => p.always_sensitive = Some(v),
            Attribute::NeverExtractable(v) => p.never_extractable = Some(v),
            _ => {}
        }
    }
    Ok(p)
}

/// A signing key must be sensitive and not extractable (PKCS#11 §4.9): a token that does not
/// report either is refused too. `CKA_ALWAYS_SENSITIVE` and `CKA_NEVER_EXTRACTABLE` say whether
/// it ever left the token in the clear; when the token reports them, both must be true.
fn check_protection(label: &str, p: &ReadProtection) -> Result<(), HsmError> {
    let refuse = |attribute: &'static str, value: Option<bool>, rule: &'static str| {
        Err(HsmError::KeyNotProtected {
            label: label.to_string(),
            attribute,
            value: match value {
                Some(true) => "CK_TRUE",
                Some(false) => "CK_FALSE",
                None => "not reported",
            },
            rule,
        })
    };
    if p.sensitive != Some(true) {
        return refuse("CKA_SENSITIVE", p.sensitive, "must be CK_TRUE");
    }
    if p.extractable != Some(false) {
        return refuse("CKA_EXTRACTABLE", p.extractable, "must be CK_FALSE");
    }
    if p.always_sensitive == Some(false) {
        return refuse(
            "CKA_ALWAYS_SENSITIVE",
            p.always_sensitive,
            "must be CK_TRUE (the key was once readable outside the token)",
        );
    }
    if p.never_extractable == Some(false) {
        return refuse(
            "CKA_NEVER_EXTRACTABLE",
            p.never_extractable,
            "must be CK_TRUE (the key was once extractable)",
        );
    }
    Ok(())
}

fn enc(what: &'static str, e: der::Error) -> HsmError {
    HsmError::Encoding {
        what,
        reason: e.to_string(),
    }
}

fn find_private(session: &Session, label: &str) -> Result<Option<ObjectHandle>, HsmError> {
    find_one(session, ObjectClass::PRIVATE_KEY, label)
}

fn find_one(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<Option<ObjectHandle>, HsmError> {
    let found = find_all(session, class, label)?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(Some(found[0])),
        n => Err(HsmError::UnsupportedKey {
            label: label.to_string(),
            reason: format!("{n} objects of one class share this label"),
        }),
    }
}

fn find_all(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<Vec<ObjectHandle>, HsmError> {
    session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| HsmError::from_ck("C_FindObjects", e))
}

/// Builds the SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) of a public key object.
pub(crate) fn read_spki(
    session: &Session,
    handle: ObjectHandle,
    label: &str,
) -> Result<SubjectPublicKeyInfoOwned, HsmError> {
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::EcPoint,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        )
        .map_err(|e| HsmError::from_ck("C_GetAttributeValue", e))?;
    let (mut key_type, mut params, mut point, mut modulus, mut exponent) =
        (None, None, None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            Attribute::Modulus(v) => modulus = Some(v),
            Attribute::PublicExponent(v) => exponent = Some(v),
            _ => {}
        }
    }
    let unsupported = |reason: &str| HsmError::UnsupportedKey {
        label: label.to_string(),
        reason: reason.to_string(),
    };
    match key_type {
        Some(KeyType::EC) => {
            let params = params.ok_or_else(|| unsupported("EC key without CKA_EC_PARAMS"))?;
            let curve = ObjectIdentifier::from_der(&params)
                .map_err(|_| unsupported("CKA_EC_PARAMS is not a named curve"))?;
            let point = point.ok_or_else(|| unsupported("EC key without CKA_EC_POINT"))?;
            // CKA_EC_POINT is DER OCTET STRING around the uncompressed point; some modules give it raw.
            let raw = OctetString::from_der(&point)
                .map(|o| o.into_bytes())
                .unwrap_or(point);
            Ok(SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: ID_EC_PUBLIC_KEY,
                    parameters: Some(der::Any::from(curve)),
                },
                subject_public_key: BitString::from_bytes(&raw)
                    .map_err(|e| enc("EC public key", e))?,
            })
        }
        Some(KeyType::RSA) => {
            let modulus = modulus.ok_or_else(|| unsupported("RSA key without CKA_MODULUS"))?;
            let exponent =
                exponent.ok_or_else(|| unsupported("RSA key without CKA_PUBLIC_EXPONENT"))?;
            let key = RsaPublicKey {
                modulus: UintRef::new(&modulus).map_err(|e| enc("RSA modulus", e))?,
                public_exponent: UintRef::new(&exponent).map_err(|e| enc("RSA exponent", e))?,
            };
            Ok(SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: RSA_ENCRYPTION,
                    parameters: Some(der::asn1::Null.into()),
                },
                subject_public_key: BitString::from_bytes(
                    &key.to_der().map_err(|e| enc("RSA public key", e))?,
                )
                .map_err(|e| enc("RSA public key", e))?,
            })
        }
        _ => Err(unsupported("only EC and RSA keys are supported")),
    }
}

/// Which [`KeyAlgorithm`] a SubjectPublicKeyInfo holds.
/// The key-pair generation mechanism of `algorithm`, with its parameters added to the public
/// key template: the named curve (EC), or the modulus size and exponent 65537 (RSA).
pub(crate) fn key_pair_generation(
    algorithm: KeyAlgorithm,
    public: &mut Vec<Attribute>,
) -> Result<Mechanism<'static>, HsmError> {
    Ok(if let Some(curve) = algorithm.curve() {
        let params = curve.to_der().map_err(|e| enc("EC parameters", e))?;
        public.push(Attribute::EcParams(params));
        Mechanism::EccKeyPairGen
    } else {
        let bits = algorithm.rsa_bits().unwrap_or(2048);
        public.push(Attribute::ModulusBits(bits.into()));
        public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
        Mechanism::RsaPkcsKeyPairGen
    })
}

pub(crate) fn algorithm_of(
    spki: &SubjectPublicKeyInfoOwned,
    label: &str,
) -> Result<KeyAlgorithm, HsmError> {
    let unsupported = |reason: String| HsmError::UnsupportedKey {
        label: label.to_string(),
        reason,
    };
    if spki.algorithm.oid == ID_EC_PUBLIC_KEY {
        let curve: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as().ok())
            .ok_or_else(|| unsupported("EC key without a named curve".into()))?;
        return match curve {
            c if c == SECP256R1 => Ok(KeyAlgorithm::EcdsaP256),
            c if c == SECP384R1 => Ok(KeyAlgorithm::EcdsaP384),
            c => Err(unsupported(format!("unsupported curve {c}"))),
        };
    }
    if spki.algorithm.oid == RSA_ENCRYPTION {
        let bytes = spki.subject_public_key.raw_bytes();
        let key = RsaPublicKey::from_der(bytes).map_err(|e| enc("RSA public key", e))?;
        let bits = key.modulus.as_bytes().len() * 8;
        return match bits {
            2048 => Ok(KeyAlgorithm::Rsa2048),
            3072 => Ok(KeyAlgorithm::Rsa3072),
            4096 => Ok(KeyAlgorithm::Rsa4096),
            b => Err(unsupported(format!("unsupported RSA size {b} bits"))),
        };
    }
    Err(unsupported(format!(
        "unsupported key algorithm {}",
        spki.algorithm.oid
    )))
}

/// The private key handle under `label`, looked up in `session`.
pub(crate) fn private_handle(session: &Session, label: &str) -> Result<ObjectHandle, HsmError> {
    find_private(session, label)?.ok_or_else(|| HsmError::KeyNotFound {
        label: label.to_string(),
    })
}

#[cfg(test)]
mod protection_tests {
    use super::*;

    fn p(s: Option<bool>, e: Option<bool>, a: Option<bool>, n: Option<bool>) -> ReadProtection {
        ReadProtection {
            sensitive: s,
            extractable: e,
            always_sensitive: a,
            never_extractable: n,
        }
    }

    fn refused(p: &ReadProtection) -> &'static str {
        match check_protection("ca-key", p) {
            Err(HsmError::KeyNotProtected { attribute, .. }) => attribute,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn only_sensitive_never_extractable_keys_are_accepted() {
        let (t, f) = (Some(true), Some(false));
        check_protection("ca-key", &p(t, f, t, t)).unwrap();
        // A token that does not report the ALWAYS_/NEVER_ attributes: the two that matter.
        check_protection("ca-key", &p(t, f, None, None)).unwrap();
        assert_eq!(refused(&p(f, f, t, t)), "CKA_SENSITIVE");
        assert_eq!(refused(&p(None, f, t, t)), "CKA_SENSITIVE");
        assert_eq!(refused(&p(t, t, t, t)), "CKA_EXTRACTABLE");
        assert_eq!(refused(&p(t, None, t, t)), "CKA_EXTRACTABLE");
        assert_eq!(refused(&p(t, f, f, t)), "CKA_ALWAYS_SENSITIVE");
        assert_eq!(refused(&p(t, f, t, f)), "CKA_NEVER_EXTRACTABLE");
        let e = check_protection("ca-key", &p(t, t, t, t)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "key \"ca-key\" is not protected: CKA_EXTRACTABLE is CK_TRUE; it must be CK_FALSE"
        );
        assert_eq!(e.class(), crate::ErrorClass::Permanent);
    }
}
