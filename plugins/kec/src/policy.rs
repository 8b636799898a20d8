//! The KEC's own rules: check 4 (the KDBO is signed by an active KEC role certificate of the
//! operator whose secure-communication certificate opened the channel), check 10 (slots), and
//! holder lifecycle requests.

use nesca_channel_kit::client::ID_KP_CLIENT_AUTH;
use std::collections::BTreeMap;

use nesca_channel_kit::config::FirmwareDigests;
use nesca_channel_kit::{
    ChannelError, ChannelPolicy, ClientCertificate, ConfigReader, HostCalls, Kdbo, Slots,
};
use nesca_pkix::subject::{extended_key_usages, serial_hex};

use crate::slots::check_slots;

/// The configuration keys of this channel besides the shared ones.
pub const KEC_KEYS: &[&str] = &["device_ca", "operator_firmware"];

/// Who may sign the KEC channel's KDBOs.
#[derive(Debug, Clone)]
pub struct KecPolicy {
    /// `device_ca`: nesca's CA certificate(s) that issue KEC role certificates (DER).
    device_ca: Vec<Vec<u8>>,
    /// `operator_firmware`: for an operator (licence number) listed here, the firmware
    /// digests its devices may run, instead of the shared `firmware_sha256`.
    operator_firmware: BTreeMap<String, FirmwareDigests>,
}

impl KecPolicy {
    /// Reads `device_ca` (a PEM file) and the optional `operator_firmware` table.
    pub fn read(config: &ConfigReader) -> Result<KecPolicy, ChannelError> {
        let mut operator_firmware = BTreeMap::new();
        for (licence, digests) in config.string_list_table("operator_firmware")? {
            let parsed = FirmwareDigests::parse(&format!("operator_firmware.{licence}"), &digests)?;
            operator_firmware.insert(licence, parsed);
        }
        Ok(KecPolicy {
            device_ca: config.certificates("device_ca")?,
            operator_firmware,
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

        kdbo.verify_signer_binding(client, "the role certificate")?;

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

    /// An operator listed in `operator_firmware` runs only the firmware listed for it: a
    /// digest approved for another operator's devices is not approved for its own.
    fn check_firmware(
        &self,
        shared: &FirmwareDigests,
        client: &ClientCertificate,
        digest: &str,
    ) -> Result<(), ChannelError> {
        match self.operator_firmware.get(client.licence()) {
            Some(own) => own.check(digest),
            None => shared.check(digest),
        }
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
