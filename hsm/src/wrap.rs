//! Key pairs generated in the HSM for a card and handed out only wrapped for the card's
//! transport key (the KDHS channel): the private key never exists outside an HSM in the clear,
//! and the HSM copy is destroyed before the wrapped key is returned.
//!
//! PKCS#11 v2.40 Base §5.13 (`C_GenerateKeyPair`, `C_GenerateKey`, `C_WrapKey`), §5.7
//! (`C_CreateObject`, `C_DestroyObject`); Current Mechanisms §2.1.8 (`CKM_RSA_PKCS_OAEP`) and
//! §2.14 (`CKM_AES_KEY_WRAP_PAD`; v3.0 `CKM_AES_KEY_WRAP_KWP`): the private key layer is
//! exactly RFC 5649 whatever the module does (`kwp.rs`).

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::Decode;
use spki::SubjectPublicKeyInfoRef;

use crate::key::{key_pair_generation, read_spki, KeyAlgorithm, RsaPublicKey, RSA_ENCRYPTION};
use crate::kwp::{self, AesKeyWrapCheck, AesKeyWrapMechanism};
use crate::signer::PublicKey;
use crate::{Hsm, HsmError};

/// The smallest transport key modulus accepted, in bits.
const MIN_TRANSPORT_BITS: usize = 2048;
/// The ephemeral AES key's length in bytes (AES-256).
const AES_KEY_BYTES: u64 = kwp::AES_256_BYTES as u64;

/// A key pair generated for a card: its public key (SPKI, for the certificate) and its private
/// key wrapped for the card's transport key. The HSM copies are destroyed before this returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedCardKey {
    /// The card key's public key, for the certificate.
    pub public_key: PublicKey,
    /// The ephemeral AES-256 key, wrapped under the card's transport key (see [`Self::mechanism`]).
    pub wrapped_key: Vec<u8>,
    /// The card's private key (PKCS#8 PrivateKeyInfo) wrapped under the AES key with AES key
    /// wrap with padding, exactly RFC 5649: the message length indicator is the PKCS#8's length.
    pub wrapped_private_key: Vec<u8>,
    /// How the two layers were wrapped; the card unwraps with the same mechanisms.
    pub mechanism: WrapScheme,
    /// True when the module's AES key wrap is not RFC 5649 and nesca re-wrapped its output in
    /// software ([`WrapPolicy::aes_key_wrap_repair`]).
    pub repaired: bool,
}

/// Which RSA mechanisms [`Hsm::generate_wrapped_card_key`] may wrap the AES key with, and
/// whether it may repair a module's AES key wrap. RSA-OAEP with SHA-256 (MGF1-SHA-256) always;
/// the weaker RSA-OAEP with SHA-1 only when the configuration explicitly allows it (a module,
/// such as SoftHSM 2.6.1, that refuses SHA-256 parameters in `C_WrapKey`). PKCS#1 v1.5
/// encryption is never used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WrapPolicy {
    /// Fall back to RSA-OAEP with SHA-1 and MGF1-SHA-1 when the module refuses SHA-256.
    pub allow_rsa_oaep_sha1: bool,
    /// On a module whose AES key wrap with padding is not RFC 5649 ([`Hsm::aes_key_wrap_check`];
    /// SoftHSM 2.6.1 zero-pads the key first): choose the AES key's value in nesca, let the
    /// module wrap the card key, unwrap it in software, strip exactly the zero padding and wrap
    /// it again per RFC 5649 under the same key. The card's private key then passes through
    /// nesca's memory (zeroized after use). Off: such a module wraps nothing
    /// ([`HsmError::AesKeyWrapNotRfc5649`]). Without effect on a conformant module.
    pub aes_key_wrap_repair: bool,
}

