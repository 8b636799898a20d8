//! The KDBO (kimlik doğrulama başarılı onayı, identity verification success approval): a CMS
//! SignedData over the KDB. Check 3 (`kdbo_signature`), and the path check that both channels'
//! check 4 (`kdbo_signer`) builds on.

use nesca_pkix::chain::verify_path;
use nesca_pkix::cms::{verify_signed_data, Signer, VerifiedSignedData};
use sha2::{Digest, Sha256};

use crate::error::ChannelError;

/// A KDBO whose signature verified.
#[derive(Debug, Clone)]
pub struct Kdbo {
    verified: VerifiedSignedData,
    reference: String,
}

impl Kdbo {
    /// Check 3: `der` is a CMS SignedData with its content attached, and its one signature, by
    /// the certificate it carries, verifies.
    pub fn verify(der: &[u8]) -> Result<Kdbo, ChannelError> {
        let verified = verify_signed_data(der, None, Signer::Embedded)
            .map_err(|e| ChannelError::kdbo_signature("kdbo", e.to_string()))?;
        let reference = signed_reference(&verified)?;
        Ok(Kdbo {
            verified,
            reference,
        })
    }

    /// The signed content: the KDB's bytes.
    pub fn content(&self) -> &[u8] {
        &self.verified.content
    }

    /// The signer's certificate, DER.
    pub fn signer_certificate(&self) -> &[u8] {
        &self.verified.signer_certificate
    }

    /// `"kdbo-"` and the lower-case hex of [`signed_reference`]'s digest: the application's
    /// reference (`channel_ref`) and the lifecycle request's id, so that a replayed KDBO does
    /// nothing new.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Check 4's shared part: the signer certificate chains to one of `anchors` at `now`,
    /// through the KDBO's other certificates, with `eku` in its extendedKeyUsage when it has
    /// one. `whose` names the anchors in the refusal ("a KDHS trust anchor").
    pub fn verify_signer_path(
        &self,
        anchors: &[Vec<u8>],
        now: i64,
        eku: Option<&str>,
        whose: &str,
    ) -> Result<(), ChannelError> {
        let signer = self.signer_certificate();
        let intermediates: Vec<Vec<u8>> = self
            .verified
            .certificates
            .iter()
            .filter(|c| c.as_slice() != signer)
            .cloned()
            .collect();
        verify_path(signer, &intermediates, anchors, now, eku).map_err(|e| {
            ChannelError::kdbo_signer(
                "kdbo",
                format!("the signer certificate does not chain to {whose}: {e}"),
            )
        })
    }
}

