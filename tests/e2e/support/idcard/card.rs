//! The applicant's ID card: a SoftHSM token of the test process (`cryptoki`), whose keys never
//! leave it, and the CMS SignedData built here because of that.

use std::fs;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256};

use crate::support::der::{der_content, der_uint, oid_der, tlv};

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
pub(crate) struct Card {
    session: Session,
}

impl Card {
    /// A new token labelled `label`. It is initialised through PKCS#11 in this process
    /// (`C_InitToken` on the free slot, then `C_InitPIN`) rather than with `softhsm2-util`:
    /// SoftHSM lists only the tokens it found at `C_Initialize` and those it initialised
    /// itself, so a token another process made after that stays invisible to this one.
    #[track_caller]
    pub(crate) fn new(label: &str) -> Card {
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
    pub(crate) fn transport_key(&self) -> (ObjectHandle, Vec<u8>) {
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
    pub(crate) fn unwrap_ec_key(
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
    pub(crate) fn generate_p256(&self) -> (ObjectHandle, String) {
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
    pub(crate) fn sign_digest(&self, key: ObjectHandle, digest: &[u8]) -> Vec<u8> {
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
    pub(crate) fn sign_detached_cms(
        &self,
        key: ObjectHandle,
        cert_der: &[u8],
        content: &[u8],
    ) -> Vec<u8> {
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
pub(crate) fn cert_key_verifies(
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