/// How a [`WrappedCardKey`] was wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WrapScheme {
    /// An AES-256 key, wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) under the
    /// transport key; the private key (PKCS#8) wrapped with AES key wrap with padding
    /// (exactly RFC 5649) under that AES key.
    RsaOaepAesKwp,
    /// As [`WrapScheme::RsaOaepAesKwp`], but RSA-OAEP with SHA-1 and MGF1-SHA-1: used only when
    /// the module refuses OAEP with SHA-256 (SoftHSM 2.6.1 accepts only SHA-1 in `C_WrapKey`)
    /// and [`WrapPolicy::allow_rsa_oaep_sha1`] allows it.
    RsaOaepSha1AesKwp,
}

impl WrapScheme {
    fn oaep(self) -> Mechanism<'static> {
        let (hash, mgf) = match self {
            WrapScheme::RsaOaepAesKwp => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            WrapScheme::RsaOaepSha1AesKwp => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
        };
        Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
    }
}

/// Session objects created for one wrapping, destroyed with `C_DestroyObject` whatever happens
/// (they are session objects, so closing the session would destroy them too).
struct Ephemeral<'s> {
    session: &'s Session,
    handles: Vec<ObjectHandle>,
}

impl Ephemeral<'_> {
    /// Destroys every object, trying all of them; the first failure is returned.
    fn destroy_all(&mut self) -> Result<(), HsmError> {
        let mut first = None;
        for handle in self.handles.drain(..) {
            if let Err(e) = self.session.destroy_object(handle) {
                let e = HsmError::from_ck("C_DestroyObject", e);
                tracing::error!(error = %e, "could not destroy a card key object");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Ephemeral<'_> {
    fn drop(&mut self) {
        let _ = self.destroy_all();
    }
}

impl Hsm {
    /// Generates a key pair for a card inside the HSM and returns its public key and its private
    /// key wrapped for the card's transport key (an RSA public key of 2048 bits or more, given
    /// as DER SubjectPublicKeyInfo). See [`WrapScheme`] for the wrapping and [`WrapPolicy`] for
    /// the RSA mechanisms allowed; the token must offer `CKM_RSA_PKCS_OAEP` for wrapping
    /// (`C_GetMechanismInfo`). The private key layer is exactly RFC 5649: a module whose AES key
    /// wrap is not ([`Hsm::aes_key_wrap_check`]) wraps nothing, unless the policy asks for the
    /// repair ([`WrapPolicy::aes_key_wrap_repair`]); the refusal comes before any key is
    /// generated. Every object created here is a session object and is destroyed before this
    /// returns, on success and on error.
    pub fn generate_wrapped_card_key(
        &self,
        algorithm: KeyAlgorithm,
        transport_public_key_spki_der: &[u8],
        policy: WrapPolicy,
    ) -> Result<WrappedCardKey, HsmError> {
        // Refuse a bad transport key before touching the token.
        let (modulus, exponent) = transport_rsa_key(transport_public_key_spki_der)?;
        self.check_oaep_wrap()?;
        let _alone = self.objects_write();
        let session = self.session()?;
        let aes = self.aes_key_wrap_check_locked(&session)?;
        let aes_wrap = match aes.defect {
            None => AesWrap::Module(aes.mechanism),
            Some(_) if policy.aes_key_wrap_repair => AesWrap::Repaired(aes.mechanism),
            Some(defect) => {
                return Err(HsmError::AesKeyWrapNotRfc5649 {
                    mechanism: aes.mechanism.name(),
                    defect,
                })
            }
        };
        let mut objects = Ephemeral {
            session: &session,
            handles: Vec::new(),
        };
        let result = wrap_new_key(
            &session,
            &mut objects,
            algorithm,
            (modulus, exponent),
            policy,
            aes_wrap,
        );
        let destroyed = objects.destroy_all();
        let wrapped = result?;
        destroyed?;
        Ok(wrapped)
    }

    /// Whether the module's AES key wrap with padding is exactly RFC 5649, and with which
    /// mechanism nesca wraps card keys on it (`kwp.rs`): `CKM_AES_KEY_WRAP_KWP` when the token
    /// offers it for wrapping, else `CKM_AES_KEY_WRAP_PAD`. The first call wraps a 20-byte
    /// secret under an AES key of nesca's choice (session objects, destroyed) and compares the
    /// output with RFC 5649 computed in software; the answer is kept for the life of the
    /// process. A token offering neither mechanism for wrapping is refused
    /// ([`HsmError::WrapMechanism`]); so is one that refuses to import the check's keys, unless
    /// it offers `CKM_AES_KEY_WRAP_KWP` ([`AesKeyWrapCheck::unchecked`]).
    pub fn aes_key_wrap_check(&self) -> Result<AesKeyWrapCheck, HsmError> {
        let _alone = self.objects_write();
        let session = self.session()?;
        self.aes_key_wrap_check_locked(&session)
    }

    /// [`Hsm::aes_key_wrap_check`] for a caller that holds the objects lock for writing.
    fn aes_key_wrap_check_locked(&self, session: &Session) -> Result<AesKeyWrapCheck, HsmError> {
        let cached = self
            .inner
            .aes_key_wrap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(check) = cached {
            return Ok(check);
        }
        let mechanism = self.aes_key_wrap_mechanism()?;
        let mut objects = Ephemeral {
            session,
            handles: Vec::new(),
        };
        let result = kwp::check(session, &mut objects.handles, mechanism);
        let destroyed = objects.destroy_all();
        let check = result?;
        destroyed?;
        match (&check.defect, &check.unchecked) {
            (None, None) => tracing::info!(
                mechanism = mechanism.name(),
                "the PKCS#11 module's AES key wrap with padding is RFC 5649"
            ),
            (None, Some(why)) => tracing::warn!(
                mechanism = mechanism.name(),
                why = %why,
                "the PKCS#11 module's AES key wrap with padding was not checked; trusted as RFC 5649"
            ),
            (Some(defect), _) => tracing::warn!(
                mechanism = mechanism.name(),
                defect = %defect,
                "the PKCS#11 module's AES key wrap with padding is not RFC 5649; card keys are wrapped only with [hsm] aes_key_wrap_repair"
            ),
        }
        *self
            .inner
            .aes_key_wrap
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(check.clone());
        Ok(check)
    }

    /// `CKM_AES_KEY_WRAP_KWP` when the token offers it with `CKF_WRAP`, else
    /// `CKM_AES_KEY_WRAP_PAD` when it offers that one so (`C_GetMechanismInfo`).
    fn aes_key_wrap_mechanism(&self) -> Result<AesKeyWrapMechanism, HsmError> {
        for mechanism in [AesKeyWrapMechanism::Kwp, AesKeyWrapMechanism::Pad] {
            match self
                .inner
                .ctx
                .get_mechanism_info(self.current_slot(), mechanism.mechanism_type())
            {
                Ok(info) if info.wrap() => return Ok(mechanism),
                Ok(_) | Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => {}
                Err(other) => return Err(HsmError::from_ck("C_GetMechanismInfo", other)),
            }
        }
        Err(HsmError::WrapMechanism {
            reason: "the token offers neither CKM_AES_KEY_WRAP_KWP nor CKM_AES_KEY_WRAP_PAD for C_WrapKey (CKF_WRAP)".into(),
        })
    }

    /// The token offers `CKM_RSA_PKCS_OAEP` with `CKF_WRAP` (`C_GetMechanismInfo`).
    fn check_oaep_wrap(&self) -> Result<(), HsmError> {
        let info = self
            .inner
            .ctx
            .get_mechanism_info(self.current_slot(), MechanismType::RSA_PKCS_OAEP)
            .map_err(|e| match e {
                CkError::Pkcs11(RvError::MechanismInvalid, _) => HsmError::WrapMechanism {
                    reason: "the token does not offer CKM_RSA_PKCS_OAEP".into(),
                },
                other => HsmError::from_ck("C_GetMechanismInfo", other),
            })?;
        if !info.wrap() {
            return Err(HsmError::WrapMechanism {
                reason: "the token offers CKM_RSA_PKCS_OAEP, but not for C_WrapKey (no CKF_WRAP)"
                    .into(),
            });
        }
        Ok(())
    }
}

/// Checks that a SubjectPublicKeyInfo (DER) is one nesca would wrap card keys for: RSA of
/// 2048 bits or more. The registration authority checks a transport certificate's key with
/// it before registering it.
pub fn check_transport_key(spki_der: &[u8]) -> Result<(), HsmError> {
    transport_rsa_key(spki_der).map(|_| ())
}

/// How the private key layer is made.
#[derive(Debug, Clone, Copy)]
enum AesWrap {
    /// The module wraps with this mechanism, exactly RFC 5649, under an AES key it generated.
    Module(AesKeyWrapMechanism),
    /// The module's mechanism is not RFC 5649: nesca chooses the AES key, and re-wraps what the
    /// module wrapped ([`WrapPolicy::aes_key_wrap_repair`]).
    Repaired(AesKeyWrapMechanism),
}

fn wrap_new_key(
    session: &Session,
    objects: &mut Ephemeral<'_>,
    algorithm: KeyAlgorithm,
    (modulus, exponent): (Vec<u8>, Vec<u8>),
    policy: WrapPolicy,
    aes_wrap: AesWrap,
) -> Result<WrappedCardKey, HsmError> {
    // The transport key, imported as a session object that may wrap only.
    let transport = session
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(false),
            Attribute::Modulus(modulus),
            Attribute::PublicExponent(exponent),
            Attribute::Wrap(true),
            Attribute::Encrypt(false),
            Attribute::Verify(false),
        ])
        .map_err(|e| HsmError::from_ck("C_CreateObject", e))?;
    objects.handles.push(transport);

    // The card's key pair: session objects; the private key is sensitive (never readable in
    // the clear) and extractable (so that C_WrapKey may export it, wrapped).
    let mut public = vec![
        Attribute::Token(false),
        Attribute::Private(false),
        Attribute::Verify(true),
    ];
    let private = vec![
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::Sign(true),
    ];
    let mechanism = key_pair_generation(algorithm, &mut public)?;
    let (pub_handle, priv_handle) = session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(|e| HsmError::from_ck("C_GenerateKeyPair", e))?;
    objects.handles.push(priv_handle);
    objects.handles.push(pub_handle);
    let public_key = PublicKey::new(read_spki(session, pub_handle, "card key")?)?;

    // The ephemeral AES-256 key that wraps the private key, and the private key under it.
    let (aes, wrapped_private_key) = match aes_wrap {
        AesWrap::Module(mechanism) => {
            let aes = session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::Token(false),
                        Attribute::Private(true),
                        Attribute::ValueLen(AES_KEY_BYTES.into()),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(true),
                        Attribute::Wrap(true),
                        Attribute::Encrypt(false),
                        Attribute::Decrypt(false),
                    ],
                )
                .map_err(|e| HsmError::from_ck("C_GenerateKey", e))?;
            objects.handles.push(aes);
            let wrapped = session
                .wrap_key(&mechanism.mechanism(), aes, priv_handle)
                .map_err(|e| HsmError::from_ck("C_WrapKey", e))?;
            (aes, wrapped)
        }
        AesWrap::Repaired(mechanism) => {
            let value = kwp::random(session, kwp::AES_256_BYTES)?;
            let aes = kwp::import_aes_key(session, &value)?;
            objects.handles.push(aes);
            let wrapped = session
                .wrap_key(&mechanism.mechanism(), aes, priv_handle)
                .map_err(|e| HsmError::from_ck("C_WrapKey", e))?;
            (aes, rewrap(&value, &wrapped, mechanism)?)
        }
    };

    // RSA-OAEP with SHA-256; a module that refuses those parameters gets SHA-1 only when the
    // policy allows it.
    let mut scheme = WrapScheme::RsaOaepAesKwp;
    let wrapped_key = match session.wrap_key(&scheme.oaep(), transport, aes) {
        Err(e @ CkError::Pkcs11(RvError::ArgumentsBad | RvError::MechanismParamInvalid, _)) => {
            let refused = HsmError::from_ck("C_WrapKey", e);
            if !policy.allow_rsa_oaep_sha1 {
                return Err(HsmError::WrapMechanism {
                    reason: format!(
                        "the token refused RSA-OAEP with SHA-256 ({refused}) and the weaker RSA-OAEP with SHA-1 is not allowed"
                    ),
                });
            }
            tracing::warn!(
                error = %refused,
                "the PKCS#11 module refused RSA-OAEP with SHA-256; wrapping with RSA-OAEP SHA-1, as the configuration allows"
            );
            scheme = WrapScheme::RsaOaepSha1AesKwp;
            session.wrap_key(&scheme.oaep(), transport, aes)
        }
        other => other,
    }
    .map_err(|e| HsmError::from_ck("C_WrapKey", e))?;

    Ok(WrappedCardKey {
        public_key,
        wrapped_key,
        wrapped_private_key,
        mechanism: scheme,
        repaired: matches!(aes_wrap, AesWrap::Repaired(_)),
    })
}

