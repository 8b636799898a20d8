//! The KDHS's own rules: check 1 (the partner's licence) and check 4 (the KDBO signer chains to
//! a configured KDHS trust anchor).

use std::collections::BTreeSet;

use nesca_channel_kit::{
    ChannelError, ChannelPolicy, ClientCertificate, ConfigReader, HostCalls, Kdbo,
};

/// The configuration keys of this channel besides the shared ones.
pub const KDHS_KEYS: &[&str] = &["kdhs_licences", "kdhs_trust_anchors"];

/// Who may use the KDHS channel and who may sign its KDBOs.
#[derive(Debug, Clone)]
pub struct KdhsPolicy {
    /// `kdhs_licences`: the licence numbers (subject serialNumber of the secure-communication
    /// certificate) of the KDHSs nesca works with.
    licences: BTreeSet<String>,
    /// `kdhs_trust_anchors`: the CA certificates KDBO signing certificates chain to (DER).
    anchors: Vec<Vec<u8>>,
}

impl KdhsPolicy {
    /// Reads `kdhs_licences` and `kdhs_trust_anchors` (a PEM file).
    pub fn read(config: &ConfigReader) -> Result<KdhsPolicy, ChannelError> {
        Ok(KdhsPolicy {
            licences: config.string_list("kdhs_licences")?.into_iter().collect(),
            anchors: config.certificates("kdhs_trust_anchors")?,
        })
    }
}

impl ChannelPolicy for KdhsPolicy {
    fn name(&self) -> &'static str {
        "kdhs"
    }

    /// The secure-communication certificate's subject serialNumber is a configured licence.
    fn check_client(&self, client: &ClientCertificate) -> Result<(), ChannelError> {
        match client.serial_number() {
            Some(licence) if self.licences.contains(licence) => Ok(()),
            Some(licence) => Err(ChannelError::client_certificate(
                "client_certificate",
                format!("subject serialNumber {licence:?} is not a KDHS licence this nesca accepts (kdhs_licences)"),
            )),
            None => Err(ChannelError::client_certificate(
                "client_certificate",
                "has no subject serialNumber: a KDHS's certificate carries its licence number there",
            )),
        }
    }

    /// The KDBO's signer chains to a KDHS trust anchor (any extendedKeyUsage: KDHSs sign
    /// with certificates of their own CA's profile), its keyUsage allows signing, and it is
    /// the same KDHS's: its subject serialNumber is the licence of the TLS client certificate.
    /// The anchors are shared by every licensed KDHS, so without this one KDHS could present
    /// another's KDBOs as its own.
    fn check_kdbo_signer(
        &self,
        kdbo: &Kdbo,
        client: &ClientCertificate,
        _host: &dyn HostCalls,
        now: i64,
    ) -> Result<(), ChannelError> {
        kdbo.verify_signer_path(
            &self.anchors,
            now,
            None,
            "a KDHS trust anchor (kdhs_trust_anchors)",
        )?;
        kdbo.verify_signer_binding(client, "the KDBO signing certificate")
    }
}
