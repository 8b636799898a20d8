//! Check 1 (`client_certificate`, 401), the part both channels share: the request came over
//! nesca's mTLS channel listener with a secure-communication certificate.
//!
//! The listener already accepted only certificates nesca issued and that are active, so the chain
//! here is verified; what is left is which kind of certificate it is.

use nesca_pkix::subject::{extended_key_usages, subject_attribute};

use crate::error::ChannelError;

/// id-kp-serverAuth (RFC 5280 §4.2.1.12).
pub const ID_KP_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
/// id-kp-clientAuth (RFC 5280 §4.2.1.12).
pub const ID_KP_CLIENT_AUTH: &str = nesca_pkix::chain::ID_KP_CLIENT_AUTH;
/// The subject's serialNumber attribute (X.520): the licence or registration number of the
/// partner or operator a certificate was issued to.
pub const OID_SERIAL_NUMBER: &str = "2.5.4.5";

/// The TLS client's leaf certificate, known to be a secure-communication certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    leaf: Vec<u8>,
    serial_number: Option<String>,
}

impl ClientCertificate {
    /// Check 1's shared part on the verified chain (leaf first): there is one, and its leaf's
    /// extendedKeyUsage holds both serverAuth and clientAuth (a secure-communication
    /// certificate; a role certificate, clientAuth alone, does not open the channel).
    pub fn from_chain(chain: &[Vec<u8>]) -> Result<ClientCertificate, ChannelError> {
        let Some(leaf) = chain.first() else {
            return Err(ChannelError::client_certificate(
                "client_certificate",
                "a TLS client certificate is required: use nesca's channel listener with your secure-communication certificate",
            ));
        };
        let unreadable = |e: nesca_pkix::PkixError| {
            ChannelError::client_certificate("client_certificate", format!("cannot be read: {e}"))
        };
        let ekus = extended_key_usages(leaf).map_err(unreadable)?;
        let has = |oid: &str| ekus.iter().any(|e| e == oid);
        if !(has(ID_KP_SERVER_AUTH) && has(ID_KP_CLIENT_AUTH)) {
            return Err(ChannelError::client_certificate(
                "client_certificate",
                "must be a secure-communication certificate (extendedKeyUsage serverAuth and clientAuth)",
            ));
        }
        let serial_number = subject_attribute(leaf, OID_SERIAL_NUMBER).map_err(unreadable)?;
        Ok(ClientCertificate {
            leaf: leaf.clone(),
            serial_number,
        })
    }

    /// The leaf certificate, DER.
    pub fn leaf(&self) -> &[u8] {
        &self.leaf
    }

    /// The leaf's subject serialNumber: the partner's licence number (KDHS) or the licensed
    /// operator's registration number (KEC), when the certificate has one.
    pub fn serial_number(&self) -> Option<&str> {
        self.serial_number.as_deref()
    }

    /// The licence that names the partner in a request's reference ([`crate::kdb::Kdb::reference`]):
    /// the subject serialNumber, or empty when there is none (a channel that lets such a
    /// certificate through has refused it at check 4 before any reference is made).
    pub fn licence(&self) -> &str {
        self.serial_number().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pki::{Pki, KDHS_LICENCE};

    #[test]
    fn a_secure_communication_certificate_opens_the_channel() {
        let pki = Pki::get();
        let chain = vec![pki.kdhs_tls.cert.clone(), pki.nesca_issuing.cert.clone()];
        let client = ClientCertificate::from_chain(&chain).unwrap();
        assert_eq!(client.leaf(), &pki.kdhs_tls.cert[..]);
        assert_eq!(client.serial_number(), Some(KDHS_LICENCE));
    }

    #[test]
    fn no_certificate_is_401() {
        let e = ClientCertificate::from_chain(&[]).unwrap_err();
        assert_eq!((e.code(), e.http_status()), ("client_certificate", 401));
        assert!(e
            .to_string()
            .starts_with("client_certificate: a TLS client certificate is required"));
    }

    #[test]
    fn a_role_certificate_does_not_open_the_channel() {
        // The KEC role certificate has clientAuth only.
        let e = ClientCertificate::from_chain(&[Pki::get().kec_role.cert.clone()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "client_certificate: must be a secure-communication certificate (extendedKeyUsage serverAuth and clientAuth)"
        );
        assert_eq!(e.http_status(), 401);
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let e = ClientCertificate::from_chain(&[vec![0x30, 0x03, 1, 2, 3]]).unwrap_err();
        assert_eq!(e.code(), "client_certificate");
        assert!(
            e.to_string()
                .starts_with("client_certificate: cannot be read: "),
            "{e}"
        );
    }
}