/// The repair of a module whose AES key wrap zero-pads the key first: unwraps `wrapped` under
/// the AES key `value` in software, strips exactly the zero padding after the PKCS#8 (its outer
/// DER SEQUENCE's length; anything else is refused) and wraps it again per RFC 5649 under the
/// same key. Every plaintext is zeroized when dropped.
fn rewrap(
    value: &[u8],
    wrapped: &[u8],
    mechanism: AesKeyWrapMechanism,
) -> Result<Vec<u8>, HsmError> {
    let refuse = |reason: String| HsmError::AesKeyWrapRepair {
        mechanism: mechanism.name(),
        reason,
    };
    let kek = kwp::kek_of(value)?;
    let plain = kwp::unwrap(&kek, wrapped).map_err(refuse)?;
    let key = kwp::strip_zero_padding(&plain).map_err(refuse)?;
    kwp::wrap(&kek, key)
}

/// The modulus and public exponent of an RSA SubjectPublicKeyInfo of 2048 bits or more.
fn transport_rsa_key(spki_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), HsmError> {
    let refuse = |field: &'static str, reason: String| HsmError::TransportKey { field, reason };
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|e| {
        refuse(
            "SubjectPublicKeyInfo",
            format!("not a DER SubjectPublicKeyInfo: {e}"),
        )
    })?;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(refuse(
            "algorithm",
            format!(
                "{} is not rsaEncryption ({RSA_ENCRYPTION}); RSA-OAEP wrapping needs an RSA key",
                spki.algorithm.oid
            ),
        ));
    }
    let bytes = spki.subject_public_key.as_bytes().ok_or_else(|| {
        refuse(
            "subjectPublicKey",
            "the bit string has unused bits".to_string(),
        )
    })?;
    let key = RsaPublicKey::from_der(bytes)
        .map_err(|e| refuse("subjectPublicKey", format!("not a DER RSAPublicKey: {e}")))?;
    let modulus = key.modulus.as_bytes();
    let bits = match modulus.first() {
        Some(&top) => modulus.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    };
    if bits < MIN_TRANSPORT_BITS {
        return Err(refuse(
            "subjectPublicKey.modulus",
            format!("{bits} bits; at least {MIN_TRANSPORT_BITS} are required"),
        ));
    }
    Ok((modulus.to_vec(), key.public_exponent.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_as_spki() {
        let e = transport_rsa_key(&[0x30, 0x03, 0x01]).unwrap_err();
        assert!(
            matches!(
                e,
                HsmError::TransportKey {
                    field: "SubjectPublicKeyInfo",
                    ..
                }
            ),
            "{e}"
        );
    }
}
