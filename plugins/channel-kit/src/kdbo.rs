//! The KDBO (kimlik doğrulama başarılı onayı, identity verification success approval): a CMS
//! SignedData over the KDB. Check 3 (`kdbo_signature`), and the path check that both channels'
//! check 4 (`kdbo_signer`) builds on.

use nesca_pkix::chain::verify_path;
use nesca_pkix::cms::{verify_signed_data, Signer, VerifiedSignedData};
use nesca_pkix::subject::{key_usage_allows_signing, subject_attribute};

use crate::client::{ClientCertificate, OID_SERIAL_NUMBER};

use crate::error::ChannelError;

/// A KDBO whose signature verified.
#[derive(Debug, Clone)]
pub struct Kdbo {
    verified: VerifiedSignedData,
}

impl Kdbo {
    /// Check 3: `der` is a CMS SignedData with its content attached, and its one signature, by
    /// the certificate it carries, verifies.
    pub fn verify(der: &[u8]) -> Result<Kdbo, ChannelError> {
        let verified = verify_signed_data(der, None, Signer::Embedded)
            .map_err(|e| ChannelError::kdbo_signature("kdbo", e.to_string()))?;
        Ok(Kdbo { verified })
    }

    /// The signed content: the KDB's bytes.
    pub fn content(&self) -> &[u8] {
        &self.verified.content
    }

    /// The signer's certificate, DER.
    pub fn signer_certificate(&self) -> &[u8] {
        &self.verified.signer_certificate
    }

    /// The signer certificate's serial as nesca spells it (lower-case hex), for the log line
    /// that attributes a request to the device or system that signed it; `?` when unreadable.
    pub fn signer_serial(&self) -> String {
        nesca_pkix::subject::serial_hex(self.signer_certificate()).unwrap_or_else(|_| "?".into())
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

    /// Check 4's binding of the signer to the partner: the signer certificate's keyUsage
    /// allows signing (absent, or digitalSignature or nonRepudiation), and its subject
    /// serialNumber is the licence number in the subject serialNumber of the TLS client
    /// certificate that opened the channel. Without it any partner could send KDBOs signed by
    /// another partner's signer under a shared trust anchor. `what` names the signer in the
    /// refusal ("the KDBO signing certificate", "the role certificate").
    pub fn verify_signer_binding(
        &self,
        client: &ClientCertificate,
        what: &str,
    ) -> Result<(), ChannelError> {
        let signer = self.signer_certificate();
        let refuse = |rule: String| ChannelError::kdbo_signer("kdbo", rule);
        let unreadable = |e: nesca_pkix::PkixError| refuse(format!("{what} cannot be read: {e}"));
        if !key_usage_allows_signing(signer).map_err(unreadable)? {
            return Err(refuse(format!(
                "{what}'s keyUsage must allow digitalSignature or nonRepudiation"
            )));
        }
        let licence = subject_attribute(signer, OID_SERIAL_NUMBER).map_err(unreadable)?;
        match (licence.as_deref(), client.serial_number()) {
            (Some(signer), Some(partner)) if signer == partner => Ok(()),
            (None, _) => Err(refuse(format!(
                "{what} must carry the partner's licence number in its subject serialNumber"
            ))),
            _ => Err(refuse(format!(
                "{what}'s subject serialNumber must be the TLS client certificate's (the same licensed partner)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pki::{Pki, NOW};

    #[test]
    fn a_signed_kdb_verifies() {
        let pki = Pki::get();
        let der = pki
            .kdhs_signer
            .sign_attached(b"{\"v\":1}", std::slice::from_ref(&pki.kdhs_sub.cert));
        let kdbo = Kdbo::verify(&der).unwrap();
        assert_eq!(kdbo.content(), b"{\"v\":1}");
        assert_eq!(kdbo.signer_certificate(), &pki.kdhs_signer.cert[..]);
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
