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
        Ok(Kdbo {
            verified,
            reference: format!("kdbo-{}", hex::encode(Sha256::digest(der))),
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

    /// `"kdbo-"` and the lower-case hex SHA-256 of the KDBO's DER: the application's reference
    /// (`channel_ref`) and the lifecycle request's id, so that a replayed KDBO does nothing new.
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
        assert_eq!(
            kdbo.reference(),
            format!("kdbo-{}", hex::encode(Sha256::digest(&der)))
        );
        assert_eq!(kdbo.reference().len(), 5 + 64);
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
