//! The KEC's own rules: check 4 (the KDBO is signed by an active KEC role certificate of the
//! operator whose secure-communication certificate opened the channel), check 10 (slots), and
//! holder lifecycle requests.

use nesca_channel_kit::client::{ID_KP_CLIENT_AUTH, OID_SERIAL_NUMBER};
use nesca_channel_kit::{
    ChannelError, ChannelPolicy, ClientCertificate, ConfigReader, HostCalls, Kdbo, Slots,
};
use nesca_pkix::subject::{extended_key_usages, serial_hex, subject_attribute};

use crate::slots::check_slots;

/// The configuration keys of this channel besides the shared ones.
pub const KEC_KEYS: &[&str] = &["device_ca"];

/// Who may sign the KEC channel's KDBOs.
#[derive(Debug, Clone)]
pub struct KecPolicy {
    /// `device_ca`: nesca's CA certificate(s) that issue KEC role certificates (DER).
    device_ca: Vec<Vec<u8>>,
}

impl KecPolicy {
    /// Reads `device_ca` (a PEM file).
    pub fn read(config: &ConfigReader) -> Result<KecPolicy, ChannelError> {
        Ok(KecPolicy {
            device_ca: config.certificates("device_ca")?,
        })
    }
}

fn refuse(rule: impl Into<String>) -> ChannelError {
    ChannelError::kdbo_signer("kdbo", rule)
}

impl ChannelPolicy for KecPolicy {
    fn name(&self) -> &'static str {
        "kec"
    }

    /// Any secure-communication certificate nesca issued: which operator it is matters at
    /// check 4, where the device's role certificate must be the same operator's.
    fn check_client(&self, _client: &ClientCertificate) -> Result<(), ChannelError> {
        Ok(())
    }

    fn check_kdbo_signer(
        &self,
        kdbo: &Kdbo,
        client: &ClientCertificate,
        host: &dyn HostCalls,
        now: i64,
    ) -> Result<(), ChannelError> {
        kdbo.verify_signer_path(
            &self.device_ca,
            now,
            Some(ID_KP_CLIENT_AUTH),
            "nesca's device CA (device_ca)",
        )?;
        let signer = kdbo.signer_certificate();
        let unreadable = |e: nesca_pkix::PkixError| {
            refuse(format!("the signer certificate cannot be read: {e}"))
        };

        // A role certificate has clientAuth and nothing else: a secure-communication
        // certificate's key lives in a server, not in the device that read the card.
        let ekus = extended_key_usages(signer).map_err(unreadable)?;
        if ekus != [ID_KP_CLIENT_AUTH] {
            return Err(refuse(
                "the signer must be a KEC role certificate: extendedKeyUsage exactly clientAuth",
            ));
        }

        let operator = subject_attribute(signer, OID_SERIAL_NUMBER).map_err(unreadable)?;
        if operator.is_none() || operator.as_deref() != client.serial_number() {
            return Err(refuse(
                "the role certificate's subject serialNumber must be the TLS client certificate's (the same licensed operator)",
            ));
        }

        // The device CA's signature says nothing of revocation since: ask the store.
        let serial = serial_hex(signer).map_err(unreadable)?;
        let info = host.lookup_certificate(&serial).map_err(|e| {
            refuse(format!(
                "the role certificate {serial} is not known to nesca: {e}"
            ))
        })?;
        if info.status != "active" {
            return Err(refuse(format!(
                "the role certificate {serial} is {}; only an active role certificate may sign",
                info.status
            )));
        }
        Ok(())
    }

    fn check_slots(
        &self,
        slots: Option<Slots>,
        overwrite_serial: Option<&str>,
    ) -> Result<(), ChannelError> {
        check_slots(slots, overwrite_serial)
    }

    fn serves_lifecycle(&self) -> bool {
        true
    }
}