/// The reference of a verified KDBO: `"kdbo-"` and the lower-case hex SHA-256 of what its
/// signer vouched for — the signer's public key (subjectPublicKeyInfo DER, its length first as
/// 4 bytes big-endian) followed by the signed content (the KDB). Not the digest of the whole
/// DER: the unsigned parts (the certificates and CRLs carried, unsigned attributes, the
/// encoding of lengths) can be changed by anyone without breaking the signature, and so can an
/// ECDSA signature's `s` (to `n - s`), so each change would make a "new" KDBO of the same
/// identity check. The same KDB signed again by the same key is the same check, too.
fn signed_reference(verified: &VerifiedSignedData) -> Result<String, ChannelError> {
    let key = nesca_pkix::subject::public_key_info_der(&verified.signer_certificate)
        .map_err(|e| ChannelError::kdbo_signature("kdbo", e.to_string()))?;
    let len = u32::try_from(key.len())
        .map_err(|_| ChannelError::kdbo_signature("kdbo", "the signer's key is too large"))?;
    let mut digest = Sha256::new();
    digest.update(len.to_be_bytes());
    digest.update(&key);
    digest.update(&verified.content);
    Ok(format!("kdbo-{}", hex::encode(digest.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pki::{Pki, NOW};

    #[test]
    fn a_signed_kdb_verifies_and_gets_its_reference() {
        let pki = Pki::get();
        let der = pki
            .kdhs_signer
            .sign_attached(b"{\"v\":1}", std::slice::from_ref(&pki.kdhs_sub.cert));
        let kdbo = Kdbo::verify(&der).unwrap();
        assert_eq!(kdbo.content(), b"{\"v\":1}");
        assert_eq!(kdbo.signer_certificate(), &pki.kdhs_signer.cert[..]);
        let key = nesca_pkix::subject::public_key_info_der(&pki.kdhs_signer.cert).unwrap();
        let mut signed = (key.len() as u32).to_be_bytes().to_vec();
        signed.extend_from_slice(&key);
        signed.extend_from_slice(b"{\"v\":1}");
        assert_eq!(
            kdbo.reference(),
            format!("kdbo-{}", hex::encode(Sha256::digest(&signed)))
        );
        assert_eq!(kdbo.reference().len(), 5 + 64);
    }

    /// Re-encoding what is not signed — the certificates carried, a fresh signature over the
    /// same KDB — makes different DER but the same reference: the replay is caught.
    #[test]
    fn the_reference_is_what_is_signed_not_how_it_is_encoded() {
        let pki = Pki::get();
        let kdb = b"{\"v\":1,\"kdb_id\":\"K-1\"}";
        let with_sub = pki
            .kdhs_signer
            .sign_attached(kdb, std::slice::from_ref(&pki.kdhs_sub.cert));
        let without = pki.kdhs_signer.sign_attached(kdb, &[]);
        let again = pki
            .kdhs_signer
            .sign_attached(kdb, std::slice::from_ref(&pki.kdhs_sub.cert));
        assert_ne!(with_sub, without);
        let reference = |der: &[u8]| Kdbo::verify(der).unwrap().reference().to_owned();
        assert_eq!(reference(&with_sub), reference(&without));
        assert_eq!(reference(&with_sub), reference(&again));
        // Another KDB is another check.
        let other = pki
            .kdhs_signer
            .sign_attached(b"{\"v\":1,\"kdb_id\":\"K-2\"}", &[]);
        assert_ne!(reference(&with_sub), reference(&other));
    }

    #[test]
    fn a_bad_signature_is_kdbo_signature() {
        let pki = Pki::get();
        let tampered = pki.kdhs_signer.sign_with_wrong_digest(b"{\"v\":1}", &[]);
        let e = Kdbo::verify(&tampered).unwrap_err();
        assert_eq!((e.code(), e.http_status()), ("kdbo_signature", 422));
        assert!(e.to_string().starts_with("kdbo: "), "{e}");
        let garbage = Kdbo::verify(b"not a CMS").unwrap_err();
        assert_eq!(garbage.code(), "kdbo_signature");
    }

    #[test]
    fn the_signer_path_uses_the_carried_intermediates() {
        let pki = Pki::get();
        let anchors = vec![pki.kdhs_root.cert.clone()];
        let with_sub = pki
            .kdhs_signer
            .sign_attached(b"x", std::slice::from_ref(&pki.kdhs_sub.cert));
        let kdbo = Kdbo::verify(&with_sub).unwrap();
        kdbo.verify_signer_path(&anchors, NOW, None, "a KDHS trust anchor")
            .unwrap();

        // Without the intermediate the path cannot be built.
        let alone = Kdbo::verify(&pki.kdhs_signer.sign_attached(b"x", &[])).unwrap();
        let e = alone
            .verify_signer_path(&anchors, NOW, None, "a KDHS trust anchor")
            .unwrap_err();
        assert_eq!(e.code(), "kdbo_signer");
        assert!(
            e.to_string().starts_with(
                "kdbo: the signer certificate does not chain to a KDHS trust anchor: "
            ),
            "{e}"
        );
        // Another anchor does not do.
        let other = vec![pki.idcard_root.cert.clone()];
        assert!(kdbo.verify_signer_path(&other, NOW, None, "x").is_err());
    }
}
